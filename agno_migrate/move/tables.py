"""Copying the other Agno table types (memories, evals, metrics, knowledge, approvals, schedules,
learnings, culture, traces, spans, components, ...) from one database to another, any backend to any
other, the target at head in its own layout.

* **Found** as ``current`` finds them (``tables.detect_all``: the target's explicit names, default
  names, then fingerprints), plus the Agno 1.x memory tables (``convert.memories.memory_table_kind``).
* **Read** by keyset on the row key and turned into the family's **head row** by the upgrade's rules
  (``convert.tables``: memories' ``created_at`` from ``updated_at``, metrics' ``user_id`` ``''``, every
  other added column NULL; learnings re-keyed by ``convert.learnings`` when the source was written
  before Agno 3.0; 1.x memories by ``convert.memories.convert_v1_memory_row``; the memories of 1.x
  session blobs, after the memory tables, by ``move.blob_memories`` as the upgrade imports them), each
  value in canonical form.
* **Written** to a table created at the head layout of the target's backend (``move.table_ddl``),
  batch by batch with a checkpoint in the target (a killed copy resumes after the last batch); the
  secondary indexes after the load, then Agno's stamp (``registry.AGNO_TABLE_STAMP``) for the
  families Agno's MigrationManager walks. Values the target cannot hold are changed by the rules of
  ``storable.fit_value``, each counted and named (table, key, column), never dropped.
* **Verified** (:func:`table_digests`, compared by ``move.verify``): per table, the row count and a
  SHA-256 per row key of the canonical JSON of each head row, both sides read by the same reader.

The source is only read.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import asdict, dataclass, field

from agno_migrate import registry
from agno_migrate.backends import dialect_of
from agno_migrate.convert import tables as conv
from agno_migrate.errors import Refused
from agno_migrate.jsoncodec import loads
from agno_migrate.move import table_ddl
from agno_migrate.move.ahead import read_ahead
from agno_migrate.move.json_text import JsonText, plain_text
from agno_migrate.move.table_io import TextRefused, side
from agno_migrate.storable import fit_value, text_as_is
from agno_migrate.tables import FAMILIES, family
from agno_migrate.target import Target

MEMORIES = "memories"
EXAMPLES = 20  # transformed values and skipped rows named per table (the rest counted)
_JSON_SPACE = " \t\n\r"


@dataclass
class TableCopied:
    """One target table of a copy."""

    family: str
    target: str
    sources: list[str]
    rows: int = 0
    """Rows the target table holds from this copy (a resumed copy counts the earlier runs' too)."""
    transformed: int = 0
    """Values changed to fit the target (``storable.fit_value``), each named in :attr:`named`."""
    named: list[str] = field(default_factory=list)
    """``<table> <key>: <column>: <what>`` for the first transformed values and skipped rows."""
    skipped: int = 0
    """Source rows not written: 1.x memories that cannot be read, rows merged by the learnings re-key,
    keys the target already held (``if_exists='skip'``)."""
    agno_layout: bool = True
    """False: Agno has no such table on the target's backend; created with another backend's layout."""
    not_copied_columns: list[str] = field(default_factory=list)
    """Source columns that are not in the family's head layout (a user's additions)."""

    def name(self, text: str) -> None:
        if len(self.named) < EXAMPLES:
            self.named.append(text)


@dataclass
class TablesCopied:
    tables: list[TableCopied] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tables)

    @property
    def transformed(self) -> int:
        return sum(t.transformed for t in self.tables)

    def as_dict(self) -> dict:
        return {"tables": [asdict(t) for t in self.tables], "rows": self.rows, "transformed": self.transformed}


# --- what is copied where ------------------------------------------------------------------------------


@dataclass
class Source:
    table: str
    legacy: bool = False
    """An Agno 1.x memory table (rows converted by ``convert.memories``)."""
    sessions: tuple[str, ...] = ()
    """Agno 1.x session tables: the memories their ``memory`` blobs hold (``move.blob_memories``);
    ``table`` is a name for them, keys are positions in their de-duplicated list."""


