"""The user commands of the library, and the one migration flow behind them, for every backend.

Every mutating command takes the backend's lock first, then reads the version again (another
process may have done the work), then plans from the registry, runs each step and records it. The
backend (:func:`agno_migrate.migrate.backend.backend_for`) knows how to do each of those on its
database; the order, the refusals, and the rules of detection (drift, damage) are decided here.
"""

from __future__ import annotations

from typing import Any

from agno_migrate import registry
from agno_migrate.errors import Incomplete, Refused, SchemaBehind, SchemaDrift, UsageError
from agno_migrate.migrate.backend import Backend, backend_for
from agno_migrate.migrate.model import (
    AgnoTable,
    Detection,
    HeadDiff,
    LegacyTable,
    Online,
    Outcome,
    Plan,
    Progress,
    State,
    Status,
    Step,
    TableUpgrade,
)
from agno_migrate.migrate.report import StepReport
from agno_migrate.registry import SchemaVersion
from agno_migrate.target import Target, resolve

AgnoDb = Any
"""An Agno ``SqliteDb``, ``PostgresDb``, ``MySQLDb`` or ``MongoDb`` (read by its attributes,
:mod:`agno_migrate.agno_db`; agno is never imported)."""

# --- the rules every backend follows --------------------------------------------------------------


def _target(db) -> Target:
    """The Target of a URL, a Target, None (the default URL) or an Agno ``Db`` object
    (:func:`agno_migrate.target.resolve`), its explicit table names checked against the known table
    types (UsageError)."""
    from agno_migrate.tables import check_names

    target = resolve(db)
    check_names(target.tables)
    return target


def _check_detection(target: Target, found: Detection, noun: str) -> None:
    """Refuse to adopt tables that match no schema version, or that look like a version but lack
    what it has (``found.damage``): SchemaDrift, nothing is changed. A runs table that exists
    without the session table (another session table's: ``found.orphan_runs``) is Refused, naming
    ``--runs-table``: head created beside it would be half usable. ``noun``: the backend's word
    for a table."""
    if found.orphan_runs and not found.creating:
        owner = "" if found.orphan_runs == "?" else f" (its runs belong to {found.orphan_runs})"
        raise Refused(
            f"the runs {noun} {target.runs_table} exists without {target.session_table}{owner}: creating "
            f"{target.session_table} beside it would leave its runs unwritable; nothing changed: give "
            f"{target.session_table} its own runs {noun} with --runs-table NAME "
            f"(Agno's name for it: {target.session_table}_runs)"
        )
    if found.not_agno:
        raise SchemaDrift(f"{'; '.join(found.drift)}; nothing changed")
    if found.has_session_table and found.version is None:
        raise SchemaDrift(f"{target.session_table} matches no known schema version: {'; '.join(found.drift)}")
    if found.damage:
        raise SchemaDrift(
            f"{target.session_table} does not match Agno {found.version.version}: {'; '.join(found.damage)}; "
            f"nothing changed (repair the {noun}s, or record their version with agno-migrate stamp VERSION)"
        )


def _refuse_early(
    backend: type[Backend], target: Target, legacy_tables: list[str] | None = None, accept: list[str] | None = None
) -> None:
    """Raise what would refuse the command (a version or an Agno stamp ahead of this tool, tables
    that match no version, a bad --legacy-table), reading only, before a lock that writes into the
    database is taken: its document would otherwise be left in a database refused unchanged.
    Checked again under the lock (another process may have changed the database meanwhile)."""
    with backend.reading(target) as opened:
        state = opened.read_state()
        if state.recorded is None:
            _check_detection(target, state.found, opened.noun)
        _refuse_drifted(opened.other_tables())
        opened.refuse_unrepairable()
        if legacy_tables or accept:
            _check_accept(accept, opened.legacy_state(legacy_tables).tables)


def _refuse_drifted(tables: list[AgnoTable]) -> None:
    """SchemaDrift naming each other Agno table that matches no layout of its family."""
    drifted = [t for t in tables if t.drift]
    if drifted:
        raise SchemaDrift(
            "schema drift in " + "; ".join(f"{t.name} ({t.family}): {'; '.join(t.drift)}" for t in drifted)
        )


REPAIRS = "agno-migrate upgrade creates them"
"""What ``check`` says of indexes the tables lack: the upgrade repairs them."""


def _refuse_missing(status: Status, repairs: list[str]) -> None:
    """SchemaDrift naming head's indexes the session and runs tables lack, and the command that
    creates them."""
    if repairs:
        raise SchemaDrift(f"{status.target.session_table} is at {status.version} but {'; '.join(repairs)}: {REPAIRS}")


