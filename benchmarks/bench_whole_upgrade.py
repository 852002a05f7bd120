"""Whole-database upgrade benchmark (issue 14): ``agno-migrate upgrade`` against Agno 3.1.10's own
``MigrationManager(db).up()`` on the same Agno 2.0 database, in the same run.

    python benchmarks/bench_whole_upgrade.py [--sessions 10000] [--memories 10000] [--rounds 3]
                                             [--backends sqlite,postgresql] [--point 2.0] [--out OUT]
                                             [--sides agno-migrate,agno,floor]

Input: the table fixture pack's Agno 2.0 point (tests/fixtures-tables/2.0: the database the real Agno 2.0.11
wrote, every table it has: sessions with their runs in the ``runs`` blob, memories, evals, knowledge, metrics),
loaded as it is, then its sessions and memories copied under fresh ids up to --sessions / --memories. A copy
is the original row with every id the generator wrote (``...1234000-<hex>``: session ids, run ids and the
session ids inside the run blobs, memory ids) given a per-copy infix, by ``replace()`` on the column's text in
SQL: every other byte of every column is kept, so each copy has the shape Agno 2.0.11 wrote (the JSON
encodings, the SQLite runs blob that is a JSON string holding the list, ...). Evals, knowledge and metrics stay
the pack's rows (metrics are unique per date and period). The input is built once per run: a SQLite file, and a
PostgreSQL template database.

``--point 2.6`` (issue 16: the 2.x -> 3.x runs split where users are today): the input is the sessions fixture
pack's Agno 2.6.0 point (tests/fixtures/2.6.0, as the real Agno 2.6.0 wrote it: a sessions table at 2.5.6 with the
runs in its blob), its sessions copied the same way (mark ``-0000``: the session ids, the run ids and the session
ids inside the runs get the copy's infix, so every copy's run ids are unique) up to --sessions; ``--backends`` may
name ``mysql`` (MariaDB: a template database copied table by table; sides A and C only, Agno's MigrationManager
does not work there).

Each round, for each backend, each side gets a fresh copy of the input (a file copy, or CREATE DATABASE ...
TEMPLATE; outside the measurement) and runs in its own process:

- A: ``agno-migrate --db-url URL -q upgrade``, the CLI as a user runs it (its modules byte-compiled first, as
  ``pip install`` leaves them);
- B: Agno 3.1.10's ``asyncio.run(MigrationManager(db).up())`` (benchmarks/agno_whole_side.py) in the project's
  reference environment (tests/agno_side/env.py), with ``SqliteDb(db_file=...)`` / ``PostgresDb(db_url=...,
  db_schema="ai")``;
- C, the physical floor: benchmarks/floor_side.py, the same DDL and data changes by the raw driver (sqlite3 /
  psycopg) in one transaction, the runs copied by one set-based ``INSERT ... SELECT`` (no checks, no per-row
  rules: the floor, not a replacement; it must end with the same row counts and stamps as A).

All are timed as whole processes (wall clock; start-up and imports included on every side); B's ``up()``
alone is reported beside it; ``--sides agno-migrate,floor`` leaves B out (slow at 100k). The sides alternate
their order (A B C, then C B A), round after round. After each side the
rows of every table of the result are counted: the sides must end with the same tables and the same
counts (the same work), or the run stops. Medians per side and backend, the ratio B/A (how many times
faster agno-migrate is), B/C (what Agno leaves on the table) and C/A (agno-migrate's speed as a share of the
floor's; where B/C < 3, A >= 3x B is physically unreachable) and each side's peak RSS are written to OUT.md /
OUT.json with the machine, the versions and the load. Between the rounds, on each SQL backend, the cost of
importing what agno-migrate is built on (SQLAlchemy, Alembic, the dialect and its driver) beyond the driver alone
(what the floor imports) is measured in fresh processes: A can be no faster than C plus it, which bounds the B/A
any run of agno-migrate can reach (written beside the figures).
"""

from __future__ import annotations

import argparse
import datetime
import json
import lzma
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PACK = REPO / "tests" / "fixtures-tables"


@dataclass(frozen=True)
class Point:
    """An input: the fixture folder, the mark every id its generator wrote contains (a copy's ids get an infix
    after it), the tables whose rows are copied up to the size asked, and the Agno release that wrote it."""

    folder: Path
    mark: str
    copied: tuple[str, ...]
    written_by: str


