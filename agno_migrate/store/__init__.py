"""The session store on the head schema: SqliteDb, PostgresDb, MySQLDb, MongoDb, connect(), and
the seeds' compatibility names (SqliteStorage, PostgresStorage, MySQLStorage).

``MongoDb`` lives in ``store.mongo`` and is imported on first use (it loads pymongo)."""

from __future__ import annotations

from agno_migrate.backends import dialect_of, mysql, postgresql, sqlite
from agno_migrate.errors import UsageError
from agno_migrate.store.base import SessionStore
from agno_migrate.store.sql import SqlStore
from agno_migrate.target import DEFAULT_PG_SCHEMA, Target


def _target(store: type, db_url, **names) -> Target:
    """The target of ``db_url`` for a store class of one dialect; UsageError for another dialect's URL."""
    target = Target.from_url(db_url, **{k: v for k, v in names.items() if v is not None})
    if dialect_of(target) is not store.dialect:
        raise UsageError(f"{store.__name__} needs a {store.dialect.name}:// URL, not {target.masked_url}")
    return target


class SqliteDb(SqlStore):
    """Sessions in a SQLite file: ``SqliteDb(db_file="agno.db")`` or ``SqliteDb(db_url="sqlite:///...")``."""

    dialect = sqlite.DIALECT

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
        super().__init__(
            _target(SqliteDb, url, session_table=session_table, runs_table=runs_table), auto_upgrade_schema
        )


class PostgresDb(SqlStore):
    """Sessions on PostgreSQL, in ``db_schema`` (default ``ai``, as Agno)."""

    dialect = postgresql.DIALECT

    def __init__(
        self,
        db_url: str,
        db_schema: str = DEFAULT_PG_SCHEMA,
        session_table: str | None = None,
        runs_table: str | None = None,
        auto_upgrade_schema: bool = False,
    ):
        names = {"schema": db_schema, "session_table": session_table, "runs_table": runs_table}
        super().__init__(_target(PostgresDb, db_url, **names), auto_upgrade_schema)


class MySQLDb(SqlStore):
    """Sessions on MySQL/MariaDB, in the URL's database (or ``db_schema``)."""

    dialect = mysql.DIALECT

    def __init__(
        self,
        db_url: str,
        db_schema: str | None = None,
        session_table: str | None = None,
        runs_table: str | None = None,
        auto_upgrade_schema: bool = False,
    ):
        names = {"schema": db_schema, "session_table": session_table, "runs_table": runs_table}
        super().__init__(_target(MySQLDb, db_url, **names), auto_upgrade_schema)


_SQL_STORES = {store.dialect: store for store in (SqliteDb, PostgresDb, MySQLDb)}
# connect()'s option names as MongoDb calls them (Agno's names: a database, collections)
_MONGO_OPTIONS = {"db_schema": "db_name", "session_table": "session_collection", "runs_table": "runs_collection"}


def connect(url: str, **options) -> SessionStore:
    """The store for ``url``, chosen by its scheme (options: session_table, runs_table, db_schema,
    auto_upgrade_schema; on MongoDB db_schema is the database, the tables are collections)."""
    dialect = dialect_of(Target.from_url(url))
    if not dialect.sql:
        from agno_migrate.store.mongo import MongoDb

        return MongoDb(db_url=url, **{_MONGO_OPTIONS.get(k, k): v for k, v in options.items()})
    if dialect not in _SQL_STORES:
        raise UsageError(f"no session store for {dialect.name} yet")
    return _SQL_STORES[dialect](db_url=url, **options)


def for_target(db, auto_upgrade_schema: bool = False) -> SessionStore:
    """The store of ``db`` (a URL, a :class:`Target` with every name it carries, or an Agno ``Db``
    object), chosen by its dialect."""
    from agno_migrate.target import resolve

    target = resolve(db)
    dialect = dialect_of(target)
    if not dialect.sql:
        from agno_migrate.store.mongo import MongoDb

        return MongoDb.of(target, auto_upgrade_schema)
    if dialect not in _SQL_STORES:
        raise UsageError(f"no session store for {dialect.name} yet")
    return _SQL_STORES[dialect].of(target, auto_upgrade_schema)


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
