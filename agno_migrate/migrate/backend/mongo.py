"""The MongoDB backend of the migration flow: the :class:`agno_migrate.migrate.backend.Backend` that
``migrate.runner`` drives, over our state collection (``migrate.mongo.state``: record, lease lock,
checkpoints), detection (``migrate.mongo.detect``), the steps of ``versions/mongo``
(``migrate.mongo.step``) and the Agno 1.x import (``migrate.legacy.mongo``).

MongoDB has no transactional DDL and a standalone server no transactions: every write is kept at
once (``commit`` and ``rollback`` do nothing), every step is idempotent and checkpoints its batches,
and the record is the last write of a step, so a run killed before it runs the step again.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from agno_migrate import registry
from agno_migrate.backends import dialect_of
from agno_migrate.backends.mongo import database, mongo_errors
from agno_migrate.migrate.detection import missing_tables, other_tables
from agno_migrate.migrate.legacy import mongo as mongo_legacy
from agno_migrate.migrate.model import (
    AgnoTable,
    Detection,
    HeadDiff,
    LegacyState,
    LegacyTable,
    Plan,
    Progress,
    State,
    TableUpgrade,
)
from agno_migrate.migrate.mongo import detect as mongo_detect
from agno_migrate.migrate.mongo import state as mongo_state
from agno_migrate.migrate.mongo import tables as mongo_tables
from agno_migrate.migrate.mongo.state import MongoLock
from agno_migrate.migrate.mongo.step import MongoStep, run_step
from agno_migrate.migrate.report import StepReport
from agno_migrate.registry import SchemaVersion
from agno_migrate.target import Target


class MongoBackend:
    """A MongoDB database of a target (see ``Backend`` for what each method does)."""

    kind = "MongoDB"
    noun = "collection"
    renders_sql = False
    lock_writes = True  # the lease is a document in our state collection
    online = None  # no DDL locks to keep short: the steps already write batch by batch

    def __init__(self, target: Target, db, lock: MongoLock | None = None):
        self.target = target
        self.db = db
        self.lock = lock

    @classmethod
    @contextlib.contextmanager
    def reading(cls, target: Target) -> Iterator[MongoBackend]:
        with mongo_errors(target):
            yield cls(target, database(target))

    @classmethod
    @contextlib.contextmanager
    def locked(cls, target: Target) -> Iterator[MongoBackend]:
        with mongo_errors(target):
            db = database(target)
            with MongoLock(db, target) as lock:
                yield cls(target, db, lock)

    # --- reading --------------------------------------------------------------------------------

    def read_state(self) -> State:
        recorded = mongo_state.recorded_version(self.db, self.target)
        if recorded is not None:
            return State(recorded)
        if mongo_state.creating(self.db, self.target):
            # head half-created by a killed run: read as empty, and created again (every step and
            # the creation itself are idempotent here, so nothing needs finishing first)
            return State(None, Detection(version=None, has_session_table=False))
        return State(None, mongo_detect.detect(self.db, self.target))

    def recorded_version(self) -> str | None:
        return mongo_state.recorded_version(self.db, self.target)

    def agno_stamp(self) -> str | None:
        return mongo_state.agno_stamp(self.db, self.target)

    def legacy_state(self, named: list[str] | None = None) -> LegacyState:
        found = mongo_detect.legacy_collections(self.db, self.target)
        tables = mongo_legacy.resolve_collections(self.db, self.target, found, named)
        return LegacyState(tables, *mongo_legacy.pending(self.db, self.target, tables))

    def head_drift(self) -> HeadDiff:
        return mongo_detect.compare_to_head(self.db, self.target)

    def refuse_unrepairable(self) -> None:
        for collection, name, fields in self._missing_specs(unique=True):
            mongo_tables.refuse_duplicates(self.db[collection], name, fields, "the session store")

    def repair_indexes(self, missing: list[tuple[str, str]]) -> list[str]:
        from pymongo import IndexModel

        missing = self._missing_specs(missing=missing)
        for collection, name, fields, unique in missing:
            self.db[collection].create_indexes([IndexModel([(f, 1) for f in fields], name=name, unique=unique)])
        return [f"{collection}.{name}" for collection, name, _, _ in missing]

    def _missing_specs(self, unique: bool = False, missing: list[tuple[str, str]] | None = None) -> list[tuple]:
        """(collection, name, fields, unique) of head's indexes the collections there lack (``missing``,
        else read); with ``unique`` only the unique ones, as (collection, name, fields)."""
        from agno_migrate.schema import mongo_head_indexes, mongo_index_name

        missing = set(self.head_drift().missing if missing is None else missing)
        out = [
            (collection, mongo_index_name(fields), fields, is_unique)
            for collection, specs in mongo_head_indexes(self.target).items()
            for fields, is_unique in specs
            if (collection, mongo_index_name(fields)) in missing
        ]
        if unique:
            return [(c, n, f) for c, n, f, u in out if u]
        return out

    def other_tables(self) -> list[AgnoTable]:
        return other_tables(self.db, None, self.target, dialect_of(self.target).name)

    def missing_tables(self) -> dict[str, str]:
        return missing_tables(self.db, None, self.target)

    # --- writing ------------------------------------------------------------------------------------

    def upgrade_tables(self, tables: list[AgnoTable], report: StepReport) -> list[TableUpgrade]:
        return mongo_tables.upgrade_tables(self.db, self.target, tables, report, self.lock)

    def create_head(self, resume: bool) -> None:
        """The head collections and indexes, Agno's stamps, then our record (idempotent: ``resume``
        changes nothing here)."""
        from agno_migrate.schema import mongo_head_indexes

        step = MongoStep(self.db, self.target)
        mongo_state.mark_creating(self.db, self.target, registry.HEAD)
        for name, indexes in mongo_head_indexes(self.target).items():
            step.ensure_collection(name, indexes)
        mongo_state.write_agno_stamps(self.db, self.target, registry.HEAD)
        mongo_state.record(self.db, self.target, registry.HEAD, "create")

    def adopt(self, version: SchemaVersion) -> None:
        mongo_state.write_agno_stamps(self.db, self.target, version)  # Agno never stamps MongoDB itself
        mongo_state.record(self.db, self.target, version, "detect")

    def run_step(
        self, version: SchemaVersion, direction: str, report: StepReport, progress: Progress | None
    ) -> StepReport:
        """Returns the step's own report (its counts are kept in the step's record)."""
        mongo_state.start_step(self.db, self.target, version, direction)
        step_report = StepReport()
        run_step(MongoStep(self.db, self.target, step_report, progress, self.lock), version, direction)
        self.lock.check()  # a lease lost during the step: stop before the record
        report.merge(step_report)
        return step_report

    def record_step(self, version: SchemaVersion, direction: str, reached: SchemaVersion, done: StepReport) -> None:
        mongo_state.write_agno_stamps(self.db, self.target, reached)
        mongo_state.finish_step(self.db, self.target, version, direction, done)
        mongo_state.clear_checkpoint(self.db, self.target, version.version)
        mongo_state.record(self.db, self.target, reached, direction)

    def restamp(self, version: SchemaVersion) -> None:
        mongo_state.record(self.db, self.target, version, "stamp")

    def import_legacy(self, tables: list[LegacyTable], progress: Progress | None, accept: set[str]):
        return mongo_legacy.import_collections(self.db, self.target, tables, self.lock, progress, accept)

    def render_upgrade(self, plan: Plan) -> str:
        raise NotImplementedError("MongoDB has no SQL to render")  # renders_sql is False

    def commit(self) -> None:
        """Nothing to do: every write is kept at once."""

    def rollback(self) -> None:
        """Nothing to do: what a step wrote stays, and the step completes it when run again."""
