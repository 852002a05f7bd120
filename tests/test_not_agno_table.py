"""A table named ``agno_sessions`` that is not Agno's (issue 15, poor messages), on every backend:
``current`` says it is not Agno's (no version), ``check`` and ``upgrade`` exit 4 changing nothing,
``stamp`` is refused (exit 8, nothing changed) unless ``--force``."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from test_cli import as_json, cli, failed, ok, snapshot

import agno_migrate
from agno_migrate.errors import Refused, SchemaDrift

BACKENDS = ("sqlite", "postgresql", "mysql", "mongodb")


def make_foreign_table(db) -> None:
    if db.backend == "mongodb":
        with db.mongo() as mdb:
            mdb["agno_sessions"].insert_many([{"id": 1, "name": "x"}, {"id": 2, "name": "y"}])
        return
    engine = db.engine()
    try:
        with engine.begin() as conn:
            schema = "ai" if db.backend == "postgresql" else None
            if schema:
                conn.execute(sa.text("CREATE SCHEMA IF NOT EXISTS ai"))
            table = sa.Table(
                "agno_sessions",
                sa.MetaData(),
                sa.Column("id", sa.Integer, primary_key=True),
                sa.Column("name", sa.String(20)),
                schema=schema,
            )
            table.create(conn)
            conn.execute(table.insert(), [{"id": 1, "name": "x"}])
    finally:
        engine.dispose()


def state(db):
    if db.backend == "mongodb":
        with db.mongo() as mdb:
            return {n: sorted(map(str, mdb[n].find({}, {"_id": 0}))) for n in mdb.list_collection_names()}
    return snapshot(db.url)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_table_that_is_not_agnos_is_named_so_and_not_stamped_silently(new_database, backend):
    db = new_database(backend)
    make_foreign_table(db)
    before = state(db)

    shown = ok(cli("current", url=db.url)).out
    assert "agno_sessions is not Agno's" in shown and "2.0.0" not in shown
    status = agno_migrate.current(db.url)
    assert status.version is None and status.not_agno
    assert as_json(ok(cli("--json", "current", url=db.url)))["not_agno"] is True
    assert "not an Agno session" in failed(cli("check", url=db.url), 4)
    assert "not an Agno session" in failed(cli("upgrade", url=db.url), 4)
    line = failed(cli("stamp", "3.0.1", url=db.url), 8)
    assert "not an Agno session" in line and "--force" in line
    with pytest.raises(Refused):
        agno_migrate.stamp(db.url, "3.0.1")
    with pytest.raises(SchemaDrift):
        agno_migrate.check(db.url)
    assert state(db) == before

    ok(cli("stamp", "--force", "3.0.1", url=db.url))  # the operator's explicit override
    assert agno_migrate.current(db.url).version == "3.0.1"
