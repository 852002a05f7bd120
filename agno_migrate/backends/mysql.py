"""MySQL and MariaDB (PyMySQL): the URL's database as the schema; every DDL statement commits."""

from __future__ import annotations

from agno_migrate.backends.dialect import Dialect


class MySQL(Dialect):
    name = "mysql"
    transactional_ddl = False
    has_schemas = True


DIALECT = MySQL()
