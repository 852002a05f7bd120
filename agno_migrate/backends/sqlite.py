"""SQLite: one file, no schemas, transactional DDL; writers serialised by ``BEGIN IMMEDIATE``.

The migration lock is an exclusive ``flock`` on a file beside the database
(``<file>-agno-migrate.lock``), held for the whole upgrade, so one process does all the steps and the
whole Agno 1.x import while the others wait; the kernel releases it when its holder dies. Each step
also runs in a ``BEGIN IMMEDIATE`` transaction (the database's own writer lock, which Agno's writers
respect too) and re-reads the version inside it. Where no lock file can be made (a read-only
directory, no ``fcntl``), the per-step transactions alone keep every step and row single: only the
reporting of the work may then be shared between processes.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from agno_migrate import registry
from agno_migrate.backends import retry
from agno_migrate.backends.sql_dialect import SqlDialect, lock_timeout_error
from agno_migrate.errors import AgnoMigrateError, ConnectFailed
from agno_migrate.target import Target

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None

LOCK_SUFFIX = "-agno-migrate.lock"
WAIT_FOR_LOCK = retry.Backoff(first=0.02, cap=0.25)  # between attempts at the lock file


class SQLite(SqlDialect):
    name = "sqlite"
    transactional_ddl = True
    has_schemas = False
    readonly_autocommit = False  # a read-only connection starts a plain (deferred) transaction: reading
    # a read-only file, or reading while another process writes, works
    alters_keys = False
    runs_by_ids = True  # its statements run one after the other anyway, and choosing the ids again in
    # the runs statement would sort the matching sessions a second time
    snapshot_reads = True
    embedded = True
    text_unchecked = True

    write_note = (
        "note: any write leaves a SQLite file in WAL mode for good, as Agno 3.1 does (begin_write): "
        "<file>-wal and <file>-shm appear beside it while it is open, its directory must stay writable, "
        "and SQLite older than 3.7 cannot open it (PRAGMA journal_mode=DELETE switches back)"
    )

    def engine_options(self, target: Target) -> dict:
        """Wait up to the target's lock timeout for another writer (SQLite's busy timeout). JSON is
        written as ``json.dumps`` writes it, by ``jsoncodec.dumps`` (one encoder for every value)."""
        from agno_migrate.jsoncodec import dumps

        return {"connect_args": {"timeout": max(target.lock_timeout, 0.001)}, "json_serializer": dumps}

    def prepare_engine(self, engine) -> None:
        """Connections start no transaction implicitly: each begins with ``BEGIN IMMEDIATE`` (so DDL
        is transactional and a writer holds the lock from the start), or a plain ``BEGIN`` for
        read-only connections; foreign keys are enforced; ``agno_casefold`` is defined."""
        from sqlalchemy import event

        @event.listens_for(engine, "connect")
        def _no_implicit_transactions(dbapi_connection, _record):
            dbapi_connection.isolation_level = None
            dbapi_connection.execute("PRAGMA foreign_keys=ON")
            # SQLite's lower() folds ASCII only: the store's case-insensitive filters use this
            dbapi_connection.create_function("agno_casefold", 1, _casefold, deterministic=True)

        @event.listens_for(engine, "begin")
        def _begin_immediate(connection):
            if connection.get_execution_options().get("agno_readonly"):
                connection.exec_driver_sql("BEGIN")
                return
            begin_write(connection.connection, connection.exec_driver_sql)  # errors wrapped by SQLAlchemy

    def missing_file(self, target: Target) -> bool:
        from pathlib import Path

        from sqlalchemy.engine import make_url

        database = make_url(target.driver_url).database or ""
        if database.startswith("file:") and make_url(target.driver_url).query.get("uri"):
            database = database[len("file:") :]  # (our URI form of a URL with SQLite parameters)
        return (
            bool(database)
            and database != ":memory:"
            and not database.startswith("file:")
            and not Path(database).exists()
        )

    def explain_failure(self, target: Target, exc: BaseException, message: str) -> AgnoMigrateError | None:
        """ "unable to open database file": say which of the file or its directory is missing or not
        writable (SQLite creates the file, and its -journal, -wal and -shm files, beside it): exit 5."""
        if "unable to open database file" not in message:
            return None
        path = _file_of(target)
        if path is None:
            return None
        directory = path.parent
        if not directory.is_dir():
            why = f"directory {directory} does not exist: create it or give another path"
        elif not path.exists():
            why = f"cannot create {path.name} in {directory}: the directory is not writable (or is full)"
        elif not os.access(path, os.R_OK):
            why = f"{path} is not readable by this user"
        else:
            why = (
                f"SQLite cannot create its -wal/-shm/-journal files beside {path.name} in {directory} (not "
                "writable): a database in WAL mode (any database Agno or agno-migrate wrote) needs a "
                "writable directory even to be read; make it writable or copy the database elsewhere"
            )
        return ConnectFailed(f"cannot connect to {target.masked_url}: {why}")

    @contextlib.contextmanager
    def migration_lock(self, conn, target: Target) -> Iterator[None]:
        """The ``flock`` on ``<file>-agno-migrate.lock`` (see the module docstring)."""
        files = {row[1]: row[2] for row in conn.exec_driver_sql("PRAGMA database_list")}
        conn.commit()
        path = files.get("main")
        fd = None
        if path and fcntl is not None:  # (an in-memory database has no file, and no other process)
            with contextlib.suppress(OSError):
                fd = os.open(path + LOCK_SUFFIX, os.O_RDWR | os.O_CREAT, 0o644)
        if fd is None:
            yield
            return
        try:
            retry.until(lambda: _try_flock(fd), WAIT_FOR_LOCK, target.lock_timeout, lambda: lock_timeout_error(target))
            yield
        finally:
            os.close(fd)  # releases the lock

    def pre3_candidates(self, json_families, key, has_agno_versions):
        """Without Agno's version table, 2.0.0; with it, 2.3.0 or 2.5.0 (the 2.5.0 step changes
        nothing on SQLite: nothing physical tells them apart)."""
        v = registry.get
        notes = [] if key in ("pk", "both") else ["no primary key on session_id"]
        return ([v("2.3.0"), v("2.5.0")] if has_agno_versions else [v("2.0.0")]), notes

    def insert(self, table):
        from sqlalchemy.dialects.sqlite import insert

        return insert(table)

    def session_name(self, data):
        """Agno 2.x-3.0.7 rows are double-encoded (a JSON string holding the JSON text): unwrapped."""
        import sqlalchemy as sa

        raw = sa.type_coerce(data, sa.Text)
        inner = sa.case((sa.func.json_type(raw) == "text", sa.func.json_extract(raw, "$")), else_=raw)
        return sa.func.json_extract(inner, "$.session_name")

    def casefold_like(self, text, pattern):
        """SQLite's LIKE folds ASCII only: both sides go through ``agno_casefold`` (str.casefold)."""
        import sqlalchemy as sa

        return sa.func.agno_casefold(text).like(pattern, escape="\\")

    def values_of_json_array(self, array):
        import sqlalchemy as sa

        return sa.func.json_each(array).table_valued("value")

    def utf8_text_bytes(self, conn) -> bool:
        """A UTF-8 database: the import's ``CAST(? AS TEXT)`` reads a BLOB in the database's encoding."""
        return str(conn.exec_driver_sql("PRAGMA encoding").scalar()).upper() == "UTF-8"

    def keeps_connections(self, target: Target) -> bool:
        """A database file: yes (a pool checkout and check-in would cost about as much as a small
        write's statements). Not an in-memory database: its pool's connection is the database."""
        return _file_of(target) is not None

    def begin_call(self, pooled, conn, writing: bool) -> None:
        """``BEGIN IMMEDIATE`` for a write, a plain ``BEGIN`` (a consistent snapshot) for a read."""
        if writing:
            begin_write(pooled, conn.execute)
        else:
            conn.execute("BEGIN")


