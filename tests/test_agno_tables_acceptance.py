"""Issue 14's acceptance with the real Agno 3.1.10: every point and backend of the table fixture pack
(tests/fixtures-tables: databases the real Agno releases wrote), upgraded by ``agno-migrate upgrade``,
then read and written by Agno 3.1.10 itself (tests/agno_side/agno_tables.py, one process per
database): every expected row of every table type, with its field values, and one new row per type.
MariaDB, where Agno 3.1.10 cannot even read back what it wrote (the pack's MANIFEST.md), is compared
at the SQL level with expected.tables.my.json. MongoDB: no JSON left stored as a string either.
Then Agno's own ``MigrationManager(db).up()`` must change no table's schema or rows."""

from __future__ import annotations

import json
import lzma
from pathlib import Path

import pytest
import sqlalchemy as sa
from agno_side.agno_tables import IDS, canonical, decoded_json, field_digest
from agno_side.env import agno_tables
from shared_tools import SHARED_TOOLS
from test_cli import as_json, cli, ok
from test_tables_detect import PACK, SCHEMA, load

pytestmark = pytest.mark.agno

EXPECTED = {"sqlite": "expected.tables.json", "postgresql": "expected.tables.pg.json",
            "mysql": "expected.tables.my.json", "mongodb": "expected.tables.mongo.json"}  # fmt: skip
VERSIONS_TABLE = "agno_schema_versions"


AGNO_READ_CASES = [
    pytest.param(point, backend, id=f"{point}-{backend}")
    for backend in ("sqlite", "postgresql", "mongodb")
    for point in ("2.0", "2.3", "2.5", "2.9", "3.1", "v1")
]
MARIADB_POINTS = ("2.3", "2.5", "2.9", "3.1")
MIGRATION_MANAGER_CASES = [
    pytest.param(point, backend, id=f"{point}-{backend}")
    for backend in ("sqlite", "postgresql", "mysql", "mongodb")
    for point in (("2.3" if backend == "mysql" else "2.0"), "2.5")
]


def expected_path(point: str, backend: str, tmp_path: Path) -> Path:
    name = EXPECTED[backend]
    path = tmp_path / f"{point}-{name}"
    path.write_bytes(lzma.decompress((PACK / point / f"{name}.xz").read_bytes()))
    return path


def db_spec(db) -> dict:
    """How agno_tables.py opens ``db`` with Agno's Db class."""
    if db.backend == "sqlite":
        return {"backend": "sqlite", "path": str(db.path)}
    if db.backend == "mongodb":
        return {"backend": "mongodb", "url": db.server_url, "db_name": db.db_name}
    if db.backend == "postgresql":
        return {"backend": "postgresql", "url": db.url, "schema": SCHEMA["postgresql"]}
    return {"backend": "mysql", "url": db.url, "schema": sa.engine.make_url(db.url).database}


def upgraded(new_database, point: str, backend: str):
    db = new_database(backend)
    load(db, point)
    ok(cli("upgrade", url=db.url))
    status = as_json(ok(cli("--json", "current", url=db.url)))
    behind = [t["name"] for t in status.get("agno_tables", []) if not t["at_head"] or t.get("drift")]
    assert not behind, f"not at head after upgrade: {behind}"
    return db


def shared_cross_check(db, expected: Path) -> str | None:
    """verify_tables.sh's last line where the shared tools sit beside the clone (a second opinion only)."""
    import subprocess

    script = SHARED_TOOLS / "verify_tables.sh"
    if not script.exists():
        return None
    spec = db_spec(db)
    target = spec.get("path") or spec["url"]
    schema = spec.get("schema") or spec.get("db_name")
    args = ["--db", target, "--expected", str(expected)] + (["--db-schema", schema] if schema else [])
    done = subprocess.run(["bash", str(script), *args], capture_output=True, text=True, timeout=900)
    last = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr[-500:]
    assert done.returncode == 0 and " 0 mismatches, 0 errors" in last, done.stdout[-4000:] + done.stderr[-2000:]
    return last


