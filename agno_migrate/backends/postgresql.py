"""PostgreSQL (psycopg 3): schema ``ai`` by default, transactional DDL, JSONB from 2.3.0.

The migration lock is an advisory lock keyed on database, schema and session table: held by the
migration's own session on a direct connection; behind a connection pooler, by a transaction kept
open on a connection of its own (see :meth:`PostgreSQL.migration_lock`). The store sends each
call's statements in one libpq pipeline (``store.pgpipe``), prepared once per connection on a
direct connection, unnamed behind a pooler: psycopg's own automatic prepares are off.

Behind a pooler (PgBouncer in transaction mode) each transaction may run on another server
connection, and what a session keeps — session advisory locks, named prepared statements — stays
on the server connection for the next client. We know we are behind one when the server sees our
connection come from another port than the one our socket has (:func:`behind_pooler`, asked once
per new connection, in the same query that turns JIT off).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import socket
from collections.abc import Iterator

from agno_migrate import registry
from agno_migrate.backends import retry
from agno_migrate.backends.sql_dialect import SqlDialect, lock_key, lock_timeout_error
from agno_migrate.target import Target

WAIT_FOR_LOCK = retry.Backoff(first=0.05, cap=0.5)  # between attempts at the advisory lock
FAST_COMPRESSION = "agno_migrate_fast_compression"
"""The key, in a connection's ``info``, of :meth:`PostgreSQL.fast_compression`'s answer."""
BEHIND_POOLER = "agno_migrate_behind_pooler"
"""The key, in a pooled connection's ``info``, of whether it reaches the server through a pooler."""


class PostgreSQL(SqlDialect):
    name = "postgresql"
    max_name_length = 63
    transactional_ddl = True
    has_schemas = True
    creates_schema = True
    extra = "postgres"
    names_keys = True
    json_becomes_jsonb = True
    runs_in_row = True
    returning_in_cte = True
    pipelined = True
    stores_nul = False  # neither JSONB nor text can hold NUL
    json_cast_to_text = True
    server_side_cursor = True
    copy_from_stdin = True
    parses_json_text = True
    unflushed_commit = "SET LOCAL synchronous_commit TO off"
    read_only_session = "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY"
    json_lone_surrogates = False  # jsonb (and UTF-8 text) cannot hold them
    json_finite_only = True

    def engine_options(self, target: Target) -> dict:
        options = super().engine_options(target)
        # the store prepares its own statements (store/pgpipe.py); psycopg's automatic ones would
        # make its rollback() send DEALLOCATE ALL, which drops the store's as well
        options["connect_args"]["prepare_threshold"] = None
        # text travels as UTF-8 whatever the database's encoding (a LATIN1 database): the server
        # converts it, and refuses a character its encoding cannot hold instead of storing bytes
        # the driver could not decode again
        options["connect_args"]["client_encoding"] = "utf8"
        return options

    def fast_compression(self, conn) -> str | None:
        """lz4 for the values PostgreSQL compresses as it stores them (TOAST: every JSON value over ~2 kB), where
        the server was built with it (PostgreSQL 14+) and ``default_toast_compression`` is the built-in pglz
        nobody chose (its source ``default``). Storing a runs table's JSON is mostly pglz's time: at 100,000
        sessions (377,000 runs of 4 kB) its walk into a table takes 19.2 s with pglz, 4.5 s with lz4, for
        1 % more disk (801 vs 793 MB). For this transaction only (``SET LOCAL``): the application's later
        writes compress as configured; values stay readable whatever the method, each keeping its own."""
        if FAST_COMPRESSION not in conn.info:  # asked once per connection (a copy begins a transaction per batch)
            row = conn.exec_driver_sql(
                "SELECT setting, source, enumvals FROM pg_settings WHERE name = 'default_toast_compression'"
            ).first()
            fast = row is not None and row.source == "default" and row.setting != "lz4"
            fast = fast and "lz4" in (row.enumvals or ())
            conn.info[FAST_COMPRESSION] = "SET LOCAL default_toast_compression = lz4" if fast else None
        return conn.info[FAST_COMPRESSION]

    def privilege_denied(self, exc: BaseException) -> bool:
        return getattr(getattr(exc, "orig", exc), "sqlstate", None) == "42501"  # insufficient_privilege

    def unrepresentable_text(self, exc: BaseException) -> bool:
        # untranslatable_character, character_not_in_repertoire
        return getattr(getattr(exc, "orig", exc), "sqlstate", None) in ("22P05", "22021")

    online_ddl = True

    def lock_not_available(self, exc: BaseException) -> bool:
        return getattr(getattr(exc, "orig", exc), "sqlstate", None) == "55P03"  # lock_not_available

    def lock_timeout_sql(self, seconds: float | None, local: bool = True) -> str:
        if seconds is None:
            return "RESET lock_timeout"
        return f"SET {'LOCAL ' if local else ''}lock_timeout = '{max(1, round(seconds * 1000))}ms'"

    def prepare_engine(self, engine) -> None:
        """On every new connection, one query: JIT off (our statements are short; the planner's
        estimates on tables not yet analyzed can pass jit_above_cost, and compiling then costs
        ~10 ms a statement, more than running it; servers before PostgreSQL 11 have no such
        setting), and whether the connection goes through a pooler (kept in its ``info``)."""
        from sqlalchemy import event

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection, record):
            record.info[BEHIND_POOLER] = behind_pooler(dbapi_connection, jit_off=True)

    def migration_lock(self, conn, target: Target) -> contextlib.AbstractContextManager[None]:
        """``pg_try_advisory_lock`` on ``conn``, retried until the target's lock timeout, released
        at the end (the server also releases it when the session ends). Behind a pooler a session
        lock would stay on whichever server connection took it: there the lock is
        :func:`_pinned_lock`, a transaction-scoped advisory lock (the same key: both kinds exclude
        each other) in a transaction held open on a connection of its own."""
        key = advisory_key(lock_key(target, conn))
        if conn.info.get(BEHIND_POOLER):
            return _pinned_lock(conn.engine, key, target)
        return _session_lock(conn, key, target)

    def named_statements(self, pooled) -> bool:
        """Named prepared statements last as long as the server session: not behind a pooler."""
        return not pooled.info.get(BEHIND_POOLER)

    def json_type(self):
        from sqlalchemy.dialects.postgresql import JSONB

        return JSONB()

    def pre3_candidates(self, json_families, key, has_agno_versions):
        """2.3.0 made the JSON columns JSONB, 2.5.0 replaced the unique constraint on session_id by
        the primary key."""
        v = registry.get
        notes = []
        jsonb = json_families == {"jsonb"}
        if key in ("uq", "both"):
            found = [v("2.3.0")] if jsonb else [v("2.0.0")]
        elif key == "pk":
            found = [v("2.5.0")] if jsonb else [v("2.0.0")]
            if not jsonb:
                notes.append("primary key present but JSON columns are not all jsonb")
        else:
            found = [v("2.0.0") if not jsonb else v("2.3.0")]
            notes.append("no primary key and no unique constraint on session_id")
        return found, notes

    def insert(self, table):
        from sqlalchemy.dialects.postgresql import insert

        return insert(table)

    def session_name(self, data):
        return data["session_name"].astext

    def json_array_of(self, value, *order_by):
        import sqlalchemy as sa
        from sqlalchemy.dialects.postgresql import aggregate_order_by

        return sa.func.json_agg(aggregate_order_by(value, *order_by))

    def utf8_text_bytes(self, conn) -> bool:
        """A UTF-8 client encoding: COPY sends the bytes as they are."""
        return str(conn.connection.dbapi_connection.info.encoding).lower().replace("-", "") == "utf8"

    def statement_compiler(self, dialect):
        """Numbered parameters ($1, …), as the server's prepared statements take them."""
        return _numbered(type(dialect))

    def begin_call(self, pooled, conn, writing: bool) -> None:
        """Autocommit: reads need no BEGIN/ROLLBACK; writes send their own (``store.driver.Call``)."""
        conn.autocommit = True


