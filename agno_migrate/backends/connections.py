"""The connection objects made for each Target object (a SQLAlchemy engine, a pymongo client),
kept here rather than on the target: ``target.py`` holds the URL and names only.

Each Target object gets its own (two targets on the same URL do not share a pool, and disposing of
one leaves the other's alone), made on first use and forgotten when the target is garbage-collected
or :func:`close` is called.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import Any

_made: dict[int, dict[str, tuple[Any, Callable[[Any], None]]]] = {}  # id(target) -> kind -> (object, closer)
_making = threading.Lock()


def get(target, kind: str, make: Callable[[], Any], close: Callable[[Any], None]) -> Any:
    """The ``kind`` object of ``target``, made by ``make()`` on first use (``close(obj)`` closes it
    in :func:`close`). Errors raised by ``make`` propagate; nothing is kept then."""
    found = _made.get(id(target), {}).get(kind)
    if found is not None:
        return found[0]
    with _making:
        handles = _made.get(id(target))
        if handles is None:
            handles = _made[id(target)] = {}
            # the entry goes with the target (before its id can be reused)
            weakref.finalize(target, _made.pop, id(target), None)
        if kind not in handles:
            handles[kind] = (make(), close)
        return handles[kind][0]


def peek(target, kind: str) -> Any:
    """The ``kind`` object of ``target`` if it was made, else None (nothing is made)."""
    found = _made.get(id(target), {}).get(kind)
    return found[0] if found is not None else None


def close(target) -> None:
    """Close and forget every object made for ``target`` (a later :func:`get` makes new ones)."""
    with _making:
        handles = _made.get(id(target), {})
        made = list(handles.values())
        handles.clear()
    for obj, closer in made:
        closer(obj)
