"""What the SQLite journal costs the 2.6 -> head floor: bench_whole_upgrade.py's side C (floor_side.py ``2.6``,
the input file's rollback journal) against the same floor with the file put in WAL mode first (``2.6-wal``), as
agno-migrate (side A) and Agno's MigrationManager (side B) run it, with agno-migrate itself beside them.

    python benchmarks/floor_journal.py [--sessions 10000] [--rounds 4] [--out OUT]

Why: through the rollback journal the new pages go straight into the file (the journal holds only the few
pages changed), once; in WAL mode every page is written to the log, then copied into the file by the
checkpoint at commit. The rollback journal is what the floor may use (it has no reader to serve); agno-migrate
may not: a writer through the rollback journal that spills its cache takes the file's exclusive lock and holds
it until commit, so every reader of the database (the application, another upgrader reading the state)
waits for the whole step (tests/reliability: the lock timeout is honoured within a second). Each round, each
side on a fresh copy of the input, in its own process, the sides' order alternating; whole processes, as
bench_whole_upgrade.py times them, with Agno's MigrationManager (side B) and the cost of agno-migrate's imports
(bench_whole_upgrade.import_cost): the least any agno-migrate run in WAL mode can take.
Results: ``results/floor-journal-<date>.md/.json``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import bench_whole_upgrade as bench

SIDES = {  # each side: bench_whole_upgrade.run_side's side and point
    "floor (rollback journal)": ("floor", "2.6"),
    "floor (WAL)": ("floor", "2.6-wal"),
    "agno-migrate": ("agno-migrate", "2.6"),
    "agno": ("agno", "2.6"),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sessions", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    stamp = time.strftime("%Y-%m-%d-%H%M", time.gmtime())
    out = Path(args.out or bench.HERE / "results" / f"floor-journal-{stamp}")
    bench.compile_agno_migrate()
    tmp = Path(tempfile.mkdtemp(prefix="agno-floor-journal-"))
    figures: dict[str, list] = {side: [] for side in SIDES}
    try:
        source = bench.build_input("sqlite", args.sessions, 0, tmp, "2.6")
        for round_ in range(args.rounds):
            order = list(SIDES) if round_ % 2 == 0 else list(SIDES)[::-1]
            for side in order:
                url = bench.fresh_copy("sqlite", source, tmp)
                kind, point = SIDES[side]
                got = bench.run_side(kind, url, point)
                figures[side].append(got)
                print(f"round {round_ + 1} {side}: {got['seconds']:.2f} s (load {got['load_before']:.1f})", flush=True)
                Path(url.split("///", 1)[1]).unlink()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    imports = bench.import_cost("sqlite")
    medians = {side: statistics.median(f["seconds"] for f in runs) for side, runs in figures.items()}
    result = {"sessions": args.sessions, "rounds": args.rounds, "machine": bench.machine(),
              "versions": bench.versions(), "figures": figures, "medians": medians, "imports": imports}  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=1))
    out.with_suffix(".md").write_text(report(result))
    print(out.with_suffix(".md").read_text())


def report(result: dict) -> str:
    med = result["medians"]
    rollback, wal, ours, agno = (med[side] for side in SIDES)
    least = wal + result["imports"]["extra"]
    lines = [
        f"# The SQLite journal and the 2.6 -> head floor ({time.strftime('%Y-%m-%d %H:%M', time.gmtime())})",
        "",
        f"Machine: {result['machine']}. Versions: {result['versions']}.",
        "",
        f"Input: bench_whole_upgrade.py --point 2.6 at {result['sessions']:,} sessions (SQLite; the file in the "
        f"rollback journal mode the fixture has). {result['rounds']} rounds, sides alternating, each on a fresh copy, "
        "whole processes (median seconds).",
        "",
        "| side | median s | every round (load before) |",
        "|---|---|---|",
    ]
    for side, runs in result["figures"].items():
        rounds = ", ".join(f"{f['seconds']:.2f} ({f['load_before']:.1f})" for f in runs)
        lines.append(f"| {side} | {med[side]:.2f} | {rounds} |")
    lines += [
        "",
        f"C/A against the rollback-journal floor: {rollback / ours:.2f}; against the WAL floor: {wal / ours:.2f} "
        f"(goal 0.80). The WAL floor costs {wal / rollback:.2f}x the rollback one. B/A (Agno's MigrationManager, which "
        f"runs in WAL mode too): {agno / ours:.2f}x.",
        "",
        f"Importing SQLAlchemy + Alembic costs {result['imports']['extra']:.2f} s beyond sqlite3 alone "
        f"(bench_whole_upgrade.import_cost, measured in this run): an agno-migrate run in WAL mode takes at least "
        f"{least:.2f} s here, so C/A is at most {rollback / least:.2f} and B/A at most {agno / least:.2f}x.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
