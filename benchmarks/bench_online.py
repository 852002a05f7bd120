"""Write stalls during an upgrade (issue 16, item 2): how long an application writing sessions waits while an
Agno 2.0 PostgreSQL database is upgraded, by ``agno-migrate upgrade``, ``agno-migrate upgrade --online`` and
Agno 3.1.10's ``MigrationManager(db).up()``.

    python benchmarks/bench_online.py [--sessions 10000] [--memories 1000] [--sides offline,online,agno]
                                      [--pause 0.01] [--out OUT]

Input: built as bench_whole_upgrade.py builds it (``build_input``: the table fixture pack's Agno 2.0 point,
PostgreSQL, its sessions and memories copied under fresh ids to --sessions / --memories). Each side gets a fresh
copy (``CREATE DATABASE … TEMPLATE``, not measured). On it the writer (benchmarks/online_writer.py, in the
reference Agno environment, its own process: what Agno 2.0's ``PostgresDb`` sends for ``upsert_session`` and for
adding a run — see its docstring for why not Agno 3.1's calls) writes in a loop, one call every --pause seconds;
after 2 s the side's upgrade starts in its own process; 1 s after it ends the writer stops. Reported for the calls
that were in flight during the upgrade (started before it ended and ended after it started): their number, the
longest (the longest write stall), p99 and median latency, failed calls; and the same for the 2 s before (the
baseline). After each side: ``agno-migrate check``'s exit code and the rows of every table.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_store import machine, pg_settings  # noqa: E402
from bench_whole_upgrade import (  # noqa: E402
    CLI,
    _admin,
    agno_env,
    build_input,
    check_at_head,
    drop,
    fresh_copy,
    result_of,
    versions,
)

SIDES = {
    "offline": "agno-migrate upgrade",
    "online": "agno-migrate upgrade --online",
    "agno": "Agno 3.1.10 MigrationManager(db).up()",
}
WARM_UP = 2.0
COOL_DOWN = 1.0


def upgrade_command(side: str, url: str) -> tuple[list[str], dict | None]:
    if side == "offline":
        return [str(CLI), "--db-url", url, "-q", "upgrade"], None
    if side == "online":
        return [str(CLI), "--db-url", url, "-v", "upgrade", "--online"], None
    return [str(agno_env.agno_python()), str(HERE / "agno_whole_side.py"), url], agno_env.clean_env()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def summary(calls: list) -> dict:
    latencies = [c[1] for c in calls]
    return {
        "calls": len(calls),
        "failed": sum(1 for c in calls if c[2]),
        "max_s": max(latencies, default=0.0),
        "p99_s": percentile(latencies, 0.99),
        "median_s": statistics.median(latencies) if latencies else 0.0,
        "errors": sorted({c[2] for c in calls if c[2]})[:5],
    }


def run_side(side: str, url: str, pause: float, tmp: Path) -> dict:
    out = tmp / f"{side}-calls.json"
    writer = subprocess.Popen(
        [str(agno_env.agno_python()), str(HERE / "online_writer.py"), url, str(out), "--pause", str(pause)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=agno_env.clean_env(),
    )
    try:
        assert writer.stdout.readline().strip() == "ready"
        time.sleep(WARM_UP)
        cmd, env = upgrade_command(side, url)
        load = os.getloadavg()[0]
        began = time.time()
        done = subprocess.run(cmd, capture_output=True, text=True, env=env)
        ended = time.time()
        time.sleep(COOL_DOWN)
    finally:
        writer.stdin.close()
        writer.wait(120)
    if done.returncode != 0:
        raise SystemExit(f"{side} failed (exit {done.returncode}) on {url}:\n{done.stderr[-3000:]}")
    calls = json.loads(out.read_text())
    during = [c for c in calls if c[0] < ended and c[0] + c[1] > began]
    before = [c for c in calls if c[0] + c[1] <= began]
    figures = {"upgrade_s": ended - began, "load_before": load, "during": summary(during), "before": summary(before)}
    retries = [line for line in done.stdout.splitlines() if "DDL statement(s) retried" in line]
    if retries:
        figures["ddl_retries"] = retries[0].strip()
    return figures


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sessions", type=int, default=10_000)
    ap.add_argument("--memories", type=int, default=1_000)
    ap.add_argument("--sides", default="offline,online,agno")
    ap.add_argument("--pause", type=float, default=0.01)
    ap.add_argument("--out", default=str(HERE / "results" / f"online-{datetime.datetime.now():%Y-%m-%d-%H%M}"))
    ap.add_argument("--note", default="", help="a sentence for the results file (e.g. what else ran)")
    args = ap.parse_args()
    sides = args.sides.split(",")
    agno_env.agno_python()  # built before anything is measured
    tmp = Path(tempfile.mkdtemp(prefix="agno-online-"))
    start = time.perf_counter()
    source = build_input("postgresql", args.sessions, args.memories, tmp)
    print(f"input: {time.perf_counter() - start:.1f} s", flush=True)
    results, after = {}, {}
    try:
        for side in sides:
            url = fresh_copy("postgresql", source, tmp)
            try:
                results[side] = run_side(side, url, args.pause, tmp)
                results[side]["check"] = check_at_head(url)
                after[side] = result_of(url)
            finally:
                drop(url)
            d = results[side]["during"]
            print(f"{side}: upgrade {results[side]['upgrade_s']:.2f} s, {d['calls']} calls during it, longest "
                  f"{d['max_s']:.3f} s, p99 {d['p99_s']:.3f} s, {d['failed']} failed", flush=True)  # fmt: skip
    finally:
        with _admin() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{source}" WITH (FORCE)')
    write(args, results, after)


def write(args, results: dict, after: dict) -> None:
    lines = [
        "# Write stalls during the upgrade of an Agno 2.0 PostgreSQL database "
        f"({datetime.datetime.now():%Y-%m-%d %H:%M})",
        "",
        f"Machine: {machine()}; {pg_settings()}.",
        f"Versions: {versions()}.",
        "",
        f"Input: bench_whole_upgrade.py's (the table fixture pack's Agno 2.0 point, PostgreSQL), {args.sessions:,} "
        f"sessions (runs in the `runs` blob) and {args.memories:,} memories; a fresh copy per side. The writer "
        "(benchmarks/online_writer.py, the reference Agno env's python, its own process): Agno 2.0's statements for "
        "`upsert_session` and for adding a run (the session's `runs` blob rewritten), alternating over 100 sessions "
        f"of its own, one autocommit call every {args.pause:g} s. It starts {WARM_UP:g} s before the upgrade and "
        f"stops {COOL_DOWN:g} s after it. *During*: the calls in flight while the upgrade process ran; *before*: "
        "the baseline. Longest = the longest write stall.",
        "",
        *([args.note, ""] if args.note else []),
        "| side | upgrade (s) | calls during | longest (s) | p99 (s) | median (s) | failed | baseline longest (s) "
        "| baseline p99 (s) | `check` after | load before |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for side, f in results.items():
        d, b = f["during"], f["before"]
        lines.append(
            f"| {SIDES[side]} | {f['upgrade_s']:.2f} | {d['calls']} | {d['max_s']:.3f} | {d['p99_s']:.3f} "
            f"| {d['median_s']:.4f} | {d['failed']} | {b['max_s']:.3f} | {b['p99_s']:.3f} | {f['check']} "
            f"| {f['load_before']:.1f} |"
        )
    for side, f in results.items():
        if f["during"]["errors"]:
            lines += ["", f"{SIDES[side]}: failed calls: " + "; ".join(f["during"]["errors"])]
        if "ddl_retries" in f:
            lines += ["", f"{SIDES[side]}: {f['ddl_retries']}"]
    lines += ["", "Rows after each side (the writer's sessions included):", ""]
    tables = sorted(set().union(*(a["counts"] for a in after.values())))
    lines += ["| table | " + " | ".join(SIDES[s] for s in after) + " |", "|---" * (len(after) + 1) + "|"]
    lines += [f"| {t} | " + " | ".join(str(a["counts"].get(t, "—")) for a in after.values()) + " |" for t in tables]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    out.with_suffix(".json").write_text(json.dumps({"args": vars(args), "results": results}, indent=1))
    print(f"wrote {out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
