"""MySQL and MariaDB (PyMySQL): the URL's database as the schema; every DDL statement commits.

The migration lock is ``GET_LOCK`` keyed on database, schema and session table (the server waits
for it: no retry loop here). Id columns get the binary collation ``utf8mb4_bin`` (3.0.1).
"""

from __future__ import annotations

import contextlib
import hashlib
import math
from collections.abc import Iterator

from agno_migrate import registry
from agno_migrate.backends.sql_dialect import SqlDialect, lock_key, lock_timeout_error
from agno_migrate.errors import AgnoMigrateError, ConnectFailed
from agno_migrate.storable import MAX_DEPTH
from agno_migrate.target import Target

ER_BAD_DB_ERROR = 1049  # "Unknown database"

ID_COLLATION = "utf8mb4_bin"
"""The collation of the id columns on MySQL/MariaDB (3.0.1): ids compare bytewise, as on SQLite and
PostgreSQL, instead of case- and emoji-blind under the server's default (utf8mb4_general_ci)."""


class MySQL(SqlDialect):
    name = "mysql"
    max_name_length = 64
    transactional_ddl = False
    has_schemas = True
    extra = "mysql"
    id_collation = ID_COLLATION
    json_unescaped = True
    json_finite_only = True
    partial_indexes = False
    json_max_depth = MAX_DEPTH  # JSON_VALID (the JSON columns' CHECK) rejects 32 levels
    read_only_session = "SET SESSION TRANSACTION READ ONLY"

    def engine_options(self, target: Target) -> dict:
        """utf8mb4 connections; JSON written as UTF-8 text (:func:`json_text`), read by the driver."""
        from agno_migrate.backends.sql import json_text

        return {
            "pool_recycle": 1800,
            "connect_args": {"connect_timeout": 10, "charset": "utf8mb4"},
            "json_serializer": json_text,
        }

    def privilege_denied(self, exc: BaseException) -> bool:
        # table/column access denied, database access denied, needs SUPER/other, routine access denied
        return _errno(exc) in (1142, 1143, 1044, 1227, 1370)

    def unrepresentable_text(self, exc: BaseException) -> bool:
        return _errno(exc) == 1366  # Incorrect string value (a character the column's charset lacks)

    def explain_failure(self, target: Target, exc: BaseException, message: str) -> AgnoMigrateError | None:
        """ER_BAD_DB_ERROR (1049): the database (the URL's, or --db-schema) does not exist: exit 5,
        as a missing PostgreSQL database."""
        orig = getattr(exc, "orig", None) or exc
        if getattr(orig, "args", None) and orig.args[0] == ER_BAD_DB_ERROR:
            return ConnectFailed(
                f"database {target.schema} does not exist on {target.masked_url}: create it "
                f"(CREATE DATABASE {target.schema}) or name an existing one in the URL or with --db-schema"
            )
        return None

    @contextlib.contextmanager
    def migration_lock(self, conn, target: Target) -> Iterator[None]:
        """``GET_LOCK`` with the target's lock timeout (rounded up to whole seconds)."""
        from sqlalchemy import text

        key = lock_name(lock_key(target, conn))
        got = conn.execute(text("SELECT GET_LOCK(:k, :t)"), {"k": key, "t": math.ceil(target.lock_timeout)}).scalar()
        conn.commit()
        if got != 1:
            raise lock_timeout_error(target)
        try:
            yield
        finally:
            with contextlib.suppress(Exception):
                conn.rollback()
                conn.execute(text("SELECT RELEASE_LOCK(:k)"), {"k": key})
                conn.commit()

    def string(self, length: int):
        """VARCHAR needs a length on MySQL."""
        import sqlalchemy as sa

        return sa.String(length)

    def free_text(self):
        """TEXT (VARCHAR needs a length here), as Agno's MySQL tables."""
        import sqlalchemy as sa

        return sa.Text()

    def id_type(self):
        import sqlalchemy as sa

        return sa.String(128, collation=ID_COLLATION)

    def layout_type(self, family: str, keyed: bool = False):
        """A ``varchar`` without length (a layout of another backend) is VARCHAR(128) in a key or an
        index (Agno's id length; five of them fit InnoDB's 3072-byte key) and TEXT elsewhere."""
        import sqlalchemy as sa

        if family == "varchar":
            return sa.String(128) if keyed else sa.Text()
        return super().layout_type(family, keyed)

    def run_position_index(self, runs_table: str) -> str:
        return f"{runs_table}_runs_session_id_run_index"  # as Agno's MySQL tables name it

    def type_family(self, type_) -> str:
        """Agno's JSON columns on MySQL/MariaDB reflect as LONGTEXT (MariaDB's JSON) or TEXT."""
        if type(type_).__name__.upper() in ("LONGTEXT", "TEXT"):
            return "json"
        return super().type_family(type_)

    def pre3_candidates(self, json_families, key, has_agno_versions):
        """2.5.0 added the primary key; 2.3.0 only Agno's version table (the JSON columns stay)."""
        v = registry.get
        if key == "pk":
            return [v("2.5.0")], []
        notes = ["no primary key and no unique key on session_id"] if key == "none" else []
        return ([v("2.3.0")] if has_agno_versions else [v("2.0.0")]), notes

    def insert(self, table):
        from sqlalchemy.dialects.mysql import insert

        return insert(table)

    def upsert(self, table, update, source=None, guard=None):
        """INSERT ... ON DUPLICATE KEY UPDATE. MySQL has no WHERE for it: with ``guard``, ``source``
        must exclude the rows not to update itself."""
        stmt = self.insert(table) if source is None else self.insert(table).from_select(*source)
        return stmt.on_duplicate_key_update({name: stmt.inserted[name] for name in update})

    def session_name(self, data):
        import sqlalchemy as sa

        return sa.func.json_unquote(sa.func.json_extract(data, "$.session_name"))


DIALECT = MySQL()


def _errno(exc: BaseException):
    args = getattr(getattr(exc, "orig", exc), "args", ())
    return args[0] if args else None


def lock_name(name: str) -> str:
    """The ``GET_LOCK`` name for a lock name (at most 64 characters, as the server requires)."""
    return "agno_migrate_" + hashlib.sha1(name.encode()).hexdigest()[:40]
