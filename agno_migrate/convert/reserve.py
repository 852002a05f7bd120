"""Where Agno 1.x data without a place in the current schema is kept: under an ``agno_v1`` key.

Everything Agno's own v1→v2 conversion maps is mapped the same way; what it drops is placed where
the current schema has a home for it, and what has no home is kept verbatim under an ``agno_v1``
key in the nearest free-form dict that Agno 3.x reads and writes back unchanged:

* session level → ``session_data["agno_v1"]`` (team_session_id, leftover memory, …)
* run level → ``run["metadata"]["agno_v1"]`` (formatted_tool_calls, events, extra_data rest, …)
* run/session metrics → ``metrics["additional_metrics"]["agno_v1"]`` (prompt_tokens_details, …)
* message metrics → ``metrics["provider_metrics"]["agno_v1"]``
* message → ``message["agno_v1"]`` (Message allows extra fields)

A JSON null / Python None field is the same as an absent one for Agno's run classes and is not
carried over; NUL bytes and every other character are kept as they are.
"""

from __future__ import annotations

V1_KEY = "agno_v1"


def with_reserve(target: dict | None, reserve: dict, key: str = V1_KEY) -> dict | None:
    """``target`` with ``reserve`` under ``key`` (a value already there is kept inside the reserve).
    ``target`` itself is not changed: a copy is returned when there is something to add."""
    if not reserve:
        return target
    target = dict(target or {})
    if key in target:
        reserve = {**reserve, key: target[key]}
    target[key] = reserve
    return target
