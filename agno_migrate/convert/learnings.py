"""Agno 3.0.0's learnings re-key, as a pure rule: ``entity_memory`` rows of namespace ``user`` written
before 3.0 carry a user-less key ``entity_user_<type>_<entity>``; 3.x keys them per user
``entity_user_<sha256(user_id)[:16]>_<type>_<entity>`` (Agno 3.1.10 ``agno/learn/migrations.py``
``rekey_user_entity_learnings``, ``agno/learn/utils.py`` ``build_learning_id``).

:func:`plan_rekey` takes every learning row (dicts, as stored) and returns what to do, sorted as
Agno walks them (by ``learning_id``), with Agno's report buckets:

* a **legacy** row with an owner whose content names no other user is re-keyed (:class:`Move`);
  when its new key is already taken (the 3.x application wrote the entity meanwhile) it is folded
  into that row as Agno folds it (:class:`Merge`: the target wins, the source fills gaps) and the
  source row goes;
* a **contaminated** row (its content names another user than its owner) moves to namespace
  ``quarantined_user`` under ``entity_quarantined_user_<type>_<entity>`` (:class:`Move`);
* **unowned** and **malformed** rows, and **contaminated_keyed** ones, are only reported; a target
  whose content does not parse is a **conflict** (source left in place); a merge Agno's code would
  raise on (a collection that is not a list) is **failed** (left in place).

Where this differs from Agno, on purpose (zero loss):

* a move keeps the row (its other fields, ``created_at``, ``updated_at``): only ``learning_id`` (and
  for a quarantine ``namespace``) change; Agno writes a new row with only its own fields and
  timestamps of the migration, then deletes the old one;
* a quarantine whose key is already taken is a conflict (left in place); Agno overwrites that row;
* a merge keeps the newer of the two ``updated_at`` (Agno: the time of the migration).

What Agno's merge itself drops (and so does this rule, which deletes only what Agno merges) is
listed in :attr:`Merge.dropped`: source values the target overrides, source collection entries whose
key the target already has, the source's ``metadata`` when the target has its own, and the target's
``agent_id``/``team_id``/``session_id`` that Agno replaces by the source's.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from hashlib import sha256
from typing import Any

ENTITY = "entity_memory"
USER = "user"
QUARANTINE = "quarantined_user"
DEFAULT_NAMESPACE = "global"
COLLECTIONS = ("facts", "events", "relationships")
COLUMNS = ("user_id", "agent_id", "team_id", "session_id", "entity_id", "entity_type")
BUCKETS = (
    "rekeyed",
    "merged",
    "quarantined",
    "contaminated",
    "contaminated_keyed",
    "unowned",
    "malformed",
    "conflicts",
    "failed",
    "purged",
)


@dataclass(frozen=True)
class Move:
    """Give the row ``old_id`` the key ``new_id`` (and ``namespace``), nothing else changed."""

    old_id: str
    new_id: str
    namespace: str


@dataclass(frozen=True)
class Merge:
    """Set ``fields`` on the row ``target_id``, then delete the row ``source_id``."""

    source_id: str
    target_id: str
    fields: dict
    dropped: tuple[str, ...] = ()


@dataclass
class RekeyPlan:
    moves: list[Move] = field(default_factory=list)
    merges: list[Merge] = field(default_factory=list)
    report: dict = field(default_factory=dict)
    """Agno's report: ``scanned``, ``keyed`` (counts) and a list of learning ids per bucket."""

    @property
    def changes(self) -> int:
        return len(self.moves) + len(self.merges)


# --- Agno's keys and comparisons (agno/learn/utils.py) ---------------------------------------------


def user_key_segment(user_id: Any) -> str:
    return sha256(str(user_id).encode("utf-8")).hexdigest()[:16]


def user_entity_id(user_id: Any, entity_type: str, entity_id: str) -> str:
    return f"entity_user_{user_key_segment(user_id)}_{entity_type}_{entity_id}"


