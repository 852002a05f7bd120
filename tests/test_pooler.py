"""PostgreSQL behind PgBouncer in transaction mode (tests/pgbouncer_server.py: pool size 4), where
session state — advisory locks, named prepared statements — does not survive a transaction.

Eight `agno-migrate upgrade` processes at once through the pooler on an Agno 2.0 database: all
succeed, each step is recorded once, the end state is that of a direct upgrade, and no lock is
left on any server connection (a later upgrade through the pooler takes it at once). Eight store
writers (threads, then processes) through the pooler: all succeed, every write is there.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest
import sqlalchemy as sa
from reliability.support import cli, diff_states, end_state, load_point, race, succeeded, version_rows
from test_cli import clean_env

import agno_migrate
from agno_migrate import AgentSession, registry
from agno_migrate.backends import postgresql
from agno_migrate.backends import sql as backend_sql

WRITERS = 8
SESSIONS_EACH = 6
RUNS_EACH = 4


def advisory_locks(url: str) -> list[tuple]:
    """Advisory locks held on the server in ``url``'s database, by any session."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return conn.execute(
                sa.text(
                    "SELECT l.pid, l.objid FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
                    "WHERE l.locktype = 'advisory' AND d.datname = current_database() AND l.granted"
                )
            ).all()
    finally:
        engine.dispose()


def expected_versions() -> list[tuple[str, str]]:
    later = [v.version for v in registry.VERSIONS if v.key > registry.get("2.0.0").key]
    return [("2.0.0", "detect")] + [(v, "upgrade") for v in later]


def test_the_pooler_pools_transactions(new_database, pgbouncer):
    """The premise: through the pooler, one client's transactions land on other clients' server
    connections (two clients at once can share a backend), and we tell we are behind it."""
    import psycopg

    db = new_database("postgresql")
    pooled = pgbouncer.url_for(db.url).replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(pooled, autocommit=True) as a, psycopg.connect(pooled, autocommit=True) as b:
        assert a.execute("SELECT pg_backend_pid()").fetchone() == b.execute("SELECT pg_backend_pid()").fetchone()
        assert postgresql.behind_pooler(a)
    with psycopg.connect(db.url.replace("postgresql+psycopg://", "postgresql://")) as direct:
        assert not postgresql.behind_pooler(direct)


def test_concurrent_upgrades_through_the_pooler(new_database, pgbouncer, tmp_path):
    reference, raced = new_database("postgresql"), new_database("postgresql")
    for db in (reference, raced):
        load_point(db, "2.0.0", generated=100)
    succeeded(cli("upgrade", url=reference.url, cwd=tmp_path))
    want = end_state(reference)
    pooled = pgbouncer.url_for(raced.url)

    results = race(pooled, ["cli"] * 8, tmp_path)

    for result in results:
        assert result.returncode == 0, (result.stdout, result.stderr)
        assert result.stderr == "", result.stderr
    assert sum("upgraded" in r.stdout for r in results) == 1, [r.stdout for r in results]
    assert all("already at" in r.stdout for r in results if "upgraded" not in r.stdout)
    assert [(v, action) for v, _, action in version_rows(raced.url)] == expected_versions()
    got = end_state(raced)
    assert got == want, diff_states(got, want)
    assert advisory_locks(raced.url) == []  # nothing left on any server connection of the pool
    # and a later command that takes the lock, through the pooler, gets it at once
    started = time.monotonic()
    succeeded(cli("--lock-timeout", "5", "stamp", "3.0.1", url=pooled, cwd=tmp_path))
    succeeded(cli("--lock-timeout", "5", "upgrade", url=pooled, cwd=tmp_path))
    assert time.monotonic() - started < 20


# A holder: takes the migration lock through the pooler, says so, and sleeps until killed.
HOLDER = textwrap.dedent(
    """
    import sys, time
    from agno_migrate.migrate.backend.sql import SqlBackend
    from agno_migrate.target import Target
    with SqlBackend.locked(Target.from_url(sys.argv[1])):
        print("locked", flush=True)
        time.sleep(600)
    """
)


def test_a_killed_holder_leaves_no_lock_behind_the_pooler(new_database, pgbouncer, tmp_path):
    db = new_database("postgresql")
    load_point(db, "2.0.0", generated=0)
    pooled = pgbouncer.url_for(db.url)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, pooled], stdout=subprocess.PIPE, text=True,
                              env=clean_env())  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert len(advisory_locks(db.url)) == 1
        blocked = cli("--lock-timeout", "1", "upgrade", url=pooled, cwd=tmp_path)
        assert blocked.code != 0 and "migration lock" in blocked.err, blocked
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    deadline = time.monotonic() + 10
    while advisory_locks(db.url) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert advisory_locks(db.url) == []
    succeeded(cli("--lock-timeout", "5", "upgrade", url=pooled, cwd=tmp_path))
    assert [(v, action) for v, _, action in version_rows(db.url)] == expected_versions()