@dataclass
class Plan:
    family: str
    target: str
    sources: list[Source]
    layout: dict
    agno_layout: bool
    columns: dict[str, str]
    """The head row's columns → backend-neutral type family (``table_ddl.canonical_columns``)."""
    key: tuple[str, ...]
    target_kinds: dict[str, str]
    """The target table's columns → type family on the target's backend (SQL; empty on MongoDB)."""

    def __post_init__(self):
        self.same_columns = set(self.target_kinds) == set(self.columns)
        """A head row holds exactly the target table's columns."""
        self.dated = [(c, kind) for c, kind in self.target_kinds.items() if kind in ("date", "timestamp")]
        """The target table's columns that a driver takes as dates (``conv.stored``)."""


def plan(src: Target, dst: Target) -> list[Plan]:
    """The other Agno tables of ``src`` and the target table each goes to (``dst.tables`` names it,
    else the source table's name; 1.x memory tables and the memories 1.x session rows hold go to the
    memories table)."""
    reader = side(src)
    skip = {src.session_table, src.runs_table, src.agno_versions_table, src.version_table}
    backend = dialect_of(dst).name
    plans: dict[str, Plan] = {}
    for fam_name, found in sorted(reader.detect(src.tables, skip).items()):
        if FAMILIES[fam_name].ours:
            plans[fam_name] = _plan(fam_name, dst.tables.get(fam_name, found.table), backend, [Source(found.table)])
    legacy = sorted(t for t, cols in reader.columns().items() if t not in skip and _v1_memories(cols))
    sessions = _v1_sessions(src)
    if legacy or sessions:
        target = dst.tables.get(MEMORIES, plans[MEMORIES].target if MEMORIES in plans else _default(MEMORIES))
        entry = plans.get(MEMORIES) or _plan(MEMORIES, target, backend, [])
        entry.sources += [Source(t, legacy=True) for t in legacy]
        if sessions:  # after the memory tables: their rows win (as in the upgrade)
            entry.sources.append(Source(" ".join(f"{t}.memory" for t in sessions), sessions=sessions))
        plans[MEMORIES] = entry
    return list(plans.values())


def _v1_sessions(src: Target) -> tuple[str, ...]:
    """The Agno 1.x session tables of ``src``, in the import's order."""
    from agno_migrate.migrate import runner
    from agno_migrate.migrate.detection import MEMORIES as V1_MEMORIES

    return tuple(t.name for t in runner.current(src).legacy if t.mode != V1_MEMORIES)


def _v1_memories(columns: set[str]) -> bool:
    from agno_migrate.convert.memories import memory_table_kind

    return memory_table_kind(columns) is not None


def _default(fam: str) -> str:
    return family(fam).default_name


def _plan(fam: str, target: str, backend: str, sources: list[Source]) -> Plan:
    layout, ours = table_ddl.head_layout(fam, backend)
    kinds = {c: kind for c, (kind, _) in layout.get("columns", {}).items()}
    return Plan(
        fam, target, sources, layout, ours, table_ddl.canonical_columns(fam), table_ddl.key_columns(fam, backend), kinds
    )


def target_tables_nonempty(src: Target, dst: Target) -> list[str]:
    """The target tables a copy of ``src`` would write that already hold rows in ``dst`` (a table an
    interrupted copy was writing is not counted: the copy resumes it). Changes nothing."""
    return _busy(plan(src, dst), side(dst))


def _busy(plans: list[Plan], writer) -> list[str]:
    return [p.target for p in plans if writer.checkpoint(p.target) is None and writer.nonempty(p.target)]


# --- reading head rows -----------------------------------------------------------------------------------


