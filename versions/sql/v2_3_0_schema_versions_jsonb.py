"""2.3.0 — Agno's ``agno_schema_versions`` table; JSONB columns on PostgreSQL.

SQLite and MySQL sessions tables are unchanged. On PostgreSQL each JSON column still of type
``json`` becomes ``jsonb`` (columns already converted are left alone, so a half-done run finishes).
The version table is shared with Agno's other tables: it is created if missing and never dropped.

Revision ID: v2_3_0
Revises: v2_0_0
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "v2_3_0"
down_revision = "v2_0_0"
branch_labels = None
depends_on = None

JSON_COLUMNS = ("session_data", "agent_data", "team_data", "workflow_data", "metadata", "runs", "summary")


def _string(dialect, length):
    return sa.String(length) if dialect == "mysql" else sa.String()


def _json_columns_of_type(type_name):
    """The sessions-table JSON columns whose current type is ``type_name`` (offline: all of them)."""
    ctx = op.get_context()
    t = ctx.opts["agno_target"]
    if ctx.as_sql:
        return list(JSON_COLUMNS)
    columns = sa.inspect(op.get_bind()).get_columns(t.session_table, schema=t.schema)
    return [
        c["name"] for c in columns if c["name"] in JSON_COLUMNS and type(c["type"]).__name__.upper() == type_name
    ]


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
    versions = t.agno_versions_table
    if not _exists(versions, schema):
        op.create_table(
            versions,
            sa.Column("table_name", _string(dialect, 128), nullable=False),
            sa.Column("version", _string(dialect, 10), nullable=False),
            sa.Column("created_at", _string(dialect, 128), nullable=False),
            sa.Column("updated_at", _string(dialect, 128)),
            sa.PrimaryKeyConstraint("table_name", name=f"{versions}_pkey" if dialect == "postgresql" else None),
            schema=schema,
        )
        op.create_index(f"idx_{versions}_created_at", versions, ["created_at"], schema=schema)
    elif not ctx.as_sql and f"idx_{versions}_created_at" not in {
        i["name"] for i in sa.inspect(op.get_bind()).get_indexes(versions, schema=schema)
    }:  # MySQL commits each DDL: a run killed between the table and its index resumes here
        op.create_index(f"idx_{versions}_created_at", versions, ["created_at"], schema=schema)
    if dialect == "postgresql":
        for column in _json_columns_of_type("JSON"):
            op.alter_column(
                t.session_table,
                column,
                type_=postgresql.JSONB(),
                postgresql_using=f'"{column}"::jsonb',
                schema=schema,
            )


def downgrade():
    ctx = op.get_context()
    t = ctx.opts["agno_target"]
    if ctx.dialect.name == "postgresql":
        for column in _json_columns_of_type("JSONB"):
            op.alter_column(
                t.session_table, column, type_=sa.JSON(), postgresql_using=f'"{column}"::json', schema=t.schema
            )
