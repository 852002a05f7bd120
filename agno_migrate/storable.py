"""What every target can hold: one rule per JSON value some backend cannot store.

The targets disagree on JSON: PostgreSQL's ``jsonb`` holds no NUL character and no lone UTF-16
surrogate, nor NaN/±Infinity (``json`` text holds the escapes, not the numbers); MariaDB's JSON
(text checked by ``JSON_VALID``) holds no NaN/±Infinity and no nesting deeper than
:data:`MAX_DEPTH`; MongoDB's BSON holds no integer beyond 64 bits and no NUL in a key; SQLite
holds anything. The rules, the same on every backend:

* Migrations (existing rows): a row never blocks the database. In JSON text cast to ``jsonb``,
  ``\\u0000`` escapes are removed and lone surrogate escapes (a ``\\ud800``–``\\udbff`` not followed
  by a low one, or a ``\\udc00``–``\\udfff`` not preceded by a high one) become ``\\ufffd`` (the
  Unicode replacement character); both are counted per row and named in the report
  (:func:`fit_for_jsonb`). Every other character is kept.
* MongoDB 2.0 sessions hold their JSON as strings, decoded by the 2.3.0 step: lone surrogates in
  the decoded text become U+FFFD, counted and named (BSON text is UTF-8: :func:`replace_lone_surrogates`).
* Imports (Agno 1.x rows) into a backend with a nesting limit (MariaDB): a converted value nested
  deeper than :data:`MAX_DEPTH` keeps its deepest parts as their JSON text (strings: nothing is
  lost, ``json.loads`` gives them back), counted and named per session (:func:`text_beyond_depth`).
* The session store (new values): :func:`check_value` refuses, with a UsageError naming the field,
  what any backend could not hold or read back as it was given: values that are not JSON
  (datetime, bytes, sets, objects, non-text keys), NaN/±Infinity, integers beyond 64 bits
  (-2**63..2**63-1), NUL characters and lone surrogates in text, nesting deeper than
  :data:`MAX_DEPTH`.

No I/O, no SQLAlchemy: the revisions, the table steps and the store import it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from agno_migrate.errors import UsageError
from agno_migrate.jsoncodec import FLOAT_MAX

MAX_DEPTH = 31
"""The deepest nesting of objects and arrays a stored JSON value may have (a flat object is 1):
MariaDB's JSON_VALID rejects 32 levels."""

INT_MIN, INT_MAX = -(2**63), 2**63 - 1

# an escape, not an escaped backslash followed by "u...": preceded by an even number of backslashes
_EVEN = r"(?<!\\)((?:\\\\)*)"
NUL_ESCAPE = re.compile(_EVEN + r"\\u0000")
# a high surrogate escape with its low one (kept), a lone high one, or a lone low one
SURROGATE_ESCAPE = re.compile(
    _EVEN
    + r"\\u([dD][89abAB][0-9a-fA-F]{2})(\\u[dD][c-fC-F][0-9a-fA-F]{2})?|"
    + _EVEN
    + r"\\u[dD][c-fC-F][0-9a-fA-F]{2}"
)
SURROGATE_HINT = r"\\u[dD][89a-fA-F]"
"""A PostgreSQL regular expression (``~``) matching JSON text that may hold a surrogate escape."""
SURROGATE_PAIR = r"\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}"
"""A high surrogate escape followed by a low one: an escaped character outside the BMP (an emoji),
which JSONB holds."""
REPLACEMENT = "\\ufffd"
# any escape (a surrogate pair as one), for databases that do not hold every character: groups 1-4
# as in SURROGATE_ESCAPE, then (5) the backslashes before another escape, (6) its hex digits
_ANY_ESCAPE = re.compile(SURROGATE_ESCAPE.pattern + "|" + _EVEN + r"\\u([0-9a-fA-F]{4})")


