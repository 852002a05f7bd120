"""Fingerprinting an unmanaged MongoDB database by what is there; Agno's stamp is a second opinion.

MongoDB has no DDL to read, so the physical signs are the collections and the documents:

* no session collection: empty (or Agno 1.x collections only);
* documents whose JSON fields are JSON *strings*: written by Agno 2.0.0–2.1.0, schema 2.0.0;
* a runs collection and no session still carrying runs that were never copied: 3.0.0;
* otherwise 2.x: 2.0.0, 2.3.0 and 2.5.0 look the same on MongoDB, so Agno's stamp decides between
  them (2.0.0 without one, as Agno itself reads it).

A stamp that contradicts the physical signs is drift; the physical version wins. A collection
that lacks an index it has at the version found (restored by ``mongoimport``, which writes
documents only) is no damage: the upgrade creates the missing indexes once at head (after checking
that the documents allow the unique ones), as on SQL (see :func:`missing_indexes`).
"""

from __future__ import annotations

from agno_migrate import registry
from agno_migrate.migrate.detection import legacy_kind, not_agno, unknown_stamp
from agno_migrate.migrate.model import Detection, HeadDiff, LegacyTable
from agno_migrate.migrate.mongo import state as mongo_state
from agno_migrate.registry import SchemaVersion
from agno_migrate.schema import JSON_COLUMNS_2X
from agno_migrate.target import Target

STRING_ENCODED = {"$or": [{name: {"$type": "string"}} for name in JSON_COLUMNS_2X]}
UNCOPIED_RUNS = {"runs": {"$type": "array", "$ne": []}}


def legacy_mode_of(document: dict) -> str | None:
    """The Agno 1.x mode of a collection whose documents look like ``document`` (Agno 1.x's
    MongoDbStorage stores ``session.to_dict()`` plus ``_version``).

    Mongo workflow_v2 documents carry no ``memory`` key (their runs are top-level)."""
    keys = set(document) - {"_id", "_version"}
    if {"workflow_name", "runs", "workflow_id"} <= keys:
        keys.add("memory")
    return legacy_kind(keys)


def legacy_collections(db, target: Target, names: set[str] | None = None) -> list[LegacyTable]:
    """Agno 1.x session and memory collections in the database, recognised by their documents' keys."""
    names = set(db.list_collection_names()) if names is None else names
    ours = {target.session_table, target.runs_table, target.agno_versions_table, target.version_table}
    found = []
    for name in sorted(names - ours):
        if name.startswith("system."):
            continue
        sample = db[name].find_one({}, sort=[("_id", 1)])
        mode = legacy_mode_of(sample) if sample else None
        if mode:
            found.append(LegacyTable(name, mode, db[name].count_documents({})))
    return found


def detect(db, target: Target) -> Detection:
    """The physical version of an unmanaged MongoDB database, Agno's stamp, and any drift."""
    names = set(db.list_collection_names())
    result = Detection(version=None, has_session_table=target.session_table in names)
    if not result.has_session_table:
        result.legacy = legacy_collections(db, target, names)
        if target.runs_table in names:
            result.drift.append(f"the runs collection {target.runs_table} exists without the session collection")
            result.orphan_runs = "?"  # (no foreign keys: its owner is not recorded)
        return result
    stamp = mongo_state.agno_stamp(db, target) if target.agno_versions_table in names else None
    result.agno_stamp = stamp
    stamped = registry.from_agno_stamp(stamp)
    if stamp is not None and stamped is None:
        result.drift.append(unknown_stamp(target, stamp))
    sessions = db[target.session_table]
    sample = sessions.find_one({"session_id": {"$exists": True}}) or sessions.find_one()
    foreign = not_agno(target, set(sample), "collection") if sample is not None else None
    if foreign:
        result.not_agno = True
        result.drift.append(foreign)
        return result
    strings = sessions.find_one(STRING_ENCODED, {"_id": 1}) is not None
    uncopied = target.runs_table in names and sessions.find_one(UNCOPIED_RUNS, {"_id": 1}) is not None
    v3 = registry.get("3.0.0")
    if target.runs_table in names and not strings and (not uncopied or stamped == v3):
        # every version from 3.0.0 on looks the same on MongoDB (3.0.1 changes MySQL only): the newest
        physical, why = [v for v in registry.VERSIONS if v.key >= v3.key], ""
        newest = physical[-1]
    elif strings:
        physical, why = [registry.get("2.0.0")], "documents hold JSON as strings (Agno 2.0.0-2.1.0)"
        newest = None
    else:
        physical = [v for v in registry.VERSIONS if v.key < v3.key]
        why = "no runs collection" if target.runs_table not in names else "sessions hold runs not copied yet"
        newest = None
    result.candidates = physical
    if stamped is not None and stamped in physical:
        result.version = newest or stamped
    else:
        result.version = newest or physical[0]
        if stamped is not None:
            result.drift.append(
                f"Agno's {target.agno_versions_table} says {stamp} but the collections are at "
                f"{result.version.version}: {why}"
            )
    diff = missing_indexes(db, target, result.version)
    result.add_damage(diff.drift)
    result.repairs, result.additions = diff.missing_lines, diff.additions
    return result


def missing_indexes(db, target: Target, version: SchemaVersion) -> HeadDiff:
    """The head indexes that a database found at ``version`` lacks although its collections have
    them from that version on (``missing``: the upgrade creates them at head, as on SQL), and the
    user's own indexes (``additions``, or drift for a unique one). The session collection has its
    indexes from 2.0.0 on, the runs collection from the version that creates it (3.0.0): before
    that, the step creating it creates its indexes too."""
    from agno_migrate.schema import mongo_head_indexes

    required = mongo_head_indexes(target)
    if version.key < registry.changing("runs")[0].key:
        required.pop(target.runs_table)
    return _index_diffs(db, required, adopting=True)


def compare_to_head(db, target: Target) -> HeadDiff:
    """How the collections differ from the head layout: a missing collection, an index with other
    uniqueness, a unique index of the user's (drift); head's indexes that are missing (the upgrade
    creates them); the user's plain indexes (additions)."""
    from agno_migrate.schema import mongo_head_indexes

    return _index_diffs(db, mongo_head_indexes(target))


def _index_diffs(db, wanted: dict, adopting: bool = False) -> HeadDiff:
    """How the collections of ``wanted`` (collection -> its (fields, unique) pairs) differ from it.
    ``adopting`` (as the SQL detection's): a collection that is not there, and an index whose
    uniqueness differs, are left to the steps."""
    from agno_migrate.schema import mongo_index_name
    from agno_migrate.tables.detect import extra_index, file_under

    names = set(db.list_collection_names())
    diff = HeadDiff()
    for collection, specs in wanted.items():
        if collection not in names:
            if not adopting:
                diff.drift.append(f"collection {collection} is missing")
            continue
        have = {
            name: (tuple(k for k, _ in info["key"]), bool(info.get("unique")))
            for name, info in db[collection].index_information().items()
            if name != "_id_"
        }
        by_keys = {keys: unique for keys, unique in have.values()}
        for fields, unique in specs:
            if fields not in by_keys:
                diff.missing.append((collection, mongo_index_name(fields)))
            elif by_keys[fields] != unique and not adopting:
                diff.drift.append(f"{collection} index {mongo_index_name(fields)} is {'not ' if unique else ''}unique")
        wanted_keys = {fields for fields, _ in specs}
        for name, (fields, unique) in sorted(have.items()):
            if fields not in wanted_keys:
                judged = extra_index(name, fields, unique)
                file_under(judged, diff.drift, diff.additions, collection)
    return diff
