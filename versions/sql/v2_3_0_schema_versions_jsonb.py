"""2.3.0 — Agno's ``agno_schema_versions`` table; JSONB columns on PostgreSQL.

SQLite and MySQL sessions tables are unchanged. On PostgreSQL each JSON column still of type
``json`` becomes ``jsonb`` (columns already converted are left alone, so a half-done run finishes).
JSONB cannot hold the NUL character nor a lone UTF-16 surrogate, which ``json`` text can (as the
escapes ``\u0000`` and a lone surrogate escape): first, in the rows that have them, NUL escapes are removed
and lone surrogate escapes replaced by ``\ufffd``, each counted and named per session in the report
(the project's rules, ``agno_migrate.storable``); in a database whose encoding is not UTF-8, an
escape of a character it cannot hold keeps its text (``\\u...``), counted likewise. Every other
character of the text is kept. The cast is tried first, in a savepoint: when every row fits (most
databases), nothing is read; when one does not, it is rolled back, the rows are fitted, and cast. Without
that, the cast fails and the database could never leave 2.0.0.
The version table is shared with Agno's other tables: it is created if missing and never dropped.

Revision ID: v2_3_0
Revises: v2_0_0
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from agno_migrate.storable import cast_as_is, fit_for_jsonb, may_not_fit_jsonb, server_holds

revision = "v2_3_0"
down_revision = "v2_0_0"
branch_labels = None
depends_on = None

NUL_BATCH = 500  # rows holding a NUL or surrogate escape, read and rewritten together
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
    return [c["name"] for c in columns if c["name"] in JSON_COLUMNS and type(c["type"]).__name__.upper() == type_name]


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
        columns = _json_columns_of_type("JSON")
        if not columns:
            return
        if ctx.as_sql:
            _alter_types(t.session_table, schema, columns, "JSONB")
        elif not cast_as_is(op.get_bind(), lambda: _alter_types(t.session_table, schema, columns, "JSONB")):
            _remove_nul_escapes(t, schema, columns, ctx.opts["agno_report"])
            _alter_types(t.session_table, schema, columns, "JSONB")


def _alter_types(table, schema, columns, type_name):
    """Change the type of ``columns`` in one ALTER TABLE: PostgreSQL rewrites the table once, where
    one ALTER per column would rewrite it once per column."""
    if not columns:
        return
    quote = op.get_context().dialect.identifier_preparer.quote
    name = f"{quote(schema)}.{quote(table)}" if schema else quote(table)
    clauses = ", ".join(
        f"ALTER COLUMN {quote(c)} TYPE {type_name} USING {quote(c)}::{type_name.lower()}" for c in columns
    )
    op.execute(f"ALTER TABLE {name} {clauses}")


def _remove_nul_escapes(t, schema, columns, report):
    """Make the JSON text of ``columns`` fit JSONB (``storable.fit_for_jsonb``: ``\u0000`` escapes
    removed, lone surrogate escapes replaced by ``\ufffd``), in one pass over the rows that may hold
    any (keyset on session_id, in batches); count them in ``report`` (the upgrade's StepReport:
    ``nul_removed`` and ``surrogates_replaced``, per session and column)."""
    bind = op.get_bind()
    table = sa.table(t.session_table, sa.column("session_id"), *map(sa.column, columns), schema=schema)
    texts = [sa.cast(table.c[column], sa.Text) for column in columns]
    holds = server_holds(bind.execute(sa.text("SHOW server_encoding")).scalar())
    holding = sa.or_(*[may_not_fit_jsonb(text, holds) for text in texts])
    updates = {
        column: sa.update(table)
        .where(table.c.session_id == sa.bindparam("sid"))
        .values({column: sa.cast(sa.bindparam("text", type_=sa.Text), postgresql.JSON)})
        for column in columns
    }
    last = None
    while True:
        query = sa.select(table.c.session_id, *texts).where(holding).order_by(table.c.session_id).limit(NUL_BATCH)
        if last is not None:
            query = query.where(table.c.session_id > last)
        batch = bind.execute(query).all()
        if not batch:
            return
        last = batch[-1][0]
        rewritten = {column: [] for column in columns}
        for session_id, *values in batch:
            for column, value in zip(columns, values, strict=False):
                if value is None:
                    continue
                fitted, nuls, surrogates, escaped = fit_for_jsonb(value, holds)
                if nuls or surrogates or escaped:
                    rewritten[column].append({"sid": session_id, "text": fitted})
                    report.note_jsonb_fit(session_id, column, nuls, surrogates, escaped)
        for column, rows in rewritten.items():
            if rows:
                bind.execute(updates[column], rows)


def downgrade():
    ctx = op.get_context()
    t = ctx.opts["agno_target"]
    if ctx.dialect.name == "postgresql":
        _alter_types(t.session_table, t.schema, _json_columns_of_type("JSONB"), "JSON")
