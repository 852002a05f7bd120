"""The Agno 1.x import's per-row work, done in worker processes (or inline): read, convert, encode.

Pure of SQLAlchemy, so that a worker process starts in a few hundredths of a second and stays small
(it imports this module, ``convert``, ``jsoncodec``, the dialects' facts and the standard library;
orjson when installed).

* :func:`convert_rows` turns legacy rows into insert-ready tuples (the head tables' column order),
  JSON columns encoded as text: by orjson when installed and it cannot change a value (compact,
  UTF-8 unescaped), else ``json.dumps`` (MariaDB: ``json_text``); the text depends only on the row.
* :func:`read_and_convert` does the same for a key range of a legacy SQLite table that the worker
  reads itself (so the importing process does not read, pickle and send the rows).
* :func:`serve` is a worker's main loop (started by ``legacy_pool.Workers``): length-prefixed pickles,
  one answer per task, in order, until its stdin closes.

Results cross the process boundary as pickles: they are named tuples of plain values.
"""

from __future__ import annotations

import os
import pickle
import sys
from typing import NamedTuple

from agno_migrate import convert, jsoncodec
from agno_migrate.backends import dialect_of

_HEADER = 8  # bytes of a message's length prefix


class Layout(NamedTuple):
    """The head tables' columns, as the converted rows' values are ordered (plain ``str`` names:
    SQLAlchemy's are a str subclass, whose pickles would make a worker import it)."""

    sessions: tuple
    runs: tuple
    json: tuple
    """The JSON columns of the sessions table (encoded as text)."""
    utf8: bool = False
    """JSON text may be given as its UTF-8 bytes (see ``Dialect.utf8_text_bytes``)."""


class Converted(NamedTuple):
    """A legacy row, converted and ready to insert."""

    session: tuple
    """The sessions-table values, in the columns' order; JSON columns as text (or its UTF-8 bytes)."""
    runs: list
    """The runs-table values of each of its runs, likewise."""
    nul_removed: int
    """NUL characters removed (PostgreSQL)."""
    created_at_filled: bool
    """The row had no created_at and was given one (``convert.fill_created_at``)."""
    size: int
    """The length of its JSON text (or bytes): what the importer's transaction holds."""
    memories: tuple = ()
    """The memories its ``memory`` blob held (``convert.memories.BlobMemory``; NULs stripped where the
    backend cannot store them)."""
    memory_problem: str | None = None
    """Why its blob's memories could not be read (the session is imported all the same)."""
    deep_as_text: int = 0
    """Parts nested deeper than the backend's JSON holds, kept as their JSON text (MariaDB:
    ``storable.text_beyond_depth``)."""


def blob_memories(row: dict, stores_nul: bool) -> tuple[tuple, str | None, int]:
    """(the memories in a 1.x session row's ``memory`` blob, why they cannot be read, NULs removed)."""
    import dataclasses

    from agno_migrate.convert import memories as conv

    blob = row.get("memory")
    if blob is None or (isinstance(blob, str) and '"memories"' not in blob):  # (most blobs: no parse)
        return (), None, 0
    when = row.get("updated_at") if row.get("updated_at") is not None else row.get("created_at")
    try:
        found = conv.memories_in_session_blob(blob, row.get("user_id"), fallback_time=when)
    except conv.MemoryConversionError as exc:
        return (), str(exc), 0
    removed = 0
    if not stores_nul:
        out = []
        for memory in found:
            stripped, count = convert.strip_nul(memory.row)
            removed += count
            out.append(dataclasses.replace(memory, row=stripped))
        found = out
    return tuple(found), None, removed


class Unreadable(NamedTuple):
    """A legacy row that cannot be converted: reported, not imported."""

    session_id: str
    reason: str


