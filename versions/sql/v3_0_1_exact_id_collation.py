"""3.0.1 — id columns compare exactly on MySQL/MariaDB: binary collation ``utf8mb4_bin``.

Created without a collation, the id columns take the database default (``utf8mb4_general_ci`` on
MariaDB), under which ``Abc`` equals ``abc`` and every emoji weighs the same: session ids that
differ only so collide on the primary key, and user ids match the wrong rows. SQLite and
PostgreSQL compare bytewise already: nothing to do there. Agno's stamp stays 3.0.0.

The id columns are every column holding an identifier: the keys (``sessions.session_id``,
``runs.run_id``), the foreign key ``runs.session_id`` (it must keep the collation of the column it
references), ``runs.parent_run_id`` (a run id), and the ids the store filters on (``agent_id``,
``team_id``, ``workflow_id``, ``user_id`` of both tables). Fixed vocabularies written by code
(``session_type``, ``run_type``, ``status``) and Agno's shared ``agno_schema_versions`` keep the
default. Types, lengths and nullability are restated as the database has them (online) or as
v2_0_0 / v3_0_0 created them (offline ``--sql``).

MariaDB refuses to change the collation of a column in a foreign key, even with
``foreign_key_checks=0``: the foreign key from the runs table is dropped, both tables altered (one
``ALTER TABLE`` each), and the foreign key added back. MySQL DDL is not transactional, so each part
is skipped when already done: a run interrupted anywhere completes on the next one.

Downgrade gives the columns back the table default (a ``MODIFY`` without a collation), refusing
before any change when two ids that are distinct now would become one key under it.

Revision ID: v3_0_1
Revises: v3_0_0
"""

import re

import sqlalchemy as sa
from alembic import op

from agno_migrate.errors import Refused

revision = "v3_0_1"
down_revision = "v3_0_0"
branch_labels = None
depends_on = None

CHARSET = "utf8mb4"
COLLATION = "utf8mb4_bin"
# (column, type, nullable) as v2_0_0 and v3_0_0 created them
SESSION_IDS = (
    ("session_id", "varchar(128)", False),
    ("agent_id", "varchar(128)", True),
    ("team_id", "varchar(128)", True),
    ("workflow_id", "varchar(128)", True),
    ("user_id", "varchar(128)", True),
)
RUN_IDS = (
    ("run_id", "varchar(128)", False),
    ("session_id", "varchar(128)", False),
    ("agent_id", "varchar(128)", True),
    ("team_id", "varchar(128)", True),
    ("workflow_id", "varchar(128)", True),
    ("user_id", "varchar(128)", True),
    ("parent_run_id", "varchar(128)", True),
)
_STRING_TYPE = re.compile(r"^(var)?char\(\d+\)$")
_NAME = re.compile(r"^[A-Za-z0-9_]+$")


def _text(value):
    return value.decode("utf-8") if isinstance(value, (bytes, bytearray)) else value


def _columns(t, table):
    """column -> (type, nullable, collation) as the database has them (information_schema)."""
    rows = op.get_bind().execute(
        sa.text(
            "SELECT COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COLLATION_NAME FROM information_schema.COLUMNS "
            "WHERE TABLE_SCHEMA = :schema AND TABLE_NAME = :table"
        ),
        {"schema": t.schema, "table": table},
    )
    return {_text(n): (_text(ty).lower(), _text(nl) == "YES", _text(c) if c else None) for n, ty, nl, c in rows}


def _table_default(t, table):
    """(character set, collation) the table gives a column declared without one."""
    row = (
        op.get_bind()
        .execute(
            sa.text(
                "SELECT c.CHARACTER_SET_NAME, t.TABLE_COLLATION FROM information_schema.TABLES t "
                "JOIN information_schema.COLLATIONS c ON c.COLLATION_NAME = t.TABLE_COLLATION "
                "WHERE t.TABLE_SCHEMA = :schema AND t.TABLE_NAME = :table"
            ),
            {"schema": t.schema, "table": table},
        )
        .first()
    )
    charset, collation = _text(row[0]), _text(row[1])
    if not (_NAME.match(charset) and _NAME.match(collation)):
        raise Refused(f"unexpected default collation {collation!r} of {table}; nothing was changed")
    return charset, collation


def _todo(t, table, ids, done):
    """The (column, type, nullable) of ``ids`` still to alter: online those for which ``done(collation)``
    is false, with the type and nullability the database has; offline all of them, as declared."""
    if op.get_context().as_sql:
        return list(ids)
    have = _columns(t, table)
    todo = []
    for name, _type, _nullable in ids:
        type_, nullable, collation = have[name]
        if not _STRING_TYPE.match(type_):
            raise Refused(f"{table}.{name} is {type_}, not a string column: nothing was changed")
        if not done(collation):
            todo.append((name, type_, nullable))
    return todo