DIALECT = SQLite()


def begin_write(pooled, execute) -> None:
    """``BEGIN IMMEDIATE`` on a pooled SQLite connection, switching it to WAL on its first write;
    ``execute`` runs one SQL string on it (the SQLAlchemy connection's, or the driver's).

    As Agno 3.1 does: WAL instead of a journal file created, fsynced and deleted per commit
    (synchronous stays FULL: every commit is durable). Only writers switch (the mode persists in
    the file); reads change nothing."""
    info = pooled.info
    if "wal" not in info:
        with contextlib.suppress(Exception):
            execute("PRAGMA journal_mode=WAL")
        info["wal"] = True
    execute("BEGIN IMMEDIATE")


def _try_flock(fd: int) -> bool:
    """One attempt at the exclusive lock on ``fd``; False if another process holds it."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _casefold(value):
    return value.casefold() if isinstance(value, str) else value


def is_busy(exc: BaseException) -> bool:
    """Whether a SQLite error means another writer held the database past the busy timeout."""
    return "database is locked" in str(getattr(exc, "orig", exc))


def _file_of(target: Target):
    """The database file of a SQLite target (a Path), None for an in-memory database."""
    from pathlib import Path

    from sqlalchemy.engine import make_url

    database = make_url(target.driver_url).database
    if not database or database == ":memory:":
        return None
    if database.startswith("file:"):
        database = database[5:].split("?", 1)[0]
    return Path(database).absolute()