class HeadRows:
    """The head rows of one plan's sources, batch by batch, as they are to be written to ``dst``."""

    def __init__(self, src: Target, dst: Target | None, p: Plan, now: int):
        self.reader = side(src)
        self.encoded = dialect_of(src).sql
        self.plan = p
        self.now = now
        self.dst = dialect_of(dst) if dst is not None else None
        self.keep_text = False
        """Give a JSON column's stored text unparsed where exact (:meth:`_json_value`); set by the copy
        (``_copy_one``) for a target that parses JSON text itself, into a table it created, new rows only."""
        self._json = frozenset(c for c, kind in p.columns.items() if kind in conv.JSON_KINDS)
        self._bool = frozenset(c for c, kind in p.columns.items() if kind in conv.BOOL_KINDS)

    def batches(
        self, source: Source, size: int, after=None, report: TableCopied | None = None, claimed: set | None = None
    ) -> Iterator:
        """(head rows, the last source key read) per batch of ``source``, after the key ``after``;
        ``claimed`` receives the ids of 1.x memory rows that cannot be read."""
        p = self.plan
        if source.sessions:
            yield from self._session_memories(source, size, after, report)
            return
        kinds = self.reader.kinds(source.table) if self.encoded else {}
        key = ("id",) if source.legacy else p.key
        if kinds and report is not None and not source.legacy:
            extra = [f"{source.table}.{c}" for c in sorted(set(kinds) - set(p.columns))]
            report.not_copied_columns += [c for c in extra if c not in report.not_copied_columns]
        rekey = self._rekey(source, kinds)
        # stored JSON text kept only where no rule but fitting applies (1.x memories, the learnings re-key: decoded)
        text_of = source.table if self.keep_text and self.encoded and not source.legacy and rekey is None else None
        for raw, last in self.reader.batches(source.table, kinds, key, size, after):
            rows = []
            for row in raw:
                head = self._head(source, row, rekey, report, claimed, text_of)
                if head is not None:
                    rows.append(head)
            yield rows, last

    def _session_memories(self, source: Source, size: int, after, report: TableCopied | None) -> Iterator:
        """The memories of the 1.x session blobs that the plan's memory tables do not give
        (``move.blob_memories``), ``size`` a batch; the key is the position in that list."""
        from agno_migrate.move.blob_memories import session_memory_rows

        def problem(text: str) -> None:
            if report is not None:
                report.skipped += 1
                report.name(text)

        claimed: set[str] = set()
        held = (
            row
            for other in self.plan.sources
            if not other.sessions
            for rows, _ in self.batches(other, size, claimed=claimed)
            for row in rows
        )
        found = session_memory_rows(self.reader, source.sessions, held, claimed, size, problem)
        start = after or 0
        for at in range(start, len(found), size):
            rows = [conv.head_row(self.plan.family, row, self.plan.columns, self.now) for row in found[at : at + size]]
            yield [self._fit(row, report) for row in rows] if self.dst is not None else rows, at + len(rows)

    def _head(
        self, source: Source, raw: dict, rekey, report: TableCopied | None, claimed=None, text_of: str | None = None
    ) -> dict | None:
        p = self.plan
        if source.legacy:
            from agno_migrate.convert.memories import MemoryConversionError, convert_v1_memory_row

            try:
                row = convert_v1_memory_row(raw, fallback_time=self.now)
            except MemoryConversionError as exc:
                if claimed is not None:
                    claimed.add(str(raw.get("id")))
                if report is not None:
                    report.skipped += 1
                    report.name(f"{source.table} {raw.get('id')}: not imported: {exc}")
                return None
        else:
            row = self._canonical(raw, text_of)
        if rekey is not None:
            row = rekey(row, report)
            if row is None:
                return None
        head = conv.head_row(p.family, row, p.columns, self.now)
        return self._fit(head, report) if self.dst is not None else head

    def _canonical(self, raw: dict, text_of: str | None = None) -> dict:
        """``raw`` in canonical form (``conv.canonical``); ``text_of`` (the source table): JSON columns
        by :meth:`_json_value`."""
        kinds, json_columns, bool_columns, encoded = self.plan.columns, self._json, self._bool, self.encoded
        out = {}
        for c, v in raw.items():
            cls = v.__class__
            if v is None or (cls is str and c not in json_columns) or (cls in (int, float) and c not in bool_columns):
                out[c] = v  # (canonical already: conv.canonical gives it back)
            elif text_of is not None and c in json_columns:
                out[c] = self._json_value(v, text_of, c)
            else:
                out[c] = conv.canonical(kinds.get(c, ""), v, encoded=encoded)
        out.pop("_id", None)
        return out

    def _json_value(self, value, table: str, column: str):
        """A JSON column's stored value as :class:`~agno_migrate.move.json_text.JsonText` where the
        server's parse of that text gives what ``conv.decode_json_column`` gives (``json_text.plain_text``):
        the text of an object or array, or one string layer holding one (the double encoding of SQLite;
        ``decode_json_column`` peels a further layer only when it holds an object or array, so text of
        more layers is decoded). Decoded otherwise, as ``conv.canonical`` decodes it."""
        if value.__class__ is str:
            first = value.lstrip(_JSON_SPACE)[:1]
            if first == "{" or first == "[":
                text = plain_text(value, table, column)
                if text is not None:
                    return text
            elif first == '"':
                try:
                    inner = loads(value)
                except ValueError:
                    return value  # (not JSON: kept as the text, as decode_json_column keeps it)
                if inner.__class__ is str and inner.lstrip(_JSON_SPACE)[:1] in ("{", "["):
                    text = plain_text(inner, table, column)
                    if text is not None:
                        text.original = value  # (settled from the stored value: see settle)
                        return text
                return conv.decode_json_column(inner, encoded=False)  # (the layers after the first)
        return conv.canonical(self.plan.columns[column], value, encoded=self.encoded)

    def settle(self, row: dict, report: TableCopied | None) -> dict:
        """``row`` with each :class:`~agno_migrate.move.json_text.JsonText` decoded from its stored value
        and fitted: the values the copy writes without stored text (a batch the server refused)."""
        for column, value in row.items():
            if value.__class__ is JsonText:
                self._fit_value(row, column, conv.decode_json_column(value.original, encoded=True), report)
        return row

    def _fit(self, row: dict, report: TableCopied | None) -> dict:
        """``row`` as the target holds it (``storable.fit_value``); what changed, counted and named."""
        d = self.dst
        for column, value in row.items():
            cls = value.__class__
            if (
                value is None
                or cls is bool
                or cls is JsonText  # (json_text.plain_text keeps none that a rule applies to)
                or (cls is int and d.sql)
                or (cls is str and text_as_is(value, d.stores_nul))
            ):
                continue  # (what no rule of fit_value can change)
            self._fit_value(row, column, value, report)
        return row

    def _fit_value(self, row: dict, column: str, value, report: TableCopied | None) -> None:
        """``row[column] = value`` as the target holds it; what changed, counted and named."""
        d = self.dst
        json_column = self.plan.columns[column] == "json"
        notes = []
        if not json_column and isinstance(value, (dict, list)) and d.sql:
            value, notes = json.dumps(value, sort_keys=True, default=str), ["a JSON value stored as its text"]
        value, more = fit_value(
            value,
            nul=d.stores_nul,
            bson=not d.sql,
            finite=json_column and d.json_finite_only,
            max_depth=d.json_max_depth if json_column else None,
        )
        notes += more
        row[column] = value
        if notes and report is not None:
            report.transformed += 1
            report.name(f"{self.plan.target} {_key_text(row, self.plan.key)}: {column}: {'; '.join(notes)}")

    def _rekey(self, source: Source, kinds: dict) -> Callable | None:
        """Agno 3.0.0's learnings re-key, for a learnings table stamped before 3.0.0: the plan made
        from the rows it walks (``convert.learnings``), applied as each row passes."""
        if self.plan.family != "learnings" or source.legacy:
            return None
        from agno_migrate.convert.learnings import ENTITY, USER, lookup_ids, plan_rekey

        stamp = self.reader.stamp(source.table)
        if stamp is not None and _point(stamp) >= _point(registry.AGNO_TABLE_STAMP):
            return None
        canon = self.plan.columns

        def read(rows):
            return [self._canonical(r) for r in rows]

        walked = read(self.reader.where(source.table, kinds, {"learning_type": ENTITY, "namespace": USER}))
        wanted = sorted(lookup_ids(walked))
        targets = read(self.reader.where(source.table, kinds, column="learning_id", values=wanted)) if wanted else []
        rekey = plan_rekey({r.get("learning_id"): r for r in walked + targets}.values())
        if not rekey.changes:
            return None
        moves = {m.old_id: m for m in rekey.moves}
        merged_away = {m.source_id: m.target_id for m in rekey.merges}
        merged_into = {m.target_id: m.fields for m in rekey.merges}

        def apply(row: dict, report: TableCopied | None) -> dict | None:
            lid = row.get("learning_id")
            if lid in merged_away:
                if report is not None:
                    report.skipped += 1
                    report.name(f"{source.table} {lid}: merged into {merged_away[lid]} (Agno 3.0.0's re-key)")
                return None
            if lid in moves:
                return {**row, "learning_id": moves[lid].new_id, "namespace": moves[lid].namespace}
            if lid in merged_into:
                return {**row, **{k: v for k, v in merged_into[lid].items() if k in canon}}
            return row

        return apply


