"""Agno 1.x rows that could not be read are not forgotten (issue 15, bug 2), on every backend: the
table stays pending, every ``upgrade`` reads it again (a repaired row is imported) and exits 9, ``check``
exits 9 naming the table and its count, ``current`` and the library say so, until the user accepts the
loss with ``--accept-unreadable TABLE`` (library: ``accept_unreadable``)."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from test_cli import cli, failed, ok

import agno_migrate
from agno_migrate.errors import Incomplete, UsageError
from agno_migrate.migrate.runner import legacy_pending

BACKENDS = ("sqlite", "postgresql", "mysql", "mongodb")
SCHEMA = {"postgresql": "ai"}


def _table(db):
    return sa.table(
        "agent_sessions",
        sa.column("session_id"),
        sa.column("memory"),
        sa.column("session_data"),
        schema=SCHEMA.get(db.backend),
    )


def break_rows(db) -> tuple[list[str], dict]:
    """Make two agent sessions unreadable (memory a list, session_data a number). Returns their ids
    and what restores them."""
    if db.backend == "mongodb":
        with db.mongo() as mdb:
            agents = mdb["agent_sessions"]
            docs = list(agents.find({}, {"session_id": 1, "memory": 1, "session_data": 1}).sort("session_id", 1))[:2]
            agents.update_one({"session_id": docs[0]["session_id"]}, {"$set": {"memory": [1, 2]}})
            agents.update_one({"session_id": docs[1]["session_id"]}, {"$set": {"session_data": 42}})
        return [d["session_id"] for d in docs], {d["session_id"]: d for d in docs}
    table = _table(db)
    engine = db.engine()
    try:
        with engine.begin() as conn:
            query = sa.select(
                table.c.session_id, sa.cast(table.c.memory, sa.Text), sa.cast(table.c.session_data, sa.Text)
            )
            rows = conn.execute(query.order_by(table.c.session_id).limit(2)).all()
            conn.execute(table.update().where(table.c.session_id == rows[0][0]).values(memory=_json(db, "[1, 2]")))
            conn.execute(table.update().where(table.c.session_id == rows[1][0]).values(session_data=_json(db, "42")))
    finally:
        engine.dispose()
    return [r[0] for r in rows], {r[0]: {"memory": r[1], "session_data": r[2]} for r in rows}


def _json(db, text):
    return sa.cast(text, sa.dialects.postgresql.JSONB) if db.backend == "postgresql" else text


def repair(db, session_id: str, original: dict) -> None:
    if db.backend == "mongodb":
        with db.mongo() as mdb:
            mdb["agent_sessions"].update_one(
                {"session_id": session_id},
                {"$set": {"memory": original.get("memory"), "session_data": original.get("session_data")}},
            )
        return
    table = _table(db)
    engine = db.engine()
    try:
        with engine.begin() as conn:
            values = {k: None if v is None else _json(db, v) for k, v in original.items()}
            conn.execute(table.update().where(table.c.session_id == session_id).values(**values))
    finally:
        engine.dispose()


def head_ids(db) -> set[str]:
    if db.backend == "mongodb":
        with db.mongo() as mdb:
            return {d["session_id"] for d in mdb["agno_sessions"].find({}, {"session_id": 1})}
    engine = db.engine()
    try:
        with engine.connect() as conn:
            table = sa.table("agno_sessions", sa.column("session_id"), schema=SCHEMA.get(db.backend))
            return {r[0] for r in conn.execute(sa.select(table.c.session_id))}
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", BACKENDS)
def test_unreadable_rows_keep_the_table_pending_until_imported_or_accepted(new_database, backend, tmp_path):
    db = new_database(backend)
    db.load("v1")
    bad, originals = break_rows(db)

    first = failed(cli("upgrade", url=db.url, cwd=tmp_path), 9)
    assert "2 Agno 1.x row(s) could not be read" in first and "--accept-unreadable agent_sessions" in first
    imported = head_ids(db)
    assert not set(bad) & imported and len(imported) == 200 - 2

    # a retry is not a success: the table is read again, the same rows fail again
    again = failed(cli("upgrade", url=db.url, cwd=tmp_path), 9)
    assert "2 Agno 1.x row(s) could not be read" in again
    line = failed(cli("check", url=db.url), 9)
    assert "agent_sessions (2 row(s))" in line and "--accept-unreadable agent_sessions" in line
    assert re.search(
        r"agent_sessions \(agent, \d+ rows\): not imported: 2 row\(s\) could not be read",
        ok(cli("current", url=db.url)).out,
    )
    assert legacy_pending(db.url) == ["agent_sessions"]
    assert agno_migrate.current(db.url).legacy_unreadable == {"agent_sessions": 2}
    with pytest.raises(Incomplete, match="agent_sessions"):
        agno_migrate.check(db.url)
    # the store is not held back: the import is over, what is missing is the user's to repair or accept
    some = sorted(imported)[0]
    assert agno_migrate.connect(db.url).get_session(some).session_id == some

    # a repaired row is imported by the next run; the other one still fails
    repair(db, bad[0], originals[bad[0]])
    third = failed(cli("upgrade", url=db.url, cwd=tmp_path), 9)
    assert "1 Agno 1.x row(s) could not be read" in third
    assert head_ids(db) == imported | {bad[0]}
    assert failed(cli("check", url=db.url), 9)

    # accepting the loss: a name that is not a 1.x table is a usage error, nothing changed
    assert "not an Agno 1.x table" in failed(cli("upgrade", "--accept-unreadable", "nope", url=db.url), 2)
    with pytest.raises(UsageError):
        agno_migrate.upgrade(db.url, accept_unreadable=["agno_sessions"])
    assert legacy_pending(db.url) == ["agent_sessions"]
    done = ok(cli("upgrade", "--accept-unreadable", "agent_sessions", url=db.url, cwd=tmp_path))
    assert "their loss is accepted for agent_sessions" in done.err + done.out
    ok(cli("check", url=db.url))
    assert legacy_pending(db.url) == []
    status = agno_migrate.current(db.url)
    assert status.legacy_unreadable == {"agent_sessions": 1}
    assert "imported, 1 unreadable row(s) accepted as lost" in ok(cli("current", url=db.url)).out
    assert head_ids(db) == imported | {bad[0]}
    assert "nothing to do" in ok(cli("upgrade", url=db.url, cwd=tmp_path)).out + ""
