"""A second session table in a database that already holds ``agno_sessions`` + ``agno_runs`` (issue 15,
bug 3), on every backend: without ``--runs-table`` it gets its own runs table, named as Agno 3.1.10
names it (``<session_table>_runs``), and both pairs work (check passes, the store writes runs to each);
with ``--runs-table agno_runs`` (another session table's) the upgrade is refused before anything
changes, naming ``--runs-table``."""

from __future__ import annotations

import pytest
from test_cli import cli, failed, ok, snapshot

import agno_migrate
from agno_migrate.errors import Refused
from agno_migrate.sessions import AgentSession, Run
from agno_migrate.target import Target

BACKENDS = ("sqlite", "postgresql", "mysql", "mongodb")


def names(db) -> set[str]:
    if db.backend == "mongodb":
        with db.mongo() as mdb:
            return set(mdb.list_collection_names())
    import sqlalchemy as sa

    engine = db.engine()
    try:
        with engine.connect() as conn:
            return set(sa.inspect(conn).get_table_names(schema="ai" if db.backend == "postgresql" else None))
    finally:
        engine.dispose()


def mongo_state(db) -> dict:
    with db.mongo() as mdb:
        return {name: sorted(map(str, mdb[name].find({}, {"_id": 0}))) for name in mdb.list_collection_names()}


def state(db):
    return mongo_state(db) if db.backend == "mongodb" else snapshot(db.url)


def test_the_default_runs_table_follows_agno():
    assert Target.from_url("sqlite:///a.db").runs_table == "agno_runs"
    assert Target.from_url("sqlite:///a.db", session_table="agno_sessions").runs_table == "agno_runs"
    assert Target.from_url("sqlite:///a.db", session_table="other_sessions").runs_table == "other_sessions_runs"
    assert Target.from_url("sqlite:///a.db", session_table="other", runs_table="mine").runs_table == "mine"
    line = failed(cli("--session-table", "s" * 40, "current", url="sqlite:////nonexistent/a.db"), 2)
    assert "--runs-table" in line


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_second_session_table_gets_its_own_runs_table_or_is_refused(new_database, backend):
    db = new_database(backend)
    ok(cli("upgrade", url=db.url))
    before = state(db)

    # explicitly sharing the first pair's runs table: refused, nothing changed
    line = failed(cli("--session-table", "other_sessions", "--runs-table", "agno_runs", "upgrade", url=db.url), 8)
    assert "--runs-table" in line and "other_sessions_runs" in line
    if backend != "mongodb":
        assert "belong to agno_sessions" in line
    with pytest.raises(Refused):
        agno_migrate.upgrade(Target.from_url(db.url, session_table="other_sessions", runs_table="agno_runs"))
    assert state(db) == before

    # by default: its own runs table, as Agno 3.1.10 names it; both pairs at head and usable
    done = ok(cli("--session-table", "other_sessions", "upgrade", url=db.url))
    assert "created other_sessions" in done.out
    assert {"agno_sessions", "agno_runs", "other_sessions", "other_sessions_runs"} <= names(db)
    ok(cli("--session-table", "other_sessions", "check", url=db.url))
    ok(cli("check", url=db.url))
    for table in ("agno_sessions", "other_sessions"):
        store = agno_migrate.connect(db.url, session_table=table)
        store.upsert_session(
            AgentSession(
                session_id=f"s-{table}",
                agent_id="a",
                runs=[Run(run_id=f"r-{table}", agent_id="a", content="hi", status="COMPLETED", created_at=1)],
            )
        )
        assert [r.run_id for r in store.get_session(f"s-{table}").runs] == [f"r-{table}"]
