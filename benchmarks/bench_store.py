"""Store benchmark: agno-migrate's store against Agno 3.1.10's own, same data, same run.

    python benchmarks/bench_store.py [--sessions 10000] [--backends sqlite,postgresql,mongodb]
                                     [--storage disk,memory-backed] [--repeat 3]

Builds N realistic sessions (the 200 sessions of the Agno 3.1.10 fixture, replicated with new
ids), then runs the same workload (store_workload.py: upsert_session, upsert_run, get_session,
get_sessions pages of 100) with Agno 3.1.10 (the project's reference environment, built once by
tests/agno_side/env.py from its pinned requirements) and with agno-migrate, each in its own process on a fresh
database, --repeat times per side (sides alternating; the median of each figure is kept). Writes
the figures and the ratios to benchmarks/results/store.md and .json.

--storage says where the databases live, identically for both sides:
  disk           SQLite files on the disk (TMPDIR), PostgreSQL as configured: every commit is
                 durable (fsync'd), as both stores' defaults are.
  memory-backed  SQLite files on tmpfs (/dev/shm), PostgreSQL databases with
                 ``synchronous_commit = off`` (ALTER DATABASE): commits do not wait for the disk,
                 so the figures show the libraries' own cost. Not a setting to deploy.
MongoDB (``--backends ...,mongodb``): a throw-away single-node replica set (tests/mongo_server.py), the
same server under both storages; Agno's side is its ``MongoDb(db_url=..., db_name=...)``.
"""

from __future__ import annotations

import argparse
import json
import lzma
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PG_ADMIN = os.environ.get("AGNO_MIGRATE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
OPS = ("upsert_session", "upsert_run", "get_session", "get_sessions_page")
STORAGES = ("disk", "memory-backed")
SHM = Path("/dev/shm")


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
    """The reference Agno 3.1.10 environment's python (tests/agno_side/env.py builds it once)."""
    sys.path.insert(0, str(REPO / "tests"))
    from agno_side import env

    return env.agno_python()


MONGO: list = []  # the throw-away mongod of this run (tests/mongo_server.py), started on first use


def mongo_server():
    if not MONGO:
        sys.path.insert(0, str(REPO / "tests"))
        from mongo_server import MongoServer

        MONGO.append(MongoServer.start())
    return MONGO[0]


def mongo_db_url(server_url: str, name: str) -> str:
    """``mongodb://host:port/NAME?options`` from the server's ``mongodb://host:port/?options``."""
    base, _, options = server_url.partition("?")
    return f"{base.rstrip('/')}/{name}" + (f"?{options}" if options else "")


def fresh_url(backend: str, storage: str, tmp: Path) -> str:
    """A new empty database: a SQLite file (on tmpfs for memory-backed), a PostgreSQL database
    (with ``synchronous_commit = off`` for memory-backed), or a MongoDB database (the same server for
    both storages: its writes are acknowledged as both stores' defaults ask, journal on its disk)."""
    if backend == "mongodb":
        return mongo_db_url(mongo_server().url, f"bench_{uuid.uuid4().hex[:10]}")
    if backend == "sqlite":
        folder = SHM / tmp.name if storage == "memory-backed" else tmp
        folder.mkdir(exist_ok=True)
        return f"sqlite:///{folder / (uuid.uuid4().hex + '.db')}"
    import psycopg

    name = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN.replace("+psycopg", ""), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        if storage == "memory-backed":
            admin.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
    return PG_ADMIN.rsplit("/", 1)[0] + "/" + name


def drop(url: str) -> None:
    """Remove a benchmark database (SQLite file with its WAL, PostgreSQL or MongoDB database)."""
    if url.startswith("mongodb"):
        import pymongo

        with pymongo.MongoClient(url) as client:
            client.drop_database(client.get_default_database().name)
        return
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1]
        for suffix in ("", "-wal", "-shm"):
            Path(path + suffix).unlink(missing_ok=True)
        return
    import psycopg

    with psycopg.connect(PG_ADMIN.replace("+psycopg", ""), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


# A wrapper that runs the command given and prints its exit code, its peak RSS in KiB (ru_maxrss of the
# children it waited for: the one process it started, and what that one started), and the ends of its output.
MEASURE = (
    "import json, resource, subprocess, sys; done = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
    "print(json.dumps({'rc': done.returncode, 'rss_kib': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, "
    "'err': done.stderr[-2000:], 'out': done.stdout[-2000:]}))"
)


def side(python: Path, script: list[str], url: str) -> dict:
    """One run of one side on the fresh database ``url`` (dropped afterwards), with the 1-minute
    load average of the machine just before it."""
    load = os.getloadavg()[0]
    done = subprocess.run([str(python), *script, url], capture_output=True, text=True)
    drop(url)
    if done.returncode != 0:
        raise SystemExit(f"{script[0]} failed:\n{done.stderr[-3000:]}")
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "load_before": load}


