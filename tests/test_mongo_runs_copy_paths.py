"""The MongoDB 3.0.0 step's server-side copy (``migrate.mongo.plain_runs``: ``$unwind`` + ``$merge``) and the
Python rules alone give the same runs collection, document for document (every field in its order, every
value of its BSON type, ``_id`` left out: an ObjectId of its own on each side) and the same report: on every
fixture point with a MongoDB dump, as Agno wrote it, and on generated sessions holding every case the
server-side copy must leave to the Python rules. A run killed inside the server-side copy completes on re-run
with the same result."""

from __future__ import annotations

import datetime

import pytest
from bson import (
    Binary,
    Code,
    CodecOptions,
    DBRef,
    Decimal128,
    Int64,
    MaxKey,
    MinKey,
    ObjectId,
    Regex,
    Timestamp,
    decode_all,
)
from bson.raw_bson import RawBSONDocument
from pymongo import MongoClient
from test_data_step import run, session
from test_runs_copy_paths import recorded

import agno_migrate
from agno_migrate import convert
from agno_migrate.migrate.mongo import plain_runs
from agno_migrate.migrate.mongo import step as mongo_step
from agno_migrate.target import Target

POINTS = ("2.0.0", "2.3.0", "2.5.0", "2.6.0")  # the fixture points with a MongoDB dump before 3.0.0
REPORTED = ("runs_copied", "duplicate_run_ids", "not_runs", "unparseable", "unstorable")


def raw_runs(db) -> list[bytes]:
    """Every runs document as stored, by run_id: its BSON bytes after ``_id`` (the first field, an
    ObjectId of its own on each side), so every field's name, order, type and value counts."""
    with MongoClient(db.server_url) as client:
        collection = client[db.db_name][Target.from_url(db.url).runs_table]
        out = []
        for batch in collection.find_raw_batches({}, sort=[("run_id", 1)]):
            for doc in decode_all(batch, CodecOptions(document_class=RawBSONDocument)):
                assert doc.raw[4:9] == b"\x07_id\x00"  # an ObjectId _id first, as both sides write it
                out.append(doc.raw[4 + 5 + 12 :])
        return out


def step_module():
    return mongo_step.step_modules()["3.0.0"]


def both_paths(new_database, monkeypatch, fill):
    """Upgrade two copies of the same data, one with the server-side copy, one with the Python rules
    alone; returns (documents, report) of each and the (sessions, runs) the server-side copy took."""
    module = step_module()
    taken = recorded(monkeypatch, plain_runs, "copy")
    results = []
    for server_side in (True, False):
        monkeypatch.setattr(module, "SERVER_SIDE", server_side)
        db = new_database("mongodb")
        fill(db)
        outcome = agno_migrate.upgrade(db.url)
        report = {k: outcome.report.get(k) for k in REPORTED}
        results.append((raw_runs(db), report))
    return results[0], results[1], (taken[0] if taken else None)


@pytest.mark.parametrize("point", POINTS)
def test_fixture_points_give_the_same_runs_collection(new_database, monkeypatch, point):
    (merged, merged_report), (python, python_report), taken = both_paths(
        new_database, monkeypatch, lambda db: db.load(point)
    )
    assert merged and merged == python
    assert merged_report == python_report
    assert taken is not None and taken[1] > 0  # the server-side copy did take runs


def bson_types() -> dict:
    """A value of most BSON types (those pymongo writes): each must come back as it was."""
    return {"when": datetime.datetime(2024, 5, 6, 7, 8, 9, 123000), "oid": ObjectId("65f000000000000000000001"),
            "bytes": b"\x00\xff", "uuid": Binary(b"0123456789abcdef", 4), "regex": Regex("^a.*", "i"),
            "ts": Timestamp(1700000000, 3), "min": MinKey(), "max": MaxKey(), "code": Code("x = 1"),
            "ref": DBRef("c", 1, "d"), "nan": float("nan"), "inf": float("-inf"), "neg0": -0.0,
            "long_min": Int64(-(2**63)), "i32": 2**31 - 1}  # fmt: skip


