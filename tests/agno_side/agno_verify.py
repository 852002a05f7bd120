"""Runs INSIDE the reference Agno 3.1.10 environment (tests/agno_side/env.py; never imported by the
test-suite): reads every session of an upgraded database with Agno's own SqliteDb / PostgresDb /
MySQLDb / MongoDb and compares what Agno returns with a fixture's expected file.

    python agno_verify.py --db (FILE | sqlite:///FILE | postgresql+psycopg://... | mysql+pymysql://... | mongodb://...)
        --expected tests/fixtures/POINT/expected*.jsonl[.xz] [--schema S] [--session-table T] [--runs-table R]
        [--ignore CATEGORY,...] [--sample N] [--report FILE.json]

The expected file (written by the fixture generator) is one JSON object per line, the first one
``{"meta": ...}``; then per session its id, type, user, entity id, timestamps, session state and name,
session metrics, metadata, summary text, and its runs in order, each with its id, a hash of its
content, its messages as [role, hash of the text, length of the text, number of tool calls], its
token metrics, tool names, status, and (team runs) the number of member responses.

Agno reads every session twice: through ``get_sessions`` (each session type, pages sorted by
session_id) and through ``get_session`` (every session, or ``--sample N`` of them). Each read is
reduced to the same plain *view* as the expected record; a view differing from the expected one is a
mismatch of the field's category:

  missing, extra          a session expected but not listed / listed but not expected
  session_type, user_id, entity_id, created_at, updated_at
                          (timestamps as stored: Agno's WorkflowSession puts "now" in place of a
                          NULL, so for workflows the row Agno lists raw is read too)
  session_state, session_name, session_metrics, metadata, summary
  runs                    the run ids Agno returns, in order
  run_content, messages, run_metrics, tools, run_status, parent_run_id, member_responses
  json_encoding           a JSON value came back as a JSON *string* (compared decoded otherwise)
  read_paths              get_session and get_sessions disagree
  agno_error              Agno raised while reading the session

Last line: ``verified X/Y sessions, Z mismatches`` (Z: sessions with any mismatch, plus unexpected
sessions); exit 0 only when Z is 0. ``--ignore`` leaves categories out (on MariaDB, Agno returns its
JSON columns as strings whatever is stored: ``--ignore json_encoding`` there).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import lzma
import random
import sys
import time
from collections import defaultdict
from importlib.metadata import version
from typing import Any

from agno.db.base import SessionType

KINDS = {"agent": SessionType.AGENT, "team": SessionType.TEAM, "workflow": SessionType.WORKFLOW}
CLASS_KIND = {"AgentSession": "agent", "TeamSession": "team", "WorkflowSession": "workflow"}
TOKENS = ("input_tokens", "output_tokens", "total_tokens")
SESSION_FIELDS = (
    "session_type", "user_id", "entity_id", "created_at", "updated_at", "session_state", "session_name",
    "session_metrics", "metadata", "summary",
)  # fmt: skip
RUN_FIELDS = {  # category: key of the run view
    "run_content": "content",
    "messages": "messages",
    "run_metrics": "metrics",
    "tools": "tools",
    "run_status": "status",
    "parent_run_id": "parent_run_id",
    "member_responses": "member_responses",
}


# --- the expected file's digests -------------------------------------------------------------------


def text_of(value: Any) -> str | None:
    """A content as text: strings as they are, anything else as canonical JSON."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def digest(value: Any) -> str:
    """The expected file's hash of a text: 20 hex digits of its SHA-256 ("none" for no text)."""
    text = text_of(value)
    if text is None:
        return "none"
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:20]


# --- what Agno returned, as a plain view ------------------------------------------------------------