def fit_for_jsonb(text: str, holds: Callable[[str], bool] | None = None) -> tuple[str, int, int, int]:
    """``text`` (JSON text) as ``jsonb`` can hold it: (the text, NUL escapes removed, lone surrogate
    escapes replaced by ``\\ufffd``, escapes kept as text). Unchanged text when every count is 0.

    ``holds`` (:func:`server_holds`; None: a UTF-8 database, which holds every character) tells
    whether the database's encoding holds a character: an escape of one it does not (an emoji in a
    LATIN1 database) gets its backslash escaped, so the string keeps the escape's text, ``\\u...``
    (nothing lost, though no longer the character)."""
    text, nuls = NUL_ESCAPE.subn(r"\1", text)
    replaced = escaped = 0

    def fix(match: re.Match) -> str:
        nonlocal replaced, escaped
        if match.group(2) is not None:  # a high surrogate
            if match.group(3) is None:
                replaced += 1
                return match.group(1) + REPLACEMENT
            char = (
                (chr(int(match.group(2), 16)) + chr(int(match.group(3)[2:], 16)))
                .encode("utf-16-le", "surrogatepass")
                .decode("utf-16-le")
            )
            if holds is None or holds(char):
                return match.group(0)
            escaped += 1
            return match.group(1) + "\\\\u" + match.group(2) + "\\" + match.group(3)
        if match.re is _ANY_ESCAPE and match.group(5) is not None:  # another escape: kept unless not held
            if holds is None or holds(chr(int(match.group(6), 16))):
                return match.group(0)
            escaped += 1
            return match.group(5) + "\\\\u" + match.group(6)
        replaced += 1
        return match.group(4) + REPLACEMENT

    if "\\u" in text:
        text = (SURROGATE_ESCAPE if holds is None else _ANY_ESCAPE).sub(fix, text)
    return text, nuls, replaced, escaped


# PostgreSQL server encodings -> Python codecs (SQL_ASCII, and any not listed: ASCII only)
_PG_CODECS = {
    "LATIN1": "latin_1", "LATIN2": "iso8859_2", "LATIN3": "iso8859_3", "LATIN4": "iso8859_4",
    "LATIN5": "iso8859_9", "LATIN6": "iso8859_10", "LATIN7": "iso8859_13", "LATIN8": "iso8859_14",
    "LATIN9": "iso8859_15", "LATIN10": "iso8859_16", "ISO_8859_5": "iso8859_5", "ISO_8859_6": "iso8859_6",
    "ISO_8859_7": "iso8859_7", "ISO_8859_8": "iso8859_8", "WIN866": "cp866", "WIN874": "cp874",
    "WIN1250": "cp1250", "WIN1251": "cp1251", "WIN1252": "cp1252", "WIN1253": "cp1253", "WIN1254": "cp1254",
    "WIN1255": "cp1255", "WIN1256": "cp1256", "WIN1257": "cp1257", "WIN1258": "cp1258", "KOI8R": "koi8_r",
    "KOI8U": "koi8_u", "EUC_JP": "euc_jp", "EUC_KR": "euc_kr", "EUC_CN": "gb2312", "EUC_TW": "ascii",
    "BIG5": "big5", "GBK": "gbk", "SJIS": "shift_jis", "UHC": "cp949", "JOHAB": "johab",
}  # fmt: skip


def may_not_fit_jsonb(text, holds):
    """A SQLAlchemy condition on a PostgreSQL JSON column's text (``text``) true for the rows that
    :func:`fit_for_jsonb` must look at: a NUL escape, a surrogate escape left once the pairs are
    taken out (an escaped emoji is a pair: most rows of many databases hold some, and reading them
    all into Python would cost more than the cast), or, in a database that does not hold every
    character (``holds`` not None), any escape of a non-ASCII character. Rows it leaves out are
    cast as they are."""
    import sqlalchemy as sa

    nul = sa.func.strpos(text, sa.literal("\\u0000", sa.Text)) > 0
    if holds is not None:
        return sa.or_(nul, text.op("~")(sa.literal(NON_ASCII_ESCAPE_HINT, sa.Text)))
    hint = sa.literal(SURROGATE_HINT, sa.Text)
    unpaired = sa.func.regexp_replace(text, sa.literal(SURROGATE_PAIR, sa.Text), "", "g").op("~")(hint)
    return sa.or_(nul, sa.and_(text.op("~")(hint), unpaired))


JSONB_REFUSALS = ("22P02", "22P05")
"""The SQLSTATEs of a ``json`` -> ``jsonb`` cast that meets what jsonb cannot hold: a lone surrogate
escape (invalid_text_representation), a NUL escape or a character the database's encoding lacks
(untranslatable_character)."""