def edge_sessions() -> list[dict]:
    nested = {"a": [1, 2.5, {"b": [None, True, "x"]}], "f": 0.30000000000000004, "e": 1e-07, "d": Decimal128("1.10")}
    unicode = "héllo wörld 日本語 😀 \u2028"
    plain = [
        session("p1", [run("p1-0", content=unicode, nested=nested), run("p1-1", status=None, created_at=None)]),
        session(
            "p2",
            [
                run("p2-0", big=Int64(2**62), small=Int64(5), agent_id="", team_id="t9"),
                run("p2-1", updated_at=1700000999),
            ],
        ),
        session("p3", [run("p3-0", agent_id="own", parent_run_id="")], stype="workflow", user=None, created=0),
        session("p4", [run("p4-0", created_at=0, updated_at=0, floats=[1.0, 100.0, 1e16, 1.5e300, -2.25])]),
        session(
            "p5", [run("p5-0", team_id="tt", created_at=Int64(1700000200), updated_at=Int64(2**40))], stype="weird"
        ),
        session("p6", []),
        {**session("p7", [run("p7-0")]), "created_at": Int64(1700000000), "updated_at": None, "user_id": Int64(7)},
        {"session_id": "p8", "session_type": "agent", "runs": [{"run_id": "p8-0"}]},  # hardly any field at all
        session("p9", [run("p9-0", status="RUNNING", created_at=2**40, deep={"x": {"y": {"z": [[], {}]}}})]),
        session("p10", [run("p10-0", types=bson_types())]),
        session("p11", [run("p11-0", tools=[{"$schema": "x", "a.b": {"$ref": "#/c"}, "": 1}])]),  # keys MQL reads
    ]
    irregular = [
        session("q1", [run(None), run("q1-1")]),  # a run without id
        session("q2", [run("dup"), run("q2-1")]),
        session("q3", [run("dup")], stype="team"),  # the same id in another session
        session("q4", [run("same"), run("same")]),  # twice in one session
        session("q5", ["not a run", 7, None, [run("q5-3")], run("q5-4")]),  # elements that are not runs
        session("q6", [run("q6-0", status=3, created_at="1700000000")]),  # Python's str() and int()
        session("q7", [run(12), run("12")]),  # an id that is a number, and its text in a plain-looking run
        session("q8", [run(convert.derived_run_id("q1", 0))]),  # a derived id's shape
        session("q9", [run("q9-0", created_at=1700000000.7, updated_at=True)]),
        session("r1", [run("r1-0", agent_id=5)]),
        session("r2", {"not": "a list"}),
        session("r3", [run("r3-0")], created=1700000000.5),  # a float epoch on the session
        session("r4", [run("")]),  # an empty id
        session("r5", '[{"run_id": "r5-0", "status": "COMPLETED"}, {"run_id": "s1-0"}]'),  # runs as JSON text
        session("s1", [run("s1-0")]),  # plain-looking, but r5's JSON text holds its id
        session("s2", [run(["s2-0"]), run("['s2-0']")]),  # an array id, and its str() in a plain-looking run
        {**session("s3", [run("s3-0")]), "session_id": ["s3"]},  # a session_id that is not a string
        session("s4", [run("s4-0", parent_run_id=Int64(4))]),
    ]
    return plain + irregular


def insert(db, sessions: list[dict]) -> None:
    with MongoClient(db.server_url) as client:
        client[db.db_name][Target.from_url(db.url).session_table].insert_many(sessions)


def test_generated_edge_cases_give_the_same_runs_collection(new_database, monkeypatch):
    def fill(db):
        agno_migrate.upgrade(db.url, to="2.5.0")
        insert(db, edge_sessions())

    (merged, merged_report), (python, python_report), taken = both_paths(new_database, monkeypatch, fill)
    assert merged == python
    assert merged_report == python_report
    assert python_report["duplicate_run_ids"] and python_report["not_runs"], python_report  # the Python rules met them
    assert taken == (11, 12)  # p1..p11 (p6 empty) and their 12 runs server-side; the rest by the Python rules


def test_a_run_killed_inside_the_server_side_copy_completes_the_same(new_database, monkeypatch):
    """The first $merge chunk written, the process "killed" (an exception out of the step) before the
    next: the re-run finds those runs stored at their places and gives the uninterrupted result."""

    def fill(db):
        agno_migrate.upgrade(db.url, to="2.5.0")
        insert(
            db, edge_sessions() + [session(f"m{k:03d}", [run(f"m{k:03d}-0"), run(f"m{k:03d}-1")]) for k in range(30)]
        )

    reference = new_database("mongodb")
    fill(reference)
    agno_migrate.upgrade(reference.url)
    monkeypatch.setattr(plain_runs, "CHUNK", 7)
    killed = new_database("mongodb")
    fill(killed)
    original = plain_runs.copy

    def dying(sessions, runs, plain, tick):
        def tick_then_die(done):
            if done:
                raise KeyboardInterrupt("killed")
            tick(done)

        return original(sessions, runs, plain, tick_then_die)

    monkeypatch.setattr(plain_runs, "copy", dying)
    with pytest.raises(KeyboardInterrupt):
        agno_migrate.upgrade(killed.url)
    assert 0 < len(raw_runs(killed)) < len(raw_runs(reference))
    monkeypatch.setattr(plain_runs, "copy", original)
    agno_migrate.upgrade(Target.from_url(killed.url, lock_lease=1))
    assert raw_runs(killed) == raw_runs(reference)


def test_a_chunk_meeting_runs_written_meanwhile_is_done_again(new_database, monkeypatch):
    """A killed runner's aggregation still writing in the server when the next runner copies the same
    chunk: the inserts meet its runs (a duplicate key), and the chunk is done again leaving them out."""

    def fill(db):
        agno_migrate.upgrade(db.url, to="2.5.0")
        insert(db, edge_sessions())

    reference = new_database("mongodb")
    fill(reference)
    agno_migrate.upgrade(reference.url)
    raced = new_database("mongodb")
    fill(raced)
    original = plain_runs._merge
    calls = []

    def racing(sessions, runs, ids, stored):
        if not calls:  # the other runner's aggregation, done just before ours
            original(sessions, runs, ids, stored)
        calls.append(stored)
        return original(sessions, runs, ids, stored)

    monkeypatch.setattr(plain_runs, "_merge", racing)
    agno_migrate.upgrade(raced.url)
    assert calls == [False, True]  # the chunk met the stored runs, and was done again leaving them out
    assert raw_runs(raced) == raw_runs(reference)
