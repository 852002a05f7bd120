"""`agno-migrate export` / `import`: a database through a file, into another backend, on real servers.

The fixture pack (databases the real Agno wrote, several points) is exported, imported into an empty
database of another backend, and found equal by ``agno_migrate.verify``; the real Agno 3.1.10 reads
the imported database as the fixture's expected file says. Odd values (NUL, big integers, emoji, lone
surrogates, deep nesting) come back exactly through a plain and a gzip file; the filters select what
the store's listing selects.
"""

from __future__ import annotations

import gzip
import json
import math

import pytest
import sqlalchemy as sa
from agno_side import env as agno_env
from conftest import expected_file, expected_sessions
from test_cli import as_json, cli, failed, ok

import agno_migrate
from agno_migrate import jsoncodec
from agno_migrate.move.jsonl import ExportFile
from agno_migrate.selection import Selection
from agno_migrate.store import browse
from agno_migrate.target import Target

# (source backend, fixture point, target backend): every backend on each side, Agno 1.x to 3.1
CASES = [
    ("sqlite", "3.1.10", "postgresql"),
    ("postgresql", "2.5.0", "mongodb"),
    ("mysql", "3.1.10", "sqlite"),
    ("mongodb", "2.3.0", "mysql"),
    ("sqlite", "v1", "mongodb"),
]
IDS = [f"{a}-{p}-to-{b}" for a, p, b in CASES]


def agno_schema(db) -> str | None:
    return {"postgresql": "ai", "mysql": Target.from_url(db.url).schema if db.backend == "mysql" else None,
            "mongodb": db.db_name}.get(db.backend)  # fmt: skip


@pytest.mark.parametrize("source_backend,point,target_backend", CASES, ids=IDS)
def test_export_then_import_into_another_backend_is_equal(new_database, tmp_path, source_backend, point,
                                                          target_backend):  # fmt: skip
    original = new_database(source_backend)
    original.load(point)
    path = tmp_path / "backup.jsonl.gz"
    exported = as_json(ok(cli("export", str(path), "--json", url=original.url)))
    n = len(expected_sessions(point, source_backend))
    assert exported["sessions"] == n and exported["exit_code"] == 0
    with ExportFile(path) as file:
        assert file.header["schema"] == "3.0.1" and file.header["format"] == 1
        records = list(file)  # the sessions, then the other tables' rows (v1: the memories its sessions held)
        assert file.counts.sessions == n and file.counts.runs == exported["runs"] > 0
        tables = sum((exported.get("tables") or {}).values())
        assert len(records) == n + tables and (point != "v1" or tables > 0)

    imported = new_database(target_backend)
    done = as_json(ok(cli("import", str(path), "--json", url=imported.url)))
    assert (done["sessions"], done["runs"]) == (exported["sessions"], exported["runs"])
    assert ok(cli("check", url=imported.url))
    outcome = agno_migrate.verify(original.url, imported.url)
    assert outcome.equal, outcome.as_dict()

    # a second import into the same database is refused, changing nothing; --if-exists skip keeps it
    line = failed(cli("import", str(path), url=imported.url), 8)
    assert "--if-exists" in line
    again = as_json(ok(cli("import", str(path), "--if-exists", "skip", "--json", url=imported.url)))
    assert again["sessions"] == 0 and again["skipped_sessions"] == 0  # same content: nothing to write
    assert agno_migrate.verify(original.url, imported.url).equal


@pytest.mark.agno
@pytest.mark.parametrize("source_backend,point,target_backend", CASES[:4], ids=IDS[:4])
def test_real_agno_reads_the_imported_database(new_database, tmp_path, source_backend, point, target_backend):
    """Agno 3.1.10 itself reads every imported session and run as the fixture's expected file says
    (as tests/test_lineage.py checks an upgraded database)."""
    original = new_database(source_backend)
    original.load(point)
    path = tmp_path / "backup.jsonl"
    agno_migrate.export(original.url, str(path))
    imported = new_database(target_backend)
    agno_migrate.import_(imported.url, str(path))
    expected = expected_file(point, source_backend, tmp_path)
    target = str(imported.path) if target_backend == "sqlite" else imported.url
    ignore = ("json_encoding",) if target_backend == "mysql" else ()
    result = agno_env.verify(target, expected, schema=agno_schema(imported), ignore=ignore)
    n = len(expected_sessions(point, source_backend))
    assert result.ok and result.summary == f"verified {n}/{n} sessions, 0 mismatches", result.output


