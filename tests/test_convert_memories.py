"""Agno 1.x memories → head memories rows: agno_migrate.convert.memories (pure, no server).

* rows written by the real Agno 1.8.4, embedded below (always run): Memory v2 and legacy
  ``AgentMemory`` SQLite rows, a legacy ``AgentMemory`` session blob;
* every row of the fixture pack's ``v1`` memory table (tests/fixtures-tables) on SQLite, PostgreSQL
  (the INSERTs of ``postgres.sql``) and MongoDB (the jsonl), compared with its
  ``expected.tables*.json``: ids and counts always; field by field through the pack's own canonical
  form (``tools/table_canon.py``) where the shared checkout sits beside this one (``../shared``, or
  ``$AGNO_MIGRATE_SHARED``);
* memories in the session blobs of the repository's ``v1`` sessions fixture (always run);
* the parser on repr edge cases and on hostile input (refused with one line, never executed);
* the rules one by one (ids, topics, times, what is kept), deterministic ids, de-duplication.
"""

from __future__ import annotations

import builtins
import datetime as dt
import functools
import hashlib
import importlib.util
import json
import lzma
import math
import os
import re
import sqlite3
import tempfile
from decimal import Decimal
from pathlib import Path

import pytest
from conftest import FIXTURES, fixture_bytes

from agno_migrate.convert import ConversionError
from agno_migrate.convert.memories import (
    HEAD_COLUMNS,
    LEGACY,
    MAX_LITERAL_CHARS,
    MAX_LITERAL_DEPTH,
    MAX_LITERAL_NODES,
    MEMORY_V2,
    V1_MEMORY_TABLE,
    BlobMemory,
    MemoryConversionError,
    agno_content_id,
    already_present,
    convert_v1_memory_row,
    derived_memory_id,
    kept_v1,
    memories_in_session_blob,
    memory_digest,
    memory_table_kind,
    newest_per_id,
    parse_stored_memory,
    stored_memory_kind,
)

SHARED = Path(os.environ.get("AGNO_MIGRATE_SHARED", Path(__file__).resolve().parents[2] / "shared"))
PACK_XZ = Path(__file__).parent / "fixtures-tables" / "v1"  # the pack's v1 point, in the repository (xz)


@functools.lru_cache(maxsize=1)
def pack() -> Path:
    """The v1 point of the table fixture pack, decompressed once into a temporary folder."""
    out = Path(tempfile.mkdtemp(prefix="agno-v1-pack-"))
    for path in PACK_XZ.rglob("*.xz"):
        target = out / path.relative_to(PACK_XZ).with_suffix("")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(lzma.open(path).read())
    return out


EXPECTED = {"sqlite": "expected.tables.json", "postgresql": "expected.tables.pg.json", "mongodb": "expected.tables.mongo.json"}  # fmt: skip

# --- real rows written by Agno 1.8.4 (agno.memory.db.sqlite / agno.memory.v2.db.sqlite), as SQLite holds them
# legacy MemoryManager: add {'memory': 'likes tea', 'input': 'I like tea a lot'} (id = md5 of that content),
# then update_memory(id, ...): the row keeps the old id with new content.
LEGACY_UPDATED = {"id": "94fd9a8aa604477f69662dc672c7cb01", "user_id": "u1", "memory": "{'memory': 'likes green tea', 'input': 'actually green'}", "created_at": "2026-12-03 07:26:18", "updated_at": "2026-12-03 07:26:18"}  # fmt: skip
LEGACY_QUOTES = {"id": "b096fdb10569983623c9feead28e3370", "user_id": "u1", "memory": "{'memory': 'quote \\' and \" and \\\\ nul \\x00 end', 'topic': 'food'}", "created_at": "2026-12-03 07:26:18", "updated_at": "2026-12-03 07:26:18"}  # fmt: skip
# Memory v2 add_user_memory(UserMemory(memory=..., topics=("t1", "t2"))): no user → "default",
# last_updated = datetime.now() (naive), topics a tuple because the caller gave one.
V2_NAIVE = {"id": "b399fc88-817d-4d5e-90b0-b4b3dbac6473", "user_id": "default", "memory": "{'memory_id': 'b399fc88-817d-4d5e-90b0-b4b3dbac6473', 'memory': 'naive time, no user', 'topics': ('t1', 't2'), 'last_updated': '2026-12-03T07:26:18.378788'}", "created_at": "2026-12-03 07:26:18", "updated_at": "2026-12-03 07:26:18"}  # fmt: skip
# AgentMemory(db=<that legacy table>, user_id="u1").load_user_memories(); .to_dict() — a session's memory column
LEGACY_BLOB = json.loads('{"update_system_message_on_change": false, "create_session_summary": false, "update_session_summary_after_run": true, "create_user_memories": true, "update_user_memories_after_run": true, "user_id": "u1", "memories": [{"memory": "likes green tea", "input": "actually green"}, {"memory": "quote \' and \\" and \\\\ nul \\u0000 end", "topic": "food"}], "messages": [], "runs": []}')  # fmt: skip
# Fixture pack v1, SQLite user_memories (Memory v2): three of its 43 rows
PACK_ROWS = [
    ({"id": "mem-1234000-205a64bc6e", "user_id": "user 5", "memory": "{'memory_id': 'mem-1234000-205a64bc6e', 'memory': 'Müller-Lüdenscheidt GmbH #403428', 'topics': ['food', 'ü'], 'last_updated': '2026-11-18T16:38:42+00:00', 'input': '日本語のメモ #218516'}", "created_at": "2026-12-03 05:05:20", "updated_at": "2026-12-03 05:05:20"},
     {"memory": "Müller-Lüdenscheidt GmbH #403428", "topics": ["food", "ü"], "input": "日本語のメモ #218516", "updated_at": 1795019922}),
    ({"id": "mem-1234000-767d89a9d2", "user_id": "user 5", "memory": "{'memory_id': 'mem-1234000-767d89a9d2', 'memory': 'quote \\' and \" and \\\\ backslash #605065', 'topics': ['food'], 'last_updated': '2026-11-20T23:46:32+00:00', 'input': 'quote \\' and \" and \\\\ backslash #430187'}", "created_at": "2026-12-03 05:05:20", "updated_at": "2026-12-03 05:05:20"},
     {"memory": "quote ' and \" and \\ backslash #605065", "topics": ["food"], "input": "quote ' and \" and \\ backslash #430187", "updated_at": 1795218392}),
    ({"id": "mem-1234000-956b68660d", "user_id": "用户3", "memory": "{'memory_id': 'mem-1234000-956b68660d', 'memory': \"SQL-ish: '; DROP TABLE x; -- #383534\", 'last_updated': '2026-11-20T10:58:55+00:00', 'input': \"SQL-ish: '; DROP TABLE x; -- #254332\"}", "created_at": "2026-12-03 05:05:20", "updated_at": "2026-12-03 05:05:20"},
     {"memory": "SQL-ish: '; DROP TABLE x; -- #383534", "topics": None, "input": "SQL-ish: '; DROP TABLE x; -- #254332", "updated_at": 1795172335}),
]  # fmt: skip
PACK_CREATED = 1796274320  # '2026-12-03 05:05:20' UTC


