"""Runs INSIDE the reference Agno 3.1.10 environment (tests/agno_side/env.py): checks every Agno table type of an upgraded database with Agno's own Db classes, or runs
Agno's own ``MigrationManager(db).up()`` on it.

    python agno_tables.py verify  REQUEST.json RESULT.json
    python agno_tables.py migrate REQUEST.json RESULT.json

REQUEST: {"db": {"backend": "sqlite", "path"} | {"backend": "postgresql", "url", "schema"}
               | {"backend": "mysql", "url", "schema"} | {"backend": "mongodb", "url", "db_name"},
          "expected": a pack's expected.tables*.json (decompressed), "write": true}

verify: for every table type of the expected file, the rows Agno's public getters return (culture,
which 3.1.10 no longer has, straight from its table) are compared with the expected rows: every id
present once, no other id, and each compared field's value equal to the expected one (the pack
stores a short SHA-256 per field of the value in its documented canonical form, which ``canonical``
below computes: enums as values, times as epoch seconds, JSON text decoded, ...). Then, after every
read, one new row per table type is written with Agno's public write methods and read back.
Anything Agno raises, or only logs at ERROR level, is an error of that table type.
RESULT: {"types": {type: {"expected", "found", "mismatches": [...], "errors": [...], "written"}},
         "mismatches": M, "errors": E, "agno": version}

migrate: ``MigrationManager(db).up()`` (every table type); RESULT: {"errors": [...]} (raised or logged).

Standard library only at import (Agno is imported where it is used): the test-suite imports
``canonical``/``field_digest``/``IDS`` from here for MariaDB's SQL-level comparison.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import decimal
import enum
import hashlib
import inspect
import json
import logging
import re
import sys
import time
import uuid
from importlib.metadata import version
from typing import Any

MANY = 1_000_000  # a page size that lists every row at once
PROBE = "probe-"  # ids of the rows this script writes start with it

# --- Agno's errors: raised, or only logged ----------------------------------------------------------


class ErrorLog(logging.Handler):
    """Collects what Agno logs at ERROR and above (Agno logs many failures and returns None)."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage().splitlines()[0][:200] if record.getMessage() else record.msg)

    def since(self, mark: int) -> list[str]:
        return sorted(set(self.messages[mark:]))


def hook_agno_loggers() -> ErrorLog:
    handler = ErrorLog()
    import agno.utils.log  # noqa: F401  (creates Agno's loggers)

    names = [n for n in logging.Logger.manager.loggerDict if n.startswith("agno")] + ["agno"]
    for name in set(names):
        logger = logging.getLogger(name)
        logger.handlers = [handler]  # Agno's console handler out: the result file says it all
        logger.propagate = False
    return handler


def open_db(spec: dict):
    backend = spec["backend"]
    if backend == "sqlite":
        from agno.db.sqlite import SqliteDb

        return SqliteDb(db_file=spec["path"])
    if backend == "postgresql":
        from agno.db.postgres import PostgresDb

        return PostgresDb(db_url=spec["url"], db_schema=spec.get("schema") or "ai")
    if backend == "mysql":
        from agno.db.mysql import MySQLDb

        return MySQLDb(db_url=spec["url"], db_schema=spec["schema"])
    if backend == "mongodb":
        from agno.db.mongo import MongoDb

        return MongoDb(db_url=spec["url"], db_name=spec["db_name"])
    raise SystemExit(f"unsupported backend {backend!r}")


# --- the pack's canonical form of a value (documented in its expected files' meta) -------------------

TIMES = ("created_at", "updated_at", "start_time", "end_time")
ISO_TIME = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d+)?)?([+-]\d\d:?\d\d|Z)?")


def epoch(moment: dt.datetime) -> int | float:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    seconds = moment.timestamp()
    return int(seconds) if seconds == int(seconds) else round(seconds, 6)


def as_fields(record: Any) -> dict | None:
    """An Agno record (pydantic model, dataclass, SQLAlchemy row, dict) as a dict of its fields."""
    if record is None or isinstance(record, dict):
        return record
    if hasattr(record, "_mapping"):
        return dict(record._mapping)
    if hasattr(record, "keys") and hasattr(record, "__getitem__"):  # RowMapping and other mappings
        return {k: record[k] for k in record.keys()}
    if hasattr(record, "model_dump"):
        return record.model_dump()
    if dataclasses.is_dataclass(record):
        return {f.name: getattr(record, f.name) for f in dataclasses.fields(record)}
    if hasattr(record, "to_dict"):
        return record.to_dict()
    return dict(vars(record))


