"""The MongoDB runner against the real mongod (tests/mongo_server.py): every Mongo lineage point of
the fixture pack upgraded to head with nothing lost (and read back by the real Agno 3.1.10),
concurrent upgraders, a runner killed mid-step, a dead runner's lock taken over after its lease,
detection and drift, and the CLI's answers on mongodb:// URLs."""

from __future__ import annotations

import json
import lzma
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
import shared_tools
from agno_side import env as agno_env
from conftest import FIXTURES, load_mongo_fixture

import agno_migrate
from agno_migrate import registry
from agno_migrate.backends.mongo import database
from agno_migrate.migrate.mongo import state as mongo_state
from agno_migrate.migrate.mongo import step as mongo_step
from agno_migrate.target import Target

CLI = str(Path(sys.executable).parent / "agno-migrate")
POINTS = ("v1", "2.0.0", "2.3.0", "2.5.0", "2.6.0", "3.1.10")
LEGACY = ("agent_sessions", "team_sessions", "workflow_sessions", "workflow_v2_sessions")
REPLICAS = int(os.environ.get("AGNO_MIGRATE_REPLICAS", "8"))
HEAD = registry.HEAD.version


# --- helpers --------------------------------------------------------------------------------------


def expected_name(point: str) -> str:
    return "expected.mongo.jsonl" if (FIXTURES / point / "expected.mongo.jsonl.xz").exists() else "expected.jsonl"


def expected_sessions(point: str) -> list[dict]:
    text = lzma.decompress((FIXTURES / point / f"{expected_name(point)}.xz").read_bytes()).decode("utf-8")
    return [row for row in (json.loads(line) for line in text.splitlines() if line) if "meta" not in row]


def target_of(url: str, name: str, **options) -> Target:
    return Target.from_url(url, schema=name, **options)


def cli(url: str, name: str, *args: str, **kwargs) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "AGNO_DB_URL"}
    return subprocess.run([CLI, "--db-url", url, "--db-schema", name, *args], capture_output=True, text=True, env=env,
                          timeout=300, **kwargs)  # fmt: skip


def client(url: str):
    from pymongo import MongoClient

    return MongoClient(url)


def dump(url: str, name: str, collection: str, key: str) -> list[str]:
    """Every document of the collection without ``_id``, as canonical Extended JSON, by ``key``."""
    from bson import json_util

    with client(url) as c:
        docs = list(c[name][collection].find({}, {"_id": 0}).sort(key, 1))
    return [json_util.dumps(d, sort_keys=True) for d in docs]


def head_dump(url: str, name: str) -> tuple[list[str], list[str]]:
    runs = [json.loads(d) for d in dump(url, name, "agno_runs", "run_id")]
    for run in runs:
        run.pop("updated_at", None)  # "now" when copied
    return dump(url, name, "agno_sessions", "session_id"), [json.dumps(r, sort_keys=True) for r in runs]


def stored_runs(url: str, name: str) -> dict[str, list[str]]:
    """session_id -> top-level run ids in run_index order."""
    out: dict[str, list[str]] = {}
    with client(url) as c:
        query = {"parent_run_id": None}
        for doc in c[name]["agno_runs"].find(query).sort([("session_id", 1), ("run_index", 1)]):
            out.setdefault(doc["session_id"], []).append(doc["run_data"]["run_id"])
    return out


def multiply_sessions(url: str, name: str, copies: int) -> int:
    """More documents to interrupt: copies of every session under new session and run ids."""
    with client(url) as c:
        sessions = c[name]["agno_sessions"]
        docs = list(sessions.find({}, {"_id": 0}))
        for k in range(1, copies):
            clones = []
            for doc in docs:
                clone = json.loads(json.dumps(doc, default=str))
                clone["session_id"] = f"{doc['session_id']}-copy{k:02d}"
                runs = clone.get("runs")
                if isinstance(runs, list):
                    for run in runs:
                        if isinstance(run, dict) and run.get("run_id"):
                            run["run_id"] = f"{run['run_id']}-copy{k:02d}"
                clones.append(clone)
            sessions.insert_many(clones)
        return sessions.count_documents({})


