"""A/B benchmark: two commits of agno-migrate on the same machine, in the same run, interleaved.

    python benchmarks/bench_ab.py --before REF --after REF [--sessions 2000] [--rounds 3]
                                  [--backends sqlite,postgresql] [--out benchmarks/results/ab]

For a change that must not change speed (a reorganisation), or to see what a change gains. Each
commit is exported (``git archive``) and installed with its ``[all]`` extra into a virtual
environment of its own (a fresh install, so neither side sees the other's code or revisions).
Then, round after round, alternating which commit goes first, each commit runs on fresh copies of
the same inputs:

- ``store``: the store workload of bench_store.py (upsert_session, upsert_run, get_session, pages),
  in operations per second;
- ``upgrade``: ``agno-migrate upgrade`` of an Agno 2.6 database (tests/fixtures/2.6.0, its sessions
  copied under new ids up to --sessions; the copies' run ids repeat, so the 3.0.0 step re-keys them,
  the same work for both commits), in seconds;
- ``import``: ``agno-migrate upgrade`` of an Agno 1.x database (tests/fixtures/v1, agent sessions
  copied the same way), in seconds.

The medians per commit and the ratio after/before are written to OUT.md and OUT.json; a ratio
within a few percent of 1 is noise on this machine (see benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import datetime
import json
import lzma
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
import bench_store  # noqa: E402  (the store workload's data, fresh databases, machine description)

FIXTURES = REPO / "tests" / "fixtures"
DUMPS = {"sqlite": "sqlite.db", "postgresql": "postgres.sql"}


def install(ref: str, work: Path) -> Path:
    """``ref`` exported and installed into a venv of its own; returns the venv's bin folder."""
    src = work / f"src-{ref}"
    src.mkdir()
    archive = subprocess.run(["git", "-C", str(REPO), "archive", ref], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(src)], input=archive, check=True)
    venv = work / f"venv-{ref}"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", f"{src}[all]"], check=True)
    return venv / "bin"


def load_fixture(point: str, backend: str, url: str, table: str, copies: int) -> None:
    """Fill the empty database ``url`` with a fixture point, its ``table`` rows copied under new ids."""
    data = lzma.open(FIXTURES / point / f"{DUMPS[backend]}.xz").read()
    if backend == "sqlite":
        Path(url.split("///", 1)[1]).write_bytes(data)
    else:
        import psycopg

        body = "\n".join(line for line in data.decode().splitlines() if not line.startswith("\\"))
        with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as conn:
            conn.execute(body)
    engine = sa.create_engine(url)
    schema = None if backend == "sqlite" else "ai"
    with engine.begin() as conn:
        t = sa.Table(table, sa.MetaData(), autoload_with=conn, schema=schema)
        cols = [sa.type_coerce(c, sa.Text).label(c.name) if isinstance(c.type, sa.JSON) else c for c in t.columns]
        rows = [dict(r) for r in conn.execute(sa.select(*cols)).mappings()]
        for k in range(1, copies):
            conn.execute(t.insert(), [{**r, "session_id": f"{r['session_id']}-ab{k:04d}"} for r in rows])
    engine.dispose()


def rows_in(point: str, backend: str, table: str, tmp: Path) -> int:
    url = bench_store.fresh_url(backend, "disk", tmp)
    try:
        load_fixture(point, backend, url, table, 1)
        engine = sa.create_engine(url)
        schema = None if backend == "sqlite" else "ai"
        with engine.connect() as conn:
            t = sa.Table(table, sa.MetaData(), autoload_with=conn, schema=schema)
            count = conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
        engine.dispose()
        return count
    finally:
        bench_store.drop(url)


