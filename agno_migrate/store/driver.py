"""Driver-level execution of the store's statements.

The statements are built with SQLAlchemy Core (so quoting, schemas and dialect syntax stay
SQLAlchemy's) and compiled once per store; each call then runs the compiled SQL on a pooled DBAPI
connection, without SQLAlchemy's per-execution machinery. Parameters go through the same bind
processors SQLAlchemy would apply (JSON is encoded exactly as before). On PostgreSQL the
statements of one step travel in one pipeline: one network round trip per step.
"""
from __future__ import annotations

import contextlib

from ..migrate.connect import begin_sqlite_write, database_errors, raw_connection
from ..target import Target

IDLE = 0  # libpq's PQTRANS_IDLE: no transaction open on the connection
PIPELINE_BYTES = 1 << 20  # larger parameters go one statement per round trip (see Call.commit)


class Statement:
    """SQL compiled for one dialect, and how to turn a dict of values into its parameters."""

    __slots__ = ("sql", "columns", "_names", "_used", "_defaults", "_processors")

    def __init__(self, clause, dialect):
        compiled = clause.compile(dialect=dialect)
        self.sql = str(compiled)
        self.columns = tuple(clause.exported_columns.keys())  # the names of a result row's values
        # the parameters in the SQL's order, or (named style) the names the SQL uses: a driver may
        # look at every value it is given (pymysql escapes them all)
        self._names = list(compiled.positiontup) if compiled.positional else None
        self._used = None if compiled.positional else tuple(compiled.binds)
        # literal values SQLAlchemy turned into parameters (``max(...) + 1``), filled in on every call
        self._defaults = {name: bind.effective_value for name, bind in compiled.binds.items() if not bind.required}
        self._processors = {}
        for name, bind in compiled.binds.items():
            processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None:
                self._processors[name] = processor

    def params(self, values: dict):
        """The driver parameters for ``values`` (a dict keyed by bind name)."""
        if self._defaults:
            values = {**self._defaults, **values}
        if self._processors:
            values = dict(values)
            for name, process in self._processors.items():
                if name in values:
                    values[name] = process(values[name])
        if self._names is not None:
            return tuple(values[name] for name in self._names)
        return {name: values[name] for name in self._used if name in values}


class Call:
    """One store call on a pooled DBAPI connection: a transaction for writes (``BEGIN IMMEDIATE``
    on SQLite; committed by :meth:`write`, rolled back on any error), a consistent snapshot for
    SQLite reads, autocommit reads elsewhere. Driver errors become DatabaseFailure lines; a
    connection the server dropped is discarded from the pool."""

    def __init__(self, target: Target, write: bool):
        self.target = target
        self.writing = write
        self.pipelined = target.backend == "postgresql"

    def __enter__(self) -> "Call":
        self._errors = database_errors(self.target)
        self._errors.__enter__()
        self.pooled = raw_connection(self.target)
        self.conn = self.pooled.driver_connection
        try:
            if self.target.backend == "sqlite":
                if self.writing:
                    begin_sqlite_write(self.pooled, self.conn.execute)
                else:
                    self.conn.execute("BEGIN")
            elif not self.writing and self.pipelined:
                self.conn.autocommit = True  # reads need no BEGIN/ROLLBACK round trips
        except BaseException as exc:
            self.__exit__(type(exc), exc, exc.__traceback__)
            raise
        return self

    def fetch(self, steps: list) -> list[list[tuple]]:
        """Run each (Statement, values) in order; the rows of each (one round trip on PostgreSQL)."""
        with self._pipeline():
            cursors = []
            for statement, values in steps:
                cursor = self.conn.cursor()
                cursor.execute(statement.sql, statement.params(values))
                cursors.append(cursor)
        return [cursor.fetchall() if cursor.description is not None else [] for cursor in cursors]

    def write(self, steps: list) -> None:
        """Run each (Statement, list of values) for all its rows, then commit.

        Not pipelined: psycopg's pipeline stalls on very large parameters (tens of MB). On
        PostgreSQL a write that is one statement of one row, with nothing before it, runs on its
        own (autocommit): it is a transaction by itself, without BEGIN and COMMIT round trips."""
        steps = [(statement, rows) for statement, rows in steps if rows]
        single = len(steps) == 1 and len(steps[0][1]) == 1
        if single and self.pipelined and self.conn.info.transaction_status == IDLE:
            self.conn.autocommit = True
        cursor = self.conn.cursor()
        for statement, rows in steps:
            if len(rows) == 1:
                cursor.execute(statement.sql, statement.params(rows[0]))
            else:
                cursor.executemany(statement.sql, [statement.params(row) for row in rows])
        self.conn.commit()
        self.writing = False

    def commit(self, steps: list) -> list[list[tuple]]:
        """Run each (Statement, values) once, in order, and commit; the rows of each. On PostgreSQL
        the whole transaction (BEGIN, the statements, COMMIT) is one round trip, unless the
        parameters are large (psycopg's pipeline stalls on tens of MB: then one trip each)."""
        steps = [(statement, statement.params(values)) for statement, values in steps]
        pipelined = self.pipelined and _size(steps) <= PIPELINE_BYTES and self.conn.info.transaction_status == IDLE
        if pipelined:
            self.conn.autocommit = True  # the transaction is spelled out in the pipeline
        with self.conn.pipeline() if pipelined else contextlib.nullcontext():
            if pipelined:
                self.conn.execute("BEGIN")
            cursors = []
            for statement, params in steps:
                cursor = self.conn.cursor()
                cursor.execute(statement.sql, params)
                cursors.append(cursor)
            self.conn.execute("COMMIT") if pipelined else self.conn.commit()
        self.writing = False
        return [cursor.fetchall() if cursor.description is not None else [] for cursor in cursors]

    def _pipeline(self):
        return self.conn.pipeline() if self.pipelined else contextlib.nullcontext()

    def __exit__(self, kind, exc, tb):
        pooled = getattr(self, "pooled", None)
        try:
            if pooled is not None:
                self._finish(kind, exc)
        finally:
            if pooled is not None:
                pooled.close()
            self._errors.__exit__(kind, exc, tb)
        return False

    def _finish(self, kind, exc) -> None:
        if kind is not None and self._dropped(exc):
            self.pooled.invalidate(exc)
            return
        try:
            if self.target.backend == "sqlite" and self.conn.in_transaction:
                self.conn.rollback()  # nothing to keep: writes commit in write(), reads changed nothing
            elif self.writing:
                self.conn.rollback()
            if self.pipelined and self.conn.autocommit:
                self.conn.autocommit = False  # as the pool expects its connections
        except Exception as failure:  # the connection is unusable: drop it, report the first error
            self.pooled.invalidate(failure)
            if kind is None:
                raise

    def _dropped(self, exc) -> bool:
        dbapi = self.target.engine().dialect.loaded_dbapi
        if not isinstance(exc, dbapi.Error):
            return False
        return self.target.engine().dialect.is_disconnect(exc, self.conn, None)


def _size(steps: list) -> int:
    """The bytes of text and binary parameters of (statement, driver parameters) steps."""
    total = 0
    for _, params in steps:
        for value in params.values() if isinstance(params, dict) else params:
            if isinstance(value, (str, bytes)):
                total += len(value)
    return total
