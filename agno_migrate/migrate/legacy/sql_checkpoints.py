"""Where the Agno 1.x import of each SQL table stands (one checkpoint row per table, in our own table
next to the version table), and the one rule of a pass over a table, for session and memory tables alike:
a pass that met rows it could not read leaves the table pending, read again from its start by the next
run, until every row is imported or the loss of those still unreadable is accepted."""

from __future__ import annotations

import time

import sqlalchemy as sa

from agno_migrate.backends import dialect_of
from agno_migrate.migrate.model import LegacyTable
from agno_migrate.target import Target


def _schema(target: Target) -> str | None:
    return dialect_of(target).schema_of(target)


def checkpoint_table(target: Target) -> sa.Table:
    """One row per legacy table: where its import stands (our own table, next to the version table)."""
    return sa.Table(
        f"{target.version_table}_legacy",
        sa.MetaData(),
        sa.Column("table_name", sa.String(64), primary_key=True),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("last_session_id", sa.String(255)),
        sa.Column("sessions", sa.BigInteger(), nullable=False, default=0),
        sa.Column("failed", sa.BigInteger(), nullable=False, default=0),
        sa.Column("done", sa.Boolean(), nullable=False, default=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        schema=_schema(target),
    )


def checkpoints(conn, target: Target) -> dict[str, dict]:
    """table name -> its checkpoint row (empty when nothing was imported yet)."""
    table = checkpoint_table(target)
    if not sa.inspect(conn).has_table(table.name, schema=table.schema):
        return {}
    return {row["table_name"]: dict(row) for row in conn.execute(sa.select(table)).mappings()}


def pending(conn, target: Target, tables: list[LegacyTable]) -> tuple[list[LegacyTable], dict[str, int]]:
    """The legacy tables whose import has not completed, and table → rows its last pass could not
    read (``rules.unreadable``)."""
    rows = checkpoints(conn, target)
    done = {name for name, row in rows.items() if row["done"]}
    return [t for t in tables if t.name not in done], unreadable(rows, tables)


def unreadable(rows: dict[str, dict], tables: list[LegacyTable]) -> dict[str, int]:
    """table → rows that could not be read by its last complete pass (done: their loss accepted), of
    the checkpoint ``rows`` of ``tables``."""
    names = {t.name for t in tables}
    return {
        name: int(row["failed"])
        for name, row in rows.items()
        if name in names and row["failed"] and (row["done"] or row["last_session_id"] is None)
    }


def start_pass(conn, cp: sa.Table, legacy: LegacyTable, state: dict | None) -> dict | None:
    """Begin (or resume) a pass over ``legacy``: a new checkpoint row for a table met the first time;
    a table whose last pass ended with unreadable rows is read again from its start (its count of
    unreadable rows restarts). Commits; returns the checkpoint row as it now is."""
    now = int(time.time())
    if state is None:
        conn.execute(
            cp.insert().values(
                table_name=legacy.name, mode=legacy.mode, sessions=0, failed=0, done=False, updated_at=now
            )
        )
    elif state["last_session_id"] is None and state["failed"]:
        conn.execute(cp.update().where(cp.c.table_name == legacy.name).values(failed=0, updated_at=now))
        state = {**state, "failed": 0}
    conn.commit()
    return state


def end_pass(conn, cp: sa.Table, legacy: LegacyTable, accept: set[str]) -> bool:
    """End a pass over ``legacy``: done when none of its rows failed, or when the loss of those that
    did is accepted (``legacy.name`` in ``accept``: their count is kept); else pending, read again
    from its start by the next run. Commits; returns whether the table is done."""
    failed = conn.execute(sa.select(cp.c.failed).where(cp.c.table_name == legacy.name)).scalar()
    done = not failed or legacy.name in accept
    values = {"done": True} if done else {"done": False, "last_session_id": None}
    conn.execute(cp.update().where(cp.c.table_name == legacy.name).values(updated_at=int(time.time()), **values))
    conn.commit()
    return done
