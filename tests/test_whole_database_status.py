"""Status for the whole database (issue 14, item 3): ``current`` lists every other Agno table found
(memories, evals, knowledge, metrics, ...) with its point, and ``check`` fails on one behind its
family's head (exit 1) or matching no layout (exit 4), even when the sessions are at head.

agno-migrate does not upgrade those tables yet, so an upgraded Agno 2.0 database (2.3 on MariaDB,
which Agno 2.0 could not write) still fails ``check``; one written by Agno 3.1.10 passes. Against the
real servers, with the table fixture pack (tests/fixtures-tables) loaded as the real Agno wrote it.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from test_cli import as_json, cli, failed, ok
from test_tables_detect import SCHEMA, load

import agno_migrate
from agno_migrate.errors import SchemaBehind, SchemaDrift

OLD_POINT = {"sqlite": "2.0", "postgresql": "2.0", "mysql": "2.3", "mongodb": "2.0"}
# the tables of OLD_POINT behind their family's head on that backend (MariaDB's memories are at head
# from 2.3; MongoDB's knowledge has one layout only)
BEHIND = {
    "sqlite": {"agno_memories", "agno_eval_runs", "agno_knowledge", "agno_metrics"},
    "postgresql": {"agno_memories", "agno_eval_runs", "agno_knowledge", "agno_metrics"},
    "mysql": {"agno_eval_runs", "agno_knowledge", "agno_metrics"},
    "mongodb": {"agno_memories", "agno_eval_runs", "agno_metrics"},
}
# at head on OLD_POINT: never named as behind
AT_HEAD = {
    "sqlite": set(),
    "postgresql": set(),
    "mysql": {"agno_memories", "agno_traces", "agno_spans", "agno_culture"},
    "mongodb": {"agno_knowledge"},
}
BACKENDS = ("sqlite", "postgresql", "mysql", "mongodb")


def upgraded(new_database, backend: str, point: str):
    db = new_database(backend)
    load(db, point)
    ok(cli("upgrade", url=db.url))
    return db


# MongoDB: the upgrade brings the other collections to head (tests/test_mongo_tables.py)
@pytest.mark.parametrize("backend", ("sqlite", "postgresql", "mysql"))
def test_sessions_at_head_with_other_tables_behind_fail_check(new_database, backend):
    db = upgraded(new_database, backend, OLD_POINT[backend])

    status = as_json(ok(cli("--json", "current", url=db.url)))
    assert status["at_head"] is True  # the sessions are at head: only the other tables are behind
    tables = {t["name"]: t for t in status["agno_tables"]}
    assert {name for name, t in tables.items() if not t["at_head"]} == BEHIND[backend]
    assert AT_HEAD[backend] <= {name for name, t in tables.items() if t["at_head"]}
    for name in BEHIND[backend]:
        t = tables[name]
        assert t["version"] is not None and t["version"] != t["head"] and not t["drift"]
        assert t["found_by"] == "default name"

    text = ok(cli("current", url=db.url)).out
    for name in BEHIND[backend]:
        assert f" {name} " in text and "behind head" in text

    line = failed(cli("check", url=db.url), 1)
    for name in BEHIND[backend]:
        assert name in line, line
    for name in AT_HEAD[backend]:
        assert f"{name} (" not in line, line
    assert "does not upgrade these table types yet" in line and "MigrationManager" in line
    if backend != "mysql":
        assert "agno_memories (memories) at 2.0.0, head 2.3.0" in line

    with pytest.raises(SchemaBehind) as raised:
        agno_migrate.check(db.url)
    assert all(name in str(raised.value) for name in BEHIND[backend])
    assert raised.value.found == status["version"]


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
def test_drift_in_another_agno_table_fails_check_naming_it(new_database, backend):
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
                indexes = sa.inspect(conn).get_indexes("agno_memories", schema=schema)
                index = next(i["name"] for i in indexes if not i["unique"])
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
    assert memories["version"] is None and memories["drift"]
