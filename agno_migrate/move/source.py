"""A database to copy from, read-only, seen as head rows whatever version it is at.

:func:`open_source` opens a target read-only (SQLite: a ``mode=ro`` URI, so the file is never
written; PostgreSQL and MySQL: read-only transactions; MongoDB: reads only) and finds where it stands
(``migrate.runner.current``). :meth:`Source.session_batches` then gives every session as a
:class:`SessionUnit`: its head sessions row and its head runs-table rows, through the conversions an
upgrade in place applies:

* 3.x: the sessions and runs tables, merged by session;
* 2.x: the sessions' ``runs`` JSON made into run rows by ``convert.run_rows`` (as the 3.0.0 step),
  JSON decoded by ``jsoncodec.decode_json`` (SQLite's double-encoded JSON, MongoDB 2.0's strings);
* Agno 1.x tables (or collections): ``convert.convert_v1_session``, ``convert.fill_created_at`` then
  ``convert.run_rows``, as the legacy import, table after table in the import's order, after the
  session table.

Run ids another session holds are re-keyed by the sink (``convert.rekey_runs`` against the target),
as the upgrade re-keys against its runs table. What cannot be read is listed in
:attr:`Source.problems` (session id, what), never skipped silently.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from agno_migrate.backends import dialect_of
from agno_migrate.errors import SchemaDrift, UsageError
from agno_migrate.migrate.detection import MEMORIES
from agno_migrate.move.rows import RUN_COLUMNS, Problem, SessionUnit
from agno_migrate.target import Target, resolve

_HEAD_VERSIONS = ("3.0.0", "3.0.1")


@dataclass
class Source:
    """A database opened read-only (see the module docstring)."""

    target: Target
    version: str | None
    parts: list
    problems: list[Problem] = field(default_factory=list)
    shown: str = ""
    """The source's URL as given (masked; the URL it is read through may add ``mode=ro``)."""

    @property
    def identity(self) -> str:
        """What names this source in a target's checkpoint: its masked URL, schema and session table."""
        return f"{self.shown}|{self.target.schema or ''}|{self.target.session_table}"

    @property
    def unique_sessions(self) -> bool:
        """Each session id is given once: one part (an Agno 1.x source of several tables may hold an id twice)."""
        return len(self.parts) == 1

    @property
    def at_head(self) -> bool:
        """One part at head: sessions and runs tables as Agno's head writes them."""
        return len(self.parts) == 1 and self.version in _HEAD_VERSIONS

    @property
    def unique_runs(self) -> bool:
        """Each run id is given once: one part, a head runs table (its primary key); a 2.x blob's ids may
        repeat across sessions (re-keyed)."""
        return self.at_head

    def count_sessions(self) -> int:
        """The sessions the source holds (every part: a 1.x session held twice counts twice)."""
        return sum(part.count() for part in self.parts)

    def session_batches(self, after: str | None = None, size: int = 500) -> Iterator[list[SessionUnit]]:
        """Every session after the cursor ``after`` (None: from the start), ``size`` at a time, in
        session_id order (the source's own order, as its upgrade walks it) part after part."""
        if size < 1:
            raise UsageError(f"batch size {size}: expected 1 or more")
        start, last = 0, None
        if after is not None:
            start, last = _parse_cursor(after, len(self.parts))
        for index in range(start, len(self.parts)):
            part = self.parts[index]
            bound = last if index == start else None
            while True:
                rows = part.rows(bound, size)
                if not rows:
                    break
                bound = rows[-1]["session_id"]
                units = []
                for row in rows:
                    unit = part.unit(row, self.problems)
                    if unit is not None:
                        unit.cursor = _cursor(index, row["session_id"], len(self.parts))
                        unit.part = part.name
                        units.append(unit)
                if units:
                    yield units
                if len(rows) < size:
                    break

    def keep_text(self) -> None:
        """Give JSON columns' stored text where it may pass unparsed (``move.json_text``): for a target
        that parses JSON text itself, written only by new rows (``Sink.takes_text``)."""
        for part in self.parts:
            if hasattr(part, "keep_text"):
                part.keep_text = True

    def close(self) -> None:
        from agno_migrate.backends import dispose

        for part in self.parts:
            part.close()
        dispose(self.target)


def _cursor(index: int, session_id: str, parts: int) -> str:
    return session_id if parts == 1 else json.dumps([index, session_id])


def _parse_cursor(after: str, parts: int) -> tuple[int, str]:
    if parts == 1:
        return 0, after
    try:
        index, session_id = json.loads(after)
        return int(index), session_id
    except (ValueError, TypeError):
        raise UsageError(f"cannot resume from {after[:80]!r}: not a cursor of this source") from None


def read_only_target(target: Target) -> Target:
    """``target``, opened read-only: a SQLite URL gains ``mode=ro`` (the file is never written)."""
    if target.backend != "sqlite" or target.read_only:
        return target
    sep = "&" if "?" in target.url else "?"
    return Target.from_url(
        f"{target.url}{sep}mode=ro",
        schema=target.schema,
        session_table=target.session_table,
        runs_table=target.runs_table,
        agno_versions_table=target.agno_versions_table,
        tables=target.tables,
    )


def open_source(db: Any) -> Source:
    """The database ``db`` (a URL, Target or Agno Db object), opened read-only as a :class:`Source`.

    Raises SchemaDrift for a session table that matches no version (as ``upgrade`` would refuse it),
    SchemaAhead, ConnectFailed, UsageError."""
    from agno_migrate.migrate import runner

    given = resolve(db)
    target = read_only_target(given)
    status = runner.current(target)
    if status.drift or status.not_agno:
        raise SchemaDrift(
            f"{target.masked_url}: {target.session_table} matches no version this tool knows "
            f"({'; '.join(status.drift) or 'not an Agno table'}): it is not copied; repair it or upgrade it first"
        )
    legacy = [t for t in status.legacy if t.mode != MEMORIES]
    if dialect_of(target).sql:
        from agno_migrate.move import sql_parts as kinds
    else:
        from agno_migrate.move import mongo_parts as kinds
    parts = []
    if status.version is not None:
        parts.append(kinds.HeadPart(target) if status.version in _HEAD_VERSIONS else kinds.BlobPart(target))
    parts += [kinds.LegacyPart(target, t.name, t.mode) for t in legacy]
    return Source(target, status.version, parts, shown=given.masked_url)


__all__ = ["RUN_COLUMNS", "Problem", "SessionUnit", "Source", "open_source"]
