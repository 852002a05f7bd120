"""agno_migrate.tables: per-family layouts and physical detection of every Agno table beyond sessions,
against the table fixture pack (tests/fixtures-tables: databases written by the real Agno releases)
loaded into the real servers, and after Agno 3.1.10's own MigrationManager."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import sqlalchemy as sa

from agno_migrate.tables import FAMILIES, detect_all, detect_table, find_tables, reflect_mongo, reflect_sql
from agno_migrate.tables.families import OTHER_AGNO_TABLES, matches

PACK = Path(__file__).parent / "fixtures-tables"
ROOT = Path(__file__).parent.parent
LAYOUTS_JSON = json.loads((ROOT / "docs" / "agno-tables" / "layouts.json").read_text())
WRITER = {"2.0": "2.0.11", "2.3": "2.3.26", "2.5": "2.5.17", "2.9": "2.9.0", "3.1": "3.1.10"}
DUMP = {"sqlite": "sqlite.db", "postgresql": "postgres.sql", "mysql": "mysql.sql"}
SCHEMA = {"postgresql": "ai"}
SESSION_TABLES = {"agno_sessions", "agno_runs"}


def cases():
    for point in ("v1", *WRITER):
        for backend in ("sqlite", "postgresql", "mysql", "mongodb"):
            present = (
                (PACK / point / "mongo").is_dir()
                if backend == "mongodb"
                else (PACK / point / f"{DUMP[backend]}.xz").exists()
            )
            if present:
                yield pytest.param(point, backend, id=f"{point}-{backend}")


def load(db, point: str) -> None:
    """Fill a ``new_database`` with the table pack's ``point``, as the real Agno wrote it."""
    db.load(point, root=PACK)


def detect_db(db, names=None):
    """(find_tables result, family → detection, every table name) of a loaded database."""
    if db.backend == "mongodb":
        with db.mongo() as mdb:
            return find_tables(mdb, names=names), detect_all(mdb, names=names), set(mdb.list_collection_names())
    engine = db.engine()
    try:
        with engine.connect() as conn:
            schema = SCHEMA.get(db.backend)
            tables = set(sa.inspect(conn).get_table_names(schema=schema))
            return find_tables(conn, schema, names), detect_all(conn, schema, names), tables
    finally:
        engine.dispose()


def point_of(family: str, backend: str, release: str) -> tuple[str, bool]:
    """(point, at head) of the layout the fresh table of ``release`` has, from the spec."""
    layouts = FAMILIES[family].layouts(backend)
    for i, entry in enumerate(layouts):
        if f"fresh {release}" in entry["origins"]:
            return entry["point"], i == len(layouts) - 1
    raise AssertionError(f"no layout of {family} on {backend} from {release}")


# --- the spec itself ----------------------------------------------------------------------------------


def test_generated_layouts_agree_with_the_generator():
    result = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "agno-tables" / "gen_tables_spec.py"), "--check"],
        capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def _all_column_sets():
    """(owner, backend, names) of every layout of every Agno table type (sessions and runs
    included) and of the Agno 1.x tables; MongoDB: document fields and index keys."""
    for name, spec in LAYOUTS_JSON["table_types"].items():
        for release, backends in spec["releases"].items():
            for backend, entry in backends.items():
                if backend == "mongo":
                    names = set(entry.get("fields", {})) | {k for i in entry["indexes"] for k, _ in i["key"]}
                    names.discard("_id")
                    # no documents of that release: its index keys alone need not show the fingerprint
                    where = f"mongo {release}" + ("" if entry.get("fields") else " (indexes only)")
                else:
                    names, where = set(entry.get("columns", {})), f"{backend} {release}"
                if names:
                    yield name, where, names
    for backend, tables in LAYOUTS_JSON["v1"].items():
        if isinstance(tables, dict):
            for table, entry in tables.items():
                names = set(entry.get("columns", {})) | set(entry.get("fields", {}))
                names |= {k for i in entry.get("indexes", []) for k, _ in (i.get("key") or [])}
                names.discard("_id")
                yield f"1.x {table}", backend, names


