"""What a MongoDB step (``versions/mongo/*.py``) works with: the database, the target's names, the
report, progress, checkpoints, the lock, and the writing of runs shared by the 3.0.0 copy and the
Agno 1.x import (their ids by ``convert.rekey_runs``, the one rule of the SQL steps too).

MongoDB has no transactional DDL and no guaranteed transactions (a standalone server has none), so
every step is idempotent and records its progress per batch: a step killed at any point completes
on the next run with the same result.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import Any

from agno_migrate import convert, registry
from agno_migrate.migrate.mongo import state as mongo_state
from agno_migrate.migrate.report import StepReport
from agno_migrate.registry import SchemaVersion
from agno_migrate.target import Target

BATCH = 200  # documents per batch (and per checkpoint)
LOOKUP_CHUNK = 500
NOT_A_STRING = {"$not": {"$type": "string"}}


@dataclass
class MongoStep:
    """One step's (or the Agno 1.x import's) work on ``db``: what it meets goes to ``report``,
    its progress to ``progress(done, total)``; ``lock`` (when given) is checked before each batch."""

    db: Any
    target: Target
    report: StepReport = field(default_factory=StepReport)
    progress: Callable[[int, int], None] | None = None
    lock: Any = None

    @property
    def sessions(self):
        return self.db[self.target.session_table]

    @property
    def runs(self):
        return self.db[self.target.runs_table]

    def tick(self, done: int, total: int) -> None:
        """Report progress, and stop if the lock was lost (before the next batch writes)."""
        if self.lock is not None:
            self.lock.check()
        if self.progress:
            self.progress(done, total)

    # --- collections and batches -------------------------------------------------------------

    def ensure_collection(self, name: str, indexes) -> None:
        """Create collection ``name`` (if missing) with ``indexes`` ((fields, unique) pairs); an
        index already there with the same keys is left alone, so this is idempotent."""
        from pymongo import IndexModel
        from pymongo.errors import CollectionInvalid

        if name not in self.db.list_collection_names():
            try:
                self.db.create_collection(name)
            except CollectionInvalid:  # created meanwhile
                pass
        have = {tuple(k for k, _ in info["key"]) for info in self.db[name].index_information().values()}
        models = [
            IndexModel(
                [(f, 1) for f in fields],
                name="_".join(f"{f}_1" for f in fields),
                **({"unique": True} if unique else {}),
            )
            for fields, unique in indexes
            if tuple(fields) not in have
        ]
        if models:
            self.db[name].create_indexes(models)

    def batches(self, collection, query: dict, checkpoint: str, projection: dict | None = None) -> Iterator[list[dict]]:
        """Documents of ``collection`` matching ``query`` in batches, by keyset on ``session_id``,
        resuming after the checkpoint's ``last``; the caller saves it with :meth:`done_batch`. A
        last batch holds the documents whose session_id is not a string (keyset cannot page them)."""
        state = mongo_state.checkpoint(self.db, self.target, checkpoint) or {}
        last = state.get("last")
        while True:
            where = dict(query)
            where["session_id"] = {"$gt": last} if last is not None else {"$type": "string"}
            batch = list(collection.find(where, projection).sort("session_id", 1).limit(BATCH))
            if not batch:
                break
            last = batch[-1]["session_id"]
            yield batch
        odd = list(collection.find({**query, "session_id": NOT_A_STRING}, projection))
        if odd:
            yield odd

    def done_batch(self, checkpoint: str, batch: list[dict], **counts) -> None:
        last = batch[-1].get("session_id")
        values: dict = {"last": last} if isinstance(last, str) else {}
        update: dict = {"$set": values} if values else {}
        if counts:
            update["$inc"] = counts
        if update:
            mongo_state.state(self.db, self.target).update_one({"_id": f"checkpoint:{checkpoint}"}, update, upsert=True)

    # --- runs ------------------------------------------------------------------------------------

    def insert_runs(self, rows: list[dict]) -> int:
        """Insert the run rows not stored yet; returns how many were inserted.

        Their ids follow ``convert.rekey_runs``: a row already stored for the same session and
        position was written by an earlier, interrupted run and is skipped; a ``run_id`` held by
        another run is stored under a derived id (deterministic, so a re-run finds it) and reported
        in ``duplicate_run_ids``.
        """
        keys = [convert.RunKey(row["run_id"], row["session_id"], row["run_index"]) for row in rows]
        ids, rekeyed = convert.rekey_runs(keys, self._owners)
        self.report.note_rekeyed(rekeyed)
        fresh = [
            row if run_id == row["run_id"] else {**row, "run_id": run_id}
            for row, run_id in zip(rows, ids, strict=True)
            if run_id is not None
        ]
        return self.insert_documents(self.runs, fresh, "run_id")

    def insert_documents(self, collection, docs: list[dict], key: str) -> int:
        """Insert ``docs``; one that BSON cannot hold (an integer beyond 64 bits, over 16 MB) is
        reported in ``unstorable`` and left where it came from, the others are inserted."""
        from bson.errors import InvalidDocument
        from pymongo.errors import DocumentTooLarge

        if not docs:
            return 0
        try:
            collection.insert_many(docs, ordered=True)
            return len(docs)
        except (OverflowError, InvalidDocument, DocumentTooLarge):
            pass
        inserted = 0
        for doc in docs:
            doc.pop("_id", None)  # insert_many may have assigned one before failing
            try:
                if collection.find_one({key: doc[key]}, {"_id": 1}) is None:
                    collection.insert_one(doc)
                inserted += 1
            except (OverflowError, InvalidDocument, DocumentTooLarge) as exc:
                self.report.note_unstorable(collection.name, doc[key], f"{exc.__class__.__name__}: {str(exc)[:120]}")
        return inserted

    def _owners(self, ids: list[str]) -> dict:
        """run_id -> (session_id, run_index) for the given ids already in the runs collection."""
        found = {}
        for start in range(0, len(ids), LOOKUP_CHUNK):
            query = {"run_id": {"$in": ids[start : start + LOOKUP_CHUNK]}}
            for doc in self.runs.find(query, {"run_id": 1, "session_id": 1, "run_index": 1, "_id": 0}):
                found[doc["run_id"]] = (doc.get("session_id"), doc.get("run_index"))
        return found


# --- the step modules ---------------------------------------------------------------------------


def steps_dir() -> Path:
    """Where the MongoDB steps are: inside the installed package, or the repository's top-level
    ``versions/mongo`` when running from a source checkout."""
    from agno_migrate.migrate import versions_root

    return versions_root() / "mongo"


@lru_cache(maxsize=1)
def step_modules() -> dict[str, ModuleType]:
    """version -> its step module (``versions/mongo/v<X>_<Y>_<Z>_<name>.py``), loaded once."""
    modules = {}
    for path in sorted(steps_dir().glob("v*.py")):
        spec = importlib.util.spec_from_file_location(f"agno_migrate_mongo_steps.{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        modules[module.version] = module
    return modules


def registry_mismatches() -> list[str]:
    """How the MongoDB steps disagree with the registry; empty when there is one per version."""
    have = set(step_modules())
    want = [v.version for v in registry.VERSIONS]
    problems = [f"no MongoDB step for {v}" for v in want if v not in have]
    problems += [f"MongoDB step {v} is not in the registry" for v in sorted(have - set(want))]
    return problems


def run_step(step: MongoStep, version: SchemaVersion, direction: str) -> None:
    getattr(step_modules()[version.version], direction)(step)