def median_of(runs: list[dict]) -> dict:
    """The median of each figure over the runs, and every run's figures and load."""
    keys = [*OPS, "peak_rss_mb"]
    return {
        **{k: statistics.median(r[k] for r in runs) for k in keys},
        "sessions": runs[0]["sessions"],
        "runs": runs[0]["runs"],
        "repeats": [{k: r[k] for k in (*keys, "load_before")} for r in runs],
    }


def versions() -> str:
    """agno-migrate's version and commit, and the reference Agno's: for every results file."""
    ours = subprocess.run(
        [str(Path(sys.executable).parent / "agno-migrate"), "--version"], capture_output=True, text=True
    ).stdout.strip()
    commit = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    agno = subprocess.run(
        [str(agno_python()), "-c", "import importlib.metadata as m; print(m.version('agno'))"],
        capture_output=True,
        text=True,
        env=_clean_env(),
    ).stdout.strip()
    return f"{ours} (commit {commit}); Agno {agno} (reference env {agno_python().parent.parent.name})"


def _clean_env() -> dict:
    sys.path.insert(0, str(REPO / "tests"))
    from agno_side import env

    return env.clean_env()


def dated(name: str) -> str:
    """The default results path of a benchmark: ``results/<name>-<date>-<time>`` (never overwritten)."""
    return str(HERE / "results" / f"{name}-{time.strftime('%Y-%m-%d-%H%M')}")


def machine() -> str:
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{os.cpu_count()} cores, {mem:.0f} GiB RAM, {platform.platform()}, Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}"
    )


def commit_floor_ms(folder: Path, n: int = 300) -> float:
    """The median time of one durable SQLite commit (WAL, synchronous=FULL, a one-row insert) in
    ``folder``: the floor under any store's write there."""
    path = folder / f"floor-{uuid.uuid4().hex}.db"
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)")
        times = []
        for k in range(n):
            t = time.perf_counter()
            db.execute("BEGIN IMMEDIATE")
            db.execute("INSERT INTO t VALUES (?, 'x')", (k,))
            db.execute("COMMIT")
            times.append(time.perf_counter() - t)
        return statistics.median(times) * 1000
    finally:
        db.close()
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)


def pg_settings() -> str:
    import psycopg

    with psycopg.connect(PG_ADMIN.replace("+psycopg", ""), autocommit=True) as admin:
        version = admin.execute("SHOW server_version").fetchone()[0]
        fsync, sync = (admin.execute(f"SHOW {name}").fetchone()[0] for name in ("fsync", "synchronous_commit"))
    return f"PostgreSQL {version} (fsync={fsync}, synchronous_commit={sync} unless said otherwise)"