@pytest.fixture
def fresh_databases(mongo_server):
    """``make(point, prepare=None) -> name``: fresh databases on the session's mongod loaded with a
    fixture point (then ``prepare(url, name)``), all dropped afterwards."""
    from pymongo import MongoClient

    names: list[str] = []

    def make(point: str, prepare=None) -> str:
        name = f"amt_many_{len(names)}_{os.getpid()}"
        names.append(name)
        load_mongo_fixture(mongo_server.url, name, point)
        if prepare:
            prepare(mongo_server.url, name)
        return name

    yield make
    with MongoClient(mongo_server.url) as c:
        for name in names:
            c.drop_database(name)


def assert_killed_runs_resume(url: str, make, point: str, prepare, kills) -> dict:
    """Upgrade a reference database, then for each (where, after) kill a runner there (KILLER) and
    re-run the CLI: the result must equal the reference. Returns the reference dump."""
    from pymongo import MongoClient

    reference = make(point, prepare)
    agno_migrate.upgrade(target_of(url, reference))
    expected = head_dump(url, reference)
    legacy = {c: dump(url, reference, c, "session_id") for c in LEGACY}
    for where, after in kills:
        name = make(point, prepare)
        child = subprocess.run(
            [sys.executable, "-c", KILLER, url, name, where, str(after)], capture_output=True, text=True
        )
        assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]
        with MongoClient(url) as c:
            assert c[name][target_of(url, name).version_table].find_one({"_id": "lock"}) is not None  # left behind
            partial = c[name]["agno_sessions"].count_documents({})
        assert partial <= len(expected[0]), (where, after)
        done = cli(url, name, "--lock-timeout", "60", "upgrade")  # takes the lock over after its 2 s lease
        assert done.returncode == 0, done.stderr
        assert head_dump(url, name) == expected, (where, after)
        assert {c: dump(url, name, c, "session_id") for c in LEGACY} == legacy
        assert cli(url, name, "check").returncode == 0
    return {"reference": reference}


# --- the lineage ----------------------------------------------------------------------------------


def test_the_mongo_steps_mirror_the_registry():
    assert mongo_step.registry_mismatches() == []
    assert list(mongo_step.step_modules()) == [v.version for v in registry.VERSIONS]


@pytest.mark.parametrize("point", POINTS)
def test_fixture_point_upgrades_to_head_with_nothing_lost(mongo_url, point):
    url, name = mongo_url
    load_mongo_fixture(url, name, point)
    legacy_before = {c: dump(url, name, c, "session_id") for c in LEGACY} if point == "v1" else {}
    done = cli(url, name, "upgrade")
    assert done.returncode == 0, done.stderr
    checked = cli(url, name, "check")
    assert checked.returncode == 0, checked.stderr

    expected = expected_sessions(point)
    with client(url) as c:
        ids = {d["session_id"] for d in c[name]["agno_sessions"].find({}, {"session_id": 1})}
        string_fields = c[name]["agno_sessions"].count_documents({"session_data": {"$type": "string"}})
        stamps = {d["table_name"]: d["version"] for d in c[name]["agno_schema_versions"].find()}
    assert ids == {s["session_id"] for s in expected}
    runs = stored_runs(url, name)
    for session in expected:
        assert runs.get(session["session_id"], []) == [r["run_id"] for r in session["runs"]], session["session_id"]
    assert sum(len(s["runs"]) for s in expected) > 0
    assert string_fields == 0
    assert stamps["agno_sessions"] == registry.HEAD.agno_stamp and stamps["agno_runs"] == registry.HEAD.agno_stamp
    assert {c: dump(url, name, c, "session_id") for c in legacy_before} == legacy_before

    again = agno_migrate.upgrade(target_of(url, name))
    assert again.applied == [] and not again.created and again.after == HEAD
    assert stored_runs(url, name) == runs

    store = agno_migrate.MongoDb(db_url=url, db_name=name)  # and our store reads every one of them
    read, total = store.get_sessions(sort_by="session_id", sort_order="asc")
    assert total == len(expected) and [s.session_id for s in read] == sorted(s["session_id"] for s in expected)
    by_id = {s.session_id: s for s in read}
    for session in expected:
        got = by_id[session["session_id"]]
        assert got.session_type == session["session_type"] and got.user_id == session["user_id"]
        top = [r.run_id for r in got.runs if not r.parent_run_id]
        assert top == [r["run_id"] for r in session["runs"]], session["session_id"]


