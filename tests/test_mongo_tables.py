"""The other Agno collections on MongoDB brought to head by ``agno-migrate upgrade``
(``migrate/mongo/tables.py``): against a real mongod, with the table fixture pack loaded as the real
Agno wrote it. After the upgrade every other collection is at head, ``check`` passes, Agno's stamps
are there, no document changed, and Agno 3.1.10's own ``MigrationManager`` finds nothing to do."""

from __future__ import annotations

import pytest
from bson import json_util
from test_cli import as_json, cli, ok
from test_tables_detect import load

from agno_migrate import registry
from agno_migrate.errors import Refused
from agno_migrate.migrate.model import AgnoTable
from agno_migrate.migrate.mongo import tables as mongo_tables
from agno_migrate.migrate.report import StepReport
from agno_migrate.tables import family
from agno_migrate.target import Target

POINTS = ("2.0", "2.3", "2.5", "2.9")
OURS = {"agno_migrate_version", "agno_schema_versions"}  # our record, Agno's stamps
SESSION_STEPS = {"agno_sessions", "agno_runs"}  # changed by the session steps, not by this module


def snapshot(mdb, skip=()) -> dict[str, list]:
    """Every collection's documents (canonical extended JSON, sorted), bookkeeping left out."""
    return {
        name: sorted(json_util.dumps(d, sort_keys=True) for d in mdb[name].find())
        for name in mdb.list_collection_names()
        if name not in skip and not name.startswith("agno_migrate")
    }


def indexes(mdb) -> dict[str, dict]:
    return {
        name: {
            i: (tuple(tuple(k) for k in info["key"]), bool(info.get("unique")))
            for i, info in mdb[name].index_information().items()
        }
        for name in mdb.list_collection_names()
    }


def json_strings(mdb) -> list[str]:
    """Fields anywhere holding JSON (an object or array) as a string."""
    found = []

    def walk(value, where):
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, f"{where}.{k}")
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(v, f"{where}[{i}]")
        elif isinstance(value, str) and value[:1] in "{[":
            try:
                json_util.loads(value)
                found.append(where)
            except ValueError:
                pass

    for name in mdb.list_collection_names():
        for doc in mdb[name].find():
            walk(doc, name)
    return found


def other_tables(url) -> dict[str, dict]:
    return {t["name"]: t for t in as_json(ok(cli("--json", "current", url=url)))["agno_tables"]}


def agno_migration_manager(db, *options: str) -> None:
    from agno_side import env

    done = env.run(env.HERE / "agno_mongo_migrate.py", db.server_url, db.db_name, *options, timeout=300)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]


@pytest.mark.parametrize("point", POINTS)
def test_upgrade_brings_every_collection_to_head_and_stamps_it(new_database, point):
    db = new_database("mongodb")
    load(db, point)
    with db.mongo() as mdb:
        before = snapshot(mdb, skip=SESSION_STEPS | OURS)
    behind = {n for n, t in other_tables(db.url).items() if not t["at_head"]}

    outcome = as_json(ok(cli("--json", "upgrade", url=db.url)))
    upgraded = {t["name"]: t for t in outcome["agno_tables"]}

    tables = other_tables(db.url)
    assert tables and all(t["at_head"] and not t["drift"] for t in tables.values()), tables
    assert behind <= set(upgraded)
    assert as_json(ok(cli("--json", "check", url=db.url)))["ok"] is True
    with db.mongo() as mdb:
        stamps = {d["table_name"]: d for d in mdb["agno_schema_versions"].find()}
        for name, t in tables.items():
            if t["family"] in registry.AGNO_WALKS:
                assert stamps[name]["version"] == registry.AGNO_TABLE_STAMP, name
                assert isinstance(stamps[name]["updated_at"], int)
                assert upgraded[name]["stamped"] is True
            else:
                assert name not in stamps
        assert snapshot(mdb, skip=SESSION_STEPS | OURS) == before  # no document changed
        assert json_strings(mdb) == []
    if point == "2.9":  # schedules: the unique name_1 became non-unique, uq_user_name is there
        assert upgraded["agno_schedules"]["steps"] == ["3.0.0"]
        with db.mongo() as mdb:
            info = mdb["agno_schedules"].index_information()
            assert not info["name_1"].get("unique") and info["uq_user_name"]["unique"]
            assert not [n for n in info if n.endswith(mongo_tables.BRIDGE)]

    again = as_json(ok(cli("--json", "upgrade", url=db.url)))
    assert again["agno_tables"] == []  # nothing left to do


