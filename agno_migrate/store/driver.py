"""Driver-level execution of the store's statements.

The statements are built with SQLAlchemy Core (so quoting, schemas and dialect syntax stay
SQLAlchemy's) and compiled once per store; each call then runs the compiled SQL on a DBAPI
connection (the thread's kept one, or a pooled one: ``Call``), without SQLAlchemy's per-execution
machinery. Parameters go through the same bind processors SQLAlchemy would apply (JSON is encoded
exactly as before). On PostgreSQL the
statements of one step travel in one pipeline (``pgpipe.py``): one network round trip per step.
"""

from __future__ import annotations

from operator import itemgetter

from agno_migrate.backends import dialect_of
from agno_migrate.backends.kept import connection as kept_connection
from agno_migrate.backends.kept import drop as drop_kept
from agno_migrate.backends.sql import database_errors, engine, raise_read_only, raw_connection
from agno_migrate.target import Target


class Statement:
    """SQL compiled for one dialect, and how to turn a dict of values into its parameters.

    ``dialect`` is the engine's SQLAlchemy dialect (its bind processors encode the values);
    ``compiler`` the one to write the SQL with, if another (``SqlDialect.statement_compiler``)."""

    __slots__ = ("sql", "columns", "_positional", "_used", "_defaults", "_processors")

    def __init__(self, clause, dialect, compiler=None):
        compiled = clause.compile(dialect=compiler or dialect)
        self.sql = str(compiled)
        self.columns = tuple(clause.exported_columns.keys())  # the names of a result row's values
        # the parameters in the SQL's order, or (named style) the names the SQL uses: a driver may
        # look at every value it is given (pymysql escapes them all)
        names = list(compiled.positiontup) if compiled.positional else None
        self._used = None if compiled.positional else tuple(compiled.bind_names.values())
        # literal values SQLAlchemy turned into parameters (``max(...) + 1``), filled in on every call
        self._defaults = {name: bind.effective_value for name, bind in compiled.binds.items() if not bind.required}
        self._processors = {}
        for name, bind in compiled.binds.items():
            processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None:
                self._processors[name] = processor
        self._positional = None if names is None else _tuple_of(names)

    def params(self, values: dict):
        """The driver parameters for ``values`` (a dict keyed by bind name)."""
        if self._defaults:
            values = {**self._defaults, **values}
        if self._processors:  # each value processed once, however often the SQL uses it
            processed = {name: process(values[name]) for name, process in self._processors.items() if name in values}
            values = {**values, **processed}
        if self._positional is not None:
            return self._positional(values)
        return {name: values[name] for name in self._used if name in values}


def _tuple_of(names: list[str]):
    """A function from a dict to the tuple of its values at ``names`` (in C: ``itemgetter``)."""
    if len(names) == 1:
        (name,) = names
        return lambda values: (values[name],)
    if not names:
        return lambda values: ()
    return itemgetter(*names)