def legacy_entity_id(entity_id: str, entity_type: str, namespace: str | None = None) -> str:
    return f"entity_{namespace or DEFAULT_NAMESPACE}_{entity_type}_{entity_id}"


def same_user(left: Any, right: Any) -> bool:
    return left is not None and right is not None and str(left) == str(right)


def parse_json(data: Any) -> Any:
    if data is None or isinstance(data, dict):
        return data
    if isinstance(data, str):
        try:
            return json.loads(data)
        except ValueError:
            return None
    return None


def _fold(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip().casefold())


# --- classifying and merging (agno/learn/migrations.py) ------------------------------------------------


def classify(row: dict) -> tuple[str, dict]:
    """Agno's bucket of a namespace-user entity row, and its parsed content (legacy rows only)."""
    entity_id, entity_type = row.get("entity_id"), row.get("entity_type")
    if not (entity_id and entity_type):
        return "malformed", {}
    content = parse_json(row.get("content"))
    if not isinstance(content, dict):
        return "malformed", {}
    owner = row.get("user_id")
    content_user = content.get("user_id")
    contaminated = bool(owner) and content_user is not None and not same_user(content_user, owner)
    if row.get("learning_id") != legacy_entity_id(entity_id, entity_type, USER):
        return ("contaminated_keyed" if contaminated else "keyed"), {}
    if not owner:
        return "unowned", {}
    if contaminated:
        return "contaminated", {}
    return "legacy", content


def _entry_key(name: str, entry: Any) -> Any:
    if not isinstance(entry, dict):
        return _fold(str(entry))
    if name == "facts":
        content = entry.get("content")
        return _fold(str(content)) if content else entry.get("id")
    if name == "events":
        return (entry.get("content"), entry.get("date"))
    return (entry.get("entity_id"), entry.get("entity_type"), entry.get("relation"), entry.get("direction"))


def _entries(content: dict, name: str) -> list:
    entries = content.get(name)
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise TypeError(f"{name} is not a list")
    return list(entries)


def merge_content(source: dict, target: dict) -> dict:
    """Agno's ``_merge_into_target``: the target wins, the source fills gaps; its collection entries
    the target lacks go in front. Raises TypeError on a collection that is not a list."""
    merged = {**source, **target}
    for name in COLLECTIONS:
        kept = _entries(target, name)
        seen = {_entry_key(name, e) for e in kept}
        merged[name] = [e for e in _entries(source, name) if _entry_key(name, e) not in seen] + kept
    if not merged.get("description") and source.get("description"):
        merged["description"] = source["description"]
    merged["properties"] = {**(source.get("properties") or {}), **(target.get("properties") or {})}
    names = {str(n).strip().lower() for n in [target.get("name"), *(target.get("aliases") or [])] if n}
    aliases = list(target.get("aliases") or [])
    for candidate in [source.get("name"), *(source.get("aliases") or [])]:
        if candidate and str(candidate).strip().lower() not in names:
            aliases.append(str(candidate))
            names.add(str(candidate).strip().lower())
    merged["aliases"] = aliases
    return merged


def _dropped(source_row: dict, source: dict, target_row: dict, merged: dict, metadata: Any) -> tuple[str, ...]:
    """What of the source (and of the target's columns) the merged row no longer holds."""
    out = []
    for key, value in source.items():
        if key in COLLECTIONS:
            kept = merged.get(key) or []
            out += [f"content.{key}[{i}]" for i, e in enumerate(value or []) if e not in kept]
        elif key == "properties":
            props = merged.get("properties") or {}
            out += [f"content.properties.{k}" for k, v in (value or {}).items() if props.get(k) != v]
        elif key not in ("name", "aliases") and merged.get(key) != value:
            out.append(f"content.{key}")
    if source_row.get("metadata") is not None and parse_json(source_row.get("metadata")) != metadata:
        out.append("metadata")
    for column in ("agent_id", "team_id", "session_id"):
        if target_row.get(column) is not None and target_row.get(column) != source_row.get(column):
            out.append(f"target {column}")
    return tuple(out)


