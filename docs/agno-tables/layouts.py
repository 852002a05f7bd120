"""Physical layouts of Agno's tables: fresh per release (from the wheels) and as found in the fixture pack.

    python layouts.py wheels   --dir W                      # pip download + unzip the releases into W/<version>/agno
    python layouts.py fresh    --dir W --out fresh.json      # every table type of every release, created on
                                                             # SQLite, PostgreSQL and MariaDB, read back
    python layouts.py mongo    --dir W --out mongo.json      # the indexes each release's MongoDb creates
    python layouts.py fixtures --pack P --out fixtures.json  # what the fixture pack's databases physically hold
    python layouts.py upgraded --pack P --out upgraded.json --agno-python PY
                                                             # the same after Agno 3.1.10's MigrationManager.up()
    python layouts.py upgraded --dir W --out upgraded-fresh.json --agno-python PY
                                                             # every release's fresh tables (stamped as the release
                                                             # stamps them), after Agno 3.1.10's MigrationManager.up()
    python layouts.py mongo-upgraded --pack P --mongo URL --out mongo-upgraded.json --agno-python PY
                                                             # each point's MongoDB collections as loaded, after
                                                             # MigrationManager.up(), after 3.1.10's index bootstrap

Servers: PostgreSQL and MariaDB on 127.0.0.1 (`--pg`, `--my` change the URLs); every scratch database is
named `agt_<random>` and dropped at the end. Run with a Python that has sqlalchemy, psycopg (3) and pymysql.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import reflect  # noqa: E402

RELEASES = ["2.0.11", "2.3.26", "2.5.0", "2.5.17", "2.6.22", "2.9.0", "3.1.10"]
POINTS = {"2.0": "2.0.11", "2.3": "2.3.26", "2.5": "2.5.17", "2.9": "2.9.0", "3.1": "3.1.10", "v1": "1.8.4"}
PG = "postgresql://postgres@127.0.0.1:5432/postgres"
MY = "mysql://root@127.0.0.1:3306/"


def _pg_parts(url: str) -> dict[str, Any]:
    from urllib.parse import urlparse

    u = urlparse(url)
    return {"host": u.hostname or "127.0.0.1", "port": u.port or 5432, "user": u.username or "postgres"}


def _my_parts(url: str) -> dict[str, Any]:
    from urllib.parse import urlparse

    u = urlparse(url)
    return {
        "host": u.hostname or "127.0.0.1",
        "port": u.port or 3306,
        "user": u.username or "root",
        "password": u.password or "",
    }


@contextmanager
def scratch_pg(url: str):
    import psycopg

    p = _pg_parts(url)
    name = "agt_" + uuid.uuid4().hex[:10]
    with psycopg.connect(dbname="postgres", autocommit=True, **p) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name, p
    finally:
        with psycopg.connect(dbname="postgres", autocommit=True, **p) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def scratch_my(url: str):
    import pymysql

    p = _my_parts(url)
    name = "agt_" + uuid.uuid4().hex[:10]
    admin = pymysql.connect(autocommit=True, **p)
    admin.cursor().execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    try:
        yield name, p
    finally:
        admin.cursor().execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()


def read_pg(name: str, p: dict[str, Any], schema: str) -> dict[str, Any]:
    import psycopg

    with psycopg.connect(dbname=name, **p) as conn:
        return reflect.postgres_tables(conn, schema)


def read_my(name: str, p: dict[str, Any]) -> dict[str, Any]:
    import pymysql

    conn = pymysql.connect(database=name, **p)
    try:
        return reflect.mysql_tables(conn, name)
    finally:
        conn.close()


# -- wheels -----------------------------------------------------------------------------------------------


def cmd_wheels(args: argparse.Namespace) -> None:
    root = Path(args.dir)
    (root / "wheels").mkdir(parents=True, exist_ok=True)
    for version in ["1.8.4", *RELEASES]:
        target = root / version
        if (target / "agno").is_dir():
            continue
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "-q",
                "--no-deps",
                f"agno=={version}",
                "-d",
                str(root / "wheels"),
            ],
            check=True,
        )
        with zipfile.ZipFile(root / "wheels" / f"agno-{version}-py3-none-any.whl") as wheel:
            wheel.extractall(target, [n for n in wheel.namelist() if n.startswith("agno/")])
        print(f"{version}: {target / 'agno'}")


# -- fresh layouts, per release ---------------------------------------------------------------------------


def latest_stamp(agno_dir: Path) -> str | None:
    """The version a release stamps on the tables it creates: its MigrationManager's last version (None: 2.0.x)."""
    manager = agno_dir / "db/migrations/manager.py"
    if not manager.exists():
        return None
    return re.findall(r'parse\("([0-9.]+)"\)', manager.read_text())[-1]


