"""Plan, lock, step, record (DESIGN "Flows"). The user commands of the library live here.

Every mutating command takes the backend's lock first, then reads the version again (another
process may have done the work), then plans. Each step runs in its own transaction with its
record where the database allows it (SQLite, PostgreSQL); on MySQL each step is idempotent.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import sqlalchemy as sa

from agno_migrate import registry
from agno_migrate.backends.sql import connect, database_errors
from agno_migrate.errors import LockTimeout, Refused, SchemaBehind, SchemaDrift
from agno_migrate.migrate.legacy import sql as legacy_mod
from agno_migrate.migrate.report import StepReport
from agno_migrate.migrate.sql import detect as detect_mod
from agno_migrate.migrate.sql import revisions as _sql
from agno_migrate.migrate.sql.locks import is_sqlite_busy, migration_lock
from agno_migrate.registry import SchemaVersion
from agno_migrate.target import Target, resolve

Progress = Callable[[int, int], None]


@dataclass
class Status:
    """Where a database stands. ``version`` is the recorded version, or the detected one when the
    database is not managed yet (``managed`` False); None for an empty database."""

    target: Target
    version: str | None
    managed: bool
    agno_stamp: str | None = None
    drift: list[str] = field(default_factory=list)
    legacy: list[detect_mod.LegacyTable] = field(default_factory=list)
    legacy_pending: list[str] = field(default_factory=list)

    @property
    def head(self) -> str:
        return registry.HEAD.version

    @property
    def at_head(self) -> bool:
        return self.version == registry.HEAD.version

    def as_dict(self) -> dict:
        return {
            "database": self.target.masked_url,
            "session_table": self.target.session_table,
            "version": self.version,
            "head": self.head,
            "at_head": self.at_head,
            "managed": self.managed,
            "agno_stamp": self.agno_stamp,
            "drift": self.drift,
            "legacy_tables": [
                {"name": t.name, "mode": t.mode, "rows": t.rows, "imported": t.name not in self.legacy_pending}
                for t in self.legacy
            ],
        }


@dataclass
class Step:
    version: str
    direction: str
    summary: str
    copies_data: bool = False


@dataclass
class Plan:
    target: Target
    current: str | None
    goal: str
    steps: list[Step]
    create_head: bool = False
    adopt: str | None = None
    drift: list[str] = field(default_factory=list)
    legacy: list[detect_mod.LegacyTable] = field(default_factory=list)
    """Agno 1.x tables the upgrade would import (only when going to head)."""

    def as_dict(self) -> dict:
        return {
            "database": self.target.masked_url,
            "legacy_tables": [{"name": t.name, "mode": t.mode, "rows": t.rows} for t in self.legacy],
            "current": self.current,
            "target": self.goal,
            "create_head": self.create_head,
            "adopt": self.adopt,
            "drift": self.drift,
            "steps": [s.__dict__ for s in self.steps],
        }


@dataclass
class Outcome:
    """What an upgrade, downgrade or stamp did."""

    target: Target
    before: str | None
    after: str | None
    applied: list[str] = field(default_factory=list)
    created: bool = False
    adopted: str | None = None
    drift: list[str] = field(default_factory=list)
    report: StepReport = field(default_factory=StepReport)
    sql: str | None = None

    def as_dict(self) -> dict:
        report = {
            k: v.as_dict() if hasattr(v, "as_dict") else len(v) if isinstance(v, list) else v
            for k, v in self.report.items()
        }
        return {
            "database": self.target.masked_url,
            "before": self.before,
            "after": self.after,
            "applied": self.applied,
            "created": self.created,
            "adopted": self.adopted,
            "drift": self.drift,
            "report": report,
        }


def _mongo():
    """The MongoDB runner (imported on use: it loads pymongo)."""
    from agno_migrate.migrate.mongo import flow as mongo

    return mongo


# --- sessions on the database ------------------------------------------------------------------


@contextlib.contextmanager
def _locked(target: Target) -> Iterator[object]:
    """A connection holding the migration lock; driver errors become one-line errors."""
    with connect(target) as conn, _translated(target), migration_lock(conn, target):
        yield conn


@contextlib.contextmanager
def _translated(target: Target) -> Iterator[None]:
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


def _read_state(conn, target: Target) -> tuple[str | None, detect_mod.Detection | None]:
    """(recorded version, None) for a managed database, else (None, detection)."""
    recorded = _sql.recorded_version(conn, target)
    if recorded is not None:
        if _sql.creation_pending(conn, target):  # not a database yet: see _create_head_in
            return None, detect_mod.Detection(version=None, creating=True)
        return recorded, None
    return None, detect_mod.detect(conn, target)


def _describe_tables(tables: list[detect_mod.LegacyTable]) -> str:
    return ", ".join(f"{t.name} ({t.mode}, {t.rows} rows)" for t in tables)


def _legacy_state(conn, target: Target, named: list[str] | None = None):
    """(every Agno 1.x table to import, those whose import has not completed)."""
    tables = legacy_mod.resolve_tables(conn, target, detect_mod.legacy_tables(conn, target), named)
    return tables, legacy_mod.pending(conn, target, tables)


def _check_detection(target: Target, found: detect_mod.Detection) -> None:
    """Refuse to adopt tables that match no schema version (nothing is changed)."""
    if found.has_session_table and found.version is None:
        raise SchemaDrift(f"{target.session_table} matches no known schema version: {'; '.join(found.drift)}")
    if found.damage:
        raise SchemaDrift(
            f"{target.session_table} does not match Agno {found.version.version}: {'; '.join(found.damage)}; "
            f"nothing changed (repair the tables, or record their version with agno-migrate stamp VERSION)"
        )


# --- user commands -------------------------------------------------------------------------------


def legacy_pending(db: str | Target | None) -> list[str]:
    """The Agno 1.x tables not imported yet (reads only; not our version table)."""
    target = resolve(db)
    if target.is_mongo:
        return _mongo().legacy_pending(target)
    with connect(target, readonly=True) as conn, _translated(target):
        return [t.name for t in _legacy_state(conn, target)[1]]


def history() -> list[SchemaVersion]:
    """The registry's versions, oldest first."""
    return list(registry.VERSIONS)


