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


def _random_text(rng, digits_in_strings: bool) -> str:
    """A JSON object whose numbers are written in many ways (as repr writes them or not) and whose strings hold,
    when ``digits_in_strings``, text that looks like numbers."""
    forms = [
        lambda: str(rng.randint(-(10**6), 10**6)),
        lambda: repr(rng.uniform(-1e6, 1e6)),
        lambda: repr(rng.random() / 10 ** rng.randint(0, 9)),
        lambda: f"{rng.uniform(-100, 100):.{rng.randint(1, 6)}f}",  # trailing zeros now and then
        lambda: f"{rng.randint(1, 9)}{rng.choice('eE')}{rng.choice(['', '-', '+'])}{rng.randint(0, 30)}",
        lambda: f"{rng.uniform(0, 10):.3f}e{rng.randint(-20, 20)}",
        lambda: rng.choice(["-0.0", "0.0", "1.0", "100.0", "1e-05", "1e+16", "1e16", "0.0001"]),
    ]
    letters = "ab :,[x.-e" + ("0123456789" if digits_in_strings else "")

    def value(depth):
        kind = rng.randint(0, 5 if depth < 3 else 2)
        if kind <= 1:
            return rng.choice(forms)()
        if kind == 2:
            return '"' + "".join(rng.choice(letters) for _ in range(rng.randint(0, 12))) + '"'
        if kind == 3:
            return "[" + rng.choice([", ", ",", " ,\n"]).join(value(depth + 1) for _ in range(rng.randint(0, 4))) + "]"
        return "{" + ", ".join(f'"k{i}":{rng.choice(["", " ", chr(9)])}{value(depth + 1)}' for i in range(3)) + "}"

    return "{" + ", ".join(f'"k{i}": {value(0)}' for i in range(rng.randint(1, 5))) + "}"


def test_the_number_rule_is_its_definition():
    """``json_text._numbers_as_written`` says True only where every number with a fraction or an exponent, as
    json.loads reads the text, is written as ``repr(float(number))`` (what the copy's decoding path writes), and
    says so wherever that holds and no string looks like such a number."""
    import json
    import random

    from agno_migrate.move.json_text import _numbers_as_written

    rng = random.Random(20261203)
    agreed = 0
    for k in range(20000):
        text = _random_text(rng, digits_in_strings=k % 2 == 1)
        floats: list[str] = []
        json.loads(text, parse_float=floats.append)
        exact = all(repr(float(t)) == t for t in floats)
        said = _numbers_as_written(text.encode())
        assert exact or not said, text  # never passes a number the decoding path would write otherwise
        if k % 2 == 0:
            assert said == exact, text  # no look-alike in a string: it says exactly that
            agreed += 1
    assert agreed == 10000


def test_the_float_search_finds_what_the_plain_regex_finds():
    """``json_text._FLOATS`` (possessive quantifiers) finds the same numbers as the same regex with greedy ones, on
    random texts of the byte classes it reads (runs of spaces, digits, signs, dots and e's after colons)."""
    import random
    import re

    from agno_migrate.move.json_text import _FLOATS

    greedy = re.compile(rb":[ ]*(-?0+(?:\.0+(?:e[-+]?0+)?|e[-+]?0+))")
    assert _FLOATS.pattern.replace(b"++", b"+").replace(b"*+", b"*") == greedy.pattern
    rng = random.Random(20261204)
    alphabet = b"::  0000.e-+x"  # (weighted: many numbers)
    found = 0
    for _ in range(20000):
        text = bytes(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        spans = [m.span(1) for m in greedy.finditer(text)]
        assert [m.span(1) for m in _FLOATS.finditer(text)] == spans, text
        found += len(spans)
    assert found > 1000, found
