"""The reliability suite's backends, sizes and databases.

* ``BACKENDS``: every test taking a ``backend`` argument runs on each of them (``pytest_generate_tests``
  below); ``@pytest.mark.backends(...)`` narrows a test to the backends where its case applies.
  MongoDB is a database on the session's ``mongo_server`` (tests/mongo_server.py: a single-node
  replica set started by the tests).
* ``--stress`` (declared in tests/conftest.py: pytest reads options from the top conftest only):
  16 racers instead of 8, 20 kill points per backend instead of 5.
* ``rdb(backend)``: a fresh database whose URL carries the suite's password (support.SECRET);
  on MariaDB through a user created for the session that needs it, on MongoDB likewise (a user of
  the ``admin`` database: the server checks the password of any credentials a client presents).
"""

from __future__ import annotations

import time
import uuid

import pytest
from conftest import MYSQL_ADMIN_URL, Database, _mysql_admin
from sqlalchemy.engine import make_url

from .support import SECRET, STATS, with_secret

BACKENDS = ("sqlite", "postgresql", "mysql", "mongodb")
SQL = ("sqlite", "postgresql", "mysql")
KILLS = {False: 5, True: 20}  # kill points per backend: default, --stress
RACERS = {False: 8, True: 16}


def pytest_configure(config):
    config.addinivalue_line("markers", "backends(*names): the backends of BACKENDS where the case applies")


def stressed(config) -> bool:
    return bool(config.getoption("--stress", default=False))


def pytest_generate_tests(metafunc):
    if "backend" in metafunc.fixturenames and not _parametrized(metafunc, "backend"):
        marker = metafunc.definition.get_closest_marker("backends")
        names = [b for b in BACKENDS if marker is None or b in marker.args]
        metafunc.parametrize("backend", names)


def _parametrized(metafunc, name: str) -> bool:
    for mark in metafunc.definition.iter_markers("parametrize"):
        names = mark.args[0]
        if name in ([n.strip() for n in names.split(",")] if isinstance(names, str) else names):
            return True
    return False


@pytest.fixture
def stress(request) -> bool:
    return stressed(request.config)


@pytest.fixture
def racers(stress) -> int:
    return RACERS[stress]


@pytest.fixture(scope="session")
def mysql_secret_user():
    """A MariaDB user that needs the suite's password, for the session; dropped at the end."""
    name = f"amt_rel_{uuid.uuid4().hex[:8]}"
    admin = _mysql_admin()
    password = SECRET.replace("'", "''")
    with admin.cursor() as cur:
        cur.execute(f"CREATE USER '{name}'@'%' IDENTIFIED BY '{password}'")
        cur.execute(f"GRANT ALL PRIVILEGES ON *.* TO '{name}'@'%'")
    admin.close()
    yield name
    admin = _mysql_admin()
    with admin.cursor() as cur:
        cur.execute(f"DROP USER IF EXISTS '{name}'@'%'")
    admin.close()


@pytest.fixture(scope="session")
def mongo_secret_user(mongo_server):
    """A MongoDB user (in ``admin``) whose password is the suite's, for the session; dropped at the end."""
    from pymongo import MongoClient

    name = f"amt_rel_{uuid.uuid4().hex[:8]}"
    with MongoClient(mongo_server.url) as client:
        client.admin.command("createUser", name, pwd=SECRET, roles=["root"])
    yield name
    with MongoClient(mongo_server.url) as client:
        client.admin.command("dropUser", name)


@pytest.fixture
def rdb(new_database, request):
    """A factory: ``rdb(backend)`` gives a fresh, empty database whose URL carries the password."""

    def make(backend: str) -> Database:
        db = new_database(backend)
        if backend == "mongodb":
            user = request.getfixturevalue("mongo_secret_user")
            return Database(backend, with_secret(db.url, backend, mongo_user=user), db_name=db.db_name,
                            server_url=db.server_url)  # fmt: skip
        mysql_user = request.getfixturevalue("mysql_secret_user") if backend == "mysql" else None
        return Database(backend, with_secret(db.url, backend, mysql_user), db.path)

    return make


@pytest.fixture
def mysql_host() -> tuple[str, int]:
    u = make_url(MYSQL_ADMIN_URL)
    return u.host, u.port or 3306


def pytest_terminal_summary(terminalreporter, config):
    if not STATS["races"] and not STATS["kills"] and not STATS["cases"]:
        return
    kills = STATS["kills"]
    minutes = (time.monotonic() - STATS["started"]) / 60
    terminalreporter.write_line(
        f"reliability ({'--stress' if stressed(config) else 'default'}): {len(STATS['cases'])} bad-input cases, "
        f"{STATS['races']} races ({STATS['racers']} processes), {sum(kills.values())} SIGKILLs "
        f"({', '.join(f'{k} {v}' for k, v in sorted(kills.items()))}), {STATS['connection_kills']} "
        f"connections killed, {minutes:.1f} min"
    )


@pytest.fixture(scope="session")
def private_pg():
    """A PostgreSQL server of the suite's own that checks passwords (see pg_private.py)."""
    from .pg_private import PrivatePostgres

    server = PrivatePostgres()
    yield server
    server.stop()
