"""The memories an Agno 1.x source kept in its session rows' ``memory`` blobs (Memory v2 and legacy
``AgentMemory``), as the head memories rows a copy, ``verify`` and ``export`` give them: what
``agno-migrate upgrade`` imports in place (``migrate.legacy.sql_memories.write_blob_memories``),
by the same functions of ``convert.memories``.

* **Read**: each 1.x session table (or collection) in the import's order, by keyset on
  ``session_id``, only the columns the blob conversion reads; each session's memories by
  ``convert.memories.memories_in_session_blob`` (time: the session's ``updated_at``, else its
  ``created_at``). A blob that cannot be read is counted and named; its session is copied all the same.
* **De-duplicated**: one memory per id (``newest_per_id``, over the whole source), none that the
  memories tables hold or claim (``already_present``: the same id, a 1.x id it had, or the same owner
  and text; an unreadable 1.x memory-table row claims its id), the first of the same owner and text.

Memory: the ids and digests of the memories tables' rows, and one row per distinct blob memory id
(``newest_per_id`` keeps the newest of each until every session is read). Blob memories are few
(one per memory, however many sessions hold it); the sessions themselves are read batch by batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

SESSION_COLUMNS = ("session_id", "user_id", "memory", "created_at", "updated_at")


def session_memory_rows(
    reader, tables: Iterable[str], held: Iterable[dict], claimed: set[str], size: int, problem: Callable[[str], None]
) -> list[dict]:
    """The head rows of the blob memories of the 1.x session ``tables`` read through ``reader`` (a
    ``move.table_io`` side) that the memories tables' head rows ``held`` and the ids ``claimed`` by
    their unreadable rows do not already give; ``problem(text)`` hears of each blob that cannot be read."""
    from agno_migrate.convert.memories import already_present, memory_digest, newest_per_id

    ids, digests = set(), set()
    for row in held:
        ids.add(row["memory_id"])
        digests.add(memory_digest(row))
    ids |= claimed  # (filled as ``held`` is read)
    out = []
    for memory in newest_per_id(_found(reader, tables, size, problem)):
        if already_present(memory, ids, digests):
            continue
        out.append(memory.row)
        ids.add(memory.memory_id)
        digests.add(memory.digest)
    return out


def _found(reader, tables: Iterable[str], size: int, problem: Callable[[str], None]) -> Iterator:
    from agno_migrate.convert.memories import MemoryConversionError, memories_in_session_blob

    for table in tables:
        kinds = reader.kinds(table)
        kinds = {c: k for c, k in kinds.items() if c in SESSION_COLUMNS} if kinds else {}
        for rows, _ in reader.batches(table, kinds, ("session_id",), size):
            for row in rows:
                blob = row.get("memory")
                if not blob:
                    continue
                when = row.get("updated_at") if row.get("updated_at") is not None else row.get("created_at")
                try:
                    yield from memories_in_session_blob(blob, row.get("user_id"), fallback_time=when)
                except MemoryConversionError as exc:
                    problem(f"{table} {row.get('session_id')}: session memory not imported: {exc}")
