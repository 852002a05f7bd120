"""The session store on SQLite, PostgreSQL and MySQL/MariaDB, with SQLAlchemy Core on the head schema.

Writes are one transaction per call; bulk calls use one statement per table. Runs live in the
runs table, one row per run; reads return them in ``run_index`` order, merged with any legacy
``runs`` blob still present in the sessions table (as Agno 3.1 reads them).
"""
from __future__ import annotations

import time
from collections.abc import Iterable

import sqlalchemy as sa

from ..errors import RunIdTaken
from ..migrate import convert
from ..migrate import sql as migrate_sql
from ..migrate.connect import connect, database_errors
from ..schema import head_tables
from ..sessions import Run, Session, merge_runs
from ..target import Target
from .base import SORTABLE, SessionStore, check_listing, with_run_id  # noqa: F401  (SORTABLE: re-exported)

ID_CHUNK = 500


class SqlStore(SessionStore):
    """A session store on a SQL database (see :func:`agno_migrate.store.connect`)."""

    def __init__(self, target: Target, auto_upgrade_schema: bool = False):
        super().__init__(target, auto_upgrade_schema)
        head = head_tables(target)
        self._sessions = head.sessions
        self._runs = head.runs
        self._legacy_runs = None
        self._statements: dict = {}

    # --- plumbing -------------------------------------------------------------------------------

    def _recorded_version(self) -> str | None:
        with connect(self.target, readonly=True) as conn, database_errors(self.target):
            version = migrate_sql.recorded_version(conn, self.target, probe=True)
            if version is not None:
                self._legacy_runs = self._find_legacy_runs_column(conn)
            return version

    def _find_legacy_runs_column(self, conn):
        columns = {c["name"] for c in sa.inspect(conn).get_columns(self._sessions.name, schema=self._sessions.schema)}
        if "runs" not in columns:
            return None
        return sa.literal_column("runs")  # unqualified: only the sessions table is in those FROMs

    def upgrade_schema(self, to: str = "head"):
        outcome = super().upgrade_schema(to)
        with connect(self.target, readonly=True) as conn:
            self._legacy_runs = self._find_legacy_runs_column(conn)
        return outcome

    def _write(self):
        self._ensure_schema()
        return _Transaction(self.target, readonly=False)

    def _read(self):
        self._ensure_schema()
        return _Transaction(self.target, readonly=True)

    def _upsert(self, conn, table: sa.Table, rows: list[dict], keep: tuple[str, ...] = ("created_at",)) -> None:
        """Insert ``rows``, updating those whose primary key exists (``keep`` columns untouched)."""
        if rows:
            conn.execute(self._upsert_statement(table, keep), rows)

    def _upsert_statement(self, table: sa.Table, keep: tuple[str, ...]):
        """The dialect's INSERT ... ON CONFLICT / ON DUPLICATE KEY statement, built once per store."""
        cache_key = (table.name, keep)
        stmt = self._statements.get(cache_key)
        if stmt is not None:
            return stmt
        key = {c.name for c in table.primary_key.columns}
        update = [c.name for c in table.columns if c.name not in key and c.name not in keep]
        backend = self.target.backend
        if backend == "mysql":
            from sqlalchemy.dialects.mysql import insert

            stmt = insert(table)
            stmt = stmt.on_duplicate_key_update({name: stmt.inserted[name] for name in update})
        else:
            if backend == "postgresql":
                from sqlalchemy.dialects.postgresql import insert
            else:
                from sqlalchemy.dialects.sqlite import insert
            stmt = insert(table)
            stmt = stmt.on_conflict_do_update(index_elements=sorted(key), set_={n: stmt.excluded[n] for n in update})
        self._statements[cache_key] = stmt
        return stmt

    # --- writes ---------------------------------------------------------------------------------

    def upsert_sessions(self, sessions: Iterable[Session], preserve_updated_at: bool = False) -> list[Session]:
        """Bulk :meth:`upsert_session`: one transaction, one statement per table.

        A run already stored keeps its position; new runs go after the session's last stored run,
        in list order. A run id that belongs to another session raises RunIdTaken (nothing written).
        """
        sessions = list(sessions)
        _, rows, run_rows = self._session_rows(sessions, preserve_updated_at)
        with self._write() as conn:
            self._place_runs(conn, run_rows)
            self._upsert(conn, self._sessions, rows)
            self._upsert(conn, self._runs, run_rows, keep=("created_at", "session_id", "run_index"))
        return sessions

    def _place_runs(self, conn, run_rows: list[dict]) -> None:
        """Give new runs the positions after their session's stored runs; refuse foreign run ids."""
        r = self._runs
        owners: dict = {}
        ids = [row["run_id"] for row in run_rows]
        for start in range(0, len(ids), ID_CHUNK):
            query = sa.select(r.c.run_id, r.c.session_id).where(r.c.run_id.in_(ids[start : start + ID_CHUNK]))
            owners.update(conn.execute(query).all())
        sessions = list({row["session_id"] for row in run_rows})
        following: dict = {}
        for start in range(0, len(sessions), ID_CHUNK):
            chunk = sessions[start : start + ID_CHUNK]
            query = sa.select(r.c.session_id, sa.func.max(r.c.run_index)).where(r.c.session_id.in_(chunk))
            following.update({sid: top + 1 for sid, top in conn.execute(query.group_by(r.c.session_id)) if top is not None})
        for row in run_rows:
            owner = owners.get(row["run_id"])
            if owner is not None and owner != row["session_id"]:
                raise RunIdTaken(f"run {row['run_id']!r} belongs to session {owner!r}, not {row['session_id']!r}")
            if owner is None:
                row["run_index"] = following.get(row["session_id"], 0)
                following[row["session_id"]] = row["run_index"] + 1

    def upsert_run(self, session_id: str, run: dict) -> Run:
        """Append ``run`` to the session (or update it in place, by ``run_id``) without rewriting the
        session's other runs. Raises KeyError if the session does not exist, RunIdTaken if the run
        id belongs to another session. The session row is locked first, so concurrent writers to one
        session queue up and each run gets its own position."""
        run = with_run_id(Run(run))
        now = int(time.time())
        r = self._runs
        with self._write() as conn:
            owner = self._touch_session(conn, session_id, now)
            if owner is None:
                raise KeyError(f"no session {session_id!r}")
            (row,), _ = convert.run_rows({**owner, "session_id": session_id}, [run])
            taken_by, index = conn.execute(self._run_place_query, {"sid": session_id, "rid": run.run_id}).one()
            if taken_by is not None and taken_by != session_id:
                raise RunIdTaken(f"run {run.run_id!r} belongs to session {taken_by!r}, not {session_id!r}")
            # a new run goes last; an existing one keeps its position (run_index is not updated)
            row.update(run_index=index, updated_at=now, run_data=dict(run))
            self._upsert(conn, r, [row], keep=("created_at", "session_id", "run_index"))
        return run

    def _touch_session(self, conn, session_id: str, now: int):
        """Bump the session's updated_at, locking its row first thing (so concurrent writers to one
        session queue up), and return what a run row needs from it; None if there is no session."""
        s = self._sessions
        cols = [s.c.session_type, s.c.user_id, s.c.agent_id, s.c.team_id, s.c.workflow_id, s.c.created_at]
        touch = sa.update(s).where(s.c.session_id == session_id).values(updated_at=now)
        if self.target.backend == "mysql":  # MariaDB has no UPDATE ... RETURNING
            owner = conn.execute(sa.select(*cols).where(s.c.session_id == session_id).with_for_update()).mappings().first()
            if owner is not None:
                conn.execute(touch)
            return owner
        return conn.execute(touch.returning(*cols)).mappings().first()

    @property
    def _run_place_query(self):
        """(the session owning run ``rid`` or None, the next position in session ``sid``)."""
        r = self._runs
        owner = sa.select(r.c.session_id).where(r.c.run_id == sa.bindparam("rid")).scalar_subquery()
        following = sa.select(sa.func.coalesce(sa.func.max(r.c.run_index) + 1, 0))
        following = following.where(r.c.session_id == sa.bindparam("sid")).scalar_subquery()
        return sa.select(owner, following)

    def rename_session(self, session_id: str, name: str) -> Session | None:
        """Set the session's name (``session_data.session_name``); None if there is no such session."""
        s = self._sessions
        with self._write() as conn:
            data = conn.execute(sa.select(s.c.session_data).where(s.c.session_id == session_id)).first()
            if data is None:
                return None
            session_data = convert.decode_json(data[0]) or {}
            session_data["session_name"] = name
            conn.execute(
                sa.update(s).where(s.c.session_id == session_id).values(session_data=session_data, updated_at=int(time.time()))
            )
        return self.get_session(session_id)

    def delete_sessions(self, session_ids: Iterable[str]) -> int:
        """Delete these sessions and their runs; returns how many sessions were deleted."""
        ids = list(session_ids)
        deleted = 0
        with self._write() as conn:
            for start in range(0, len(ids), ID_CHUNK):
                chunk = ids[start : start + ID_CHUNK]
                conn.execute(sa.delete(self._runs).where(self._runs.c.session_id.in_(chunk)))
                deleted += conn.execute(sa.delete(self._sessions).where(self._sessions.c.session_id.in_(chunk))).rowcount
        return deleted

    # --- reads ----------------------------------------------------------------------------------

    def get_session(self, session_id: str, session_type: str | None = None, user_id: str | None = None) -> Session | None:
        """The session with its runs, or None (also when ``session_type``/``user_id`` do not match)."""
        s = self._sessions
        query = self._select_sessions().where(s.c.session_id == session_id)
        if session_type is not None:
            query = query.where(s.c.session_type == session_type)
        if user_id is not None:
            query = query.where(s.c.user_id == user_id)
        with self._read() as conn:
            row = conn.execute(query).mappings().first()
            if row is None:
                return None
            return self._with_runs(conn, [row])[0]

    def get_sessions(
        self,
        session_type: str | None = None,
        user_id: str | None = None,
        component_id: str | None = None,
        session_name: str | None = None,
        start_timestamp: int | None = None,
        end_timestamp: int | None = None,
        limit: int | None = None,
        page: int | None = None,
        sort_by: str = "created_at",
        sort_order: str = "desc",
    ) -> tuple[list[Session], int]:
        """Sessions matching every given filter, a page of them, and the total count of matches.

        ``page`` counts from 1 and needs ``limit``. ``sort_by`` is one of SORTABLE.
        """
        check_listing(sort_by, sort_order, limit, page)
        s = self._sessions
        where = self._filters(session_type, user_id, component_id, session_name, start_timestamp, end_timestamp)
        column = s.c[sort_by]
        order = [column.asc() if sort_order == "asc" else column.desc(), s.c.session_id.asc()]
        query = self._select_sessions().where(*where).order_by(*order)
        if limit is not None:
            query = query.limit(limit).offset(((page or 1) - 1) * limit)
        with self._read() as conn:
            total = conn.execute(sa.select(sa.func.count()).select_from(s).where(*where)).scalar()
            rows = conn.execute(query).mappings().all()
            return self._with_runs(conn, rows), total

    def get_all_session_ids(self, user_id: str | None = None, component_id: str | None = None,
                            session_type: str | None = None) -> list[str]:  # fmt: skip
        """The ids of the matching sessions, newest first."""
        s = self._sessions
        where = self._filters(session_type, user_id, component_id, None, None, None)
        query = sa.select(s.c.session_id).where(*where).order_by(s.c.created_at.desc(), s.c.session_id)
        with self._read() as conn:
            return [row[0] for row in conn.execute(query)]

    # --- read helpers ---------------------------------------------------------------------------

    def _select_sessions(self):
        columns = list(self._sessions.columns)
        if self._legacy_runs is not None:
            columns.append(self._legacy_runs.label("legacy_runs"))
        return sa.select(*columns)

    def _filters(self, session_type, user_id, component_id, session_name, start, end) -> list:
        s = self._sessions
        where = []
        if session_type is not None:
            where.append(s.c.session_type == session_type)
        if user_id is not None:
            where.append(s.c.user_id == user_id)
        if component_id is not None:
            kinds = [session_type] if session_type else ["agent", "team", "workflow"]
            where.append(sa.or_(*[s.c[f"{kind}_id"] == component_id for kind in kinds]))
        if start is not None:
            where.append(s.c.created_at >= start)
        if end is not None:
            where.append(s.c.created_at <= end)
        if session_name is not None:
            pattern = f"%{_escape_like(session_name.casefold())}%"
            where.append(sa.func.agno_casefold(self._session_name()).like(pattern, escape="\\")
                         if self.target.backend == "sqlite" else self._session_name().ilike(pattern, escape="\\"))
        return where

    def _session_name(self):
        data = self._sessions.c.session_data
        if self.target.backend == "postgresql":
            return data["session_name"].astext
        if self.target.backend == "mysql":
            return sa.func.json_unquote(sa.func.json_extract(data, "$.session_name"))
        # SQLite: Agno 2.x-3.0.7 rows are double-encoded (a JSON string holding the JSON text)
        raw = sa.type_coerce(data, sa.Text)
        inner = sa.case((sa.func.json_type(raw) == "text", sa.func.json_extract(raw, "$")), else_=raw)
        return sa.func.json_extract(inner, "$.session_name")

    def _with_runs(self, conn, rows) -> list[Session]:
        """Sessions from rows, each with its runs (one query for all of them)."""
        ids = [row["session_id"] for row in rows]
        by_session: dict[str, list[dict]] = {sid: [] for sid in ids}
        r = self._runs
        for start in range(0, len(ids), ID_CHUNK):
            query = (
                sa.select(r.c.session_id, r.c.run_data)
                .where(r.c.session_id.in_(ids[start : start + ID_CHUNK]))
                .order_by(r.c.session_id, r.c.run_index, r.c.created_at)
            )
            for sid, data in conn.execute(query):
                by_session[sid].append(convert.decode_json(data))
        return [Session.from_row(row, merge_runs(by_session[row["session_id"]], row.get("legacy_runs"))) for row in rows]


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class _Transaction:
    """A connection in a transaction for one store call: committed on success, rolled back on error;
    driver errors become DatabaseFailure lines."""

    def __init__(self, target: Target, readonly: bool):
        self.target = target
        self.readonly = readonly

    def __enter__(self):
        self._connect = connect(self.target, readonly=self.readonly)
        self.conn = self._connect.__enter__()
        self._errors = database_errors(self.target)
        self._errors.__enter__()
        return self.conn

    def __exit__(self, kind, exc, tb):
        try:
            if kind is None:
                self.conn.commit()
            else:
                self.conn.rollback()
            return self._errors.__exit__(kind, exc, tb)
        finally:
            self._connect.__exit__(None, None, None)
