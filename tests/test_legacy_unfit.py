"""The Agno 1.x import never blocks on one row whose JSON the target cannot hold: on MariaDB (JSON
nested at most 31 levels) a converted session nested deeper keeps its deepest parts as their JSON
text, counted and named (agno_migrate/storable.py). The other cases cannot arise within one backend
(an import stays in its database): MariaDB's JSON_VALID refuses lone surrogates and NaN in the 1.x
tables themselves, PostgreSQL's jsonb too, SQLite holds all of them, and MongoDB's BSON holds no
integer beyond 64 bits. Through the CLI and the library, on the real MariaDB server."""

from __future__ import annotations

import json
import subprocess

import sqlalchemy as sa
from test_legacy import CLI, engine_of

import agno_migrate
from agno_migrate.storable import MAX_DEPTH
from agno_migrate.target import Target


def nested(levels: int) -> dict:
    value: object = 1
    for _ in range(levels):
        value = {"d": value}
    return value


def expanded(value):
    """``value`` with every string holding a JSON object or array replaced by that value."""
    if isinstance(value, dict):
        return {key: expanded(item) for key, item in value.items()}
    if isinstance(value, list):
        return [expanded(item) for item in value]
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return expanded(json.loads(value))
        except ValueError:  # text that merely starts with a bracket
            return value
    return value


def _deep_memory(db) -> str:
    """Give the first agent session a ``memory`` blob nested as deep as MariaDB holds (31 levels):
    converted, it sits one level deeper. Returns its session id."""
    table = sa.table(
        "agent_sessions", sa.column("session_id"), sa.column("memory"), schema=Target.from_url(db.url).schema
    )
    engine = engine_of(db.url)
    with engine.begin() as conn:
        sid = conn.execute(sa.select(table.c.session_id).order_by(table.c.session_id).limit(1)).scalar()
        conn.execute(table.update().where(table.c.session_id == sid).values(memory=json.dumps(nested(MAX_DEPTH))))
    engine.dispose()
    return sid


def _check_kept(url: str, sid: str) -> None:
    session = agno_migrate.connect(url).get_session(sid)
    text = json.dumps(expanded(session.session_data))
    assert json.dumps(nested(MAX_DEPTH)) in text  # every level is still there, the deepest as text


def test_a_1x_session_nested_deeper_than_mariadb_holds_is_imported_cli(new_database, tmp_path):
    db = new_database("mysql")
    db.load("v1")
    sid = _deep_memory(db)
    done = subprocess.run([CLI, "--db-url", db.url, "-v", "upgrade"], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"agent_sessions session {sid}: 1 part(s) nested too deep stored as JSON text" in done.stdout
    assert "note: 1 session(s) held JSON nested deeper than the database holds" in done.stdout
    assert "imported 200 Agno 1.x sessions" in done.stdout
    _check_kept(db.url, sid)
    assert subprocess.run([CLI, "--db-url", db.url, "check"], capture_output=True).returncode == 0


def test_a_1x_session_nested_deeper_than_mariadb_holds_is_imported_library(new_database):
    db = new_database("mysql")
    db.load("v1")
    sid = _deep_memory(db)
    outcome = agno_migrate.upgrade(db.url)
    assert [tuple(e) for e in outcome.report.legacy.deep_as_text] == [("agent_sessions", sid, 1)]
    assert outcome.as_dict()["report"]["legacy"]["deep_as_text"] == 1
    _check_kept(db.url, sid)
