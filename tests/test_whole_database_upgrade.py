"""The whole Agno database to head (issue 14): every point of the table fixture pack (databases the real
Agno releases wrote, every table type they have) on every backend, upgraded by ``agno-migrate upgrade``:
every other Agno table is then at head, stamped as Agno's MigrationManager stamps it, ``check`` passes,
and no row is lost or changed in any column the table had."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from test_cli import as_json, cli, ok
from test_tables_detect import SCHEMA, cases, load

from agno_migrate import registry

SQL_CASES = [c for c in cases() if c.values[1] != "mongodb" and c.values[0] != "v1"]


def _rows(db, name: str) -> list[dict]:
    schema = SCHEMA.get(db.backend)
    with db.engine().connect() as conn:
        table = sa.Table(name, sa.MetaData(), autoload_with=conn, schema=schema)
        key = list(table.primary_key.columns) or list(table.columns)
        return [dict(r._mapping) for r in conn.execute(sa.select(table).order_by(*key))]


def _tables(db) -> dict[str, dict]:
    status = as_json(ok(cli("--json", "current", url=db.url)))
    return {t["name"]: t for t in status["agno_tables"]}


@pytest.mark.parametrize("point, backend", SQL_CASES)
def test_every_table_to_head_with_nothing_lost(new_database, point, backend):
    db = new_database(backend)
    load(db, point)
    before_tables = _tables(db)
    before = {name: _rows(db, name) for name in before_tables}

    out = as_json(ok(cli("--json", "upgrade", url=db.url)))
    changed = {t["name"]: t for t in out["agno_tables"]}
    for name, t in before_tables.items():
        if not t["at_head"]:
            assert name in changed and changed[name]["steps"], name

    after_tables = _tables(db)
    assert set(after_tables) == set(before_tables)
    assert all(t["at_head"] and not t["drift"] for t in after_tables.values()), after_tables
    ok(cli("check", url=db.url))

    for name, rows in before.items():
        now = _rows(db, name)
        assert len(now) == len(rows), name
        for old, new in zip(rows, now, strict=True):
            assert {k: new[k] for k in old} == old or name.endswith("memories"), (name, old, new)
    stamps = {}
    with db.engine().connect() as conn:
        versions = sa.Table("agno_schema_versions", sa.MetaData(), autoload_with=conn, schema=SCHEMA.get(backend))
        stamps = dict(conn.execute(sa.select(versions.c.table_name, versions.c.version)).all())
    for name, t in after_tables.items():
        if t["family"] in registry.AGNO_WALKS:
            assert stamps.get(name) == registry.AGNO_TABLE_STAMP, (name, stamps)

    again = as_json(ok(cli("--json", "upgrade", url=db.url)))
    assert again["agno_tables"] == []  # nothing left to do