@pytest.mark.parametrize("point", ("2.0", "2.9"))
def test_agno_migration_manager_changes_nothing_after_our_upgrade(new_database, point):
    db = new_database("mongodb")
    load(db, point)
    ok(cli("upgrade", url=db.url))
    with db.mongo() as mdb:
        before_docs, before_indexes = snapshot(mdb, skip=OURS), indexes(mdb)

    agno_migration_manager(db)

    with db.mongo() as mdb:
        assert indexes(mdb) == before_indexes
        assert snapshot(mdb, skip=OURS) == before_docs


def test_a_run_cut_short_between_index_operations_finishes(new_database):
    """The upgrade killed after some index operations: metrics with both unique keys, schedules
    with head's indexes beside the unique ``name_1`` and the bridge that stands for the new one."""
    db = new_database("mongodb")
    load(db, "2.9")
    with db.mongo() as mdb:
        mdb["agno_metrics"].create_index([("user_id", 1)], name="user_id_1")
        mdb["agno_metrics"].create_index(
            [("user_id", 1), ("date", 1), ("aggregation_period", 1)],
            name="user_id_1_date_1_aggregation_period_1",
            unique=True,
        )
        mdb["agno_schedules"].create_index([("user_id", 1), ("name", 1)], name="uq_user_name", unique=True)
        mdb["agno_schedules"].create_index(
            [("name", 1)], name="name_1" + mongo_tables.BRIDGE, partialFilterExpression={"name": {"$exists": True}}
        )
        before = snapshot(mdb, skip=SESSION_STEPS | OURS)
    tables = other_tables(db.url)
    assert not any(tables[n]["drift"] for n in ("agno_metrics", "agno_schedules"))  # interrupted, not drift

    ok(cli("upgrade", url=db.url))
    assert all(t["at_head"] for t in other_tables(db.url).values())
    with db.mongo() as mdb:
        assert snapshot(mdb, skip=SESSION_STEPS | OURS) == before
        info = mdb["agno_schedules"].index_information()
        assert not info["name_1"].get("unique") and "name_1" + mongo_tables.BRIDGE not in info
        assert "date_1_aggregation_period_1" not in mdb["agno_metrics"].index_information()


def test_converge_is_idempotent_at_every_cut(new_database):
    """``converge`` run again from any state it passes through ends at head with the same indexes."""
    db = new_database("mongodb")
    load(db, "2.9")
    fam = family("schedules")
    layouts = fam.layouts("mongodb")
    head = [(n, mongo_tables._spec(k, u)) for n, k, u in layouts[-1]["indexes"]]
    obsolete = {mongo_tables._spec(k, u) for _, k, u in layouts[0]["indexes"] if u} - {s for _, s in head}
    with db.mongo() as mdb:
        coll = mdb["agno_schedules"]
        did = mongo_tables.converge(coll, head, obsolete)
        assert "rebuilt name_1" in did
        final = indexes(mdb)["agno_schedules"]
        assert mongo_tables.converge(coll, head, obsolete) == []
        assert indexes(mdb)["agno_schedules"] == final


