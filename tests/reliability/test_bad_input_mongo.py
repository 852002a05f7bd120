"""Bad input on MongoDB: the cases of test_bad_input.py that apply to a mongodb:// URL. Each ends
in one line on stderr (no traceback), the README's exit code, and the database unchanged (every
collection's documents and indexes compared before and after: support.full_state) — or, where the
tool takes the input (a 10 MB session, an empty Agno 1.x collection, two collections holding one
session id), the documented outcome with the source documents intact.

Every URL carries the suite's password, through a user of the test mongod that needs it.
"""

from __future__ import annotations

import json

import pytest

import agno_migrate

from .mongo_support import dump, opened
from .support import (
    HEAD,
    SECRET_QUOTED,
    cli,
    full_state,
    holding,
    legacy_state,
    load_point,
    note_case,
    one_line,
    run,
    session,
    succeeded,
    version_rows,
)
from .test_bad_input import NASTY_NAMES

pytestmark = pytest.mark.backends("mongodb")


def at_head(db) -> None:
    succeeded(cli("upgrade", url=db.url))


def stored_runs(db) -> dict[str, dict]:
    with opened(db.url) as (mdb, target):
        return {d["run_id"]: d["run_data"] for d in mdb[target.runs_table].find({}, {"_id": 0})}


# --- URLs, names, versions: usage errors (exit 2) --------------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["mongodb://:::bad", f"mongodb://u:{SECRET_QUOTED}@127.0.0.1:notaport/x", "mongodb://127.0.0.1:99999/x",
     "mongodb://", f"mongodb://u:{SECRET_QUOTED}@/x",
     "mongodb://127.0.0.1/x?replicaSet=rs0&w=nope&ssl=maybe"],
    ids=["colons", "bad-port", "port-out-of-range", "no-host", "no-host-with-password", "bad-option"],
)  # fmt: skip
def test_malformed_mongo_url(backend, url, tmp_path):
    note_case("malformed URL")
    result = cli("upgrade", url=url, cwd=tmp_path)
    line = one_line(result, 2)
    assert "mongodb" in line.lower() or "URL" in line, line
    assert "s3cret" not in result.out + result.err


def test_bad_collection_and_database_names(rdb, backend, tmp_path):
    note_case("table name with quotes, spaces, semicolons or SQL")
    note_case("schema name with quotes, spaces, semicolons or SQL")
    db = rdb(backend)
    db.load("2.5.0")
    before = full_state(db)
    for name in NASTY_NAMES + ("a$b", "a.b", "system.users"):
        for args in (("--session-table", name, "upgrade"), ("--runs-table", name, "check"),
                     ("upgrade", "--legacy-table", name), ("--db-schema", name, "upgrade")):  # fmt: skip
            line = one_line(cli(*args, url=db.url, cwd=tmp_path), 2)
            assert "invalid" in line and "name" in line, line
    assert full_state(db) == before


def test_unknown_versions(rdb, backend, tmp_path):
    note_case("stamp of an unknown version")
    db = rdb(backend)
    at_head(db)
    before = full_state(db)
    for args in (("stamp", "9.9.9"), ("stamp", "2.0.0'; db.dropDatabase(); //"), ("upgrade", "--to", "9.9.9"),
                 ("downgrade", "--to", "1.0.0"), ("plan", "--to", "latest")):  # fmt: skip
        line = one_line(cli(*args, url=db.url, cwd=tmp_path), 2)
        assert "unknown schema version" in line, line
    assert full_state(db) == before


def test_sql_is_not_applicable(rdb, backend, tmp_path):
    note_case("--sql on MongoDB")
    db = rdb(backend)
    db.load("2.0.0")
    before = full_state(db)
    assert "not applicable to MongoDB" in one_line(cli("upgrade", "--sql", url=db.url, cwd=tmp_path), 2)
    assert full_state(db) == before


# --- reaching the server (exit 5) ------------------------------------------------------------------


def test_unreachable_host(backend, tmp_path):
    note_case("unreachable host")
    url = f"mongodb://agno:{SECRET_QUOTED}@127.0.0.1:1/agno?authSource=admin"
    for command in ("upgrade", "check"):
        line = one_line(cli(command, url=url, cwd=tmp_path), 5)
        assert "cannot connect" in line, line


