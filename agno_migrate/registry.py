"""THE ordered list of schema versions of Agno session storage. Single source of truth.

Everything else follows this list: the Alembic revision chain in ``versions/sql`` mirrors it (a test
fails when they disagree), the runner plans from it, the CLI prints it. A version is named by the
schema it describes (Agno's own ``MigrationManager`` numbering), never by its position here.
"""

from __future__ import annotations

from dataclasses import dataclass

from agno_migrate.errors import UnknownVersion

LEGACY_1X = "1.x"
"""The per-mode tables of Agno 1.x: a known state that is detected, never created."""

FAMILIES: tuple[str, ...] = ("sessions", "runs")
"""The table families (one table or collection each, named by the target) that the versions below
change. A new family is a name here and the versions that change it; the flow does not branch on it."""


@dataclass(frozen=True)
class SchemaVersion:
    version: str
    """The schema version, e.g. ``"2.5.0"``."""
    revision: str
    """The Alembic revision id of the script that brings a database to this version."""
    summary: str
    agno_stamp: str | None
    """What Agno writes into ``agno_schema_versions`` for the session table at this version
    (``None``: Agno records nothing at this version)."""
    agno_aliases: tuple[str, ...] = ()
    """Other Agno stamps that mean this version for the session storage."""
    reversible: bool = True
    """Whether a database at this version can be taken back to the version before it."""
    copies_data: bool = False
    """Whether the step moves rows (it then cannot be rendered as SQL text by ``--sql``)."""
    families: tuple[str, ...] = ("sessions",)
    """The table families (see :data:`FAMILIES`) whose tables this version creates or changes."""

    @property
    def key(self) -> tuple[int, ...]:
        return tuple(int(part) for part in self.version.split("."))


VERSIONS: tuple[SchemaVersion, ...] = (
    SchemaVersion(
        version="2.0.0",
        revision="v2_0_0",
        summary="unified sessions table: one row per session, runs in a JSON column",
        agno_stamp=None,
        agno_aliases=("2.0.0",),
        reversible=False,
        families=("sessions",),
    ),
    SchemaVersion(
        version="2.3.0",
        revision="v2_3_0",
        summary="agno_schema_versions table; JSONB columns on PostgreSQL; native documents on MongoDB",
        agno_stamp="2.3.0",
        families=("sessions",),
    ),
    SchemaVersion(
        version="2.5.0",
        revision="v2_5_0",
        summary="primary key on session_id instead of a unique constraint (PostgreSQL, MySQL)",
        agno_stamp="2.5.0",
        agno_aliases=("2.5.6",),
        families=("sessions",),
    ),
    SchemaVersion(
        version="3.0.0",
        revision="v3_0_0",
        summary="runs split into the runs table (one row per run); legacy runs column kept",
        agno_stamp="3.0.0",
        reversible=False,
        copies_data=True,
        families=("runs",),  # the sessions table is read, not changed: its runs column is kept
    ),
    SchemaVersion(
        version="3.0.1",
        revision="v3_0_1",
        summary="binary (exact) collation for id columns on MySQL/MariaDB; no change elsewhere",
        agno_stamp="3.0.0",  # Agno's stamp for the session storage stays 3.0.0
        families=("sessions", "runs"),
    ),
)

HEAD: SchemaVersion = VERSIONS[-1]
BASE: SchemaVersion = VERSIONS[0]


def changing(family: str) -> list[SchemaVersion]:
    """The versions, oldest first, that create or change the tables of ``family``."""
    if family not in FAMILIES:
        raise UnknownVersion(f"unknown table family {family!r} (known: {', '.join(FAMILIES)})")
    return [v for v in VERSIONS if family in v.families]


@dataclass(frozen=True)
class TableStep:
    """What one Agno migration changes in one of the other Agno table types (memories, evals,
    metrics, ...: ``agno_migrate.tables.FAMILIES``). Those tables are not versioned by our record: each
    is detected physically (``tables.detect``) at the point its layout is at, and the steps after that
    point run on it (``versions/tables`` on SQL, ``migrate/mongo/tables`` on MongoDB). A step that
    changes nothing on a backend (JSONB outside PostgreSQL) is a no-op there."""

    point: str
    """Agno's migration (``agno_schema_versions`` numbering) that makes the change."""
    family: str
    summary: str
    data_only: bool = False
    """The step changes rows, not the layout: detection cannot see whether it ran, Agno's stamp of
    the table can (it runs while that stamp is missing or older than ``point``)."""

    @property
    def key(self) -> tuple[int, ...]:
        return tuple(int(part) for part in self.point.split("."))


