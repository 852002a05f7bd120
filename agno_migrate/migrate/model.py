"""The named results the migration flow passes around and returns, for every backend.

``Status``, ``Plan`` (of ``Step``) and ``Outcome`` are what the user commands return (their
``as_dict()`` is the CLI's ``--json``); ``Detection`` and ``LegacyTable`` are what a backend's
detection finds in a database it does not manage; ``State`` and ``LegacyState`` are what the
runner reads from a backend before it plans.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from agno_migrate import registry
from agno_migrate.migrate.report import StepReport
from agno_migrate.registry import SchemaVersion
from agno_migrate.target import Target

Progress = Callable[[int, int], None]
"""Called with (done, total) as a step or an import moves on."""


DEFAULT_DDL_LOCK_TIMEOUT = 2.0
DEFAULT_DDL_RETRIES = 30


@dataclass(frozen=True)
class Online:
    """How an online upgrade (``upgrade --online``) runs its DDL: each statement waits at most
    ``lock_timeout`` seconds for its lock (``--ddl-lock-timeout``), and is tried again after a
    jittered pause, at most ``retries`` times (``--ddl-retries``), before the upgrade gives up."""

    lock_timeout: float = DEFAULT_DDL_LOCK_TIMEOUT
    retries: int = DEFAULT_DDL_RETRIES


@dataclass
class LegacyTable:
    """An Agno 1.x session table (or MongoDB collection): its name, storage mode and row count."""

    name: str
    mode: str
    rows: int


@dataclass
class Detection:
    """What a backend's detection found in a database it does not manage. ``version`` is None for
    an empty database (or only Agno 1.x tables), and for tables that match no version."""

    version: SchemaVersion | None
    candidates: list[SchemaVersion] = field(default_factory=list)
    agno_stamp: str | None = None
    drift: list[str] = field(default_factory=list)
    legacy: list[LegacyTable] = field(default_factory=list)
    has_session_table: bool = False
    damage: list[str] = field(default_factory=list)
    """What makes the tables match no version although they look like ``version``: the upgrade
    refuses them (nothing changed). Every entry is drift as well."""
    creating: bool = False
    """Our mark of a creation of head that was started and not finished: no version yet."""
    not_agno: bool = False
    """The session table is not Agno's at all (``detection.not_agno``): no version, only drift."""
    orphan_runs: str | None = None
    """The runs table exists without the session table: it belongs to another session table (the
    session table it refers to, where known) or was left behind; creating head beside it is refused."""
    repairs: list[str] = field(default_factory=list)
    """Indexes of the version found that the tables lack (one line each): not damage, the upgrade
    creates them once at head (``HeadDiff.missing``)."""
    additions: list[str] = field(default_factory=list)
    """What a user added that Agno does not need (``tables.extra_column``/``extra_index``): kept."""

    def add_damage(self, found: list[str]) -> None:
        """Note what the tables lack or have changed; it is drift too (``current`` and ``check``
        show it, ``upgrade`` refuses it)."""
        self.damage += found
        self.drift += found


@dataclass
class HeadDiff:
    """How the session and runs tables (collections) differ from the head schema, in three kinds."""

    drift: list[str] = field(default_factory=list)
    """What no upgrade changes: a column missing or of another type, a key, a user's column that
    breaks Agno's inserts (``check`` exits 4; an unmanaged database is refused)."""
    missing: list[tuple[str, str]] = field(default_factory=list)
    """(table, index) of head's indexes that are not there: ``upgrade`` creates them."""
    additions: list[str] = field(default_factory=list)
    """A user's columns and indexes Agno does not need: reported, kept, not drift."""

    @property
    def missing_lines(self) -> list[str]:
        return [f"index {index} on {table} is missing" for table, index in self.missing]


@dataclass
class State:
    """Where a database stands before planning: the version our record holds, else (None) what
    detection found in the unmanaged database."""

    recorded: str | None
    found: Detection | None = None


@dataclass
class LegacyState:
    """The Agno 1.x tables of a database, and those whose import has not completed."""

    tables: list[LegacyTable]
    pending: list[LegacyTable]
    unreadable: dict[str, int] = field(default_factory=dict)
    """Table name → its rows that could not be read by the last pass over it: a pending table is
    read again by the next ``upgrade``; a done one had them accepted as lost (``accept_unreadable``)."""


