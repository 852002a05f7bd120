"""The store benchmark's workload, run the same way against any store object.

Used by bench_store.py for agno-migrate's store and, inside the Agno 3.1.10 environment, for
Agno's own SqliteDb / PostgresDb (agno_store_side.py). No import of either package here.
"""

from __future__ import annotations

import gc
import json
import resource
import time


def load(path: str) -> list[dict]:
    """The workload's sessions. They stay in memory for the whole run (millions of objects), so
    they are moved out of the garbage collector's sight (``gc.freeze``): otherwise each full
    collection, triggered by the objects a store call allocates, walks the harness's own data
    and the timings of both stores include it."""
    with open(path, encoding="utf-8") as fh:
        sessions = [json.loads(line) for line in fh]
    gc.collect()
    gc.freeze()
    return sessions


def run(ops: dict, sessions: list[dict], page_size: int = 100) -> dict:
    """Time each operation over the whole data set; ops maps a name to a callable.

    ops: upsert_session(session_dict_without_runs), upsert_run(session, run, index),
    get_session(session), get_page(page, page_size) -> number of sessions returned.
    """
    results = {}
    n_runs = sum(len(s["runs"]) for s in sessions)

    t = time.perf_counter()
    for s in sessions:
        ops["upsert_session"](s)
    results["upsert_session"] = len(sessions) / (time.perf_counter() - t)

    t = time.perf_counter()
    for s in sessions:
        for index, r in enumerate(s["runs"]):
            ops["upsert_run"](s, r, index)
    results["upsert_run"] = n_runs / (time.perf_counter() - t)

    t = time.perf_counter()
    for s in sessions:
        ops["get_session"](s)
    results["get_session"] = len(sessions) / (time.perf_counter() - t)

    t = time.perf_counter()
    seen, page = 0, 1
    while True:
        got = ops["get_page"](page, page_size)
        seen += got
        if got < page_size:
            break
        page += 1
    results["get_sessions_page"] = seen / (time.perf_counter() - t)
    if seen != len(sessions):
        raise AssertionError(f"paged through {seen} sessions, expected {len(sessions)}")
    results["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    results["sessions"] = len(sessions)
    results["runs"] = n_runs
    return results


def concurrent(make_ops, sessions: list[dict], writers: int, mode: str) -> dict:
    """``writers`` writers at once (``mode`` "threads": one store shared by threads; "processes":
    forked processes, each with its own store), writer k taking every k-th session: for each, its
    upsert_session then its runs in order. Writes per second over the wall time (sessions plus
    runs). ``make_ops()`` returns the upsert_session / upsert_run callables of a new store."""
    import multiprocessing
    import threading

    shares = [sessions[k::writers] for k in range(writers)]
    errors: list = []

    def write(share, ops=None):
        try:
            ops = ops or make_ops()
            for s in share:
                ops["upsert_session"](s)
                for index, r in enumerate(s["runs"]):
                    ops["upsert_run"](s, r, index)
        except BaseException as exc:  # reported by the harness, never swallowed
            errors.append(repr(exc))
            raise

    t = time.perf_counter()
    if mode == "threads":
        ops = make_ops()
        workers = [threading.Thread(target=write, args=(share, ops)) for share in shares]
    else:
        workers = [multiprocessing.get_context("fork").Process(target=write, args=(share,)) for share in shares]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    wall = time.perf_counter() - t
    failed = errors + [f"writer exited with {w.exitcode}" for w in workers if getattr(w, "exitcode", 0)]
    if failed:
        raise AssertionError(f"{len(failed)} writers failed: {failed[:3]}")
    n_runs = sum(len(s["runs"]) for s in sessions)
    return {
        "mode": mode,
        "writers": writers,
        "writes_per_s": (len(sessions) + n_runs) / wall,
        "wall_s": wall,
        "sessions": len(sessions),
        "runs": n_runs,
    }
