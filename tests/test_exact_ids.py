"""3.0.1: id columns compare exactly on MySQL/MariaDB (binary collation), a no-op elsewhere.

Upgrading the Agno 3.1.10 fixture point, downgrading and upgrading again, resuming an interrupted
run, ``--sql`` rendering, detection of both physical schemas and drift when a column loses it.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from conftest import SQL_BACKENDS, run_mysql_script
from lineage_checks import (
    agno_stamps,
    schema_without_legacy_runs,
    session_ids,
    stored_runs,
)

import agno_migrate
from agno_migrate import AgentSession
from agno_migrate.errors import Refused, SchemaDrift
from agno_migrate.migrate.model import HeadDiff
from agno_migrate.migrate.sql import detect
from agno_migrate.target import Target

SESSION_IDS = ("session_id", "agent_id", "team_id", "workflow_id", "user_id")
RUN_IDS = ("run_id", "session_id", "agent_id", "team_id", "workflow_id", "user_id", "parent_run_id")
ID_COLUMNS = {"agno_sessions": SESSION_IDS, "agno_runs": RUN_IDS}


def columns(url: str, table: str) -> dict[str, tuple[str, str, str | None]]:
    """column -> (COLUMN_TYPE, IS_NULLABLE, COLLATION_NAME) of a MariaDB table."""
    target = Target.from_url(url)
    engine = sa.create_engine(target.driver_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COLLATION_NAME FROM information_schema.COLUMNS "
                    "WHERE TABLE_SCHEMA = :s AND TABLE_NAME = :t"
                ),
                {"s": target.schema, "t": table},
            ).all()
    finally:
        engine.dispose()
    return {name: (type_, nullable, collation) for name, type_, nullable, collation in rows}


def id_collations(url: str, tables=ID_COLUMNS) -> set[str]:
    return {columns(url, table)[col][2] for table, cols in tables.items() for col in cols}


def foreign_keys(url: str, runs_table: str = "agno_runs") -> list[tuple]:
    target = Target.from_url(url)
    engine = sa.create_engine(target.driver_url)
    try:
        with engine.connect() as conn:
            fks = sa.inspect(conn).get_foreign_keys(runs_table, schema=target.schema)
    finally:
        engine.dispose()
    return [(fk["constrained_columns"], fk["referred_table"], fk["options"].get("ondelete")) for fk in fks]


def loaded_3_1_10(new_database):
    db = new_database("mysql")
    db.load("3.1.10")
    return db


def test_mysql_agno_3_1_10_upgrades_to_3_0_1_with_binary_ids(new_database):
    db = loaded_3_1_10(new_database)
    before = columns(db.url, "agno_sessions"), columns(db.url, "agno_runs")
    assert id_collations(db.url) == {"utf8mb4_general_ci"}
    status = agno_migrate.current(db.url)
    assert status.version == "3.0.0" and not status.managed and not status.drift  # stamp and schema agree
    with pytest.raises(agno_migrate.SchemaBehind):
        agno_migrate.check(db.url)
    runs = stored_runs(db.url)

    outcome = agno_migrate.upgrade(db.url)
    assert (outcome.adopted, outcome.applied, outcome.after) == ("3.0.0", ["3.0.1"], "3.0.1")
    assert id_collations(db.url) == {"utf8mb4_bin"}
    after = columns(db.url, "agno_sessions"), columns(db.url, "agno_runs")
    for old, new in zip(before, after, strict=False):  # type, length, nullability unchanged; other columns untouched
        assert {c: v[:2] for c, v in old.items()} == {c: v[:2] for c, v in new.items()}
        assert {c: v for c, v in old.items() if c not in SESSION_IDS + RUN_IDS} == {
            c: v for c, v in new.items() if c not in SESSION_IDS + RUN_IDS
        }
    assert foreign_keys(db.url) == [(["session_id"], "agno_sessions", "CASCADE")]
    assert agno_migrate.check(db.url).version == "3.0.1"
    assert stored_runs(db.url) == runs
    assert agno_stamps(db.url) == {"agno_sessions": "3.0.0", "agno_runs": "3.0.0"}

    store = agno_migrate.connect(db.url)
    store.upsert_session(AgentSession(session_id="Twin", user_id="Alice"))
    store.upsert_session(AgentSession(session_id="twin", user_id="alice"))
    assert store.get_session("Twin").user_id == "Alice" and store.get_session("twin").user_id == "alice"
    assert store.get_sessions(user_id="ALICE") == ([], 0)


def test_mysql_downgrade_to_3_0_0_and_up_again(new_database):
    db = loaded_3_1_10(new_database)
    agno_migrate.upgrade(db.url, to="3.0.0")  # adopt only: the schema Agno wrote
    as_agno_wrote = schema_without_legacy_runs(db.url)
    ids, runs = session_ids(db.url), stored_runs(db.url)
    agno_migrate.upgrade(db.url)
    assert schema_without_legacy_runs(db.url) != as_agno_wrote

    down = agno_migrate.downgrade(db.url, "3.0.0")
    assert (down.before, down.applied, down.after) == ("3.0.1", ["3.0.1"], "3.0.0")
    assert schema_without_legacy_runs(db.url) == as_agno_wrote  # the table default again, FK back
    assert id_collations(db.url) == {"utf8mb4_general_ci"}
    assert agno_stamps(db.url) == {"agno_sessions": "3.0.0", "agno_runs": "3.0.0"}
    with pytest.raises(agno_migrate.SchemaBehind):
        agno_migrate.check(db.url)

    up = agno_migrate.upgrade(db.url)
    assert (up.applied, up.after) == (["3.0.1"], "3.0.1")
    agno_migrate.check(db.url)
    assert id_collations(db.url) == {"utf8mb4_bin"}
    assert session_ids(db.url) == ids and stored_runs(db.url) == runs


def test_mysql_downgrade_refused_when_ids_would_collide(new_database):
    db = new_database("mysql")
    store = agno_migrate.connect(db.url)
    store.upsert_session(AgentSession(session_id="Chat-1", user_id="alice"))
    store.upsert_session(AgentSession(session_id="chat-1", user_id="bob"))
    before = schema_without_legacy_runs(db.url)
    with pytest.raises(Refused) as err:
        agno_migrate.downgrade(db.url, "3.0.0")
    assert "session_id" in str(err.value) and "nothing was changed" in str(err.value)
    assert schema_without_legacy_runs(db.url) == before
    assert agno_migrate.check(db.url).version == "3.0.1"


@pytest.mark.parametrize("stop_after", ["drop_fk", "sessions", "runs"])
def test_mysql_interrupted_step_completes_on_the_next_run(new_database, stop_after):
    """MySQL DDL is not transactional: a run killed between the statements of 3.0.1 leaves the
    database recorded at 3.0.0, half altered; the next upgrade finishes the job."""
    db = loaded_3_1_10(new_database)
    agno_migrate.upgrade(db.url, to="3.0.0")
    schema = Target.from_url(db.url).schema
    done = [f"ALTER TABLE `{schema}`.agno_runs DROP FOREIGN KEY agno_runs_ibfk_1;"]
    if stop_after in ("sessions", "runs"):
        done.append(
            f"ALTER TABLE `{schema}`.agno_sessions MODIFY session_id varchar(128) COLLATE utf8mb4_bin NOT NULL, "
            "MODIFY user_id varchar(128) COLLATE utf8mb4_bin NULL;"
        )
    if stop_after == "runs":
        done.append(f"ALTER TABLE `{schema}`.agno_runs MODIFY session_id varchar(128) COLLATE utf8mb4_bin NOT NULL;")
    run_mysql_script(db.url, "\n".join(done))
    assert agno_migrate.current(db.url).version == "3.0.0"

    outcome = agno_migrate.upgrade(db.url)
    assert outcome.applied == ["3.0.1"]
    agno_migrate.check(db.url)
    assert id_collations(db.url) == {"utf8mb4_bin"}
    assert foreign_keys(db.url) == [(["session_id"], "agno_sessions", "CASCADE")]


def test_mysql_upgrade_sql_to_3_0_1_renders_the_alters(new_database):
    db = loaded_3_1_10(new_database)
    agno_migrate.upgrade(db.url, to="3.0.0")
    before = schema_without_legacy_runs(db.url)
    sql = agno_migrate.upgrade(db.url, sql=True, to="3.0.1").sql
    schema = Target.from_url(db.url).schema
    assert f"ALTER TABLE {schema}.agno_runs DROP FOREIGN KEY agno_runs_ibfk_1;" in sql
    assert (
        f"ALTER TABLE {schema}.agno_sessions MODIFY session_id varchar(128) CHARACTER SET utf8mb4 COLLATE "
        "utf8mb4_bin NOT NULL, MODIFY agent_id varchar(128) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL" in sql
    )
    assert "MODIFY parent_run_id varchar(128) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL;" in sql
    assert "session_type" not in sql and "run_type" not in sql
    assert f"ADD CONSTRAINT agno_runs_ibfk_1 FOREIGN KEY(session_id) REFERENCES {schema}.agno_sessions" in sql
    assert "'3.0.1'" in sql
    assert schema_without_legacy_runs(db.url) == before  # rendering changed nothing
    assert agno_migrate.current(db.url).version == "3.0.0"

    run_mysql_script(db.url, sql)  # what a DBA would do with it
    status = agno_migrate.check(db.url)
    assert status.version == "3.0.1" and status.managed
    assert id_collations(db.url) == {"utf8mb4_bin"}


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_3_0_1_changes_nothing_on_sqlite_and_postgres(new_database, backend):
    db = new_database(backend)
    db.load("3.1.10")
    before, stamps = schema_without_legacy_runs(db.url), agno_stamps(db.url)
    status = agno_migrate.current(db.url)
    assert status.version == "3.0.1" and not status.managed and not status.drift  # physically at head
    agno_migrate.check(db.url)

    outcome = agno_migrate.upgrade(db.url)
    assert (outcome.adopted, outcome.applied, outcome.after, outcome.drift) == ("3.0.1", [], "3.0.1", [])
    assert schema_without_legacy_runs(db.url) == before and agno_stamps(db.url) == stamps

    assert agno_migrate.downgrade(db.url, "3.0.0").applied == ["3.0.1"]
    assert schema_without_legacy_runs(db.url) == before
    sql = agno_migrate.upgrade(db.url, sql=True, to="3.0.1").sql
    assert "ALTER" not in sql.upper() and "'3.0.1'" in sql
    assert agno_migrate.upgrade(db.url).applied == ["3.0.1"]
    assert schema_without_legacy_runs(db.url) == before


def test_mysql_check_reports_an_id_column_that_lost_its_collation(new_database):
    db = new_database("mysql")
    agno_migrate.upgrade(db.url)
    schema = Target.from_url(db.url).schema
    run_mysql_script(db.url, f"ALTER TABLE `{schema}`.agno_runs MODIFY user_id varchar(128) NULL;")
    with pytest.raises(SchemaDrift) as err:
        agno_migrate.check(db.url)
    assert "agno_runs.user_id has collation utf8mb4_general_ci, expected utf8mb4_bin" in str(err.value)


def test_mysql_detects_3_0_1_from_the_physical_schema(new_database):
    """A 3.0.1 database whose version table is lost: Agno's stamp (3.0.0) means 3.0.1 too, no drift."""
    db = loaded_3_1_10(new_database)
    agno_migrate.upgrade(db.url)
    run_mysql_script(db.url, f"DROP TABLE `{Target.from_url(db.url).schema}`.agno_migrate_agno_sessions;")
    status = agno_migrate.current(db.url)
    assert status.version == "3.0.1" and not status.managed and not status.drift
    agno_migrate.check(db.url)
    assert agno_migrate.upgrade(db.url).applied == []


