"""The Agno 1.x import: resumable after a kill at any point, unparseable rows reported with exit 9,
collisions reported and not overwritten, the legacy tables never modified."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import SQL_BACKENDS
from lineage_checks import dump_table

import agno_migrate
from agno_migrate.target import Target

CLI = str(Path(sys.executable).parent / "agno-migrate")
LEGACY = ("agent_sessions", "team_sessions", "workflow_sessions", "workflow_v2_sessions")


def engine_of(url):
    return sa.create_engine(Target.from_url(url).driver_url)


def legacy_dump(url) -> dict:
    return {name: dump_table(url, name, "session_id") for name in LEGACY}


def head_dump(url) -> tuple:
    return dump_table(url, "agno_sessions", "session_id"), [row[:-1] for row in dump_table(url, "agno_runs", "run_id")]


def multiply_agent_sessions(url: str, copies: int) -> None:
    """More rows to interrupt: copies of the agent table's rows under new ids (same content)."""
    target = Target.from_url(url)
    schema = target.schema if target.backend != "sqlite" else None
    engine = engine_of(url)
    with engine.begin() as conn:
        table = sa.Table("agent_sessions", sa.MetaData(), autoload_with=conn, schema=schema)
        cols = [sa.type_coerce(c, sa.Text).label(c.name) if isinstance(c.type, sa.JSON) else c for c in table.columns]
        rows = [dict(r) for r in conn.execute(sa.select(*cols)).mappings()]
        for k in range(1, copies):
            conn.execute(table.insert(), [{**r, "session_id": f"{r['session_id']}-copy{k:02d}"} for r in rows])
    engine.dispose()


CHILD = textwrap.dedent(
    """
    import os, signal, sys
    import agno_migrate
    from agno_migrate.migrate.legacy import sql as legacy
    url, where, after = sys.argv[1], sys.argv[2], int(sys.argv[3])
    seen = {"n": 0}
    if where == "mid-batch":  # inside a batch's transaction, after its rows were written
        original = legacy._import_batch
        def dying(*args, **kwargs):
            result = original(*args, **kwargs)
            seen["n"] += 1
            if seen["n"] > after:
                os.kill(os.getpid(), signal.SIGKILL)
            return result
        legacy._import_batch = dying
        agno_migrate.upgrade(url)
    else:  # between batches, after a commit
        def progress(done, total):
            seen["n"] += 1
            if seen["n"] > after:
                os.kill(os.getpid(), signal.SIGKILL)
        agno_migrate.upgrade(url, progress=progress)
    """
)