# --- odd values -----------------------------------------------------------------------------------

DEEP = 40  # deeper than MariaDB holds (31)


def deep(levels: int):
    value: dict = {"leaf": "bottom"}
    for _ in range(levels - 1):
        value = {"d": value}
    return value


ODD = {
    "nul": "before\x00after",
    "big": 2**80,
    "negative_big": -(2**70),
    "emoji": "🙂 café 中文 \u200d",
    "lone_surrogate": "half \ud83d pair",
    "float": 0.1,
    "deep": deep(DEEP),
}


def odd_database(db) -> None:
    """A SQLite database at head holding one session and one run full of odd values, written as
    JSON text SQLite keeps as it is (the store refuses such values; an old Agno wrote them)."""
    agno_migrate.upgrade(db.url)
    text = jsoncodec.dumps  # the exact encoder: big ints, lone surrogates as escapes
    session_data = text({"session_state": ODD, "session_name": "odd 🙂"})
    run = text({"run_id": "r-odd", "status": "COMPLETED", "messages": [{"role": "user", "content": ODD["nul"]}],
                "odd": ODD})  # fmt: skip
    db.execute(
        "INSERT INTO agno_sessions (session_id, session_type, agent_id, user_id, session_data, metadata, "
        f"created_at, updated_at) VALUES ('s-odd-🙂', 'agent', 'a1', 'u1', '{session_data}', "
        f"'{text({'n': 2**64})}', 1700000000, 1700000001)",
        "INSERT INTO agno_runs (run_id, session_id, run_type, agent_id, user_id, status, run_index, run_data, "
        f"created_at, updated_at) VALUES ('r-odd', 's-odd-🙂', 'agent', 'a1', 'u1', 'COMPLETED', 0, '{run}', "
        "1700000000, 1700000001)",
    )


def rows(db) -> tuple[list[dict], list[dict]]:
    engine = db.engine()
    try:
        with engine.connect() as conn:
            sessions = [dict(r) for r in conn.execute(sa.text("SELECT * FROM agno_sessions")).mappings()]
            runs = [dict(r) for r in conn.execute(sa.text("SELECT * FROM agno_runs")).mappings()]
    finally:
        engine.dispose()
    decode = jsoncodec.decode_json
    for row in sessions:
        for column in ("session_data", "metadata"):
            row[column] = decode(row[column])
    for row in runs:
        row["run_data"] = decode(row["run_data"])
    return sessions, runs


@pytest.mark.parametrize("name", ["odd.jsonl", "odd.jsonl.gz"])
def test_odd_values_round_trip_exactly(new_database, tmp_path, name):
    original = new_database("sqlite")
    odd_database(original)
    path = tmp_path / name
    outcome = agno_migrate.export(original.url, str(path))
    assert (outcome.counts.sessions, outcome.counts.runs) == (1, 1)
    raw = (gzip.open if name.endswith(".gz") else open)(path, "rb").read()
    assert raw.decode("utf-8")  # valid UTF-8 throughout: the lone surrogate is an escape
    assert b"\\u0000" in raw and b"\\ud83d" in raw and str(2**80).encode() in raw and "🙂".encode() in raw

    copy = new_database("sqlite")
    agno_migrate.import_(copy.url, str(path))
    assert rows(copy) == rows(original)
    (session,), (run,) = rows(copy)
    assert session["session_data"]["session_state"] == ODD and session["metadata"] == {"n": 2**64}
    assert run["run_data"]["odd"]["deep"] == deep(DEEP) and run["run_data"]["odd"]["big"] == 2**80
    assert agno_migrate.verify(original.url, copy.url).equal

    # PostgreSQL's JSONB holds no NUL and no lone surrogate: removed / replaced, counted and named
    pg = new_database("postgresql")
    done = agno_migrate.import_(pg.url, str(path))
    assert done.fitted.nul_removed and done.fitted.nul_removed[0][0] == "s-odd-🙂"
    assert done.fitted.surrogates_replaced and done.sessions == 1 and done.runs == 1
    assert agno_migrate.verify(original.url, pg.url).equal  # verify applies the same rules


