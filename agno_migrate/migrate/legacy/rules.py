"""What the SQL and MongoDB imports of Agno 1.x data decide alike: which tables to import
(``--legacy-table NAME[:mode]``), and whether a session already stored is the one being imported."""

from __future__ import annotations

import json
from typing import Any

from agno_migrate.errors import UsageError
from agno_migrate.jsoncodec import decode_json
from agno_migrate.migrate.detection import LEGACY_MODES, MEMORIES
from agno_migrate.schema import JSON_COLUMNS, SESSION_COLUMNS
from agno_migrate.target import validate_identifier


def parse_table_option(value: str) -> tuple[str, str | None]:
    """``NAME[:mode]`` of ``--legacy-table``; raises UsageError for a bad name or mode."""
    name, _, mode = value.partition(":")
    validate_identifier(name, "legacy table name", 64)
    if mode and mode not in (*LEGACY_MODES, MEMORIES):
        raise UsageError(f"unknown Agno 1.x mode {mode!r} for {name} (one of {', '.join((*LEGACY_MODES, MEMORIES))})")
    return name, mode or None


def canonical_session(row: dict) -> str:
    """A session's content as one text: two sessions are the same when their texts are equal (an
    Agno 1.x session already stored with the same content is skipped, with other content reported).

    Only the head session columns count (MongoDB's ``_id`` and a legacy ``runs`` field do not). A
    JSON column held as text (as SQLite and MariaDB store it, as the import's workers encode it, in
    any number of layers) counts as the value it encodes; text that is not JSON, as it is.
    """
    return json.dumps({name: _content(name, row.get(name)) for name in SESSION_COLUMNS}, sort_keys=True, default=str)


def _content(name: str, value: Any) -> Any:
    if name in JSON_COLUMNS and isinstance(value, (str, bytes)):
        try:
            return decode_json(value)
        except ValueError:  # (a UnicodeDecodeError too): compared as it is
            return value
    return value
