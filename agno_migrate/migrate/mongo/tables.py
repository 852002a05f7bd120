"""The other Agno collections on MongoDB (memories, evals, metrics, schedules, learnings, ...): each
brought to its family's head layout (``tables.family(f).head("mongodb")``) and stamped in Agno's
versions collection, so that Agno 3.1.10's ``MigrationManager`` and its first use find nothing to do.

On MongoDB Agno's migrations change indexes only (docs/agno-tables.md §3, §5, §8.2), plus the 3.0.0
learnings re-key (``convert.learnings``). Documents are never rewritten otherwise.

* Indexes converge to the head layout, by name and spec: the missing ones are created (one
  ``createIndexes``), the unique ones of an older layout that head does not have are dropped
  (metrics' ``date_1_aggregation_period_1``), and an index head keeps under the same name with
  other options (schedules' ``name_1``, unique before 3.0.0) is replaced through a bridge: a
  partial copy of head's spec is built first, so that at every moment each index is as in the older
  layout or as in head (a run killed anywhere is an upgrade cut short, finished by the next run).
* Before any collection changes, every unique index to create is checked against the documents:
  duplicates (schedules with the same name and no owner) refuse the upgrade, naming them.
* The stamp (``registry.AGNO_TABLE_STAMP``) is written last, for the families Agno's
  ``MigrationManager`` walks (``registry.AGNO_WALKS``), when missing or older.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from agno_migrate import registry
from agno_migrate.convert.learnings import USER, lookup_ids, plan_rekey
from agno_migrate.errors import Refused
from agno_migrate.migrate.model import AgnoTable, TableUpgrade
from agno_migrate.migrate.mongo import state as mongo_state
from agno_migrate.migrate.report import StepReport
from agno_migrate.tables import family
from agno_migrate.target import Target

BRIDGE = "__agno_migrate_bridge"
"""Suffix of the partial index that stands in for a head index while its older namesake is replaced."""
EXAMPLES = 5

Spec = tuple[tuple[tuple[str, int], ...], bool]  # (key, unique)


def _key(point: str | None) -> tuple[int, ...]:
    return tuple(int(p) for p in point.split(".")) if point else (0,)


@dataclass
class _Work:
    table: AgnoTable
    head: list[tuple[str, Spec]]
    obsolete: set[Spec]
    steps: list[str] = field(default_factory=list)
    stamp: bool = False
    rekey: bool = False


def upgrade_tables(db, target: Target, tables: list[AgnoTable], report: StepReport, lock=None) -> list[TableUpgrade]:
    """See ``Backend.upgrade_tables``. Raises Refused (nothing changed in any collection) when a
    unique index head requires cannot be built on the documents there."""
    work = [w for w in (_plan(db, target, t) for t in tables) if w is not None]
    for w in work:
        _refuse_duplicates(db[w.table.name], w)
    done = []
    for w in work:
        if lock is not None:
            lock.check()
        did = converge(db[w.table.name], w.head, w.obsolete) if not w.table.at_head else []
        if w.rekey:
            rekey_learnings(db[w.table.name], report)
        if w.stamp:
            mongo_state.write_agno_stamp(db, target, w.table.name, registry.AGNO_TABLE_STAMP)
        t = w.table
        repaired = [line.removeprefix("created ") for line in did if line.startswith("created ")] if t.missing else []
        done.append(TableUpgrade(t.family, t.name, t.version, t.head, w.steps, w.stamp, repaired))
    return done


def _plan(db, target: Target, t: AgnoTable) -> _Work | None:
    fam = family(t.family)
    layouts = fam.layouts("mongodb")
    if fam.dropped_at_head or not layouts or t.drift or t.version is None:
        return None
    head = [(name, _spec(key, unique)) for name, key, unique in layouts[-1]["indexes"]]
    older = {_spec(key, unique) for entry in layouts[:-1] for _, key, unique in entry["indexes"]}
    obsolete = {spec for spec in older if spec[1]} - {spec for _, spec in head}
    w = _Work(t, head, obsolete, steps=[s.point for s in t.steps])
    stamp = mongo_state.agno_stamp(db, target, t.name)
    below = _key(stamp) < _key(registry.AGNO_TABLE_STAMP)
    w.stamp = t.family in registry.AGNO_WALKS and below
    w.rekey = t.family == "learnings" and below  # the 3.0.0 re-key: content only, no layout shows it
    if w.rekey and registry.AGNO_TABLE_STAMP not in w.steps:
        w.steps.append(registry.AGNO_TABLE_STAMP)
    if t.at_head and not w.stamp and not w.rekey:
        return None
    return w


def _spec(key, unique) -> Spec:
    return tuple((k, int(v)) for k, v in key), bool(unique)


def _unique(unique: bool) -> dict:
    return {"unique": True} if unique else {}


def _indexes(coll) -> dict[str, tuple[Spec, dict]]:
    """name → ((key, unique), info), ``_id_`` left out."""
    out = {}
    for name, info in coll.index_information().items():
        if name != "_id_":
            key = tuple((k, int(v)) if isinstance(v, (int, float)) else (k, v) for k, v in info["key"])
            out[name] = ((key, bool(info.get("unique", False))), info)
    return out


# --- indexes ------------------------------------------------------------------------------------------


def _refuse_duplicates(coll, w: _Work) -> None:
    """Refused when a unique index head needs and the collection lacks would not build."""
    have = {spec for spec, _ in _indexes(coll).values()}
    for name, (key, unique) in w.head:
        if unique and (key, unique) not in have:
            refuse_duplicates(coll, name, [k for k, _ in key], w.table.family)


def refuse_duplicates(coll, name: str, fields, what: str) -> None:
    """Refused, naming the values that repeat, when the unique index ``name`` on ``fields`` would not
    build on ``coll``'s documents (``what``: whose collection it is, for the message)."""
    pipeline = [
        {"$group": {"_id": {f: {"$ifNull": [f"${f}", None]} for f in fields}, "n": {"$sum": 1}}},
        {"$match": {"n": {"$gt": 1}}},
        {"$sort": {"n": -1}},
    ]
    dups = list(coll.aggregate(pipeline, allowDiskUse=True))
    if dups:
        shown = ", ".join(
            "(" + ", ".join(f"{f}={d['_id'].get(f)!r}" for f in fields) + f") x{d['n']}" for d in dups[:EXAMPLES]
        )
        more = f" and {len(dups) - EXAMPLES} more" if len(dups) > EXAMPLES else ""
        raise Refused(
            f"{coll.name} ({what}): Agno 3.x needs the unique index {name} on ({', '.join(fields)}), "
            f"but {len(dups)} values repeat (a missing field counts as null): {shown}{more}; "
            f"rename or remove the duplicates, then run agno-migrate upgrade again "
            f"(no other Agno collection was changed)"
        )


