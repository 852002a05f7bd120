"""The SQLite store's connection per thread (``backends.kept``): reused by a thread's calls, one per
thread, closed by ``close()``, dropped after a call that could not roll back, and never used by a
forked child."""

from __future__ import annotations

import os
import sqlite3
import threading

import pytest

import agno_migrate
from agno_migrate import AgentSession
from agno_migrate.backends import connections
from agno_migrate.backends import kept as kept_module
from agno_migrate.errors import DatabaseFailure


@pytest.fixture
def store(tmp_path):
    made = agno_migrate.connect(f"sqlite:///{tmp_path / 'kept.db'}")
    made.upsert_session(AgentSession(session_id="s1", agent_id="a"))
    yield made
    made.close()


def kept_conn(store):
    return connections.peek(store.target, "kept").local.kept.conn


def test_a_thread_reuses_its_connection_and_threads_have_their_own(store):
    first = kept_conn(store)
    store.upsert_run("s1", {"run_id": "r1"})
    store.get_session("s1")
    assert kept_conn(store) is first
    seen = []

    def other():
        store.upsert_run("s1", {"run_id": "r2"})
        seen.append(kept_conn(store))

    thread = threading.Thread(target=other)
    thread.start()
    thread.join()
    assert seen and seen[0] is not first
    assert [r.run_id for r in store.get_session("s1").runs] == ["r1", "r2"]


def test_close_closes_kept_connections_and_the_next_call_takes_a_new_one(store):
    first = kept_conn(store)
    store.close()
    with pytest.raises(sqlite3.ProgrammingError):  # closed
        first.execute("SELECT 1")
    store.upsert_run("s1", {"run_id": "r1"})
    assert kept_conn(store) is not first
    assert len(store.get_session("s1").runs) == 1


def test_a_connection_that_cannot_roll_back_is_dropped(store, monkeypatch):
    first = kept_conn(store)
    statements = store._run_statements

    class Broken:  # the driver's connection fails the statement, then the rollback after it
        in_transaction = True

        def __init__(self, conn):
            self.conn = conn

        def cursor(self):
            raise sqlite3.OperationalError("disk I/O error")

        def execute(self, sql):
            return self.conn.execute(sql)

        def rollback(self):
            self.conn.rollback()
            raise sqlite3.OperationalError("disk I/O error")

    shelf = connections.peek(store.target, "kept")
    shelf.local.kept.conn = Broken(first)
    with pytest.raises(DatabaseFailure, match="disk I/O error"):
        store.upsert_run("s1", {"run_id": "r1"})
    assert shelf.local.kept is None
    with pytest.raises(sqlite3.ProgrammingError):  # closed
        first.execute("SELECT 1")
    assert store.upsert_run("s1", {"run_id": "r1"}).run_id == "r1"
    assert store._run_statements is statements


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no os.fork")
def test_a_forked_child_takes_its_own_connection_and_leaves_the_parents(store):
    first = kept_conn(store)
    pid = os.fork()
    if pid == 0:  # the child: its own connection; the parent's left open (no exit handlers)
        code = 1
        try:
            store.upsert_run("s1", {"run_id": "child"})
            code = 0 if kept_conn(store) is not first and first.execute("SELECT 1").fetchone() == (1,) else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert kept_conn(store) is first
    store.upsert_run("s1", {"run_id": "parent"})
    assert [r.run_id for r in store.get_session("s1").runs] == ["child", "parent"]
    assert kept_module._forked_away == []  # the parent abandoned nothing


def test_an_in_memory_database_keeps_no_connection():
    store = agno_migrate.connect("sqlite://")
    try:
        store.upsert_session(AgentSession(session_id="m1", agent_id="a"))
        assert store.get_session("m1") is not None
        assert connections.peek(store.target, "kept").keeps is False
    finally:
        store.close()