def test_wrong_password(backend, rdb, mongo_secret_user, tmp_path):
    """The test mongod runs without --auth, but it checks the credentials a client presents: the
    suite's user with a wrong password (and a user that does not exist) is refused."""
    note_case("wrong password")
    db = rdb(backend)
    wrong = "Wr0ng-pw-given"
    for url in (db.url.replace(SECRET_QUOTED, wrong), db.url.replace(mongo_secret_user, "amt_no_such_user")):
        assert url != db.url
        for command in ("upgrade", "current"):
            result = cli(command, url=url, cwd=tmp_path)
            line = one_line(result, 5)
            assert "cannot connect" in line and "authentication failed" in line, line
            assert wrong not in result.out + result.err
    with opened(db.url) as (mdb, _):
        assert mdb.list_collection_names() == []  # nothing was created
    succeeded(cli("current", url=db.url, cwd=tmp_path))  # the password was the only thing wrong


# --- versions the tool does not take (exit 3, 8) ---------------------------------------------------


def test_database_ahead_of_this_tool(rdb, backend, tmp_path):
    note_case("database ahead of this tool (our version table)")
    db = rdb(backend)
    at_head(db)
    with opened(db.url) as (mdb, target):
        mdb[target.version_table].update_one({"_id": "version"}, {"$set": {"version": "9.0.0"}})
    before = full_state(db)
    for args in (
        ("upgrade",),
        ("check",),
        ("current",),
        ("plan",),
        ("downgrade", "--to", "2.0.0"),
        ("--json", "upgrade"),
    ):
        result = cli(*args, url=db.url, cwd=tmp_path)
        if "--json" in args:
            assert result.code == 3 and result.err == "" and json.loads(result.out)["exit_code"] == 3
        else:
            assert "9.0.0" in one_line(result, 3)
    assert full_state(db) == before


def test_agno_stamp_ahead_of_this_tool(rdb, backend, tmp_path):
    note_case("Agno's stamp newer than this tool")
    db = rdb(backend)
    db.load("2.5.0")
    with opened(db.url) as (mdb, target):
        mdb[target.agno_versions_table].insert_one(
            {"table_name": target.session_table, "version": "9.9.0", "updated_at": 0}
        )
    before = full_state(db)
    for command in ("upgrade", "check", "plan"):
        assert "9.9.0" in one_line(cli(command, url=db.url, cwd=tmp_path), 3)
    assert full_state(db) == before


def test_downgrade_to_an_irreversible_version(rdb, backend, tmp_path):
    note_case("downgrade over an irreversible version")
    db = rdb(backend)
    at_head(db)
    before = full_state(db)
    line = one_line(cli("downgrade", "--to", "2.5.0", url=db.url, cwd=tmp_path), 8)
    assert "irreversible" in line and "nothing was changed" in line
    assert "downgrade" in one_line(cli("upgrade", "--to", "2.0.0", url=db.url, cwd=tmp_path), 8)
    assert full_state(db) == before


# --- drift (exit 4) --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["index missing", "index not unique", "collection missing"])
def test_drifted_schema_at_head_fails_check(rdb, backend, kind, tmp_path):
    note_case(f"drifted schema: {kind}")
    db = rdb(backend)
    at_head(db)
    with opened(db.url) as (mdb, target):
        runs = mdb[target.runs_table]
        if kind == "index missing":
            runs.drop_index("session_id_1_run_index_1")
            said = "index session_id_1_run_index_1 on agno_runs is missing: agno-migrate upgrade creates them"
        elif kind == "index not unique":
            runs.drop_index("run_id_1")
            runs.create_index("run_id", name="run_id_1")
            said = "agno_runs index run_id_1 is not unique"
        else:
            runs.drop()
            said = "collection agno_runs is missing"
    before = full_state(db)
    line = one_line(cli("check", url=db.url, cwd=tmp_path), 4)
    assert said in line, line
    assert full_state(db) == before


def test_agno_stamp_contradicting_the_physical_state(rdb, backend, tmp_path):
    """Agno's stamp says 2.5.0 on documents that hold JSON strings (2.0.0): check names the drift
    (exit 4) and changes nothing; upgrade says it and lets the physical state win."""
    note_case("Agno stamp contradicting the physical schema")
    db = rdb(backend)
    db.load("2.0.0")
    with opened(db.url) as (mdb, target):
        mdb[target.agno_versions_table].insert_one(
            {"table_name": target.session_table, "version": "2.5.0", "updated_at": 0}
        )
    before = full_state(db)
    line = one_line(cli("check", url=db.url, cwd=tmp_path), 4)
    assert "2.5.0" in line and "JSON as strings" in line, line
    assert full_state(db) == before
    done = succeeded(cli("upgrade", url=db.url, cwd=tmp_path))
    assert any(out.startswith("drift:") and "2.5.0" in out for out in done.out.splitlines()), done.out
    assert version_rows(db.url)[0] == ("2.0.0", "v2_0_0", "detect")
    succeeded(cli("check", url=db.url, cwd=tmp_path))


