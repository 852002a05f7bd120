"""Alembic wiring for the SQL backends: configuration in code, connection injection, our own
version table and Agno's ``agno_schema_versions`` stamps.

We use Alembic's script directory (the revision chain in ``versions/sql``), its migration context
and its operations, but not its ``alembic_version`` table: users keep their own Alembic history in
the same database. Our version table (``Target.version_table``) holds one row per version reached.
"""

from __future__ import annotations

import datetime
import io
import sys
import time
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from agno_migrate import __version__, registry
from agno_migrate.backends import dialect_of

# our version table: defined and read below both this package and the store (re-exported here)
from agno_migrate.backends.records import recorded_version, recorded_versions, version_table  # noqa: F401
from agno_migrate.backends.sql import has_table
from agno_migrate.registry import SchemaVersion
from agno_migrate.target import Target


def versions_dir() -> Path:
    """Where the Alembic revision scripts are: inside the installed package, or the repository's
    top-level ``versions/sql`` when running from a source checkout."""
    from agno_migrate.migrate import versions_root

    return versions_root() / "sql"


_PYGMENTS_PLUGIN = "mako.ext.pygmentplugin"


def load_alembic() -> None:
    """Import Alembic (once per process) without mako's pygments plugin: Alembic imports mako for its
    script templates, and mako's error pages import pygments' lexers when pygments is installed, some 0.1 s
    of every run's start-up for pages this tool never renders; mako does without it (plain error pages).
    Call before the first ``from alembic ... import``."""
    if "alembic" in sys.modules or _PYGMENTS_PLUGIN in sys.modules:
        return
    sys.modules[_PYGMENTS_PLUGIN] = None  # its import raises ImportError: mako installs its fallback
    try:
        import alembic  # noqa: F401
    finally:
        del sys.modules[_PYGMENTS_PLUGIN]  # importable again by whoever wants it


@lru_cache(maxsize=1)
def script_directory():
    """Alembic's view of the revision scripts (loaded once per process)."""
    load_alembic()
    from alembic.script import ScriptDirectory

    directory = str(versions_dir())
    return ScriptDirectory(directory, version_locations=[directory])


def revision_chain() -> list[str]:
    """The revision ids from base to head, as Alembic's ``down_revision`` links order them."""
    return [rev.revision for rev in reversed(list(script_directory().walk_revisions()))]


def migration_context(target: Target, conn=None, *, output: io.StringIO | None = None, **extra: Any):
    """An Alembic MigrationContext on ``conn`` (online), or rendering SQL into ``output`` (offline).

    The target rides in the context's options, where revisions read their table names from.
    """
    load_alembic()
    from alembic.runtime.migration import MigrationContext

    opts: dict[str, Any] = {"agno_target": target, **extra}
    if conn is not None:
        return MigrationContext.configure(connection=conn, opts=opts)
    opts.update(as_sql=True, output_buffer=output, literal_binds=True)
    return MigrationContext.configure(dialect_name=dialect_of(target).name, opts=opts)


def run_script(ctx, version: SchemaVersion, direction: str) -> None:
    """Run the ``upgrade`` or ``downgrade`` function of ``version``'s revision in ``ctx``."""
    from alembic.operations import Operations

    script = script_directory().get_revision(version.revision)
    with Operations.context(ctx):
        getattr(script.module, direction)()


def execute(ctx, statement) -> None:
    """Execute (online) or render (offline) a SQLAlchemy statement through the context."""
    from alembic.operations import Operations

    with Operations.context(ctx) as op:
        op.execute(statement)


# --- our version table -------------------------------------------------------------------------


def registry_mismatches(chain: list[str]) -> list[str]:
    """How a revision chain (base to head) disagrees with the registry; empty when they agree."""
    expected = [v.revision for v in registry.VERSIONS]
    problems = []
    for position, (want, got) in enumerate(zip(expected, chain, strict=False)):
        if want != got:
            problems.append(f"position {position}: registry has {want}, the revision chain has {got}")
    if len(chain) != len(expected):
        problems.append(f"the registry has {len(expected)} versions, the revision chain {len(chain)} revisions")
    return problems


def table_exists(ctx, target: Target, name: str) -> bool:
    """Whether table ``name`` exists: asked of the database online; offline, taken from the tables
    the database had when the SQL was rendered (``existing_tables`` in the context options)."""
    if ctx.as_sql:
        return name in ctx.opts.get("existing_tables", ())
    return has_table(ctx.connection, target, name)


def ensure_schema(ctx, target: Target) -> None:
    """On PostgreSQL, create the target's schema when it is missing. Only then: ``CREATE SCHEMA IF
    NOT EXISTS`` needs CREATE on the database even when the schema exists, which the schema's owner
    (who can do everything the upgrade does) often does not have. Offline, ``IF NOT EXISTS``."""
    from sqlalchemy import inspect
    from sqlalchemy.schema import CreateSchema

    if not dialect_of(target).creates_schema:
        return
    if not ctx.as_sql and inspect(ctx.connection).has_schema(target.schema):
        return
    execute(ctx, CreateSchema(target.schema, if_not_exists=True))


def ensure_version_table(ctx, target: Target) -> None:
    """Create our version table (and on PostgreSQL its schema) if missing."""
    from sqlalchemy.schema import CreateTable

    if table_exists(ctx, target, target.version_table):
        return
    ensure_schema(ctx, target)
    execute(ctx, CreateTable(version_table(target)))


