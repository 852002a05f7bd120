"""Agno 1.x storage → the head schema: the legacy import of the per-mode session tables (agent,
team, workflow, workflow_v2) that Agno 1.x wrote.

Runs after the session storage is at head. Each legacy table (found by its column signature, or
named with ``--legacy-table NAME[:mode]``) is read by keyset pagination on ``session_id``, in
batches; each batch's rows are converted by ``convert.convert_v1_session`` (in worker processes,
``legacy_pool``, when there are cores and rows enough) and written (sessions row + runs-table
rows, their ids by ``convert.rekey_runs``); whole batches are committed together with the table's
checkpoint, in ONE transaction, so a run killed at any point resumes exactly where the last commit
ended. The legacy tables are only read.

A row that cannot be parsed is counted and listed (session id, table, reason), never silently
skipped; a session id already present with other content (from another legacy table or from
``agno_sessions`` itself) is reported as a collision and not overwritten.
"""

from __future__ import annotations

import contextlib
import functools
import sqlite3
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import sqlalchemy as sa

from agno_migrate import convert
from agno_migrate.backends import Dialect, dialect_of
from agno_migrate.errors import UsageError
from agno_migrate.migrate.detection import MEMORIES, legacy_kind
from agno_migrate.migrate.legacy import pool as legacy_pool
from agno_migrate.migrate.legacy import sql_memories
from agno_migrate.migrate.legacy import worker as legacy_worker
from agno_migrate.migrate.legacy.rules import canonical_session, parse_table_option
from agno_migrate.migrate.legacy.sql_checkpoints import checkpoint_table, checkpoints, end_pass, start_pass
from agno_migrate.migrate.legacy.worker import Converted, Layout, Unreadable
from agno_migrate.migrate.model import LegacyTable
from agno_migrate.migrate.report import DeepAsText, FilledRow, LegacyReport, RowProblem
from agno_migrate.schema import JSON_COLUMNS
from agno_migrate.target import Target

BATCH = 200  # rows read and converted together (split among the workers): bounds memory
# A transaction (with its checkpoint) holds whole batches, up to COMMIT_BYTES of JSON text or COMMIT_ROWS
# rows: about a page cache's worth (see SQLITE_IMPORT_PRAGMAS), so small rows do not pay a commit
# (an fsync) every 200 rows and large ones do not spill the cache mid-transaction.
COMMIT_BYTES = 3_000_000
COMMIT_ROWS = 5000
AHEAD = 2  # batches converting while the oldest one is written
SQLITE_IMPORT_PRAGMAS = {"cache_size": -8192, "wal_autocheckpoint": 2000}  # 8 MiB of pages; ~8 MB of WAL
LOOKUP_CHUNK = 500
# PostgreSQL: a batch is read STREAM_ROWS rows a fetch (server-side cursor) and sent to the workers in
# TASKS_PER_WORKER tasks each (smaller tasks: less held at once here and in a worker)
STREAM_ROWS = 25
TASKS_PER_WORKER = 2


def resolve_tables(conn, target: Target, found: list[LegacyTable], named: list[str] | None) -> list[LegacyTable]:
    """The legacy tables to import: those named (their mode given or recognised), else those found."""
    if not named:
        return found
    by_name = {t.name: t for t in found}
    insp = sa.inspect(conn)
    schema = _schema(target)
    out = []
    for option in named:
        name, mode = parse_table_option(option)
        if not insp.has_table(name, schema=schema):
            raise UsageError(f"--legacy-table {name}: no such table in {target.masked_url}")
        mode = mode or (by_name[name].mode if name in by_name else legacy_kind(_columns(insp, name, schema)))
        if mode is None:
            raise UsageError(f"--legacy-table {name}: not an Agno 1.x session table; give its mode as {name}:MODE")
        rows = conn.execute(sa.select(sa.func.count()).select_from(sa.table(name, schema=schema))).scalar()
        out.append(LegacyTable(name, mode, rows))
    return out


def _columns(insp, name, schema) -> set[str]:
    return {c["name"] for c in insp.get_columns(name, schema=schema)}


def _schema(target: Target) -> str | None:
    return dialect_of(target).schema_of(target)


# --- the import -----------------------------------------------------------------------------------