# --- MongoDB: JSON kept as documents, never as strings ------------------------------------------------


def json_strings(value, path: str = ""):
    """Paths in a document whose value is a string holding a JSON object or array."""
    if isinstance(value, str):
        if decoded_json(value)[0]:
            yield path
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from json_strings(v, f"{path}.{k}" if path else k)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from json_strings(v, f"{path}[{i}]")


def mongo_json_strings(db) -> list[str]:
    found = []
    with db.mongo() as mdb:
        for name in sorted(mdb.list_collection_names()):
            for doc in mdb[name].find():
                found += [f"{name} {doc.get('_id')}: {p}" for p in json_strings(doc)]
    return found


# --- 1. Agno 3.1.10 reads every row of every table type, and writes one more -------------------------


@pytest.mark.parametrize("point, backend", AGNO_READ_CASES)
def test_agno_reads_and_writes_every_table_after_upgrade(new_database, tmp_path, point, backend):
    db = upgraded(new_database, point, backend)
    expected = expected_path(point, backend, tmp_path)
    if backend == "mongodb":
        assert mongo_json_strings(db) == []
    result, output = agno_tables("verify", {"db": db_spec(db), "expected": str(expected), "write": True})
    want = json.loads(expected.read_text(encoding="utf-8"))["tables"]
    assert set(result["types"]) == set(want)
    assert (result["mismatches"], result["errors"]) == (0, 0), output
    for ttype, entry in result["types"].items():
        assert entry["found"] == want[ttype]["count"], (ttype, entry)
        assert entry.get("written") is (ttype != "culture"), (ttype, entry)
    if backend == "mongodb":
        assert mongo_json_strings(db) == []  # Agno's own new rows are native documents too

    # the second opinion, on a fresh upgrade (the verifier above wrote its rows into this one)
    again = upgraded(new_database, point, backend)
    shared_cross_check(again, expected)


# --- 2. MariaDB: compared at the SQL level ----------------------------------------------------------


def _candidates(field: str, value):
    """The forms a stored value may take through Agno's getter: as stored, JSON text decoded, 0/1 as a
    bool, '' as None (Agno 3.1.10 stores '' for "no user" in metrics and reads it as None), and a
    session's runs column as the expected file lists runs (id and content of each)."""
    yield value
    if isinstance(value, str):
        try:
            value = json.loads(value)
            yield value
        except ValueError:
            pass
    if value == "":
        yield None
    if isinstance(value, int) and not isinstance(value, bool) and value in (0, 1):
        yield bool(value)
    if field == "runs" and isinstance(value, list):
        yield [{"run_id": r.get("run_id"), "content": r.get("content")} for r in value if isinstance(r, dict)]


def sql_rows(conn, table: str) -> list[dict]:
    t = sa.Table(table, sa.MetaData(), autoload_with=conn)
    return [dict(r._mapping) for r in conn.execute(sa.select(t))]


def compare_sql(conn, tables: dict) -> tuple[dict, list[str]]:
    """(per table type: fields compared, mismatches) of the raw rows against the expected file."""
    compared, problems = {}, []
    for ttype, table in tables.items():
        rows = {"|".join(str(canonical(r.get(k), k)) for k in IDS[ttype]): r for r in sql_rows(conn, table["table"])}
        if len(rows) != table["count"] or set(rows) != set(table["rows"]):
            problems.append(f"{ttype}: ids differ: missing {sorted(set(table['rows']) - set(rows))[:5]}, "
                            f"extra {sorted(set(rows) - set(table['rows']))[:5]}")  # fmt: skip
            continue
        columns = set(next(iter(rows.values()))) if rows else set()
        fields = [f for f in table["fields"] if f in columns and f not in table.get("not_compared", {})]
        compared[ttype] = fields
        for key, want in table["rows"].items():
            for f in fields:
                if not any(field_digest(v, f) == want["fields"][f] for v in _candidates(f, rows[key][f])):
                    problems.append(f"{ttype} {key}: {f} differs ({rows[key][f]!r:.80})")
    return compared, problems


