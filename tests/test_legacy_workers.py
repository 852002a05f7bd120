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

import agno_migrate
from agno_migrate.migrate import convert, legacy, legacy_pool, legacy_worker
from agno_migrate.migrate.convert import loads
from conftest import SQL_BACKENDS, fixture_bytes
from test_legacy import head_dump, legacy_dump, multiply_agent_sessions

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
    monkeypatch.setattr(legacy, "_sqlite_file", lambda *args: read_by_workers.append(sqlite_file(*args)) or read_by_workers[-1])
    with_workers = _imported(new_database, backend, 4)
    assert read_by_workers and {bool(path) for path in read_by_workers} == {backend == "sqlite"}
    inline = _imported(new_database, backend, 4, monkeypatch, MAX_WORKERS=1)
    assert with_workers == inline
    # smaller transactions than batches of conversion: the same rows again
    assert _imported(new_database, backend, 4, monkeypatch, COMMIT_BYTES=1, BATCH=50) == inline


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
            if len(args) > 3 and b"legacy_worker" in args[2] and args[3] == str(parent).encode():
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
]  # fmt: skip
NOT_JSON = ["{not json", "[1,]", "01", "\ufeff{}", '"a\tb"', "", " ", "[" * 5000 + "]" * 5000]


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


def test_the_conversion_without_orjson_gives_the_same_bytes(monkeypatch):
    with tempfile.NamedTemporaryFile(suffix=".db") as fh:
        fh.write(fixture_bytes("v1", "sqlite.db"))
        fh.flush()
        conn = sqlite3.connect(fh.name)
        conn.row_factory = sqlite3.Row
        rows = {mode: [dict(r) for r in conn.execute(f"SELECT * FROM {mode}_sessions ORDER BY session_id")]
                for mode in ("agent", "team", "workflow", "workflow_v2")}  # fmt: skip
        conn.close()
    layout = (("session_id", "session_type", "agent_id", "team_id", "workflow_id", "user_id", "session_data",
               "agent_data", "team_data", "workflow_data", "metadata", "summary", "created_at", "updated_at"),
              ("run_id", "session_id", "run_type", "agent_id", "team_id", "workflow_id", "user_id", "parent_run_id",
               "status", "run_index", "run_data", "created_at", "updated_at"),
              ("session_data", "agent_data", "team_data", "workflow_data", "metadata", "summary"))  # fmt: skip
    for backend in ("sqlite", "postgresql", "mysql"):
        with_orjson = {mode: legacy_worker.convert_rows(mode, r, backend, layout) for mode, r in rows.items()}
        monkeypatch.setattr(convert, "_orjson", None)
        without = {mode: legacy_worker.convert_rows(mode, r, backend, layout) for mode, r in rows.items()}
        monkeypatch.undo()
        assert repr(with_orjson) == repr(without)