def cast_as_is(conn, cast: Callable[[], None]) -> bool:
    """Run ``cast`` (an ``ALTER TABLE … TYPE jsonb``) in a savepoint of ``conn``. True: every row fit as
    it was, and :func:`fit_for_jsonb` would have changed none (it changes only rows the cast refuses), so
    nothing is read. False: a row did not fit (:data:`JSONB_REFUSALS`); the cast is rolled back and the
    caller fits the rows :func:`may_not_fit_jsonb` selects, then casts again. Most databases cast at
    once; this spares them the scan of every JSON text for escapes."""
    import sqlalchemy as sa

    try:
        with conn.begin_nested():
            cast()
    except sa.exc.DBAPIError as exc:
        if getattr(exc.orig, "sqlstate", None) not in JSONB_REFUSALS:
            raise
        return False
    return True


NON_ASCII_ESCAPE_HINT = r"\\u(00[89a-fA-F]|0[1-9a-fA-F]|[1-9a-fA-F])"
"""A PostgreSQL regular expression matching JSON text that may hold an escape of a non-ASCII character."""


def server_holds(server_encoding: str) -> Callable[[str], bool] | None:
    """Whether a PostgreSQL database in ``server_encoding`` holds a character; None for UTF8 (and
    GB18030), which hold every one."""
    name = server_encoding.upper()
    if name in ("UTF8", "GB18030"):
        return None
    codec = _PG_CODECS.get(name, "ascii")

    def holds(char: str) -> bool:
        try:
            char.encode(codec)
        except UnicodeEncodeError:
            return False
        return True

    return holds


def text_beyond_depth(value: Any, max_depth: int = MAX_DEPTH) -> tuple[Any, int]:
    """``value`` (a column's JSON value, level 1) with every object or array that would sit deeper
    than ``max_depth`` levels replaced by its JSON text; and how many were replaced. ``value``
    itself when none is."""
    from agno_migrate.jsoncodec import dumps

    count = 0

    def walk(item: Any, level: int) -> Any:
        nonlocal count
        if isinstance(item, dict):
            if level > max_depth:
                count += 1
                return dumps(item)
            changed = {key: walk(inner, level + 1) for key, inner in item.items()}
            return changed
        if isinstance(item, (list, tuple)):
            if level > max_depth:
                count += 1
                return dumps(item)
            return [walk(inner, level + 1) for inner in item]
        return item

    if not _deeper_than(value, max_depth):
        return value, 0
    return walk(value, 1), count


def _deeper_than(value: Any, max_depth: int) -> bool:
    """Whether ``value`` nests objects and arrays deeper than ``max_depth`` levels (no copy)."""
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            items = item.values()
        elif isinstance(item, (list, tuple)):
            items = item
        else:
            continue
        if level > max_depth:
            return True
        stack.extend((inner, level + 1) for inner in items if isinstance(inner, (dict, list, tuple)))
    return False


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


_SURROGATE_AT = re.compile(r"\\u[dD]([89a-fA-F])[0-9a-fA-F]{2}")
"""``\\u`` and a surrogate's hex digits (group 1: the high ones' 89ab, the low ones' c-f), whether or not
the backslash is escaped itself: a pattern with a literal start, found by a fast search."""


def may_hold_lone_surrogate(text: str) -> bool:
    """Whether JSON ``text`` read from a UTF-8 source (which holds no raw surrogate) decodes to a value
    with a lone surrogate: an escape of one without its pair. False lets a caller skip the walk of
    :func:`replace_lone_surrogates` over the decoded value (an escaped emoji is a pair: no walk).

    The same answer as a lone match of :data:`SURROGATE_ESCAPE` (tests/test_jsonb_fit.py compares them),
    found without it: its look-behind start makes the regex engine try every position of the text (the
    copy's pass-through asks this of every stored JSON value), so each ``\\uD...`` is found by
    :data:`_SURROGATE_AT` and the backslashes before it counted here."""
    paired = -1
    for found in _SURROGATE_AT.finditer(text):
        start = found.start()
        if start < paired:  # (the low half of the pair just seen)
            continue
        before = start
        while before and text[before - 1] == "\\":
            before -= 1
        if (start - before) % 2:  # an escaped backslash, then "u...": text, not an escape
            continue
        if found.group(1) in "89abAB":
            low = _SURROGATE_AT.match(text, found.end())
            if low is not None and low.group(1) in "cdefCDEF":
                paired = low.end()
                continue
        return True
    return False