DIALECT = PostgreSQL()


@contextlib.contextmanager
def _session_lock(conn, key: int, target: Target) -> Iterator[None]:
    """A session advisory lock on the migration's own connection ``conn``."""
    from sqlalchemy import text

    def attempt() -> bool:
        got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar()
        conn.commit()
        return got

    retry.until(attempt, WAIT_FOR_LOCK, target.lock_timeout, lambda: lock_timeout_error(target))
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            conn.rollback()
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
            conn.commit()


@contextlib.contextmanager
def _pinned_lock(engine, key: int, target: Target) -> Iterator[None]:
    """The migration lock behind a pooler: ``pg_try_advisory_xact_lock`` on a connection of its own,
    each attempt a short transaction (a waiter never keeps a server connection of the pool), the
    winning one left open for the whole block. A pooler in transaction mode keeps a client's server
    connection while its transaction is open, so the lock stays held; the rollback at the end
    releases it, and so does the pooler when this process dies (it closes a server connection whose
    client left mid-transaction). The server's ``idle_in_transaction_session_timeout`` is turned off
    for that transaction only: the holder is idle in it while the migration works."""
    pooled = engine.raw_connection()
    holder = pooled.driver_connection

    def attempt() -> bool:
        got = holder.execute(
            "SELECT set_config('idle_in_transaction_session_timeout', '0', true), pg_try_advisory_xact_lock(%s)",
            (key,),
        ).fetchone()[1]
        if not got:
            holder.rollback()
        return got

    try:
        holder.autocommit = False
        retry.until(attempt, WAIT_FOR_LOCK, target.lock_timeout, lambda: lock_timeout_error(target))
        yield
    finally:
        try:
            holder.rollback()
        except Exception as exc:  # the connection is gone (and its transaction's lock with it)
            pooled.invalidate(exc)
        pooled.close()


def behind_pooler(dbapi_connection, jit_off: bool = False) -> bool:
    """Whether the psycopg connection reaches the server through a pooler (or any other relay): the
    server sees it come from another port than the one its socket has. Over a Unix socket on both
    sides (a pooler on the same machine reached by its socket) nothing tells; taken as direct.
    ``jit_off``: turn JIT off for the session in the same query (see ``prepare_engine``)."""
    jit = ", CASE WHEN current_setting('jit', true) IS NOT NULL THEN set_config('jit', 'off', false) END"
    autocommit = dbapi_connection.autocommit
    dbapi_connection.autocommit = True
    try:
        seen = dbapi_connection.execute(f"SELECT inet_client_port(){jit if jit_off else ''}").fetchone()[0]
    finally:
        dbapi_connection.autocommit = autocommit
    return seen != _local_port(dbapi_connection.pgconn.socket)


def _local_port(fd: int) -> int | None:
    """The local TCP port of socket ``fd`` (None for a Unix socket)."""
    with socket.socket(fileno=os.dup(fd)) as sock:  # its own descriptor: closing it leaves libpq's
        if sock.family == socket.AF_UNIX:
            return None
        return sock.getsockname()[1]


def advisory_key(name: str) -> int:
    """The advisory lock's 64-bit key for a lock name."""
    return int.from_bytes(hashlib.sha1(name.encode()).digest()[:8], "big", signed=True)


@functools.cache
def _numbered(dialect_class):
    """A PostgreSQL dialect (of this class) that writes parameters as $1, $2, … (each name once)."""
    return dialect_class(paramstyle="numeric_dollar")