def _planned_tables(tables: list[AgnoTable]) -> list[TableUpgrade]:
    """What an upgrade to head would do to the other Agno tables: the steps each still needs."""
    return [
        TableUpgrade(t.family, t.name, t.version, t.head, [step.point for step in t.steps]) for t in tables if t.steps
    ]


def _describe_tables(tables: list[LegacyTable]) -> str:
    return ", ".join(f"{t.name} ({t.mode}, {t.rows} rows)" for t in tables)


def _unreadable_message(tables: dict[str, int]) -> str:
    """What is missing from the Agno 1.x import, and the two ways on."""
    names = ", ".join(f"{name} ({count} row(s))" for name, count in sorted(tables.items()))
    flags = " ".join(f"--accept-unreadable {name}" for name in sorted(tables))
    return (
        f"Agno 1.x rows not imported, they could not be read: {names}; repair them and run agno-migrate "
        f"upgrade (it reads them again), or accept their loss with agno-migrate upgrade {flags}"
    )


def _check_accept(accept: list[str] | None, tables: list[LegacyTable]) -> set[str]:
    """The tables named by ``accept_unreadable``: each must be an Agno 1.x table of the database
    (UsageError otherwise, before anything changes)."""
    names = {t.name for t in tables}
    unknown = [name for name in accept or [] if name not in names]
    if unknown:
        raise UsageError(
            f"--accept-unreadable {', '.join(unknown)}: not an Agno 1.x table of this database"
            + (f" (those are: {', '.join(sorted(names))})" if names else " (it has none)")
        )
    return set(accept or [])


def _refuse_above(current_version: str | None, goal: SchemaVersion) -> None:
    if current_version is not None and registry.get(current_version).key > goal.key:
        raise Refused(f"the database is at {current_version}, above {goal.version}: use agno-migrate downgrade")


# --- user commands -------------------------------------------------------------------------------


def legacy_pending(db: str | Target | AgnoDb | None, unreadable: bool = True) -> list[str]:
    """The Agno 1.x tables not imported yet (reads only; not our version table), including those
    whose pass is over but left rows that could not be read (``Status.legacy_unreadable`` counts
    them), until they are imported or their loss is accepted (``upgrade(accept_unreadable=...)``);
    ``unreadable=False``: without the latter (what is still to read, not what is still to repair)."""
    target = _target(db)
    with backend_for(target).reading(target) as opened:
        state = opened.legacy_state()
        return [t.name for t in state.pending if unreadable or t.name not in state.unreadable]


def history() -> list[SchemaVersion]:
    """The registry's versions, oldest first."""
    return list(registry.VERSIONS)


def current(db: str | Target | AgnoDb | None) -> Status:
    """Where the database stands: its recorded version, or the detected one if it is not managed.

    Reads only; raises ConnectFailed, SchemaAhead.
    """
    target = _target(db)
    with backend_for(target).reading(target) as opened:
        state = opened.read_state()
        legacy = opened.legacy_state()
        pending = [t.name for t in legacy.pending]
        tables = opened.other_tables()
        missing = opened.missing_tables()
        if state.recorded is not None:
            stamp = opened.agno_stamp()
            diff = opened.head_drift() if state.recorded == registry.HEAD.version else HeadDiff()
            return Status(
                target,
                state.recorded,
                True,
                agno_stamp=stamp,
                legacy=legacy.tables,
                legacy_pending=pending,
                legacy_unreadable=legacy.unreadable,
                tables=tables,
                missing_tables=missing,
                additions=diff.additions,
                repairs=diff.missing_lines,
            )
        found = state.found
        return Status(
            target,
            found.version.version if found.version else None,
            False,
            agno_stamp=found.agno_stamp,
            drift=found.drift,
            not_agno=found.not_agno,
            legacy=legacy.tables,
            legacy_pending=pending,
            legacy_unreadable=legacy.unreadable,
            tables=tables,
            missing_tables=missing,
            additions=found.additions,
            repairs=found.repairs,
        )


