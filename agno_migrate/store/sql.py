"""The session store on SQLite, PostgreSQL and MySQL/MariaDB, with SQLAlchemy Core on the head schema.

Writes are one transaction per call. Runs live in the runs table, one row per run; reads return
them in ``run_index`` order, merged with any legacy ``runs`` blob still present in the sessions
table (as Agno 3.1 reads them). The hot calls (upserts, get_session, get_sessions) run statements
compiled once per store on the driver's connection (``driver.py``); on PostgreSQL each step of a
call is one round trip, and a session row read carries its runs (one JSON array, ``json_agg``), so a
read is one statement and a page's ids are chosen once.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable

import sqlalchemy as sa

from agno_migrate import convert, jsoncodec
from agno_migrate.backends import dialect_of, records
from agno_migrate.backends.sql import connect, database_errors, engine
from agno_migrate.errors import RunIdTaken, UnknownSession
from agno_migrate.schema import head_tables
from agno_migrate.sessions import Run, Session, merge_runs
from agno_migrate.store.base import SORTABLE, SessionStore, check_listing, check_name, check_run, with_run_id  # noqa: F401  (SORTABLE: re-exported)
from agno_migrate.store.driver import Call, Statement
from agno_migrate.target import Target

ID_CHUNK = 500
RUN_KEEP = ("created_at", "session_id", "run_index")  # what updating a stored run leaves alone


class SqlStore(SessionStore):
    """A session store on a SQL database (see :func:`agno_migrate.store.connect`)."""

    def __init__(self, target: Target, auto_upgrade_schema: bool = False):
        super().__init__(target, auto_upgrade_schema)
        self._dialect = dialect_of(target)
        head = head_tables(target)
        self._sessions = head.sessions
        self._runs = head.runs
        self._legacy_runs = None
        self._statements: dict = {}

    @classmethod
    def of(cls, target: Target, auto_upgrade_schema: bool = False) -> SqlStore:
        """The store of ``target`` as it is (every name it carries; the subclasses' constructors
        take Agno's arguments instead)."""
        store = cls.__new__(cls)
        SqlStore.__init__(store, target, auto_upgrade_schema)
        return store

    # --- plumbing -------------------------------------------------------------------------------

    def _recorded_version(self) -> str | None:
        with connect(self.target, readonly=True) as conn, database_errors(self.target):
            version = records.recorded_version(conn, self.target, probe=True)
            if version is not None:
                self._set_legacy_runs(conn)
            return version

    def _set_legacy_runs(self, conn) -> None:
        """Find out whether the sessions table still has a legacy ``runs`` column (read with the
        sessions); compiled statements are rebuilt."""
        columns = {c["name"] for c in sa.inspect(conn).get_columns(self._sessions.name, schema=self._sessions.schema)}
        # unqualified: only the sessions table is in those FROMs
        self._legacy_runs = sa.literal_column("runs") if "runs" in columns else None
        self._statements.clear()

    def upgrade_schema(self, to: str = "head"):
        outcome = super().upgrade_schema(to)
        with connect(self.target, readonly=True) as conn:
            self._set_legacy_runs(conn)
        return outcome

    def _write(self):
        self._ensure_schema()
        return _Transaction(self.target, readonly=False)

    def _call(self, write: bool) -> Call:
        self._ensure_schema()
        return Call(self.target, write)

    def _statement(self, key, build) -> Statement:
        """The statement ``build()`` under ``key``, compiled once per store."""
        return self._cached(key, lambda: self._compiled(build()))

    def _compiled(self, clause) -> Statement:
        """``clause`` compiled for this store's engine (as its dialect compiles the store's statements)."""
        dialect = engine(self.target).dialect
        return Statement(clause, dialect, self._dialect.statement_compiler(dialect))

    def _cached(self, key, make):
        found = self._statements.get(key)
        if found is None:
            found = self._statements[key] = make()
        return found

    def _upsert_statement(self, table: sa.Table, keep: tuple[str, ...]) -> Statement:
        """Insert rows, updating those whose primary key exists (``keep`` columns untouched)."""
        return self._statement(("upsert", table.name, keep), lambda: self._upsert_clause(table, keep))

    def _upsert_clause(self, table: sa.Table, keep: tuple[str, ...], source=None, guard=None):
        """The dialect's INSERT ... ON CONFLICT / ON DUPLICATE KEY statement (see
        ``SqlDialect.upsert``), updating every column but the key and ``keep``."""
        key = {c.name for c in table.primary_key.columns}
        update = [c.name for c in table.columns if c.name not in key and c.name not in keep]
        return self._dialect.upsert(table, update, source=source, guard=guard)

    # --- writes ---------------------------------------------------------------------------------

    def upsert_sessions(self, sessions: Iterable[Session], preserve_updated_at: bool = False) -> list[Session]:
        """Bulk :meth:`upsert_session`: one transaction.

        A run already stored keeps its position; new runs go after the session's last stored run,
        in list order. A run id that belongs to another session raises RunIdTaken (nothing written).
        """
        sessions = list(sessions)
        _, rows, run_rows = self._session_rows(sessions, preserve_updated_at)
        with self._call(write=True) as call:
            upsert_sessions, upsert_runs = self._session_upserts  # (compiled once the schema is known)
            if run_rows:
                self._place_runs(call, run_rows)
            call.write([(upsert_sessions, rows), (upsert_runs, run_rows)])
        return sessions

    @property
    def _session_upserts(self) -> tuple[Statement, Statement]:
        """upsert_sessions' statements: the sessions' upsert, the runs' upsert."""
        return self._cached(
            "session_upserts",
            lambda: (
                self._upsert_statement(self._sessions, ("created_at",)),
                self._upsert_statement(self._runs, RUN_KEEP),
            ),
        )

    def _place_runs(self, call: Call, run_rows: list[dict]) -> None:
        """Give new runs the positions after their session's stored runs; refuse foreign run ids."""
        places = call.fetch(
            [(self._place_statement, {"sid": row["session_id"], "rid": row["run_id"]}) for row in run_rows]
        )
        following: dict = {}
        for row, ((owner, after_stored),) in zip(run_rows, places, strict=False):
            if owner is not None and owner != row["session_id"]:
                raise RunIdTaken(f"run {row['run_id']!r} belongs to session {owner!r}, not {row['session_id']!r}")
            if owner is None:  # positions counted from the stored runs, as they were before this call
                row["run_index"] = following.setdefault(row["session_id"], after_stored)
                following[row["session_id"]] += 1

    def upsert_run(self, session_id: str, run: dict) -> Run:
        """Append ``run`` to the session (or update it in place, by ``run_id``) without rewriting the
        session's other runs. Raises UnknownSession (a UsageError, also a KeyError) for a missing
        session, RunIdTaken if the run
        id belongs to another session (nothing written then). The session row is locked first, so
        concurrent writers to one session queue up and each run gets its own position.

        One transaction: lock the session row, insert-or-update the run, touch the session's
        ``updated_at``, read back the run's owner (the last three are one statement on PostgreSQL,
        and the whole call one round trip there): the run row's session-derived columns are filled
        in by the database (see :meth:`_run_upsert_clause`)."""
        check_run(run)
        run = with_run_id(Run(run))
        (own,), _ = convert.run_rows({"session_id": session_id}, [run])  # the run's own columns
        values = {**own, "sid": session_id, "now": int(time.time()), "run_data": dict(run)}
        with self._call(write=True) as call:
            locked, *_, ((found,),) = call.write([(statement, [values]) for statement in self._run_statements])
        if found != session_id:  # nothing was written
            if not locked:
                raise UnknownSession(f"no session {session_id!r}: upsert_session() it first, then add runs")
            # (found is None only if another writer stored this run id for its session meanwhile)
            raise RunIdTaken(
                f"run {run.run_id!r} belongs to session {found or 'another session'!r}, not {session_id!r}"
            )
        return run

    @property
    def _run_statements(self) -> tuple[Statement, ...]:
        """upsert_run's statements, on bind parameters ``sid``, ``now`` and the run's own columns
        (convert.run_rows of the run alone): the first returns the session row it locked, the last
        the run's owner."""
        return self._cached("run_statements", self._build_run_statements)

    def _build_run_statements(self) -> tuple[Statement, ...]:
        s, r, b = self._sessions, self._runs, sa.bindparam
        # the lock is a statement of its own: on PostgreSQL a statement's snapshot is taken when it
        # starts, so the next position must be read by a statement that starts once the lock is held
        lock = sa.select(s.c.session_id).where(s.c.session_id == b("sid")).with_for_update()
        owner = sa.select(r.c.session_id).where(r.c.run_id == b("run_id")).scalar_subquery()
        upsert = self._run_upsert_clause()
        # the touch leaves a session row that already says this second alone: the same value, and
        # no new row version (a session's runs often come within one second)
        stale = s.c.updated_at.is_distinct_from(b("now", type_=s.c.updated_at.type))
        if self._dialect.returning_in_cte:  # one statement: the upsert returns its run's session
            written = upsert.returning(r.c.session_id).cte("written")
            touched = sa.update(s).where(s.c.session_id == b("sid"), stale, sa.exists(sa.select(written.c.session_id)))
            last = sa.select(sa.func.coalesce(sa.select(written.c.session_id).scalar_subquery(), owner))
            clauses = (lock, last.add_cte(touched.values(updated_at=b("now")).cte("touched")))
        else:
            mine = sa.exists().where(r.c.run_id == b("run_id"), r.c.session_id == b("sid"))
            touch = sa.update(s).where(s.c.session_id == b("sid"), stale, mine).values(updated_at=b("now"))
            clauses = (lock, upsert, touch, sa.select(owner))
        return tuple(self._compiled(clause) for clause in clauses)

    def _run_upsert_clause(self):
        """Insert the run (or update it, keeping its position) from the session's row, unless its id
        belongs to another session. The columns convert.run_rows takes from the session are
        filled in here the same way: ``run_type`` and each entity id from the session when the run
        has none of its own, ``user_id`` from the session, ``created_at`` the session's when the
        run has none; a new run goes after the session's last one."""
        s, r, b = self._sessions, self._runs, sa.bindparam
        kind = s.c.session_type

        def param(name):
            return b(name, type_=r.c[name].type)

        def entity(name):
            return sa.func.coalesce(param(name), sa.case((kind == name[: -len("_id")], s.c[name])))

        columns = {
            "run_id": param("run_id"),
            "session_id": s.c.session_id,
            "run_type": sa.case(*[(kind == name, kind) for name in convert.SESSION_TYPES], else_=param("run_type")),
            **{name: entity(name) for name in ("agent_id", "team_id", "workflow_id")},
            "user_id": s.c.user_id,
            "parent_run_id": param("parent_run_id"),
            "status": param("status"),
            "run_index": self._next_index(),
            "run_data": param("run_data"),
            "created_at": sa.func.coalesce(sa.func.nullif(param("created_at"), 0), s.c.created_at),
            "updated_at": b("now", type_=r.c.updated_at.type),
        }
        foreign = sa.exists().where(r.c.run_id == param("run_id"), r.c.session_id != b("sid"))
        source = sa.select(*columns.values()).where(s.c.session_id == b("sid"), ~foreign)
        return self._upsert_clause(r, RUN_KEEP, source=(list(columns), source), guard=r.c.session_id)

    @property
    def _place_statement(self) -> Statement:
        """(the session owning run ``rid`` or None, the next position in session ``sid``)."""

        def build():
            r = self._runs
            owner = sa.select(r.c.session_id).where(r.c.run_id == sa.bindparam("rid")).scalar_subquery()
            return sa.select(owner, self._next_index())

        return self._statement("place", build)

    def _next_index(self):
        """The position after the last stored run of session ``sid`` (0 for none)."""
        r = self._runs
        following = sa.select(sa.func.coalesce(sa.func.max(r.c.run_index) + 1, 0))
        return following.where(r.c.session_id == sa.bindparam("sid")).scalar_subquery()

    def rename_session(self, session_id: str, name: str) -> Session | None:
        """Set the session's name (``session_data.session_name``); None if there is no such session."""
        check_name(name)
        s = self._sessions
        with self._write() as conn:
            data = conn.execute(sa.select(s.c.session_data).where(s.c.session_id == session_id)).first()
            if data is None:
                return None
            session_data = jsoncodec.decode_json(data[0]) or {}
            session_data["session_name"] = name
            conn.execute(
                sa.update(s)
                .where(s.c.session_id == session_id)
                .values(session_data=session_data, updated_at=int(time.time()))
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
                deleted += conn.execute(
                    sa.delete(self._sessions).where(self._sessions.c.session_id.in_(chunk))
                ).rowcount
        return deleted

    # --- reads ----------------------------------------------------------------------------------

    def get_session(
        self, session_id: str, session_type: str | None = None, user_id: str | None = None
    ) -> Session | None:
        """The session with its runs, or None (also when ``session_type``/``user_id`` do not match)."""
        values = {"sid": session_id, "st": session_type, "uid": user_id}
        shape = (session_type is not None, user_id is not None)
        session = self._statement(("session", shape), lambda: self._session_query(*shape))
        steps = (
            [(session, values)] if self._runs_in_row else [(session, values), (self._session_runs_statement, values)]
        )
        with self._call(write=False) as call:
            rows, *runs = call.fetch(steps)
        return self._sessions_of(session, rows, *runs)[0] if rows else None

    def _session_query(self, by_type: bool, by_user: bool):
        s = self._sessions
        query = self._select_sessions().where(s.c.session_id == sa.bindparam("sid"))
        if by_type:
            query = query.where(s.c.session_type == sa.bindparam("st"))
        if by_user:
            query = query.where(s.c.user_id == sa.bindparam("uid"))
        return query

    @property
    def _session_runs_statement(self) -> Statement:
        r = self._runs
        return self._statement("session_runs", lambda: self._runs_query().where(r.c.session_id == sa.bindparam("sid")))

    def _runs_query(self):
        r = self._runs
        return sa.select(r.c.session_id, r.c.run_data).order_by(r.c.session_id, r.c.run_index, r.c.created_at)

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
        check_listing(
            sort_by, sort_order, limit, page, (("start_timestamp", start_timestamp), ("end_timestamp", end_timestamp))
        )
        values = {
            "st": session_type,
            "uid": user_id,
            "cid": component_id,
            "start": start_timestamp,
            "end": end_timestamp,
            "name": None if session_name is None else f"%{_escape_like(session_name.casefold())}%",
            "limit": limit,
            "offset": ((page or 1) - 1) * (limit or 0),
        }
        # the statements' shape: which filters are given (and, for component_id, which id columns)
        shape = (
            *(values[k] is not None for k in ("st", "uid", "cid", "start", "end", "name")),
            session_type if component_id is not None else None,
            sort_by,
            sort_order,
            limit is not None,
        )
        count, listing, *runs = self._cached(("listing", shape), lambda: self._listing_statements(shape))
        with self._call(write=False) as call:
            if self._runs_by_ids:
                (total,), rows = call.fetch([(count, values), (listing, values)])
                at = listing.columns.index("session_id")
                ids = json.dumps([row[at] for row in rows])
                run_rows = call.fetch([(runs[0], {"ids": ids})]) if rows else []
            else:  # one round trip on PostgreSQL
                (total,), rows, *run_rows = call.fetch([(statement, values) for statement in (count, listing, *runs)])
        return self._sessions_of(listing, rows, *run_rows), total[0]

    def _listing_statements(self, shape) -> tuple[Statement, ...]:
        """(count of the matches, the page of sessions[, the runs of that page unless they are in
        the page's rows])."""
        *given, session_type, sort_by, sort_order, paged = shape
        s = self._sessions
        where = self._filters(*given, session_type)
        column = s.c[sort_by]
        order = [column.asc() if sort_order == "asc" else column.desc(), s.c.session_id.asc()]
        # the page's ids are chosen first, sorting only (sort column, id) pairs; then their rows are
        # read. Sorting whole rows would read every matching session's JSON for every page (SQLite
        # builds its sort records from all the selected columns).
        ids = sa.select(s.c.session_id).where(*where).order_by(*order)
        if paged:
            ids = ids.limit(sa.bindparam("limit")).offset(sa.bindparam("offset"))
        ids = ids.subquery()
        page = self._select_sessions().select_from(s.join(ids, ids.c.session_id == s.c.session_id)).order_by(*order)
        count = sa.select(sa.func.count()).select_from(s).where(*where)
        clauses = [count, page]
        # IN (the page's ids), not a join: SQLite would scan every run to probe the page
        if self._runs_by_ids:
            given = self._dialect.values_of_json_array(sa.bindparam("ids", type_=sa.String()))
            clauses.append(self._runs_query().where(self._runs.c.session_id.in_(sa.select(given.c.value))))
        elif not self._runs_in_row:
            clauses.append(self._runs_query().where(self._runs.c.session_id.in_(sa.select(ids.c.session_id))))
        return tuple(self._compiled(clause) for clause in clauses)

    def get_all_session_ids(
        self, user_id: str | None = None, component_id: str | None = None, session_type: str | None = None
    ) -> list[str]:
        """The ids of the matching sessions, newest first."""
        values = {"st": session_type, "uid": user_id, "cid": component_id}
        shape = (session_type is not None, user_id is not None, component_id is not None)

        def build():
            s = self._sessions
            where = self._filters(*shape, False, False, False, session_type)
            return sa.select(s.c.session_id).where(*where).order_by(s.c.created_at.desc(), s.c.session_id)

        ids = self._statement(("ids", shape, session_type if component_id is not None else None), build)
        with self._call(write=False) as call:
            (rows,) = call.fetch([(ids, values)])
        return [row[0] for row in rows]

    # --- read helpers ---------------------------------------------------------------------------

    @property
    def _runs_in_row(self) -> bool:
        """Whether a session row read carries its runs: one statement per read instead of two, and a
        page's ids chosen once, not once per statement (``SqlDialect.runs_in_row``)."""
        return self._dialect.runs_in_row

    @property
    def _runs_by_ids(self) -> bool:
        """Whether a page's runs are read by the ids its rows came with, a JSON array
        (``SqlDialect.runs_by_ids``)."""
        return self._dialect.runs_by_ids

    def _select_sessions(self):
        columns = list(self._sessions.columns)
        if self._legacy_runs is not None:
            columns.append(self._legacy_runs.label("legacy_runs"))
        if self._runs_in_row:
            r = self._runs
            runs = self._dialect.json_array_of(r.c.run_data, r.c.run_index, r.c.created_at)
            columns.append(
                sa.select(runs)
                .where(r.c.session_id == self._sessions.c.session_id)
                .scalar_subquery()
                .label("table_runs")
            )
        return sa.select(*columns)

    def _filters(self, by_type, by_user, by_component, start, end, by_name, session_type) -> list:
        """The WHERE clauses of a listing, on bind parameters (st, uid, cid, start, end, name)."""
        s = self._sessions
        where = []
        if by_type:
            where.append(s.c.session_type == sa.bindparam("st"))
        if by_user:
            where.append(s.c.user_id == sa.bindparam("uid"))
        if by_component:
            kinds = [session_type] if session_type else ["agent", "team", "workflow"]
            where.append(sa.or_(*[s.c[f"{kind}_id"] == sa.bindparam("cid") for kind in kinds]))
        if start:
            where.append(s.c.created_at >= sa.bindparam("start"))
        if end:
            where.append(s.c.created_at <= sa.bindparam("end"))
        if by_name:
            name = self._dialect.session_name(s.c.session_data)
            where.append(self._dialect.casefold_like(name, sa.bindparam("name", type_=sa.String())))
        return where

    @staticmethod
    def _sessions_of(statement: Statement, rows: list[tuple], run_rows: list[tuple] = ()) -> list[Session]:
        """Sessions from the rows of ``statement``, each with its runs in order: from the rows'
        ``table_runs`` arrays (see :attr:`_runs_in_row`), else from (session_id, run_data) rows."""
        by_session: dict[str, list] = {}
        for sid, data in run_rows:
            by_session.setdefault(sid, []).append(jsoncodec.decode_json(data))
        sessions = []
        for row in rows:
            row = dict(zip(statement.columns, row, strict=False))
            runs = by_session.get(row["session_id"], []) if "table_runs" not in row else row["table_runs"] or []
            sessions.append(Session.from_row(row, merge_runs(runs, row.get("legacy_runs"))))
        return sessions


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
