"""Engines and connections for the SQL backends, and the translation of driver errors.

Driver failures at connect time (unreachable host, bad password, missing database, unwritable
SQLite file) become one ConnectFailed line with the password masked; nothing here prints a traceback.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator

from agno_migrate.errors import ConnectFailed, DatabaseFailure
from agno_migrate.target import Target, mask_url


def create_engine_for(target: Target):
    """A SQLAlchemy engine for ``target``. SQLite connections start their transactions with
    ``BEGIN IMMEDIATE`` (so DDL is transactional and a writer holds the lock from the start) and
    wait up to the target's lock timeout for another writer."""
    from sqlalchemy import create_engine, event

    if target.backend == "sqlite":
        engine = create_engine(
            target.driver_url,
            connect_args={"timeout": max(target.lock_timeout, 0.001)},
        )

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
            begin_sqlite_write(connection.connection, connection.exec_driver_sql)  # errors wrapped by SQLAlchemy

        return engine
    connect_args = {"connect_timeout": 10}
    if target.backend == "mysql":
        connect_args["charset"] = "utf8mb4"
    if target.backend == "postgresql":
        # the store prepares its own statements (store/pgpipe.py); psycopg's automatic ones would
        # make its rollback() send DEALLOCATE ALL, which drops the store's as well
        connect_args["prepare_threshold"] = None
    # no pool_pre_ping: it costs a round trip per call; a connection the server dropped fails one
    # call, is discarded with the pool, and the next call reconnects
    if target.backend == "mysql":
        options = {"json_serializer": json_text}
    else:  # JSONB read with orjson where it gives what json.loads gives
        from agno_migrate.convert import loads

        options = {"json_deserializer": loads}
    engine = create_engine(target.driver_url, pool_recycle=1800, connect_args=connect_args, **options)
    if target.backend == "postgresql":

        @event.listens_for(engine, "connect")
        def _no_jit(dbapi_connection, _record):
            # our statements are short; the planner's estimates on tables not yet analyzed can pass
            # jit_above_cost, and compiling then costs ~10 ms a statement, more than running it
            # (servers before PostgreSQL 11 have no such setting: nothing to turn off there)
            autocommit = dbapi_connection.autocommit
            dbapi_connection.autocommit = True
            dbapi_connection.execute(
                "SELECT set_config('jit', 'off', false) WHERE current_setting('jit', true) IS NOT NULL"
            )
            dbapi_connection.autocommit = autocommit

    return engine


def begin_sqlite_write(pooled, execute) -> None:
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


def json_text(value) -> str:
    """JSON for MariaDB as UTF-8 text, not \\u-escaped (escaping doubles CJK and triples emoji, and
    can push a large session past MariaDB's packet limit); escaped only when the data holds lone
    surrogates, which UTF-8 cannot carry. Elsewhere the (faster) escaped form is used, as Agno does."""
    text = json.dumps(value, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(value)
    return text


def _casefold(value):
    return value.casefold() if isinstance(value, str) else value


def describe_db_error(exc: BaseException) -> str:
    """One line naming what the driver said, without SQL, parameters or passwords."""
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()[0] if str(orig).strip() else orig.__class__.__name__
    return mask_url(text)[:300]


@contextlib.contextmanager
def connect(target: Target, readonly: bool = False) -> Iterator[object]:
    """A connection to ``target``; connection failures raise ConnectFailed (exit code 5).

    ``readonly`` connections start plain (deferred) transactions on SQLite, so reading a
    read-only file, or reading while another process writes, works."""

    if readonly and _missing_sqlite_file(target):
        # reading a file that does not exist must not create it: read an empty database instead
        from sqlalchemy import create_engine

        with create_engine("sqlite://").connect() as empty:
            yield empty
        return
    with _connect_errors(target):
        conn = target.engine().connect()
    if readonly:
        conn.execution_options(agno_readonly=True)
        if target.backend != "sqlite":  # reads need no BEGIN/COMMIT round trips
            conn.execution_options(isolation_level="AUTOCOMMIT")
    try:
        yield conn
    finally:
        with contextlib.suppress(Exception):
            conn.close()


def _missing_sqlite_file(target: Target) -> bool:
    if target.backend != "sqlite":
        return False
    from pathlib import Path

    from sqlalchemy.engine import make_url

    database = make_url(target.driver_url).database
    return (
        bool(database) and database != ":memory:" and not database.startswith("file:") and not Path(database).exists()
    )


def _extra(backend: str) -> str:
    return {"postgresql": "postgres", "mysql": "mysql", "mongodb": "mongo"}.get(backend, "all")


def raw_connection(target: Target):
    """A pooled DBAPI connection of ``target``'s engine (``close()`` returns it to the pool), for
    the store's driver-level statements; connection failures raise ConnectFailed."""
    with _connect_errors(target):
        return target.engine().raw_connection()


@contextlib.contextmanager
def _connect_errors(target: Target) -> Iterator[None]:
    from sqlalchemy.exc import DBAPIError

    try:
        yield
    except ModuleNotFoundError as exc:
        raise ConnectFailed(
            f"the driver for {target.backend} is not installed ({exc.name}): "
            f"pip install 'agno-migrate[{_extra(target.backend)}]'"
        ) from None
    except (DBAPIError, *_driver_errors(target)) as exc:  # a raw checkout raises the driver's own
        raise ConnectFailed(f"cannot connect to {target.masked_url}: {describe_db_error(exc)}") from None


def _driver_errors(target: Target, kind: str = "Error") -> tuple[type, ...]:
    """The driver's own exception class ``kind`` (raised by DBAPI connections used directly), once
    the driver is loaded."""
    engine = target._engine
    dbapi = getattr(engine.dialect, "loaded_dbapi", None) if engine is not None else None
    return (getattr(dbapi, kind),) if dbapi is not None else ()


@contextlib.contextmanager
def database_errors(target: Target) -> Iterator[None]:
    """Turn an unexpected driver error inside the block (SQLAlchemy's wrapper or the driver's own
    exception) into one DatabaseFailure line."""
    from sqlalchemy.exc import DBAPIError, OperationalError

    try:
        yield
    except (DBAPIError, *_driver_errors(target)) as exc:
        message = describe_db_error(exc)
        operational = isinstance(exc, (OperationalError, *_driver_errors(target, "OperationalError")))
        if operational and "readonly" in message.replace("-", "").lower():
            raise DatabaseFailure(f"{target.masked_url} is read-only: {message}") from None
        raise DatabaseFailure(f"database error on {target.masked_url}: {message}") from None
