"""JSON as the stored session data holds it: decoding (any number of string layers), and orjson as
an accelerator wherever it gives exactly the values the standard ``json`` module gives.

Used by ``convert``, ``sessions``, the store, ``backends.sql`` (the engines' JSON deserializer) and the
Agno 1.x import's workers. No I/O, no SQLAlchemy: a worker process imports this module cheaply.

The exactness rules, in one place: orjson parses text that holds no run of 19 digits or more (an
integer there may exceed 64 bits, which orjson would turn into a float) and that it accepts
(``json`` parses NaN, ±Infinity, numbers too large for a float and lone surrogates; orjson refuses
them); it encodes only values holding no non-finite float (orjson writes those as null) and no
integer beyond 64 bits, no lone surrogate, no key that is not text (those fall back to the exact
encoder). What it could not take exactly is counted per thread (:func:`nonstandard_count`).
"""

from __future__ import annotations

import codecs
import json
import re
import threading
from collections.abc import Callable
from typing import Any

try:  # optional accelerator: when installed, JSON text is parsed about twice as fast (same values)
    import orjson
except ImportError:  # pragma: no cover - depends on the environment
    orjson = None
"""The orjson module, or None when it is not installed (tests set it to None to compare)."""

FLOAT_MAX = 1.7976931348623157e308
"""The largest finite float: a float beyond ±FLOAT_MAX is an infinity."""

_DIGITS = bytes(1 if 0x30 <= byte <= 0x39 else 0 for byte in range(256))  # digit -> 1, any other byte -> 0
_NINETEEN_DIGITS = b"\x01" * 19
_seen = threading.local()


def _encoder(**options: Any) -> Callable[[Any], str]:
    """``json.JSONEncoder(check_circular=False, **options).encode``: the same text, from a C encoder
    made once (``encode`` makes one per call, a good part of encoding a small value)."""
    encoder = json.JSONEncoder(check_circular=False, **options)
    make = json.encoder.c_make_encoder
    if make is None:  # pragma: no cover - Python without the _json accelerator
        return encoder.encode
    text = json.encoder.encode_basestring_ascii
    chunks = make(None, encoder.default, text, None, encoder.key_separator, encoder.item_separator, False, False, True)
    join = "".join

    def encode(value: Any) -> str:
        if isinstance(value, str):  # (as ``encode``: a str alone is one escape, no encoder)
            return text(value)
        return join(chunks(value, 0))

    return encode


dumps: Callable[[Any], str] = _encoder()
"""``json.dumps(value)``, minus the cycle check (decoded JSON holds no cycles): the same text, faster."""

compact: Callable[[Any], str] = _encoder(separators=(",", ":"))
"""``json.dumps(value, separators=(",", ":"))``: no spaces, non-ASCII escaped as ``json.dumps`` does; what
SQLite's JSON functions give for an element of a blob ``json.dumps`` wrote (its tokens kept, the spaces gone)."""


_EXPONENT = re.compile(rb"e-[0-9](?![0-9])")
_NUMBER_END = re.compile(rb"-?[0-9]+(?:\.[0-9]+)?\Z")


def _float_form_may_differ(raw: bytes) -> bool:
    """Whether orjson's text ``raw`` may hold a float that :data:`compact` writes otherwise: one below 1e-4,
    which orjson writes without an exponent (``0.00001``) or with a one-digit one (``1e-7``; ``json``:
    ``1e-05``, ``1e-07``); a number token there starts the text or follows ``:``, ``,`` or ``[``. Text that
    looks so only falls back (the same result, slower)."""
    if b"0.0000" in raw:
        return True
    for match in _EXPONENT.finditer(raw):
        head = raw[max(0, match.start() - 32) : match.start()]  # a float's text is shorter
        number = _NUMBER_END.search(head)
        if number is not None:
            start = match.start() - len(head) + number.start()
            if start == 0 or raw[start - 1] in b":,[":
                return True
    return False


def _escape_beyond_ascii(error: UnicodeEncodeError) -> tuple[str, int]:
    """The codec error handler ``agno_json_ascii``: what ``json`` writes for the characters that are not ASCII."""
    return json.encoder.encode_basestring_ascii(error.object[error.start : error.end])[1:-1], error.end


codecs.register_error("agno_json_ascii", _escape_beyond_ascii)


