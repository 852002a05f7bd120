"""``agno-migrate export`` and ``import``: an Agno database through a file (docs/export-format.md).

``export`` reads the source through :mod:`agno_migrate.move.source` (any version this tool knows,
Agno 1.x included, read-only, as head rows) and writes the sessions a :class:`Selection` picks, one
line each with its runs (:mod:`agno_migrate.move.jsonl`). ``import_`` writes a file's sessions
through :mod:`agno_migrate.move.sink`, as ``copy`` writes: the target created at head, refused when it
holds sessions or runs unless ``if_exists`` says how to merge, a checkpoint per batch (the file's
line), so that an import killed or stopped by a bad line resumes when run again with the same file.
"""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from agno_migrate.errors import EXIT_INCOMPLETE, EXIT_OK, Incomplete
from agno_migrate.move.fit import Fitted
from agno_migrate.move.jsonl import Counts, ExportFile, ExportWriter, SessionRecord, TableRecord
from agno_migrate.move.rows import Problem, SessionUnit
from agno_migrate.move.sink import open_sink
from agno_migrate.move.source import open_source
from agno_migrate.selection import Selection
from agno_migrate.target import Target, resolve

DEFAULT_BATCH = 500
Progress = Callable[[int, int], None]


@dataclass
class ExportOutcome:
    """What an export wrote (``counts``), from where, with which filters; ``problems``: what the
    source could not give as it is (named, as ``copy`` names them; ``exported`` False: not at all)."""

    source: str
    path: str
    source_version: str | None
    selection: Selection
    counts: Counts = field(default_factory=Counts)
    problems: list[Problem] = field(default_factory=list)
    tables: Any = None

    @property
    def exit_code(self) -> int:
        return EXIT_INCOMPLETE if any(not p.copied for p in self.problems) else EXIT_OK

    def as_dict(self) -> dict:
        return {
            "source": self.source,
            "path": self.path,
            "source_version": self.source_version,
            "filters": self.selection.as_dict(),
            **self.counts.as_dict(),
            "problems": [vars(p) for p in self.problems],
            "exit_code": self.exit_code,
        }


@dataclass
class ImportOutcome:
    """What an import wrote into ``target`` from ``path``: sessions and runs written, sessions the
    target already held (``skipped_sessions``), the file's counts, and what the rules of the target's
    backend changed (``fitted``) or could not store (``problems``), as ``copy`` reports them."""

    path: str
    target: str
    header: dict
    sessions: int = 0
    runs: int = 0
    skipped_sessions: int = 0
    resumed: bool = False
    counts: Counts = field(default_factory=Counts)
    problems: list[Problem] = field(default_factory=list)
    fitted: Fitted = field(default_factory=Fitted)
    rekeyed: list = field(default_factory=list)
    tables: Any = None

    @property
    def exit_code(self) -> int:
        return EXIT_INCOMPLETE if any(not p.copied or p.what.endswith("not copied") for p in self.problems) else EXIT_OK

    def as_dict(self) -> dict:
        return {
            "path": self.path,
            "target": self.target,
            "source": self.header.get("source"),
            "exported_at": self.header.get("created_at"),
            "sessions": self.sessions,
            "runs": self.runs,
            "skipped_sessions": self.skipped_sessions,
            "resumed": self.resumed,
            "file": self.counts.as_dict(),
            "problems": [vars(p) for p in self.problems],
            "values_changed": self.fitted.as_dict(),
            "runs_rekeyed": [r._asdict() for r in self.rekeyed],
            "exit_code": self.exit_code,
        }


def export(
    src: Any,
    path: str,
    *,
    batch: int = DEFAULT_BATCH,
    progress: Progress | None = None,
    **filters: Any,
) -> ExportOutcome:
    """Write the sessions of ``src`` (URL, Target or Agno Db object; any version this tool knows,
    never written) that the ``filters`` pick (``user_id``, ``agent_id``, ``team_id``,
    ``workflow_id``, ``since``: epoch seconds, a datetime or ISO text, ``session_type``: see
    :class:`agno_migrate.selection.Selection`) into ``path`` (``.gz``: gzip), one line per session
    with its runs, as head rows. The file appears whole or not at all (written as ``path.part``,
    then renamed). Raises UsageError (a bad or unknown filter, an unwritable path, a value JSON
    cannot hold), SchemaDrift, ConnectFailed."""
    selection = Selection.named(**filters)
    given = resolve(src)
    source = open_source(given)
    outcome = ExportOutcome(given.masked_url, str(path), source.version, selection)
    try:
        names = {"sessions": given.session_table, "runs": given.runs_table}
        with ExportWriter(path, given.masked_url, selection.as_dict(), names) as writer:
            total = source.count_sessions() if progress else 0
            done = 0
            for units in source.session_batches(None, batch):
                for unit in units:
                    if selection.matches(unit.session):
                        writer.session(unit.session, unit.runs)
                done += len(units)
                if progress:
                    progress(done, total)
            if not selection.as_dict():  # the other tables belong to no session: only a whole export has them
                outcome.tables = export_other_tables(source.target, writer)
        outcome.counts = writer.counts
    finally:
        source.close()
    outcome.problems = source.problems
    return outcome


