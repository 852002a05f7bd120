"""The detection rules both backends share: how an Agno 1.x table is recognised, and what an Agno
stamp this tool does not know means.

Agno 1.x stored no version anywhere, and its own upgrade only ever added ``team_session_id`` to an
agent table: a 1.x table is told by its columns (a MongoDB collection by its documents' keys).
"""

from __future__ import annotations

from agno_migrate import registry
from agno_migrate.errors import SchemaAhead
from agno_migrate.migrate.model import AgnoTable
from agno_migrate.target import Target

LEGACY_SIGNATURE = {"session_id", "memory", "session_data", "extra_data"}
LEGACY_MODES = ("agent", "team", "workflow", "workflow_v2")
MEMORIES = "memories"
"""The "mode" of an Agno 1.x memory table (Memory v2 ``*MemoryDb``, legacy ``AgentMemory`` ``MemoryDb``):
imported into the memories table, before the session tables (whose blobs may hold the same memories)."""


def legacy_mode(columns: set[str]) -> str | None:
    """The Agno 1.x storage mode a table's columns show, or None: every 1.x table has the
    signature's columns; ``workflow_name`` and ``runs`` mean workflow_v2, else the ``<mode>_id``
    column tells agent, team or workflow."""
    if not LEGACY_SIGNATURE <= columns:
        return None
    if "workflow_name" in columns and "runs" in columns:
        return "workflow_v2"
    for mode in ("agent", "team", "workflow"):
        if f"{mode}_id" in columns:
            return mode
    return None


def legacy_kind(columns) -> str | None:
    """What an Agno 1.x table's columns (a MongoDB document's keys) show: its session mode
    (:func:`legacy_mode`), :data:`MEMORIES` for a memory table, or None."""
    from agno_migrate.convert.memories import memory_table_kind

    columns = set(columns)
    return legacy_mode(columns) or (MEMORIES if memory_table_kind(columns) else None)


AGNO_SESSION_KEYS = ("session_id", "session_type", "created_at")
"""What every Agno session table (2.0 on) has, on every backend: a table named as the session table
that lacks one of them is not Agno's (another application's table), not a damaged Agno table."""


def not_agno(target: Target, names: set[str], noun: str) -> str | None:
    """Why the session table (``noun``: table or collection) whose columns (fields) are ``names`` is
    not an Agno session table, or None when it may be one."""
    missing = [name for name in AGNO_SESSION_KEYS if name not in names]
    if not missing:
        return None
    return (
        f"{target.session_table} is not an Agno session {noun}: it has no {', '.join(missing)} "
        f"(another application's {noun}? name yours with --session-table)"
    )


def unknown_stamp(target: Target, stamp: str) -> str:
    """The drift note for an Agno stamp that is no known version; SchemaAhead if it is newer."""
    if looks_newer(stamp):
        raise SchemaAhead(
            f"Agno stamped {target.session_table} as {stamp}, newer than this agno-migrate knows "
            f"(head {registry.HEAD.version}); upgrade agno-migrate"
        )
    return f"Agno's stamp {stamp!r} is not a known schema version"


def looks_newer(stamp: str) -> bool:
    """Whether an Agno stamp is a version number above every stamp the registry knows."""
    try:
        return tuple(int(p) for p in stamp.split(".")) > registry.newest_agno_stamp_key()
    except ValueError:
        return False


def other_tables(db, schema: str | None, target: Target, backend: str) -> list[AgnoTable]:
    """The Agno tables of ``db`` (a SQLAlchemy connection, or a pymongo Database) beyond the target's
    session, runs and version tables, each with the point its layout is at (``agno_migrate.tables``).
    Agno's own stamp table is left out: it is bookkeeping, not a table of the application. A family
    the target names (``target.tables``) is that table or none (:func:`missing_tables`)."""
    from agno_migrate.tables import FAMILIES, detect_all

    skip = {target.session_table, target.runs_table, target.agno_versions_table, target.version_table}
    out = []
    for fam_name, found in sorted(detect_all(db, schema, target.tables, skip=skip).items()):
        fam = FAMILIES[fam_name]
        if not fam.ours:
            continue
        head = fam.head(backend)
        out.append(
            AgnoTable(
                fam_name,
                found.table,
                found.found_by or "columns",
                found.version,
                head["point"] if head else None,
                found.at_head,
                list(found.drift) if head else [],  # Agno has no such table here: nothing to drift from
                list(found.additions),
                tuple(found.covers),
                found.interrupted,
                list(found.missing),
                elsewhere=head is None,
            )
        )
    return out


def missing_tables(db, schema: str | None, target: Target) -> dict[str, str]:
    """The tables the target names (``target.tables``, family → name) that ``db`` does not hold."""
    if not target.tables:
        return {}
    from agno_migrate.tables import existing_tables

    present = existing_tables(db, schema)
    return {fam: name for fam, name in sorted(target.tables.items()) if name not in present}
