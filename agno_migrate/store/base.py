"""SessionStore: the schema semantics every backend shares.

* A brand-new database is created at head on first use, whatever the flag.
* A database behind head: with ``auto_upgrade_schema=True`` the first use upgrades it (locked,
  exactly as ``agno-migrate upgrade``); otherwise every call raises SchemaBehind naming the version
  found and the command to run. ``upgrade_schema()`` always upgrades, whatever the flag.
* A database ahead of this tool raises SchemaAhead.
The "at head?" check (one query of our version table, and a look for Agno 1.x tables still to
import) is done once per store object.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterable
from operator import attrgetter

from agno_migrate import backends, convert, registry
from agno_migrate.errors import SchemaBehind, UsageError
from agno_migrate.sessions import JSON_FIELDS, SESSION_TYPES, Run, Session, chat_messages
from agno_migrate.storable import check_value, plain
from agno_migrate.target import Target

SORTABLE = ("created_at", "updated_at", "session_id", "user_id", "session_type")


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_listing(sort_by: str, sort_order: str, limit: int | None, page: int | None, timestamps: tuple = ()) -> None:
    """Raise UsageError for a listing request no backend can answer (the same on every backend:
    a limit is an int from 0, a page an int from 1, timestamps ints)."""
    if sort_by not in SORTABLE:
        raise UsageError(f"sort_by must be one of {', '.join(SORTABLE)}")
    if sort_order not in ("asc", "desc"):
        raise UsageError("sort_order must be 'asc' or 'desc'")
    if limit is not None and not (_is_int(limit) and limit >= 0):
        raise UsageError(f"limit must be an int from 0 (or None for every session), not {limit!r}")
    if page is not None and not (_is_int(page) and page >= 1 and limit is not None):
        raise UsageError(f"page must be an int counting from 1, given with a limit, not {page!r}")
    for name, value in timestamps:
        if value is not None and not _is_int(value):
            raise UsageError(f"{name} must be an int (seconds since the epoch) or None, not {value!r}")


_ID_FIELDS = ("agent_id", "team_id", "workflow_id", "user_id")
_ids_of, _data_of = attrgetter(*_ID_FIELDS), attrgetter(*JSON_FIELDS)  # a session's values, as tuples


def check_session(session) -> None:
    """Raise UsageError naming the field when ``session`` is not one every backend stores as given."""
    if not isinstance(session, Session):
        raise UsageError(
            f"pass a Session (AgentSession, TeamSession or WorkflowSession), not a {type(session).__name__}"
        )
    if not isinstance(session.session_id, str) or not session.session_id:
        raise UsageError(f"session_id must be a non-empty str, not {session.session_id!r}")
    # one quick walk of every value (and run) first: when it passes, no check_value below can fail,
    # and none is made; a field's name is written out only for an error (most calls raise none)
    runs = session.runs if isinstance(session.runs, list) else ()
    ids = _ids_of(session)
    data = _data_of(session)
    checked = plain(session.session_id, *ids, *data, *runs)
    if not checked:
        _check_field(session.session_id, session, "session_id")
    if session.session_type not in SESSION_TYPES:
        raise UsageError(f"{_field(session)}: session_type must be one of {', '.join(SESSION_TYPES)}")
    for name, value in zip(_ID_FIELDS, ids, strict=True):
        if value is not None and not isinstance(value, str):
            raise UsageError(f"{_field(session)}: {name} must be a str or None, not {type(value).__name__}")
        if not checked:
            _check_field(value, session, name)
    for name in ("created_at", "updated_at"):
        value = getattr(session, name)
        if value is not None and not _is_int(value):
            raise UsageError(
                f"{_field(session)}: {name} must be an int (seconds since the epoch) or None, not {value!r}"
            )
    if not checked:
        for name, value in zip(JSON_FIELDS, data, strict=True):
            _check_field(value, session, name)
    if not isinstance(session.runs, list):
        raise UsageError(f"{_field(session)}: runs must be a list of dicts, not {type(session.runs).__name__}")
    for index, run in enumerate(session.runs):
        _check_run_shape(run, (session, index))
        if not checked:
            _check_field(run, session, index)


def _field(session: Session, name: str | int | None = None) -> str:
    """How an error names ``session`` (``name`` None), one of its fields, or (an int) one of its runs."""
    where = f"session {session.session_id!r}"
    if name is None:
        return where
    return f"{where} runs[{name}]" if isinstance(name, int) else f"{where} {name}"


def _check_field(value, session: Session, name: str | int) -> None:
    """check_value for a field (or run: ``name`` an int) of ``session``."""
    check_value(value, _field(session, name))


def check_name(name) -> None:
    """Raise UsageError unless ``name`` is a session name every backend stores (text)."""
    if not isinstance(name, str):
        raise UsageError(f"a session name is a str, not a {type(name).__name__}")
    check_value(name, "session name")


def check_run(run, where: str = "run") -> None:
    """Raise UsageError when ``run`` is not a dict every backend stores as given."""
    _check_run_shape(run, where)
    check_value(run, where)


def _check_run_shape(run, where: str | tuple) -> None:
    """Raise UsageError unless ``run`` is a dict whose ``run_id``, if any, is text; ``where`` names it
    (or is a session and the run's index: :func:`_field`)."""
    if not isinstance(run, dict):
        where = where if isinstance(where, str) else _field(*where)
        raise UsageError(f"{where} must be a dict (a run as Agno stores it), not a {type(run).__name__}")
    run_id = run.get("run_id")
    if run_id is not None and not isinstance(run_id, str):
        where = where if isinstance(where, str) else _field(*where)
        raise UsageError(f"{where}: run_id must be a str, not {type(run_id).__name__}")


def with_run_id(run: dict) -> Run:
    """``run`` as a Run with a ``run_id``: a run without one is new, so it gets a fresh id (as Agno's
    runs always have), written into the caller's dict so that saving it again updates it."""
    if not run.get("run_id"):
        run["run_id"] = str(uuid.uuid4())
    return run if isinstance(run, Run) else Run(run)


class SessionStore:
    """Base of the session stores. Subclasses implement the session methods on their backend."""

    def __init__(self, target: Target, auto_upgrade_schema: bool = False):
        self.target = target
        self.auto_upgrade_schema = auto_upgrade_schema
        self._schema_ok = False
        self._schema_lock = threading.Lock()

    def close(self) -> None:
        """Close the store's connections (engine or client); a later call opens new ones."""
        backends.dispose(self.target)

    # --- schema ---------------------------------------------------------------------------------

    @property
    def schema_version(self) -> str | None:
        """The database's schema version (recorded, or detected when not managed); None if empty."""
        from agno_migrate.migrate import runner

        return runner.current(self.target).version

    def upgrade_schema(self, to: str = "head"):
        """Upgrade the database to ``to`` now, whatever ``auto_upgrade_schema`` says (locked, as the
        CLI). Returns the runner's Outcome."""
        from agno_migrate.migrate import runner

        outcome = runner.upgrade(self.target, to=to)
        self._schema_ok = outcome.after == registry.HEAD.version
        return outcome

    def _ensure_schema(self) -> None:
        """Once per store object: make sure the database is at head (see the module docstring)."""
        if self._schema_ok:
            return
        with self._schema_lock:
            if self._schema_ok:
                return
            found = self._recorded_version()
            from agno_migrate.migrate import runner

            # at head, Agno 1.x tables may still be importing (another process holds the lock): this
            # store must wait for them (auto_upgrade_schema) or refuse, not read a partial database; a
            # table whose import is over but left unreadable rows (for the user to repair or accept:
            # ``check`` fails) does not hold the store back
            if found == registry.HEAD.version and not runner.legacy_pending(self.target, unreadable=False):
                self._schema_ok = True
                return
            status = runner.current(self.target) if found in (None, registry.HEAD.version) else None
            if found is None and not status.legacy_pending and status.version in (None, registry.HEAD.version):
                self.upgrade_schema()  # brand new: create at head; unmanaged at head: record it
                return
            if not self.auto_upgrade_schema:
                what = f"schema {found or status.version}" if (found or status.version) else "no session table"
                if status is not None and status.legacy_pending:
                    what += f" and Agno 1.x tables not imported ({', '.join(status.legacy_pending)})"
                raise SchemaBehind(
                    f"{self.target.session_table} has {what}, head is {registry.HEAD.version}: run "
                    f"`agno-migrate upgrade` (or pass auto_upgrade_schema=True, or call upgrade_schema())",
                    found=found or (status.version if status else None),
                )
            self.upgrade_schema()

    def _recorded_version(self) -> str | None:
        """One query: the version our version table records (None if the table is missing)."""
        raise NotImplementedError

    # --- what every backend does the same way -----------------------------------------------------

    def upsert_session(self, session: Session, preserve_updated_at: bool = False) -> Session:
        """Write ``session`` and its runs (each run inserted or updated by ``run_id``; runs already
        stored and absent from ``session.runs`` are kept). Returns the session."""
        self.upsert_sessions([session], preserve_updated_at=preserve_updated_at)
        return session

    def upsert_sessions(self, sessions: Iterable[Session], preserve_updated_at: bool = False) -> list[Session]:
        raise NotImplementedError

    def delete_session(self, session_id: str) -> bool:
        """Delete the session and its runs; False if there was no such session."""
        return self.delete_sessions([session_id]) == 1

    def delete_sessions(self, session_ids: Iterable[str]) -> int:
        raise NotImplementedError

    def get_session(
        self, session_id: str, session_type: str | None = None, user_id: str | None = None
    ) -> Session | None:
        raise NotImplementedError

    def get_messages(self, session_id: str, last_n_runs: int | None = None) -> list[dict]:
        """The chat history an agent adds to its context (see ``sessions.chat_messages``)."""
        session = self.get_session(session_id)
        return chat_messages(session.runs, last_n_runs) if session else []

    @staticmethod
    def _session_rows(sessions: list[Session], preserve_updated_at: bool) -> tuple[int, list[dict], list[dict]]:
        """(now, the sessions' rows, their runs' rows) for an upsert. Sets the sessions' timestamps
        (``updated_at`` = now unless preserved, ``created_at`` = now if unset) and gives runs without
        an id one. Run rows carry ``run_index`` = the position in the session's list; the backend
        replaces it for new runs (after the stored ones) and keeps the stored one for known runs."""
        now = int(time.time())
        rows, run_rows = [], []
        for session in sessions:  # every session checked before any is changed or written
            check_session(session)
        for session in sessions:
            if not preserve_updated_at or session.updated_at is None:
                session.updated_at = now
            if session.created_at is None:
                session.created_at = now
            rows.append(session.row(now))
            if not session.runs:
                continue
            for run in session.runs:
                with_run_id(run)
            built, _ = convert.run_rows(rows[-1], session.runs)
            for row in built:
                row["updated_at"] = now
            run_rows += built
        return now, rows, run_rows