def test_mysql_names_come_from_the_target(new_database):
    db = new_database("mysql")
    target = Target.from_url(db.url, session_table="my_sessions", runs_table="my_runs")
    agno_migrate.upgrade(target, to="3.0.0")
    tables = {"my_sessions": SESSION_IDS, "my_runs": RUN_IDS}
    assert id_collations(db.url, tables) == {"utf8mb4_general_ci"}
    assert agno_migrate.upgrade(target).applied == ["3.0.1"]
    assert id_collations(db.url, tables) == {"utf8mb4_bin"}
    assert foreign_keys(db.url, "my_runs") == [(["session_id"], "my_sessions", "CASCADE")]
    agno_migrate.check(target)
    assert agno_migrate.downgrade(target, "3.0.0").applied == ["3.0.1"]
    assert id_collations(db.url, tables) == {"utf8mb4_general_ci"}


@pytest.mark.parametrize("backend", SQL_BACKENDS)
def test_fresh_head_equals_replayed_lineage(new_database, backend):
    fresh = new_database(backend)
    agno_migrate.upgrade(fresh.url)
    replayed = new_database(backend)
    agno_migrate.upgrade(replayed.url, to="2.0.0")
    agno_migrate.upgrade(replayed.url)
    assert schema_without_legacy_runs(fresh.url) == schema_without_legacy_runs(replayed.url)
    if backend == "mysql":
        target = Target.from_url(fresh.url)
        engine = sa.create_engine(target.driver_url)
        with engine.connect() as conn:
            assert detect.compare_to_head(conn, target) == HeadDiff()
        engine.dispose()
