"""What a backend is: the facts the migration flow and the store ask for, instead of its name.

Each SQL dialect module (``sqlite``, ``postgresql``, ``mysql``: subclasses of ``sql_dialect.SqlDialect``)
and ``mongo`` defines one subclass; :func:`agno_migrate.backends.dialect_of` picks it for a target.
Importing these modules loads no database driver.
"""

from __future__ import annotations


class Dialect:
    name: str = ""
    """The backend's key, as :class:`agno_migrate.target.Target` parses it from the URL."""
    sql: bool = True
    """A SQL database driven through SQLAlchemy and Alembic (False: MongoDB)."""
    transactional_ddl: bool = True
    """DDL runs inside the step's transaction (SQLite, PostgreSQL); False: every DDL statement
    commits at once (MySQL/MariaDB), so each step must be idempotent."""
    has_schemas: bool = True
    """Tables live in a named schema or database (PostgreSQL schema, MySQL database); False: SQLite."""
    creates_schema: bool = False
    """The upgrade creates the schema when it is missing (PostgreSQL's ``CREATE SCHEMA``)."""
    extra: str = "all"
    """The ``agno-migrate[...]`` extra that installs the driver (named in "driver not installed")."""

    def schema_of(self, target) -> str | None:
        """The schema to qualify table names with (None where the dialect has none)."""
        return target.schema if self.has_schemas else None

    def __repr__(self) -> str:
        return f"<dialect {self.name}>"
