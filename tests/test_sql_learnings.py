"""The learnings 3.0.0 re-key on SQL (SQLite, PostgreSQL; MySQL has no learnings table): after
``agno-migrate upgrade`` the learnings table holds exactly what the rule (``convert.learnings``,
pinned to Agno's own ``rekey_user_entity_learnings`` in tests/test_convert_learnings.py) leaves,
moved rows keep their other columns, and the table is stamped so that the re-key runs once."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from test_cli import as_json, cli, ok
from test_convert_learnings import rows_agno_agrees_with
from test_tables_detect import SCHEMA, load

from agno_migrate.convert.learnings import apply_plan, plan_rekey


def _table(conn, schema):
    return sa.Table("agno_learnings", sa.MetaData(), autoload_with=conn, schema=schema)


def _rows(db) -> dict[str, dict]:
    with db.engine().connect() as conn:
        table = _table(conn, SCHEMA.get(db.backend))
        return {r.learning_id: dict(r._mapping) for r in conn.execute(sa.select(table))}


@pytest.mark.parametrize("backend", ("sqlite", "postgresql"))
def test_learnings_rekeyed_by_the_rule_on_sql(new_database, backend):
    db = new_database(backend)
    load(db, "2.9")
    schema = SCHEMA.get(backend)
    with db.engine().begin() as conn:
        table = _table(conn, schema)
        conn.execute(table.insert(), [{k: v for k, v in r.items() if k in table.c} for r in rows_agno_agrees_with()])
        versions = sa.Table("agno_schema_versions", sa.MetaData(), autoload_with=conn, schema=schema)
        conn.execute(versions.delete().where(versions.c.table_name == "agno_learnings"))  # as a 2.x table
    before = _rows(db)
    wanted = {r["learning_id"]: r for r in apply_plan(before.values(), plan_rekey(before.values()))}
    assert wanted != before

    outcome = as_json(ok(cli("--json", "upgrade", url=db.url)))
    learnings = {t["name"]: t for t in outcome["agno_tables"]}["agno_learnings"]
    assert learnings["steps"] == ["3.0.0"] and learnings["stamped"]
    assert _rows(db) == wanted
    assert outcome["report"]["learnings"] > 0

    again = as_json(ok(cli("--json", "upgrade", url=db.url)))
    assert again["agno_tables"] == [] and _rows(db) == wanted  # stamped: the re-key ran once
