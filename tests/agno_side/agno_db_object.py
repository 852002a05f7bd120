"""Runs INSIDE the real Agno 3.1.10 venv with agno-migrate on PYTHONPATH (never imported by the
test-suite): builds an Agno ``Db`` object with the given table names, hands it to agno-migrate
(``upgrade(db)``, ``check(db)``, ``current(db)``), then uses it as an Agno application would (sessions
and memories through the same object). Prints one JSON object.

    python agno_db_object.py '{"backend": "sqlite", "url": "sqlite:///x.db", "schema": null,
                               "tables": {"session_table": "app_sessions", "memory_table": "app_memories"}}'
"""

from __future__ import annotations

import json
import sys
import time
import traceback
import uuid


def make_db(spec: dict):
    tables = spec.get("tables", {})
    backend = spec["backend"]
    if backend == "sqlite":
        from agno.db.sqlite import SqliteDb

        return SqliteDb(db_url=spec["url"], **tables)
    if backend == "postgresql":
        from agno.db.postgres import PostgresDb

        return PostgresDb(db_url=spec["url"], db_schema=spec["schema"], **tables)
    if backend == "mysql":
        from agno.db.mysql import MySQLDb

        return MySQLDb(db_url=spec["url"], db_schema=spec["schema"], **tables)
    from agno.db.mongo import MongoDb

    collections = {k.replace("_table", "_collection"): v for k, v in tables.items()}  # MongoDb's words
    return MongoDb(db_url=spec["url"], db_name=spec["schema"], **collections)


def error(exc: BaseException) -> dict:
    return {"type": type(exc).__name__, "message": str(exc), "exit_code": getattr(exc, "exit_code", None)}


def main() -> int:
    spec = json.loads(sys.argv[1])
    import agno_migrate

    out: dict = {}
    db = make_db(spec)
    try:
        outcome = agno_migrate.upgrade(db)
        out["upgrade"] = {"after": outcome.after, "database": outcome.as_dict().get("database")}
    except Exception as exc:
        out["upgrade_error"] = error(exc)
    try:
        status = agno_migrate.check(db)
        out["check"] = {"version": status.version, "tables": {t.family: [t.name, t.found_by] for t in status.tables}}
    except Exception as exc:
        out["check_error"] = error(exc)

    # the application, on the same object
    from agno.db.schemas.memory import UserMemory
    from agno.session import AgentSession

    app: dict = {}
    try:
        before = db.get_user_memories()
        app["memories_before"] = len(before)
        sid = f"s-{uuid.uuid4().hex[:8]}"
        db.upsert_session(
            AgentSession(
                session_id=sid, agent_id="agent-1", user_id="u-1", session_data={"k": 1}, created_at=int(time.time())
            )
        )
        read = db.get_session(session_id=sid, session_type=agno_session_type())
        app["session_read"] = read is not None and read.session_id == sid
        db.upsert_user_memory(UserMemory(memory="likes green tea", memory_id=f"m-{sid}", user_id="u-1", topics=["tea"]))
        after = db.get_user_memories()
        app["memories_after"] = len(after)
        app["memory_read"] = any(m.memory == "likes green tea" for m in after)
    except Exception as exc:
        app["error"] = error(exc)
        app["traceback"] = traceback.format_exc()[-3000:]
    out["app"] = app
    try:
        status = agno_migrate.check(db)  # the tables Agno created meanwhile are at head too
        out["check_after_app"] = {t.family: [t.name, t.found_by, t.at_head] for t in status.tables}
        out["database"] = status.target.masked_url
        out["missing"] = status.missing_tables
    except Exception as exc:
        out["check_after_app_error"] = error(exc)
    print(json.dumps(out, default=str))
    return 0


def agno_session_type():
    from agno.db.base import SessionType

    return SessionType.AGENT


if __name__ == "__main__":
    sys.exit(main())
