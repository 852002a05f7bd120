"""JSON text PostgreSQL's ``json`` held and ``jsonb`` cannot (NUL and lone surrogate escapes): the
casts to jsonb (the sessions' 2.3.0 step, the other tables' steps) make it fit by the documented
rules (agno_migrate/storable.py), count it and name the row; one row never blocks the database.
Likewise MongoDB's 2.3.0 step, which decodes Agno 2.0's JSON strings into BSON (UTF-8 text).
Through the CLI and the library, on the real PostgreSQL and MongoDB servers, on the fixture packs."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from conftest import load_mongo_fixture
from test_cli import as_json, cli, ok
from test_mongo_migrate import cli as mongo_cli
from test_mongo_migrate import client, target_of
from test_tables_detect import load

import agno_migrate
from agno_migrate.storable import fit_for_jsonb, may_hold_lone_surrogate, replace_lone_surrogates, server_holds

LONE = '{"note": "half \\ud83d of a pair", "pair": "\\ud83d\\ude00", "text": "c\\\\ud83d", "low": "\\udc00"}'
"""JSON text: a lone high surrogate escape, a real pair (kept), an escaped backslash followed by
"ud83d" (text, kept), a lone low surrogate escape."""


def _sql(db, statement: str, **params):
    engine = db.engine()
    try:
        with engine.begin() as conn:
            result = conn.execute(sa.text(statement), params)
            return result.all() if result.returns_rows else None
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    "text, fitted, nuls, surrogates",  # in a UTF-8 database
    [
        ('"a\\ud83db"', '"a\\ufffdb"', 0, 1),
        ('"\\udc00\\ud83d"', '"\\ufffd\\ufffd"', 0, 2),
        ('"\\ud83d\\ude00"', '"\\ud83d\\ude00"', 0, 0),
        ('"\\\\ud83d"', '"\\\\ud83d"', 0, 0),
        ('"\\\\\\ud83d"', '"\\\\\\ufffd"', 0, 1),
        ('"\\u0000\\uD83D"', '"\\ufffd"', 1, 1),
        ('"\\ud83d\\u0000\\ude00"', '"\\ud83d\\ude00"', 1, 0),  # NUL removed first: a pair is left
    ],
)
def test_fit_for_jsonb(text, fitted, nuls, surrogates):
    assert fit_for_jsonb(text) == (fitted, nuls, surrogates, 0)


@pytest.mark.parametrize(
    "text",
    [
        *('"a\\ud83db"', '"\\udc00\\ud83d"', '"\\ud83d\\ude00"', '"\\\\ud83d"', '"\\\\\\ud83d"'),
        *('"\\ud83d\\u0000\\ude00"', '"\\\\ud83d\\ude00"', '"plain"', '{"k": ["\\ud83d\\ude00", "\\uDBFF"]}', LONE),
    ],
)
def test_the_lone_surrogate_hint_says_exactly_when_the_decoded_value_holds_one(text):
    """The MongoDB 2.3.0 step walks a decoded value only where the text's hint says so: the hint must
    agree with the walk on every shape (pairs, escaped backslashes, a NUL between halves)."""
    assert may_hold_lone_surrogate(text) == (replace_lone_surrogates(json.loads(text))[1] > 0)


def test_the_lone_surrogate_hint_is_the_surrogate_escape_rule():
    """The hint finds escapes without :data:`SURROGATE_ESCAPE` (for speed): on text of every shape made of
    backslashes, ``u``, hex digits and surrogate escapes, it answers as a lone match of that regex."""
    import random

    from agno_migrate.storable import SURROGATE_ESCAPE

    pieces = ["\\", "\\", "u", "d", "D", "8", "b", "c", "F", "0", "x", '"', "\\uD83D", "\\uDE00", "\\ud800"]
    pieces += ["\\udc00", "\\uDBFF", "\\u0000"]
    shapes = random.Random(17)
    for _ in range(20000):
        text = "".join(shapes.choice(pieces) for _ in range(shapes.randint(0, 12)))
        rule = any(m.group(3) is None for m in SURROGATE_ESCAPE.finditer(text))
        assert may_hold_lone_surrogate(text) == rule, text


def test_fit_for_jsonb_in_a_latin1_database():
    text = '"\\u00e9 \\ud83d\\ude00 \\u4e2d \\ud83d x\\\\u4e2d"'
    fitted = '"\\u00e9 \\\\ud83d\\\\ude00 \\\\u4e2d \\ufffd x\\\\u4e2d"'
    assert fit_for_jsonb(text, server_holds("LATIN1")) == (fitted, 0, 1, 2)
    assert json.loads(fitted) == "é \\ud83d\\ude00 \\u4e2d \ufffd x\\u4e2d"
    assert server_holds("UTF8") is None


def _session_ids(db) -> list[str]:
    return [r[0] for r in _sql(db, "SELECT session_id FROM ai.agno_sessions ORDER BY session_id")]


def _poison(db) -> tuple[str, str]:
    """A 2.0 database whose first session holds lone surrogates, its second a NUL escape."""
    load(db, "2.0")
    first, second, *_ = _session_ids(db)
    _sql(db, "UPDATE ai.agno_sessions SET session_data = CAST(:t AS json) WHERE session_id = :s", t=LONE, s=first)
    _sql(
        db,
        "UPDATE ai.agno_sessions SET metadata = CAST(:t AS json) WHERE session_id = :s",
        t='{"n": "a\\u0000b"}',
        s=second,
    )
    return first, second


def _check_stored(db, first: str) -> None:
    (stored,) = _sql(db, "SELECT session_data::text FROM ai.agno_sessions WHERE session_id = :s", s=first)[0]
    # jsonb shows the characters, not the escapes; the escaped backslash stays text
    assert stored == '{"low": "\ufffd", "note": "half \ufffd of a pair", "pair": "😀", "text": "c\\\\ud83d"}'


def test_the_sessions_2_3_0_cast_replaces_lone_surrogates_and_names_the_session_cli(new_database):
    db = new_database("postgresql")
    first, second = _poison(db)
    result = ok(cli("-v", "upgrade", url=db.url))
    assert f"session {first}: 2 lone surrogate escape(s) replaced by \\ufffd in session_data" in result.out, result.out
    assert "replaced 2 lone surrogate escape(s) in 1 session(s)" in result.out
    assert f"session {second}: 1 NUL character(s) removed from metadata" in result.out
    _check_stored(db, first)
    ok(cli("check", url=db.url))
    assert agno_migrate.connect(db.url).get_session(first).session_data["pair"] == "😀"


def test_the_sessions_2_3_0_cast_replaces_lone_surrogates_library_and_json(new_database):
    db = new_database("postgresql")
    first, second = _poison(db)
    outcome = agno_migrate.connect(db.url, auto_upgrade_schema=True).upgrade_schema()
    assert [tuple(e) for e in outcome.report.surrogates_replaced] == [(first, "session_data", 2, None)]
    assert [tuple(e) for e in outcome.report.nul_removed] == [(second, "metadata", 1, None)]
    _check_stored(db, first)
    db2 = new_database("postgresql")
    first2, _ = _poison(db2)
    report = as_json(ok(cli("--json", "upgrade", url=db2.url)))
    assert report["report"]["surrogates_replaced"] == 1 and report["report"]["nul_removed"] == 1, report


def test_another_tables_cast_replaces_lone_surrogates_and_names_the_row(new_database):
    db = new_database("postgresql")
    load(db, "2.0")
    (memory_id,) = _sql(db, "SELECT memory_id FROM ai.agno_memories ORDER BY memory_id LIMIT 1")[0]
    _sql(db, "UPDATE ai.agno_memories SET memory = CAST(:t AS json) WHERE memory_id = :m", t=LONE, m=memory_id)
    result = ok(cli("-v", "upgrade", url=db.url))
    assert f"agno_memories row {memory_id}: 2 lone surrogate escape(s) replaced by \\ufffd in memory" in result.out
    (stored,) = _sql(db, "SELECT memory->>'note' FROM ai.agno_memories WHERE memory_id = :m", m=memory_id)[0]
    assert stored == "half \ufffd of a pair"
    ok(cli("check", url=db.url))


def _poison_mongo(url: str, name: str) -> tuple[str, str]:
    """A MongoDB 2.0 database (JSON fields as strings) whose first session's session_data holds lone
    surrogate escapes, its second's metadata an integer beyond 64 bits (kept as text, reported)."""
    load_mongo_fixture(url, name, "2.0.0")
    with client(url) as c:
        sessions = c[name]["agno_sessions"]
        first, second = [d["session_id"] for d in sessions.find({}, {"session_id": 1}).sort("session_id", 1).limit(2)]
        sessions.update_one({"session_id": first}, {"$set": {"session_data": LONE}})
        sessions.update_one({"session_id": second}, {"$set": {"metadata": '{"n": 123456789012345678901234567890}'}})
    return first, second


