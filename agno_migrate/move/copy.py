"""``agno-migrate copy``: a whole Agno database from any backend to any other, at head.

The source is read through :mod:`agno_migrate.move.source` (never written), the target written through
:mod:`agno_migrate.move.sink` (created at head, refused when it holds rows unless ``if_exists`` says how
to merge, checkpointed per batch, resumed after a kill). The other Agno tables (memories, evals, ...)
are copied by :mod:`agno_migrate.move.tables`: in a second process beside the sessions and runs when
that pays (:mod:`agno_migrate.move.tables_aside`), else after them. Optionally verified afterwards
(:mod:`agno_migrate.move.verify`).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from typing import Any

from agno_migrate.backends import dialect_of
from agno_migrate.errors import EXIT_BEHIND, EXIT_INCOMPLETE, EXIT_OK, Refused
from agno_migrate.move import tables_aside
from agno_migrate.move.ahead import read_ahead
from agno_migrate.move.fit import Fitted
from agno_migrate.move.sink import open_sink
from agno_migrate.move.source import Problem, open_source
from agno_migrate.target import Target, resolve

DEFAULT_BATCH = 500
Progress = Callable[[int, int], None]


@dataclass
class CopyOutcome:
    """What a copy did. ``problems``: sessions or runs named because they were not copied as they are
    (``copied`` False: not at all). ``exit_code``: 0 copied (and verified equal), 9 some rows not
    copied, 1 verify found differences."""

    source: str
    target: str
    source_version: str | None
    sessions: int = 0
    runs: int = 0
    skipped_sessions: int = 0
    resumed: bool = False
    problems: list[Problem] = field(default_factory=list)
    fitted: Fitted = field(default_factory=Fitted)
    rekeyed: list = field(default_factory=list)
    verify: Any = None
    tables: Any = None
    """What ``agno_migrate.move.tables.copy_tables`` reported (the other Agno tables), when present."""

    @property
    def not_copied(self) -> list[Problem]:
        return [p for p in self.problems if not p.copied or p.what.endswith("not copied")]

    @property
    def exit_code(self) -> int:
        if self.verify is not None and not self.verify.equal:
            return EXIT_BEHIND
        return EXIT_INCOMPLETE if self.not_copied else EXIT_OK

    def as_dict(self) -> dict:
        return {
            "source": self.source,
            "target": self.target,
            "source_version": self.source_version,
            "sessions": self.sessions,
            "runs": self.runs,
            "skipped_sessions": self.skipped_sessions,
            "resumed": self.resumed,
            "problems": [vars(p) for p in self.problems],
            "values_changed": self.fitted.as_dict(),
            "runs_rekeyed": [r._asdict() for r in self.rekeyed],
            "verify": self.verify.as_dict() if self.verify is not None else None,
            "tables": self.tables.as_dict() if self.tables is not None else None,
            "exit_code": self.exit_code,
        }


def destination(dst: Any, source: Target, schema: str | None = None) -> Target:
    """The target ``dst`` names (a URL: its session and runs tables named as the source's)."""
    if isinstance(dst, str) or dst is None:
        return Target.from_url(
            dst, schema=schema, session_table=source.session_table, runs_table=source.runs_table, tables=source.tables
        )
    return resolve(dst)


def copy(
    src: Any,
    dst: Any,
    *,
    if_exists: str | None = None,
    verify: bool = False,
    batch: int = DEFAULT_BATCH,
    progress: Progress | None = None,
    to_schema: str | None = None,
) -> CopyOutcome:
    """Copy the Agno database ``src`` (URL, Target or Agno Db object; any version this tool knows,
    Agno 1.x included) into ``dst`` (its session and runs tables named as the source's when ``dst`` is a
    URL; ``to_schema``: its PostgreSQL schema, MySQL or MongoDB database), at head.

    ``dst`` holding sessions or runs is refused (Refused, exit 8) before any change unless
    ``if_exists`` is ``skip`` (its rows are kept, the source's others copied) or ``replace`` (the
    source's sessions replace the target's of the same id, with their runs); one holding this
    source's unfinished copy resumes after its checkpoint. ``verify``: compare both afterwards
    (:func:`agno_migrate.move.verify.verify`). The source is never written.
    """
    source = open_source(src)
    target = destination(dst, source.target, to_schema)
    if _same(source.target, target):
        source.close()
        raise Refused(f"{target.masked_url}: the source and the target are the same database: nothing was copied")
    sink = open_sink(target, if_exists, source.identity)
    sink.unique_sessions, sink.unique_runs = source.unique_sessions, source.unique_runs
    outcome = CopyOutcome(source.shown, target.masked_url, source.version)
    aside = None
    try:
        after = sink.prepare()
        outcome.resumed = sink.resumed
        aside = tables_aside.start(source, target, sink.if_exists, batch)  # (None: copied after the sessions)
        if sink.takes_text:
            source.keep_text()
        total = source.count_sessions() if progress else 0
        done = 0
        with closing(read_ahead(source.session_batches(after, batch))) as batches:  # (its thread ends with it)
            for units in batches:
                sessions, runs = sink.write(units)
                outcome.sessions += sessions
                outcome.runs += runs
                done += len(units)
                if progress:
                    progress(done, total)
        sink.finish()
    except BaseException:
        if aside is not None:
            aside.stop()
        raise
    finally:
        sink.close()
        source.close()
    outcome.problems = source.problems + sink.problems
    outcome.fitted = sink.fitted
    outcome.rekeyed = sink.rekeyed
    outcome.skipped_sessions = sink.skipped_sessions
    # (copy_tables reports progress per table, not (done, total): no bar for the other tables)
    if aside is not None:
        outcome.tables = aside.result()
    else:
        outcome.tables = copy_other_tables(source.target, target, if_exists=sink.if_exists, batch=batch)
    if verify:
        from agno_migrate.move.verify import verify as run_verify

        outcome.verify = run_verify(src, target)
    return outcome


def copy_other_tables(source: Target, target: Target, **options) -> Any:
    """The other Agno tables (memories, evals, ...), copied by ``agno_migrate.move.tables.copy_tables``."""
    from agno_migrate.move import tables

    return tables.copy_tables(source, target, **options)


def _same(a: Target, b: Target) -> bool:
    if dialect_of(a).sql != dialect_of(b).sql:
        return False
    strip = lambda url: url.split("?")[0]  # noqa: E731 - (SQLite's mode=ro)
    return strip(a.url) == strip(b.url) and a.schema == b.schema and a.session_table == b.session_table
