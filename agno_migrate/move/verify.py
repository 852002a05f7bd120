"""``agno-migrate verify``: two Agno databases compared table by table, as head rows.

Both sides are read through :class:`agno_migrate.move.source.Source` (so a 2.x or 1.x database is
compared as its head form, read-only), each row normalised by the rules of values a backend cannot
hold that either side's backend applies (``move.fit``: a NUL removed on PostgreSQL is no difference),
and a run stored under the derived id of its own id (``convert.rekey_runs``) counts as its own id.
Each session and each run gets a digest (sha256 of the canonical JSON of its head row); sessions are
keyed by id, runs by session, position and id; the other Agno tables' rows by their key
(``move.tables.table_digests``). Memory: one digest per row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agno_migrate.backends import dialect_of
from agno_migrate.convert import derived_run_id
from agno_migrate.move.digest import digest
from agno_migrate.move.fit import Rules, fit_unit
from agno_migrate.move.source import open_source

SHOWN = 20
"""How many differing ids of each kind are listed (all are counted)."""


@dataclass
class TableDiff:
    """One table compared: row counts, and what differs (ids listed up to SHOWN, all counted)."""

    name: str
    rows: tuple[int, int]
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    counts: dict = field(default_factory=lambda: {"missing": 0, "extra": 0, "changed": 0})

    @property
    def equal(self) -> bool:
        return not any(self.counts.values()) and self.rows[0] == self.rows[1]

    def as_dict(self) -> dict:
        return {
            "table": self.name,
            "rows": list(self.rows),
            "equal": self.equal,
            **{f"{kind}_count": count for kind, count in self.counts.items()},
            "missing": self.missing,
            "extra": self.extra,
            "changed": self.changed,
        }


@dataclass
class VerifyOutcome:
    """``tables``: sessions, runs and every other Agno table compared; ``equal`` when nothing differs."""

    source: str
    target: str
    tables: list[TableDiff]

    @property
    def equal(self) -> bool:
        return all(t.equal for t in self.tables)

    def as_dict(self) -> dict:
        return {
            "source": self.source,
            "target": self.target,
            "equal": self.equal,
            "tables": [t.as_dict() for t in self.tables],
        }


def _run_key(run: dict) -> tuple[str, dict]:
    """A run's key (session, position, id) and its row, a re-keyed id counted as its own id."""
    data = run.get("run_data") if isinstance(run.get("run_data"), dict) else {}
    own = data.get("run_id")
    run_id = run.get("run_id")
    if own and run_id != own and run_id == derived_run_id(run["session_id"], run.get("run_index"), own):
        run = {**run, "run_id": own}
    return f"{run['session_id']}\x1f{run.get('run_index')}\x1f{run['run_id']}", run


def digests(db: Any, rules: Rules, size: int = 500) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """(session id -> digest, run key -> digest) of every session and run of ``db`` (read-only)."""
    source = open_source(db)
    sessions: dict[str, bytes] = {}
    runs: dict[str, bytes] = {}
    try:
        for units in source.session_batches(None, size):
            for unit in units:
                session, unit_runs = fit_unit(unit.session, unit.runs, rules)
                sessions.setdefault(str(session["session_id"]), digest(session))
                for run in unit_runs:
                    key, row = _run_key(run)
                    runs[key] = digest(row)
    finally:
        source.close()
    return sessions, runs


def _compare(name: str, a: dict[str, bytes], b: dict[str, bytes]) -> TableDiff:
    diff = TableDiff(name, (len(a), len(b)))
    for kind, ids in (
        ("missing", (k for k in a if k not in b)),
        ("extra", (k for k in b if k not in a)),
        ("changed", (k for k in a if k in b and a[k] != b[k])),
    ):
        for key in ids:
            diff.counts[kind] += 1
            if len(getattr(diff, kind)) < SHOWN:
                getattr(diff, kind).append(key.replace("\x1f", "/"))
    return diff


def verify(src: Any, dst: Any) -> VerifyOutcome:
    """Compare ``src`` and ``dst`` (URLs, Targets or Agno Db objects; any version this tool knows),
    table by table: row counts and a digest per session and per run. Reads only."""
    from agno_migrate.target import resolve

    a, b = resolve(src), resolve(dst)
    rules = Rules.of(dialect_of(a), dialect_of(b))
    sessions_a, runs_a = digests(a, rules)
    sessions_b, runs_b = digests(b, rules)
    tables = [
        _compare(b.session_table, sessions_a, sessions_b),
        _compare(b.runs_table, runs_a, runs_b),
        *verify_tables(a, b),
    ]
    return VerifyOutcome(a.masked_url, b.masked_url, tables)


def verify_tables(src: Any, dst: Any) -> list[TableDiff]:
    """Every other Agno table of ``src`` (memories, evals, ...) compared with its copy in ``dst``: row
    counts and the digest of each head row by key (``move.tables.table_digests``)."""
    from agno_migrate.move.tables import table_digests
    from agno_migrate.target import resolve

    return [_compare(name, want, have) for name, want, have in table_digests(resolve(src), resolve(dst))]
