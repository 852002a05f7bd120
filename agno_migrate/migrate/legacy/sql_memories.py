"""Agno 1.x memories → the head memories table on SQL (``agno_memories``, created at head when missing).

Two sources (rules in ``convert.memories``; the decisions in docs/agno-tables.md §7.4):

* **memory tables** (Memory v2 ``SqliteMemoryDb`` / ``PostgresMemoryDb``, legacy ``MemoryDb``; any name,
  recognised by their columns, mode ``memories``): read by keyset on ``id`` in batches, each batch written
  and committed with the table's checkpoint (the session import's checkpoint table: ``last_session_id``
  holds the last memory id). Imported before the session tables. A row that cannot be read is reported
  (exit 9) and not imported; a pass that met such rows leaves the table pending with its checkpoint reset,
  so the next ``upgrade`` reads the table again: rows already imported (same content) are skipped, a
  repaired row is imported.
* **session blobs** (the ``memory`` column of 1.x session rows: Memory v2 and legacy ``AgentMemory``):
  converted by the workers with their session (``Converted.memories``) and written with its batch; one
  per memory id (the newest of a batch), none that the memories table already holds (same id, a 1.x id
  it had, or the same owner and text) or that an unreadable memory-table row of this run claims.

A memory id already stored with the same content is skipped silently, with other content reported as a
collision (not overwritten). The 1.x tables are only read.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import sqlalchemy as sa

from agno_migrate import convert
from agno_migrate.backends import dialect_of
from agno_migrate.convert import memories as conv
from agno_migrate.convert.memories import split_stored
from agno_migrate.migrate.legacy import sql_checkpoints
from agno_migrate.migrate.legacy.worker import text_or_bytes
from agno_migrate.migrate.model import LegacyTable
from agno_migrate.migrate.report import LegacyReport, RowProblem
from agno_migrate.migrate.sql import revisions
from agno_migrate.schema import MEMORIES_TABLE, MEMORY_COLUMNS, memories_table
from agno_migrate.target import Target

BATCH = 500  # memory rows read, converted and committed together (a memory is a few hundred bytes)
LOOKUP_CHUNK = 500
MEMORIES_STAMP = "3.0.0"  # Agno's stamp of a memories table it creates (3.1.10: its latest schema version)


def ensure_memories_table(conn, target: Target, name: str = MEMORIES_TABLE) -> sa.Table:
    """The head memories table, created (with its indexes) and stamped ``3.0.0`` in Agno's versions table
    when it does not exist yet, in the caller's transaction; an existing one is used as it is."""
    table = memories_table(target, name)
    if not sa.inspect(conn).has_table(name, schema=table.schema):
        table.create(conn)
        revisions.stamp_table(revisions.migration_context(target, conn), target, name, MEMORIES_STAMP)
    return table


def _schema(target: Target) -> str | None:
    return dialect_of(target).schema_of(target)


# --- memory tables -----------------------------------------------------------------------------------


def import_memory_table(
    conn, target: Target, legacy: LegacyTable, cp: sa.Table, report: LegacyReport, claimed: set, accept: set[str]
):
    """Import one 1.x memory table from its checkpoint on (see the module docstring). ``claimed``
    receives the ids of its unreadable rows (their blob copies are not imported in their place);
    ``accept``: tables whose rows still unreadable after the pass are accepted as lost."""
    head = ensure_memories_table(conn, target)
    report.tables[legacy.name] = {"mode": legacy.mode, "rows": legacy.rows, "done": False}
    state = sql_checkpoints.start_pass(conn, cp, legacy, _checkpoint(conn, cp, legacy.name))
    source = sa.Table(legacy.name, sa.MetaData(), autoload_with=conn, schema=_schema(target))
    key = source.c.id
    columns = [source.c[name] for name in ("id", "user_id", "memory", "created_at", "updated_at")]
    last = state["last_session_id"] if state else None
    while True:
        query = sa.select(*columns).order_by(key).limit(BATCH)
        rows = _fetch(conn, query if last is None else query.where(key > last))
        if not rows:
            break
        last = rows[-1]["id"]
        converted, failed = [], 0
        for row in rows:
            try:
                if any(value.__class__ is bytes for value in row.values()):
                    raise conv.MemoryConversionError("a column holds bytes that are not UTF-8 text")
                converted.append(conv.convert_v1_memory_row(row))
            except conv.MemoryConversionError as exc:
                report.unparseable.append(RowProblem(legacy.name, str(row.get("id")), f"memory row: {exc}"))
                claimed.add(str(row.get("id")))
                failed += 1
        written = write_rows(conn, target, head, legacy.name, converted, report)
        conn.execute(
            cp.update()
            .where(cp.c.table_name == legacy.name)
            .values(
                last_session_id=last,
                sessions=cp.c.sessions + written,
                failed=cp.c.failed + failed,
                updated_at=int(time.time()),
            )
        )
        conn.commit()
    # the pass is over: done when none of its rows failed (or their loss is accepted); else read again
    report.tables[legacy.name]["done"] = sql_checkpoints.end_pass(conn, cp, legacy, accept)