def converge(coll, head: list[tuple[str, Spec]], obsolete: set[Spec]) -> list[str]:
    """Bring ``coll``'s indexes to ``head`` (name → (key, unique)); drop the ``obsolete`` unique
    ones head lacks; keep what else a user added. Idempotent. Returns what it did, one line each."""
    from pymongo import IndexModel

    did = []
    have = _indexes(coll)
    head_specs = {spec for _, spec in head}
    head_names = {name for name, _ in head}
    missing = [(name, spec) for name, spec in head if name not in have]
    if missing:
        models = [IndexModel(list(key), name=name, **_unique(unique)) for name, (key, unique) in missing]
        coll.create_indexes(models)
        did += [f"created {name}" for name, _ in missing]
    for name, (spec, _) in have.items():
        if spec in obsolete and name not in head_names and spec not in head_specs:
            coll.drop_index(name)
            did.append(f"dropped {name}")
    for name, (key, unique) in head:
        found = have.get(name)
        if found is None or found[0] == (key, unique):
            continue
        bridge = name + BRIDGE  # head's spec under another name, partial so that both may exist
        if bridge not in have:
            partial = {key[0][0]: {"$exists": True}}
            coll.create_index(list(key), name=bridge, unique=unique, partialFilterExpression=partial)
        coll.drop_index(name)
        coll.create_index(list(key), name=name, **_unique(unique))
        did.append(f"rebuilt {name}{' (unique)' if unique else ''}")
    for name in list(_indexes(coll)):
        if name.endswith(BRIDGE):
            coll.drop_index(name)
    return did


# --- learnings ------------------------------------------------------------------------------------------


def rekey_learnings(coll, report: StepReport) -> None:
    """Agno 3.0.0's re-key of namespace-user entity memories (``convert.learnings``), applied: each
    move is one update (the row keeps its other fields), each merge an update of the target, then
    the delete of the source (run again, the merge folds nothing twice). Idempotent."""
    walked = list(coll.find({"learning_type": "entity_memory", "namespace": USER}, {"_id": 0}))
    wanted = lookup_ids(walked)
    targets = list(coll.find({"learning_id": {"$in": sorted(wanted)}}, {"_id": 0})) if wanted else []
    plan = plan_rekey({r.get("learning_id"): r for r in walked + targets}.values())
    for move in plan.moves:
        moved = {"learning_id": move.new_id, "namespace": move.namespace}
        coll.update_one({"learning_id": move.old_id}, {"$set": moved})
    for merge in plan.merges:
        coll.update_one({"learning_id": merge.target_id}, {"$set": merge.fields})
        coll.delete_one({"learning_id": merge.source_id})
    report.note_rekey(coll.name, plan)