def test_fingerprints_recognise_their_family_and_nothing_else():
    fingerprints = {name: fam.fingerprint for name, fam in FAMILIES.items()} | dict(OTHER_AGNO_TABLES)
    for owner, where, names in _all_column_sets():
        hits = {name for name, fp in fingerprints.items() if matches(fp, names)}
        if owner in fingerprints and "(indexes only)" in where:
            assert hits <= {owner}, f"{owner} ({where}) taken for {sorted(hits)}"
        elif owner in fingerprints:
            assert hits == {owner}, f"{owner} ({where}) carries fingerprints of {sorted(hits)}"
        else:
            assert not hits, f"{owner} ({where}) taken for {sorted(hits)}"


def test_every_family_of_the_brief_is_known_with_a_layout_per_backend():
    for name in ("memories", "evals", "metrics", "knowledge", "approvals", "components", "component_configs",
                 "component_links", "schedules", "schedule_runs", "learnings", "culture", "traces", "spans",
                 "auth_tokens", "service_accounts", "versions"):  # fmt: skip
        assert FAMILIES[name].layouts("sqlite") and FAMILIES[name].layouts("postgresql"), name
    assert not FAMILIES["versions"].ours
    for name in ("memories", "evals", "metrics", "knowledge", "traces", "spans", "culture"):
        assert FAMILIES[name].layouts("mysql") and FAMILIES[name].layouts("mongodb"), name
    assert not FAMILIES["approvals"].layouts("mysql") and not FAMILIES["approvals"].layouts("mongodb")
    # the points where layouts change
    points = {
        b: [e["point"] for e in FAMILIES["memories"].layouts(b)] for b in ("sqlite", "postgresql", "mysql", "mongodb")
    }
    assert points == {b: ["2.0.0", "2.3.0"] for b in points}
    assert [e["point"] for e in FAMILIES["approvals"].layouts("sqlite")] == ["2.5.0", "2.5.6"]
    assert [e["point"] for e in FAMILIES["evals"].layouts("postgresql")] == ["2.0.0", "2.3.0", "3.0.0"]
    assert [e["point"] for e in FAMILIES["evals"].layouts("sqlite")] == ["2.0.0", "3.0.0"]
    assert [e["point"] for e in FAMILIES["metrics"].layouts("mongodb")] == ["2.0.0", "3.0.0"]
    # §6.2: Agno's MigrationManager names the run_status index ix_<t>_run_status: an accepted variant
    head = FAMILIES["approvals"].head("postgresql")
    assert [o for o, _ in head["variants"]] == ["Agno 3.1.10 MigrationManager from 2.5.0"]
    assert ("ix_{t}_run_status", ("run_status",)) in head["variants"][0][1]["indexes"]


# --- the fixture pack, every point and backend ----------------------------------------------------------


@pytest.mark.parametrize("point,backend", list(cases()))
def test_every_table_of_the_pack_is_found_and_detected(new_database, point, backend):
    db = new_database(backend)
    load(db, point)
    found, detected, tables = detect_db(db)
    by_default = {fam.default_name: name for name, fam in FAMILIES.items()}
    agno_tables = {t for t in tables if t in by_default}
    assert not found.ambiguous and not found.missing
    assert {ft.table for ft in found.tables.values()} == agno_tables, "a table not found, or a foreign one taken"
    if point == "v1":  # Agno 1.x tables (agent_sessions, user_memories) are none of these families
        assert found.tables == {} and "user_memories" in tables
        return
    assert agno_tables, "the pack holds Agno tables at this point"
    for t in agno_tables:
        fam = by_default[t]
        d = detected[fam]
        assert d.ok and not d.drift and not d.additions, (fam, d)
        expected, at_head = point_of(fam, backend, WRITER[point])
        assert (d.version, d.at_head) == (expected, at_head), (fam, d)
    # the brief's anchors
    if point == "2.0":
        assert {detected[f].version for f in ("memories", "evals", "metrics", "knowledge")} == {"2.0.0"}
        assert not any(detected[f].at_head for f in ("memories", "evals", "metrics"))
        assert detected["knowledge"].at_head == (backend == "mongodb")  # no knowledge index changed on MongoDB
    if point in ("2.3", "2.5"):
        assert detected["memories"].version == "2.3.0" and detected["memories"].at_head
        assert not detected["evals"].at_head and not detected["metrics"].at_head
    if point == "2.5" and backend in ("sqlite", "postgresql"):
        assert detected["approvals"].version == "2.5.6"  # written by 2.5.17: run_status
    if point == "3.1":
        if backend == "mongodb":  # 3.1.10 wrote these collections: its first use made the 3.x indexes
            assert {f for f, d in detected.items() if not d.at_head} == set()
        assert all(d.at_head for d in detected.values()), {f: d.version for f, d in detected.items()}
        assert detected["evals"].version == "3.0.0" and detected["metrics"].version == "3.0.0"


