"""Restricted database roles (real roles and users created by the tests, dropped after): the owner
of the schema without CREATE on the database upgrades; a role with only DML rights uses the store on
a database at head; one that must change tables is told which privilege it lacks and who needs it.
PostgreSQL and MariaDB, through the CLI and the library."""

from __future__ import annotations

import uuid

import pytest
from conftest import MYSQL_ADMIN_URL, execute_autocommit
from sqlalchemy.engine import make_url
from test_cli import cli, failed, ok
from test_tables_detect import load

import agno_migrate
from agno_migrate import AgentSession, SchemaBehind
from agno_migrate.errors import DatabaseFailure


def _admin(db) -> str:
    """The admin's SQLAlchemy URL of ``db``."""
    url = make_url(db.url)
    return url.set(
        drivername={"postgresql": "postgresql+psycopg", "mysql": "mysql+pymysql"}[db.backend]
    ).render_as_string(hide_password=False)


@pytest.fixture
def role(new_database):
    """``role(db, *grants)``: a new login role (PostgreSQL) or user (MariaDB) with a password, given
    ``grants`` (``{role}`` and ``{db}`` filled in) by the admin; returns its URL to ``db`` and its
    password. Dropped after the test."""
    made = []

    def make(db, *grants: str) -> tuple[str, str]:
        name, password = f"amt_role_{uuid.uuid4().hex[:8]}", f"pw-{uuid.uuid4().hex[:12]}"
        url = make_url(db.url)
        if db.backend == "postgresql":
            execute_autocommit(_admin(db), f"CREATE ROLE {name} LOGIN PASSWORD '{password}'")
            made.append((db, name))
        else:
            execute_autocommit(MYSQL_ADMIN_URL, f"CREATE USER '{name}'@'%' IDENTIFIED BY '{password}'")
            made.append((db, name))
        execute_autocommit(_admin(db), *[g.format(role=name, db=url.database) for g in grants])
        return url.set(username=name, password=password).render_as_string(hide_password=False), password

    yield make
    for db, name in made:
        if db.backend == "postgresql":
            execute_autocommit(
                _admin(db), f"REASSIGN OWNED BY {name} TO postgres", f"DROP OWNED BY {name}", f"DROP ROLE {name}"
            )
        else:
            execute_autocommit(MYSQL_ADMIN_URL, f"DROP USER '{name}'@'%'")


def _exercise_store(url: str, **options) -> None:
    store = agno_migrate.connect(url, **options)
    try:
        before = store.get_sessions()[1]
        store.upsert_session(AgentSession("s1", agent_id="a", runs=[{"run_id": "r1", "content": "x"}]))
        store.upsert_run("s1", {"run_id": "r2", "content": "y"})
        assert [r.run_id for r in store.get_session("s1").runs] == ["r1", "r2"]
        assert store.rename_session("s1", "named").session_name == "named"
        assert store.get_sessions(limit=5)[1] == before + 1 and "s1" in store.get_all_session_ids()
        assert store.delete_session("s1") and store.get_session("s1") is None
    finally:
        store.close()


PG_OWNER_TABLES = """DO $$ DECLARE t record; BEGIN
  FOR t IN SELECT tablename FROM pg_tables WHERE schemaname = 'ai' LOOP
    EXECUTE format('ALTER TABLE ai.%I OWNER TO {role}', t.tablename);
  END LOOP; END $$"""


def test_the_schema_owner_without_create_on_the_database_upgrades_postgresql(new_database, role):
    db = new_database("postgresql")
    load(db, "2.0")
    url, password = role(
        db, "ALTER SCHEMA ai OWNER TO {role}", PG_OWNER_TABLES, "GRANT CONNECT ON DATABASE {db} TO {role}"
    )
    result = ok(cli("upgrade", url=url))
    assert "3.0.1" in result.out and password not in result.out + result.err
    ok(cli("check", url=url))
    _exercise_store(url)


def test_the_schema_owner_creates_the_tables_in_an_empty_schema_postgresql(new_database, role):
    db = new_database("postgresql")
    execute_autocommit(_admin(db), "CREATE SCHEMA ai")
    url, _ = role(db, "ALTER SCHEMA ai OWNER TO {role}")
    _exercise_store(url)  # the library: a brand-new database is created at head on first use
    ok(cli("check", url=url))


@pytest.mark.parametrize("backend", ["postgresql", "mysql"])
def test_a_role_with_only_dml_rights_uses_the_store_at_head(new_database, role, backend):
    db = new_database(backend)
    ok(cli("upgrade", url=db.url))
    grants = (
        [
            "GRANT USAGE ON SCHEMA ai TO {role}",
            "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ai TO {role}",
        ]
        if backend == "postgresql"
        else ["GRANT SELECT, INSERT, UPDATE, DELETE ON `{db}`.* TO '{role}'@'%'"]
    )
    url, password = role(db, *grants)
    _exercise_store(url)
    _exercise_store(url, auto_upgrade_schema=True)
    for command in (["current"], ["check"], ["upgrade"]):
        result = ok(cli(*command, url=url))
        assert password not in result.out + result.err
    assert "nothing to do" in result.out


@pytest.mark.parametrize("backend", ["postgresql", "mysql"])
def test_a_role_with_only_dml_rights_is_told_what_an_upgrade_needs(new_database, role, backend):
    db = new_database(backend)
    ok(cli("upgrade", "--to", "2.5.0", url=db.url))
    grants = (
        [
            "GRANT USAGE ON SCHEMA ai TO {role}",
            "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ai TO {role}",
            # and on the tables the owner's upgrade creates (the runs table)
            "ALTER DEFAULT PRIVILEGES IN SCHEMA ai GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {role}",
        ]
        if backend == "postgresql"
        else ["GRANT SELECT, INSERT, UPDATE, DELETE ON `{db}`.* TO '{role}'@'%'"]
    )
    url, password = role(db, *grants)
    name = make_url(url).username
    line = failed(cli("upgrade", url=url), 10)
    assert f"{name} lacks a privilege" in line and "need their owner" in line and password not in line, line
    with pytest.raises(SchemaBehind):
        agno_migrate.connect(url).get_session("x")
    with pytest.raises(DatabaseFailure, match=f"{name} lacks a privilege") as refused:
        agno_migrate.connect(url, auto_upgrade_schema=True).get_session("x")
    assert password not in str(refused.value) + repr(refused.value)
    assert ok(cli("current", url=db.url)).out.count("2.5.0") >= 1  # nothing changed
    ok(cli("upgrade", url=db.url))  # the owner can
    _exercise_store(url)


def test_a_mariadb_user_with_every_right_on_its_database_only_upgrades(new_database, role):
    db = new_database("mysql")
    load(db, "2.3")
    url, _ = role(db, "GRANT ALL ON `{db}`.* TO '{role}'@'%'")
    ok(cli("upgrade", url=url))
    ok(cli("check", url=url))
    _exercise_store(url)