def decoded_json(text: str) -> tuple[bool, Any]:
    """(True, value) when ``text`` is JSON text of an object or array, or of a string holding one."""
    stripped = text.strip()
    looks = (stripped[:1], stripped[-1:]) in {("{", "}"), ("[", "]"), ("[", "}"), ("{", "]")}
    if looks or stripped[:2] in ('"{', '"['):
        try:
            return True, json.loads(stripped)
        except ValueError:
            pass
    return False, None


def canonical(value: Any, key: str | None = None, depth: int = 0) -> Any:
    if isinstance(value, enum.Enum):
        value = value.value
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, dt.datetime):
        return epoch(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, (decimal.Decimal, float)):
        number = float(value)
        return int(number) if number.is_integer() and abs(number) < 2**53 else number
    if isinstance(value, int):
        return int(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, str):
        if depth < 3:
            is_json, inner = decoded_json(value)
            if is_json:
                return canonical(inner, key, depth + 1)
        if (key in TIMES or (key or "").endswith("_time")) and ISO_TIME.fullmatch(value.strip()):
            try:
                return epoch(dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00")))
            except ValueError:
                pass
        return value
    if isinstance(value, dict):
        return {str(k): canonical(v, str(k), depth) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [canonical(v, None, depth) for v in value]
    if type(value).__name__ == "ObjectId":
        return str(value)
    if hasattr(value, "model_dump") or dataclasses.is_dataclass(value):
        return canonical(as_fields(value), key, depth)
    return str(value)


def field_digest(value: Any, key: str) -> str:
    text = json.dumps(canonical(value, key), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


# --- reading every table type through Agno's public getters -----------------------------------------

IDS = {  # table type: the fields naming a row (joined with "|" in the expected file)
    "sessions": ("session_id",), "memories": ("memory_id",), "evals": ("run_id",), "knowledge": ("id",),
    "metrics": ("id",), "culture": ("id",), "traces": ("trace_id",), "spans": ("span_id",),
    "learnings": ("learning_id",), "approvals": ("id",), "schedules": ("id",), "schedule_runs": ("id",),
    "components": ("component_id",), "component_configs": ("component_id", "version"),
    "component_links": ("parent_component_id", "parent_version", "link_kind", "link_key"),
    "auth_tokens": ("provider", "user_id", "service"), "service_accounts": ("id",),
}  # fmt: skip


def row_key(ttype: str, row: dict) -> str:
    return "|".join(str(canonical(row.get(k), k)) for k in IDS[ttype])


def listed(result: Any) -> list:
    """A getter's rows: Agno returns a list, or (list, total count)."""
    if result is None:
        return []
    return list(result[0] or []) if isinstance(result, tuple) else list(result)


def with_known_args(method, *args, **kwargs):
    """Call ``method`` with only the keyword arguments it takes."""
    params = inspect.signature(method).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        kwargs = {k: v for k, v in kwargs.items() if k in params}
    return method(*args, **kwargs)


def read_sessions(db, _table) -> list[dict]:
    from agno.db.base import SessionType

    rows = []
    for kind in (SessionType.AGENT, SessionType.TEAM, SessionType.WORKFLOW):
        for session in listed(db.get_sessions(session_type=kind, limit=MANY)):
            full = db.get_session(session_id=session.session_id, session_type=kind) or session
            row = as_fields(full)
            row["runs"] = [
                {"run_id": canonical(as_fields(r).get("run_id")), "content": canonical(as_fields(r).get("content"))}
                for r in row.get("runs") or []
            ]
            row["session_type"] = kind.value
            rows.append(row)
    return rows


def read_culture(db, table) -> list[dict]:
    """Agno 3.1.10 has no culture getter: the table as it is."""
    if hasattr(db, "database"):  # MongoDb
        return [{k: v for k, v in d.items() if k != "_id"} for d in db.database[table].find()]
    import sqlalchemy as sa

    schema = getattr(db, "db_schema", None) if db.db_engine.dialect.name != "sqlite" else None
    with db.db_engine.connect() as conn:
        t = sa.Table(table, sa.MetaData(), autoload_with=conn, schema=schema)
        return [dict(r._mapping) for r in conn.execute(sa.select(t))]


def read_schedule_runs(db, _table) -> list[dict]:
    rows = []
    for schedule in read_listing(db.get_schedules, limit=MANY, page=1):
        rows += read_listing(db.get_schedule_runs, schedule["id"], limit=MANY, page=1)
    return rows


def read_configs(db, _table) -> list[dict]:
    rows = []
    for component in read_listing(db.list_components, limit=MANY, offset=0):
        rows += [as_fields(c) for c in db.list_configs(component["component_id"], include_config=True) or []]
    return rows


def read_links(db, table) -> list[dict]:
    rows = []
    for config in read_configs(db, table):
        rows += [as_fields(link) for link in db.get_links(config["component_id"], config["version"]) or []]
    return rows


def read_listing(method, *args, **kwargs) -> list[dict]:
    return [as_fields(r) for r in listed(with_known_args(method, *args, **kwargs))]


def readers(db, expected: dict) -> dict:
    auth_keys = expected.get("auth_tokens", {}).get("keys") or []
    return {
        "sessions": lambda t: read_sessions(db, t),
        "memories": lambda t: read_listing(db.get_user_memories, limit=None),
        "evals": lambda t: read_listing(db.get_eval_runs, deserialize=False),
        "knowledge": lambda t: read_listing(db.get_knowledge_contents),
        "metrics": lambda t: read_listing(db.get_metrics),
        "culture": lambda t: read_culture(db, t),
        "traces": lambda t: read_listing(db.get_traces, limit=MANY, page=1),
        "spans": lambda t: read_listing(db.get_spans, limit=MANY),
        "learnings": lambda t: read_listing(db.get_learnings, limit=MANY),
        "approvals": lambda t: read_listing(db.get_approvals, limit=MANY, page=1),
        "schedules": lambda t: read_listing(db.get_schedules, limit=MANY, page=1),
        "schedule_runs": lambda t: read_schedule_runs(db, t),
        "components": lambda t: read_listing(db.list_components, limit=MANY, offset=0),
        "component_configs": lambda t: read_configs(db, t),
        "component_links": lambda t: read_links(db, t),
        "auth_tokens": lambda t: [
            as_fields(r) for r in (db.get_auth_token(*key) for key in auth_keys) if r is not None
        ],
        "service_accounts": lambda t: read_listing(db.get_service_accounts, include_revoked=True, limit=MANY, page=1),
    }


def compare(ttype: str, table: dict, rows: list[dict]) -> tuple[int, list[str]]:
    """(rows found, mismatches) of what Agno read against the expected table."""
    found: dict[str, dict] = {}
    problems = []
    for row in rows:
        key = row_key(ttype, row)
        if key.startswith(PROBE):
            continue
        if key in found:
            problems.append(f"{key}: listed twice")
        found[key] = row
    for key, want in table["rows"].items():
        row = found.get(key)
        if row is None:
            problems.append(f"{key}: missing")
            continue
        fields = [f for f in table["fields"] if f not in table.get("not_compared", {})]
        differing = [f for f in fields if field_digest(row.get(f), f) != want["fields"].get(f)]
        if differing:
            problems.append(f"{key}: {', '.join(differing)} differ")
    problems += [f"{key}: not expected" for key in sorted(set(found) - set(table["rows"]))]
    return len(found), problems


# --- one new row per table type, through Agno's public write methods --------------------------------


def write_one(db, ttype: str, made: dict):
    """Writes a new row of ``ttype``; returns a check that it reads back (None: nothing to write)."""
    from agno.db.base import ComponentType, SessionType

    new_id = f"{PROBE}{ttype}-{uuid.uuid4().hex[:8]}"
    now = int(time.time())
    moment = dt.datetime.now(dt.timezone.utc)
    if ttype == "sessions":
        from agno.run.agent import RunOutput
        from agno.session import AgentSession

        session = AgentSession(session_id=new_id, agent_id="probe-agent", user_id="probe-user", created_at=now,
                               updated_at=now, session_data={"session_state": {"probe": "ü"}})  # fmt: skip
        db.upsert_session(session)
        run = RunOutput(run_id=f"{new_id}-run", session_id=new_id, agent_id="probe-agent", content="probe ✓")
        db.upsert_run(run, session_id=new_id, user_id="probe-user")

        def back():
            got = db.get_session(new_id, SessionType.AGENT)
            return got is not None and [r.run_id for r in got.runs or []] == [f"{new_id}-run"]

        return back
    if ttype == "memories":
        from agno.db.schemas.memory import UserMemory

        db.upsert_user_memory(UserMemory(memory_id=new_id, memory="probe ✓", user_id="probe-user", topics=["p"]))
        return lambda: (db.get_user_memory(new_id) or UserMemory(memory="")).memory == "probe ✓"
    if ttype == "evals":
        from agno.db.schemas.evals import EvalRunRecord, EvalType

        db.create_eval_run(EvalRunRecord(run_id=new_id, eval_type=EvalType.PERFORMANCE, eval_data={"ms": 1}))
        return lambda: db.get_eval_run(new_id) is not None
    if ttype == "knowledge":
        from agno.db.schemas.knowledge import KnowledgeRow

        db.upsert_knowledge_content(KnowledgeRow(id=new_id, name="probe", description="probe row", created_at=now))
        return lambda: db.get_knowledge_content(new_id) is not None
    if ttype == "metrics":
        db.calculate_metrics()
        return lambda: len(listed(db.get_metrics())) > 0
    if ttype in ("traces", "spans"):
        from agno.tracing.schemas import Span, Trace

        if "trace" not in made:
            made["trace"] = f"{new_id}-trace"
            db.upsert_trace(Trace(trace_id=made["trace"], name="probe", status="OK", start_time=moment,
                                  end_time=moment, duration_ms=0, total_spans=0, error_count=0, run_id=None,
                                  session_id=None, user_id=None, agent_id="probe-agent", team_id=None,
                                  workflow_id=None, created_at=moment))  # fmt: skip
        if ttype == "traces":
            return lambda: db.get_trace(trace_id=made["trace"]) is not None
        db.create_span(Span(span_id=new_id, trace_id=made["trace"], parent_span_id=None, name="probe",
                            span_kind="INTERNAL", status_code="OK", status_message=None, start_time=moment,
                            end_time=moment, duration_ms=0, attributes={"probe": 1}, created_at=moment))  # fmt: skip
        return lambda: db.get_span(new_id) is not None
    if ttype == "learnings":
        db.upsert_learning(id=new_id, learning_type="user_profile", content={"probe": "✓"}, user_id="probe-user")
        return lambda: db.get_learning_by_id(new_id) is not None
    if ttype == "approvals":
        db.create_approval({"id": new_id, "run_id": new_id, "session_id": new_id, "status": "pending",
                            "source_type": "agent", "pause_type": "confirmation", "created_at": now})  # fmt: skip
        return lambda: db.get_approval(new_id) is not None
    if ttype in ("schedules", "schedule_runs"):
        if "schedule" not in made:
            made["schedule"] = f"{new_id}-schedule"
            db.create_schedule({"id": made["schedule"], "name": made["schedule"], "method": "POST",
                                "endpoint": "/agents/probe/runs", "cron_expr": "*/5 * * * *", "timezone": "UTC",
                                "timeout_seconds": 30, "max_retries": 1, "retry_delay_seconds": 5,
                                "enabled": False, "created_at": now})  # fmt: skip
        if ttype == "schedules":
            return lambda: db.get_schedule(made["schedule"]) is not None
        db.create_schedule_run(
            {"id": new_id, "schedule_id": made["schedule"], "attempt": 1, "status": "success", "created_at": now}
        )
        return lambda: db.get_schedule_run(new_id) is not None
    if ttype in ("components", "component_configs", "component_links"):
        if "component" not in made:
            made["component"] = f"{new_id}-agent"
            db.create_component_with_config(component_id=made["component"], component_type=ComponentType.AGENT,
                                            name=made["component"], config={"model": "probe"})  # fmt: skip
        if ttype == "components":
            return lambda: db.get_component(made["component"]) is not None
        if ttype == "component_configs":
            db.upsert_config(made["component"], config={"model": "probe-2"}, label="probe")
            return lambda: len(db.list_configs(made["component"])) == 2
        db.create_component_with_config(
            component_id=new_id, component_type=ComponentType.TEAM, name=new_id, config={"members": 1},
            links=[{"link_kind": "member", "link_key": "m0", "child_component_id": made["component"],
                    "child_version": 1, "position": 0}],
        )  # fmt: skip
        return lambda: len(db.get_links(new_id, 1)) == 1
    if ttype == "auth_tokens":
        if (
            db.upsert_auth_token({"provider": "probe", "user_id": new_id, "service": "mail", "token_data": {"t": 1}})
            is None
        ):
            raise RuntimeError("upsert_auth_token returned None")
        return lambda: db.get_auth_token("probe", new_id, "mail") is not None
    if ttype == "service_accounts":
        db.create_service_account({"id": new_id, "name": new_id, "token_hash": uuid.uuid4().hex,
                                   "token_prefix": "agno_p", "scopes": ["probe"], "created_at": now})  # fmt: skip
        return lambda: db.get_service_account(new_id) is not None
    return None  # culture: no 3.1.10 writer


def first_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:200]}"


def verify(db, expected: dict, write: bool, log: ErrorLog) -> dict:
    tables = expected["tables"]
    read = readers(db, tables)
    report = {}
    for ttype, table in tables.items():
        entry = report[ttype] = {"expected": table["count"], "found": None, "mismatches": [], "errors": []}
        mark = len(log.messages)
        try:
            rows = read[ttype](table["table"])
        except Exception as exc:
            entry["errors"].append(f"read: {first_line(exc)}")
        else:
            entry["found"], entry["mismatches"] = compare(ttype, table, rows)
        entry["errors"] += [f"read: Agno logged: {m}" for m in log.since(mark)]
    made: dict = {}
    for ttype, table in tables.items():  # writes after every read: no probe row in another type's listing
        entry = report[ttype]
        if not write:
            continue
        mark = len(log.messages)
        try:
            back = write_one(db, ttype, made)
            entry["written"] = back is not None
            if back is not None and not back():
                entry["errors"].append("write: the new row does not read back")
        except Exception as exc:
            entry["errors"].append(f"write: {first_line(exc)}")
        entry["errors"] += [f"write: Agno logged: {m}" for m in log.since(mark)]
        if entry["found"] == 0 and table["count"] and hasattr(db, "database"):
            # Agno's MongoDb lists a collection it has not used in this process as empty: read again
            entry["found"], entry["mismatches"] = compare(ttype, table, read[ttype](table["table"]))
            entry["note"] = "read again after the write (MongoDb: collection unused in this process lists empty)"
    return {
        "types": report,
        "mismatches": sum(len(e["mismatches"]) for e in report.values()),
        "errors": sum(len(e["errors"]) for e in report.values()),
        "agno": version("agno"),
    }


def migrate(db, log: ErrorLog) -> dict:
    from agno.db.migrations.manager import MigrationManager

    errors = []
    try:
        asyncio.run(MigrationManager(db).up())
    except Exception as exc:
        errors.append(first_line(exc))
    return {"errors": errors + [f"Agno logged: {m}" for m in log.since(0)], "agno": version("agno")}


def main(action: str, request_path: str, result_path: str) -> None:
    with open(request_path, encoding="utf-8") as f:
        request = json.load(f)
    log = hook_agno_loggers()
    db = open_db(request["db"])
    if action == "verify":
        with open(request["expected"], encoding="utf-8") as f:
            expected = json.load(f)
        result = verify(db, expected, request.get("write", True), log)
    elif action == "migrate":
        result = migrate(db, log)
    else:
        raise SystemExit(f"unknown action {action!r}")
    with open(result_path, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1, ensure_ascii=False)
    for ttype, entry in result.get("types", {}).items():
        state = "ok" if not entry["mismatches"] and not entry["errors"] else "FAIL"
        print(f"{ttype}: {state} {entry['found']}/{entry['expected']}", *entry["mismatches"][:5], *entry["errors"])
    print(
        f"{result.get('mismatches', 0)} mismatches, {len(result['errors']) if action == 'migrate' else result['errors']} errors"
    )


if __name__ == "__main__":
    main(*sys.argv[1:4])