# --- changed tables ------------------------------------------------------------------------------------


SQL = ("sqlite", "postgresql", "mysql")


def _q(db, table):
    return f"ai.{table}" if db.backend == "postgresql" else table


@pytest.mark.parametrize("backend", SQL)
def test_a_renamed_table_is_found_by_its_columns(new_database, backend):
    db = new_database(backend)
    load(db, "3.1")
    new = "my_memories"
    rename = f"ALTER TABLE {_q(db, 'agno_memories')} RENAME TO {new}"
    db.execute(rename, f"ALTER TABLE {_q(db, 'agno_eval_runs')} RENAME TO team_evals")
    found, detected, _ = detect_db(db)
    assert found.tables["memories"].table == new and found.tables["memories"].how == "columns"
    assert found.tables["evals"].table == "team_evals"
    assert detected["memories"].at_head and not detected["memories"].drift
    assert detected["evals"].version == "3.0.0"
    # an explicit name wins over the default name and over the columns
    db.execute(f"CREATE TABLE {_q(db, 'agno_memories')} (x INTEGER)")
    found, detected, _ = detect_db(db, names={"memories": new})
    assert (found.tables["memories"].table, found.tables["memories"].how) == (new, "explicit")
    found, _, _ = detect_db(db)
    assert found.tables["memories"].table == "agno_memories"  # the default name, whatever it holds


@pytest.mark.parametrize("backend", SQL)
def test_two_candidates_by_columns_are_ambiguous(new_database, backend):
    db = new_database(backend)
    load(db, "3.1")
    copy = (
        f"CREATE TABLE {_q(db, 'knowledge_b')} AS SELECT * FROM {_q(db, 'knowledge_a')}"
        if backend != "mysql" else "CREATE TABLE knowledge_b LIKE knowledge_a"
    )  # fmt: skip
    db.execute(f"ALTER TABLE {_q(db, 'agno_knowledge')} RENAME TO knowledge_a", copy)
    found, _, _ = detect_db(db)
    assert "knowledge" not in found.tables and found.ambiguous["knowledge"] == ["knowledge_a", "knowledge_b"]
    found, _, _ = detect_db(db, names={"knowledge": "knowledge_b"})
    assert found.tables["knowledge"].table == "knowledge_b" and not found.ambiguous


