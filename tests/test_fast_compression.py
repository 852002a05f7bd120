"""PostgreSQL: a migration step (and ``copy``'s every batch) stores the large values it writes (TOAST) compressed by lz4 where the server
has it and nobody chose ``default_toast_compression`` (``PostgreSQL.fast_compression``): storing the runs
table's JSON is mostly compression time, pglz's four times lz4's. An operator's own choice is kept, and the
setting ends with the step's transaction."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from test_data_step import insert_sessions, run, session
from test_tables_detect import load

import agno_migrate
from agno_migrate.target import Target

BIG = {"content": " ".join(f"word{i}" for i in range(3000))}  # ~26 kB of text: compressed when stored


def _query(url: str, sql: str) -> list[tuple]:
    engine = sa.create_engine(Target.from_url(url).driver_url)
    try:
        with engine.begin() as conn:
            result = conn.exec_driver_sql(sql)
            return [tuple(r) for r in result] if result.returns_rows else []
    finally:
        engine.dispose()


@pytest.mark.parametrize("chosen", [None, "pglz"])
def test_the_step_compresses_large_runs_with_lz4_unless_the_operator_chose(new_database, chosen):
    db = new_database("postgresql")
    agno_migrate.upgrade(db.url, to="2.5.0")
    # s1's run goes by the set-based copy, s2's (no run_id) by the Python rules
    insert_sessions(db.url, [session("s1", [run("r1", **BIG)]), session("s2", [run(None, **BIG)])])
    if chosen:
        name = sa.engine.make_url(db.url).database
        _query(db.url, f'ALTER DATABASE "{name}" SET default_toast_compression = {chosen}')
    ((has_lz4,),) = _query(
        db.url, "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"
    )
    agno_migrate.upgrade(db.url)
    target = Target.from_url(db.url)
    methods = _query(
        db.url,
        f"SELECT session_id, pg_column_compression(run_data) FROM {target.schema}.{target.runs_table} ORDER BY 1",
    )
    expected = "lz4" if has_lz4 and not chosen else "pglz"
    assert methods == [("s1", expected), ("s2", expected)]
    # the setting was the step's transaction's only: a new session compresses as the server is configured
    assert _query(db.url, "SHOW default_toast_compression") == [(chosen or "pglz",)]


def test_copy_into_postgresql_compresses_large_values_with_lz4(new_database):
    """``copy`` SQLite -> PostgreSQL: the runs' JSON and the other tables' large values stored by lz4 (the same rule,
    per batch transaction: ``SqlDialect.begin_batch``)."""
    source = new_database("sqlite")
    store = agno_migrate.connect(source.url)
    try:
        store.upsert_session(agno_migrate.AgentSession("s1", agent_id="a", summary={"summary": BIG["content"]}))
        store.upsert_run("s1", {"run_id": "r1", **BIG})
    finally:
        store.close()
    target = new_database("postgresql")
    agno_migrate.copy(source.url, target.url)
    ((has_lz4,),) = _query(
        target.url, "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"
    )
    t = Target.from_url(target.url)
    methods = _query(
        target.url,
        f"SELECT pg_column_compression(r.run_data), pg_column_compression(s.summary) FROM {t.schema}.{t.runs_table} r "
        f"JOIN {t.schema}.{t.session_table} s USING (session_id)",
    )
    expected = "lz4" if has_lz4 else "pglz"
    assert methods == [(expected, expected)]


def test_a_table_upgrade_compresses_the_json_it_rewrites_with_lz4(new_database):
    """The other Agno tables' upgrade (each table in its own transaction): 2.0 -> head turns the memories' JSON into
    jsonb, a rewrite that stores it by lz4."""
    db = new_database("postgresql")
    load(db, "2.0")
    memory = {"memory": BIG["content"]}
    _query(db.url, f"UPDATE ai.agno_memories SET memory = '{json.dumps(memory)}'::json")
    ((has_lz4,),) = _query(
        db.url, "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"
    )
    agno_migrate.upgrade(db.url)
    methods = {m for (m,) in _query(db.url, "SELECT pg_column_compression(memory) FROM ai.agno_memories")}
    assert methods == {"lz4" if has_lz4 else "pglz"}
