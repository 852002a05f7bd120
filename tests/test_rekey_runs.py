"""One rule for run ids (``convert.rekey_runs``), pinned where it applies: the 3.0.0 copy on SQL and
on MongoDB, and the Agno 1.x import on SQL and on MongoDB.

A run without ``run_id`` is stored under ``derived_run_id(session_id, run_index)``; a ``run_id`` that
a run of another session already holds is stored under ``derived_run_id(session_id, run_index,
run_id)`` and reported as ``(run_id, session_id, owner session, new id)``; the run already there keeps
its id. The same database content gives the same stored ids on every path.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from conftest import SQL_BACKENDS
from test_data_step import insert_sessions

import agno_migrate
from agno_migrate.convert import Rekeyed, RunKey, derived_run_id, rekey_runs
from agno_migrate.target import Target

BACKENDS = (*SQL_BACKENDS, "mongodb")
OWNER, NEWCOMER = "a-owner", "b-newcomer"  # (the copy walks the sessions in session_id order)
OWNER_RUNS = [{"run_id": "r1", "status": "COMPLETED", "content": "first"}]
NEWCOMER_RUNS = [{"run_id": "r1", "status": "COMPLETED", "content": "same id, other session"}, {"content": "no id"}]
CLASH = derived_run_id(NEWCOMER, 0, "r1")
NO_ID = derived_run_id(NEWCOMER, 1)
STORED = {"r1": (OWNER, 0), CLASH: (NEWCOMER, 0), NO_ID: (NEWCOMER, 1)}  # run_id -> (session, position)
REPORTED = [("r1", NEWCOMER, OWNER, CLASH)]


# --- the rule itself --------------------------------------------------------------------------------


def _lookup(stored: dict):
    calls = []

    def owners(ids):
        calls.append(list(ids))
        return {run_id: stored[run_id] for run_id in ids if run_id in stored}

    return owners, calls


def test_a_free_id_is_kept_and_no_derived_id_is_looked_up():
    owners, calls = _lookup({})
    assert rekey_runs([RunKey("r1", "s1", 0), RunKey("r2", "s1", 1)], owners) == (["r1", "r2"], [])
    assert calls == [["r1", "r2"]]


def test_an_id_held_by_another_session_gets_the_derived_id_and_is_reported():
    owners, _ = _lookup({"r1": ("s1", 0)})
    new_id = derived_run_id("s2", 0, "r1")
    assert rekey_runs([RunKey("r1", "s2", 0)], owners) == ([new_id], [Rekeyed("r1", "s2", "s1", new_id)])


def test_an_id_held_by_another_position_of_the_same_session_is_rekeyed_too():
    owners, _ = _lookup({"r1": ("s1", 0)})
    new_id = derived_run_id("s1", 3, "r1")
    assert rekey_runs([RunKey("r1", "s1", 3)], owners) == ([new_id], [Rekeyed("r1", "s1", "s1", new_id)])


def test_a_run_stored_already_is_skipped_under_its_id_or_its_derived_id():
    """(an interrupted copy run again: what it stored is recognised by its session and position)"""
    new_id = derived_run_id("s2", 0, "r1")
    owners, calls = _lookup({"r1": ("s1", 0), new_id: ("s2", 0), "r9": ("s2", 1)})
    ids, rekeyed = rekey_runs([RunKey("r1", "s2", 0), RunKey("r9", "s2", 1)], owners)
    assert ids == [None, None]
    assert rekeyed == [Rekeyed("r1", "s2", "s1", new_id)]  # reported again, as on the first run
    assert calls == [["r1", "r9"], [new_id]]


def test_an_id_given_to_an_earlier_run_of_the_same_batch_is_taken():
    owners, _ = _lookup({})
    new_id = derived_run_id("s2", 0, "r1")
    ids, rekeyed = rekey_runs([RunKey("r1", "s1", 0), RunKey("r1", "s2", 0)], owners)
    assert ids == ["r1", new_id] and rekeyed == [Rekeyed("r1", "s2", "s1", new_id)]


# --- where it applies -------------------------------------------------------------------------------


def _stored_runs(db) -> dict:
    """run_id -> (session_id, run_index) of the runs table (collection), and run_data's ids agree."""
    if db.backend == "mongodb":
        with db.mongo() as mongo:
            docs = list(mongo["agno_runs"].find({}, {"_id": 0}))
        rows = [(d["run_id"], d["session_id"], d["run_index"], d["run_data"]) for d in docs]
    else:
        from agno_migrate import jsoncodec

        target = Target.from_url(db.url)
        engine = db.engine()
        with engine.connect() as conn:
            runs = sa.Table(target.runs_table, sa.MetaData(), autoload_with=conn, schema=_schema(target))
            query = sa.select(runs.c.run_id, runs.c.session_id, runs.c.run_index, runs.c.run_data)
            rows = [(r, s, i, jsoncodec.decode_json(d)) for r, s, i, d in conn.execute(query)]
        engine.dispose()
    assert all(run_data["run_id"] == run_id for run_id, _, _, run_data in rows if run_id != CLASH)
    return {run_id: (session_id, index) for run_id, session_id, index, _ in rows}


