"""PostgreSQL (psycopg 3): schema ``ai`` by default, transactional DDL, JSONB from 2.3.0.

The migration lock is a session-level advisory lock keyed on database, schema and session table.
The store sends each call's statements in one libpq pipeline (``store.pgpipe``), prepared once per
connection: psycopg's own automatic prepares are off.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
from collections.abc import Iterator

from agno_migrate import registry
from agno_migrate.backends import retry
from agno_migrate.backends.sql_dialect import SqlDialect, lock_key, lock_timeout_error
from agno_migrate.target import Target

WAIT_FOR_LOCK = retry.Backoff(first=0.05, cap=0.5)  # between attempts at the advisory lock


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

    def privilege_denied(self, exc: BaseException) -> bool:
        return getattr(getattr(exc, "orig", exc), "sqlstate", None) == "42501"  # insufficient_privilege

    def unrepresentable_text(self, exc: BaseException) -> bool:
        # untranslatable_character, character_not_in_repertoire
        return getattr(getattr(exc, "orig", exc), "sqlstate", None) in ("22P05", "22021")

    def prepare_engine(self, engine) -> None:
        """JIT off on every connection: our statements are short; the planner's estimates on tables
        not yet analyzed can pass jit_above_cost, and compiling then costs ~10 ms a statement, more
        than running it. (Servers before PostgreSQL 11 have no such setting: nothing to turn off.)"""
        from sqlalchemy import event

        @event.listens_for(engine, "connect")
        def _no_jit(dbapi_connection, _record):
            autocommit = dbapi_connection.autocommit
            dbapi_connection.autocommit = True
            dbapi_connection.execute(
                "SELECT set_config('jit', 'off', false) WHERE current_setting('jit', true) IS NOT NULL"
            )
            dbapi_connection.autocommit = autocommit

    @contextlib.contextmanager
    def migration_lock(self, conn, target: Target) -> Iterator[None]:
        """``pg_try_advisory_lock``, retried until the target's lock timeout; released at the end
        (the server also releases it when the session ends)."""
        from sqlalchemy import text

        key = advisory_key(lock_key(target, conn))

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


def advisory_key(name: str) -> int:
    """The advisory lock's 64-bit key for a lock name."""
    return int.from_bytes(hashlib.sha1(name.encode()).digest()[:8], "big", signed=True)


@functools.cache
def _numbered(dialect_class):
    """A PostgreSQL dialect (of this class) that writes parameters as $1, $2, … (each name once)."""
    return dialect_class(paramstyle="numeric_dollar")
