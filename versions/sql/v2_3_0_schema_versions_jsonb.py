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
    online = ctx.opts.get("agno_online")  # migrate.sql.online.OnlineDDL when the upgrade runs online
    if online is not None:
        online.transaction(f"creating {t.agno_versions_table}", lambda: _versions_table(ctx, t, dialect, schema))
    else:
        _versions_table(ctx, t, dialect, schema)
    if dialect == "postgresql":
        columns = _json_columns_of_type("JSON")
        if online is not None:
            _online_jsonb(online, t, schema, columns, ctx.opts["agno_report"])
            return
        if not columns:
            return
        if ctx.as_sql:
            _alter_types(t.session_table, schema, columns, "JSONB")
            return
        _drop_shadows(t, schema)
        if not cast_as_is(op.get_bind(), lambda: _alter_types(t.session_table, schema, columns, "JSONB")):
            _remove_nul_escapes(t, schema, columns, ctx.opts["agno_report"])
            _alter_types(t.session_table, schema, columns, "JSONB")


def _versions_table(ctx, t, dialect, schema):
    """Agno's version table and its index, each created when missing."""
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
    holds = _holds(bind)
    holding = sa.or_(*[may_not_fit_jsonb(text, holds) for text in texts])
    updates = {column: _set_text(table, column, postgresql.JSON) for column in columns}
    last = None
    while True:
        query = sa.select(table.c.session_id, *texts).where(holding).order_by(table.c.session_id).limit(NUL_BATCH)
        if last is not None:
            query = query.where(table.c.session_id > last)
        batch = bind.execute(query).all()
        if not batch:
            return
        last = batch[-1][0]
        _write_fitted(bind, batch, columns, updates, holds, report, changed_only=True)


def _holds(bind):
    return server_holds(bind.execute(sa.text("SHOW server_encoding")).scalar())


def _set_text(table, column, type_):
    """UPDATE of one row's ``column`` (by session_id ``sid``) to the JSON text ``text`` cast to ``type_``."""
    return (
        sa.update(table)
        .where(table.c.session_id == sa.bindparam("sid"))
        .values({column: sa.cast(sa.bindparam("text", type_=sa.Text), type_)})
    )


def _write_fitted(bind, rows, columns, updates, holds, report, changed_only):
    """The one per-row rule of this step: each value of ``rows`` ((session_id, text of each of
    ``columns``)) made to fit JSONB (``storable.fit_for_jsonb``), what changed counted in ``report``,
    and written by ``updates[column]`` (only the values it changed, with ``changed_only``)."""
    rewritten = {column: [] for column in columns}
    for session_id, *values in rows:
        for column, value in zip(columns, values, strict=False):
            if value is None:
                continue
            fitted, nuls, surrogates, escaped = fit_for_jsonb(value, holds)
            if nuls or surrogates or escaped:
                report.note_jsonb_fit(session_id, column, nuls, surrogates, escaped)
            elif changed_only:
                continue
            rewritten[column].append({"sid": session_id, "text": fitted})
    for column, batch in rewritten.items():
        if batch:
            bind.execute(updates[column], batch)


# --- online (upgrade --online): shadow jsonb columns kept in sync by a trigger, backfilled, swapped ---

SHADOW = "{}_jsonb_new"
TRIGGER = "agno_migrate_jsonb"
BACKFILL_BATCH = 1000


def _sync_function(t):
    return f"{t.session_table}_agno_jsonb"


