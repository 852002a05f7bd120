"""MongoDB: the dialect's facts, the client of a target, and pymongo errors turned into one-line errors.

Importing this module loads no pymongo: the client is made on first use, for ``mongodb://`` targets.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from agno_migrate.backends import connections, dialect_of
from agno_migrate.backends.dialect import Dialect
from agno_migrate.credentials import redact
from agno_migrate.errors import ConnectFailed, DatabaseFailure, UsageError
from agno_migrate.target import Target

SERVER_SELECTION_MS = 5000  # how long an unreachable server is waited for (unless the URL says)
AUTH_FAILED = 18


class MongoDB(Dialect):
    name = "mongodb"
    sql = False
    transactional_ddl = False  # no DDL; a step's writes are not one transaction: steps are idempotent
    has_schemas = True  # the database holds the collections
    extra = "mongo"
    json_lone_surrogates = False  # BSON text is UTF-8


DIALECT = MongoDB()


def database(target: Target):
    """The pymongo Database of ``target`` (its client made on first use, which loads pymongo, and
    kept until :func:`agno_migrate.backends.dispose`). UsageError for a SQL target."""
    if dialect_of(target) is not DIALECT:
        raise UsageError(f"{target.masked_url} is not a MongoDB URL")
    return connections.get(target, "client", lambda: create_client(target), _close)[target.schema]


def _close(client) -> None:
    client.close()


def create_client(target: Target):
    """A pymongo client for ``target`` (connects lazily: errors surface in the first command)."""
    try:
        from pymongo import MongoClient
    except ImportError:
        raise UsageError("MongoDB needs pymongo: pip install 'agno-migrate[mongo]'") from None
    options = {"appname": "agno-migrate", "tz_aware": False}
    if "serverselectiontimeoutms" not in target.url.lower():
        options["serverSelectionTimeoutMS"] = SERVER_SELECTION_MS
    with mongo_errors(target):
        return MongoClient(target.url, **options)


@contextlib.contextmanager
def mongo_errors(target: Target) -> Iterator[None]:
    """Turn pymongo errors inside the block into ConnectFailed (server unreachable, credentials
    refused) or DatabaseFailure (anything else the server rejected), each one masked line."""
    from pymongo import errors

    try:
        yield
    except (errors.ServerSelectionTimeoutError, errors.ConnectionFailure) as exc:
        raise ConnectFailed(f"cannot connect to {target.masked_url}: {_first_line(exc)}") from None
    except errors.OperationFailure as exc:
        if exc.code == AUTH_FAILED:
            raise ConnectFailed(f"cannot connect to {target.masked_url}: authentication failed") from None
        raise DatabaseFailure(f"database error on {target.masked_url}: {_first_line(exc)}") from None
    except errors.ConfigurationError as exc:
        raise UsageError(f"invalid MongoDB settings for {target.masked_url}: {_first_line(exc)}") from None
    except errors.PyMongoError as exc:
        raise DatabaseFailure(f"database error on {target.masked_url}: {_first_line(exc)}") from None


def _first_line(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
    for noise in (", Timeout:", " (configured timeouts:"):  # pymongo's topology details
        text = text.split(noise)[0]
    return redact(text)[:200]