def current(db: str | Target | None) -> Status:
    """Where the database stands: its recorded version, or the detected one if it is not managed.

    Reads only; raises ConnectFailed, SchemaAhead.
    """
    target = resolve(db)
    if target.is_mongo:
        return _mongo().current(target)
    with connect(target, readonly=True) as conn, _translated(target):
        recorded, found = _read_state(conn, target)
        stamp = _sql.agno_stamp(conn, target)
        legacy, pending = _legacy_state(conn, target)
        if recorded is not None:
            return Status(
                target, recorded, True, agno_stamp=stamp, legacy=legacy, legacy_pending=[t.name for t in pending]
            )
        return Status(
            target,
            found.version.version if found.version else None,
            False,
            agno_stamp=found.agno_stamp,
            drift=found.drift,
            legacy=legacy,
            legacy_pending=[t.name for t in pending],
        )


def check(db: str | Target | None) -> Status:
    """Succeed only when the database is at head and its physical schema is the head schema.

    Raises SchemaBehind (exit 1) naming the version found, SchemaDrift (exit 4) naming what
    differs, SchemaAhead (exit 3) or ConnectFailed (exit 5). Agno 1.x tables not imported yet
    count as behind.
    """
    target = resolve(db)
    status = current(target)
    if status.drift:
        raise SchemaDrift(f"schema drift in {target.session_table}: {'; '.join(status.drift)}")
    if status.legacy_pending:
        pending = [t for t in status.legacy if t.name in status.legacy_pending]
        raise SchemaBehind(
            f"Agno 1.x tables not migrated yet: {_describe_tables(pending)}: run agno-migrate upgrade",
            found=status.version,
        )
    if status.version is None:
        raise SchemaBehind(
            f"{target.masked_url} has no {target.session_table} table yet (head is {status.head}): "
            f"run agno-migrate upgrade",
            found=None,
        )
    if not status.at_head:
        how = "recorded" if status.managed else "detected, not managed yet"
        raise SchemaBehind(
            f"{target.session_table} is at {status.version} ({how}), head is {status.head}: run agno-migrate upgrade",
            found=status.version,
        )
    if target.is_mongo:
        diffs = _mongo().head_drift(target)
    else:
        with connect(target, readonly=True) as conn, _translated(target):
            diffs = detect_mod.compare_to_head(conn, target)
    if diffs:
        status.drift = diffs
        raise SchemaDrift(f"schema drift in {target.session_table} at {status.version}: {'; '.join(diffs)}")
    return status


