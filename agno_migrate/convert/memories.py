"""Agno 1.x user memories → rows of the current memories table (pure: values in, values out, no I/O).

Where 1.x kept memories (docs/agno-tables.md §7):

* **memory tables** — Memory v2 ``SqliteMemoryDb`` / ``PostgresMemoryDb`` / ``MongoMemoryDb`` and the
  legacy ``AgentMemory`` ``MemoryDb`` classes, any table name, columns exactly
  ``id, user_id, memory, created_at, updated_at``. The ``memory`` value is a dict: Memory v2
  ``{memory_id, memory, topics?, last_updated?, input?}``, legacy ``{memory, input?, id?, topic?}``;
  SQLite stores its Python repr (``str(dict)``), PostgreSQL JSONB, MongoDB a sub-document.
* **session blobs** — the ``memory`` column of 1.x session rows: Memory v2
  ``{"memories": {user_id: {memory_id: {...}}}}``, legacy ``{"memories": [{memory, input?}, ...]}``.

The functions here (the caller does the reading, writing, de-duplicating and reporting):

* :func:`memory_table_kind` — is this a 1.x memory table (by its columns)?
* :func:`parse_stored_memory` — a stored ``memory`` value (dict, JSON text, Python repr) → dict,
  never ``eval``; :class:`MemoryConversionError` (one line) for what cannot be read.
* :func:`convert_v1_memory_row` — one 1.x memory-table row → one head memories row.
* :func:`memories_in_session_blob` — the memories inside one 1.x session's ``memory`` value →
  :class:`BlobMemory` (a head row plus what the caller needs to decide "already there").
* :func:`memory_digest`, :func:`already_present`, :func:`newest_per_id` — de-duplication helpers.
* :func:`kept_v1` — read back what a converted row keeps of the 1.x value (see below).

Rules:

* ``memory_id`` = the 1.x row id (Memory v2 writes the same id into the value; if the value's
  ``memory_id`` differs, the row id wins and the value's is kept, see "kept").
* ``memory`` = the value's ``memory`` text (must be a string); ``input`` = its ``input``;
  ``topics`` = its ``topics`` list (tuples become lists), else legacy ``topic`` as ``[topic]``, else None.
* ``user_id`` = the row's column as stored (1.x wrote ``"default"`` for no user: kept as is).
* ``created_at`` = the row's ``created_at`` in whole epoch seconds (SQLite text
  ``YYYY-MM-DD HH:MM:SS`` is UTC, as ``CURRENT_TIMESTAMP`` writes it; PostgreSQL ``timestamptz``; MongoDB
  int); missing or unreadable: the row's ``updated_at``, then ``last_updated``, then ``fallback_time``.
* ``updated_at`` = the value's ``last_updated`` (ISO text; **naive = UTC**: 1.x wrote
  ``datetime.now()``, the writer's local time, which cannot be recovered), else the row's
  ``updated_at``, else ``created_at``. Fractions of a second are dropped (the head columns are integers).
* ``feedback``, ``agent_id``, ``team_id`` = None (1.x has none of them) — unless something is kept.
* **kept**: whatever the value holds that has no column — unknown keys, a ``memory_id``/``id`` that
  differs from the row id, a ``topic``/``topics``/``input``/``last_updated`` whose type or text does
  not fit its column — and row columns beyond the five (MongoDB ``_id``/``_version`` excepted: the
  driver's document id and 1.x's optimistic-lock counter) go, as JSON text
  ``{"agno_v1": {"memory": {...}, "columns": {...}}}``, into ``feedback``. Why there: Agno 3.1.10
  builds ``UserMemory(**record)`` from every stored field (``UserMemory.from_dict``; MongoDB hands it the
  whole document), so no extra field or column can be added without breaking its reads; ``memory`` must
  stay the text Agno shows and searches; ``feedback`` is free text no Agno code interprets, and 1.x
  never had one. Rows Agno 1.x wrote itself keep nothing (``feedback`` None).
* NUL characters are kept (the caller strips them where the backend cannot store them).
* Blob memories: Memory v2 ``memory_id`` = the key of the inner mapping, owner = the outer key;
  legacy items: ``memory_id`` = the item's ``id`` if it has one, else :func:`derived_memory_id`
  (md5 of owner + item), owner = the blob's ``user_id``, else the session's; times: ``last_updated``,
  else ``fallback_time`` (the caller passes the session's ``updated_at``, else ``created_at``).
* "Same memory" (for de-duplication): the same ``memory_id``, or a 1.x id the memory had
  (``BlobMemory.same_as``: a legacy item's Agno content id), or the same :func:`memory_digest`
  (owner + text).
"""

