"""``upgrade --online`` on PostgreSQL (docs/online.md): the same result as the ordinary upgrade, no
write of a concurrent writer lost, a killed run finished by the next, DDL that waits for a lock
retried and then given up with exit 6."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from agno_side import env as agno_env
from conftest import POINTS, execute_autocommit, expected_file, expected_sessions
from lineage_checks import agno_stamps, stored_runs

import agno_migrate
from agno_migrate.errors import EXIT_LOCK_TIMEOUT, LockTimeout, UsageError
from agno_migrate.migrate.model import Online
from agno_migrate.migrate.sql import detect
from agno_migrate.migrate.sql.revisions import script_directory
from agno_migrate.target import Target

PG_POINTS = [p for p in POINTS["postgresql"] if p != "3.1.10"]
REPO = Path(__file__).resolve().parent.parent
FAST = Online(lock_timeout=0.2, retries=100)


def physical(url: str) -> dict:
    """The session and runs tables as detection sees them (columns, types, keys, indexes), and the
    objects an online run creates on the way (none must be left)."""
    target = Target.from_url(url)
    engine = sa.create_engine(target.driver_url)
    try:
        with engine.connect() as conn:
            sig = detect.signature(conn, target)
            extra = conn.execute(
                sa.text(
                    "SELECT (SELECT count(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'ai' AND NOT t.tgisinternal), "
                    "(SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
                    "WHERE n.nspname = 'ai'), (SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'ai' AND NOT i.indisvalid), "
                    "(SELECT array_agg(table_name::text ORDER BY table_name) FROM information_schema.tables "
                    "WHERE table_schema = 'ai')"
                )
            ).one()
            indexes = conn.execute(
                sa.text("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'ai' ORDER BY indexname")
            ).all()
    finally:
        engine.dispose()
    return {"signature": sig, "triggers": extra[0], "functions": extra[1], "invalid": extra[2],
            "tables": extra[3], "indexes": indexes}  # fmt: skip


def rows(url: str, table: str, key: str) -> list[dict]:
    """Every row of ``table`` as column -> value (JSON as its jsonb text: the bytes stored), by ``key``.
    By name, not position: the online step's jsonb columns come last in the table (docs/online.md)."""
    engine = sa.create_engine(Target.from_url(url).driver_url)
    try:
        with engine.connect() as conn:
            table_ = sa.Table(table, sa.MetaData(), autoload_with=conn, schema="ai")
            columns = [sa.cast(c, sa.Text).label(c.name) if isinstance(c.type, sa.JSON) else c for c in table_.columns]
            return [dict(r) for r in conn.execute(sa.select(*columns).order_by(table_.c[key])).mappings()]
    finally:
        engine.dispose()


def contents(url: str) -> dict:
    return {
        "sessions": rows(url, "agno_sessions", "session_id"),
        "runs": rows(url, "agno_runs", "run_id"),
        "stamps": agno_stamps(url),
    }


def offline_twin(new_database, point: str) -> str:
    twin = new_database("postgresql")
    twin.load(point)
    agno_migrate.upgrade(twin.url)
    return twin.url


@pytest.mark.parametrize("point", PG_POINTS)
def test_online_upgrade_gives_what_the_offline_upgrade_gives(new_database, point):
    db = new_database("postgresql")
    db.load(point)
    outcome = agno_migrate.upgrade(db.url, online=FAST)
    assert outcome.after == "3.0.1"
    assert agno_migrate.check(db.url).at_head
    twin = offline_twin(new_database, point)
    assert physical(db.url) == physical(twin)
    assert contents(db.url) == contents(twin)
    again = agno_migrate.upgrade(db.url, online=FAST)
    assert again.applied == []


def test_online_is_refused_where_it_does_not_apply(new_database, sqlite_url):
    with pytest.raises(UsageError, match="PostgreSQL only"):
        agno_migrate.upgrade(sqlite_url, online=True)
    with pytest.raises(UsageError, match="--sql"):
        agno_migrate.upgrade(new_database("postgresql").url, online=True, sql=True)


@pytest.mark.agno
def test_real_agno_reads_the_online_upgraded_database(new_database, tmp_path):
    """Agno 3.1.10 reads every session and run of the 2.0.0 point upgraded online (as test_lineage)."""
    db = new_database("postgresql")
    db.load("2.0.0")
    agno_migrate.upgrade(db.url, online=FAST)
    expected = expected_file("2.0.0", "postgresql", tmp_path)
    result = agno_env.verify(db.url, expected, schema="ai")
    n = len(expected_sessions("2.0.0", "postgresql"))
    assert result.ok and result.summary == f"verified {n}/{n} sessions, 0 mismatches", result.output


def small_batches(monkeypatch):
    """Batches of 2 rows in the online steps: a fixture point then takes many short transactions."""
    for revision, names in (
        ("v2_3_0", ("BACKFILL_BATCH",)),
        ("v3_0_0", ("SESSION_BATCH", "CATCHUP_BATCH", "FINAL_BACKLOG")),
    ):
        module = script_directory().get_revision(revision).module
        for name in names:
            monkeypatch.setattr(module, name, 2)


