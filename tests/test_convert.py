"""Unit tests of agno_migrate.convert: JSON decoding and runs-table rows."""

from __future__ import annotations

import copy
import json

import pytest

from agno_migrate import jsoncodec
from agno_migrate.convert import derived_run_id, run_rows
from agno_migrate.jsoncodec import compact, compact_fast, decode_json

# --- decode_json ---------------------------------------------------------------------------------

VALUE = {"session_state": {"cart": [1, 2.5, None], "uni": "S\u00e3o Paulo \U0001f511"}, "n": 0}
RUNS = [{"run_id": "r1", "status": "COMPLETED"}, {"run_id": "r2", "messages": []}]


def test_dict_passes_through_unchanged():
    assert decode_json(VALUE) is VALUE


def test_list_passes_through_unchanged():
    assert decode_json(RUNS) is RUNS


def test_single_encoded_text():
    assert decode_json(json.dumps(VALUE)) == VALUE
    assert decode_json(json.dumps(RUNS)) == RUNS


def test_double_encoded_text_as_sqlite_agno_2x_writes():
    double = json.dumps(json.dumps(RUNS))
    assert double.startswith('"[')
    assert decode_json(double) == RUNS
    assert decode_json(json.dumps(json.dumps(VALUE))) == VALUE


def test_bytes_and_bytearray():
    assert decode_json(json.dumps(VALUE).encode("utf-8")) == VALUE
    assert decode_json(bytearray(json.dumps(RUNS).encode("utf-8"))) == RUNS
    assert decode_json(json.dumps(json.dumps(RUNS)).encode("utf-8")) == RUNS


@pytest.mark.parametrize("text", ["not json", "{'single': 'quotes'}", "[1, 2", "", b"\x7bbroken"])
def test_invalid_json_raises_value_error(text):
    with pytest.raises(ValueError):
        decode_json(text)


def test_json_null_is_none():
    assert decode_json("null") is None
    assert decode_json(b"null") is None
    assert decode_json(json.dumps("null")) is None  # double-encoded null
    assert decode_json(None) is None


def test_json_string_that_is_not_json_inside_stays_a_string():
    assert decode_json(json.dumps("hello world")) == "hello world"


def test_scalars():
    assert decode_json("42") == 42
    assert decode_json("true") is True
    assert decode_json(7) == 7


def test_layers_are_bounded():
    text = json.dumps(RUNS)
    for _ in range(6):
        text = json.dumps(text)
    assert isinstance(decode_json(text), str)
    assert decode_json(text, max_layers=10) == RUNS


# --- compact_fast ------------------------------------------------------------------------------


def _floats():
    """Floats of every decimal exponent, both signs, several mantissas (orjson and json write the small ones
    otherwise), and the edges."""
    for exponent in range(-323, 308):
        for mantissa in (1.0, 1.5, 2.2250738585072014, 9.999999999999998, 1.2345678901234567, 7.0):
            yield from (mantissa * 10.0**exponent, -mantissa * 10.0**exponent)
    yield from (0.0, -0.0, 5e-324, 1.7976931348623157e308, 0.30000000000000004, 1e16, 1e22)


def test_compact_fast_gives_compacts_text_of_every_float():
    for x in _floats():
        for value in (x, [x], {"k": x, "s": "1e-7"}, [1, x, "a", {"n": [x, x]}]):
            assert compact_fast(value) == compact(value), value


TEXTS = [
    "",
    "S\u00e3o Paulo \U0001f468\u200d\U0001f469 na\u00efve",
    "\x7f",
    'a\x00\x1f\\"/',
    "\\xe9 \\u00e9",
    "e-5, ,1e-5 :1e-7 [2.5e-8",
    "0.00001",
    "\ufffd\uffff\U00010000\U0010ffff",
    "\u2028\u2029",
]


@pytest.mark.parametrize("text", TEXTS)
def test_compact_fast_escapes_as_json_does(text):
    for value in (text, {text: text}, [text, 1.5, {"a": [text, None, True, False, 12]}]):
        assert compact_fast(value) == compact(value)


@pytest.mark.parametrize("value", [2**64, -(2**63) - 1, 2**64 - 1, -(2**63), "\ud800", {"a": "\udc00"}, {1: 2}])
def test_compact_fast_falls_back_where_orjson_cannot(value):
    assert compact_fast(value) == compact(value)


def test_compact_fast_without_orjson(monkeypatch):
    monkeypatch.setattr(jsoncodec, "orjson", None)
    assert compact_fast(VALUE) == compact(VALUE)


# --- run_rows ------------------------------------------------------------------------------------


def session(**over):
    base = {
        "session_id": "sess-1",
        "session_type": "agent",
        "agent_id": "agent-7",
        "team_id": None,
        "workflow_id": None,
        "user_id": "user-from-session",
        "created_at": 1_700_000_000,
        "updated_at": 1_700_000_500,
    }
    base.update(over)
    return base


def test_run_index_is_the_position():
    runs = [{"run_id": f"r{i}"} for i in range(4)]
    rows, skipped = run_rows(session(), runs)
    assert skipped == []
    assert [r["run_index"] for r in rows] == [0, 1, 2, 3]
    assert [r["run_id"] for r in rows] == ["r0", "r1", "r2", "r3"]
    assert {r["session_id"] for r in rows} == {"sess-1"}


