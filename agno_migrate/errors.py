"""One exception family. Each error carries the CLI exit code it ends in (documented in the README).

Expected failures are raised as one of these with a message meant for a person: one line, no
traceback, no credential: every message is redacted when the error is made
(``credentials.redact``: URL passwords and credential parameters by shape, and every credential of
a URL parsed in this process by value), so ``str()``, ``repr()`` and the CLI's line are all safe.
"""

from __future__ import annotations

from agno_migrate.credentials import redact

EXIT_OK = 0
EXIT_BEHIND = 1
EXIT_USAGE = 2
EXIT_AHEAD = 3
EXIT_DRIFT = 4
EXIT_CONNECT = 5
EXIT_LOCK_TIMEOUT = 6
EXIT_REFUSED = 8
EXIT_INCOMPLETE = 9
EXIT_DATABASE = 10


class AgnoMigrateError(Exception):
    """Base of every error agno-migrate raises on purpose."""

    exit_code = EXIT_DATABASE

    def __init__(self, message: object = "", *args: object):
        super().__init__(redact(str(message)), *(redact(str(a)) if isinstance(a, str) else a for a in args))


class UsageError(AgnoMigrateError):
    """Bad input from the caller: a malformed URL, an unknown version, an invalid table name."""

    exit_code = EXIT_USAGE


class UnknownSession(UsageError, KeyError):
    """A store call named a session that does not exist (also a KeyError, as it was before)."""

    __str__ = Exception.__str__


class UnknownVersion(UsageError):
    """A version string that is not in the registry."""


class SchemaBehind(AgnoMigrateError):
    """The database is behind head (and the caller did not ask to upgrade it)."""

    exit_code = EXIT_BEHIND

    def __init__(self, message: str, found: str | None = None):
        super().__init__(message)
        self.found = found


class SchemaAhead(AgnoMigrateError):
    """The database records a version this release of agno-migrate does not know."""

    exit_code = EXIT_AHEAD


class SchemaDrift(AgnoMigrateError):
    """The physical schema disagrees with the recorded version, or matches no known version."""

    exit_code = EXIT_DRIFT


class ConnectFailed(AgnoMigrateError):
    """The server cannot be reached, refused the credentials, or the database does not exist."""

    exit_code = EXIT_CONNECT


class LockTimeout(AgnoMigrateError):
    """Another process held the migration lock for longer than the lock timeout."""

    exit_code = EXIT_LOCK_TIMEOUT


class Refused(AgnoMigrateError):
    """The operation is understood but refused, and nothing was changed (e.g. an irreversible downgrade)."""

    exit_code = EXIT_REFUSED


class DatabaseFailure(AgnoMigrateError):
    """The database rejected a statement in a way agno-migrate did not expect."""

    exit_code = EXIT_DATABASE


class Incomplete(AgnoMigrateError):
    """The command finished, but some rows could not be converted; they were kept as they were."""

    exit_code = EXIT_INCOMPLETE


class Differs(AgnoMigrateError):
    """``verify`` (or ``copy --verify``) found the two databases different (what differs is listed)."""

    exit_code = EXIT_BEHIND


class RunIdTaken(AgnoMigrateError, ValueError):
    """A run id written for one session already belongs to another session; nothing was written."""

    exit_code = EXIT_REFUSED