def import_tables(
    conn, target: Target, tables: list[LegacyTable], progress=None, accept: set[str] | frozenset = frozenset()
) -> LegacyReport:
    """Import every table of ``tables`` into the head schema (see the module docstring).

    ``conn`` holds the migration lock and no open transaction; whole batches commit together
    with the checkpoint (see ``COMMIT_BYTES``). Rows are converted (decoded, converted,
    JSON-encoded) in worker processes while this process writes the batch before; on SQLite the
    workers also read the legacy rows themselves (this process reads only the batch's session ids).
    With one core, or few rows, rows are converted inline. ``accept``: the tables whose rows still
    unreadable at the end of this pass are accepted as lost (the table is then done).
    """
    from agno_migrate.schema import head_tables

    total = sum(t.rows for t in tables)
    dialect = dialect_of(target)
    with legacy_pool.converter(total >= 2 * BATCH) as converter, _sqlite_writer(conn, dialect):
        # (the workers start while we set up)
        head = head_tables(target)
        layout = Layout(
            tuple(str(c.name) for c in head.sessions.columns),
            tuple(str(c.name) for c in head.runs.columns),
            tuple(map(str, JSON_COLUMNS)),
            dialect.utf8_text_bytes(conn),
        )
        cp = checkpoint_table(target)
        cp.create(conn, checkfirst=True)
        conn.commit()
        report = LegacyReport()
        if progress:
            progress(0, total)  # the clock of a rows/s display starts now
        run = _Import(conn, target, head, layout, converter.ready(), cp, report, progress, total, set(accept))
        # memory tables first: the session blobs' memories are then checked against what they hold
        for legacy in sorted(tables, key=lambda t: t.mode != MEMORIES):
            if legacy.mode == MEMORIES:
                sql_memories.import_memory_table(conn, target, legacy, cp, report, run.claimed, run.accept)
                run.done_rows += legacy.rows
                if progress:
                    progress(run.done_rows, total)
                continue
            run.import_table(legacy)
    return report


class _Batch(NamedTuple):
    """A batch of a legacy table, submitted for conversion."""

    count: int
    """Its rows."""
    last: Any
    """Its last session id (where the next batch, and a resumed import, starts after)."""
    futures: list[Future]
    """The conversions of its rows, in order."""


@dataclass
class _Import:
    """One import's parts, shared by its tables; ``done_rows`` counts the rows committed (or found
    done) so far, for ``progress(done_rows, total)``."""

    conn: Any
    target: Target
    head: Any
    layout: Layout
    workers: Any
    cp: sa.Table
    report: LegacyReport
    progress: Callable[[int, int], None] | None
    total: int
    accept: set[str]
    """Tables whose rows still unreadable after their pass are accepted as lost."""
    done_rows: int = 0
    claimed: set = field(default_factory=set)
    """Memory ids of unreadable memory-table rows: their copies in session blobs are not imported."""
    memories: Any = None
    """The head memories table, once a session blob held a memory."""

    def import_table(self, legacy: LegacyTable) -> None:
        """Import ``legacy`` from its checkpoint on (nothing when it is done): batches converting
        while the oldest one is written; commits (see ``_flush``); the table marked done at the end."""
        conn, cp = self.conn, self.cp
        state = checkpoints(conn, self.target).get(legacy.name)
        done = bool(state and state["done"])
        self.report.tables[legacy.name] = {"mode": legacy.mode, "rows": legacy.rows, "done": done}
        if done:
            self.done_rows += legacy.rows
            return
        state = start_pass(conn, cp, legacy, state)
        in_flight: deque[_Batch] = deque()
        txn = _Transaction()
        after = state["last_session_id"] if state else None
        for batch in _submitted(conn, self.target, legacy, after, self.workers, self.layout):
            in_flight.append(batch)
            self._flush(legacy, in_flight, txn, AHEAD)  # keep batches converting while the oldest one is written
        self._flush(legacy, in_flight, txn, 0)
        self.report.tables[legacy.name]["done"] = end_pass(conn, cp, legacy, self.accept)

    def _flush(self, legacy: LegacyTable, in_flight: deque[_Batch], txn: _Transaction, keep: int) -> None:
        """Write converted batches, oldest first, until ``keep`` remain in flight; commit (with the
        checkpoint) every COMMIT_BYTES / COMMIT_ROWS, and what is left when none remain."""
        while len(in_flight) > keep:
            batch = in_flight.popleft()
            results = [result for future in batch.futures for result in _result(future, self.target)]
            size = sum(result.size for result in results if isinstance(result, Converted))
            if self.memories is None and any(isinstance(r, Converted) and r.memories for r in results):
                # the memories table is created before the batch is written, with nothing pending: MySQL
                # commits each DDL statement, which would commit the batch apart from its checkpoint
                if txn.rows:
                    self.done_rows += txn.commit(self.conn, self.cp, legacy)
                self.memories = sql_memories.ensure_memories_table(self.conn, self.target)
                self.conn.commit()
            written, failed = _import_batch(self.conn, self.target, self.head, legacy, results, self.report)
            self._blob_memories(legacy, results)
            txn.add(batch.last, batch.count, size, written, failed)
            if txn.rows >= COMMIT_ROWS or txn.size >= COMMIT_BYTES or (keep == 0 and not in_flight):
                self.done_rows += txn.commit(self.conn, self.cp, legacy)
                if self.progress:
                    self.progress(self.done_rows, self.total)

    def _blob_memories(self, legacy: LegacyTable, results: list) -> None:
        """Write the memories the batch's imported sessions held in their blobs (``sql_memories``);
        report the blobs whose memories could not be read (the sessions are imported all the same)."""
        found, key = [], self.head.sessions.columns.keys().index("session_id")
        for result in results:
            if not isinstance(result, Converted):
                continue
            if result.memory_problem:
                problem = f"session memory: {result.memory_problem}"
                self.report.unparseable.append(RowProblem(legacy.name, result.session[key], problem))
            found += result.memories
        if not found:
            return
        if self.memories is None:
            self.memories = sql_memories.ensure_memories_table(self.conn, self.target)
        sql_memories.write_blob_memories(
            self.conn, self.target, self.memories, legacy.name, found, self.claimed, self.report
        )


