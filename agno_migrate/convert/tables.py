"""Rows of the other Agno table types (memories, evals, metrics, schedules, ...) as a table at head holds
them, whatever point their table is at: the values the upgrade's steps (``versions/tables``,
``registry.TABLE_STEPS``) give the columns they add, one rule per column, and each value in one
canonical form, the same read from any backend.

Canonical values (what a copy writes, and what ``verify`` digests): JSON columns decoded (JSON text
read from SQL decoded once, then any further string layer that holds a JSON object or array, as the
double-encoding Agno 2.x wrote on SQLite; MongoDB documents are native already, except the JSON text
Agno 2.0 stored as strings there), booleans as ``bool``, integers as ``int``, dates and timestamps as
ISO text.

Pure: no I/O. The learnings re-key (3.0.0) is a rule over several rows: :mod:`convert.learnings`.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping
from typing import Any

from agno_migrate.jsoncodec import loads


def _memories_created_at(row: Mapping, now: int) -> Any:
    """2.3.0: ``created_at`` is the row's ``updated_at`` (the only time a 2.0 memory has), else now."""
    for name in ("created_at", "updated_at"):
        if row.get(name) is not None:
            return row[name]
    return now


def _metrics_user_id(row: Mapping, now: int) -> Any:
    """3.0.0: metrics are kept per user; the existing rows belong to ``''`` (Agno's "no user")."""
    value = row.get("user_id")
    return "" if value is None else value


FILLS: dict[str, dict[str, Callable[[Mapping, int], Any]]] = {
    "memories": {"created_at": _memories_created_at},
    "metrics": {"user_id": _metrics_user_id},
}
"""family → column → its value in a head row, from the row as read (``now``: the time of the copy).
Every other column a step adds (``feedback``, ``user_id``, schedules' provenance columns,
approvals' ``run_status``) is NULL, as the steps add it."""

JSON_KINDS = frozenset(("json", "jsonb"))
BOOL_KINDS = frozenset(("boolean", "tinyint"))


def head_row(family: str, row: Mapping, columns: Mapping[str, str], now: int) -> dict:
    """The head row of ``family`` for ``row`` (column → canonical value, see :func:`canonical`):
    exactly ``columns`` (name → type family of the head layout), each filled by :data:`FILLS` or
    None where ``row`` lacks it."""
    fills = FILLS.get(family, {})
    out = {}
    for name in columns:
        fill = fills.get(name)
        out[name] = fill(row, now) if fill is not None else row.get(name)
    return out


def canonical(kind: str, value: Any, *, encoded: bool) -> Any:
    """``value`` of a column of type family ``kind`` in canonical form. ``encoded``: the value was
    read from SQL as stored text (a JSON column's value is JSON text); False: a MongoDB field."""
    if value is None:
        return None
    if kind in JSON_KINDS:
        return decode_json_column(value, encoded=encoded)
    if kind in BOOL_KINDS:
        return bool(value) if isinstance(value, int) else value
    if kind == "int":
        return int(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if kind in ("date", "timestamp"):
        if isinstance(value, datetime.datetime):
            return value.date().isoformat() if kind == "date" else value.isoformat()
        if isinstance(value, datetime.date):
            return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return value
    return value


def decode_json_column(value: Any, *, encoded: bool) -> Any:
    """A JSON column's value as Python: stored JSON text (``encoded``) decoded once; then, as long as
    the result is a string holding a JSON object or array, decoded again (text that is not JSON is
    kept as it is: never an error)."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        value = bytes(value).decode("utf-8", "surrogateescape")
    if encoded and isinstance(value, str):
        try:
            value = loads(value)
        except ValueError:
            return value
    for _ in range(4):
        if not (isinstance(value, str) and value.lstrip()[:1] in ("{", "[")):
            break
        try:
            value = loads(value)
        except ValueError:
            break
    return value


def stored(kind: str, value: Any) -> Any:
    """A canonical value as a SQL driver takes it for a column of type family ``kind`` (dates and
    timestamps as ``datetime`` objects; text that is no date is left to the database to refuse)."""
    if value is None or not isinstance(value, str):
        return value
    try:
        if kind == "date":
            return datetime.date.fromisoformat(value[:10])
        if kind == "timestamp":
            return datetime.datetime.fromisoformat(value)
    except ValueError:
        return value
    return value