from __future__ import annotations

import ast
import hashlib
import json
import math
import re
from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from agno_migrate.convert import V1_KEY, ConversionError

V1_MEMORY_COLUMNS = frozenset(("id", "user_id", "memory", "created_at", "updated_at"))
V1_MEMORY_TABLE = "v1_memories"  # what memory_table_kind() answers for a 1.x memory table
MEMORY_V2 = "memory_v2"  # values written by agno.memory.v2 (carry memory_id)
LEGACY = "legacy"  # values written by the legacy AgentMemory MemoryDb ({memory, input?, id?, topic?})
HEAD_COLUMNS = (
    "memory_id", "memory", "topics", "input", "user_id", "agent_id", "team_id", "feedback", "created_at", "updated_at",
)  # fmt: skip

# MongoDB fields that are not memory data: the driver's document id, Memory v2's optimistic-lock counter.
_MONGO_ONLY = frozenset(("_id", "_version"))
_VALUE_KEYS = frozenset(("memory_id", "memory", "topics", "last_updated", "input", "id", "topic"))

# Limits of the Python-literal reader: a 1.x memory value is a flat dict of a few strings and one
# short list; anything far beyond is refused before (size) or after (nodes, depth) parsing.
MAX_LITERAL_CHARS = 32 * 1024 * 1024
MAX_LITERAL_NODES = 20_000
MAX_LITERAL_DEPTH = 32
_REASON = 80  # messages name the problem and where, never the memory's content (personal data)

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MAX_EPOCH = 2**63  # what a BIGINT column holds; a number beyond is not a time
_NUMBER = re.compile(r"[+-]?\d+(\.\d*)?")
_DATETIME = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)"
    r"(?:[T ](\d\d):(\d\d)(?::(\d\d)(?:[.,]\d+)?)?)?"
    r"\s*(Z|z|[+-]\d\d(?::?\d\d)?)?"
)


class MemoryConversionError(ConversionError):
    """A 1.x memory that cannot be read (the caller reports it and ends with exit 9). One line."""


# --- recognising ------------------------------------------------------------------------------------


def memory_table_kind(columns: Iterable[str]) -> str | None:
    """:data:`V1_MEMORY_TABLE` when ``columns`` are exactly those of an Agno 1.x memory table
    (``id, user_id, memory, created_at, updated_at``; on MongoDB the keys of a document, ``_id`` and
    ``_version`` ignored), else None: a 1.x session table, a 2.x/3.x memories table, anything else.

    Memory v2 and legacy ``AgentMemory`` tables have the same columns; :func:`stored_memory_kind`
    tells them apart by a value.
    """
    names = {str(name) for name in columns} - _MONGO_ONLY
    return V1_MEMORY_TABLE if names == V1_MEMORY_COLUMNS else None


def stored_memory_kind(value: Mapping) -> str:
    """:data:`MEMORY_V2` when a parsed stored value carries ``memory_id``, else :data:`LEGACY`."""
    return MEMORY_V2 if "memory_id" in value else LEGACY


# --- parsing the stored value -------------------------------------------------------------------------


