"""Store benchmark: agno-migrate's store against Agno 3.1.10's own, same data, same run.

    python benchmarks/bench_store.py [--sessions 10000] [--backends sqlite,postgresql]

Builds N realistic sessions (the 200 sessions of the Agno 3.1.10 fixture, replicated with new
ids), then runs the same workload (store_workload.py: upsert_session, upsert_run, get_session,
get_sessions pages of 100) once with Agno 3.1.10 (its own environment, built by
../shared/tools/verify_with_agno.sh) and once with agno-migrate, each in its own process on a
fresh database. Writes the figures and the ratios to benchmarks/results/store.md and .json.
"""
from __future__ import annotations

import argparse
import json
import lzma
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
AGNO_HOME = Path(os.environ.get("AGNO_TOOLS_HOME", Path.home() / ".cache" / "agno-migrate-tools"))
SHARED_TOOLS = Path(os.environ.get("AGNO_MIGRATE_SHARED", REPO.parent / "shared")) / "tools"
PG_ADMIN = os.environ.get("AGNO_MIGRATE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
OPS = ("upsert_session", "upsert_run", "get_session", "get_sessions_page")


def ours(data_path: str, url: str) -> None:
    """The workload on agno-migrate's store (runs in this project's environment)."""
    sys.path.insert(0, str(HERE))
    from store_workload import load, run

    import agno_migrate
    from agno_migrate.sessions import SESSION_CLASSES

    store = agno_migrate.connect(url)
    sessions = load(data_path)

    def upsert_session(s):
        store.upsert_session(SESSION_CLASSES[s["session_type"]](**{k: v for k, v in s.items() if k != "runs"}))

    def get_session(s):
        got = store.get_session(s["session_id"])
        assert got is not None and len(got.runs) >= len(s["runs"]), s["session_id"]

    ops = {
        "upsert_session": upsert_session,
        "upsert_run": lambda s, r, index: store.upsert_run(s["session_id"], r),
        "get_session": get_session,
        "get_page": lambda page, size: len(store.get_sessions(limit=size, page=page)[0]),
    }
    print(json.dumps(run(ops, sessions)))


def build_data(n: int, path: Path) -> None:
    """N sessions from the 3.1.10 fixture's 200, replicated with fresh ids, as JSONL."""
    import agno_migrate

    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "fixture.db"
        db.write_bytes(lzma.open(REPO / "tests" / "fixtures" / "3.1.10" / "sqlite.db.xz").read())
        templates, _ = agno_migrate.connect(f"sqlite:///{db}").get_sessions()
    with path.open("w", encoding="utf-8") as out:
        for k in range(n):
            t = templates[k % len(templates)].to_dict()
            suffix = f"~{k // len(templates):05d}"
            t["session_id"] += suffix
            t["runs"] = [{**r, "run_id": r["run_id"] + suffix, "session_id": t["session_id"]} for r in t["runs"]]
            out.write(json.dumps(t) + "\n")


def agno_python() -> Path:
    python = AGNO_HOME / "agno-3.1.10" / "bin" / "python"
    if not python.exists():
        subprocess.run(["bash", str(SHARED_TOOLS / "verify_with_agno.sh"), "--help"], check=True, capture_output=True)
    return python


def fresh_url(backend: str, tmp: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp / (uuid.uuid4().hex + '.db')}"
    import psycopg

    name = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN.replace("+psycopg", ""), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    return PG_ADMIN.rsplit("/", 1)[0] + "/" + name


def side(python: Path, script: list[str]) -> dict:
    done = subprocess.run([str(python), *script], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{script[0]} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def machine() -> str:
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"{os.cpu_count()} cores, {mem:.0f} GiB RAM, {platform.platform()}, Python {platform.python_version()}, "
            f"SQLite {sqlite3.sqlite_version}")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sessions", type=int, default=10_000)
    ap.add_argument("--backends", default="sqlite,postgresql")
    ap.add_argument("--out", default=str(HERE / "results" / "store"))
    ap.add_argument("--side", nargs=2, metavar=("DATA", "URL"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.side:
        ours(*args.side)
        return
    results = {"date": time.strftime("%Y-%m-%d"), "machine": machine(), "sessions": args.sessions, "backends": {}}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = tmp / "sessions.jsonl"
        build_data(args.sessions, data)
        for backend in args.backends.split(","):
            agno = side(agno_python(), [str(HERE / "agno_store_side.py"), str(data), fresh_url(backend, tmp)])
            mine = side(Path(sys.executable), [__file__, "--side", str(data), fresh_url(backend, tmp)])
            ratios = {op: mine[op] / agno[op] for op in OPS}
            results["backends"][backend] = {"agno": agno, "agno_migrate": mine, "ratio": ratios}
            print(backend, {op: f"{r:.1f}x" for op, r in ratios.items()}, flush=True)
    Path(args.out + ".json").write_text(json.dumps(results, indent=1))
    lines = [f"# Store benchmark ({results['date']})", "", f"Machine: {results['machine']}.", "",
             f"{args.sessions} sessions ({next(iter(results['backends'].values()))['agno']['runs']} runs), "
             "one call per operation, fresh database per side; figures are operations per second "
             "(get_sessions: sessions per second through pages of 100).", "",
             "| backend | operation | Agno 3.1.10 | agno-migrate | ratio |", "|---|---|---|---|---|"]  # fmt: skip
    for backend, r in results["backends"].items():
        for op in OPS:
            lines.append(f"| {backend} | {op} | {r['agno'][op]:.0f} | {r['agno_migrate'][op]:.0f} | {r['ratio'][op]:.1f}x |")
        lines.append(f"| {backend} | peak RSS (MB) | {r['agno']['peak_rss_mb']:.0f} | {r['agno_migrate']['peak_rss_mb']:.0f} | |")
    Path(args.out + ".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