def timed_upgrade(bin_dir: Path, point: str, table: str, backend: str, copies: int, tmp: Path) -> float:
    url = bench_store.fresh_url(backend, "disk", tmp)
    try:
        load_fixture(point, backend, url, table, copies)
        start = time.perf_counter()
        done = subprocess.run([str(bin_dir / "agno-migrate"), "--db-url", url, "-q", "upgrade"], capture_output=True)
        took = time.perf_counter() - start
        if done.returncode != 0:
            raise SystemExit(f"upgrade failed ({done.returncode}): {done.stderr.decode()[-2000:]}")
        return took
    finally:
        bench_store.drop(url)


def store_ops(bin_dir: Path, data: Path, backend: str, tmp: Path) -> dict:
    script = [str(HERE / "bench_store.py"), "--side", str(data)]
    figures = bench_store.side(bin_dir / "python", script, bench_store.fresh_url(backend, "disk", tmp))
    return {op: figures[op] for op in bench_store.OPS}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", required=True)
    ap.add_argument("--after", required=True)
    ap.add_argument("--sessions", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--backends", default="sqlite,postgresql")
    ap.add_argument("--out", default=bench_store.dated("ab"))
    args = ap.parse_args()
    backends = args.backends.split(",")
    refs = {
        side: subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", ref], capture_output=True, text=True
        ).stdout.strip()
        for side, ref in (("before", args.before), ("after", args.after))
    }
    work = Path(tempfile.mkdtemp(prefix="agno-ab-"))
    try:
        bins = {side: install(ref, work) for side, ref in refs.items()}
        data = work / "store.jsonl"
        bench_store.build_data(args.sessions, data)
        copies = {("upgrade", b): max(1, args.sessions // rows_in("2.6.0", b, "agno_sessions", work)) for b in backends}
        copies.update(
            {("import", b): max(1, args.sessions // rows_in("v1", b, "agent_sessions", work)) for b in backends}
        )
        results: dict = {side: {} for side in refs}
        for k in range(args.rounds):
            for side in list(refs) if k % 2 == 0 else list(refs)[::-1]:
                for b in backends:
                    for op, figure in store_ops(bins[side], data, b, work).items():
                        results[side].setdefault(f"store {b} {op} (ops/s)", []).append(figure)
                    for case, point, table in (
                        ("upgrade", "2.6.0", "agno_sessions"),
                        ("import", "v1", "agent_sessions"),
                    ):
                        took = timed_upgrade(bins[side], point, table, b, copies[(case, b)], work)
                        results[side].setdefault(f"{case} {b} (s)", []).append(took)
                print(f"round {k + 1} {side} done", flush=True)
        write(args, refs, results, copies)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def write(args, refs: dict, results: dict, copies: dict) -> None:
    medians = {side: {key: statistics.median(v) for key, v in figures.items()} for side, figures in results.items()}
    lines = [
        f"# A/B: {refs['before']} (before) vs {refs['after']} (after)",
        "",
        f"{datetime.datetime.now():%Y-%m-%d %H:%M}, {bench_store.machine()}; {bench_store.pg_settings()}; "
        f"{args.rounds} rounds, commits alternating; store: {args.sessions} sessions; upgrade and import inputs "
        f"copied {', '.join(f'{case} {b} x{n}' for (case, b), n in copies.items())}.",
        "",
        "| figure | before | after | after/before (speed) | every round before | every round after |",
        "|---|---|---|---|---|---|",
    ]
    for key in medians["before"]:
        before, after = medians["before"][key], medians["after"][key]
        speed = after / before if key.endswith("(ops/s)") else before / after
        lines.append(
            f"| {key} | {before:.2f} | {after:.2f} | {speed:.3f} | "
            f"{', '.join(f'{x:.2f}' for x in results['before'][key])} | "
            f"{', '.join(f'{x:.2f}' for x in results['after'][key])} |"
        )
    lines.append("")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text("\n".join(lines), encoding="utf-8")
    out.with_suffix(".json").write_text(json.dumps({"refs": refs, "results": results}, indent=1), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    os.environ.pop("PYTHONPATH", None)
    main()
