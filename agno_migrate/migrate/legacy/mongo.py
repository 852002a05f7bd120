"""Agno 1.x collections (one per storage mode, documents shaped as the 1.x table rows) → the head
layout on MongoDB.

The same conversion as the SQL import (``convert.convert_v1_session``), the same rules
(``legacy.rules``, ``convert.rekey_runs``) and reporting (unparseable documents listed, collisions
not overwritten, duplicate run ids re-keyed), read by
keyset on ``session_id`` in batches with a checkpoint per batch in our state collection; a pass
that met unreadable documents leaves the collection pending, read again by the next run (``start_pass``,
``end_pass``: the rule of ``legacy.sql_checkpoints``). Without
transactions, a batch is written runs first, then sessions: a batch cut short is written again by
the next run, and the runs already there (same session, same position) and sessions already there
(same content) are recognised and skipped — and counted in the checkpoint as imported, as the
run that wrote them was killed before it could count them. The legacy collections are only read.
"""

from __future__ import annotations

from agno_migrate import convert
from agno_migrate.errors import UsageError
from agno_migrate.migrate.detection import LEGACY_MODES, MEMORIES
from agno_migrate.migrate.legacy import mongo_memories
from agno_migrate.migrate.legacy.rules import canonical_session, parse_table_option
from agno_migrate.migrate.model import LegacyTable
from agno_migrate.migrate.mongo import state as mongo_state
from agno_migrate.migrate.mongo.detect import legacy_mode_of
from agno_migrate.migrate.mongo.step import MongoStep
from agno_migrate.migrate.report import FilledRow, LegacyReport, RowProblem, StepReport
from agno_migrate.target import Target

CHECKPOINT = "legacy:"


def resolve_collections(db, target: Target, found: list[LegacyTable], named: list[str] | None) -> list[LegacyTable]:
    """The legacy collections to import: those named (their mode given or recognised), else those found."""
    if not named:
        return found
    by_name = {t.name: t for t in found}
    names = set(db.list_collection_names())
    out = []
    for option in named:
        name, mode = parse_table_option(option)
        if name not in names:
            raise UsageError(f"--legacy-table {name}: no such collection in {target.masked_url}")
        sample = db[name].find_one({}, sort=[("_id", 1)])
        mode = mode or (by_name[name].mode if name in by_name else (legacy_mode_of(sample) if sample else None))
        if mode is None:
            raise UsageError(f"--legacy-table {name}: not an Agno 1.x session collection; give its mode as {name}:MODE")
        out.append(LegacyTable(name, mode, db[name].count_documents({})))
    return out


def pending(db, target: Target, tables: list[LegacyTable]) -> tuple[list[LegacyTable], dict[str, int]]:
    """The legacy collections whose import has not completed, and collection → documents its last
    complete pass could not read (done: their loss accepted)."""
    prefix = "checkpoint:" + CHECKPOINT
    states = {
        doc["_id"][len(prefix) :]: doc for doc in mongo_state.state(db, target).find({"_id": {"$regex": f"^{prefix}"}})
    }
    names = {t.name for t in tables}
    failed = {
        name: int(doc["failed"])
        for name, doc in states.items()
        if name in names and doc.get("failed") and (doc.get("done") or doc.get("last") is None)
    }
    return [t for t in tables if not states.get(t.name, {}).get("done")], failed


def start_pass(db, target: Target, legacy: LegacyTable, name: str) -> dict:
    """Begin (or resume) a pass over ``legacy`` (checkpoint ``name``): a new checkpoint for a collection
    met the first time; one whose last pass ended with unreadable documents is read again from its
    start (its count restarts). Returns the checkpoint as it now is (the same rule as on SQL)."""
    state = mongo_state.checkpoint(db, target, name) or {}
    if not state:
        mongo_state.save_checkpoint(db, target, name, mode=legacy.mode, sessions=0, failed=0, done=False)
        return {}
    if state.get("last") is None and state.get("failed"):
        mongo_state.save_checkpoint(db, target, name, failed=0)
        state = {**state, "failed": 0}
    return state


def end_pass(db, target: Target, legacy: LegacyTable, name: str, accept: set[str]) -> bool:
    """End a pass: done when none of its documents failed or their loss is accepted (``accept``; their
    count kept); else pending with its checkpoint reset, read again from its start by the next run."""
    failed = (mongo_state.checkpoint(db, target, name) or {}).get("failed", 0)
    done = not failed or legacy.name in accept
    if done:
        mongo_state.save_checkpoint(db, target, name, done=True)
    else:
        mongo_state.save_checkpoint(db, target, name, done=False, last=None)
    return done


