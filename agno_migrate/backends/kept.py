"""DBAPI connections kept per thread between the store's calls, where the dialect keeps them
(``SqlDialect.keeps_connections``): a call then takes its thread's connection instead of a pool
checkout and check-in (some 6 us per call on SQLite, a good part of a small upsert's cost).

A thread's connection is taken from the target's engine once and detached from its pool (so the
pool's limits no longer count it: one connection per thread that uses the store, as a pool gives
each concurrent caller its own). It is

- dropped (closed) by :func:`drop` after a call that left it unusable; the next call takes a new one;
- closed with the target's other connections (``backends.dispose``, ``SessionStore.close``);
- never used by a forked child: a connection made before ``os.fork`` belongs to the parent, so the
  child takes its own and leaves the parent's as it is (not even closed);
- closed when its thread ends (the thread's slot, the only strong reference, is collected).
"""

from __future__ import annotations

import contextlib
import os
import threading
import weakref

from agno_migrate.backends import connections, dialect_of
from agno_migrate.backends.sql import raw_connection
from agno_migrate.target import Target

_forked_away: list = []  # connections a forked child inherited: kept unclosed (they are the parent's)
_process = [os.getpid()]  # this process's id, renewed in a forked child (os.getpid() is a system call)
os.register_at_fork(after_in_child=lambda: _process.__setitem__(0, os.getpid()))


class Kept:
    """One thread's connection: the detached pool entry (``info`` survives the detach) and the
    process that made it."""

    __slots__ = ("pooled", "conn", "info", "pid", "__weakref__")

    def __init__(self, pooled):
        self.conn = pooled.driver_connection  # (read before the detach, which forgets it)
        pooled.detach()
        self.pooled = pooled
        self.info = pooled.info
        self.pid = _process[0]


class _Shelf:
    """The kept connections of one target: this thread's, and (weakly) every thread's, to close."""

    def __init__(self, keeps: bool):
        self.keeps = keeps
        self.local = threading.local()
        self.every: weakref.WeakSet = weakref.WeakSet()
        self.lock = threading.Lock()

    def keep(self, pooled) -> Kept:
        kept = Kept(pooled)
        with self.lock:
            self.every.add(kept)
        self.local.kept = kept
        return kept

    def close(self) -> None:
        with self.lock:
            every = list(self.every)
            self.every.clear()
        for kept in every:
            _close(kept)


def connection(target: Target) -> Kept | None:
    """This thread's kept connection to ``target`` (taken from the pool when there is none yet, or
    the one there is was made by the parent of this forked process); None where the dialect keeps
    none for ``target``. Connection failures raise ConnectFailed."""
    shelf = connections.get(target, "kept", lambda: _Shelf(dialect_of(target).keeps_connections(target)), _Shelf.close)
    if not shelf.keeps:
        return None
    kept = getattr(shelf.local, "kept", None)
    if kept is not None and kept.pid == _process[0]:
        return kept
    if kept is not None:  # inherited through os.fork: the parent's to use and close
        _forked_away.append(kept)
        shelf.local.kept = None
    return shelf.keep(raw_connection(target))


def drop(target: Target, kept: Kept) -> None:
    """Close ``kept`` (a call left it unusable, or the server dropped it) and forget it: this
    thread's next call takes a new connection."""
    shelf = connections.peek(target, "kept")
    if shelf is not None:
        if getattr(shelf.local, "kept", None) is kept:
            shelf.local.kept = None
        with shelf.lock:
            shelf.every.discard(kept)
    _close(kept)


def _close(kept: Kept) -> None:
    if kept.pid != _process[0]:
        _forked_away.append(kept)
        return
    with contextlib.suppress(Exception):
        kept.pooled.close()  # a detached entry: closes the driver's connection
