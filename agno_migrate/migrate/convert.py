"""Pure functions that turn stored session data into current records (shared by SQL and Mongo).

No I/O here: values in, values out, deterministic (the same input gives the same output).
"""
from __future__ import annotations

import json
import uuid
from typing import Any, Iterable

RUN_ID_NAMESPACE = uuid.UUID("6f1d3c2a-5b7e-4f0a-9c1d-2e3f4a5b6c7d")
SESSION_TYPES = ("agent", "team", "workflow")


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
            decoded = json.loads(value)
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
