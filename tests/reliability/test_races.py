"""Races: N processes (8; --stress 16) start `upgrade` at the same moment — half through the console
script's entry point, half through a store with ``auto_upgrade_schema=True`` — against an empty
database, one at 2.0.0 and an Agno 1.x one. All succeed; each step ran exactly once; the data
equals a single-process run of the same start.

"Exactly once" is read from the records: our version table holds one row per version with the
version as its key (a step run twice would fail its process on that key, and every process must
succeed), the Agno 1.x import keeps one checkpoint per table, and at most one racer reports work.
On MongoDB, whose steps are idempotent (a second run would not fail), from the state collection:
each step's record counts one start (``attempts``), and the history has one entry per version.
"""

from __future__ import annotations

import re

import pytest

from agno_migrate import registry

from . import mongo_support
from .support import (
    HEAD,
    checkpoint_rows,
    cli,
    diff_states,
    end_state,
    json_lines,
    legacy_state,
    load_point,
    race,
    succeeded,
    version_rows,
)

POINTS = ("empty", "2.0.0", "v1")


def expected_versions(backend: str, point: str) -> list[tuple[str, str]]:
    """(version, action) rows a single upgrade from ``point`` records."""
    if point in ("empty", "v1"):
        return [(HEAD, "create")]
    first = "upgrade" if backend == "mysql" else "detect"  # MariaDB's 2.0.0 was made by agno-migrate
    later = [v.version for v in registry.VERSIONS if v.key > registry.get("2.0.0").key]
    return [("2.0.0", first)] + [(v, "upgrade") for v in later]


@pytest.mark.parametrize("point", POINTS)
def test_simultaneous_upgrades_run_each_step_once(rdb, backend, point, racers, tmp_path):
    reference, raced = rdb(backend), rdb(backend)
    for db in (reference, raced):
        load_point(db, point, generated=100, copies=1)  # the fixtures as they are; contention, not volume
    legacy_before = legacy_state(raced)
    succeeded(cli("upgrade", url=reference.url, cwd=tmp_path))
    want = end_state(reference)

    entries = ["cli" if i % 2 == 0 else "store" for i in range(racers)]
    results = race(raced.url, entries, tmp_path)

    for entry, result in zip(entries, results, strict=False):
        assert result.returncode == 0, (entry, result.stdout, result.stderr)
        assert result.stderr == "", (entry, result.stderr)
    cli_outputs = [r.stdout for e, r in zip(entries, results, strict=False) if e == "cli"]
    applied = [
        v
        for out in cli_outputs
        for line in re.findall(r"applied ([\d., ]+)$", out, re.MULTILINE)
        for v in line.split(", ")
    ]
    assert len(applied) == len(set(applied)), cli_outputs  # no step reported by two processes
    assert sum("created" in out for out in cli_outputs) <= 1, cli_outputs
    imported = [int(m) for out in cli_outputs for m in re.findall(r"imported (\d+) Agno 1.x sessions", out)]
    assert sum(imported) <= sum(len(rows) for rows in legacy_before.values()), cli_outputs  # no row twice
    assert sum("created" in out or "upgraded" in out for out in cli_outputs) <= 1, cli_outputs  # one lock per upgrade
    assert len(imported) <= 1, cli_outputs
    assert all("already at" in out for out in cli_outputs if "created" not in out and "upgraded" not in out)
    stores = [json_lines(r.stdout)[-1] for e, r in zip(entries, results, strict=False) if e == "store"]
    assert {s["total"] for s in stores} == {len(want["sessions"])}

    assert [(v, action) for v, _, action in version_rows(raced.url)] == expected_versions(backend, point)
    if backend == "mongodb":
        steps = [v.version for v in registry.steps_up("2.0.0", HEAD)] if point == "2.0.0" else []
        assert mongo_support.step_rows(raced.url, with_attempts=True) == [(v, "upgrade", True, 1) for v in steps]
        assert mongo_support.lock_document(raced.url) is None
    checkpoints = checkpoint_rows(raced.url)
    if point == "v1":
        rows = {name: len(dump) for name, dump in legacy_before.items()}
        assert {c[0]: (c[3] + c[4], c[5]) for c in checkpoints} == {name: (n, True) for name, n in rows.items()}
    got = end_state(raced)
    assert got == want, diff_states(got, want)
    assert legacy_state(raced) == legacy_before
    succeeded(cli("check", url=raced.url))