def replace_lone_surrogates(value: Any) -> tuple[Any, int]:
    """A decoded JSON value with every lone surrogate in its strings (keys included) replaced by
    U+FFFD, and how many (decoding joins a real pair into one character, so any left is lone):
    the decoded counterpart of :func:`fit_for_jsonb`, for backends whose text is UTF-8 (BSON)."""
    if isinstance(value, str):
        return _LONE_SURROGATE.subn("\ufffd", value) if _LONE_SURROGATE.search(value) else (value, 0)
    if isinstance(value, dict):
        total, out = 0, {}
        for key, item in value.items():
            new_key, in_key = replace_lone_surrogates(key)
            out[new_key], in_item = replace_lone_surrogates(item)
            total += in_key + in_item
        return (out, total) if total else (value, 0)
    if isinstance(value, list):
        items = [replace_lone_surrogates(item) for item in value]
        total = sum(count for _, count in items)
        return ([item for item, _ in items], total) if total else (value, 0)
    return value, 0


_WHAT_TO_PASS = "pass JSON values only: dict (text keys), list, str, int, float, bool or None"


def check_value(value: Any, field: str) -> None:
    """Raise UsageError naming ``field`` (and the path inside it) when ``value`` is not a JSON value
    every backend holds as given (see the module docstring)."""
    if not plain(value):  # the walk that names what is wrong (and decides what plain() left to it)
        _check(value, field, 0)


def _plain_python(*values: Any) -> bool:
    """True only when :func:`check_value` passes each of ``values``: exact dicts with text keys,
    lists and tuples at most :data:`MAX_DEPTH` deep, text (no NUL, no lone surrogate), None, bools,
    64-bit ints and finite floats. False for anything else, which :func:`check_value`'s naming walk
    then decides. The store checks every value of every call: this walk keeps no path, looks at the
    common leaves in place, and checks all the text at once (Python joins no surrogates into a pair: a
    lone one still fails to encode); a caller checking several values asks once. :data:`plain` is the
    same walk in C where it was built (``agno_migrate/_plain.c``), this one elsewhere."""
    texts: list[str] = []
    if not _plain_into(values, -1, texts):  # each value at depth 0
        return False
    return text_as_is("".join(texts), nul=False)


def _plain_into(value: Any, depth: int, texts: list[str]) -> bool:
    """:func:`_plain_python`'s walk of a dict, list or tuple ``value`` at ``depth``: appends its text (keys
    included) to ``texts``."""
    kind = value.__class__
    if kind is dict:
        if depth >= MAX_DEPTH:
            return False
        items = value.values()
        for key in value:
            if key.__class__ is not str:
                return False
            texts.append(key)
    elif kind is list or kind is tuple:
        if depth >= MAX_DEPTH:
            return False
        items = value
    else:
        return False
    depth += 1
    for item in items:
        kind = item.__class__
        if kind is str:
            texts.append(item)
        elif item is None or kind is bool:
            continue
        elif kind is int:
            if not INT_MIN <= item <= INT_MAX:
                return False
        elif kind is float:
            if not -FLOAT_MAX <= item <= FLOAT_MAX:  # False for NaN too
                return False
        elif kind is dict or kind is list or kind is tuple:
            if not _plain_into(item, depth, texts):
                return False
        else:
            return False
    return True


try:  # the same walk in C, about 7x faster (setup.py builds it where a C compiler is there)
    from agno_migrate._plain import plain
except ImportError:  # pragma: no cover - an install without a C compiler
    plain = _plain_python
PLAIN_IN_C = plain is not _plain_python
"""Whether :data:`plain` is the C walk (``agno_migrate._plain``)."""


# A path inside the value being checked: the field's name, or (parent path, format, key), written out
# (:func:`_path`) only for the error message: a call checks every value of a run, and almost always
# finds nothing.
_ITEM, _INDEX, _KEY = "{}[{!r}]", "{}[{}]", "{} key {!r}"


def _path(path) -> str:
    if isinstance(path, str):
        return path
    parent, form, key = path
    return form.format(_path(parent), key)


