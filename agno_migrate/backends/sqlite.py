"""SQLite: one file, no schemas, transactional DDL."""

from __future__ import annotations

from agno_migrate.backends.dialect import Dialect


class SQLite(Dialect):
    name = "sqlite"
    transactional_ddl = True
    has_schemas = False


DIALECT = SQLite()
