"""Which sessions: the filters that ``sessions list`` and ``export`` share (``--user-id``,
``--agent-id``, ``--team-id``, ``--workflow-id``, ``--since``, ``--session-type``).

One meaning for both: the store answers a :class:`Selection` with its own query
(:meth:`Selection.listing`, the keyword arguments of ``get_sessions``), a stream of head rows
with :meth:`Selection.matches`; a test checks that they pick the same sessions.

* ``user_id``: the session's ``user_id`` is this id.
* ``agent_id`` / ``team_id`` / ``workflow_id``: the sessions of that agent, team or workflow
  (a session of that type whose ``<type>_id`` is this id, as Agno's ``component_id`` filter); at most
  one of them, and none that contradicts ``session_type``.
* ``since``: created at or after this moment (seconds since the epoch; ``created_at >= since``).
* ``session_type``: ``agent``, ``team`` or ``workflow``.

No I/O: pure values and checks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from datetime import datetime, timezone
from typing import Any

from agno_migrate.errors import UsageError
from agno_migrate.sessions import SESSION_TYPES

_COMPONENTS = {"agent_id": "agent", "team_id": "team", "workflow_id": "workflow"}


@dataclass(frozen=True)
class Selection:
    """The sessions that match every given filter (None: no filter). Build it with
    :meth:`of`, which checks the values."""

    user_id: str | None = None
    agent_id: str | None = None
    team_id: str | None = None
    workflow_id: str | None = None
    since: int | None = None
    session_type: str | None = None

    @classmethod
    def of(
        cls,
        user_id: str | None = None,
        agent_id: str | None = None,
        team_id: str | None = None,
        workflow_id: str | None = None,
        since: Any = None,
        session_type: str | None = None,
    ) -> Selection:
        """A checked selection: ``since`` may be an int or float (seconds since the epoch), a
        ``datetime`` (naive: UTC) or text (an ISO 8601 date or date and time, naive: UTC, or
        epoch seconds). Raises UsageError for a value that is none of those, an unknown session
        type, two component ids, or a component id of another type than ``session_type``."""
        for name, value in (("user_id", user_id), ("agent_id", agent_id), ("team_id", team_id),
                            ("workflow_id", workflow_id)):  # fmt: skip
            if value is not None and not isinstance(value, str):
                raise UsageError(f"{name} must be a str, not {type(value).__name__}")
        if session_type is not None and session_type not in SESSION_TYPES:
            raise UsageError(f"session type must be one of {', '.join(SESSION_TYPES)}, not {session_type!r}")
        ids = {"agent_id": agent_id, "team_id": team_id, "workflow_id": workflow_id}
        given = [name for name, value in ids.items() if value is not None]
        if len(given) > 1:
            raise UsageError(f"give at most one of --agent-id, --team-id, --workflow-id (got {', '.join(given)})")
        if given and session_type is not None and _COMPONENTS[given[0]] != session_type:
            raise UsageError(
                f"--{given[0].replace('_', '-')} selects {_COMPONENTS[given[0]]} sessions, "
                f"not --session-type {session_type}"
            )
        return cls(user_id, agent_id, team_id, workflow_id, parse_since(since), session_type)

    @classmethod
    def named(cls, **filters: Any) -> Selection:
        """:meth:`of` by keyword; UsageError naming an unknown filter."""
        unknown = sorted(set(filters) - {f.name for f in fields(cls)})
        if unknown:
            raise UsageError(f"unknown filter {', '.join(unknown)} (filters: {', '.join(f.name for f in fields(cls))})")
        return cls.of(**filters)

    @property
    def component(self) -> tuple[str, str] | None:
        """(session type, id) of the agent, team or workflow selected, if one is."""
        for name, kind in _COMPONENTS.items():
            if getattr(self, name) is not None:
                return kind, getattr(self, name)
        return None

    @property
    def kind(self) -> str | None:
        """The session type selected (by ``session_type`` or by a component id), if any."""
        component = self.component
        return component[0] if component else self.session_type

    def listing(self) -> dict:
        """The keyword arguments of the store's ``get_sessions`` for this selection."""
        component = self.component
        return {
            "user_id": self.user_id,
            "session_type": self.kind,
            "component_id": component[1] if component else None,
            "start_timestamp": self.since,
        }

    def matches(self, row: dict) -> bool:
        """Whether a session row (as the sessions table holds it) is selected."""
        if self.kind is not None and row.get("session_type") != self.kind:
            return False
        if self.user_id is not None and row.get("user_id") != self.user_id:
            return False
        component = self.component
        if component is not None and row.get(f"{component[0]}_id") != component[1]:
            return False
        if self.since is not None:
            created = row.get("created_at")
            return isinstance(created, int) and created >= self.since
        return True

    def as_dict(self) -> dict:
        """The filters given (for reports and the export file's header)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}


def parse_since(value: Any) -> int | None:
    """``value`` as whole seconds since the epoch (a fraction rounds up: ``created_at`` is whole
    seconds, and ``created_at >= since`` must not take a session created before it)."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise UsageError(f"--since must be a date, a date and time or epoch seconds, not {value!r}")
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        return math.ceil(moment.timestamp())
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise UsageError(f"--since must be finite, not {value!r}")
        return math.ceil(value)
    if isinstance(value, str):
        text = value.strip()
        if text.lstrip("+-").replace(".", "", 1).isdigit():
            return parse_since(float(text))
        if text:
            iso = text[:-1] + "+00:00" if text[-1:] in ("Z", "z") else text
            try:
                return parse_since(datetime.fromisoformat(iso))
            except ValueError:
                pass
    raise UsageError(
        f"--since must be an ISO 8601 date or date and time (2025-01-31, 2025-01-31T12:00:00+02:00; "
        f"UTC unless it says otherwise) or seconds since the epoch, not {value!r}"
    )
