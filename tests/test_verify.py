"""agno-migrate verify: two databases compared table by table (row counts, a digest per session and
per run), whatever their backends and versions; what differs is listed; exit 0 only when nothing does."""

from __future__ import annotations

import json

import sqlalchemy as sa
from copy_support import content_digest
from test_cli import cli, ok

import agno_migrate


def test_a_2x_database_and_its_copy_compare_equal_and_verify_reads_only(new_database):
    source = new_database("postgresql")
    source.load("2.0.0")  # JSON (not JSONB), runs in the sessions' blobs: compared as head rows
    target = new_database("mongodb")
    agno_migrate.copy(source.url, target.url)
    before = content_digest(source), content_digest(target)
    done = ok(cli("verify", "--against", target.url, url=source.url))
    assert "are equal" in done.out
    assert (content_digest(source), content_digest(target)) == before


def test_missing_extra_and_changed_rows_are_listed_and_exit_1(new_database):
    source = new_database("sqlite")
    source.load("3.1.10")
    target = new_database("mysql")
    agno_migrate.copy(source.url, target.url)
    engine = target.engine()
    with engine.begin() as conn:
        sessions = [row[0] for row in conn.execute(sa.text("SELECT session_id FROM agno_sessions ORDER BY 1 LIMIT 2"))]
        run = conn.execute(
            sa.text("SELECT run_id, run_index FROM agno_runs WHERE session_id = :s ORDER BY run_index LIMIT 1"),
            {"s": sessions[1]},
        ).one()
        conn.execute(sa.text("DELETE FROM agno_runs WHERE session_id = :s"), {"s": sessions[0]})
        gone = conn.execute(sa.text("SELECT count(*) FROM agno_runs WHERE session_id = :s"), {"s": sessions[0]})
        assert gone.scalar() == 0
        conn.execute(sa.text("DELETE FROM agno_sessions WHERE session_id = :s"), {"s": sessions[0]})
        conn.execute(sa.text("UPDATE agno_runs SET status = 'ERROR' WHERE run_id = :r"), {"r": run.run_id})
        conn.execute(
            sa.text("INSERT INTO agno_sessions (session_id, session_type, created_at) VALUES ('zz-extra', 'agent', 1)")
        )
    engine.dispose()
    result = cli("--json", "verify", "--against", target.url, url=source.url)
    assert result.code == 1, result.err
    report = json.loads(result.out.splitlines()[0])  # (then the error line)
    sessions_diff, runs_diff = report["tables"]
    assert not report["equal"]
    assert sessions_diff["missing"] == [sessions[0]] and sessions_diff["extra"] == ["zz-extra"]
    assert sessions_diff["rows"][1] == sessions_diff["rows"][0]  # one missing, one extra
    assert runs_diff["changed"] == [f"{sessions[1]}/{run.run_index}/{run.run_id}"]
    assert runs_diff["missing_count"] >= 1 and runs_diff["extra_count"] == 0
    lines = cli("verify", "--against", target.url, url=source.url)
    assert lines.code == 1 and f"missing: {sessions[0]}" in lines.out and "NOT equal" in lines.out