@pytest.mark.parametrize("point", MARIADB_POINTS, ids=[f"{p}-mysql" for p in MARIADB_POINTS])
def test_mariadb_tables_match_the_expected_rows_after_upgrade(new_database, tmp_path, point):
    db = upgraded(new_database, point, "mysql")
    expected = json.loads(expected_path(point, "mysql", tmp_path).read_text(encoding="utf-8"))["tables"]
    engine = db.engine()
    with engine.connect() as conn:
        compared, problems = compare_sql(conn, expected)
    engine.dispose()
    assert problems == [], "\n".join(problems)
    # most of every table's fields are compared (the rest: made by Agno's getters, e.g. a session's runs)
    for ttype, table in expected.items():
        assert len(compared[ttype]) >= len(table["fields"]) - 2, (ttype, compared[ttype], table["fields"])


# --- 3. Agno's MigrationManager after our upgrade: nothing left to do ---------------------------------


def sql_snapshot(db) -> dict:
    schema = SCHEMA.get(db.backend)
    snap = {}
    engine = db.engine()
    with engine.connect() as conn:
        inspector = sa.inspect(conn)
        for name in sorted(inspector.get_table_names(schema=schema)):
            t = sa.Table(name, sa.MetaData(), autoload_with=conn, schema=schema)
            key = list(t.primary_key.columns) or list(t.columns)
            snap[name] = {
                "columns": [(c["name"], str(c["type"]), c["nullable"], str(c.get("default"))) for c in
                            inspector.get_columns(name, schema=schema)],
                "primary_key": inspector.get_pk_constraint(name, schema=schema).get("constrained_columns"),
                "indexes": sorted((i["name"], tuple(i["column_names"]), bool(i["unique"]))
                                  for i in inspector.get_indexes(name, schema=schema)),
                "unique": sorted((u["name"], tuple(u["column_names"]))
                                 for u in inspector.get_unique_constraints(name, schema=schema)),
                "foreign_keys": sorted(json.dumps(fk, sort_keys=True, default=str)
                                       for fk in inspector.get_foreign_keys(name, schema=schema)),
                "rows": [json.dumps(dict(r._mapping), sort_keys=True, default=str)
                         for r in conn.execute(sa.select(t).order_by(*key))],
            }  # fmt: skip
    engine.dispose()
    return snap


def mongo_snapshot(db) -> dict:
    from bson import json_util

    snap = {}
    with db.mongo() as mdb:
        for name in sorted(mdb.list_collection_names()):
            snap[name] = {
                "indexes": json_util.dumps(mdb[name].index_information(), sort_keys=True),
                "rows": sorted(json_util.dumps(d, sort_keys=True) for d in mdb[name].find()),
            }
    return snap


def version_rows(snapshot: dict) -> dict[str, str]:
    """table name → the version its row in agno_schema_versions holds."""
    rows = [json.loads(r) if isinstance(r, str) and r.startswith("{") else r for r in snapshot[VERSIONS_TABLE]["rows"]]
    return {r["table_name"]: r["version"] for r in rows}


@pytest.mark.parametrize("point, backend", MIGRATION_MANAGER_CASES)
def test_agno_migration_manager_changes_nothing_after_upgrade(new_database, point, backend):
    db = upgraded(new_database, point, backend)
    snapshot = mongo_snapshot if backend == "mongodb" else sql_snapshot
    before = snapshot(db)
    result, output = agno_tables("migrate", {"db": db_spec(db)})
    assert result["errors"] == [], output
    after = snapshot(db)

    assert set(after) == set(before)  # no table created or dropped
    for name in before:
        if name != VERSIONS_TABLE:
            assert after[name] == before[name], name
    # the only difference allowed: Agno stamps table types this database does not have
    old, new = version_rows(before), version_rows(after)
    assert {t: v for t, v in new.items() if t in old} == old
    added = set(new) - set(old)
    assert not added & set(before), f"Agno stamped again tables that exist: {added & set(before)}"
    print(f"Agno stamped absent tables: {sorted(added)}")