TABLE_STEPS: tuple[TableStep, ...] = (
    TableStep(
        "2.3.0",
        "memories",
        "created_at (filled from updated_at), feedback, index on created_at; JSONB memory and topics on PostgreSQL",
    ),
    TableStep("2.3.0", "evals", "JSONB eval_data and eval_input on PostgreSQL"),
    TableStep("2.3.0", "metrics", "JSONB token_metrics and model_metrics on PostgreSQL"),
    TableStep("2.3.0", "knowledge", "JSONB metadata on PostgreSQL"),
    TableStep("2.5.6", "approvals", "run_status and its index"),
    TableStep("3.0.0", "evals", "user_id and its index"),
    TableStep("3.0.0", "knowledge", "user_id and its indexes (user_id; user_id, linked_to)"),
    TableStep(
        "3.0.0",
        "metrics",
        "user_id (existing rows: ''), unique (user_id, date, aggregation_period) "
        "instead of (date, aggregation_period), index on user_id",
    ),
    TableStep("3.0.0", "components", "user_id and its index"),
    TableStep("3.0.0", "schedule_runs", "user_id and its index"),
    TableStep(
        "3.0.0",
        "schedules",
        "user_id, provenance columns (managed_by, target_*, created_by_*, "
        "updated_by_*, disabled_reason), their indexes, names unique per user",
    ),
    TableStep(
        "3.0.0", "learnings", "entity memories of namespace user re-keyed per user (content only)", data_only=True
    ),
)
"""Agno's changes to the other table types, oldest first."""

AGNO_TABLE_STAMP = "3.0.0"
"""What Agno 3.1.10's MigrationManager stamps a table type it walks with once it is at head."""

AGNO_WALKS: tuple[str, ...] = (
    "memories",
    "metrics",
    "evals",
    "knowledge",
    "approvals",
    "components",
    "schedules",
    "products",
    "sources",
    "projects",
    "tasks",
    "schedule_runs",
    "learnings",
)
"""The other table types Agno 3.1.10's MigrationManager walks (and stamps) besides sessions."""


def table_steps(family: str, after: str | None) -> list[TableStep]:
    """The steps, oldest first, that a table of ``family`` at point ``after`` still needs."""
    start = tuple(int(part) for part in after.split(".")) if after else (0,)
    return [s for s in TABLE_STEPS if s.family == family and s.key > start]


def get(version: str) -> SchemaVersion:
    """The registry entry of ``version`` ("head" and "base" are accepted). Raises UnknownVersion."""
    if version == "head":
        return HEAD
    if version == "base":
        return BASE
    for entry in VERSIONS:
        if entry.version == version:
            return entry
    known = ", ".join(v.version for v in VERSIONS)
    raise UnknownVersion(f"unknown schema version {version!r} (known: {known}, head, base)")


def is_known(version: str) -> bool:
    return any(entry.version == version for entry in VERSIONS)


def from_agno_stamp(stamp: str | None) -> SchemaVersion | None:
    """The oldest registry version an Agno ``agno_schema_versions`` stamp stands for, or None if
    unknown. Several versions may share a stamp (3.0.0 and 3.0.1): see :func:`meant_by_agno_stamp`."""
    meant = meant_by_agno_stamp(stamp)
    return meant[0] if meant else None


def meant_by_agno_stamp(stamp: str | None) -> list[SchemaVersion]:
    """Every registry version, oldest first, that an Agno stamp is compatible with (Agno stamps its
    own schema numbering; our versions that change nothing Agno sees keep the stamp before them)."""
    if stamp is None:
        return []
    return [entry for entry in VERSIONS if stamp == entry.agno_stamp or stamp in entry.agno_aliases]


def newest_agno_stamp_key() -> tuple[int, ...]:
    """The newest Agno stamp this registry knows, as a comparable key (3.0.0 while head is 3.0.1)."""
    stamps = {s for v in VERSIONS for s in (v.agno_stamp, *v.agno_aliases) if s is not None}
    return max(tuple(int(part) for part in s.split(".")) for s in stamps)


def steps_up(current: str | None, target: str) -> list[SchemaVersion]:
    """The versions to apply, in order, to go from ``current`` (None: nothing yet) up to ``target``."""
    goal = get(target)
    start = get(current).key if current is not None else (0,)
    return [v for v in VERSIONS if start < v.key <= goal.key]


def steps_down(current: str, target: str) -> list[SchemaVersion]:
    """The versions to undo, newest first, to go from ``current`` down to ``target``."""
    start, goal = get(current), get(target)
    return [v for v in reversed(VERSIONS) if goal.key < v.key <= start.key]


def previous(version: str) -> SchemaVersion | None:
    """The version before ``version`` in the lineage, or None for the base."""
    entry = get(version)
    older = [v for v in VERSIONS if v.key < entry.key]
    return older[-1] if older else None