def field(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


def unwrap(value: Any) -> tuple[Any, bool]:
    """A JSON value Agno may hand back still encoded (a string holding JSON): (decoded, was it a string)."""
    encoded = False
    while isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            break
        encoded = True
    return value, encoded


def plain(value: Any) -> Any:
    """A JSON-comparable copy; empty containers count as absent (Agno turns None into {} on some paths)."""
    if value in (None, {}, []):
        return None
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def tokens(metrics: Any) -> dict | None:
    if metrics is None:
        return None
    if not isinstance(metrics, dict):
        metrics = metrics.to_dict() if hasattr(metrics, "to_dict") else vars(metrics)
    if not metrics:
        return None
    return {k: int(v) if isinstance(v, (int, float)) else v for k, v in ((k, metrics.get(k)) for k in TOKENS)}


def message_digest(message: Any) -> list:
    text = text_of(field(message, "content"))
    return [
        field(message, "role"),
        digest(text),
        -1 if text is None else len(text),
        len(field(message, "tool_calls") or []),
    ]


def run_view(run: Any) -> dict:
    status = field(run, "status")
    members = field(run, "member_responses")
    return {
        "run_id": field(run, "run_id"),
        "content": digest(field(run, "content")),
        "messages": [message_digest(m) for m in field(run, "messages") or []],
        "metrics": tokens(field(run, "metrics")),
        "tools": [field(t, "tool_name") for t in field(run, "tools") or []],
        "status": getattr(status, "value", status),
        "parent_run_id": field(run, "parent_run_id"),
        "member_responses": None if members is None else len(members),
        # a member response names its team run, if anything
        "member_parents_ok": all(field(m, "parent_run_id") in (None, field(run, "run_id")) for m in members or []),
    }


def session_view(session: Any) -> dict:
    kind = CLASS_KIND.get(type(session).__name__, type(session).__name__)
    encoded = []
    data, was_str = unwrap(session.session_data)
    if was_str:
        encoded.append("session_data")
    data = data if isinstance(data, dict) else {}
    metadata, was_str = unwrap(session.metadata)
    if was_str and metadata is not None:
        encoded.append("metadata")
    summary, was_str = unwrap(getattr(session, "summary", None))
    if was_str and summary is not None:
        encoded.append("summary")
    if summary is not None and not isinstance(summary, str):
        summary = field(summary, "summary")
    return {
        "session_type": kind,
        "user_id": session.user_id,
        "entity_id": getattr(session, f"{kind}_id", None),
        "created_at": session.created_at,
        "updated_at": session.updated_at,
        "session_state": plain(data.get("session_state")),
        "session_name": data.get("session_name"),
        "session_metrics": tokens(data.get("session_metrics")),
        "metadata": plain(metadata),
        "summary": summary,
        "json_encoding": encoded,
        "runs": [run_view(r) for r in session.runs or []],
    }


def expected_view(record: dict) -> dict:
    return {
        "session_type": record["session_type"],
        "user_id": record.get("user_id"),
        "entity_id": record.get("entity_id"),
        "created_at": record.get("created_at"),
        "updated_at": record.get("updated_at"),
        "session_state": plain(record.get("session_state")),
        "session_name": record.get("session_name"),
        "session_metrics": record.get("session_metrics"),
        "metadata": plain(record.get("metadata")),
        "summary": record.get("summary"),
        "json_encoding": [],
        "runs": [
            {
                "run_id": r["run_id"],
                "content": r["content_sha"],
                "messages": r["messages"],
                "metrics": r.get("metrics"),
                "tools": r.get("tool_names") or [],
                "status": r.get("status"),
                "parent_run_id": r.get("parent_run_id"),
                "member_responses": r.get("member_responses"),
                "member_parents_ok": True,
            }
            for r in record.get("runs") or []
        ],
    }


# --- comparing ---------------------------------------------------------------------------------------


class Findings:
    """Mismatching sessions per category, with a few examples each."""

    def __init__(self, ignore: set[str], examples: int = 5):
        self.ignore = ignore
        self.max_examples = examples
        self.categories: dict[str, set[str]] = defaultdict(set)
        self.examples: dict[str, list[str]] = defaultdict(list)

    def add(self, category: str, session_id: str, detail: str) -> None:
        if category in self.ignore or session_id in self.categories[category]:
            return
        self.categories[category].add(session_id)
        if len(self.examples[category]) < self.max_examples:
            self.examples[category].append(f"{session_id}: {detail}")

    def sessions(self) -> set[str]:
        return set().union(*self.categories.values()) if self.categories else set()


def brief(value: Any, limit: int = 150) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def compare(found: Findings, sid: str, want: dict, got: dict) -> None:
    """Record every category in which Agno's view ``got`` differs from the expected ``want``."""
    if got["json_encoding"]:
        found.add("json_encoding", sid, f"{', '.join(got['json_encoding'])} came back as a JSON string")
    for name in SESSION_FIELDS:
        if got[name] != want[name]:
            found.add(name, sid, f"expected {brief(want[name])}, Agno read {brief(got[name])}")
    want_ids = [r["run_id"] for r in want["runs"]]
    got_ids = [r["run_id"] for r in got["runs"]]
    if want_ids != got_ids:
        found.add("runs", sid, f"expected {len(want_ids)} runs {brief(want_ids, 80)}, Agno read {brief(got_ids, 80)}")
    got_by_id = {r["run_id"]: r for r in got["runs"]}
    for w in want["runs"]:
        g = got_by_id.get(w["run_id"])
        if g is None:
            continue
        for category, key in RUN_FIELDS.items():
            if key == "member_responses" and w[key] is None:
                continue  # the expected file counts member responses of team runs only
            if key == "metrics" and w[key] is None:
                continue  # no metrics expected: Agno may fill its own zeros
            if g[key] != w[key]:
                found.add(category, sid, f"run {w['run_id']}: expected {brief(w[key])}, Agno read {brief(g[key])}")
        if not g["member_parents_ok"]:
            found.add("parent_run_id", sid, f"run {w['run_id']}: a member response names another parent run")


# --- reading ----------------------------------------------------------------------------------------


def open_db(args):
    tables = {"session_table": args.session_table, "runs_table": args.runs_table}
    url = args.db
    if url.startswith(("postgresql", "postgres://")):
        from agno.db.postgres import PostgresDb

        return PostgresDb(db_url=url, db_schema=args.schema or "ai", **tables)
    if url.startswith("mysql"):
        from agno.db.mysql import MySQLDb

        return MySQLDb(db_url=url, db_schema=args.schema, **tables)
    if url.startswith("mongodb"):
        from agno.db.mongo import MongoDb

        return MongoDb(
            db_url=url,
            db_name=args.schema or "agno",
            session_collection=args.session_table,
            runs_collection=args.runs_table,
        )
    from agno.db.sqlite import SqliteDb

    if url.startswith("sqlite"):
        return SqliteDb(db_url=url, **tables)
    return SqliteDb(db_file=url, **tables)


def read_expected(path: str) -> tuple[dict, dict[str, dict]]:
    opener = lzma.open if path.endswith(".xz") else open
    meta, records = {}, {}
    with opener(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            record = json.loads(line)
            if "meta" in record:
                meta = record["meta"]
            else:
                records[record["session_id"]] = record
    return meta, records


def listed_sessions(db, kind: SessionType, page_size: int, found: Findings):
    """Every session of one type through get_sessions, page by page: (session_id, session or None)."""
    page = 1
    while True:
        try:
            batch = db.get_sessions(
                session_type=kind, sort_by="session_id", sort_order="asc", limit=page_size, page=page
            )
            yield from ((s.session_id, s) for s in batch)
            count = len(batch)
        except Exception:  # Agno cannot build one of this page's sessions: take them one by one
            rows, _ = db.get_sessions(
                session_type=kind, sort_by="session_id", sort_order="asc", limit=page_size, page=page, deserialize=False
            )
            for row in rows:
                try:
                    yield row["session_id"], db.get_session(row["session_id"], session_type=kind)
                except Exception as exc:
                    found.add("agno_error", row["session_id"], f"{type(exc).__name__}: {exc}")
                    yield row["session_id"], None
            count = len(rows)
        if count < page_size:
            return
        page += 1


def raw_timestamps(db, kind: SessionType, page_size: int) -> dict[str, dict]:
    """created_at/updated_at as stored, for the sessions of one type (the raw listing, no objects)."""
    out, page = {}, 1
    while True:
        rows, _ = db.get_sessions(
            session_type=kind, sort_by="session_id", sort_order="asc", limit=page_size, page=page, deserialize=False
        )
        for row in rows:
            out[row["session_id"]] = {"created_at": row.get("created_at"), "updated_at": row.get("updated_at")}
        if len(rows) < page_size:
            return out
        page += 1


def verify(args) -> tuple[dict, Findings]:
    meta, expected = read_expected(args.expected)
    found = Findings({c for c in args.ignore.split(",") if c})
    db = open_db(args)
    started = time.time()
    views: dict[str, dict] = {}
    extra = []
    stored: dict[str, dict] = {}  # workflows' timestamps as stored: Agno's object fills a NULL with "now"
    for name, kind in KINDS.items():
        if name == "workflow":
            stored = raw_timestamps(db, kind, args.page_size)
        for sid, session in listed_sessions(db, kind, args.page_size, found):
            if sid in views or sid in extra:
                continue
            if sid not in expected:
                extra.append(sid)
                found.add("extra", sid, f"a {name} session not in the expected file")
                continue
            if session is None:
                views[sid] = {}
                continue
            views[sid] = {**session_view(session), **stored.get(sid, {})}
            compare(found, sid, expected_view(expected[sid]), views[sid])
    for sid in expected:
        if sid not in views:
            found.add("missing", sid, "not listed by get_sessions")

    # the second read path: get_session, on every session (or a sample)
    present = sorted(sid for sid, view in views.items() if view)
    if args.sample is not None and args.sample < len(present):
        present = sorted(random.Random(7).sample(present, args.sample))
    for sid in present:
        try:
            one = db.get_session(sid, session_type=KINDS[expected[sid]["session_type"]])
        except Exception as exc:
            found.add("agno_error", sid, f"get_session raised {type(exc).__name__}: {exc}")
            continue
        again = None if one is None else {**session_view(one), **stored.get(sid, {})}
        if again is None:
            found.add("read_paths", sid, "get_session returns None")
        elif again != views[sid]:
            diff = sorted(k for k, v in again.items() if v != views[sid].get(k))
            found.add("read_paths", sid, f"get_session and get_sessions differ in {', '.join(diff)}")

    bad = found.sessions()
    report = {
        "agno_version": version("agno"),
        "expected_meta": meta,
        "expected": len(expected),
        "listed": len(views) + len(extra),
        "read_twice": len(present),
        "verified": len(set(expected) - bad),
        "mismatching_sessions": len(bad),
        "categories": {c: len(s) for c, s in sorted(found.categories.items())},
        "examples": dict(found.examples),
        "session_ids": {c: sorted(s)[:100] for c, s in sorted(found.categories.items())},  # the first 100
        "ignored": sorted(found.ignore),
        "seconds": round(time.time() - started, 2),
    }
    return report, found


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", required=True)
    ap.add_argument("--expected", required=True)
    ap.add_argument("--schema", help="PostgreSQL schema (default ai), MySQL database, MongoDB database (default agno)")
    ap.add_argument("--session-table", default="agno_sessions")
    ap.add_argument("--runs-table", default="agno_runs")
    ap.add_argument("--ignore", default="", help="comma-separated categories left out")
    ap.add_argument("--sample", type=int, help="sessions read again through get_session (default: all)")
    ap.add_argument("--page-size", type=int, default=500)
    ap.add_argument("--report", help="write the report as JSON here")
    args = ap.parse_args(argv)

    report, _ = verify(args)
    if args.report:
        with open(args.report, "w", encoding="utf-8") as fh:
            json.dump(report, fh, ensure_ascii=False, indent=1)
    print(
        f"agno {report['agno_version']} read {report['listed']} sessions ({report['read_twice']} also through "
        f"get_session) in {report['seconds']} s; expected {report['expected']} from {args.expected}"
    )
    for category, count in report["categories"].items():
        print(f"  {category:18s} {count:6d} sessions")
        for example in report["examples"].get(category, []):
            print(f"      e.g. {example}")
    bad = report["mismatching_sessions"]
    print(f"verified {report['verified']}/{report['expected']} sessions, {bad} mismatches")
    return 0 if bad == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