def _submitted(conn, target: Target, legacy: LegacyTable, last, workers, layout: Layout):
    """Each batch of the legacy table after ``last`` (a :class:`_Batch`), by keyset pagination on
    ``session_id``."""
    dialect = dialect_of(target)
    source = sa.Table(legacy.name, sa.MetaData(), autoload_with=conn, schema=_schema(target))
    key = source.c.session_id
    # JSON columns read as text: a corrupt value must fail its row's conversion, not the fetch; on
    # PostgreSQL cast to text by the server (the text psycopg would have parsed with json.loads: parsed
    # in the workers instead, to the same values — and text is cheaper to pickle to them than objects)
    as_text = (lambda c: sa.cast(c, sa.Text)) if dialect.json_cast_to_text else (lambda c: sa.type_coerce(c, sa.Text))
    columns = [as_text(c).label(c.name) if isinstance(c.type, sa.JSON) else c for c in source.columns]
    path = _sqlite_file(conn, target, columns) if workers.parallel else None
    names = tuple(str(c.name) for c in columns)
    table = str(legacy.name)
    while True:
        if path is not None:  # the workers read the rows: only their session ids are read here
            query = sa.select(key).order_by(key).limit(BATCH)
            ids = [
                row["session_id"]
                for row in _fetch(
                    conn, dialect, query if last is None else query.where(key > _key_value(last)), ("session_id",)
                )
            ]
            if not ids:
                return
            if not any(i is None or i.__class__ is bytes for i in ids):  # (NULL or non-UTF-8 ids cannot bound
                # a worker's range: such a batch is read below)
                bounds = [last, *(ids[end - 1] for end in _chunk_ends(len(ids), workers.count))]
                futures = [
                    workers.submit(
                        "read_and_convert",
                        path,
                        target.lock_timeout,
                        table,
                        names,
                        low,
                        high,
                        legacy.mode,
                        target.backend,
                        layout,
                    )
                    for low, high in zip(bounds, bounds[1:], strict=False)
                ]
                last = ids[-1]
                yield _Batch(len(ids), last, futures)
                continue
        query = sa.select(*columns).order_by(key).limit(BATCH)
        query = query if last is None else query.where(key > _key_value(last))
        if dialect.server_side_cursor:
            batch = _streamed(conn, query, names, workers, legacy.mode, target.backend, layout)
            if not batch.count:
                return
            last = batch.last
            yield batch
            continue
        rows = _fetch(conn, dialect, query, names)
        if not rows:
            return
        last = rows[-1]["session_id"]
        ends = _chunk_ends(len(rows), workers.count)
        futures = [
            workers.submit("convert_rows", legacy.mode, rows[start:end], target.backend, layout)
            for start, end in zip([0, *ends], ends, strict=False)
        ]
        yield _Batch(len(rows), last, futures)


