"""Our record of the version a database is at, read alike by the migration flow and the session store.

* SQL: our version table (``Target.version_table``, not ``alembic_version``: the application keeps
  its own Alembic history), one row per version reached; the newest row is the version.
* MongoDB: the document ``{_id: "version", version, ...}`` of our state collection (also named
  ``Target.version_table``; ``migrate.mongo.state`` describes its other documents).

A version this release does not know raises SchemaAhead. SQLAlchemy is imported on use: the MongoDB
store reads its record without it.
"""

from __future__ import annotations

from agno_migrate import __version__, registry
from agno_migrate.backends import dialect_of
from agno_migrate.backends.sql import has_table
from agno_migrate.errors import SchemaAhead
from agno_migrate.target import Target

VERSION_ID = "version"
"""The ``_id`` of the version document in our MongoDB state collection."""


def version_table(target: Target):
    """Our SQL version table of ``target`` (a SQLAlchemy Table, in the target's schema)."""
    import sqlalchemy as sa

    return sa.Table(
        target.version_table,
        sa.MetaData(),
        sa.Column("version", sa.String(32), primary_key=True),
        sa.Column("revision", sa.String(64), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("applied_at", sa.BigInteger(), nullable=False),
        sa.Column("tool_version", sa.String(32)),
        schema=dialect_of(target).schema_of(target),
    )


def recorded_versions(conn, target: Target, probe: bool = False) -> list[str] | None:
    """The versions recorded in our version table, or None when the table does not exist.

    ``probe``: one query, no catalogue lookup; a missing table is detected from the error (the
    connection's transaction is rolled back then) — for the store's once-per-object check.
    """
    import sqlalchemy as sa

    table = version_table(target)
    if not probe:
        if not has_table(conn, target, target.version_table):
            return None
        return [row[0] for row in conn.execute(sa.select(table.c.version))]
    try:
        return [row[0] for row in conn.execute(sa.select(table.c.version))]
    except (sa.exc.ProgrammingError, sa.exc.OperationalError):
        conn.rollback()
        return None


def recorded_version(conn, target: Target, probe: bool = False) -> str | None:
    """The version our SQL version table records (the newest of its rows); None if not managed yet.

    Raises SchemaAhead when a row names a version this release does not know.
    """
    rows = recorded_versions(conn, target, probe)
    if not rows:
        return None
    unknown = [v for v in rows if not registry.is_known(v)]
    if unknown:
        raise _ahead(max(unknown))
    return max(rows, key=lambda v: registry.get(v).key)


def mongo_recorded_version(db, target: Target) -> str | None:
    """The version our MongoDB state collection records (one query); None if the database is not
    managed. Raises SchemaAhead when it names a version this release does not know."""
    doc = db[target.version_table].find_one({"_id": VERSION_ID}, {"version": 1})
    if doc is None or doc.get("version") is None:
        return None
    version = doc.get("version")
    if not registry.is_known(version):
        raise _ahead(version)
    return version


def _ahead(version: str) -> SchemaAhead:
    return SchemaAhead(
        f"the database records schema version {version}, which this agno-migrate ({__version__}) "
        f"does not know (newest known: {registry.HEAD.version}); upgrade agno-migrate"
    )
