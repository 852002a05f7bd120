"""The names of the other Agno tables (issue 14): ``--table FAMILY=NAME`` / ``Target.tables``, and Agno's
own ``Db`` objects (``SqliteDb``, ``PostgresDb``, ``MySQLDb``, ``MongoDb``) passed where a URL goes.

The Db-object tests run in the reference Agno 3.1.10 environment (``tests/agno_side/env.py``) with this
checkout on PYTHONPATH: a script there builds the Db with non-default table names, hands it to
``agno_migrate.upgrade``/``check``, then uses it as an application does (sessions and memories through
the same object). Real servers, the table fixture pack (tests/fixtures-tables) as the real Agno wrote it.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import sqlalchemy as sa
from agno_side import env as agno_env
from test_cli import as_json, cli, failed, ok
from test_tables_detect import SCHEMA, load

import agno_migrate
from agno_migrate.errors import UsageError
from agno_migrate.target import Target

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = Path(__file__).parent / "agno_side" / "agno_db_object.py"
BACKENDS = ("sqlite", "postgresql", "mysql", "mongodb")
OLD_POINT = {"sqlite": "2.0", "postgresql": "2.0", "mysql": "2.3", "mongodb": "2.0"}
RENAMED = {"agno_memories": "app_memories", "agno_eval_runs": "app_evals"}


# --- preparing a database -------------------------------------------------------------------------------


def rename(db, renames: dict[str, str], decoy: bool = False) -> None:
    """Rename tables of a loaded pack (and Agno's stamps of them); ``decoy``: leave a drifted table
    under the default memories name, which only the explicit names keep out of the way."""
    if db.backend == "mongodb":
        with db.mongo() as mdb:
            for old, new in renames.items():
                mdb[old].rename(new)
                mdb["agno_schema_versions"].update_many({"table_name": old}, {"$set": {"table_name": new}})
            if decoy:
                mdb["agno_memories"].insert_one({"memory_id": "decoy", "topics": '["a"]', "memory": "x"})
        return
    p = f"{SCHEMA[db.backend]}." if db.backend in SCHEMA else ""
    engine = db.engine()
    try:
        stamped = sa.inspect(engine).has_table("agno_schema_versions", schema=SCHEMA.get(db.backend))
    finally:
        engine.dispose()
    statements = []
    for old, new in renames.items():
        statements.append(f"ALTER TABLE {p}{old} RENAME TO {new}")
        if stamped:  # Agno 2.0 wrote no stamps
            statements.append(f"UPDATE {p}agno_schema_versions SET table_name = '{new}' WHERE table_name = '{old}'")
    if decoy:
        statements.append(f"CREATE TABLE {p}agno_memories (memory_id VARCHAR(64) PRIMARY KEY, topics TEXT)")
    db.execute(*statements)


def copy_table(db, source: str, copy: str) -> None:
    """A second table with the same columns (a family's fingerprint twice: found by neither)."""
    if db.backend == "mongodb":
        with db.mongo() as mdb:
            docs = list(mdb[source].find({}, {"_id": 0}))
            mdb[copy].insert_many(docs)
        return
    p = f"{SCHEMA[db.backend]}." if db.backend in SCHEMA else ""
    db.execute(f"CREATE TABLE {p}{copy} AS SELECT * FROM {p}{source}")


# --- --table on the command line, Target.tables in the library --------------------------------------------


@pytest.mark.parametrize("backend", ["sqlite", "postgresql", "mongodb"])
def test_a_renamed_memories_table_is_found_only_when_named(new_database, backend):
    db = new_database(backend)
    load(db, "3.1")
    rename(db, {"agno_memories": "my_memories"})
    copy_table(db, "my_memories", "old_memories")  # two candidates by columns: neither is taken

    tables = {t["family"]: t for t in as_json(ok(cli("--json", "current", url=db.url)))["agno_tables"]}
    assert "memories" not in tables

    status = as_json(ok(cli("--table", "memories=my_memories", "--json", "current", url=db.url)))
    tables = {t["family"]: t for t in status["agno_tables"]}
    assert tables["memories"]["name"] == "my_memories"
    assert tables["memories"]["found_by"] == "explicit"
    assert tables["memories"]["at_head"] is True and not tables["memories"]["drift"]
    assert status["missing_agno_tables"] == {}
    ok(cli("--table", "memories=my_memories", "check", url=db.url))

    # the library: the same through Target
    target = Target.from_url(db.url, tables={"memories": "my_memories"})
    found = {t.family: t for t in agno_migrate.current(target).tables}
    assert (found["memories"].name, found["memories"].found_by) == ("my_memories", "explicit")
    agno_migrate.check(target)


def test_a_named_table_that_does_not_exist_is_reported_missing(new_database):
    db = new_database("sqlite")
    load(db, "3.1")
    text = ok(cli("--table", "memories=nope", "current", url=db.url)).out
    assert "Agno memories table nope (named explicitly): missing" in text
    status = as_json(ok(cli("--table", "memories=nope", "--json", "current", url=db.url)))
    assert status["missing_agno_tables"] == {"memories": "nope"}
    # never looked for under another name: agno_memories is not taken for it
    assert "memories" not in {t["family"] for t in status["agno_tables"]}
    assert agno_migrate.current(Target.from_url(db.url, tables={"memories": "nope"})).missing_tables == {
        "memories": "nope"
    }


@pytest.mark.parametrize(
    "value, words",
    [
        ("memoriez=x", ["unknown Agno table type 'memoriez'", "memories", "evals", "knowledge"]),
        ("versions=x", ["unknown Agno table type 'versions'"]),
        ("memories=bad-name", ["invalid memories table name"]),
        ("memories", ["--table expects FAMILY=NAME"]),
        ("memories=", ["--table expects FAMILY=NAME"]),
    ],
)
def test_a_bad_table_option_is_a_usage_error(tmp_path, value, words):
    line = failed(cli("--table", value, "current", url=f"sqlite:///{tmp_path / 'x.db'}"), 2)
    for word in words:
        assert word in line, line
    assert not (tmp_path / "x.db").exists()


def test_bad_table_names_in_the_library_are_usage_errors(tmp_path):
    url = f"sqlite:///{tmp_path / 'x.db'}"
    with pytest.raises(UsageError, match="unknown Agno table type 'memoriez'.*memories"):
        agno_migrate.current(Target.from_url(url, tables={"memoriez": "x"}))
    with pytest.raises(UsageError, match="invalid evals table name"):
        Target.from_url(url, tables={"evals": "x; DROP TABLE y"})
    with pytest.raises(UsageError, match="cannot both be named"):
        Target.from_url(url, tables={"evals": "t", "memories": "t"})
    with pytest.raises(UsageError, match="session, runs or version table"):
        Target.from_url(url, tables={"memories": "agno_sessions"})
    with pytest.raises(UsageError, match="Agno Db object"):
        agno_migrate.current(object())


# --- Agno Db objects ------------------------------------------------------------------------------------


def run_agno_side(spec: dict) -> dict:
    environ = agno_env.clean_env()
    environ["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [str(agno_env.agno_python()), str(SCRIPT), json.dumps(spec)],
        capture_output=True,
        text=True,
        timeout=600,
        env=environ,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "backend": spec["backend"]}


PASSWORD = "s3cret-pw"


def spec_for(db, tables: dict) -> dict:
    if db.backend == "mongodb":
        return {"backend": "mongodb", "url": db.server_url, "schema": db.db_name, "tables": tables}
    url = sa.engine.make_url(db.url)
    if db.backend == "postgresql":  # trust authentication: the password is sent, never needed
        url = url.set(drivername="postgresql+psycopg", password=PASSWORD)
        return {"backend": "postgresql", "url": url.render_as_string(False), "schema": "ai", "tables": tables}
    if db.backend == "mysql":
        url = url.set(drivername="mysql+pymysql")
        return {"backend": "mysql", "url": url.render_as_string(False), "schema": url.database, "tables": tables}
    return {"backend": "sqlite", "url": db.url, "schema": None, "tables": tables}


MARIADB_WRITES = (
    "Agno 3.1.10's MySQLDb cannot write into a MariaDB table another process created (it reflects JSON "
    "as LONGTEXT: 'dict can not be used as parameter'), with or without agno-migrate"
)


def assert_app_ran(out: dict, memories_before: int) -> None:
    app = out["app"]
    assert PASSWORD not in json.dumps(out)
    if "dict can not be used as parameter" in json.dumps(app) or app.get("session_read") is False:
        if out.get("backend") == "mysql":
            pytest.xfail(MARIADB_WRITES)
    assert "error" not in app, app
    assert app["session_read"] is True
    assert app["memories_before"] == memories_before
    assert app["memories_after"] == memories_before + 1 and app["memory_read"] is True


@pytest.mark.agno
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_fresh_database_through_an_agno_db_with_its_own_names(new_database, backend):
    db = new_database(backend)
    names = {"session_table": "app_sessions", "memory_table": "app_memories", "eval_table": "app_evals"}
    out = run_agno_side(spec_for(db, names))
    assert "upgrade_error" not in out and "check_error" not in out, out
    assert out["check"]["version"] == agno_migrate.history()[-1].version
    assert_app_ran(out, 0)
    # Agno created its memories table where the Db object says; check found it there, at head
    assert out["check_after_app"]["memories"] == ["app_memories", "explicit", True], out
    assert "check_after_app_error" not in out, out
    assert out["missing"]["evals"] == "app_evals"
    # the runs went where Agno puts them for a named session table: <session_table>_runs
    status = agno_migrate.current(Target.from_url(db.url, session_table="app_sessions", runs_table="app_sessions_runs"))
    assert status.managed and status.at_head


@pytest.mark.agno
@pytest.mark.parametrize("backend", BACKENDS)
def test_an_agno_3_1_database_with_renamed_tables_through_its_db(new_database, backend):
    db = new_database(backend)
    load(db, "3.1")
    memories = _count(db, "agno_memories")
    rename(db, RENAMED, decoy=True)  # a drifted agno_memories the Db's names keep out of the way
    out = run_agno_side(spec_for(db, {"memory_table": "app_memories", "eval_table": "app_evals"}))
    assert "upgrade_error" not in out and "check_error" not in out, out
    assert out["check"]["tables"]["memories"] == ["app_memories", "explicit"]
    assert out["check"]["tables"]["evals"] == ["app_evals", "explicit"]
    assert_app_ran(out, memories)
    assert "check_after_app_error" not in out, out
    # without the names, the decoy under the default name is taken for the memories: drift
    assert failed(cli("check", url=db.url), 4)


@pytest.mark.agno
@pytest.mark.parametrize("backend", BACKENDS)
def test_an_old_database_with_renamed_tables_upgraded_through_its_db(new_database, backend):
    db = new_database(backend)
    load(db, OLD_POINT[backend])
    memories = _count(db, "agno_memories")
    rename(db, RENAMED)
    out = run_agno_side(spec_for(db, {"memory_table": "app_memories", "eval_table": "app_evals"}))
    assert "upgrade_error" not in out, out
    assert "check_error" not in out, out  # the other tables' steps: not on main yet
    assert_app_ran(out, memories)


@pytest.mark.agno
def test_upgrade_with_a_url_does_not_import_agno(tmp_path):
    code = (
        "import sys, agno_migrate; agno_migrate.upgrade(sys.argv[1]); agno_migrate.check(sys.argv[1]); "
        "print(sorted(m for m in sys.modules if m == 'agno' or m.startswith('agno.')))"
    )
    environ = agno_env.clean_env()
    environ["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [str(agno_env.agno_python()), "-c", code, f"sqlite:///{tmp_path / 'a.db'}"],
        capture_output=True,
        text=True,
        timeout=300,
        env=environ,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    # agno is importable there: the test could fail
    probe = subprocess.run([str(agno_env.agno_python()), "-c", "import agno.db"], env=environ, timeout=120)
    assert probe.returncode == 0


def _count(db, table: str) -> int:
    if db.backend == "mongodb":
        with db.mongo() as mdb:
            return mdb[table].count_documents({})
    p = f"{SCHEMA[db.backend]}." if db.backend in SCHEMA else ""
    engine = db.engine()
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(f"SELECT COUNT(*) FROM {p}{table}")).scalar_one()
    finally:
        engine.dispose()