def _session_fks(t):
    """Names of the foreign keys from runs.session_id to the sessions table (offline: InnoDB's name
    for the unnamed one v3_0_0 created)."""
    if op.get_context().as_sql:
        return [f"{t.runs_table}_ibfk_1"]
    fks = sa.inspect(op.get_bind()).get_foreign_keys(t.runs_table, schema=t.schema)
    return [
        fk["name"]
        for fk in fks
        if fk["constrained_columns"] == ["session_id"] and fk["referred_table"] == t.session_table
    ]


def _alter(t, table, columns, collate):
    """One ALTER TABLE restating ``columns`` (name, type, nullable), with ``collate`` or the table default."""
    q = op.get_context().dialect.identifier_preparer.quote
    charset = f" CHARACTER SET {CHARSET} COLLATE {COLLATION}" if collate else ""
    clauses = [
        f"MODIFY {q(name)} {type_}{charset} {'NULL' if nullable else 'NOT NULL'}" for name, type_, nullable in columns
    ]
    op.execute(sa.text(f"ALTER TABLE {q(t.schema)}.{q(table)} {', '.join(clauses)}"))


def _change(t, plan, collate):
    """Drop the foreign key, alter the tables in ``plan`` [(table, columns)], add the foreign key back."""
    plan = [(table, columns) for table, columns in plan if columns]
    fks = _session_fks(t)
    if plan:
        for name in fks:
            op.drop_constraint(name, t.runs_table, type_="foreignkey", schema=t.schema)
        fks = []
        for table, columns in plan:
            _alter(t, table, columns, collate)
    if not fks:  # also when an interrupted run dropped it and stopped before adding it back
        op.create_foreign_key(
            f"{t.runs_table}_ibfk_1",
            t.runs_table,
            t.session_table,
            ["session_id"],
            ["session_id"],
            ondelete="CASCADE",
            source_schema=t.schema,
            referent_schema=t.schema,
        )


def upgrade():
    ctx = op.get_context()
    if ctx.dialect.name != "mysql":
        return
    t = ctx.opts["agno_target"]

    def binary(collation):
        return collation == COLLATION

    plan = [(t.session_table, _todo(t, t.session_table, SESSION_IDS, binary))]
    plan.append((t.runs_table, _todo(t, t.runs_table, RUN_IDS, binary)))
    _change(t, plan, collate=True)


def downgrade():
    ctx = op.get_context()
    if ctx.dialect.name != "mysql":
        return
    t = ctx.opts["agno_target"]
    plan = []
    for table, ids in ((t.session_table, SESSION_IDS), (t.runs_table, RUN_IDS)):
        if ctx.as_sql:
            plan.append((table, list(ids)))
            continue
        charset, default = _table_default(t, table)
        todo = _todo(t, table, ids, lambda collation, default=default: collation == default)
        _refuse_losses(t, table, todo, charset, default)
        plan.append((table, todo))
    _change(t, plan, collate=False)


def _refuse_losses(t, table, columns, charset, collation):
    """Refused (nothing changed yet) when the table default would merge two keys or lose characters."""
    q = op.get_context().dialect.identifier_preparer.quote
    bind = op.get_bind()
    name = f"{q(t.schema)}.{q(table)}"
    key = "session_id" if table == t.session_table else "run_id"  # what a collation change could merge
    for column, _type, _nullable in columns:
        col = q(column)
        folded = f"CONVERT({col} USING {charset})"
        if column == key:
            merged = bind.execute(
                sa.text(
                    f"SELECT COUNT(*) FROM (SELECT 1 FROM {name} GROUP BY {folded} COLLATE {collation} "
                    f"HAVING COUNT(*) > 1) AS twins"
                )
            ).scalar()
            if merged:
                raise Refused(
                    f"cannot downgrade {table} to 3.0.0: {merged} {column} value(s) differ only by case or by "
                    f"characters {collation} does not tell apart, and would collide; nothing was changed"
                )
        if charset != CHARSET:
            lost = bind.execute(
                sa.text(
                    f"SELECT COUNT(*) FROM {name} WHERE CONVERT({folded} USING {CHARSET}) COLLATE {COLLATION} <> {col}"
                )
            ).scalar()
            if lost:
                raise Refused(
                    f"cannot downgrade {table} to 3.0.0: {lost} {column} value(s) do not fit the table's "
                    f"character set {charset}; nothing was changed"
                )