def test_mongodb_2_3_0_replaces_lone_surrogates_and_names_the_session_cli(mongo_url):
    url, name = mongo_url
    first, second = _poison_mongo(url, name)
    done = mongo_cli(url, name, "-v", "upgrade")
    assert f"session {first}: 2 lone surrogate escape(s) replaced by \\ufffd in session_data" in done.stdout, (
        done.stdout + done.stderr
    )
    assert "Traceback" not in done.stderr
    assert done.returncode == 9 and f"session {second}: metadata: holds an integer beyond 64 bits" in done.stdout
    with client(url) as c:
        stored = c[name]["agno_sessions"].find_one({"session_id": first})["session_data"]
    assert stored == {"note": "half \ufffd of a pair", "pair": "😀", "text": "c\\ud83d", "low": "\ufffd"}


def test_mongodb_2_3_0_replaces_lone_surrogates_library(mongo_url):
    url, name = mongo_url
    first, _ = _poison_mongo(url, name)
    outcome = agno_migrate.upgrade(target_of(url, name))
    assert [tuple(e) for e in outcome.report.surrogates_replaced] == [(first, "session_data", 2, None)]
    session = agno_migrate.connect(url, db_schema=name).get_session(first)
    assert session.session_data["pair"] == "😀" and session.session_data["low"] == "\ufffd"
