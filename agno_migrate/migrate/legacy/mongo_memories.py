"""Agno 1.x memories → the head memories collection on MongoDB (``agno_memories``, created with Agno
3.1.10's indexes and stamped ``3.0.0`` when missing). The same rules as ``legacy.sql_memories``: memory
collections (``MongoMemoryDb``, recognised by their documents' keys) by keyset on ``id`` with a checkpoint
per batch in our state collection, before the session collections; memories of session blobs checked
against what the collection holds. Without transactions a batch cut short is written again by the next
run: memories already stored with the same content are recognised and skipped."""

from __future__ import annotations

from collections.abc import Iterable

from agno_migrate.convert import memories as conv
from agno_migrate.convert.memories import split_stored
from agno_migrate.migrate.model import LegacyTable
from agno_migrate.migrate.mongo import state as mongo_state
from agno_migrate.migrate.mongo.step import MongoStep
from agno_migrate.migrate.report import LegacyReport, RowProblem
from agno_migrate.schema import MEMORIES_TABLE, MEMORY_COLUMNS, MONGO_MEMORY_INDEXES
from agno_migrate.target import Target

BATCH = 500
MEMORIES_STAMP = "3.0.0"


def ensure_memories_collection(step: MongoStep, target: Target, name: str = MEMORIES_TABLE):
    """The head memories collection (created with its indexes and stamped when missing)."""
    if name not in step.db.list_collection_names():
        step.ensure_collection(name, MONGO_MEMORY_INDEXES)
        mongo_state.stamp_table(step.db, target, name, MEMORIES_STAMP)
    return step.db[name]


def import_memory_collection(
    step: MongoStep, target: Target, legacy: LegacyTable, checkpoint: str, report: LegacyReport, claimed: set
) -> None:
    """Import one 1.x memory collection from its checkpoint on (the caller begins and ends the pass:
    ``legacy.mongo.start_pass``, ``end_pass``)."""
    db = step.db
    head = ensure_memories_collection(step, target)
    state = mongo_state.checkpoint(db, target, checkpoint) or {}
    report.tables[legacy.name] = {"mode": legacy.mode, "rows": legacy.rows, "done": False}
    last = state.get("last")
    source = db[legacy.name]
    while True:
        where = {"id": {"$gt": last}} if last is not None else {}
        batch = list(source.find(where).sort("id", 1).limit(BATCH))
        if not batch:
            break
        last = batch[-1].get("id")
        converted, failed = [], 0
        for doc in batch:
            try:
                converted.append(conv.convert_v1_memory_row(doc))
            except conv.MemoryConversionError as exc:
                report.unparseable.append(RowProblem(legacy.name, str(doc.get("id")), f"memory row: {exc}"))
                claimed.add(str(doc.get("id")))
                failed += 1
        written = write_rows(step, head, legacy.name, converted, report)
        mongo_state.state(db, target).update_one(
            {"_id": f"checkpoint:{checkpoint}"},
            {"$set": {"last": last}, "$inc": {"sessions": written, "failed": failed}},
        )
        if step.lock is not None:
            step.lock.check()  # a lease lost: stop before the next batch writes
        if last is None:  # (documents without an id: one batch, the keyset cannot page them)
            break


def write_rows(step: MongoStep, head, source: str, rows: list[dict], report: LegacyReport) -> int:
    """Insert memory ``rows``; an id already stored with the same content is skipped, with other
    content reported as a collision. Returns the rows imported (written now or already there)."""
    stored = _stored(head, [row["memory_id"] for row in rows])
    fresh, collisions = split_stored(rows, stored, lambda old, new: _canonical(old) == _canonical(new))
    reason = "memory id already in the memories collection with other content; not overwritten"
    report.collisions += [RowProblem(source, memory_id, reason) for memory_id in collisions]
    collided = len(collisions)
    fresh = [dict(row) for row in fresh]
    written = step.insert_documents(head, fresh, "memory_id")
    report.memories += written
    return len(rows) - collided - (len(fresh) - written)


def write_blob_memories(
    step: MongoStep, target: Target, source: str, found: Iterable[conv.BlobMemory], claimed: set, report
) -> int:
    """Insert the session-blob memories ``found`` that the collection does not hold yet."""
    memories = conv.newest_per_id(found)
    if not memories:
        return 0
    head = ensure_memories_collection(step, target)
    ids = {m.memory_id for m in memories} | {other for m in memories for other in m.same_as}
    present = set(_stored(head, sorted(ids))) | set(claimed)
    owners = sorted({m.row["user_id"] for m in memories}, key=lambda o: (o is None, o or ""))
    digests = {
        conv.memory_digest(doc)
        for doc in head.find({"user_id": {"$in": owners}}, {"_id": 0, "user_id": 1, "memory": 1})
    }
    fresh = []
    for memory in memories:
        if conv.already_present(memory, present, digests):
            continue
        fresh.append(dict(memory.row))
        present.add(memory.memory_id)
        digests.add(memory.digest)
    written = step.insert_documents(head, fresh, "memory_id")
    report.memories += written
    report.memories_from_sessions += written
    return written


def _stored(head, ids: list[str]) -> dict[str, dict]:
    found = {}
    for start in range(0, len(ids), 500):
        for doc in head.find({"memory_id": {"$in": ids[start : start + 500]}}, {"_id": 0}):
            found[doc["memory_id"]] = doc
    return found


def _canonical(row: dict) -> tuple:
    return tuple(list(v) if isinstance(v, tuple) else v for v in (row.get(name) for name in MEMORY_COLUMNS))
