"""The MongoDB runner: the user commands of ``migrate.runner`` for ``mongodb://`` targets.

Same flow as SQL (DESIGN "Flows"): take the lock (a lease document, ``mongo_state.MongoLock``),
read the version again, plan from the registry, run each step (``versions/mongo``), record it.
MongoDB has no transactional DDL, so each step is idempotent and checkpoints its batches; the
record follows the step's effect, so a crash between the two re-runs the (idempotent) step.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from agno_migrate import registry
from agno_migrate.backends.mongo import database, mongo_errors
from agno_migrate.errors import Refused, SchemaDrift, UsageError
from agno_migrate.migrate.legacy import mongo as mongo_legacy
from agno_migrate.migrate.mongo import detect as mongo_detect
from agno_migrate.migrate.mongo import state as mongo_state
from agno_migrate.migrate.mongo.state import MongoLock, recorded_version  # noqa: F401  (the store's one-query check)
from agno_migrate.migrate.mongo.step import MongoStep, run_step
from agno_migrate.migrate.report import StepReport
from agno_migrate.migrate.runner import Outcome, Plan, Status, _plan_from, reversible_steps
from agno_migrate.registry import SchemaVersion
from agno_migrate.target import Target


@contextlib.contextmanager
def _database(target: Target) -> Iterator[object]:
    with mongo_errors(target):
        yield database(target)


@contextlib.contextmanager
def _locked(target: Target) -> Iterator[tuple[object, MongoLock]]:
    with _database(target) as db, MongoLock(db, target) as lock:
        yield db, lock


def _read_state(db, target: Target):
    recorded = recorded_version(db, target)
    if recorded is not None:
        return recorded, None
    if mongo_state.creating(db, target):  # head half-created by a killed run: as empty, created again
        return None, mongo_detect.Detection(version=None, has_session_table=False)
    return None, mongo_detect.detect(db, target)


def _check_detection(target: Target, found) -> None:
    if found.has_session_table and found.version is None:
        raise SchemaDrift(f"{target.session_table} matches no known schema version: {'; '.join(found.drift)}")


def _refusals(target: Target, legacy_tables: list[str] | None = None) -> None:
    """Raise what would refuse the command (a version or an Agno stamp ahead of this tool, drift
    that matches no version, a bad --legacy-table), reading only, before the lock is taken: the
    lock's document would otherwise leave our state collection in a database refused unchanged.
    Checked again under the lock (another process may have changed the database meanwhile)."""
    with _database(target) as db:
        recorded, found = _read_state(db, target)
        if recorded is None:
            _check_detection(target, found)
        if legacy_tables:
            _legacy_state(db, target, legacy_tables)


def _legacy_state(db, target: Target, named: list[str] | None = None):
    tables = mongo_legacy.resolve_collections(db, target, mongo_detect.legacy_collections(db, target), named)
    return tables, mongo_legacy.pending(db, target, tables)


# --- user commands (called by migrate.runner for MongoDB targets) --------------------------------


def legacy_pending(target: Target) -> list[str]:
    with _database(target) as db:
        return [t.name for t in _legacy_state(db, target)[1]]


def current(target: Target) -> Status:
    with _database(target) as db:
        recorded, found = _read_state(db, target)
        legacy, pending = _legacy_state(db, target)
        names = [t.name for t in pending]
        if recorded is not None:
            return Status(
                target,
                recorded,
                True,
                agno_stamp=mongo_state.agno_stamp(db, target),
                legacy=legacy,
                legacy_pending=names,
            )
        version = found.version.version if found.version else None
        return Status(
            target, version, False, agno_stamp=found.agno_stamp, drift=found.drift, legacy=legacy, legacy_pending=names
        )


def head_drift(target: Target) -> list[str]:
    with _database(target) as db:
        return mongo_detect.compare_to_head(db, target)


def plan(target: Target, goal: SchemaVersion, legacy_tables: list[str] | None) -> Plan:
    with _database(target) as db:
        recorded, found = _read_state(db, target)
        _, pending = _legacy_state(db, target, legacy_tables)
    the_plan = _plan_from(target, goal, recorded, found)
    if goal == registry.HEAD:
        the_plan.legacy = pending
    return the_plan


def upgrade(target: Target, goal: SchemaVersion, sql: bool, progress, legacy_tables: list[str] | None) -> Outcome:
    if sql:
        raise UsageError("--sql is not applicable to MongoDB: it has no SQL; use agno-migrate plan to see the steps")
    _refusals(target, legacy_tables)
    with _locked(target) as (db, lock):
        recorded, found = _read_state(db, target)
        current_version = recorded
        outcome = Outcome(target, before=recorded, after=recorded)
        if recorded is None:
            _check_detection(target, found)
            outcome.drift = found.drift
            if found.version is None and goal == registry.HEAD:
                _create_head(db, target)
                outcome.created = True
                outcome.after = registry.HEAD.version
            elif found.version is not None:
                mongo_state.write_agno_stamps(db, target, found.version)  # Agno never stamps MongoDB
                mongo_state.record(db, target, found.version, "detect")
                current_version = outcome.before = outcome.adopted = found.version.version
        if not outcome.created:
            if current_version is not None and registry.get(current_version).key > goal.key:
                raise Refused(f"the database is at {current_version}, above {goal.version}: use agno-migrate downgrade")
            for version in registry.steps_up(current_version, goal.version):
                if _apply(db, target, lock, version, "upgrade", outcome.report, progress):
                    outcome.applied.append(version.version)
            outcome.after = recorded_version(db, target)
        if outcome.after == registry.HEAD.version:
            _, pending = _legacy_state(db, target, legacy_tables)
            if pending:
                outcome.report.legacy = mongo_legacy.import_collections(db, target, pending, lock, progress)
        return outcome


def _create_head(db, target: Target) -> None:
    """An empty database: the head collections and indexes, our record and Agno's stamps."""
    from agno_migrate.schema import mongo_head_indexes

    step = MongoStep(db, target)
    mongo_state.mark_creating(db, target, registry.HEAD)
    for name, indexes in mongo_head_indexes(target).items():
        step.ensure_collection(name, indexes)
    mongo_state.write_agno_stamps(db, target, registry.HEAD)
    mongo_state.record(db, target, registry.HEAD, "create")