@dataclass
class AgnoTable:
    """One of the database's other Agno tables (memories, evals, metrics, knowledge, ...): how it was
    found and the point its layout is at (``agno_migrate.tables``). ``current`` and ``check`` report
    them; ``upgrade`` runs the ``steps`` each still needs."""

    family: str
    name: str
    found_by: str
    """``explicit``, ``default name`` or ``columns`` (recognised by its fingerprint)."""
    version: str | None
    """The Agno schema point of its layout; None when it matches none (drift)."""
    head: str | None
    """The newest point of its family on this backend."""
    at_head: bool
    drift: list[str] = field(default_factory=list)
    additions: list[str] = field(default_factory=list)
    covers: tuple[str, ...] = ()
    """Every point at which a table has this layout (no Agno migration changed it in between)."""
    interrupted: bool = False
    """Part-way from ``version``'s layout to head: an upgrade cut short, finished by the next."""
    missing: list[str] = field(default_factory=list)
    """MongoDB: indexes its layout has that the collection lacks (restored without them): the
    upgrade creates head's (``check`` fails meanwhile, naming them and the command)."""
    elsewhere: bool = False
    """Agno has no table of this family on this backend (e.g. approvals on MongoDB): a table of it here
    holds another backend's layout (``agno-migrate copy`` keeps such rows so nothing is lost); Agno does
    not use it, so it is neither drift nor behind, and the upgrade leaves it as it is."""

    @property
    def behind(self) -> bool:
        return self.version is not None and not self.at_head and not self.missing

    @property
    def steps(self) -> list:
        """The ``registry.TableStep``s this table still needs (none when drifted)."""
        if self.version is None:
            return []
        return registry.table_steps(self.family, max(self.covers or (self.version,), key=_key))

    def as_dict(self) -> dict:
        return {
            "family": self.family,
            "name": self.name,
            "found_by": self.found_by,
            "version": self.version,
            "head": self.head,
            "at_head": self.at_head,
            "drift": self.drift,
            "additions": self.additions,
            "interrupted": self.interrupted,
            "missing_indexes": self.missing,
            "elsewhere": self.elsewhere,
        }


def _key(point: str) -> tuple[int, ...]:
    return tuple(int(part) for part in point.split("."))


@dataclass
class TableUpgrade:
    """One other Agno table brought to its family's head by an upgrade (or planned to be): the
    point it was at, the Agno migrations applied to it (``registry.TABLE_STEPS``), and whether Agno's
    stamp for it was written (so that Agno's MigrationManager finds nothing to do)."""

    family: str
    name: str
    before: str | None
    after: str | None
    steps: list[str] = field(default_factory=list)
    """The points of the steps applied (or to apply), oldest first."""
    stamped: bool = False
    repaired: list[str] = field(default_factory=list)
    """The indexes created because the table lacked them (``AgnoTable.missing``)."""

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class Status:
    """Where a database stands. ``version`` is the recorded version, or the detected one when the
    database is not managed yet (``managed`` False); None for an empty database."""

    target: Target
    version: str | None
    managed: bool
    agno_stamp: str | None = None
    drift: list[str] = field(default_factory=list)
    legacy: list[LegacyTable] = field(default_factory=list)
    legacy_pending: list[str] = field(default_factory=list)
    legacy_unreadable: dict[str, int] = field(default_factory=dict)
    """Agno 1.x table → rows not imported because they could not be read: still pending (``check``
    fails, ``upgrade`` reads them again) unless their loss was accepted (``accept_unreadable``)."""
    tables: list[AgnoTable] = field(default_factory=list)
    """The other Agno tables found beside the session and runs tables."""
    not_agno: bool = False
    """A table named as the session table exists but is not Agno's (``drift`` says why)."""
    missing_tables: dict[str, str] = field(default_factory=dict)
    """Tables named explicitly (``Target.tables``: ``--table``, an Agno Db object) that do not exist,
    family → name. Not an error: Agno creates a table at head when it first needs it."""
    additions: list[str] = field(default_factory=list)
    """A user's columns and indexes on the session and runs tables that Agno does not need: kept."""
    repairs: list[str] = field(default_factory=list)
    """Head's indexes the session and runs tables lack (known at head, or when not managed yet):
    ``upgrade`` creates them, ``check`` fails until then."""

    @property
    def head(self) -> str:
        return registry.HEAD.version

    @property
    def at_head(self) -> bool:
        return self.version == registry.HEAD.version

    def as_dict(self) -> dict:
        return {
            "database": self.target.masked_url,
            "session_table": self.target.session_table,
            "version": self.version,
            "head": self.head,
            "at_head": self.at_head,
            "managed": self.managed,
            "agno_stamp": self.agno_stamp,
            "drift": self.drift,
            "not_agno": self.not_agno,
            "legacy_tables": [
                {
                    "name": t.name,
                    "mode": t.mode,
                    "rows": t.rows,
                    "imported": t.name not in self.legacy_pending,
                    "unreadable": self.legacy_unreadable.get(t.name, 0),
                }
                for t in self.legacy
            ],
            "agno_tables": [t.as_dict() for t in self.tables],
            "missing_agno_tables": dict(self.missing_tables),
            "additions": self.additions,
            "missing_indexes": self.repairs,
        }