def run_storage(storage: str, backends: list[str], data: Path, tmp: Path, repeat: int) -> dict:
    """Both sides on each backend, ``repeat`` times each (alternating which goes first)."""
    out = {}
    ours_side = (Path(sys.executable), [__file__, "--side", str(data)])
    agno_side = (agno_python(), [str(HERE / "agno_store_side.py"), str(data)])
    for backend in backends:
        runs: dict[str, list] = {"agno": [], "agno_migrate": []}
        for k in range(repeat):
            order = [("agno", agno_side), ("agno_migrate", ours_side)]
            for name, (python, script) in order if k % 2 == 0 else order[::-1]:
                runs[name].append(side(python, script, fresh_url(backend, storage, tmp)))
                print(storage, backend, name, k + 1, {op: round(runs[name][-1][op]) for op in OPS}, flush=True)
        agno, mine = median_of(runs["agno"]), median_of(runs["agno_migrate"])
        ratios = {op: mine[op] / agno[op] for op in OPS}
        out[backend] = {"agno": agno, "agno_migrate": mine, "ratio": ratios}
        print(storage, backend, {op: f"{r:.1f}x" for op, r in ratios.items()}, flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sessions", type=int, default=10_000)
    ap.add_argument("--backends", default="sqlite,postgresql")
    ap.add_argument("--storage", default=",".join(STORAGES), help="disk, memory-backed or both (comma-separated)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per side; the median is kept")
    ap.add_argument("--out", default=dated("store"))
    ap.add_argument("--side", nargs=2, metavar=("DATA", "URL"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.side:
        ours(*args.side)
        return
    storages = args.storage.split(",")
    if not set(storages) <= set(STORAGES):
        ap.error(f"--storage: one or more of {', '.join(STORAGES)}")
    backends = args.backends.split(",")
    results = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": machine(),
        "versions": versions(),
        "sessions": args.sessions,
        "repeat": args.repeat,
        "storages": {},
    }
    if "postgresql" in backends:
        results["postgresql"] = pg_settings()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        results["sqlite_commit_ms"] = {"disk": commit_floor_ms(tmp), "memory-backed": commit_floor_ms(SHM)}
        data = tmp / "sessions.jsonl"
        build_data(args.sessions, data)
        try:
            for storage in storages:
                results["storages"][storage] = run_storage(storage, backends, data, tmp, args.repeat)
        finally:
            shutil.rmtree(SHM / tmp.name, ignore_errors=True)
            for server in MONGO:
                server.stop()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out + ".json").write_text(json.dumps(results, indent=1))
    Path(args.out + ".md").write_text(report(results))


def report(results: dict) -> str:
    """The results as Markdown: one table per storage variant, then which ratios reach 3x."""
    lines = [
        f"# Store benchmark ({results['date']})",
        "",
        f"Machine: {results['machine']}.",
        f"Versions: {results['versions']}.",
        *([f"Server: {results['postgresql']}."] if "postgresql" in results else []),
        "",
        f"{results['sessions']} sessions, one call per operation, a fresh database per side and run; "
        f"each side ran {results['repeat']} times (alternating which side goes first), the figures are the "
        "medians; operations per second (get_sessions: sessions per second through pages of 100). "
        "`load` is the 1-minute load average just before each run (Agno's runs, then ours).",
        "",
    ]
    below = []
    for storage, backends in results["storages"].items():
        lines += [
            f"## {storage}",
            "",
            STORAGE_NOTES[storage],
            "",
            "| backend | operation | Agno 3.1.10 | agno-migrate | ratio |",
            "|---|---|---|---|---|",
        ]
        for backend, r in backends.items():
            for op in OPS:
                lines.append(
                    f"| {backend} | {op} | {r['agno'][op]:.0f} | {r['agno_migrate'][op]:.0f} | {r['ratio'][op]:.1f}x |"
                )
                if r["ratio"][op] < 3:
                    below.append(f"{storage} {backend} {op} ({r['ratio'][op]:.2f}x)")
            lines.append(
                f"| {backend} | peak RSS (MB) | {r['agno']['peak_rss_mb']:.0f} "
                f"| {r['agno_migrate']['peak_rss_mb']:.0f} | |"
            )
            loads = lambda side, r=r: ", ".join(f"{x['load_before']:.2f}" for x in r[side]["repeats"])  # noqa: E731
            lines.append(f"| {backend} | load before runs | {loads('agno')} | {loads('agno_migrate')} | |")
        lines.append("")
    lines += ["## Which ratios reach 3x", "", "Below 3x: " + ("; ".join(below) if below else "none") + ".", ""]
    floor = results["sqlite_commit_ms"]
    lines.append(
        f"One durable SQLite commit (WAL, synchronous=FULL, one-row insert) takes {floor['disk']:.2f} ms on "
        f"this disk and {floor['memory-backed']:.3f} ms on tmpfs (median of 300, measured in this run)."
    )
    lines += ["", *write_floor_notes(results["storages"])]
    return "\n".join(lines) + "\n"


def write_floor_notes(storages: dict) -> list[str]:
    """What waiting for the disk leaves for each write: our time per call on disk minus our time
    memory-backed is the share of a durable write spent on the commit; 3x Agno below it is out of
    reach at equal durability."""
    if not {"disk", "memory-backed"} <= set(storages):
        return []
    notes = []
    for backend in storages["disk"]:
        for op in ("upsert_session", "upsert_run"):
            ours_disk = 1000 / storages["disk"][backend]["agno_migrate"][op]
            ours_memory = 1000 / storages["memory-backed"][backend]["agno_migrate"][op]
            target = 1000 / storages["disk"][backend]["agno"][op] / 3
            wait = ours_disk - ours_memory
            verdict = "out of reach at equal durability" if target < wait else "reachable in principle"
            notes.append(
                f"- {backend} {op} on disk: ours {ours_disk:.2f} ms per call, of which {wait:.2f} ms waiting for "
                f"the durable commit (disk minus memory-backed); 3x Agno would be {target:.2f} ms: {verdict}."
            )
    return notes


STORAGE_NOTES = {
    "disk": "Databases on the disk, every commit durable (SQLite WAL with synchronous=FULL on both sides, "
    "PostgreSQL synchronous_commit=on): the stores' defaults.",
    "memory-backed": "SQLite files on tmpfs (/dev/shm) and PostgreSQL databases with `synchronous_commit = off`, "
    "for both sides alike: commits do not wait for the disk, so the figures show what the "
    "libraries themselves cost. Not a configuration to deploy.",
}


if __name__ == "__main__":
    main()