def test_duplicates_refuse_before_any_collection_changes(new_database):
    db = new_database("mongodb")
    load(db, "2.9")
    with db.mongo() as mdb:
        coll = mdb["agno_schedules"]
        coll.drop_index("name_1")
        coll.create_index([("name", 1)], name="name_1")
        doc = coll.find_one({}, {"_id": 0})
        coll.insert_one({**doc, "id": "copy-of-" + doc["id"]})
        before = indexes(mdb)
        tables = [
            AgnoTable("metrics", "agno_metrics", "default name", "2.0.0", "3.0.0", False, covers=("2.0.0", "2.5.6")),
            AgnoTable("schedules", "agno_schedules", "default name", "2.5.6", "3.0.0", False, covers=("2.5.6",)),
        ]
        with pytest.raises(Refused) as raised:
            mongo_tables.upgrade_tables(mdb, Target.from_url(db.url), tables, StepReport())
        line = str(raised.value)
        assert "\n" not in line and "agno_schedules" in line and "uq_user_name" in line and repr(doc["name"]) in line
        assert indexes(mdb) == before  # metrics untouched too
        assert mdb["agno_schema_versions"].count_documents({}) == 0


LEGACY_ROWS = [
    {"learning_id": "entity_user_company_acme", "learning_type": "entity_memory", "namespace": "user",
     "user_id": "alice", "agent_id": "a1", "team_id": None, "session_id": "s1", "workflow_id": None,
     "entity_id": "acme", "entity_type": "company", "content": {"name": "Acme", "facts": [{"id": "f", "content": "x"}]},
     "metadata": None, "created_at": 1_700_000_000, "updated_at": 1_700_000_001},
    {"learning_id": "entity_user_company_globex", "learning_type": "entity_memory", "namespace": "user",
     "user_id": "bob", "agent_id": "a1", "team_id": None, "session_id": "s2", "workflow_id": None,
     "entity_id": "globex", "entity_type": "company", "content": {"name": "Globex", "user_id": "carol"},
     "metadata": None, "created_at": 1_700_000_000, "updated_at": 1_700_000_001},
    {"learning_id": "entity_user_company_initech", "learning_type": "entity_memory", "namespace": "user",
     "user_id": None, "agent_id": "a1", "team_id": None, "session_id": "s3", "workflow_id": None,
     "entity_id": "initech", "entity_type": "company", "content": {"name": "Initech"},
     "metadata": None, "created_at": 1_700_000_000, "updated_at": 1_700_000_001},
]  # fmt: skip
AGNO_FIELDS = ("learning_id", "namespace", "user_id", "entity_id", "entity_type", "content", "metadata")


def test_learnings_are_rekeyed_as_agno_rekeys_them(new_database):
    """Ours against Agno's own re-key function. Agno's MigrationManager re-keys nothing on MongoDB
    (it scans 0 rows, see agno_side/agno_mongo_migrate.py) yet stamps learnings 3.0.0: shown too."""
    ours, agnos, manager = new_database("mongodb"), new_database("mongodb"), new_database("mongodb")
    for db in (ours, agnos, manager):
        load(db, "2.9")
        with db.mongo() as mdb:
            mdb["agno_learnings"].insert_many([dict(r) for r in LEGACY_ROWS])

    def rows(db):
        with db.mongo() as mdb:
            return {d["learning_id"]: {k: d.get(k) for k in AGNO_FIELDS} for d in mdb["agno_learnings"].find()}

    loaded = rows(ours)
    outcome = as_json(ok(cli("--json", "upgrade", url=ours.url)))
    agno_migration_manager(agnos, "--rekey")
    agno_migration_manager(manager)

    assert rows(ours) == rows(agnos) != loaded
    assert rows(manager) == loaded  # Agno's own migration left every legacy row on its old key
    assert "entity_quarantined_user_company_globex" in rows(ours)
    learnings = {t["name"]: t for t in outcome["agno_tables"]}["agno_learnings"]
    assert learnings["steps"] == ["3.0.0"] and learnings["stamped"]
    assert outcome["report"]["learnings"] == 3  # acme re-keyed, globex quarantined, initech unowned
    with ours.mongo() as mdb:  # a moved row keeps its own timestamps (Agno's restart at the migration)
        moved = mdb["agno_learnings"].find_one({"entity_id": "acme"})
        assert (moved["created_at"], moved["updated_at"]) == (1_700_000_000, 1_700_000_001)
