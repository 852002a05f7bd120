"""Damage, alike on every backend: an Agno database that lacks indexes of its version (a SQL table's
index dropped by hand; a MongoDB database restored by ``mongoimport``, which writes documents and no
index) is repaired, not refused: ``current`` and ``plan`` name what is missing, ``check`` exits 4
naming it and the command that repairs it (``agno-migrate upgrade``), and ``upgrade`` creates head's
missing indexes ("repaired indexes: ...") — the same through the CLI and the library — after which
the layout equals an undamaged database's and ``check`` passes.

What is not repaired stays a refusal, saying why: a missing primary key on SQL (rows already there
could violate it: a duplicate would make the upgrade fail half-way); on MongoDB a unique index
whose field repeats in the documents (the upgrade names the values, exit 8, nothing changed).

On MongoDB the indexes a database found unmanaged must already have are those of the collections
at the version found: the session collection's always, the runs collection's from 3.0.0 on (before
it, the 3.0.0 step creates the runs collection's indexes itself)."""

from __future__ import annotations

import pytest
from test_tables_detect import load as load_tables

import agno_migrate
from agno_migrate.errors import Refused, SchemaBehind, SchemaDrift

from . import mongo_support
from .mongo_support import opened
from .support import cli, execute, full_state, note_case, one_line, signature, succeeded

REPAIRS = "agno-migrate upgrade creates them"

DAMAGE = {  # kind: (the fixture pack's point, None: upgraded first; the indexes dropped, as (table, SQL name, Mongo name))
    "session index missing, unmanaged 2.5.0": ("2.5.0", [("agno_sessions", "idx_agno_sessions_created_at", "created_at_1")]),
    "runs index missing, unmanaged 3.1.10": ("3.1.10", [("agno_runs", "idx_agno_runs_user_id", "user_id_1")]),
    "two indexes missing at head": (None, [("agno_sessions", "idx_agno_sessions_session_type", "session_type_1"),
                                          ("agno_runs", "idx_agno_runs_status", "status_1")]),
}  # fmt: skip


def layout(db) -> dict:
    """Every table's (collection's) columns, keys and indexes."""
    return mongo_support.signature(db.url) if db.backend == "mongodb" else signature(db.url)


def prepare(db, point: str | None) -> None:
    if point is None:
        db.load("2.5.0")
        succeeded(cli("upgrade", url=db.url))
    else:
        db.load(point)


def drop_index(db, table: str, sql_name: str, mongo_name: str) -> None:
    if db.backend == "mongodb":
        with opened(db.url) as (mdb, _):
            mdb[table].drop_index(mongo_name)
        return
    statement = {
        "postgresql": f"DROP INDEX ai.{sql_name}",
        "mysql": f"DROP INDEX {sql_name} ON {table}",
        "sqlite": f"DROP INDEX {sql_name}",
    }[db.backend]
    execute(db.url, statement)


def said(db, table: str, sql_name: str, mongo_name: str) -> str:
    return f"index {mongo_name if db.backend == 'mongodb' else sql_name} on {table} is missing"


@pytest.mark.parametrize("via", ["cli", "library"])
@pytest.mark.parametrize("kind", list(DAMAGE))
def test_missing_indexes_are_named_then_repaired_by_upgrade(rdb, backend, kind, via, tmp_path):
    note_case(f"indexes missing: {kind} ({via})")
    point, dropped = DAMAGE[kind]
    reference = rdb(backend)
    prepare(reference, point)
    succeeded(cli("upgrade", url=reference.url, cwd=tmp_path))
    db = rdb(backend)
    prepare(db, point)
    for index in dropped:
        drop_index(db, *index)
    missing = [said(db, *index) for index in dropped]
    before = full_state(db)

    shown = succeeded(cli("current", url=db.url, cwd=tmp_path)).out
    assert all(m in shown for m in missing) and REPAIRS in shown, shown
    assert all(m in succeeded(cli("plan", url=db.url, cwd=tmp_path)).out for m in missing)
    if agno_migrate.current(
        db.url
    ).at_head:  # (Agno 3.1 on MariaDB is 3.0.0: 3.0.1 changes its collations)  # check names the indexes and the command; behind head it says "run agno-migrate upgrade"
        line = one_line(cli("check", url=db.url, cwd=tmp_path), 4)
        assert all(m in line for m in missing) and REPAIRS in line, line
        with pytest.raises(SchemaDrift, match=REPAIRS):
            agno_migrate.check(db.url)
    else:
        with pytest.raises(SchemaBehind, match="run agno-migrate upgrade"):
            agno_migrate.check(db.url)
    assert full_state(db) == before  # current, plan and check change nothing

    repaired = [f"{table}.{mongo if db.backend == 'mongodb' else sql}" for table, sql, mongo in dropped]
    if via == "cli":
        out = succeeded(cli("upgrade", url=db.url, cwd=tmp_path)).out
        assert f"repaired indexes: {', '.join(repaired)}" in out, out
    else:
        assert agno_migrate.upgrade(db.url).repaired == repaired
    assert layout(db) == layout(reference)
    succeeded(cli("check", url=db.url, cwd=tmp_path))
    agno_migrate.check(db.url)
    again = succeeded(cli("upgrade", url=db.url, cwd=tmp_path)).out
    assert "nothing to do" in again and "repaired" not in again, again


