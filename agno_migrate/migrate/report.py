"""What an upgrade reports: :class:`StepReport` (what the steps met, ``Outcome.report``) and
:class:`LegacyReport` (what the Agno 1.x import met), with a named type for each kind of entry.

Entries are named tuples: cheap to make and to pickle, printed and compared as the tuples they are.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from agno_migrate.convert import Rekeyed


class Unparseable(NamedTuple):
    """A session's value that a step could not read (a runs blob, a JSON string): left as it is."""

    session_id: Any
    reason: str


class NotARun(NamedTuple):
    """An element of a session's runs blob that is not a run object: left in the blob."""

    session_id: str
    index: int
    reason: str


class NulRemoved(NamedTuple):
    """NUL characters removed from a JSON column (PostgreSQL's JSONB cannot hold them): of a session,
    or (``table`` named) of the row of another Agno table whose key is ``session_id``."""

    session_id: str
    column: str
    count: int
    table: str | None = None


class SurrogatesReplaced(NamedTuple):
    """Lone UTF-16 surrogate escapes (``\\ud83d`` without its pair) replaced by ``\\ufffd`` in a JSON
    column (PostgreSQL's JSONB cannot hold them): of a session, or (``table`` named) of another
    Agno table's row whose key is ``session_id``."""

    session_id: str
    column: str
    count: int
    table: str | None = None


class EscapesKept(NamedTuple):
    """``\\u`` escapes of characters the database's encoding cannot hold (an emoji in LATIN1), kept
    as their text in a JSON column cast to JSONB."""

    session_id: str
    column: str
    count: int
    table: str | None = None


class Unstorable(NamedTuple):
    """A MongoDB document that BSON cannot hold (an integer beyond 64 bits, over 16 MB): not written."""

    collection: str
    key: Any
    reason: str


class RowProblem(NamedTuple):
    """An Agno 1.x row not imported: unreadable, or its session id already stored with other content."""

    table: str
    session_id: str
    reason: str


class FilledRow(NamedTuple):
    """An Agno 1.x row without ``created_at``, imported with its ``updated_at`` (or 0) instead."""

    table: str
    session_id: str


class DeepAsText(NamedTuple):
    """An Agno 1.x row whose JSON nested deeper than the backend holds (MariaDB): ``count`` parts
    were stored as their JSON text (``storable.text_beyond_depth``)."""

    table: str
    session_id: str
    count: int


class LearningRekeyed(NamedTuple):
    """A learning row Agno 3.0.0's re-key met (``convert.learnings``): ``outcome`` is its bucket
    (rekeyed, merged, quarantined, unowned, malformed, contaminated_keyed, conflicts, failed);
    ``detail`` what a merge dropped as Agno drops it."""

    table: str
    learning_id: str
    outcome: str
    detail: str = ""


_COUNTS = ("runs_copied", "documents_decoded", "ddl_retries")