def import_(
    dst: Any,
    path: str,
    *,
    if_exists: str | None = None,
    batch: int = DEFAULT_BATCH,
    progress: Progress | None = None,
) -> ImportOutcome:
    """Load the export file ``path`` into ``dst`` (URL, Target or Agno Db object; its own table names),
    created at head. ``dst`` holding sessions or runs is refused (Refused, exit 8) before any change
    unless ``if_exists`` is ``skip`` (its sessions kept, the file's others written) or ``replace`` (the
    file's sessions replace those of the same id, with their runs); one holding this file's
    unfinished import resumes after its checkpoint. Raises UsageError for a file that is not an
    export of this format (before any change) or a bad line (named; what came before it is written,
    and the import resumes from there when run again), Incomplete (exit 9) for a file cut short
    (what it holds is written)."""
    target = resolve(dst)
    with ExportFile(path) as file:
        outcome = ImportOutcome(str(path), target.masked_url, file.header)
        sink = open_sink(target, if_exists, _identity(file.header))
        finished = False
        try:
            after = sink.prepare()
            outcome.resumed = sink.resumed
            for units in _batches(file, int(after) if after else 0, batch, outcome):
                sessions, runs = sink.write(units)
                outcome.sessions += sessions
                outcome.runs += runs
                if progress:
                    progress(outcome.sessions, 0)
            finished = True
        except Incomplete:  # cut short: what the file holds is written, the target is whole
            sink.finish()
            raise
        finally:
            if finished:
                sink.finish()
            sink.close()
            outcome.counts = file.counts
            outcome.problems, outcome.fitted, outcome.rekeyed = sink.problems, sink.fitted, sink.rekeyed
            outcome.skipped_sessions = sink.skipped_sessions
    return outcome


def _batches(file: ExportFile, after: int, size: int, outcome: ImportOutcome) -> Iterator[list[SessionUnit]]:
    """The file's sessions as units of ``size``, each one's cursor its number in the file (a resumed
    import skips those up to ``after``); the other tables' rows go to :func:`import_other_table`."""
    units: list[SessionUnit] = []
    number = 0
    records = iter(file)
    while True:
        try:
            record = next(records, None)
        except Incomplete:  # cut short: what was read is written first
            if units:
                yield units
            raise
        if record is None:
            break
        if isinstance(record, TableRecord):
            import_other_table(record, outcome)
            continue
        assert isinstance(record, SessionRecord)
        number += 1
        if number <= after:
            continue
        units.append(SessionUnit(record.session, record.runs, str(number), str(file.path.name)))
        if len(units) >= size:
            yield units
            units = []
    if units:
        yield units


def _identity(header: dict) -> str:
    """What names a file's import in the target's checkpoints: its header (the source and the moment
    of the export), hashed."""
    from agno_migrate.move.jsonl import encode

    return "export-file:" + hashlib.sha256(encode(header)).hexdigest()[:32]


# --- the other Agno tables (memories, evals, ...): the single call sites, for agno_migrate.move.tables


def export_other_tables(source: Target, writer: ExportWriter) -> Any:
    """The other Agno tables' rows into the file (``writer.table_row``) once
    ``agno_migrate.move.tables`` exists (built beside this module); until then None: sessions and
    runs only."""
    if importlib.util.find_spec("agno_migrate.move.tables") is None:
        return None
    return None  # TODO(copytables): stream each table's head rows through writer.table_row(family, table, row)


def import_other_table(record: TableRecord, outcome: ImportOutcome) -> None:
    """A row of another Agno table: written once ``agno_migrate.move.tables`` can write head rows;
    until then named, not written."""
    outcome.problems.append(
        Problem(record.table, "", f"a {record.family} row: other tables are not imported yet, not copied", False)
    )