def _streamed(conn, query, names: tuple, workers, mode: str, backend: str, layout: Layout) -> _Batch:
    """The rows of ``query`` (a batch) read by a server-side cursor (PostgreSQL), STREAM_ROWS a fetch, and
    sent to the workers as they come, TASKS_PER_WORKER tasks per worker and batch: neither the whole batch's rows
    nor its result buffer (libpq's copy of every value) are ever held here at once (a batch of large rows is
    megabytes in each form)."""
    task_rows = max(1, -(-BATCH // (workers.count * TASKS_PER_WORKER)))
    count, last, futures, rows = 0, None, [], []
    result = conn.execute(query, execution_options={"yield_per": STREAM_ROWS})  # (this statement only)
    for part in result.partitions():
        for row in part:
            rows.append(dict(zip(names, row, strict=False)))
        del part
        while len(rows) >= task_rows:
            chunk, rows = rows[:task_rows], rows[task_rows:]
            count, last = count + len(chunk), chunk[-1]["session_id"]
            futures.append(workers.submit("convert_rows", mode, chunk, backend, layout))
            del chunk
    if rows:
        count, last = count + len(rows), rows[-1]["session_id"]
        futures.append(workers.submit("convert_rows", mode, rows, backend, layout))
    return _Batch(count, last, futures)


def _chunk_ends(count: int, parts: int) -> list[int]:
    """Where ``count`` items split into at most ``parts`` non-empty, nearly equal chunks end."""
    return sorted({-(-count * i // parts) for i in range(1, parts + 1)} - {0})


def _sqlite_file(conn, target: Target, columns) -> str | None:
    """The database file (SQLite), when worker processes can read the legacy rows from it exactly as
    this connection would (a file, not memory; no column whose SQLAlchemy type converts values)."""
    if not dialect_of(target).embedded:
        return None
    dialect = conn.dialect
    if any(c.type.dialect_impl(dialect).result_processor(dialect, None) is not None for c in columns):
        return None
    files = {row[1]: row[2] for row in conn.exec_driver_sql("PRAGMA database_list")}
    return files.get("main") or None


@contextlib.contextmanager
def _sqlite_writer(conn, dialect: Dialect):
    """An embedded database (SQLite), during the import only (restored after): a page cache that holds
    a transaction (its pages are written once, at commit, not spilled to the WAL and read back: half the
    reads and a quarter fewer writes), and the WAL checkpointed every ~8 MB instead of ~4 MB (fewer
    passes and fsyncs). Every commit is still synced as before (``synchronous`` untouched): a committed
    batch and its checkpoint stay durable. Elsewhere nothing changes."""
    if not dialect.embedded:
        yield
        return
    raw = conn.connection.dbapi_connection
    before = {name: raw.execute(f"PRAGMA {name}").fetchone()[0] for name in SQLITE_IMPORT_PRAGMAS}
    for name, value in SQLITE_IMPORT_PRAGMAS.items():
        raw.execute(f"PRAGMA {name}={int(value)}")
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            for name, value in before.items():
                raw.execute(f"PRAGMA {name}={int(value)}")


def _key_value(last):
    """A keyset bound: a session id that is not UTF-8 (read as bytes, see ``_fetch``) is compared as
    the text it is stored as, not as a BLOB (which sorts after all text)."""
    return sa.cast(sa.literal(last, sa.LargeBinary), sa.Text) if isinstance(last, bytes) else last


def _fetch(conn, dialect: Dialect, query, names: tuple) -> list[dict]:
    """The rows of ``query`` as dicts of ``names``. SQLite stores whatever bytes it was given as TEXT
    (``text_unchecked``) and fails the whole fetch on a value that is not UTF-8; then the batch is read
    again with such values as bytes, so that only their rows are reported (``legacy_worker.convert_rows``).
    (A failed read changes nothing in SQLite's transaction: batches written and not yet committed stay.)"""
    try:
        return [dict(zip(names, row, strict=False)) for row in conn.execute(query)]
    except sa.exc.OperationalError as exc:
        if not dialect.text_unchecked or "decode to UTF-8" not in str(exc.orig):
            raise
    raw = conn.connection.dbapi_connection
    raw.text_factory = legacy_worker.text_or_bytes
    try:
        return [dict(zip(names, row, strict=False)) for row in conn.execute(query)]
    finally:
        raw.text_factory = str


class _Transaction:
    """The batches written since the last commit: committed together with the table's checkpoint
    (where the next run resumes), so that the checkpoint always matches the rows stored."""

    def __init__(self):
        self.rows = self.size = self.written = self.failed = 0
        self.last = None

    def add(self, last, rows: int, size: int, written: int, failed: int) -> None:
        self.last = last
        self.rows += rows
        self.size += size
        self.written += written
        self.failed += failed

    def commit(self, conn, cp: sa.Table, legacy: LegacyTable) -> int:
        """Record the checkpoint, commit; returns the rows committed."""
        conn.execute(
            cp.update()
            .where(cp.c.table_name == legacy.name)
            .values(
                last_session_id=self.last,
                sessions=cp.c.sessions + self.written,
                failed=cp.c.failed + self.failed,
                updated_at=int(time.time()),
            )
        )
        conn.commit()
        rows = self.rows
        self.__init__()
        return rows


def _result(future: Future, target: Target) -> list:
    """A conversion's result; a worker's SQLite error is raised as this connection's would be."""
    try:
        return future.result()
    except sqlite3.Error as exc:
        raise sa.exc.OperationalError("SELECT (Agno 1.x rows, read by a worker)", None, exc) from None


# --- writing --------------------------------------------------------------------------------------


def _import_batch(
    conn, target: Target, head, legacy: LegacyTable, results: list[Converted | Unreadable], report: LegacyReport
) -> tuple[int, int]:
    """Write one batch of converted rows (in the caller's transaction). Returns (written, failed)."""
    converted, failed = [], 0
    key = head.sessions.columns.keys().index("session_id")
    for result in results:
        if isinstance(result, Unreadable):
            report.unparseable.append(RowProblem(legacy.name, result.session_id, result.reason))
            failed += 1
            continue
        report.nul_bytes_removed += result.nul_removed
        if result.created_at_filled:
            report.created_at_filled.append(FilledRow(legacy.name, result.session[key]))
        if result.deep_as_text:
            report.deep_as_text.append(DeepAsText(legacy.name, result.session[key], result.deep_as_text))
        converted.append(result)
    converted = _without_collisions(conn, head, legacy, converted, report)
    if not converted:
        return 0, failed
    run_values = _rekey_taken_runs(conn, head, [values for result in converted for values in result.runs], report)
    dialect = dialect_of(target)
    _insert(conn, dialect, head.sessions, [result.session for result in converted])
    if run_values:
        _insert(conn, dialect, head.runs, run_values)
    report.sessions += len(converted)
    report.runs += len(run_values)
    return len(converted), failed


def _insert(conn, dialect: Dialect, table: sa.Table, rows: list[tuple]) -> None:
    """INSERT ``rows`` (value tuples in the table's column order), stored as they are: the JSON
    values are already encoded text (no second encoding; on PostgreSQL the driver sends them
    untyped and the server parses JSONB; on a UTF-8 SQLite database, text given as its UTF-8 bytes
    is cast to TEXT: stored exactly as that text would be)."""
    names = [c.name for c in table.columns]
    if conn.dialect.paramstyle == "qmark":  # SQLite: straight to executemany, no per-row work here
        quote = conn.dialect.identifier_preparer.quote
        marks = ", ".join("CAST(? AS TEXT)" if isinstance(c.type, sa.JSON) else "?" for c in table.columns)
        conn.exec_driver_sql(f"INSERT INTO {quote(table.name)} ({', '.join(map(quote, names))}) VALUES ({marks})", rows)
        return
    if dialect.copy_from_stdin:  # rows streamed to the server as they are formatted
        copy_rows(conn, table, names, rows)
        return
    untyped = sa.table(table.name, *[sa.column(name) for name in names], schema=table.schema)
    conn.execute(sa.insert(untyped), [dict(zip(names, values, strict=False)) for values in rows])


def copy_rows(conn, table: sa.Table, names: list[str], rows: list[tuple]) -> None:
    """PostgreSQL: ``rows`` written by ``COPY ... FROM STDIN`` (text format) in the connection's
    transaction. Each value goes to its column's input function, as the untyped parameters of an
    INSERT would (JSON text parsed to JSONB by the server): the same stored values. Unlike a multi-row
    INSERT, no statement holding the whole batch is built (SQLAlchemy's parameters, psycopg's encoded
    copies, libpq's message): rows are formatted and sent in pieces of some ten KB."""
    if not conn.in_transaction():  # (so that conn.commit() commits what is copied here)
        conn.begin()
    preparer = conn.dialect.identifier_preparer
    sql = f"COPY {preparer.format_table(table)} ({', '.join(map(preparer.quote, names))}) FROM STDIN"
    with conn.connection.dbapi_connection.cursor() as cursor:
        cursor.adapters.register_dumper(bytes, _utf8_text())  # (this cursor only)
        with cursor.copy(sql) as copy:
            for values in rows:
                copy.write_row(values)


@functools.cache
def _utf8_text():
    """A psycopg dumper for JSON text given as its UTF-8 bytes (see ``Dialect.utf8_text_bytes``): written to
    COPY as that text (psycopg would write bytes as ``bytea``). (psycopg imported only here: it is
    PostgreSQL's driver, not installed for the other backends.)"""
    from psycopg.adapt import Dumper

    class Utf8Text(Dumper):
        def dump(self, obj):
            return obj

    return Utf8Text


def _without_collisions(conn, head, legacy: LegacyTable, converted: list[Converted], report: LegacyReport):
    """Drop (and report) sessions whose id is already stored with other content; drop silently the
    ones already stored with the same content (nothing to do); see ``rules.canonical_session``."""
    s = head.sessions
    names = s.columns.keys()
    key = names.index("session_id")
    ids = [result.session[key] for result in converted]
    if not _stored(conn, s, s.c.session_id, ids):  # the usual case: none of them is stored yet
        return converted
    stored = {}
    for start in range(0, len(ids), LOOKUP_CHUNK):
        query = sa.select(s).where(s.c.session_id.in_(ids[start : start + LOOKUP_CHUNK]))
        stored.update({row["session_id"]: dict(row) for row in conn.execute(query).mappings()})
    keep = []
    for result in converted:
        existing = stored.get(result.session[key])
        if existing is None:
            keep.append(result)
        elif canonical_session(existing) != canonical_session(dict(zip(names, result.session, strict=True))):
            reason = "already in the session table with other content; not overwritten"
            report.collisions.append(RowProblem(legacy.name, result.session[key], reason))
    return keep


def _stored(conn, table: sa.Table, key: sa.Column, ids: list, *also: sa.Column) -> list[tuple]:
    """(key, *also) of the rows of ``table`` whose ``key`` is one of ``ids``."""
    found = []
    if conn.dialect.paramstyle == "qmark":  # SQLite: plain SQL (no per-id SQLAlchemy work)
        quote = conn.dialect.identifier_preparer.quote
        columns = ", ".join(quote(c.name) for c in (key, *also))
        for chunk in _lookup_chunks(ids):
            found += conn.exec_driver_sql(
                f"SELECT {columns} FROM {quote(table.name)} WHERE {quote(key.name)} IN ({', '.join('?' * len(chunk))})",
                chunk,
            ).all()
        return [tuple(row) for row in found]
    query = sa.select(key, *also).where(key.in_(sa.bindparam("ids", expanding=True)))
    for chunk in _lookup_chunks(ids):
        found += conn.execute(query, {"ids": list(chunk)}).all()
    return [tuple(row) for row in found]


def _lookup_chunks(ids: list):
    """``ids`` in chunks of at most LOOKUP_CHUNK, each padded with its last id to a power of two (or
    LOOKUP_CHUNK): a lookup's SQL text then takes one of ~10 shapes. Unpadded, every id count met was
    a new statement, prepared and kept in the driver's statement cache (128 of them on SQLite, some
    hundred KB each: the importer's memory grew with the batches met, ~5 MB at 100k rows)."""
    for start in range(0, len(ids), LOOKUP_CHUNK):
        chunk = ids[start : start + LOOKUP_CHUNK]
        size = min(LOOKUP_CHUNK, 1 << (len(chunk) - 1).bit_length())
        yield tuple(chunk) + (chunk[-1],) * (size - len(chunk))


def _rekey_taken_runs(conn, head, run_values: list[tuple], report: LegacyReport) -> list[tuple]:
    """The runs' value tuples under the ids ``convert.rekey_runs`` gives (a run whose id another
    run holds: a derived id, reported in ``report.duplicate_run_ids``)."""
    r = head.runs
    names = r.columns.keys()
    run_id, session_id, run_index = names.index("run_id"), names.index("session_id"), names.index("run_index")
    keys = [convert.RunKey(values[run_id], values[session_id], values[run_index]) for values in run_values]

    def owners(ids: list[str]) -> dict:
        return {
            found: (sid, index)
            for found, sid, index in _stored(conn, r, r.c.run_id, ids, r.c.session_id, r.c.run_index)
        }

    ids, rekeyed = convert.rekey_runs(keys, owners)
    report.duplicate_run_ids += rekeyed
    return [
        values if new_id == values[run_id] else (*values[:run_id], new_id, *values[run_id + 1 :])
        for values, new_id in zip(run_values, ids, strict=True)
        if new_id is not None
    ]