def import_collections(
    db, target: Target, tables: list[LegacyTable], lock, progress=None, accept: set[str] | frozenset = frozenset()
) -> LegacyReport:
    """Import every collection of ``tables`` into the head layout (see the module docstring);
    ``accept``: collections whose documents still unreadable after the pass are accepted as lost."""
    report = LegacyReport()
    step = MongoStep(db, target, StepReport(), progress, lock)
    total = sum(t.rows for t in tables)
    done_rows = 0
    if progress:
        progress(0, total)
    claimed: set = set()  # memory ids of unreadable memory documents (their blob copies are not imported)
    for legacy in sorted(tables, key=lambda t: t.mode != MEMORIES):  # memory collections first
        name = CHECKPOINT + legacy.name
        if legacy.mode == MEMORIES:
            start_pass(db, target, legacy, name)
            mongo_memories.import_memory_collection(step, target, legacy, name, report, claimed)
            report.tables[legacy.name]["done"] = end_pass(db, target, legacy, name, set(accept))
            done_rows += legacy.rows
            step.tick(min(done_rows, total), total)
            continue
        report.tables[legacy.name] = {"mode": legacy.mode, "rows": legacy.rows, "done": False}
        start_pass(db, target, legacy, name)
        for batch in step.batches(db[legacy.name], {}, name):
            written, failed = _import_batch(step, legacy, batch, report)
            _blob_memories(step, target, legacy, batch, report, claimed)
            step.done_batch(name, batch, sessions=written, failed=failed)
            done_rows += len(batch)
            step.tick(min(done_rows, total), total)
        report.tables[legacy.name]["done"] = end_pass(db, target, legacy, name, set(accept))
    report.duplicate_run_ids = step.report.duplicate_run_ids
    report.unparseable += [RowProblem(*unstorable) for unstorable in step.report.unstorable]
    return report


def _import_batch(step: MongoStep, legacy: LegacyTable, batch: list[dict], report: LegacyReport) -> tuple[int, int]:
    """Convert and write one batch: runs first, then the sessions. Returns (imported, failed):
    the sessions written now or already stored with the same content (see the module docstring)."""
    converted, failed = [], 0
    for doc in batch:
        try:
            session_row, runs = convert.convert_v1_session(legacy.mode, doc)
        except convert.ConversionError as exc:
            report.unparseable.append(RowProblem(legacy.name, str(doc.get("session_id")), str(exc)))
            failed += 1
            continue
        if convert.fill_created_at(session_row):
            report.created_at_filled.append(FilledRow(legacy.name, session_row["session_id"]))
        converted.append((session_row, runs))
    stored = _stored_sessions(step, [row["session_id"] for row, _ in converted])
    keep, run_rows, already = [], [], 0
    for session_row, runs in converted:
        existing = stored.get(session_row["session_id"])
        if existing is not None and canonical_session(existing) != canonical_session(session_row):
            reason = "already in the session collection with other content; not overwritten"
            report.collisions.append(RowProblem(legacy.name, session_row["session_id"], reason))
            continue
        rows, _ = convert.run_rows(session_row, runs)
        run_rows += rows
        if existing is None:
            keep.append(session_row)
        else:
            already += 1
    report.runs += step.insert_runs(run_rows)
    written = step.insert_documents(step.sessions, keep, "session_id")
    report.sessions += written
    return written + already, failed


def _blob_memories(step: MongoStep, target: Target, legacy: LegacyTable, batch: list[dict], report, claimed) -> None:
    """The memories the batch's imported sessions held in their ``memory`` blobs, into the memories
    collection; blobs whose memories cannot be read are reported (their sessions are imported all the
    same). A session that could not be read brings its memories when it is repaired (as on SQL)."""
    from agno_migrate.convert.memories import MemoryConversionError, memories_in_session_blob

    failed = {problem[1] for problem in report.unparseable if problem[0] == legacy.name}
    found = []
    for doc in batch:
        if not doc.get("memory") or str(doc.get("session_id")) in failed:
            continue
        when = doc.get("updated_at") if doc.get("updated_at") is not None else doc.get("created_at")
        try:
            found += memories_in_session_blob(doc.get("memory"), doc.get("user_id"), fallback_time=when)
        except MemoryConversionError as exc:
            report.unparseable.append(RowProblem(legacy.name, str(doc.get("session_id")), f"session memory: {exc}"))
    if found:
        mongo_memories.write_blob_memories(step, target, legacy.name, found, claimed, report)


def _stored_sessions(step: MongoStep, ids: list[str]) -> dict[str, dict]:
    """session_id -> the stored session document, for those of ``ids`` already stored."""
    found = {}
    for start in range(0, len(ids), 500):
        for doc in step.sessions.find({"session_id": {"$in": ids[start : start + 500]}}, {"_id": 0}):
            found[doc["session_id"]] = doc
    return found


__all__ = ["resolve_collections", "pending", "import_collections", "LEGACY_MODES"]