def test_nan_and_infinity_round_trip(tmp_path):
    """NaN and ±Infinity (SQLite's JSON text may hold them) are written as the json module writes them."""
    from agno_migrate.move.jsonl import ExportWriter

    path = tmp_path / "f.jsonl"
    with ExportWriter(path, "sqlite:///x.db") as writer:
        writer.session({"session_id": "s", "v": [float("nan"), float("inf"), -float("inf")]}, [])
    with ExportFile(path) as file:
        (record,) = list(file)
    nan, inf, ninf = record.session["v"]
    assert math.isnan(nan) and inf == float("inf") and ninf == -float("inf")


# --- filters, and files that are not whole ------------------------------------------------------


def test_filters_select_what_the_listing_selects(new_database, tmp_path):
    db = new_database("sqlite")
    db.load("3.1.10")
    agno_migrate.upgrade(db.url)
    every = browse.list_sessions(db.url, limit=1000).sessions
    agent = next(s.agent_id for s in every if s.session_type == "agent")
    user = next(s.user_id for s in every if s.user_id)
    for filters in ({"user_id": user}, {"agent_id": agent, "since": "2024-01-01"}, {"session_type": "workflow"},
                    {"since": "1700000000", "session_type": "team"}):  # fmt: skip
        path = tmp_path / "part.jsonl"
        agno_migrate.export(db.url, str(path), **filters)
        with ExportFile(path) as file:
            got = sorted(record.session["session_id"] for record in file)
            assert file.header["filters"] == Selection.of(**filters).as_dict()
        listed = browse.list_sessions(db.url, Selection.of(**filters), limit=1000)
        assert got == sorted(s.session_id for s in listed.sessions) and got, filters
        assert len(got) < len(every)

    args = ["export", str(tmp_path / "cli.jsonl"), "--session-type", "team", "--user-id", user, "--json"]
    assert as_json(ok(cli(*args, url=db.url)))["filters"] == {"session_type": "team", "user_id": user}
    failed(cli("export", str(tmp_path / "bad.jsonl"), "--since", "soon", url=db.url), 2)
    assert not (tmp_path / "bad.jsonl").exists()


def test_files_that_are_not_whole_exports(new_database, tmp_path):
    db = new_database("sqlite")
    db.load("3.1.10")
    path = tmp_path / "whole.jsonl"
    agno_migrate.export(db.url, str(path))
    lines = path.read_bytes().splitlines(keepends=True)

    cut = tmp_path / "cut.jsonl"  # the end line (and the last session) missing: what is there is imported
    cut.write_bytes(b"".join(lines[:-2]))
    target = new_database("sqlite")
    line = failed(cli("import", str(cut), url=target.url), 9)
    assert "ends without its end line" in line
    assert len(browse.list_sessions(target.url, limit=1000).sessions) == len(lines) - 3
    assert ok(cli("check", url=target.url))  # whole as far as it goes (indexes built again)

    packed = tmp_path / "cut.jsonl.gz"
    packed.write_bytes(gzip.compress(path.read_bytes())[:-4000])
    line = failed(cli("import", str(packed), url=new_database("sqlite").url), 9)
    assert "ends without its end line" in line

    not_export = tmp_path / "other.jsonl"
    not_export.write_text(json.dumps({"hello": 1}) + "\n")
    empty = new_database("sqlite")
    assert "not an agno-migrate export" in failed(cli("import", str(not_export), url=empty.url), 2)
    assert not empty.path.exists()  # refused before any change
    newer = tmp_path / "newer.jsonl"
    header = json.loads(lines[0])
    newer.write_bytes(json.dumps({**header, "format": 2}).encode() + b"\n" + b"".join(lines[1:]))
    assert "format 2" in failed(cli("import", str(newer), url=empty.url), 2)
    assert "cannot read" in failed(cli("import", str(tmp_path / "missing.jsonl"), url=empty.url), 2)

    broken = tmp_path / "broken.jsonl"  # a bad line: named by its number, an error not a traceback
    broken.write_bytes(b"".join(lines[:3]) + b"{not json\n" + b"".join(lines[3:]))
    assert "line 4: not JSON" in failed(cli("import", str(broken), url=new_database("sqlite").url), 2)


