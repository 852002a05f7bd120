"""The SQL backend of the migration flow (SQLite, PostgreSQL, MySQL/MariaDB): the
:class:`agno_migrate.migrate.backend.Backend` that ``migrate.runner`` drives, over Alembic
(``migrate.sql.revisions``), detection (``migrate.sql.detect``), the migration lock
(``migrate.sql.locks``) and the Agno 1.x import (``migrate.legacy.sql``).

Each step runs in one transaction with its record where the dialect's DDL is transactional
(SQLite, PostgreSQL); on MySQL every DDL statement commits at once, so each step is idempotent and
the creation of head leaves a mark that a re-run finishes from.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import sqlalchemy as sa

from agno_migrate import registry
from agno_migrate.backends import dialect_of
from agno_migrate.backends.sql import connect, database_errors
from agno_migrate.errors import LockTimeout
from agno_migrate.migrate.detection import missing_tables, other_tables
from agno_migrate.migrate.legacy import sql as legacy_mod
from agno_migrate.migrate.legacy import sql_checkpoints
from agno_migrate.migrate.model import (
    AgnoTable,
    Detection,
    HeadDiff,
    LegacyState,
    LegacyTable,
    Online,
    Plan,
    Progress,
    State,
    TableUpgrade,
)
from agno_migrate.migrate.report import StepReport
from agno_migrate.migrate.sql import detect as detect_mod
from agno_migrate.migrate.sql import revisions as _sql
from agno_migrate.migrate.sql import tables as tables_mod
from agno_migrate.migrate.sql.locks import is_sqlite_busy, migration_lock
from agno_migrate.migrate.sql.online import OnlineDDL
from agno_migrate.registry import SchemaVersion
from agno_migrate.target import Target


class SqlBackend:
    """A SQL database of a target on one connection (see ``Backend`` for what each method does)."""

    kind = "SQL database"
    noun = "table"
    renders_sql = True
    lock_writes = False  # advisory locks, GET_LOCK, a lock file: nothing written into the database

    def __init__(self, target: Target, conn):
        self.target = target
        self.conn = conn
        self.online: Online | None = None  # set by the runner for an online upgrade

    @classmethod
    @contextlib.contextmanager
    def reading(cls, target: Target) -> Iterator[SqlBackend]:
        with connect(target, readonly=True) as conn, _translated(target):
            yield cls(target, conn)

    @classmethod
    @contextlib.contextmanager
    def locked(cls, target: Target) -> Iterator[SqlBackend]:
        with connect(target) as conn, _translated(target), migration_lock(conn, target):
            yield cls(target, conn)

    # --- reading --------------------------------------------------------------------------------

    def read_state(self) -> State:
        recorded = _sql.recorded_version(self.conn, self.target)
        if recorded is not None:
            if _sql.creation_pending(self.conn, self.target):  # not a database yet: see create_head
                return State(None, Detection(version=None, creating=True))
            return State(recorded)
        return State(None, detect_mod.detect(self.conn, self.target))

    def recorded_version(self) -> str | None:
        return _sql.recorded_version(self.conn, self.target)

    def agno_stamp(self) -> str | None:
        return _sql.agno_stamp(self.conn, self.target)

    def legacy_state(self, named: list[str] | None = None) -> LegacyState:
        found = detect_mod.legacy_tables(self.conn, self.target)
        tables = legacy_mod.resolve_tables(self.conn, self.target, found, named)
        return LegacyState(tables, *sql_checkpoints.pending(self.conn, self.target, tables))

    def head_drift(self) -> HeadDiff:
        return detect_mod.compare_to_head(self.conn, self.target)

    def refuse_unrepairable(self) -> None:
        """Nothing to refuse: head's indexes on SQL are plain ones (a missing key is drift instead)."""

    def other_tables(self) -> list[AgnoTable]:
        dialect = dialect_of(self.target)
        if not detect_mod.schema_exists(sa.inspect(self.conn), self.target):
            return []
        return other_tables(self.conn, dialect.schema_of(self.target), self.target, dialect.name)

    def missing_tables(self) -> dict[str, str]:
        if not detect_mod.schema_exists(sa.inspect(self.conn), self.target):
            return dict(sorted(self.target.tables.items()))
        return missing_tables(self.conn, dialect_of(self.target).schema_of(self.target), self.target)

    # --- writing ------------------------------------------------------------------------------------

    def upgrade_tables(self, tables: list[AgnoTable], report: StepReport) -> list[TableUpgrade]:
        self.conn.commit()  # each table is committed on its own, with its stamp
        return tables_mod.upgrade_tables(self.conn, self.target, tables, report)

    def repair_indexes(self, missing: list[tuple[str, str]]) -> list[str]:
        from sqlalchemy.schema import CreateIndex

        from agno_migrate.schema import head_tables

        if not missing:
            return []
        head = head_tables(self.target)
        indexes = {(i.table.name, i.name): i for t in (head.sessions, head.runs, head.agno_versions) for i in t.indexes}
        ctx = _sql.migration_context(self.target, self.conn)
        for key in missing:
            _sql.execute(ctx, CreateIndex(indexes[key]))
        self.conn.commit()
        return [f"{table}.{index}" for table, index in missing]

    def create_head(self, resume: bool) -> None:
        _create_head_in(_sql.migration_context(self.target, self.conn), self.target, resume=resume)
        self.conn.commit()

    def adopt(self, version: SchemaVersion) -> None:
        # not committed here: the record is committed with the first step (SQLite, PostgreSQL), so
        # a step that fails or a killed process leaves the database exactly as it was
        ctx = _sql.migration_context(self.target, self.conn)
        _sql.ensure_version_table(ctx, self.target)
        _sql.record(ctx, self.target, version, "detect")

    def run_step(self, version: SchemaVersion, direction: str, report: StepReport, progress: Progress | None):
        """Returns the step's migration context (its record is written through it)."""
        # the revisions fill the report and call progress through the context's options
        extra = {}
        if self.online is not None and direction == "upgrade":
            extra["agno_online"] = OnlineDDL(self.conn, self.target, self.online, report)
        else:  # one transaction for the step: the large values it stores compressed the fastest way
            dialect_of(self.target).compress_fast(self.conn)
        ctx = _sql.migration_context(self.target, self.conn, agno_report=report, agno_progress=progress, **extra)
        _sql.run_script(ctx, version, direction)
        return ctx

    def record_step(self, version: SchemaVersion, direction: str, reached: SchemaVersion, done) -> None:
        ctx = done
        _sql.ensure_version_table(ctx, self.target)
        if direction == "downgrade":
            _sql.unrecord(ctx, self.target, version)
        _sql.record(ctx, self.target, reached, direction)
        _sql.write_agno_stamps(ctx, self.target, reached)

    def restamp(self, version: SchemaVersion) -> None:
        ctx = _sql.migration_context(self.target, self.conn)
        _sql.ensure_version_table(ctx, self.target)
        _sql.execute(ctx, _sql.version_table(self.target).delete())
        _sql.record(ctx, self.target, version, "stamp")

    def import_legacy(self, tables: list[LegacyTable], progress: Progress | None, accept: set[str]):
        self.conn.commit()  # the import commits batch by batch, each with its checkpoint
        return legacy_mod.import_tables(self.conn, self.target, tables, progress, accept)

    def render_upgrade(self, plan: Plan) -> str:
        existing = self._existing_tables()
        self.conn.rollback()
        target = self.target

        def body(ctx):
            if plan.create_head:
                _create_head_in(ctx, target)
                return
            _sql.ensure_version_table(ctx, target)
            if plan.adopt:
                _sql.record(ctx, target, registry.get(plan.adopt), "detect")
            for step in plan.steps:
                version = registry.get(step.version)
                _sql.run_script(ctx, version, "upgrade")
                _sql.record(ctx, target, version, "upgrade")
                _sql.write_agno_stamps(ctx, target, version)

        return _sql.render_offline(target, body, existing_tables=existing)

    def _existing_tables(self) -> set[str]:
        """The tables in the target's schema now (the rendered SQL creates only what is missing)."""
        insp = sa.inspect(self.conn)
        if not detect_mod.schema_exists(insp, self.target):
            return set()
        return set(insp.get_table_names(schema=dialect_of(self.target).schema_of(self.target)))

    def commit(self) -> None:
        self.conn.commit()

    def rollback(self) -> None:
        self.conn.rollback()


