"""NUL characters out of stored values, for PostgreSQL (whose text and JSONB cannot hold them)."""

from __future__ import annotations

from typing import Any


def strip_nul(value: Any) -> tuple[Any, int]:
    """``value`` with every NUL character removed from its strings (keys included), and how many
    were removed — for PostgreSQL, whose text and JSONB cannot hold NUL (other backends keep them)."""
    if isinstance(value, str):
        count = value.count("\x00")
        return (value.replace("\x00", ""), count) if count else (value, 0)
    if isinstance(value, dict):
        total, out = 0, {}
        for key, item in value.items():
            new_key, n_key = strip_nul(key)
            new_item, n_item = strip_nul(item)
            out[new_key] = new_item
            total += n_key + n_item
        return (out, total) if total else (value, 0)
    if isinstance(value, (list, tuple)):
        items = [strip_nul(item) for item in value]
        total = sum(n for _, n in items)
        if not total:
            return value, 0
        stripped = [item for item, _ in items]
        return (tuple(stripped) if isinstance(value, tuple) else stripped), total
    return value, 0