@pytest.mark.parametrize("session_type", ["agent", "team", "workflow"])
def test_run_type_comes_from_the_session_type(session_type):
    # the run carries an agent_id, but the session's type wins
    rows, _ = run_rows(session(session_type=session_type), [{"run_id": "r", "agent_id": "a"}])
    assert rows[0]["run_type"] == session_type


def test_entity_ids_fall_back_to_the_session_of_that_type():
    rows, _ = run_rows(session(session_type="team", team_id="team-3", agent_id="agent-7"), [{"run_id": "r"}])
    assert rows[0]["team_id"] == "team-3"
    assert rows[0]["agent_id"] is None  # not an agent session
    rows, _ = run_rows(session(), [{"run_id": "r", "agent_id": "agent-own"}])
    assert rows[0]["agent_id"] == "agent-own"


def test_user_id_comes_from_the_session_not_the_run():
    rows, _ = run_rows(session(), [{"run_id": "r", "user_id": "user-from-run"}])
    assert rows[0]["user_id"] == "user-from-session"
    rows, _ = run_rows(session(user_id=None), [{"run_id": "r", "user_id": "user-from-run"}])
    assert rows[0]["user_id"] is None


def test_status_parent_and_created_at_come_from_the_run():
    run = {"run_id": "child", "status": "COMPLETED", "parent_run_id": "parent", "created_at": 1_650_000_000}
    rows, _ = run_rows(session(), [run])
    row = rows[0]
    assert row["status"] == "COMPLETED"
    assert row["parent_run_id"] == "parent"
    assert row["created_at"] == 1_650_000_000


def test_missing_status_and_parent_are_none():
    rows, _ = run_rows(session(), [{"run_id": "r"}])
    assert rows[0]["status"] is None
    assert rows[0]["parent_run_id"] is None


def test_created_at_falls_back_to_the_session():
    rows, _ = run_rows(session(), [{"run_id": "a"}, {"run_id": "b", "created_at": None}])
    assert [r["created_at"] for r in rows] == [1_700_000_000, 1_700_000_000]


def test_created_at_as_text_or_float_is_an_epoch():
    rows, _ = run_rows(session(), [{"run_id": "a", "created_at": "1650000000"}, {"run_id": "b", "created_at": 1.65e9}])
    assert [r["created_at"] for r in rows] == [1_650_000_000, 1_650_000_000]


def test_run_without_run_id_gets_a_deterministic_id_also_in_run_data():
    run = {"status": "COMPLETED", "content": "hi"}
    rows1, _ = run_rows(session(), [{"run_id": "first"}, copy.deepcopy(run)])
    rows2, _ = run_rows(session(), [{"run_id": "first"}, copy.deepcopy(run)])
    new_id = rows1[1]["run_id"]
    assert new_id and new_id != "first"
    assert new_id == rows2[1]["run_id"]  # same input, same id
    assert new_id == derived_run_id("sess-1", 1)
    assert rows1[1]["run_data"]["run_id"] == new_id  # written into run_data
    assert {k: v for k, v in rows1[1]["run_data"].items() if k != "run_id"} == run


def test_derived_id_differs_by_session_and_position():
    run = {"content": "same"}
    at0, _ = run_rows(session(), [dict(run)])
    at1, _ = run_rows(session(), [{"run_id": "x"}, dict(run)])
    other, _ = run_rows(session(session_id="sess-2"), [dict(run)])
    ids = {at0[0]["run_id"], at1[1]["run_id"], other[0]["run_id"]}
    assert len(ids) == 3


@pytest.mark.parametrize("empty", [None, ""])
def test_empty_run_id_counts_as_missing(empty):
    rows, _ = run_rows(session(), [{"run_id": empty}])
    assert rows[0]["run_id"] == derived_run_id("sess-1", 0)
    assert rows[0]["run_data"]["run_id"] == rows[0]["run_id"]


def test_input_run_is_not_mutated():
    run = {"content": "x"}
    run_rows(session(), [run])
    assert run == {"content": "x"}


def test_non_dict_elements_are_reported_with_their_index():
    runs = [{"run_id": "a"}, "a string", 42, None, ["nested"], {"run_id": "b"}]
    rows, skipped = run_rows(session(), runs)
    assert [r["run_id"] for r in rows] == ["a", "b"]
    assert [r["run_index"] for r in rows] == [0, 5]  # positions in the original list
    assert [index for index, _ in skipped] == [1, 2, 3, 4]
    reasons = dict(skipped)
    assert "str" in reasons[1] and "int" in reasons[2] and "NoneType" in reasons[3] and "list" in reasons[4]


def test_run_data_is_the_run_unchanged():
    run = {
        "run_id": "r1",
        "status": "COMPLETED",
        "messages": [{"role": "user", "content": "S\u00e3o Paulo \u20ac"}],
        "metrics": {"input_tokens": 3, "duration": 0.5},
        "user_id": "someone-else",
        "extra": None,
    }
    original = copy.deepcopy(run)
    rows, _ = run_rows(session(), [run])
    assert rows[0]["run_data"] == original
    assert run == original


def test_non_text_status_becomes_text():
    rows, _ = run_rows(session(), [{"run_id": "r", "status": 3}])
    assert rows[0]["status"] == "3"


def test_no_runs_no_rows():
    assert run_rows(session(), []) == ([], [])