def _schema(target: Target) -> str | None:
    from agno_migrate.backends import dialect_of

    return dialect_of(target).schema_of(target)


def _session(session_id: str, runs: list) -> dict:
    return {"session_id": session_id, "session_type": "agent", "agent_id": "a1", "team_id": None,
            "workflow_id": None, "user_id": "u1", "created_at": 1700000000, "updated_at": 1700000005,
            "runs": runs}  # fmt: skip


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_3_0_0_copy(new_database, backend):
    db = new_database(backend)
    agno_migrate.upgrade(db.url, to="2.5.0")
    sessions = [_session(OWNER, OWNER_RUNS), _session(NEWCOMER, NEWCOMER_RUNS)]
    if backend == "mongodb":
        with db.mongo() as mongo:
            mongo["agno_sessions"].insert_many(sessions)
    else:
        insert_sessions(db.url, sessions)
    outcome = agno_migrate.upgrade(db.url)
    assert "3.0.0" in outcome.applied
    assert _stored_runs(db) == STORED
    assert outcome.report["duplicate_run_ids"] == REPORTED


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_agno_1_import(new_database, backend):
    db = new_database(backend)
    agno_migrate.upgrade(db.url)
    store = agno_migrate.connect(db.url)
    store.upsert_session(agno_migrate.AgentSession(OWNER, agent_id="a1", user_id="u1", runs=OWNER_RUNS))
    _add_v1_agent_session(db, NEWCOMER, {"runs": NEWCOMER_RUNS})
    outcome = agno_migrate.upgrade(db.url)
    assert outcome.report["legacy"].sessions == 1
    assert _stored_runs(db) == STORED
    assert outcome.report["legacy"].duplicate_run_ids == REPORTED


def _add_v1_agent_session(db, session_id: str, memory: dict) -> None:
    """An Agno 1.x ``agent_sessions`` table (collection) holding one session."""
    row = {"session_id": session_id, "agent_id": "a1", "user_id": "u1", "memory": memory, "session_data": None,
           "extra_data": None, "agent_data": None, "created_at": 1700000000, "updated_at": 1700000005}  # fmt: skip
    if db.backend == "mongodb":
        with db.mongo() as mongo:
            mongo["agent_sessions"].insert_one(row)
        return
    target = Target.from_url(db.url)
    table = sa.Table(
        "agent_sessions",
        sa.MetaData(),
        sa.Column("session_id", sa.String(255), primary_key=True),
        *[sa.Column(name, sa.String(255)) for name in ("agent_id", "user_id")],
        *[sa.Column(name, sa.JSON) for name in ("memory", "session_data", "extra_data", "agent_data")],
        *[sa.Column(name, sa.BigInteger) for name in ("created_at", "updated_at")],
        schema=_schema(target),
    )
    engine = db.engine()
    with engine.begin() as conn:
        table.create(conn)
        conn.execute(table.insert(), [row])
    engine.dispose()