def _check(value: Any, path, depth: int) -> None:
    kind = value.__class__
    if kind is str:
        _check_text(value, path)
    elif value is None or kind is bool:
        return
    elif kind is int or (isinstance(value, int) and not isinstance(value, bool)):
        if not INT_MIN <= value <= INT_MAX:
            raise UsageError(
                f"{_path(path)} is {value}: integers are stored up to 64 bits ({INT_MIN}..{INT_MAX}) on every "
                "backend; pass a larger number as a string"
            )
    elif kind is float:
        if not math.isfinite(value):
            raise UsageError(f"{_path(path)} is {value!r}: JSON has no NaN or Infinity; pass None or a string instead")
    elif kind is dict or isinstance(value, dict):
        if depth >= MAX_DEPTH:
            raise _too_deep(_path(path))
        for key, item in value.items():
            if key.__class__ is not str:
                raise UsageError(
                    f"{_path(path)} has the key {key!r} ({type(key).__name__}): JSON keys are text; pass str keys"
                )
            _check_text(key, (path, _KEY, key))
            _check(item, (path, _ITEM, key), depth + 1)
    elif kind is list or kind is tuple:
        if depth >= MAX_DEPTH:
            raise _too_deep(_path(path))
        for index, item in enumerate(value):
            _check(item, (path, _INDEX, index), depth + 1)
    else:
        raise UsageError(
            f"{_path(path)} is a {type(value).__name__}, which is not JSON: {_WHAT_TO_PASS} "
            "(e.g. a datetime as .isoformat(), bytes decoded or base64-encoded)"
        )


def _too_deep(path: str) -> UsageError:
    return UsageError(
        f"{path} nests objects and arrays deeper than {MAX_DEPTH} levels, more than MariaDB stores: "
        "flatten it or store the inner part as a JSON string"
    )


def _check_text(text: str, path) -> None:
    if "\x00" in text:
        raise UsageError(f"{_path(path)} holds a NUL character, which PostgreSQL cannot store: remove it")
    if text.isascii():  # no surrogate (the common case, without encoding the text)
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise UsageError(
            f"{_path(path)} holds a lone surrogate (half of a UTF-16 pair), which is not text any backend "
            "stores: pass valid Unicode text"
        ) from None


def text_as_is(text: str, nul: bool = True) -> bool:
    """Whether ``text`` is stored as it is by :func:`fit_value` (no lone surrogate; no NUL unless ``nul``):
    the check of most values, without the walk."""
    if not nul and "\x00" in text:
        return False
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def fit_value(
    value: Any, *, nul: bool = True, bson: bool = False, finite: bool = False, max_depth: int | None = None
) -> tuple[Any, list[str]]:
    """A copied value (a column's canonical value: text, a number, a decoded JSON value) as a target
    holds it, and what was changed, one phrase each (empty: ``value`` itself). Nothing is dropped:

    * lone surrogates in text (no backend's driver writes them) become U+FFFD;
    * ``nul`` False (PostgreSQL): NUL characters in text are removed;
    * ``bson`` (MongoDB): an integer beyond 64 bits becomes its decimal text;
    * ``finite`` (PostgreSQL's jsonb, MariaDB's JSON): NaN and ±Infinity inside a JSON value become
      their text (``"NaN"``, ``"Infinity"``, ``"-Infinity"``);
    * ``max_depth`` (MariaDB): what is nested deeper is kept as its JSON text (:func:`text_beyond_depth`).
    """
    counts = {"nul": 0, "surrogate": 0, "bigint": 0, "nonfinite": 0}

    def text(item: str) -> str:
        if not nul and "\x00" in item:
            counts["nul"] += item.count("\x00")
            item = item.replace("\x00", "")
        if _LONE_SURROGATE.search(item):
            item, n = _LONE_SURROGATE.subn("\ufffd", item)
            counts["surrogate"] += n
        return item

    def walk(item: Any) -> Any:
        kind = item.__class__
        if kind is str:
            return text(item)
        if kind is int and bson and not INT_MIN <= item <= INT_MAX:
            counts["bigint"] += 1
            return str(item)
        if kind is float and finite and not math.isfinite(item):
            counts["nonfinite"] += 1
            return "NaN" if item != item else ("Infinity" if item > 0 else "-Infinity")
        if isinstance(item, dict):
            return {text(k) if isinstance(k, str) else k: walk(v) for k, v in item.items()}
        if isinstance(item, (list, tuple)):
            return [walk(v) for v in item]
        return item

    out = walk(value)
    notes = [
        f"{n} {what}"
        for n, what in (
            (counts["nul"], "NUL character(s) removed"),
            (counts["surrogate"], "lone surrogate(s) replaced by U+FFFD"),
            (counts["bigint"], "integer(s) beyond 64 bits stored as text"),
            (counts["nonfinite"], "NaN/Infinity stored as text"),
        )
        if n
    ]
    if max_depth is not None:
        out, deep = text_beyond_depth(out, max_depth)
        if deep:
            notes.append(f"{deep} value(s) nested beyond {max_depth} levels kept as JSON text")
    return (out, notes) if notes else (value, [])