def materialize(agno_dir: Path, backend: str, url: str, schema: str | None, stamp: bool = False) -> dict[str, str]:
    """Create every table type the release declares for `backend` at `url`, as that release would.

    With `stamp`, also writes the release's stamp for each table into its versions table (as its Db class
    does on creating a table). Returns {table type: table name}.
    """
    import agno_schema
    from sqlalchemy import create_engine

    engine = create_engine(url)
    try:
        if backend == "postgres":
            with engine.begin() as conn:
                conn.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        metadata, names = agno_schema.build_metadata(agno_dir, backend, schema=schema)
        metadata.create_all(engine)
        version = latest_stamp(agno_dir)
        if stamp and version and "versions" in names:
            versions = metadata.tables[f"{schema}.{names['versions']}" if schema else names["versions"]]
            with engine.begin() as conn:
                for table_type, table_name in names.items():
                    if table_type != "versions":
                        conn.execute(
                            versions.insert().values(table_name=table_name, version=version, created_at="materialized")
                        )
        return names
    finally:
        engine.dispose()


def fresh_layouts(agno_dir: Path, pg_url: str, my_url: str) -> dict[str, Any]:
    """{backend: {table type: {"table": name, **layout}}} for the release in agno_dir."""
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        names = materialize(agno_dir, "sqlite", f"sqlite:///{tmp}/fresh.db", None)
        physical = reflect.sqlite_tables(f"{tmp}/fresh.db")
        out["sqlite"] = {t: {"table": n, **physical[n]} for t, n in names.items()}
    with scratch_pg(pg_url) as (db, p):
        names = materialize(
            agno_dir, "postgres", f"postgresql+psycopg://{p['user']}@{p['host']}:{p['port']}/{db}", "ai"
        )
        physical = read_pg(db, p, "ai")
        out["postgres"] = {t: {"table": n, **physical[n]} for t, n in names.items()}
    with scratch_my(my_url) as (db, p):
        url = f"mysql+pymysql://{p['user']}:{p['password']}@{p['host']}:{p['port']}/{db}"
        names = materialize(agno_dir, "mysql", url, db)
        physical = read_my(db, p)
        out["mysql"] = {t: {"table": n, **physical[n]} for t, n in names.items()}
    return out


def cmd_fresh(args: argparse.Namespace) -> None:
    result = {}
    for version in RELEASES:
        print(f"fresh layouts: {version}", file=sys.stderr)
        result[version] = fresh_layouts(Path(args.dir) / version / "agno", args.pg, args.my)
    Path(args.out).write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")


def cmd_mongo(args: argparse.Namespace) -> None:
    import agno_schema

    result = {}
    for version in RELEASES:
        indexes = agno_schema.mongo_indexes(Path(args.dir) / version / "agno")
        result[version] = {t: {"collection": agno_schema.DEFAULT_NAMES[t], "indexes": i} for t, i in indexes.items()}
    Path(args.out).write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")


# -- fixture pack -----------------------------------------------------------------------------------------


def load_pg(sql_file: Path, db: str, p: dict[str, Any]) -> None:
    env = dict(os.environ, PGHOST=p["host"], PGPORT=str(p["port"]), PGUSER=p["user"])
    subprocess.run(
        ["psql", "-q", "-X", "-v", "ON_ERROR_STOP=1", "-d", db, "-f", str(sql_file)],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )


def load_my(sql_file: Path, db: str, p: dict[str, Any]) -> None:
    cmd = ["mysql", "-h", p["host"], "-P", str(p["port"]), "-u", p["user"], db]
    if p["password"]:
        cmd.insert(1, f"-p{p['password']}")
    with open(sql_file, "rb") as f:
        subprocess.run(cmd, stdin=f, check=True)


