"""The migration lock of a SQL database: lock, then look.

Every mutating command takes it before it reads the version it starts from (another process may
have done the work meanwhile), and holds it for the whole upgrade. Each dialect module says what
the lock is (``backends/postgresql.py``: an advisory lock; ``backends/mysql.py``: ``GET_LOCK``;
``backends/sqlite.py``: an ``flock`` on a file beside the database, plus ``BEGIN IMMEDIATE`` around
each step). Waiting is bounded by the target's ``lock_timeout``; expiry raises LockTimeout.
"""

from __future__ import annotations

import contextlib

from agno_migrate.backends import dialect_of
from agno_migrate.backends.sqlite import is_busy as is_sqlite_busy  # noqa: F401  (the runner's)
from agno_migrate.target import Target


def migration_lock(conn, target: Target) -> contextlib.AbstractContextManager[None]:
    """Hold the migration lock of ``target`` on ``conn`` for the duration of the block.

    Raises LockTimeout when another holder keeps it past ``target.lock_timeout`` seconds.
    """
    return dialect_of(target).migration_lock(conn, target)
