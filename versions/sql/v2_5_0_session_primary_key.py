"""2.5.0 — a primary key on ``session_id`` replaces the unique constraint (PostgreSQL, MySQL).

SQLite tables always had the primary key: nothing to do there. Each half (add the key, drop the
unique constraint) is skipped when already done, so an interrupted run on MySQL (whose DDL is not
transactional), or online, completes on the next one. Online (``upgrade --online``, PostgreSQL) the
key's index is built ``CONCURRENTLY`` and attached (:func:`_online_keys`).

Revision ID: v2_5_0
Revises: v2_3_0
"""

import sqlalchemy as sa
from alembic import op

revision = "v2_5_0"
down_revision = "v2_3_0"
branch_labels = None
depends_on = None


def _keys():
    """(has a primary key on session_id, has the unique constraint) — offline: (False, True)."""
    ctx = op.get_context()
    t = ctx.opts["agno_target"]
    if ctx.as_sql:
        return False, True
    insp = sa.inspect(op.get_bind())
    pk = insp.get_pk_constraint(t.session_table, schema=t.schema).get("constrained_columns") == ["session_id"]
    uq_name = f"{t.session_table}_uq_session_id"
    names = {u["name"] for u in insp.get_unique_constraints(t.session_table, schema=t.schema)}
    names |= {i["name"] for i in insp.get_indexes(t.session_table, schema=t.schema) if i.get("unique")}
    return pk, uq_name in names


def upgrade():
    ctx = op.get_context()
    t = ctx.opts["agno_target"]
    dialect = ctx.dialect.name
    if dialect == "sqlite":
        return
    has_pk, has_uq = _keys()
    name = t.session_table
    online = ctx.opts.get("agno_online")  # migrate.sql.online.OnlineDDL when the upgrade runs online
    if online is not None:
        _online_keys(online, name, has_pk, has_uq)
        return
    if not has_pk:
        if dialect == "postgresql" and not ctx.as_sql:  # the key's index, left by a killed online run
            quote = ctx.dialect.identifier_preparer.quote
            op.execute(f"DROP INDEX IF EXISTS {quote(t.schema)}.{quote(f'{name}_pkey')}")
        op.create_primary_key(
            f"{name}_pkey" if dialect == "postgresql" else None, name, ["session_id"], schema=t.schema
        )
    if has_uq:
        kind = "unique" if dialect == "postgresql" else "index"
        if kind == "index":
            op.drop_index(f"{name}_uq_session_id", table_name=name, schema=t.schema)
        else:
            op.drop_constraint(f"{name}_uq_session_id", name, type_="unique", schema=t.schema)


def _online_keys(online, name, has_pk, has_uq):
    """The same change while the application writes: the key's unique index built ``CONCURRENTLY``
    (an INVALID one left by a killed run rebuilt), then attached as the primary key (``ADD
    CONSTRAINT ... PRIMARY KEY USING INDEX``: no scan, session_id is NOT NULL already), then the
    unique constraint dropped; each statement under the short lock timeout, retried."""
    table, pkey = online.table(name), f"{name}_pkey"
    if not has_pk:
        online.build_index(pkey, name, ["session_id"], unique=True)
        online.execute(
            f"adding the primary key of {table}",
            f"ALTER TABLE {table} ADD CONSTRAINT {online.quote(pkey)} PRIMARY KEY USING INDEX {online.quote(pkey)}",
        )
    if has_uq:
        online.execute(
            f"dropping {name}_uq_session_id",
            f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {online.quote(f'{name}_uq_session_id')}",
        )


def downgrade():
    ctx = op.get_context()
    t = ctx.opts["agno_target"]
    dialect = ctx.dialect.name
    if dialect == "sqlite":
        return
    has_pk, has_uq = _keys() if not ctx.as_sql else (True, False)
    name = t.session_table
    if not has_uq:
        op.create_unique_constraint(f"{name}_uq_session_id", name, ["session_id"], schema=t.schema)
    if has_pk:
        op.drop_constraint(
            f"{name}_pkey" if dialect == "postgresql" else "PRIMARY", name, type_="primary", schema=t.schema
        )
