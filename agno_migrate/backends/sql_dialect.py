"""What every SQL dialect answers, with the answers most of them share: ``sqlite.py``,
``postgresql.py`` and ``mysql.py`` override what is theirs.

The facts are grouped by who asks: the engine (``backends.sql``), the migration lock
(``migrate.sql.locks``), the head schema (``schema.py``), detection (``migrate.sql.detect``), the
session store (``store.sql``, ``store.driver``); what the Agno 1.x import (``migrate.legacy``) asks
is in ``dialect.Dialect``. Importing these modules loads no database driver, nor SQLAlchemy (the
import's worker processes ask a dialect without it).
"""

from __future__ import annotations

import contextlib

from agno_migrate.backends.dialect import Dialect
from agno_migrate.errors import AgnoMigrateError, LockTimeout
from agno_migrate.registry import SchemaVersion
from agno_migrate.target import Target


class SqlDialect(Dialect):
    sql = True

    # --- the engine (backends.sql) ---------------------------------------------------------------

    readonly_autocommit: bool = True
    """Read-only connections run in autocommit: reads need no BEGIN/COMMIT round trips. (False on
    SQLite: a read-only connection starts a plain deferred transaction there.)"""

    read_only_session: str | None = None
    """The statement that makes a connection's transactions read-only (``agno-migrate copy`` reads
    its source so); None where the connection is read-only by its URL (SQLite ``mode=ro``)."""

    unflushed_commit: str | None = None
    """The statement that lets the current transaction commit without waiting for its log to reach the disk
    (PostgreSQL: ``SET LOCAL synchronous_commit TO off``): ``copy``'s batches, each with its checkpoint.
    Its last commit waits, and with it every earlier one (the log is written in order); a server crash may
    lose the last batches, each with its checkpoint, and the copy resumes before them."""

    def begin_batch(self, conn) -> None:
        """Begin a copy batch's transaction on ``conn``: its commit unflushed (:attr:`unflushed_commit`), its
        large values compressed the fastest way (:meth:`compress_fast`)."""
        if self.unflushed_commit:
            conn.exec_driver_sql(self.unflushed_commit)
        self.compress_fast(conn)

    def compress_fast(self, conn) -> None:
        """Make the current transaction on ``conn`` compress the large values it stores the fastest way
        (:meth:`fast_compression`): a migration step's, a table's upgrade, a copy batch."""
        statement = self.fast_compression(conn)
        if statement:
            conn.exec_driver_sql(statement)

    def fast_compression(self, conn) -> str | None:
        """The statement that makes the current transaction compress the large values it writes with the
        fastest method the server has, where the server's own choice is only its built-in default; None
        where there is nothing faster (or the operator chose): :meth:`compress_fast` sends it."""
        return None

    def create_engine(self, target: Target):
        """A new SQLAlchemy engine for ``target`` (connects lazily; loads the driver)."""
        from sqlalchemy import create_engine

        engine = create_engine(target.driver_url, **self.engine_options(target))
        self.prepare_engine(engine)
        return engine

    def engine_options(self, target: Target) -> dict:
        """``create_engine`` keyword arguments. No ``pool_pre_ping``: it costs a round trip per call;
        a connection the server dropped fails one call, is discarded with the pool, and the next call
        reconnects. JSON is read with orjson where it gives what ``json.loads`` gives."""
        from agno_migrate.jsoncodec import loads

        return {"pool_recycle": 1800, "connect_args": {"connect_timeout": 10}, "json_deserializer": loads}

    def privilege_denied(self, exc: BaseException) -> bool:
        """Whether the driver error ``exc`` says the connected role lacks a privilege."""
        return False

    def unrepresentable_text(self, exc: BaseException) -> bool:
        """Whether ``exc`` says text has no equivalent in the database's (or column's) character set."""
        return False

    # --- the online upgrade (migrate.sql.online) ------------------------------------------------

    def lock_not_available(self, exc: BaseException) -> bool:
        """Whether ``exc`` says a statement gave up waiting for a lock (its lock timeout expired)."""
        return False

    def lock_timeout_sql(self, seconds: float | None, local: bool = True) -> str:
        """The statement that bounds each lock wait to ``seconds`` (None: back to the server's
        default), for the current transaction only (``local``) or for the session."""
        raise NotImplementedError

    def prepare_engine(self, engine) -> None:
        """Set up a new engine (event listeners on its connections); nothing by default."""

    def explain_failure(self, target: Target, exc: BaseException, message: str) -> AgnoMigrateError | None:
        """A clearer error than "database error" for a driver failure this dialect recognises (a
        missing database, a file SQLite cannot open): what is wrong and what to do, with its exit
        code. None: not recognised. ``message`` is the driver's line, already masked."""
        return None

    def missing_file(self, target: Target) -> bool:
        """Whether the target is a database file that does not exist (only SQLite has files)."""
        return False

    # --- the migration lock (migrate.sql.locks) --------------------------------------------------

    def migration_lock(self, conn, target: Target) -> contextlib.AbstractContextManager[None]:
        """Hold the migration lock of ``target`` on ``conn`` for the duration of the block; raises
        LockTimeout when another holder keeps it past ``target.lock_timeout`` seconds."""
        raise NotImplementedError

    # --- the head schema (schema.py) -------------------------------------------------------------

    id_collation: str | None = None
    """The collation the head gives id columns (None: the database compares strings exactly already)."""
    max_name_length: int | None = None
    """The longest name of an index or a key the server accepts (None: no limit that matters)."""
    names_keys: bool = False
    """Primary and foreign keys carry the names Agno gives them (``<table>_pkey``); False: the
    database names them itself (MySQL's ``PRIMARY``) or leaves them unnamed (SQLite)."""

    def string(self, length: int):
        """VARCHAR without length where the dialect allows it (as Agno)."""
        import sqlalchemy as sa

        return sa.String()

    def free_text(self):
        """A text column without a length (Agno's memories ``input``/``feedback``): VARCHAR, as Agno."""
        import sqlalchemy as sa

        return sa.String()

    def id_type(self):
        """An id column (sessions, runs, users, agents, ...): exact comparison on every dialect."""
        import sqlalchemy as sa

        return sa.String()

    def json_type(self):
        import sqlalchemy as sa

        return sa.JSON()

    partial_indexes: bool = True
    """An index may cover only the rows a condition selects (``CREATE INDEX ... WHERE``); False on MySQL."""

    def layout_type(self, family: str, keyed: bool = False):
        """The column type to create for a type family of ``agno_migrate.tables.layouts`` (what
        :meth:`type_family` reads back as that family): ``int`` BIGINT, ``varchar(N)`` VARCHAR(N), ...
        ``keyed``: the column is in a key or an index."""
        import sqlalchemy as sa

        if family.startswith("varchar("):
            return sa.String(int(family[len("varchar(") : -1]))
        types = {
            "int": sa.BigInteger,
            "varchar": sa.String,
            "json": sa.JSON,
            "boolean": sa.Boolean,
            "tinyint": sa.Boolean,
            "date": sa.Date,
            "timestamp": lambda: sa.TIMESTAMP(timezone=True),
        }
        if family == "jsonb":
            return self.json_type()
        return types[family]()

    def fit_name(self, name: str) -> str:
        """``name`` (of an index or a key) as the server can hold it: a name longer than
        :attr:`max_name_length` is cut and given a digest of the whole, so that it stays unique and
        the same on every run (detection matches keys and indexes by their columns, not their names)."""
        import hashlib

        limit = self.max_name_length
        if limit is None or len(name) <= limit:
            return name
        digest = hashlib.sha1(name.encode("utf-8")).hexdigest()[:8]
        return f"{name[: limit - 9]}_{digest}"

    def key_name(self, name: str) -> str | None:
        """The name to give a primary or foreign key (see :attr:`names_keys`)."""
        return name if self.names_keys else None

    def run_position_index(self, runs_table: str) -> str:
        """The name of the runs table's (session_id, run_index) index, as Agno names it."""
        return f"idx_{runs_table}_session_id_run_index"

    # --- detection (migrate.sql.detect) ----------------------------------------------------------

    json_becomes_jsonb: bool = False
    """The 2.3.0 step turns the JSON columns into JSONB (PostgreSQL)."""
    alters_keys: bool = True
    """The 2.5.0 step gives the session table its primary key (False on SQLite, which cannot add a
    key to a table: the step leaves it as it is)."""

    def type_family(self, type_) -> str:
        """A coarse name for a column type that is stable between reflection and declaration."""
        name = type(type_).__name__.upper()
        if name == "JSONB":
            return "jsonb"
        if name == "JSON":
            return "json"
        if name in ("BIGINT", "INTEGER", "BIGINTEGER", "INT"):
            return "int"
        if name in ("VARCHAR", "STRING", "TEXT", "NVARCHAR", "CHAR"):
            length = getattr(type_, "length", None)
            return f"varchar({length})" if length else "varchar"
        return name.lower()

    def pre3_candidates(
        self, json_families: set[str], key: str, has_agno_versions: bool
    ) -> tuple[list[SchemaVersion], list[str]]:
        """The registry versions (up to 2.5.0) a session table physically matches, and drift notes.

        ``json_families``: the type families of its JSON columns; ``key``: how session_id is keyed
        (``pk``, ``uq``, ``both``, ``none``); ``has_agno_versions``: Agno's version table exists."""
        raise NotImplementedError

    # --- the session store (store.sql, store.driver) ---------------------------------------------

    runs_in_row: bool = False
    """A session row read carries its runs, aggregated into one JSON array (:meth:`json_array_of`):
    one statement per read instead of two, and a page's ids chosen once."""
    runs_by_ids: bool = False
    """A page's runs are read by the ids its rows came with, given as one JSON array
    (:meth:`values_of_json_array`), instead of choosing the ids again in the runs statement."""
    returning_in_cte: bool = False
    """A data-modifying statement can be a CTE whose RETURNING rows the statement reads."""
    pipelined: bool = False
    """The store sends each call's statements in one pipeline (``store.pgpipe``), in autocommit mode
    with its transaction spelled out."""
    snapshot_reads: bool = False
    """A store read runs in a transaction of its own (BEGIN ... ROLLBACK): one consistent snapshot."""

    def insert(self, table):
        """The dialect's INSERT construct (with its upsert clause)."""
        raise NotImplementedError

    def upsert(self, table, update: list[str], source=None, guard=None):
        """INSERT ... ON CONFLICT (primary key) DO UPDATE of the ``update`` columns: of bound values,
        or of ``source`` ((column names, SELECT)). With ``guard`` (a column), a stored row is updated
        only when the new row has the same value in it."""
        stmt = self.insert(table) if source is None else self.insert(table).from_select(*source)
        key = sorted(c.name for c in table.primary_key.columns)
        where = None if guard is None else guard == stmt.excluded[guard.name]
        return stmt.on_conflict_do_update(index_elements=key, set_={n: stmt.excluded[n] for n in update}, where=where)

    def session_name(self, data):
        """The expression of ``session_data.session_name`` (text) for the JSON column ``data``."""
        raise NotImplementedError

    def casefold_like(self, text, pattern):
        """``text`` LIKE ``pattern`` (escaped with a backslash), ignoring case."""
        return text.ilike(pattern, escape="\\")

    def json_array_of(self, value, *order_by):
        """The aggregate of ``value`` into one JSON array in ``order_by`` order (see :attr:`runs_in_row`)."""
        raise NotImplementedError

    def values_of_json_array(self, array):
        """A table of the elements of the JSON array ``array``, in column ``value`` (see :attr:`runs_by_ids`)."""
        raise NotImplementedError

    def statement_compiler(self, dialect):
        """The SQLAlchemy dialect to compile the store's statements with (given the engine's)."""
        return dialect

    def named_statements(self, pooled) -> bool:
        """Whether a ``pipelined`` store prepares its statements once on pool entry ``pooled``'s
        connection (named), or sends them unnamed with each call (behind a connection pooler,
        where a server connection outlives the client's and is shared between clients)."""
        return True

    def keeps_connections(self, target: Target) -> bool:
        """Whether the store keeps a connection per thread between its calls on ``target``
        (``backends.kept``) instead of taking one from the pool for each call."""
        return False

    def begin_call(self, pooled, conn, writing: bool) -> None:
        """Start a store call on the driver connection ``conn`` of pool entry ``pooled``; nothing
        by default (the driver begins a transaction with the first statement)."""


def lock_key(target: Target, conn) -> str:
    """The migration lock's name on ``conn``'s server: unique per database, schema and session table."""
    database = conn.engine.url.database or ""
    return f"{database}/{target.lock_name}"


def lock_timeout_error(target: Target) -> LockTimeout:
    return LockTimeout(
        f"another agno-migrate process holds the migration lock on {target.masked_url} "
        f"(table {target.session_table}); gave up after {target.lock_timeout:g}s (--lock-timeout)"
    )
