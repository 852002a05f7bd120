"""The application side of bench_online.py: an Agno 2.0-era application writing sessions in a loop while
the database is upgraded (run with the reference Agno environment's python; it needs psycopg only).

    python online_writer.py URL OUT [--pause 0.01] [--sessions 100]

Why plain SQL, not Agno 3.1.10's ``PostgresDb``: the database being upgraded is an Agno 2.0 one, and until the
upgrade reaches head an Agno 3.1 application cannot write it (its ``upsert_run`` needs the runs table and the
head layout); no Agno 2.x is installable beside 3.1.10. So the writer issues what Agno 2.0's ``PostgresDb``
sends for the same calls: ``upsert_session`` is one ``INSERT … ON CONFLICT (session_id) DO UPDATE`` of the
whole session row (its ``session_data`` changed), and a run is added as Agno 2.0 adds one: the session's
``runs`` blob, with the new run appended, written by an ``UPDATE`` (``upsert_run`` below). Each call is its own
autocommit statement, as Agno's are; the writer keeps its own sessions' blobs in memory (no read per call).

Until its stdin is closed it alternates the two calls over ``--sessions`` sessions of its own, pausing
``--pause`` seconds between calls, and records every call: wall-clock start, latency, and the error if
it failed. On stdin's end it writes them to OUT as JSON (one list of ``[start, seconds, error]``).
"""

import argparse
import json
import sys
import threading
import time
import uuid

import psycopg

UPSERT_SESSION = (
    "INSERT INTO ai.agno_sessions (session_id, session_type, agent_id, user_id, session_data, agent_data, runs, "
    "created_at, updated_at) VALUES (%s, 'agent', 'bench-agent', 'bench-user', %s, %s, %s, %s, %s) "
    "ON CONFLICT (session_id) DO UPDATE SET session_data = EXCLUDED.session_data, agent_data = EXCLUDED.agent_data, "
    "runs = EXCLUDED.runs, updated_at = EXCLUDED.updated_at"
)
UPSERT_RUN = "UPDATE ai.agno_sessions SET runs = %s, updated_at = %s WHERE session_id = %s"


def run(now: int, session_id: str, n: int) -> dict:
    """A completed agent run as Agno 2.0 keeps it in the blob (trimmed to the fields that matter here)."""
    return {
        "run_id": str(uuid.uuid4()),
        "agent_id": "bench-agent",
        "session_id": session_id,
        "user_id": "bench-user",
        "status": "COMPLETED",
        "content": f"answer {n} " + "lorem ipsum " * 40,
        "messages": [
            {"role": "user", "content": f"question {n}", "created_at": now},
            {"role": "assistant", "content": "lorem ipsum " * 40, "created_at": now},
        ],
        "metrics": {"input_tokens": 120, "output_tokens": 240, "total_tokens": 360},
        "created_at": now,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("out")
    ap.add_argument("--pause", type=float, default=0.01)
    ap.add_argument("--sessions", type=int, default=100)
    args = ap.parse_args()
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    ids = [f"online-writer-{uuid.uuid4().hex[:8]}-{i:03d}" for i in range(args.sessions)]
    blobs: dict[str, list] = {sid: [] for sid in ids}
    calls = []
    with psycopg.connect(args.url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        print("ready", flush=True)
        n = 0
        while not stop.is_set():
            sid = ids[n // 2 % len(ids)]
            now = int(time.time())
            if n % 2 == 0:
                statement = UPSERT_SESSION
                params = (sid, json.dumps({"session_state": {"turn": n}}), json.dumps({"name": "bench"}),
                          json.dumps(blobs[sid]), now, now)  # fmt: skip
            else:
                blobs[sid].append(run(now, sid, n))
                statement, params = UPSERT_RUN, (json.dumps(blobs[sid]), now, sid)
            start, t = time.time(), time.perf_counter()
            error = None
            try:
                conn.execute(statement, params)
            except psycopg.Error as exc:
                error = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
            calls.append([start, time.perf_counter() - t, error])
            n += 1
            time.sleep(args.pause)
    with open(args.out, "w") as fh:
        json.dump(calls, fh)


if __name__ == "__main__":
    main()