def _checkpoint(conn, cp: sa.Table, name: str) -> dict | None:
    row = conn.execute(sa.select(cp).where(cp.c.table_name == name)).mappings().first()
    return dict(row) if row is not None else None


def _fetch(conn, query) -> list[dict]:
    """The rows of ``query`` as dicts; on SQLite, text that is not UTF-8 is read as bytes (its row is
    reported) instead of failing the whole fetch."""
    try:
        return [dict(row) for row in conn.execute(query).mappings()]
    except sa.exc.OperationalError as exc:
        if "decode to UTF-8" not in str(exc.orig):
            raise
    raw = conn.connection.dbapi_connection
    raw.text_factory = text_or_bytes
    try:
        return [dict(row) for row in conn.execute(query).mappings()]
    finally:
        raw.text_factory = str


# --- writing -------------------------------------------------------------------------------------------


def write_rows(conn, target: Target, head: sa.Table, source: str, rows: list[dict], report: LegacyReport) -> int:
    """Insert head memories ``rows`` (in the caller's transaction); an id already stored with the same
    content is skipped, with other content reported as a collision. Returns the rows imported (written
    now or found already there)."""
    if not rows:
        return 0
    rows = _storable(target, rows, report)
    stored = _stored_rows(conn, head, [row["memory_id"] for row in rows])
    fresh, collisions = split_stored(rows, stored, lambda old, new: _canonical(old) == _canonical(new))
    reason = "memory id already in the memories table with other content; not overwritten"
    report.collisions += [RowProblem(source, memory_id, reason) for memory_id in collisions]
    collided = len(collisions)
    if fresh:
        conn.execute(head.insert(), fresh)
    report.memories += len(fresh)
    return len(rows) - collided


def write_blob_memories(
    conn, target: Target, head: sa.Table, source: str, found: Iterable[conv.BlobMemory], claimed: set, report
) -> int:
    """Insert the session-blob memories ``found`` (one batch of sessions) that the memories table does not
    hold yet (see the module docstring). Returns the memories written."""
    memories = conv.newest_per_id(found)
    if not memories:
        return 0
    ids = {m.memory_id for m in memories} | {other for m in memories for other in m.same_as}
    present = set(_stored_rows(conn, head, sorted(ids))) | set(claimed)
    digests = _owner_digests(conn, head, {m.row["user_id"] for m in memories})
    fresh = []
    for memory in memories:
        if conv.already_present(memory, present, digests):
            continue
        fresh.append(memory.row)
        present.add(memory.memory_id)
        digests.add(memory.digest)
    fresh = _storable(target, fresh, report)
    if fresh:
        conn.execute(head.insert(), fresh)
    report.memories += len(fresh)
    report.memories_from_sessions += len(fresh)
    return len(fresh)


def _storable(target: Target, rows: list[dict], report: LegacyReport) -> list[dict]:
    """``rows`` with NUL characters removed where the backend cannot store them (PostgreSQL)."""
    if dialect_of(target).stores_nul:
        return rows
    rows, removed = convert.strip_nul(rows)
    report.nul_bytes_removed += removed
    return rows


def _stored_rows(conn, head: sa.Table, ids: list[str]) -> dict[str, dict]:
    found = {}
    for start in range(0, len(ids), LOOKUP_CHUNK):
        query = sa.select(head).where(head.c.memory_id.in_(ids[start : start + LOOKUP_CHUNK]))
        found.update({row["memory_id"]: dict(row) for row in conn.execute(query).mappings()})
    return found


def _owner_digests(conn, head: sa.Table, owners: set) -> set[str]:
    """The :func:`conv.memory_digest` of every stored memory of ``owners`` (user ids, None included)."""
    named = sorted(o for o in owners if o is not None)
    out = set()
    columns = (head.c.user_id, head.c.memory)
    for start in range(0, len(named), LOOKUP_CHUNK):
        query = sa.select(*columns).where(head.c.user_id.in_(named[start : start + LOOKUP_CHUNK]))
        out.update(conv.memory_digest(dict(row)) for row in conn.execute(query).mappings())
    if None in owners:
        query = sa.select(*columns).where(head.c.user_id.is_(None))
        out.update(conv.memory_digest(dict(row)) for row in conn.execute(query).mappings())
    return out


def _canonical(row: dict) -> tuple:
    """A memory's content for "same memory id, same content" (JSON columns decoded, NULs ignored)."""
    out = []
    for name in MEMORY_COLUMNS:
        value = row.get(name)
        if isinstance(value, str):
            value = value.replace("\x00", "")
        elif isinstance(value, (list, tuple)):
            value = [v.replace("\x00", "") if isinstance(v, str) else v for v in value]
        out.append(value)
    return tuple(out)