class StepReport(Mapping):
    """What the steps of one upgrade or downgrade met (``Outcome.report``).

    Steps add to it with the methods below: the SQL revisions find it in ``ctx.opts["agno_report"]``,
    the MongoDB steps as ``step.report``. Read it by attribute (``report.runs_copied``, None when no
    step copied runs) or, as a read-only mapping, by name: the entries reported so far, in the order
    first reported (a list once it has an item, a count once a step set it, ``legacy`` once the
    import ran) — the form ``Outcome.as_dict()`` and the CLI's ``--json`` show.
    """

    def __init__(self) -> None:
        self._entries: dict[str, Any] = {}

    # --- what the steps report --------------------------------------------------------------------

    def add_runs_copied(self, count: int) -> None:
        """Runs the 3.0.0 step wrote into the runs table or collection (0 counts: the step ran)."""
        self._add("runs_copied", count)

    def add_documents_decoded(self, count: int) -> None:
        """Sessions whose JSON strings the MongoDB 2.3.0 step decoded into documents."""
        self._add("documents_decoded", count)

    def add_ddl_retry(self) -> None:
        """One statement of an online upgrade that gave up waiting for its lock and was retried."""
        self._add("ddl_retries", 1)

    def note_unparseable(self, session_id: Any, reason: str) -> None:
        self._note("unparseable", Unparseable(session_id, reason))

    def note_not_a_run(self, session_id: str, index: int, reason: str) -> None:
        self._note("not_runs", NotARun(session_id, index, reason))

    def note_rekeyed(self, rekeyed: Iterable[Rekeyed]) -> None:
        """Runs stored under a derived id (see ``convert.rekey_runs``)."""
        for item in rekeyed:
            self._note("duplicate_run_ids", item)

    def note_nul_removed(self, session_id: str, column: str, count: int, table: str | None = None) -> None:
        self._note("nul_removed", NulRemoved(session_id, column, count, table))

    def note_surrogates_replaced(self, session_id: str, column: str, count: int, table: str | None = None) -> None:
        self._note("surrogates_replaced", SurrogatesReplaced(session_id, column, count, table))

    def note_jsonb_fit(
        self, session_id: str, column: str, nuls: int, surrogates: int, escaped: int = 0, table: str | None = None
    ) -> None:
        """What ``storable.fit_for_jsonb`` changed in one row's column, if anything."""
        if nuls:
            self.note_nul_removed(session_id, column, nuls, table)
        if surrogates:
            self.note_surrogates_replaced(session_id, column, surrogates, table)
        if escaped:
            self._note("escapes_kept_as_text", EscapesKept(session_id, column, escaped, table))

    def note_unstorable(self, collection: str, key: Any, reason: str) -> None:
        self._note("unstorable", Unstorable(collection, key, reason))

    def note_learning(self, table: str, learning_id: str, outcome: str, detail: str = "") -> None:
        self._note("learnings", LearningRekeyed(table, learning_id, outcome, detail))

    def note_rekey(self, table: str, plan) -> None:
        """Every learning a ``convert.learnings.RekeyPlan`` moved, merged or left (with why), and what
        a merge drops as Agno drops it."""
        details = {m.source_id: "dropped as Agno drops: " + ", ".join(m.dropped) for m in plan.merges if m.dropped}
        for bucket, ids in plan.report.items():
            if isinstance(ids, list) and bucket not in ("contaminated", "purged"):
                for learning_id in ids:
                    self.note_learning(table, learning_id, bucket, details.get(learning_id, ""))

    def merge(self, other: StepReport) -> None:
        """Add what ``other`` (one step's report) holds: counts summed, entries appended."""
        for name, value in other.items():
            if name in _COUNTS:
                self._add(name, value)
            elif name == "legacy":
                self.legacy = value
            else:
                self._entries.setdefault(name, []).extend(value)

    def _add(self, name: str, count: int) -> None:
        self._entries[name] = self._entries.get(name, 0) + count

    def _note(self, name: str, item: tuple) -> None:
        self._entries.setdefault(name, []).append(item)

    # --- reading ----------------------------------------------------------------------------------

    @property
    def runs_copied(self) -> int | None:
        return self._entries.get("runs_copied")

    @property
    def ddl_retries(self) -> int:
        return self._entries.get("ddl_retries", 0)

    @property
    def documents_decoded(self) -> int | None:
        return self._entries.get("documents_decoded")

    @property
    def unparseable(self) -> list[Unparseable]:
        return self._entries.get("unparseable", [])

    @property
    def not_runs(self) -> list[NotARun]:
        return self._entries.get("not_runs", [])

    @property
    def duplicate_run_ids(self) -> list[Rekeyed]:
        return self._entries.get("duplicate_run_ids", [])

    @property
    def nul_removed(self) -> list[NulRemoved]:
        return self._entries.get("nul_removed", [])

    @property
    def surrogates_replaced(self) -> list[SurrogatesReplaced]:
        return self._entries.get("surrogates_replaced", [])

    @property
    def unstorable(self) -> list[Unstorable]:
        return self._entries.get("unstorable", [])

    @property
    def legacy(self) -> LegacyReport | None:
        """The Agno 1.x import's report, when it ran."""
        return self._entries.get("legacy")

    @legacy.setter
    def legacy(self, report: LegacyReport | None) -> None:
        self._entries["legacy"] = report

    def __getitem__(self, name: str) -> Any:
        return self._entries[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"StepReport({self._entries!r})"


@dataclass
class LegacyReport:
    """What the Agno 1.x import met, per table and in total."""

    sessions: int = 0
    runs: int = 0
    memories: int = 0
    """Memories written into the memories table (from memory tables and session blobs)."""
    memories_from_sessions: int = 0
    """Of ``memories``, those found only in session blobs."""
    unparseable: list[RowProblem] = field(default_factory=list)
    collisions: list[RowProblem] = field(default_factory=list)
    duplicate_run_ids: list[Rekeyed] = field(default_factory=list)
    nul_bytes_removed: int = 0
    created_at_filled: list[FilledRow] = field(default_factory=list)
    deep_as_text: list[DeepAsText] = field(default_factory=list)
    tables: dict = field(default_factory=dict)  # name -> {"mode", "rows", "done"}

    def as_dict(self) -> dict:
        return {
            "sessions": self.sessions,
            "runs": self.runs,
            "memories": self.memories,
            "memories_from_sessions": self.memories_from_sessions,
            "unparseable": len(self.unparseable),
            "collisions": len(self.collisions),
            "duplicate_run_ids": len(self.duplicate_run_ids),
            "nul_bytes_removed": self.nul_bytes_removed,
            "created_at_filled": len(self.created_at_filled),
            "deep_as_text": len(self.deep_as_text),
            "tables": self.tables,
        }