def convert_rows(mode: str, rows: list[dict], backend: str, layout: tuple) -> list[Converted | Unreadable]:
    """Convert Agno 1.x rows for ``backend`` (a dialect name), ready to insert (pure).

    ``layout`` is a :class:`Layout` (or the tuple of its fields). Each row gives a :class:`Converted`
    or an :class:`Unreadable`, in order.
    """
    session_columns, run_columns, json_columns, utf8 = Layout(*layout)
    dialect = dialect_of(backend)
    if dialect.json_unescaped:
        from agno_migrate.backends.sql import json_text as exact
    else:
        exact = jsoncodec.dumps
    fast = jsoncodec.orjson_encoder(exact, utf8=utf8)
    out: list[Converted | Unreadable] = []
    for row in rows:
        undecodable = [name for name, value in row.items() if value.__class__ is bytes]
        if undecodable:  # (see text_or_bytes)
            reason = f"column(s) {', '.join(undecodable)} hold bytes that are not UTF-8 text"
            out.append(Unreadable(str(row.get("session_id")), reason))
            continue
        seen = jsoncodec.nonstandard_count()
        try:
            session_row, runs = convert.convert_v1_session(mode, row)
        except convert.ConversionError as exc:
            out.append(Unreadable(str(row.get("session_id")), str(exc)))
            continue
        plain = fast is not None and jsoncodec.nonstandard_count() == seen and jsoncodec.plain_values(row)
        encode = fast if plain else exact
        removed = 0
        if not dialect.stores_nul:
            (session_row, runs), removed = convert.strip_nul((session_row, runs))
        filled = convert.fill_created_at(session_row)
        run_rows, _ = convert.run_rows(session_row, runs)
        deep = _text_beyond_depth(dialect.json_max_depth, session_row, json_columns, run_rows)
        size = 0
        for column in json_columns:
            if session_row[column] is not None:
                session_row[column] = encode(session_row[column])
                size += len(session_row[column])
        run_values = []
        for run in run_rows:
            run["run_data"] = encode(run["run_data"])
            size += len(run["run_data"])
            run_values.append(tuple([run[c] for c in run_columns]))
        memories, problem, nul_in_memories = blob_memories(row, dialect.stores_nul)
        out.append(
            Converted(
                tuple([session_row[c] for c in session_columns]),
                run_values,
                removed + nul_in_memories,
                filled,
                size,
                memories,
                problem,
                deep,
            )
        )
    return out


def _text_beyond_depth(max_depth: int | None, session_row: dict, json_columns: tuple, run_rows: list[dict]) -> int:
    """Where the backend's JSON has a nesting limit: the parts of the row's JSON values nested
    deeper kept as their JSON text (``storable.text_beyond_depth``); how many."""
    if max_depth is None:
        return 0
    from agno_migrate.storable import text_beyond_depth

    count = 0
    for row, columns in [(session_row, json_columns)] + [(run, ("run_data",)) for run in run_rows]:
        for column in columns:
            if row.get(column) is not None:
                row[column], replaced = text_beyond_depth(row[column], max_depth)
                count += replaced
    return count


_connections: dict = {}


def read_rows(path: str, timeout: float, table: str, columns: tuple, after, upto) -> list[dict]:
    """The rows of SQLite ``table`` whose ``session_id`` is in (after, upto] (no lower bound when
    ``after`` is None), in ``session_id`` order, as dicts of ``columns`` (values as stored)."""
    import sqlite3

    conn = _connections.get(path)
    if conn is None:  # autocommit: each SELECT is its own short read transaction (WAL: no lock taken)
        conn = _connections[path] = sqlite3.connect(
            path, timeout=timeout, isolation_level=None, check_same_thread=False
        )
        conn.execute("PRAGMA cache_size=-512")  # rows are read once, in key order: a small cache will do
    key = _quoted("session_id")
    where, params = (f"{key} <= ?", (upto,)) if after is None else (f"{key} > ? AND {key} <= ?", (after, upto))
    query = f"SELECT {', '.join(map(_quoted, columns))} FROM {_quoted(table)} WHERE {where} ORDER BY {key}"
    try:
        return [dict(zip(columns, values, strict=False)) for values in conn.execute(query, params).fetchall()]
    except sqlite3.OperationalError as exc:
        if "decode to UTF-8" not in str(exc):
            raise
    conn.text_factory = text_or_bytes  # read again: only the rows holding such text are reported
    try:
        return [dict(zip(columns, values, strict=False)) for values in conn.execute(query, params).fetchall()]
    finally:
        conn.text_factory = str