def _point(stamp: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in stamp.split("."))
    except ValueError:
        return (0,)


def _key_text(row: dict, key: tuple[str, ...]) -> str:
    return "/".join(str(row.get(k)) for k in key)


# --- copying ---------------------------------------------------------------------------------------------


def copy_tables(
    src: Target, dst: Target, *, if_exists: str | None, batch: int, progress: Callable[[str, int], None] | None = None
) -> TablesCopied:
    """Copy every other Agno table of ``src`` into ``dst`` at head (see the module docstring).

    ``if_exists``: None refuses (Refused, nothing changed) when a target table already holds rows
    that no interrupted copy wrote; ``"skip"`` keeps the rows the target holds (same key) and
    adds the others; ``"replace"`` overwrites them. ``batch``: rows per read and per write.
    ``progress(table, rows)`` is called after each batch. A copy killed part-way resumes from each
    table's checkpoint; a table a finished copy wrote is not copied again, unless ``if_exists``
    says how to merge (then it is merged again from its start)."""
    plans = plan(src, dst)
    writer = side(dst)
    if if_exists is None:
        busy = _busy(plans, writer)
        if busy:
            raise Refused(
                f"{dst.masked_url} already holds rows in {', '.join(busy)}: nothing was copied "
                "(say how to merge with --if-exists skip|replace)"
            )
    for p in plans:
        if writer.checkpoint(p.target) is None:
            _refuse_behind(dst, p)
    now = int(time.time())
    done = TablesCopied()
    for p in plans:
        done.tables.append(_copy_one(src, dst, writer, p, if_exists, batch, progress, now))
    return done


