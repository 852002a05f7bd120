"""The parts of a SQL source (SQLite, PostgreSQL, MySQL/MariaDB), read by keyset on ``session_id``.

Each part reads one table's rows (a batch after a session id) on a read-only connection and turns a
row into a :class:`~agno_migrate.move.source.SessionUnit` by the conversion of its kind (``source``).
Values are read untyped: JSON as the driver gives it (text, or PostgreSQL's parsed value), decoded by
``jsoncodec.decode_json`` as the upgrade decodes it.
"""

from __future__ import annotations

import sqlalchemy as sa

from agno_migrate.backends import dialect_of
from agno_migrate.backends import sql as sql_backend
from agno_migrate.move import rows as conv
from agno_migrate.schema import SESSION_COLUMNS
from agno_migrate.target import Target


class _Part:
    """One table of the source, read in batches on its own read-only connection."""

    def __init__(self, target: Target, table: str, columns: tuple[str, ...] | None = None):
        self.target = target
        self.name = table
        self.schema = dialect_of(target).schema_of(target)
        self._conn = None
        self._columns = columns

    @property
    def conn(self):
        if self._conn is None:
            with sql_backend.database_errors(self.target):
                conn = sql_backend.engine(self.target).connect()
                statement = getattr(dialect_of(self.target), "read_only_session", None)
                if statement:
                    conn.exec_driver_sql(statement)
                    conn.commit()
            self._conn = conn
        return self._conn

    @property
    def columns(self) -> tuple[str, ...]:
        if self._columns is None:
            with sql_backend.database_errors(self.target):
                found = sa.inspect(self.conn).get_columns(self.name, schema=self.schema)
                self.conn.rollback()
            self._columns = tuple(c["name"] for c in found)
        return self._columns

    def table(self, columns=None) -> sa.TableClause:
        return sa.table(self.name, *[sa.column(c) for c in (columns or self.columns)], schema=self.schema)

    def count(self) -> int:
        t = self.table(("session_id",))
        with sql_backend.database_errors(self.target):
            total = self.conn.execute(sa.select(sa.func.count()).select_from(t)).scalar()
            self.conn.rollback()
        return int(total or 0)

    def rows(self, after: str | None, size: int) -> list[dict]:
        """The next ``size`` rows after session id ``after``, in the source's order (each batch its own
        read-only transaction: no snapshot is held between batches)."""
        t = self.table()
        query = sa.select(t).where(t.c.session_id.isnot(None)).order_by(t.c.session_id).limit(size)
        if after is not None:
            query = query.where(t.c.session_id > after)
        with sql_backend.database_errors(self.target):
            rows = _dicts(self.conn.execute(query))
            self.attach(rows)
            self.conn.rollback()
        return rows

    def attach(self, rows: list[dict]) -> None:
        """Read what belongs to the batch's rows from elsewhere (the head part: their runs)."""

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _dicts(result) -> list[dict]:
    """A result's rows as dicts (column -> value), built from plain tuples (a mapping per row costs more)."""
    keys = tuple(result.keys())
    return [dict(zip(keys, row, strict=True)) for row in result.fetchall()]


class HeadPart(_Part):
    """3.x: the sessions table and its runs table, merged by session."""

    keep_text = False
    """JSON columns' stored text kept where the target may parse it itself (``json_text``); set by the copy."""

    def __init__(self, target: Target):
        super().__init__(target, target.session_table, tuple(SESSION_COLUMNS))

    def attach(self, rows: list[dict]) -> None:
        if not rows:
            return
        runs = sa.table(self.target.runs_table, *[sa.column(c) for c in conv.RUN_COLUMNS], schema=self.schema)
        query = (
            sa.select(runs)
            .where(runs.c.session_id.in_(sa.bindparam("ids", expanding=True)))
            .order_by(runs.c.session_id, runs.c.run_index, runs.c.created_at, runs.c.run_id)
        )
        by_session: dict = {}
        at = conv.RUN_COLUMNS.index("session_id")
        for run in self.conn.execute(query, {"ids": [row["session_id"] for row in rows]}).fetchall():
            by_session.setdefault(run[at], []).append(run)  # (its values, made a head row by conv.head_run)
        for row in rows:
            row["__runs"] = by_session.get(row["session_id"], [])

    def unit(self, row: dict, problems: list) -> conv.SessionUnit:
        keep, runs_table = self.keep_text, self.target.runs_table
        session = conv.head_session(row, self.name, problems, keep_text=keep)
        runs = [conv.head_run(run, runs_table, problems, keep_text=keep) for run in row["__runs"]]
        return conv.SessionUnit(session, runs)


class BlobPart(conv.BlobRows, _Part):
    """2.x: the sessions table, runs in its ``runs`` JSON."""

    def __init__(self, target: Target):
        super().__init__(target, target.session_table, (*SESSION_COLUMNS, "runs"))


class LegacyPart(conv.LegacyRows, _Part):
    """An Agno 1.x session table of one mode."""

    def __init__(self, target: Target, table: str, mode: str):
        super().__init__(target, table)
        self.mode = mode