def check(db: str | Target | AgnoDb | None) -> Status:
    """Succeed only when the database is at head and its physical schema is the head schema.

    Raises SchemaBehind (exit 1) naming the version found, SchemaDrift (exit 4) naming what
    differs, SchemaAhead (exit 3) or ConnectFailed (exit 5). Agno 1.x tables not imported yet
    count as behind; those with rows that could not be read raise Incomplete (exit 9) naming them,
    until the rows are imported or their loss is accepted. Then the other Agno tables (memories,
    evals, metrics, knowledge, ...): one that
    matches no layout of its family is SchemaDrift, one behind its family's head is SchemaBehind.
    """
    target = _target(db)
    status = current(target)
    if status.drift:
        raise SchemaDrift(f"schema drift in {target.session_table}: {'; '.join(status.drift)}")
    unreadable = {name: n for name, n in status.legacy_unreadable.items() if name in status.legacy_pending}
    if unreadable:
        raise Incomplete(_unreadable_message(unreadable))
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
    with backend_for(target).reading(target) as opened:
        diff = opened.head_drift()
    status.additions, status.repairs = diff.additions, diff.missing_lines
    if diff.drift:
        status.drift = diff.drift
        raise SchemaDrift(f"schema drift in {target.session_table} at {status.version}: {'; '.join(diff.drift)}")
    _refuse_missing(status, status.repairs)
    _check_other_tables(status)
    return status


def _check_other_tables(status: Status) -> None:
    """SchemaDrift naming each other Agno table that matches no layout of its family, else
    SchemaBehind naming each one behind its family's head. Tables at head (and the table types no
    Agno migration changes, always at head) pass."""
    _refuse_drifted(status.tables)
    lacking = [t for t in status.tables if t.missing]
    if lacking:
        raise SchemaDrift(
            "; ".join(f"{t.name} ({t.family}) lacks the indexes {', '.join(t.missing)}" for t in lacking)
            + f": {REPAIRS}"
        )
    behind = [t for t in status.tables if t.behind]
    if behind:
        raise SchemaBehind(
            f"{status.target.session_table} is at head {status.version}, but other Agno tables are behind: "
            + ", ".join(f"{t.name} ({t.family}) at {t.version}, head {t.head}" for t in behind)
            + ": run agno-migrate upgrade",
            found=status.version,
        )


def plan(db: str | Target | AgnoDb | None, to: str = "head", legacy_tables: list[str] | None = None) -> Plan:
    """What :func:`upgrade` would do, without doing it (reads only): the schema steps, and the
    Agno 1.x tables it would import with their row counts."""
    target = _target(db)
    goal = registry.get(to)
    with backend_for(target).reading(target) as opened:
        state = opened.read_state()
        pending = opened.legacy_state(legacy_tables).pending
        tables = opened.other_tables()
        the_plan = _plan(target, goal, state, opened.noun)
        if goal == registry.HEAD:
            _refuse_drifted(tables)
            opened.refuse_unrepairable()
            the_plan.legacy = pending
            the_plan.tables = _planned_tables(tables)
            if state.recorded is None:
                the_plan.repairs = state.found.repairs
            elif state.recorded == registry.HEAD.version:
                the_plan.repairs = opened.head_drift().missing_lines
    return the_plan


def _plan(target: Target, goal: SchemaVersion, state: State, noun: str) -> Plan:
    """The plan from ``state`` to ``goal``. Raises SchemaDrift (see _check_detection), Refused
    when the database is above ``goal``."""
    found = state.found
    if state.recorded is None:
        _check_detection(target, found, noun)
        if found.version is None:  # empty, or Agno 1.x tables only
            if goal == registry.HEAD:
                return Plan(target, None, goal.version, [], create_head=True, drift=found.drift)
            steps = registry.steps_up(None, goal.version)
            return Plan(target, None, goal.version, [Step.of(v, "upgrade") for v in steps], drift=found.drift)
        current_version = adopt = found.version.version
    else:
        current_version, adopt = state.recorded, None
    _refuse_above(current_version, goal)
    steps = registry.steps_up(current_version, goal.version)
    return Plan(
        target,
        current_version,
        goal.version,
        [Step.of(v, "upgrade") for v in steps],
        adopt=adopt,
        drift=found.drift if found else [],
    )


