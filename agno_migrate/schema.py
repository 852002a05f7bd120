"""The head schema (3.0.1): SQLAlchemy Core tables for the session storage, per dialect.

Used to create a fresh database directly at head, by the session store, and by the schema checks.
Revisions never import this module (revisions are history: the head changes, they must not): they
carry their own DDL, and a test checks that replaying them gives the same physical schema as this one.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from agno_migrate.backends import dialect_of
from agno_migrate.target import Target

JSON_COLUMNS = ("session_data", "agent_data", "team_data", "workflow_data", "metadata", "summary")
"""The JSON columns of the head session table (3.x has no ``runs`` column)."""
LEGACY_RUNS_COLUMN = "runs"
JSON_COLUMNS_2X = (
    "session_data",
    "agent_data",
    "team_data",
    "workflow_data",
    "metadata",
    LEGACY_RUNS_COLUMN,
    "summary",
)
"""The JSON columns of the 2.x session table (with ``runs``, which 3.0.0 moved to a table of its own)."""
SESSION_COLUMNS = (
    *("session_id", "session_type", "agent_id", "team_id", "workflow_id", "user_id"),
    *JSON_COLUMNS,
    *("created_at", "updated_at"),
)
"""The columns of the head session table, in order (on MongoDB: the fields of a session document)."""


@dataclass
class HeadTables:
    metadata: sa.MetaData
    sessions: sa.Table
    runs: sa.Table
    agno_versions: sa.Table


def head_tables(target: Target) -> HeadTables:
    """The head tables of ``target`` (names and schema from the target), in its dialect's types
    (``backends.sql_dialect.SqlDialect``: JSON, string and id types, key and index names)."""
    dialect = dialect_of(target)
    md = sa.MetaData()
    schema = dialect.schema_of(target)
    s = target.session_table
    r = target.runs_table
    v = target.agno_versions_table
    string = dialect.string
    sessions = sa.Table(
        s,
        md,
        sa.Column("session_id", dialect.id_type(), nullable=False),
        sa.Column("session_type", string(20), nullable=False),
        sa.Column("agent_id", dialect.id_type()),
        sa.Column("team_id", dialect.id_type()),
        sa.Column("workflow_id", dialect.id_type()),
        sa.Column("user_id", dialect.id_type()),
        *[sa.Column(name, dialect.json_type()) for name in JSON_COLUMNS[:5]],
        sa.Column("summary", dialect.json_type()),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger()),
        sa.PrimaryKeyConstraint("session_id", name=dialect.key_name(f"{s}_pkey")),
        sa.Index(f"idx_{s}_session_type", "session_type"),
        sa.Index(f"idx_{s}_created_at", "created_at"),
        schema=schema,
    )
    fk_target = f"{schema}.{s}.session_id" if schema else f"{s}.session_id"
    runs = sa.Table(
        r,
        md,
        sa.Column("run_id", dialect.id_type(), nullable=False),
        sa.Column("session_id", dialect.id_type(), nullable=False),
        sa.Column("run_type", string(20), nullable=False),
        sa.Column("agent_id", dialect.id_type()),
        sa.Column("team_id", dialect.id_type()),
        sa.Column("workflow_id", dialect.id_type()),
        sa.Column("user_id", dialect.id_type()),
        sa.Column("parent_run_id", dialect.id_type()),
        sa.Column("status", string(50)),
        sa.Column("run_index", sa.BigInteger()),
        sa.Column("run_data", dialect.json_type(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger()),
        sa.PrimaryKeyConstraint("run_id", name=dialect.key_name(f"{r}_pkey")),
        sa.ForeignKeyConstraint(
            ["session_id"],
            [fk_target],
            ondelete="CASCADE",
            name=dialect.key_name(f"{r}_session_id_fkey"),
        ),
        *[
            sa.Index(f"idx_{r}_{col}", col)
            for col in (
                "run_type",
                "agent_id",
                "team_id",
                "workflow_id",
                "user_id",
                "status",
                "created_at",
                "session_id",
            )
        ],
        sa.Index(dialect.run_position_index(r), "session_id", "run_index"),
        schema=schema,
    )
    agno_versions = sa.Table(
        v,
        md,
        sa.Column("table_name", string(128), nullable=False),
        sa.Column("version", string(10), nullable=False),
        sa.Column("created_at", string(128), nullable=False),
        sa.Column("updated_at", string(128)),
        sa.PrimaryKeyConstraint("table_name", name=dialect.key_name(f"{v}_pkey")),
        sa.Index(f"idx_{v}_created_at", "created_at"),
        schema=schema,
    )
    return HeadTables(md, sessions, runs, agno_versions)


# --- the memories table (Agno's ``agno_memories``), created at head where the Agno 1.x import needs it ---

MEMORIES_TABLE = "agno_memories"
"""The default name Agno gives the memories table (``MemoryDb(memory_table=...)``)."""
MEMORY_COLUMNS = (
    *("memory_id", "memory", "input", "agent_id", "team_id", "user_id", "topics", "feedback"),
    *("created_at", "updated_at"),
)
"""The columns of the head memories table, in Agno 3.1.10's order (on MongoDB: a memory document's fields)."""
MEMORY_JSON_COLUMNS = ("memory", "topics")


def memories_table(target: Target, name: str = MEMORIES_TABLE, metadata: sa.MetaData | None = None) -> sa.Table:
    """The memories table at head (Agno point 2.3.0, stamped 3.0.0), as Agno 3.1.10 creates it on
    ``target``'s dialect (``agno/db/<backend>/schemas.py`` ``USER_MEMORY_TABLE_SCHEMA``): ``memory`` and
    ``topics`` JSON (JSONB on PostgreSQL), ids VARCHAR (128 on MySQL), ``input``/``feedback`` free text,
    times BIGINT; indexes on user_id, created_at and updated_at."""
    dialect = dialect_of(target)
    ident = dialect.string(128)
    return sa.Table(
        name,
        metadata if metadata is not None else sa.MetaData(),
        sa.Column("memory_id", ident, nullable=False),
        sa.Column("memory", dialect.json_type(), nullable=False),
        sa.Column("input", dialect.free_text()),
        sa.Column("agent_id", dialect.string(128)),
        sa.Column("team_id", dialect.string(128)),
        sa.Column("user_id", dialect.string(128)),
        sa.Column("topics", dialect.json_type()),
        sa.Column("feedback", dialect.free_text()),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger()),
        sa.PrimaryKeyConstraint("memory_id", name=dialect.key_name(f"{name}_pkey")),
        *[sa.Index(f"idx_{name}_{column}", column) for column in ("user_id", "created_at", "updated_at")],
        schema=dialect.schema_of(target),
    )


# --- MongoDB: collections and their indexes (as Agno's MongoDb creates them) ----------------------

MongoIndex = tuple[tuple[str, ...], bool]
"""(the indexed fields in order, unique?) — named as MongoDB names them (``field_1[_field_1]``)."""

MONGO_SESSION_INDEXES: tuple[MongoIndex, ...] = (
    (("session_id",), True),
    *[
        ((name,), False)
        for name in ("user_id", "session_type", "agent_id", "team_id", "workflow_id", "created_at", "updated_at")
    ],
)
MONGO_RUN_INDEXES: tuple[MongoIndex, ...] = (
    (("run_id",), True),
    *[
        ((name,), False)
        for name in (
            "session_id",
            "run_type",
            "agent_id",
            "team_id",
            "workflow_id",
            "user_id",
            "parent_run_id",
            "status",
            "created_at",
            "updated_at",
        )
    ],
    (("session_id", "run_index"), False),
)


MONGO_MEMORY_INDEXES: tuple[MongoIndex, ...] = (
    (("memory_id",), True),
    *[
        ((name,), False)
        for name in ("user_id", "agent_id", "team_id", "topics", "input", "feedback", "created_at", "updated_at")
    ],
)
"""The memories collection's indexes, as Agno 3.1.10's MongoDb creates them (``MEMORY_COLLECTION_SCHEMA``)."""


def mongo_head_indexes(target: Target) -> dict[str, tuple[MongoIndex, ...]]:
    """The head collections of ``target`` and their indexes."""
    return {target.session_table: MONGO_SESSION_INDEXES, target.runs_table: MONGO_RUN_INDEXES}


def mongo_index_name(fields: tuple[str, ...]) -> str:
    return "_".join(f"{name}_1" for name in fields)
