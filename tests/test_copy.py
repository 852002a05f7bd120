"""agno-migrate copy: every fixture point (Agno 1.x included) from every backend that has it to every
backend, on real servers; what it gives is what an upgrade in place gives; the source is never
written; a killed copy resumes to the same target; a non-empty target is refused; values the
target cannot hold are counted and named; no password is ever shown."""

from __future__ import annotations

import json
import signal
import subprocess
import uuid
from urllib.parse import quote

import pytest
from conftest import (
    FIXTURES,
    Database,
    _create_mysql,
    _create_pg,
    _drop_mongo,
    execute_autocommit,
    expected_sessions,
    mongo_url_with_database,
)
from copy_support import BACKENDS, agno_reads, content_digest, has_fixture
from test_cli import CLI, as_json, clean_env, cli, failed, ok

import agno_migrate
from agno_migrate.move.sink import CHECKPOINT_TABLE, TEST_KILL

POINTS = sorted(p.name for p in FIXTURES.iterdir() if p.is_dir())
MATRIX = [(s, p, d) for p in POINTS for s in BACKENDS if has_fixture(s, p) for d in BACKENDS]


def _default(case: tuple[str, str, str]) -> bool:
    """The pairs of the default suite: each source into two targets, rotating with the point, so that
    every point reaches every target backend (every pair: ``--stress``)."""
    s, p, d = case
    shift = BACKENDS.index(s) + POINTS.index(p)
    return d in (BACKENDS[(shift + 1) % 4], BACKENDS[(shift + 2) % 4])


# the real Agno (the project's verifier, then ../shared/tools/verify_with_agno.sh where it sits beside
# the clone) reads a copy of every point: by default from two pairs each (every source and target
# backend met), from every pair with --stress
AGNO_DEFAULT = {
    ("sqlite", "v1", "postgresql"), ("mongodb", "v1", "mysql"),
    ("postgresql", "2.0.0", "mongodb"), ("mongodb", "2.0.0", "sqlite"),
    ("sqlite", "2.3.0", "mysql"), ("mongodb", "2.3.0", "postgresql"),
    ("mysql", "2.5.0", "mongodb"), ("postgresql", "2.5.0", "sqlite"),
    ("sqlite", "2.6.0", "mongodb"), ("mysql", "2.6.0", "postgresql"),
    ("postgresql", "3.1.10", "mysql"), ("mongodb", "3.1.10", "sqlite"),
}  # fmt: skip


def pytest_generate_tests(metafunc):
    full = metafunc.config.getoption("--stress")
    if "agno_case" in metafunc.fixturenames:
        cases = [case for case in MATRIX if full or case in AGNO_DEFAULT]
        metafunc.parametrize("agno_case", cases, ids=["-".join(c) for c in cases])
    if "copy_case" in metafunc.fixturenames:
        cases = [case for case in MATRIX if full or _default(case)]
        metafunc.parametrize("copy_case", cases, ids=["-".join(c) for c in cases])


@pytest.fixture(scope="module")
def in_place(tmp_path_factory, request):
    """``in_place(backend, point)``: the URL of the fixture point upgraded in place on ``backend``
    (made once per module, dropped at its end)."""
    made: dict = {}
    drops = []

    def get(backend: str, point: str) -> str:
        if (backend, point) not in made:
            if backend == "sqlite":
                path = tmp_path_factory.mktemp("inplace") / "db.sqlite"
                db = Database("sqlite", f"sqlite:///{path}", path)
            elif backend == "mongodb":
                server = request.getfixturevalue("mongo_server").url
                name = f"amt_{uuid.uuid4().hex[:12]}"
                drops.append(lambda: _drop_mongo(server, name))
                db = Database("mongodb", mongo_url_with_database(server, name), db_name=name, server_url=server)
            else:
                url, drop = _create_pg() if backend == "postgresql" else _create_mysql()
                drops.append(drop)
                db = Database(backend, url)
            db.load(point)
            agno_migrate.upgrade(db.url)
            made[(backend, point)] = db.url
        return made[(backend, point)]

    yield get
    for drop in drops:
        drop()


def _copied(new_database, src: str, point: str, dst: str):
    source = new_database(src)
    source.load(point)
    target = new_database(dst)
    before = content_digest(source)
    outcome = agno_migrate.copy(source.url, target.url, verify=True)
    assert outcome.exit_code == 0, outcome.as_dict()
    assert content_digest(source) == before, "the source was written"
    return source, target, outcome


