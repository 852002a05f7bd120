"""What a SQL statement of an upgrade does (for choosing kill points). No imports beyond ``re``:
the killed child process (support.VICTIM) loads this file by path."""

from __future__ import annotations

import re

_COPY = re.compile(r'COPY\s+[`"]?(?:\w+[`"]?\.[`"]?)?(\w+)', re.IGNORECASE)
_TARGET = re.compile(
    r'(?:INTO|UPDATE|TABLE(?: IF NOT EXISTS)?|FROM|ON)\s+[`"]?(?:\w+[`"]?\.[`"]?)?(\w+)', re.IGNORECASE
)


def classify(statement: str, version_table: str, agno_versions_table: str, session_table: str, runs_table: str) -> str:
    """ddl, record (our version row), stamp (Agno's), checkpoint (the 1.x import's), data (rows
    into the session or runs table), or read."""
    verb = statement.split(None, 1)[0].upper() if statement.strip() else ""
    match = _COPY.match(statement) if verb == "COPY" else _TARGET.search(statement)  # (COPY t ... FROM STDIN)
    table = match.group(1) if match else ""
    if verb in ("CREATE", "ALTER", "DROP"):
        return "ddl"
    if verb in ("INSERT", "UPDATE", "DELETE", "COPY"):
        if table == version_table:
            return "record"
        if table == f"{version_table}_legacy":
            return "checkpoint"
        if table == agno_versions_table:
            return "stamp"
        if table in (session_table, runs_table):
            return "data"
    return "read"


# --- MongoDB: the commands of an upgrade (mongo_support.VICTIM) -----------------------------------

_MONGO_WRITES = {"insert": "documents", "update": "updates", "delete": "deletes", "findAndModify": None}
_MONGO_DDL = ("create", "createIndexes", "drop", "dropIndexes", "dropDatabase")


def describe_mongo(name: str, command) -> str:
    """``<command> <collection> <_id of its first document or filter>`` (for writes)."""
    collection = command.get(name) if isinstance(command.get(name), str) else ""
    detail = ""
    if name in _MONGO_WRITES:
        try:
            if name == "findAndModify":
                detail = command.get("query", {}).get("_id")
            else:
                first = list(command.get(_MONGO_WRITES[name]) or [])[0]
                detail = first.get("_id") if name == "insert" else first.get("q", {}).get("_id")
        except (IndexError, AttributeError, TypeError):
            detail = ""
    return f"{name} {collection} {detail if isinstance(detail, str) else ''}".strip()


def classify_mongo(text: str, version_table: str, agno_versions_table: str, session_table: str, runs_table: str) -> str:
    """ddl, lock (the lease document: also renewed by a thread, so never a kill point), record
    (the version document, a history entry), step (a step's record of its start and end),
    checkpoint, stamp (Agno's), data (sessions or runs written), or read."""
    name, _, rest = text.partition(" ")
    collection, _, detail = rest.partition(" ")
    if name in _MONGO_DDL:
        return "ddl"
    if name not in _MONGO_WRITES:
        return "read"
    if collection == version_table:
        if detail == "lock":
            return "lock"
        if detail == "version" or detail.startswith("history:") or detail == "creating":
            return "record"
        if detail.startswith("step:"):
            return "step"
        if detail.startswith("checkpoint:"):
            return "checkpoint"
        return "read"
    if collection == agno_versions_table:
        return "stamp"
    if collection in (session_table, runs_table):
        return "data"
    return "read"