def parse_stored_memory(value: Any) -> dict:
    """The stored ``memory`` value of a 1.x memory row as a dict.

    Accepts a mapping (PostgreSQL JSONB, a MongoDB sub-document; returned as a plain dict, values as
    they are), or text / UTF-8 bytes holding JSON or the Python repr SQLite (Memory v2 and legacy)
    wrote. Python text is read with :func:`ast.literal_eval` after the tree has been checked to be a
    plain dict literal — string keys; values strings, numbers, True/False/None, lists, tuples (read as
    lists) and dicts — within :data:`MAX_LITERAL_CHARS` / :data:`MAX_LITERAL_NODES` /
    :data:`MAX_LITERAL_DEPTH`. Nothing is ever evaluated: names, calls, attributes, operators, sets,
    f-strings, comprehensions … are refused. Raises :class:`MemoryConversionError`: one line, naming
    the problem and where, never quoting the content.
    """
    if isinstance(value, Mapping):
        return dict(value)
    if value is None:
        raise MemoryConversionError("memory is NULL")
    if isinstance(value, (bytes, bytearray, memoryview)):
        try:
            value = bytes(value).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MemoryConversionError(f"memory is not UTF-8 text: {exc.reason} at byte {exc.start}") from None
    if not isinstance(value, str):
        raise MemoryConversionError(f"memory is {type(value).__name__}, not a dict or text")
    parsed = _parse_text(value)
    if isinstance(parsed, str):  # a JSON string holding the value (text stored in a JSON column)
        parsed = _parse_text(parsed)
    if not isinstance(parsed, dict):
        raise MemoryConversionError(f"memory holds {_type_name(parsed)}, not a dict")
    return parsed


def _parse_text(text: str) -> Any:
    """JSON first (what JSON columns hold), else a checked Python literal."""
    if len(text) > MAX_LITERAL_CHARS:
        raise MemoryConversionError(f"memory text is {len(text)} characters, over the limit of {MAX_LITERAL_CHARS}")
    stripped = text.strip()
    if not stripped:
        raise MemoryConversionError("memory is empty text")
    if not stripped.startswith("{'"):  # how every repr of a non-empty dict starts; JSON never does
        try:
            return json.loads(stripped)
        except (ValueError, RecursionError):
            pass
    if "\x00" in stripped:  # Python's parser refuses it; a repr never holds one (it writes \x00)
        raise MemoryConversionError("memory text holds a raw NUL character and is not JSON")
    return _literal(stripped)


def _literal(text: str) -> Any:
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        reason = " ".join(str(exc.msg).split())[:_REASON]
        where = f" at line {exc.lineno} column {exc.offset}" if exc.lineno and exc.offset else ""
        raise MemoryConversionError(f"memory is neither JSON nor a Python literal: {reason}{where}") from None
    except (ValueError, RecursionError, MemoryError) as exc:  # too big a number, too deep, too big
        reason = " ".join(str(exc).split())[:_REASON]
        raise MemoryConversionError(f"memory cannot be parsed: {type(exc).__name__} {reason}".rstrip()) from None
    body = tree.body
    if not isinstance(body, ast.Dict):
        raise MemoryConversionError(f"memory is a Python {_node_name(body)}, not a dict literal")
    _check_literal(body)
    try:
        value = ast.literal_eval(body)
    except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError) as exc:  # pragma: no cover - checked
        raise MemoryConversionError(f"memory cannot be read as a literal: {type(exc).__name__}") from None
    return _lists(value)


def _check_literal(root: ast.AST) -> None:
    """Refuse anything in the tree that is not part of a plain dict/list/tuple/str/number literal."""
    stack = [(root, 1)]
    nodes = 0
    while stack:
        node, depth = stack.pop()
        nodes += 1
        if nodes > MAX_LITERAL_NODES:
            raise MemoryConversionError(f"memory literal has more than {MAX_LITERAL_NODES} elements")
        if depth > MAX_LITERAL_DEPTH:
            raise MemoryConversionError(f"memory literal is nested deeper than {MAX_LITERAL_DEPTH}")
        if isinstance(node, ast.Dict):
            for key in node.keys:
                if key is None:
                    raise MemoryConversionError("memory literal unpacks a mapping (**)")
                if not (isinstance(key, ast.Constant) and isinstance(key.value, str)):
                    what = type(key.value).__name__ if isinstance(key, ast.Constant) else _node_name(key)
                    raise MemoryConversionError(f"memory literal has a key of type {what}, not a string")
            stack.extend((child, depth + 1) for child in node.values)
        elif isinstance(node, (ast.List, ast.Tuple)):
            stack.extend((child, depth + 1) for child in node.elts)
        elif isinstance(node, ast.Constant):
            if not _plain_constant(node.value):
                raise MemoryConversionError(f"memory literal holds a constant of type {type(node.value).__name__}")
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            operand = node.operand
            if not (isinstance(operand, ast.Constant) and _real_number(operand.value)):
                raise MemoryConversionError("memory literal has a sign before something that is not a number")
        else:
            raise MemoryConversionError(f"memory literal holds a Python {_node_name(node)}: refused, never evaluated")


