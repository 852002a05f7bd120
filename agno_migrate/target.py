"""A database to act on: URL parsing and normalising, and the names of its tables.

Names are data, never string literals in revisions or queries: the session table, the runs table,
Agno's version table, our own version table and the PostgreSQL schema all live here, validated
once, and every revision and query takes them from a Target. This is the bottom layer: the URL and
names only. Connections (engines, clients) are made and kept by ``agno_migrate.backends``; nothing
here imports a database driver.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from agno_migrate.credentials import mask_url, redact, remember
from agno_migrate.errors import UsageError

DEFAULT_URL = "sqlite:///agno.db"
DEFAULT_SESSION_TABLE = "agno_sessions"
DEFAULT_RUNS_TABLE = "agno_runs"
DEFAULT_AGNO_VERSIONS_TABLE = "agno_schema_versions"
DEFAULT_PG_SCHEMA = "ai"
DEFAULT_LOCK_TIMEOUT = 60.0
DEFAULT_MONGO_DB = "agno"  # as Agno's MongoDb
DEFAULT_LOCK_LEASE = 30.0  # seconds a MongoDB lock document stays valid without renewal

# schemas (MySQL, MongoDB: databases) of the server itself, never Agno's: refused as --db-schema
_SYSTEM_SCHEMAS = {
    "postgresql": ("information_schema", "pg_*"),  # the pg_ prefix is reserved for system schemas
    "mysql": ("information_schema", "mysql", "performance_schema", "sys"),
    "mongodb": ("admin", "local", "config"),
}
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MAX_TABLE = 40  # leaves room for derived names (idx_<table>_session_id_run_index) under 63
_MAX_SCHEMA = 63
_SCHEMES = {
    "sqlite": ("sqlite", "sqlite"),
    "postgresql": ("postgresql", "postgresql+psycopg"),
    "postgres": ("postgresql", "postgresql+psycopg"),
    "mysql": ("mysql", "mysql+pymysql"),
    "mariadb": ("mysql", "mysql+pymysql"),
    "mongodb": ("mongodb", None),
    "mongodb+srv": ("mongodb", None),
}


def validate_identifier(name: str, what: str, max_len: int = _MAX_TABLE) -> str:
    """Return ``name`` if it is a plain SQL identifier; raise UsageError otherwise.

    Plain identifiers (letters, digits, underscore) are all Agno ever creates; refusing anything
    else keeps quoting trivial on every backend and rules out injection through names.
    """
    if not isinstance(name, str) or not _IDENTIFIER.fullmatch(name) or len(name) > max_len:
        shown = repr(name)[:80]
        raise UsageError(
            f"invalid {what} {shown}: use letters, digits and underscores, "
            f"starting with a letter or underscore, at most {max_len} characters"
        )
    return name


@dataclass
class Target:
    """Where the session storage lives and what its tables are called.

    Build one with :meth:`from_url`. The runs table defaults as in Agno 3.1
    (:func:`default_runs_table`: ``<session_table>_runs`` for a session table not named
    ``agno_sessions``). ``schema`` is the PostgreSQL schema (default ``ai``, as Agno), the MySQL
    database (default: the one in the URL) or the MongoDB database (default: the one in the URL,
    else ``agno`` as Agno); SQLite has none. On MongoDB the "tables" are collections.
    """

    url: str
    backend: str
    driver_url: str | None
    schema: str | None = None
    session_table: str = DEFAULT_SESSION_TABLE
    runs_table: str = DEFAULT_RUNS_TABLE
    agno_versions_table: str = DEFAULT_AGNO_VERSIONS_TABLE
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT
    lock_lease: float = DEFAULT_LOCK_LEASE
    url_defaulted: bool = False
    read_only: bool = False
    """The URL asks for read-only access (SQLite ``?mode=ro`` or ``?immutable=1``): reads work, every
    command or store call that would write is refused before anything changes."""
    tables: dict[str, str] = field(default_factory=dict)
    """Explicit names of the other Agno tables: family (``memories``, ``evals``, ... see
    ``agno_migrate.tables.FAMILIES``) → table name. A named family is looked for under that name only
    (not its default name, not by columns); one that does not exist is reported missing. The families
    are checked against the known ones where they are known (``agno_migrate.tables.check_names``)."""

    @classmethod
    def from_url(
        cls,
        url: str | None = None,
        *,
        schema: str | None = None,
        session_table: str | None = None,
        runs_table: str | None = None,
        agno_versions_table: str | None = None,
        lock_timeout: float | None = None,
        lock_lease: float | None = None,
        tables: Mapping[str, str] | None = None,
    ) -> Target:
        """Parse and normalise ``url`` (None: the embedded default ``sqlite:///agno.db``).

        Bare ``postgresql://`` gets the psycopg 3 driver and ``mysql://`` PyMySQL. ``tables``: the
        explicit names of the other Agno tables (family → name). Raises UsageError for a malformed
        URL, an unknown scheme or an invalid name.
        """
        defaulted = url is None
        if url is not None and not isinstance(url, str):
            raise UsageError(f"a database URL must be a string, not {type(url).__name__}")
        url = DEFAULT_URL if url is None else url.strip()
        remember(url)  # every message from here on masks its credentials, whatever their form
        scheme, sep, rest = url.partition("://")
        if not sep or not scheme:
            raise UsageError(f"malformed database URL {mask_url(url)!r}: expected scheme://...")
        base, _, explicit_driver = scheme.lower().partition("+")
        if base not in _SCHEMES:
            known = ", ".join(sorted({k for k in _SCHEMES}))
            raise UsageError(f"unknown database URL scheme {scheme!r} (supported: {known})")
        backend, default_driver = _SCHEMES[base]
        driver_url = None
        read_only = False
        if backend != "mongodb":
            driver_url = (f"{backend}+{explicit_driver}" if explicit_driver else default_driver) + "://" + rest
            driver_url = _check_sqlalchemy_url(driver_url, url)
        if backend == "sqlite":
            driver_url, read_only = _sqlite_uri(driver_url, url)
        if backend == "postgresql":
            schema = schema or DEFAULT_PG_SCHEMA
        elif backend == "mysql":
            schema = schema or _url_database(driver_url) or None
            if schema is None:
                raise UsageError("a MySQL URL must name a database (mysql://user@host/DATABASE) or give --db-schema")
        elif backend == "mongodb":
            schema = schema or _check_mongo_url(url) or DEFAULT_MONGO_DB
        elif schema is not None and backend == "sqlite":
            raise UsageError("--db-schema does not apply to SQLite")
        _refuse_system_schema(backend, schema)
        target = cls(
            url=url,
            backend=backend,
            driver_url=driver_url,
            schema=validate_identifier(schema, "schema name", _MAX_SCHEMA) if schema else None,
            session_table=validate_identifier(session_table or DEFAULT_SESSION_TABLE, "session table name"),
            runs_table=validate_identifier(runs_table or default_runs_table(session_table), "runs table name"),
            agno_versions_table=validate_identifier(
                agno_versions_table or DEFAULT_AGNO_VERSIONS_TABLE, "Agno version table name"
            ),
            lock_timeout=_seconds(lock_timeout, DEFAULT_LOCK_TIMEOUT, "lock_timeout (--lock-timeout)"),
            lock_lease=_seconds(lock_lease, DEFAULT_LOCK_LEASE, "lock_lease (--lock-lease)", positive=True),
            url_defaulted=defaulted,
            read_only=read_only,
            tables=_table_names(tables),
        )
        if target.runs_table == target.session_table:
            raise UsageError("the runs table and the session table must have different names")
        own = {target.session_table, target.runs_table, target.agno_versions_table}
        for fam, name in target.tables.items():
            if name in own:
                raise UsageError(f"the {fam} table cannot be named {name}: that is the session, runs or version table")
        return target

    @property
    def version_table(self) -> str:
        """Our own version table: one per session table, so two session tables never share it."""
        name = f"agno_migrate_{self.session_table}"
        if len(name) > 60:
            name = "agno_migrate_" + hashlib.sha1(self.session_table.encode()).hexdigest()[:16]
        return name

    @property
    def masked_url(self) -> str:
        return redact(self.url)

    def __repr__(self) -> str:  # never the URL's credentials
        return f"Target({self.masked_url!r}, schema={self.schema!r}, session_table={self.session_table!r})"

    @property
    def lock_name(self) -> str:
        """A name for the migration lock, unique per database, schema and session table."""
        return f"agno_migrate:{self.schema or ''}.{self.session_table}"

    @property
    def is_mongo(self) -> bool:
        """Whether this is a MongoDB target (for tests and callers outside the package; the package
        itself asks the dialect, ``agno_migrate.backends.dialect_of(target).sql``)."""
        return self.backend == "mongodb"


def seconds_problem(value: Any, positive: bool = False) -> str | None:
    """Why ``value`` is not a number of seconds (finite, at least 0; above 0 if ``positive``), else None."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return f"{value!r} is not a number of seconds"
    if isinstance(value, bool) or not math.isfinite(number) or number < 0 or (positive and number == 0):
        return f"{value!r}: expected a finite number of seconds, {'above 0' if positive else '0 or more'}"
    return None


def _seconds(value: Any, default: float, what: str, positive: bool = False) -> float:
    if value is None:
        return default
    problem = seconds_problem(value, positive)
    if problem is not None:
        raise UsageError(f"{what}: {problem}")
    return float(value)


def _refuse_system_schema(backend: str, schema: str | None) -> None:
    if not isinstance(schema, str):
        return
    for system in _SYSTEM_SCHEMAS.get(backend, ()):
        name = schema.lower()
        if name == system or (system.endswith("*") and name.startswith(system[:-1])):
            what, where = ("schema", "") if backend == "postgresql" else ("database", " or in the URL")
            raise UsageError(
                f"{schema} is a system {what} of the server: Agno's tables do not belong there; "
                f"give another {what} with --db-schema{where}"
            )


def _check_sqlalchemy_url(driver_url: str, original: str) -> str:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(driver_url)
        port = parsed.port
    except (ArgumentError, ValueError) as exc:
        why = exc.__class__.__name__
        if isinstance(exc, ValueError) and "int()" in str(exc):
            why = "the port must be a number from 1 to 65535 (host:PORT)"
        raise UsageError(f"malformed database URL {mask_url(original)!r}: {why}") from None
    if port is not None and not 0 < port < 65536:
        raise UsageError(f"malformed database URL {mask_url(original)!r}: port {port} is not from 1 to 65535")
    if parsed.get_backend_name() != "sqlite" and not parsed.host:
        raise UsageError(f"malformed database URL {mask_url(original)!r}: no host")
    return driver_url


# what the pysqlite driver takes from a URL's query itself; SQLite's own URI parameters
# (https://www.sqlite.org/uri.html) reach SQLite only through a ``file:`` URI (``uri=true``)
_PYSQLITE_ARGS = {"timeout", "isolation_level", "detect_types", "check_same_thread", "cached_statements", "uri"}
_SQLITE_URI_ARGS = {"mode", "immutable", "cache", "vfs", "nolock", "psow"}
_TRUE = {"1", "true", "yes", "on"}


def default_runs_table(session_table: str | None) -> str:
    """The runs table of a session table when none is named, as Agno 3.1 names it (``agno.db.base``):
    ``agno_runs`` for ``agno_sessions``, ``<session_table>_runs`` for any other (its runs table's
    foreign key refers to its own session table: a second session table never shares ``agno_runs``).
    UsageError when that name would be too long."""
    if not session_table or session_table == DEFAULT_SESSION_TABLE:
        return DEFAULT_RUNS_TABLE
    name = f"{session_table}_runs"
    if len(name) > _MAX_TABLE:
        raise UsageError(
            f"the runs table of session table {session_table} would be {name} (as Agno names it), longer than "
            f"{_MAX_TABLE} characters: name it with --runs-table"
        )
    return name


def _sqlite_uri(driver_url: str, original: str) -> tuple[str, bool]:
    """A SQLite URL whose query holds SQLite URI parameters (``?mode=ro``, ``?immutable=1``, ...)
    made into the ``file:`` URI form the driver passes on to SQLite (instead of SQLAlchemy ignoring
    them with a warning), and whether it asks for read-only access. UsageError for a parameter
    neither SQLite nor its driver knows."""
    from sqlalchemy.engine import make_url

    parsed = make_url(driver_url)
    query = {k: (v[-1] if isinstance(v, tuple) else v) for k, v in parsed.query.items()}
    unknown = sorted(set(query) - _PYSQLITE_ARGS - _SQLITE_URI_ARGS)
    if unknown:
        raise UsageError(
            f"unknown SQLite URL parameter(s) {', '.join(unknown)} in {mask_url(original)!r} "
            f"(SQLite's: {', '.join(sorted(_SQLITE_URI_ARGS))})"
        )
    if query.get("mode") not in (None, "ro", "rw", "rwc"):
        raise UsageError(f"SQLite URL parameter mode={query['mode']} is not supported here (use ro, rw or rwc)")
    read_only = query.get("mode") == "ro" or str(query.get("immutable", "")).lower() in _TRUE
    if set(query) & _SQLITE_URI_ARGS and str(query.get("uri", "")).lower() not in _TRUE:
        database = parsed.database or ""
        if not database or database == ":memory:":
            raise UsageError(f"SQLite URL parameters {', '.join(sorted(query))} need a database file")
        parsed = parsed.set(database=f"file:{database}").update_query_dict({"uri": "true"})
        driver_url = parsed.render_as_string(hide_password=False)
    return driver_url, read_only


def _check_mongo_url(url: str) -> str | None:
    """The database named in a MongoDB URL (None if none); UsageError if pymongo cannot parse it."""
    try:
        from pymongo.errors import ConfigurationError, InvalidURI
        from pymongo.uri_parser import parse_uri
    except ImportError:
        raise UsageError("MongoDB needs pymongo: pip install 'agno-migrate[mongo]'") from None
    try:
        parsed = parse_uri(url)
    except (InvalidURI, ValueError, ConfigurationError) as exc:
        if isinstance(exc, ConfigurationError) and url.startswith("mongodb+srv://"):  # hosts from DNS: a name
            from agno_migrate.errors import ConnectFailed  # that does not resolve

            raise ConnectFailed(f"cannot resolve {mask_url(url)}: {exc.__class__.__name__}") from None
        reason = mask_url(str(exc).splitlines()[0][:120]) if str(exc) else exc.__class__.__name__
        raise UsageError(f"malformed database URL {mask_url(url)!r}: {reason}") from None
    return parsed.get("database")


def _url_database(driver_url: str | None) -> str | None:
    if not driver_url:
        return None
    from sqlalchemy.engine import make_url

    return make_url(driver_url).database


def _table_names(tables: Mapping[str, str] | None) -> dict[str, str]:
    """The explicit table names, each a valid identifier, no two families sharing a table."""
    if tables is None:
        return {}
    if not isinstance(tables, Mapping):
        raise UsageError("tables: expected a mapping of Agno table type to table name")
    out: dict[str, str] = {}
    for fam, name in tables.items():
        if not isinstance(fam, str) or not _IDENTIFIER.fullmatch(fam):
            raise UsageError(f"invalid Agno table type {str(fam)[:80]!r}")
        out[fam] = validate_identifier(name, f"{fam} table name")
    taken: dict[str, str] = {}
    for fam, name in out.items():
        if name in taken:
            raise UsageError(f"the {taken[name]} and {fam} tables cannot both be named {name}")
        taken[name] = fam
    return out


def resolve(db: Any, **options: Any) -> Target:
    """A Target from a URL string, an existing Target (returned as is), None (the default URL) or
    an Agno ``Db`` object (``agno.db.sqlite.SqliteDb``, ``PostgresDb``, ``MySQLDb``, ``MongoDb``:
    its connection and every table name it carries, see :mod:`agno_migrate.agno_db`)."""
    if isinstance(db, Target):
        return db
    if db is None or isinstance(db, str):
        return Target.from_url(db, **options)
    from agno_migrate import agno_db

    if agno_db.is_agno_db(db):
        return Target.from_url(**agno_db.target_options(db, options))
    raise UsageError(
        f"expected a database URL, a Target or an Agno Db object (SqliteDb, PostgresDb, MySQLDb, MongoDb), "
        f"not {type(db).__module__}.{type(db).__qualname__}"
    )


__all__ = ["Target", "resolve", "mask_url", "validate_identifier", "DEFAULT_URL"]
