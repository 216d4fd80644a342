"""Request guards both web services (the hub and the fleet) share: strict JSON, bounded
integers and the cross-site request rule.

Everything here raises ``BadRequest``/``Forbidden`` from the one exception hierarchy, so
the error middleware turns it into a DHIS2 WebMessage (400/403) and logs one line.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import orjson
from aiohttp import web
from multidict import MultiDictProxy

from .errors import BadRequest, Forbidden

# JSON that people and DHIS2 clients send is a few levels deep (a dataValueSet is 3, an
# Android settings document about 6). Deeper bodies are refused before anything walks
# them recursively (json.dumps, the fields filter, sqlite-utils).
MAX_JSON_DEPTH = 64
INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def parse_json(body: bytes | str, *, what: str = "Request body",
               max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Strict JSON (RFC 8259: no NaN/Infinity, no trailing garbage, UTF-8) with a depth
    limit and every integer within 64 bits, or ``BadRequest`` saying what is wrong.

    orjson parses without recursion and stops at 1024 levels itself, so a 10,000-deep
    body costs one bounded pass; the limits are then checked in C, not by a Python walk
    over every node (which cost a 600-value form 0.7 ms).
    """
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        reason = str(e)
        if "depth limit" in reason:
            raise BadRequest(f"{what} is nested too deeply (at most {max_depth} levels)") from None
        raise BadRequest(f"{what} is not valid JSON: {reason}") from None
    if _too_deep(obj, max_depth):
        raise BadRequest(f"{what} is nested too deeply (at most {max_depth} levels)")
    raw = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
    if _19_DIGITS in raw.translate(_DIGITS_AS_0):  # only then may orjson have made a float
                                                    # of an integer (a C scan, no regex)
        skeleton = _STRING.sub(b"", raw)
        for number in _LONG_INTEGER.findall(skeleton):
            if not INT64_MIN <= int(number) <= INT64_MAX:
                raise BadRequest(f"{what} holds a number beyond 64 bits: {number[:30].decode()}")
    return obj


_ORJSON_DEPTH = 254  # orjson.dumps refuses anything deeper: "Recursion limit reached"
_DIGITS_AS_0 = bytes(48 if 48 <= c <= 57 else 32 for c in range(256))
_19_DIGITS = b"0" * 19
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
# an integer literal of 19 digits or more, not part of a fraction or an exponent
_LONG_INTEGER = re.compile(rb"(?<![\d.eE+-])-?\d{19,}(?![\d.eE])")


def _too_deep(obj: Any, max_depth: int) -> bool:
    """Whether obj nests deeper than max_depth, asked of orjson's serializer in C: wrapped
    in (254 - max_depth) lists, obj passes its fixed 254-level limit only if it is at most
    max_depth deep. Costs a tenth of a Python walk over a 600-value form."""
    if not isinstance(obj, (dict, list)):
        return False
    wrapped: Any = obj
    for _ in range(_ORJSON_DEPTH - max_depth):
        wrapped = [wrapped]
    try:
        orjson.dumps(wrapped)
    except orjson.JSONEncodeError:
        return True
    return False


def bounded_int(raw: str | None, name: str, *, default: int | None = None,
                lo: int = 0, hi: int = INT64_MAX) -> int | None:
    """A whole number from a query parameter or path segment, within [lo, hi]."""
    if raw is None or raw == "":
        return default
    text = raw.strip()
    if not (text.lstrip("+-").isdigit() and len(text) <= 20) or not text.isascii():
        raise BadRequest(f"`{name}` must be a whole number, not `{raw[:40]}`")
    value = int(text)
    if not lo <= value <= hi:
        raise BadRequest(f"`{name}` must be between {lo} and {hi}")
    return value


async def read_form(request: web.Request) -> MultiDictProxy[Any]:
    """A urlencoded or multipart form, or ``BadRequest`` when the body is not one."""
    try:
        return await request.post()
    except (ValueError, LookupError, AssertionError) as e:  # LookupError: unknown charset
        raise BadRequest(f"Request body is not a readable form: {str(e)[:100]}") from None


def _netloc(url: str) -> str | None:
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return parts.netloc.lower()


def foreign_origin(request: web.Request) -> str | None:
    """The site a browser says a request comes from, when that is not this server.

    ``Origin`` decides; without it, ``Referer`` does (older browsers, same-origin GET-
    turned-POST forms). A request with neither did not come from a page in a browser (the
    Android SDK, curl, dhis2.py), so it is not a cross-site request. ``Origin: null``
    (sandboxed frames, file:// pages) is foreign.
    """
    origin = request.headers.get("Origin")
    if origin is None:
        referer = request.headers.get("Referer")
        if not referer:
            return None
        origin = referer
    here = (request.host or "").lower()
    there = _netloc(origin.strip())
    if there is not None and there == here:
        return None
    return origin[:100]


def check_same_origin(request: web.Request) -> None:
    """403 for a state-changing request a page on another site made this browser send."""
    if request.method not in UNSAFE_METHODS:
        return
    origin = foreign_origin(request)
    if origin is not None:
        raise Forbidden(f"Cross-site request refused: this page at {origin} may not change "
                        "data here. Open the hub's own page and try again.",
                        error_code="CSRF")