def one_line_error(value, **kwargs) -> str:
    with pytest.raises(MemoryConversionError) as info:
        parse_stored_memory(value, **kwargs)
    message = str(info.value)
    assert message and "\n" not in message and len(message) < 300, message
    assert isinstance(info.value, ConversionError)  # the caller's exit-9 path for sessions catches it too
    return message


# --- rows Agno 1.8.4 wrote ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("row,want", PACK_ROWS, ids=[r["id"] for r, _ in PACK_ROWS])
def test_pack_rows_embedded(row, want):
    out = convert_v1_memory_row(row)
    assert list(out) == list(HEAD_COLUMNS)
    assert out == {
        "memory_id": row["id"], "user_id": row["user_id"], "agent_id": None, "team_id": None, "feedback": None,
        "created_at": PACK_CREATED, **want,
    }  # fmt: skip


def test_memory_v2_naive_last_updated_and_tuple_topics():
    out = convert_v1_memory_row(V2_NAIVE)
    created = int(dt.datetime(2026, 12, 3, 7, 26, 18, tzinfo=dt.timezone.utc).timestamp())
    assert out["memory_id"] == V2_NAIVE["id"]
    assert out["memory"] == "naive time, no user"
    assert out["topics"] == ["t1", "t2"]  # the repr held a tuple
    assert out["user_id"] == "default"  # as 1.x wrote it, not turned into None
    assert out["created_at"] == created
    assert out["updated_at"] == created  # naive last_updated read as UTC, the fraction dropped
    assert out["feedback"] is None and out["input"] is None


def test_legacy_rows():
    updated = convert_v1_memory_row(LEGACY_UPDATED)
    assert stored_memory_kind(parse_stored_memory(LEGACY_UPDATED["memory"])) == LEGACY
    assert updated["memory_id"] == "94fd9a8aa604477f69662dc672c7cb01"  # the row id, not the md5 of the new content
    assert (updated["memory"], updated["input"], updated["topics"]) == ("likes green tea", "actually green", None)
    assert updated["updated_at"] == updated["created_at"] == 1796282778  # no last_updated: the row's times
    quotes = convert_v1_memory_row(LEGACY_QUOTES)
    assert quotes["memory"] == "quote ' and \" and \\ nul \x00 end"  # NUL kept (the caller strips it for PostgreSQL)
    assert quotes["topics"] == ["food"] and quotes["input"] is None and quotes["feedback"] is None


def test_agno_content_id_is_agnos():
    # ids computed by Agno 1.8.4's MemoryRow for these values (agno/memory/row.py)
    assert agno_content_id({"memory": "likes tea", "input": "I like tea a lot"}) == LEGACY_UPDATED["id"]
    assert agno_content_id({"memory": 'Müller\nzeile\t "q"', "topic": "food"}) == "19612c7420a5aa890d0d97212fe6d9d8"
    assert agno_content_id({"memory": "a b"}) == agno_content_id({"memory": "ab"}) == "a5d1489afc8ab0f9d23df30f14118868"
    stored = parse_stored_memory(LEGACY_QUOTES["memory"])
    assert agno_content_id(stored) == LEGACY_QUOTES["id"]


# --- recognising tables -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "columns,kind",
    [
        (["id", "user_id", "memory", "created_at", "updated_at"], V1_MEMORY_TABLE),
        (["updated_at", "memory", "id", "created_at", "user_id"], V1_MEMORY_TABLE),
        (["_id", "id", "_version", "user_id", "memory", "created_at", "updated_at"], V1_MEMORY_TABLE),  # MongoDB
        (["id", "user_id", "memory", "created_at"], None),
        (["id", "user_id", "memory", "created_at", "updated_at", "topics"], None),
        # 2.x/3.x memories
        (["memory_id", "memory", "input", "agent_id", "team_id", "user_id", "topics", "updated_at"], None),
        (["memory_id", "memory", "input", "agent_id", "team_id", "user_id", "topics", "feedback", "created_at", "updated_at"], None),
        # 1.x agent session table, 3.x knowledge
        (["session_id", "user_id", "memory", "session_data", "extra_data", "created_at", "updated_at", "agent_id", "agent_data", "team_session_id"], None),
        (["id", "name", "description", "metadata", "linked_to", "access_count", "created_at", "updated_at"], None),
        ([], None),
    ],
)  # fmt: skip
def test_memory_table_kind(columns, kind):
    assert memory_table_kind(columns) == kind
    assert memory_table_kind(iter(columns)) == kind


def test_stored_memory_kind():
    assert stored_memory_kind({"memory_id": "m", "memory": "x"}) == MEMORY_V2
    assert stored_memory_kind({"memory": "x", "input": "y"}) == LEGACY


