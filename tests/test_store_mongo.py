"""What only the MongoDB store has (the shared store suite in test_store.py runs on MongoDB too):
BSON's limits, legacy ``runs`` arrays merged on read, ``_id`` never shown, names mapped by
connect(), regex characters in the name filter, writers racing upsert_sessions against upsert_run,
and the standalone-server fallback (no transactions: a writer lease) on a real standalone mongod.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid

import pytest
from conftest import mongo_url_with_database
from mongo_server import MongoServer, _free_port, mongod_binary

import agno_migrate
from agno_migrate import AgentSession, LockTimeout, MongoDb, UsageError
from agno_migrate.errors import RunIdTaken
from agno_migrate.store import mongo as mongo_store

T0 = 1_700_000_000


def run(run_id: str, **extra) -> dict:
    return {"run_id": run_id, "agent_id": "agent-1", "status": "COMPLETED", "content": f"c {run_id}",
            "created_at": T0, "messages": [{"role": "user", "content": f"q {run_id}"}], **extra}  # fmt: skip


@pytest.fixture
def mdb(new_database):
    return new_database("mongodb")


def documents(db, collection: str, query: dict | None = None) -> list[dict]:
    with db.mongo() as mongo:
        return list(mongo[collection].find(query or {}))


def nothing_written(db) -> bool:
    return not documents(db, "agno_sessions") and not documents(db, "agno_runs")


# --- BSON's limits --------------------------------------------------------------------------------


def test_integers_beyond_64_bits_are_refused_and_nothing_is_written(mdb):
    store = agno_migrate.connect(mdb.url)
    edge = {"max": 2**63 - 1, "min": -(2**63)}
    store.upsert_session(AgentSession("edge", session_data={"session_state": edge}, runs=[run("r-edge", n=2**63 - 1)]))
    got = store.get_session("edge")
    assert got.session_state == edge and type(got.session_state["max"]) is int
    assert got.runs[0]["n"] == 2**63 - 1 and type(got.runs[0]["n"]) is int
    store.delete_session("edge")

    with pytest.raises(UsageError, match="64 bits"):
        store.upsert_session(AgentSession("s", session_data={"session_state": {"n": 2**63}}, runs=[run("r1")]))
    with pytest.raises(UsageError, match="64 bits"):
        store.upsert_session(AgentSession("s", runs=[run("r1"), run("r2", metrics={"tokens": -(2**63) - 1})]))
    assert nothing_written(mdb)
    store.upsert_session(AgentSession("s", runs=[run("r1")]))
    with pytest.raises(UsageError, match="64 bits"):
        store.upsert_run("s", run("r2", n=2**64))
    assert [r.run_id for r in store.get_session("s").runs] == ["r1"]


def test_documents_beyond_16_megabytes_are_refused_and_nothing_is_written(mdb):
    store = agno_migrate.connect(mdb.url)
    big = "x" * (17 * 1024 * 1024)
    with pytest.raises(UsageError, match="16 MB"):
        store.upsert_session(AgentSession("s", session_data={"session_state": {"blob": big}}, runs=[run("r1")]))
    with pytest.raises(UsageError, match="16 MB"):
        store.upsert_session(AgentSession("s", runs=[run("r1"), run("r2", content=big)]))
    assert nothing_written(mdb)
    store.upsert_session(AgentSession("s", runs=[run("r1")]))
    with pytest.raises(UsageError, match="16 MB"):
        store.upsert_run("s", run("r2", content=big))
    # 15 MB in a run is fine: the limit is per document.
    fifteen = "y" * (15 * 1024 * 1024)
    store.upsert_run("s", run("r3", content=fifteen))
    assert [(r.run_id, len(r["content"])) for r in store.get_session("s").runs] == [("r1", 4), ("r3", len(fifteen))]


# --- the layout -----------------------------------------------------------------------------------


def test_legacy_runs_arrays_are_merged_on_read_and_kept_on_write(mdb):
    """A session of an upgraded database still carrying its ``runs`` array (Agno's 3.0.0 migration
    keeps it): read as Agno 3.1 reads it, the array's order first, the runs collection's copy winning."""
    store = agno_migrate.connect(mdb.url)
    store.upsert_session(AgentSession("s", agent_id="agent-1", runs=[run("r2", content="edited"), run("r3")]))
    legacy = [run("r1"), run("r2", content="old")]
    with mdb.mongo() as mongo:
        mongo.agno_sessions.update_one({"session_id": "s"}, {"$set": {"runs": legacy}})
    expected = ["r1", "r2", "r3"]
    got = store.get_session("s")
    assert [r.run_id for r in got.runs] == expected and got.runs[1]["content"] == "edited"
    assert [r.run_id for r in store.get_sessions()[0][0].runs] == expected
    assert store.get_messages("s") == [{"role": "user", "content": f"q {rid}"} for rid in expected]

    store.upsert_session(AgentSession("s", agent_id="agent-1", metadata={"m": 1}))
    store.upsert_run("s", run("r4"))
    (doc,) = documents(mdb, "agno_sessions")
    assert doc["runs"] == legacy and doc["metadata"] == {"m": 1}
    assert [r.run_id for r in store.get_session("s").runs] == [*expected, "r4"]
    assert [(d["run_id"], d["run_index"]) for d in documents(mdb, "agno_runs", {"run_id": "r4"})] == [("r4", 2)]


def test_documents_have_the_head_layout_and_id_is_never_returned(mdb):
    store = agno_migrate.connect(mdb.url)
    store.upsert_session(AgentSession("s", agent_id="agent-1", user_id="u", session_data={"session_name": "n"},
                                      created_at=T0, runs=[run("r1", parent_run_id=None)]))  # fmt: skip
    (session,) = documents(mdb, "agno_sessions")
    assert set(session) == {"_id", "session_id", "session_type", "agent_id", "team_id", "workflow_id", "user_id",
                            "session_data", "agent_data", "team_data", "workflow_data", "metadata", "summary",
                            "created_at", "updated_at"}  # fmt: skip
    assert session["session_data"] == {"session_name": "n"}  # a sub-document, not a JSON string
    (row,) = documents(mdb, "agno_runs")
    assert set(row) == {"_id", "run_id", "session_id", "run_type", "agent_id", "team_id", "workflow_id", "user_id",
                        "parent_run_id", "status", "run_index", "run_data", "created_at", "updated_at"}  # fmt: skip
    assert (row["run_type"], row["user_id"], row["status"], row["run_index"], row["created_at"]) == (
        "agent", "u", "COMPLETED", 0, T0)  # fmt: skip
    got = store.get_session("s")
    assert "_id" not in got.to_dict() and "_id" not in got.runs[0]
    assert "_id" not in store.get_sessions()[0][0].runs[0]
    with mdb.mongo() as mongo:
        indexes = {name: info.get("unique", False) for name, info in mongo.agno_runs.index_information().items()}
    assert indexes["run_id_1"] is True and "session_id_1_run_index_1" in indexes


def test_connect_maps_names_to_the_database_and_collections(mdb, mongo_server):
    other = f"amt_{uuid.uuid4().hex[:12]}"
    store = agno_migrate.connect(mdb.url, session_table="my_sessions", runs_table="my_runs", db_schema=other)
    try:
        assert isinstance(store, MongoDb)
        store.upsert_session(AgentSession("s", runs=[run("r1")]))
        with mdb.mongo() as mongo:
            names = set(mongo.client[other].list_collection_names())
            assert mongo.list_collection_names() == []  # the URL's database is untouched
        assert {"my_sessions", "my_runs"} <= names
        assert [r.run_id for r in store.get_session("s").runs] == ["r1"]
    finally:
        store.close()
        with mdb.mongo() as mongo:
            mongo.client.drop_database(other)
    assert MongoDb(db_url=mdb.url).target.schema == mdb.db_name
    assert MongoDb(db_url=mongo_server.url).target.schema == "agno"  # as Agno's MongoDb
    assert MongoDb(db_url=mdb.url, db_name="elsewhere").target.schema == "elsewhere"
    with pytest.raises(UsageError):
        MongoDb(db_url="sqlite:///x.db")


def test_session_name_filter_takes_regex_characters_literally(mdb):
    store = agno_migrate.connect(mdb.url)
    names = {"a": "plan a.b", "b": "plan axb", "c": "(x) or [y]", "d": "c*d + e?", "e": "back\\slash $^|{2}", "f": "ab"}
    store.upsert_sessions([AgentSession(sid, session_data={"session_name": n}, created_at=T0 + i)
                           for i, (sid, n) in enumerate(names.items())])  # fmt: skip

    def ids(name):
        return sorted(s.session_id for s in store.get_sessions(session_name=name)[0])

    assert ids("a.b") == ["a"] and ids("(X)") == ["c"] and ids("[y]") == ["c"] and ids("c*d") == ["d"]
    assert ids("e?") == ["d"] and ids("\\s") == ["e"] and ids("$^|{2}") == ["e"] and ids(".*") == []
    assert ids("a") == ["a", "b", "e", "f"]


def test_writers_racing_upsert_sessions_and_upsert_run_lose_nothing(mdb):
    store = agno_migrate.connect(mdb.url)
    store.upsert_session(AgentSession("shared", agent_id="agent-1"))
    barrier = threading.Barrier(6)
    errors = []

    def appender(w):
        try:
            barrier.wait(timeout=30)
            for i in range(15):
                store.upsert_run("shared", run(f"a{w}-{i}"))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    def bulk(w):
        try:
            barrier.wait(timeout=30)
            for i in range(15):  # the same session object each time: its runs grow by one
                store.upsert_sessions([AgentSession("shared", agent_id="agent-1", runs=[run(f"b{w}-{i}")])])
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=appender if w % 2 else bulk, args=(w,)) for w in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, [repr(e) for e in errors]
    rows = documents(mdb, "agno_runs")
    assert len(rows) == 90 and sorted(r["run_index"] for r in rows) == list(range(90))
    ids = [r.run_id for r in store.get_session("shared").runs]
    for w in range(6):
        mine = [i for i in ids if i.startswith(f"{'a' if w % 2 else 'b'}{w}-")]
        assert mine == [f"{'a' if w % 2 else 'b'}{w}-{i}" for i in range(15)]


def test_a_big_call_is_cut_into_transactions_of_whole_sessions(mdb):
    sessions = [AgentSession(f"s{i:04d}", created_at=T0 + i, runs=[run(f"s{i:04d}-r{j}") for j in range(3)])
                for i in range(400)]  # fmt: skip
    sessions[7].runs = [run(f"s0007-r{j}") for j in range(1500)]  # one session bigger than a transaction
    _, rows, run_rows = MongoDb._session_rows(sessions, False)
    parts = mongo_store._transactions(rows, run_rows, [100] * (len(rows) + len(run_rows)))
    assert len(parts) > 2 and sum(len(r) for r, _ in parts) == 400 and sum(len(rr) for _, rr in parts) == 399 * 3 + 1500
    for part_rows, part_runs in parts:  # whole sessions: each run with its session
        assert {r["session_id"] for r in part_runs} <= {r["session_id"] for r in part_rows}
        assert len(part_rows) + len(part_runs) <= mongo_store.TRANSACTION_DOCUMENTS or len(part_rows) == 1

    store = agno_migrate.connect(mdb.url)
    store.upsert_session(AgentSession("other", runs=[run("taken")]))
    doomed = [*sessions, AgentSession("last", runs=[run("taken")])]
    with pytest.raises(RunIdTaken):  # refused before the first transaction commits
        store.upsert_sessions(doomed)
    assert store.get_all_session_ids() == ["other"]
    store.upsert_sessions(sessions)
    assert store.get_sessions()[1] == 401
    assert [r.run_id for r in store.get_session("s0007").runs] == [f"s0007-r{j}" for j in range(1500)]
    assert sorted(d["run_index"] for d in documents(mdb, "agno_runs", {"session_id": "s0007"})) == list(range(1500))


def test_importing_the_package_does_not_load_pymongo(tmp_path):
    code = ("import sys, agno_migrate; from agno_migrate import MongoDb; "
            f"agno_migrate.connect('sqlite:///{tmp_path / 'x.db'}').get_sessions(); "
            "print('pymongo' in sys.modules)")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


# --- a standalone server: no transactions, a writer lease instead ----------------------------------


@pytest.fixture(scope="module")
def standalone():
    """A standalone mongod (no replica set, so no transactions), started and stopped here."""
    directory = tempfile.mkdtemp(prefix="agno-migrate-mongo-standalone-")
    port = _free_port()
    cmd = [mongod_binary(), "--dbpath", directory, "--bind_ip", "127.0.0.1", "--port", str(port),
           "--wiredTigerCacheSizeGB", "0.25", "--fork", "--logpath", os.path.join(directory, "mongod.log"),
           "--pidfilepath", os.path.join(directory, "mongod.pid")]  # fmt: skip
    server = MongoServer(f"mongodb://127.0.0.1:{port}/", directory)
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
        if done.returncode != 0:
            pytest.fail(f"standalone mongod did not start: {done.stdout}{done.stderr}", pytrace=False)
        yield server
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def standalone_url(standalone):
    from pymongo import MongoClient

    name = f"amt_{uuid.uuid4().hex[:12]}"
    yield mongo_url_with_database(standalone.url, name)
    with MongoClient(standalone.url) as client:
        client.drop_database(name)


def test_standalone_store_works_without_transactions(standalone_url):
    store = agno_migrate.connect(standalone_url)
    store.upsert_session(AgentSession("s", agent_id="agent-1", runs=[run("r1"), run("r2")]))
    assert store._transactions is False  # the server said: no replica set
    store.upsert_run("s", run("r3"))
    store.upsert_run("s", run("r1", content="edited"))
    got = store.get_session("s")
    assert [r.run_id for r in got.runs] == ["r1", "r2", "r3"] and got.runs[0]["content"] == "edited"
    store.upsert_session(AgentSession("t", runs=[run("t1")]))
    with pytest.raises(RunIdTaken):
        store.upsert_sessions([AgentSession("u", runs=[run("u1")]), AgentSession("v", runs=[run("t1")])])
    assert store.get_session("u") is None and store.get_session("v") is None  # checked before writing
    with pytest.raises(UsageError, match="64 bits"):
        store.upsert_sessions([AgentSession("w"), AgentSession("x", session_data={"n": 2**64})])
    with pytest.raises(UsageError, match="16 MB"):
        store.upsert_sessions([AgentSession("w"), AgentSession("x", runs=[run("x1", content="z" * (17 * 2**20))])])
    assert store.get_session("w") is None
    assert store.rename_session("s", "renamed").session_name == "renamed"
    assert store.delete_sessions(["s", "t"]) == 2 and store.get_all_session_ids() == []
    from pymongo import MongoClient

    with MongoClient(standalone_url) as client:
        state = client.get_default_database()[store.target.version_table]
        assert state.find_one({"_id": "store-writer"}) is None  # the lease is given back


def test_standalone_concurrent_writers_take_turns(standalone_url):
    store = agno_migrate.connect(standalone_url)
    store.upsert_session(AgentSession("shared", agent_id="agent-1"))
    others = [agno_migrate.connect(standalone_url) for _ in range(3)]  # other clients, as other processes
    barrier = threading.Barrier(8)
    errors = []

    def work(w):
        try:
            mine = (store, *others)[w % 4]
            barrier.wait(timeout=30)
            for i in range(20):
                if i % 5 == 4:
                    mine.upsert_sessions([AgentSession("shared", agent_id="agent-1", runs=[run(f"w{w}-r{i}")])])
                else:
                    mine.upsert_run("shared", run(f"w{w}-r{i}"))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, [repr(e) for e in errors]
    ids = [r.run_id for r in store.get_session("shared").runs]
    assert len(ids) == 160 and len(set(ids)) == 160
    from pymongo import MongoClient

    with MongoClient(standalone_url) as client:
        indexes = sorted(d["run_index"] for d in client.get_default_database().agno_runs.find())
    assert indexes == list(range(160))
    for other in others:
        other.close()


def test_standalone_lease_is_waited_for_then_taken_over_when_expired(standalone_url):
    from pymongo import MongoClient

    store = agno_migrate.connect(standalone_url)
    store.upsert_session(AgentSession("s"))
    with MongoClient(standalone_url) as client:
        state = client.get_default_database()[store.target.version_table]
        far = {"$add": ["$$NOW", 3_600_000]}
        state.update_one({"_id": "store-writer"}, [{"$set": {"owner": "someone-else", "expires_at": far}}], upsert=True)
        store.target.lock_timeout = 0.5
        started = time.monotonic()
        with pytest.raises(LockTimeout):
            store.upsert_run("s", run("r1"))
        assert time.monotonic() - started >= 0.5
        # A writer that died: its lease expires and the next writer takes it over.
        state.update_one({"_id": "store-writer"}, [{"$set": {"expires_at": {"$add": ["$$NOW", -1]}}}])
        store.upsert_run("s", run("r1"))
        assert [r.run_id for r in store.get_session("s").runs] == ["r1"]
        assert state.find_one({"_id": "store-writer"}) is None