def compact_fast(value: Any) -> str:
    """:data:`compact`'s exact text of ``value``, by orjson where it gives it: its text with every character
    that is not ASCII escaped as ``json`` escapes them (``\\u00e9``, surrogate pairs); :data:`compact`'s where
    a float's form may differ (:func:`_float_form_may_differ`) or the text holds DEL (``json`` escapes it).

    Only for values that hold no non-finite float (orjson writes those as null): the caller decides, from
    :func:`nonstandard_count` around the decoding of the value. Integers beyond 64 bits, lone surrogates
    and keys that are not text make orjson fail: :data:`compact` then."""
    if orjson is None:
        return compact(value)
    try:
        raw = orjson.dumps(value)
    except orjson.JSONEncodeError:
        return compact(value)
    if b"\x7f" in raw or _float_form_may_differ(raw):
        return compact(value)
    if raw.isascii():
        return raw.decode("ascii")
    return raw.decode("utf-8").encode("ascii", "agno_json_ascii").decode("ascii")


def nonstandard_count() -> int:
    """How many values this thread's conversions met that orjson could not give exactly (counted,
    never changed): JSON text parsed by json.loads instead (NaN, ±Infinity, a number too large for
    a float, lone surrogates, integer digits beyond 64 bits, …) and sums that are not finite.

    A caller that encodes a converted row with orjson (which writes a non-finite float as null)
    does so only when this did not move during the row's conversion.
    """
    return getattr(_seen, "count", 0)


def note_nonstandard() -> None:
    """Count one value orjson could not give exactly (see :func:`nonstandard_count`)."""
    _seen.count = getattr(_seen, "count", 0) + 1


def loads(text: str | bytes) -> Any:
    """``json.loads(text)``: the same value, or the same exception (text or UTF-8 bytes, as the
    PostgreSQL driver hands JSON over).

    orjson parses where it gives exactly what json.loads gives; json.loads parses everything else:
    text orjson rejects (NaN, Infinity, lone surrogates, …) and text holding a run of 19 digits or
    more, where an integer may exceed 64 bits (orjson would turn it into a float).
    """
    if orjson is None:
        pass
    elif isinstance(text, str) and text[:1] == '"':  # one JSON string (Agno 2.x's outer layer): no number in
        try:  # it, so orjson's value is json.loads's (no copy to bytes, no digit scan)
            return orjson.loads(text)
        except ValueError:  # lone surrogates, a bad escape, text after it: json.loads decides
            pass
    else:
        try:
            raw = text if isinstance(text, bytes) else text.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates in the text itself
            raw = None
        if raw is not None and raw.translate(_DIGITS).find(_NINETEEN_DIGITS) < 0:
            try:
                return orjson.loads(raw)
            except ValueError:  # orjson.JSONDecodeError: json.loads decides (and words the error)
                pass
    value = json.loads(text)
    note_nonstandard()
    return value


def decode_json(value: Any, max_layers: int = 4) -> Any:
    """A JSON value as Python, peeling the extra string layers some Agno releases wrote.

    SQLite (Agno 2.0 – 3.0.7) stores JSON double-encoded (a JSON string holding the JSON text),
    MariaDB returns JSON columns as text, PostgreSQL drivers return Python objects. Raises
    ValueError when a string is not JSON at the first layer.
    """
    if isinstance(value, (bytes, bytearray)):
        value = value.decode("utf-8")
    layers = 0
    while isinstance(value, str) and layers < max_layers:
        try:
            decoded = loads(value)
        except ValueError:
            if layers == 0:
                raise
            break
        value = decoded
        layers += 1
    return value


def orjson_encoder(exact: Callable[[Any], str], utf8: bool = False) -> Callable[[Any], str | bytes] | None:
    """orjson's encoder as text (compact, UTF-8 unescaped: the same values as ``exact`` gives, in
    about half the time) — as its UTF-8 bytes when ``utf8`` (not decoded here, nor pickled and
    decoded again by the importer) —, ``exact`` for a value orjson rejects (an integer beyond 64 bits,
    lone surrogates, a key that is not text, deep nesting); None without orjson.

    Only for values that hold no non-finite float (orjson writes those as null): the caller decides
    per row, from the row alone (:func:`plain_values` and :func:`nonstandard_count`), so the stored
    bytes depend only on the row (an interrupted import resumed gives the bytes of an uninterrupted one).
    """
    if orjson is None:
        return None
    encoded, failed = orjson.dumps, orjson.JSONEncodeError

    def encode_utf8(value) -> bytes | str:
        try:
            return encoded(value)
        except failed:
            return exact(value)

    if utf8:
        return encode_utf8

    def encode(value) -> str:
        try:
            return encoded(value).decode("utf-8")
        except failed:
            return exact(value)

    return encode


def plain_values(row: dict) -> bool:
    """Whether every value of ``row`` is text, None, an integer or a finite float: then what a
    conversion makes of it holds only those, and what orjson parsed (:func:`nonstandard_count` tells
    the rest) — so orjson may encode it."""
    for value in row.values():
        kind = value.__class__
        if not (kind is str or value is None or kind is int or (kind is float and -FLOAT_MAX <= value <= FLOAT_MAX)):
            return False
    return True
