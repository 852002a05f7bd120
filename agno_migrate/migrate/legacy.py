"""Agno 1.x storage → the head schema: the legacy import (LINEAGE §1, §7–§8).

Runs after the session storage is at head. Each legacy table (found by its column signature, or
named with ``--legacy-table NAME[:mode]``) is read by keyset pagination on ``session_id``, in
batches; each batch's rows are converted by ``convert.convert_v1_session`` and written (sessions
row + runs-table rows) in ONE transaction together with the table's checkpoint, so a run killed at
any point resumes exactly where the last committed batch ended. The legacy tables are only read.

A row that cannot be parsed is counted and listed (session id, table, reason), never silently
skipped; a session id already present with other content (from another legacy table or from
``agno_sessions`` itself) is reported as a collision and not overwritten.
"""
from __future__ import annotations

import contextlib
import json
import os
import time
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field

import sqlalchemy as sa

from ..errors import UsageError
from ..target import Target, validate_identifier
from ..schema import JSON_COLUMNS
from . import convert
from .connect import json_text
from .detect import LEGACY_MODES, LegacyTable, legacy_mode

MAX_WORKERS = 4  # conversion processes at most: beyond that the single writer is the bottleneck
BATCH = 200  # rows per transaction: bounds memory (peak RSS under 100 MB on Agno 1.8 data)
LOOKUP_CHUNK = 500


@dataclass
class LegacyReport:
    """What the import met, per table and in total."""

    sessions: int = 0
    runs: int = 0
    unparseable: list = field(default_factory=list)  # (table, session_id, reason)
    collisions: list = field(default_factory=list)  # (table, session_id, reason)
    duplicate_run_ids: list = field(default_factory=list)  # (run_id, session_id, owner, new_id)
    nul_bytes_removed: int = 0
    created_at_filled: list = field(default_factory=list)  # (table, session_id): NULL created_at given one
    tables: dict = field(default_factory=dict)  # name -> {"mode", "rows", "done"}

    def as_dict(self) -> dict:
        return {"sessions": self.sessions, "runs": self.runs, "unparseable": len(self.unparseable),
                "collisions": len(self.collisions), "duplicate_run_ids": len(self.duplicate_run_ids),
                "nul_bytes_removed": self.nul_bytes_removed, "created_at_filled": len(self.created_at_filled),
                "tables": self.tables}  # fmt: skip


def parse_table_option(value: str) -> tuple[str, str | None]:
    """``NAME[:mode]`` of ``--legacy-table``; raises UsageError for a bad name or mode."""
    name, _, mode = value.partition(":")
    validate_identifier(name, "legacy table name", 64)
    if mode and mode not in LEGACY_MODES:
        raise UsageError(f"unknown Agno 1.x mode {mode!r} for {name} (one of {', '.join(LEGACY_MODES)})")
    return name, mode or None


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
        mode = mode or (by_name[name].mode if name in by_name else legacy_mode(_columns(insp, name, schema)))
        if mode is None:
            raise UsageError(f"--legacy-table {name}: not an Agno 1.x session table; give its mode as {name}:MODE")
        rows = conn.execute(sa.select(sa.func.count()).select_from(sa.table(name, schema=schema))).scalar()
        out.append(LegacyTable(name, mode, rows))
    return out


def _columns(insp, name, schema) -> set[str]:
    return {c["name"] for c in insp.get_columns(name, schema=schema)}


def _schema(target: Target) -> str | None:
    return target.schema if target.backend != "sqlite" else None


# --- the checkpoint table -------------------------------------------------------------------------


