"""copy into PostgreSQL passes stored JSON text through unparsed (``move.json_text``) only where that
gives what decoding it gives: the same rows in the target, the same values changed and problems named,
with and without the pass-through, for texts that pass and texts that must not (numbers json.dumps would
write otherwise, NUL, lone surrogates, text that is not JSON)."""

from __future__ import annotations

import pytest

import agno_migrate
from agno_migrate.move import rows
from agno_migrate.move import sink as sink_module
from agno_migrate.move.json_text import plain_text

ODD = [
    '{"a": 1, "f": 986872.1348, "e": 1e-05, "s": "x, 1.50"}',  # passes ("x, 1.50" is inside a string)
    '{"a": 1.50}',  # 1.5 once decoded
    '{"a": 1e2, "b": [1E3, -0.0]}',  # 100.0, 1000.0
    '{"a": "\\ud83d\\ude00 pair"}',  # passes: a pair
    '{"a": "lone \\ud83d"}',  # U+FFFD on PostgreSQL
    '{"a": "nul \\u0000 here"}',  # removed on PostgreSQL
    '{"a": 1, }',  # not JSON: kept as text, named
    '"{\\"double\\": 2.5}"',  # SQLite's double encoding: passes, peeled
    '"{\\"double\\": 2.50}"',
    '{"int": 123456789012345678901234567890, "neg": -0}',
]


@pytest.mark.parametrize(
    "text, passes",
    [
        ('{"a": 1}', True),
        ('"{\\"a\\": 1.5}"', True),
        ('{"a": 1.50}', False),
        ('{"a": 1e2}', False),
        ("[1, 2.0, 3e-05]", True),
        ("[1, 2.0, 3E-05]", False),
        ('{"a": "\\ud83d\\ude00"}', True),
        ('{"a": "\\ud83d"}', False),
        ('{"a": "\\uDE00"}', False),
        ('{"a": "\\u0000"}', False),
        ('"plain text"', False),
        ("null", False),
        ('{"a":' + "1" * 5000 + "}", False),
        ('{"a": "x: e1e5, .5e5, +1.5e5, --1.5"}', True),  # (not numbers: in a string)
    ],
)
def test_which_texts_pass(text, passes):
    assert (plain_text(text, "t", "c") is not None) is passes


def _source(new_database):
    import sqlalchemy as sa

    source = new_database("sqlite")
    source.load("3.1.10")
    engine = source.engine()
    with engine.begin() as conn:
        ids = [r[0] for r in conn.execute(sa.text("SELECT session_id FROM agno_sessions ORDER BY session_id"))]
        runs = [r[0] for r in conn.execute(sa.text("SELECT run_id FROM agno_runs ORDER BY run_id"))]
        assert len(ids) >= 3 and len(runs) >= 3
        for k, text in enumerate(ODD):
            conn.execute(
                sa.text("UPDATE agno_sessions SET metadata = :m WHERE session_id = :s"),
                {"m": text, "s": ids[k % len(ids)]},
            )
            conn.execute(
                sa.text("UPDATE agno_runs SET run_data = :d WHERE run_id = :r"), {"d": text, "r": runs[k % len(runs)]}
            )
    engine.dispose()
    return source


def _rows(target) -> list:
    import sqlalchemy as sa

    engine = target.engine()
    try:
        with engine.connect() as conn:
            return [
                [tuple(r) for r in conn.execute(sa.text(f"SELECT * FROM ai.{t} ORDER BY 1"))]
                for t in ("agno_sessions", "agno_runs")
            ]
    finally:
        engine.dispose()


def test_the_same_rows_and_reports_as_decoding_every_value(new_database, monkeypatch):
    source = _source(new_database)
    passed = new_database("postgresql")
    kept = []
    monkeypatch.setattr(rows, "plain_text", lambda *args: kept.append(plain_text(*args)) or kept[-1])
    with_text = agno_migrate.copy(source.url, passed.url)
    assert any(kept) and None in kept  # (both ways taken)
    monkeypatch.undo()
    monkeypatch.setattr(sink_module.Sink, "takes_text", property(lambda self: False))
    decoded = new_database("postgresql")
    without = agno_migrate.copy(source.url, decoded.url)
    assert _rows(passed) == _rows(decoded)
    assert with_text.fitted.as_dict() == without.fitted.as_dict()
    assert with_text.fitted.nul_removed and with_text.fitted.surrogates_replaced
    key = lambda p: (p.table, p.session_id, p.what)  # noqa: E731
    assert sorted(map(key, with_text.problems)) == sorted(map(key, without.problems))
    assert any("is not JSON" in p.what for p in with_text.problems)
    # (a text that is not JSON is kept as its text and named: verify sees it as changed either way)
    assert (
        agno_migrate.verify(source.url, passed.url).as_dict()["tables"]
        == (agno_migrate.verify(source.url, decoded.url).as_dict()["tables"])
    )
