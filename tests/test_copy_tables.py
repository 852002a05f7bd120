"""The other Agno table types copied between backends (``agno_migrate.move.tables``): every point of the
table fixture pack (tests/fixtures-tables, databases the real Agno releases wrote) from each backend
that has it to another, every backend a source and a target at each point. After the copy:
``verify_tables`` finds both sides equal, every target table is detected at head by the detection
``check`` uses, and the real Agno 3.1.10 (tests/agno_side/agno_tables.py) reads every row of every
table type against the SOURCE backend's expected file and writes one more (MariaDB, which Agno
3.1.10 cannot read back, compared at the SQL level as in test_agno_tables_acceptance)."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from agno_side.agno_tables import field_digest
from agno_side.env import agno_tables
from test_agno_tables_acceptance import compare_sql, db_spec, expected_path, mongo_json_strings
from test_second_session_table import names
from test_tables_detect import SCHEMA, load

import agno_migrate
from agno_migrate.backends import dispose
from agno_migrate.errors import Refused
from agno_migrate.move import table_ddl
from agno_migrate.move.tables import copy_tables, target_tables_nonempty
from agno_migrate.move.verify import verify_tables
from agno_migrate.tables import FAMILIES, detect_all
from agno_migrate.target import Target

ALL = ("sqlite", "postgresql", "mysql", "mongodb")
NO_MARIADB = ("sqlite", "postgresql", "mongodb")
# (source, target) per point: every backend the pack has for that point is a source once, and every
# backend is a target at least once; 2.0 and 3.1 every pair with --stress
PAIRS = {
    "v1": [("sqlite", "mysql"), ("postgresql", "mongodb"), ("mongodb", "sqlite"), ("sqlite", "postgresql")],
    "2.0": [("sqlite", "mysql"), ("postgresql", "sqlite"), ("mongodb", "postgresql"), ("sqlite", "mongodb")],
    "2.3": [("sqlite", "postgresql"), ("postgresql", "mysql"), ("mysql", "mongodb"), ("mongodb", "sqlite")],
    "2.5": [("sqlite", "mongodb"), ("postgresql", "sqlite"), ("mysql", "postgresql"), ("mongodb", "mysql")],
    "2.9": [("sqlite", "mysql"), ("postgresql", "mongodb"), ("mysql", "sqlite"), ("mongodb", "postgresql")],
    "3.1": [("sqlite", "postgresql"), ("postgresql", "mysql"), ("mysql", "mongodb"), ("mongodb", "sqlite")],
}
EVERY_PAIR = {"2.0": [(s, t) for s in NO_MARIADB for t in ALL], "3.1": [(s, t) for s in ALL for t in ALL]}


def pytest_generate_tests(metafunc):
    if "table_case" in metafunc.fixturenames:
        pairs = {**PAIRS, **EVERY_PAIR} if metafunc.config.getoption("--stress") else PAIRS
        cases = [
            pytest.param((point, s, t), id=f"{point}-{s}-{t}", marks=pytest.mark.agno)
            for point, point_pairs in pairs.items()
            for s, t in point_pairs
        ]
        metafunc.parametrize("table_case", cases)


def target(db) -> Target:
    return Target.from_url(db.url)


def loaded(new_database, point: str, backend: str):
    db = new_database(backend)
    load(db, point)
    return db


def detected(db) -> dict:
    if db.backend == "mongodb":
        with db.mongo() as mdb:
            return detect_all(mdb)
    engine = db.engine()
    try:
        with engine.connect() as conn:
            schema = sa.engine.make_url(db.url).database if db.backend == "mysql" else SCHEMA.get(db.backend)
            return detect_all(conn, schema)
    finally:
        engine.dispose()


def has_agno_layout(fam: str, backend: str) -> bool:
    return FAMILIES[fam].head(backend) is not None


def expected_for_target(point: str, source: str, dst_backend: str, tmp_path) -> tuple[dict, object]:
    """The SOURCE backend's expected file, narrowed to what the copy of the other tables gives the
    target: no sessions (the session copy's part), no table type Agno has no table for on the
    target's backend; on MongoDB memories' ``created_at`` is not compared (Agno 3.1.10 does not store
    it there: its getter makes up a new value on each read)."""
    path = expected_path(point, source, tmp_path)
    data = json.loads(path.read_text(encoding="utf-8"))
    data["tables"] = {t: v for t, v in data["tables"].items() if t != "sessions" and has_agno_layout(t, dst_backend)}
    if source == "mysql":
        as_read_on_mariadb(data["tables"])
    if dst_backend == "mongodb" and "memories" in data["tables"]:
        data["tables"]["memories"].setdefault("not_compared", {})["created_at"] = "not stored by Agno on MongoDB"
    out = tmp_path / f"narrowed-{point}-{source}-{dst_backend}.json"
    out.write_text(json.dumps(data), encoding="utf-8")
    return data, out


def as_read_on_mariadb(tables: dict) -> None:
    """MariaDB's expected file holds what Agno read back there (the pack's MANIFEST.md): a JSON null
    as the text ``null``. Anywhere else that value is null: expected as such."""
    text_null, null = field_digest("null", "metadata"), field_digest(None, "metadata")
    for table in tables.values():
        for row in table["rows"].values():
            row["fields"] = {f: null if d == text_null else d for f, d in row["fields"].items()}


def assert_copied(src_db, dst_db) -> dict:
    src, dst = target(src_db), target(dst_db)
    assert target_tables_nonempty(src, dst) == []
    done = copy_tables(src, dst, if_exists=None, batch=7)
    assert done.tables, "no table copied"
    diffs = verify_tables(src, dst)
    assert [d for d in diffs if not d.equal] == []
    found = detected(dst_db)
    for t in done.tables:
        if t.agno_layout:
            det = found[t.family]
            assert det.at_head and not det.drift, (t.family, det)
    dispose(src), dispose(dst)
    return {t.family: t for t in done.tables}


def test_copy_tables_reads_back_with_agno(new_database, tmp_path, table_case):
    point, source, dest = table_case
    src_db = loaded(new_database, point, source)
    dst_db = new_database(dest)
    copied = assert_copied(src_db, dst_db)
    expected, path = expected_for_target(point, source, dest, tmp_path)
    assert set(expected["tables"]) <= set(copied)
    if dest == "mysql":
        engine = dst_db.engine()
        with engine.connect() as conn:
            _, problems = compare_sql(conn, expected["tables"])
        engine.dispose()
        assert problems == [], "\n".join(problems)
        return
    if dest == "mongodb":
        assert mongo_json_strings(dst_db) == []
    result, output = agno_tables("verify", {"db": db_spec(dst_db), "expected": str(path), "write": True})
    assert (result["mismatches"], result["errors"]) == (0, 0), output
    for ttype, entry in result["types"].items():
        assert entry["found"] == expected["tables"][ttype]["count"], (ttype, entry)


UPGRADE_CASES = [("2.0", "sqlite", "postgresql"), ("2.5", "postgresql", "mongodb"), ("2.3", "mongodb", "sqlite"),
                 ("2.9", "mysql", "sqlite"), ("v1", "sqlite", "sqlite")]  # fmt: skip


@pytest.mark.parametrize("point, source, dest", UPGRADE_CASES, ids=["-".join(c) for c in UPGRADE_CASES])
def test_copy_gives_the_head_rows_of_an_upgrade_in_place(new_database, point, source, dest):
    src_db = loaded(new_database, point, source)
    dst_db = new_database(dest)
    assert_copied(src_db, dst_db)
    upgraded = loaded(new_database, point, source)
    agno_migrate.upgrade(target(upgraded))
    diffs = verify_tables(target(upgraded), target(dst_db))
    assert [d for d in diffs if not d.equal] == []
    assert any("memories" in d.name and d.rows[1] > 0 for d in diffs), [d.as_dict() for d in diffs]


@pytest.mark.parametrize("dest", ALL)
def test_a_nonempty_target_table_is_named_before_anything_changes(new_database, dest):
    src_db = loaded(new_database, "2.5", "sqlite")
    dst_db = new_database(dest)
    src, dst = target(src_db), target(dst_db)
    row = {"memory_id": "theirs", "memory": "kept", "created_at": 1, "updated_at": 1}
    if dest == "mongodb":
        with dst_db.mongo() as mdb:
            mdb["agno_memories"].insert_one(row)
    else:
        agno_migrate.upgrade(dst)  # a target at head, then a row of the application's own
        dst_db.execute(
            f"CREATE TABLE {_qualified(dst_db, 'agno_memories')} (memory_id VARCHAR(64) PRIMARY KEY, "
            "memory TEXT, created_at BIGINT, updated_at BIGINT)",
            f"INSERT INTO {_qualified(dst_db, 'agno_memories')} VALUES ('theirs', '\"kept\"', 1, 1)",
        )
    before = names(dst_db)
    assert target_tables_nonempty(src, dst) == ["agno_memories"]
    with pytest.raises(Refused, match="agno_memories"):
        copy_tables(src, dst, if_exists=None, batch=100)
    assert names(dst_db) == before  # nothing created, nothing written
    dispose(src), dispose(dst)


def _qualified(db, name: str) -> str:
    return f"ai.{name}" if db.backend == "postgresql" else name


class Killed(Exception):
    pass


@pytest.mark.parametrize("dest", ("postgresql", "mongodb"))
def test_a_killed_copy_resumes_to_the_same_target(new_database, dest):
    src_db = loaded(new_database, "3.1", "sqlite")
    dst_db = new_database(dest)
    src, dst = target(src_db), target(dst_db)
    seen = []

    def kill_in_the_third_table(table, rows):
        seen.append(table)
        if len(set(seen)) == 3 and seen.count(table) == 2:
            raise Killed(table)

    with pytest.raises(Killed):
        copy_tables(src, dst, if_exists=None, batch=5, progress=kill_in_the_third_table)
    assert target_tables_nonempty(src, dst) == []  # what the copy wrote itself is no obstacle
    copy_tables(src, dst, if_exists=None, batch=5)
    assert [d for d in verify_tables(src, dst) if not d.equal] == []
    dispose(src), dispose(dst)


def test_each_family_has_a_layout_to_create_on_every_backend():
    for fam in FAMILIES.values():
        if not fam.ours:
            continue
        for backend in ALL:
            layout, _ = table_ddl.head_layout(fam.name, backend)
            assert layout is not None
            assert table_ddl.key_columns(fam.name, backend)


# --- the pure rules ---------------------------------------------------------------------------------


def test_head_rows_take_the_upgrade_steps_values():
    from agno_migrate.convert.tables import head_row

    memories = {"memory_id": "m", "memory": "x", "updated_at": 17}
    head = head_row("memories", memories, table_ddl.canonical_columns("memories"), now=99)
    assert (head["created_at"], head["feedback"]) == (17, None)  # 2.3.0: created_at from updated_at
    assert head_row("memories", {"memory_id": "m"}, {"created_at": "int"}, now=99) == {"created_at": 99}
    metrics = head_row("metrics", {"id": "d"}, table_ddl.canonical_columns("metrics"), now=99)
    assert metrics["user_id"] == ""  # 3.0.0: the existing rows belong to no user
    schedules = head_row("schedules", {"id": "s"}, table_ddl.canonical_columns("schedules"), now=99)
    assert {c: schedules[c] for c in ("user_id", "managed_by", "disabled_reason")} == dict.fromkeys(
        ("user_id", "managed_by", "disabled_reason")
    )


def test_canonical_values_are_the_same_from_every_backend():
    import datetime

    from agno_migrate.convert.tables import canonical

    assert canonical("json", '"{\\"a\\": 1}"', encoded=True) == {"a": 1}  # double-encoded (SQLite 2.x)
    assert canonical("json", '"123"', encoded=True) == "123"  # a string stays a string
    assert canonical("json", "plain text", encoded=True) == "plain text"
    assert canonical("json", "123", encoded=False) == "123"  # a MongoDB string is no JSON text
    assert canonical("json", '{"a": 2}', encoded=False) == {"a": 2}  # Agno 2.0 on MongoDB: JSON as a string
    assert canonical("boolean", 1, encoded=True) is True
    assert canonical("date", datetime.date(2025, 1, 2), encoded=True) == "2025-01-02"


def test_values_a_target_cannot_hold_are_changed_and_named():
    from agno_migrate.storable import fit_value

    value, notes = fit_value({"a": "x\x00y", "n": 2**70, "f": float("nan"), "s": "\ud800"}, nul=False, bson=True)
    assert value == {"a": "xy", "n": str(2**70), "f": value["f"], "s": "\ufffd"}
    assert len(notes) == 3  # NaN is kept where the target holds it (not finite-only)
    _, notes = fit_value([float("inf")], finite=True)
    assert notes == ["1 NaN/Infinity stored as text"]
    assert fit_value("fine", nul=False) == ("fine", [])


@pytest.mark.parametrize("dest", ("mongodb", "postgresql"))
def test_learnings_written_before_agno_3_are_rekeyed_as_the_upgrade_rekeys_them(new_database, dest):
    from test_convert_learnings import rows_agno_agrees_with

    from agno_migrate.convert.learnings import apply_plan, plan_rekey

    def legacy_learnings(db):
        load(db, "2.9")
        with db.engine().begin() as conn:
            table = sa.Table("agno_learnings", sa.MetaData(), autoload_with=conn)
            rows = [{k: v for k, v in r.items() if k in table.c} for r in rows_agno_agrees_with()]
            conn.execute(table.insert(), rows)
            versions = sa.Table("agno_schema_versions", sa.MetaData(), autoload_with=conn)
            conn.execute(versions.delete().where(versions.c.table_name == "agno_learnings"))  # a 2.x table
        return db

    src_db = legacy_learnings(new_database("sqlite"))
    dst_db = new_database(dest)
    copied = assert_copied(src_db, dst_db)
    assert copied["learnings"].skipped > 0  # rows merged into the row of their new key
    with src_db.engine().connect() as conn:
        before = [dict(r._mapping) for r in conn.execute(sa.text("SELECT * FROM agno_learnings"))]
    wanted = {r["learning_id"] for r in apply_plan(before, plan_rekey(before))}
    assert wanted != {r["learning_id"] for r in before}
    if dest == "mongodb":
        with dst_db.mongo() as mdb:
            got = {d["learning_id"] for d in mdb["agno_learnings"].find()}
    else:
        with dst_db.engine().connect() as conn:
            got = {r[0] for r in conn.execute(sa.text("SELECT learning_id FROM ai.agno_learnings"))}
    assert got == wanted
    upgraded = legacy_learnings(new_database("sqlite"))
    agno_migrate.upgrade(target(upgraded))
    assert [d for d in verify_tables(target(upgraded), target(dst_db)) if not d.equal] == []


@pytest.mark.parametrize("dest, what", [("postgresql", "NUL character"), ("mongodb", "beyond 64 bits")])
def test_values_the_target_cannot_hold_are_counted_and_named(new_database, dest, what):
    src_db = loaded(new_database, "3.1", "sqlite")
    src_db.execute(
        "INSERT INTO agno_memories (memory_id, memory, topics, user_id, created_at, updated_at) "
        "VALUES ('odd', '\"a\\u0000b\"', '[123456789012345678901234567890]', 'u', 1, 1)"
    )
    copied = assert_copied(src_db, new_database(dest))["memories"]
    assert copied.transformed == 1
    assert [n for n in copied.named if n.startswith("agno_memories odd: ") and what in n], copied.named


@pytest.mark.parametrize("dest", ("sqlite", "mongodb"))
def test_if_exists_skip_keeps_the_targets_rows_and_replace_overwrites_them(new_database, dest):
    src_db = loaded(new_database, "3.1", "sqlite")
    dst_db = new_database(dest)
    src, dst = target(src_db), target(dst_db)
    copy_tables(src, dst, if_exists=None, batch=10)
    with src_db.engine().connect() as conn:
        some = conn.execute(sa.text("SELECT memory_id FROM agno_memories ORDER BY memory_id")).scalar()
        count = conn.execute(sa.text("SELECT COUNT(*) FROM agno_memories")).scalar()

    def change_target(memory: str):
        if dest == "mongodb":
            with dst_db.mongo() as mdb:
                mdb["agno_memories"].update_one({"memory_id": some}, {"$set": {"memory": memory}})
                mdb["agno_memories"].insert_one({"memory_id": "theirs", "memory": "only here"})
        else:
            dst_db.execute(
                f"UPDATE agno_memories SET memory = '\"{memory}\"' WHERE memory_id = '{some}'",
                "INSERT INTO agno_memories (memory_id, memory, created_at) VALUES ('theirs', '\"only here\"', 1)",
            )

    def memories() -> dict:
        if dest == "mongodb":
            with dst_db.mongo() as mdb:
                return {d["memory_id"]: d["memory"] for d in mdb["agno_memories"].find()}
        with dst_db.engine().connect() as conn:
            return {k: json.loads(v) for k, v in conn.execute(sa.text("SELECT memory_id, memory FROM agno_memories"))}

    change_target("changed by the application")
    skipped = {t.family: t for t in copy_tables(src, dst, if_exists="skip", batch=10).tables}["memories"]
    after = memories()
    assert after[some] == "changed by the application" and after["theirs"] == "only here"
    assert len(after) == count + 1 and skipped.skipped == count
    copy_tables(src, dst, if_exists="replace", batch=10)
    after = memories()
    assert after[some] != "changed by the application" and after["theirs"] == "only here"
    assert len(after) == count + 1
    dispose(src), dispose(dst)


# stored JSON text as a memories table may hold it: (topics, what the copy must give)
STORED_TOPICS = [
    ('  {"k": [1, {"z": null}], "r": "\\u00e9"}', "passed as it is"),
    ('["a", 1.50]', "a number not as json.dumps writes it: decoded"),
    ('"[\\"x\\", 2]"', "one string layer holding an array (SQLite's double encoding)"),
    ('"\\"[1]\\""', "two string layers: the JSON string '[1]' (decode_json_column peels no second)"),
    ('"  {\\"k\\": 1e400}"', "an infinity: decoded, fitted to text"),
    ("[NaN]", "refused by the server: the batch decoded again, NaN fitted to text"),
    ("{bad", "not JSON: kept as the text"),
]


def test_stored_json_text_gives_the_rows_and_reports_of_decoding_every_value(new_database, monkeypatch):
    """PostgreSQL parses the stored JSON text a copy passes unparsed (``HeadRows._json_value``): the same
    stored rows and the same report as the copy that decodes every value, a refused batch included."""
    from agno_migrate.backends.postgresql import PostgreSQL
    from agno_migrate.move import tables as tables_module

    src_db = loaded(new_database, "3.1", "sqlite")
    for at, (topics, _) in enumerate(STORED_TOPICS):
        src_db.execute(
            "INSERT INTO agno_memories (memory_id, memory, topics, user_id, created_at, updated_at) "
            f"VALUES ('stored-{at}', '\"m\"', '{topics.replace(chr(39), chr(39) * 2)}', 'u', 1, 1)"
        )
    kept = []
    real = tables_module.plain_text
    monkeypatch.setattr(tables_module, "plain_text", lambda *args: kept.append(real(*args)) or kept[-1])

    def copied(keep: bool) -> tuple[dict, dict]:
        monkeypatch.setattr(PostgreSQL, "parses_json_text", keep)
        dst_db = new_database("postgresql")
        done = {t.family: t for t in copy_tables(target(src_db), target(dst_db), if_exists=None, batch=3).tables}
        with dst_db.engine().connect() as conn:
            stored = {
                k: (m, t)
                for k, m, t in conn.execute(
                    sa.text(f"SELECT memory_id, memory::text, topics::text FROM {_qualified(dst_db, 'agno_memories')}")
                )
            }
        dispose(target(dst_db))
        return stored, {f: (t.rows, t.transformed, sorted(t.named), t.skipped) for f, t in done.items()}

    with_text = copied(True)
    assert sum(k is not None for k in kept) >= 3, kept  # (the first, the double-encoded one, the refused one)
    kept.clear()
    assert copied(False) == with_text and not kept
    stored = with_text[0]
    assert stored["stored-3"][1] == '"\\"[1]\\""' and stored["stored-6"][1] == '"{bad"'
    assert stored["stored-4"][1] == '{"k": "Infinity"}' and stored["stored-5"][1] == '["NaN"]'
    dispose(target(src_db))
