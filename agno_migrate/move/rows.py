"""Head rows of a source, by the conversions an upgrade in place applies (see ``move.source``):
one function per kind of part, shared by the SQL and MongoDB readers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from agno_migrate import convert, jsoncodec
from agno_migrate.move.json_text import JsonText, holds_text, plain_text
from agno_migrate.schema import JSON_COLUMNS, SESSION_COLUMNS

RUN_COLUMNS = (
    *("run_id", "session_id", "run_type", "agent_id", "team_id", "workflow_id", "user_id"),
    *("parent_run_id", "status", "run_index", "run_data", "created_at", "updated_at"),
)
"""The columns of the head runs table (on MongoDB: a run document's fields)."""
_TIMES = ("created_at", "updated_at")


@dataclass
class SessionUnit:
    """One session as head rows: its sessions row and its runs-table rows (JSON as Python values,
    times as integers). ``cursor`` is where a copy resumes after it (its session id, or for a source
    of several parts, the part and the session id)."""

    session: dict
    runs: list[dict]
    cursor: str = ""
    part: str = ""
    """The table (or collection) it was read from."""


@dataclass
class Problem:
    """A session (or row) the source could not give as it is: named, with what."""

    table: str
    session_id: str
    what: str
    copied: bool = True
    """Whether the session was copied all the same (False: it could not be read at all)."""


def decoded(value: Any, table: str, session_id: str, column: str, problems: list[Problem]) -> Any:
    """A JSON column's value as Python (``jsoncodec.decode_json``); text that is not JSON is kept as
    the text (a JSON string), and named in ``problems``."""
    if value is None or not isinstance(value, (str, bytes, bytearray)):
        return value
    try:
        return jsoncodec.decode_json(value)
    except ValueError as exc:
        problems.append(Problem(table, session_id, f"{column} is not JSON ({str(exc)[:80]}): kept as text"))
        return value if isinstance(value, str) else bytes(value).decode("utf-8", "replace")


def settle(value: Any, session_id: str, problems: list) -> Any:
    """``value`` decoded where it is :class:`JsonText` (``rows.decoded`` of the stored value: what the
    copy gives without this module), as it is otherwise."""
    if not isinstance(value, JsonText):
        return value
    return decoded(value.original, value.table, session_id, value.column, problems)


def settle_unit(session: dict, runs: list[dict], problems: list) -> tuple[dict, list[dict]]:
    """A unit's session and runs with every :class:`JsonText` decoded (:func:`settle`)."""
    sid = str(session.get("session_id"))
    if holds_text(session):
        session = {k: settle(v, sid, problems) for k, v in session.items()}
    runs = [{k: settle(v, sid, problems) for k, v in run.items()} if holds_text(run) else run for run in runs]
    return session, runs


def epoch(value: Any) -> Any:
    """A time column as an integer where it is a number (as stored otherwise)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def json_value(value: Any, table: str, session_id: str, column: str, problems: list[Problem], keep_text: bool) -> Any:
    """A JSON column's value :func:`decoded`, or with ``keep_text`` its stored text where the target may
    parse it itself (``json_text.plain_text``)."""
    if keep_text:
        text = plain_text(value, table, column)
        if text is not None:
            return text
    return decoded(value, table, session_id, column, problems)


def head_session(row: dict, table: str, problems: list[Problem], decode: bool = True, keep_text: bool = False) -> dict:
    """The head sessions row of a stored row (2.x or 3.x): its head columns, JSON decoded (``keep_text``:
    see :func:`json_value`)."""
    sid = row["session_id"]
    out = {name: row.get(name) for name in SESSION_COLUMNS}
    if decode:
        for name in JSON_COLUMNS:
            value = out[name]
            if value is not None:  # (None decodes to None)
                out[name] = json_value(value, table, sid, name, problems, keep_text)
    for name in _TIMES:
        out[name] = epoch(out[name])
    return out


def head_run(
    row: dict | Sequence, table: str, problems: list[Problem], decode: bool = True, keep_text: bool = False
) -> dict:
    """A stored runs-table row (3.x: a dict, or its values in the order of :data:`RUN_COLUMNS`) as a head
    run row (``keep_text``: see :func:`json_value`)."""
    if isinstance(row, dict):
        out = {name: row.get(name) for name in RUN_COLUMNS}
    else:
        out = dict(zip(RUN_COLUMNS, row, strict=True))
    if decode:
        sid = str(out["session_id"])
        out["run_data"] = json_value(out["run_data"], table, sid, "run_data", problems, keep_text)
    for name in _TIMES:
        out[name] = epoch(out[name])
    return out


def blob_unit(row: dict, table: str, problems: list[Problem]) -> SessionUnit:
    """A 2.x session (its ``runs`` JSON) as head rows, by the 3.0.0 step's rules: the runs list through
    ``convert.run_rows``; a blob that is not a list and elements that are not runs are named (the
    upgrade keeps them in the legacy ``runs`` column, which the head has not)."""
    session = head_session(row, table, problems)
    sid = session["session_id"]
    try:
        blob = jsoncodec.decode_json(row.get("runs"))
    except ValueError as exc:
        problems.append(Problem(table, sid, f"runs is not JSON ({str(exc)[:80]}): not copied"))
        blob = None
    if blob is not None and not isinstance(blob, list):
        problems.append(Problem(table, sid, f"runs is a {type(blob).__name__}, not a list: not copied"))
        blob = None
    runs: list[dict] = []
    if blob:
        runs, skipped = convert.run_rows(session, blob)
        for index, reason in skipped:
            problems.append(Problem(table, sid, f"runs[{index}]: {reason}: not copied"))
    return SessionUnit(session, runs)


def legacy_unit(mode: str, row: dict, table: str, problems: list[Problem]) -> SessionUnit | None:
    """An Agno 1.x row as head rows, by the legacy import's conversion; None (named) when it cannot be
    read."""
    try:
        session_row, runs = convert.convert_v1_session(mode, row)
    except convert.ConversionError as exc:
        problems.append(Problem(table, str(row.get("session_id")), f"{exc}: not copied", copied=False))
        return None
    convert.fill_created_at(session_row)
    built, _ = convert.run_rows(session_row, runs)
    return SessionUnit({name: session_row.get(name) for name in SESSION_COLUMNS}, built)


class BlobRows:
    """A part whose rows are 2.x sessions (``runs`` JSON): :func:`blob_unit`."""

    name: str

    def unit(self, row: dict, problems: list[Problem]) -> SessionUnit:
        return blob_unit(row, self.name, problems)


class LegacyRows:
    """A part whose rows are Agno 1.x sessions of one ``mode``: :func:`legacy_unit`."""

    name: str
    mode: str

    def unit(self, row: dict, problems: list[Problem]) -> SessionUnit | None:
        return legacy_unit(self.mode, row, self.name, problems)
