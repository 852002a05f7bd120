"""Legacy-migration benchmark: agno-migrate's Agno 1.x import against Agno 3.1.10's own
``v1_to_v2.migrate()``, on the same input, in the same run.

    python benchmarks/bench_legacy.py [--cases sqlite:10000,sqlite:100000,postgresql:10000]

Input: Agno 1.x agent sessions written by the real Agno 1.8.4, generated once and cached. The project
has no Agno 1.x generator of its own: the input comes from ../shared/tools/make_v1_fixtures.sh
(``--mix agent:100``, seed 1234), so a checkout without ../shared beside it runs only on input already
in the cache ($AGNO_MIGRATE_BENCH_CACHE). Each side gets its own copy and runs in its own process
under /usr/bin/time (wall clock, peak RSS of the whole process). The Agno side, Agno 3.1.10's
``v1_to_v2.migrate()``, runs in the project's reference environment (tests/agno_side/env.py), and
both results are read back there by the project's verifier (tests/agno_side/agno_verify.py) against
the generator's expected file. Writes benchmarks/results/legacy.md/.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHARED_TOOLS = Path(os.environ.get("AGNO_MIGRATE_SHARED", HERE.parent.parent / "shared")) / "tools"  # input only
CACHE = Path(os.environ.get("AGNO_MIGRATE_BENCH_CACHE", Path.home() / ".cache" / "agno-migrate-bench"))
VERIFY_SAMPLE = 1000  # sessions read again through get_session (all of them through get_sessions)
PG = os.environ.get("AGNO_MIGRATE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
CLI = Path(sys.executable).parent / "agno-migrate"
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))
from agno_side import env as agno_env  # noqa: E402
from bench_store import dated, machine, versions  # noqa: E402


def timed(cmd: list[str]) -> dict:
    """Run ``cmd`` under /usr/bin/time -v: wall seconds, peak RSS (MB) of its main process, and the
    peaks of the whole process tree (worker processes included), sampled every 50 ms: its PSS (MB;
    pages shared between the processes counted once) and its summed RSS (MB; shared pages counted
    once per process: an upper bound); and the peak PSS of the main process alone and of its
    descendants together (which side grows, when the tree does)."""
    import threading

    proc = subprocess.Popen(
        ["/usr/bin/time", "-v", *map(str, cmd)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    peak = {"pss": 0.0, "rss": 0.0, "main": 0.0, "workers": 0.0}
    stop = threading.Event()

    def sample():
        while not stop.wait(0.05):
            pss, rss, main = tree_memory_mb(proc.pid, split=True)
            peak["pss"], peak["rss"] = max(peak["pss"], pss), max(peak["rss"], rss)
            peak["main"], peak["workers"] = max(peak["main"], main), max(peak["workers"], pss - main)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate()
    stop.set()
    sampler.join()
    wall = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):(\d+(?:\.\d+)?)", err)
    h, m, s = (float(x) if x else 0.0 for x in wall.groups())
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", err).group(1)) / 1024
    cpu = sum(float(re.search(rf"{kind} time \(seconds\): ([\d.]+)", err).group(1)) for kind in ("User", "System"))
    return {
        "seconds": h * 3600 + m * 60 + s,
        "cpu_seconds": cpu,
        "peak_rss_mb": rss,
        "peak_tree_pss_mb": peak["pss"],
        "peak_tree_rss_mb": peak["rss"],
        "peak_main_pss_mb": peak["main"],
        "peak_workers_pss_mb": peak["workers"],
        "exit": proc.returncode,
    }


def tree_pss_mb(root: int) -> float:
    return tree_memory_mb(root)[0]


def tree_memory_mb(root: int, split: bool = False) -> tuple:
    """The summed PSS and the summed RSS of ``root``'s descendants, in MB (Linux /proc); with ``split``
    also the PSS of the main process (``root``'s child: the measured program) alone."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    pss = rss = main = 0
    todo = [root]
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        if pid == root:  # /usr/bin/time itself: not the measured program
            continue
        try:
            with open(f"/proc/{pid}/smaps_rollup") as fh:
                values = {
                    k: int(v.split()[0]) for k, _, v in (line.partition(":") for line in fh) if k in ("Pss", "Rss")
                }
            pss, rss = pss + values.get("Pss", 0), rss + values.get("Rss", 0)
            if pid in children.get(root, []):
                main += values.get("Pss", 0)
        except OSError:
            pass
    return (pss / 1024, rss / 1024, main / 1024) if split else (pss / 1024, rss / 1024)


def pg_database(name: str) -> str:
    import psycopg

    with psycopg.connect(PG.replace("+psycopg", ""), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    return PG.rsplit("/", 1)[0] + "/" + name


def generator() -> Path:
    """../shared's Agno 1.8.4 generator: the project has none of its own (see the docstring)."""
    script = SHARED_TOOLS / "make_v1_fixtures.sh"
    if not script.exists():
        raise SystemExit(
            f"bench_legacy.py: the Agno 1.x input is not in {CACHE} and its generator, {script}, is missing. "
            "The project has no Agno 1.x generator of its own: the input is written by the real Agno 1.8.4 "
            "through ../shared/tools/make_v1_fixtures.sh, so run this once beside ../shared (or set "
            "AGNO_MIGRATE_SHARED), or copy its cache ($AGNO_MIGRATE_BENCH_CACHE). The Agno 3.1.10 side and the "
            "verification need only this checkout."
        )
    return script


def source(backend: str, count: int) -> tuple[str, Path]:
    """The cached Agno 1.x input (a SQLite file, or a PostgreSQL template database) and its expected file."""
    CACHE.mkdir(parents=True, exist_ok=True)
    expected = CACHE / f"{backend}-{count}.expected.jsonl"
    if backend == "sqlite":
        path = CACHE / f"v1-{count}.db"
        if (
            not path.exists()
        ):  # generated under another name, renamed when complete (an interrupted run leaves no input)
            part = path.with_suffix(".part")
            part.unlink(missing_ok=True)
            subprocess.run(
                [
                    "bash",
                    generator(),
                    "--count",
                    str(count),
                    "--mix",
                    "agent:100",
                    "--sqlite",
                    part,
                    "--expected",
                    expected,
                    "--jobs",
                    "2",
                ],
                check=True,
            )
            part.rename(path)
        return str(path), expected
    name = f"bench_v1_{count}"
    marker = CACHE / f"{name}.ready"
    if not marker.exists():
        script = generator()
        url = pg_database(name)
        subprocess.run(
            [
                "bash",
                script,
                "--count",
                str(count),
                "--mix",
                "agent:100",
                "--pg-url",
                url,
                "--pg-schema",
                "ai",
                "--expected",
                expected,
                "--jobs",
                "2",
            ],
            check=True,
        )
        marker.touch()
    return name, expected


def copy(backend: str, src: str, tmp: Path) -> tuple[str, str]:
    """A fresh copy of the input: (URL, the --db argument the verifier takes)."""
    if backend == "sqlite":
        path = tmp / f"{uuid.uuid4().hex}.db"
        shutil.copy(src, path)
        return f"sqlite:///{path}", str(path)
    import psycopg

    name = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG.replace("+psycopg", ""), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{src}"')
    url = PG.rsplit("/", 1)[0] + "/" + name
    return url, url


def verify(db: str, expected: Path, backend: str) -> str:
    """The project's verifier's last line: Agno 3.1.10 reading ``db`` against the generator's expected file."""
    schema = "ai" if backend == "postgresql" else None
    return agno_env.verify(db, expected, schema=schema, sample=VERIFY_SAMPLE, timeout=7200).summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--cases", default="sqlite:10000,sqlite:100000,postgresql:10000")
    ap.add_argument("--out", default=dated("legacy"))
    ap.add_argument("--tmp", default=str(CACHE / "work"))
    ap.add_argument("--note", default="", help="a sentence for the results file (e.g. what else ran on the machine)")
    args = ap.parse_args()
    tmp = Path(args.tmp)
    tmp.mkdir(parents=True, exist_ok=True)
    results = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": machine(), "versions": versions(), "note": args.note}
    results["cases"] = []
    for case in args.cases.split(","):
        backend, count = case.split(":")
        src, expected = source(backend, int(count))
        agno_url, agno_db = copy(backend, src, tmp)
        load = os.getloadavg()[0]
        agno = timed([agno_env.agno_python(), HERE / "agno_legacy_side.py", agno_url])
        agno["load_before"] = load
        agno["verify"] = verify(agno_db, expected, backend)
        ours_url, ours_db = copy(backend, src, tmp)
        load = os.getloadavg()[0]
        ours = timed([CLI, "--db-url", ours_url, "-q", "upgrade"])
        ours["load_before"] = load
        ours["verify"] = verify(ours_db, expected, backend)
        row = {
            "backend": backend,
            "sessions": int(count),
            "agno": agno,
            "agno_migrate": ours,
            "speedup": agno["seconds"] / ours["seconds"],
            "rss_ratio": ours["peak_rss_mb"] / agno["peak_rss_mb"],
        }
        results["cases"].append(row)
        print(json.dumps(row), flush=True)
        if backend == "sqlite":
            for url in (agno_url, ours_url):
                Path(url.split("///", 1)[1]).unlink(missing_ok=True)
    Path(args.out + ".json").write_text(json.dumps(results, indent=1))
    lines = [
        f"# Legacy (Agno 1.x) migration benchmark ({results['date']})",
        "",
        f"Machine: {results['machine']}.",
        f"Versions: {results.get('versions', 'not recorded')}.",
        "",
        "Input: Agno 1.x agent sessions written by the real Agno 1.8.4 (make_v1_fixtures.sh --mix agent:100, "
        "seed 1234; the generator is ../shared's, the project has none of its own). Wall clock and peak RSS of the "
        "whole process (/usr/bin/time -v); `verify` is the last line of the project's verifier, "
        "tests/agno_side/agno_verify.py (the real Agno 3.1.10, in the project's reference environment, reading the "
        f"result against the generator's expected file; {VERIFY_SAMPLE} sessions also through get_session).",
        "",
        "Memory: peak RSS of the main process / peak PSS of the whole process tree / peak RSS summed over the "
        "process tree, sampled every 50 ms (agno-migrate converts in worker processes: the tree figures are the ones "
        "that count; PSS counts the pages the processes share once, the RSS sum once per process, an upper bound; in "
        "brackets, the peak PSS of the main process alone and of its workers together). "
        "`cpu` is the CPU time (user + system) of the whole process tree: less sensitive than the wall clock to "
        "other load on the machine. `load` is the 1-minute load average just before each side started (above the "
        "number of cores, other processes were competing for them).",
        "",
        *([args.note, ""] if args.note else []),
        "| input | Agno 3.1.10 v1_to_v2.migrate() | agno-migrate upgrade | speed-up | Agno verify "
        "| agno-migrate verify |",
        "|---|---|---|---|---|---|",
    ]
    for r in results["cases"]:
        a, o = r["agno"], r["agno_migrate"]
        lines.append(
            f"| {r['backend']} {r['sessions']:,} | {_side(a)} | {_side(o)} | {r['speedup']:.1f}x | "
            f"{a['verify']} | {o['verify']} |"
        )
    Path(args.out + ".md").write_text("\n".join(lines) + "\n")


def _side(m: dict) -> str:
    workers = (
        f" (PSS main {m['peak_main_pss_mb']:.0f} + workers {m['peak_workers_pss_mb']:.0f})"
        if m["peak_workers_pss_mb"] >= 1
        else ""
    )
    return (
        f"{m['seconds']:.1f} s (cpu {m['cpu_seconds']:.1f} s), {m['peak_rss_mb']:.0f} / {m['peak_tree_pss_mb']:.0f} / "
        f"{m['peak_tree_rss_mb']:.0f} MB{workers}, load {m['load_before']:.1f}"
    )


if __name__ == "__main__":
    main()