def _apply(db, target: Target, lock: MongoLock, version: SchemaVersion, direction: str, report: dict, progress) -> bool:
    """Run one step, then record it; False if the database was already past it (another process).
    The record is the last write: a run killed before it runs the (idempotent) step again."""
    now = recorded_version(db, target)
    if direction == "upgrade" and now is not None and registry.get(now).key >= version.key:
        return False
    if direction == "downgrade" and (now is None or registry.get(now).key < version.key):
        return False
    mongo_state.start_step(db, target, version, direction)
    step_report = StepReport()
    run_step(MongoStep(db, target, step_report, progress, lock), version, direction)
    lock.check()
    reached = version if direction == "upgrade" else registry.previous(version.version)
    mongo_state.write_agno_stamps(db, target, reached)
    mongo_state.finish_step(db, target, version, direction, step_report)
    mongo_state.clear_checkpoint(db, target, version.version)
    mongo_state.record(db, target, reached, direction)
    report.merge(step_report)
    return True


def downgrade(target: Target, goal: SchemaVersion) -> Outcome:
    _refusals(target)
    with _locked(target) as (db, lock):
        recorded, found = _read_state(db, target)
        if recorded is None:
            _check_detection(target, found)
            if found.version is None:
                raise Refused(f"{target.masked_url} has no {target.session_table} collection: nothing to downgrade")
            recorded = found.version.version
        steps = reversible_steps(target, recorded, goal)
        outcome = Outcome(target, before=recorded, after=recorded)
        if found is not None and steps:
            mongo_state.record(db, target, found.version, "detect")
            outcome.adopted = found.version.version
        for version in steps:
            if _apply(db, target, lock, version, "downgrade", outcome.report, None):
                outcome.applied.append(version.version)
        outcome.after = recorded_version(db, target)
        return outcome


def stamp(target: Target, entry: SchemaVersion) -> Outcome:
    with _locked(target) as (db, _lock):
        before = recorded_version(db, target)
        mongo_state.record(db, target, entry, "stamp")
        return Outcome(target, before=before, after=entry.version)