def checkpoint_table(target: Target) -> sa.Table:
    """One row per legacy table: where its import stands (our own table, next to the version table)."""
    return sa.Table(
        f"{target.version_table}_legacy",
        sa.MetaData(),
        sa.Column("table_name", sa.String(64), primary_key=True),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("last_session_id", sa.String(255)),
        sa.Column("sessions", sa.BigInteger(), nullable=False, default=0),
        sa.Column("failed", sa.BigInteger(), nullable=False, default=0),
        sa.Column("done", sa.Boolean(), nullable=False, default=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        schema=_schema(target),
    )


def checkpoints(conn, target: Target) -> dict[str, dict]:
    """table name -> its checkpoint row (empty when nothing was imported yet)."""
    table = checkpoint_table(target)
    if not sa.inspect(conn).has_table(table.name, schema=table.schema):
        return {}
    return {row["table_name"]: dict(row) for row in conn.execute(sa.select(table)).mappings()}


def pending(conn, target: Target, tables: list[LegacyTable]) -> list[LegacyTable]:
    """The legacy tables whose import has not completed."""
    done = {name for name, row in checkpoints(conn, target).items() if row["done"]}
    return [t for t in tables if t.name not in done]


# --- the import -----------------------------------------------------------------------------------


def import_tables(conn, target: Target, tables: list[LegacyTable], progress=None) -> LegacyReport:
    """Import every table of ``tables`` into the head schema (see the module docstring).

    ``conn`` holds the migration lock and no open transaction; each batch commits. Rows are
    converted (decoded, converted, JSON-encoded) in worker processes while this process reads the
    next batch and writes the previous one; with one core, or few rows, they are converted inline.
    """
    from ..schema import head_tables

    head = head_tables(target)
    cp = checkpoint_table(target)
    cp.create(conn, checkfirst=True)
    conn.commit()
    report = LegacyReport()
    total = sum(t.rows for t in tables)
    done_rows = 0
    if progress:
        progress(0, total)  # the clock of a rows/s display starts now
    with _converter(total) as submit:
        for legacy in tables:
            state = checkpoints(conn, target).get(legacy.name)
            report.tables[legacy.name] = {"mode": legacy.mode, "rows": legacy.rows, "done": bool(state and state["done"])}
            if state and state["done"]:
                done_rows += legacy.rows
                continue
            if state is None:
                conn.execute(cp.insert().values(table_name=legacy.name, mode=legacy.mode, sessions=0, failed=0,
                                                done=False, updated_at=int(time.time())))  # fmt: skip
                conn.commit()
            in_flight: deque = deque()

            def flush(keep: int) -> None:
                """Write converted batches, oldest first, until ``keep`` remain in flight."""
                nonlocal done_rows
                while len(in_flight) > keep:
                    done_rows = _write(conn, target, head, cp, legacy, in_flight.popleft(), report, done_rows)
                    if progress:
                        progress(done_rows, total)

            for last, rows in _batches(conn, target, legacy, state["last_session_id"] if state else None):
                in_flight.append((last, len(rows), [submit(convert_rows, legacy.mode, chunk, target.backend)
                                                    for chunk in _halves(rows)]))  # fmt: skip
                flush(1)  # keep one batch converting while the previous one is written
            flush(0)
            conn.execute(cp.update().where(cp.c.table_name == legacy.name).values(done=True, updated_at=int(time.time())))
            conn.commit()
            report.tables[legacy.name]["done"] = True
    return report


def _batches(conn, target: Target, legacy: LegacyTable, last):
    """(last session id, rows) of the legacy table after ``last``, by keyset pagination."""
    source = sa.Table(legacy.name, sa.MetaData(), autoload_with=conn, schema=_schema(target))
    key = source.c.session_id
    # JSON columns read as text: a corrupt value must fail its row's conversion, not the fetch
    columns = [sa.type_coerce(c, sa.Text).label(c.name) if isinstance(c.type, sa.JSON) else c for c in source.columns]
    while True:
        query = sa.select(*columns).order_by(key).limit(BATCH)
        if last is not None:  # (a session id that is not UTF-8 was read as bytes: compared as the text it is)
            query = query.where(key > (sa.cast(sa.literal(last, sa.LargeBinary), sa.Text) if isinstance(last, bytes) else last))
        rows = _fetch(conn, query)
        if not rows:
            return
        last = rows[-1]["session_id"]
        yield last, rows


def _halves(rows: list) -> list[list]:
    middle = (len(rows) + 1) // 2
    return [part for part in (rows[:middle], rows[middle:]) if part]


def _write(conn, target, head, cp, legacy, item, report: LegacyReport, done_rows: int) -> int:
    """Write one converted batch with its checkpoint, in one transaction. Returns the rows done."""
    last, count, futures = item
    results = [result for future in futures for result in future.result()]
    written, failed = _import_batch(conn, target, head, legacy, results, report)
    conn.execute(cp.update().where(cp.c.table_name == legacy.name).values(
        last_session_id=last, sessions=cp.c.sessions + written, failed=cp.c.failed + failed,
        updated_at=int(time.time())))  # fmt: skip
    conn.commit()
    return done_rows + count


@contextlib.contextmanager
def _converter(total_rows: int):
    """``submit(fn, *args) -> Future``: a pool of worker processes, or inline for small imports."""
    workers = min(os.cpu_count() or 1, MAX_WORKERS)
    if workers < 2 or total_rows < 2 * BATCH:
        def inline(fn, *args):
            future: Future = Future()
            future.set_result(fn(*args))
            return future

        yield inline
        return
    with ProcessPoolExecutor(max_workers=workers, initializer=_die_with_parent) as pool:
        yield pool.submit


def _die_with_parent() -> None:
    """Worker start: on Linux, ask the kernel to kill this worker when the importing process dies
    (a killed import must not leave workers waiting on their queue forever)."""
    import ctypes
    import signal
    import sys

    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _fetch(conn, query) -> list[dict]:
    """The rows of ``query``. SQLite stores whatever bytes it was given as TEXT and fails the whole
    fetch on a value that is not UTF-8; then the batch is read again with such values as bytes, so
    that only their rows are reported (``convert_rows``). Nothing is written before a fetch (each
    batch commits), so the failed read is simply rolled back."""
    try:
        return [dict(row) for row in conn.execute(query).mappings()]
    except sa.exc.OperationalError as exc:
        if conn.dialect.name != "sqlite" or "decode to UTF-8" not in str(exc.orig):
            raise
    conn.rollback()
    raw = conn.connection.dbapi_connection
    raw.text_factory = _text_or_bytes
    try:
        return [dict(row) for row in conn.execute(query).mappings()]
    finally:
        raw.text_factory = str


def _text_or_bytes(data: bytes):
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data


def convert_rows(mode: str, rows: list[dict], backend: str) -> list[tuple]:
    """Convert Agno 1.x rows for ``backend``, ready to insert (pure; runs in a worker process).

    Each row gives ``("ok", session_row, run_rows, nul_removed, created_at_filled)`` with its JSON
    columns already encoded as text, or ``("error", session_id, reason)``.
    """
    out = []
    for row in rows:
        undecodable = [name for name, value in row.items() if value.__class__ is bytes]
        if undecodable:  # (see _fetch)
            out.append(("error", str(row.get("session_id")), f"column(s) {', '.join(undecodable)} hold bytes that are not UTF-8 text"))
            continue
        try:
            session_row, runs = convert.convert_v1_session(mode, row)
        except convert.ConversionError as exc:
            out.append(("error", str(row.get("session_id")), str(exc)))
            continue
        removed = 0
        if backend == "postgresql":  # JSONB and text there cannot hold NUL
            (session_row, runs), removed = convert.strip_nul((session_row, runs))
        filled = session_row["created_at"] is None
        if filled:  # the head schema requires one: the row's updated_at, else 0
            session_row["created_at"] = session_row["updated_at"] or 0
        run_rows, _ = convert.run_rows(session_row, runs)
        encode = json_text if backend == "mysql" else json.dumps
        for column in JSON_COLUMNS:
            if session_row[column] is not None:
                session_row[column] = encode(session_row[column])
        for run in run_rows:
            run["run_data"] = encode(run["run_data"])
        out.append(("ok", session_row, run_rows, removed, filled))
    return out


def _import_batch(conn, target: Target, head, legacy: LegacyTable, results: list[tuple], report: LegacyReport):
    """Write one batch of converted rows (in the caller's transaction). Returns (written, failed)."""
    converted, failed = [], 0
    for result in results:
        if result[0] == "error":
            report.unparseable.append((legacy.name, result[1], result[2]))
            failed += 1
            continue
        _, session_row, run_rows, removed, filled = result
        report.nul_bytes_removed += removed
        if filled:
            report.created_at_filled.append((legacy.name, session_row["session_id"]))
        converted.append((session_row, run_rows))
    converted = _without_collisions(conn, head, legacy, converted, report)
    if not converted:
        return 0, failed
    run_rows = _rekey_taken_runs(conn, head, [row for _, rows in converted for row in rows], report)
    conn.execute(sa.insert(_untyped(head.sessions)), [s for s, _ in converted])
    if run_rows:
        conn.execute(sa.insert(_untyped(head.runs)), run_rows)
    report.sessions += len(converted)
    report.runs += len(run_rows)
    return len(converted), failed


def _untyped(table: sa.Table) -> sa.TableClause:
    """The table with untyped columns: the JSON values are already encoded text, to be stored as is
    (no second encoding; on PostgreSQL the driver sends them untyped and the server parses JSONB)."""
    return sa.table(table.name, *[sa.column(c.name) for c in table.columns], schema=table.schema)


def _without_collisions(conn, head, legacy, converted, report):
    """Drop (and report) sessions whose id is already stored with other content; drop silently the
    ones already stored with the same content (nothing to do)."""
    s = head.sessions
    ids = [row["session_id"] for row, _ in converted]
    stored = {}
    for start in range(0, len(ids), LOOKUP_CHUNK):
        query = sa.select(s).where(s.c.session_id.in_(ids[start : start + LOOKUP_CHUNK]))
        stored.update({row["session_id"]: dict(row) for row in conn.execute(query).mappings()})
    keep = []
    for session_row, runs in converted:
        existing = stored.get(session_row["session_id"])
        if existing is None:
            keep.append((session_row, runs))
        elif _canonical(existing) != _canonical(session_row):
            report.collisions.append((legacy.name, session_row["session_id"],
                                      "already in the session table with other content; not overwritten"))  # fmt: skip
    return keep


def _canonical(row: dict) -> str:
    return json.dumps({k: convert.decode_json(v) if isinstance(v, str) and k not in ("session_id", "session_type",
                       "agent_id", "team_id", "workflow_id", "user_id") else v for k, v in row.items()},
                      sort_keys=True, default=str)  # fmt: skip


def _rekey_taken_runs(conn, head, run_rows, report):
    """Runs whose id is already stored (for another session) get a derived id, reported."""
    r = head.runs
    ids = [row["run_id"] for row in run_rows]
    taken = {}
    for start in range(0, len(ids), LOOKUP_CHUNK):
        query = sa.select(r.c.run_id, r.c.session_id).where(r.c.run_id.in_(ids[start : start + LOOKUP_CHUNK]))
        taken.update(conn.execute(query).all())
    out = []
    for row in run_rows:
        if row["run_id"] in taken:
            new_id = convert.derived_run_id(row["session_id"], row["run_index"], row["run_id"])
            report.duplicate_run_ids.append((row["run_id"], row["session_id"], taken[row["run_id"]], new_id))
            row = {**row, "run_id": new_id}
        taken[row["run_id"]] = row["session_id"]
        out.append(row)
    return out