# --- data the tool meets ---------------------------------------------------------------------------


def test_corrupt_json_strings_in_a_2_0_0_session(rdb, backend, tmp_path):
    """Agno 2.0.0 documents hold their JSON fields as strings; one whose strings are not JSON:
    exit 9 naming it (one more than the fixture's own unconvertible sessions), its strings kept as
    they were, every other run copied as without it."""
    note_case("corrupt JSON in a session row")
    reference, db = rdb(backend), rdb(backend)
    reference.load("2.0.0")
    baseline = cli("upgrade", url=reference.url, cwd=tmp_path)
    assert baseline.code in (0, 9), baseline.err
    int(baseline.err.split(" session(s)")[0].rsplit(" ", 1)[1]) if baseline.code == 9 else 0
    db.load("2.0.0")
    corrupt = {"session_id": "corrupt-1", "session_type": "agent", "created_at": 1700000000,
               "runs": '[{"run_id": "corrupt-r1", "content": ', "session_data": "{not json"}  # fmt: skip
    with opened(db.url) as (mdb, target):
        mdb[target.session_table].insert_one(dict(corrupt))
    result = cli("upgrade", url=db.url, cwd=tmp_path)
    line = one_line(result, 9)
    assert "session(s) had runs that could not be converted" in line, line  # how many: the test below
    assert "session corrupt-1:" in result.out, result.out
    with opened(db.url) as (mdb, target):
        kept = mdb[target.session_table].find_one({"session_id": "corrupt-1"}, {"_id": 0})
    assert {k: kept.get(k) for k in corrupt} == corrupt
    runs = stored_runs(db)
    assert runs == stored_runs(reference) and runs and "corrupt-r1" not in runs


@pytest.mark.parametrize("via", ["cli", "library"])
def test_an_integer_beyond_64_bits_in_a_2_0_0_session(rdb, backend, via, tmp_path):
    """BSON holds no integer beyond 64 bits: a 2.0.0 document whose JSON strings hold one does not block
    the upgrade. Its strings are kept as they were (nothing lost), the session named, exit 9; its other
    run, and every other session, converted as without it; `check` then passes (the documented rule:
    README, "Values a backend cannot hold")."""
    note_case("an integer beyond 64 bits in a MongoDB JSON string")
    db = rdb(backend)
    db.load("2.0.0")
    runs = [run("huge-r0", content="x", tokens=123456789012345678901234567890), run("huge-r1", content="y")]
    huge = {**session("huge-1", None), "runs": json.dumps(runs), "session_data": json.dumps({"n": 2**70})}
    with opened(db.url) as (mdb, target):
        mdb[target.session_table].insert_one(dict(huge))
    if via == "cli":
        result = cli("upgrade", url=db.url, cwd=tmp_path)
        line = one_line(result, 9)
        assert "1 session(s) had runs that could not be converted" in line, line
        named = [out for out in result.out.splitlines() if out.startswith("session huge-1:")]
        assert len(named) == 2 and all("integer beyond 64 bits" in out for out in named), result.out
    else:
        report = agno_migrate.upgrade(db.url).report
        assert sorted(u.session_id for u in report.unparseable) == ["huge-1", "huge-1"]
        assert all("integer beyond 64 bits" in u.reason for u in report.unparseable)
    with opened(db.url) as (mdb, target):
        kept = mdb[target.session_table].find_one({"session_id": "huge-1"}, {"_id": 0})
    assert kept["runs"] == huge["runs"] and kept["session_data"] == huge["session_data"]
    stored = stored_runs(db)
    assert "huge-r0" not in stored and stored["huge-r1"]["content"] == "y"
    assert len(stored) > 100  # the fixture's own sessions' runs
    succeeded(cli("check", url=db.url, cwd=tmp_path))


def test_corrupt_json_strings_counted_once_per_session(rdb, backend, tmp_path):
    """One 2.0.0 document whose runs and session_data strings are not JSON meets two steps (2.3.0:
    both strings; 3.0.0: its runs): exit 9's line counts it once, as one session."""
    db = rdb(backend)
    db.load("2.5.0")
    with opened(db.url) as (mdb, target):
        mdb[target.session_table].insert_one({"session_id": "corrupt-1", "session_type": "agent", "created_at": 1,
                                              "runs": "[{", "session_data": "{not json"})  # fmt: skip
    line = one_line(cli("upgrade", url=db.url, cwd=tmp_path), 9)
    assert "1 session(s) had runs that could not be converted" in line, line


