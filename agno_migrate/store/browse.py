"""Looking at the stored sessions from outside an application: ``sessions list`` and ``sessions show``.

Reads through the store (``get_sessions``, ``get_session``), so what is shown is what Agno 3.1 reads.
Unlike an application's first use, looking never creates a database: one without a session table
raises SchemaBehind (exit 1), as one behind head does (the store's own check and message).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

from agno_migrate import registry
from agno_migrate.errors import SchemaBehind, UnknownSession, UsageError
from agno_migrate.selection import Selection
from agno_migrate.sessions import Session
from agno_migrate.store import for_target
from agno_migrate.store.base import SessionStore

DEFAULT_LIMIT = 20


@dataclass
class Page:
    """One page of a listing, newest first: the sessions (with their runs), the count of every
    match, and where the page stands."""

    sessions: list[Session]
    total: int
    page: int
    limit: int
    selection: Selection

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.limit))

    def as_dict(self) -> dict:
        return {
            "sessions": [listed(session) for session in self.sessions],
            "total": self.total,
            "page": self.page,
            "pages": self.pages,
            "limit": self.limit,
            "filters": self.selection.as_dict(),
        }


def listed(session: Session) -> dict:
    """What a listing shows of a session: its row without the JSON columns, its name, and its
    number of runs."""
    return {
        "session_id": session.session_id,
        "session_type": session.session_type,
        "agent_id": session.agent_id,
        "team_id": session.team_id,
        "workflow_id": session.workflow_id,
        "user_id": session.user_id,
        "session_name": session.session_name,
        "created_at": session.created_at,
        "updated_at": session.updated_at,
        "runs": len(session.runs),
    }


@contextlib.contextmanager
def reading(db) -> Iterator[SessionStore]:
    """The store of ``db`` (URL, Target or Agno ``Db``), for reads only, closed afterwards. A database
    without a session table raises SchemaBehind (it is not created); one behind head raises the
    store's SchemaBehind; one at head that agno-migrate does not manage yet is recorded, as the store
    does on first use."""
    store = for_target(db)
    try:
        if store._recorded_version() is None:
            from agno_migrate.migrate import runner

            if runner.current(store.target).version is None:
                raise SchemaBehind(
                    f"{store.target.masked_url} has no {store.target.session_table} table (head is "
                    f"{registry.HEAD.version}): nothing to read; run agno-migrate upgrade to create it",
                    found=None,
                )
        yield store
    finally:
        store.close()


def list_sessions(db, selection: Selection | None = None, limit: int = DEFAULT_LIMIT, page: int = 1) -> Page:
    """A page of the sessions ``selection`` picks (every session without one), newest first (by
    ``created_at``, ties by ``session_id``). ``page`` counts from 1. Raises UsageError for a limit
    below 1 or a page below 1, SchemaBehind for a database behind head or without a session table."""
    selection = selection or Selection()
    for name, value in (("limit", limit), ("page", page)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UsageError(f"{name} must be an int from 1, not {value!r}")
    with reading(db) as store:
        sessions, total = store.get_sessions(
            **selection.listing(), limit=limit, page=page, sort_by="created_at", sort_order="desc"
        )
    return Page(sessions, total, page, limit, selection)


def show_session(db, session_id: str) -> Session:
    """The session ``session_id`` with its runs in order. Raises UnknownSession (exit 2) when there
    is none, SchemaBehind for a database behind head or without a session table."""
    if not isinstance(session_id, str) or not session_id:
        raise UsageError(f"a session id is a non-empty str, not {session_id!r}")
    with reading(db) as store:
        session = store.get_session(session_id)
    if session is None:
        raise UnknownSession(f"no session {session_id!r} in {store.target.masked_url}")
    return session


# --- text for a person ---------------------------------------------------------------------------

TRIM = 200  # characters of a message, a state or a summary shown unless in full
_CELL = {"session_id": 40, "component": 24, "user_id": 24, "session_name": 40}


def when(seconds, zone: str = "") -> str:
    """Epoch seconds as UTC date and time, followed by ``zone`` (``-`` for none)."""
    from datetime import datetime, timezone

    if not isinstance(seconds, int) or isinstance(seconds, bool):
        return "-" if seconds is None else str(seconds)
    try:
        return datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S") + zone
    except (OverflowError, OSError, ValueError):
        return str(seconds)


def trimmed(text: str, limit: int | None) -> str:
    """``text`` on one line, cut at ``limit`` characters (None: whole) saying how much was left out."""
    text = " ".join(str(text).split())
    if limit is None or len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit} more characters)"


def page_lines(page: Page, full: bool = False) -> list[str]:
    """The page as a table, one session a line, then where the page stands (cells trimmed unless ``full``)."""
    if not page.sessions:
        what = "no sessions match" if page.selection.as_dict() else "no sessions"
        return [f"{what}" + (f" (page {page.page} of {page.pages}, {page.total} in all)" if page.total else "")]
    header = ("SESSION", "TYPE", "AGENT/TEAM/WORKFLOW", "USER", "CREATED (UTC)", "RUNS", "NAME")
    rows = []
    for session in page.sessions:
        cells = {
            "session_id": session.session_id,
            "component": session.component_id or "-",
            "user_id": session.user_id or "-",
            "session_name": session.session_name or "",
        }
        if not full:
            cells = {k: v if len(v) <= _CELL[k] else v[: _CELL[k] - 1] + "…" for k, v in cells.items()}
        rows.append((cells["session_id"], session.session_type, cells["component"], cells["user_id"],
                     when(session.created_at), str(len(session.runs)), cells["session_name"]))  # fmt: skip
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header) - 1)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)) + "  " + row[-1] for row in
             [header, *rows]]  # fmt: skip
    first = (page.page - 1) * page.limit + 1
    where = f"page {page.page} of {page.pages}: sessions {first}-{first + len(rows) - 1} of {page.total}, newest first"
    if page.page < page.pages:
        where += f"; next: --page {page.page + 1}"
    return [line.rstrip() for line in lines] + [where]


def session_lines(session: Session, full: bool = False) -> list[str]:
    """The session for a person: who and when, its state, summary and metrics, then each run with
    its messages (``role: content``, each trimmed to TRIM characters unless ``full``; messages an
    agent copied from history are counted, not repeated)."""
    import json

    limit = None if full else TRIM

    def value(data) -> str:
        return trimmed(data if isinstance(data, str) else json.dumps(data, ensure_ascii=False, default=str), limit)

    who = [f"{kind}: {ident}" for kind, ident in (
        (session.session_type, session.component_id), ("user", session.user_id)) if ident]  # fmt: skip
    lines = [f"session {session.session_id} ({session.session_type})" + (f"  {'  '.join(who)}" if who else "")]
    if session.session_name:
        lines.append(f"  name: {trimmed(session.session_name, limit)}")
    lines.append(f"  created: {when(session.created_at, ' UTC')}  updated: {when(session.updated_at, ' UTC')}")
    data = session.session_data or {}
    lines.append(f"state: {value(data.get('session_state')) if data.get('session_state') is not None else '-'}")
    summary = session.summary
    if isinstance(summary, dict) and isinstance(summary.get("summary"), str):
        topics = summary.get("topics")
        lines.append(
            f"summary: {trimmed(summary['summary'], limit)}" + (f"  (topics: {value(topics)})" if topics else "")
        )
    else:
        lines.append(f"summary: {value(summary) if summary is not None else '-'}")
    metrics = data.get("session_metrics")
    if isinstance(metrics, dict):
        shown = {k: v for k, v in metrics.items() if v not in (None, 0, 0.0, {}, [])}
        # "name: value" (credential masking reads "...token=value" as a secret)
        lines.append("metrics: " + (", ".join(f"{k}: {v}" for k, v in shown.items()) if shown else "-"))
    else:
        lines.append(f"metrics: {value(metrics) if metrics is not None else '-'}")
    lines.append(f"runs: {len(session.runs)}")
    for number, run in enumerate(session.runs, 1):
        parent = f"  (member run of {run.parent_run_id})" if run.parent_run_id else ""
        lines.append(f"  run {number}/{len(session.runs)} {run.run_id}  {run.status or '-'}  "
                     f"{when(run.created_at, ' UTC')}{parent}")  # fmt: skip
        messages = run.get("messages") if isinstance(run.get("messages"), list) else []
        earlier = 0
        for message in messages:
            if not isinstance(message, dict):
                lines.append(f"    ? {value(message)}")
                continue
            if message.get("from_history") in (True, "True", "true"):
                earlier += 1
                continue
            lines.append(f"    {message.get('role', '?')}: {_content(message, value)}")
        if earlier:
            lines.append(f"    ({earlier} message(s) from earlier runs, copied as history, not shown)")
        if not messages and run.get("content") is not None:
            lines.append(f"    content: {value(run.get('content'))}")
    return lines


def _content(message: dict, value) -> str:
    """A message's content as text; a tool call without content by its tool names."""
    content = message.get("content")
    if content in (None, "", []) and message.get("tool_calls"):
        names = [(call.get("function") or {}).get("name", "?") if isinstance(call, dict) else "?"
                 for call in message["tool_calls"]]  # fmt: skip
        return f"[tool call: {', '.join(names)}]"
    return value(content) if content is not None else "-"
