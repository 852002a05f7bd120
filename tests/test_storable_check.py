"""check_value's quick walk (storable.plain) passes only what the naming walk (storable._check)
passes: for every value below, check_value refuses exactly when _check does, with its message; and
the quick walk in C (agno_migrate._plain, built by setup.py) answers as the one in Python. No database."""

from __future__ import annotations

import enum
import os
import sys

import pytest

from agno_migrate import UsageError, storable
from agno_migrate.storable import INT_MAX, INT_MIN, MAX_DEPTH, _check, _plain_python, check_value, plain


class Colour(str, enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    LOW = 1


class Tagged(dict):
    pass


class Text(str):
    pass


class Items(list):
    pass


class Real(float):
    pass


def nested(depth: int, make=lambda inner: {"d": inner}):
    value: object = 1
    for _ in range(depth):
        value = make(value)
    return value


VALUES = [
    None, True, 0, -1, INT_MAX, INT_MIN, INT_MAX + 1, INT_MIN - 1, 0.0, -0.0, 1.5, sys.float_info.max,
    -sys.float_info.max, float("nan"), float("inf"), float("-inf"), "", "ascii", "héllo 😀", "a\x00b",
    "\ud83d", "\ud83d\ude00", ["\ud83d", "\ude00"], {"\ud83d": 1}, {"k\x00": 1}, {1: "int key"},
    {None: 1}, {"a": [1, 2.5, None, True, "x", (1, "y")]}, (1, 2), [], {}, b"bytes", {1, 2},
    Colour.RED, Level.LOW, Tagged(a=1), Text("t"), Items([1]), Real(1.0), {"a": Colour.RED},
    {"a": Tagged(b=[float("nan")])}, {"a": [Level.LOW, Tagged()]}, [object()],
    nested(MAX_DEPTH - 1), nested(MAX_DEPTH), nested(MAX_DEPTH + 1), nested(MAX_DEPTH - 1, lambda i: [i]),
    nested(MAX_DEPTH, lambda i: [i]), nested(MAX_DEPTH, lambda i: (i,)), nested(MAX_DEPTH - 1, lambda i: [{"k": i}]),
    nested(5000), "é\x00", "😀\x00", "😀\udc00", "é\ud800", {"😀\udc00": 1}, {"é": "ü", "😀": ["\u4f60"]},
]  # fmt: skip
CYCLE: list = []
CYCLE.append(CYCLE)
VALUES.append(CYCLE)


def verdict(check, value):
    try:
        check(value)
    except UsageError as refused:
        return str(refused)
    return None


@pytest.mark.parametrize("value", VALUES, ids=range(len(VALUES)))
def test_check_value_refuses_exactly_what_the_naming_walk_refuses(value):
    expected = verdict(lambda v: _check(v, "field", 0), value)
    assert verdict(lambda v: check_value(v, "field"), value) == expected
    if expected is not None:
        assert not plain(value)  # the quick walk never passes what the naming walk refuses


def test_the_quick_walk_passes_theplain_values_it_is_for():
    assert plain({"run_id": "r", "messages": [{"role": "user", "content": "héllo 😀", "n": 1.5}], "ok": None})
    assert plain(nested(MAX_DEPTH))  # MAX_DEPTH levels of objects
    assert not plain(nested(MAX_DEPTH + 1))


def test_several_values_are_plain_only_when_each_is():
    assert plain("a", None, {"k": [1]}, [2.5])
    assert not plain("a", {"k": float("nan")})
    assert not plain(nested(MAX_DEPTH), nested(MAX_DEPTH + 1))
    assert not plain("ok", "\x00")


@pytest.mark.parametrize("value", VALUES, ids=range(len(VALUES)))
def test_the_walk_in_c_answers_as_the_walk_in_python(value):
    assert plain(value) is _plain_python(value)
    assert plain("ok", value, 1) is _plain_python("ok", value, 1)


def test_the_walk_in_c_is_built_where_the_tests_run_in_ci():
    """CI installs the package as a user does (a wheel built by pip, a C compiler there): the store's check
    must be the C walk there, as the benchmarks measure it (without a compiler the Python walk serves)."""
    if os.environ.get("CI"):
        assert storable.PLAIN_IN_C
