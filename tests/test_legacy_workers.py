"""The Agno 1.x import's worker processes: the same bytes as an inline conversion, an inline
conversion when no worker can start, no worker left behind when the importer is killed; orjson (an
optional accelerator) changes no value and no stored byte."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import SQL_BACKENDS, fixture_bytes
from test_legacy import head_dump, legacy_dump, multiply_agent_sessions

import agno_migrate
from agno_migrate import convert, jsoncodec
from agno_migrate.jsoncodec import loads
from agno_migrate.migrate.legacy import pool as legacy_pool
from agno_migrate.migrate.legacy import sql as legacy
from agno_migrate.migrate.legacy import worker as legacy_worker
from agno_migrate.target import Target

CLI = str(Path(sys.executable).parent / "agno-migrate")


def _imported(new_database, backend: str, copies: int, monkeypatch=None, **constants):
    db = new_database(backend)
    db.load("v1")
    multiply_agent_sessions(db.url, copies)
    before = legacy_dump(db.url)
    if constants:
        for name, value in constants.items():
            monkeypatch.setattr(legacy_pool if hasattr(legacy_pool, name) else legacy, name, value)
    agno_migrate.upgrade(db.url)
    assert legacy_dump(db.url) == before
    return head_dump(db.url)


@pytest.mark.parametrize("backend", SQL_BACKENDS)
def test_workers_store_the_same_bytes_as_an_inline_conversion(new_database, backend, monkeypatch):
    # 4 copies: enough rows for worker processes, on any machine; on SQLite they read the rows themselves
    monkeypatch.setattr(legacy_pool, "cpu_count", lambda: 2)
    read_by_workers = []
    sqlite_file = legacy._sqlite_file
    monkeypatch.setattr(
        legacy, "_sqlite_file", lambda *args: read_by_workers.append(sqlite_file(*args)) or read_by_workers[-1]
    )
    with_workers = _imported(new_database, backend, 4)
    assert read_by_workers and {bool(path) for path in read_by_workers} == {backend == "sqlite"}
    inline = _imported(new_database, backend, 4, monkeypatch, MAX_WORKERS=1)
    assert with_workers == inline
    # smaller transactions than batches of conversion: the same rows again
    assert _imported(new_database, backend, 4, monkeypatch, COMMIT_BYTES=1, BATCH=50) == inline


def test_postgresql_batches_streamed_in_small_tasks_store_the_same_bytes(new_database, monkeypatch):
    # a batch read a row a fetch and sent to the workers in tasks of a row or two, the last task short
    monkeypatch.setattr(legacy_pool, "cpu_count", lambda: 2)
    inline = _imported(new_database, "postgresql", 4, monkeypatch, MAX_WORKERS=1)
    tasks = []
    streamed = legacy._streamed
    monkeypatch.setattr(legacy, "_streamed", lambda *args: tasks.append(streamed(*args)) or tasks[-1])
    assert _imported(new_database, "postgresql", 4, monkeypatch, MAX_WORKERS=2, STREAM_ROWS=1, TASKS_PER_WORKER=3,
                     BATCH=11) == inline  # fmt: skip
    assert tasks and all(count <= 11 and len(futures) == -(-count // 2) for count, _, futures in tasks)


@pytest.mark.parametrize("as_bytes", [False, True])
def test_postgresql_copy_stores_what_an_insert_stores(new_database, as_bytes):
    """``legacy.copy_rows`` (COPY FROM STDIN, text format) against a plain INSERT of the same values: text
    and JSON holding COPY's special characters, non-ASCII text, NULLs, integers; JSON text given as
    str or as its UTF-8 bytes (``Dialect.utf8_text_bytes``)."""
    db = new_database("postgresql")
    engine = db.engine()
    table = sa.Table("t", sa.MetaData(), sa.Column("k", sa.Text), sa.Column("j", sa.JSON().with_variant(
        sa.dialects.postgresql.JSONB(), "postgresql")), sa.Column("n", sa.BigInteger))  # fmt: skip
    texts = ["plain", "back\\slash \\N", "tab\there", "new\nline\r\n", "\\.", "é ü 😀 \u2028", "", "\\\\t"]
    values = [{"text": text, "list": [text, None, 1.5, 2**40], "nested": {text: text}} for text in texts]
    rows = [(text, json.dumps(value, ensure_ascii=False), number)
            for text, value, number in zip(texts, values, [None, 0, -1, 2**62, 7, 8, 9, 10], strict=False)]  # fmt: skip
    rows.append((None, None, None))
    with engine.begin() as conn:
        table.create(conn)
        copy = sa.Table("c", sa.MetaData(), *[sa.Column(c.name, c.type) for c in table.columns])
        copy.create(conn)
    with engine.connect() as conn:
        conn.execute(sa.insert(table), [dict(zip(("k", "j", "n"), (k, sa.null() if j is None else json.loads(j), n), strict=False))
                                         for k, j, n in rows])  # fmt: skip
        given = [(k, j.encode() if as_bytes and j is not None else j, n) for k, j, n in rows]
        legacy.copy_rows(conn, copy, ["k", "j", "n"], given)
        conn.commit()
    with engine.connect() as conn:
        inserted = conn.exec_driver_sql("SELECT k, j::text, n FROM t ORDER BY k NULLS LAST").all()
        copied = conn.exec_driver_sql("SELECT k, j::text, n FROM c ORDER BY k NULLS LAST").all()
    engine.dispose()
    assert copied == inserted and len(copied) == len(rows)


def test_no_usable_interpreter_converts_inline(new_database, monkeypatch):
    monkeypatch.setattr(legacy_pool, "cpu_count", lambda: 2)
    reference = _imported(new_database, "sqlite", 4, monkeypatch, MAX_WORKERS=1)
    monkeypatch.setattr(sys, "executable", "/nonexistent/python")
    assert _imported(new_database, "sqlite", 4, monkeypatch, MAX_WORKERS=4) == reference


def _worker_pids(parent: int) -> list[int]:
    """The live worker processes started by process ``parent`` (their command line names it)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                args = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if len(args) > 3 and b"migrate.legacy.worker" in args[2] and args[3] == str(parent).encode():
                pids.append(int(entry))
    return pids


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc and PR_SET_PDEATHSIG are Linux's")
def test_a_killed_importer_leaves_no_worker_behind(new_database, tmp_path):
    db = new_database("sqlite")
    db.load("v1")
    multiply_agent_sessions(db.url, 20)
    before = legacy_dump(db.url)
    importer = subprocess.Popen([CLI, "--db-url", db.url, "upgrade"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, cwd=tmp_path)  # fmt: skip
    deadline = time.time() + 60
    while not _worker_pids(importer.pid) and time.time() < deadline and importer.poll() is None:
        time.sleep(0.01)
    workers = _worker_pids(importer.pid)
    assert workers, "no worker process seen"
    importer.send_signal(signal.SIGKILL)
    importer.wait()
    deadline = time.time() + 10
    while _worker_pids(importer.pid) and time.time() < deadline:  # the kernel kills them (a zombie has no cmdline)
        time.sleep(0.05)
    assert not _worker_pids(importer.pid)
    done = subprocess.run([CLI, "--db-url", db.url, "upgrade"], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert legacy_dump(db.url) == before


TRICKY_JSON = [
    "123456789012345678901234567890", "-9223372036854775809", "18446744073709551616", "[1, 12345678901234567890]",
    '"\\ud800"', '"\\udc00 lone"', '"\\ud83d\\ude42"', "NaN", "[Infinity, -Infinity]", "1e999", "0.1", "1e-07",
    '{"a": 1, "a": 2}', '"\\u0000"', "[" * 100 + "]" * 100, '{"k": "\\u20ac caf\\u00e9"}', "-0", "-0.0", "5e-324",
    # a JSON string holding JSON (Agno 2.x's outer layer on SQLite): parsed without the digit scan
    '"[1, 12345678901234567890, NaN]"', '"{\\"k\\": \\"caf\\u00e9 \\\\ud800\\"}"', '"\\u00e9"', '"\\/"',
]  # fmt: skip
NOT_JSON = ["{not json", "[1,]", "01", "\ufeff{}", '"a\tb"', "", " ", "[" * 5000 + "]" * 5000,
            '"x" 1', '"unterminated', '"bad \\x escape"', '"\\ud83d"x']  # fmt: skip


def _outcome(parse, given):
    try:
        return repr(parse(given))
    except (ValueError, RecursionError) as exc:
        return type(exc)


def test_loads_gives_what_json_loads_gives():
    """orjson (when installed) parses only where it gives json.loads's exact values; json.loads the rest.
    The same for UTF-8 bytes, as the PostgreSQL driver hands JSON over (json.loads accepts a BOM there)."""
    for text in TRICKY_JSON + NOT_JSON:
        for given in (text, text.encode()):
            assert _outcome(loads, given) == _outcome(json.loads, given), given
    assert all(isinstance(_outcome(loads, text), type) for text in NOT_JSON)


LAYOUT = (("session_id", "session_type", "agent_id", "team_id", "workflow_id", "user_id", "session_data",
           "agent_data", "team_data", "workflow_data", "metadata", "summary", "created_at", "updated_at"),
          ("run_id", "session_id", "run_type", "agent_id", "team_id", "workflow_id", "user_id", "parent_run_id",
           "status", "run_index", "run_data", "created_at", "updated_at"),
          ("session_data", "agent_data", "team_data", "workflow_data", "metadata", "summary"))  # fmt: skip


def _decoded(results: list) -> list:
    """convert_rows results with their JSON text decoded (json.loads) and the text sizes left out."""
    sessions, runs, json_columns = LAYOUT
    json_at = {sessions.index(name) for name in json_columns}
    out = []
    for result in results:
        if not isinstance(result, legacy_worker.Converted):
            out.append(result)
            continue
        values, run_values, removed, filled = result.session, result.runs, result.nul_removed, result.created_at_filled
        values = tuple(json.loads(v) if i in json_at and v is not None else v for i, v in enumerate(values))
        run_values = [
            tuple(json.loads(v) if i == runs.index("run_data") else v for i, v in enumerate(r)) for r in run_values
        ]
        out.append(("ok", values, run_values, removed, filled))
    return out


def test_the_conversion_without_orjson_gives_the_same_values(monkeypatch):
    """orjson parses and (where it cannot change a value) encodes: the stored JSON reads back as the
    very values json.loads/json.dumps alone give (its text may differ: compact, UTF-8 unescaped)."""
    with tempfile.NamedTemporaryFile(suffix=".db") as fh:
        fh.write(fixture_bytes("v1", "sqlite.db"))
        fh.flush()
        conn = sqlite3.connect(fh.name)
        conn.row_factory = sqlite3.Row
        rows = {mode: [dict(r) for r in conn.execute(f"SELECT * FROM {mode}_sessions ORDER BY session_id")]
                for mode in ("agent", "team", "workflow", "workflow_v2")}  # fmt: skip
        conn.close()
    for backend in ("sqlite", "postgresql", "mysql"):
        with_orjson = {mode: legacy_worker.convert_rows(mode, r, backend, LAYOUT) for mode, r in rows.items()}
        again = {mode: legacy_worker.convert_rows(mode, r, backend, LAYOUT) for mode, r in rows.items()}
        assert repr(again) == repr(with_orjson)  # deterministic: the same rows, the same bytes
        monkeypatch.setattr(jsoncodec, "orjson", None)
        without = {mode: legacy_worker.convert_rows(mode, r, backend, LAYOUT) for mode, r in rows.items()}
        monkeypatch.undo()
        assert repr({m: _decoded(r) for m, r in with_orjson.items()}) == repr(
            {m: _decoded(r) for m, r in without.items()}
        )


NONSTANDARD_MEMORY = [
    '{"runs": [{"run_id": "r", "content": NaN}]}',  # json.loads only
    '{"runs": [{"run_id": "r", "content": [Infinity, -Infinity]}]}',
    '{"runs": [{"run_id": "r", "content": 1e999}]}',
    '{"runs": [{"run_id": "r", "content": 123456789012345678901234567890}]}',  # beyond 64 bits
    '{"runs": [{"run_id": "r", "content": "\\ud800 lone"}]}',
    '{"runs": [{"run_id": "r", "metrics": {"time": [1.5e308, 1.5e308]}}]}',  # a sum that is not finite
    '{"runs": [{"run_id": "r", "metrics": {"input_tokens": [9223372036854775807, 9223372036854775807]}}]}',
    '{"runs": [{"run_id": "r", "content": "caf\\u00e9 \\u0000 \\ud83d\\ude42 \u4e2d", "n": -0.0, "f": 1e-05}]}',
]


@pytest.mark.skipif(jsoncodec.orjson is None, reason="orjson not installed")
@pytest.mark.parametrize("backend", ["sqlite", "postgresql", "mysql"])
def test_values_orjson_cannot_write_exactly_are_encoded_as_without_it(monkeypatch, backend):
    """A row holding NaN, ±Infinity, an integer beyond 64 bits, a lone surrogate or a sum that
    overflows (or a column value that is not text, NULL or a finite number) is stored exactly as
    json.dumps writes it; other rows read back as the same values."""
    rows = [{"session_id": f"s{i}", "agent_id": "a", "user_id": "u", "memory": memory, "session_data": None,
             "extra_data": None, "agent_data": None, "created_at": 1, "updated_at": 2}
            for i, memory in enumerate(NONSTANDARD_MEMORY)]  # fmt: skip
    rows.append({**rows[-1], "session_id": "real", "score": float("inf")})  # an unknown REAL column: kept aside
    with_orjson = legacy_worker.convert_rows("agent", rows, backend, LAYOUT)
    monkeypatch.setattr(jsoncodec, "orjson", None)
    without = legacy_worker.convert_rows("agent", rows, backend, LAYOUT)
    for index, (fast, plain) in enumerate(zip(with_orjson, without, strict=False)):
        if index == len(NONSTANDARD_MEMORY) - 1:  # standard JSON: orjson's text, the same values
            assert repr(_decoded([fast])) == repr(_decoded([plain]))
            assert fast != plain
        else:
            assert repr(fast) == repr(plain), rows[index]


def _sqlite_copy_in(encoding: str, source: Path, path: Path) -> None:
    """``source``'s tables and rows in a new SQLite database whose text encoding is ``encoding``."""
    with sqlite3.connect(source) as old:
        script = list(old.iterdump())
    new = sqlite3.connect(path)
    new.execute(f"PRAGMA encoding = '{encoding}'")
    new.executescript("\n".join(script))
    new.close()


@pytest.mark.parametrize("encoding", ["UTF-8", "UTF-16le"])
def test_sqlite_json_columns_are_stored_as_text(new_database, monkeypatch, encoding):
    """orjson's UTF-8 output reaches SQLite as bytes cast to TEXT (UTF-8 databases only): stored as
    text, never as a BLOB, and read back as the same values in a UTF-16 database too."""
    monkeypatch.setattr(legacy_pool, "cpu_count", lambda: 2)
    reference = new_database("sqlite")
    reference.load("v1")
    multiply_agent_sessions(reference.url, 4)
    db = new_database("sqlite")
    _sqlite_copy_in(encoding, reference.path, db.path)
    agno_migrate.upgrade(reference.url)
    agno_migrate.upgrade(db.url)
    with sqlite3.connect(db.path) as conn:
        assert conn.execute("PRAGMA encoding").fetchone()[0] == encoding
        kinds = {kind for column in ("session_data", "agent_data", "team_data", "workflow_data", "metadata", "summary")
                 for (kind,) in conn.execute(f"SELECT DISTINCT typeof({column}) FROM agno_sessions")}  # fmt: skip
        kinds |= {kind for (kind,) in conn.execute("SELECT DISTINCT typeof(run_data) FROM agno_runs")}
        assert kinds <= {"text", "null"} and "text" in kinds
    assert head_dump(db.url) == head_dump(reference.url)


def test_postgresql_json_read_as_text_gives_the_values_psycopg_gives(new_database):
    """On PostgreSQL the legacy JSON columns are read as the server's text and parsed in the
    workers: what is stored is what a conversion of psycopg's own objects gives."""
    from test_legacy import engine_of

    db = new_database("postgresql")
    db.load("v1")
    schema = Target.from_url(db.url).schema
    state = {"big": 123456789012345678901234567890, "u64": 18446744073709551615, "neg": -9223372036854775809,
             "f": 5e-324, "g": 1.7976931348623157e308, "small": 1e-05, "text": "caf\u00e9 \U0001f511"}  # fmt: skip
    memory = {
        "runs": [{"run_id": "r-tricky", "content": "x", "metrics": {"time": [0.1, 1e-05]}, "session_state": state}]
    }
    engine = engine_of(db.url)
    try:
        with engine.begin() as conn:
            table = sa.Table("agent_sessions", sa.MetaData(), autoload_with=conn, schema=schema)
            conn.execute(table.insert().values(session_id="tricky", agent_id="a", memory=memory,
                                               session_data={"session_state": state}, created_at=1))  # fmt: skip
        multiply_agent_sessions(db.url, 4)  # enough rows for the workers
        with engine.connect() as conn:  # psycopg's objects, converted here
            table = sa.Table("agent_sessions", sa.MetaData(), autoload_with=conn, schema=schema)
            rows = [dict(row) for row in conn.execute(sa.select(table)).mappings()]
        expected = {}
        for row in rows:
            session, runs = convert.convert_v1_session("agent", row)
            expected[row["session_id"]] = (session, [run["run_data"] for run in convert.run_rows(session, runs)[0]])
        agno_migrate.upgrade(db.url)
        with engine.connect() as conn:
            sessions = sa.Table("agno_sessions", sa.MetaData(), autoload_with=conn, schema=schema)
            runs = sa.Table("agno_runs", sa.MetaData(), autoload_with=conn, schema=schema)
            stored = {row["session_id"]: dict(row) for row in conn.execute(sa.select(sessions)).mappings()}
            stored_runs: dict = {}
            for row in conn.execute(sa.select(runs).order_by(runs.c.run_index)).mappings():
                stored_runs.setdefault(row["session_id"], []).append(row["run_data"])
    finally:
        engine.dispose()
    assert "tricky" in expected and set(expected) <= set(stored)  # (the other tables' sessions are stored too)
    json_columns = ("session_data", "agent_data", "metadata", "summary")

    def exact(value):
        return json.dumps(value, sort_keys=True)  # JSONB orders keys its own way

    for session_id, (session, run_data) in expected.items():
        assert exact([session[k] for k in json_columns]) == exact([stored[session_id][k] for k in json_columns])
        assert exact(run_data) == exact(stored_runs.get(session_id, []))