def upgrade(
    db: str | Target | AgnoDb | None,
    to: str = "head",
    sql: bool = False,
    progress: Progress | None = None,
    legacy_tables: list[str] | None = None,
    accept_unreadable: list[str] | None = None,
    online: bool | Online = False,
) -> Outcome:
    """Bring the database up to ``to`` (default head).

    Takes the lock, re-reads the version, then: an empty database is created at head directly and
    stamped (no replay); an unmanaged one is fingerprinted (drift reported), its version recorded,
    then upgraded step by step. At head, the Agno 1.x tables found (or ``legacy_tables``, each
    ``NAME[:mode]``) are imported, resumably (``migrate.legacy``); their report is in
    ``Outcome.report["legacy"]``. A table whose rows could not all be read stays pending: every
    upgrade reads it again (a repaired row is imported) until its rows are all imported, or it is
    named in ``accept_unreadable`` (the loss of the rows still unreadable is then accepted and
    recorded; ``current`` shows their count). ``sql`` renders the DDL instead and changes nothing (a step
    that copies data cannot be rendered: Refused). Raises LockTimeout, SchemaDrift, SchemaAhead,
    ConnectFailed, DatabaseFailure, UsageError.

    ``online`` (True, or an :class:`Online` with the lock timeout and retries of each DDL statement;
    PostgreSQL, else UsageError): the application may go on writing during the upgrade: each DDL
    statement waits at most a short time for its lock and is retried (LockTimeout after the last
    retry, what was done kept for the next run), indexes are built concurrently, the JSON columns
    become JSONB through shadow columns, the runs are copied in short transactions with a final
    catch-up (docs/online.md).
    """
    target = _target(db)
    goal = registry.get(to)
    backend = backend_for(target)
    online = _online(target, online, sql)
    if sql:
        return _upgrade_sql(target, backend, goal, legacy_tables)
    if backend.lock_writes:
        _refuse_early(backend, target, legacy_tables, accept_unreadable)
    with backend.locked(target) as opened:
        opened.online = online
        # a bad --legacy-table (name, mode, missing table) or --accept-unreadable is refused before any change
        accept = _check_accept(accept_unreadable, opened.legacy_state(legacy_tables).tables)
        others = opened.other_tables()  # the session steps change none of them: read once, under the lock
        _refuse_drifted(others)  # before any change, as drift in the session table
        opened.refuse_unrepairable()
        opened.rollback()
        outcome = _upgrade_locked(opened, target, goal, progress)
        if outcome.after == registry.HEAD.version:
            diff = opened.head_drift()  # what no upgrade changes (a missing key) is said, not repaired
            outcome.drift += [line for line in diff.drift if line not in outcome.drift]
            outcome.additions = diff.additions
            outcome.repaired = opened.repair_indexes(diff.missing)
            tables = [t for t in others if not t.drift and not t.elsewhere]
            outcome.tables = opened.upgrade_tables(tables, outcome.report)
            pending = opened.legacy_state(legacy_tables).pending
            if pending:
                outcome.report.legacy = opened.import_legacy(pending, progress, accept)
        return outcome


def _online(target: Target, online: bool | Online, sql: bool) -> Online | None:
    """The online options of an upgrade (None: an ordinary one); UsageError where they do not apply."""
    from agno_migrate.backends import dialect_of

    if not online:
        return None
    if sql:
        raise UsageError("--online and --sql do not go together: --sql renders the ordinary upgrade's DDL")
    if not dialect_of(target).online_ddl:
        raise UsageError(
            f"--online applies to PostgreSQL only, not to {target.backend}; run agno-migrate upgrade without "
            f"it (docs/online.md says what it does on each backend)"
        )
    options = online if isinstance(online, Online) else Online()
    if not options.lock_timeout > 0 or options.retries < 0:
        raise UsageError("the DDL lock timeout must be above 0 seconds and the retries at least 0")
    return options


def _upgrade_locked(opened: Backend, target: Target, goal: SchemaVersion, progress: Progress | None) -> Outcome:
    """Look again under the lock, then create head, or adopt and step up to ``goal``."""
    state = opened.read_state()
    found = state.found
    current_version = state.recorded
    outcome = Outcome(target, before=state.recorded, after=state.recorded)
    if state.recorded is None:
        _check_detection(target, found, opened.noun)
        outcome.drift = found.drift
        if found.version is None:  # empty, or Agno 1.x tables only, or head half created
            if found.creating and goal != registry.HEAD:
                raise Refused(
                    f"creating {target.session_table} at head was interrupted: run agno-migrate upgrade to finish it"
                )
            if goal == registry.HEAD:
                opened.create_head(resume=found.creating)
                outcome.created = True
                outcome.after = registry.HEAD.version
                return outcome
        else:
            current_version = found.version.version
    _refuse_above(current_version, goal)  # before any record: the refusal leaves nothing behind
    if current_version is not None and state.recorded is None:
        opened.adopt(found.version)  # committed with the first step where the backend has transactions
        outcome.before = outcome.adopted = current_version
    for version in registry.steps_up(current_version, goal.version):
        if _apply(opened, version, "upgrade", outcome.report, progress):
            outcome.applied.append(version.version)
    outcome.after = opened.recorded_version()
    opened.commit()
    return outcome


