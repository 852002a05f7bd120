"""The migration lock, per backend (DESIGN rule 4: lock, then look).

* PostgreSQL: a session-level advisory lock keyed on database, schema and session table.
* MySQL/MariaDB: ``GET_LOCK`` with the same key.
* SQLite: an exclusive ``flock`` on a file beside the database (``<file>-agno-migrate.lock``),
  held for the whole upgrade, so one process does all the steps and the whole Agno 1.x import while
  the others wait. The kernel releases it when its holder dies. Each step also runs in a
  ``BEGIN IMMEDIATE`` transaction (the database's own writer lock, which Agno's writers respect too)
  and re-reads the version inside it. Where no lock file can be made (a read-only directory, no
  ``fcntl``), the per-step transactions alone keep every step and row single: only the reporting of
  the work may then be shared between processes.

Waiting is bounded by the target's ``lock_timeout``; expiry raises LockTimeout.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import time
from collections.abc import Iterator

from sqlalchemy import text

from agno_migrate.errors import LockTimeout
from agno_migrate.target import Target

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None

SQLITE_LOCK_SUFFIX = "-agno-migrate.lock"


def _key(target: Target, conn) -> str:
    database = conn.engine.url.database or ""
    return f"{database}/{target.lock_name}"


def _pg_key(name: str) -> int:
    return int.from_bytes(hashlib.sha1(name.encode()).digest()[:8], "big", signed=True)


def _mysql_key(name: str) -> str:
    return "agno_migrate_" + hashlib.sha1(name.encode()).hexdigest()[:40]


def _timeout_error(target: Target) -> LockTimeout:
    return LockTimeout(
        f"another agno-migrate process holds the migration lock on {target.masked_url} "
        f"(table {target.session_table}); gave up after {target.lock_timeout:g}s (--lock-timeout)"
    )


@contextlib.contextmanager
def migration_lock(conn, target: Target) -> Iterator[None]:
    """Hold the migration lock of ``target`` on ``conn`` for the duration of the block.

    Raises LockTimeout when another holder keeps it past ``target.lock_timeout`` seconds.
    """
    backend = target.backend
    if backend == "postgresql":
        key = _pg_key(_key(target, conn))
        deadline = time.monotonic() + target.lock_timeout
        delay = 0.05
        while not conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar():
            conn.commit()
            if time.monotonic() >= deadline:
                raise _timeout_error(target)
            time.sleep(delay)
            delay = min(delay * 2, 0.5)
        conn.commit()
        try:
            yield
        finally:
            with contextlib.suppress(Exception):
                conn.rollback()
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                conn.commit()
    elif backend == "mysql":
        key = _mysql_key(_key(target, conn))
        got = conn.execute(text("SELECT GET_LOCK(:k, :t)"), {"k": key, "t": math.ceil(target.lock_timeout)}).scalar()
        conn.commit()
        if got != 1:
            raise _timeout_error(target)
        try:
            yield
        finally:
            with contextlib.suppress(Exception):
                conn.rollback()
                conn.execute(text("SELECT RELEASE_LOCK(:k)"), {"k": key})
                conn.commit()
    else:
        with _sqlite_file_lock(conn, target):
            yield


@contextlib.contextmanager
def _sqlite_file_lock(conn, target: Target) -> Iterator[None]:
    files = {row[1]: row[2] for row in conn.exec_driver_sql("PRAGMA database_list")}
    conn.commit()
    path = files.get("main")
    fd = None
    if path and fcntl is not None:  # (an in-memory database has no file, and no other process)
        with contextlib.suppress(OSError):
            fd = os.open(path + SQLITE_LOCK_SUFFIX, os.O_RDWR | os.O_CREAT, 0o644)
    if fd is None:
        yield
        return
    try:
        deadline = time.monotonic() + target.lock_timeout
        delay = 0.02
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise _timeout_error(target) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.25)
        yield
    finally:
        os.close(fd)  # releases the lock


def is_sqlite_busy(exc: BaseException) -> bool:
    """Whether a SQLite error means another writer held the database past the busy timeout."""
    return "database is locked" in str(getattr(exc, "orig", exc))
