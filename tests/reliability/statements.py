"""What a SQL statement of an upgrade does (for choosing kill points). No imports beyond ``re``:
the killed child process (support.VICTIM) loads this file by path."""
from __future__ import annotations

import re

_TARGET = re.compile(r'(?:INTO|UPDATE|TABLE(?: IF NOT EXISTS)?|FROM|ON)\s+[`"]?(?:\w+[`"]?\.[`"]?)?(\w+)', re.IGNORECASE)


def classify(statement: str, version_table: str, agno_versions_table: str, session_table: str, runs_table: str) -> str:
    """ddl, record (our version row), stamp (Agno's), checkpoint (the 1.x import's), data (rows
    into the session or runs table), or read."""
    verb = statement.split(None, 1)[0].upper() if statement.strip() else ""
    match = _TARGET.search(statement)
    table = match.group(1) if match else ""
    if verb in ("CREATE", "ALTER", "DROP"):
        return "ddl"
    if verb in ("INSERT", "UPDATE", "DELETE"):
        if table == version_table:
            return "record"
        if table == f"{version_table}_legacy":
            return "checkpoint"
        if table == agno_versions_table:
            return "stamp"
        if table in (session_table, runs_table):
            return "data"
    return "read"