def plan(db: str | Target | None, to: str = "head", legacy_tables: list[str] | None = None) -> Plan:
    """What :func:`upgrade` would do, without doing it (reads only): the schema steps, and the
    Agno 1.x tables it would import with their row counts."""
    target = resolve(db)
    goal = registry.get(to)
    if target.is_mongo:
        return _mongo().plan(target, goal, legacy_tables)
    with connect(target, readonly=True) as conn, _translated(target):
        recorded, found = _read_state(conn, target)
        _, pending = _legacy_state(conn, target, legacy_tables)
    the_plan = _plan_from(target, goal, recorded, found)
    if goal == registry.HEAD:
        the_plan.legacy = pending
    return the_plan


def _plan_from(target, goal: SchemaVersion, recorded, found) -> Plan:
    if recorded is None:
        _check_detection(target, found)
        if found.version is None:  # empty, or Agno 1.x tables only
            if goal == registry.HEAD:
                return Plan(target, None, goal.version, [], create_head=True, drift=found.drift)
            steps = registry.steps_up(None, goal.version)
            return Plan(target, None, goal.version, [_step(v, "upgrade") for v in steps], drift=found.drift)
        current_version = found.version.version
        adopt = current_version
    else:
        current_version, adopt = recorded, None
    if registry.get(current_version).key > goal.key:
        raise Refused(f"the database is at {current_version}, above {goal.version}: use agno-migrate downgrade")
    steps = registry.steps_up(current_version, goal.version)
    return Plan(
        target,
        current_version,
        goal.version,
        [_step(v, "upgrade") for v in steps],
        adopt=adopt,
        drift=found.drift if found else [],
    )


def _step(v: SchemaVersion, direction: str) -> Step:
    return Step(v.version, direction, v.summary, v.copies_data)


def upgrade(
    db: str | Target | None,
    to: str = "head",
    sql: bool = False,
    progress: Progress | None = None,
    legacy_tables: list[str] | None = None,
) -> Outcome:
    """Bring the database up to ``to`` (default head).

    Takes the lock, re-reads the version, then: an empty database is created at head directly and
    stamped (no replay); an unmanaged one is fingerprinted (drift reported), its version recorded,
    then upgraded step by step. At head, the Agno 1.x tables found (or ``legacy_tables``, each
    ``NAME[:mode]``) are imported, resumably (``migrate.legacy``); their report is in
    ``Outcome.report["legacy"]``. ``sql`` renders the DDL instead and changes nothing (a step
    that copies data cannot be rendered: Refused). Raises LockTimeout, SchemaDrift, SchemaAhead,
    ConnectFailed, DatabaseFailure, UsageError.
    """
    target = resolve(db)
    goal = registry.get(to)
    if target.is_mongo:
        return _mongo().upgrade(target, goal, sql, progress, legacy_tables)
    if sql:
        return _upgrade_sql(target, goal, legacy_tables)
    with _locked(target) as conn:
        if legacy_tables:  # a bad --legacy-table (name, mode, missing table) is refused before any change
            _legacy_state(conn, target, legacy_tables)
        outcome = _upgrade_locked(conn, target, goal, progress)
        if outcome.after == registry.HEAD.version:
            _, pending = _legacy_state(conn, target, legacy_tables)
            conn.commit()
            if pending:
                outcome.report.legacy = legacy_mod.import_tables(conn, target, pending, progress)
        return outcome


