"""Session records (agent / team / workflow) and their (de)serialisation.

A session has the 15 fields of the sessions table of the seeds; ``runs`` is a list of :class:`Run`
(the run's dict, with ``run_id``, ``status`` and ``created_at`` at hand). Physically runs live in
the runs table, one row per run; the store fills ``runs`` in ``run_index`` order.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, fields
from operator import attrgetter
from typing import Any

from agno_migrate.jsoncodec import decode_json

SESSION_TYPES = ("agent", "team", "workflow")
HISTORY_SKIP_STATUSES = ("PAUSED", "CANCELLED", "ERROR", "REGENERATED")  # as Agno 3.1


class Run(dict):
    """One run: the run's own dict (what Agno's ``RunOutput.to_dict()`` gives)."""

    @property
    def run_id(self) -> str | None:
        return self.get("run_id")

    @property
    def status(self) -> str | None:
        return self.get("status")

    @property
    def created_at(self) -> int | None:
        return self.get("created_at")

    @property
    def parent_run_id(self) -> str | None:
        return self.get("parent_run_id")

    @property
    def messages(self) -> list[dict]:
        return list(self.get("messages") or [])


@dataclass
class Session:
    """A stored session. Use :class:`AgentSession`, :class:`TeamSession` or :class:`WorkflowSession`."""

    session_id: str
    session_type: str = "agent"
    agent_id: str | None = None
    team_id: str | None = None
    workflow_id: str | None = None
    user_id: str | None = None
    session_data: dict | None = None
    agent_data: dict | None = None
    team_data: dict | None = None
    workflow_data: dict | None = None
    metadata: dict | None = None
    runs: list[Run] = field(default_factory=list)
    summary: dict | None = None
    created_at: int | None = None
    updated_at: int | None = None

    def __post_init__(self):
        if self.session_type not in SESSION_TYPES:
            raise ValueError(f"session_type must be one of {SESSION_TYPES}, not {self.session_type!r}")
        self.runs = [r if isinstance(r, Run) else Run(r) for r in (self.runs or [])]

    @property
    def component_id(self) -> str | None:
        return getattr(self, f"{self.session_type}_id")

    @property
    def session_name(self) -> str | None:
        return (self.session_data or {}).get("session_name")

    @property
    def session_state(self) -> dict | None:
        return (self.session_data or {}).get("session_state")

    def to_dict(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["runs"] = [dict(r) for r in self.runs]
        return out

    def row(self, now: int | None = None) -> dict:
        """The sessions-table row of this session (without runs); timestamps default to now."""
        now = int(time.time()) if now is None else now
        found = _ROW_FIELDS.get(self.__class__)
        if found is None:  # (dataclasses.fields() is slow enough to show in a small upsert)
            names = tuple(f.name for f in fields(self) if f.name != "runs")
            found = _ROW_FIELDS[self.__class__] = (names, attrgetter(*names))
        names, values_of = found
        out = dict(zip(names, values_of(self), strict=True))
        out["created_at"] = self.created_at if self.created_at is not None else now
        out["updated_at"] = self.updated_at if self.updated_at is not None else now
        return out

    @classmethod
    def from_row(cls, row: dict, runs: list[dict] | None = None) -> Session:
        """A session from a sessions-table row (any JSON encoding: objects, text, double-encoded)."""
        values = {f.name: row.get(f.name) for f in fields(cls) if f.name != "runs"}
        for name in JSON_FIELDS:
            values[name] = decode_json(values[name])
        kind = SESSION_CLASSES.get(values["session_type"], cls)
        return kind(**values, runs=runs or [])


_ROW_FIELDS: dict[type, tuple] = {}  # a session class -> (its fields but runs, in order; their getter)

JSON_FIELDS = tuple(f.name for f in fields(Session) if f.type == "dict | None")
"""A session's JSON fields (its dict-typed ones), in order: the head session table's JSON columns
(``schema.JSON_COLUMNS``, which this module, below ``schema``, does not import)."""


@dataclass
class AgentSession(Session):
    session_type: str = "agent"


@dataclass
class TeamSession(Session):
    session_type: str = "team"


@dataclass
class WorkflowSession(Session):
    session_type: str = "workflow"


SESSION_CLASSES = {"agent": AgentSession, "team": TeamSession, "workflow": WorkflowSession}


def merge_runs(table_runs: list[dict], legacy_runs: Any) -> list[Run]:
    """The runs of a session: the runs-table rows merged with a legacy ``runs`` blob still present.

    As Agno 3.1 does: walk the legacy blob in its order, taking the table's copy of a run when the
    id is in both; then append the runs only the table knows, in ``run_index`` order.
    """
    try:
        legacy = decode_json(legacy_runs)
    except ValueError:
        legacy = None
    if not isinstance(legacy, list) or not legacy:
        return [Run(r) for r in table_runs]
    by_id = {r.get("run_id"): r for r in table_runs if r.get("run_id") is not None}
    merged, seen = [], set()
    for run in legacy:
        if isinstance(run, dict) and run.get("run_id") is not None:
            seen.add(run["run_id"])
            merged.append(Run(by_id.get(run["run_id"], run)))
    merged += [Run(r) for r in table_runs if r.get("run_id") not in seen]
    return merged


def chat_messages(runs: list[Run], last_n_runs: int | None = None) -> list[dict]:
    """The messages an agent adds to its context: of the top-level, finished runs (the last
    ``last_n_runs`` of them), without history copies; the system message once, first."""
    top = [r for r in runs if not r.parent_run_id and r.status not in HISTORY_SKIP_STATUSES]
    if last_n_runs is not None:
        top = top[-last_n_runs:] if last_n_runs > 0 else []
    system, out = None, []
    for run in top:
        for message in run.messages:
            if message.get("from_history"):
                continue
            if message.get("role") == "system":
                if system is None:
                    system = message
                continue
            out.append(message)
    return ([system] if system else []) + out
