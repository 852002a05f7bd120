"""The digest of a head row, the one ``verify`` compares on every table: SHA-256 of its canonical JSON
(keys sorted, compact, UTF-8; a lone surrogate kept as it is)."""

from __future__ import annotations

import hashlib
import json


def digest(row: dict) -> bytes:
    text = json.dumps(row, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()