def _refuse_behind(dst: Target, p: Plan) -> None:
    """Refused when the target already has the table at another layout than head (upgrade it first)."""
    if not p.agno_layout:
        return
    found = side(dst).detect({p.family: p.target}, set())
    det = found.get(p.family)
    if det is not None and not det.at_head:
        raise Refused(
            f"{dst.masked_url}: {p.target} exists and is not at head ({det.version or 'drift'}); "
            "run agno-migrate upgrade on the target first, or copy into another table"
        )


def _copy_one(src, dst, writer, p: Plan, if_exists, batch, progress, now) -> TableCopied:
    report = TableCopied(p.family, p.target, [s.table for s in p.sources], agno_layout=p.agno_layout)
    cp = writer.checkpoint(p.target) or {}
    if cp.get("done") and if_exists is not None:
        cp = {}  # a finished copy's table merged again, as asked: from the start
    report.rows = cp.get("rows") or 0
    if cp.get("done"):
        return report
    # a table begun by this copy, empty, from one source: no key of a batch can be held (SqlSide.write)
    fresh = not cp and len(p.sources) == 1 and not writer.nonempty(p.target)
    created = writer.prepare(p.family, p.target, p.layout)
    reader = HeadRows(src, dst, p, now)
    # stored JSON text to a server that parses it, into a table of the head layout this copy created, new rows only
    target = dialect_of(dst)
    reader.keep_text = bool(fresh and created and target.parses_json_text and not target.json_max_depth)
    resume = cp.get("last")
    for source in p.sources:
        # a resumed copy starts at the source table its checkpoint names ({table: key}); earlier ones are done
        after = None
        if resume is not None:
            if resume.get("table") != source.table:
                continue
            after, resume = resume.get("key"), None
        held = 0  # (added to report.skipped after the reading, which counts into it from its thread)
        with closing(read_ahead(reader.batches(source, batch, after, report))) as batches:  # (its thread ends with it)
            for rows, last in batches:
                wanted = len(rows)
                stored = [_stored(p, r) for r in rows]
                mark, replace = {"table": source.table, "key": last}, if_exists == "replace"
                try:
                    written = writer.write(p.target, p.key, stored, mark, report.rows, replace, fresh)
                except TextRefused:  # stored JSON text the server does not take: the batch again, every value decoded
                    stored = [reader.settle(r, report) for r in stored]
                    written = writer.write(p.target, p.key, stored, mark, report.rows, replace, fresh)
                report.rows += written
                held += wanted - written
                if progress is not None:
                    progress(p.target, report.rows)
        report.skipped += held
    stamp = p.family in registry.AGNO_WALKS and p.agno_layout
    writer.finish(p.family, p.target, p.layout, stamp, report.rows)
    return report