def test_a_ten_megabyte_session(rdb, backend, tmp_path):
    """A 2.0.0 document holding 10 MB of runs as a JSON string (BSON's limit is 16 MB)."""
    note_case("a 10 MB session")
    db = rdb(backend)
    db.load("2.0.0")
    piece = "".join(chr(0x20 + (i * 7) % 90) for i in range(997)) + "€ü😀"
    runs = [run(f"big-r{k}", content=piece * 1000, messages=[{"role": "user", "content": f"{k}"}]) for k in range(10)]
    assert len(json.dumps(runs)) > 10_000_000
    with opened(db.url) as (mdb, target):
        mdb[target.session_table].insert_one({**session("big-1", None), "runs": json.dumps(runs)})
    succeeded(cli("upgrade", url=db.url, cwd=tmp_path))
    stored = stored_runs(db)
    for k in range(10):
        got = stored[f"big-r{k}"]
        assert got["content"] == runs[k]["content"] and got["messages"] == runs[k]["messages"], k
    succeeded(cli("check", url=db.url, cwd=tmp_path))


def test_an_empty_legacy_collection(rdb, backend, tmp_path):
    """An empty Agno 1.x collection has no document to recognise it by: upgrade creates head and
    imports nothing (the collections left as they are); named with --legacy-table NAME:MODE it is
    imported as zero sessions and checkpointed, and not again."""
    note_case("an empty Agno 1.x table")
    db = rdb(backend)
    db.load("v1")
    with opened(db.url) as (mdb, _):
        for name in ("agent_sessions", "team_sessions", "workflow_sessions", "workflow_v2_sessions"):
            mdb[name].delete_many({})
    before = legacy_state(db)
    done = succeeded(cli("upgrade", url=db.url, cwd=tmp_path))
    assert f"created agno_sessions at {HEAD}" in done.out and "imported" not in done.out, done.out
    named = succeeded(cli("upgrade", "--legacy-table", "agent_sessions:agent", url=db.url, cwd=tmp_path))
    assert "imported 0 Agno 1.x sessions" in named.out, named.out
    again = succeeded(cli("upgrade", "--legacy-table", "agent_sessions:agent", url=db.url, cwd=tmp_path))
    assert "imported" not in again.out, again.out
    succeeded(cli("check", url=db.url, cwd=tmp_path))
    assert legacy_state(db) == before


def test_two_legacy_collections_holding_the_same_session_id(rdb, backend, tmp_path):
    note_case("two Agno 1.x tables holding the same session id")
    db = rdb(backend)
    db.load("v1")
    with opened(db.url) as (mdb, _):
        team_id = mdb["team_sessions"].find_one({}, sort=[("session_id", 1)])["session_id"]
        agent = mdb["agent_sessions"].find_one({}, {"_id": 0}, sort=[("session_id", 1)])
        mdb["agent_sessions"].insert_one({**agent, "session_id": team_id})
    before = legacy_state(db)
    done = succeeded(cli("upgrade", url=db.url, cwd=tmp_path))
    warnings = [line for line in done.out.splitlines() if line.startswith("warning:")]
    assert any("1 session id(s) already stored with other content; not overwritten" in w for w in warnings), done.out
    assert done.err == ""
    report = [json.loads(line) for line in (tmp_path / "agno-migrate-report.jsonl").read_text().splitlines()]
    assert [(r["kind"], r["session_id"]) for r in report] == [("collision", team_id)]
    assert legacy_state(db) == before
    with opened(db.url) as (mdb, target):
        assert dump(mdb, "team_sessions")  # untouched, and one session stored under the id
        assert mdb[target.session_table].count_documents({"session_id": team_id}) == 1


# --- the lock (exit 6) -----------------------------------------------------------------------------


@pytest.mark.parametrize("point", ["2.0.0", "v1"])
def test_lock_held_by_another_upgrade_past_the_timeout(rdb, backend, point, tmp_path):
    """Another agno-migrate process is mid-step and holds the lease (renewing it): a second upgrade
    gives up after --lock-timeout (shorter than the lease) with one line (exit 6), changing nothing."""
    note_case("a lock held by another process past --lock-timeout")
    db = rdb(backend)
    load_point(db, point, generated=100, copies=1)
    with holding(db.url, cwd=tmp_path):
        before = full_state(db)
        result = cli("--lock-timeout", "1", "upgrade", url=db.url, cwd=tmp_path)
        line = one_line(result, 6)
        assert "lock" in line and "--lock-timeout" in line, line
        assert full_state(db) == before
    succeeded(cli("check", url=db.url, cwd=tmp_path))
