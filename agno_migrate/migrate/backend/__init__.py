"""What the migration flow asks of a backend, and the one place that picks the backend of a target.

``migrate.runner`` owns the flow (plan, lock, look again, step, record) for every database; a
backend only knows how to do each of those things on its kind of database, the way Alembic's
``MigrationContext`` drives a dialect's ``impl``. Two implement :class:`Backend`: ``backend.sql``
(SQLite, PostgreSQL, MySQL/MariaDB through SQLAlchemy and Alembic) and ``backend.mongo`` (MongoDB
through pymongo). Each is imported only when a target needs it, so a SQL run never loads pymongo.

They sit above ``migrate.sql``, ``migrate.mongo`` and ``migrate.legacy`` (each backend runs its Agno
1.x import, which is built on the SQL or MongoDB modules), so that no import goes round in a circle.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any, Protocol

from agno_migrate.backends import dialect_of
from agno_migrate.migrate.model import (
    AgnoTable,
    HeadDiff,
    LegacyState,
    LegacyTable,
    Online,
    Plan,
    Progress,
    State,
    TableUpgrade,
)
from agno_migrate.migrate.report import StepReport
from agno_migrate.registry import SchemaVersion
from agno_migrate.target import Target


class Backend(Protocol):
    """One open database of a target, with or without the migration lock.

    Writes go into the backend's current transaction where it has one (SQLite, PostgreSQL, MySQL
    for data): nothing is kept until :meth:`commit`. Where it has none (MongoDB), each write is
    kept at once and ``commit``/``rollback`` do nothing: every step is idempotent instead.
    """

    kind: str
    """What the user calls this kind of database in a message ("SQL database", "MongoDB")."""
    noun: str
    """What a table is called here ("table", "collection")."""
    renders_sql: bool
    """Whether the upgrade can be rendered as SQL text instead of run (``--sql``)."""
    online: Online | None
    """How an online upgrade runs its DDL (``upgrade --online``; set by the runner on a locked
    backend whose dialect has ``online_ddl``), None for an ordinary upgrade."""
    lock_writes: bool
    """Taking the lock writes into the database (MongoDB's lease document): what would refuse a
    command is checked before the lock is taken, so that a refused database is left unchanged."""

    @classmethod
    def reading(cls, target: Target) -> AbstractContextManager[Backend]:
        """The database open for reads only. Raises ConnectFailed; driver errors inside the block
        become DatabaseFailure (or LockTimeout for a busy SQLite writer)."""

    @classmethod
    def locked(cls, target: Target) -> AbstractContextManager[Backend]:
        """The database open with the migration lock held for the whole block. Raises LockTimeout
        after the target's lock timeout, and what :meth:`reading` raises."""

    def read_state(self) -> State:
        """The recorded version, else what detection finds. Raises SchemaAhead."""

    def recorded_version(self) -> str | None:
        """The version our record holds (None: not managed). Raises SchemaAhead."""

    def agno_stamp(self) -> str | None:
        """Agno's own stamp of the session table (None: none)."""

    def legacy_state(self, named: list[str] | None = None) -> LegacyState:
        """The Agno 1.x tables found (or ``named``, each ``NAME[:MODE]``) and those not imported
        yet. Raises UsageError for a named table that is missing or not Agno 1.x."""

    def head_drift(self) -> HeadDiff:
        """How the physical schema differs from head: drift, head's indexes missing, a user's additions."""

    def refuse_unrepairable(self) -> None:
        """Raise Refused (nothing changed) when an index :meth:`repair_indexes` would create cannot be
        built on the rows there (a unique one over duplicates); reads only."""

    def repair_indexes(self, missing: list[tuple[str, str]]) -> list[str]:
        """At head: create head's indexes that the tables lack (``missing``: ``HeadDiff.missing``), and
        commit. Returns ``table.index`` of each one created."""

    def other_tables(self) -> list[AgnoTable]:
        """The other Agno tables found (memories, evals, metrics, knowledge, ...; not the session,
        runs or version tables), each with the point its layout is at, or its drift."""

    def missing_tables(self) -> dict[str, str]:
        """The tables the target names explicitly (``Target.tables``, family → name) that do not
        exist: reported, never looked for under another name."""

    def upgrade_tables(self, tables: list[AgnoTable], report: StepReport) -> list[TableUpgrade]:
        """Bring each of ``tables`` (found by :meth:`other_tables`, none drifted) to its family's head:
        the ``registry.table_steps`` after the point it is at, then Agno's stamp for it (tables at head
        are only stamped where their stamp is missing or older). Each table is committed on its own
        and every step is idempotent: a run killed mid-way finishes on the next. Returns what was done
        to each table it changed or stamped."""

    def create_head(self, resume: bool) -> None:
        """Create the head schema, our record of it and Agno's stamps, and commit. ``resume``
        finishes a creation that was cut short (``Detection.creating``)."""

    def adopt(self, version: SchemaVersion) -> None:
        """Record the detected ``version`` of an unmanaged database (in the current transaction)."""

    def run_step(self, version: SchemaVersion, direction: str, report: StepReport, progress: Progress | None) -> Any:
        """Run ``version``'s upgrade or downgrade (in the current transaction), its findings going
        into ``report``. Returns what :meth:`record_step` needs of it. Raises what the step raises."""

    def record_step(self, version: SchemaVersion, direction: str, reached: SchemaVersion, done: Any) -> None:
        """Record that the step of ``version`` took the database to ``reached`` (our record and
        Agno's stamps), in the current transaction; ``done`` is what :meth:`run_step` returned."""

    def restamp(self, version: SchemaVersion) -> None:
        """Record ``version`` as the only version reached, running nothing (``stamp``)."""

    def import_legacy(self, tables: list[LegacyTable], progress: Progress | None, accept: set[str]) -> Any:
        """Import the Agno 1.x ``tables`` into head, resumably; returns the import's report. A table
        whose pass met unreadable rows stays pending (read again by the next run) unless it is in
        ``accept`` (their loss accepted)."""

    def render_upgrade(self, plan: Plan) -> str:
        """The SQL text of ``plan`` (only where ``renders_sql``); changes nothing."""

    def commit(self) -> None:
        """Keep what the current transaction wrote."""

    def rollback(self) -> None:
        """Drop what the current transaction wrote."""


def backend_for(target: Target) -> type[Backend]:
    """The backend of ``target``: chosen by what its dialect is (SQL or not), never by its name."""
    if dialect_of(target).sql:
        from agno_migrate.migrate.backend.sql import SqlBackend

        return SqlBackend
    from agno_migrate.migrate.backend.mongo import MongoBackend

    return MongoBackend
