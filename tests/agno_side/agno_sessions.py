"""Runs INSIDE the real Agno 3.1.10 venv (never imported by the test-suite): reads or writes
sessions with Agno's own SqliteDb / PostgresDb / MongoDb and exchanges plain JSON through files.

    python agno_sessions.py read  REQUEST.json RESULT.json
    python agno_sessions.py write REQUEST.json RESULT.json

REQUEST: {"db": {"backend": "sqlite", "path": ...} | {"backend": "postgresql", "url": ..., "schema": "ai"}
                | {"backend": "mongodb", "url": ..., "db_name": ...}, "sessions": [...]}
read:  "sessions" is [{"session_id", "session_type"}]; RESULT holds, for each, what Agno's
       get_session(session_id, session_type=SessionType.X) gives, plus every get_sessions(session_type=X)
       listing, plus the agent sessions' get_messages() (all runs and last_n_runs=1).
write: "sessions" are session dicts (Agno's to_dict shape, "session_type" saying the class, runs as
       dicts); each is built with Agno's classes (AgentSession/TeamSession/WorkflowSession.from_dict, runs
       as RunOutput/TeamRunOutput/WorkflowRunOutput.from_dict), written with upsert_session, then each run
       with upsert_run(run, session_id, user_id, run_index=i). RESULT holds the run dicts Agno wrote and,
       as for read, Agno's own read-back of every session ("read_back" = "get_session") and messages.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from agno.db.base import SessionType
from agno.run.agent import RunOutput
from agno.run.team import TeamRunOutput
from agno.run.workflow import WorkflowRunOutput
from agno.session import AgentSession, TeamSession, WorkflowSession

SESSION_CLASSES = {"agent": AgentSession, "team": TeamSession, "workflow": WorkflowSession}
RUN_CLASSES = {"agent": RunOutput, "team": TeamRunOutput, "workflow": WorkflowRunOutput}


def open_db(spec: dict):
    if spec["backend"] == "sqlite":
        from agno.db.sqlite import SqliteDb

        return SqliteDb(db_file=spec["path"])
    if spec["backend"] == "postgresql":
        from agno.db.postgres import PostgresDb

        return PostgresDb(db_url=spec["url"], db_schema=spec.get("schema", "ai"))
    if spec["backend"] == "mongodb":
        from agno.db.mongo import MongoDb

        return MongoDb(
            db_url=spec["url"], db_name=spec["db_name"], session_collection="agno_sessions", runs_collection="agno_runs"
        )
    raise SystemExit(f"unsupported backend {spec['backend']!r}")


def plain(value: Any) -> Any:
    """JSON-safe copy (enums and other objects as their str)."""
    return json.loads(json.dumps(value, default=lambda o: getattr(o, "value", None) or str(o)))


def message_view(message) -> dict:
    return {"role": message.role, "content": message.content, "from_history": bool(message.from_history)}


def run_view(run) -> dict:
    status = getattr(run, "status", None)
    return {
        "class": type(run).__name__,
        "run_id": run.run_id,
        "content": run.content,
        "status": getattr(status, "value", status),
        "parent_run_id": getattr(run, "parent_run_id", None),
        "messages": [message_view(m) for m in (getattr(run, "messages", None) or [])],
    }


def session_view(session) -> dict:
    data = session.session_data or {}
    summary = getattr(session, "summary", None)
    return {
        "class": type(session).__name__,
        "session_id": session.session_id,
        "user_id": session.user_id,
        "agent_id": getattr(session, "agent_id", None),
        "team_id": getattr(session, "team_id", None),
        "workflow_id": getattr(session, "workflow_id", None),
        "session_data": plain(session.session_data),
        "session_state": plain(data.get("session_state")),
        "session_name": data.get("session_name"),
        "agent_data": plain(getattr(session, "agent_data", None)),
        "team_data": plain(getattr(session, "team_data", None)),
        "workflow_data": plain(getattr(session, "workflow_data", None)),
        "metadata": plain(session.metadata),
        "summary": plain(summary.to_dict()) if summary is not None else None,
        "created_at": session.created_at,
        "updated_at": session.updated_at,
        "runs": [run_view(r) for r in (session.runs or [])],
    }


def do_read(db, request: dict) -> dict:
    out: dict = {"get_session": {}, "get_sessions": {}, "messages": {}, "messages_last_1": {}}
    for item in request["sessions"]:
        kind = SessionType(item["session_type"])
        session = db.get_session(item["session_id"], session_type=kind)
        out["get_session"][item["session_id"]] = None if session is None else session_view(session)
        if session is not None and item["session_type"] == "agent":
            out["messages"][item["session_id"]] = [message_view(m) for m in session.get_messages()]
            out["messages_last_1"][item["session_id"]] = [message_view(m) for m in session.get_messages(last_n_runs=1)]
    for kind in SessionType:
        listed = db.get_sessions(session_type=kind) or []
        out["get_sessions"][kind.value] = [session_view(s) for s in listed]
    return out


def do_write(db, request: dict) -> dict:
    written: dict = {}
    for spec in request["sessions"]:
        kind = spec["session_type"]
        body = {k: v for k, v in spec.items() if k not in ("session_type", "runs")}
        session = SESSION_CLASSES[kind].from_dict(body)
        runs = []
        for run in spec.get("runs") or []:
            run_kind = "agent" if run.get("agent_id") else "team" if run.get("team_id") else "workflow"
            runs.append(RUN_CLASSES[run_kind].from_dict(run))
        session.runs = runs
        db.upsert_session(session)
        for index, run in enumerate(runs):
            db.upsert_run(run, session_id=session.session_id, user_id=session.user_id, run_index=index)
        written[session.session_id] = {"runs": [plain(r.to_dict()) for r in runs]}
    result = do_read(
        db,
        {"sessions": [{"session_id": s["session_id"], "session_type": s["session_type"]} for s in request["sessions"]]},
    )
    result["written"] = written
    result["read_back"] = result["get_session"]
    return result


def main(argv: list[str]) -> int:
    mode, request_path, result_path = argv
    with open(request_path, encoding="utf-8") as fh:
        request = json.load(fh)
    db = open_db(request["db"])
    result = do_read(db, request) if mode == "read" else do_write(db, request)
    from importlib.metadata import version

    import agno  # noqa: F401

    result["agno_version"] = version("agno")
    with open(result_path, "w", encoding="utf-8") as fh:
        json.dump(result, fh, ensure_ascii=False)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
