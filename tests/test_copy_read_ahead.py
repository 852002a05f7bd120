"""move.ahead.read_ahead: a copy's source read one batch ahead in a thread, its items in order, an error
raised where its item would have come, the thread ended when the reading is closed early."""

from __future__ import annotations

import threading
from contextlib import closing

import pytest

from agno_migrate.move.ahead import read_ahead


def test_items_come_in_order():
    assert list(read_ahead(iter(range(100)), depth=2)) == list(range(100))


def test_an_error_comes_where_its_item_would_have():
    def failing():
        yield 1
        yield 2
        raise ValueError("unreadable")

    got = []
    with pytest.raises(ValueError, match="unreadable"):
        for item in read_ahead(failing()):
            got.append(item)
    assert got == [1, 2]


def test_closing_early_ends_the_thread():
    read = []

    def endless():
        n = 0
        while True:
            read.append(n)
            yield n
            n += 1

    with closing(read_ahead(endless(), depth=2)) as items:
        assert next(items) == 0
    assert not any(t.name == "copy-read-ahead" for t in threading.enumerate())
    assert len(read) <= 4  # (at most depth ahead, and the one being put)
