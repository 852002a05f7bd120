"""The export file: JSON Lines, one session with its runs a line (docs/export-format.md).

::

    {"kind": "agno-migrate-export", "format": 1, "schema": "3.0.1", "source": ..., "created_at": ..., ...}
    {"kind": "session", "session": {...sessions-table row...}, "runs": [{...runs-table row...}, ...]}
    {"kind": "table", "family": "memories", "table": "agno_memories", "row": {...}}
    {"kind": "end", "sessions": 2, "runs": 5, "table_rows": 1}

Rows are the head rows as Agno 3.1 stores them, their JSON columns as JSON values (not text). Lines
are UTF-8, written by the standard ``json`` encoder so that every value comes back exactly
(:func:`encode`, read by ``jsoncodec.loads``): integers of any size, floats as ``repr`` gives
them, NaN and ±Infinity as ``NaN``/``Infinity``/``-Infinity`` (only a source that holds them, such
as SQLite's JSON text, has them), NUL as ``\\u0000``, a lone surrogate as its ``\\udXXX`` escape,
every other character as itself. A file named ``*.gz`` is gzip-compressed. Writing and reading
stream: one line in memory at a time.

A file is written under ``<name>.part`` and renamed when its end line is written, so an export
that fails leaves no file that looks whole; a reader refuses a file without its end line or whose
end line disagrees with what it read (:class:`ExportFile`).
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

from agno_migrate import __version__, jsoncodec, registry
from agno_migrate.errors import Incomplete, UsageError

KIND = "agno-migrate-export"
FORMAT = 1
GZIP_LEVEL = 6  # gzip's default trades a little size for about twice the speed of level 9

_encoder = json.JSONEncoder(ensure_ascii=False, check_circular=False, separators=(",", ":"))


def encode(record: dict) -> bytes:
    """One line of the file (with its newline): ``record`` as JSON text in UTF-8.

    A lone surrogate (text no UTF-8 can hold) is written as its JSON escape (``\\ud83d``): it can
    only stand inside a JSON string, where the escape reads back as the same character. Raises
    TypeError naming the value for what JSON cannot hold (a datetime, bytes, ...)."""
    return (_encoder.encode(record) + "\n").encode("utf-8", "backslashreplace")


def is_gzip(path: str | os.PathLike) -> bool:
    return str(path).endswith(".gz")


@dataclass
class Counts:
    """What a file holds (or a writer wrote): sessions, runs, rows of other tables."""

    sessions: int = 0
    runs: int = 0
    table_rows: int = 0
    tables: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"sessions": self.sessions, "runs": self.runs, "table_rows": self.table_rows, "tables": self.tables}


class ExportWriter:
    """Writes an export file: the header when opened, then :meth:`session` and :meth:`table_row`
    lines, the end line and the rename on :meth:`close` (a ``with`` block closes it; an error in
    the block removes the partial file instead)."""

    def __init__(self, path: str | os.PathLike, source: str, filters: dict | None = None, tables: dict | None = None):
        self.path = Path(path)
        self.partial = self.path.with_name(self.path.name + ".part")
        self.counts = Counts()
        try:
            raw = open(self.partial, "wb")  # noqa: SIM115 (closed by close/abort)
        except OSError as exc:
            raise UsageError(f"cannot write {self.path}: {exc.strerror or exc}") from None
        self._file: IO[bytes] = gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=GZIP_LEVEL,
                                              filename="", mtime=0) if is_gzip(path) else raw  # fmt: skip
        self._raw = raw
        self.header = {
            "kind": KIND,
            "format": FORMAT,
            "schema": registry.HEAD.version,
            "source": source,
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
            "tool": f"agno-migrate {__version__}",
            "filters": filters or {},
            "tables": tables or {},
        }
        self._write(self.header)

    def _write(self, record: dict) -> None:
        try:
            self._file.write(encode(record))
        except OSError as exc:
            raise UsageError(f"cannot write {self.path}: {exc.strerror or exc}") from None

    def session(self, session: dict, runs: list[dict]) -> None:
        """One session's line: its sessions-table row and its runs-table rows, in ``run_index`` order."""
        try:
            line = encode({"kind": "session", "session": session, "runs": runs})
        except (TypeError, ValueError, RecursionError) as exc:
            raise UsageError(
                f"session {session.get('session_id')!r} holds a value JSON cannot hold ({exc}): nothing exported"
            ) from None
        try:
            self._file.write(line)
        except OSError as exc:
            raise UsageError(f"cannot write {self.path}: {exc.strerror or exc}") from None
        self.counts.sessions += 1
        self.counts.runs += len(runs)

    def table_row(self, family: str, table: str, row: dict) -> None:
        """One row of another Agno table (``family``: memories, evals, ...; ``table``: its name there)."""
        try:
            line = encode({"kind": "table", "family": family, "table": table, "row": row})
        except (TypeError, ValueError, RecursionError) as exc:
            raise UsageError(f"a row of {table} holds a value JSON cannot hold ({exc}): nothing exported") from None
        self._file.write(line)
        self.counts.table_rows += 1
        self.counts.tables[family] = self.counts.tables.get(family, 0) + 1

    def close(self) -> Counts:
        """Write the end line, close, and give the file its name; returns what it holds."""
        self._write({"kind": "end", **self.counts.as_dict()})
        try:
            self._file.close()
            self._raw.close()
            os.replace(self.partial, self.path)
        except OSError as exc:
            self.abort()
            raise UsageError(f"cannot write {self.path}: {exc.strerror or exc}") from None
        return self.counts

    def abort(self) -> None:
        """Close and remove the partial file."""
        for closing in (self._file.close, self._raw.close):
            try:
                closing()
            except OSError:
                pass
        try:
            os.unlink(self.partial)
        except OSError:
            pass

    def __enter__(self) -> ExportWriter:
        return self

    def __exit__(self, kind, exc, tb) -> bool:
        if kind is None:
            self.close()
        else:
            self.abort()
        return False