def _plain_constant(value: Any) -> bool:
    return value is None or isinstance(value, (str, bool)) or _real_number(value)


def _real_number(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) or isinstance(value, float) and math.isfinite(value)


def _lists(value: Any) -> Any:
    """Tuples → lists (JSON has no tuples); the checked tree is at most MAX_LITERAL_DEPTH deep."""
    if isinstance(value, dict):
        return {key: _lists(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_lists(item) for item in value]
    return value


def _node_name(node: ast.AST) -> str:
    names = {
        ast.Call: "call", ast.Name: "name", ast.Attribute: "attribute", ast.Set: "set", ast.BinOp: "operator",
        ast.Lambda: "lambda", ast.JoinedStr: "f-string", ast.Subscript: "subscript", ast.List: "list",
        ast.Tuple: "tuple", ast.Constant: "constant", ast.Dict: "dict",
    }  # fmt: skip
    return names.get(type(node), type(node).__name__)


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


# --- one memory-table row -------------------------------------------------------------------------------


def convert_v1_memory_row(row: Mapping, *, fallback_time: Any = None) -> dict:
    """One Agno 1.x memory-table row (``id, user_id, memory, created_at, updated_at`` as the driver
    returns them) → a head memories row (the keys of :data:`HEAD_COLUMNS`), by the rules of the module
    docstring. ``fallback_time`` (any form of time read here) is used only when the row has no
    readable time at all (the caller passes the import time; without it such a row gets ``created_at``
    None).

    Raises :class:`MemoryConversionError` when the value cannot be parsed, has no ``memory`` string,
    or the row has no usable id.
    """
    stored = parse_stored_memory(row.get("memory"))
    memory_id = _row_id(row.get("id"), stored)
    kept_columns = {
        name: value for name, value in row.items() if name not in V1_MEMORY_COLUMNS and name not in _MONGO_ONLY
    }
    row_created, row_updated = row.get("created_at"), row.get("updated_at")
    created = _epoch_seconds(row_created)
    updated_column = _epoch_seconds(row_updated)
    for name, raw, parsed in (("created_at", row_created, created), ("updated_at", row_updated, updated_column)):
        if raw is not None and parsed is None:
            kept_columns[name] = raw  # unreadable time: kept as found
    out, kept_value, last_updated = _from_value(stored, memory_id)
    if created is None:
        created = _first(updated_column, last_updated, _epoch_seconds(fallback_time))
    out["user_id"] = row.get("user_id")
    out["created_at"] = created
    out["updated_at"] = _first(last_updated, updated_column, created)
    out["feedback"] = _kept_text(kept_value, kept_columns)
    return {name: out.get(name) for name in HEAD_COLUMNS}


def _row_id(value: Any, stored: dict) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if isinstance(value, str) and value:
        return value
    fallback = stored.get("memory_id", stored.get("id"))
    if value is None and isinstance(fallback, str) and fallback:
        return fallback
    raise MemoryConversionError(f"row id is {_type_name(value)}, not a non-empty string")


def _from_value(stored: dict, memory_id: str) -> tuple[dict, dict, int | None]:
    """(head fields from the stored dict, the dict's keys that have no column, last_updated epoch)."""
    text = stored.get("memory")
    if not isinstance(text, str):
        what = "no 'memory' key" if "memory" not in stored else f"'memory' {_type_name(text)}, not a string"
        raise MemoryConversionError(f"stored memory has {what}")
    kept = {key: item for key, item in stored.items() if key not in _VALUE_KEYS}
    for key in ("memory_id", "id"):
        if key in stored and stored[key] != memory_id and stored[key] is not None:
            kept[key] = stored[key]
    topics = None
    if isinstance(stored.get("topics"), (list, tuple)):
        topics = list(stored["topics"])
    elif stored.get("topics") is not None:
        kept["topics"] = stored["topics"]
    topic = stored.get("topic")
    if topic is not None:
        if topics is None and "topics" not in kept and isinstance(topic, str):
            topics = [topic]
        elif topics != [topic]:
            kept["topic"] = topic
    input_text = stored.get("input")
    if input_text is not None and not isinstance(input_text, str):
        kept["input"] = input_text
        input_text = None
    last_updated = None
    if stored.get("last_updated") is not None:
        last_updated = _epoch_seconds(stored["last_updated"])
        if last_updated is None:
            kept["last_updated"] = stored["last_updated"]  # unreadable: kept as found
    fields = {"memory_id": memory_id, "memory": text, "topics": topics, "input": input_text}
    return fields, kept, last_updated


def _kept_text(kept_value: dict, kept_columns: dict) -> str | None:
    kept = {}
    if kept_value:
        kept["memory"] = kept_value
    if kept_columns:
        kept["columns"] = kept_columns
    if not kept:
        return None
    return json.dumps({V1_KEY: kept}, ensure_ascii=False, sort_keys=True, default=_json_default)


def _json_default(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    return str(value)  # ObjectId, Decimal, Decimal128, …


def kept_v1(row: Mapping) -> dict | None:
    """What a converted row keeps of its 1.x value (``{"memory": {...}, "columns": {...}}``), or None.

    Reads the ``feedback`` text :func:`convert_v1_memory_row` wrote; None for anything else
    (no feedback, or feedback that is not ours).
    """
    text = row.get("feedback")
    if not isinstance(text, str) or not text.startswith("{"):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if isinstance(value, dict) and len(value) == 1 and isinstance(value.get(V1_KEY), dict):
        return value[V1_KEY]
    return None


def _first(*values: int | None) -> int | None:
    for value in values:
        if value is not None:
            return value
    return None


# --- times --------------------------------------------------------------------------------------------------


def _epoch_seconds(value: Any) -> int | None:
    """Whole epoch seconds (UTC) of a 1.x time, or None when there is none or it cannot be read.

    int/float (MongoDB; BSON Int64 is an int) as seconds, if a BIGINT holds them; datetime (naive =
    UTC); text: a number, or ``YYYY-MM-DD[ T]HH:MM[:SS[.f]][Z|±HH[:MM]]`` (naive = UTC). The fraction
    of a second is dropped."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return int(value) if -_MAX_EPOCH < value < _MAX_EPOCH else None
    if isinstance(value, Decimal):
        return _epoch_seconds(math.floor(value)) if value.is_finite() else None
    if isinstance(value, float):
        return _epoch_seconds(math.floor(value)) if math.isfinite(value) else None
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            value = value.replace(tzinfo=timezone.utc)
        delta = value - _EPOCH
        return delta.days * 86400 + delta.seconds
    if isinstance(value, date):
        return (value - _EPOCH.date()).days * 86400
    if isinstance(value, (bytes, bytearray)):
        try:
            value = bytes(value).decode("ascii")
        except UnicodeDecodeError:
            return None
    if isinstance(value, str):
        return _text_epoch(value.strip())
    return None


def _text_epoch(text: str) -> int | None:
    if _NUMBER.fullmatch(text):
        return _epoch_seconds(Decimal(text))
    match = _DATETIME.fullmatch(text)
    if match is None:
        return None
    year, month, day, hour, minute, second, zone = match.groups()
    try:
        moment = datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0))
    except ValueError:
        return None
    offset = 0
    if zone and zone not in ("Z", "z"):
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        hours, minutes = int(digits[:2]), int(digits[2:] or 0)
        if hours > 23 or minutes > 59:
            return None
        offset = sign * (hours * 3600 + minutes * 60)
    delta = moment - _EPOCH.replace(tzinfo=None) - timedelta(seconds=offset)
    return delta.days * 86400 + delta.seconds


# --- memories inside session blobs --------------------------------------------------------------------


@dataclass(frozen=True)
class BlobMemory:
    """A memory found in a 1.x session blob: the head row, its :func:`memory_digest`, the other ids
    it had in 1.x (``same_as``: a legacy item's Agno content id — the id a legacy memory table gave
    the same content — or a Memory v2 value's own ``memory_id`` that differs from its key), and where
    it came from (``source``: :data:`MEMORY_V2` or :data:`LEGACY`)."""

    row: dict
    digest: str
    same_as: tuple[str, ...]
    source: str

    @property
    def memory_id(self) -> str:
        return self.row["memory_id"]


def memories_in_session_blob(
    memory_blob: Any, session_user_id: str | None, *, fallback_time: Any = None
) -> list[BlobMemory]:
    """The memories an Agno 1.x session kept in its ``memory`` value, as head rows.

    ``memory_blob`` is the session's ``memory`` column (dict, JSON text or None). Memory v2
    ``{"memories": {user_id: {memory_id: UserMemory.to_dict()}}}`` gives every user's memories the
    Memory object had loaded (owner = the outer key); legacy ``AgentMemory``
    ``{"memories": [Memory.to_dict(), ...], "user_id"?}`` gives the session owner's (owner = the blob's
    ``user_id``, else ``session_user_id``; id = the item's ``id``, else :func:`derived_memory_id`).
    ``fallback_time`` (the session's ``updated_at``, else its ``created_at``; any form of time that
    :func:`convert_v1_memory_row` reads) is each memory's time when it has no ``last_updated``. The
    same memory may be in many sessions: the caller keeps one per id (:func:`newest_per_id`) and skips
    those :func:`already_present`.

    Raises :class:`MemoryConversionError` (naming the item) when the blob or an item cannot be read.
    """
    blob = _blob_dict(memory_blob)
    if blob is None:
        return []
    memories = blob.get("memories")
    fallback = _epoch_seconds(fallback_time)
    if memories is None:
        return []
    if isinstance(memories, Mapping):
        return _v2_blob_memories(memories, fallback)
    if isinstance(memories, list):
        owner = blob.get("user_id") if isinstance(blob.get("user_id"), str) else session_user_id
        return [_legacy_blob_memory(item, index, owner, fallback) for index, item in enumerate(memories)]
    raise MemoryConversionError(f"session memory.memories holds {_type_name(memories)}, not a dict or list")


def _blob_dict(memory_blob: Any) -> dict | None:
    if memory_blob is None:
        return None
    if isinstance(memory_blob, Mapping):
        return dict(memory_blob)
    if isinstance(memory_blob, (bytes, bytearray, memoryview)):
        memory_blob = bytes(memory_blob).decode("utf-8", "surrogateescape")
    if isinstance(memory_blob, str):
        try:
            value = json.loads(memory_blob)
            if isinstance(value, str):  # double-encoded JSON (Agno 2.0 SQLite wrote such)
                value = json.loads(value)
        except (ValueError, RecursionError) as exc:
            raise MemoryConversionError(f"session memory is not JSON: {str(exc)[:_REASON]}") from None
        if value is None:
            return None
        if isinstance(value, dict):
            return value
        memory_blob = value
    raise MemoryConversionError(f"session memory holds {_type_name(memory_blob)}, not a dict")


def _v2_blob_memories(memories: Mapping, fallback: int | None) -> list[BlobMemory]:
    found = []
    for user_id, by_id in memories.items():
        if by_id is None:
            continue
        if not isinstance(by_id, Mapping):
            raise MemoryConversionError(f"session memory.memories[{user_id!r}] holds {_type_name(by_id)}, not a dict")
        for memory_id, value in by_id.items():
            where = f"session memory.memories[{user_id!r}][{memory_id!r}]"
            if not isinstance(value, Mapping):
                raise MemoryConversionError(f"{where} holds {_type_name(value)}, not a dict")
            row = _blob_row({"id": memory_id, "user_id": user_id, "memory": dict(value)}, fallback, where)
            own = value.get("memory_id")
            same_as = (own,) if isinstance(own, str) and own and own != row["memory_id"] else ()
            found.append(BlobMemory(row, memory_digest(row), same_as, MEMORY_V2))
    return found


def _legacy_blob_memory(item: Any, index: int, owner: str | None, fallback: int | None) -> BlobMemory:
    where = f"session memory.memories[{index}]"
    if not isinstance(item, Mapping):
        raise MemoryConversionError(f"{where} holds {_type_name(item)}, not a dict")
    item = dict(item)
    own_id = item.get("id") if isinstance(item.get("id"), str) and item.get("id") else None
    memory_id = own_id or derived_memory_id(owner, item)
    row = _blob_row({"id": memory_id, "user_id": owner, "memory": item}, fallback, where)
    same_as = tuple(i for i in dict.fromkeys((own_id, agno_content_id(item))) if i and i != memory_id)
    return BlobMemory(row, memory_digest(row), same_as, LEGACY)


def _blob_row(v1_row: dict, fallback: int | None, where: str) -> dict:
    """A blob memory through the table-row conversion: without row times, ``created_at`` and
    ``updated_at`` are ``last_updated``, else ``fallback``."""
    try:
        return convert_v1_memory_row({**v1_row, "created_at": None, "updated_at": None}, fallback_time=fallback)
    except MemoryConversionError as exc:
        raise MemoryConversionError(f"{where}: {exc}") from None


# --- ids and de-duplication ---------------------------------------------------------------------------


def agno_content_id(value: Mapping) -> str:
    """The id Agno 1.x's legacy ``MemoryRow`` gives a memory value (``agno/memory/row.py``): md5 of
    ``json.dumps(value, sort_keys=True)`` with every space, newline and tab removed. A legacy memory
    table row has this id unless ``MemoryManager.update_memory`` changed its content later."""
    text = json.dumps(value, sort_keys=True, default=str).replace(" ", "").replace("\n", "").replace("\t", "")
    return hashlib.md5(text.encode()).hexdigest()


def derived_memory_id(user_id: str | None, value: Mapping) -> str:
    """A deterministic id for a legacy blob memory without one: md5 (32 hex digits, as Agno's) of
    ``json.dumps({"memory": value, "user_id": user_id}, sort_keys=True, separators=(",", ":"))``
    (ASCII-escaped). Unlike :func:`agno_content_id` the owner is part of it (two users' identical
    memories stay two rows) and spaces are not removed ("a b" and "ab" stay apart)."""
    text = json.dumps({"memory": value, "user_id": user_id}, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.md5(text.encode()).hexdigest()


def memory_digest(row: Mapping) -> str:
    """The "same memory" key of a head row: SHA-256 of its owner and text (``[user_id, memory]`` as
    compact JSON), NUL characters removed first so that a row read back from PostgreSQL (which
    strips them) has the digest of the row it was converted from. Topics, input and times are not
    part of it: the same text for the same user is the same memory."""
    text = row.get("memory")
    if isinstance(text, str):
        text = text.replace("\x00", "")
    user_id = row.get("user_id")
    if isinstance(user_id, str):
        user_id = user_id.replace("\x00", "")
    canonical = json.dumps([user_id, text], ensure_ascii=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def already_present(memory: BlobMemory, ids: Container[str], digests: Container[str]) -> bool:
    """Whether a blob memory is one the memories table already holds: its ``memory_id`` or one of its
    1.x ids (``same_as``) is among ``ids`` (memory ids of the rows imported or already at head), or its
    digest is among ``digests`` (:func:`memory_digest` of those rows)."""
    if memory.memory_id in ids or any(other in ids for other in memory.same_as):
        return True
    return memory.digest in digests


def newest_per_id(memories: Iterable[BlobMemory]) -> list[BlobMemory]:
    """One memory per ``memory_id``: the one with the latest ``updated_at`` (a memory without time
    counts as oldest; on a tie the first seen), in order of first appearance. Older copies are not
    lost: the session conversion keeps each session's blob in ``session_data["agno_v1"]``."""
    best: dict[str, BlobMemory] = {}
    for memory in memories:
        current = best.get(memory.memory_id)
        if current is None or _time_key(memory) > _time_key(current):
            best[memory.memory_id] = memory
    return list(best.values())


def _time_key(memory: BlobMemory) -> int:
    updated = memory.row.get("updated_at")
    return updated if isinstance(updated, int) else -(2**63)


def split_stored(rows: Iterable[Mapping], stored: Mapping[str, Mapping], same) -> tuple[list[Mapping], list[str]]:
    """(the rows to write, the memory ids that collide): a row whose id is not stored yet is written
    (the first of several with one id); one stored with the same content (``same(stored, row)``) is
    already there; one stored with other content collides and is never overwritten."""
    fresh, seen, collisions = [], set(), []
    for row in rows:
        existing = stored.get(row["memory_id"])
        if existing is None and row["memory_id"] not in seen:
            fresh.append(row)
            seen.add(row["memory_id"])
        elif existing is not None and same(existing, row):
            continue
        else:
            collisions.append(row["memory_id"])
    return fresh, collisions
