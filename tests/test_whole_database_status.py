"""Status for the whole database (issue 14, item 3): ``current`` lists every other Agno table found
(memories, evals, knowledge, metrics, ...) with its point, and ``check`` fails on one behind its
family's head (exit 1) or matching no layout (exit 4), even when the sessions are at head.

A database whose sessions are at head but whose evals table was taken back to its 2.x layout fails
``check`` naming it, ``plan`` lists its step, ``upgrade`` brings it to head; one written by Agno 3.1.10
passes. Against the real servers, with the table fixture pack (tests/fixtures-tables) loaded as the
real Agno wrote it.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from test_cli import as_json, cli, failed, ok
from test_tables_detect import SCHEMA, load

import agno_migrate
from agno_migrate.errors import SchemaBehind, SchemaDrift

BACKENDS = ("sqlite", "postgresql", "mysql", "mongodb")


def upgraded(new_database, backend: str, point: str):
    db = new_database(backend)
    load(db, point)
    ok(cli("upgrade", url=db.url))
    return db


def _regress_evals(db) -> None:
    """Take the evals table of a head database back to its 2.x layout (no ``user_id``), as a
    database whose sessions an older agno-migrate upgraded while Agno's evals stayed behind."""
    if db.backend == "mongodb":
        with db.mongo() as mdb:
            mdb["agno_eval_runs"].drop_index("user_id_1")
        return
    schema = SCHEMA.get(db.backend)
    engine = db.engine()
    try:
        with engine.begin() as conn:
            table = sa.Table("agno_eval_runs", sa.MetaData(schema=schema))
            conn.execute(sa.schema.DropIndex(sa.Index("idx_agno_eval_runs_user_id", _table=table)))
            name = f"{schema}.agno_eval_runs" if schema else "agno_eval_runs"
            conn.execute(sa.text(f"ALTER TABLE {name} DROP COLUMN user_id"))
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", BACKENDS)
def test_sessions_at_head_with_other_tables_behind_fail_check_until_upgraded(new_database, backend):
    db = upgraded(new_database, backend, "3.1")
    _regress_evals(db)

    status = as_json(ok(cli("--json", "current", url=db.url)))
    assert status["at_head"] is True  # the sessions are at head: only the evals table is behind
    tables = {t["name"]: t for t in status["agno_tables"]}
    assert {name for name, t in tables.items() if not t["at_head"]} == {"agno_eval_runs"}
    evals = tables["agno_eval_runs"]
    assert evals["version"] is not None and evals["version"] != evals["head"] and not evals["drift"]
    assert evals["found_by"] == "default name"
    assert " agno_eval_runs " in ok(cli("current", url=db.url)).out

    line = failed(cli("check", url=db.url), 1)
    assert f"agno_eval_runs (evals) at {evals['version']}, head 3.0.0" in line and "run agno-migrate upgrade" in line
    assert "agno_memories" not in line
    with pytest.raises(SchemaBehind) as raised:
        agno_migrate.check(db.url)
    assert "agno_eval_runs" in str(raised.value) and raised.value.found == status["version"]

    plan = as_json(ok(cli("--json", "plan", url=db.url)))
    assert [(t["name"], t["steps"]) for t in plan["agno_tables"]] == [("agno_eval_runs", ["3.0.0"])]
    assert "agno_eval_runs (evals) would be brought from" in ok(cli("plan", url=db.url)).out

    out = as_json(ok(cli("--json", "upgrade", url=db.url)))
    assert [t["name"] for t in out["agno_tables"] if t["steps"]] == ["agno_eval_runs"]
    ok(cli("check", url=db.url))


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_database_written_by_agno_3_1_passes_check(new_database, backend):
    db = upgraded(new_database, backend, "3.1")

    status = as_json(ok(cli("--json", "current", url=db.url)))
    tables = {t["name"]: t for t in status["agno_tables"]}
    assert {"agno_memories", "agno_eval_runs", "agno_knowledge", "agno_metrics"} <= set(tables)
    assert "agno_schema_versions" not in tables and "agno_sessions" not in tables and "agno_runs" not in tables
    assert all(t["at_head"] and not t["drift"] for t in tables.values()), tables

    result = as_json(ok(cli("--json", "check", url=db.url)))
    assert result["ok"] is True and {t["name"] for t in result["agno_tables"]} == set(tables)
    assert agno_migrate.check(db.url).tables
    assert f"and {len(tables)} other Agno tables at head" in ok(cli("check", url=db.url)).out


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_missing_index_in_another_agno_table_fails_check_naming_it_and_upgrade_repairs_it(new_database, backend):
    db = upgraded(new_database, backend, "3.1")
    if backend == "mongodb":
        with db.mongo() as mdb:
            info = mdb["agno_memories"].index_information()
            index = next(name for name, i in info.items() if name != "_id_" and not i.get("unique"))
            mdb["agno_memories"].drop_index(index)
    else:
        schema = SCHEMA.get(backend)
        engine = db.engine()
        try:
            with engine.begin() as conn:
                index = "idx_agno_memories_user_id"  # in every layout of memories
                table = sa.Table("agno_memories", sa.MetaData(schema=schema))
                conn.execute(sa.schema.DropIndex(sa.Index(index, _table=table)))
        finally:
            engine.dispose()

    line = failed(cli("check", url=db.url), 4)
    assert "agno_memories" in line and index in line, line
    with pytest.raises(SchemaDrift, match="agno_memories"):
        agno_migrate.check(db.url)
    memories = next(
        t for t in as_json(ok(cli("--json", "current", url=db.url)))["agno_tables"] if t["family"] == "memories"
    )
    # a plain index is built on the rows there (MongoDB: the documents): repairable, not drift
    assert memories["version"] and memories["missing_indexes"] == [index] and not memories["drift"], memories
    assert "repaired indexes: " in ok(cli("upgrade", url=db.url)).out
    ok(cli("check", url=db.url))
