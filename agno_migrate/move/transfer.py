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
import time
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
            "tables": self.tables,
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
            "tables": self.tables.as_dict() if self.tables is not None else None,
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
        # the other tables belong to no session: only a whole export has them
        plans = [] if selection.as_dict() else other_table_plans(source.target)
        names = {"sessions": given.session_table, "runs": given.runs_table, **{p.family: p.target for p in plans}}
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
            if plans:
                outcome.tables = export_other_tables(source.target, plans, writer, batch)
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
        identity = _identity(file.header)
        sink = open_sink(target, if_exists, identity)
        others = TableImport(target, if_exists, batch, identity)
        finished = False
        try:
            others.refuse(file.header.get("tables") or {})  # (reads only) before the sink's refusal and changes
            after = sink.prepare()
            outcome.resumed = sink.resumed
            for units in _batches(file, int(after) if after else 0, batch, others):
                sessions, runs = sink.write(units)
                outcome.sessions += sessions
                outcome.runs += runs
                if progress:
                    progress(outcome.sessions, 0)
            finished = True
        except Incomplete:  # cut short: what the file holds is written, the target is whole
            sink.finish()
            outcome.tables = others.finish()
            raise
        finally:
            if finished:
                sink.finish()
                outcome.tables = others.finish()
            sink.close()
            outcome.counts = file.counts
            outcome.problems, outcome.fitted, outcome.rekeyed = sink.problems, sink.fitted, sink.rekeyed
            outcome.skipped_sessions = sink.skipped_sessions
    return outcome


def _batches(file: ExportFile, after: int, size: int, others: TableImport) -> Iterator[list[SessionUnit]]:
    """The file's sessions as units of ``size``, each one's cursor its number in the file (a resumed
    import skips those up to ``after``); the other tables' rows go to ``others``."""
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
            others.add(record)
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


# --- the other Agno tables (memories, evals, ...), as ``move.tables`` copies them -----------------------


def other_table_plans(source: Target) -> list:
    """What ``move.tables`` would copy of ``source``'s other Agno tables: one plan per family (its
    head columns and the table it is in; Agno 1.x memory tables go to the memories family)."""
    from agno_migrate.move import tables

    return tables.plan(source, source)


def export_other_tables(source: Target, plans: list, writer: ExportWriter, batch: int) -> dict:
    """Every row of the other tables into the file (``writer.table_row``), as the head rows a copy
    writes (``move.tables.HeadRows``, the target's fitting left to the import). Returns rows per family."""
    from agno_migrate.move import tables

    now = int(time.time())
    rows_per_family: dict[str, int] = {}
    for plan in plans:
        reader = tables.HeadRows(source, None, plan, now)
        report = tables.TableCopied(plan.family, plan.target, [s.table for s in plan.sources])
        for table in plan.sources:
            for rows, _ in reader.batches(table, batch, None, report):
                for row in rows:
                    writer.table_row(plan.family, plan.target, row)
                rows_per_family[plan.family] = rows_per_family.get(plan.family, 0) + len(rows)
    return rows_per_family


class TableImport:
    """The other tables' lines of a file, written into ``target`` as ``move.tables`` writes a copy:
    each table created at its head layout on the target's backend, rows fitted to what the target
    holds (counted and named), written in batches with a checkpoint (its line count) so that a
    resumed import skips what it wrote, then indexed and stamped."""

    def __init__(self, target: Target, if_exists: str | None, batch: int, identity: str):
        from agno_migrate.move import table_io

        self.target = target
        self.identity = identity  # the file's (its checkpoints name it)
        self.if_exists = if_exists
        self.batch = batch
        self.side = table_io.side(target)
        self.now = int(time.time())
        self.plans: dict[str, Any] = {}
        self.reports: dict[str, Any] = {}
        self.fitters: dict[str, Any] = {}  # family -> the HeadRows whose rules fit a row to the target
        self.pending: dict[str, list[dict]] = {}
        self.seen: dict[str, int] = {}  # lines read per family
        self.resume: dict[str, int] = {}  # lines an interrupted import of this file wrote, per family

    def plan(self, family: str, table: str):
        found = self.plans.get(family)
        if found is None:
            from agno_migrate.backends import dialect_of
            from agno_migrate.move import tables

            name = self.target.tables.get(family, table)
            found = tables._plan(family, name, dialect_of(self.target).name, [])
            self.plans[family] = found
        return found

    def _resumes(self, plan) -> dict | None:
        """The checkpoint of this file's unfinished import of ``plan``'s table (rows written, last
        line), if there is one; a finished one, or one of another file or a copy, is not resumed."""
        checkpoint = self.side.checkpoint(plan.target)
        if checkpoint is None or checkpoint.get("done"):
            return None
        last = checkpoint.get("last")
        return checkpoint if isinstance(last, dict) and last.get("table") == self.identity else None

    def refuse(self, header_tables: dict) -> None:
        """Before any change: refuse target tables that hold rows (no interrupted import of ours
        wrote them) unless ``if_exists``, and tables at another layout than head."""
        from agno_migrate.errors import Refused
        from agno_migrate.move import tables
        from agno_migrate.tables import FAMILIES

        busy = []
        for family, table in header_tables.items():
            if family not in FAMILIES or family in ("sessions", "runs"):
                continue
            plan = self.plan(family, table)
            if self._resumes(plan) is None:
                if self.if_exists is None and self.side.nonempty(plan.target):
                    busy.append(plan.target)
                tables._refuse_behind(self.target, plan)
        if busy:
            raise Refused(
                f"{self.target.masked_url} already holds rows in {', '.join(busy)}: nothing was imported "
                "(say how to merge with --if-exists skip|replace)"
            )

    def add(self, record: TableRecord) -> None:
        from agno_migrate.move import tables

        plan = self.plan(record.family, record.table)
        if plan.family not in self.reports:
            resumed = self._resumes(plan)
            report = tables.TableCopied(plan.family, plan.target, [record.table], agno_layout=plan.agno_layout)
            report.rows = resumed["rows"] if resumed else 0
            self.reports[plan.family] = report
            self.resume[plan.family] = resumed["last"]["key"] if resumed else 0
            self.side.prepare(plan.family, plan.target, plan.layout)
        self.seen[plan.family] = self.seen.get(plan.family, 0) + 1
        if self.seen[plan.family] <= self.resume[plan.family]:
            return
        if plan.family not in self.fitters:
            self.fitters[plan.family] = tables.HeadRows(self.target, self.target, plan, self.now)
        fitted = self.fitters[plan.family]._fit(dict(record.row), self.reports[plan.family])
        self.pending.setdefault(plan.family, []).append(tables._stored(plan, fitted))
        if len(self.pending[plan.family]) >= self.batch:
            self.flush(plan.family)

    def flush(self, family: str) -> None:
        rows, self.pending[family] = self.pending.get(family, []), []
        if not rows:
            return
        plan, report = self.plans[family], self.reports[family]
        last = {"table": self.identity, "key": self.seen[family]}
        written = self.side.write(plan.target, plan.key, rows, last, report.rows, self.if_exists == "replace")
        report.rows += written
        report.skipped += len(rows) - written

    def finish(self) -> Any:
        from agno_migrate import registry
        from agno_migrate.move import tables

        for family, plan in self.plans.items():
            if family not in self.reports:
                continue
            self.flush(family)
            stamp = family in registry.AGNO_WALKS and plan.agno_layout
            self.side.finish(family, plan.target, plan.layout, stamp, self.reports[family].rows)
        return tables.TablesCopied(list(self.reports.values())) if self.reports else None
