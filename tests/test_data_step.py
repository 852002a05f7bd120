"""The 3.0.0 data step: every element of every runs blob lands in the runs table, on every SQL
backend, with the rules Agno's own step breaks."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from lineage_checks import dump_table, stored_runs

import agno_migrate
from agno_migrate import convert, jsoncodec
from agno_migrate.migrate.sql import revisions as sql
from agno_migrate.target import Target


def _sessions_table(target: Target) -> sa.TableClause:
    schema = target.schema if target.backend != "sqlite" else None
    cols = ["session_id", "session_type", "agent_id", "team_id", "workflow_id", "user_id", "created_at", "updated_at"]
    return sa.table(target.session_table, *[sa.column(c) for c in cols], sa.column("runs", sa.JSON()), schema=schema)


def insert_sessions(url: str, sessions: list[dict]) -> None:
    target = Target.from_url(url)
    engine = sa.create_engine(target.driver_url)
    with engine.begin() as conn:
        conn.execute(sa.insert(_sessions_table(target)), sessions)
    engine.dispose()


def session(sid, runs, stype="agent", user="u1", created=1700000000):
    return {"session_id": sid, "session_type": stype, "agent_id": "a1" if stype == "agent" else None,
            "team_id": "t1" if stype == "team" else None, "workflow_id": None, "user_id": user,
            "created_at": created, "updated_at": created + 5, "runs": runs}  # fmt: skip


def run(run_id, **extra):
    body = {"run_id": run_id, "status": "COMPLETED", "created_at": 1700000100, "content": f"c-{run_id}"}
    body.update(extra)
    if run_id is None:
        body.pop("run_id")
    return body


def runs_rows(url: str) -> dict[str, dict]:
    target = Target.from_url(url)
    schema = target.schema if target.backend != "sqlite" else None
    engine = sa.create_engine(target.driver_url)
    with engine.connect() as conn:
        table = sa.Table(target.runs_table, sa.MetaData(), autoload_with=conn, schema=schema)
        rows = {r.run_id: r._asdict() for r in conn.execute(sa.select(table))}
    engine.dispose()
    return rows


def test_every_run_is_copied_with_the_rules(database):
    agno_migrate.upgrade(database.url, to="2.0.0")
    insert_sessions(
        database.url,
        [
            session("s1", [run("r1"), run(None, content="no id"), run("r3", parent_run_id="r1", status="RUNNING")]),
            session("s2", [run("r1", content="same id, other session")], stype="team", user="u2"),
            session("s3", None),
            session("s4", [run("r4", created_at=None)], created=1600000000),
            session("s5", ["not a run", run("r5")]),
        ],
    )
    outcome = agno_migrate.upgrade(database.url)
    assert outcome.applied == ["2.3.0", "2.5.0", "3.0.0", "3.0.1"]
    rows = runs_rows(database.url)
    no_id = convert.derived_run_id("s1", 1)
    clash = convert.derived_run_id("s2", 0, "r1")
    assert set(rows) == {"r1", no_id, "r3", clash, "r4", "r5"}
    assert rows["r1"]["session_id"] == "s1" and rows[clash]["session_id"] == "s2"
    assert jsoncodec.decode_json(rows[clash]["run_data"])["content"] == "same id, other session"
    assert jsoncodec.decode_json(rows[no_id]["run_data"])["run_id"] == no_id
    assert [rows[k]["run_index"] for k in ("r1", no_id, "r3")] == [0, 1, 2]
    assert rows["r3"]["parent_run_id"] == "r1" and rows["r3"]["status"] == "RUNNING"
    assert rows[clash]["run_type"] == "team" and rows[clash]["user_id"] == "u2"
    assert rows["r1"]["run_type"] == "agent" and rows["r1"]["user_id"] == "u1"
    assert rows["r1"]["created_at"] == 1700000100
    assert rows["r4"]["created_at"] == 1600000000  # no created_at on the run: the session's
    assert rows["r5"]["run_index"] == 1
    assert outcome.report["duplicate_run_ids"] == [("r1", "s2", "s1", clash)]
    assert outcome.report["not_runs"] == [("s5", 0, "element is str, not a run object")]
    assert outcome.report["runs_copied"] == 6


def test_the_legacy_runs_column_is_kept(database):
    agno_migrate.upgrade(database.url, to="2.5.0")
    insert_sessions(database.url, [session("s1", [run("r1"), run("r2")])])
    agno_migrate.upgrade(database.url)
    target = Target.from_url(database.url)
    engine = sa.create_engine(target.driver_url)
    with engine.connect() as conn:
        blob = conn.execute(sa.select(_sessions_table(target).c.runs)).scalar()
    engine.dispose()
    assert [r["run_id"] for r in jsoncodec.decode_json(blob)] == ["r1", "r2"]


class Interrupt(Exception):
    pass


@pytest.mark.parametrize("backend", ["sqlite", "postgresql", "mysql"])
def test_an_interrupted_copy_completes_on_the_next_run(new_database, monkeypatch, backend):
    """Stop the copy after its second batch; the re-run gives the same rows as an uninterrupted run."""
    module = sql.script_directory().get_revision("v3_0_0").module
    monkeypatch.setattr(module, "SESSION_BATCH", 3)
    sessions = [session(f"s{i:02d}", [run(f"r{i}-{k}") for k in range(i % 4)] + [run(None)]) for i in range(20)]
    interrupted, clean = new_database(backend), new_database(backend)
    for db in (interrupted, clean):
        agno_migrate.upgrade(db.url, to="2.5.0")
        insert_sessions(db.url, sessions)

    def stop_after_two_batches(done, total):
        if done >= 6:
            raise Interrupt()

    with pytest.raises(Interrupt):
        agno_migrate.upgrade(interrupted.url, progress=stop_after_two_batches)
    assert agno_migrate.current(interrupted.url).version == "2.5.0"
    if backend == "mysql":  # batches are committed there: part of the copy is already in
        assert 0 < len(runs_rows(interrupted.url)) < sum(len(s["runs"]) for s in sessions)
    agno_migrate.upgrade(interrupted.url)
    agno_migrate.upgrade(clean.url)
    assert stored_runs(interrupted.url) == stored_runs(clean.url)
    assert dump_table(interrupted.url, "agno_runs", "run_id") == dump_table(clean.url, "agno_runs", "run_id")
    assert len(runs_rows(clean.url)) == sum(len(s["runs"]) for s in sessions)