@pytest.mark.backends("postgresql", "mysql")
def test_a_missing_primary_key_is_not_repaired_and_check_says_why(rdb, backend, tmp_path):
    """A primary key is not added back: rows already there could violate it (the runs table's key,
    dropped by hand on a database at head). check exits 4 saying so; upgrade leaves it."""
    note_case("primary key missing at head")
    db = rdb(backend)
    prepare(db, None)
    execute(db.url, "ALTER TABLE ai.agno_runs DROP CONSTRAINT agno_runs_pkey" if backend == "postgresql"
            else "ALTER TABLE agno_runs DROP PRIMARY KEY")  # fmt: skip
    line = one_line(cli("check", url=db.url, cwd=tmp_path), 4)
    assert "agno_runs primary key is []" in line and "rows already there could violate it" in line, line
    before = full_state(db)
    out = succeeded(cli("upgrade", url=db.url, cwd=tmp_path)).out
    assert "repaired" not in out and "drift: agno_runs primary key is []" in out, out
    assert full_state(db) == before
    with pytest.raises(SchemaDrift, match="could violate it"):
        agno_migrate.check(db.url)


@pytest.mark.parametrize("managed", [True, False], ids=["managed", "unmanaged"])
@pytest.mark.backends("mongodb")
def test_a_database_restored_by_mongoimport_is_repaired(rdb, backend, managed, tmp_path):
    """Every collection's documents, no index (what mongoimport leaves; ``managed``: our state
    collection restored too): the session and runs collections and every other Agno collection get
    their head indexes back, named as Agno names them; check then passes."""
    note_case(f"MongoDB restored without indexes ({'managed' if managed else 'unmanaged'})")
    db = rdb(backend)
    load_tables(db, "3.1")
    succeeded(cli("upgrade", url=db.url, cwd=tmp_path))
    want = layout(db)
    with opened(db.url) as (mdb, target):
        if not managed:
            mdb.drop_collection(target.version_table)
            want.pop(target.version_table, None)
        for name in mdb.list_collection_names():
            mdb[name].drop_indexes()
    before = full_state(db)
    line = one_line(cli("check", url=db.url, cwd=tmp_path), 4)
    assert "index session_id_1 on agno_sessions is missing" in line and REPAIRS in line, line
    shown = succeeded(cli("current", url=db.url, cwd=tmp_path)).out
    assert "agno_memories" in shown and "lacks the indexes" in shown, shown
    assert full_state(db) == before

    out = succeeded(cli("upgrade", url=db.url, cwd=tmp_path)).out
    assert "repaired indexes: agno_sessions.session_id_1" in out and "agno_memories.memory_id_1" in out, out
    got = layout(db)
    if not managed:
        got.pop(target.version_table, None)
    assert got == want
    succeeded(cli("check", url=db.url, cwd=tmp_path))
    assert "nothing to do" in succeeded(cli("upgrade", url=db.url, cwd=tmp_path)).out


@pytest.mark.backends("mongodb")
def test_a_unique_index_over_duplicates_is_refused_naming_them(rdb, backend, tmp_path):
    """The session collection restored without its unique session_id index, and a session id
    stored twice: the index cannot be built. upgrade refuses before any change (exit 8), naming the
    value; the library raises Refused."""
    note_case("MongoDB unique index missing over duplicate session ids")
    db = rdb(backend)
    db.load("3.1.10")
    with opened(db.url) as (mdb, target):
        sessions = mdb[target.session_table]
        sessions.drop_index("session_id_1")
        twin = sessions.find_one({}, {"_id": 0})
        sessions.insert_one(twin)
    before = full_state(db)
    line = one_line(cli("upgrade", url=db.url, cwd=tmp_path), 8)
    assert "unique index session_id_1" in line and repr(twin["session_id"]) in line, line
    with pytest.raises(Refused, match="session_id_1"):
        agno_migrate.upgrade(db.url)
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
    assert status.version < "3.0.0" and status.drift == [] and status.repairs == [], status
    succeeded(cli("upgrade", url=db.url, cwd=tmp_path))
    succeeded(cli("check", url=db.url, cwd=tmp_path))