POINTS = {
    "2.0": Point(PACK / "2.0", "1234000-", ("agno_sessions", "agno_memories"), "2.0.11"),
    "2.6": Point(REPO / "tests" / "fixtures" / "2.6.0", "-0000", ("agno_sessions",), "2.6.0"),
}
DUMPS = {"sqlite": "sqlite.db.xz", "postgresql": "postgres.sql.xz", "mysql": "mysql.sql.xz"}
MY_ADMIN = os.environ.get("AGNO_MIGRATE_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test")
CLI = Path(sys.executable).parent / "agno-migrate"
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO / "tests"))
from agno_side import env as agno_env  # noqa: E402
from bench_store import (  # noqa: E402
    MEASURE,
    MONGO,
    PG_ADMIN,
    dated,  # noqa: E402
    machine,
    mongo_db_url,
    mongo_server,
    pg_settings,
    versions,
)

SCHEMA = "ai"  # the pack's PostgreSQL schema


# --- input -----------------------------------------------------------------------------------------------


def _admin():
    import psycopg

    return psycopg.connect(PG_ADMIN.replace("+psycopg", ""), autocommit=True)


def pg_url(name: str) -> str:
    return PG_ADMIN.rsplit("/", 1)[0] + "/" + name


def _copy_sql(table: str, columns: list[tuple[str, str]], copies: int, limit: int, backend: str, mark: str) -> str:
    """INSERT of ``limit`` copies of ``table``'s original rows (copy k of each row before copy k+1), every
    text or JSON column's ids given the infix ``k<k>-`` after ``mark``."""
    new = {
        "postgresql": f"'{mark}' || 'k' || lpad(n.k::text, 5, '0') || '-'",
        "sqlite": f"'{mark}' || 'k' || printf('%05d', n.k) || '-'",
        "mysql": f"concat('{mark}', 'k', lpad(n.k, 5, '0'), '-')",
    }[backend]
    select = []
    for name, kind in columns:
        if kind == "text":
            select.append(f"replace(o.{name}, '{mark}', {new})")
        elif kind in ("json", "jsonb"):
            select.append(f"replace(o.{name}::text, '{mark}', {new})::{kind}")
        else:
            select.append(f"o.{name}")
    numbers = {
        "postgresql": f"generate_series(1, {copies}) AS n(k)",
        "sqlite": f"(WITH RECURSIVE s(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM s WHERE k < {copies}) "
        "SELECT k FROM s) n",
        "mysql": f"(SELECT seq AS k FROM seq_1_to_{copies}) n",  # MariaDB's sequence engine
    }[backend]
    key = columns[0][0]
    target = f"{SCHEMA}.{table}" if backend == "postgresql" else table
    source = f"{SCHEMA}.{table}_orig" if backend == "postgresql" else f"{table}_orig"
    return (
        f"INSERT INTO {target} ({', '.join(n for n, _ in columns)}) SELECT {', '.join(select)} "
        f"FROM {source} o CROSS JOIN {numbers} ORDER BY n.k, o.{key} LIMIT {limit}"
    )


def _mongo():
    """A client of the run's throw-away mongod (started on first use, stopped by main)."""
    import pymongo

    return pymongo.MongoClient(mongo_server().url)


def _load_mongo(db, folder: Path) -> None:
    """The pack's collections as the real Agno wrote them (documents, then their indexes)."""
    from bson import json_util

    for data in sorted(folder.glob("*.jsonl.xz")):
        name = data.name[: -len(".jsonl.xz")]
        docs = [json_util.loads(line) for line in lzma.open(data, "rt", encoding="utf-8") if line.strip()]
        if docs:
            db[name].insert_many(docs)
        spec = json_util.loads(lzma.open(folder / f"{name}.indexes.json.xz", "rt", encoding="utf-8").read())
        _create_indexes(db[name], spec)


def _create_indexes(coll, spec: dict) -> None:
    for index, info in spec.items():
        if index != "_id_":
            coll.create_index([(f, int(d)) for f, d in info["key"]], name=index, unique=bool(info.get("unique")))


def _build_mongo(point: Point, wanted: dict) -> str:
    """A template database on the run's mongod: the point's collections, its sessions (and memories) copied
    under fresh ids (the document's Extended JSON with the mark given the copy's infix: every other value kept)."""
    from bson import json_util

    name = f"bench_whole_tpl_{uuid.uuid4().hex[:8]}"
    mark = point.mark
    with _mongo() as client:
        db = client[name]
        _load_mongo(db, point.folder / "mongo")
        for coll, total in wanted.items():
            originals = list(db[coll].find({}, {"_id": 0}).sort(coll_key(coll), 1))
            if any(mark not in doc[coll_key(coll)] for doc in originals) or not originals:
                raise SystemExit(f"{coll}: every original needs '{mark}' in {coll_key(coll)} to be copied")
            texts = [json_util.dumps(doc) for doc in originals]
            batch = []
            for n in range(total - len(originals)):
                k, doc = divmod(n, len(originals))
                batch.append(json_util.loads(texts[doc].replace(mark, f"{mark}k{k + 1:05d}-")))
                if len(batch) == 1000:
                    db[coll].insert_many(batch)
                    batch = []
            if batch:
                db[coll].insert_many(batch)
            got = db[coll].count_documents({})
            if got != total:
                raise SystemExit(f"input: {coll} has {got} documents, {total} wanted")
    return name


