"""2.0.0 — the unified sessions table (Agno 2.0.0 – 2.2.x).

One row per session, all runs in one JSON column. PostgreSQL: ``json`` columns and a unique
constraint instead of a primary key; MySQL: sized VARCHARs and a unique key; SQLite: a primary key.
Table names and the schema come from the target in the migration context (never literals).

Revision ID: v2_0_0
Revises: (base)
"""

import sqlalchemy as sa
from alembic import op

revision = "v2_0_0"
down_revision = None
branch_labels = None
depends_on = None

JSON_COLUMNS = ("session_data", "agent_data", "team_data", "workflow_data", "metadata", "runs", "summary")


def _string(dialect, length):
    return sa.String(length) if dialect == "mysql" else sa.String()


def _exists(name, schema):
    """Whether the table exists; offline, as the database was when the SQL was rendered."""
    ctx = op.get_context()
    if ctx.as_sql:
        return name in ctx.opts.get("existing_tables", ())
    return sa.inspect(op.get_bind()).has_table(name, schema=schema)


def upgrade():
    ctx = op.get_context()
    t = ctx.opts["agno_target"]
    dialect = ctx.dialect.name
    schema = t.schema if dialect != "sqlite" else None
    name = t.session_table
    if _exists(name, schema):
        return
    if dialect == "postgresql":
        # only when missing: IF NOT EXISTS needs CREATE on the database, which the schema's owner may lack
        if ctx.as_sql or not sa.inspect(op.get_bind()).has_schema(schema):
            op.execute(sa.schema.CreateSchema(schema, if_not_exists=True))
    key = (
        sa.PrimaryKeyConstraint("session_id")
        if dialect == "sqlite"
        else sa.UniqueConstraint("session_id", name=f"{name}_uq_session_id")
    )
    op.create_table(
        name,
        sa.Column("session_id", _string(dialect, 128), nullable=False),
        sa.Column("session_type", _string(dialect, 20), nullable=False),
        sa.Column("agent_id", _string(dialect, 128)),
        sa.Column("team_id", _string(dialect, 128)),
        sa.Column("workflow_id", _string(dialect, 128)),
        sa.Column("user_id", _string(dialect, 128)),
        *[sa.Column(col, sa.JSON()) for col in JSON_COLUMNS],
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger()),
        key,
        schema=schema,
    )
    op.create_index(f"idx_{name}_session_type", name, ["session_type"], schema=schema)
    op.create_index(f"idx_{name}_created_at", name, ["created_at"], schema=schema)


def downgrade():
    raise NotImplementedError("2.0.0 is the base of the lineage: there is nothing below it to go back to")
