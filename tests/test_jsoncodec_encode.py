"""jsoncodec.dumps and jsoncodec.compact write exactly what json.dumps writes (one C encoder made
once instead of one per call), and refuse what it refuses, with the same error. No database."""

from __future__ import annotations

import enum
import json
import threading
from collections import OrderedDict

import pytest

from agno_migrate import jsoncodec

Colour = enum.Enum("Colour", {"RED": "red"}, type=str)  # subclasses of str, int and float, as json.dumps takes them
Level = enum.IntEnum("Level", {"LOW": 1})
Real = type("Real", (float,), {})

VALUES = [
    None, True, False, 0, -1, 2**63, -(2**70), 0.1, -0.0, 1e308, float("nan"), float("inf"), float("-inf"),
    "", "ascii", "héllo 😀 你好", "a\x00b\n\t\"\\", "\ud83d", "\ud83d\ude00", [], {}, (), (1, "x"),
    {"a": [1, 2.5, None, True, "x", (1, "y")], "b": {"c": {}}}, {1: "int key", 2.5: "float key", False: 1, None: 2},
    Colour.RED, Level.LOW, Real(1.5), {"k": Colour.RED, "l": [Level.LOW, Real(2.0)]}, OrderedDict(b=1, a=2),
    [[[[["deep"]]]]], {"\ud83d": "lone key"},
]  # fmt: skip


@pytest.mark.parametrize("value", VALUES, ids=range(len(VALUES)))
def test_the_same_text_as_json_dumps(value):
    assert jsoncodec.dumps(value) == json.dumps(value)
    assert jsoncodec.compact(value) == json.dumps(value, separators=(",", ":"))


@pytest.mark.parametrize("value", [{"when": object()}, [b"bytes"], {(1, 2): "tuple key"}, {1, 2}])
def test_the_same_error_as_json_dumps(value):
    with pytest.raises(TypeError) as expected:
        json.dumps(value)
    with pytest.raises(TypeError) as got:
        jsoncodec.dumps(value)
    assert str(got.value) == str(expected.value)


def test_one_encoder_serves_threads_at_once():
    values = [{"thread": k, "items": [{"n": i, "s": "x" * i} for i in range(200)]} for k in range(8)]
    wrong: list = []

    def encode(value):
        for _ in range(200):
            if jsoncodec.dumps(value) != json.dumps(value):
                wrong.append(value["thread"])

    threads = [threading.Thread(target=encode, args=(value,)) for value in values]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not wrong
