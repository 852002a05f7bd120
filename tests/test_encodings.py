"""Databases whose character set is not UTF-8: a PostgreSQL LATIN1 database, MariaDB latin1 columns.
What the store writes it reads back (text travels as UTF-8, the server converts it); a character the
database cannot hold is refused with one UsageError line and nothing is written. Real servers; the
LATIN1 database is created by the test and dropped after."""

from __future__ import annotations

import uuid

import pytest
from conftest import PG_ADMIN_URL, execute_autocommit
from sqlalchemy.engine import make_url
from test_cli import cli, ok

import agno_migrate
from agno_migrate import AgentSession, UsageError


@pytest.fixture
def latin1_pg():
    name = f"amt_{uuid.uuid4().hex[:12]}"
    execute_autocommit(
        PG_ADMIN_URL, f"CREATE DATABASE {name} ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0"
    )
    yield make_url(PG_ADMIN_URL).set(drivername="postgresql", database=name).render_as_string(hide_password=False)
    execute_autocommit(PG_ADMIN_URL, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _latin1_round_trip(store) -> None:
    store.upsert_session(
        AgentSession(
            "café",
            agent_id="a",
            user_id="josé",
            session_data={"session_name": "Crème brûlée"},
            runs=[{"run_id": "r1", "content": "naïve ü"}],
        )
    )
    store.upsert_run("café", {"run_id": "r2", "content": "façade"})
    got = store.get_session("café")
    assert (got.user_id, got.session_name) == ("josé", "Crème brûlée")
    assert [r["content"] for r in got.runs] == ["naïve ü", "façade"]
    assert store.get_sessions(session_name="BRÛLÉE")[1] == 1 and store.get_all_session_ids() == ["café"]
    with pytest.raises(UsageError, match="character set cannot hold") as refused:
        store.upsert_session(AgentSession("emoji", user_id="😀"))
    assert "\n" not in str(refused.value)
    with pytest.raises(UsageError, match="character set cannot hold"):
        store.upsert_run("café", {"run_id": "r3", "content": "日本"})
    assert store.get_all_session_ids() == ["café"] and [r.run_id for r in store.get_session("café").runs] == [
        "r1",
        "r2",
    ]


def test_the_store_reads_back_what_it_writes_in_a_latin1_postgresql_database(latin1_pg):
    store = agno_migrate.connect(latin1_pg)
    try:
        _latin1_round_trip(store)
    finally:
        store.close()
    ok(cli("check", url=latin1_pg))


def test_a_latin1_postgresql_database_is_upgraded_and_listed_by_the_cli(latin1_pg):
    ok(cli("upgrade", "--to", "2.5.0", url=latin1_pg))
    execute_autocommit(
        latin1_pg.replace("postgresql://", "postgresql+psycopg://"),
        "INSERT INTO ai.agno_sessions (session_id, session_type, user_id, session_data, runs, created_at) "
        "VALUES ('été', 'agent', 'zoë', '{\"session_name\": \"déjà vu\"}', "
        '\'[{"run_id": "r-é", "content": "Noël"}]\', 1)',
    )
    ok(cli("upgrade", url=latin1_pg))
    got = agno_migrate.connect(latin1_pg).get_session("été")
    assert (got.user_id, got.session_name, got.runs[0]["content"]) == ("zoë", "déjà vu", "Noël")


def test_the_store_refuses_what_a_latin1_mariadb_column_cannot_hold(new_database):
    db = new_database("mysql")
    ok(cli("upgrade", url=db.url))
    # a latin1 user_id (as a table made in a latin1 database before the 3.0.1 step could hold)
    execute_autocommit(db.url, "ALTER TABLE agno_sessions MODIFY user_id VARCHAR(128) CHARACTER SET latin1 NULL")
    store = agno_migrate.connect(db.url)
    try:
        store.upsert_session(AgentSession("café", user_id="josé", runs=[{"run_id": "r1", "content": "naïve ü"}]))
        store.upsert_run("café", {"run_id": "r2", "content": "façade"})
        assert store.get_session("café").user_id == "josé"
        with pytest.raises(UsageError, match="character set cannot hold"):
            store.upsert_session(AgentSession("emoji", user_id="😀"))
        assert store.get_all_session_ids() == ["café"]
    finally:
        store.close()


def _latin1_2_0(url: str) -> None:
    """An Agno 2.0 LATIN1 database whose session's json holds escapes of an emoji and of é."""
    ok(cli("upgrade", "--to", "2.0.0", url=url))
    execute_autocommit(
        url.replace("postgresql://", "postgresql+psycopg://"),
        "INSERT INTO ai.agno_sessions (session_id, session_type, session_data, created_at) "
        "VALUES ('s-emoji', 'agent', CAST(:data AS json), 1)".replace(":data", '\'{"e": "\\u00e9 \\ud83d\\ude00"}\''),
    )


def test_a_latin1_2_0_database_keeps_escapes_it_cannot_hold_as_text_cli(latin1_pg):
    _latin1_2_0(latin1_pg)
    result = ok(cli("-v", "upgrade", url=latin1_pg))
    line = "session s-emoji: 1 escape(s) of characters the database's encoding cannot hold kept as text in session_data"
    assert line in result.out, result.out
    stored = agno_migrate.connect(latin1_pg).get_session("s-emoji").session_data
    assert stored == {"e": "é \\ud83d\\ude00"}  # é held; the emoji's escape kept as its text


def test_a_latin1_2_0_database_keeps_escapes_it_cannot_hold_as_text_library(latin1_pg):
    _latin1_2_0(latin1_pg)
    outcome = agno_migrate.connect(latin1_pg, auto_upgrade_schema=True).upgrade_schema()
    assert [tuple(e) for e in outcome.report["escapes_kept_as_text"]] == [("s-emoji", "session_data", 1, None)]
