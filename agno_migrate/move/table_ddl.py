"""The other Agno tables created at head in a copy's target: columns, primary key and unique keys of the
family's head layout on the target's backend (``tables.layouts``: ``LAYOUTS[family][backend][-1]``),
each type family made a column type by the target's dialect (``SqlDialect.layout_type``); the
secondary indexes (and the partial unique ones) after the rows are loaded. MongoDB: the head layout's
indexes, the key's unique index first (a resumed load must not duplicate a document).

A family that Agno has no table for on the target's backend (components on MySQL or MongoDB, ...)
is created from its head layout on another backend (PostgreSQL's, else SQLite's): its rows are kept,
though no Agno release reads that table there.
"""

from __future__ import annotations

import sqlalchemy as sa

from agno_migrate.backends import dialect_of
from agno_migrate.tables import family
from agno_migrate.target import Target

FALLBACK_BACKENDS = ("postgresql", "sqlite", "mysql")
"""Where the layout of a family comes from when the target's backend has none, in this order."""

PARTIAL_WHERE = {
    ("schedules", ("name",)): "user_id IS NULL",
    ("schedules", ("user_id", "name")): "user_id IS NOT NULL",
    ("service_accounts", ("name",)): "revoked_at IS NULL",
    ("jobs", ("idempotency_key", "user_id")): "idempotency_key IS NOT NULL",
    ("jobs", ("idempotency_key",)): "idempotency_key IS NOT NULL AND user_id IS NULL",
}
"""The condition of each partial unique index of Agno's layouts (``docs/agno-tables/layouts.json``
holds them; the generated layouts only say "partial")."""


def head_layout(fam: str, backend: str) -> tuple[dict, bool]:
    """(the layout a copy creates ``fam``'s table with on ``backend``, whether it is Agno's own
    there). For MongoDB without a layout: a layout with no index (the key's index is added)."""
    head = family(fam).head(backend)
    if head is not None:
        return head, True
    for other in FALLBACK_BACKENDS:
        found = family(fam).head(other)
        if found is not None:
            if not dialect_of(backend).sql:
                return {"indexes": (), "fields": dict.fromkeys(found["columns"], ())}, False
            return found, False
    raise KeyError(fam)


def canonical_columns(fam: str) -> dict[str, str]:
    """The columns of ``fam``'s head row, name → type family as one backend-neutral word (``json``,
    ``int``, ``varchar``, ``boolean``, ``date``, ``timestamp``): the head layout of the first SQL
    backend that has one, JSONB as JSON, MySQL's TINYINT as boolean, lengths left out."""
    for backend in ("sqlite", "postgresql", "mysql"):
        head = family(fam).head(backend)
        if head is not None:
            return {name: _neutral(kind) for name, (kind, _) in head["columns"].items()}
    raise KeyError(fam)


def _neutral(kind: str) -> str:
    if kind == "jsonb":
        return "json"
    if kind == "tinyint":
        return "boolean"
    return kind.split("(")[0]


def key_columns(fam: str, backend: str) -> tuple[str, ...]:
    """The columns that key a row of ``fam`` (its head layout's primary key; on MongoDB, the SQL one:
    the field of the layout's single-field unique index)."""
    for b in (backend, *FALLBACK_BACKENDS):
        head = family(fam).head(b)
        if head is not None and head.get("primary_key"):
            return tuple(head["primary_key"])
    raise KeyError(fam)


def _named(dialect, name: str | None, table: str) -> str | None:
    return None if name is None else dialect.fit_name(name.replace("{t}", table))


# --- SQL ---------------------------------------------------------------------------------------------


def sql_table(target: Target, fam: str, name: str, layout: dict) -> sa.Table:
    """The SQLAlchemy table of ``layout`` named ``name`` in ``target``: columns, primary key and the
    unique keys that are not partial (those are indexes: :func:`sql_indexes`)."""
    dialect = dialect_of(target)
    keyed = set(layout["primary_key"]) | {c for _, cols, _ in layout["unique"] for c in cols}
    keyed |= {c for _, cols in layout["indexes"] for c in cols}
    # a column MySQL reflects as "json" (its TEXT) that holds text on every other backend is text
    text = {c for c, kind in canonical_columns(fam).items() if kind == "varchar"}
    columns = [
        sa.Column(
            col,
            dialect.free_text() if kind == "json" and col in text else dialect.layout_type(kind, keyed=col in keyed),
            nullable=nullable,
        )
        for col, (kind, nullable) in layout["columns"].items()
    ]
    constraints = [sa.PrimaryKeyConstraint(*layout["primary_key"], name=dialect.key_name(f"{name}_pkey"))]
    constraints += [
        sa.UniqueConstraint(*cols, name=_named(dialect, uname, name))
        for uname, cols, partial in layout["unique"]
        if not partial
    ]
    return sa.Table(name, sa.MetaData(), *columns, *constraints, schema=dialect.schema_of(target))


def sql_indexes(target: Target, fam: str, table: sa.Table, layout: dict) -> list[sa.Index]:
    """The secondary indexes of ``layout`` on ``table``, with Agno's names, and its partial unique
    keys (where the backend has partial indexes: ``PARTIAL_WHERE``)."""
    dialect = dialect_of(target)
    out = [sa.Index(_named(dialect, iname, table.name), *(table.c[c] for c in cols)) for iname, cols in _pairs(layout)]
    for uname, cols, partial in layout["unique"]:
        where = PARTIAL_WHERE.get((fam, tuple(cols)))
        if partial and where is not None and dialect.partial_indexes:
            options = {f"{dialect.name}_where": sa.text(where)}
            name = _named(dialect, uname, table.name) or dialect.fit_name(f"uq_{table.name}_{'_'.join(cols)}")
            out.append(sa.Index(name, *(table.c[c] for c in cols), unique=True, **options))
    return out


def _pairs(layout: dict) -> list[tuple[str, tuple[str, ...]]]:
    return [(name, tuple(cols)) for name, cols in layout["indexes"]]


def create_sql_table(conn, target: Target, fam: str, name: str, layout: dict) -> sa.Table:
    """Create the table (no secondary index yet) unless it exists; the schema too where the
    dialect creates it. Returns the table."""
    dialect = dialect_of(target)
    table = sql_table(target, fam, name, layout)
    if dialect.creates_schema and table.schema:
        conn.execute(sa.text(f"CREATE SCHEMA IF NOT EXISTS {conn.dialect.identifier_preparer.quote(table.schema)}"))
    table.create(conn, checkfirst=True)
    return table


def create_sql_indexes(conn, target: Target, fam: str, table: sa.Table, layout: dict) -> None:
    """Create the indexes of :func:`sql_indexes` that the table lacks (by name)."""
    have = {i["name"] for i in sa.inspect(conn).get_indexes(table.name, schema=table.schema)}
    for index in sql_indexes(target, fam, table, layout):
        if index.name not in have:
            index.create(conn)


# --- MongoDB ----------------------------------------------------------------------------------------


def mongo_indexes(layout: dict, key: tuple[str, ...]) -> tuple[list, list]:
    """(the index of the row key, created before the load; the others, after), as pymongo
    ``IndexModel`` objects with the head layout's names."""
    from pymongo import IndexModel

    first, later = [], []
    for name, spec, unique in layout["indexes"]:
        model = IndexModel([(k, int(v)) for k, v in spec], name=name, **({"unique": True} if unique else {}))
        (first if unique and tuple(k for k, _ in spec) == key else later).append(model)
    if not first:
        first.append(IndexModel([(k, 1) for k in key], name="_".join(f"{k}_1" for k in key), unique=True))
    return first, later
