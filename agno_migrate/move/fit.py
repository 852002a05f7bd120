"""Values a copy's target cannot hold, by the rules every upgrade follows (``agno_migrate.storable``,
``convert.nul``), each counted and named per session:

* NUL characters where the backend stores none (PostgreSQL): removed (``convert.strip_nul``);
* lone UTF-16 surrogates where text is UTF-8 only (PostgreSQL's jsonb, MongoDB's BSON): U+FFFD
  (``storable.replace_lone_surrogates``);
* nesting deeper than the backend's JSON holds (MariaDB): the deepest parts as their JSON text
  (``storable.text_beyond_depth``);
* MongoDB: a session field holding an integer beyond 64 bits stays its JSON text (as the 2.3.0 step
  leaves it), a run holding one is not stored (as the 3.0.0 step): see ``move.sink``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from agno_migrate import convert, jsoncodec
from agno_migrate.move.json_text import JsonText, holds_text
from agno_migrate.move.rows import settle_unit
from agno_migrate.schema import JSON_COLUMNS
from agno_migrate.storable import INT_MAX, INT_MIN, replace_lone_surrogates, text_as_is, text_beyond_depth


@dataclass
class Fitted:
    """What the rules changed, per session: ``(session_id, count)`` lists."""

    nul_removed: list[tuple[str, int]] = field(default_factory=list)
    surrogates_replaced: list[tuple[str, int]] = field(default_factory=list)
    deep_as_text: list[tuple[str, int]] = field(default_factory=list)
    big_ints_as_text: list[tuple[str, str]] = field(default_factory=list)
    """(session_id, field) of session fields kept as JSON text on MongoDB."""

    def as_dict(self) -> dict:
        return {
            "nul_removed": self.nul_removed,
            "surrogates_replaced": self.surrogates_replaced,
            "deep_as_text": self.deep_as_text,
            "big_ints_as_text": self.big_ints_as_text,
        }


@dataclass(frozen=True)
class Rules:
    """Which rules apply: the target's facts (or, for ``verify``, either side's)."""

    strip_nul: bool = False
    replace_surrogates: bool = False
    max_depth: int | None = None
    int64_fields: bool = False

    @classmethod
    def of(cls, *dialects) -> Rules:
        return cls(
            strip_nul=any(not d.stores_nul for d in dialects),
            replace_surrogates=any(not d.json_lone_surrogates for d in dialects),
            max_depth=min((d.json_max_depth for d in dialects if d.json_max_depth), default=None),
            int64_fields=any(not d.sql for d in dialects),
        )


def fit_unit(
    session: dict, runs: list[dict], rules: Rules, seen: Fitted | None = None, problems: list | None = None
) -> tuple[dict, list[dict]]:
    """``session`` and ``runs`` (head rows) as the target holds them; what changed goes to ``seen``.
    Stored JSON text (``json_text.JsonText``, which no rule applies to) stays as it is unless a rule
    applies to the unit's other values: then it is decoded first (what that names goes to ``problems``)."""
    if holds_text(session) or any(holds_text(run) for run in runs):
        if not (rules.max_depth or rules.int64_fields) and _untouched((session, *runs), rules):
            return session, runs
        session, runs = settle_unit(session, runs, [] if problems is None else problems)
    sid = str(session.get("session_id"))
    nul, surrogates, digits = _hints((session, runs), rules)
    if rules.strip_nul and nul:
        (session, runs), count = convert.strip_nul((session, runs))
        if count and seen is not None:
            seen.nul_removed.append((sid, count))
    if rules.replace_surrogates and surrogates:
        (session, runs), count = replace_lone_surrogates([session, runs])
        if count and seen is not None:
            seen.surrogates_replaced.append((sid, count))
    if rules.max_depth:
        deep = 0
        session = dict(session)
        for name in JSON_COLUMNS:
            session[name], n = text_beyond_depth(session.get(name), rules.max_depth)
            deep += n
        fitted = []
        for run in runs:
            data, n = text_beyond_depth(run.get("run_data"), rules.max_depth)
            deep += n
            fitted.append({**run, "run_data": data} if n else run)
        runs = fitted
        if deep and seen is not None:
            seen.deep_as_text.append((sid, deep))
    if rules.int64_fields and digits:
        changed = {name: jsoncodec.dumps(session[name]) for name in JSON_COLUMNS if beyond_int64(session.get(name))}
        if changed:
            session = {**session, **changed}
            if seen is not None:
                seen.big_ints_as_text += [(sid, name) for name in changed]
    return session, runs


_LONG_NUMBER = re.compile(r"[0-9]{19}")


def _untouched(rows: tuple[dict, ...], rules: Rules) -> bool:
    """Whether no NUL or surrogate rule applies to the values of ``rows`` beside their stored JSON text
    (which holds neither): text by ``storable.text_as_is``, other JSON values by :func:`_hints`."""
    for row in rows:
        for value in row.values():
            kind = value.__class__
            if value is None or kind is JsonText or kind is int or kind is float or kind is bool:
                continue
            if kind is str:
                if not text_as_is(value, nul=not rules.strip_nul):
                    return False
            elif any(_hints(value, rules)):
                return False
    return True


def _hints(value: Any, rules: Rules) -> tuple[bool, bool, bool]:
    """Whether ``value`` may hold a NUL, a lone surrogate, an integer of 19 digits or more: one
    encoding of the whole unit instead of a walk per rule (most units hold none)."""
    if not (rules.strip_nul or rules.replace_surrogates or rules.int64_fields):
        return False, False, False
    text = json.dumps(value, ensure_ascii=False, default=str, check_circular=False)
    try:
        text.encode("utf-8")
        surrogates = False
    except UnicodeEncodeError:
        surrogates = True
    return "\\u0000" in text, surrogates, bool(rules.int64_fields and _LONG_NUMBER.search(text))


def beyond_int64(value: Any) -> bool:
    """Whether ``value`` holds an integer BSON cannot store (beyond 64 bits)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return not INT_MIN <= value <= INT_MAX
    if isinstance(value, dict):
        return any(beyond_int64(v) for v in value.values())
    if isinstance(value, list):
        return any(beyond_int64(v) for v in value)
    return False
