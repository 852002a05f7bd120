"""One round trip for a store call on PostgreSQL: its statements go out together through libpq's
pipeline mode (``psycopg.pq``), each prepared once per connection — or, behind a connection pooler
(where the server connection is not ours from one transaction to the next, and another client's
``agno_migrate_0`` may be there already), sent unnamed with its parameters every time.

psycopg's own pipeline makes the same exchange, but it builds Python objects for every statement
(a cursor, a query conversion, a flush and a poll of the socket after each one): ~0.3 ms of client
CPU for upsert_run's four statements, against ~0.1 ms here, for a round trip that takes ~0.1 ms.
Parameters are dumped and rows loaded by psycopg's own Transformer with the connection's adapters,
so values are adapted exactly as psycopg's cursors adapt them (JSON as the engine configures it).
"""

from __future__ import annotations

import select

from psycopg import errors, pq
from psycopg.adapt import PyFormat, Transformer

_STATUS = pq.ExecStatus
_READ, _WRITE = select.POLLIN, select.POLLOUT


class Exchange:
    """The prepared statements and adaptation state of one psycopg connection (kept with the pooled
    connection for its lifetime: prepared statements live as long as the server session).
    ``named`` False: nothing is prepared, each command carries its SQL (unnamed statements)."""

    def __init__(self, conn, named: bool = True):
        self.conn = conn
        self.pgconn = conn.pgconn
        self.transformer = Transformer(conn)
        self.named = named
        self.prepared: dict[str, bytes] = {}  # SQL -> statement name
        self.texts: dict[str, bytes] = {}  # SQL -> its bytes (unnamed statements)

    def run(self, steps: list, begin: bool, commit: bool) -> list[list[tuple]]:
        """Send BEGIN (if ``begin``), every (Statement, list of values) step's executions, COMMIT
        (if ``commit``) and a sync, all in one write, then read every result: the rows of each
        step that ran for one set of values ([] for the others). A statement the server refused
        raises its psycopg error; the commands after it were not run (nor the COMMIT: the caller
        rolls the transaction back)."""
        dump = self.transformer.dump_sequence
        commands, to_prepare, outputs = [], {}, []  # outputs: the step index of each command, or None
        for index, (statement, rows) in enumerate(steps):
            if not self.named:
                sql = self.texts.get(statement.sql)
                if sql is None:
                    sql = self.texts[statement.sql] = statement.sql.encode()
                command = (None, sql)
            else:
                name = self.prepared.get(statement.sql) or to_prepare.get(statement.sql)
                if name is None:
                    name = to_prepare[statement.sql] = f"agno_migrate_{len(self.prepared) + len(to_prepare)}".encode()
                command = (name, None)
            for values in rows:
                params = statement.params(values)
                commands.append((*command, dump(params, [PyFormat.TEXT] * len(params))))
                outputs.append(index if len(rows) == 1 else None)
        results = self._exchange(to_prepare, commands, begin, commit)
        found: list[list[tuple]] = [[] for _ in steps]
        for index, result in zip(outputs, results, strict=False):
            if index is not None and result.status == _STATUS.TUPLES_OK:
                self.transformer.set_pgresult(result)
                found[index] = self.transformer.load_rows(0, result.ntuples, tuple)
        return found

    def _exchange(self, to_prepare: dict, commands: list, begin: bool, commit: bool) -> list:
        """The results of ``commands`` (after the preparations, BEGIN and COMMIT are checked)."""
        pg = self.pgconn
        pg.enter_pipeline_mode()
        for sql, name in to_prepare.items():
            pg.send_prepare(name, sql.encode())
        if begin:
            pg.send_query_params(b"BEGIN", None)
        for name, sql, params in commands:
            if name is None:
                pg.send_query_params(sql, params)
            else:
                pg.send_query_prepared(name, params)
        if commit:
            pg.send_query_params(b"COMMIT", None)
        pg.pipeline_sync()
        self._flush()
        results = self._results()
        pg.exit_pipeline_mode()
        for (sql, name), result in zip(to_prepare.items(), results, strict=False):  # preparations come first
            if result.status == _STATUS.COMMAND_OK:
                self.prepared[sql] = name
        for result in results:  # the first failure is the cause; the later commands were aborted
            if result.status not in (_STATUS.COMMAND_OK, _STATUS.TUPLES_OK):
                if result.status == _STATUS.PIPELINE_ABORTED:
                    continue
                error = errors.error_from_result(result, encoding=self.conn.info.encoding)
                if isinstance(error, errors.InvalidSqlStatementName):  # dropped (DEALLOCATE ALL):
                    self.prepared.clear()  # the next call prepares them again
                raise error
        if len(results) != len(to_prepare) + begin + len(commands) + commit:
            raise errors.InternalError(f"the server answered {len(results)} of the pipeline's commands")
        return results[len(to_prepare) + begin : len(results) - commit]

    def _flush(self) -> None:
        """Send everything queued, reading meanwhile whatever the server sends (a large parameter
        takes several writes; the server may answer before the last one)."""
        pg = self.pgconn
        while pg.flush():
            if _wait(pg.socket, _READ | _WRITE) & _READ:
                pg.consume_input()

    def _results(self) -> list:
        """Every command's result, up to the sync."""
        pg = self.pgconn
        results = []
        while True:
            while pg.is_busy():
                _wait(pg.socket, _READ)
                pg.consume_input()
            result = pg.get_result()
            if result is None:  # the end of one command's results
                continue
            if result.status == _STATUS.PIPELINE_SYNC:
                return results
            results.append(result)


def _wait(fd: int, events: int) -> int:
    poll = select.poll()
    poll.register(fd, events)
    ready = 0
    for _, happened in poll.poll():
        ready |= happened
    if ready & (select.POLLERR | select.POLLHUP | select.POLLNVAL) and not ready & (_READ | _WRITE):
        raise errors.OperationalError("the connection to the server was lost")
    return ready
