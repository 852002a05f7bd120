"""The store's schema semantics: create on first use, auto_upgrade_schema, upgrade_schema(),
SchemaBehind / SchemaAhead, and one "at head?" query per store object."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import SQL_BACKENDS, expected_sessions

import agno_migrate
from agno_migrate.backends import sql as backend_sql
from agno_migrate.errors import SchemaAhead, SchemaBehind
from agno_migrate.migrate.sql import revisions as sql
from agno_migrate.target import Target

BEHIND = {"sqlite": "2.3.0", "postgresql": "2.3.0", "mysql": "2.5.0"}  # Agno 2.3.0 cannot write MySQL
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "storage.py"


def first_session_with_runs(point, backend):
    return next(s for s in expected_sessions(point, backend) if s["runs"])


@pytest.mark.parametrize("backend", SQL_BACKENDS)
def test_flag_off_raises_schema_behind_and_changes_nothing(new_database, backend):
    db = new_database(backend)
    db.load(BEHIND[backend])
    store = agno_migrate.connect(db.url)
    for call in (lambda: store.get_session("x"), lambda: store.get_sessions(), lambda: store.delete_session("x")):
        with pytest.raises(SchemaBehind) as err:
            call()
        assert BEHIND[backend] in str(err.value) and "agno-migrate upgrade" in str(err.value)
    status = agno_migrate.current(db.url)
    assert status.version == BEHIND[backend] and not status.managed


@pytest.mark.parametrize("backend", SQL_BACKENDS)
def test_flag_on_upgrades_on_first_use(new_database, backend):
    db = new_database(backend)
    db.load(BEHIND[backend])
    store = agno_migrate.connect(db.url, auto_upgrade_schema=True)
    expected = first_session_with_runs(BEHIND[backend], backend)
    session = store.get_session(expected["session_id"])
    assert [r.run_id for r in session.runs] == [r["run_id"] for r in expected["runs"]]
    assert session.user_id == expected["user_id"]
    assert agno_migrate.check(db.url).at_head


@pytest.mark.parametrize("backend", SQL_BACKENDS)
def test_upgrade_schema_upgrades_with_the_flag_off(new_database, backend):
    db = new_database(backend)
    db.load(BEHIND[backend])
    store = agno_migrate.connect(db.url)
    assert store.schema_version == BEHIND[backend]
    outcome = store.upgrade_schema()
    assert outcome.after == "3.0.1" and store.schema_version == "3.0.1"
    assert store.get_sessions(limit=5)[1] == len(expected_sessions(BEHIND[backend], backend))


@pytest.mark.parametrize("backend", SQL_BACKENDS)
def test_a_new_database_is_created_at_head_whatever_the_flag(new_database, backend):
    db = new_database(backend)
    store = agno_migrate.connect(db.url, auto_upgrade_schema=False)
    assert store.get_sessions() == ([], 0)
    assert agno_migrate.check(db.url).at_head


def test_a_database_ahead_raises(new_database):
    db = new_database("sqlite")
    agno_migrate.upgrade(db.url)
    target = Target.from_url(db.url)
    engine = sa.create_engine(target.driver_url)
    with engine.begin() as conn:
        conn.execute(sql.version_table(target).insert().values(version="9.0.0", revision="v9", action="upgrade",
                                                               applied_at=0))  # fmt: skip
    engine.dispose()
    with pytest.raises(SchemaAhead):
        agno_migrate.connect(db.url, auto_upgrade_schema=True).get_session("x")


@pytest.mark.parametrize("backend", SQL_BACKENDS)
def test_the_head_check_is_one_query_per_store(new_database, backend):
    db = new_database(backend)
    agno_migrate.upgrade(db.url)
    store = agno_migrate.connect(db.url)
    version_table = store.target.version_table
    seen = []
    sa.event.listen(backend_sql.engine(store.target), "before_cursor_execute",
                    lambda conn, cursor, statement, *a: seen.append(statement))  # fmt: skip
    rounds = []
    for _ in range(3):
        store.get_session("nope")
        store.get_sessions(limit=1)
        rounds.append(len(seen))
    # the version table read once; the look for Agno 1.x tables still to import (our checkpoint
    # table, ``<version table>_legacy``) happens in that first round too, never again
    assert sum(re.search(rf"\b{version_table}\b(?!_legacy)", s) is not None for s in seen) == 1
    assert not [s for s in seen[rounds[0] :] if version_table in s]
    assert rounds[1] - rounds[0] == rounds[2] - rounds[1]  # later rounds: the same statements only


def test_the_storage_example_remembers_the_last_question(tmp_path):
    first = subprocess.run([sys.executable, str(EXAMPLE)], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    assert "I don't know" in first.stdout.split("\n")[1]
    second = subprocess.run([sys.executable, str(EXAMPLE)], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stderr
    assert "Your last question was: 'What is the capital of France?'" in second.stdout
    assert "Stored messages:" in second.stdout
