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
    extra: str = "all"
    """The ``agno-migrate[...]`` extra that installs the driver (named in "driver not installed")."""
    transactional_ddl: bool = True
    """DDL runs inside the step's transaction (SQLite, PostgreSQL); False: every DDL statement
    commits at once (MySQL/MariaDB), so each step must be idempotent."""
    has_schemas: bool = True
    """Tables live in a named schema or database (PostgreSQL schema, MySQL database); False: SQLite."""
    creates_schema: bool = False
    """The upgrade creates the schema when it is missing (PostgreSQL's ``CREATE SCHEMA``)."""
    online_ddl: bool = False
    """``upgrade --online`` applies (PostgreSQL): each DDL statement waits for its table's lock at
    most a short time (``SqlDialect.lock_timeout_sql``) and is retried, indexes are built without
    blocking writes, data is changed in short transactions (``migrate.sql.online``)."""
    write_note: str | None = None
    """What any write leaves behind for good, said by ``upgrade -v`` (SQLite: WAL mode)."""

    # --- what the Agno 1.x import asks (new names only: added for migrate/legacy) ----------------
    embedded: bool = False
    """The database engine runs in this process on one local file (SQLite): another process (an import
    worker) can open that file and read it itself, and the page cache and WAL checkpoints are settings
    (``PRAGMA``) of this connection."""
    text_unchecked: bool = False
    """TEXT may hold bytes that are not UTF-8 (SQLite stores what it is given; reading such a value
    fails the whole fetch, so rows are read again with those values as bytes)."""
    stores_nul: bool = True
    """Text and JSON values can hold the NUL character (PostgreSQL's text and JSONB cannot: the import
    removes and counts them)."""
    json_lone_surrogates: bool = True
    """Text and JSON values can hold a lone UTF-16 surrogate (as the escape ``\\ud83d``): False on
    PostgreSQL (jsonb) and MongoDB (BSON text is UTF-8), where ``storable`` replaces them by U+FFFD."""
    json_unescaped: bool = False
    """JSON is written as UTF-8 text, not ``\\u``-escaped (MariaDB: escaping doubles CJK and triples
    emoji, and can push a large session past the packet limit): ``backends.sql.json_text``."""
    json_max_depth: int | None = None
    """The deepest nesting of objects and arrays a JSON column holds (MariaDB: ``storable.MAX_DEPTH``);
    None: no limit that matters."""
    json_finite_only: bool = False
    """JSON values hold no NaN or ±Infinity (PostgreSQL's jsonb, MariaDB's JSON_VALID): a copy
    stores them as text (``storable.fit_value``)."""
    json_cast_to_text: bool = False
    """A JSON column is read as its text through a CAST by the server (PostgreSQL: the driver would
    parse json/jsonb itself); elsewhere the stored text is read as it is."""
    server_side_cursor: bool = False
    """A large read streams through a server-side cursor (PostgreSQL), rows fetched as they are used."""
    copy_from_stdin: bool = False
    """Bulk inserts go through ``COPY ... FROM STDIN`` (PostgreSQL), rows streamed as they are formatted."""
    parses_json_text: bool = False
    """A JSON column takes JSON text and parses it itself (PostgreSQL's jsonb): a copy passes stored
    text through unparsed where that gives the same value (``move.json_text``)."""

    def utf8_text_bytes(self, conn) -> bool:
        """Whether the import may hand text to ``conn`` as its UTF-8 bytes, stored as that text:
        False unless the dialect says how (SQLite, PostgreSQL)."""
        return False

    def schema_of(self, target) -> str | None:
        """The schema to qualify table names with (None where the dialect has none)."""
        return target.schema if self.has_schemas else None

    def __repr__(self) -> str:
        return f"<dialect {self.name}>"