@pytest.mark.parametrize("backend", SQL_BACKENDS)
def test_killed_at_several_points_the_rerun_gives_the_same_database(new_database, backend):
    reference = new_database(backend)
    reference.load("v1")
    multiply_agent_sessions(reference.url, 4)
    agno_migrate.upgrade(reference.url)
    expected = head_dump(reference.url)
    for where, after in (("mid-batch", 0), ("between", 1), ("mid-batch", 3)):
        db = new_database(backend)
        db.load("v1")
        multiply_agent_sessions(db.url, 4)
        before = legacy_dump(db.url)
        child = subprocess.run([sys.executable, "-c", CHILD, db.url, where, str(after)], capture_output=True, text=True)
        assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]
        partial = dump_table(db.url, "agno_sessions", "session_id")
        assert len(partial) < len(expected[0]) and (len(partial) > 0) == (after > 0), (where, after, len(partial))
        done = subprocess.run(
            [CLI, "--db-url", db.url, "--lock-timeout", "30", "upgrade"], capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        assert head_dump(db.url) == expected, (where, after)
        assert legacy_dump(db.url) == before
        assert subprocess.run([CLI, "--db-url", db.url, "check"], capture_output=True).returncode == 0


def corrupt(url: str, backend: str) -> list[str]:
    """Break three agent rows: memory holding a list, session_data a number, and (SQLite) text
    that is not JSON at all. Returns their session ids."""
    target = Target.from_url(url)
    schema = target.schema if backend != "sqlite" else None
    table = sa.table("agent_sessions", sa.column("session_id"), sa.column("memory"), sa.column("session_data"),
                     schema=schema)  # fmt: skip
    engine = engine_of(url)
    with engine.begin() as conn:
        ids = [r[0] for r in conn.execute(sa.select(table.c.session_id).order_by(table.c.session_id).limit(3))]
        cast = (lambda v: sa.cast(v, sa.dialects.postgresql.JSONB)) if backend == "postgresql" else (lambda v: v)
        conn.execute(table.update().where(table.c.session_id == ids[0]).values(memory=cast("[1, 2]")))
        conn.execute(table.update().where(table.c.session_id == ids[1]).values(session_data=cast("42")))
        bad = "{not json" if backend == "sqlite" else '"just a string"'
        conn.execute(table.update().where(table.c.session_id == ids[2]).values(memory=cast(bad)))
    engine.dispose()
    return ids


@pytest.mark.parametrize("backend", SQL_BACKENDS)
def test_unparseable_rows_are_reported_and_the_rest_migrated(new_database, backend, tmp_path):
    db = new_database(backend)
    db.load("v1")
    bad = corrupt(db.url, backend)
    before = legacy_dump(db.url)
    done = subprocess.run([CLI, "--db-url", db.url, "upgrade"], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 9, done.stderr
    assert "3 Agno 1.x row(s) could not be read" in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    report = [json.loads(line) for line in (tmp_path / "agno-migrate-report.jsonl").read_text().splitlines()]
    assert sorted(r["session_id"] for r in report) == sorted(bad)
    assert {r["kind"] for r in report} == {"unparseable"} and all(r["table"] == "agent_sessions" for r in report)
    assert len(dump_table(db.url, "agno_sessions", "session_id")) == 200 - 3
    assert legacy_dump(db.url) == before


@pytest.mark.parametrize("backend", SQL_BACKENDS)
def test_a_session_in_two_legacy_tables_is_reported_not_overwritten(new_database, backend, tmp_path):
    db = new_database(backend)
    db.load("v1")
    target = Target.from_url(db.url)
    schema = target.schema if backend != "sqlite" else None
    engine = engine_of(db.url)
    with engine.begin() as conn:
        agent = sa.Table("agent_sessions", sa.MetaData(), autoload_with=conn, schema=schema)
        team = sa.Table("team_sessions", sa.MetaData(), autoload_with=conn, schema=schema)
        team_id = conn.execute(sa.select(team.c.session_id).order_by(team.c.session_id).limit(1)).scalar()
        cols = [sa.type_coerce(c, sa.Text).label(c.name) if isinstance(c.type, sa.JSON) else c for c in agent.columns]
        row = dict(conn.execute(sa.select(*cols).limit(1)).mappings().one())
        conn.execute(agent.insert().values(**{**row, "session_id": team_id}))
    engine.dispose()
    done = subprocess.run([CLI, "--db-url", db.url, "upgrade"], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    report = [json.loads(line) for line in (tmp_path / "agno-migrate-report.jsonl").read_text().splitlines()]
    assert [(r["kind"], r["session_id"], r["table"]) for r in report] == [("collision", team_id, "team_sessions")]
    stored = agno_migrate.connect(db.url).get_session(team_id)
    assert stored.session_type == "agent"  # agent_sessions came first; the team row did not overwrite it


@pytest.mark.parametrize("backend", SQL_BACKENDS)
def test_a_null_created_at_is_filled_and_said(new_database, backend, tmp_path):
    db = new_database(backend)
    db.load("v1")
    target = Target.from_url(db.url)
    schema = target.schema if backend != "sqlite" else None
    table = sa.table("agent_sessions", sa.column("session_id"), sa.column("created_at"), sa.column("updated_at"),
                     schema=schema)  # fmt: skip
    engine = engine_of(db.url)
    with engine.begin() as conn:
        sid, updated = conn.execute(
            sa.select(table.c.session_id, table.c.updated_at).where(table.c.updated_at.isnot(None)).limit(1)
        ).one()
        conn.execute(table.update().where(table.c.session_id == sid).values(created_at=None))
    engine.dispose()
    done = subprocess.run([CLI, "--db-url", db.url, "upgrade"], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "note: 1 session(s) had no created_at" in done.stdout
    assert agno_migrate.connect(db.url).get_session(sid).created_at == updated


@pytest.mark.parametrize("backend", SQL_BACKENDS)
def test_id_lookups_take_a_few_statement_shapes_whatever_the_batches(new_database, backend, monkeypatch):
    """The importer's lookups of stored ids (``IN (...)``) are padded to a few lengths: batches of
    any size (so any count of run ids) give a bounded set of SQL texts, which the driver prepares
    and caches (unpadded, every count met was one more cached statement: memory growing with the
    rows imported). The stored result is the one of default batches."""
    from agno_migrate.migrate.legacy import sql as legacy

    reference = new_database(backend)
    reference.load("v1")
    multiply_agent_sessions(reference.url, 4)
    agno_migrate.upgrade(reference.url)
    db = new_database(backend)
    db.load("v1")
    multiply_agent_sessions(db.url, 4)
    monkeypatch.setattr(legacy, "BATCH", 23)
    monkeypatch.setattr(legacy, "LOOKUP_CHUNK", 40)
    lookups = set()

    def seen(conn, cursor, statement, parameters, context, executemany):
        if " IN (" in statement and re.search(
            r"FROM \S*agno_(sessions|runs)\b", statement.replace("`", "").replace('"', "")
        ):
            lookups.add(statement)

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", seen)
    try:
        agno_migrate.upgrade(db.url)
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", seen)
    assert head_dump(db.url) == head_dump(reference.url)
    # two lookups (session ids, run ids), each padded to 1, 2, 4, ..., 32 or 40 ids
    assert 2 <= len(lookups) <= 2 * 7, lookups
    for n in range(1, 130):
        ids = [f"id{i}" for i in range(n)]
        chunks = list(legacy._lookup_chunks(ids))
        assert [i for chunk in chunks for i in dict.fromkeys(chunk)] == ids
        assert {len(chunk) for chunk in chunks} <= {1, 2, 4, 8, 16, 32, 40}