def _detect(db, table, family):
    engine = db.engine()
    try:
        with engine.connect() as conn:
            return detect_table(family, reflect_sql(conn, table, SCHEMA.get(db.backend)))
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", SQL)
def test_a_dropped_column_is_drift_a_dropped_plain_index_is_missing_naming_them(new_database, backend):
    """A column gone is drift; a plain index gone (a run killed between a table and its indexes: MySQL
    commits each DDL) is named as missing, at the layout it otherwise matches, for the upgrade to create."""
    db = new_database(backend)
    load(db, "3.1")
    drop_index = {
        "sqlite": "DROP INDEX idx_agno_memories_user_id",
        "postgresql": "DROP INDEX ai.idx_agno_memories_user_id",
        "mysql": "DROP INDEX idx_agno_memories_user_id ON agno_memories",
    }[backend]
    db.execute(drop_index, f"ALTER TABLE {_q(db, 'agno_eval_runs')} DROP COLUMN eval_type")
    memories = _detect(db, "agno_memories", "memories")
    assert memories.version == "2.3.0" and not memories.drift
    assert memories.missing == ["idx_agno_memories_user_id"]
    evals = _detect(db, "agno_eval_runs", "evals")
    assert evals.version is None and evals.closest == "3.0.0"
    assert evals.drift == ["column eval_type missing"]


@pytest.mark.parametrize("backend", SQL)
def test_a_users_nullable_column_and_index_are_additions(new_database, backend):
    db = new_database(backend)
    load(db, "3.1")
    t = _q(db, "agno_memories")
    index = "ON agno_memories (note)" if backend != "postgresql" else "ON ai.agno_memories (note)"
    db.execute(f"ALTER TABLE {t} ADD COLUMN note VARCHAR(50)", f"CREATE INDEX my_note_idx {index}")
    d = _detect(db, "agno_memories", "memories")
    assert d.ok and d.at_head and not d.drift
    assert (
        d.additions[0].startswith("column note added (varchar") and d.additions[1] == "index my_note_idx (note) added"
    )
    # a NOT NULL column without a default would break Agno's inserts: drift
    not_null = f"ALTER TABLE {_q(db, 'agno_spans')} ADD COLUMN tenant INTEGER NOT NULL" + (
        " DEFAULT 0" if backend == "sqlite" else ""
    )
    db.execute(f"DELETE FROM {_q(db, 'agno_spans')}", not_null)
    d = _detect(db, "agno_spans", "spans")
    if backend == "sqlite":  # SQLite requires a default: an addition
        assert d.ok and d.additions == ["column tenant added (int, NOT NULL with a default)"]
    else:
        assert not d.ok and d.drift == [
            "column tenant is NOT NULL without a default and not in Agno's layout: "
            "Agno's inserts, which do not set it, would fail"
        ]


@pytest.mark.parametrize("backend", ("sqlite", "postgresql"))
def test_an_old_unique_key_left_beside_the_new_one_is_an_upgrade_cut_short(new_database, backend):
    """Agno's (and our) 3.0.0 step adds the new key, then drops the old one: a table with both is
    part-way, not drift; the upgrade finishes it."""
    db = new_database(backend)
    load(db, "3.1")
    on = "ai.agno_metrics" if backend == "postgresql" else "agno_metrics"
    db.execute(f"DELETE FROM {on}", f"CREATE UNIQUE INDEX old_key ON {on} (date, aggregation_period)")
    d = _detect(db, "agno_metrics", "metrics")
    assert d.ok and d.interrupted and not d.at_head and not d.drift and d.origin == "interrupted"
    db.execute(f"CREATE UNIQUE INDEX odd_key ON {on} (date)")
    d = _detect(db, "agno_metrics", "metrics")
    assert not d.ok and "unique key odd_key (date) is not in Agno's layout: Agno's writes could fail on it" in d.drift


