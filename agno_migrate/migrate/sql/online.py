"""The online upgrade's DDL (``upgrade --online``): what lets a step change the session tables while
the application keeps writing them. PostgreSQL is the dialect that has it (``SqlDialect.online_ddl``).

- Every DDL statement runs in a short transaction of its own under a short lock timeout
  (:attr:`Online.lock_timeout <agno_migrate.migrate.model.Online>`): a statement queued behind a
  long transaction of the application would otherwise block every writer queued behind *it*. When
  the timeout expires the transaction is rolled back, and tried again after a jittered pause
  (``backends.retry``), at most ``Online.retries`` times; then :class:`LockTimeout` (exit 6), with
  whatever was committed before kept, so a re-run finishes it.
- Indexes are built ``CONCURRENTLY`` (outside any transaction): writes go on meanwhile. A build that
  failed or was killed leaves an INVALID index: it is dropped (``CONCURRENTLY`` too) and built again.
- :meth:`OnlineDDL.batches` walks a table by keyset, each batch in a short transaction of its own.

The steps (``versions/sql``) find an :class:`OnlineDDL` in ``ctx.opts["agno_online"]`` when the
upgrade runs online, and take their online path with it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TypeVar

import sqlalchemy as sa

from agno_migrate.backends import dialect_of, retry
from agno_migrate.errors import LockTimeout
from agno_migrate.migrate.model import Online
from agno_migrate.migrate.report import StepReport
from agno_migrate.target import Target

T = TypeVar("T")

BACKOFF = retry.Backoff(first=0.1, cap=3.0, jitter=retry.FULL_JITTER)
"""Pauses between the attempts of a statement that gave up waiting for its lock."""


class OnlineDDL:
    """DDL and batches on ``conn`` (the upgrade's connection, holding the migration lock) under the
    short lock timeout of ``options``; each retry counted in ``report`` (``ddl_retries``)."""

    def __init__(self, conn, target: Target, options: Online, report: StepReport):
        self.conn = conn
        self.target = target
        self.options = options
        self.report = report
        self.dialect = dialect_of(target)
        self.schema = self.dialect.schema_of(target)

    # --- names ----------------------------------------------------------------------------------

    def quote(self, name: str) -> str:
        return self.conn.dialect.identifier_preparer.quote(name)

    def table(self, name: str) -> str:
        """``name`` quoted and qualified by the target's schema."""
        prep = self.conn.dialect.identifier_preparer
        return f"{prep.quote_schema(self.schema)}.{prep.quote(name)}" if self.schema else prep.quote(name)

    # --- short transactions under the lock timeout ---------------------------------------------

    def transaction(self, what: str, work: Callable[[], T], keep_open: bool = False) -> T:
        """Run ``work()`` in a transaction of its own under the short lock timeout, committed (left
        open with ``keep_open``: the caller commits it), retried when a lock wait times out.
        ``what``: the statement's purpose, for the error after the last retry."""

        def attempt() -> T:
            self.conn.commit()
            try:
                self.conn.exec_driver_sql(self.dialect.lock_timeout_sql(self.options.lock_timeout))
                result = work()
                if not keep_open:
                    self.conn.commit()
                return result
            except BaseException:
                self.conn.rollback()
                raise

        return self._retried(what, attempt)

    def execute(self, what: str, *statements: str, keep_open: bool = False) -> None:
        """Run ``statements`` (SQL text) in one short transaction (see :meth:`transaction`)."""

        def work() -> None:
            for statement in statements:
                self.conn.exec_driver_sql(statement)

        self.transaction(what, work, keep_open=keep_open)

    def outside_transaction(self, statement: str) -> None:
        """Run ``statement`` in autocommit (``CREATE INDEX CONCURRENTLY`` runs in none), under the
        short lock timeout; not retried here."""
        self.conn.commit()
        self.conn.execution_options(isolation_level="AUTOCOMMIT")
        try:
            self.conn.exec_driver_sql(self.dialect.lock_timeout_sql(self.options.lock_timeout, local=False))
            try:
                self.conn.exec_driver_sql(statement)
            finally:
                self.conn.exec_driver_sql(self.dialect.lock_timeout_sql(None, local=False))
        finally:
            self.conn.commit()
            self.conn.execution_options(isolation_level=self.conn.default_isolation_level)

    def _retried(self, what: str, attempt: Callable[[], T]) -> T:
        options = self.options

        def give_up() -> LockTimeout:
            return LockTimeout(
                f"{what}: gave up after {options.retries + 1} attempts, each waiting {options.lock_timeout:g}s "
                f"for a lock another transaction held (--ddl-lock-timeout, --ddl-retries); what was done is "
                f"kept: run agno-migrate upgrade --online again to finish"
            )

        return retry.bounded(
            attempt,
            BACKOFF,
            options.retries,
            self.dialect.lock_not_available,
            give_up,
            lambda exc: self.report.add_ddl_retry(),
        )

    # --- indexes --------------------------------------------------------------------------------

    def index_state(self, name: str) -> bool | None:
        """Whether index ``name`` (in the target's schema) is valid; None when it does not exist."""
        query = sa.text(
            "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = :schema AND c.relname = :name"
        )
        state = self.conn.execute(query, {"schema": self.schema, "name": name}).scalar()
        self.conn.commit()
        return state

    def build_index(self, name: str, table: str, columns: list[str], unique: bool = False) -> None:
        """``CREATE [UNIQUE] INDEX CONCURRENTLY name ON table (columns)`` unless a valid index of
        that name exists; an INVALID one (left by a failed or killed build) is dropped first."""
        create = (
            f"CREATE {'UNIQUE ' if unique else ''}INDEX CONCURRENTLY {self.quote(name)} ON {self.table(table)} "
            f"({', '.join(self.quote(c) for c in columns)})"
        )

        def attempt() -> None:
            state = self.index_state(name)
            if state:
                return
            if state is False:
                self.outside_transaction(f"DROP INDEX CONCURRENTLY IF EXISTS {self.table(name)}")
            self.outside_transaction(create)

        self._retried(f"building index {name} on {self.table(table)}", attempt)

    # --- batches --------------------------------------------------------------------------------

    def keys(self, table: str, key: str, size: int) -> Iterator[tuple[object, object]]:
        """Keyset batches of ``table`` by its column ``key``: (after, upto) bounds, ``after`` None for
        the first batch; the caller works on ``after < key <= upto`` and commits."""
        after = None
        while True:
            where = "" if after is None else f" WHERE {self.quote(key)} > :after"
            query = sa.text(
                f"SELECT max(k) FROM (SELECT {self.quote(key)} AS k FROM {self.table(table)}{where} "
                f"ORDER BY {self.quote(key)} LIMIT {int(size)}) b"
            )
            upto = self.conn.execute(query, {"after": after}).scalar()
            if upto is None:
                self.conn.commit()
                return
            yield after, upto
            after = upto
