"""Every SQL lineage point of the fixture pack, written by the real Agno, upgraded to head."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from conftest import POINTS, SQL_BACKENDS, expected_file, expected_sessions
from lineage_checks import agno_stamps, schema_without_legacy_runs, session_ids, stored_runs

import agno_migrate
from agno_migrate.target import Target

CASES = [(backend, point) for backend in SQL_BACKENDS for point in (*POINTS[backend], "v1")]
SHARED_TOOLS = Path(os.environ.get("AGNO_MIGRATE_SHARED", Path(__file__).resolve().parents[2] / "shared")) / "tools"


@pytest.mark.parametrize("backend,point", CASES, ids=[f"{b}-{p}" for b, p in CASES])
def test_fixture_point_upgrades_to_head_with_nothing_lost(new_database, backend, point):
    db = new_database(backend)
    db.load(point)
    outcome = agno_migrate.upgrade(db.url)
    assert outcome.after == "3.0.1"
    status = agno_migrate.check(db.url)
    assert status.at_head and status.managed and not status.drift

    fresh = new_database(backend)
    agno_migrate.upgrade(fresh.url)
    assert schema_without_legacy_runs(db.url) == schema_without_legacy_runs(fresh.url)

    expected = expected_sessions(point, backend)
    assert session_ids(db.url) == {s["session_id"] for s in expected}
    runs = stored_runs(db.url)
    for session in expected:
        assert runs.get(session["session_id"], []) == [r["run_id"] for r in session["runs"]], session["session_id"]
    assert sum(len(s["runs"]) for s in expected) > 0

    stamps = agno_stamps(db.url)
    assert stamps["agno_sessions"] == "3.0.0" and stamps["agno_runs"] == "3.0.0"  # Agno's stamp for 3.0.1

    again = agno_migrate.upgrade(db.url)
    assert again.applied == [] and not again.created and again.after == "3.0.1"
    assert stored_runs(db.url) == runs


@pytest.mark.agno
@pytest.mark.parametrize("backend,point", CASES, ids=[f"{b}-{p}" for b, p in CASES])
def test_real_agno_reads_every_upgraded_session(new_database, tmp_path, backend, point):
    """../shared/tools/verify_with_agno.sh: Agno 3.1.10 itself reads every session and run."""
    script = SHARED_TOOLS / "verify_with_agno.sh"
    if not script.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{script} is missing: CI runs beside ../shared", pytrace=False)
        pytest.skip("the shared Agno tools are not beside this checkout")
    db = new_database(backend)
    db.load(point)
    agno_migrate.upgrade(db.url)
    target = str(db.path) if backend == "sqlite" else db.url
    cmd = ["bash", str(script), "--db", target, "--expected", str(expected_file(point, backend, tmp_path))]
    if backend == "postgresql":
        cmd += ["--db-schema", "ai"]
    if backend == "mysql":
        # Agno's MySQLDb returns MariaDB's JSON (LONGTEXT) columns as strings whatever the data
        # (LINEAGE §5.3, tools/README "Known limit"): every other check still applies
        cmd += ["--db-schema", Target.from_url(db.url).schema, "--skip", "json_encoding"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    last = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert last.endswith(" 0 mismatches"), last
