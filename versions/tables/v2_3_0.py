"""2.3.0 — the other table types: memories gain ``created_at`` and ``feedback``; JSONB on PostgreSQL.

memories: ``created_at`` (BIGINT NOT NULL) is filled from ``updated_at`` (the only time a 2.0 row has;
the time of the upgrade where that is NULL), as Agno's migration does, and indexed; ``feedback`` is added
(TEXT; VARCHAR on SQLite, as Agno declares it). On PostgreSQL the ``json`` columns of memories,
evals, metrics and knowledge become ``jsonb`` (in one ALTER TABLE per table; a ``\u0000`` escape,
which jsonb cannot hold, is removed first and counted, as for sessions); the ``varchar`` columns that
Agno 2.3 declares ``text`` are left as Agno's own migration leaves them (both are head). Agno's
migration does nothing on SQLite and MySQL besides memories.
"""

import time

import sqlalchemy as sa


def memories(t):
    now = int(time.time())
    t.add_column("created_at", sa.BigInteger(), nullable=False, fill=sa.func.coalesce(sa.column("updated_at"), now))
    t.add_column("feedback", sa.String() if t.dialect == "sqlite" else sa.Text())
    t.to_head_types()
    t.create_index(["created_at"])  # after the jsonb rewrite (PostgreSQL), which would build it again


def evals(t):
    t.to_head_types()


def metrics(t):
    t.to_head_types()


def knowledge(t):
    t.to_head_types()


STEPS = {"memories": memories, "evals": evals, "metrics": metrics, "knowledge": knowledge}
