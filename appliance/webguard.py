"""Request guards both web services (the hub and the fleet) share: strict JSON, bounded
integers and the cross-site request rule.

Everything here raises ``BadRequest``/``Forbidden`` from the one exception hierarchy, so
the error middleware turns it into a DHIS2 WebMessage (400/403) and logs one line.
"""

from __future__ import annotations

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
    body costs one bounded pass; the limit here is then checked without recursion too.
    """
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        reason = str(e)
        if "depth limit" in reason:
            raise BadRequest(f"{what} is nested too deeply (at most {max_depth} levels)") from None
        raise BadRequest(f"{what} is not valid JSON: {reason}") from None
    check_json(obj, what=what, max_depth=max_depth)
    return obj


def check_json(obj: Any, *, what: str = "Request body", max_depth: int = MAX_JSON_DEPTH) -> None:
    """Depth and number limits on an already parsed document (iterative, no recursion)."""
    stack: list[tuple[Any, int]] = [(obj, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            if isinstance(node, bool):
                continue
            if isinstance(node, int) and not INT64_MIN <= node <= INT64_MAX:
                raise BadRequest(f"{what} holds a number beyond 64 bits: {str(node)[:30]}")
            if isinstance(node, float) and node != node:  # pragma: no cover - orjson refuses
                raise BadRequest(f"{what} holds NaN, which is not JSON")
            continue
        if depth > max_depth:
            raise BadRequest(f"{what} is nested too deeply (at most {max_depth} levels)")
        stack.extend((c, depth + 1) for c in children if isinstance(c, (dict, list, int, float)))


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
