"""Several deploy replicas run `agno-migrate upgrade` at the same moment: all succeed, each step
runs exactly once (the version table's key makes a second run of a step fail loudly)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import SQL_BACKENDS, expected_sessions
from lineage_checks import stored_runs

from agno_migrate.migrate.sql import revisions as sql
from agno_migrate.target import Target

CLI = str(Path(sys.executable).parent / "agno-migrate")
REPLICAS = int(os.environ.get("AGNO_MIGRATE_REPLICAS", "8"))
FROM_POINT = {"sqlite": "2.0.0", "postgresql": "2.0.0", "mysql": "2.5.0"}


def run_replicas(url: str, n: int = REPLICAS) -> list[subprocess.CompletedProcess]:
    env = {k: v for k, v in os.environ.items() if k != "AGNO_DB_URL"}
    procs = [
        subprocess.Popen(
            [CLI, "--db-url", url, "--lock-timeout", "120", "upgrade"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for _ in range(n)
    ]
    return [subprocess.CompletedProcess(p.args, p.wait(timeout=300), *p.communicate()) for p in procs]


def version_rows(url: str) -> list[tuple[str, str]]:
    target = Target.from_url(url)
    engine = sa.create_engine(target.driver_url)
    table = sql.version_table(target)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(table.c.version, table.c.action).order_by(table.c.version)).all()
    engine.dispose()
    return [tuple(r) for r in rows]


@pytest.mark.parametrize("backend", SQL_BACKENDS)
def test_replicas_on_a_fresh_database(new_database, backend):
    db = new_database(backend)
    results = run_replicas(db.url)
    assert [r.returncode for r in results] == [0] * REPLICAS, [r.stderr for r in results]
    assert sum("created agno_sessions at 3.0.1" in r.stdout for r in results) == 1
    assert sum("already at 3.0.1" in r.stdout for r in results) == REPLICAS - 1
    assert version_rows(db.url) == [("3.0.1", "create")]


@pytest.mark.parametrize("backend", SQL_BACKENDS)
def test_replicas_on_an_agno_database(new_database, backend):
    point = FROM_POINT[backend]
    db = new_database(backend)
    db.load(point)
    results = run_replicas(db.url)
    assert [r.returncode for r in results] == [0] * REPLICAS, [r.stderr for r in results]
    assert sum("upgraded agno_sessions" in r.stdout for r in results) == 1
    expected_rows = [(point, "detect")] + [(v, "upgrade") for v in ("2.3.0", "2.5.0", "3.0.0", "3.0.1") if v > point]
    assert version_rows(db.url) == expected_rows
    expected = expected_sessions(point, backend)
    runs = stored_runs(db.url)
    assert sum(len(v) for v in runs.values()) == sum(len(s["runs"]) for s in expected)