class Call:
    """One store call on a DBAPI connection: a transaction for writes (begun as the dialect
    begins it, ``SqlDialect.begin_call``: ``BEGIN IMMEDIATE`` on SQLite; committed by :meth:`write`,
    rolled back on any error), a consistent snapshot for reads where the dialect takes one
    (``snapshot_reads``), autocommit reads elsewhere. Driver errors become DatabaseFailure lines.

    The connection is the thread's kept one where the dialect keeps them (``backends.kept``: SQLite
    files), else a pooled one, returned after the call. A connection the server dropped, or one
    the call could not roll back, is discarded (closed, or invalidated in the pool).

    Where the dialect is ``pipelined`` (PostgreSQL) the connection is in autocommit mode and a write
    spells its transaction out (BEGIN with the first statements, COMMIT with the last), so that each
    :meth:`fetch` and each :meth:`write` is one pipeline (:class:`pgpipe.Exchange`): one network
    round trip."""

    __slots__ = ("target", "writing", "dialect", "pipelined", "pooled", "kept", "conn", "_begun", "_broken")

    def __init__(self, target: Target, write: bool):
        self.target = target
        self.writing = write
        self.dialect = dialect_of(target)
        self.pipelined = self.dialect.pipelined
        self.pooled = self.kept = None
        self._begun = False
        self._broken = False

    def __enter__(self) -> Call:
        if self.writing and self.target.read_only:
            raise_read_only(self.target)  # before a connection is even taken
        try:
            kept = self.kept = kept_connection(self.target)
            if kept is not None:
                self.conn = kept.conn
                self.dialect.begin_call(kept, self.conn, self.writing)
            else:
                self.pooled = raw_connection(self.target)
                self.conn = self.pooled.driver_connection
                self.dialect.begin_call(self.pooled, self.conn, self.writing)
        except BaseException as exc:
            self.__exit__(type(exc), exc, exc.__traceback__)
            raise
        return self

    def fetch(self, steps: list) -> list[list[tuple]]:
        """Run each (Statement, values) in order; the rows of each."""
        return self._run([(statement, [values]) for statement, values in steps], commit=False)

    def write(self, steps: list) -> list[list[tuple]]:
        """Run each (Statement, list of values) for all its rows, then commit; the rows each
        single-row statement returned."""
        done = self._run(steps, commit=True)
        self.writing = False
        return done

    def _run(self, steps: list, commit: bool) -> list[list[tuple]]:
        """The steps' rows. Unless pipelined they are read right after each statement
        (a SQLite statement left unread holds a read snapshot past the commit, and the WAL could
        then never be checkpointed back to its start)."""
        if self.pipelined:
            begin = self.writing and not self._begun
            self._begun = self._begun or begin
            try:
                return self._exchange().run(steps, begin=begin, commit=commit)
            except BaseException:
                if self.conn.pgconn.pipeline_status != 0:  # interrupted mid-exchange: unusable
                    self._broken = True
                raise
        results = []
        for statement, rows in steps:
            if not rows:
                results.append([])
                continue
            cursor = self.conn.cursor()
            if len(rows) == 1:
                cursor.execute(statement.sql, statement.params(rows[0]))
            else:
                cursor.executemany(statement.sql, [statement.params(row) for row in rows])
            results.append(_rows(cursor))
        if commit:
            self.conn.commit()
        return results

    def _exchange(self):
        """This connection's :class:`pgpipe.Exchange` (its prepared statements last as long as it;
        behind a pooler it prepares none: ``SqlDialect.named_statements``)."""
        exchange = self.pooled.info.get("agno_migrate_exchange")
        if exchange is None or exchange.conn is not self.conn:
            from agno_migrate.store.pgpipe import Exchange

            named = self.dialect.named_statements(self.pooled)
            exchange = self.pooled.info["agno_migrate_exchange"] = Exchange(self.conn, named)
        return exchange

    def __exit__(self, kind, exc, tb):
        try:
            if self.kept is not None or self.pooled is not None:
                self._finish(kind, exc)
        finally:
            if self.pooled is not None:
                self.pooled.close()
            if kind is not None:
                database_errors(self.target).__exit__(kind, exc, tb)  # raises the one-line error
        return False

    def _finish(self, kind, exc) -> None:
        if kind is not None and (self._broken or self._dropped(exc)):
            self._discard(exc)
            return
        try:
            if (self.dialect.snapshot_reads and self.conn.in_transaction) or self.writing:
                self.conn.rollback()  # nothing to keep: writes commit in write(), reads changed nothing
            if self.pipelined and self.conn.autocommit:
                self.conn.autocommit = False  # as the pool expects its connections
        except Exception as failure:  # the connection is unusable: drop it, report the first error
            self._discard(failure)
            if kind is None:
                raise

    def _discard(self, exc) -> None:
        """Close the kept connection, or take the pooled one out of its pool."""
        if self.kept is not None:
            drop_kept(self.target, self.kept)
        else:
            self.pooled.invalidate(exc)

    def _dropped(self, exc) -> bool:
        dialect = engine(self.target).dialect
        if not isinstance(exc, dialect.loaded_dbapi.Error):
            return False
        return dialect.is_disconnect(exc, self.conn, None)


def _rows(cursor) -> list[tuple]:
    return cursor.fetchall() if cursor.description is not None else []