@dataclass
class SessionRecord:
    session: dict
    runs: list[dict]


@dataclass
class TableRecord:
    family: str
    table: str
    row: dict


class ExportFile:
    """An export file to read: :attr:`header` (read when opened), then iterate for its records
    (:class:`SessionRecord`, :class:`TableRecord`), one line in memory at a time. Raises
    UsageError (exit 2) for a file that is not an export, of a format or schema this release does
    not read, or a line that is not what the format says (named by its number); Incomplete (exit 9),
    once every record before it was given, for a file cut short (no end line, or counts that
    disagree with it)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.counts = Counts()
        self.end: dict | None = None
        try:
            raw = open(self.path, "rb")  # noqa: SIM115 (closed by close)
        except OSError as exc:
            raise UsageError(f"cannot read {self.path}: {exc.strerror or exc}") from None
        self._file: IO[bytes] = gzip.GzipFile(fileobj=raw, mode="rb") if is_gzip(path) else raw
        self._raw = raw
        self._lines = self._numbered()
        try:
            first = next(self._lines, None)
        except BaseException:
            self.close()
            raise
        header = first[1] if first else None
        if not isinstance(header, dict) or header.get("kind") != KIND:
            self.close()
            raise UsageError(f"{self.path} is not an agno-migrate export (its first line is not the export header)")
        if header.get("format") != FORMAT:
            self.close()
            raise UsageError(
                f"{self.path} is an export of format {header.get('format')!r}; this release reads format {FORMAT}"
            )
        if header.get("schema") != registry.HEAD.version:
            self.close()
            raise UsageError(
                f"{self.path} holds rows of schema {header.get('schema')!r}; this release reads "
                f"{registry.HEAD.version} (its head)"
            )
        self.header: dict = header

    def _numbered(self) -> Iterator[tuple[int, Any]]:
        number = 0
        try:
            for number, line in enumerate(self._file, 1):  # noqa: B007 (read after the loop for errors)
                if not line.strip():
                    continue
                try:
                    yield number, jsoncodec.loads(line.decode("utf-8"))
                except ValueError as exc:  # also UnicodeDecodeError
                    raise UsageError(f"{self.path}, line {number}: not JSON ({_first_line(exc)})") from None
        except EOFError:  # a compressed file cut short: as a file without its end line
            raise Incomplete(
                f"{self.path} ends without its end line: it was cut short (the compressed stream ends after "
                f"line {number}; read {self.counts.sessions} sessions, {self.counts.runs} runs)"
            ) from None
        except (gzip.BadGzipFile, OSError) as exc:
            raise UsageError(f"{self.path} cannot be read after line {number} ({_first_line(exc)})") from None

    def __iter__(self) -> Iterator[SessionRecord | TableRecord]:
        for number, record in self._lines:
            kind = record.get("kind") if isinstance(record, dict) else None
            if self.end is not None:
                raise UsageError(f"{self.path}, line {number}: a line after the end line")
            if kind == "session":
                session, runs = record.get("session"), record.get("runs")
                if not isinstance(session, dict) or not isinstance(session.get("session_id"), str):
                    raise UsageError(f"{self.path}, line {number}: a session line without its session row")
                if not isinstance(runs, list) or not all(isinstance(run, dict) for run in runs):
                    raise UsageError(f"{self.path}, line {number}: a session line whose runs are not a list of rows")
                self.counts.sessions += 1
                self.counts.runs += len(runs)
                yield SessionRecord(session, runs)
            elif kind == "table":
                family, table, row = record.get("family"), record.get("table"), record.get("row")
                if not (isinstance(family, str) and isinstance(table, str) and isinstance(row, dict)):
                    raise UsageError(f"{self.path}, line {number}: a table line without its family, table and row")
                self.counts.table_rows += 1
                self.counts.tables[family] = self.counts.tables.get(family, 0) + 1
                yield TableRecord(family, table, row)
            elif kind == "end":
                self.end = record
            else:
                raise UsageError(f"{self.path}, line {number}: unknown kind of line {kind!r}")
        self._check_end()

    def _check_end(self) -> None:
        read = self.counts.as_dict()
        if self.end is None:
            raise Incomplete(
                f"{self.path} ends without its end line: it was cut short (read {self.counts.sessions} "
                f"sessions, {self.counts.runs} runs, {self.counts.table_rows} other rows)"
            )
        differ = [f"{key} {self.end.get(key)!r} (read {read[key]})" for key in ("sessions", "runs", "table_rows")
                  if self.end.get(key) != read[key]]  # fmt: skip
        if differ:
            raise Incomplete(f"{self.path}: its end line says {', '.join(differ)}")

    def close(self) -> None:
        for closing in (self._file.close, self._raw.close):
            try:
                closing()
            except OSError:
                pass

    def __enter__(self) -> ExportFile:
        return self

    def __exit__(self, *exc) -> bool:
        self.close()
        return False


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