def test_copy_gives_what_an_upgrade_in_place_gives(new_database, in_place, copy_case):
    src, point, dst = copy_case
    source, target, outcome = _copied(new_database, src, point, dst)
    expected = expected_sessions(point, src)
    assert outcome.verify.equal and not outcome.problems
    assert outcome.sessions == len(expected) and outcome.runs == outcome.verify.tables[1].rows[1] > 0
    assert agno_migrate.check(target.url).at_head  # head schema, our record, Agno's stamps, every index
    same = agno_migrate.verify(in_place(src, point), target.url)  # same ids, same values
    assert same.equal, same.as_dict()


@pytest.mark.agno
def test_the_real_agno_reads_the_copy(new_database, tmp_path, agno_case):
    src, point, dst = agno_case
    _source, target, _outcome = _copied(new_database, src, point, dst)
    agno_reads(target, point, src, tmp_path)


# --- resume after a kill -------------------------------------------------------------------------


def _kill_at(source_url: str, target_url: str, where: str) -> None:
    proc = subprocess.run(
        [CLI, "--db-url", source_url, "copy", "--to", target_url, "--batch", "13"],
        capture_output=True, text=True, timeout=120, env=clean_env(**{TEST_KILL: where}),
    )  # fmt: skip
    assert proc.returncode == -signal.SIGKILL, (where, proc.returncode, proc.stderr)


@pytest.mark.parametrize("dst", ["postgresql", "mongodb"])
def test_a_killed_copy_resumes_to_the_same_target(new_database, dst):
    source = new_database("sqlite")
    source.load("v1")  # four Agno 1.x tables: the cursor crosses tables
    whole = new_database(dst)
    ok(cli("copy", "--to", whole.url, "--batch", "13", url=source.url))
    # each scenario: the kill points of successive runs (a batch's number counts from the run's first)
    for kills in (["1"], ["3:mid", "2"], ["9", "2:mid"], ["16:mid"]):
        target = new_database(dst)
        for where in kills:
            _kill_at(source.url, target.url, where)
        done = ok(cli("--json", "copy", "--to", target.url, "--batch", "13", url=source.url))
        assert as_json(done)["resumed"] is True
        assert agno_migrate.verify(source.url, target.url).equal
        same = agno_migrate.verify(whole.url, target.url)
        assert same.equal and same.tables[1].rows == same.tables[1].rows[::-1], same.as_dict()
        assert agno_migrate.check(target.url).at_head  # the indexes built after the load are there
        again = cli("copy", "--to", target.url, url=source.url)  # finished: refused as any non-empty target
        assert "--if-exists" in failed(again, 8)


# --- a target that holds rows --------------------------------------------------------------------


def _session(db, session_id: str, summary: str) -> None:
    store = agno_migrate.connect(db.url)
    try:
        store.upsert_session(agno_migrate.AgentSession(session_id, agent_id="a", summary={"summary": summary}))
        store.upsert_run(session_id, {"run_id": f"{session_id}-{summary}", "content": summary})
    finally:
        store.close()


@pytest.mark.parametrize("dst", ["sqlite", "mongodb", "mysql"])
def test_a_non_empty_target_is_refused_then_skip_and_replace_merge(new_database, dst):
    source = new_database("postgresql")
    source.load("3.1.10")
    taken = expected_sessions("3.1.10", "postgresql")[0]["session_id"]
    target = new_database(dst)
    _session(target, taken, "target's")
    _session(target, "only-in-target", "target's")
    before = content_digest(target)
    line = failed(cli("copy", "--to", target.url, url=source.url), 8)
    assert "--if-exists" in line and "nothing was copied or changed" in line
    assert content_digest(target) == before

    skip = as_json(ok(cli("--json", "copy", "--to", target.url, "--if-exists", "skip", url=source.url)))
    assert skip["skipped_sessions"] == 1
    store = agno_migrate.connect(target.url)
    try:
        assert store.get_session(taken).summary == {"summary": "target's"}
        assert store.get_session("only-in-target") is not None
        n = len(expected_sessions("3.1.10", "postgresql"))
        assert store.get_sessions()[1] == n + 1
    finally:
        store.close()
    diff = agno_migrate.verify(source.url, target.url)
    assert diff.tables[0].counts == {"missing": 0, "extra": 1, "changed": 1}

    ok(cli("copy", "--to", target.url, "--if-exists", "replace", url=source.url))
    diff = agno_migrate.verify(source.url, target.url)
    assert diff.tables[0].counts == {"missing": 0, "extra": 1, "changed": 0}
    assert diff.tables[0].extra == ["only-in-target"]
    assert diff.tables[1].counts == {"missing": 0, "extra": 1, "changed": 0}  # the target's own run stays


