"""Stored JSON text a copy passes to the target unparsed, where the target parses JSON text itself
(``Dialect.parses_json_text``: PostgreSQL's jsonb) and that parse gives exactly the value the copy's
own path gives (``rows.decoded`` → ``fit.fit_unit`` → ``json.dumps``, parsed by the server).

:func:`plain_text` peels the string layers ``jsoncodec.decode_json`` peels (SQLite's double-encoded
JSON) down to the text of an object or array, and keeps it only when nothing can differ:

* no rule of ``move.fit`` can apply to it: no NUL (``\\u0000``, or a raw one), no lone surrogate
  (escapes of a surrogate not in a pair; the text must encode to UTF-8);
* its numbers are as ``json.dumps`` writes them: every number in a value's position that has a
  fraction or an exponent is ``repr(float(number))`` (so ``1.50``, ``1e2`` or ``1e400`` are decoded;
  an integer is written back with its own digits), and no run of digits is as long as Python's
  limit for an integer's digits (``json.loads`` refuses those).

Text that is not valid JSON is not detected here: the server refuses it (a data error on the batch),
and the sink writes that batch again by decoding every value (``rows.settle_unit``), as it would have.
Any other value goes the copy's usual way.
"""

from __future__ import annotations

import re
import sys
from typing import Any

from agno_migrate import jsoncodec, storable

_FIRST = re.compile(r"[ \t\n\r]*(.?)", re.S)
_CLASSES = bytes(
    ord("0") if chr(b).isdigit() and b < 128 else b":"[0] if b in b":,[" else b" "[0] if b in b" \t\n\r"
    else b if b in b".-+" else ord("e") if b in b"eE" else ord("x")
    for b in range(256)
)  # fmt: skip
_FLOATS = re.compile(rb":[ ]*+(-?0++(?:\.0++(?:e[-+]?0++)?|e[-+]?0++))")
"""In :data:`_CLASSES` (a digit is 0, ``:,[`` are ``:``, white space is a space, e and E are e): a number with a
fraction or an exponent in a value's place (group 1), or text that looks so inside a string. Its literal start
lets the regex engine jump from colon to colon; its quantifiers are possessive (what a run of spaces or digits
is followed by never matches a space or a digit: giving one back cannot make a match), so an attempt that
fails (most colons) fails at once, without trying the shorter runs."""
_LONG_DIGITS = b"0" * (sys.get_int_max_str_digits() or 4300)
_SPACE = frozenset(" \t\n\r")


class JsonText(bytes):
    """The UTF-8 text of a JSON object or array as stored, passed to the target as it is.
    ``original``: the stored value it was peeled from; ``table``, ``column``: where it was read."""

    original: Any
    table: str
    column: str


def plain_text(value: Any, table: str, column: str) -> JsonText | None:
    """``value`` (a stored JSON column's value) as :class:`JsonText`, or None where it must be decoded
    (see the module docstring)."""
    if not isinstance(value, str):
        return None
    text, layers = value, 0
    while True:
        first = text[:1]
        if first in _SPACE:  # (most texts start with their value: no regex)
            first = _FIRST.match(text).group(1)
        if first in ("{", "["):
            break
        if first != '"' or layers == 3:  # (decode_json peels at most 4 layers, the last one the object's)
            return None
        try:
            text = _string(text)
        except ValueError:
            return None
        if not isinstance(text, str):
            return None
        layers += 1
    if "\x00" in text or "\\u0000" in text:  # (searched in the text: faster than in its UTF-8)
        return None
    try:
        raw = text.encode("utf-8")
    except UnicodeEncodeError:
        return None
    if storable.may_hold_lone_surrogate(text):
        return None
    if not _numbers_as_written(raw):
        return None
    out = JsonText(raw)
    out.original, out.table, out.column = value, table, column
    return out


def _string(text: str):
    """``json.loads(text)`` for text that starts with a quote: orjson where it takes it (a string holds no
    number: it gives what json.loads gives), else ``jsoncodec.loads``."""
    fast = jsoncodec.orjson
    if fast is not None:
        try:
            return fast.loads(text)
        except ValueError:
            pass
    return jsoncodec.loads(text)


def _numbers_as_written(raw: bytes) -> bool:
    """Whether every number of the JSON text ``raw`` is as ``json.dumps`` writes its decoded value: each
    with a fraction or an exponent in a value's place (or looking so inside a string) is
    ``repr(float(number))``, and no run of digits reaches Python's limit for an integer."""
    classes = raw.translate(_CLASSES)  # one byte per class of byte: the numbers are found by one C search
    if len(classes) >= len(_LONG_DIGITS) and _LONG_DIGITS in classes:
        return False
    for found in _FLOATS.finditer(classes):
        number = raw[found.start(1) : found.end(1)]
        if repr(float(number)) != number.decode():
            return False
    return True


def holds_text(row: dict) -> bool:
    return any(isinstance(v, JsonText) for v in row.values())
