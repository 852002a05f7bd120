"""The session store (``agno_migrate.connect``) on every backend (SQLite, PostgreSQL, MariaDB and
MongoDB): each method, filters, pagination and sort, unicode and big payloads, concurrent writers,
and cross-reads with the real Agno 3.1.10 (its own SqliteDb / PostgresDb / MongoDb, run by
tests/agno_side/agno_sessions.py in the project's reference environment, tests/agno_side/env.py).

Every test gets fresh databases on the real servers (conftest); a server that cannot be reached
fails, it is never skipped.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from agno_side import env as agno_env
from conftest import POINTS, SQL_BACKENDS, expected_sessions, fixture_bytes

import agno_migrate
from agno_migrate import AgentSession, Run, SchemaBehind, TeamSession, UsageError, WorkflowSession
from agno_migrate.backends import sql as backend_sql
from agno_migrate.errors import DatabaseFailure

STORE_BACKENDS = (*SQL_BACKENDS, "mongodb")

HERE = Path(__file__).resolve().parent
SESSION_CLASSES = {"agent": AgentSession, "team": TeamSession, "workflow": WorkflowSession}
T0 = 1_700_000_000  # a fixed epoch for explicit timestamps


# --- helpers --------------------------------------------------------------------------------------


@pytest.fixture(params=STORE_BACKENDS)
def database(request, new_database):
    """An empty database on each backend of the store in turn (conftest's ``database``: SQL only)."""
    return new_database(request.param)


def store_of(db, **options):
    return agno_migrate.connect(db.url, **options)


def table(db, name: str) -> str:
    return f"ai.{name}" if db.backend == "postgresql" else name


def sql(db, text: str, **params) -> list[tuple]:
    """Run one statement directly on ``db`` (not through the store) and return its rows."""
    engine = db.engine()
    try:
        with engine.begin() as conn:
            result = conn.execute(sa.text(text), params)
            return [tuple(row) for row in result] if result.returns_rows else []
    finally:
        engine.dispose()


def stored_runs(db, session_id: str) -> list[tuple[str, int]]:
    """(run_id, run_index) of the session's rows in the runs table, in run_index order."""
    if db.backend == "mongodb":
        with db.mongo() as mdb:
            found = mdb.agno_runs.find({"session_id": session_id}, {"run_id": 1, "run_index": 1})
            return [(d["run_id"], d["run_index"]) for d in found.sort([("run_index", 1), ("run_id", 1)])]
    return sql(
        db,
        f"SELECT run_id, run_index FROM {table(db, 'agno_runs')} WHERE session_id = :sid ORDER BY run_index, run_id",
        sid=session_id,
    )


def runs_count(db, session_id: str | None = None) -> int:
    if db.backend == "mongodb":
        with db.mongo() as mdb:
            return mdb.agno_runs.count_documents({} if session_id is None else {"session_id": session_id})
    where = "" if session_id is None else " WHERE session_id = :sid"
    return sql(db, f"SELECT COUNT(*) FROM {table(db, 'agno_runs')}{where}", sid=session_id)[0][0]


def sessions_count(db, session_id: str) -> int:
    if db.backend == "mongodb":
        with db.mongo() as mdb:
            return mdb.agno_sessions.count_documents({"session_id": session_id})
    return sql(db, f"SELECT COUNT(*) FROM {table(db, 'agno_sessions')} WHERE session_id = :sid", sid=session_id)[0][0]


def run_values(db, session_id: str, column: str) -> dict:
    """run_id -> ``column`` of the session's stored runs."""
    if db.backend == "mongodb":
        with db.mongo() as mdb:
            return {d["run_id"]: d.get(column) for d in mdb.agno_runs.find({"session_id": session_id})}
    return dict(
        sql(db, f"SELECT run_id, {column} FROM {table(db, 'agno_runs')} WHERE session_id = :sid", sid=session_id)
    )


def set_runs_updated_at(db, session_id: str, value: int) -> None:
    if db.backend == "mongodb":
        with db.mongo() as mdb:
            mdb.agno_runs.update_many({"session_id": session_id}, {"$set": {"updated_at": value}})
        return
    sql(db, f"UPDATE {table(db, 'agno_runs')} SET updated_at = :v WHERE session_id = :sid", v=value, sid=session_id)


def canon(value) -> str:
    """A JSON value as canonical text: tells 1 from 1.0 and True from 1, ignores key order."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def msg(role: str, content, **extra) -> dict:
    return {"role": role, "content": content, **extra}


def agent_run(run_id: str, content="answer", status="COMPLETED", messages=None, created_at=T0, **extra) -> dict:
    run = {
        "run_id": run_id,
        "agent_id": "agent-1",
        "content": content,
        "content_type": "str",
        "status": status,
        "created_at": created_at,
        "messages": messages if messages is not None else [msg("user", f"q {run_id}"), msg("assistant", content)],
    }
    run.update(extra)
    return run


def team_run(run_id: str, content="team answer", **extra) -> dict:
    return {"run_id": run_id, "team_id": "team-1", "content": content, "content_type": "str", "status": "COMPLETED",
            "created_at": T0, "messages": [msg("user", "team q"), msg("assistant", content)], **extra}  # fmt: skip


def workflow_run(run_id: str, content="workflow out", **extra) -> dict:
    return {"run_id": run_id, "workflow_id": "workflow-1", "workflow_name": "Flow", "content": content,
            "content_type": "str", "status": "COMPLETED", "created_at": T0, **extra}  # fmt: skip


def full_session(kind: str, session_id: str):
    """A session with all 15 fields set to distinct, non-empty values."""
    runs = {
        "agent": [agent_run(f"{session_id}-r1"), agent_run(f"{session_id}-r2", content="second", status="ERROR")],
        "team": [team_run(f"{session_id}-r1"), agent_run(f"{session_id}-m1", parent_run_id=f"{session_id}-r1")],
        "workflow": [workflow_run(f"{session_id}-r1"), workflow_run(f"{session_id}-r2", content={"k": [1, 2]})],
    }[kind]
    return SESSION_CLASSES[kind](
        session_id=session_id,
        agent_id="agent-1",
        team_id="team-1",
        workflow_id="workflow-1",
        user_id="user-1",
        session_data={"session_name": f"{kind} chat", "session_state": {"count": 3, "items": ["a", "b"]}},
        agent_data={"name": "Helper", "model": {"id": "gpt-x", "provider": "OpenAI"}},
        team_data={"name": "Crew", "members": [{"id": "m1"}, {"id": "m2"}]},
        workflow_data={"name": "Flow", "steps": [{"name": "s1"}]},
        metadata={"tier": "gold", "tags": ["x", "y"], "score": 0.5},
        runs=runs,
        summary={"summary": "they talked", "topics": ["t1", "t2"], "updated_at": "2025-01-02T03:04:05"},
        created_at=T0,
        updated_at=T0 + 500,
    )


# --- 1. every method ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["agent", "team", "workflow"])
def test_round_trip_of_all_fifteen_fields(database, kind):
    store = store_of(database)
    original = full_session(kind, f"{kind}-full")
    expected = copy.deepcopy(original.to_dict())
    assert len(expected) == 15 and all(v not in (None, [], {}) for v in expected.values())
    store.upsert_session(original, preserve_updated_at=True)

    got = store.get_session(f"{kind}-full")
    assert type(got) is SESSION_CLASSES[kind]
    assert got.to_dict() == expected
    assert canon(got.to_dict()) == canon(expected)
    assert all(isinstance(r, Run) for r in got.runs)
    assert [r.run_id for r in got.runs] == [r["run_id"] for r in expected["runs"]]
    # A second store object (nothing cached) reads the very same.
    assert store_of(database).get_session(f"{kind}-full").to_dict() == expected

    assert store.get_session(f"{kind}-full", session_type=kind, user_id="user-1").to_dict() == expected
    other = next(k for k in SESSION_CLASSES if k != kind)
    assert store.get_session(f"{kind}-full", session_type=other) is None
    assert store.get_session(f"{kind}-full", user_id="user-2") is None
    assert store.get_session("no-such-session") is None


def test_round_trip_of_a_bare_session(database):
    store = store_of(database)
    before = int(time.time())
    store.upsert_session(WorkflowSession(session_id="bare"))
    got = store.get_session("bare")
    assert type(got) is WorkflowSession
    values = got.to_dict()
    for name in ("agent_id", "team_id", "workflow_id", "user_id", "session_data", "agent_data", "team_data",
                 "workflow_data", "metadata", "summary"):  # fmt: skip
        assert values[name] is None, name
    assert got.runs == []
    assert before <= got.created_at == got.updated_at <= int(time.time())


def test_upsert_session_twice_updates_keeps_created_at_and_bumps_updated_at(database):
    store = store_of(database)
    first = AgentSession(session_id="s", agent_id="a1", user_id="u", session_data={"session_state": {"v": 1}},
                         created_at=T0, updated_at=T0, runs=[agent_run("r1"), agent_run("r2")])  # fmt: skip
    store.upsert_session(first, preserve_updated_at=True)
    got = store.get_session("s")
    assert (got.created_at, got.updated_at) == (T0, T0)

    before = int(time.time())
    second = AgentSession(
        session_id="s",
        agent_id="a2",
        user_id="u",
        session_data={"session_state": {"v": 2}},
        metadata={"m": 1},
        created_at=T0 + 99,  # fmt: skip
        runs=[agent_run("r1", content="edited"), agent_run("r2"), agent_run("r3")],
    )
    store.upsert_session(second)
    got = store.get_session("s")
    assert got.created_at == T0
    assert before <= got.updated_at <= int(time.time())
    assert got.agent_id == "a2" and got.session_state == {"v": 2} and got.metadata == {"m": 1}
    assert [r.run_id for r in got.runs] == ["r1", "r2", "r3"]
    assert got.runs[0]["content"] == "edited"
    assert [r for r, _ in stored_runs(database, "s")] == ["r1", "r2", "r3"]

    third = AgentSession(session_id="s", agent_id="a3", user_id="u", created_at=T0 + 5, updated_at=T0 + 1234)
    store.upsert_session(third, preserve_updated_at=True)
    got = store.get_session("s")
    assert (got.created_at, got.updated_at, got.agent_id) == (T0, T0 + 1234, "a3")
    # Runs absent from the session object are kept.
    assert [r.run_id for r in got.runs] == ["r1", "r2", "r3"]
    assert store.get_sessions()[1] == 1


def test_upsert_sessions_writes_all_in_one_call(database):
    store = store_of(database)
    sessions = [full_session(kind, f"bulk-{kind}") for kind in SESSION_CLASSES]
    expected = {s.session_id: copy.deepcopy(s.to_dict()) for s in sessions}
    returned = store.upsert_sessions(sessions, preserve_updated_at=True)
    assert [s.session_id for s in returned] == list(expected)
    listed, total = store.get_sessions(sort_by="session_id", sort_order="asc")
    assert total == 3
    assert {s.session_id: s.to_dict() for s in listed} == expected
    assert sum(runs_count(database, sid) for sid in expected) == 6


def test_runs_come_back_in_order(database):
    store = store_of(database)
    # Ids out of alphabetical order and created_at decreasing: only the position can order them.
    ids = [f"run-{c}" for c in "qwertyuiop"]
    runs = [agent_run(run_id, created_at=T0 + 1000 - 100 * i) for i, run_id in enumerate(ids)]
    store.upsert_session(AgentSession(session_id="ordered", agent_id="agent-1", runs=runs))
    assert [r.run_id for r in store.get_session("ordered").runs] == ids
    listed, _ = store.get_sessions()
    assert [r.run_id for r in listed[0].runs] == ids
    assert stored_runs(database, "ordered") == [(run_id, i) for i, run_id in enumerate(ids)]


def test_upsert_run_appends_with_next_index_and_updates_in_place(database):
    store = store_of(database)
    originals = [agent_run(f"r{i}", content=f"c{i}") for i in range(3)]
    store.upsert_session(AgentSession(session_id="s", agent_id="agent-1", user_id="u", created_at=T0,
                                      updated_at=T0, runs=copy.deepcopy(originals)), preserve_updated_at=True)  # fmt: skip
    set_runs_updated_at(database, "s", 7)  # to see rows being rewritten

    before = int(time.time())
    appended = store.upsert_run("s", agent_run("r3", content="c3"))
    assert isinstance(appended, Run) and appended.run_id == "r3"
    got = store.get_session("s")
    assert [r.run_id for r in got.runs] == ["r0", "r1", "r2", "r3"]
    assert stored_runs(database, "s") == [("r0", 0), ("r1", 1), ("r2", 2), ("r3", 3)]
    assert got.updated_at >= before  # the session is touched
    assert got.created_at == T0

    edited = {**originals[1], "content": "edited", "status": "ERROR"}
    store.upsert_run("s", edited)
    got = store.get_session("s")
    assert [r.run_id for r in got.runs] == ["r0", "r1", "r2", "r3"]
    assert dict(got.runs[1]) == edited
    assert [dict(r) for r in got.runs[:1] + got.runs[2:3]] == [originals[0], originals[2]]
    assert stored_runs(database, "s") == [("r0", 0), ("r1", 1), ("r2", 2), ("r3", 3)]
    rows = run_values(database, "s", "updated_at")
    assert rows["r0"] == 7 and rows["r2"] == 7, "upsert_run rewrote other runs"
    assert rows["r1"] != 7
    assert run_values(database, "s", "status")["r1"] == "ERROR"

    # A run without an id gets one, appended last.
    anonymous = store.upsert_run("s", {"agent_id": "agent-1", "content": "no id", "status": "COMPLETED"})
    assert anonymous.run_id
    got = store.get_session("s")
    assert [r.run_id for r in got.runs] == ["r0", "r1", "r2", "r3", anonymous.run_id]
    assert stored_runs(database, "s")[-1] == (anonymous.run_id, 4)
    assert runs_count(database, "s") == 5


@pytest.mark.parametrize("backend", SQL_BACKENDS)
def test_upsert_run_sets_updated_at_and_rewrites_the_session_row_only_when_the_second_changed(
        new_database, backend, monkeypatch):  # fmt: skip
    """upsert_run leaves the session's ``updated_at`` at the call's second. A session row that
    already holds that second is left as it is: on PostgreSQL no new row version (a session's runs
    often come within one second; each version would be a dead row for listings to skip)."""
    import agno_migrate.store.sql as store_sql

    db = new_database(backend)
    store = store_of(db)
    store.upsert_session(AgentSession(session_id="s", agent_id="agent-1", created_at=T0, updated_at=T0 + 9),
                         preserve_updated_at=True)  # fmt: skip
    clock = {"now": T0 + 5.5}  # earlier than the stored updated_at: it is still set, to the call's second
    monkeypatch.setattr(store_sql.time, "time", lambda: clock["now"])

    def version():
        if backend != "postgresql":
            return None
        return sql(db, "SELECT xmin::text, ctid::text FROM ai.agno_sessions WHERE session_id = 's'")[0]

    store.upsert_run("s", agent_run("r1"))
    assert store.get_session("s").updated_at == T0 + 5
    first = version()
    store.upsert_run("s", agent_run("r2"))
    store.upsert_run("s", {**agent_run("r1"), "content": "edited"})
    assert store.get_session("s").updated_at == T0 + 5
    assert version() == first
    clock["now"] = T0 + 6.2
    store.upsert_run("s", agent_run("r3"))
    assert store.get_session("s").updated_at == T0 + 6
    assert backend != "postgresql" or version() != first
    assert [r.run_id for r in store.get_session("s").runs] == ["r1", "r2", "r3"]


def test_upsert_session_with_only_a_new_run_appends_it(database):
    store = store_of(database)
    store.upsert_session(AgentSession(session_id="s", agent_id="agent-1",
                                      runs=[agent_run("r1", created_at=T0), agent_run("r2", created_at=T0 + 1)]))  # fmt: skip
    store.upsert_session(AgentSession(session_id="s", agent_id="agent-1", runs=[agent_run("r3", created_at=T0 + 2)]))
    assert [r.run_id for r in store.get_session("s").runs] == ["r1", "r2", "r3"]
    assert sorted(index for _, index in stored_runs(database, "s")) == [0, 1, 2]


def test_runs_without_an_id_are_new_runs(database):
    store = store_of(database)
    anonymous = [
        {"agent_id": "agent-1", "content": c, "status": "COMPLETED"} for c in ("first", "second", "third", "fourth")
    ]
    store.upsert_session(AgentSession(session_id="s", agent_id="agent-1", runs=[anonymous[0]]))
    second, third = store.upsert_run("s", anonymous[1]), store.upsert_run("s", anonymous[2])
    store.upsert_session(AgentSession(session_id="s", agent_id="agent-1", runs=[anonymous[3]]))
    got = store.get_session("s")
    assert [r["content"] for r in got.runs] == ["first", "second", "third", "fourth"]
    assert len({r.run_id for r in got.runs}) == 4 and [second.run_id, third.run_id] == [r.run_id for r in got.runs[1:3]]
    assert sorted(index for _, index in stored_runs(database, "s")) == [0, 1, 2, 3]


def test_upsert_run_leaves_another_sessions_run_alone(database):
    store = store_of(database)
    store.upsert_session(
        AgentSession(
            session_id="a", agent_id="agent-1", runs=[agent_run("shared-id", content="a's run"), agent_run("a2")]
        )
    )
    store.upsert_session(AgentSession(session_id="b", agent_id="agent-1", runs=[agent_run("b1")]))
    before = [dict(r) for r in store.get_session("a").runs]
    try:
        store.upsert_run("b", agent_run("shared-id", content="b's run"))
    except Exception:  # noqa: BLE001 - refusing is fine; touching session a is not
        pass
    assert [dict(r) for r in store.get_session("a").runs] == before
    assert stored_runs(database, "a") == [("shared-id", 0), ("a2", 1)]


def test_upsert_run_on_a_missing_session_raises_key_error(database):
    store = store_of(database)
    with pytest.raises(KeyError):  # first call on an empty database: the schema is created, then KeyError
        store.upsert_run("missing", agent_run("r-x"))
    store.upsert_session(AgentSession(session_id="present", runs=[agent_run("r-p")]))
    with pytest.raises(KeyError):
        store.upsert_run("missing", agent_run("r-y"))
    assert runs_count(database) == 1
    assert store.get_session("missing") is None
    assert [r.run_id for r in store.get_session("present").runs] == ["r-p"]


def test_rename_session(database):
    store = store_of(database)
    store.upsert_session(AgentSession(session_id="s", session_data={"session_name": "old", "session_state": {"k": [1, 2]}},
                                      created_at=T0, updated_at=T0, runs=[agent_run("r1")]), preserve_updated_at=True)  # fmt: skip
    renamed = store.rename_session("s", "Nouveau nom ✨")
    assert renamed.session_name == "Nouveau nom ✨"
    got = store.get_session("s")
    assert got.session_data == {"session_name": "Nouveau nom ✨", "session_state": {"k": [1, 2]}}
    assert got.updated_at > T0 and got.created_at == T0
    assert [r.run_id for r in got.runs] == ["r1"]
    assert [s.session_id for s in store.get_sessions(session_name="nouveau")[0]] == ["s"]
    assert store.get_sessions(session_name="old")[1] == 0

    store.upsert_session(TeamSession(session_id="t"))
    assert store.rename_session("t", "named").session_data == {"session_name": "named"}
    assert store.get_session("t").session_name == "named"
    assert store.rename_session("missing", "x") is None
    assert store.get_session("missing") is None


def test_delete_session_removes_it_and_its_runs(database):
    store = store_of(database)
    store.upsert_session(AgentSession(session_id="a", runs=[agent_run(f"a{i}") for i in range(3)]))
    store.upsert_session(AgentSession(session_id="b", runs=[agent_run(f"b{i}") for i in range(2)]))
    assert store.delete_session("a") is True
    assert store.get_session("a") is None
    assert runs_count(database, "a") == 0
    assert sessions_count(database, "a") == 0
    assert [r.run_id for r in store.get_session("b").runs] == ["b0", "b1"]
    assert runs_count(database) == 2
    assert store.delete_session("a") is False
    assert store.delete_session("never") is False


def test_delete_sessions_removes_many_and_their_runs(database):
    store = store_of(database)
    for sid in "abcd":
        store.upsert_session(AgentSession(session_id=sid, runs=[agent_run(f"{sid}{i}") for i in range(2)]))
    assert store.delete_sessions(["a", "c", "missing"]) == 2
    assert runs_count(database, "a") == runs_count(database, "c") == 0
    assert runs_count(database) == 4
    assert sorted(store.get_all_session_ids()) == ["b", "d"]
    assert store.get_sessions()[1] == 2
    assert store.delete_sessions([]) == 0
    assert store.delete_sessions(iter(["b"])) == 1
    assert store.get_all_session_ids() == ["d"]


def test_delete_sessions_beyond_one_chunk(database):
    store = store_of(database)
    sessions = [
        AgentSession(session_id=f"s{i:04d}", created_at=T0 + i, runs=[agent_run(f"r{i:04d}")]) for i in range(1200)
    ]
    store.upsert_sessions(sessions)
    doomed = [f"s{i:04d}" for i in range(1100)] + ["missing"]
    assert store.delete_sessions(doomed) == 1100
    assert runs_count(database) == 100
    assert sorted(store.get_all_session_ids()) == [f"s{i:04d}" for i in range(1100, 1200)]


def history_runs() -> list[dict]:
    return [
        agent_run("r1", messages=[msg("system", "sys 1"), msg("user", "q1"), msg("assistant", "a1")]),
        agent_run(
            "r2",
            messages=[
                msg("system", "sys 2"),
                msg("user", "q1", from_history=True),
                msg("assistant", "a1", from_history=True),
                msg("user", "q2"),
                msg("assistant", "a2"),
            ],
        ),  # fmt: skip
        agent_run("r3", status="PAUSED", messages=[msg("user", "paused q"), msg("assistant", "paused a")]),
        agent_run("r4", status="CANCELLED", messages=[msg("user", "cancelled q")]),
        agent_run("r5", status="ERROR", messages=[msg("user", "error q")]),
        agent_run("r6", status="REGENERATED", messages=[msg("user", "regenerated q")]),
        agent_run("m1", parent_run_id="r2", messages=[msg("user", "member q"), msg("assistant", "member a")]),
        agent_run("r7", messages=[msg("user", "q3"), msg("tool", "tool out"), msg("assistant", "a3")]),
        agent_run("r8", status="ERROR", messages=[msg("user", "late error")]),
    ]


def contents(messages: list[dict]) -> list[tuple[str, str]]:
    return [(m["role"], m["content"]) for m in messages]


def test_get_messages(database):
    store = store_of(database)
    store.upsert_session(AgentSession(session_id="chat", agent_id="agent-1", runs=history_runs()))
    everything = [("system", "sys 1"), ("user", "q1"), ("assistant", "a1"), ("user", "q2"), ("assistant", "a2"),
                  ("user", "q3"), ("tool", "tool out"), ("assistant", "a3")]  # fmt: skip
    assert contents(store.get_messages("chat")) == everything
    assert contents(store.get_messages("chat", last_n_runs=100)) == everything
    # The last n *kept* runs: skipped statuses and member runs do not count.
    assert contents(store.get_messages("chat", last_n_runs=1)) == [
        ("user", "q3"),
        ("tool", "tool out"),
        ("assistant", "a3"),
    ]
    assert contents(store.get_messages("chat", last_n_runs=2)) == [("system", "sys 2"), ("user", "q2"),
                                                                  ("assistant", "a2"), ("user", "q3"),
                                                                  ("tool", "tool out"), ("assistant", "a3")]  # fmt: skip
    assert store.get_messages("chat", last_n_runs=0) == []
    assert store.get_messages("missing") == []
    # upsert_run flips a run to a skipped status: its messages leave the history.
    store.upsert_run("chat", {**history_runs()[7], "status": "CANCELLED"})
    assert contents(store.get_messages("chat", last_n_runs=1)) == [
        ("system", "sys 2"),
        ("user", "q2"),
        ("assistant", "a2"),
    ]


def test_schema_version_and_upgrade_schema_on_a_new_database(database):
    store = store_of(database)
    assert store.schema_version is None
    assert store.get_sessions() == ([], 0)  # first use creates the schema at head
    assert store.schema_version == "3.0.1"
    status = agno_migrate.check(database.url)
    assert status.at_head and status.managed
    outcome = store.upgrade_schema()
    assert outcome.after == "3.0.1" and outcome.applied == []
    store.upsert_session(AgentSession(session_id="s", runs=[agent_run("r1")]))
    assert [r.run_id for r in store_of(database).get_session("s").runs] == ["r1"]


OLDER_POINT = {**{backend: POINTS[backend][0] for backend in SQL_BACKENDS}, "mongodb": "2.3.0"}
DETECTED_AS = {"mongodb": "2.0.0"}  # Agno 2.x never stamps MongoDB; 2.0.0-2.5.0 look the same there


@pytest.mark.parametrize("backend", STORE_BACKENDS)
def test_store_on_an_older_agno_database(new_database, backend):
    point = OLDER_POINT[backend]
    expected = {s["session_id"]: [r["run_id"] for r in s["runs"]] for s in expected_sessions(point, backend)}
    db = new_database(backend)
    db.load(point)
    store = store_of(db)
    assert store.schema_version == DETECTED_AS.get(backend, point)
    with pytest.raises(SchemaBehind):
        store.get_sessions()
    with pytest.raises(SchemaBehind):
        store.upsert_session(AgentSession(session_id="new"))
    assert store.upgrade_schema().after == "3.0.1"
    assert store.schema_version == "3.0.1"
    sessions, total = store.get_sessions()
    assert total == len(expected) and {s.session_id: [r.run_id for r in s.runs] for s in sessions} == expected

    auto_db = new_database(backend)
    auto_db.load(point)
    auto = store_of(auto_db, auto_upgrade_schema=True)
    assert auto.get_sessions()[1] == len(expected)
    assert auto.schema_version == "3.0.1"


def test_store_waits_for_agno_1x_tables_still_to_import(new_database, tmp_path):
    """Head is recorded, but an Agno 1.x table is not imported yet (another process may be importing
    it under the lock): a store must not read the partial database. Without auto_upgrade_schema it
    refuses naming the table; with it, the first use imports (waiting for the lock) and then reads."""
    import sqlite3

    db = new_database("sqlite")
    assert store_of(db).get_sessions() == ([], 0)  # head, recorded
    source = tmp_path / "v1.db"
    source.write_bytes(fixture_bytes("v1", "sqlite.db"))
    conn = sqlite3.connect(db.path)
    conn.execute("ATTACH DATABASE ? AS v1", (str(source),))
    conn.execute(conn.execute("SELECT sql FROM v1.sqlite_master WHERE name = 'agent_sessions'").fetchone()[0])
    conn.execute("INSERT INTO agent_sessions SELECT * FROM v1.agent_sessions")
    rows = conn.execute("SELECT count(*) FROM agent_sessions").fetchone()[0]
    conn.commit()
    conn.close()
    assert rows > 0
    with pytest.raises(SchemaBehind, match="Agno 1.x tables not imported .agent_sessions"):
        store_of(db).get_sessions()
    assert store_of(db, auto_upgrade_schema=True).get_sessions(session_type="agent")[1] == rows


# --- 2. filters, pagination, sort -----------------------------------------------------------------


def seed_listing(store) -> None:
    """Six sessions with distinct created_at / updated_at / ids (orders differ on each)."""
    store.upsert_sessions(
        [
            AgentSession(
                session_id="id-c",
                agent_id="ag-1",
                user_id="alice",
                session_data={"session_name": "Weekly Report"},
                created_at=1000,
                updated_at=5000,
                runs=[agent_run("c-r1")],
            ),  # fmt: skip
            AgentSession(
                session_id="id-e",
                agent_id="ag-2",
                user_id="bob",
                session_data={"session_name": "100% done_ok"},
                created_at=2000,
                updated_at=4000,
            ),  # fmt: skip
            TeamSession(
                session_id="id-a",
                team_id="ag-1",
                user_id="alice",
                session_data={"session_name": "weekly SYNC"},
                created_at=3000,
                updated_at=6000,
                runs=[team_run("a-r1")],
            ),  # fmt: skip
            TeamSession(
                session_id="id-f",
                team_id="tm-1",
                agent_id="ag-1",
                user_id="bob",
                session_data={"session_name": "1000 done-ok"},
                created_at=4000,
                updated_at=1000,
            ),  # fmt: skip
            WorkflowSession(
                session_id="id-b",
                workflow_id="wf-1",
                user_id="carol",
                session_data={"session_name": "Plan", "session_state": {"session_name": "not me"}},
                created_at=5000,
                updated_at=3000,
            ),  # fmt: skip
            WorkflowSession(session_id="id-d", workflow_id="ag-1", created_at=6000, updated_at=2000),
        ],
        preserve_updated_at=True,
    )


def ids_of(result) -> list[str]:
    """The session ids of a get_sessions() result, in order."""
    return [s.session_id for s in result[0]]


def test_filter_by_session_type_and_user(database):
    store = store_of(database)
    seed_listing(store)
    assert ids_of(store.get_sessions()) == ["id-d", "id-b", "id-f", "id-a", "id-e", "id-c"]
    assert store.get_sessions()[1] == 6
    assert ids_of(store.get_sessions(session_type="agent")) == ["id-e", "id-c"]
    assert ids_of(store.get_sessions(session_type="team")) == ["id-f", "id-a"]
    assert ids_of(store.get_sessions(session_type="workflow")) == ["id-d", "id-b"]
    assert ids_of(store.get_sessions(user_id="alice")) == ["id-a", "id-c"]
    assert store.get_sessions(user_id="alice")[1] == 2
    assert ids_of(store.get_sessions(session_type="team", user_id="bob")) == ["id-f"]
    assert store.get_sessions(user_id="nobody") == ([], 0)
    # Runs come with listed sessions.
    listed = {s.session_id: s for s in store.get_sessions()[0]}
    assert [r.run_id for r in listed["id-c"].runs] == ["c-r1"] and [r.run_id for r in listed["id-a"].runs] == ["a-r1"]
    assert listed["id-e"].runs == []
    assert store.get_all_session_ids(user_id="bob") == ["id-f", "id-e"]
    assert store.get_all_session_ids() == ["id-d", "id-b", "id-f", "id-a", "id-e", "id-c"]


def test_filter_by_component_id(database):
    store = store_of(database)
    seed_listing(store)
    # Without session_type: the id in any of agent_id / team_id / workflow_id.
    assert ids_of(store.get_sessions(component_id="ag-1")) == ["id-d", "id-f", "id-a", "id-c"]
    assert store.get_sessions(component_id="ag-1")[1] == 4
    # With session_type: only that type's own id column (id-f is a team with agent_id ag-1).
    assert ids_of(store.get_sessions(session_type="agent", component_id="ag-1")) == ["id-c"]
    assert ids_of(store.get_sessions(session_type="team", component_id="ag-1")) == ["id-a"]
    assert ids_of(store.get_sessions(session_type="workflow", component_id="ag-1")) == ["id-d"]
    assert ids_of(store.get_sessions(session_type="team", component_id="tm-1")) == ["id-f"]
    assert store.get_sessions(session_type="agent", component_id="tm-1") == ([], 0)
    assert ids_of(store.get_sessions(component_id="ag-1", user_id="alice")) == ["id-a", "id-c"]
    assert store.get_all_session_ids(component_id="ag-1") == ["id-d", "id-f", "id-a", "id-c"]
    assert store.get_all_session_ids(component_id="ag-1", user_id="bob") == ["id-f"]


def test_filter_by_session_name(database):
    store = store_of(database)
    seed_listing(store)
    assert ids_of(store.get_sessions(session_name="weekly")) == ["id-a", "id-c"]
    assert ids_of(store.get_sessions(session_name="WEEKLY")) == ["id-a", "id-c"]
    assert ids_of(store.get_sessions(session_name="eekly rep")) == ["id-c"]
    assert store.get_sessions(session_name="sync")[1] == 1
    # LIKE wildcards in the name are literal characters.
    assert ids_of(store.get_sessions(session_name="%")) == ["id-e"]
    assert ids_of(store.get_sessions(session_name="done_ok")) == ["id-e"]
    assert ids_of(store.get_sessions(session_name="0% d")) == ["id-e"]
    # Only the name: not other keys of session_data, nor sessions without a name.
    assert store.get_sessions(session_name="not me") == ([], 0)
    assert ids_of(store.get_sessions(session_name="plan")) == ["id-b"]
    assert ids_of(store.get_sessions(session_name="weekly", session_type="agent")) == ["id-c"]
    assert store.get_sessions(session_name="nothing like it") == ([], 0)


UNICODE_NAMES = {"u-1": "Café Über Straße", "u-2": "ПРИВЕТ мир", "u-3": "Ωmega ΣΊΣΥΦΟΣ", "u-4": "plain ascii"}


@pytest.mark.parametrize(
    "backend",
    [
        "sqlite",
        "postgresql",
        "mysql",
        "mongodb",
    ],
)
def test_session_name_filter_is_unicode_case_insensitive(new_database, backend):
    store = store_of(new_database(backend))
    store.upsert_sessions([AgentSession(session_id=sid, session_data={"session_name": name}, created_at=T0 + i)
                           for i, (sid, name) in enumerate(UNICODE_NAMES.items())])  # fmt: skip
    assert ids_of(store.get_sessions(session_name="Über")) == ["u-1"]  # exact case first
    assert ids_of(store.get_sessions(session_name="Привет")) == ["u-2"]
    assert ids_of(store.get_sessions(session_name="über")) == ["u-1"]
    assert ids_of(store.get_sessions(session_name="привет МИР")) == ["u-2"]
    assert ids_of(store.get_sessions(session_name="σίσυ")) == ["u-3"]


def test_filter_by_timestamps(database):
    store = store_of(database)
    seed_listing(store)
    assert ids_of(store.get_sessions(start_timestamp=2000, end_timestamp=4000)) == ["id-f", "id-a", "id-e"]
    assert ids_of(store.get_sessions(start_timestamp=5000)) == ["id-d", "id-b"]
    assert ids_of(store.get_sessions(end_timestamp=1999)) == ["id-c"]
    assert store.get_sessions(start_timestamp=2500, end_timestamp=2999) == ([], 0)
    assert store.get_sessions(start_timestamp=1000, end_timestamp=6000)[1] == 6
    assert ids_of(store.get_sessions(start_timestamp=2000, end_timestamp=5000, session_type="workflow")) == ["id-b"]


def test_pagination_with_total_count(database):
    store = store_of(database)
    seed_listing(store)
    asc = {"sort_by": "created_at", "sort_order": "asc"}
    assert store.get_sessions(limit=2, **asc)[1] == 6
    assert ids_of(store.get_sessions(limit=2, **asc)) == ["id-c", "id-e"]
    assert ids_of(store.get_sessions(limit=2, page=1, **asc)) == ["id-c", "id-e"]
    assert ids_of(store.get_sessions(limit=2, page=2, **asc)) == ["id-a", "id-f"]
    assert ids_of(store.get_sessions(limit=4, page=2, **asc)) == ["id-b", "id-d"]
    assert store.get_sessions(limit=2, page=4, **asc) == ([], 6)
    pages = [ids_of(store.get_sessions(limit=1, page=p)) for p in range(1, 7)]
    assert sum(pages, []) == ids_of(store.get_sessions())
    filtered = store.get_sessions(user_id="alice", limit=1, page=2, **asc)
    assert ids_of(filtered) == ["id-a"] and filtered[1] == 2
    assert store.get_sessions(limit=0) == ([], 6)
    with pytest.raises(UsageError):
        store.get_sessions(page=2)  # a page needs a limit
    with pytest.raises(UsageError):
        store.get_sessions(limit=2, page=0)


def test_a_page_on_sqlite_sorts_the_sessions_once(new_database):
    """The page's runs are read by the ids its rows came with: choosing them again would sort every
    matching session a second time (the ids statement is the one with the ORDER BY)."""
    db = new_database("sqlite")
    store = store_of(db)
    traced = []
    sa.event.listen(
        backend_sql.engine(store.target), "connect", lambda conn, _record: conn.set_trace_callback(traced.append)
    )
    store.upsert_sessions([AgentSession(session_id=f"s{i}", agent_id="a", created_at=T0 + i % 3,
                                        runs=[agent_run(f"s{i}-r{k}") for k in range(2)]) for i in range(7)])  # fmt: skip
    traced.clear()
    sessions, total = store.get_sessions(limit=3, page=2, sort_by="created_at", sort_order="asc")
    assert total == 7 and [s.session_id for s in sessions] == ["s1", "s4", "s2"]
    assert [[r.run_id for r in s.runs] for s in sessions] == [
        [f"{s.session_id}-r0", f"{s.session_id}-r1"] for s in sessions
    ]
    sorts = [text for text in traced if "ORDER BY agno_sessions.created_at" in text]
    assert len(sorts) == 1, sorts


@pytest.mark.parametrize(
    "sort_by,expected_asc",
    [
        ("created_at", ["id-c", "id-e", "id-a", "id-f", "id-b", "id-d"]),
        ("updated_at", ["id-f", "id-d", "id-b", "id-e", "id-c", "id-a"]),
        ("session_id", ["id-a", "id-b", "id-c", "id-d", "id-e", "id-f"]),
    ],
)
def test_sort(database, sort_by, expected_asc):
    store = store_of(database)
    seed_listing(store)
    assert ids_of(store.get_sessions(sort_by=sort_by, sort_order="asc")) == expected_asc
    assert ids_of(store.get_sessions(sort_by=sort_by, sort_order="desc")) == expected_asc[::-1]
    assert ids_of(store.get_sessions(sort_by=sort_by, sort_order="desc", limit=2, page=2)) == expected_asc[::-1][2:4]


def test_invalid_sort_raises(database):
    store = store_of(database)
    seed_listing(store)
    for bad in ("nope", "session_data", "created_at; DROP TABLE agno_sessions", ""):
        with pytest.raises(UsageError):
            store.get_sessions(sort_by=bad)
    with pytest.raises(UsageError):
        store.get_sessions(sort_order="sideways")
    assert store.get_sessions()[1] == 6


# --- 3. unicode, big payloads, JSON fidelity ------------------------------------------------------

EMOJI_ID = "sess-😀-ünïcødé-中文-שלום"
EMOJI_USER = "user-🧑‍🚀-Zoë"


def test_unicode_and_emoji_in_ids_names_state_and_messages(database):
    store = store_of(database)
    state = {"ключ 🔑": "значение 💾", "family": "👩‍👩‍👧‍👦", "combining": "e\u0301", "rtl": "مرحبا", "cjk": "漢字かな"}
    session = AgentSession(
        session_id=EMOJI_ID, agent_id="agent-🤖", user_id=EMOJI_USER,
        session_data={"session_name": "Réunion 🎉 日本語", "session_state": state},
        metadata={"emoji-key-🚀": ["🌍", "🌎", "🌏"]},
        runs=[agent_run("run-😀-1", content="réponse 🚀 𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
                        messages=[msg("user", "¿Qué tal? 🤔"), msg("assistant", "très bien 👍 𝔘𝔫𝔦𝔠𝔬𝔡𝔢")])],
    )  # fmt: skip
    store.upsert_session(session)
    expected = copy.deepcopy(session.to_dict())
    got = store.get_session(EMOJI_ID)
    assert got.to_dict() == expected
    assert got.session_state == state

    assert ids_of(store.get_sessions(user_id=EMOJI_USER)) == [EMOJI_ID]
    assert ids_of(store.get_sessions(component_id="agent-🤖")) == [EMOJI_ID]
    assert ids_of(store.get_sessions(session_name="🎉 日本")) == [EMOJI_ID]
    assert store.get_all_session_ids(user_id=EMOJI_USER) == [EMOJI_ID]
    assert store.get_session(EMOJI_ID, user_id=EMOJI_USER) is not None

    store.upsert_run(EMOJI_ID, agent_run("run-🎯-2", content="второй ✅", messages=[msg("user", "𝕏 → ✓")]))
    assert contents(store.get_messages(EMOJI_ID)) == [("user", "¿Qué tal? 🤔"), ("assistant", "très bien 👍 𝔘𝔫𝔦𝔠𝔬𝔡𝔢"),
                                                       ("user", "𝕏 → ✓")]  # fmt: skip
    assert store.rename_session(EMOJI_ID, "新しい名前 🌸").session_name == "新しい名前 🌸"
    assert ids_of(store.get_sessions(session_name="名前 🌸")) == [EMOJI_ID]
    assert [r for r, _ in stored_runs(database, EMOJI_ID)] == ["run-😀-1", "run-🎯-2"]
    assert store.delete_session(EMOJI_ID) is True
    assert runs_count(database) == 0


EMOJI_TWINS = ["chat-😀", "chat-😎", "chat-🎉", "chat-𝔘"]


@pytest.mark.parametrize(
    "backend",
    [
        "sqlite",
        "postgresql",
        "mysql",
        "mongodb",
    ],
)
def test_ids_differing_only_by_emoji_stay_distinct(new_database, backend):
    db = new_database(backend)
    store = store_of(db)
    for i, sid in enumerate(EMOJI_TWINS):
        store.upsert_session(AgentSession(session_id=sid, user_id=f"user-{sid}", created_at=T0 + i,
                                          session_data={"session_name": sid}, runs=[agent_run(f"run-{sid}")]))  # fmt: skip
    assert sorted(store.get_all_session_ids()) == sorted(EMOJI_TWINS)
    for sid in EMOJI_TWINS:
        got = store.get_session(sid)
        assert got is not None and got.session_id == sid and got.user_id == f"user-{sid}"
        assert [r.run_id for r in got.runs] == [f"run-{sid}"]
        assert ids_of(store.get_sessions(user_id=f"user-{sid}")) == [sid]


TEN_MB = 10 * 1024 * 1024


@pytest.mark.parametrize(
    "backend",
    [
        "sqlite",
        "postgresql",
        "mysql",
        "mongodb",
    ],
)
def test_ids_and_user_ids_are_case_sensitive(new_database, backend):
    store = store_of(new_database(backend))
    store.upsert_session(AgentSession(session_id="Chat-1", user_id="alice", runs=[agent_run("alice-run")]))
    assert store.get_session("Chat-1", user_id="ALICE") is None
    assert store.get_sessions(user_id="ALICE") == ([], 0)
    assert store.get_session("chat-1") is None
    store.upsert_session(AgentSession(session_id="chat-1", user_id="bob", runs=[agent_run("bob-run")]))
    assert sorted(store.get_all_session_ids()) == ["Chat-1", "chat-1"]
    assert store.get_session("Chat-1").user_id == "alice"
    assert [r.run_id for r in store.get_session("Chat-1").runs] == ["alice-run"]
    assert [r.run_id for r in store.get_session("chat-1").runs] == ["bob-run"]


def test_sqlite_wal_stays_bounded_under_upsert_run(new_database):
    """Every store call leaves its statements finished before the commit: a SQLite statement left
    unread kept a read snapshot past the commit, so the WAL was never checkpointed back to its start
    and grew with every upsert_run (2.4 GB after 37,000 runs, and every read slowed down with it)."""
    db = new_database("sqlite")
    store = store_of(db)
    store.upsert_session(AgentSession(session_id="wal", agent_id="agent-1"))
    with contextlib.closing(sqlite3.connect(db.path)) as conn:
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    for i in range(300):  # ~10 pages per call: 3,000 frames if nothing is ever checkpointed
        store.upsert_run("wal", agent_run(f"wal-{i}", content="x" * 30_000))
    frames = Path(f"{db.path}-wal").stat().st_size // (page_size + 24)
    assert frames < 1_500, f"{frames} WAL frames after 300 upsert_run calls (autocheckpoint is 1,000)"
    assert len(store.get_session("wal").runs) == 300


def test_sqlite_json_text_is_json_dumps(new_database):
    """On SQLite the store writes each JSON column as the text ``json.dumps`` gives (what Agno's
    SQLAlchemy JSON columns write): escaped non-ASCII, ", " and ": " separators."""
    db = new_database("sqlite")
    store = store_of(db)
    data = {"session_state": {"uni": "São Paulo 🔑 你好", "n": [1, 2.5, None, True], "big": 2**62}, "x": 1e-7}
    run = agent_run("json-r1", content="héllo 😀")
    store.upsert_session(AgentSession(session_id="json", agent_id="a", session_data=data, metadata={"k": {}}))
    stored_run = store.upsert_run("json", run)
    with contextlib.closing(sqlite3.connect(db.path)) as conn:
        session_data, metadata = conn.execute("SELECT session_data, metadata FROM agno_sessions").fetchone()
        (run_data,) = conn.execute("SELECT run_data FROM agno_runs").fetchone()
    assert session_data == json.dumps(data)
    assert metadata == json.dumps({"k": {}})
    assert run_data == json.dumps(dict(stored_run))


def test_ten_megabyte_message_round_trips(database):
    store = store_of(database)
    line = "The quick brown fox jumps over the lazy dog, 0123456789 times.\n"
    big = "début 😀 ✓\n" + line * (TEN_MB // len(line) + 1) + "fin — 終わり 🏁"
    assert len(big.encode("utf-8")) >= TEN_MB
    run = agent_run("big-run", content="ok", messages=[msg("user", "summarise this"), msg("assistant", big)])
    store.upsert_session(AgentSession(session_id="big", agent_id="agent-1", runs=[run]))
    got = store.get_session("big")
    assert got.runs[0]["messages"][1]["content"] == big
    assert store.get_messages("big")[1]["content"] == big
    store.upsert_run("big", agent_run("small-run"))
    assert [r.run_id for r in store.get_session("big").runs] == ["big-run", "small-run"]


def test_writes_of_tens_of_megabytes_do_not_stall_on_postgresql(new_database):
    """Each PostgreSQL write is one pipeline. A parameter of 64 MB takes many socket writes, and the
    server answers while they go on: the store must keep reading as it sends, or both sides wait
    for good (psycopg's implicit BEGIN/commit() in its pipeline did, seen at ~60 MB)."""
    store = store_of(new_database("postgresql"))
    big = "x" * (64 * 1024 * 1024)
    outcome = {}

    def write():
        store.upsert_session(
            AgentSession(session_id="huge", agent_id="agent-1", runs=[agent_run("huge-1", content=big)])
        )
        store.upsert_run("huge", agent_run("huge-2", content=big))
        outcome["runs"] = [r["content"] == big for r in store.get_session("huge").runs]

    worker = threading.Thread(target=write, daemon=True)
    worker.start()
    worker.join(timeout=120)
    assert not worker.is_alive(), "a 64 MB write did not finish in 2 minutes (pipeline stalled)"
    assert outcome["runs"] == [True, True]


def test_a_statement_the_server_refuses_writes_nothing_and_the_next_call_works_on_postgresql(new_database):
    """A PostgreSQL write is one pipeline (BEGIN, statements, COMMIT): when the server refuses its
    last statement (a run a CHECK constraint of the test's rejects: values the store itself refuses,
    such as a NUL character, never reach the server), the first one's row goes too, the call raises
    one DatabaseFailure line, and the same pooled connection serves the next calls."""
    db = new_database("postgresql")
    store = store_of(db)
    store.upsert_session(AgentSession(session_id="kept", agent_id="agent-1", runs=[agent_run("kept-1")]))
    sql(db, "ALTER TABLE ai.agno_runs ADD CONSTRAINT refuse_me CHECK (run_data->>'content' <> 'refuse me')")
    backends = {pid for (pid,) in sql(db, "SELECT pid FROM pg_stat_activity WHERE datname = current_database()")}
    refused = AgentSession(session_id="refused", agent_id="agent-1", runs=[agent_run("nul-1", content="refuse me")])
    for _ in range(2):  # the second time, its statements are already prepared on that connection
        with pytest.raises(DatabaseFailure) as failure:
            store.upsert_session(refused)
        assert "\n" not in str(failure.value) and "refuse_me" in str(failure.value)
        with pytest.raises(DatabaseFailure):
            store.upsert_run("kept", agent_run("nul-2", content="refuse me"))
    assert store.get_session("refused") is None
    assert [r.run_id for r in store.get_session("kept").runs] == ["kept-1"]
    store.upsert_run("kept", agent_run("kept-2"))
    assert [r.run_id for r in store.get_session("kept").runs] == ["kept-1", "kept-2"]
    assert sql(db, "SELECT count(*) FROM ai.agno_runs")[0][0] == 2
    now = {pid for (pid,) in sql(db, "SELECT pid FROM pg_stat_activity WHERE datname = current_database()")}
    assert len(now - backends) <= 1  # the store kept its connection (at most the helper's own is new)


def test_a_connection_the_server_dropped_fails_one_call_then_the_store_reconnects_on_postgresql(new_database):
    db = new_database("postgresql")
    store = store_of(db)
    store.upsert_session(AgentSession(session_id="s", agent_id="agent-1", runs=[agent_run("r-1")]))
    assert store.get_session("s") is not None  # its statements are prepared on the pooled connection
    sql(db, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()")  # fmt: skip
    with pytest.raises(DatabaseFailure) as failure:
        store.upsert_run("s", agent_run("r-2"))
    assert "\n" not in str(failure.value)
    store.upsert_run("s", agent_run("r-2"))  # a new connection: the statements are prepared again
    assert [r.run_id for r in store.get_session("s").runs] == ["r-1", "r-2"]


def test_statements_dropped_by_deallocate_all_are_prepared_again_on_postgresql(new_database):
    """The store prepares its statements once per connection; if something drops them (DEALLOCATE
    ALL), one call fails with one line and the next prepares them again."""
    store = store_of(new_database("postgresql"))
    store.upsert_session(AgentSession(session_id="s", agent_id="agent-1", runs=[agent_run("r-1")]))
    assert store.get_session("s") is not None  # prepared now
    engine = backend_sql.engine(store.target)
    pooled = [engine.raw_connection() for _ in range(engine.pool.checkedin())]  # every pooled one
    for connection in pooled:
        connection.driver_connection.execute("DEALLOCATE ALL")
        connection.driver_connection.commit()
        connection.close()
    with pytest.raises(DatabaseFailure) as failure:
        store.get_session("s")
    assert "does not exist" in str(failure.value) and "\n" not in str(failure.value)
    assert [r.run_id for r in store.get_session("s").runs] == ["r-1"]


def test_store_connections_do_not_jit_compile_on_postgresql(new_database):
    """Listing a table not yet analyzed could pass the planner's jit_above_cost and spend ~10 ms
    compiling a statement that runs in less: the store's connections turn JIT off."""
    store = store_of(new_database("postgresql"))
    store.get_sessions()
    pooled = backend_sql.engine(store.target).raw_connection()
    try:
        assert pooled.driver_connection.execute("SHOW jit").fetchone()[0] == "off"
    finally:
        pooled.close()


@pytest.mark.parametrize(
    "backend",
    [
        "sqlite",
        "postgresql",
        "mysql",
        "mongodb",
    ],
)
def test_ten_megabyte_non_ascii_message_round_trips(new_database, backend):
    store = store_of(new_database(backend))
    line = "日本語のテキストと中文文本，한국어 텍스트。\n"
    big = line * (TEN_MB // len(line.encode("utf-8")) + 1)
    assert TEN_MB <= len(big.encode("utf-8")) < 11 * 1024 * 1024
    run = agent_run("big-run", content="ok", messages=[msg("user", "翻訳して"), msg("assistant", big)])
    store.upsert_session(AgentSession(session_id="big", agent_id="agent-1", runs=[run]))
    assert store.get_session("big").runs[0]["messages"][1]["content"] == big


def nested(depth: int):
    """A JSON value exactly ``depth`` containers deep (dicts and lists alternating)."""
    node = {"leaf": "end", "n": None}
    for level in range(depth - 1, 0, -1):
        node = {f"level-{level}": node, "n": level} if level % 2 else [level, node, "x"]
    return node


def json_depth(value) -> int:
    if isinstance(value, dict):
        return 1 + max((json_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((json_depth(v) for v in value), default=0)
    return 0


STATE = {
    "deep": nested(25),
    "big": 2**62,
    "negative_big": -(2**62),
    "beyond_double": 2**53 + 1,
    "tiny": 1e-10,
    "tenth": 0.1,
    "third": 1 / 3,
    "half": -0.5,
    "empty_dict": {},
    "empty_list": [],
    "empty_str": "",
    "null": None,
    "nulls": [None, 0, False, "", [], {}],
    "nested_null": {"a": {"b": None}},
    "true": True,
    "false": False,
    "int_one": 1,
    'quote"and\\backslash': 'line\nbreak\ttab "quoted" \\ / \u2028',
}


def test_state_round_trips_exactly(database):
    assert json_depth(STATE["deep"]) == 25
    store = store_of(database)
    session = AgentSession(session_id="state", session_data={"session_state": copy.deepcopy(STATE)},
                           metadata=copy.deepcopy(STATE), runs=[agent_run("r1", session_state=copy.deepcopy(STATE))])  # fmt: skip
    store.upsert_session(session)
    got = store.get_session("state")
    assert canon(got.session_state) == canon(STATE)
    assert canon(got.metadata) == canon(STATE)
    assert canon(got.runs[0]["session_state"]) == canon(STATE)
    assert type(got.session_state["big"]) is int and type(got.session_state["tenth"]) is float
    assert got.session_state["beyond_double"] == 2**53 + 1
    store.upsert_run("state", agent_run("r2", session_state=copy.deepcopy(STATE)))
    listed, _ = store.get_sessions()
    assert canon(listed[0].session_state) == canon(STATE)
    assert canon(listed[0].runs[1]["session_state"]) == canon(STATE)
    # Empty containers stay empty containers, not NULL.
    store.upsert_session(AgentSession(session_id="empties", session_data={}, metadata={}, agent_data={}, summary={}))
    got = store.get_session("empties")
    assert (got.session_data, got.metadata, got.agent_data, got.summary) == ({}, {}, {}, {})


# --- 4. concurrent writers ------------------------------------------------------------------------

THREADS, PROCESSES, RUNS_EACH = 8, 4, 20


CONCURRENT_BACKENDS = ["sqlite", "postgresql", "mysql", "mongodb"]


def check_all_runs_present(db, store, session_id: str, workers: int) -> None:
    got = store.get_session(session_id)
    ids = [r.run_id for r in got.runs]
    expected = {f"w{w}-r{i}" for w in range(workers) for i in range(RUNS_EACH)}
    assert len(ids) == workers * RUNS_EACH, f"{workers * RUNS_EACH - len(ids)} runs lost"
    assert set(ids) == expected
    assert runs_count(db, session_id) == workers * RUNS_EACH
    for w in range(workers):  # each writer's own runs keep its order
        assert [i for i in ids if i.startswith(f"w{w}-")] == [f"w{w}-r{i}" for i in range(RUNS_EACH)]


def run_threads(store, session_id: str, workers: int) -> list[BaseException]:
    """``workers`` threads sharing ``store``, each appending RUNS_EACH runs; returns their errors."""
    barrier = threading.Barrier(workers)
    errors: list[BaseException] = []

    def work(w: int):
        try:
            barrier.wait(timeout=30)
            for i in range(RUNS_EACH):
                store.upsert_run(session_id, agent_run(f"w{w}-r{i}", content=f"thread {w} run {i}"))
        except BaseException as exc:  # noqa: BLE001 - reported by the caller
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    return errors


@pytest.mark.parametrize("backend", CONCURRENT_BACKENDS)
def test_concurrent_threads_append_runs_to_one_session(new_database, backend):
    database = new_database(backend)
    store = store_of(database)
    store.upsert_session(AgentSession(session_id="shared", agent_id="agent-1"))
    errors = run_threads(store, "shared", THREADS)
    assert not errors, [repr(e) for e in errors]
    check_all_runs_present(database, store, "shared", THREADS)


@pytest.mark.parametrize(
    "backend",
    [
        "sqlite",
        "postgresql",
        "mysql",
        "mongodb",
    ],
)
def test_concurrent_appends_get_distinct_consecutive_indexes(new_database, backend):
    database = new_database(backend)
    store = store_of(database)
    store.upsert_session(AgentSession(session_id="shared", agent_id="agent-1"))
    errors = run_threads(store, "shared", THREADS)
    assert not errors, [repr(e) for e in errors]
    indexes = sorted(index for _, index in stored_runs(database, "shared"))
    assert indexes == list(range(THREADS * RUNS_EACH))
    first = [r.run_id for r in store.get_session("shared").runs]
    assert [r.run_id for r in store_of(database).get_session("shared").runs] == first


WORKER = """
import os, sys, time
import agno_migrate
url, session_id, worker, go, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
store = agno_migrate.connect(url)
store.get_session(session_id)  # schema check done before the start line
deadline = time.time() + 60
while not os.path.exists(go):
    if time.time() > deadline:
        sys.exit("no start signal")
    time.sleep(0.005)
for i in range(n):
    store.upsert_run(session_id, {"run_id": f"w{worker}-r{i}", "agent_id": "agent-1", "status": "COMPLETED",
                                  "content": f"process {worker} run {i}", "created_at": 1700000000})
"""


@pytest.mark.parametrize("backend", CONCURRENT_BACKENDS)
def test_concurrent_processes_append_runs_to_one_session(new_database, tmp_path, backend):
    database = new_database(backend)
    store = store_of(database)
    store.upsert_session(AgentSession(session_id="shared", agent_id="agent-1"))
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")])}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, database.url, "shared", str(w), str(go), str(RUNS_EACH)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )  # fmt: skip
        for w in range(PROCESSES)
    ]
    time.sleep(0.2)
    go.touch()
    results = [(p.wait(timeout=120), *p.communicate()) for p in procs]
    assert [code for code, _, _ in results] == [0] * PROCESSES, [err[-2000:] for _, _, err in results]
    check_all_runs_present(database, store, "shared", PROCESSES)


# --- 5. cross-reads with the real Agno 3.1.10 -----------------------------------------------------

AGNO_BACKENDS = ("sqlite", "postgresql", "mongodb")  # Agno returns MariaDB JSON columns as strings (tools/README)


def agno_python() -> Path:
    """The reference Agno 3.1.10 environment's python (tests/agno_side/env.py builds it once)."""
    try:
        return agno_env.agno_python()
    except agno_env.BuildError as exc:
        pytest.fail(str(exc), pytrace=False)


def run_agno(mode: str, db, sessions: list[dict], tmp_path: Path) -> dict:
    spec = {
        "sqlite": lambda: {"backend": "sqlite", "path": str(db.path)},
        "postgresql": lambda: {"backend": "postgresql", "url": db.url, "schema": "ai"},
        "mongodb": lambda: {"backend": "mongodb", "url": db.url, "db_name": db.db_name},
    }[db.backend]()
    request, result = tmp_path / f"agno-{mode}-request.json", tmp_path / f"agno-{mode}-result.json"
    request.write_text(json.dumps({"db": spec, "sessions": sessions}, ensure_ascii=False), encoding="utf-8")
    agno_python()
    done = agno_env.run(agno_env.SESSIONS_SCRIPT, mode, request, result, timeout=180)
    assert done.returncode == 0, done.stderr[-4000:]
    out = json.loads(result.read_text(encoding="utf-8"))
    assert out["agno_version"] == "3.1.10"
    return out


def message_views(run: dict) -> list[dict]:
    return [{"role": m["role"], "content": m["content"], "from_history": bool(m.get("from_history"))}
            for m in run.get("messages") or []]  # fmt: skip


def cross_sessions() -> list:
    """What our store writes for Agno to read: agent, team and workflow sessions with runs."""
    return [
        AgentSession(
            session_id="xr-agent-1", agent_id="agent-1", user_id="user-ä",
            session_data={"session_name": "Agent chat ☕", "session_state": {"cart": [{"sku": "🍎", "n": 2}], "big": 2**62}},
            agent_data={"name": "Helper"}, metadata={"source": "agno-migrate"},
            summary={"summary": "fruit", "topics": ["shopping"]},
            runs=history_runs(), created_at=T0, updated_at=T0 + 60,
        ),
        AgentSession(session_id="xr-agent-2", agent_id="agent-2", user_id="user-b",
                     session_data={"session_name": "second", "session_state": {}}, created_at=T0 + 1, updated_at=T0 + 1),
        TeamSession(
            session_id="xr-team-1", team_id="team-1", user_id="user-c",
            session_data={"session_name": "Team 🤝", "session_state": {"round": 1}}, team_data={"name": "Crew"},
            runs=[team_run("xr-t1"), agent_run("xr-t1-member", parent_run_id="xr-t1", content="member says")],
            created_at=T0 + 2, updated_at=T0 + 2,
        ),
        WorkflowSession(
            session_id="xr-wf-1", workflow_id="workflow-1", user_id="user-d",
            session_data={"session_name": "Pipeline", "session_state": {"step": "done"}}, workflow_data={"name": "Flow"},
            metadata={"kind": "workflow"},
            runs=[workflow_run("xr-w1"), workflow_run("xr-w2", content="second pass")], created_at=T0 + 3, updated_at=T0 + 3,
        ),
    ]  # fmt: skip


def expected_agno_view(session) -> dict:
    """The fields Agno's session_view() must show for one of our sessions."""
    kind = session.session_type
    runs = session.runs
    if kind == "workflow":  # Agno's WorkflowSession keeps the workflow's own runs only
        runs = [r for r in runs if not r.get("agent_id") and not r.get("team_id")]
    return {
        "class": {"agent": "AgentSession", "team": "TeamSession", "workflow": "WorkflowSession"}[kind],
        "session_id": session.session_id,
        "user_id": session.user_id,
        f"{kind}_id": session.component_id,
        "session_state": session.session_state,
        "session_name": session.session_name,
        "session_data": session.session_data,
        f"{kind}_data": getattr(session, f"{kind}_data"),
        "metadata": session.metadata,
        "summary": session.summary if kind != "workflow" else None,
        "created_at": session.created_at,
        "updated_at": session.updated_at,
        "runs": [
            {
                "run_id": r["run_id"],
                "content": r["content"],
                "status": r["status"],
                "parent_run_id": r.get("parent_run_id"),
                "messages": message_views(r),
            }
            for r in runs
        ],  # fmt: skip
    }


def agno_view_subset(view: dict, expected: dict) -> dict:
    out = {k: view[k] for k in expected if k != "runs"}
    out["runs"] = [
        {k: run[k] for k in ("run_id", "content", "status", "parent_run_id", "messages")} for run in view["runs"]
    ]
    return out


@pytest.mark.agno
@pytest.mark.parametrize("backend", AGNO_BACKENDS)
def test_agno_reads_sessions_written_by_our_store(new_database, tmp_path, backend):
    agno_python()  # built (or failed) before anything is written
    db = new_database(backend)
    store = store_of(db)
    sessions = cross_sessions()
    store.upsert_sessions(sessions[:1] + sessions[2:], preserve_updated_at=True)
    store.upsert_session(sessions[1], preserve_updated_at=True)
    for run in (agent_run("xr-a2-r1", content="via upsert_run"), agent_run("xr-a2-r2", content="second 🚀")):
        store.upsert_run("xr-agent-2", run)
    store.upsert_run("xr-agent-1", {**history_runs()[1], "content": "edited in place"})  # r2, updated by run_id
    ours = {s.session_id: store.get_session(s.session_id) for s in sessions}
    assert [r.run_id for r in ours["xr-agent-2"].runs] == ["xr-a2-r1", "xr-a2-r2"]

    out = run_agno(
        "read", db, [{"session_id": s.session_id, "session_type": s.session_type} for s in sessions], tmp_path
    )

    for sid, session in ours.items():
        expected = expected_agno_view(session)
        view = out["get_session"][sid]
        assert view is not None, f"Agno's get_session does not find {sid}"
        assert canon(agno_view_subset(view, expected)) == canon(expected), sid
        listed = [v for v in out["get_sessions"][session.session_type] if v["session_id"] == sid]
        assert len(listed) == 1 and canon(listed[0]) == canon(view), f"get_sessions and get_session disagree on {sid}"
    for kind in ("agent", "team", "workflow"):
        assert sorted(v["session_id"] for v in out["get_sessions"][kind]) == sorted(
            s.session_id for s in sessions if s.session_type == kind)  # fmt: skip
    assert out["get_session"]["xr-agent-1"]["runs"][1]["content"] == "edited in place"
    # Agno builds the same chat history from what we wrote.
    for sid in ("xr-agent-1", "xr-agent-2"):
        assert out["messages"][sid] == message_views({"messages": store.get_messages(sid)})
        assert out["messages_last_1"][sid] == message_views({"messages": store.get_messages(sid, last_n_runs=1)})
    assert len(out["messages"]["xr-agent-1"]) == 8


def agno_written_sessions() -> list[dict]:
    """Sessions for Agno to write (Agno's to_dict shape, runs as RunOutput-style dicts)."""
    return [
        {
            "session_type": "agent", "session_id": "agno-agent-1", "agent_id": "agent-1", "user_id": "user-ü",
            "session_data": {"session_name": "Agno wrote this 📝", "session_state": {"deep": nested(10), "big": 2**62, "f": 0.1}},
            "agent_data": {"name": "Writer", "model": {"id": "m"}}, "metadata": {"k": "v"},
            "summary": {"summary": "a summary", "topics": ["a", "b"]}, "created_at": T0 + 10,
            "runs": [
                agent_run("agno-r1", session_id="agno-agent-1",
                          messages=[msg("system", "be nice"), msg("user", "hi 👋"), msg("assistant", "hello")]),
                agent_run("agno-r2", session_id="agno-agent-1", status="PAUSED", messages=[msg("user", "wait")]),
                agent_run("agno-r3", session_id="agno-agent-1", content="third",
                          messages=[msg("user", "hi 👋", from_history=True), msg("user", "again"), msg("assistant", "third")]),
            ],
        },
        {
            "session_type": "team", "session_id": "agno-team-1", "team_id": "team-1", "user_id": "user-t",
            "session_data": {"session_name": "Agno team", "session_state": {"n": 1}}, "team_data": {"name": "Crew"},
            "metadata": {"kind": "team"}, "summary": {"summary": "team talk"}, "created_at": T0 + 11,
            "runs": [team_run("agno-t1", session_id="agno-team-1"),
                     agent_run("agno-t1-m", session_id="agno-team-1", parent_run_id="agno-t1", content="member")],
        },
        {
            "session_type": "workflow", "session_id": "agno-wf-1", "workflow_id": "workflow-1", "user_id": "user-w",
            "session_data": {"session_name": "Agno flow", "session_state": {"done": True}},
            "workflow_data": {"name": "Flow"}, "metadata": {"kind": "workflow"}, "created_at": T0 + 12,
            "runs": [workflow_run("agno-w1", session_id="agno-wf-1")],
        },
    ]  # fmt: skip


@pytest.mark.agno
@pytest.mark.parametrize("backend", AGNO_BACKENDS)
def test_our_store_reads_sessions_written_by_agno(new_database, tmp_path, backend):
    agno_python()
    db = new_database(backend)
    specs = agno_written_sessions()
    out = run_agno("write", db, specs, tmp_path)  # Agno creates the tables (it stamps 3.0.0)
    assert not agno_migrate.current(db.url).managed  # only Agno's stamp so far

    store = store_of(db)
    assert store.schema_version == "3.0.1"  # Agno 3.x is physically at head (3.0.1 changes MySQL only)
    for spec in specs:
        sid, kind = spec["session_id"], spec["session_type"]
        agno_view = out["read_back"][sid]
        got = store.get_session(sid)
        assert got is not None, sid
        assert type(got) is SESSION_CLASSES[kind] and got.session_type == kind
        assert got.session_id == sid and got.user_id == spec["user_id"]
        assert getattr(got, f"{kind}_id") == spec[f"{kind}_id"]
        assert canon(got.session_data) == canon(spec["session_data"]) == canon(agno_view["session_data"])
        assert got.session_name == spec["session_data"]["session_name"]
        assert canon(got.session_state) == canon(spec["session_data"]["session_state"])
        assert canon(getattr(got, f"{kind}_data")) == canon(spec[f"{kind}_data"])
        assert canon(got.metadata) == canon(spec.get("metadata")) == canon(agno_view["metadata"])
        if kind != "workflow":
            assert canon(got.summary) == canon(spec.get("summary")) == canon(agno_view["summary"])
        assert (got.created_at, got.updated_at) == (agno_view["created_at"], agno_view["updated_at"])
        assert got.created_at == spec["created_at"]
        # Every run, as Agno serialised it, in the order Agno wrote them.
        assert [r.run_id for r in got.runs] == [r["run_id"] for r in spec["runs"]]
        assert canon([dict(r) for r in got.runs]) == canon(out["written"][sid]["runs"])
        for run, spec_run in zip(got.runs, spec["runs"], strict=False):
            assert run["content"] == spec_run["content"] and run.status == spec_run["status"]
            assert message_views(run) == message_views(spec_run)
        assert [r for r, _ in stored_runs(db, sid)] == [r["run_id"] for r in spec["runs"]]
    # The listing sees them all; the chat history matches Agno's own.
    listed, total = store.get_sessions(sort_by="created_at", sort_order="asc")
    assert total == 3 and [s.session_id for s in listed] == ["agno-agent-1", "agno-team-1", "agno-wf-1"]
    assert message_views({"messages": store.get_messages("agno-agent-1")}) == out["messages"]["agno-agent-1"]
    assert contents(store.get_messages("agno-agent-1")) == [("system", "be nice"), ("user", "hi 👋"), ("assistant", "hello"),
                                                             ("user", "again"), ("assistant", "third")]  # fmt: skip
    # Our store recorded the version itself, and now writes on Agno's tables.
    status = agno_migrate.check(db.url)
    assert status.at_head and status.managed
    store.upsert_run("agno-agent-1", agent_run("ours-r4", session_id="agno-agent-1"))
    assert [r.run_id for r in store.get_session("agno-agent-1").runs][-1] == "ours-r4"
    assert stored_runs(db, "agno-agent-1")[-1] == ("ours-r4", 3)