def lookup_ids(walked: Iterable[dict]) -> set[str]:
    """The ids a re-key of ``walked`` (the namespace-user entity memories) may move onto: read them
    too, so that :func:`plan_rekey` sees the rows it would merge into or collide with."""
    wanted = set()
    for r in walked:
        if r.get("entity_id") and r.get("entity_type"):
            wanted.add(legacy_entity_id(r["entity_id"], r["entity_type"], QUARANTINE))
            if r.get("user_id"):
                wanted.add(user_entity_id(r["user_id"], r["entity_type"], r["entity_id"]))
    return wanted


def plan_rekey(rows: Iterable[dict]) -> RekeyPlan:
    """What Agno 3.0.0's re-key does with these learning rows (every row of the table: targets are
    looked up among them), without its losses (see the module's docstring)."""
    rows = list(rows)
    by_id = {r.get("learning_id"): r for r in rows}
    walked = sorted(
        (r for r in rows if r.get("learning_type") == ENTITY and r.get("namespace") == USER),
        key=lambda r: str(r.get("learning_id") or ""),
    )
    plan = RekeyPlan()
    buckets: dict[str, list] = {name: [] for name in BUCKETS}
    keyed = 0
    for row in walked:
        old_id = row.get("learning_id", "")
        bucket, content = classify(row)
        if bucket == "keyed":
            keyed += 1
            continue
        if bucket == "contaminated":
            buckets[bucket].append(old_id)
            new_id = legacy_entity_id(row.get("entity_id", ""), row.get("entity_type", ""), QUARANTINE)
            if new_id in by_id:  # Agno would overwrite it
                buckets["conflicts"].append(old_id)
            else:
                plan.moves.append(Move(old_id, new_id, QUARANTINE))
                buckets["quarantined"].append(old_id)
            continue
        if bucket != "legacy":
            buckets[bucket].append(old_id)
            continue
        new_id = user_entity_id(row["user_id"], row["entity_type"], row["entity_id"])
        target = by_id.get(new_id)
        if target is None:
            plan.moves.append(Move(old_id, new_id, USER))
            buckets["rekeyed"].append(old_id)
            continue
        target_content = parse_json(target.get("content"))
        if not isinstance(target_content, dict):
            buckets["conflicts"].append(old_id)
            continue
        try:
            merged = merge_content(content, target_content)
        except TypeError:
            buckets["failed"].append(old_id)
            continue
        metadata = parse_json(target.get("metadata")) or parse_json(row.get("metadata"))
        fields = {
            "learning_type": ENTITY,
            "namespace": USER,
            "content": merged,
            "metadata": metadata,
            **{c: row.get(c) for c in COLUMNS},
        }
        stamps = [v for v in (row.get("updated_at"), target.get("updated_at")) if isinstance(v, int)]
        if stamps:
            fields["updated_at"] = max(stamps)
        plan.merges.append(Merge(old_id, new_id, fields, _dropped(row, content, target, merged, metadata)))
        buckets["merged"].append(old_id)
    plan.report = {"scanned": len(walked), "keyed": keyed, **buckets}
    return plan


def apply_plan(rows: Iterable[dict], plan: RekeyPlan) -> list[dict]:
    """The rows after ``plan`` (copies; the order kept, merged sources left out): what a backend's
    writes must leave, for tests and for backends that rewrite rows in memory."""
    out = {r.get("learning_id"): dict(r) for r in rows}
    for move in plan.moves:
        row = out.pop(move.old_id)
        out[move.new_id] = {**row, "learning_id": move.new_id, "namespace": move.namespace}
    for merge in plan.merges:
        out[merge.target_id].update(merge.fields)
        del out[merge.source_id]
    return list(out.values())
