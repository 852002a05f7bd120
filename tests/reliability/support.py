"""Helpers of the reliability suite (tests/reliability): URLs that carry a password, a CLI runner
that keeps every output it saw (the secrets test greps them), the logical state of a database,
the data points the races and the crashes start from, and child processes killed with SIGKILL.

The plain helpers of the other test modules are reused, not copied: the CLI result checks and the
schema snapshot of test_cli, the dumps and the 1.x multiplier of test_legacy, the session builders
of test_data_step.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import sqlalchemy as sa
from conftest import Database, password_leaks
from lineage_checks import agno_stamps, dump_table
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool
from test_cli import CLI, Result, clean_env, snapshot
from test_data_step import insert_sessions, run, session
from test_legacy import LEGACY, head_dump, multiply_agent_sessions

from agno_migrate import registry
from agno_migrate.migrate.sql import detect
from agno_migrate.target import Target

from . import mongo_support

__all__ = ["CLI", "LEGACY", "Result", "clean_env", "head_dump"]

# In the URL of every PostgreSQL and MariaDB database of the suite (PostgreSQL on trust ignores it;
# MariaDB gets a user that needs it). No output of the suite may ever show it (test_secrets).
SECRET = "Rel1ab:s3cret/pw"
SECRET_QUOTED = "Rel1ab%3As3cret%2Fpw"
SECRET_SSL = "Ss1key:pa55/w0rd"  # an sslpassword / tlsCertificateKeyFilePassword (never checked by the servers)
SECRET_RAW = "Rw@pa5s:w/rd%9x"  # a password written unencoded in a URL (no driver can use it: it must still not show)
SECRETS = (SECRET, SECRET_SSL, SECRET_RAW)
OUTPUTS: list[tuple[str, str]] = []
"""(what ran, everything it printed) for every command and child process of this session."""
STATS: dict = {"races": 0, "racers": 0, "kills": {}, "connection_kills": 0, "cases": set(), "started": time.monotonic()}

HEAD = registry.HEAD.version
SEED = int(os.environ.get("AGNO_MIGRATE_RELIABILITY_SEED", "20240611"))


def record(what: str, *texts: str | bytes | None) -> None:
    text = "\n".join(t.decode("utf-8", "replace") if isinstance(t, bytes) else t for t in texts if t)
    OUTPUTS.append((what, text))
    leaks = password_leaks(text)
    assert not leaks, f"{what.split(' --db-url')[0]} printed a test password ({len(leaks)} of them)"


def note_case(name: str) -> None:
    STATS["cases"].add(name)


def with_secret(url: str, backend: str, mysql_user: str | None = None, mongo_user: str | None = None) -> str:
    """``url`` with the suite's password (and, on MariaDB and MongoDB, the suite's user that
    requires it; on MongoDB authenticated against ``admin``)."""
    if backend == "sqlite":
        return url
    if backend == "mongodb":
        from urllib.parse import quote

        from conftest import mongo_url_with_database

        scheme, _, rest = url.partition("://")
        hosts, _, tail = rest.partition("/")
        name, _, options = tail.partition("?")
        server = f"{scheme}://{mongo_user}:{quote(SECRET, safe='')}@{hosts}/" + (f"?{options}" if options else "")
        return mongo_url_with_database(server, name)
    parsed = make_url(url).set(password=SECRET)
    if backend == "mysql":
        parsed = parsed.set(username=mysql_user)
    return parsed.render_as_string(hide_password=False)


# --- the command line ---------------------------------------------------------------------------


def cli(*args: str, url: str | None = None, cwd: Path | None = None, env: dict | None = None,
        timeout: float = 180) -> Result:  # fmt: skip
    """Run the agno-migrate console script; record what it printed."""
    cmd = [CLI] + (["--db-url", url] if url is not None else []) + list(args)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=cwd, check=False,
                          env=env if env is not None else clean_env())  # fmt: skip
    record(" ".join(cmd), proc.stdout, proc.stderr)
    return Result(proc.returncode, proc.stdout, proc.stderr)


def one_line(result: Result, code: int) -> str:
    """Assert exit ``code`` with exactly one line on stderr and no traceback; return the line."""
    assert result.code == code, f"exit {result.code}, expected {code}\nstdout: {result.out}\nstderr: {result.err}"
    assert "Traceback" not in result.out + result.err, result.err
    lines = result.err.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {lines!r}"
    assert lines[0].startswith("agno-migrate: error: "), lines[0]
    return lines[0]


def succeeded(result: Result) -> Result:
    assert result.code == 0, f"exit {result.code}\nstdout: {result.out}\nstderr: {result.err}"
    assert "Traceback" not in result.out + result.err
    return result


# --- state of a database -------------------------------------------------------------------------


def is_mongo(url: str) -> bool:
    return url.startswith("mongodb")


def engine(url: str):
    return sa.create_engine(Target.from_url(url).driver_url, poolclass=NullPool)


def execute(url: str, *statements: str) -> None:
    eng = engine(url)
    try:
        with eng.begin() as conn:
            for statement in statements:
                conn.exec_driver_sql(statement)
    finally:
        eng.dispose()


def schema_of(db: Database) -> str | None:
    return {"postgresql": "ai", "mysql": None, "sqlite": None}[db.backend]


def qualified(db: Database, name: str) -> str:
    return f"ai.{name}" if db.backend == "postgresql" else name


def full_state(db: Database):
    """Everything in the database: test_cli's snapshot (schemas, tables, columns, keys, indexes,
    row counts, our and Agno's version tables) plus the content of every table. None for a
    SQLite file that does not exist."""
    if db.backend == "sqlite" and not db.path.exists():
        return None
    if db.backend == "mongodb":
        return mongo_support.full_state(db.url)
    out = {"snapshot": snapshot(db.url)}
    eng = engine(db.url)
    try:
        with eng.connect() as conn:
            insp = sa.inspect(conn)
            for schema in out["snapshot"]["schemas"]:
                for name in insp.get_table_names(schema=schema):
                    table = sa.Table(name, sa.MetaData(), autoload_with=conn, schema=schema)
                    cols = [sa.cast(c, sa.LargeBinary) if db.backend == "sqlite" else sa.type_coerce(c, sa.Text)
                            if isinstance(c.type, sa.JSON) else c for c in table.columns]  # fmt: skip
                    rows = conn.execute(sa.select(*cols)).all()
                    out[(schema, name)] = sorted(repr(tuple(r)) for r in rows)
    finally:
        eng.dispose()
    return out


def version_rows(url: str) -> list[tuple]:
    """(version, revision, action) of our version table, in version order (MongoDB: of the
    history entries, in the order written)."""
    from agno_migrate.migrate.sql import revisions as sql

    if is_mongo(url):
        return mongo_support.version_rows(url)

    target = Target.from_url(url)
    table = sql.version_table(target)
    eng = engine(url)
    try:
        with eng.connect() as conn:
            if not sa.inspect(conn).has_table(table.name, schema=table.schema):
                return []
            rows = conn.execute(sa.select(table.c.version, table.c.revision, table.c.action)).all()
    finally:
        eng.dispose()
    return sorted((tuple(r) for r in rows), key=lambda r: registry.get(r[0]).key)


def checkpoint_rows(url: str) -> list[tuple]:
    """The Agno 1.x import's checkpoints, without their time stamps (MongoDB: every checkpoint
    document, in the same shape)."""
    from agno_migrate.migrate.legacy import sql as legacy

    if is_mongo(url):
        return mongo_support.checkpoint_rows(url)

    target = Target.from_url(url)
    table = legacy.checkpoint_table(target)
    eng = engine(url)
    try:
        with eng.connect() as conn:
            if not sa.inspect(conn).has_table(table.name, schema=table.schema):
                return []
            cols = [c for c in table.columns if c.name != "updated_at"]
            return sorted(tuple(r) for r in conn.execute(sa.select(*cols)))
    finally:
        eng.dispose()


def signature(url: str) -> dict:
    target = Target.from_url(url)
    eng = engine(url)
    try:
        with eng.connect() as conn:
            return detect.signature(conn, target)
    finally:
        eng.dispose()


def tables_of(db: Database) -> set[str]:
    eng = engine(db.url)
    try:
        with eng.connect() as conn:
            insp = sa.inspect(conn)
            schema = schema_of(db)
            if schema and schema not in insp.get_schema_names():
                return set()
            return set(insp.get_table_names(schema=schema))
    finally:
        eng.dispose()


def legacy_state(db: Database) -> dict:
    if db.backend == "mongodb":
        return mongo_support.legacy_state(db.url)
    present = tables_of(db)
    return {name: dump_table(db.url, name, "session_id") for name in LEGACY if name in present}


def end_state(db: Database) -> dict:
    """What an upgrade leaves, comparable between two databases of the same start: the session
    and runs tables (test_legacy's dump), our version rows and import checkpoints, Agno's stamps,
    the physical schema, and the Agno 1.x tables. On MongoDB the same from the collections, plus
    the step records (without how often each was started: a re-run after a crash starts one again)."""
    if db.backend == "mongodb":
        sessions, runs = mongo_support.head_dump(db.url)
        return {
            "sessions": sessions,
            "runs": runs,
            "versions": version_rows(db.url),
            "steps": mongo_support.step_rows(db.url),
            "checkpoints": checkpoint_rows(db.url),
            "stamps": mongo_support.agno_stamps(db.url),
            "signature": mongo_support.signature(db.url),
            "legacy": legacy_state(db),
        }
    sessions, runs = head_dump(db.url)
    return {
        "sessions": sessions,
        "runs": runs,
        "versions": version_rows(db.url),
        "checkpoints": checkpoint_rows(db.url),
        "stamps": agno_stamps(db.url),
        "signature": signature(db.url),
        "legacy": legacy_state(db),
    }


def diff_states(got: dict, want: dict) -> str:
    """A short description of how two end states differ (for assertion messages)."""
    out = []
    for key, w in want.items():
        g = got.get(key)
        if g != w:
            if isinstance(w, list) and isinstance(g, list):
                out.append(f"{key}: {len(g)} rows vs {len(w)} expected; first differences "
                           f"{[x for x in g if x not in w][:2]!r:.300} / {[x for x in w if x not in g][:2]!r:.300}")  # fmt: skip
            elif isinstance(w, dict) and isinstance(g, dict):
                out.append(f"{key}: {_dict_diff(g, w)}")
            else:
                out.append(f"{key}: {g!r:.300} vs {w!r:.300}")
    return "; ".join(out)


def _dict_diff(got: dict, want: dict, path: str = "") -> str:
    parts = []
    for key in sorted(set(got) | set(want), key=str):
        g, w = got.get(key, "<missing>"), want.get(key, "<missing>")
        if g == w:
            continue
        if isinstance(g, dict) and isinstance(w, dict):
            parts.append(_dict_diff(g, w, f"{path}{key}."))
        else:
            parts.append(f"{path}{key}: {g!r:.300} vs {w!r:.300}")
    return "; ".join(parts)


# --- the points the races and crashes start from ------------------------------------------------


def generated_sessions(count: int) -> list[dict]:
    """Sessions with runs at the 2.x layout (runs in a JSON column): 0-4 runs each, some without a
    run_id, a few sharing one run_id (stored under derived ids), team and agent sessions."""
    out = []
    for i in range(count):
        runs = [run(f"gen-{i:04d}-r{k}", content=f"run {k} of {i} " + "x" * (i % 97)) for k in range(i % 5)]
        if i % 7 == 0:
            runs.append(run(None, content=f"no id in {i}"))
        if i % 50 == 0:
            runs.append(run("gen-shared-run", content=f"shared id in {i}"))
        out.append(session(f"gen-{i:04d}", runs or None, stype="team" if i % 3 == 0 else "agent",
                           user=f"u{i % 11}", created=1700000000 + i))  # fmt: skip
    return out


GENERATED = 450  # with the 2.0.0 fixture's 197 sessions: four batches of the 3.0.0 copy (200 each)


def load_point(db: Database, point: str, generated: int = GENERATED, copies: int = 2) -> None:
    """Fill ``db`` for a race or a crash: "empty"; "2.0.0" (the fixture pack's Agno 2.0.0 database,
    or on MariaDB, which Agno 2.0.0 could not write, one created by agno-migrate --to 2.0.0; plus
    ``generated`` sessions so the 3.0.0 copy takes several batches); "v1" (the Agno 1.x fixture,
    its agent table's rows ``copies`` times, so the import takes several batches)."""
    import agno_migrate

    if point == "empty":
        return
    if point == "2.0.0":
        if db.backend == "mongodb":
            db.load("2.0.0")
            if generated:
                mongo_support.insert_string_sessions(db.url, generated_sessions(generated))
            return
        if db.backend == "mysql":
            agno_migrate.upgrade(db.url, to="2.0.0")
        else:
            db.load("2.0.0")
        if generated:
            insert_sessions(db.url, generated_sessions(generated))
        return
    assert point == "v1", point
    db.load("v1")
    if copies > 1 and db.backend == "mongodb":
        mongo_support.multiply_agent_collection(db.url, copies)
    elif copies > 1:
        multiply_agent_sessions(db.url, copies)


# --- child processes -------------------------------------------------------------------------------

# A racer: imports everything first, says "ready", waits for the start line (its stdin closing),
# then upgrades through the console script's entry point or a store with auto_upgrade_schema=True.
RACER = textwrap.dedent(
    """
    import json, sys
    entry, url = sys.argv[1], sys.argv[2]
    import agno_migrate, agno_migrate.cli
    from agno_migrate.migrate import runner  # noqa: the runner and its drivers, loaded before the start
    from agno_migrate.backends import mongo, sql
    from agno_migrate.target import Target
    target = Target.from_url(url)
    mongo.database(target) if target.is_mongo else sql.engine(target).dialect.dbapi
    print("ready", flush=True)
    sys.stdin.read()
    if entry == "cli":
        sys.argv = ["agno-migrate", "--db-url", url, "--lock-timeout", "300", "upgrade"]
        agno_migrate.cli.run()
    db = agno_migrate.connect(url, auto_upgrade_schema=True)
    sessions, total = db.get_sessions(limit=5, page=1)
    print(json.dumps({"store": "ok", "total": total, "runs": sum(len(s.runs) for s in sessions)}))
    """
)


def race(url: str, entries: list[str], cwd: Path) -> list[subprocess.CompletedProcess]:
    """Start one racer per entry, release them at once, wait for all; outputs recorded."""
    env = clean_env()
    procs = [subprocess.Popen([sys.executable, "-c", RACER, entry, url], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=cwd)
             for entry in entries]  # fmt: skip
    for proc in procs:
        line = proc.stdout.readline()
        assert line.strip() == "ready", (line, proc.stderr.read() if proc.poll() is not None else "")
    for proc in procs:  # the start line: every racer is blocked on its stdin until now
        proc.stdin.close()
        proc.stdin = None  # communicate() must not flush it
    results = []
    for entry, proc in zip(entries, procs, strict=False):
        out, err = proc.communicate(timeout=600)
        record(f"racer {entry} {url}", out, err)
        results.append(subprocess.CompletedProcess([entry], proc.returncode, out, err))
    STATS["races"] += 1
    STATS["racers"] += len(entries)
    return results


# A victim: counts the statements of one category (statements.classify) its upgrade sends
# (SQLAlchemy's cursor events) and SIGKILLs itself at the Nth: before it is sent, after it returned,
# or while it runs (a timer thread fires a few milliseconds after it was sent). By category, not by
# position: the console script and a store send the same writes but not the same reads. In
# "count" mode it writes every statement's text. A COPY (the Agno 1.x import's writes on PostgreSQL,
# through psycopg's own API) goes through the same two hooks.
VICTIM = textwrap.dedent(
    """
    import json, os, signal, sys, threading
    import sqlalchemy as sa
    from sqlalchemy import event
    entry, url, category, kill_at, phase, delay, log_path = sys.argv[1:8]
    kill_at, delay = int(kill_at), float(delay)
    sys.path.insert(0, sys.argv[8])
    from statements import classify
    from agno_migrate.target import Target
    t = Target.from_url(url)
    names = (t.version_table, t.agno_versions_table, t.session_table, t.runs_table)
    seen, counted = [], []
    def die():
        os.kill(os.getpid(), signal.SIGKILL)
    @event.listens_for(sa.engine.Engine, "before_cursor_execute")
    def before(conn, cursor, statement, parameters, context, executemany):
        text = " ".join(statement.split())[:200]
        seen.append(text)
        if category in ("any", classify(text, *names)):
            counted.append(text)
            if len(counted) == kill_at:
                if phase == "before":
                    die()
                if phase == "during":
                    threading.Timer(delay, die).start()
    @event.listens_for(sa.engine.Engine, "after_cursor_execute")
    def after(conn, cursor, statement, parameters, context, executemany):
        if len(counted) == kill_at and phase == "after":
            die()
    try:
        import contextlib, psycopg
    except ImportError:
        psycopg = None
    if psycopg is not None:
        plain_copy = psycopg.Cursor.copy
        @contextlib.contextmanager
        def copy(cursor, statement, *args, **kwargs):
            before(None, cursor, str(statement), None, None, False)
            with plain_copy(cursor, statement, *args, **kwargs) as copying:
                yield copying
            after(None, cursor, str(statement), None, None, False)
        psycopg.Cursor.copy = copy
    import agno_migrate, agno_migrate.cli
    if entry == "cli":
        code = agno_migrate.cli.main(["--db-url", url, "--lock-timeout", "120", "upgrade"])
    else:
        agno_migrate.connect(url, auto_upgrade_schema=True).get_sessions(limit=1)
        code = 0
    if log_path != "-":
        with open(log_path, "w") as fh:
            json.dump(seen, fh)
    sys.exit(code)
    """
)


def victim(entry: str, url: str, category: str = "any", kill_at: int = 0, phase: str = "never", delay: float = 0.0,
           log_path: str = "-", cwd: Path | None = None) -> subprocess.CompletedProcess:  # fmt: skip
    here = str(Path(__file__).parent)
    script = mongo_support.VICTIM if is_mongo(url) else VICTIM
    proc = subprocess.run([sys.executable, "-c", script, entry, url, category, str(kill_at), phase, str(delay), log_path, here],
                          capture_output=True, text=True, timeout=600, env=clean_env(), cwd=cwd, check=False)  # fmt: skip
    record(f"victim {entry} {url} {category} {kill_at} {phase}", proc.stdout, proc.stderr)
    return proc


def classify(statement: str, target: Target) -> str:
    """What a statement of an upgrade does: ddl, record, stamp, checkpoint, data or read (on
    MongoDB also lock and step: statements.classify_mongo)."""
    from .statements import classify as by_names
    from .statements import classify_mongo

    if target.is_mongo:
        return classify_mongo(
            statement, target.version_table, target.agno_versions_table, target.session_table, target.runs_table
        )

    return by_names(
        statement, target.version_table, target.agno_versions_table, target.session_table, target.runs_table
    )


def lock_is_free(db: Database) -> bool:
    """Whether the migration lock of ``db`` can be taken at once (and give it back)."""
    from agno_migrate.backends.mysql import lock_name as _mysql_key
    from agno_migrate.backends.postgresql import advisory_key as _pg_key
    from agno_migrate.backends.sql_dialect import lock_key as _key

    if db.backend == "mongodb":
        return mongo_support.lock_is_free(db.url)
    target = Target.from_url(db.url)
    if db.backend == "sqlite":
        import sqlite3

        conn = sqlite3.connect(db.path, timeout=0, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
            return True
        except sqlite3.OperationalError:
            return False
        finally:
            conn.close()
    eng = engine(db.url)
    try:
        with eng.connect() as conn:
            if db.backend == "postgresql":
                key = _pg_key(_key(target, conn))
                got = conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar()
                if got:
                    conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                return bool(got)
            key = _mysql_key(_key(target, conn))
            return conn.execute(sa.text("SELECT IS_FREE_LOCK(:k)"), {"k": key}).scalar() == 1
    finally:
        eng.dispose()


def stored_run_data(url: str) -> dict[str, object]:
    """run_id -> run_data (decoded) of the runs table."""
    from agno_migrate import jsoncodec

    target = Target.from_url(url)
    schema = target.schema if target.backend != "sqlite" else None
    runs = sa.table(target.runs_table, sa.column("run_id"), sa.column("run_data"), schema=schema)
    eng = engine(url)
    try:
        with eng.connect() as conn:
            rows = conn.execute(sa.select(runs.c.run_id, sa.type_coerce(runs.c.run_data, sa.Text))).all()
    finally:
        eng.dispose()
    return {run_id: jsoncodec.decode_json(data) for run_id, data in rows}


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


# A holder: an upgrade that stops once its data step has done one batch (inside the 3.0.0 copy's
# transaction, or between two batches of the Agno 1.x import), says "paused", and goes on when
# its stdin gives a line. It holds the migration lock meanwhile, as any upgrading process does.
HOLDER = textwrap.dedent(
    """
    import sys
    import agno_migrate
    def progress(done, total):
        if done and not progress.paused:
            progress.paused = True
            print("paused", flush=True)
            sys.stdin.readline()
    progress.paused = False
    agno_migrate.upgrade(sys.argv[1], progress=progress)
    print("done", flush=True)
    """
)


@contextlib.contextmanager
def holding(url: str, cwd: Path | None = None):
    """For the duration of the block, an upgrading process paused mid-step (see HOLDER); it must
    then finish the upgrade."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, url], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=clean_env(), cwd=cwd)  # fmt: skip
    try:
        line = proc.stdout.readline()
        assert line.strip() == "paused", f"the holder did not pause: {line!r} {proc.stderr.read()[-2000:]}"
        yield proc
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    out, err = proc.communicate("\n", timeout=600)
    record(f"holder {url}", out, err)
    assert proc.returncode == 0 and out.strip() == "done", (proc.returncode, out, err[-2000:])