def fixture_point(folder: Path, pg_url: str, my_url: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if (folder / "sqlite.db").exists():
        out["sqlite"] = reflect.sqlite_tables(folder / "sqlite.db")
    if (folder / "postgres.sql").exists():
        with scratch_pg(pg_url) as (db, p):
            load_pg(folder / "postgres.sql", db, p)
            out["postgres"] = read_pg(db, p, "ai")
    if (folder / "mysql.sql").exists():
        with scratch_my(my_url) as (db, p):
            load_my(folder / "mysql.sql", db, p)
            out["mysql"] = read_my(db, p)
    if (folder / "mongo").is_dir():
        out["mongo"] = reflect.mongo_collections(folder / "mongo")
    return out


def cmd_fixtures(args: argparse.Namespace) -> None:
    result = {}
    for point in POINTS:
        folder = Path(args.pack) / point
        if folder.is_dir():
            print(f"fixture point {point}", file=sys.stderr)
            result[point] = fixture_point(folder, args.pg, args.my)
    Path(args.out).write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")


# -- after Agno 3.1.10's own MigrationManager ---------------------------------------------------------------

UPGRADE_SNIPPET = r"""
import asyncio, sys
kind, target = sys.argv[1], sys.argv[2]
from agno.db.migrations.manager import MigrationManager
if kind == "sqlite":
    from agno.db.sqlite import SqliteDb
    db = SqliteDb(db_file=target)
elif kind == "postgres":
    from agno.db.postgres import PostgresDb
    db = PostgresDb(db_url=target, db_schema="ai")
elif kind == "mysql":
    from agno.db.mysql import MySQLDb
    url, schema = target.rsplit("|", 1)
    db = MySQLDb(db_url=url, db_schema=schema)
res = MigrationManager(db).up()
if asyncio.iscoroutine(res):
    asyncio.run(res)
"""


MONGO_SNIPPET = r"""
import asyncio, sys
url, name, touch = sys.argv[1], sys.argv[2], sys.argv[3] == "touch"
from agno.db.migrations.manager import MigrationManager
from agno.db.mongo import MongoDb
db = MongoDb(db_url=url, db_name=name)
if touch:  # what a 3.1.10 application does on first use of each collection: create_collection_indexes()
    present = set(db.database.list_collection_names())
    for table_type, attr in [("sessions", "session_table_name"), ("runs", "runs_table_name"),
                             ("memories", "memory_table_name"), ("metrics", "metrics_table_name"),
                             ("evals", "eval_table_name"), ("knowledge", "knowledge_table_name"),
                             ("traces", "trace_table_name"), ("spans", "span_table_name"),
                             ("learnings", "learnings_table_name"), ("schedules", "schedules_table_name"),
                             ("schedule_runs", "schedule_runs_table_name")]:
        if getattr(db, attr) in present:
            db._get_collection(table_type=table_type, create_collection_if_not_found=True)
else:
    asyncio.run(MigrationManager(db).up())
"""


def load_mongo(folder: Path, db: Any) -> None:
    """Replay a fixture's mongo/<collection>.jsonl and .indexes.json into the (empty) database `db`."""
    from bson import json_util

    for data in sorted(folder.glob("*.jsonl")):
        docs = [json_util.loads(line) for line in data.read_text().splitlines() if line.strip()]
        collection = db[data.name[: -len(".jsonl")]]
        if docs:
            collection.insert_many(docs)
    for index_file in sorted(folder.glob("*.indexes.json")):
        collection = db[index_file.name[: -len(".indexes.json")]]
        for name, info in json_util.loads(index_file.read_text()).items():
            if name != "_id_":
                collection.create_index([(k, d) for k, d in info["key"]], name=name, unique=info.get("unique", False))


def cmd_mongo_upgraded(args: argparse.Namespace) -> None:
    """Each point's MongoDB collections: as loaded, after Agno 3.1.10's MigrationManager.up(), and after a
    3.1.10 application's first use of each collection (its index bootstrap)."""
    import pymongo

    client = pymongo.MongoClient(args.mongo)
    result: dict[str, Any] = {}
    log = open(args.log, "w") if args.log else subprocess.DEVNULL
    for point in POINTS:
        folder = Path(args.pack) / point / "mongo"
        if not folder.is_dir():
            continue
        print(f"mongo {point}", file=sys.stderr)
        name = "agt_" + uuid.uuid4().hex[:10]
        try:
            load_mongo(folder, client[name])
            entry = {"loaded": reflect.mongo_database(client[name])}
            if point != "v1":
                subprocess.run(
                    [args.agno_python, "-c", MONGO_SNIPPET, args.mongo, name, "up"], check=True, stdout=log, stderr=log
                )
                entry["agno_up"] = reflect.mongo_database(client[name])
                subprocess.run(
                    [args.agno_python, "-c", MONGO_SNIPPET, args.mongo, name, "touch"],
                    check=True,
                    stdout=log,
                    stderr=log,
                )
                entry["agno_touched"] = reflect.mongo_database(client[name])
                entry["stamps"] = {d["table_name"]: d["version"] for d in client[name]["agno_schema_versions"].find()}
            result[point] = entry
        finally:
            client.drop_database(name)
    Path(args.out).write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")


def _agno_up(python: str, kind: str, target: str, log: Any) -> None:
    subprocess.run([python, "-c", UPGRADE_SNIPPET, kind, target], check=True, stdout=log, stderr=log)


def cmd_upgraded(args: argparse.Namespace) -> None:
    """Run Agno 3.1.10's MigrationManager.up() on a copy of each 2.x fixture (SQLite, PostgreSQL, MariaDB), read back.

    With --dir: on the (empty) fresh tables of every release instead, stamped as that release stamps them.
    """
    result: dict[str, Any] = {}
    log = open(args.log, "w") if args.log else subprocess.DEVNULL
    sources = RELEASES if args.dir else ["2.0", "2.3", "2.5", "2.9", "3.1"]
    for source in sources:
        print(f"agno-upgraded {source}", file=sys.stderr)
        entry: dict[str, Any] = {}
        folder = Path(args.pack) / source if args.pack else None
        agno_dir = Path(args.dir) / source / "agno" if args.dir else None
        with tempfile.TemporaryDirectory() as tmp:
            copy = Path(tmp) / "sqlite.db"
            if agno_dir:
                materialize(agno_dir, "sqlite", f"sqlite:///{copy}", None, stamp=True)
            else:
                shutil.copy(folder / "sqlite.db", copy)
            _agno_up(args.agno_python, "sqlite", str(copy), log)
            entry["sqlite"] = reflect.sqlite_tables(copy)
        with scratch_pg(args.pg) as (db, p):
            url = f"postgresql+psycopg://{p['user']}@{p['host']}:{p['port']}/{db}"
            if agno_dir:
                materialize(agno_dir, "postgres", url, "ai", stamp=True)
            else:
                load_pg(folder / "postgres.sql", db, p)
            _agno_up(args.agno_python, "postgres", url, log)
            entry["postgres"] = read_pg(db, p, "ai")
        if agno_dir or (folder / "mysql.sql").exists():
            with scratch_my(args.my) as (db, p):
                url = f"mysql+pymysql://{p['user']}:{p['password']}@{p['host']}:{p['port']}/{db}"
                if agno_dir:
                    materialize(agno_dir, "mysql", url, db, stamp=True)
                else:
                    load_my(folder / "mysql.sql", db, p)
                _agno_up(args.agno_python, "mysql", f"{url}|{db}", log)
                entry["mysql"] = read_my(db, p)
        result[source] = entry
    Path(args.out).write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pg", default=PG, help="PostgreSQL server (a scratch database is created and dropped)")
    parser.add_argument("--my", default=MY, help="MariaDB/MySQL server (a scratch database is created and dropped)")
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("wheels")
    p.add_argument("--dir", required=True)
    p.set_defaults(func=cmd_wheels)
    for name, func in (("fresh", cmd_fresh), ("mongo", cmd_mongo)):
        p = sub.add_parser(name)
        p.add_argument("--dir", required=True)
        p.add_argument("--out", required=True)
        p.set_defaults(func=func)
    p = sub.add_parser("fixtures")
    p.add_argument("--pack", required=True)
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_fixtures)
    p = sub.add_parser("upgraded")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--pack", help="the fixture pack: upgrade each 2.x point's databases")
    source.add_argument("--dir", help="the unpacked wheels: upgrade each release's fresh (empty) tables")
    p.add_argument("--out", required=True)
    p.add_argument("--agno-python", required=True, help="a python with agno==3.1.10 and its drivers")
    p.add_argument("--log", help="Agno's output goes here")
    p.set_defaults(func=cmd_upgraded)
    p = sub.add_parser("mongo-upgraded")
    p.add_argument("--pack", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--mongo", required=True, help="a MongoDB server (replica set), e.g. mongodb://127.0.0.1:PORT/")
    p.add_argument("--agno-python", required=True, help="a python with agno==3.1.10 and pymongo")
    p.add_argument("--log", help="Agno's output goes here")
    p.set_defaults(func=cmd_mongo_upgraded)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
