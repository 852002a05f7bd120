"""PostgreSQL (psycopg 3): schema ``ai`` by default, transactional DDL, JSONB."""

from __future__ import annotations

from agno_migrate.backends.dialect import Dialect


class PostgreSQL(Dialect):
    name = "postgresql"
    transactional_ddl = True
    has_schemas = True
    creates_schema = True


DIALECT = PostgreSQL()