def _apply(opened: Backend, version: SchemaVersion, direction: str, report: StepReport, progress) -> bool:
    """Run one step and its record (in one transaction where the backend has them); False if the
    database was already past it (another process did it). Raises what the step raises, its
    transaction rolled back."""
    try:
        now = opened.recorded_version()
        if direction == "upgrade" and now is not None and registry.get(now).key >= version.key:
            opened.rollback()
            return False
        if direction == "downgrade" and (now is None or registry.get(now).key < version.key):
            opened.rollback()
            return False
        done = opened.run_step(version, direction, report, progress)
        reached = version if direction == "upgrade" else registry.previous(version.version)
        opened.record_step(version, direction, reached, done)
        opened.commit()
        return True
    except BaseException:
        opened.rollback()
        raise


def _upgrade_sql(
    target: Target, backend: type[Backend], goal: SchemaVersion, legacy_tables: list[str] | None
) -> Outcome:
    """Render the DDL of the planned upgrade without changing anything. Raises UsageError where
    the backend has no SQL, Refused for a step (or an Agno 1.x import) that copies data."""
    if not backend.renders_sql:
        raise UsageError(
            f"--sql is not applicable to {backend.kind}: it has no SQL; use agno-migrate plan to see the steps"
        )
    with backend.reading(target) as opened:
        state = opened.read_state()
        pending = opened.legacy_state(legacy_tables).pending
        the_plan = _plan(target, goal, state, opened.noun)
        tables = _planned_tables(opened.other_tables()) if goal == registry.HEAD else []
        if tables:
            raise Refused(
                "the other Agno tables "
                + ", ".join(f"{t.name} ({t.family})" for t in tables)
                + " are brought to head online only; run agno-migrate upgrade (--sql renders the session tables' "
                "steps when no other table is behind)"
            )
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
        rendered = opened.render_upgrade(the_plan)
    return Outcome(target, before=the_plan.current, after=state.recorded, sql=rendered)


def downgrade(db: str | Target | AgnoDb | None, to: str) -> Outcome:
    """Take the database down to ``to``. Every step on the way must be reversible; otherwise
    Refused (exit 8) is raised before anything changes."""
    target = _target(db)
    goal = registry.get(to)
    backend = backend_for(target)
    if backend.lock_writes:
        _refuse_early(backend, target)
    with backend.locked(target) as opened:
        state = opened.read_state()
        found, recorded = state.found, state.recorded
        if recorded is None:
            _check_detection(target, found, opened.noun)
            if found.version is None:
                raise Refused(f"{target.masked_url} has no {target.session_table} {backend.noun}: nothing to downgrade")
            recorded = found.version.version
        opened.rollback()
        steps = reversible_steps(target, recorded, goal)
        outcome = Outcome(target, before=recorded, after=recorded)
        if found is not None and steps:
            opened.adopt(found.version)
            opened.commit()
            outcome.adopted = found.version.version
        for version in steps:
            if _apply(opened, version, "downgrade", outcome.report, None):
                outcome.applied.append(version.version)
        outcome.after = opened.recorded_version()
        opened.commit()
        return outcome


def _refuse_unmatched_stamp(target: Target, state: State, entry: SchemaVersion) -> None:
    found = state.found
    if state.recorded is not None or found is None or not found.has_session_table or found.version is not None:
        return
    shown = "; ".join(found.drift[:3]) + ("; ..." if len(found.drift) > 3 else "")
    what = shown if found.not_agno else f"{target.session_table} matches no known schema version ({shown})"
    raise Refused(
        f"{what}: stamping it {entry.version} would record a version it does not have; nothing changed "
        f"(agno-migrate stamp --force {entry.version} records it anyway)"
    )


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


def stamp(db: str | Target | AgnoDb | None, version: str, force: bool = False) -> Outcome:
    """Record ``version`` as the database's version without running anything (an operator's
    override, as ``alembic stamp``). Raises UnknownVersion for a version not in the registry.
    A database not managed yet whose session table matches no version (or is not Agno's at all)
    is Refused (exit 8, nothing changed) unless ``force``: the record would claim a version its
    tables do not have."""
    target = _target(db)
    entry = registry.get(version)
    backend = backend_for(target)
    if not force and backend.lock_writes:
        with backend.reading(target) as opened:
            _refuse_unmatched_stamp(target, opened.read_state(), entry)
    with backend.locked(target) as opened:
        if not force:
            _refuse_unmatched_stamp(target, opened.read_state(), entry)
            opened.rollback()
        before = opened.recorded_version()
        opened.restamp(entry)
        opened.commit()
        return Outcome(target, before=before, after=entry.version)
