"""Shared fixtures: real databases (SQLite files, the PostgreSQL and MariaDB servers of the
machine), the fixture pack of Agno-written databases, and helpers to load them.

A server that cannot be reached is a test failure, never a skip: see README "Testing".
"""

from __future__ import annotations

import contextlib
import json
import lzma
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
PG_ADMIN_URL = os.environ.get("AGNO_MIGRATE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
MYSQL_ADMIN_URL = os.environ.get("AGNO_MIGRATE_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test")
SQL_BACKENDS = ("sqlite", "postgresql", "mysql")
# Lineage points per backend: Agno 2.0.0-2.3.0 could not write MySQL databases (its MySQLDb failed on every write).
POINTS = {
    "sqlite": ("2.0.0", "2.3.0", "2.5.0", "2.6.0", "3.1.10"),
    "postgresql": ("2.0.0", "2.3.0", "2.5.0", "2.6.0", "3.1.10"),
    "mysql": ("2.5.0", "2.6.0", "3.1.10"),
}
_DUMP = {"sqlite": "sqlite.db", "postgresql": "postgres.sql", "mysql": "mysql.sql"}
_EXPECTED = {"sqlite": "expected.jsonl", "postgresql": "expected.pg.jsonl", "mysql": "expected.my.jsonl",
             "mongodb": "expected.mongo.jsonl"}  # fmt: skip


def pytest_addoption(parser):
    # here, not in tests/reliability/conftest.py: pytest reads options only from the top conftest
    parser.addoption(
        "--stress",
        action="store_true",
        help="tests/reliability: the long variants (16 racers, 20 kill points per backend)",
    )


# Every password the tests put in a URL (tests/reliability/support.py SECRETS, test_cli, test_target,
# test_agno_db_objects). No output of any test may show one, plain or URL-quoted: the captured output
# of every test is checked (pytest_runtest_makereport below) and so is what the CLI helpers' child
# processes print (test_cli.cli, reliability.support.record).
TEST_PASSWORDS = ("Rel1ab:s3cret/pw", "Ss1key:pa55/w0rd", "Rw@pa5s:w/rd%9x", "s3cret-pw", "wrong-pw", "right-pw",
                  "Wr0ng-pw")  # fmt: skip


def password_leaks(text: str) -> list[str]:
    """The test passwords ``text`` shows (as written or URL-quoted)."""
    from urllib.parse import quote

    return [pw for pw in TEST_PASSWORDS if pw in text or quote(pw, safe="") in text]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    report = (yield).get_result()
    own = [content for name, content in report.sections if name.endswith(f" {report.when}")]
    leaks = password_leaks("\n".join(own))
    if leaks:  # fail the phase; the report shows the output with the passwords blanked out
        from urllib.parse import quote

        def blank(text: str) -> str:
            for pw in leaks:
                text = text.replace(pw, "<TEST PASSWORD>").replace(quote(pw, safe=""), "<TEST PASSWORD>")
            return text

        report.sections = [(name, blank(content)) for name, content in report.sections]
        if not report.failed:
            report.outcome = "failed"
            report.longrepr = f"the captured output of {item.nodeid} ({report.when}) shows a test password"


def fixture_bytes(point: str, name: str, root: Path = FIXTURES) -> bytes:
    """A file of a fixture point (``root``: the sessions pack, or tests/fixtures-tables), decompressed."""
    with lzma.open(root / point / f"{name}.xz") as fh:
        return fh.read()


def expected_sessions(point: str, backend: str) -> list[dict]:
    """The sessions an upgraded database must hold (first line of the file is metadata)."""
    name = _EXPECTED[backend]
    if not (FIXTURES / point / f"{name}.xz").exists():
        name = "expected.jsonl"
    lines = fixture_bytes(point, name).decode("utf-8").splitlines()
    return [json.loads(line) for line in lines if line and "meta" not in json.loads(line)]


def expected_file(point: str, backend: str, tmp_path: Path) -> Path:
    name = _EXPECTED[backend]
    if not (FIXTURES / point / f"{name}.xz").exists():
        name = "expected.jsonl"
    path = tmp_path / f"{point}-{name}"
    path.write_bytes(fixture_bytes(point, name))
    return path


@dataclass
class Database:
    """One isolated, empty database on a real server (or a SQLite file). On MongoDB ``url`` names
    the database (``db_name``) and ``server_url`` is the server's URL."""

    backend: str
    url: str
    path: Path | None = None
    db_name: str | None = None
    server_url: str | None = None

    def load(self, point: str, root: Path = FIXTURES) -> None:
        """Fill this database with the fixture pack's ``point`` (``root``: the sessions pack, or
        tests/fixtures-tables), as the real Agno wrote it."""
        if self.backend == "mongodb":
            load_mongo_fixture(self.server_url, self.db_name, point, root)
            return
        data = fixture_bytes(point, _DUMP[self.backend], root)
        if self.backend == "sqlite":
            self.path.write_bytes(data)
        elif self.backend == "postgresql":
            run_pg_script(self.url, data.decode("utf-8"))
        else:
            run_mysql_script(self.url, data.decode("utf-8"))

    def engine(self):
        from sqlalchemy import create_engine
        from sqlalchemy.pool import NullPool

        return create_engine(self.url, poolclass=NullPool)

    def execute(self, *statements: str) -> None:
        """Run SQL ``statements`` in one transaction (a SQL ``Database``)."""
        import sqlalchemy as sa

        engine = self.engine()
        try:
            with engine.begin() as conn:
                for statement in statements:
                    conn.execute(sa.text(statement))
        finally:
            engine.dispose()

    @contextlib.contextmanager
    def mongo(self):
        """The pymongo Database of a MongoDB ``Database`` (its own client, closed afterwards)."""
        from pymongo import MongoClient

        with MongoClient(self.server_url) as client:
            yield client[self.db_name]


def execute_autocommit(url: str, *statements: str) -> None:
    """Run SQL ``statements`` on ``url`` outside any transaction (CREATE DATABASE, roles, grants)."""
    import sqlalchemy as sa

    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            for statement in statements:
                conn.execute(sa.text(statement))
    finally:
        engine.dispose()


def run_pg_script(url: str, script: str) -> None:
    import psycopg

    body = "\n".join(line for line in script.splitlines() if not line.startswith("\\"))
    with psycopg.connect(_libpq(url), autocommit=True) as conn:
        conn.execute(body)


def run_mysql_script(url: str, script: str) -> None:
    import pymysql
    from pymysql.constants import CLIENT
    from sqlalchemy.engine import make_url

    u = make_url(url)
    conn = pymysql.connect(
        host=u.host, port=u.port or 3306, user=u.username, password=u.password or "", database=u.database,
        charset="utf8mb4", client_flag=CLIENT.MULTI_STATEMENTS,
    )  # fmt: skip
    try:
        with conn.cursor() as cur:
            cur.execute(script)
            while cur.nextset():
                pass
        conn.commit()
    finally:
        conn.close()


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def _server_or_fail(what: str, exc: Exception):
    pytest.fail(f"{what} is not reachable ({exc}); tests need the real server (see SERVICES in README)", pytrace=False)


def _create_pg() -> tuple[str, callable]:
    import psycopg

    name = f"amt_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(_libpq(PG_ADMIN_URL), autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        _server_or_fail("PostgreSQL", exc)

    def drop():
        with psycopg.connect(_libpq(PG_ADMIN_URL), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name, drop


def _mysql_admin():
    import pymysql
    from sqlalchemy.engine import make_url

    u = make_url(MYSQL_ADMIN_URL)
    try:
        return pymysql.connect(host=u.host, port=u.port or 3306, user=u.username, password=u.password or "")
    except pymysql.err.OperationalError as exc:
        _server_or_fail("MariaDB", exc)


def _create_mysql() -> tuple[str, callable]:
    name = f"amt_{uuid.uuid4().hex[:12]}"
    admin = _mysql_admin()
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    admin.close()

    def drop():
        admin = _mysql_admin()
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()

    return MYSQL_ADMIN_URL.rsplit("/", 1)[0] + "/" + name, drop


@pytest.fixture
def new_database(tmp_path, request):
    """A factory: ``new_database(backend)`` gives a fresh, empty, isolated database each call
    (backend: sqlite, postgresql, mysql, or mongodb on the session's mongod)."""
    drops = []
    count = iter(range(1000))

    def make(backend: str) -> Database:
        if backend == "sqlite":
            path = tmp_path / f"db{next(count)}.sqlite"
            return Database("sqlite", f"sqlite:///{path}", path)
        if backend == "mongodb":
            server_url = request.getfixturevalue("mongo_server").url
            name = f"amt_{uuid.uuid4().hex[:12]}"
            drops.append(lambda: _drop_mongo(server_url, name))
            return Database("mongodb", mongo_url_with_database(server_url, name), db_name=name, server_url=server_url)
        url, drop = _create_pg() if backend == "postgresql" else _create_mysql()
        drops.append(drop)
        return Database(backend, url)

    yield make
    for drop in drops:
        drop()


@pytest.fixture
def pg_url(new_database):
    """A fresh PostgreSQL database, dropped afterwards."""
    return new_database("postgresql").url


@pytest.fixture
def mysql_url(new_database):
    """A fresh MariaDB database, dropped afterwards."""
    return new_database("mysql").url


@pytest.fixture
def sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path / 'agno.db'}"


@pytest.fixture(params=SQL_BACKENDS)
def database(request, new_database) -> Database:
    """An empty database on each SQL backend in turn."""
    return new_database(request.param)


# --- MongoDB: a real mongod 6.0.5 (single-node replica set rs0), started by the tests themselves.
# See tests/mongo_server.py; AGNO_MIGRATE_TEST_MONGO_URL points the tests at an existing server.
# Expected sessions for MongoDB: tests/fixtures/<point>/expected.mongo.jsonl.xz for v1 and 2.0.0;
# at 2.3.0-3.1.10 it is byte-identical to expected.jsonl.xz, so use that.


@pytest.fixture(scope="session")
def mongo_server():
    """The session's MongoDB server (``.url``), started on first use and stopped at the end."""
    from mongo_server import MongoServer

    try:
        server, error = MongoServer.start(), None
    except Exception as exc:
        server, error = None, exc
    if error is not None:
        pytest.fail(f"MongoDB could not be started ({error}); tests need the real server (see SERVICES)", pytrace=False)
    yield server
    server.stop()


@pytest.fixture
def mongo_url(mongo_server) -> tuple[str, str]:
    """``(url, db_name)``: a fresh, empty database on the session's server, dropped afterwards."""
    from pymongo import MongoClient

    name = f"amt_{uuid.uuid4().hex[:12]}"
    yield mongo_server.url, name
    with MongoClient(mongo_server.url) as client:
        client.drop_database(name)


def mongo_url_with_database(server_url: str, name: str) -> str:
    """``server_url`` (``mongodb://hosts[/db][?options]``) naming database ``name`` instead."""
    scheme, _, rest = server_url.partition("://")
    hosts, _, tail = rest.partition("/")
    if "?" in hosts:  # mongodb://host?options (no slash before the options)
        hosts, _, options = hosts.partition("?")
        database = ""
    else:
        database, _, options = tail.partition("?")
    if "@" in hosts and "authsource=" not in options.lower():  # credentials keep their database
        options = "&".join(filter(None, [options, f"authSource={database or 'admin'}"]))
    return f"{scheme}://{hosts}/{name}" + (f"?{options}" if options else "")


def _drop_mongo(server_url: str, name: str) -> None:
    from pymongo import MongoClient

    with MongoClient(server_url) as client:
        client.drop_database(name)


def load_mongo_fixture(url: str, db_name: str, point: str, root: Path = FIXTURES) -> dict[str, int]:
    """Fill ``db_name`` with the fixture pack's MongoDB collections of ``point`` (documents and
    indexes, as the real Agno wrote them); returns the number of documents per collection."""
    from bson import json_util
    from pymongo import IndexModel, MongoClient

    loaded = {}
    with MongoClient(url) as client:
        db = client[db_name]
        for data in sorted((root / point / "mongo").glob("*.jsonl.xz")):
            collection = data.name[: -len(".jsonl.xz")]
            lines = lzma.decompress(data.read_bytes()).decode("utf-8").splitlines()
            docs = [json_util.loads(line) for line in lines if line.strip()]
            db.create_collection(collection)
            if docs:
                db[collection].insert_many(docs)
            spec = data.parent / f"{collection}.indexes.json"  # the tables pack compresses it too
            indexes = json_util.loads(
                spec.read_text() if spec.exists() else lzma.decompress(spec.with_suffix(".json.xz").read_bytes())
            )
            models = [
                IndexModel([tuple(k) for k in info["key"]], name=index_name,
                           **{k: v for k, v in info.items() if k not in ("key", "v", "ns")})
                for index_name, info in indexes.items() if index_name != "_id_"
            ]  # fmt: skip
            if models:  # one createIndexes: a single index build (one build each costs ~0.1 s)
                db[collection].create_indexes(models)
            loaded[collection] = len(docs)
    return loaded


# --- PgBouncer: transaction pooling in front of the test PostgreSQL, started by the tests themselves.
# See tests/pgbouncer_server.py (Debian's pgbouncer 1.18; .ci/run installs it). A missing binary
# is a failure, never a skip.


@pytest.fixture(scope="session")
def pgbouncer():
    """The session's PgBouncer (``.url_for(url)`` routes a test database's URL through it)."""
    from pgbouncer_server import PgBouncer
    from sqlalchemy.engine import make_url

    admin = make_url(PG_ADMIN_URL)
    try:
        server, error = PgBouncer.start(admin.host or "127.0.0.1", admin.port or 5432, admin.username), None
    except Exception as exc:
        server, error = None, exc
    if error is not None:
        pytest.fail(f"PgBouncer could not be started ({error}); tests need it (see SERVICES)", pytrace=False)
    yield server
    server.stop()