@pytest.mark.agno
@pytest.mark.parametrize("point", POINTS)
def test_real_agno_reads_every_upgraded_session(mongo_url, tmp_path, point):
    """Agno 3.1.10's MongoDb (the reference environment, tests/agno_side/env.py) reads every session
    and run as the fixture's expected file says (tests/agno_side/agno_verify.py); ../shared/tools
    agrees where it is present."""
    url, name = mongo_url
    load_mongo_fixture(url, name, point)
    agno_migrate.upgrade(target_of(url, name))
    expected = tmp_path / "expected.jsonl"
    expected.write_bytes(lzma.decompress((FIXTURES / point / f"{expected_name(point)}.xz").read_bytes()))
    result = agno_env.verify(url, expected, schema=name)
    n = len(expected_sessions(point))
    assert result.ok and result.summary == f"verified {n}/{n} sessions, 0 mismatches", result.output
    shared_tools.cross_check(url, expected, "--mongo-db", name)


def test_a_fresh_database_is_created_at_head(mongo_url):
    url, name = mongo_url
    done = cli(url, name, "upgrade")
    assert done.returncode == 0 and f"created agno_sessions at {HEAD}" in done.stdout, done.stderr
    assert cli(url, name, "check").returncode == 0
    with client(url) as c:
        indexes = {n for n in c[name]["agno_runs"].index_information()}
    assert {"run_id_1", "session_id_1_run_index_1", "parent_run_id_1"} <= indexes
    assert [d["action"] for d in mongo_state.history(client(url)[name], target_of(url, name))] == ["create"]


# --- concurrency, crashes, the lock ---------------------------------------------------------------


