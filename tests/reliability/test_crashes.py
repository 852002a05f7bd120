"""Crashes: the upgrading process is SIGKILLed at chosen points — inside DDL, mid-batch of a data
step, between a step and its record, between an import batch and its checkpoint — then upgrade is
run again: the end state equals an uninterrupted run (sessions, runs, version rows, checkpoints,
Agno's stamps, the physical schema), nothing is lost or duplicated, the Agno 1.x tables are
untouched, and the lock is free. Then the connection is killed under a running upgrade, and the
server is crash-restarted under one: the same.

The kill points are drawn from the statements an uninterrupted run sends (counted through
SQLAlchemy's cursor events in the child, see support.VICTIM), by a seeded random choice within a
category (support.classify): 5 points per backend by default (3 in an upgrade from 2.0.0, 2 in an
Agno 1.x import), 20 with --stress. AGNO_MIGRATE_RELIABILITY_SEED changes the draw.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time

import pytest
import sqlalchemy as sa

from agno_migrate.target import Target

from . import mongo_support
from .conftest import KILLS, stressed
from .pg_private import PrivatePostgres
from .support import (
    CLI,
    SEED,
    STATS,
    classify,
    clean_env,
    cli,
    diff_states,
    end_state,
    legacy_state,
    load_point,
    lock_is_free,
    one_line,
    record,
    succeeded,
    version_rows,
    victim,
)

SCENARIOS = ("2.0.0", "v1")
# The default kill points: (category of the statement, when the kill lands). The statement itself
# is drawn among those of its category; --stress adds points of random category and phase.
PLAN = {
    "2.0.0": [("ddl", "during"), ("data", "after"), ("record", "before")],
    "v1": [("data", "after"), ("checkpoint", "before")],
}
STRESS_CATEGORIES = {
    "2.0.0": ("ddl", "data", "record", "stamp", "read"),
    "v1": ("ddl", "data", "checkpoint", "record", "read"),
}
MONGO_STRESS = ("step",)  # MongoDB also records each step's start and end (mongo_state.start_step)
_REFERENCES: dict = {}
CONNECTION_DATA = 800  # generated sessions: five batches of the 3.0.0 copy, the first one is where it is cut


def pytest_generate_tests(metafunc):
    if "slot" not in metafunc.fixturenames:
        return
    per_backend = KILLS[stressed(metafunc.config)]
    default = sum(len(p) for p in PLAN.values())
    params = []
    for scenario in SCENARIOS:
        share = len(PLAN[scenario]) * per_backend // default
        if scenario == SCENARIOS[-1]:
            share = per_backend - len(params)
        params += [(scenario, slot) for slot in range(share)]
    metafunc.parametrize("scenario,slot", params, ids=[f"{s}-k{i}" for s, i in params])


def reference(rdb, backend: str, scenario: str, tmp_path) -> dict:
    """An uninterrupted run from ``scenario`` (once per backend and scenario): the statements it
    sent and the end state it left."""
    key = (backend, scenario)
    if key not in _REFERENCES:
        db = rdb(backend)
        load_point(db, scenario)
        log = tmp_path / "statements.json"
        done = victim("cli", db.url, log_path=str(log), cwd=tmp_path)
        assert done.returncode == 0, done.stderr[-3000:]
        import json

        _REFERENCES[key] = {"statements": json.loads(log.read_text()), "state": end_state(db)}
    return _REFERENCES[key]


def kill_point(statements: list[str], target: Target, backend: str, scenario: str, slot: int) -> dict:
    rng = random.Random(f"{SEED}:{backend}:{scenario}:{slot}")
    kinds = [classify(s, target) for s in statements]
    first = 1
    if backend == "mysql" and scenario == "v1":  # creating head: see test_killed_while_creating_head
        first = next(i for i, s in enumerate(statements, 1) if f"{target.version_table}_legacy" in s)
    pools = {kind: [i for i, k in enumerate(kinds, 1) if k == kind and i >= first] for kind in set(kinds)}
    plan = PLAN[scenario]
    if slot < len(plan):
        category, phase = plan[slot]
    else:
        categories = STRESS_CATEGORIES[scenario] + (MONGO_STRESS if backend == "mongodb" else ())
        category = rng.choice([c for c in categories if pools.get(c)])
        phase = rng.choice(("before", "during", "after"))
    candidates = pools.get(category)
    assert candidates, f"no {category} statement in the uninterrupted run"
    at = rng.choice(candidates)
    ordinal = [i for i, k in enumerate(kinds, 1) if k == category].index(at) + 1
    return {"at": at, "ordinal": ordinal, "category": category, "phase": phase, "delay": rng.uniform(0.0005, 0.004),
            "entry": "cli" if slot % 2 == 0 else "store", "statement": statements[at - 1][:120]}  # fmt: skip


def test_killed_then_rerun_ends_as_an_uninterrupted_run(rdb, backend, scenario, slot, tmp_path):
    ref = reference(rdb, backend, scenario, tmp_path)
    db = rdb(backend)
    load_point(db, scenario)
    legacy_before = legacy_state(db)
    point = kill_point(ref["statements"], Target.from_url(db.url), backend, scenario, slot)
    where = f"seed {SEED}, kill point {point}"

    killed = victim(
        point["entry"], db.url, point["category"], point["ordinal"], point["phase"], point["delay"], cwd=tmp_path
    )
    assert killed.returncode == -signal.SIGKILL, f"{where}: the child was not killed\n{killed.stderr[-3000:]}"
    STATS["kills"][point["category"]] = STATS["kills"].get(point["category"], 0) + 1
    if backend == "mongodb" and point["category"] != "read":  # killed under the lock: its lease is left behind
        left = mongo_support.lock_document(db.url)
        assert left is not None and left["pid"] != os.getpid(), f"{where}: no lock document left by the dead runner"

    between = cli("check", url=db.url, cwd=tmp_path)  # the interrupted database reads as behind, not broken
    assert between.code in (0, 1), f"{where}: check after the kill: {between.code} {between.err}"
    assert "Traceback" not in between.err and len(between.err.splitlines()) <= 1, between.err

    succeeded(cli("--lock-timeout", "120", "upgrade", url=db.url, cwd=tmp_path))  # (MongoDB: after the 2 s lease)
    got = end_state(db)
    assert got == ref["state"], f"{where}: {diff_states(got, ref['state'])}"
    assert legacy_state(db) == legacy_before, where
    assert lock_is_free(db), where
    succeeded(cli("check", url=db.url, cwd=tmp_path))


def test_killed_while_creating_head(rdb, backend, stress, tmp_path):
    """An empty database: killed after the session table's DDL and just before the record of head
    (with --stress: after every DDL statement of the creation too); the re-run gives the same as an
    uninterrupted creation."""
    reference_db = rdb(backend)
    log = tmp_path / "statements.json"
    assert victim("cli", reference_db.url, log_path=str(log), cwd=tmp_path).returncode == 0
    want = end_state(reference_db)
    import json

    statements = json.loads(log.read_text())
    target = Target.from_url(reference_db.url)
    kinds = [classify(s, target) for s in statements]
    ddl = [s for s, kind in zip(statements, kinds, strict=False) if kind == "ddl"]
    records = [s for s, kind in zip(statements, kinds, strict=False) if kind == "record"]
    # (category, its ordinal, phase): by category, as MongoDB's lock renewals interleave by timing
    points = [("ddl", 1, "after"), ("record", 1, "before")]
    if stress:
        points += [("ddl", n, "after") for n in range(2, len(ddl) + 1)]
    failures = []
    for category, ordinal, phase in points:
        db = rdb(backend)
        killed = victim("cli", db.url, category, ordinal, phase, cwd=tmp_path)
        assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
        STATS["kills"]["ddl"] = STATS["kills"].get("ddl", 0) + 1
        rerun = cli("--lock-timeout", "120", "upgrade", url=db.url, cwd=tmp_path)
        got = end_state(db) if rerun.code == 0 else None
        if rerun.code != 0 or got != want or not lock_is_free(db):
            failures.append(f"killed {phase} {(ddl if category == 'ddl' else records)[ordinal - 1][:60]!r}: re-run exit {rerun.code} {rerun.err.strip()[:200]}"
                            f"{'; ' + diff_states(got, want)[:300] if got else ''}")  # fmt: skip
    assert not failures, "\n".join(failures)


# --- the connection fails under a running upgrade -------------------------------------------------


def _victim_process(url: str, cwd, *options: str) -> subprocess.Popen:
    return subprocess.Popen([CLI, "--db-url", url, "--lock-timeout", "120", *options, "upgrade"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=clean_env(), cwd=cwd)  # fmt: skip


def _wait_until(condition, proc: subprocess.Popen, what: str, limit: float = 120.0) -> None:
    """Poll ``condition`` until true; fail if the upgrade ended first (the data is sized so that it
    cannot: many batches are left when the first one shows)."""
    deadline = time.monotonic() + limit
    while not condition():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the upgrade ended (exit {proc.returncode}) before {what}: {out[-500:]} {err[-500:]}")
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.005)


def _copying_backend_pg(admin, database: str):
    """The PostgreSQL backend of the upgrade once it has sent rows into the runs table."""
    row = admin.execute(sa.text(
        "SELECT pid FROM pg_stat_activity WHERE datname = :d AND pid <> pg_backend_pid() "
        "AND query LIKE 'INSERT INTO ai.agno_runs%'"), {"d": database}).first()  # fmt: skip
    return row[0] if row else None


def _copying_connection_mysql(admin, database: str):
    """The MariaDB connection of the upgrade once a batch of the copy is committed."""
    has_runs = admin.execute(sa.text(
        "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = :d AND table_name = 'agno_runs'"),
        {"d": database}).scalar()  # fmt: skip
    if not has_runs or not admin.execute(sa.text(f"SELECT COUNT(*) FROM `{database}`.agno_runs")).scalar():
        return None
    row = admin.execute(sa.text(
        "SELECT id FROM information_schema.processlist WHERE db = :d AND id <> CONNECTION_ID()"),
        {"d": database}).first()  # fmt: skip
    return row[0] if row else None


@pytest.mark.backends("postgresql", "mysql")
def test_connection_killed_mid_step_then_rerun(rdb, backend, tmp_path):
    from conftest import MYSQL_ADMIN_URL, PG_ADMIN_URL

    reference_db, db = rdb(backend), rdb(backend)
    for each in (reference_db, db):
        load_point(each, "2.0.0", generated=CONNECTION_DATA)
    succeeded(cli("upgrade", url=reference_db.url, cwd=tmp_path))
    want = end_state(reference_db)
    database = sa.engine.make_url(db.url).database
    admin_engine = sa.create_engine(Target.from_url(PG_ADMIN_URL if backend == "postgresql" else MYSQL_ADMIN_URL).driver_url,
                                    isolation_level="AUTOCOMMIT")  # fmt: skip
    proc = _victim_process(db.url, tmp_path)
    try:
        with admin_engine.connect() as admin:
            find = _copying_backend_pg if backend == "postgresql" else _copying_connection_mysql
            _wait_until(lambda: find(admin, database) is not None, proc, "the copy")
            victim_id = find(admin, database)
            if backend == "postgresql":
                assert admin.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": victim_id}).scalar()
            else:
                admin.execute(sa.text(f"KILL CONNECTION {int(victim_id)}"))
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
        admin_engine.dispose()
    record(f"connection killed {db.url}", out, err)
    STATS["connection_kills"] += 1
    from .support import Result

    line = one_line(Result(proc.returncode, out, err), 10)
    assert "database error" in line
    if backend == "postgresql":  # the step's transaction was rolled back: still at 2.5.0
        assert [v for v, _, _ in version_rows(db.url)][-1] == "2.5.0"
    succeeded(cli("--lock-timeout", "120", "upgrade", url=db.url, cwd=tmp_path))
    got = end_state(db)
    assert got == want, diff_states(got, want)
    assert lock_is_free(db)
    succeeded(cli("check", url=db.url, cwd=tmp_path))


def test_server_crash_restarted_mid_step_then_rerun(private_pg: PrivatePostgres, rdb, tmp_path):
    """A PostgreSQL server of the test's own (pg_ctl stop -m immediate: a crash) restarted while
    the 3.0.0 copy runs: the upgrade ends in one line (exit 10); the re-run gives the reference."""
    reference_db = rdb("postgresql")
    load_point(reference_db, "2.0.0", generated=CONNECTION_DATA)
    succeeded(cli("upgrade", url=reference_db.url, cwd=tmp_path))
    want = end_state(reference_db)
    db = private_pg.new_database()
    load_point(db, "2.0.0", generated=CONNECTION_DATA)
    database = sa.engine.make_url(db.url).database
    proc = _victim_process(db.url, tmp_path)
    try:
        admin_engine = sa.create_engine(
            Target.from_url(private_pg.url("postgres")).driver_url, isolation_level="AUTOCOMMIT"
        )
        with admin_engine.connect() as admin:
            _wait_until(lambda: _copying_backend_pg(admin, database) is not None, proc, "the copy")
        admin_engine.dispose()
        private_pg.crash_restart()
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    record(f"server restarted {db.url}", out, err)
    STATS["connection_kills"] += 1
    from .support import Result

    one_line(Result(proc.returncode, out, err), 10)
    assert [v for v, _, _ in version_rows(db.url)][-1] == "2.5.0"
    succeeded(cli("--lock-timeout", "120", "upgrade", url=db.url, cwd=tmp_path))
    got = end_state(db)
    assert got == want, diff_states(got, want)
    succeeded(cli("check", url=db.url, cwd=tmp_path))


def test_mongod_crash_restarted_mid_step_then_rerun(rdb, tmp_path):
    """A mongod of the test's own (tests/mongo_server.py, with the suite's user) SIGKILLed and
    restarted on the same files while the 3.0.0 copy runs. The upgrade either rides it out (pymongo
    waits for the server and retries a write once) or ends in one line (exit 5 or 10); either way
    the re-run, once the dead lease (2 s) expired, gives the uninterrupted result."""
    from conftest import Database, mongo_url_with_database
    from mongo_server import MongoServer
    from pymongo import MongoClient

    from .support import SECRET, Result, with_secret

    reference_db = rdb("mongodb")
    load_point(reference_db, "2.0.0", generated=CONNECTION_DATA)
    succeeded(cli("upgrade", url=reference_db.url, cwd=tmp_path))
    want = end_state(reference_db)
    server = MongoServer.start()
    try:
        with MongoClient(server.url) as client:
            client.admin.command("createUser", "amt_rel_crash", pwd=SECRET, roles=["root"])
        name = "amt_crash"
        db = Database("mongodb", with_secret(mongo_url_with_database(server.url, name), "mongodb", mongo_user="amt_rel_crash"),
                      db_name=name, server_url=server.url)  # fmt: skip
        load_point(db, "2.0.0", generated=CONNECTION_DATA)
        proc = _victim_process(db.url, tmp_path, "--lock-lease", "2")
        try:
            with MongoClient(server.url) as client:
                _wait_until(lambda: "agno_runs" in client[name].list_collection_names()
                            and client[name]["agno_runs"].estimated_document_count() > 0, proc, "the copy")  # fmt: skip
            server.crash_restart()
            out, err = proc.communicate(timeout=300)
        finally:
            if proc.poll() is None:
                proc.kill()
        record(f"mongod restarted {db.url}", out, err)
        STATS["connection_kills"] += 1
        if proc.returncode != 0:
            line = one_line(Result(proc.returncode, out, err), proc.returncode)
            assert proc.returncode in (5, 10), line
        succeeded(cli("--lock-timeout", "120", "upgrade", url=db.url, cwd=tmp_path))
        got = end_state(db)
        assert got == want, diff_states(got, want)
        assert lock_is_free(db)
        succeeded(cli("check", url=db.url, cwd=tmp_path))
    finally:
        server.stop()