def coll_key(coll: str) -> str:
    return {"agno_sessions": "session_id", "agno_memories": "memory_id"}[coll]


def build_input(backend: str, sessions: int, memories: int, cache: Path, point: str = "2.0") -> str:
    """The input database: a SQLite file's path, or a PostgreSQL / MariaDB / MongoDB template database's name."""
    p = POINTS[point]
    wanted = {t: {"agno_sessions": sessions, "agno_memories": memories}[t] for t in p.copied}
    if backend == "mongodb":
        return _build_mongo(p, wanted)
    dump = lzma.open(p.folder / DUMPS[backend]).read()
    if backend == "sqlite":
        path = cache / f"whole-{point}-{sessions}-{memories}.db"
        path.unlink(missing_ok=True)
        path.write_bytes(dump)
        db = sqlite3.connect(path, isolation_level=None)
        db.execute("BEGIN")

        def sqlite_columns(table):
            info = db.execute(f"PRAGMA table_info({table})").fetchall()
            # SQLite has no json type: a JSON column's text is replaced like any text
            kinds = [(c[1], "text" if c[2].upper() in ("VARCHAR", "JSON", "TEXT") else "other", c[5]) for c in info]
            return [(n, k) for n, k, _ in sorted(kinds, key=lambda c: not c[2])]  # the key first

        _fill(db.execute, backend, "", wanted, p.mark, sqlite_columns)
        db.execute("COMMIT")
        db.execute("VACUUM")
        db.close()
        return str(path)
    name = f"bench_whole_tpl_{uuid.uuid4().hex[:8]}"
    if backend == "mysql":
        return _build_mysql(name, dump, p.mark, wanted)
    with _admin() as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    import psycopg

    body = "\n".join(line for line in dump.decode().splitlines() if not line.startswith("\\"))
    with psycopg.connect(pg_url(name).replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(body)
        conn.execute("SET search_path TO public")  # the dump empties it
        kinds = {"character varying": "text", "text": "text", "json": "json", "jsonb": "jsonb"}

        def pg_columns(table):
            rows = conn.execute(
                "SELECT c.column_name, c.data_type, (k.column_name IS NOT NULL) FROM information_schema.columns c "
                "LEFT JOIN information_schema.key_column_usage k ON k.table_schema = c.table_schema "
                "AND k.table_name = c.table_name AND k.column_name = c.column_name "
                "AND k.constraint_name LIKE '%%pkey' WHERE c.table_schema = %s AND c.table_name = %s "
                "ORDER BY c.ordinal_position",
                (SCHEMA, table),
            ).fetchall()
            return [(n, kinds.get(t, "other")) for n, t, _ in sorted(rows, key=lambda r: not r[2])]

        with conn.transaction():
            _fill(conn.execute, backend, f"{SCHEMA}.", wanted, p.mark, pg_columns)
        conn.execute("VACUUM ANALYZE")
    return name


def _my(database: str | None = None):
    """A pymysql connection to the MariaDB server (autocommit; ``database`` selected when given)."""
    import pymysql
    from pymysql.constants import CLIENT
    from sqlalchemy.engine import make_url

    u = make_url(MY_ADMIN)
    return pymysql.connect(host=u.host, port=u.port or 3306, user=u.username, password=u.password or "",
                           database=database, charset="utf8mb4", autocommit=True,
                           client_flag=CLIENT.MULTI_STATEMENTS)  # fmt: skip


def my_url(name: str) -> str:
    return MY_ADMIN.rsplit("/", 1)[0] + "/" + name


def _build_mysql(name: str, dump: bytes, mark: str, wanted: dict) -> str:
    """A template database on the MariaDB server: the point's dump, its sessions copied under fresh ids."""
    with _my() as admin, admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    with _my(name) as conn, conn.cursor() as cur:
        cur.execute(dump.decode())
        while cur.nextset():
            pass

        def execute(sql):
            cur.execute(sql)
            return cur

        def my_columns(table):
            cur.execute(f"SHOW COLUMNS FROM {table}")
            rows = cur.fetchall()  # (Field, Type, Null, Key, Default, Extra)
            text = ("varchar", "longtext", "text", "json")
            return [
                (r[0], "text" if r[1].startswith(text) else "other") for r in sorted(rows, key=lambda r: r[3] != "PRI")
            ]

        _fill(execute, "mysql", "", wanted, mark, my_columns)
    return name


def _fill(execute, backend: str, prefix: str, wanted: dict, mark: str, columns_of) -> None:
    """Each table of ``wanted`` copied up to its number of rows (``columns_of(table)``: (name, kind), the key
    first), then counted."""
    for table, total in wanted.items():
        columns = columns_of(table)
        original = _prepare(execute, table, total, columns, prefix, mark)
        if total > original:
            execute(_copy_sql(table, columns, -(-(total - original) // original), total - original, backend, mark))
        execute(f"DROP TABLE {prefix}{table}_orig")
    for table, total in wanted.items():
        got = execute(f"SELECT count(*) FROM {prefix}{table}").fetchone()[0]
        if got != total:
            raise SystemExit(f"input: {table} has {got} rows, {total} wanted")


def _prepare(execute, table: str, total: int, columns: list, prefix: str, mark: str) -> int:
    """A side copy of ``table``'s original rows to copy from; returns their number (every one must carry the
    mark in its key, or copies would collide)."""
    key = columns[0][0]
    original = execute(f"SELECT count(*) FROM {prefix}{table}").fetchone()[0]
    marked = execute(f"SELECT count(*) FROM {prefix}{table} WHERE {key} LIKE '%{mark}%'").fetchone()[0]
    if marked != original or original == 0:
        raise SystemExit(f"{table}: {original - marked} of {original} rows have no '{mark}' in {key}: cannot copy")
    if total < original:
        raise SystemExit(f"{table}: the point has {original} rows already; ask for at least that many")
    execute(f"CREATE TABLE {prefix}{table}_orig AS SELECT * FROM {prefix}{table}")
    return original


# --- one side on one fresh copy ---------------------------------------------------------------------------


def compile_agno_migrate() -> None:
    """Byte-compile the agno-migrate side A runs (its package and its revision scripts), as pip does when it
    installs a package; not timed. B's reference environment was installed by pip (compiled); a source
    checkout run with PYTHONDONTWRITEBYTECODE set has no ``__pycache__``, and A would compile some 60 modules
    from source in every run."""
    import compileall

    import agno_migrate
    from agno_migrate.migrate import versions_root

    for folder in (Path(agno_migrate.__file__).parent, versions_root()):  # compile_dir skips symlinked folders
        if not compileall.compile_dir(folder, quiet=1):
            raise SystemExit(f"could not byte-compile {folder}")


def fresh_copy(backend: str, source: str, tmp: Path) -> str:
    if backend == "mongodb":
        name = f"bench_whole_{uuid.uuid4().hex[:10]}"
        with _mongo() as client:
            for coll in client[source].list_collection_names():
                client[source][coll].aggregate([{"$out": {"db": name, "coll": coll}}])
                _create_indexes(client[name][coll], client[source][coll].index_information())
        return mongo_db_url(mongo_server().url, name)
    if backend == "sqlite":
        path = tmp / f"{uuid.uuid4().hex}.db"
        shutil.copy(source, path)
        return f"sqlite:///{path}"
    name = f"bench_whole_{uuid.uuid4().hex[:10]}"
    if backend == "mysql":  # no template databases: each table created alike and filled
        with _my() as conn, conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
            cur.execute(f"SHOW TABLES FROM `{source}`")
            for (table,) in cur.fetchall():
                cur.execute(f"CREATE TABLE `{name}`.`{table}` LIKE `{source}`.`{table}`")
                cur.execute(f"INSERT INTO `{name}`.`{table}` SELECT * FROM `{source}`.`{table}`")
        return my_url(name)
    with _admin() as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{source}"')
        # the copy's WAL (the whole database) flushed by a checkpoint now: otherwise the side timed next pays for
        # it (a checkpoint falling due mid-run, and full-page images of every page it first writes after it)
        admin.execute("CHECKPOINT")
    return pg_url(name)


def drop(url: str) -> None:
    if url.startswith("mongodb"):
        with _mongo() as client:
            client.drop_database(url.split("?")[0].rsplit("/", 1)[1])
        return
    if url.startswith("sqlite"):
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(url.split("///", 1)[1] + suffix).unlink(missing_ok=True)
        return
    if url.startswith("mysql"):
        with _my() as conn, conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{url.rsplit('/', 1)[1]}`")
        return
    with _admin() as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


STAMPS = "agno_schema_versions"
OURS_PREFIX = "agno_migrate_"  # agno-migrate's own record of what it applied (no Agno data)


def _bare(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def result_of(url: str) -> dict:
    """Rows in every table of the database (PostgreSQL: every schema but the system's), and the Agno stamps
    (agno_schema_versions: table -> version)."""
    if url.startswith("mongodb"):
        with _mongo() as client:
            db = client[url.split("?")[0].rsplit("/", 1)[1]]
            names = sorted(db.list_collection_names())
            counts = {n: db[n].count_documents({}) for n in names}
            stamps = {d["table_name"]: d["version"] for d in db[STAMPS].find()} if STAMPS in names else {}
        return {"counts": counts, "stamps": stamps}
    if url.startswith("sqlite"):
        db = sqlite3.connect(url.split("///", 1)[1])
        try:
            names = sorted(r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'"))
            counts = {n: db.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0] for n in names}
            stamps = dict(db.execute(f"SELECT table_name, version FROM {STAMPS}")) if STAMPS in names else {}
        finally:
            db.close()
        return {"counts": counts, "stamps": stamps}
    if url.startswith("mysql"):
        with _my(url.rsplit("/", 1)[1]) as conn, conn.cursor() as cur:
            cur.execute("SHOW TABLES")
            names = sorted(r[0] for r in cur.fetchall())
            counts = {}
            for n in names:
                cur.execute(f"SELECT count(*) FROM `{n}`")
                counts[n] = cur.fetchone()[0]
            stamps = {}
            if STAMPS in names:
                cur.execute(f"SELECT table_name, version FROM {STAMPS}")
                stamps = dict(cur.fetchall())
        return {"counts": counts, "stamps": stamps}
    import psycopg

    with psycopg.connect(url.replace("+psycopg", "")) as conn:
        names = conn.execute(
            "SELECT table_schema, table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE' "
            "AND table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2"
        ).fetchall()
        counts = {f"{s}.{n}": conn.execute(f'SELECT count(*) FROM "{s}"."{n}"').fetchone()[0] for s, n in names}
        stamps = {}
        for s, n in names:
            if n == STAMPS:
                stamps.update(conn.execute(f'SELECT table_name, version FROM "{s}"."{n}"').fetchall())
    return {"counts": counts, "stamps": stamps}


def same_work(inp: dict, a: dict, b: dict) -> list[str]:
    """How the two results differ in Agno's data: the row count of any table but the stamps and
    agno-migrate's own record, or the stamp of a table the input had. Empty: the same work."""

    def data(r: dict) -> dict:
        return {t: n for t, n in r["counts"].items() if _bare(t) != STAMPS and not _bare(t).startswith(OURS_PREFIX)}

    differ = [f"{t}: {data(a).get(t)} vs {data(b).get(t)}" for t in sorted(set(data(a)) | set(data(b)))
              if data(a).get(t) != data(b).get(t)]  # fmt: skip
    for t in map(_bare, inp["counts"]):
        if a["stamps"].get(t) != b["stamps"].get(t):
            differ.append(f"stamp of {t}: {a['stamps'].get(t)} vs {b['stamps'].get(t)}")
    return differ


def run_side(side: str, url: str, point: str = "2.0") -> dict:
    """One side's upgrade of ``url`` in its own process: wall seconds, the load just before, the process's peak
    RSS (MiB), and (B) up() alone."""
    if side == "agno-migrate":
        cmd, env = [str(CLI), "--db-url", url, "-q", "upgrade"], None
    elif side == "floor":
        cmd, env = [sys.executable, str(HERE / "floor_side.py"), url, point], None
    else:
        cmd, env = [str(agno_env.agno_python()), str(HERE / "agno_whole_side.py"), url], agno_env.clean_env()
    load = os.getloadavg()[0]
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", MEASURE, *cmd], capture_output=True, text=True, env=env)
    took = time.perf_counter() - start
    out = json.loads(done.stdout.strip().splitlines()[-1])
    if out["rc"] != 0:
        raise SystemExit(f"{side} failed (exit {out['rc']}) on {url}:\n{out['err']}")
    figures = {"seconds": took, "load_before": load, "rss_mib": out["rss_kib"] / 1024}
    if side == "agno":
        figures.update(json.loads(out["out"].strip().splitlines()[-1]))
    return figures


DRIVERS = {"sqlite": "sqlite3", "postgresql": "psycopg", "mysql": "pymysql"}
LIBRARIES = "sqlalchemy, alembic.runtime.migration, alembic.operations, sqlalchemy.dialects.{dialect}, {driver}"
"""What agno-migrate's SQL upgrade is built on (SQLAlchemy, Alembic's runtime and operations, the dialect and its
driver): the floor imports the driver alone."""


def import_cost(backend: str, repeat: int = 3) -> dict:
    """The least a process pays to import the libraries agno-migrate's SQL upgrade is built on, beyond the driver
    alone (what the floor imports): median wall seconds of ``python -c "import ..."`` each way, and the difference
    ``extra`` (None on MongoDB, which has no floor side)."""
    driver = DRIVERS.get(backend)
    if driver is None:
        return {}
    dialect = {"sqlite": "sqlite", "postgresql": "postgresql", "mysql": "mysql"}[backend]

    def wall(modules: str) -> float:
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", f"import {modules}"], check=True)
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    libraries, alone = wall(LIBRARIES.format(dialect=dialect, driver=driver)), wall(driver)
    return {"libraries": libraries, "driver": alone, "extra": libraries - alone}


def check_at_head(url: str) -> int:
    """``agno-migrate check``'s exit code on a result (0: every Agno table at head, as we read it)."""
    return subprocess.run([str(CLI), "--db-url", url, "-q", "check"], capture_output=True).returncode


# --- the run ----------------------------------------------------------------------------------------------

SIDES = ("agno-migrate", "agno", "floor")


def sides_of(backend: str, wanted: tuple[str, ...] = SIDES) -> tuple[str, ...]:
    """The sides of ``wanted`` run on ``backend``: MongoDB has no floor side (floor_side.py is SQL), MariaDB no
    Agno side (Agno 3.1.10's MigrationManager does not work there)."""
    return tuple(s for s in {"mongodb": SIDES[:2], "mysql": SIDES[::2]}.get(backend, SIDES) if s in wanted)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sessions", type=int, default=10_000)
    ap.add_argument("--memories", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--backends", default="sqlite,postgresql", help="of sqlite, postgresql, mysql (MariaDB), mongodb")
    ap.add_argument("--point", default="2.0", choices=sorted(POINTS), help="the input's Agno release (default 2.0)")
    ap.add_argument("--out", default=None, help="default: results/whole-upgrade[-26]-<date>-<time>")
    ap.add_argument("--note", default="", help="a sentence for the results file (e.g. what else ran)")
    ap.add_argument("--sides", default=",".join(SIDES), help="of agno-migrate (A, always), agno (B), floor (C)")
    args = ap.parse_args()
    wanted = tuple(args.sides.split(","))
    if "agno-migrate" not in wanted or not set(wanted) <= set(SIDES):
        ap.error(f"--sides: agno-migrate and any of {', '.join(SIDES[1:])}")
    args.out = args.out or dated(
        "whole-upgrade" if args.point == "2.0" else f"whole-upgrade-{args.point.replace('.', '')}"
    )
    backends = args.backends.split(",")
    if "agno" in wanted:
        agno_env.agno_python()  # built before anything is timed
    compile_agno_migrate()
    tmp = Path(tempfile.mkdtemp(prefix="agno-whole-"))
    inputs: dict[str, str] = {}
    try:
        for b in backends:
            start = time.perf_counter()
            inputs[b] = build_input(b, args.sessions, args.memories, tmp, args.point)
            print(f"input {b}: {time.perf_counter() - start:.1f} s", flush=True)
        results: dict = {b: {s: [] for s in sides_of(b, wanted)} for b in backends}
        counts: dict = {b: {} for b in backends}
        heads: dict = {b: {} for b in backends}
        imports: dict = {b: [] for b in backends}
        for k in range(args.rounds):
            for b in backends:
                for side in sides_of(b, wanted) if k % 2 == 0 else sides_of(b, wanted)[::-1]:
                    url = fresh_copy(b, inputs[b], tmp)
                    try:
                        if k == 0:
                            counts[b].setdefault("input", result_of(url))
                        figures = run_side(side, url, args.point)
                        after = result_of(url)
                        heads[b].setdefault(side, check_at_head(url))
                    finally:
                        drop(url)
                    seen = counts[b].setdefault(side, after)
                    if seen["counts"] != after["counts"]:
                        raise SystemExit(f"{b} {side}: round {k + 1} ends with {after}, an earlier one with {seen}")
                    results[b][side].append(figures)
                    print(
                        f"round {k + 1} {b} {side}: {figures['seconds']:.2f} s, {figures['rss_mib']:.0f} MiB",
                        flush=True,
                    )
                if "floor" in sides_of(b, wanted):
                    imports[b].append(import_cost(b))
                for other in sides_of(b, wanted)[1:]:
                    differ = same_work(counts[b]["input"], counts[b]["agno-migrate"], counts[b][other])
                    if differ:
                        raise SystemExit(f"{b}: agno-migrate and {other} did different work: {'; '.join(differ)}")
        write(args, results, counts, heads, imports)
    finally:
        for b, source in inputs.items():
            if b == "postgresql":
                with _admin() as admin:
                    admin.execute(f'DROP DATABASE IF EXISTS "{source}" WITH (FORCE)')
            if b == "mysql":
                drop(my_url(source))
            if b == "mongodb":
                with _mongo() as client:
                    client.drop_database(source)
        for server in MONGO:
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def _round(f: dict) -> str:
    alone = f"{f['up_seconds']:.2f}, " if "up_seconds" in f else ""
    return f"{f['seconds']:.2f} ({alone}load {f['load_before']:.1f})"


def _goal(point: str) -> str:
    """The goal of B/A (issue 14 for the whole 2.0 database, issue 16 for the 2.6 runs split)."""
    return "≥ 3×" if point == "2.0" else "≥ 2× SQLite, ≥ 3× PostgreSQL"


def _least(point: str, backend: str) -> float:
    """The B/A goal on ``backend`` (issue 14: 3× everywhere; issue 16: 2× on SQLite, 3× elsewhere)."""
    return 2.0 if point != "2.0" and backend == "sqlite" else 3.0


def _import_lines(med: dict, imports: dict, point: str) -> list[str]:
    """What importing the libraries agno-migrate is built on costs beyond the floor's driver, and the best B/A that
    leaves: A can be no faster than C plus that cost."""
    rows = []
    for b, seen in imports.items():
        if not seen or "agno" not in med[b] or "floor" not in med[b]:
            continue
        extra = statistics.median(i["extra"] for i in seen)
        libraries = statistics.median(i["libraries"] for i in seen)
        driver = statistics.median(i["driver"] for i in seen)
        best = med[b]["agno"] / (med[b]["floor"] + extra)
        goal = _least(point, b)
        verdict = "reachable in principle" if best >= goal else f"below the goal of {goal:g}×: unreachable"
        rows.append(
            f"| {b} | {libraries:.3f} | {driver:.3f} | {extra:.3f} | {med[b]['floor'] + extra:.2f} | "
            f"{best:.2f}× ({verdict}) |"
        )
    if not rows:
        return []
    return [
        "",
        "Imports: A is built on SQLAlchemy and Alembic (the product's SQL revisions are Alembic's), which the floor "
        "does not import. Median wall time of a process that only imports them with the dialect and its driver "
        f"(`import {LIBRARIES}`) and of one that imports the driver alone, {len(next(iter(imports.values())))} "
        "measurement(s) of 3 per backend, taken between the rounds: the difference is a cost no agno-migrate run "
        "can avoid, so A ≥ C + that difference, and B/A can be at most B / (C + difference).",
        "",
        "| backend | import the libraries (s) | import the driver alone (s) | difference (s) | least A: C + difference "
        "(s) | best B/A reachable |",
        "|---|---|---|---|---|---|",
        *rows,
    ]


def _input_text(args) -> str:
    p = POINTS[args.point]
    what = (
        f"its sessions and memories copied under fresh ids to {args.sessions:,} sessions (runs in the `runs` blob) "
        f"and {args.memories:,} memories; the pack's evals, knowledge and metrics as they are"
        if "agno_memories" in p.copied
        else f"its sessions (runs in the `runs` blob) copied under fresh ids (session ids, run ids, the session ids "
        f"inside the runs: unique per copy) to {args.sessions:,} sessions"
    )
    return (
        f"Input: `{p.folder.relative_to(REPO)}`, the Agno {args.point} point as the real Agno {p.written_by} wrote "
        f"it, {what}. {args.rounds} rounds, the sides alternating which goes first, each on a fresh copy of the "
        "input (copy time not measured)."
    )


def write(args, results: dict, counts: dict, heads: dict, imports: dict | None = None) -> None:
    med = {
        b: {s: statistics.median(f["seconds"] for f in figs) for s, figs in sides.items()}
        for b, sides in results.items()
    }
    lines = [
        f"# Whole-database upgrade: agno-migrate vs Agno's MigrationManager ({datetime.datetime.now():%Y-%m-%d %H:%M})",
        "",
        f"Machine: {machine()}; {pg_settings()}.",
        f"Versions: {versions()}.",
        "",
        _input_text(args),
        "",
        "A: `agno-migrate --db-url URL -q upgrade` (the CLI, its own process; its modules byte-compiled before the "
        "run, as `pip install` leaves them and as B's reference env is). B: Agno 3.1.10 "
        "`asyncio.run(MigrationManager(db).up())` in the reference env (its own process; none on MariaDB, where Agno's "
        "MigrationManager does not work). All timed as whole processes (wall clock, start-up and imports included); "
        "B's `up()` alone in brackets. `load`: 1-minute load average just before each side. Peak RSS: the side's "
        "process (and its children), the largest over the rounds.",
        "",
        "C, the physical floor (`floor_side.py`, its own process, timed the same way): the same DDL and data changes "
        "by the raw driver (sqlite3 / psycopg / pymysql) in one transaction where the database has them, with minimal "
        "Python, the runs copied by ONE set-based `INSERT … SELECT` (`json_each` / `jsonb_array_elements` / "
        "`JSON_TABLE`), the runs table's indexes built after it. It is the floor, not a replacement: "
        "no checks, no resumability, no per-row rules (runs without a plain `run_id`, shared ids, NUL escapes are "
        "not handled); it must end with the same row counts and stamps as A (checked every round). B/C: what "
        "Agno's MigrationManager leaves on the table; C/A: agno-migrate's speed as a share of the floor's. Where "
        "B/C < 3, the goal A ≥ 3× B is physically unreachable on that backend (A would have to beat the floor).",
        "",
        *([args.note, ""] if args.note else []),
        f"| backend | A agno-migrate (median s) | B Agno MigrationManager (median s) | C floor (median s) "
        f"| B/A (goal {_goal(args.point)}) | B/C | C/A (goal ≥ 0.80) | peak RSS MiB A / B / C "
        "| every round A | every round B (up() alone) | every round C |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for b, sides in results.items():
        a, g, c = med[b]["agno-migrate"], med[b].get("agno"), med[b].get("floor")
        ratio = lambda x, y: f"{x / y:.2f}×" if x and y else "—"  # noqa: E731
        rss = " / ".join(f"{max(f['rss_mib'] for f in sides[s]):.0f}" if s in sides else "—" for s in SIDES)
        lines.append(
            f"| {b} | {a:.2f} | {f'{g:.2f}' if g else '—'} | {f'{c:.2f}' if c else '—'} | {ratio(g, a)} | "
            f"{ratio(g, c)} | {f'{c / a:.2f}' if c else '—'} | {rss} | "
            + " | ".join(", ".join(_round(f) for f in sides.get(s, ())) or "—" for s in SIDES)
            + " |"
        )
    for b in results:
        if "floor" in med[b] and "agno" in med[b] and med[b]["agno"] / med[b]["floor"] < _least(args.point, b):
            lines += [
                "",
                f"{b}: B/C < {_least(args.point, b):g}: the goal A ≥ {_least(args.point, b):g}× B is physically "
                "unreachable on this backend (A would have to beat the floor).",
            ]
    lines += _import_lines(med, imports or {}, args.point)
    lines += [
        "",
        "## The same work",
        "",
        "Rows in every table after each side (the same in every round, or the run stops), and the version each "
        f"side stamped in `{STAMPS}` for the input's tables. Compared: every table's rows but `{STAMPS}`'s (Agno "
        "stamps every table type it walks, the absent ones too; agno-migrate the tables it finds) and "
        f"`{OURS_PREFIX}*` (agno-migrate's own record of what it applied), and the input tables' stamps. "
        "`check`: `agno-migrate check`'s exit code on each side's result (0: every Agno table at head).",
        "",
    ]
    for b in results:
        c = counts[b]
        lines += [
            f"{b}: the same work; `agno-migrate check` after A exits {heads[b]['agno-migrate']}, "
            f"after B {heads[b].get('agno', '—')}, after C {heads[b].get('floor', '—')}.",
            "",
            "| table | input | after A | after B | after C | stamp A | stamp B | stamp C |",
            "|---|---|---|---|---|---|---|---|",
        ]
        none = {"counts": {}, "stamps": {}}  # a side not run on this backend
        for t in sorted(set().union(*(c.get(k, none)["counts"] for k in ("input", *SIDES)))):
            row = [c.get(k, none)["counts"].get(t, "—") for k in ("input", *SIDES)]
            row += [c.get(k, none)["stamps"].get(_bare(t), "—") for k in SIDES]
            lines.append(f"| {t} | {' | '.join(map(str, row))} |")
        lines.append("")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text("\n".join(lines), encoding="utf-8")
    out.with_suffix(".json").write_text(
        json.dumps(
            {"args": vars(args), "results": results, "counts": counts, "check": heads, "imports": imports}, indent=1
        ),
        encoding="utf-8",
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
