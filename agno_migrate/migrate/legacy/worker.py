"""The Agno 1.x import's per-row work, done in worker processes (or inline): read, convert, encode.

Pure of SQLAlchemy, so that a worker process starts in a few hundredths of a second and stays small
(it imports this module, ``convert`` and the standard library; orjson when installed).

* :func:`convert_rows` turns legacy rows into insert-ready tuples (the head tables' column order),
  JSON columns encoded as text: by orjson when installed and it cannot change a value (compact,
  UTF-8 unescaped), else ``json.dumps`` (MariaDB: ``json_text``); the text depends only on the row.
* :func:`read_and_convert` does the same for a key range of a legacy SQLite table that the worker
  reads itself (so the importing process does not read, pickle and send the rows).
* :func:`serve` is a worker's main loop (started by ``legacy_pool.Workers``): length-prefixed pickles,
  one answer per task, in order, until its stdin closes.
"""

from __future__ import annotations

import json
import os
import pickle
import sys

from agno_migrate import convert

# json.dumps(value), minus the cycle check (decoded JSON holds no cycles): the same text, ~10% faster
_dumps = json.JSONEncoder(check_circular=False).encode
_FLOAT_MAX = 1.7976931348623157e308
_HEADER = 8  # bytes of a message's length prefix


def convert_rows(mode: str, rows: list[dict], backend: str, layout: tuple) -> list[tuple]:
    """Convert Agno 1.x rows for ``backend``, ready to insert (pure).

    ``layout`` is (session columns, runs columns, JSON columns of the sessions table[, utf8]). Each row
    gives ``("ok", session_values, [run_values, ...], nul_removed, created_at_filled, size)`` (tuples
    in the columns' order, JSON columns already encoded as text — or, with ``utf8`` true, possibly as
    that text's UTF-8 bytes, which the caller stores as TEXT; ``size``: the length of that text or
    those bytes), or ``("error", session_id, reason)``.
    """
    session_columns, run_columns, json_columns = layout[:3]
    if backend == "mysql":
        from agno_migrate.backends.sql import json_text as exact
    else:
        exact = _dumps
    fast = _orjson_encoder(exact, utf8=len(layout) > 3 and layout[3])
    out = []
    for row in rows:
        undecodable = [name for name, value in row.items() if value.__class__ is bytes]
        if undecodable:  # (see text_or_bytes)
            out.append(
                (
                    "error",
                    str(row.get("session_id")),
                    f"column(s) {', '.join(undecodable)} hold bytes that are not UTF-8 text",
                )
            )
            continue
        seen = convert.nonstandard_count()
        try:
            session_row, runs = convert.convert_v1_session(mode, row)
        except convert.ConversionError as exc:
            out.append(("error", str(row.get("session_id")), str(exc)))
            continue
        encode = fast if fast is not None and convert.nonstandard_count() == seen and _plain(row) else exact
        removed = 0
        if backend == "postgresql":  # JSONB and text there cannot hold NUL
            (session_row, runs), removed = convert.strip_nul((session_row, runs))
        filled = session_row["created_at"] is None
        if filled:  # the head schema requires one: the row's updated_at, else 0
            session_row["created_at"] = session_row["updated_at"] or 0
        run_rows, _ = convert.run_rows(session_row, runs)
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
        out.append(("ok", tuple([session_row[c] for c in session_columns]), run_values, removed, filled, size))
    return out


def _orjson_encoder(exact, utf8: bool = False):
    """orjson's encoder as text (compact, UTF-8 unescaped: the same values as ``exact`` gives, in
    about half the time) — as its UTF-8 bytes when ``utf8`` (not decoded here, nor pickled and
    decoded again by the importer) —, ``exact`` for a value orjson rejects (an integer beyond 64 bits,
    lone surrogates, a key that is not text, deep nesting); None without orjson.

    Only for values that hold no non-finite float (orjson writes those as null): see
    :func:`convert_rows`, which decides per row, from the row alone, so the stored bytes depend only
    on the row (an interrupted import resumed gives the bytes of an uninterrupted one).
    """
    if convert._orjson is None:
        return None
    dumps, failed = convert._orjson.dumps, convert._orjson.JSONEncodeError

    def encode_utf8(value) -> bytes | str:
        try:
            return dumps(value)
        except failed:
            return exact(value)

    if utf8:
        return encode_utf8

    def encode(value) -> str:
        try:
            return dumps(value).decode("utf-8")
        except failed:
            return exact(value)

    return encode


def _plain(row: dict) -> bool:
    """Whether every column value of ``row`` is text, NULL, an integer or a finite float: then its
    converted values hold only those, and what orjson parsed (``convert.nonstandard_count`` tells
    the rest)."""
    for value in row.values():
        kind = value.__class__
        if not (kind is str or value is None or kind is int or (kind is float and -_FLOAT_MAX <= value <= _FLOAT_MAX)):
            return False
    return True


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
) -> list[tuple]:
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
            failed = any(result[0] == "error" for result in answer[1])
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