def test_replicas_upgrade_together_and_each_step_runs_once(mongo_url):
    url, name = mongo_url
    load_mongo_fixture(url, name, "2.0.0")
    env = {k: v for k, v in os.environ.items() if k != "AGNO_DB_URL"}
    procs = [
        subprocess.Popen(
            [CLI, "--db-url", url, "--db-schema", name, "--lock-timeout", "120", "upgrade"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for _ in range(REPLICAS)
    ]
    results = [(p.wait(timeout=300), *p.communicate()) for p in procs]
    assert [rc for rc, _, _ in results] == [0] * REPLICAS, [err for _, _, err in results]
    assert sum("upgraded agno_sessions" in out for _, out, _ in results) == 1
    db = client(url)[name]
    target = target_of(url, name)
    steps = {(r["version"], r["direction"]): r["attempts"] for r in mongo_state.step_records(db, target)}
    assert steps == {(v.version, "upgrade"): 1 for v in registry.steps_up("2.0.0", HEAD)}
    actions = [(h["version"], h["action"]) for h in mongo_state.history(db, target)]
    assert actions == [("2.0.0", "detect")] + [(v.version, "upgrade") for v in registry.steps_up("2.0.0", HEAD)]
    expected = expected_sessions("2.0.0")
    assert sum(len(v) for v in stored_runs(url, name).values()) == sum(len(s["runs"]) for s in expected)
    assert db[target.version_table].find_one({"_id": "lock"}) is None


KILLER = textwrap.dedent(
    """
    import os, signal, sys
    import agno_migrate
    from agno_migrate.migrate.mongo import state as mongo_state
    from agno_migrate.migrate.mongo import step as mongo_step
    from agno_migrate.target import Target
    url, name, where, after = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    seen = {"n": 0}
    def die_after(original):
        def dying(*args, **kwargs):
            result = original(*args, **kwargs)
            seen["n"] += 1
            if seen["n"] > after:
                os.kill(os.getpid(), signal.SIGKILL)
            return result
        return dying
    if where == "mid-batch":  # runs of a batch written, its checkpoint not yet
        mongo_step.MongoStep.insert_runs = die_after(mongo_step.MongoStep.insert_runs)
    elif where == "before-record":  # a step's effect done, its record not yet
        mongo_state.write_agno_stamps = die_after(mongo_state.write_agno_stamps)
    else:  # between batches
        mongo_step.MongoStep.done_batch = die_after(mongo_step.MongoStep.done_batch)
    agno_migrate.upgrade(Target.from_url(url, schema=name, lock_lease=2))
    """
)


def test_killed_mid_step_the_rerun_gives_the_same_database(mongo_server, fresh_databases):
    kills = (("mid-batch", 0), ("between", 1), ("mid-batch", 3), ("before-record", 1))
    assert_killed_runs_resume(
        mongo_server.url, fresh_databases, "2.0.0", lambda u, n: multiply_sessions(u, n, 5), kills
    )


def multiply_agent_collection(url: str, name: str) -> None:
    """More Agno 1.x documents to interrupt: copies of agent_sessions under new session ids."""
    with client(url) as c:
        agents = c[name]["agent_sessions"]
        docs = list(agents.find({}, {"_id": 0}))
        for k in range(1, 4):
            agents.insert_many([{**d, "session_id": f"{d['session_id']}-copy{k}"} for d in docs])


def test_killed_legacy_import_resumes_to_the_same_database(mongo_server, fresh_databases):
    url = mongo_server.url
    kills = (("mid-batch", 0), ("between", 2), ("mid-batch", 2))
    made = assert_killed_runs_resume(url, fresh_databases, "v1", multiply_agent_collection, kills)
    legacy = {c: dump(url, made["reference"], c, "session_id") for c in LEGACY}
    fresh = fresh_databases("v1", multiply_agent_collection)
    assert {c: dump(url, fresh, c, "session_id") for c in LEGACY} == legacy  # the import only read them


def test_a_live_lock_is_renewed_and_not_taken(mongo_url):
    url, name = mongo_url
    holder_target = target_of(url, name, lock_lease=1.0)
    db = database(holder_target)
    release = threading.Event()

    def hold():
        with mongo_state.MongoLock(db, holder_target):
            release.wait(20)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        time.sleep(0.5)
        waiting = cli(url, name, "--lock-timeout", "3", "--lock-lease", "1", "upgrade")  # 3 leases long
        assert waiting.returncode == 6, waiting.stderr
        assert "holds the migration lock" in waiting.stderr and len(waiting.stderr.strip().splitlines()) == 1
    finally:
        release.set()
        thread.join()
    assert cli(url, name, "--lock-timeout", "5", "upgrade").returncode == 0


def test_a_lost_lease_stops_the_runner(mongo_url):
    url, name = mongo_url
    target = target_of(url, name, lock_lease=0.5)
    db = database(target)
    lock = mongo_state.MongoLock(db, target)
    lock.acquire()
    try:
        db[target.version_table].update_one({"_id": "lock"}, {"$set": {"owner": "someone-else"}})
        deadline = time.monotonic() + 5
        while not lock.lost and time.monotonic() < deadline:
            time.sleep(0.05)
        with pytest.raises(agno_migrate.LockTimeout, match="taken over"):
            lock.check()
    finally:
        lock.release()
    assert db[target.version_table].find_one({"_id": "lock"})["owner"] == "someone-else"  # not ours to delete


# --- detection, drift, errors ---------------------------------------------------------------------


def test_a_stamp_contradicting_string_documents_is_drift(mongo_url):
    url, name = mongo_url
    load_mongo_fixture(url, name, "2.0.0")
    with client(url) as c:
        c[name]["agno_schema_versions"].insert_one({"table_name": "agno_sessions", "version": "2.5.0", "updated_at": 0})
    status = agno_migrate.current(target_of(url, name))
    assert status.version == "2.0.0" and not status.managed
    assert status.drift and "JSON as strings" in status.drift[0]
    done = cli(url, name, "check")
    assert done.returncode == 4, done.stderr


def test_a_missing_index_at_head_is_drift(mongo_url):
    url, name = mongo_url
    assert cli(url, name, "upgrade").returncode == 0
    with client(url) as c:
        c[name]["agno_runs"].drop_index("session_id_1_run_index_1")
    done = cli(url, name, "check")
    assert done.returncode == 4 and "session_id_1_run_index_1" in done.stderr, done.stderr


def test_a_version_from_the_future_is_refused(mongo_url):
    url, name = mongo_url
    assert cli(url, name, "upgrade").returncode == 0
    with client(url) as c:
        c[name][target_of(url, name).version_table].update_one({"_id": "version"}, {"$set": {"version": "9.0.0"}})
    for command in ("current", "check", "upgrade"):
        done = cli(url, name, command)
        assert done.returncode == 3 and "9.0.0" in done.stderr, (command, done.stderr)


def test_sql_is_not_applicable_and_irreversible_downgrades_refused(mongo_url):
    url, name = mongo_url
    load_mongo_fixture(url, name, "2.5.0")
    before = dump(url, name, "agno_sessions", "session_id")
    rendered = cli(url, name, "upgrade", "--sql")
    assert rendered.returncode == 2 and "not applicable to MongoDB" in rendered.stderr
    assert dump(url, name, "agno_sessions", "session_id") == before
    assert cli(url, name, "upgrade", "--to", "2.5.0").returncode == 0
    down = cli(url, name, "downgrade", "--to", "2.3.0")
    assert down.returncode == 0, down.stderr
    assert agno_migrate.current(target_of(url, name)).version == "2.3.0"
    assert cli(url, name, "upgrade").returncode == 0
    refused = cli(url, name, "downgrade", "--to", "2.5.0")
    assert refused.returncode == 8 and "irreversible" in refused.stderr
    assert agno_migrate.current(target_of(url, name)).version == HEAD


def test_unreadable_legacy_documents_are_reported(mongo_url, tmp_path):
    url, name = mongo_url
    load_mongo_fixture(url, name, "v1")
    with client(url) as c:
        agents = c[name]["agent_sessions"]
        bad = [d["session_id"] for d in agents.find({}, {"session_id": 1}).sort("session_id", 1).limit(2)]
        agents.update_one({"session_id": bad[0]}, {"$set": {"memory": [1, 2]}})
        agents.update_one({"session_id": bad[1]}, {"$set": {"session_data": "not json"}})
    before = {c: dump(url, name, c, "session_id") for c in LEGACY}
    done = cli(url, name, "upgrade", cwd=tmp_path)
    assert done.returncode == 9, done.stderr
    assert "2 Agno 1.x row(s) could not be read" in done.stderr and "Traceback" not in done.stderr
    report = [json.loads(line) for line in (tmp_path / "agno-migrate-report.jsonl").read_text().splitlines()]
    assert sorted(r["session_id"] for r in report) == sorted(bad)
    assert {c: dump(url, name, c, "session_id") for c in LEGACY} == before
    with client(url) as c:
        assert c[name]["agno_sessions"].count_documents({}) == 200 - 2


def test_unreachable_and_malformed_urls_are_one_line(mongo_server):
    port = mongo_server.url.split(":")[2].split("/")[0]
    cases = [
        ("mongodb://127.0.0.1:1/x?serverSelectionTimeoutMS=500", 5, "cannot connect"),
        (f"mongodb://user:hunter2secret@127.0.0.1:{port}/x", 5, "authentication failed"),
        ("mongodb://:::bad", 2, "malformed database URL"),
    ]
    for url, code, text in cases:
        done = subprocess.run([CLI, "--db-url", url, "current"], capture_output=True, text=True, timeout=60)
        assert done.returncode == code and text in done.stderr, (url, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1 and "hunter2secret" not in done.stderr + done.stdout
