"""The `agno-migrate` console script, run as a subprocess against real databases.

Every failure must end in the documented exit code and exactly one line on stderr (no traceback,
no password); commands that must not change anything are checked against a snapshot.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import MYSQL_ADMIN_URL, SQL_BACKENDS, Database, password_leaks, run_mysql_script, run_pg_script
from sqlalchemy.pool import NullPool

CLI = str(Path(sys.executable).parent / "agno-migrate")
VERSIONS = ["2.0.0", "2.3.0", "2.5.0", "3.0.0", "3.0.1"]
HEAD = "3.0.1"


# --- helpers -------------------------------------------------------------------------------------


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        return self.err.splitlines()


def clean_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("AGNO_DB_URL", "AGNO_MIGRATE_DEBUG")}
    env.update(extra)
    return env


def cli(*args: str, url: str | None = None, cwd: Path | None = None, env: dict | None = None) -> Result:
    """Run agno-migrate (with ``--db-url url`` first when given); return code, stdout, stderr."""
    cmd = [CLI] + (["--db-url", url] if url is not None else []) + list(args)
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=60, cwd=cwd, env=env if env is not None else clean_env()
    )
    leaks = password_leaks(proc.stdout + proc.stderr)
    assert not leaks, f"agno-migrate {args[:1]} printed a test password ({len(leaks)} of them)"
    return Result(proc.returncode, proc.stdout, proc.stderr)


def ok(result: Result) -> Result:
    assert result.code == 0, f"exit {result.code}\nstdout: {result.out}\nstderr: {result.err}"
    assert "Traceback" not in result.out + result.err
    return result


def failed(result: Result, code: int) -> str:
    """Assert a failure with ``code`` that printed exactly one line on stderr; return that line."""
    assert result.code == code, f"exit {result.code}, expected {code}\nstdout: {result.out}\nstderr: {result.err}"
    assert "Traceback" not in result.out + result.err
    lines = result.err_lines
    assert len(lines) == 1, f"expected one line on stderr, got {lines!r}"
    assert lines[0].startswith("agno-migrate: error: "), lines[0]
    return lines[0]


def as_json(result: Result) -> dict:
    lines = result.out.splitlines()
    assert len(lines) == 1, f"expected one JSON line, got {lines!r}"
    return json.loads(lines[0])


def engine(url: str):
    return sa.create_engine(url, poolclass=NullPool)


def execute(url: str, *statements: str) -> None:
    eng = engine(url)
    try:
        with eng.begin() as conn:
            for statement in statements:
                conn.exec_driver_sql(statement)
    finally:
        eng.dispose()


def qualified(db: Database, name: str) -> str:
    return f"ai.{name}" if db.backend == "postgresql" else name


def snapshot(url: str) -> dict:
    """Everything a command could change: schemas, tables, columns, keys, indexes, row counts,
    and the full content of the version tables (ours and Agno's)."""
    eng = engine(url)
    out: dict = {}
    try:
        with eng.connect() as conn:
            insp = sa.inspect(conn)
            if eng.dialect.name == "postgresql":
                schemas = sorted(
                    s for s in insp.get_schema_names() if s != "information_schema" and not s.startswith("pg_")
                )
            else:
                schemas = [None]
            out["schemas"] = schemas
            for schema in schemas:
                for name in sorted(insp.get_table_names(schema=schema)):
                    table = sa.table(name, schema=schema)
                    entry = {
                        "columns": [
                            (c["name"], str(c["type"]), c["nullable"]) for c in insp.get_columns(name, schema=schema)
                        ],
                        "pk": insp.get_pk_constraint(name, schema=schema).get("constrained_columns"),
                        "indexes": sorted(
                            (i["name"], tuple(i["column_names"]), bool(i.get("unique")))
                            for i in insp.get_indexes(name, schema=schema)
                        ),
                        "uniques": sorted(
                            (u["name"], tuple(u["column_names"]))
                            for u in insp.get_unique_constraints(name, schema=schema)
                        ),
                        "fks": sorted(str(fk) for fk in insp.get_foreign_keys(name, schema=schema)),
                        "rows": conn.execute(sa.select(sa.func.count()).select_from(table)).scalar(),
                    }
                    if name.startswith("agno_migrate_") or name == "agno_schema_versions":
                        entry["content"] = sorted(
                            tuple(map(str, r)) for r in conn.execute(sa.select(sa.text("*")).select_from(table))
                        )
                    out[(schema, name)] = entry
    finally:
        eng.dispose()
    return out


def state(db: Database):
    """The logical state of ``db`` (None for a SQLite file that does not exist). Not the file's
    bytes: connections may switch a SQLite file to WAL mode, which changes its header only."""
    if db.backend == "sqlite" and not db.path.exists():
        return None
    return snapshot(db.url)


def tables(db: Database) -> set[str]:
    if db.backend == "sqlite" and not db.path.exists():
        return set()
    eng = engine(db.url)
    try:
        with eng.connect() as conn:
            insp = sa.inspect(conn)
            schema = "ai" if db.backend == "postgresql" else None
            if schema and schema not in insp.get_schema_names():
                return set()
            return set(insp.get_table_names(schema=schema))
    finally:
        eng.dispose()


def current_json(url: str) -> dict:
    return as_json(ok(cli("--json", "current", url=url)))


# --- upgrade, check, current ---------------------------------------------------------------------


def test_upgrade_empty_database_then_noop_then_check(database):
    first = ok(cli("upgrade", url=database.url))
    assert f"created agno_sessions at {HEAD}" in first.out
    assert first.err == ""
    assert {"agno_sessions", "agno_runs", "agno_schema_versions", "agno_migrate_agno_sessions"} <= tables(database)

    second = ok(cli("upgrade", url=database.url))
    assert "nothing to do" in second.out
    assert "created" not in second.out

    check = ok(cli("check", url=database.url))
    assert f"at head {HEAD}" in check.out

    status = current_json(database.url)
    assert status["version"] == HEAD
    assert status["at_head"] is True
    assert status["managed"] is True
    assert status["drift"] == []


def test_check_behind_after_partial_upgrade(database):
    ok(cli("upgrade", "--to", "2.3.0", url=database.url))
    before = state(database)
    line = failed(cli("check", url=database.url), 1)
    assert "2.3.0" in line
    assert state(database) == before


def test_check_behind_on_agno_2_5_0_database(database):
    database.load("2.5.0")
    before = state(database)
    line = failed(cli("check", url=database.url), 1)
    assert "2.5.0" in line
    assert "agno_migrate_agno_sessions" not in tables(database)
    assert state(database) == before


def test_check_json_behind(database):
    ok(cli("upgrade", "--to", "2.3.0", url=database.url))
    result = cli("--json", "check", url=database.url)
    assert result.code == 1
    assert result.err == ""  # with --json the error is the one JSON object on stdout
    assert "Traceback" not in result.out
    payload = as_json(result)
    assert payload["exit_code"] == 1
    assert isinstance(payload["error"], str) and "2.3.0" in payload["error"]


def test_check_on_empty_database_is_behind(database):
    line = failed(cli("check", url=database.url), 1)
    assert "no agno_sessions table" in line


# --- --sql, --dry-run, plan ----------------------------------------------------------------------


def test_upgrade_sql_on_empty_postgres_changes_nothing(new_database):
    db = new_database("postgresql")
    before = state(db)
    result = ok(cli("upgrade", "--sql", url=db.url))
    ddl = result.out
    for needle in ("CREATE TABLE ai.agno_sessions", "JSONB", "CREATE TABLE ai.agno_runs", "ON DELETE CASCADE",
                   "CREATE SCHEMA IF NOT EXISTS ai", "PRIMARY KEY (session_id)", "agno_migrate_agno_sessions"):  # fmt: skip
        assert needle in ddl, needle
    assert state(db) == before
    assert tables(db) == set()
    assert "ai" not in snapshot(db.url)["schemas"]
    current = ok(cli("current", url=db.url))
    assert "no agno_sessions table" in current.out
    assert current_json(db.url)["version"] is None


def test_upgrade_sql_refused_over_the_data_copying_step(database):
    database.load("2.5.0")
    before = state(database)
    line = failed(cli("upgrade", "--sql", url=database.url), 8)
    assert "3.0.0" in line and "copies data" in line
    assert state(database) == before


def test_upgrade_sql_to_2_5_0_from_2_3_0_on_postgres(new_database):
    db = new_database("postgresql")
    ok(cli("upgrade", "--to", "2.3.0", url=db.url))
    before = state(db)
    sql = ok(cli("upgrade", "--sql", "--to", "2.5.0", url=db.url)).out
    assert "ALTER TABLE ai.agno_sessions ADD CONSTRAINT agno_sessions_pkey PRIMARY KEY (session_id)" in sql
    assert "ALTER TABLE ai.agno_sessions DROP CONSTRAINT agno_sessions_uq_session_id" in sql
    assert "INSERT INTO ai.agno_migrate_agno_sessions" in sql and "'2.5.0'" in sql
    assert "CREATE TABLE ai.agno_runs" not in sql and "JSONB" not in sql
    assert state(db) == before
    assert current_json(db.url)["version"] == "2.3.0"


def apply_script(db: Database, script: str) -> None:
    """Run a SQL script on ``db`` the way an operator would feed --sql output to the database."""
    if db.backend == "postgresql":
        run_pg_script(db.url, script)
    elif db.backend == "mysql":
        run_mysql_script(db.url, script)
    else:
        conn = sqlite3.connect(db.path)
        try:
            conn.executescript(script)
        finally:
            conn.close()


def test_upgrade_sql_output_applied_to_an_empty_database_gives_head(database):
    sql = ok(cli("upgrade", "--sql", url=database.url)).out
    assert tables(database) == set()
    apply_script(database, sql)
    ok(cli("check", url=database.url))
    status = current_json(database.url)
    assert status["version"] == HEAD and status["managed"] is True


def test_upgrade_sql_output_applies_to_the_database_it_was_rendered_for(database):
    ok(cli("upgrade", "--to", "2.3.0", url=database.url))
    sql = ok(cli("upgrade", "--sql", "--to", "2.5.0", url=database.url)).out
    apply_script(database, sql)
    assert current_json(database.url)["version"] == "2.5.0"


@pytest.mark.parametrize("backend", ["sqlite", "mysql"])
def test_upgrade_sql_to_2_5_0_from_2_3_0_other_backends(new_database, backend):
    db = new_database(backend)
    ok(cli("upgrade", "--to", "2.3.0", url=db.url))
    before = state(db)
    sql = ok(cli("upgrade", "--sql", "--to", "2.5.0", url=db.url)).out
    assert "agno_migrate_agno_sessions" in sql and "'2.5.0'" in sql
    if backend == "mysql":
        assert "PRIMARY KEY (session_id)" in sql
        assert "DROP INDEX agno_sessions_uq_session_id" in sql
    assert state(db) == before
    assert current_json(db.url)["version"] == "2.3.0"


def test_dry_run_and_plan_on_empty_database_change_nothing(database):
    if database.backend == "sqlite":
        database.path.touch()  # an empty SQLite database (a missing file: see the test below)
    before = state(database)
    for args in (("upgrade", "--dry-run"), ("plan",)):
        result = ok(cli(*args, url=database.url))
        assert f"would create agno_sessions and agno_runs at {HEAD}" in result.out
    assert state(database) == before
    assert tables(database) == set()


@pytest.mark.parametrize(
    "args", [("plan",), ("upgrade", "--dry-run"), ("upgrade", "--sql"), ("current",), ("check",)], ids=" ".join
)
def test_read_only_commands_do_not_create_a_missing_sqlite_file(tmp_path, args):
    path = tmp_path / "typo.db"
    cli(*args, url=f"sqlite:///{path}")
    assert not path.exists()


def test_dry_run_and_plan_on_agno_database_change_nothing(database):
    database.load("2.5.0")
    before = state(database)
    outputs = [ok(cli(*args, url=database.url)).out for args in (("upgrade", "--dry-run"), ("plan",))]
    assert outputs[0] == outputs[1]
    assert "would record the detected version 2.5.0" in outputs[0]
    assert "upgrade to 3.0.0" in outputs[0] and "(copies data)" in outputs[0] and "upgrade to 3.0.1" in outputs[0]
    plan = as_json(ok(cli("--json", "plan", url=database.url)))
    assert plan["current"] == "2.5.0" and plan["adopt"] == "2.5.0"
    assert [s["version"] for s in plan["steps"]] == ["3.0.0", "3.0.1"]
    assert state(database) == before


# --- history, stamp ------------------------------------------------------------------------------


def test_history_lists_versions_in_order(tmp_path):
    result = ok(cli("history", cwd=tmp_path))
    lines = result.out.splitlines()
    assert [line.split()[0] for line in lines] == VERSIONS
    assert "[head" in lines[-1]
    assert not (tmp_path / "agno.db").exists()  # history needs no database


def test_history_json_parses(tmp_path):
    payload = as_json(ok(cli("--json", "history", cwd=tmp_path)))
    rows = payload["versions"]
    assert [r["version"] for r in rows] == VERSIONS
    assert [r["head"] for r in rows] == [v == HEAD for v in VERSIONS]
    assert rows[-2]["copies_data"] is True and rows[-2]["reversible"] is False  # 3.0.0
    assert rows[-1]["copies_data"] is False and rows[-1]["reversible"] is True  # 3.0.1
    assert rows[-1]["agno_stamp"] == "3.0.0"


def test_stamp_unknown_version(database):
    before = state(database)
    line = failed(cli("stamp", "9.9.9", url=database.url), 2)
    assert "9.9.9" in line
    assert state(database) == before


def _version_rows(db: Database) -> list[tuple]:
    eng = engine(db.url)
    try:
        with eng.connect() as conn:
            query = f"SELECT version, action FROM {qualified(db, 'agno_migrate_agno_sessions')} ORDER BY version"
            return [tuple(r) for r in conn.exec_driver_sql(query)]
    finally:
        eng.dispose()


def test_stamp_then_current(database):
    ok(cli("upgrade", "--to", "2.0.0", url=database.url))
    result = ok(cli("stamp", "2.3.0", url=database.url))
    assert "stamped agno_sessions as 2.3.0 (was 2.0.0)" in result.out
    status = current_json(database.url)
    assert status["version"] == "2.3.0"
    assert status["managed"] is True
    assert status["at_head"] is False
    assert _version_rows(database) == [("2.3.0", "stamp")]


@pytest.mark.parametrize(
    "backend",
    [
        "sqlite",
        "mysql",
        "postgresql",
    ],
)
def test_stamp_empty_database_then_current(new_database, backend):
    db = new_database(backend)
    result = ok(cli("stamp", "2.3.0", url=db.url))
    assert "stamped agno_sessions as 2.3.0 (was unmanaged)" in result.out
    status = current_json(db.url)
    assert status["version"] == "2.3.0" and status["managed"] is True


# --- downgrade -----------------------------------------------------------------------------------


def test_downgrade_from_head_is_refused(database):
    ok(cli("upgrade", url=database.url))
    before = state(database)
    line = failed(cli("downgrade", "--to", "2.0.0", url=database.url), 8)
    assert "irreversible" in line and "nothing was changed" in line
    assert state(database) == before
    ok(cli("check", url=database.url))


def _pg_session_table(db: Database):
    eng = engine(db.url)
    try:
        with eng.connect() as conn:
            insp = sa.inspect(conn)
            types = {c["name"]: type(c["type"]).__name__ for c in insp.get_columns("agno_sessions", schema="ai")}
            pk = insp.get_pk_constraint("agno_sessions", schema="ai").get("constrained_columns")
            uniques = {u["name"]: u["column_names"] for u in insp.get_unique_constraints("agno_sessions", schema="ai")}
        return types, pk, uniques
    finally:
        eng.dispose()


def _mysql_session_table(db: Database):
    eng = engine(db.url)
    try:
        with eng.connect() as conn:
            insp = sa.inspect(conn)
            pk = insp.get_pk_constraint("agno_sessions").get("constrained_columns")
            unique = {i["name"]: i["column_names"] for i in insp.get_indexes("agno_sessions") if i.get("unique")}
        return pk, unique
    finally:
        eng.dispose()


JSON_COLUMNS = ("session_data", "agent_data", "team_data", "workflow_data", "metadata", "runs", "summary")


@pytest.mark.parametrize("backend", ["postgresql", "mysql"])
def test_downgrade_reversible_steps_and_upgrade_again(new_database, backend):
    db = new_database(backend)
    ok(cli("upgrade", "--to", "2.5.0", url=db.url))
    if backend == "postgresql":
        types, pk, uniques = _pg_session_table(db)
        assert {types[c] for c in JSON_COLUMNS} == {"JSONB"} and pk == ["session_id"] and uniques == {}
    else:
        pk, unique = _mysql_session_table(db)
        assert pk == ["session_id"] and "agno_sessions_uq_session_id" not in unique

    result = ok(cli("downgrade", "--to", "2.0.0", url=db.url))
    assert "downgraded from 2.5.0 to 2.0.0" in result.out
    assert current_json(db.url)["version"] == "2.0.0"
    if backend == "postgresql":
        types, pk, uniques = _pg_session_table(db)
        assert {types[c] for c in JSON_COLUMNS} == {"JSON"}
        assert pk == []
        assert uniques == {"agno_sessions_uq_session_id": ["session_id"]}
    else:
        pk, unique = _mysql_session_table(db)
        assert pk == []
        assert unique == {"agno_sessions_uq_session_id": ["session_id"]}

    again = ok(cli("upgrade", url=db.url))
    assert f"from 2.0.0 to {HEAD}" in again.out
    ok(cli("check", url=db.url))
    assert current_json(db.url)["version"] == HEAD


# --- usage and connection errors -----------------------------------------------------------------


def test_unknown_scheme(tmp_path):
    line = failed(cli("current", url="foo://x", cwd=tmp_path), 2)
    assert "foo" in line


@pytest.mark.parametrize(
    "url",
    [
        "not a url",
        "postgresql:///x",
        "postgresql://postgres:s3cret-pw@127.0.0.1:notaport/x",
        "mysql://root:s3cret-pw@127.0.0.1:3306",
    ],
)
def test_malformed_url(tmp_path, url):
    result = cli("upgrade", url=url, cwd=tmp_path)
    failed(result, 2)
    assert "s3cret-pw" not in result.out + result.err
    assert list(tmp_path.iterdir()) == []


def test_malformed_url_without_scheme_separator_hides_the_password(tmp_path):
    result = cli("upgrade", url="postgresql:/postgres:s3cret-pw@127.0.0.1/x", cwd=tmp_path)
    failed(result, 2)
    assert "s3cret-pw" not in result.out + result.err


@pytest.mark.parametrize("json_flag", [False, True])
def test_unreachable_host_hides_the_password(json_flag):
    url = "postgresql://postgres:s3cret-pw@127.0.0.1:1/x"
    result = cli(*(["--json"] if json_flag else []), "upgrade", url=url)
    if json_flag:
        assert result.code == 5 and result.err == ""
        assert as_json(result)["exit_code"] == 5
    else:
        line = failed(result, 5)
        assert "127.0.0.1:1" in line and "postgres:***@" in line
    assert "s3cret-pw" not in result.out + result.err


def test_unreachable_host_hides_a_password_with_a_slash():
    result = cli("current", url="postgresql://postgres:pa/s3cret-pw@127.0.0.1:1/x")
    failed(result, 5)
    assert "s3cret-pw" not in result.out + result.err


def _mysql_root_rejects(password: str) -> bool:
    import pymysql
    from sqlalchemy.engine import make_url

    u = make_url(MYSQL_ADMIN_URL)
    try:
        pymysql.connect(host=u.host, port=u.port or 3306, user=u.username, password=password).close()
    except pymysql.err.OperationalError:
        return True
    return False


@pytest.fixture
def mysql_user_with_password():
    """(user, host, port) of a MariaDB account that requires a password: root if the server
    checks root's password, otherwise a throw-away user created for the test."""
    import uuid

    import pymysql
    from sqlalchemy.engine import make_url

    u = make_url(MYSQL_ADMIN_URL)
    host, port = u.host, u.port or 3306
    if _mysql_root_rejects("wrong-pw"):
        yield u.username, host, port
        return
    name = f"amt_{uuid.uuid4().hex[:8]}"
    admin = pymysql.connect(host=host, port=port, user=u.username, password=u.password or "")
    with admin.cursor() as cur:
        cur.execute(f"CREATE USER '{name}'@'%' IDENTIFIED BY 'right-pw'")
    try:
        yield name, host, port
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP USER IF EXISTS '{name}'@'%'")
        admin.close()


def test_wrong_mysql_password(mysql_user_with_password):
    user, host, port = mysql_user_with_password
    result = cli("current", url=f"mysql+pymysql://{user}:wrong-pw@{host}:{port}/test")
    line = failed(result, 5)
    assert "cannot connect" in line
    assert "wrong-pw" not in result.out + result.err


def test_missing_postgres_database():
    line = failed(cli("current", url="postgresql://postgres@127.0.0.1:5432/amt_does_not_exist_x"), 5)
    assert "amt_does_not_exist_x" in line


def test_invalid_session_table_name(new_database):
    db = new_database("sqlite")
    line = failed(cli("--session-table", "x; DROP TABLE y", "upgrade", url=db.url), 2)
    assert "session table name" in line
    assert not db.path.exists()


def test_invalid_session_table_name_on_postgres(new_database):
    db = new_database("postgresql")
    before = state(db)
    failed(cli("--session-table", "x; DROP TABLE y", "upgrade", url=db.url), 2)
    assert state(db) == before


def test_unknown_option(tmp_path):
    line = failed(cli("--no-such-option", "upgrade", cwd=tmp_path), 2)
    assert "--no-such-option" in line
    failed(cli("upgrade", "--bogus", cwd=tmp_path), 2)
    assert list(tmp_path.iterdir()) == []


def test_db_schema_on_sqlite_is_a_usage_error(new_database):
    db = new_database("sqlite")
    failed(cli("--db-schema", "ai", "upgrade", url=db.url), 2)
    assert not db.path.exists()


# --- ahead, drift, Agno 1.x ----------------------------------------------------------------------


def test_database_ahead_of_the_tool(database):
    ok(cli("upgrade", url=database.url))
    execute(
        database.url,
        f"INSERT INTO {qualified(database, 'agno_migrate_agno_sessions')} "
        "(version, revision, action, applied_at, tool_version) VALUES ('9.0.0', 'v9_0_0', 'upgrade', 0, '9.9.9')",
    )
    before = state(database)
    assert "9.0.0" in failed(cli("check", url=database.url), 3)
    assert "9.0.0" in failed(cli("upgrade", url=database.url), 3)
    assert state(database) == before


def test_drift_missing_primary_key_on_postgres(new_database):
    db = new_database("postgresql")
    db.load("2.5.0")
    execute(
        db.url,
        "ALTER TABLE ai.agno_sessions DROP CONSTRAINT agno_sessions_pkey",
        "INSERT INTO ai.agno_schema_versions (table_name, version, created_at, updated_at) "
        "VALUES ('agno_sessions', '2.5.0', 'now', 'now') "
        "ON CONFLICT (table_name) DO UPDATE SET version = '2.5.0'",
    )
    before = state(db)
    for command in ("plan", "current"):
        result = ok(cli(command, url=db.url))
        drift = [line for line in result.out.splitlines() if line.startswith("drift:")]
        assert drift, result.out
        assert any("primary key" in line for line in drift), drift
        assert any("2.5.0" in line for line in drift), drift
    status = current_json(db.url)
    assert any("primary key" in line for line in status["drift"])
    line = failed(cli("check", url=db.url), 4)
    assert "primary key" in line
    assert state(db) == before


def test_drift_missing_index_at_head(database):
    ok(cli("upgrade", url=database.url))
    drop = {
        "postgresql": "DROP INDEX ai.idx_agno_runs_status",
        "mysql": "DROP INDEX idx_agno_runs_status ON agno_runs",
        "sqlite": "DROP INDEX idx_agno_runs_status",
    }[database.backend]
    execute(database.url, drop)
    line = failed(cli("check", url=database.url), 4)
    assert "idx_agno_runs_status" in line


@pytest.mark.parametrize("backend", SQL_BACKENDS)
def test_agno_1x_tables_are_listed_then_imported(new_database, backend, tmp_path):
    db = new_database(backend)
    db.load("v1")
    legacy = ("agent_sessions", "team_sessions", "workflow_sessions", "workflow_v2_sessions")
    before = state(db)
    line = failed(cli("check", url=db.url), 1)
    assert all(name in line for name in legacy)
    planned = ok(cli("plan", url=db.url)).out
    assert "agent_sessions (agent, 146 rows)" in planned and "workflow_v2_sessions (workflow_v2, 13 rows)" in planned
    current = ok(cli("current", url=db.url))
    for name in legacy:
        assert f"Agno 1.x table {name} (" in current.out and "not imported yet" in current.out
    status = current_json(db.url)
    assert status["version"] is None
    assert sorted(t["name"] for t in status["legacy_tables"]) == sorted(legacy)
    assert state(db) == before  # reading changed nothing

    done = ok(cli("upgrade", url=db.url, cwd=tmp_path))
    assert "imported 200 Agno 1.x sessions (754 runs)" in done.out
    assert not (tmp_path / "agno-migrate-report.jsonl").exists()
    ok(cli("check", url=db.url))
    again = ok(cli("upgrade", url=db.url, cwd=tmp_path))
    assert "imported" not in again.out and f"already at {HEAD}" in again.out
    assert all(t["imported"] for t in current_json(db.url)["legacy_tables"])


# --- lock timeout --------------------------------------------------------------------------------


def _lock_target_conn(url: str):
    from agno_migrate.target import Target

    target = Target.from_url(url)
    eng = engine(target.driver_url)
    return target, eng, eng.connect()


def test_lock_timeout_postgres(new_database):
    from agno_migrate.backends.postgresql import advisory_key as _pg_key
    from agno_migrate.backends.sql_dialect import lock_key as _key

    db = new_database("postgresql")
    target, eng, conn = _lock_target_conn(db.url)
    key = _pg_key(_key(target, conn))
    try:
        assert conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar() is True
        conn.commit()
        line = failed(cli("--lock-timeout", "1", "upgrade", url=db.url), 6)
        assert "lock" in line
        assert tables(db) == set()
    finally:
        conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
        conn.commit()
        conn.close()
        eng.dispose()
    ok(cli("--lock-timeout", "1", "upgrade", url=db.url))  # the lock was what blocked it


def test_lock_timeout_mysql(new_database):
    from agno_migrate.backends.mysql import lock_name as _mysql_key
    from agno_migrate.backends.sql_dialect import lock_key as _key

    db = new_database("mysql")
    target, eng, conn = _lock_target_conn(db.url)
    key = _mysql_key(_key(target, conn))
    try:
        assert conn.execute(sa.text("SELECT GET_LOCK(:k, 0)"), {"k": key}).scalar() == 1
        conn.commit()
        line = failed(cli("--lock-timeout", "1", "upgrade", url=db.url), 6)
        assert "lock" in line
        assert tables(db) == set()
    finally:
        conn.execute(sa.text("SELECT RELEASE_LOCK(:k)"), {"k": key})
        conn.commit()
        conn.close()
        eng.dispose()
    ok(cli("--lock-timeout", "1", "upgrade", url=db.url))


def test_lock_timeout_sqlite(new_database):
    db = new_database("sqlite")
    ok(cli("upgrade", "--to", "2.3.0", url=db.url))
    holder = sqlite3.connect(db.path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        line = failed(cli("--lock-timeout", "1", "upgrade", url=db.url), 6)
        assert "lock" in line
        holder.execute("ROLLBACK")
    finally:
        holder.close()
    assert current_json(db.url)["version"] == "2.3.0"
    ok(cli("--lock-timeout", "1", "upgrade", url=db.url))
    assert current_json(db.url)["version"] == HEAD


# --- where the URL comes from --------------------------------------------------------------------


def test_default_url_is_sqlite_agno_db_in_cwd(tmp_path):
    result = ok(cli("upgrade", cwd=tmp_path, env=clean_env()))
    assert (tmp_path / "agno.db").exists()
    assert "sqlite:///agno.db" in result.err
    assert len(result.err_lines) == 1
    with sqlite3.connect(tmp_path / "agno.db") as conn:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"agno_sessions", "agno_runs"} <= names


def test_agno_db_url_env_is_honoured(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    target = tmp_path / "from-env.db"
    result = ok(cli("upgrade", cwd=work, env=clean_env(AGNO_DB_URL=f"sqlite:///{target}")))
    assert target.exists()
    assert not (work / "agno.db").exists()
    assert "sqlite:///agno.db" not in result.err
    assert "created agno_sessions" in result.out
    # --db-url wins over the environment
    explicit = tmp_path / "explicit.db"
    ok(cli("upgrade", url=f"sqlite:///{explicit}", cwd=work, env=clean_env(AGNO_DB_URL=f"sqlite:///{target}")))
    assert explicit.exists()
    status = as_json(ok(cli("--json", "current", cwd=work, env=clean_env(AGNO_DB_URL=f"sqlite:///{target}"))))
    assert status["version"] == HEAD and str(target) in status["database"]