class Writer(threading.Thread):
    """What an Agno 2.0 application writes (no Agno 2.x is installable beside 3.1.10: its statements,
    by hand): INSERT of new sessions and UPDATE of existing ones, each with its whole ``runs`` blob,
    until told to stop. Keeps the last blob it wrote per session, and whether that write committed
    before the upgrade's last transaction (after it, a 2.0 writer is writing to a 3.x database: its
    runs go nowhere but the legacy blob, as they would after any upgrade). Failed writes: ``errors``."""

    def __init__(self, url: str, existing: list[str]):
        super().__init__(daemon=True)
        self.url = url.replace("postgresql+psycopg://", "postgresql://")
        self.existing = existing
        self.written: dict[str, tuple[list[dict], bool]] = {}
        self.errors: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            step = 0
            while not self.stop.is_set():
                step += 1
                try:
                    with conn.transaction():
                        sid, runs = self.write(conn, step)
                        # the catch-up's table is gone once the upgrade's last transaction committed
                        after = conn.execute(
                            "SELECT to_regclass('ai.agno_runs') IS NOT NULL "
                            "AND to_regclass('ai.agno_sessions_agno_changed') IS NULL"
                        ).fetchone()[0]
                    self.written[sid] = (runs, after)
                except psycopg.Error as exc:
                    self.errors.append(str(exc))
                time.sleep(0.005)

    def write(self, conn, step: int) -> tuple[str, list[dict]]:
        now = int(time.time())
        if step % 2:
            sid = f"writer-{step:05d}"
            runs = [{"run_id": f"writer-run-{step}-0", "agent_id": "a1", "status": "COMPLETED", "created_at": now}]
            conn.execute(
                "INSERT INTO ai.agno_sessions (session_id, session_type, agent_id, user_id, session_data, runs, "
                "created_at, updated_at) VALUES (%s, 'agent', 'a1', 'u1', %s, %s, %s, %s)",
                (sid, json.dumps({"step": step}), json.dumps(runs), now, now),
            )
        else:
            sid = self.existing[step // 2 % len(self.existing)]
            current = conn.execute("SELECT runs::text FROM ai.agno_sessions WHERE session_id = %s", (sid,)).fetchone()
            runs = json.loads(current[0]) if current and current[0] else []
            runs.append({"run_id": f"writer-run-{step}", "agent_id": "a1", "status": "RUNNING", "created_at": now})
            conn.execute(
                "UPDATE ai.agno_sessions SET runs = %s, updated_at = %s WHERE session_id = %s",
                (json.dumps(runs), now, sid),
            )
        return sid, runs


def test_a_concurrent_writer_loses_no_write(new_database, monkeypatch):
    db = new_database("postgresql")
    db.load("2.0.0")
    small_batches(monkeypatch)
    existing = sorted(s["session_id"] for s in expected_sessions("2.0.0", "postgresql") if s["runs"])[:10]
    writer = Writer(db.url, existing)
    writer.start()
    try:
        agno_migrate.upgrade(db.url, online=FAST)
    finally:
        writer.stop.set()
        writer.join(60)
    assert writer.errors == []
    assert agno_migrate.check(db.url).at_head
    stored = stored_runs(db.url)
    blobs = {r["session_id"]: r["runs"] for r in rows(db.url, "agno_sessions", "session_id")}
    statuses = {r["run_id"]: r["status"] for r in rows(db.url, "agno_runs", "run_id")}
    during = {sid: runs for sid, (runs, after) in writer.written.items() if not after}
    assert len(during) > 10
    for sid, (runs, _after) in writer.written.items():
        assert json.loads(blobs[sid]) == runs, sid  # the blob: every write, before or after
    for sid, runs in during.items():  # the runs table: every write made during the upgrade
        assert stored.get(sid) == [r["run_id"] for r in runs], sid
        assert [statuses[r["run_id"]] for r in runs] == [r["status"] for r in runs], sid


KILLER = """
import os, signal, sys
import agno_migrate
from agno_migrate.migrate.sql.revisions import script_directory
from agno_migrate.migrate.model import Online
revision, name, after = sys.argv[2], sys.argv[3], int(sys.argv[4])
for rev, names in (("v2_3_0", ("BACKFILL_BATCH",)), ("v3_0_0", ("SESSION_BATCH", "CATCHUP_BATCH", "FINAL_BACKLOG"))):
    for n in names:
        setattr(script_directory().get_revision(rev).module, n, 2)
module = script_directory().get_revision(revision).module
original, calls = getattr(module, name), []
def killing(*args, **kwargs):
    calls.append(1)
    if len(calls) > after:
        os.kill(os.getpid(), signal.SIGKILL)
    return original(*args, **kwargs)
setattr(module, name, killing)
agno_migrate.upgrade(sys.argv[1], online=Online(0.5, 20))
"""


@pytest.mark.parametrize(
    "where,revision,name,rerun",
    [
        ("mid-backfill", "v2_3_0", "_write_fitted", "online"),
        ("mid-backfill", "v2_3_0", "_write_fitted", "offline"),
        ("mid-copy", "v3_0_0", "_copy_sessions", "online"),
        ("mid-copy", "v3_0_0", "_copy_sessions", "offline"),
    ],
)
def test_a_killed_online_upgrade_is_finished_by_the_next_run(new_database, where, revision, name, rerun):
    db = new_database("postgresql")
    db.load("2.0.0")
    done = subprocess.run(
        [sys.executable, "-c", KILLER, db.url, revision, name, "3"], env=child_env(), capture_output=True
    )
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()[-2000:]
    with pytest.raises(agno_migrate.SchemaBehind):
        agno_migrate.check(db.url)
    outcome = agno_migrate.upgrade(db.url, online=FAST if rerun == "online" else False)
    assert outcome.after == "3.0.1"
    twin = offline_twin(new_database, "2.0.0")
    assert physical(db.url) == physical(twin)
    assert contents(db.url) == contents(twin)


def hold_access_share(url: str):
    """A connection holding ACCESS SHARE on the sessions table in an open transaction (a long read)."""
    import psycopg

    holder = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"))
    holder.execute("SELECT count(*) FROM ai.agno_sessions").fetchone()
    return holder


def waiting_on_sessions(url: str) -> bool:
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        return (
            conn.execute(
                "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                "WHERE c.relname = 'agno_sessions' AND NOT l.granted"
            ).fetchone()[0]
            > 0
        )


def test_ddl_behind_a_held_lock_is_retried_and_succeeds_once_released(new_database):
    db = new_database("postgresql")
    db.load("2.0.0")
    holder = hold_access_share(db.url)
    outcome = {}
    upgrader = threading.Thread(target=lambda: outcome.update(r=agno_migrate.upgrade(db.url, online=FAST)))
    upgrader.start()
    try:
        while not waiting_on_sessions(db.url):  # the first DDL statement queued behind the holder
            assert upgrader.is_alive()
            time.sleep(0.05)
        time.sleep(3 * FAST.lock_timeout)  # it gives up at least once meanwhile, and tries again
    finally:
        holder.rollback()
        holder.close()
    upgrader.join(120)
    assert outcome["r"].after == "3.0.1"
    assert outcome["r"].report.ddl_retries >= 1
    assert contents(db.url) == contents(offline_twin(new_database, "2.0.0"))


def test_ddl_behind_a_lock_never_released_gives_up_with_exit_6(new_database):
    db = new_database("postgresql")
    db.load("2.0.0")
    holder = hold_access_share(db.url)
    try:
        with pytest.raises(LockTimeout, match="gave up after 3 attempts"):
            agno_migrate.upgrade(db.url, online=Online(lock_timeout=0.1, retries=2))
        env = child_env()
        cli = [
            sys.executable,
            "-c",
            "from agno_migrate.cli import run; run()",
            "--db-url",
            db.url,
            "upgrade",
            "--online",
        ]
        done = subprocess.run([*cli, "--ddl-lock-timeout", "0.1", "--ddl-retries", "1"], env=env, capture_output=True)
        assert done.returncode == EXIT_LOCK_TIMEOUT
        err = done.stderr.decode()
        assert "gave up after 2 attempts" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    finally:
        holder.rollback()
        holder.close()
    done = subprocess.run([*cli, "-v", "--ddl-lock-timeout", "0.2"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "online: 0 DDL statement(s) retried after waiting 0.2s for a lock (at most 30 retries each)" in done.stdout
    assert contents(db.url) == contents(offline_twin(new_database, "2.0.0"))


@pytest.mark.parametrize("rerun", ["online", "offline"])
@pytest.mark.parametrize("index", ["primary key", "runs table"])
def test_an_invalid_index_left_by_a_failed_build_is_rebuilt(new_database, index, rerun):
    """A concurrent build that failed or was killed leaves an INVALID index (here: made to fail, a unique
    index on a column with duplicates under the index's name): the primary key's (2.5.0, from the 2.3.0
    point) or a runs table's (3.0.0, after a copy killed mid-way); the re-run, online or not, drops it
    and builds it."""
    db = new_database("postgresql")
    point = "2.3.0" if index == "primary key" else "2.0.0"
    db.load(point)
    if index == "runs table":
        killed = subprocess.run(
            [sys.executable, "-c", KILLER, db.url, "v3_0_0", "_copy_sessions", "3"], env=child_env()
        )
        assert killed.returncode == -signal.SIGKILL
    name, column = {"primary key": ("agno_sessions_pkey", "ai.agno_sessions (session_type)"),
                    "runs table": ("idx_agno_runs_status", "ai.agno_runs (run_type)")}[index]  # fmt: skip
    with pytest.raises(sa.exc.IntegrityError):
        execute_autocommit(db.url, f"CREATE UNIQUE INDEX CONCURRENTLY {name} ON {column}")
    assert physical(db.url)["invalid"] == 1
    agno_migrate.upgrade(db.url, online=FAST if rerun == "online" else False)
    twin = offline_twin(new_database, point)
    assert physical(db.url) == physical(twin)
    assert contents(db.url) == contents(twin)


def child_env() -> dict:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