def test_the_source_and_the_target_must_differ(new_database):
    source = new_database("sqlite")
    source.load("2.5.0")
    assert "the same database" in failed(cli("copy", "--to", source.url, url=source.url), 8)


# --- values the target cannot hold ---------------------------------------------------------------


def _odd_source(new_database):
    source = new_database("sqlite")
    source.load("3.1.10")
    import sqlalchemy as sa

    engine = source.engine()
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE agno_sessions SET metadata = :m WHERE session_id = (SELECT min(session_id) FROM agno_sessions)"
            ),
            {"m": '{"note": "a\\u0000b", "big": 12345678901234567890123}'},
        )
        first = conn.execute(sa.text("SELECT min(session_id) FROM agno_sessions")).scalar()
        conn.execute(
            sa.text("UPDATE agno_runs SET run_data = json_set(run_data, '$.huge', json('99999999999999999999999')) "
                    "WHERE run_id = (SELECT min(run_id) FROM agno_runs WHERE session_id = :s)"),
            {"s": first},
        )  # fmt: skip
    engine.dispose()
    return source, first


def test_nul_to_postgresql_is_removed_counted_and_named(new_database):
    source, first = _odd_source(new_database)
    target = new_database("postgresql")
    done = ok(cli("copy", "--to", target.url, url=source.url))
    assert f"session {first}: 1 NUL character(s) removed" in done.out
    outcome = agno_migrate.verify(source.url, target.url)
    assert outcome.equal  # (compared as PostgreSQL holds it: the NUL removed on both sides)
    store = agno_migrate.connect(target.url)
    try:
        assert store.get_session(first).metadata["note"] == "ab"
    finally:
        store.close()


def test_integers_beyond_64_bits_to_mongodb_are_named(new_database):
    source, first = _odd_source(new_database)
    target = new_database("mongodb")
    done = cli("--json", "copy", "--to", target.url, url=source.url)
    assert done.code == 9, done.err  # a run could not be copied: named, exit 9
    report = json.loads(done.out.splitlines()[0])  # (then the error line, as every exit-9 command)
    assert report["values_changed"]["big_ints_as_text"] == [[first, "metadata"]]
    [problem] = report["problems"]
    assert problem["session_id"] == first and "beyond 64 bits" in problem["what"] and not problem["copied"]
    with target.mongo() as db:
        stored = db["agno_sessions"].find_one({"session_id": first})
        assert stored["metadata"] == '{"note": "a\\u0000b", "big": 12345678901234567890123}'
    diff = agno_migrate.verify(source.url, target.url)
    assert diff.tables[0].equal and diff.tables[1].counts == {"missing": 1, "extra": 0, "changed": 0}


# --- credentials ---------------------------------------------------------------------------------


def test_no_password_is_shown(new_database):
    source = new_database("sqlite")
    source.load("2.3.0")
    target = new_database("postgresql")
    role, password = f"amt_copy_{uuid.uuid4().hex[:8]}", "Rel1ab:s3cret/pw"
    admin = target.url
    execute_autocommit(
        admin, f"CREATE ROLE {role} LOGIN PASSWORD '{password}'", f"CREATE SCHEMA ai AUTHORIZATION {role}"
    )
    try:
        url = admin.replace("postgres@", f"{role}:{quote(password, safe='')}@", 1)
        done = ok(cli("-v", "copy", "--to", url, "--verify", url=source.url))
        assert f"{role}:***@" in done.out
        for args in (("--json", "verify", "--against", url), ("copy", "--to", url)):
            result = cli(*args, url=source.url)  # (cli() asserts no password in either output)
            assert result.code in (0, 8)
    finally:
        execute_autocommit(admin, "DROP SCHEMA ai CASCADE", f"DROP ROLE {role}")


def test_library_and_cli_agree_on_the_checkpoint(new_database):
    source = new_database("sqlite")
    source.load("2.5.0")
    target = new_database("sqlite")
    outcome = agno_migrate.copy(source.url, target.url, batch=50)
    import sqlite3

    with sqlite3.connect(target.path) as conn:
        [(cursor, done, sessions)] = conn.execute(f"SELECT cursor, done, sessions FROM {CHECKPOINT_TABLE}").fetchall()
    assert done == 1 and sessions == outcome.sessions == 200
    assert cursor == max(s["session_id"] for s in expected_sessions("2.5.0", "sqlite"))
