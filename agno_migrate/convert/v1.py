"""Agno 1.x session rows → current sessions rows (and their runs, see ``v1_runs``); summaries.

What has no place in the current schema is kept under ``agno_v1`` keys (see ``reserve``).
"""

from __future__ import annotations

from typing import Any

from agno_migrate.convert.metrics import convert_v1_metrics
from agno_migrate.convert.reserve import with_reserve
from agno_migrate.convert.v1_runs import V1_ENTITY, v1_memory_runs, v1_workflow_v2_runs
from agno_migrate.jsoncodec import decode_json

V1_SESSION_TYPES = V1_ENTITY
"""Agno 1.x storage mode -> the ``session_type`` of its converted sessions."""
_V1_ROW_KEYS = {"session_id", "user_id", "memory", "session_data", "extra_data", "created_at", "updated_at"}
_MONGO_ID = "_id"  # MongoDB's own document id (an ObjectId): not Agno data, never JSON


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
    entity = V1_ENTITY[mode]
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
        "session_data": with_reserve(convert_v1_session_data(session_data), reserve),
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
    objects, and any column this converter does not know (MongoDB's ``_id`` and the document version
    counter ``_version`` that 1.x's MongoDbStorage kept for itself excepted: bookkeeping of the store,
    not of the session, which no SQL storage of 1.x had)."""
    known = _V1_ROW_KEYS | {f"{V1_ENTITY[mode]}_id", f"{V1_ENTITY[mode]}_data", _MONGO_ID, "_version"}
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


def fill_created_at(session_row: dict) -> bool:
    """Give a converted session without ``created_at`` (NULL in its Agno 1.x row, which
    :func:`convert_v1_session` keeps as it is) its ``updated_at``, else 0: the head schema requires
    one. Changes ``session_row``; returns whether it did (the import reports each such session)."""
    if session_row["created_at"] is not None:
        return False
    session_row["created_at"] = session_row["updated_at"] or 0
    return True


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
