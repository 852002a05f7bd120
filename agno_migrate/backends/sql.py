"""Engines and connections for the SQL backends, and the translation of driver errors.

Each target's engine is made by its dialect (``sql_dialect.SqlDialect.create_engine``) on first
use and kept for the target (``connections``).

Driver failures at connect time (unreachable host, bad password, missing database, unwritable
SQLite file) become one ConnectFailed line with every credential masked (``credentials.redact``:
drivers can echo the DSN); nothing here prints a traceback.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator

from agno_migrate.backends import connections, dialect_of
from agno_migrate.credentials import redact
from agno_migrate.errors import ConnectFailed, DatabaseFailure, Refused, UsageError
from agno_migrate.target import Target


def engine(target: Target):
    """The SQLAlchemy engine of ``target``, created on first use (loads the dialect's driver) and
    kept until :func:`agno_migrate.backends.dispose`. UsageError for a MongoDB target."""
    dialect = dialect_of(target)
    if not dialect.sql:
        raise UsageError("this operation applies to SQL databases, not MongoDB")
    return connections.get(target, "engine", lambda: dialect.create_engine(target), _dispose)


def _dispose(engine) -> None:
    engine.dispose()


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


def describe_db_error(exc: BaseException) -> str:
    """One line naming what the driver said, without SQL, parameters or passwords."""
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()[0] if str(orig).strip() else orig.__class__.__name__
    return redact(text)[:300]


@contextlib.contextmanager
def connect(target: Target, readonly: bool = False) -> Iterator[object]:
    """A connection to ``target``; connection failures raise ConnectFailed (exit code 5).

    ``readonly`` connections start plain (deferred) transactions on SQLite, so reading a
    read-only file, or reading while another process writes, works."""

    dialect = dialect_of(target)
    if not readonly and target.read_only:
        raise_read_only(target)
    if readonly and dialect.sql and dialect.missing_file(target):
        # reading a file that does not exist must not create it: read an empty database instead
        from sqlalchemy import create_engine

        with create_engine("sqlite://").connect() as empty:
            yield empty
        return
    with _connect_errors(target):
        conn = engine(target).connect()
    if readonly:
        conn.execution_options(agno_readonly=True)
        if dialect.readonly_autocommit:
            conn.execution_options(isolation_level="AUTOCOMMIT")
    try:
        yield conn
    finally:
        with contextlib.suppress(Exception):
            conn.close()


def raise_read_only(target: Target) -> None:
    """Refused (nothing changed): a write asked of a database its URL opens read-only."""
    raise Refused(
        f"{target.masked_url} is opened read-only (its URL says so): this would write to it; nothing was "
        f"changed (remove mode=ro / immutable=1 from the URL to allow writes)"
    )


def raw_connection(target: Target):
    """A pooled DBAPI connection of ``target``'s engine (``close()`` returns it to the pool), for
    the store's driver-level statements; connection failures raise ConnectFailed."""
    try:  # (no context manager: every store call takes one)
        return engine(target).raw_connection()
    except Exception as exc:
        failure = _connect_failure(target, exc)
        if failure is None:
            raise
        raise failure from None


@contextlib.contextmanager
def _connect_errors(target: Target) -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        failure = _connect_failure(target, exc)
        if failure is None:
            raise
        raise failure from None


def _connect_failure(target: Target, exc: Exception) -> Exception | None:
    """The one-line error for ``exc`` raised while connecting, None if it is not a connection failure."""
    from sqlalchemy.exc import ArgumentError, DBAPIError

    if isinstance(exc, ModuleNotFoundError):
        return ConnectFailed(
            f"the driver for {target.backend} is not installed ({exc.name}): "
            f"pip install 'agno-migrate[{dialect_of(target).extra}]'"
        )
    if isinstance(exc, ArgumentError):  # e.g. ?port=x: SQLAlchemy refuses the URL's arguments
        return UsageError(f"invalid database URL {target.masked_url}: {describe_db_error(exc)}")
    if isinstance(exc, (DBAPIError, *_driver_errors(target))):  # a raw checkout raises the driver's own
        message = describe_db_error(exc)
        better = dialect_of(target).explain_failure(target, exc, message)
        return better if better is not None else ConnectFailed(f"cannot connect to {target.masked_url}: {message}")
    return None


def _driver_errors(target: Target, kind: str = "Error") -> tuple[type, ...]:
    """The driver's own exception class ``kind`` (raised by DBAPI connections used directly), once
    the driver is loaded."""
    made = connections.peek(target, "engine")
    dbapi = getattr(made.dialect, "loaded_dbapi", None) if made is not None else None
    return (getattr(dbapi, kind),) if dbapi is not None else ()


def database_errors(target: Target) -> _DatabaseErrors:
    """Turn an unexpected driver error inside the block (SQLAlchemy's wrapper or the driver's own
    exception) into one DatabaseFailure line."""
    return _DatabaseErrors(target)


class _DatabaseErrors:
    """:func:`database_errors`' context manager: a class, not a generator, as every store call
    enters one (nothing is looked up unless an exception leaves the block)."""

    __slots__ = ("target",)

    def __init__(self, target: Target):
        self.target = target

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, exc, tb) -> bool:
        if kind is None:
            return False
        from sqlalchemy.exc import DBAPIError

        if isinstance(exc, (DBAPIError, *_driver_errors(self.target))):
            _raise_database_failure(self.target, exc)
        return False


def _raise_database_failure(target: Target, exc: BaseException) -> None:
    """Raise the one-line error for the driver error ``exc`` (see :func:`database_errors`)."""
    from sqlalchemy.exc import OperationalError

    message = describe_db_error(exc)
    better = dialect_of(target).explain_failure(target, exc, message)
    if better is not None:
        raise better from None
    dialect = dialect_of(target)
    if dialect.privilege_denied(exc):
        raise DatabaseFailure(_privilege_message(target, message)) from None
    if dialect.unrepresentable_text(exc):
        raise UsageError(
            f"{target.masked_url}: the database's character set cannot hold a character of this value "
            f"({message}); nothing was written: use a UTF-8 (utf8mb4) database, or keep to its characters"
        ) from None
    operational = isinstance(exc, (OperationalError, *_driver_errors(target, "OperationalError")))
    if operational and "readonly" in message.replace("-", "").lower():
        raise DatabaseFailure(f"{target.masked_url} is read-only: {message}") from None
    raise DatabaseFailure(f"database error on {target.masked_url}: {message}") from None


def _privilege_message(target: Target, message: str) -> str:
    """Who lacks which privilege, and what each use of the database needs."""
    from sqlalchemy.engine import make_url

    user = make_url(target.driver_url).username or "the connecting user"
    where = f"schema {target.schema}" if dialect_of(target).creates_schema else f"database {target.schema}"
    return (
        f"{user} lacks a privilege on {target.masked_url} ({message}): upgrade, downgrade and stamp change "
        f"the Agno tables and need their owner (and, to create tables, CREATE on {where}); the session store "
        f"on a database at head needs only SELECT, INSERT, UPDATE and DELETE on them. Grant it to {user}, or "
        "run this as a user that has it"
    )


def has_table(conn, target: Target, name: str) -> bool:
    """Whether table ``name`` exists in the target's schema (a catalogue query on ``conn``)."""
    from sqlalchemy import inspect

    return inspect(conn).has_table(name, schema=dialect_of(target).schema_of(target))