def _online_jsonb(online, t, schema, columns, report):
    """The JSON columns become JSONB while the application writes: a shadow column ``<col>_jsonb_new
    jsonb`` per column, a trigger casting each inserted or changed value into it (a value JSONB cannot
    hold leaves it NULL), a backfill in keyset batches (each its own short transaction) under the same
    per-row rule as the offline step (:func:`_write_fitted`), then, in one short transaction holding
    the table's lock, the rows the trigger could not cast fitted, the old columns dropped, the shadows
    renamed, the trigger dropped. Every DDL under the short lock timeout, retried (``online``)."""
    if not columns:  # done, or swapped by an earlier run killed before its record
        return
    bind, q, name = online.conn, online.quote, online.table(t.session_table)
    shadows = [SHADOW.format(c) for c in columns]
    function = online.table(_sync_function(t))
    online.execute(
        f"adding shadow columns to {name}",
        f"ALTER TABLE {name} " + ", ".join(f"ADD COLUMN IF NOT EXISTS {q(s)} jsonb" for s in shadows),
    )
    body = " ".join(
        f"IF TG_OP = 'INSERT' OR NEW.{q(c)}::text IS DISTINCT FROM OLD.{q(c)}::text THEN "
        f"BEGIN NEW.{q(s)} := NEW.{q(c)}::jsonb; EXCEPTION WHEN others THEN NEW.{q(s)} := NULL; END; END IF;"
        for c, s in zip(columns, shadows, strict=True)
    )
    online.execute(
        f"creating the sync trigger on {name}",
        f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql "
        f"AS $$ BEGIN {body} RETURN NEW; END $$",
        f"DROP TRIGGER IF EXISTS {TRIGGER} ON {name}",
        f"CREATE TRIGGER {TRIGGER} BEFORE INSERT OR UPDATE ON {name} FOR EACH ROW EXECUTE FUNCTION {function}()",
    )
    table = sa.table(t.session_table, *map(sa.column, ("session_id", *columns, *shadows)), schema=schema)
    texts = [sa.cast(table.c[c], sa.Text) for c in columns]
    holds = _holds(bind)
    bind.commit()
    unfit = sa.func.coalesce(sa.or_(*[may_not_fit_jsonb(text, holds) for text in texts]), False)
    updates = {c: _set_text(table, s, postgresql.JSONB) for c, s in zip(columns, shadows, strict=True)}

    def fit(where):  # rows of ``where`` that may not fit, locked, through the per-row rule
        rows = bind.execute(sa.select(table.c.session_id, *texts).where(where).with_for_update()).all()
        _write_fitted(bind, rows, columns, updates, holds, report, changed_only=False)

    for after, upto in online.keys(t.session_table, "session_id", BACKFILL_BATCH):
        in_batch = table.c.session_id <= upto
        if after is not None:
            in_batch = sa.and_(table.c.session_id > after, in_batch)
        values = {s: sa.cast(table.c[c], postgresql.JSONB) for c, s in zip(columns, shadows, strict=True)}
        bind.execute(sa.update(table).where(in_batch, sa.not_(unfit)).values(values))
        fit(sa.and_(in_batch, unfit))
        bind.commit()
    missed = sa.or_(
        *[sa.and_(table.c[c].isnot(None), table.c[s].is_(None)) for c, s in zip(columns, shadows, strict=True)]
    )
    fit(missed)  # values JSONB could not hold written since the backfill passed them
    bind.commit()

    def swap():
        bind.exec_driver_sql(f"LOCK TABLE {name} IN ACCESS EXCLUSIVE MODE")
        fit(missed)  # and those written since the line above
        bind.exec_driver_sql(f"ALTER TABLE {name} " + ", ".join(f"DROP COLUMN {q(c)}" for c in columns))
        for c, s in zip(columns, shadows, strict=True):
            bind.exec_driver_sql(f"ALTER TABLE {name} RENAME COLUMN {q(s)} TO {q(c)}")
        bind.exec_driver_sql(f"DROP TRIGGER {TRIGGER} ON {name}")
        bind.exec_driver_sql(f"DROP FUNCTION {function}()")

    online.transaction(f"swapping the jsonb columns of {name}", swap)


def _drop_shadows(t, schema):
    """What an online run of this step killed before its swap left (shadow columns, the trigger):
    dropped, so that the offline step converts the columns themselves."""
    bind = op.get_bind()
    names = {c["name"] for c in sa.inspect(bind).get_columns(t.session_table, schema=schema)}
    shadows = [SHADOW.format(c) for c in JSON_COLUMNS if SHADOW.format(c) in names]
    if not shadows:
        return
    quote = op.get_context().dialect.identifier_preparer.quote
    name = f"{quote(schema)}.{quote(t.session_table)}"
    op.execute(f"DROP TRIGGER IF EXISTS {TRIGGER} ON {name}")
    op.execute(f"DROP FUNCTION IF EXISTS {quote(schema)}.{quote(_sync_function(t))}()")
    op.execute(f"ALTER TABLE {name} " + ", ".join(f"DROP COLUMN {quote(s)}" for s in shadows))


def downgrade():
    ctx = op.get_context()
    t = ctx.opts["agno_target"]
    if ctx.dialect.name == "postgresql":
        _alter_types(t.session_table, t.schema, _json_columns_of_type("JSONB"), "JSON")
