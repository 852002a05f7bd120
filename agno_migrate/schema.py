"""The head schema (3.0.1): SQLAlchemy Core tables for the session storage, per dialect.

Used to create a fresh database directly at head, by the session store, and by the schema checks.
Revisions never import this module (DESIGN rule 2): they carry their own DDL, and a test checks
that replaying them gives the same physical schema as this one.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from agno_migrate.target import Target

JSON_COLUMNS = ("session_data", "agent_data", "team_data", "workflow_data", "metadata", "summary")
"""The JSON columns of the head session table (3.x has no ``runs`` column)."""
LEGACY_RUNS_COLUMN = "runs"
MYSQL_ID_COLLATION = "utf8mb4_bin"
"""The collation of the id columns on MySQL/MariaDB (3.0.1): ids compare bytewise, as on SQLite and
PostgreSQL, instead of case- and emoji-blind under the server's default (utf8mb4_general_ci)."""


def _string(dialect: str, length: int):
    """VARCHAR without length where the dialect allows it (as Agno), sized on MySQL."""
    return sa.String(length) if dialect == "mysql" else sa.String()


def _id(dialect: str):
    """An id column (sessions, runs, users, agents, ...): exact comparison on every dialect."""
    return sa.String(128, collation=MYSQL_ID_COLLATION) if dialect == "mysql" else sa.String()


def _json(dialect: str):
    return postgresql.JSONB() if dialect == "postgresql" else sa.JSON()


@dataclass
class HeadTables:
    metadata: sa.MetaData
    sessions: sa.Table
    runs: sa.Table
    agno_versions: sa.Table


def head_tables(target: Target, dialect: str | None = None) -> HeadTables:
    """The head tables of ``target`` (names and schema from the target) for ``dialect``."""
    dialect = dialect or target.backend
    md = sa.MetaData()
    schema = target.schema if dialect != "sqlite" else None
    s = target.session_table
    r = target.runs_table
    v = target.agno_versions_table
    pk_name = f"{s}_pkey" if dialect == "postgresql" else None
    sessions = sa.Table(
        s,
        md,
        sa.Column("session_id", _id(dialect), nullable=False),
        sa.Column("session_type", _string(dialect, 20), nullable=False),
        sa.Column("agent_id", _id(dialect)),
        sa.Column("team_id", _id(dialect)),
        sa.Column("workflow_id", _id(dialect)),
        sa.Column("user_id", _id(dialect)),
        *[sa.Column(name, _json(dialect)) for name in JSON_COLUMNS[:5]],
        sa.Column("summary", _json(dialect)),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger()),
        sa.PrimaryKeyConstraint("session_id", name=pk_name),
        sa.Index(f"idx_{s}_session_type", "session_type"),
        sa.Index(f"idx_{s}_created_at", "created_at"),
        schema=schema,
    )
    fk_target = f"{schema}.{s}.session_id" if schema else f"{s}.session_id"
    composite = f"{r}_runs_session_id_run_index" if dialect == "mysql" else f"idx_{r}_session_id_run_index"
    runs = sa.Table(
        r,
        md,
        sa.Column("run_id", _id(dialect), nullable=False),
        sa.Column("session_id", _id(dialect), nullable=False),
        sa.Column("run_type", _string(dialect, 20), nullable=False),
        sa.Column("agent_id", _id(dialect)),
        sa.Column("team_id", _id(dialect)),
        sa.Column("workflow_id", _id(dialect)),
        sa.Column("user_id", _id(dialect)),
        sa.Column("parent_run_id", _id(dialect)),
        sa.Column("status", _string(dialect, 50)),
        sa.Column("run_index", sa.BigInteger()),
        sa.Column("run_data", _json(dialect), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger()),
        sa.PrimaryKeyConstraint("run_id", name=f"{r}_pkey" if dialect == "postgresql" else None),
        sa.ForeignKeyConstraint(
            ["session_id"],
            [fk_target],
            ondelete="CASCADE",
            name=f"{r}_session_id_fkey" if dialect == "postgresql" else None,
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
        sa.Index(composite, "session_id", "run_index"),
        schema=schema,
    )
    agno_versions = sa.Table(
        v,
        md,
        sa.Column("table_name", _string(dialect, 128), nullable=False),
        sa.Column("version", _string(dialect, 10), nullable=False),
        sa.Column("created_at", _string(dialect, 128), nullable=False),
        sa.Column("updated_at", _string(dialect, 128)),
        sa.PrimaryKeyConstraint("table_name", name=f"{v}_pkey" if dialect == "postgresql" else None),
        sa.Index(f"idx_{v}_created_at", "created_at"),
        schema=schema,
    )
    return HeadTables(md, sessions, runs, agno_versions)


# --- MongoDB: collections and their indexes (LINEAGE §2.4, §5.4) ----------------------------------

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


def mongo_head_indexes(target: Target) -> dict[str, tuple[MongoIndex, ...]]:
    """The head collections of ``target`` and their indexes."""
    return {target.session_table: MONGO_SESSION_INDEXES, target.runs_table: MONGO_RUN_INDEXES}


def mongo_index_name(fields: tuple[str, ...]) -> str:
    return "_".join(f"{name}_1" for name in fields)