# --- the other Agno tables (memories, evals, ...) ---------------------------------------------------

TABLE_CASES = [("3.1", "sqlite", "mongodb"), ("2.5", "postgresql", "sqlite"), ("v1", "mongodb", "postgresql")]
# (not MariaDB as a target yet: move.tables reads some text columns back JSON-quoted there, copy or import)


@pytest.mark.parametrize("point,source_backend,target_backend", TABLE_CASES, ids=["-".join(c) for c in TABLE_CASES])
def test_other_tables_through_the_file(new_database, tmp_path, point, source_backend, target_backend):
    """A whole export holds every other Agno table's head rows (tests/fixtures-tables, written by the
    real Agno); the import writes them as ``copy`` does: ``verify_tables`` finds them equal, and the
    target is at head (``check``)."""
    from test_tables_detect import load

    from agno_migrate.move.verify import verify_tables

    original = new_database(source_backend)
    load(original, point)
    path = tmp_path / "whole.jsonl.gz"
    exported = agno_migrate.export(original.url, str(path))
    assert exported.counts.table_rows > 0 and "memories" in exported.counts.tables
    with ExportFile(path) as file:
        families = {r.family for r in file if not hasattr(r, "session")}
        assert families == set(exported.counts.tables) and set(file.header["tables"]) >= families

    imported = new_database(target_backend)
    done = as_json(ok(cli("import", str(path), "--json", url=imported.url)))
    assert done["tables"]["rows"] == exported.counts.table_rows - sum(t["skipped"] for t in done["tables"]["tables"])
    diffs = verify_tables(Target.from_url(original.url), Target.from_url(imported.url))
    assert diffs and [d for d in diffs if not d.equal] == []
    assert agno_migrate.verify(original.url, imported.url).equal
    # a table type Agno has none of on the target's backend (approvals, components, ... on MongoDB) is kept in
    # another backend's layout: check names it as kept, not as drift, and a second import merges into it
    status = as_json(ok(cli("check", "--json", url=imported.url)))
    elsewhere = {t["family"] for t in status["agno_tables"] if t["elsewhere"]}
    assert elsewhere == {t["family"] for t in done["tables"]["tables"] if not t["agno_layout"]}
    again = as_json(ok(cli("import", str(path), "--if-exists", "skip", "--json", url=imported.url)))
    assert sum(t["rows"] for t in again["tables"]["tables"]) == 0  # every row already there: kept
    assert sum(t["skipped"] for t in again["tables"]["tables"]) == done["tables"]["rows"]

    # a filtered export holds sessions only: the other tables belong to none
    part = tmp_path / "part.jsonl"
    assert agno_migrate.export(original.url, str(part), session_type="agent").counts.table_rows == 0

    # a target whose memories table holds rows is refused before any change (exit 8)
    busy = new_database("sqlite")
    busy.load("3.1", root=__import__("test_tables_detect").PACK)
    busy.execute("DELETE FROM agno_runs", "DELETE FROM agno_sessions")
    line = failed(cli("import", str(path), url=busy.url), 8)
    assert "agno_memories" in line and "--if-exists" in line
