"""The session store on the head schema: SqliteDb, PostgresDb, MySQLDb, MongoDb, connect(), and
the seeds' compatibility names (SqliteStorage, PostgresStorage, MySQLStorage).

``MongoDb`` lives in ``store.mongo`` and is imported on first use (it loads pymongo)."""

from __future__ import annotations

from agno_migrate.errors import UsageError
from agno_migrate.store.base import SessionStore
from agno_migrate.store.sql import SqlStore
from agno_migrate.target import DEFAULT_PG_SCHEMA, Target


def _target(db_url, **names) -> Target:
    return Target.from_url(db_url, **{k: v for k, v in names.items() if v is not None})


class SqliteDb(SqlStore):
    """Sessions in a SQLite file: ``SqliteDb(db_file="agno.db")`` or ``SqliteDb(db_url="sqlite:///...")``."""

    def __init__(
        self,
        db_file: str | None = None,
        db_url: str | None = None,
        session_table: str | None = None,
        runs_table: str | None = None,
        auto_upgrade_schema: bool = False,
    ):
        if (db_file is None) == (db_url is None):
            raise UsageError("SqliteDb needs exactly one of db_file or db_url")
        url = db_url or f"sqlite:///{db_file}"
        target = _target(url, session_table=session_table, runs_table=runs_table)
        if target.backend != "sqlite":
            raise UsageError(f"SqliteDb needs a sqlite:// URL, not {target.masked_url}")
        super().__init__(target, auto_upgrade_schema)


class PostgresDb(SqlStore):
    """Sessions on PostgreSQL, in ``db_schema`` (default ``ai``, as Agno)."""

    def __init__(
        self,
        db_url: str,
        db_schema: str = DEFAULT_PG_SCHEMA,
        session_table: str | None = None,
        runs_table: str | None = None,
        auto_upgrade_schema: bool = False,
    ):
        target = _target(db_url, schema=db_schema, session_table=session_table, runs_table=runs_table)
        if target.backend != "postgresql":
            raise UsageError(f"PostgresDb needs a postgresql:// URL, not {target.masked_url}")
        super().__init__(target, auto_upgrade_schema)


class MySQLDb(SqlStore):
    """Sessions on MySQL/MariaDB, in the URL's database (or ``db_schema``)."""

    def __init__(
        self,
        db_url: str,
        db_schema: str | None = None,
        session_table: str | None = None,
        runs_table: str | None = None,
        auto_upgrade_schema: bool = False,
    ):
        target = _target(db_url, schema=db_schema, session_table=session_table, runs_table=runs_table)
        if target.backend != "mysql":
            raise UsageError(f"MySQLDb needs a mysql:// URL, not {target.masked_url}")
        super().__init__(target, auto_upgrade_schema)


_BY_BACKEND = {"sqlite": SqliteDb, "postgresql": PostgresDb, "mysql": MySQLDb}
# connect()'s option names as MongoDb calls them (Agno's names: a database, collections)
_MONGO_OPTIONS = {"db_schema": "db_name", "session_table": "session_collection", "runs_table": "runs_collection"}


def connect(url: str, **options) -> SessionStore:
    """The store for ``url``, chosen by its scheme (options: session_table, runs_table, db_schema,
    auto_upgrade_schema; on MongoDB db_schema is the database, the tables are collections)."""
    backend = Target.from_url(url).backend
    if backend == "mongodb":
        from agno_migrate.store.mongo import MongoDb

        return MongoDb(db_url=url, **{_MONGO_OPTIONS.get(k, k): v for k, v in options.items()})
    if backend not in _BY_BACKEND:
        raise UsageError(f"no session store for {backend} yet")
    return _BY_BACKEND[backend](db_url=url, **options)


def __getattr__(name: str):
    if name == "MongoDb":  # imported on use: it loads pymongo
        from agno_migrate.store.mongo import MongoDb

        return MongoDb
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def SqliteStorage(
    table_name: str | None = None,
    db_file: str | None = None,
    db_url: str | None = None,
    auto_upgrade_schema: bool = False,
) -> SqliteDb:
    """The seeds' name: ``table_name`` is the session table."""
    return SqliteDb(db_file=db_file, db_url=db_url, session_table=table_name, auto_upgrade_schema=auto_upgrade_schema)


def PostgresStorage(
    table_name: str | None = None,
    db_url: str | None = None,
    schema: str = DEFAULT_PG_SCHEMA,
    auto_upgrade_schema: bool = False,
) -> PostgresDb:
    """The seeds' name: ``table_name`` is the session table, ``schema`` the PostgreSQL schema."""
    return PostgresDb(
        db_url=db_url, db_schema=schema, session_table=table_name, auto_upgrade_schema=auto_upgrade_schema
    )


def MySQLStorage(
    table_name: str | None = None,
    db_url: str | None = None,
    schema: str | None = None,
    auto_upgrade_schema: bool = False,
) -> MySQLDb:
    """The seeds' name: ``table_name`` is the session table, ``schema`` the MySQL database."""
    return MySQLDb(db_url=db_url, db_schema=schema, session_table=table_name, auto_upgrade_schema=auto_upgrade_schema)