# --- the fixture pack: every v1 memory row on every backend ----------------------------------------------------


def _canon():
    """The shared pack's canonical form (``tools/table_canon.py``), a second opinion where the shared
    checkout sits beside this one; None elsewhere (the field hashes are then not compared)."""
    path = SHARED / "tools" / "table_canon.py"
    if not path.exists():
        return None
    spec = importlib.util.spec_from_file_location("table_canon", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def sqlite_tables() -> dict[str, list[dict]]:
    with sqlite3.connect(f"file:{pack() / 'sqlite.db'}?mode=ro", uri=True) as conn:
        conn.row_factory = sqlite3.Row
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        tables = {}
        for name in names:
            columns = [r[1] for r in conn.execute(f'PRAGMA table_info("{name}")')]
            rows = [dict(r) for r in conn.execute(f'SELECT * FROM "{name}"')] if memory_table_kind(columns) else []
            tables[name] = (columns, rows)
        return tables


_CREATE = re.compile(r"CREATE TABLE (?:\w+\.)?(\w+) \((.*?)\n\);", re.S)
_INSERT = re.compile(r"INSERT INTO (?:\w+\.)?(\w+) \(([^)]*)\) VALUES \(")


def sql_values(text: str, pos: int) -> tuple[list, int]:
    """The literals of one ``VALUES (...)`` of pg_dump --inserts (standard-conforming strings)."""
    values = []
    while True:
        while text[pos] == " ":
            pos += 1
        if text[pos] == "'":
            out, pos = [], pos + 1
            while True:
                end = text.index("'", pos)
                out.append(text[pos:end])
                if text.startswith("''", end):
                    out.append("'")
                    pos = end + 2
                    continue
                pos = end + 1
                break
            values.append("".join(out))
        else:
            end = min(i for i in (text.find(",", pos), text.find(")", pos)) if i >= 0)
            token = text[pos:end].strip()
            values.append(None if token == "NULL" else int(token) if re.fullmatch(r"-?\d+", token) else token)
            pos = end
        if text[pos] == ")":
            return values, pos + 1
        pos += 1  # the comma


def timestamptz(text: str) -> dt.datetime:
    """What psycopg returns for a timestamptz literal pg_dump wrote (UTC session)."""
    text = re.sub(r"([+-]\d\d)$", r"\1:00", text)
    return dt.datetime.fromisoformat(text)


def postgres_tables() -> dict[str, tuple[list, list]]:
    script = (pack() / "postgres.sql").read_text(encoding="utf-8")
    tables = {}
    for match in _CREATE.finditer(script):
        columns = [line.strip().split()[0] for line in match.group(2).splitlines() if line.strip()]
        tables[match.group(1)] = (columns, [])
    for match in _INSERT.finditer(script):
        name, columns = match.group(1), [c.strip() for c in match.group(2).split(",")]
        if memory_table_kind(columns):
            values, _ = sql_values(script, match.end())
            tables[name][1].append(dict(zip(columns, values, strict=True)))
    return tables


def as_psycopg(row: dict) -> dict:
    """The types psycopg hands over: jsonb → dict, timestamptz → aware datetime."""
    out = dict(row)
    out["memory"] = json.loads(row["memory"]) if row["memory"] is not None else None
    for name in ("created_at", "updated_at"):
        out[name] = timestamptz(row[name]) if row[name] is not None else None
    return out


def mongo_tables() -> dict[str, tuple[list, list]]:
    from bson import json_util

    tables = {}
    for path in sorted((pack() / "mongo").glob("*.jsonl")):
        docs = [json_util.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        columns = sorted({key for doc in docs for key in doc})
        tables[path.stem] = (columns, docs if memory_table_kind(columns) else [])
    return tables


READERS = {"sqlite": sqlite_tables, "postgresql": postgres_tables, "mongodb": mongo_tables}


def pack_memory_rows(backend: str) -> list[dict]:
    tables = READERS[backend]()
    found = {name: rows for name, (columns, rows) in tables.items() if memory_table_kind(columns)}
    assert list(found) == ["user_memories"], sorted(tables)  # the session table is not taken for one
    assert memory_table_kind(tables["agent_sessions"][0]) is None
    rows = found["user_memories"]
    if backend == "postgresql":
        rows = [as_psycopg(row) for row in rows]
    return rows


@pytest.mark.parametrize("backend", list(READERS))
def test_fixture_pack_every_memory(backend):
    canon = _canon()
    expected = json.loads((pack() / EXPECTED[backend]).read_text(encoding="utf-8"))["tables"]["memories"]
    fields = expected["fields"]
    assert set(fields) == {"input", "memory", "memory_id", "topics", "updated_at", "user_id"}
    rows = pack_memory_rows(backend)
    assert len(rows) == expected["count"] == 43
    converted = {}
    for row in rows:
        out = convert_v1_memory_row(row)
        assert list(out) == list(HEAD_COLUMNS)
        assert out["memory_id"] == row["id"]
        assert stored_memory_kind(parse_stored_memory(row["memory"])) == MEMORY_V2
        assert out["feedback"] is None and out["agent_id"] is None and out["team_id"] is None
        if canon is not None:
            assert out["created_at"] == math.floor(
                canon.canon(row["created_at"], "created_at")
            )  # the row's own, whole s
        assert isinstance(out["created_at"], int) and isinstance(out["updated_at"], int)
        converted[out["memory_id"]] = out
    assert set(converted) == set(expected["rows"])
    if canon is None:
        return
    mismatches = []
    for memory_id, want in expected["rows"].items():
        got = canon.field_hashes(converted[memory_id], fields)
        mismatches += [(memory_id, f) for f in fields if got[f] != want["fields"][f]]
        if not mismatches:
            assert canon.row_hash(converted[memory_id], fields) == want["sha256"]
    assert not mismatches


def test_fixture_pack_postgres_text_equals_driver_types():
    """The same PostgreSQL rows given as text (memory JSON text, timestamptz text) convert alike."""
    raw = postgres_tables()["user_memories"][1]
    assert len(raw) == 43
    for row in raw:
        assert convert_v1_memory_row(row) == convert_v1_memory_row(as_psycopg(row))


def test_fixture_pack_backends_agree():
    """The three backends hold the same 43 memories (written separately: only the times differ)."""
    by_backend = {b: {r["id"]: convert_v1_memory_row(r) for r in pack_memory_rows(b)} for b in READERS}
    sqlite_rows = by_backend["sqlite"]
    for backend, rows in by_backend.items():
        assert set(rows) == set(sqlite_rows), backend
        for memory_id, row in rows.items():
            for name in ("memory", "topics", "input", "user_id"):
                assert row[name] == sqlite_rows[memory_id][name], (backend, memory_id, name)


# --- session blobs -----------------------------------------------------------------------------------------------


def test_memory_v2_blob():
    blob = {
        "runs": [],
        "memories": {
            "user-a": {
                "m1": {"memory_id": "m1", "memory": "likes tea", "topics": ["prefs"], "last_updated": "2025-06-01T14:03:22.123456"},
                "m2": {"memory_id": "m2", "memory": "no time"},
            },
            "default": {"m3": {"memory_id": "m3", "memory": "nobody's", "input": "hi"}},
            "user-b": {},
        },
    }  # fmt: skip
    found = memories_in_session_blob(blob, "user-a", fallback_time="2025-07-01 00:00:00")
    assert [(m.memory_id, m.row["user_id"], m.source) for m in found] == [
        ("m1", "user-a", MEMORY_V2), ("m2", "user-a", MEMORY_V2), ("m3", "default", MEMORY_V2),
    ]  # fmt: skip
    m1, m2, m3 = (m.row for m in found)
    june = int(dt.datetime(2025, 6, 1, 14, 3, 22, tzinfo=dt.timezone.utc).timestamp())
    july = int(dt.datetime(2025, 7, 1, tzinfo=dt.timezone.utc).timestamp())
    assert (m1["created_at"], m1["updated_at"], m1["topics"]) == (june, june, ["prefs"])
    assert (m2["created_at"], m2["updated_at"]) == (july, july)  # no last_updated: the session's time
    assert m3["input"] == "hi" and m3["feedback"] is None
    assert all(m.same_as == () for m in found)
    assert all(list(m.row) == list(HEAD_COLUMNS) for m in found)
    # JSON text (how SQLite/MariaDB hand the column over, also double-encoded) gives the same
    assert memories_in_session_blob(json.dumps(blob), "x", fallback_time=july) == found
    assert memories_in_session_blob(json.dumps(json.dumps(blob)), "x", fallback_time=july) == found


def test_memory_v2_blob_key_differs_from_value_id():
    blob = {"memories": {"u": {"key-id": {"memory_id": "other-id", "memory": "x"}}}}
    (found,) = memories_in_session_blob(blob, "u")
    assert found.memory_id == "key-id" and found.same_as == ("other-id",)
    assert kept_v1(found.row) == {"memory": {"memory_id": "other-id"}}
    assert (found.row["created_at"], found.row["updated_at"]) == (None, None)  # no time at all, no fallback given


def test_legacy_blob_real():
    found = memories_in_session_blob(LEGACY_BLOB, session_user_id="someone-else", fallback_time=1796282778)
    assert [m.source for m in found] == [LEGACY, LEGACY]
    green, quotes = found
    assert green.row["user_id"] == quotes.row["user_id"] == "u1"  # the blob's user_id wins over the session's
    assert (green.row["memory"], green.row["input"], green.row["topics"]) == ("likes green tea", "actually green", None)
    assert (quotes.row["memory"], quotes.row["topics"]) == ("quote ' and \" and \\ nul \x00 end", ["food"])
    assert green.row["created_at"] == green.row["updated_at"] == 1796282778
    # the id: derived from owner + content, deterministic; the Agno content id is in same_as
    assert green.memory_id == derived_memory_id("u1", {"memory": "likes green tea", "input": "actually green"})
    assert re.fullmatch(r"[0-9a-f]{32}", green.memory_id)
    assert quotes.same_as == (LEGACY_QUOTES["id"],)  # = the legacy table's id for that content
    assert memories_in_session_blob(LEGACY_BLOB, "someone-else", fallback_time=1796282778) == found


def test_legacy_blob_owner_and_ids():
    items = [{"memory": "likes tea"}, {"memory": "a b"}, {"memory": "ab"}, {"memory": "has id", "id": "legacy-1"}]
    session = memories_in_session_blob({"memories": items}, "s-user")
    assert {m.row["user_id"] for m in session} == {"s-user"}  # no user in the blob: the session's
    ids = [m.memory_id for m in session]
    assert len(set(ids)) == 4  # "a b" and "ab" stay two memories (Agno's md5 would merge them)
    assert ids[3] == "legacy-1" and session[3].same_as == (agno_content_id(items[3]),)
    other_user = memories_in_session_blob({"memories": items}, "t-user")
    assert [m.memory_id for m in other_user][:3] != ids[:3]  # the owner is part of the derived id
    assert [m.same_as for m in other_user] == [m.same_as for m in session]  # the Agno content id is not
    nobody = memories_in_session_blob({"memories": items[:1]}, None)
    assert nobody[0].row["user_id"] is None
    assert (
        derived_memory_id(None, items[0])
        == hashlib.md5(b'{"memory":{"memory":"likes tea"},"user_id":null}').hexdigest()
    )


@pytest.mark.parametrize(
    "blob", [None, {}, {"memories": None}, {"memories": []}, {"memories": {}}, "null", '{"runs": []}']
)
def test_blob_without_memories(blob):
    assert memories_in_session_blob(blob, "u") == []


@pytest.mark.parametrize(
    "blob,where",
    [
        ({"memories": "text"}, "memory.memories holds str"),
        ({"memories": [{"memory": "ok"}, "not a dict"]}, "memory.memories[1] holds str"),
        ({"memories": [{"input": "no text"}]}, "memory.memories[0]: stored memory has no 'memory' key"),
        ({"memories": [{"memory": 5}]}, "memory.memories[0]: stored memory has 'memory' int"),
        ({"memories": {"u": ["x"]}}, "memory.memories['u'] holds list"),
        ({"memories": {"u": {"m": "x"}}}, "memory.memories['u']['m'] holds str"),
        ("[1, 2]", "session memory holds list"),
        ("{not json", "session memory is not JSON"),
    ],
)
def test_blob_errors(blob, where):
    with pytest.raises(MemoryConversionError) as info:
        memories_in_session_blob(blob, "u")
    assert where in str(info.value) and "\n" not in str(info.value)


def _v1_session_blobs(tmp_path):
    """(backend, session_id, user_id, memory, session time) of the repository's v1 sessions fixture."""
    from bson import json_util

    out = []
    path = tmp_path / "v1-sessions.db"
    path.write_bytes(fixture_bytes("v1", "sqlite.db"))
    conn = sqlite3.connect(path)
    for table in ("agent_sessions", "team_sessions"):
        query = f"SELECT session_id, user_id, memory, COALESCE(updated_at, created_at) FROM {table}"
        out += [("sqlite",) + tuple(r) for r in conn.execute(query)]
    conn.close()
    for name in ("agent_sessions", "team_sessions"):
        with lzma.open(FIXTURES / "v1" / "mongo" / f"{name}.jsonl.xz", "rt", encoding="utf-8") as fh:
            for line in fh:
                doc = json_util.loads(line)
                time = doc.get("updated_at") if doc.get("updated_at") is not None else doc.get("created_at")
                out.append(("mongodb", doc["session_id"], doc.get("user_id"), doc.get("memory"), time))
    return out


def test_v1_session_fixture_blobs(tmp_path):
    """Every agent/team session of the v1 sessions fixture: the blob memories convert, with their keys' ids."""
    per_backend = {}
    for backend, session_id, user_id, memory, session_time in _v1_session_blobs(tmp_path):
        found = memories_in_session_blob(memory, user_id, fallback_time=session_time)
        value = json.loads(memory) if isinstance(memory, str) else memory
        while isinstance(value, str):
            value = json.loads(value)
        listed = (value or {}).get("memories") or {}
        assert [m.memory_id for m in found] == [mid for by_id in listed.values() for mid in by_id], session_id
        for memory_found in found:
            assert memory_found.source == MEMORY_V2
            original = listed[memory_found.row["user_id"]][memory_found.memory_id]
            assert memory_found.row["memory"] == original["memory"]
            assert memory_found.row["topics"] == original.get("topics")
            assert memory_found.row["feedback"] is None
            assert isinstance(memory_found.row["created_at"], int)
        per_backend.setdefault(backend, []).extend(found)
    assert set(per_backend) == {"sqlite", "mongodb"}
    assert len(per_backend["sqlite"]) > 20
    for found in per_backend.values():
        unique = newest_per_id(found)
        assert len({m.memory_id for m in unique}) == len(unique)
    assert {m.memory_id for m in per_backend["sqlite"]} == {m.memory_id for m in per_backend["mongodb"]}


# --- de-duplication --------------------------------------------------------------------------------------------------


def test_already_present():
    table_rows = [convert_v1_memory_row(LEGACY_UPDATED), convert_v1_memory_row(LEGACY_QUOTES)]
    ids = {row["memory_id"] for row in table_rows}
    digests = {memory_digest(row) for row in table_rows}
    # the real blob: both items are copies of rows of that table (by content)
    assert all(already_present(m, ids, digests) for m in memories_in_session_blob(LEGACY_BLOB, None))
    # an older copy taken before update_memory: its Agno content id is the row's id
    before_update = {"user_id": "u1", "memories": [{"memory": "likes tea", "input": "I like tea a lot"}]}
    (old,) = memories_in_session_blob(before_update, None)
    assert old.memory_id not in ids and old.digest not in digests
    assert old.same_as == (LEGACY_UPDATED["id"],) and already_present(old, ids, digests)
    # the same text for another user is another memory
    (other,) = memories_in_session_blob({"user_id": "u2", "memories": [{"memory": "likes green tea"}]}, None)
    assert not already_present(other, ids, digests)
    # Memory v2: by id
    (v2,) = memories_in_session_blob({"memories": {"u9": {V2_NAIVE["id"]: {"memory": "changed later"}}}}, None)
    assert already_present(v2, {V2_NAIVE["id"]}, set())


def test_memory_digest():
    row = {"user_id": "u", "memory": "a\x00b"}
    assert memory_digest(row) == memory_digest({"user_id": "u", "memory": "ab"})  # PostgreSQL strips NUL
    assert memory_digest(row) != memory_digest({"user_id": "v", "memory": "ab"})
    assert memory_digest({"user_id": None, "memory": "ab"}) != memory_digest({"user_id": "null", "memory": "ab"})
    assert memory_digest({"user_id": "u", "memory": "a b"}) != memory_digest({"user_id": "u", "memory": "ab"})
    assert re.fullmatch(r"[0-9a-f]{64}", memory_digest(row))


def test_newest_per_id():
    def blob_memory(memory_id, updated_at, text):
        row = dict.fromkeys(HEAD_COLUMNS) | {"memory_id": memory_id, "memory": text, "updated_at": updated_at}
        return BlobMemory(row, memory_digest(row), (), MEMORY_V2)

    memories = [blob_memory("a", 5, "old"), blob_memory("b", None, "b"), blob_memory("a", 9, "new"),
                blob_memory("a", 9, "same time"), blob_memory("b", 1, "b timed"), blob_memory("c", None, "c")]  # fmt: skip
    assert [m.row["memory"] for m in newest_per_id(memories)] == ["new", "b timed", "c"]


# --- parsing: what SQLite's repr can hold ---------------------------------------------------------------------------

TRICKY = [
    "plain", "", "quote ' only", 'dquote " only', "both ' and \"", "back\\slash", "ends with backslash \\",
    "\\'escaped-looking\\'", "nul \x00 and \x01\x1f\x7f controls", "line1\nline2\r\n\ttab", "ünïcödé 日本語 العربية",
    "emoji 😀🚀 and zero\u200bwidth", "lone surrogate \ud800", "bell \a formfeed \f", "\\x00 literally", "\\u00e9 literally",
    "{'memory': 'nested repr'}", '{"json": "inside"}', "   spaces   ", "#" * 10_000,
]  # fmt: skip


@pytest.mark.parametrize("text", TRICKY, ids=range(len(TRICKY)))
def test_repr_round_trip(text):
    value = {
        "memory_id": "m",
        "memory": text,
        "topics": [text, "b"],
        "input": text,
        "last_updated": "2025-01-01T00:00:00",
    }
    assert parse_stored_memory(repr(value)) == value
    assert parse_stored_memory(json.dumps(value)) == value  # JSON text gives the same
    if "\ud800" not in text:
        assert parse_stored_memory(repr(value).encode("utf-8")) == value
    out = convert_v1_memory_row({"id": "m", "user_id": "u", "memory": repr(value), "created_at": 1, "updated_at": 2})
    assert (out["memory"], out["input"], out["topics"], out["feedback"]) == (text, text, [text, "b"], None)


@pytest.mark.parametrize(
    "stored",
    [
        {"memory": "only text"},
        {"memory_id": "m", "memory": "x"},
        {"memory_id": "m", "memory": "x", "topics": []},
        {"memory_id": "m", "memory": "x", "topics": None, "input": None},
        {"memory": "x", "input": "y", "id": "m", "topic": "t"},
        {"memory": "numbers", "n": -1, "f": -2.5, "e": 1e300, "big": 10**30, "t": True, "f2": False, "z": None},
    ],
)
def test_missing_and_extra_keys_parse(stored):
    assert parse_stored_memory(repr(stored)) == stored
    assert parse_stored_memory(json.dumps(stored)) == stored


def test_mapping_and_text_inputs():
    value = {"memory_id": "m", "memory": "x"}
    assert parse_stored_memory(value) == value and parse_stored_memory(value) is not value
    assert parse_stored_memory(f"  {value!r}\n") == value
    assert parse_stored_memory(memoryview(repr(value).encode())) == value
    assert parse_stored_memory(json.dumps(json.dumps(value))) == value  # JSON string holding the JSON
    assert parse_stored_memory(json.dumps(repr(value))) == value  # JSON string holding the repr
    assert parse_stored_memory("{'topics': ('a',), 'memory': 'x'}") == {"topics": ["a"], "memory": "x"}
    assert parse_stored_memory("{u'memory': u'x'}") == {"memory": "x"}  # u'' prefixes are literals too


# --- parsing: hostile input ----------------------------------------------------------------------------------------


@pytest.fixture
def no_evaluation(monkeypatch):
    """eval/exec may not be called at all, compile only to an AST."""

    def refuse(*args, **kwargs):
        raise AssertionError("eval/exec called")

    real_compile = builtins.compile

    def ast_only(source, filename, mode, flags=0, *args, **kwargs):
        assert flags & 0x400, "compile() to code"  # ast.PyCF_ONLY_AST
        return real_compile(source, filename, mode, flags, *args, **kwargs)

    monkeypatch.setattr(builtins, "eval", refuse)
    monkeypatch.setattr(builtins, "exec", refuse)
    monkeypatch.setattr(builtins, "compile", ast_only)


HOSTILE = [
    ("__import__('os')", "call"),
    ("__import__('os').system('touch {marker}')", "call"),
    ("{{'memory': __import__('os').system('touch {marker}')}}", "call"),
    ("{{'memory': open(r'{marker}', 'w').write('x')}}", "call"),
    ("{{'memory': (lambda: open(r'{marker}', 'w'))()}}", "call"),
    ("dict(memory='x')", "call"),
    ("{{'memory': 'x'}}.__class__", "attribute"),
    ("{{'memory': 'x', 'topics': {{'a', 'b'}}}}", "set"),
    ("{{'a', 'b'}}", "set"),
    ("{{'memory': 'a' + 'b'}}", "operator"),
    ("{{'memory': 'x' * 10**9}}", "operator"),
    ("{{'memory': f'{{1}}'}}", "f-string"),
    ("{{**{{'memory': 'x'}}}}", "unpacks"),
    ("{{k: 'x' for k in 'ab'}}", "DictComp"),
    ("{{'memory': [x for x in range(10)]}}", "ListComp"),
    ("{{'memory': x}}", "name"),
    ("{{'memory': ...}}", "ellipsis"),
    ("{{'memory': b'bytes'}}", "bytes"),
    ("{{'memory': 1j}}", "complex"),
    ("{{'memory': -True}}", "sign"),
    ("{{'memory': (y := 1)}}", "NamedExpr"),
    ("{{'memory': [1, 2][0]}}", "subscript"),
    ("{{1: 'x'}}", "key of type int"),
    ("{{('a',): 'x'}}", "key of type tuple"),
    ("{{'memory': nan}}", "name"),
    ("['memory', 'x']", "list"),
    ("'just a string'", "not a dict"),
    ("42", "not a dict"),
    ("None", "not a dict"),
    ("{{'memory': 'x'", "neither JSON nor a Python literal"),
    ("{{'memory': 'x'}}; import os", "neither JSON nor a Python literal"),
    ("{{'memory': 'x'}} if True else 0", "IfExp"),
    ("{{'memory': 'unterminated}}", "neither JSON nor a Python literal"),
    ("{{'memory': 'nul\x00raw'}}", "raw NUL"),
    ("", "empty"),
    ("   ", "empty"),
]  # fmt: skip


@pytest.mark.parametrize("template,reason", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_refused_never_executed(template, reason, tmp_path, no_evaluation):
    marker = tmp_path / "executed"
    message = one_line_error(template.format(marker=marker))
    assert reason.lower() in message.lower(), message
    assert not marker.exists()


@pytest.mark.parametrize(
    "text",
    [
        "{'memory': 'SECRET' + 'x'}", "{'memory': 'SECRET", "SECRET('x')", "{'memory': {'SECRET'}}",
        "{'memory': 'SECRET', 'n': " + "9" * 5000 + "}", "['SECRET']", "{'memory': 'SECRET' 'x' 5}",
    ],
)  # fmt: skip
def test_messages_never_quote_the_content(text):
    assert "SECRET" not in one_line_error(text)


def test_hostile_row_reported_by_converter(tmp_path, no_evaluation):
    marker = tmp_path / "executed"
    row = {"id": "m", "user_id": "u", "memory": f"{{'memory': open(r'{marker}', 'w').write('x')}}", "created_at": 1, "updated_at": 1}  # fmt: skip
    with pytest.raises(MemoryConversionError, match="never evaluated"):
        convert_v1_memory_row(row)
    assert not marker.exists()


def test_deep_nesting_refused(no_evaluation):
    assert "nested deeper" in one_line_error("{'memory': " + "[" * 60 + "]" * 60 + "}")
    assert one_line_error("{'memory': " + "[" * 5000 + "]" * 5000 + "}")  # the parser's own limit, no crash
    assert one_line_error('{"memory": ' + "[" * 100_000 + "]" * 100_000 + "}")  # JSON too deep: no RecursionError
    ok = "{'m': " + "[" * (MAX_LITERAL_DEPTH - 2) + "]" * (MAX_LITERAL_DEPTH - 2) + "}"
    assert parse_stored_memory(ok)["m"] is not None


def test_huge_refused(no_evaluation):
    huge = "{'memory': '" + "x" * MAX_LITERAL_CHARS + "'}"
    assert "over the limit" in one_line_error(huge)
    many = "{'memory': 'x', 'topics': [" + "'t'," * (MAX_LITERAL_NODES + 1) + "]}"
    assert "more than" in one_line_error(many)
    assert "memory text is" in one_line_error(huge.encode())
    long_ok = {"memory": "y" * 1_000_000, "topics": ["t"] * 1000}
    assert parse_stored_memory(repr(long_ok)) == long_ok


def test_huge_integer_literal(no_evaluation):
    assert one_line_error("{'memory': 'x', 'n': " + "9" * 10_000 + "}")


@pytest.mark.parametrize(
    "value,reason",
    [(None, "NULL"), (5, "int"), (["memory"], "list"), (b"\xff\xfe{", "not UTF-8"), ("[1, 2]", "list"), ('"text"', "not a dict")],
)  # fmt: skip
def test_not_a_dict(value, reason):
    assert reason in one_line_error(value)


# --- rules, one by one -----------------------------------------------------------------------------------------------


def v1_row(stored, **columns):
    return {
        "id": "m1",
        "user_id": "u",
        "memory": stored,
        "created_at": "2025-01-01 00:00:00",
        "updated_at": None,
        **columns,
    }


JAN = 1735689600  # 2025-01-01 00:00:00 UTC


def test_ids():
    assert convert_v1_memory_row(v1_row({"memory_id": "m1", "memory": "x"}))["feedback"] is None
    out = convert_v1_memory_row(v1_row({"memory_id": "other", "memory": "x"}))
    assert out["memory_id"] == "m1" and kept_v1(out) == {"memory": {"memory_id": "other"}}
    assert json.loads(out["feedback"]) == {"agno_v1": {"memory": {"memory_id": "other"}}}
    out = convert_v1_memory_row(v1_row({"id": "m1", "memory": "x"}))
    assert out["feedback"] is None  # legacy id = row id
    assert kept_v1(convert_v1_memory_row(v1_row({"id": "zz", "memory": "x"}))) == {"memory": {"id": "zz"}}
    assert convert_v1_memory_row(v1_row({"memory": "x"}, id=12))["memory_id"] == "12"
    assert convert_v1_memory_row(v1_row({"memory_id": "own", "memory": "x"}, id=None))["memory_id"] == "own"
    for bad in ("", None, ["x"]):
        with pytest.raises(MemoryConversionError, match="row id"):
            convert_v1_memory_row(v1_row({"memory": "x"}, id=bad))


def test_memory_text_required():
    for stored, reason in (
        ({}, "no 'memory' key"),
        ({"memory": None}, "'memory' null"),
        ({"memory": {"a": 1}}, "'memory' dict"),
    ):
        with pytest.raises(MemoryConversionError, match=reason):
            convert_v1_memory_row(v1_row(stored))
    assert convert_v1_memory_row(v1_row({"memory": ""}))["memory"] == ""


def test_topics():
    def topics(stored):
        out = convert_v1_memory_row(v1_row({"memory": "x", **stored}))
        return out["topics"], kept_v1(out)

    assert topics({}) == (None, None)
    assert topics({"topics": ["a", "ü"]}) == (["a", "ü"], None)
    assert topics({"topics": []}) == ([], None)
    assert topics({"topic": "food"}) == (["food"], None)
    assert topics({"topics": ["food"], "topic": "food"}) == (["food"], None)
    assert topics({"topics": ["a"], "topic": "b"}) == (["a"], {"memory": {"topic": "b"}})
    assert topics({"topics": "a,b"}) == (None, {"memory": {"topics": "a,b"}})
    assert topics({"topics": "a,b", "topic": "c"}) == (None, {"memory": {"topics": "a,b", "topic": "c"}})
    assert topics({"topic": 5}) == (None, {"memory": {"topic": 5}})


def test_input_and_unknown_keys_kept():
    out = convert_v1_memory_row(v1_row({"memory": "x", "input": {"role": "user"}, "score": 0.5, "extra": [1, None]}))
    assert out["input"] is None
    assert kept_v1(out) == {"memory": {"input": {"role": "user"}, "score": 0.5, "extra": [1, None]}}
    assert out["memory"] == "x"


def test_columns_kept_mongo_internals_not():
    row = v1_row(
        {"memory": "x"}, _id="6b10f8cf3025287c9120a95b", _version=3, note="hand-added", when=dt.date(2025, 1, 2)
    )
    out = convert_v1_memory_row(row)
    assert kept_v1(out) == {"columns": {"note": "hand-added", "when": "2025-01-02"}}
    assert kept_v1({"feedback": "great memory"}) is None and kept_v1({"feedback": '{"agno_v1": 1}'}) is None
    assert kept_v1({"feedback": "{not json"}) is None and kept_v1({}) is None


def test_user_id_as_stored():
    assert convert_v1_memory_row(v1_row({"memory": "x"}, user_id="default"))["user_id"] == "default"
    assert convert_v1_memory_row(v1_row({"memory": "x"}, user_id=None))["user_id"] is None


@pytest.mark.parametrize(
    "value,epoch",
    [
        ("2025-01-01 00:00:00", JAN),  # SQLite CURRENT_TIMESTAMP (UTC)
        ("2025-01-01 00:00:00.999999", JAN),
        ("2025-01-01T00:00:00", JAN),
        ("2025-01-01T01:00:00+01:00", JAN),
        ("2024-12-31T23:00:00-0100", JAN),
        ("2025-01-01T00:00:00Z", JAN),
        ("2025-01-01 00:00:00.5+00", JAN),  # PostgreSQL text
        ("2025-01-01", JAN),
        (" 2025-01-01 00:00 ", JAN),
        (dt.datetime(2025, 1, 1), JAN),  # naive = UTC
        (dt.datetime(2025, 1, 1, 0, 0, 0, 999999, tzinfo=dt.timezone.utc), JAN),
        (dt.datetime(2025, 1, 1, 9, tzinfo=dt.timezone(dt.timedelta(hours=9))), JAN),  # psycopg, other session zone
        (JAN, JAN),  # MongoDB int
        (float(JAN) + 0.7, JAN),
        (str(JAN), JAN),
        (b"2025-01-01 00:00:00", JAN),
    ],
)  # fmt: skip
def test_created_at_forms(value, epoch):
    out = convert_v1_memory_row(v1_row({"memory": "x"}, created_at=value))
    assert (out["created_at"], out["updated_at"]) == (epoch, epoch)
    assert out["feedback"] is None


def test_int64_created_at():
    from bson.int64 import Int64

    out = convert_v1_memory_row(v1_row({"memory": "x"}, created_at=Int64(JAN)))
    assert out["created_at"] == JAN and type(out["created_at"]) is int


def test_updated_at_order():
    stored = {"memory": "x", "last_updated": "2025-03-01T00:00:00+00:00"}
    march = 1740787200
    assert convert_v1_memory_row(v1_row(stored, updated_at=JAN + 5))["updated_at"] == march  # last_updated first
    assert convert_v1_memory_row(v1_row({"memory": "x"}, updated_at=JAN + 5))["updated_at"] == JAN + 5  # the row's
    assert convert_v1_memory_row(v1_row({"memory": "x"}, updated_at=None))["updated_at"] == JAN  # created_at
    out = convert_v1_memory_row(v1_row({"memory": "x", "last_updated": "yesterday"}, updated_at=JAN + 5))
    assert out["updated_at"] == JAN + 5 and kept_v1(out) == {"memory": {"last_updated": "yesterday"}}
    out = convert_v1_memory_row(v1_row({"memory": "x", "last_updated": JAN + 7}))
    assert out["updated_at"] == JAN + 7 and out["feedback"] is None


def test_created_at_fallbacks():
    stored = {"memory": "x", "last_updated": "2025-03-01T00:00:00+00:00"}
    assert convert_v1_memory_row(v1_row(stored, created_at=None, updated_at=JAN))["created_at"] == JAN
    assert convert_v1_memory_row(v1_row(stored, created_at=None))["created_at"] == 1740787200
    assert convert_v1_memory_row(v1_row({"memory": "x"}, created_at=None), fallback_time=42)["created_at"] == 42
    out = convert_v1_memory_row(v1_row({"memory": "x"}, created_at=None))
    assert out["created_at"] is None and out["updated_at"] is None
    out = convert_v1_memory_row(v1_row({"memory": "x"}, created_at="not a time", updated_at=JAN))
    assert out["created_at"] == JAN and kept_v1(out) == {"columns": {"created_at": "not a time"}}
    for bad in (
        "2025-02-30 00:00:00",
        "2025-01-01T00:00:00+25:00",
        float("nan"),
        1e300,
        2**63,
        "9" * 30,
        Decimal("sNaN"),
        True,
        [1],
    ):
        out = convert_v1_memory_row(v1_row({"memory": "x"}, created_at=bad, updated_at=JAN))
        assert out["created_at"] == JAN, bad


def test_nul_kept_everywhere():
    stored = {"memory_id": "m1", "memory": "a\x00b", "input": "\x00", "topics": ["t\x00"], "odd\x00key": "v\x00"}
    out = convert_v1_memory_row(v1_row(repr(stored), user_id="u\x00"))
    assert (out["memory"], out["input"], out["topics"], out["user_id"]) == ("a\x00b", "\x00", ["t\x00"], "u\x00")
    assert kept_v1(out) == {"memory": {"odd\x00key": "v\x00"}}


def test_conversion_is_deterministic():
    rows = [v1_row({"memory": "x", "extra": {"b": 1, "a": 2}}), V2_NAIVE, LEGACY_QUOTES] + [r for r, _ in PACK_ROWS]
    assert [convert_v1_memory_row(r) for r in rows] == [convert_v1_memory_row(dict(r)) for r in rows]
    assert convert_v1_memory_row(rows[0])["feedback"] == '{"agno_v1": {"memory": {"extra": {"a": 2, "b": 1}}}}'
