"""Credentials in database URLs, and text with every one of them masked.

The one masking function is :func:`redact`: every message, exception, printed line, ``--json``
object and report line goes through it (``errors.AgnoMigrateError`` redacts its message, the CLI
redacts what it prints). It masks twice:

* by shape: the password of any URL in the text (``user:***@``, everything up to the last ``@``
  of the URL, so a password holding an unencoded ``@ : / %`` is masked whole, also in a mistyped
  ``postgresql:/user:pw@host``), and the value of every credential parameter
  (``password=``, ``sslpassword=``, ``passfile=``, ``tlsCertificateKeyFilePassword=``, ... in a
  query string or a libpq ``key=value`` string);
* by value: every credential of every URL parsed in this process (:func:`remember`, called by
  ``Target.from_url``) — the userinfo password, the credential query parameters, the passwords of a
  ``passfile`` and ``PGPASSWORD`` — in the forms a driver may echo (as written, percent-decoded,
  percent-encoded), wherever it appears, e.g. in a driver's error that quotes part of a DSN.

A credential shorter than :data:`MIN_LITERAL` characters is masked by shape only (replacing two
letters wherever they occur would garble every message). This is the bottom layer: no imports.
"""

from __future__ import annotations

import json
import os
import re
import threading
from urllib.parse import parse_qsl, quote, quote_plus, unquote, unquote_plus

MASK = "***"
MIN_LITERAL = 4

# parameter names whose value is a credential (psycopg/libpq, PyMySQL, pymongo)
_SECRET_NAME = r"[A-Za-z_.]*(?:pass|pwd|secret|token|authmechanismproperties)[A-Za-z_.]*"
_SECRET_PARAM = re.compile(rf"(?i)(?P<name>\b{_SECRET_NAME})(?P<eq>\s*=\s*)(?P<value>'(?:[^'\\]|\\.)*'?|[^\s&;#'\"]+)")
# user:password@ after a scheme and up to three slashes (also a mistyped "postgresql:/"), or at the
# start of a word; the password runs to the LAST '@' of the word (a raw '@', ':', '/' or '%' in it
# is masked whole).
_PASSWORDS_IN_URLS = (
    re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*:/{0,3}[^:/@\s]*:)(?P<pw>[^\s]+)(?P<tail>@)"),
    re.compile(r"(?P<head>(?<![^\s'\"(])[^:/@\s]+:)(?P<pw>(?!/)[^\s]+)(?P<tail>@)"),
)

_known: set[str] = set()
_lock = threading.Lock()


def mask_url(text: str) -> str:
    """``text`` (a URL, or any text holding URLs) with passwords and credential parameters masked
    by shape. :func:`redact` also masks the credentials known by value; prefer it."""
    for pattern in _PASSWORDS_IN_URLS:
        text = pattern.sub(lambda m: m["head"] + MASK + m["tail"], text)
    return _SECRET_PARAM.sub(lambda m: m["name"] + m["eq"] + MASK, text)


def redact(text: str) -> str:
    """``text`` with every credential masked: by shape (:func:`mask_url`) and by value (every
    credential :func:`remember` was given)."""
    text = mask_url(str(text))
    with _lock:
        known = sorted(_known, key=len, reverse=True)
    for secret in known:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def remember(url: str | None) -> None:
    """Learn the credentials ``url`` carries, so that :func:`redact` masks them anywhere."""
    if not url:
        return
    found = set(credentials_of(url))
    variants = set()
    for secret in found:
        variants |= {secret, unquote(secret), unquote_plus(secret), quote(secret, safe=""), quote(secret),
                     quote_plus(secret), json.dumps(secret)[1:-1]}  # fmt: skip
    with _lock:
        _known.update(v for v in variants if len(v) >= MIN_LITERAL)


def credentials_of(url: str) -> list[str]:
    """The credentials ``url`` carries: its userinfo password, its credential query parameters,
    the passwords of its ``passfile`` (and of ``PGPASSFILE``) and ``PGPASSWORD`` for PostgreSQL."""
    out: list[str] = []
    scheme, sep, rest = url.strip().partition("://")
    if not sep:
        scheme, rest = "", url.strip()
    if "@" in rest:
        userinfo = rest.rsplit("@", 1)[0]
        if ":" in userinfo:
            out.append(userinfo.split(":", 1)[1])
    query = rest.split("?", 1)[1] if "?" in rest else ""
    passfiles = []
    for name, value in parse_qsl(query, keep_blank_values=False):
        if re.fullmatch(_SECRET_NAME, name, re.IGNORECASE):
            out.append(value)
            if name.lower() == "passfile":
                passfiles.append(value)
    for match in _SECRET_PARAM.finditer(query):  # also what parse_qsl splits differently
        out.append(match["value"])
    if scheme.lower().startswith("postgres"):
        if os.environ.get("PGPASSWORD"):
            out.append(os.environ["PGPASSWORD"])
        if os.environ.get("PGPASSFILE"):
            passfiles.append(os.environ["PGPASSFILE"])
    for path in passfiles:
        out += _passfile_passwords(path)
    return [s for s in out if s]


def _passfile_passwords(path: str) -> list[str]:
    """The password fields of a libpq password file (``host:port:db:user:password`` lines)."""
    try:
        with open(os.path.expanduser(path), encoding="utf-8", errors="replace") as fh:
            lines = fh.read(1 << 20).splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = re.split(r"(?<!\\):", line, maxsplit=4)
        if len(fields) == 5:
            out.append(fields[4].replace("\\:", ":").replace("\\\\", "\\"))
    return out


__all__ = ["MASK", "mask_url", "redact", "remember", "credentials_of"]
