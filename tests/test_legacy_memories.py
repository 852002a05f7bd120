"""Agno 1.x memories imported into the memories table (issue 14, item 5), against the real servers with
the table pack's ``v1`` point (``agent_sessions`` + ``user_memories``, written by Agno 1.8.4): every memory
arrives with its 1.x id, text, topics, input, user and times (the rows ``convert_v1_memory_row`` gives,
compared with the pack's expected file in tests/test_convert_memories.py); the 1.x tables are untouched;
``check`` passes; a second upgrade imports nothing twice; an unreadable row gives exit 9 naming it and is
imported once repaired; the created table is Agno 3.1.10's at head; Agno 3.1.10 lists them all."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
import sqlalchemy as sa
from test_cli import as_json, cli, ok
from test_convert_memories import pack_memory_rows
from test_tables_detect import SCHEMA, load

from agno_migrate import convert
from agno_migrate.convert.memories import HEAD_COLUMNS, convert_v1_memory_row
from agno_migrate.tables import detect_table, reflect_mongo, reflect_sql

BACKENDS = ("sqlite", "postgresql", "mongodb")
STORES_NUL = {"sqlite": True, "postgresql": False, "mongodb": True}


def expected_rows(backend: str) -> dict[str, dict]:
    out = {}
    for row in pack_memory_rows(backend):
        head = convert_v1_memory_row(row)
        if not STORES_NUL[backend]:
            head, _ = convert.strip_nul(head)
        out[head["memory_id"]] = head
    return out


def rows_of(db, table: str, key: str) -> dict:
    if db.backend == "mongodb":
        with db.mongo() as mdb:
            return {doc[key]: doc for doc in mdb[table].find({}, {"_id": 0})}
    engine = db.engine()
    try:
        with engine.connect() as conn:
            t = sa.Table(table, sa.MetaData(), autoload_with=conn, schema=SCHEMA.get(db.backend))
            return {row[key]: dict(row) for row in conn.execute(sa.select(t)).mappings()}
    finally:
        engine.dispose()


def head_memories(db) -> dict[str, dict]:
    return {k: {c: v.get(c) for c in HEAD_COLUMNS} for k, v in rows_of(db, "agno_memories", "memory_id").items()}


def set_memory(db, memory_id: str, value) -> None:
    if db.backend == "mongodb":
        with db.mongo() as mdb:
            mdb["user_memories"].update_one({"id": memory_id}, {"$set": {"memory": value}})
        return
    engine = db.engine()
    try:
        with engine.begin() as conn:
            t = sa.Table("user_memories", sa.MetaData(), autoload_with=conn, schema=SCHEMA.get(db.backend))
            conn.execute(t.update().where(t.c.id == memory_id).values(memory=value))
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", BACKENDS)
def test_v1_memories_arrive_losslessly_once(new_database, backend, tmp_path):
    db = new_database(backend)
    load(db, "v1")
    legacy_before = rows_of(db, "user_memories", "id")
    plan = as_json(ok(cli("--json", "plan", url=db.url)))
    assert {t["name"]: t["mode"] for t in plan["legacy_tables"]} == {
        "agent_sessions": "agent",
        "user_memories": "memories",
    }

    done = as_json(ok(cli("--json", "upgrade", url=db.url, cwd=tmp_path)))
    assert done["report"]["legacy"]["memories"] == 43
    want = expected_rows(backend)
    assert head_memories(db) == want  # id, text, topics, input, user, created_at, updated_at, feedback
    assert rows_of(db, "user_memories", "id") == legacy_before  # the 1.x table untouched
    ok(cli("check", url=db.url))

    again = as_json(ok(cli("--json", "upgrade", url=db.url, cwd=tmp_path)))
    assert "legacy" not in again["report"]  # nothing pending: nothing imported twice
    assert head_memories(db) == want


@pytest.mark.parametrize("backend", BACKENDS)
def test_unreadable_memory_row_exit_9_then_repaired(new_database, backend, tmp_path):
    db = new_database(backend)
    load(db, "v1")
    bad_id = sorted(rows_of(db, "user_memories", "id"))[5]
    original = rows_of(db, "user_memories", "id")[bad_id]["memory"]
    set_memory(db, bad_id, "{'memory': __import__('os').getcwd()}")

    done = cli("upgrade", url=db.url, cwd=tmp_path)
    assert done.code == 9, done.err
    assert "Traceback" not in done.out + done.err and len(done.err.strip().splitlines()) == 1
    report = [json.loads(line) for line in (tmp_path / "agno-migrate-report.jsonl").read_text().splitlines()]
    assert [(r["kind"], r["table"], r["session_id"]) for r in report] == [("unparseable", "user_memories", bad_id)]
    assert set(head_memories(db)) == set(expected_rows(backend)) - {bad_id}
    assert cli("check", url=db.url).code == 9  # the memory table is still pending: its unreadable row

    set_memory(db, bad_id, original)
    ok(cli("upgrade", url=db.url, cwd=tmp_path))
    assert head_memories(db) == expected_rows(backend)
    ok(cli("check", url=db.url))


@pytest.mark.parametrize("backend", ("sqlite", "postgresql", "mysql", "mongodb"))
def test_created_memories_table_is_agno_head(new_database, backend):
    """The table the import creates is Agno 3.1.10's memories table at head (detected as the fresh
    3.1.10 layout), stamped 3.0.0."""
    from agno_migrate.migrate.legacy import sql_memories
    from agno_migrate.target import Target

    db = new_database(backend)
    target = Target.from_url(db.url)
    if backend == "mongodb":
        from agno_migrate.migrate.legacy.mongo_memories import ensure_memories_collection
        from agno_migrate.migrate.mongo.step import MongoStep

        with db.mongo() as mdb:
            ensure_memories_collection(MongoStep(mdb, target), target)
            found = detect_table("memories", reflect_mongo(mdb, "agno_memories"))
            stamp = mdb["agno_schema_versions"].find_one({"table_name": "agno_memories"})["version"]
    else:
        ok(cli("upgrade", url=db.url))  # head: the versions table exists
        engine = db.engine()
        try:
            with engine.begin() as conn:
                sql_memories.ensure_memories_table(conn, target)
            with engine.connect() as conn:
                found = detect_table("memories", reflect_sql(conn, "agno_memories", SCHEMA.get(backend)))
                versions = sa.table("agno_schema_versions", sa.column("table_name"), sa.column("version"))
                versions.schema = SCHEMA.get(backend)
                stamp = conn.execute(
                    sa.select(versions.c.version).where(versions.c.table_name == "agno_memories")
                ).scalar()
        finally:
            engine.dispose()
    assert found.at_head and not found.drift and not found.additions, found
    assert stamp == "3.0.0"


@pytest.mark.agno
@pytest.mark.parametrize("backend", BACKENDS)
def test_agno_3_1_10_lists_every_memory(new_database, backend, tmp_path):
    from agno_side.env import HERE, run

    db = new_database(backend)
    load(db, "v1")
    ok(cli("upgrade", url=db.url, cwd=tmp_path))
    spec = {"sqlite": {"backend": "sqlite", "path": str(db.path)},
            "postgresql": {"backend": "postgresql", "url": db.url.replace("postgresql://", "postgresql+psycopg://"), "schema": "ai"},
            "mongodb": {"backend": "mongodb", "url": db.server_url, "db_name": db.db_name}}[backend]  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        request, result = Path(tmp) / "request.json", Path(tmp) / "result.json"
        request.write_text(json.dumps({"db": spec}))
        done = run(HERE / "agno_memories.py", str(request), str(result))
        assert done.returncode == 0, done.stderr[-3000:]
        got = json.loads(result.read_text())
    want = expected_rows(backend)
    assert got["count"] == len(want) == 43
    for memory in got["raw"]:
        expected = want[memory["memory_id"]]
        for name in ("memory", "topics", "input", "user_id", "created_at", "updated_at"):
            assert memory[name] == expected[name], (memory["memory_id"], name)
