"""Agno 3.1.10's own store on the benchmark workload (run with the Agno environment's python).

python agno_store_side.py DATA.jsonl (sqlite:///FILE | postgresql+psycopg://... | mongodb://HOST/DB) \
    [threads:N | processes:N] > results.json   (with writers: store_workload.concurrent instead)
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from agno.db.base import SessionType  # noqa: E402
from agno.session import AgentSession, TeamSession, WorkflowSession  # noqa: E402
from store_workload import concurrent, load, run  # noqa: E402

KINDS = {
    "agent": (AgentSession, SessionType.AGENT),
    "team": (TeamSession, SessionType.TEAM),
    "workflow": (WorkflowSession, SessionType.WORKFLOW),
}


def open_db(url: str):
    if url.startswith("mongodb"):
        from urllib.parse import urlsplit, urlunsplit

        from agno.db.mongo import MongoDb

        parts = urlsplit(url)
        return MongoDb(db_url=urlunsplit(parts._replace(path="/")), db_name=parts.path.strip("/"))
    if url.startswith("sqlite"):
        from agno.db.sqlite import SqliteDb

        return SqliteDb(db_file=url.split("///", 1)[1])
    from agno.db.postgres import PostgresDb

    return PostgresDb(db_url=url, db_schema="ai")


def make_ops(url: str) -> dict:
    db = open_db(url)

    def upsert_session(s):
        cls, _ = KINDS[s["session_type"]]
        db.upsert_session(cls.from_dict({k: v for k, v in s.items() if k != "runs"}))

    def upsert_run(s, r, index):
        db.upsert_run(r, session_id=s["session_id"], user_id=s.get("user_id"), run_index=index)

    def get_session(s):
        got = db.get_session(s["session_id"], session_type=KINDS[s["session_type"]][1])
        assert got is not None and len(got.runs or []) >= len(s["runs"]), s["session_id"]

    def get_page(page, size):
        return len(db.get_sessions(limit=size, page=page, sort_by="created_at", sort_order="desc"))

    return {
        "upsert_session": upsert_session,
        "upsert_run": upsert_run,
        "get_session": get_session,
        "get_page": get_page,
    }


def main(data_path: str, url: str, writers: str | None = None) -> None:
    sessions = load(data_path)
    if writers:
        mode, n = writers.split(":")
        print(json.dumps(concurrent(lambda: make_ops(url), sessions, int(n), mode)))
    else:
        print(json.dumps(run(make_ops(url), sessions)))


if __name__ == "__main__":
    main(*sys.argv[1:4])