@dataclass
class Step:
    """One version to apply (``direction`` "upgrade") or undo ("downgrade")."""

    version: str
    direction: str
    summary: str
    copies_data: bool = False

    @classmethod
    def of(cls, version: SchemaVersion, direction: str) -> Step:
        return cls(version.version, direction, version.summary, version.copies_data)


@dataclass
class Plan:
    """What an upgrade would do: create head, or record the detected version (``adopt``) and run
    the steps from ``current`` to ``goal``."""

    target: Target
    current: str | None
    goal: str
    steps: list[Step]
    create_head: bool = False
    adopt: str | None = None
    drift: list[str] = field(default_factory=list)
    legacy: list[LegacyTable] = field(default_factory=list)
    """Agno 1.x tables the upgrade would import (only when going to head)."""
    tables: list[TableUpgrade] = field(default_factory=list)
    """The other Agno tables the upgrade would bring to head, with their steps (only to head)."""
    repairs: list[str] = field(default_factory=list)
    """Head's indexes the session and runs tables lack, that the upgrade would create (to head)."""

    def as_dict(self) -> dict:
        return {
            "database": self.target.masked_url,
            "legacy_tables": [{"name": t.name, "mode": t.mode, "rows": t.rows} for t in self.legacy],
            "current": self.current,
            "target": self.goal,
            "create_head": self.create_head,
            "adopt": self.adopt,
            "drift": self.drift,
            "steps": [s.__dict__ for s in self.steps],
            "agno_tables": [t.as_dict() for t in self.tables],
            "missing_indexes": self.repairs,
        }


@dataclass
class Outcome:
    """What an upgrade, downgrade or stamp did."""

    target: Target
    before: str | None
    after: str | None
    applied: list[str] = field(default_factory=list)
    created: bool = False
    adopted: str | None = None
    drift: list[str] = field(default_factory=list)
    report: StepReport = field(default_factory=StepReport)
    sql: str | None = None
    tables: list[TableUpgrade] = field(default_factory=list)
    """The other Agno tables this upgrade changed or stamped."""
    repaired: list[str] = field(default_factory=list)
    """``table.index`` of head's indexes the session and runs tables lacked, created at head."""
    additions: list[str] = field(default_factory=list)
    """A user's columns and indexes on the session and runs tables, kept (``Status.additions``)."""

    def as_dict(self) -> dict:
        report = {
            k: v.as_dict() if hasattr(v, "as_dict") else len(v) if isinstance(v, list) else v
            for k, v in self.report.items()
        }
        return {
            "database": self.target.masked_url,
            "before": self.before,
            "after": self.after,
            "applied": self.applied,
            "created": self.created,
            "adopted": self.adopted,
            "drift": self.drift,
            "report": report,
            "agno_tables": [t.as_dict() for t in self.tables],
            "repaired_indexes": self.repaired,
            "additions": self.additions,
        }
