"""Damage is refused alike on every backend: an Agno database that looks like a version but lacks
an index that version has (a SQL table's index, a MongoDB collection's) matches no version, and
the one migration flow (migrate/runner.py) refuses to adopt it — exit 4 through the CLI naming
what is missing, SchemaDrift through the library — with nothing changed in the database.

On MongoDB the indexes a database must already have are those of the collections at the version
found: the session collection's always, the runs collection's from 3.0.0 on (before it, the 3.0.0
step creates the runs collection's indexes itself, so their absence is no damage)."""

from __future__ import annotations

import pytest

import agno_migrate
from agno_migrate.errors import SchemaDrift

from .mongo_support import opened
from .support import cli, execute, full_state, note_case, one_line, succeeded

DAMAGE = {  # kind: (the fixture pack's point, the index dropped per backend, what the refusal names)
    "session index missing": (
        "2.5.0",
        {
            "postgresql": "DROP INDEX ai.idx_agno_sessions_created_at",
            "mysql": "DROP INDEX idx_agno_sessions_created_at ON agno_sessions",
            "sqlite": "DROP INDEX idx_agno_sessions_created_at",
            "mongodb": ("agno_sessions", "created_at_1"),
        },
        {"sql": "index idx_agno_sessions_created_at on agno_sessions is missing",
         "mongodb": "agno_sessions lacks index created_at_1"},
    ),
    "runs index missing": (
        "3.1.10",
        {
            "postgresql": "DROP INDEX ai.idx_agno_runs_user_id",
            "mysql": "DROP INDEX idx_agno_runs_user_id ON agno_runs",
            "sqlite": "DROP INDEX idx_agno_runs_user_id",
            "mongodb": ("agno_runs", "user_id_1"),
        },
        {"sql": "index idx_agno_runs_user_id on agno_runs is missing", "mongodb": "agno_runs lacks index user_id_1"},
    ),
}  # fmt: skip


def damage(db, backend: str, what) -> None:
    if backend == "mongodb":
        collection, index = what
        with opened(db.url) as (mdb, _):
            mdb[collection].drop_index(index)
        return
    execute(db.url, what)


@pytest.mark.parametrize("kind", list(DAMAGE))
def test_a_damaged_unmanaged_database_is_refused(rdb, backend, kind, tmp_path):
    note_case(f"damaged unmanaged schema: {kind}")
    point, statements, said = DAMAGE[kind]
    db = rdb(backend)
    db.load(point)
    version = agno_migrate.current(db.url).version
    damage(db, backend, statements[backend])
    missing = said["mongodb" if backend == "mongodb" else "sql"]
    before = full_state(db)

    line = one_line(cli("upgrade", url=db.url, cwd=tmp_path), 4)
    assert f"does not match Agno {version}" in line and missing in line and "nothing changed" in line, line
    assert full_state(db) == before
    for command in ("plan", "check"):
        assert missing in one_line(cli(command, url=db.url, cwd=tmp_path), 4)
    with pytest.raises(SchemaDrift, match=f"does not match Agno {version}.*nothing changed"):
        agno_migrate.upgrade(db.url)
    with pytest.raises(SchemaDrift, match="lacks index|is missing"):
        agno_migrate.downgrade(db.url, "2.3.0")
    status = agno_migrate.current(db.url)
    assert missing in status.drift and not status.managed
    assert full_state(db) == before


@pytest.mark.backends("mongodb")
def test_a_runs_collection_without_indexes_before_3_0_0_is_no_damage(rdb, backend, tmp_path):
    """A 2.x database beside an empty runs collection without indexes: the 3.0.0 step creates them."""
    note_case("runs collection without indexes before 3.0.0")
    db = rdb(backend)
    db.load("2.5.0")
    with opened(db.url) as (mdb, target):
        mdb.create_collection(target.runs_table)
    status = agno_migrate.current(db.url)
    assert status.version < "3.0.0" and status.drift == [], status
    succeeded(cli("upgrade", url=db.url, cwd=tmp_path))
    succeeded(cli("check", url=db.url, cwd=tmp_path))
