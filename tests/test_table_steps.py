"""The other Agno tables' steps where the data or the names make them hard: JSON that jsonb cannot
hold, names too long for the database's identifiers, schedules whose names collide under Agno 3's
per-user keys. Against the real servers, on the table fixture pack."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from test_cli import as_json, cli, failed, ok
from test_tables_detect import SCHEMA, load


def _scalar(db, statement: str):
    engine = db.engine()
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(statement)).scalar()
    finally:
        engine.dispose()


def _tables(db) -> dict[str, dict]:
    return {t["name"]: t for t in as_json(ok(cli("--json", "current", url=db.url)))["agno_tables"]}


def test_a_nul_escape_in_another_tables_json_is_removed_counted_and_named(new_database):
    db = new_database("postgresql")
    load(db, "2.0")
    memory_id = _scalar(db, "SELECT memory_id FROM ai.agno_memories ORDER BY memory_id LIMIT 1")
    db.execute(
        'UPDATE ai.agno_memories SET memory = \'{"memory": "a\\u0000b", "kept": "c\\\\u0000d"}\'::json '
        f"WHERE memory_id = '{memory_id}'",
    )
    result = ok(cli("-v", "upgrade", url=db.url))
    assert f"agno_memories row {memory_id}: 1 NUL character(s) removed from memory" in result.out, result.out
    assert "removed 1 NUL character(s) from 1 row(s)" in result.out
    stored = _scalar(db, f"SELECT memory::text FROM ai.agno_memories WHERE memory_id = '{memory_id}'")
    assert stored == '{"kept": "c\\\\u0000d", "memory": "ab"}'  # the escaped backslash is text, kept
    assert _tables(db)["agno_memories"]["at_head"]
    ok(cli("check", url=db.url))


@pytest.mark.parametrize("backend, point", [("mysql", "2.3"), ("postgresql", "2.0")])
def test_a_name_too_long_for_the_databases_identifiers_gets_a_short_stable_one(new_database, backend, point):
    db = new_database(backend)
    load(db, point)
    long = "agno_metrics_of_the_customer_success_team"  # + "_uq_metrics_user_date_period": over 64
    on = f"{SCHEMA[backend]}." if backend in SCHEMA else ""
    db.execute(f"ALTER TABLE {on}agno_metrics RENAME TO {long}")
    out = as_json(ok(cli("--json", "upgrade", url=db.url)))
    assert long in {t["name"] for t in out["agno_tables"] if t["steps"]}
    tables = _tables(db)
    assert tables[long]["at_head"] and tables[long]["family"] == "metrics"
    ok(cli("check", url=db.url))


@pytest.mark.parametrize("backend", ("sqlite", "postgresql"))
def test_schedules_whose_names_would_collide_are_refused_before_any_table_changes(new_database, backend):
    db = new_database(backend)
    load(db, "2.5")
    on = f"{SCHEMA[backend]}." if backend in SCHEMA else ""
    name = _scalar(db, f"SELECT name FROM {on}agno_schedules ORDER BY id LIMIT 1")
    columns = [c["name"] for c in sa.inspect(db.engine()).get_columns("agno_schedules", schema=SCHEMA.get(backend))]
    copied = ", ".join("id || '-copy'" if c == "id" else c for c in columns)
    db.execute(f"INSERT INTO {on}agno_schedules ({', '.join(columns)}) SELECT {copied} FROM {on}agno_schedules "
             f"WHERE name = '{name}'")  # fmt: skip
    behind = {n for n, t in _tables(db).items() if not t["at_head"]}

    line = failed(cli("upgrade", url=db.url), 8)
    assert "agno_schedules" in line and repr(name) in line and "(2 rows)" in line, line
    assert {n for n, t in _tables(db).items() if not t["at_head"]} == behind  # no other table changed

    db.execute(f"UPDATE {on}agno_schedules SET name = name || ' (copy)' WHERE id LIKE '%-copy'")
    ok(cli("upgrade", url=db.url))
    assert all(t["at_head"] for t in _tables(db).values())
    ok(cli("check", url=db.url))