def record(ctx, target: Target, version: SchemaVersion, action: str) -> None:
    """Record that the database reached ``version`` (in the caller's transaction).

    A plain insert: the version is the key, so a step that somehow ran twice fails loudly
    instead of being recorded twice. Online, a version already recorded is left as it is only
    for downgrades (``action="downgrade"``), whose target row usually exists already.
    """
    table = version_table(target)
    if action == "downgrade" and not ctx.as_sql:
        exists = ctx.connection.execute(sa.select(table.c.version).where(table.c.version == version.version))
        if exists.first() is not None:
            return
    execute(
        ctx,
        table.insert().values(
            version=version.version,
            revision=version.revision,
            action=action,
            applied_at=int(time.time()),
            tool_version=__version__,
        ),
    )


CREATING = "creating"  # head's row while head is created without transactional DDL (see migrate/backend/sql.py)


def creation_pending(conn, target: Target) -> bool:
    """Whether a creation of head was started and not finished (killed between MySQL's DDL commits)."""
    table = version_table(target)
    return conn.execute(sa.select(table.c.version).where(table.c.action == CREATING)).first() is not None


def creation_done(ctx, target: Target) -> None:
    table = version_table(target)
    execute(ctx, table.update().where(table.c.action == CREATING).values(action="create", applied_at=int(time.time())))


def unrecord(ctx, target: Target, version: SchemaVersion) -> None:
    table = version_table(target)
    execute(ctx, table.delete().where(table.c.version == version.version))


# --- Agno's agno_schema_versions -----------------------------------------------------------------


def agno_versions_table(target: Target) -> sa.Table:
    return sa.table(
        target.agno_versions_table,
        *[sa.column(name, sa.String()) for name in ("table_name", "version", "created_at", "updated_at")],
        schema=dialect_of(target).schema_of(target),
    )


def agno_stamp(conn, target: Target, table_name: str | None = None) -> str | None:
    """Agno's recorded version for the session table (or ``table_name``); None if none."""
    if not has_table(conn, target, target.agno_versions_table):
        return None
    table = agno_versions_table(target)
    query = sa.select(table.c.version).where(table.c.table_name == (table_name or target.session_table))
    return conn.execute(query).scalar()


def write_agno_stamps(ctx, target: Target, version: SchemaVersion) -> None:
    """Make Agno's stamps agree with ``version``: the session table (and the runs table from 3.0.0)
    carry its Agno stamp; a stamp that already means this version (2.5.6 for 2.5.0) is kept, and so
    is one already equal to it (3.0.0 for 3.0.1, whose stamp is Agno's 3.0.0)."""
    wanted = {target.session_table: version.agno_stamp}
    wanted[target.runs_table] = version.agno_stamp if version.key >= (3, 0, 0) else None
    online = not ctx.as_sql
    if online and not has_table(ctx.connection, target, target.agno_versions_table):
        return  # nothing to agree with before 2.3.0 created it
    table = agno_versions_table(target)
    now = datetime.datetime.now().isoformat()
    for table_name, stamp in wanted.items():
        where = table.c.table_name == table_name
        if not online:  # rendered SQL cannot look: replace whatever row is there
            execute(ctx, table.delete().where(where))
            if stamp is not None:
                execute(
                    ctx, table.insert().values(table_name=table_name, version=stamp, created_at=now, updated_at=now)
                )
            continue
        current = ctx.connection.execute(sa.select(table.c.version).where(where)).scalar()
        if stamp is None:
            if current is not None:
                execute(ctx, table.delete().where(where))
        elif current is None:
            execute(ctx, table.insert().values(table_name=table_name, version=stamp, created_at=now, updated_at=now))
        elif current != stamp and current not in version.agno_aliases:
            execute(ctx, table.update().where(where).values(version=stamp, updated_at=now))


def write_table_stamps(conn, target: Target, names: list[str], stamp: str = registry.AGNO_TABLE_STAMP) -> None:
    """Stamp each table of ``names`` (the other Agno tables, at head) as Agno's MigrationManager does
    once it has walked them (``registry.AGNO_TABLE_STAMP``), in the caller's transaction."""
    ctx = migration_context(target, conn)
    for name in names:
        stamp_table(ctx, target, name, stamp)


def stamp_table(ctx, target: Target, table_name: str, stamp: str) -> None:
    """Agno's stamp of one table (``table_name`` → ``stamp``) in ``agno_schema_versions``: inserted when
    missing, updated when different, in the caller's transaction (rendered: the row replaced). What
    Agno's ``upsert_schema_version`` writes when it creates a table, so that its MigrationManager finds
    nothing to do for it. Nothing where Agno's versions table does not exist (online)."""
    online = not ctx.as_sql
    if online and not has_table(ctx.connection, target, target.agno_versions_table):
        return
    table = agno_versions_table(target)
    where = table.c.table_name == table_name
    now = datetime.datetime.now().isoformat()
    current = ctx.connection.execute(sa.select(table.c.version).where(where)).scalar() if online else None
    if not online:
        execute(ctx, table.delete().where(where))
    if current is None:
        execute(ctx, table.insert().values(table_name=table_name, version=stamp, created_at=now, updated_at=now))
    elif current != stamp:
        execute(ctx, table.update().where(where).values(version=stamp, updated_at=now))


def render_offline(target: Target, body: Callable[[Any], None], **opts: Any) -> str:
    """Run ``body(ctx)`` against an offline context and return the SQL it rendered."""
    output = io.StringIO()
    ctx = migration_context(target, output=output, **opts)
    body(ctx)
    return output.getvalue()
