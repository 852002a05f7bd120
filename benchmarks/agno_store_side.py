"""Agno 3.1.10's own store on the benchmark workload (run with the Agno environment's python).

python agno_store_side.py DATA.jsonl (sqlite:///FILE | postgresql+psycopg://... | mongodb://HOST/DB) > results.json
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from agno.db.base import SessionType  # noqa: E402
from agno.session import AgentSession, TeamSession, WorkflowSession  # noqa: E402
from store_workload import load, run  # noqa: E402

KINDS = {
    "agent": (AgentSession, SessionType.AGENT),
    "team": (TeamSession, SessionType.TEAM),
    "workflow": (WorkflowSession, SessionType.WORKFLOW),
}


def main(data_path: str, url: str) -> None:
    if url.startswith("mongodb"):
        from urllib.parse import urlsplit, urlunsplit

        from agno.db.mongo import MongoDb

        parts = urlsplit(url)
        db = MongoDb(db_url=urlunsplit(parts._replace(path="/")), db_name=parts.path.strip("/"))
    elif url.startswith("sqlite"):
        from agno.db.sqlite import SqliteDb

        db = SqliteDb(db_file=url.split("///", 1)[1])
    else:
        from agno.db.postgres import PostgresDb

        db = PostgresDb(db_url=url, db_schema="ai")
    sessions = load(data_path)

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

    print(
        json.dumps(
            run(
                {
                    "upsert_session": upsert_session,
                    "upsert_run": upsert_run,
                    "get_session": get_session,
                    "get_page": get_page,
                },
                sessions,
            )
        )
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
