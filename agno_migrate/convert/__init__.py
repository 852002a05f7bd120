"""Pure functions that turn stored session data into current records (shared by SQL and Mongo).

No I/O here: values in, values out, deterministic (the same input gives the same output).
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterable
from typing import Any

try:  # optional accelerator: when installed, JSON text is parsed about twice as fast (same values)
    import orjson as _orjson
except ImportError:  # pragma: no cover - depends on the environment
    _orjson = None

RUN_ID_NAMESPACE = uuid.UUID("6f1d3c2a-5b7e-4f0a-9c1d-2e3f4a5b6c7d")
SESSION_TYPES = ("agent", "team", "workflow")
_DIGITS = bytes(1 if 0x30 <= byte <= 0x39 else 0 for byte in range(256))  # digit -> 1, any other byte -> 0
_NINETEEN_DIGITS = b"\x01" * 19
_FLOAT_MAX = 1.7976931348623157e308
_seen = threading.local()


def nonstandard_count() -> int:
    """How many values this thread's conversions met that orjson could not give exactly (counted,
    never changed): JSON text parsed by json.loads instead (NaN, ±Infinity, a number too large for
    a float, lone surrogates, integer digits beyond 64 bits, …) and sums that are not finite.

    A caller that encodes a converted row with orjson (which writes a non-finite float as null)
    does so only when this did not move during the row's conversion.
    """
    return getattr(_seen, "count", 0)


def _note_nonstandard() -> None:
    _seen.count = getattr(_seen, "count", 0) + 1


def loads(text: str | bytes) -> Any:
    """``json.loads(text)``: the same value, or the same exception (text or UTF-8 bytes, as the
    PostgreSQL driver hands JSON over).

    orjson parses where it gives exactly what json.loads gives; json.loads parses everything else:
    text orjson rejects (NaN, Infinity, lone surrogates, …) and text holding a run of 19 digits or
    more, where an integer may exceed 64 bits (orjson would turn it into a float).
    """
    if _orjson is not None:
        try:
            raw = text if isinstance(text, bytes) else text.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates in the text itself
            raw = None
        if raw is not None and raw.translate(_DIGITS).find(_NINETEEN_DIGITS) < 0:
            try:
                return _orjson.loads(raw)
            except ValueError:  # orjson.JSONDecodeError: json.loads decides (and words the error)
                pass
    value = json.loads(text)
    _note_nonstandard()
    return value


def decode_json(value: Any, max_layers: int = 4) -> Any:
    """A JSON value as Python, peeling the extra string layers some Agno releases wrote.

    SQLite (Agno 2.0 – 3.0.7) stores JSON double-encoded (a JSON string holding the JSON text),
    MariaDB returns JSON columns as text, PostgreSQL drivers return Python objects. Raises
    ValueError when a string is not JSON at the first layer.
    """
    if isinstance(value, (bytes, bytearray)):
        value = value.decode("utf-8")
    layers = 0
    while isinstance(value, str) and layers < max_layers:
        try:
            decoded = loads(value)
        except ValueError:
            if layers == 0:
                raise
            break
        value = decoded
        layers += 1
    return value


def derived_run_id(session_id: str, run_index: int, run_id: str | None = None) -> str:
    """A deterministic id for a run that has none (or whose id another session already uses)."""
    name = f"{session_id}\x1f{run_index}\x1f{run_id or ''}"
    return f"run-{uuid.uuid5(RUN_ID_NAMESPACE, name)}"


def _epoch(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return int(value)
    if isinstance(value, str):
        try:
            return int(float(value))
        except ValueError:
            return None
    return None


def run_rows(session: dict, runs: Iterable[Any]) -> tuple[list[dict], list[tuple[int, str]]]:
    """Runs-table rows for every element of a session's legacy ``runs`` list.

    ``session`` holds ``session_id``, ``session_type``, ``user_id``, ``created_at``, ``updated_at``
    and the entity ids. Each dict run gives one row: ``run_index`` = its position, ``run_type`` =
    the session type, ``user_id`` from the session, ``status``/``parent_run_id``/``created_at`` from
    the run. A run without ``run_id`` gets :func:`derived_run_id` (written into its ``run_data``
    too, so Agno's readers see it). Returns (rows, skipped) where skipped lists (index, reason) for
    elements that are not runs at all (not a dict) — reported by the caller, never dropped silently.
    """
    rows: list[dict] = []
    skipped: list[tuple[int, str]] = []
    session_id = session["session_id"]
    session_type = session.get("session_type")
    for index, run in enumerate(runs):
        if not isinstance(run, dict):
            skipped.append((index, f"element is {type(run).__name__}, not a run object"))
            continue
        run_id = run.get("run_id")
        if not run_id:
            run_id = derived_run_id(session_id, index)
            run = {**run, "run_id": run_id}
        created = _epoch(run.get("created_at")) or _epoch(session.get("created_at")) or 0
        rows.append(
            {
                "run_id": str(run_id),
                "session_id": session_id,
                "run_type": session_type if session_type in SESSION_TYPES else _run_type(run),
                "agent_id": run.get("agent_id") or (session.get("agent_id") if session_type == "agent" else None),
                "team_id": run.get("team_id") or (session.get("team_id") if session_type == "team" else None),
                "workflow_id": run.get("workflow_id")
                or (session.get("workflow_id") if session_type == "workflow" else None),
                "user_id": session.get("user_id"),
                "parent_run_id": run.get("parent_run_id"),
                "status": _text(run.get("status")),
                "run_index": index,
                "run_data": run,
                "created_at": created,
                "updated_at": _epoch(run.get("updated_at")) or _epoch(session.get("updated_at")) or created,
            }
        )
    return rows, skipped


def _run_type(run: dict) -> str:
    if run.get("agent_id"):
        return "agent"
    if run.get("team_id"):
        return "team"
    return "workflow"


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


# --- Agno 1.x rows → current sessions rows and runs ----------------------------------------------
#
# Rules (LINEAGE.md §1.5, §7, §8): everything Agno's own v1→v2 conversion maps is mapped the same
# way; what it drops is placed where the current schema has a home for it, and what has no home is
# kept verbatim under an ``agno_v1`` key in the nearest free-form dict that Agno 3.x reads and
# writes back unchanged:
#   session level  → ``session_data["agno_v1"]``     (team_session_id, leftover memory, …)
#   run level      → ``run["metadata"]["agno_v1"]``  (formatted_tool_calls, events, extra_data rest, …)
#   run/session metrics → ``metrics["additional_metrics"]["agno_v1"]`` (prompt_tokens_details, …)
#   message metrics → ``metrics["provider_metrics"]["agno_v1"]``
#   message        → ``message["agno_v1"]``          (Message allows extra fields)
# A JSON null / Python None field is the same as an absent one for Agno's run classes and is not
# carried over; NUL bytes and every other character are kept as they are.

V1_KEY = "agno_v1"
V1_SESSION_TYPES = {"agent": "agent", "team": "team", "workflow": "workflow", "workflow_v2": "workflow"}
_V1_ENTITY = {"agent": "agent", "team": "team", "workflow": "workflow", "workflow_v2": "workflow"}
_V1_ROW_KEYS = {"session_id", "user_id", "memory", "session_data", "extra_data", "created_at", "updated_at"}
_MONGO_ID = "_id"  # MongoDB's own document id (an ObjectId): not Agno data, never JSON

# Fields of Agno 3.1.10's RunOutput / TeamRunOutput / WorkflowRunOutput that a converted v1 run may
# carry. ``events`` (v1 event objects have other shapes) and, for workflow runs, ``metrics`` (v1
# RunResponse metrics are not WorkflowMetrics) are left out on purpose: Agno would fail to read them.
_RUN_FIELDS = {
    "run_id",
    "session_id",
    "parent_run_id",
    "user_id",
    "content",
    "content_type",
    "reasoning_content",
    "reasoning_steps",
    "reasoning_messages",
    "model",
    "model_provider",
    "model_provider_data",
    "messages",
    "metrics",
    "additional_input",
    "tools",
    "images",
    "videos",
    "audio",
    "files",
    "response_audio",
    "citations",
    "references",
    "followups",
    "metadata",
    "session_state",
    "created_at",
    "status",
    "workflow_step_id",
}
_V2_RUN_FIELDS = {
    "agent": _RUN_FIELDS | {"agent_id", "agent_name", "workflow_id"},
    "team": _RUN_FIELDS | {"team_id", "team_name", "member_responses"},
    "workflow": {
        "run_id",
        "session_id",
        "parent_run_id",
        "user_id",
        "input",
        "content",
        "content_type",
        "workflow_id",
        "workflow_name",
        "workflow_step_id",
        "images",
        "videos",
        "audio",
        "files",
        "response_audio",
        "step_results",
        "step_executor_runs",
        "metadata",
        "created_at",
        "status",
    },
}

# v1 metric names → current names (Agno's convert_v1_metrics_to_v2); v1 aliases of token counts.
METRIC_RENAMES = {
    "time": "duration",
    "audio_tokens": "audio_total_tokens",
    "input_audio_tokens": "audio_input_tokens",
    "output_audio_tokens": "audio_output_tokens",
    "cached_tokens": "cache_read_tokens",
}
TOKEN_ALIASES = {"prompt_tokens": "input_tokens", "completion_tokens": "output_tokens"}
_TOKEN_FIELDS = {
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "audio_input_tokens",
    "audio_output_tokens",
    "audio_total_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "cost",
    "duration",
    "time_to_first_token",
}
_METRIC_FIELDS = {
    "message": _TOKEN_FIELDS | {"provider_metrics"},
    "run": _TOKEN_FIELDS | {"additional_metrics"},
    "session": _TOKEN_FIELDS | {"additional_metrics"},
}  # v1 had no per-model ``details``: a v1 key of that name is kept aside, not read as ModelMetrics
_METRIC_RESERVE = {"message": "provider_metrics", "run": "additional_metrics", "session": "additional_metrics"}
# v1 metric key -> the field it fills at each level (METRIC_RENAMES applied; keys absent here are kept aside)
_METRIC_TARGETS = {
    level: {
        **{name: name for name in fields if name not in METRIC_RENAMES},
        **{old: new for old, new in METRIC_RENAMES.items() if new in fields},
    }
    for level, fields in _METRIC_FIELDS.items()
}
_DICT_METRICS = frozenset(("additional_metrics", "provider_metrics"))
_TOKEN_ALIAS_ITEMS = tuple(TOKEN_ALIASES.items())

# v1 RunResponse.extra_data entries that have a field of their own now (Agno's convert_v1_fields_to_v2).
EXTRA_DATA_FIELDS = {
    "add_messages": "additional_input",
    "references": "references",
    "reasoning_steps": "reasoning_steps",
    "reasoning_messages": "reasoning_messages",
    "reasoning_content": "reasoning_content",
}
_MESSAGE_LISTS = ("messages", "additional_input", "reasoning_messages")


class ConversionError(ValueError):
    """An Agno 1.x row that cannot be read at all: a JSON column that is not JSON, or holds the wrong
    top-level type (e.g. ``memory`` a list). The message names the column and the reason."""


def convert_v1_session(mode: str, row: dict) -> tuple[dict, list]:
    """One Agno 1.x session row (any backend) → (current sessions-table row, converted runs in order).

    ``mode`` is the 1.x storage mode (``agent``, ``team``, ``workflow``, ``workflow_v2``). The row
    keeps session_id, user_id, created_at and updated_at exactly (NULL stays NULL); ``extra_data``
    becomes ``metadata`` unchanged; the summary comes from the memory; runs come from
    ``memory["runs"]`` (``runs`` column for workflow_v2). Everything else the row held goes to
    ``session_data["agno_v1"]``. Runs that are not objects are kept there too (``unplaced_runs``).
    Raises :class:`ConversionError` when the row cannot be parsed.
    """
    if mode not in V1_SESSION_TYPES:
        raise ConversionError(f"unknown Agno 1.x storage mode {mode!r}")
    session_id = row.get("session_id")
    if not isinstance(session_id, str) or not session_id:
        raise ConversionError(f"session_id is {type(session_id).__name__}, not a non-empty string")
    entity = _V1_ENTITY[mode]
    memory = _json_column(row, "memory", dict)
    session_data = _json_column(row, "session_data", dict)
    extra_data = _json_column(row, "extra_data", dict)
    entity_data = _json_column(row, f"{entity}_data", dict)
    reserve: dict = {}
    memory_left = dict(memory) if memory else {}
    summary = pop_v1_summary(memory_left, session_id, row.get("user_id"))
    if mode == "workflow_v2":
        raw_runs = _json_column(row, "runs", list)
        runs, unplaced = v1_workflow_v2_runs(raw_runs)
    else:
        raw_runs = _session_runs(memory_left.pop("runs", None), session_id, memory_left)
        runs, unplaced = v1_memory_runs(mode, raw_runs)
    entity_data = _place_workflow_name(entity_data, row.get("workflow_name"), reserve)
    _collect_row_leftovers(mode, row, memory_left, unplaced, reserve)
    session_row = {
        "session_id": session_id,
        "session_type": V1_SESSION_TYPES[mode],
        "agent_id": row.get("agent_id") if entity == "agent" else None,
        "team_id": row.get("team_id") if entity == "team" else None,
        "workflow_id": row.get("workflow_id") if entity == "workflow" else None,
        "user_id": row.get("user_id"),
        "session_data": _with_reserve(convert_v1_session_data(session_data), reserve),
        "agent_data": entity_data if entity == "agent" else None,
        "team_data": entity_data if entity == "team" else None,
        "workflow_data": entity_data if entity == "workflow" else None,
        "metadata": extra_data,
        "summary": summary,
        "created_at": row.get("created_at"),
        "updated_at": row.get("updated_at"),
    }
    return session_row, runs


def _json_column(row: dict, column: str, kind: type) -> Any:
    """The decoded value of a JSON column: ``kind`` or None; anything else is a ConversionError."""
    try:
        value = decode_json(row.get(column))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConversionError(f"column {column} is not JSON: {exc}") from None
    if value is not None and not isinstance(value, kind):
        raise ConversionError(f"column {column} holds {type(value).__name__}, not {kind.__name__}")
    return value


def _session_runs(runs: Any, session_id: str, memory_left: dict) -> list:
    """``memory["runs"]`` as a list: Agent.get_agent_session() stores this session's list; a raw
    Memory.to_dict() stores ``{session_id: [...]}`` (other sessions' runs stay in the memory)."""
    if runs is None:
        return []
    if isinstance(runs, dict):
        mine = runs.get(session_id)
        others = {k: v for k, v in runs.items() if k != session_id}
        if others:
            memory_left["runs"] = others
        runs = mine if mine is not None else []
    if not isinstance(runs, list):
        raise ConversionError(f"memory.runs holds {type(runs).__name__}, not a list")
    return runs


def _place_workflow_name(workflow_data: dict | None, name: Any, reserve: dict) -> dict | None:
    """workflow_v2's ``workflow_name`` column → ``workflow_data["name"]`` (where Agno 3.x keeps a
    workflow's name); a different name already there keeps the column value in the reserve."""
    if name is None:
        return workflow_data
    if workflow_data is None:
        return {"name": name}
    if workflow_data.get("name") in (None, name):
        return {**workflow_data, "name": name}
    reserve["workflow_name"] = name
    return workflow_data


def _collect_row_leftovers(mode: str, row: dict, memory_left: dict, unplaced: list, reserve: dict) -> None:
    """Session-level v1 data without a column of its own: team_session_id, the memory minus what was
    placed (user memories, AgentMemory messages and settings, other summaries), runs that are not run
    objects, and any column this converter does not know (MongoDB's ``_id`` excepted)."""
    known = _V1_ROW_KEYS | {f"{_V1_ENTITY[mode]}_id", f"{_V1_ENTITY[mode]}_data", _MONGO_ID}
    if mode == "workflow_v2":
        known |= {"runs", "workflow_name"}
    for column in sorted(set(row) - known):
        if row[column] is not None:
            reserve[column] = row[column]
    memory_left = {k: v for k, v in memory_left.items() if v not in (None, {}, [])}
    if memory_left:
        reserve["memory"] = memory_left
    if unplaced:
        reserve["unplaced_runs"] = unplaced


def _with_reserve(target: dict | None, reserve: dict, key: str = V1_KEY) -> dict | None:
    """``target`` with ``reserve`` under ``key`` (a value already there is kept inside the reserve)."""
    if not reserve:
        return target
    target = dict(target or {})
    if key in target:
        reserve = {**reserve, key: target[key]}
    target[key] = reserve
    return target


# --- summaries and session data ------------------------------------------------------------------


def pop_v1_summary(memory: dict, session_id: str, user_id: str | None) -> dict | None:
    """The session's summary as the current ``summary`` column, removed from ``memory``.

    Memory v2 keeps it at ``memory["summaries"][user_id or "default"][session_id]``, legacy
    AgentMemory at ``memory["summary"]``. Result: ``{"summary", "topics"?, "updated_at"?}`` (v1
    ``last_updated`` renamed; an epoch number becomes ISO-8601 UTC). Fields Agno's SessionSummary
    cannot take stay in the memory (and so in the reserve). None when there is no summary text.
    """
    summaries = memory.get("summaries")
    user_key = user_id if user_id is not None else "default"
    if isinstance(summaries, dict) and isinstance(summaries.get(user_key), dict):
        by_session = summaries[user_key]
        summary, rest = convert_v1_summary(by_session.get(session_id))
        if summary is not None:
            by_session = {k: v for k, v in by_session.items() if k != session_id}
            if rest:
                by_session[session_id] = rest
            users = {k: v for k, v in summaries.items() if k != user_key}
            if by_session:
                users[user_key] = by_session
            memory["summaries"] = users
            return summary
    summary, rest = convert_v1_summary(memory.get("summary"))
    if summary is not None:
        memory["summary"] = rest or None
    return summary


def convert_v1_summary(value: Any) -> tuple[dict | None, dict]:
    """A v1 summary object → (current summary dict or None, the v1 fields left unplaced)."""
    if not isinstance(value, dict) or not isinstance(value.get("summary"), str):
        return None, {}
    rest = {k: v for k, v in value.items() if k != "summary" and v is not None}
    summary = {"summary": value["summary"]}
    if isinstance(rest.get("topics"), list):
        summary["topics"] = rest.pop("topics")
    for name in ("updated_at", "last_updated"):
        if name in rest and "updated_at" not in summary:
            iso = _iso_time(rest[name])
            if iso is not None:
                summary["updated_at"] = iso
                del rest[name]
    return summary, rest


def _iso_time(value: Any) -> str | None:
    """An ISO-8601 text Agno's SessionSummary can parse, or None. Epoch numbers are read as UTC."""
    from datetime import datetime, timezone

    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        try:
            return datetime.fromtimestamp(value, tz=timezone.utc).isoformat()
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str):
        try:
            datetime.fromisoformat(value)
        except ValueError:
            return None
        return value
    return None


def convert_v1_session_data(session_data: dict | None) -> dict | None:
    """v1 ``session_data`` → current: only ``session_metrics`` changes (see
    :func:`convert_v1_metrics`, session level); session_name, session_state, team/workflow session
    state and media stay as they are."""
    if not session_data or not isinstance(session_data.get("session_metrics"), dict):
        return session_data
    return {**session_data, "session_metrics": convert_v1_metrics(session_data["session_metrics"], "session")}


# --- metrics -------------------------------------------------------------------------------------


def convert_v1_metrics(metrics: dict, level: str) -> dict:
    """v1 metrics → current metrics at ``level`` ``message``, ``run`` or ``session``.

    * renamed: time→duration, audio_tokens→audio_total_tokens, input_audio_tokens→audio_input_tokens,
      output_audio_tokens→audio_output_tokens, cached_tokens→cache_read_tokens;
    * run level: v1 keeps one list entry per assistant message; numeric lists are summed (times too,
      in list order), a list holding anything else is kept verbatim;
    * prompt_tokens/completion_tokens are v1 aliases of input/output tokens: dropped when equal to
      them, used when those are missing, kept when they differ;
    * a None that has no field of its own (``timer``, details) is dropped (None is "absent");
      message and run metrics drop None, int 0 and empty dicts like
      Agno's own to_dict(); session metrics keep every value (Agno stores that dict as given);
    * anything else (prompt_tokens_details, completion_tokens_details, unknown keys, a name clash)
      is kept verbatim under ``agno_v1`` in additional_metrics (run, session) or provider_metrics
      (message).
    """
    run_level = level == "run"
    target = _METRIC_TARGETS[level]
    out: dict = {}
    keep: dict = {}
    # one pass with the rules inlined: this runs for every message of every run (the import's hot spot)
    for key, raw in metrics.items():
        name = target.get(key)
        if name is None:  # not a field of this level (the token aliases are placed below)
            if raw is not None and key not in TOKEN_ALIASES:
                keep[key] = raw
            continue
        value = raw
        if run_level and raw.__class__ is list:  # _summed, inlined
            for item in raw:
                if item.__class__ is not int and item.__class__ is not float:
                    break
            else:
                value = sum(raw)
                if value.__class__ is float and not -_FLOAT_MAX <= value <= _FLOAT_MAX:
                    _note_nonstandard()
        kind = value.__class__
        if name in out:
            ok = False
        elif kind is int or kind is float:
            ok = name not in _DICT_METRICS
        elif value is None:
            ok = True
        elif name in _DICT_METRICS:
            ok = isinstance(value, dict)
        else:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if ok:
            out[name] = value
        elif raw is not None:
            keep[key] = raw
    for alias, name in _TOKEN_ALIAS_ITEMS:  # _place_alias, inlined
        if alias in metrics:
            raw = metrics[alias]
            value = _summed(raw) if run_level else raw
            if value is None:
                continue
            current = out.get(name)
            if current is None and (value.__class__ is int or value.__class__ is float or _is_number(value)):
                out[name] = value
            elif current != value:
                keep[alias] = raw
    if level != "session":  # _is_default_metric, with its usual cases first
        for key in [
            k
            for k, v in out.items()
            if (v == 0 if v.__class__ is int else v.__class__ is not float and _is_default_metric(v))
        ]:
            del out[key]
    if keep:
        reserve_field = _METRIC_RESERVE[level]
        out[reserve_field] = _with_reserve(out.get(reserve_field), keep)
    return out


_NUMBER_TYPES = frozenset((int, float))


def _summed(value: Any) -> Any:
    """The sum of a list of numbers (left to right, ints stay ints); other values unchanged."""
    if type(value) is list:
        for item in value:
            if type(item) is not int and type(item) is not float:
                return value
        total = sum(value)
        if total.__class__ is float and not -_FLOAT_MAX <= total <= _FLOAT_MAX:
            _note_nonstandard()
        return total
    return value


def _is_number(value: Any) -> bool:
    return type(value) in _NUMBER_TYPES or (isinstance(value, (int, float)) and not isinstance(value, bool))


def _metric_value_ok(name: str, value: Any) -> bool:
    if name in ("additional_metrics", "provider_metrics"):
        return value is None or isinstance(value, dict)
    return value is None or _is_number(value)


def _place_alias(out: dict, keep: dict, alias: str, name: str, raw: Any, level: str) -> None:
    value = _summed(raw) if level == "run" else raw
    if value is None:
        return
    if out.get(name) is None and _is_number(value):
        out[name] = value
    elif out.get(name) != value:
        keep[alias] = raw


def _is_default_metric(value: Any) -> bool:
    if value is None:
        return True
    kind = type(value)
    if kind is int:
        return value == 0
    if kind is float or kind is bool:
        return False
    if isinstance(value, int) and not isinstance(value, bool):
        return value == 0
    return isinstance(value, dict) and not value


# --- runs ----------------------------------------------------------------------------------------


def v1_memory_runs(mode: str, runs: list) -> tuple[list, list]:
    """Converted runs of ``memory["runs"]`` for storage mode agent, team or workflow (v1).

    Elements are RunResponse/TeamRunResponse dicts (Memory v2), legacy AgentMemory
    ``{message, messages?, response}`` wrappers, or Workflow v1 ``{input, response}`` wrappers: the
    ``response`` is the run; a workflow ``input`` becomes the run's ``input``; the wrapper's other
    fields go to the run's ``metadata["agno_v1"]``. Returns (runs, unplaced) where unplaced lists
    ``{"index", "run"}`` for elements that hold no run object (kept, never dropped).
    """
    kind = _V1_ENTITY[mode]
    runs_out: list = []
    unplaced: list = []
    for index, element in enumerate(runs):
        run = _unwrap_v1_run(element, kind)
        if run is None:
            unplaced.append({"index": index, "run": element})
        else:
            runs_out.append(run)
    return runs_out, unplaced


def _unwrap_v1_run(element: Any, kind: str) -> dict | None:
    if not isinstance(element, dict):
        return None
    if "response" not in element or ("run_id" in element and kind != "workflow"):
        return convert_v1_run(element, kind)
    response = element["response"]
    if not isinstance(response, dict):
        return None
    wrapper = {k: v for k, v in element.items() if k != "response" and v is not None}
    if kind == "workflow" and "input" in wrapper and "input" not in response:
        response = {**response, "input": wrapper.pop("input")}
    return convert_v1_run(response, kind, wrapper)


def v1_workflow_v2_runs(runs: list | None) -> tuple[list, list]:
    """Converted runs of a workflow_v2 row's ``runs`` column (WorkflowRunResponse dicts, with their
    ``step_responses`` becoming ``step_results``). Returns (runs, unplaced) like v1_memory_runs."""
    runs_out: list = []
    unplaced: list = []
    for index, element in enumerate(runs or []):
        if isinstance(element, dict):
            runs_out.append(convert_v1_run(element, "workflow"))
        else:
            unplaced.append({"index": index, "run": element})
    return runs_out, unplaced


def convert_v1_run(run: dict, kind: str, wrapper: dict | None = None) -> dict:
    """One v1 run dict → the current run dict of ``kind`` (agent, team or workflow).

    Messages, metrics, tools, media, team ``member_responses`` (recursively, kept inside the team
    run) and workflow ``step_responses`` (→ ``step_results``) are converted; ``extra_data`` entries
    are lifted to their fields; ``thinking`` is merged into ``reasoning_content``
    (``"{thinking}\\n{reasoning_content}"``, as Agno does). Every v1 field the run class of ``kind``
    has no place for (formatted_tool_calls, team_session_id, events, an agent run's team_id, a
    workflow run's metrics, …) and the ``wrapper`` fields are kept verbatim in
    ``metadata["agno_v1"]``.
    """
    out = {k: v for k, v in run.items() if v is not None}
    keep: dict = dict(wrapper or {})
    _lift_extra_data(out, keep)
    _merge_thinking(out, keep, "thinking", "reasoning_content")
    _convert_run_parts(out, kind)
    for key in [k for k in out if k not in _V2_RUN_FIELDS[kind]]:
        keep[key] = run.get(key, out[key])
        del out[key]
    if keep:
        metadata = out.get("metadata")
        if metadata is not None and not isinstance(metadata, dict):
            keep["metadata"] = metadata
            metadata = None
        out["metadata"] = _with_reserve(metadata, keep)
    return out


def _convert_run_parts(out: dict, kind: str) -> None:
    for name in _MESSAGE_LISTS:
        if isinstance(out.get(name), list):
            out[name] = [convert_v1_message(m) for m in out[name]]
    if isinstance(out.get("metrics"), dict) and kind != "workflow":
        out["metrics"] = convert_v1_metrics(out["metrics"], "run")
    if isinstance(out.get("tools"), list):
        out["tools"] = [convert_v1_tool(t) for t in out["tools"]]
    for name in ("images", "videos", "audio", "response_audio"):
        if name in out:
            out[name] = convert_v1_media(out[name])
    if kind == "team" and isinstance(out.get("member_responses"), list):
        out["member_responses"] = [_convert_member(m) for m in out["member_responses"]]
    if kind == "workflow" and isinstance(out.get("step_responses"), list) and "step_results" not in out:
        executor_runs: list = []
        out["step_results"] = _convert_steps(out.pop("step_responses"), executor_runs)
        if executor_runs:
            out["step_executor_runs"] = executor_runs


def _member_kind(run: dict) -> str:
    """A team member run is a team run when it names a team and no agent (nested teams)."""
    if run.get("agent_id") is None and (run.get("team_id") is not None or run.get("team_name") is not None):
        return "team"
    return "agent"


def _convert_member(member: Any) -> Any:
    return convert_v1_run(member, _member_kind(member)) if isinstance(member, dict) else member


def _lift_extra_data(out: dict, keep: dict) -> None:
    """v1 ``extra_data`` → add_messages→additional_input, references, reasoning_steps,
    reasoning_messages, reasoning_content (a field already set with another value wins; the
    extra_data value is then kept). Unmapped entries stay in the reserve as ``extra_data``."""
    if "extra_data" not in out:
        return
    extra = out.pop("extra_data")
    if not isinstance(extra, dict):
        keep["extra_data"] = extra
        return
    rest = {}
    for key, value in extra.items():
        field = EXTRA_DATA_FIELDS.get(key)
        if field is None:
            rest[key] = value
        elif value is None or out.get(field) == value:
            continue
        elif out.get(field) is None:
            out[field] = value
        else:
            rest[key] = value
    if rest:
        keep["extra_data"] = rest


def _merge_thinking(out: dict, keep: dict, thinking: str, reasoning: str) -> None:
    """``thinking`` → ``reasoning_content`` (both present: ``"{thinking}\\n{reasoning}"``, the v1
    ``thinking`` also kept so the two can be told apart again)."""
    if thinking not in out:
        return
    value = out.pop(thinking)
    current = out.get(reasoning)
    if not current:
        out[reasoning] = value
    elif not value:
        return
    else:
        out[reasoning] = f"{value}\n{current}"
        keep[thinking] = value


def convert_v1_message(message: Any) -> Any:
    """A v1 Message dict → current: metrics converted (message level), ``thinking`` merged into
    ``reasoning_content`` and ``redacted_thinking`` into ``redacted_reasoning_content`` like runs;
    a value that has to give way is kept in ``message["agno_v1"]``."""
    if not isinstance(message, dict):
        return message
    out = {k: v for k, v in message.items() if v is not None}
    keep: dict = {}
    if "thinking" in out or "redacted_thinking" in out:
        _merge_thinking(out, keep, "thinking", "reasoning_content")
        _merge_thinking(out, keep, "redacted_thinking", "redacted_reasoning_content")
    metrics = out.get("metrics")
    if metrics is not None and isinstance(metrics, dict):
        metrics = convert_v1_metrics(metrics, "message")
        if metrics:
            out["metrics"] = metrics
        else:
            del out["metrics"]
    return _with_reserve(out, keep) if keep else out


def convert_v1_tool(tool: Any) -> Any:
    """A v1 ToolExecution dict: unchanged except its ``metrics`` (a v1 MessageMetrics), which are
    converted at message level so ``time`` becomes the ``duration`` Agno's ToolCallMetrics reads."""
    if isinstance(tool, dict) and isinstance(tool.get("metrics"), dict):
        return {**tool, "metrics": convert_v1_metrics(tool["metrics"], "message")}
    return tool


def convert_v1_media(value: Any) -> Any:
    """v1 media (one dict or a list) → current, deterministically (no new ids): VideoArtifact
    ``length`` → ``duration`` when a number, AudioArtifact ``base64_audio`` → ``content`` (when no
    content). Other fields are kept; base64 text stays text (Agno decodes it when reading)."""
    if isinstance(value, list):
        return [convert_v1_media(item) for item in value]
    if not isinstance(value, dict):
        return value
    out = dict(value)
    if _is_number(out.get("length")) and out.get("duration") is None:
        out["duration"] = out.pop("length")
    if "base64_audio" in out and out.get("content") is None:
        out["content"] = out.pop("base64_audio")
    return out


def _convert_steps(steps: list, executor_runs: list) -> list:
    """v1 ``step_responses`` (StepOutput dicts, nested lists for parallel steps) → ``step_results``."""
    return [_convert_step(step, executor_runs) for step in steps]


def _convert_step(step: Any, executor_runs: list) -> Any:
    """A v1 StepOutput → current: metrics converted (run level); ``response`` (the executor's run,
    which StepOutput no longer holds) → converted into the workflow run's ``step_executor_runs``
    and linked by ``step_run_id``; nested ``steps`` likewise."""
    if isinstance(step, list):
        return _convert_steps(step, executor_runs)
    if not isinstance(step, dict):
        return step
    out = {k: v for k, v in step.items() if k != "response"}
    response = step.get("response")
    if isinstance(response, dict):
        executor = convert_v1_run(response, _member_kind(response))
        executor_runs.append(executor)
        if out.get("step_run_id") is None and executor.get("run_id") is not None:
            out["step_run_id"] = executor["run_id"]
    elif response is not None:
        out["response"] = response
    if isinstance(out.get("metrics"), dict):
        out["metrics"] = convert_v1_metrics(out["metrics"], "run")
    if isinstance(out.get("steps"), list):
        out["steps"] = _convert_steps(out["steps"], executor_runs)
    return out


def strip_nul(value: Any) -> tuple[Any, int]:
    """``value`` with every NUL character removed from its strings (keys included), and how many
    were removed — for PostgreSQL, whose text and JSONB cannot hold NUL (other backends keep them)."""
    if isinstance(value, str):
        count = value.count("\x00")
        return (value.replace("\x00", ""), count) if count else (value, 0)
    if isinstance(value, dict):
        total, out = 0, {}
        for key, item in value.items():
            new_key, n_key = strip_nul(key)
            new_item, n_item = strip_nul(item)
            out[new_key] = new_item
            total += n_key + n_item
        return (out, total) if total else (value, 0)
    if isinstance(value, (list, tuple)):
        items = [strip_nul(item) for item in value]
        total = sum(n for _, n in items)
        if not total:
            return value, 0
        stripped = [item for item, _ in items]
        return (tuple(stripped) if isinstance(value, tuple) else stripped), total
    return value, 0