def _stored(p: Plan, row: dict) -> dict:
    """A head row as the target's driver takes it: only the target table's columns (SQL), dates as dates
    (``row`` itself, changed, when it holds exactly the target table's columns)."""
    if not p.target_kinds:
        return row
    out = row if p.same_columns else {c: row.get(c) for c in p.target_kinds}
    for c, kind in p.dated:
        out[c] = conv.stored(kind, out[c])
    return out


# --- verifying -----------------------------------------------------------------------------------------


def table_digests(src: Target, dst: Target, batch: int = 1000) -> Iterator[tuple[str, dict, dict]]:
    """For every other Agno table of ``src`` and its copy in ``dst``: (the target table's name, key ->
    digest of the source's head row as the copy writes it (fitted to the target), key -> digest of the
    target's row). ``move.verify`` compares them; the digest is the one of sessions and runs."""
    from agno_migrate.move.digest import digest

    now = int(time.time())
    for p in plan(src, dst):
        theirs = HeadRows(src, dst, p, now)
        want: dict[str, bytes] = {}
        for source in p.sources:
            for rows, _ in theirs.batches(source, batch):
                want.update((_key_text(r, p.key), digest(_comparable(p, r))) for r in rows)
        have: dict[str, bytes] = {}
        if side(dst).exists(p.target):
            ours = HeadRows(dst, None, p, now)
            for rows, _ in ours.batches(Source(p.target), batch):
                have.update((_key_text(r, p.key), digest(_comparable(p, r))) for r in rows)
        yield p.target, want, have


def _comparable(p: Plan, row: dict) -> dict:
    """The columns both sides hold (a target table of another backend's layout may lack some)."""
    if not p.target_kinds:
        return row
    return {c: v for c, v in row.items() if c in p.target_kinds}