@contextlib.contextmanager
def _translated(target: Target) -> Iterator[None]:
    """Driver errors inside the block become one-line errors: LockTimeout for a SQLite writer
    that held the database past the busy timeout, DatabaseFailure for the rest."""
    from sqlalchemy.exc import OperationalError

    try:
        with database_errors(target):
            yield
    except Exception as exc:  # SQLite reports a busy writer as "database is locked"
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, OperationalError) and is_sqlite_busy(cause):
            raise LockTimeout(
                f"another process holds the write lock on {target.masked_url}; "
                f"gave up after {target.lock_timeout:g}s (--lock-timeout)"
            ) from None
        raise


def _create_head_in(ctx, target: Target, resume: bool = False) -> None:
    """Create (or render) the head schema, our record of it and Agno's stamps, in the caller's
    transaction: read under the lock just before, so no other process is doing the same.

    Where DDL is not transactional (MySQL: every statement commits), head's row is written first,
    marked ``creating`` and committed: a run killed mid-creation leaves that mark, and the next run
    (``resume``) creates what is missing — tables, indexes, stamps — instead of taking the half-made
    tables for an Agno database. The mark becomes ``create`` once all is there.
    """
    from sqlalchemy.schema import CreateIndex, CreateTable

    from agno_migrate.schema import head_tables

    dialect = dialect_of(target)
    head = head_tables(target)
    marked = resume or (not dialect.transactional_ddl and not ctx.as_sql)
    _sql.ensure_schema(ctx, target)
    if marked and not resume:
        _sql.ensure_version_table(ctx, target)
        _sql.record(ctx, target, registry.HEAD, _sql.CREATING)
        ctx.connection.commit()
    for table in (head.sessions, head.runs, head.agno_versions):
        if not _sql.table_exists(ctx, target, table.name):
            _sql.execute(ctx, CreateTable(table))
            existing = set()
        elif resume:
            existing = {i["name"] for i in sa.inspect(ctx.connection).get_indexes(table.name, schema=table.schema)}
        else:
            continue
        for index in sorted(table.indexes, key=lambda i: i.name):
            if index.name not in existing:
                _sql.execute(ctx, CreateIndex(index))
    if marked:
        _sql.creation_done(ctx, target)
    else:
        _sql.ensure_version_table(ctx, target)
        _sql.record(ctx, target, registry.HEAD, "create")
    _sql.write_agno_stamps(ctx, target, registry.HEAD)