def _upgrade_locked(conn, target: Target, goal: SchemaVersion, progress: Progress | None) -> Outcome:
    recorded, found = _read_state(conn, target)
    current_version = recorded
    outcome = Outcome(target, before=recorded, after=recorded)
    if recorded is None:
        _check_detection(target, found)
        outcome.drift = found.drift
        if found.version is None:  # empty, or Agno 1.x tables only, or head half created
            if found.creating and goal != registry.HEAD:
                raise Refused(
                    f"creating {target.session_table} at head was interrupted: run agno-migrate upgrade to finish it"
                )
            if goal == registry.HEAD:
                _create_head_in(_sql.migration_context(target, conn), target, resume=found.creating)
                conn.commit()
                outcome.created = True
                outcome.after = registry.HEAD.version
                return outcome
        else:
            current_version = _adopt(conn, target, found.version)
            outcome.before = outcome.adopted = found.version.version
    # no commit here: the adoption is committed with the first step (SQLite, PostgreSQL), so a step
    # that fails or a killed process leaves the database exactly as it was
    if current_version is not None and registry.get(current_version).key > goal.key:
        raise Refused(f"the database is at {current_version}, above {goal.version}: use agno-migrate downgrade")
    for version in registry.steps_up(current_version, goal.version):
        if _apply(conn, target, version, "upgrade", outcome.report, progress):
            outcome.applied.append(version.version)
    outcome.after = _sql.recorded_version(conn, target)
    conn.commit()
    return outcome


def _create_head_in(ctx, target: Target, resume: bool = False) -> None:
    """Create (or render) the head schema, our record of it and Agno's stamps, in the caller's
    transaction: read under the lock just before, so no other process is doing the same.

    MySQL commits every DDL statement, so there head's row is written first, marked ``creating``
    and committed: a run killed mid-creation leaves that mark, and the next run (``resume``) creates
    what is missing — tables, indexes, stamps — instead of taking the half-made tables for an Agno
    database. The mark becomes ``create`` once all is there.
    """
    from sqlalchemy.schema import CreateIndex, CreateSchema, CreateTable

    from agno_migrate.schema import head_tables

    head = head_tables(target)
    marked = resume or (target.backend == "mysql" and not ctx.as_sql)
    if target.backend == "postgresql":
        _sql.execute(ctx, CreateSchema(target.schema, if_not_exists=True))
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


def _adopt(conn, target: Target, version: SchemaVersion) -> str:
    """Record the detected version of an unmanaged database (in the caller's transaction)."""
    ctx = _sql.migration_context(target, conn)
    _sql.ensure_version_table(ctx, target)
    _sql.record(ctx, target, version, "detect")
    return version.version


def _apply(conn, target: Target, version: SchemaVersion, direction: str, report: dict, progress) -> bool:
    """Run one step and its record in one transaction; False if the database was already past it."""
    try:
        now = _sql.recorded_version(conn, target)
        if direction == "upgrade" and now is not None and registry.get(now).key >= version.key:
            conn.rollback()
            return False
        if direction == "downgrade" and (now is None or registry.get(now).key < version.key):
            conn.rollback()
            return False
        ctx = _sql.migration_context(target, conn, agno_report=report, agno_progress=progress)
        _sql.run_script(ctx, version, direction)
        _sql.ensure_version_table(ctx, target)
        if direction == "upgrade":
            _sql.record(ctx, target, version, "upgrade")
            _sql.write_agno_stamps(ctx, target, version)
        else:
            below = registry.previous(version.version)
            _sql.unrecord(ctx, target, version)
            _sql.record(ctx, target, below, "downgrade")
            _sql.write_agno_stamps(ctx, target, below)
        conn.commit()
        return True
    except BaseException:
        conn.rollback()
        raise