def test_mongo_changes(new_database):
    db = new_database("mongodb")
    load(db, "3.1")
    with db.mongo() as mdb:
        mdb["agno_memories"].rename("my_memories")
        mdb["agno_eval_runs"].drop_index("user_id_1")
        mdb["agno_knowledge"].create_index("my_field", name="my_field_1")
        mdb["agno_knowledge"].update_one({}, {"$set": {"my_field": "x"}})
        mdb["agno_traces"].update_one({}, {"$set": {"name": '{"json": "as a string"}'}})
        found = find_tables(mdb)
        assert found.tables["memories"].table == "my_memories" and found.tables["memories"].how == "columns"
        assert detect_table("memories", reflect_mongo(mdb, "my_memories")).at_head
        evals = detect_table("evals", reflect_mongo(mdb, "agno_eval_runs"))
        assert evals.version == "2.0.0" and not evals.at_head  # as before a 3.x application's first use
        knowledge = detect_table("knowledge", reflect_mongo(mdb, "agno_knowledge"))
        assert knowledge.at_head and knowledge.additions == [
            "index my_field_1 (my_field) added",
            "field my_field added",
        ]
        mdb["agno_metrics"].delete_many({})
        mdb["agno_metrics"].create_index([("date", 1), ("aggregation_period", 1)], unique=True)
        metrics = detect_table("metrics", reflect_mongo(mdb, "agno_metrics"))
        assert metrics.ok and metrics.interrupted and not metrics.at_head  # the old key beside the new one
        mdb["agno_metrics"].create_index([("completed", 1)], unique=True, name="odd")
        metrics = detect_table("metrics", reflect_mongo(mdb, "agno_metrics"))
        assert (
            not metrics.ok
            and "unique key odd (completed) is not in Agno's layout: Agno's writes could fail on it" in metrics.drift
        )


@pytest.mark.parametrize("backend", ("sqlite", "postgresql"))
def test_approvals_as_agnos_migration_leaves_them_are_at_head(new_database, backend):
    """§6.2: from 2.5.0-2.5.5, Agno's 2.5.6 migration adds run_status TEXT with index ix_<t>_run_status."""
    db = new_database(backend)
    load(db, "3.1")
    t = _q(db, "agno_approvals")
    drop = "DROP INDEX " + _q(db, "idx_agno_approvals_run_status")
    db.execute(drop, f"ALTER TABLE {t} DROP COLUMN run_status", f"ALTER TABLE {t} ADD COLUMN run_status TEXT",
         f"CREATE INDEX ix_agno_approvals_run_status ON {t} (run_status)")  # fmt: skip
    d = _detect(db, "agno_approvals", "approvals")
    assert (d.version, d.at_head, d.drift, d.additions) == ("2.5.6", True, [], [])
    assert d.origin == "Agno 3.1.10 MigrationManager from 2.5.0"
    db.execute(drop.replace("idx_", "ix_"))  # run_status without its index: 2.5.6 cut short
    d = _detect(db, "agno_approvals", "approvals")
    assert (d.version, d.interrupted, d.at_head, d.drift) == ("2.5.0", True, False, [])


# --- after Agno 3.1.10's own MigrationManager ---------------------------------------------------------

AGNO_UP = textwrap.dedent(
    """
    import asyncio, sys
    from agno.db.migrations.manager import MigrationManager
    backend, url = sys.argv[1], sys.argv[2]
    if backend == "sqlite":
        from agno.db.sqlite import SqliteDb
        db = SqliteDb(db_file=url)
    else:
        from agno.db.postgres import PostgresDb
        db = PostgresDb(db_url=url, db_schema="ai")
    asyncio.run(MigrationManager(db).up())
    """
)


@pytest.mark.agno
@pytest.mark.parametrize("backend", ("sqlite", "postgresql"))
@pytest.mark.parametrize("point", ("2.0", "2.5"))
def test_after_agnos_migration_manager_every_table_is_at_head(new_database, tmp_path, backend, point):
    from agno_side import env

    db = new_database(backend)
    load(db, point)
    script = tmp_path / "agno_up.py"
    script.write_text(AGNO_UP)
    where = str(db.path) if backend == "sqlite" else db.url
    result = env.run(script, backend, where)
    assert result.returncode == 0, result.stderr[-3000:]
    found, detected, _ = detect_db(db)
    assert not found.ambiguous
    behind = {f: (d.version, d.drift) for f, d in detected.items() if not (d.ok and d.at_head and not d.drift)}
    assert behind == {}
    if point == "2.5":
        assert detected["approvals"].version == "2.5.6" and detected["schedules"].version == "3.0.0"
    assert detected["metrics"].version == "3.0.0" and detected["memories"].version == "2.3.0"