def write_sessions(url: str, writer: int) -> None:
    """Writer ``writer``'s sessions through a store of its own: each with runs, then one more run
    appended to each and one appended to the shared session (all writers contend for its row)."""
    store = agno_migrate.connect(url)
    try:
        for k in range(SESSIONS_EACH):
            sid = f"w{writer}-s{k}"
            runs = [{"run_id": f"{sid}-r{i}", "agent_id": "a", "content": f"run {i}"} for i in range(RUNS_EACH)]
            store.upsert_session(AgentSession(session_id=sid, agent_id="a", user_id=f"u{writer}", runs=runs))
            store.upsert_run(sid, {"run_id": f"{sid}-extra", "agent_id": "a", "content": "extra"})
            store.upsert_run("shared", {"run_id": f"shared-w{writer}-{k}", "agent_id": "a", "content": "x"})
            got = store.get_session(sid)
            assert got is not None and len(got.runs) == RUNS_EACH + 1, (sid, got)
    finally:
        store.close()


def check_every_write(url: str, writers: int) -> None:
    store = agno_migrate.connect(url)
    try:
        sessions, total = store.get_sessions(limit=None)
        assert total == writers * SESSIONS_EACH + 1
        by_id = {s.session_id: s for s in sessions}
        for w in range(writers):
            for k in range(SESSIONS_EACH):
                sid = f"w{w}-s{k}"
                assert [r["run_id"] for r in by_id[sid].runs] == [f"{sid}-r{i}" for i in range(RUNS_EACH)] + [
                    f"{sid}-extra"
                ]
        shared = [r["run_id"] for r in by_id["shared"].runs]
        assert sorted(shared) == sorted(f"shared-w{w}-{k}" for w in range(writers) for k in range(SESSIONS_EACH))
    finally:
        store.close()


def fresh_store_database(new_database):
    db = new_database("postgresql")
    store = agno_migrate.connect(db.url)
    store.upsert_session(AgentSession(session_id="shared", agent_id="a"))
    store.close()
    return db


def test_concurrent_store_writers_in_threads_through_the_pooler(new_database, pgbouncer):
    db = fresh_store_database(new_database)
    pooled = pgbouncer.url_for(db.url)
    errors = []

    def writer(n: int) -> None:
        try:
            write_sessions(pooled, n)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(f"writer {n}: {type(exc).__name__}: {exc}")

    _in_threads(writer)
    assert errors == []
    check_every_write(db.url, WRITERS)
    check_every_write(pooled, WRITERS)


def _in_threads(writer) -> None:
    """Run ``writer(n)`` for each of the WRITERS in its own thread, all at once; wait for them."""
    threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)


def test_one_store_shared_by_threads_through_the_pooler(new_database, pgbouncer):
    """One store (one engine, its connections reused by every thread) through the pooler."""
    db = fresh_store_database(new_database)
    pooled = pgbouncer.url_for(db.url)
    store = agno_migrate.connect(pooled)
    errors = []

    def writer(n: int) -> None:
        try:
            for k in range(SESSIONS_EACH):
                sid = f"w{n}-s{k}"
                runs = [{"run_id": f"{sid}-r{i}", "agent_id": "a", "content": f"run {i}"} for i in range(RUNS_EACH)]
                store.upsert_session(AgentSession(session_id=sid, agent_id="a", runs=runs))
                store.upsert_run(sid, {"run_id": f"{sid}-extra", "agent_id": "a", "content": "extra"})
                store.upsert_run("shared", {"run_id": f"shared-w{n}-{k}", "agent_id": "a", "content": "x"})
                assert len(store.get_session(sid).runs) == RUNS_EACH + 1
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(f"writer {n}: {type(exc).__name__}: {exc}")

    _in_threads(writer)
    store.close()
    assert errors == []
    check_every_write(db.url, WRITERS)


WRITER = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, sys.argv[3])
    from test_pooler import write_sessions
    print("ready", flush=True)
    sys.stdin.read()
    write_sessions(sys.argv[1], int(sys.argv[2]))
    print("done", flush=True)
    """
)


def test_concurrent_store_writers_in_processes_through_the_pooler(new_database, pgbouncer):
    db = fresh_store_database(new_database)
    pooled = pgbouncer.url_for(db.url)
    here = os.path.dirname(__file__)
    env = {**clean_env(), "PYTHONPATH": os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH"), here]))}
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, pooled, str(n), here], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for n in range(WRITERS)]  # fmt: skip
    for proc in procs:
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read() if proc.poll() is not None else ""
    for proc in procs:  # released together
        proc.stdin.close()
        proc.stdin = None
    outcomes = [(proc.wait(300), *proc.communicate()) for proc in procs]
    assert [(code, out.strip(), err) for code, out, err in outcomes] == [(0, "done", "")] * WRITERS
    check_every_write(db.url, WRITERS)


@pytest.mark.parametrize("pooled", [False, True])
def test_the_store_prepares_statements_only_on_a_direct_connection(new_database, pgbouncer, pooled):
    """Direct: named statements, prepared once per connection (the fast path, unchanged); behind
    the pooler: unnamed ones, so no server connection keeps a statement of ours."""
    db = fresh_store_database(new_database)
    store = agno_migrate.connect(pgbouncer.url_for(db.url) if pooled else db.url)
    try:
        store.upsert_run("shared", {"run_id": "one", "agent_id": "a"})
        store.upsert_run("shared", {"run_id": "two", "agent_id": "a"})
        conn = backend_sql.raw_connection(store.target)  # the one connection the calls used
        exchange = conn.info.get("agno_migrate_exchange")
        conn.close()
        assert exchange is not None
        assert bool(exchange.prepared) is not pooled
    finally:
        store.close()