def _upgrade_sql(target: Target, goal: SchemaVersion, legacy_tables: list[str] | None) -> Outcome:
    """Render the DDL of the planned upgrade without changing anything."""
    with connect(target, readonly=True) as conn, _translated(target):
        recorded, found = _read_state(conn, target)
        _, pending = _legacy_state(conn, target, legacy_tables)
        insp = sa.inspect(conn)
        schema = target.schema if target.backend != "sqlite" else None
        existing = set(insp.get_table_names(schema=schema)) if detect_mod.schema_exists(insp, target) else set()
        conn.rollback()
    the_plan = _plan_from(target, goal, recorded, found)
    if pending and goal == registry.HEAD:
        raise Refused(
            f"importing the Agno 1.x tables {_describe_tables(pending)} copies data and cannot be rendered "
            f"as SQL; run agno-migrate upgrade online"
        )
    data_steps = [s.version for s in the_plan.steps if s.copies_data]
    if data_steps:
        raise Refused(
            f"step {', '.join(data_steps)} copies data and cannot be rendered as SQL; run agno-migrate "
            f"upgrade online (or render up to the step before it with --to)"
        )

    def body(ctx):
        if the_plan.create_head:
            _create_head_in(ctx, target)
            return
        _sql.ensure_version_table(ctx, target)
        if the_plan.adopt:
            _sql.record(ctx, target, registry.get(the_plan.adopt), "detect")
        for step in the_plan.steps:
            version = registry.get(step.version)
            _sql.run_script(ctx, version, "upgrade")
            _sql.record(ctx, target, version, "upgrade")
            _sql.write_agno_stamps(ctx, target, version)

    rendered = _sql.render_offline(target, body, existing_tables=existing)
    return Outcome(target, before=the_plan.current, after=recorded, sql=rendered)


def downgrade(db: str | Target | None, to: str) -> Outcome:
    """Take the database down to ``to``. Every step on the way must be reversible; otherwise
    Refused (exit 8) is raised before anything changes."""
    target = resolve(db)
    goal = registry.get(to)
    if target.is_mongo:
        return _mongo().downgrade(target, goal)
    with _locked(target) as conn:
        recorded, found = _read_state(conn, target)
        if recorded is None:
            _check_detection(target, found)
            if found.version is None:
                raise Refused(f"{target.masked_url} has no {target.session_table} table: nothing to downgrade")
            recorded = found.version.version
        conn.rollback()
        steps = reversible_steps(target, recorded, goal)
        outcome = Outcome(target, before=recorded, after=recorded)
        if found is not None and steps:
            outcome.adopted = _adopt(conn, target, found.version)
            conn.commit()
        for version in steps:
            if _apply(conn, target, version, "downgrade", outcome.report, None):
                outcome.applied.append(version.version)
        outcome.after = _sql.recorded_version(conn, target)
        conn.commit()
        return outcome


def reversible_steps(target: Target, recorded: str, goal: SchemaVersion) -> list[SchemaVersion]:
    """The steps to undo from ``recorded`` down to ``goal``; Refused (nothing changed) if one of
    them is irreversible."""
    steps = registry.steps_down(recorded, goal.version)
    blocked = [v.version for v in steps if not v.reversible]
    if blocked:
        raise Refused(
            f"cannot downgrade {target.session_table} from {recorded} to {goal.version}: "
            f"{', '.join(blocked)} is irreversible ({registry.get(blocked[0]).summary}); nothing was changed"
        )
    return steps


def stamp(db: str | Target | None, version: str) -> Outcome:
    """Record ``version`` as the database's version without running anything (an operator's
    override, as ``alembic stamp``). Raises UnknownVersion for a version not in the registry."""
    target = resolve(db)
    entry = registry.get(version)
    if target.is_mongo:
        return _mongo().stamp(target, entry)
    with _locked(target) as conn:
        before = _sql.recorded_version(conn, target)
        ctx = _sql.migration_context(target, conn)
        _sql.ensure_version_table(ctx, target)
        table = _sql.version_table(target)
        _sql.execute(ctx, table.delete())
        _sql.record(ctx, target, entry, "stamp")
        conn.commit()
        return Outcome(target, before=before, after=entry.version)