def text_or_bytes(data: bytes):
    """A SQLite text_factory: the text, or for bytes that are not UTF-8 (SQLite stores any bytes as
    TEXT; sqlite3 would fail the whole fetch) the bytes, whose row :func:`convert_rows` reports."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data


def read_and_convert(
    path: str, timeout: float, table: str, columns: tuple, after, upto, mode: str, backend: str, layout: tuple
) -> list[Converted | Unreadable]:
    """:func:`read_rows` then :func:`convert_rows`."""
    return convert_rows(mode, read_rows(path, timeout, table, columns, after, upto), backend, layout)


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


TASKS = {"convert_rows": convert_rows, "read_and_convert": read_and_convert}


# --- the worker process ---------------------------------------------------------------------------


def send(fd: int, message) -> None:
    """Write ``message`` to file descriptor ``fd``: its pickle's length (8 bytes), then the pickle."""
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    for view in (memoryview(len(data).to_bytes(_HEADER, "little")), memoryview(data)):
        while view:  # a pipe takes what it can: write the rest until all is written
            view = view[os.write(fd, view) :]


def receive(fd: int):
    """The next message from file descriptor ``fd``, or EOFError when the other side closed it."""
    size = int.from_bytes(_read(fd, _HEADER), "little")
    return pickle.loads(_read(fd, size))


def _read(fd: int, size: int) -> bytearray:
    """Exactly ``size`` bytes (a pipe gives what it has: read until they are all there)."""
    data = bytearray(size)
    view = memoryview(data)
    done = 0
    while done < size:
        if hasattr(os, "readv"):
            count = os.readv(fd, [view[done:]])
        else:  # pragma: no cover - Windows
            chunk = os.read(fd, size - done)
            count = len(chunk)
            view[done : done + count] = chunk
        if count == 0:
            raise EOFError
        done += count
    return data


def serve(parent: int) -> None:
    """A worker's loop: tasks ``(name, args)`` from stdin, ``("ok", result)`` or ``("raised", exc)``
    to stdout, until stdin closes. Dies with the importing process (Linux: the kernel kills it)."""
    import gc
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the importer's to handle; it ends us
    _die_with_parent()
    if os.getppid() != parent:  # the parent died before we asked
        return
    gc.disable()  # a conversion creates no reference cycles (a failed one may: collected below)
    tasks, answers = sys.stdin.fileno(), sys.stdout.fileno()
    sys.stdout = sys.stderr  # a stray print must not break the answers' framing
    send(answers, ("ok", "ready"))
    while True:
        try:
            name, args = receive(tasks)
        except EOFError:
            return
        try:
            answer = ("ok", TASKS[name](*args))
            failed = any(isinstance(result, Unreadable) for result in answer[1])
        except Exception as exc:  # noqa: BLE001 - handed to the importer, which raises it
            answer, failed = ("raised", _portable(exc)), True
        send(answers, answer)
        del answer
        if failed:  # an exception's traceback holds its frames: free them now
            gc.collect()


def _portable(exc: Exception) -> Exception:
    """``exc`` if it survives pickling, else a RuntimeError with its text."""
    import traceback

    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:  # noqa: BLE001
        return RuntimeError("".join(traceback.format_exception_only(type(exc), exc)).strip())


def _die_with_parent() -> None:
    """On Linux, ask the kernel to kill this process when its parent dies (a killed import must not
    leave workers behind); elsewhere the closed stdin ends the loop after the current task."""
    import contextlib
    import signal

    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(Exception):
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
