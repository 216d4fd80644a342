"""Middlewares: every error becomes a DHIS2 WebMessage; every API call is authenticated;
no page on another site can make a browser change data here."""

from __future__ import annotations

import asyncio
import logging
import re

from aiohttp import web

from ..errors import ApplianceError
from ..webguard import check_same_origin
from .auth import NEW_SESSION, SESSION_COOKIE
from .web import AUTH, USER_KEY, Handler, message

log = logging.getLogger(__name__)

# how long a body the handler did not read may take to arrive before the connection closes
DRAIN_SECONDS = 10

# Reachable without credentials: exactly what DHIS2 makes public (versioned or not, with
# or without .json), the hub's public status summary, and the hub's pages, which hold no
# data until their own API calls log in. Whole paths, never suffixes.
PUBLIC_API = re.compile(
    r"/api(?:/[0-9]{2})?/(?:system/ping|ping|loginConfig|auth/login)(?:\.json)?")
PUBLIC = frozenset({"/", "/api/hub/status", "/dhis-web-commons-security/login.action",
                    "/dhis-web-commons/security/login.action"})


def is_public(path: str) -> bool:
    return path in PUBLIC or PUBLIC_API.fullmatch(path) is not None or path == "/hub" or \
        path.startswith("/hub/")

_STATUS_TEXT = {
    404: "Not Found", 405: "Method Not Allowed", 413: "Payload Too Large",
    415: "Unsupported Media Type", 400: "Bad Request",
}


def _challenge(request: web.Request, resp: web.Response) -> None:
    """Ask for Basic credentials, except from web apps: DHIS2 apps send X-Requested-With
    so that a browser shows their login form instead of its own password pop-up."""
    if request.headers.get("X-Requested-With") != "XMLHttpRequest":
        resp.headers["WWW-Authenticate"] = 'Basic realm="DHIS2"'


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await _reply(request, handler)
    await _discard_unread_body(request, response)
    return response


async def _discard_unread_body(request: web.Request, response: web.StreamResponse) -> None:
    """Read and drop a compressed body the handler did not need (a DELETE or logout
    sent with one). aiohttp would otherwise drain it after the reply and log a corrupt
    one as a traceback; here a corrupt body just closes the connection."""
    content = request.content
    if content.is_eof() or request.headers.get("Content-Encoding", "identity") == "identity":
        return
    try:
        async with asyncio.timeout(DRAIN_SECONDS):
            while not content.is_eof():
                await content.readany()
    except (web.RequestPayloadError, TimeoutError):
        content.feed_eof()
        response.force_close()


async def _reply(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApplianceError as e:
        if e.http_status < 500:  # the client's mistake: one line, no traceback
            log.info("%s %s -> %d %s", request.method, request.path, e.http_status,
                     e.message[:200])
        else:
            log.warning("%s %s -> %d %s", request.method, request.path, e.http_status,
                        e.message[:200])
        return message(e.http_status, e.message, error_code=e.error_code, response=e.response)
    except web.RequestPayloadError as e:
        # a body aiohttp could not decode (corrupt gzip, broken chunking): refuse it and
        # close the connection, since the rest of the stream cannot be trusted either
        log.info("%s %s -> 400 unreadable body: %s", request.method, request.path,
                 " ".join(str(e).split()))
        request.content.feed_eof()
        resp = message(400, "The request body could not be read: it is not valid for its "
                            f"Content-Encoding ({request.headers.get('Content-Encoding', 'none')})")
        resp.force_close()
        return resp
    except web.HTTPException as e:
        if e.status < 400:
            raise
        if e.status == 404:
            text = f"No resource at {request.method} {request.path}"
        elif e.status == 405:
            allowed = ", ".join(sorted(getattr(e, "allowed_methods", ()) or ()))
            text = f"Method {request.method} is not supported here" + (
                f"; use {allowed}" if allowed else "")
        elif e.status == 413:
            text = "Request body is too large"
        else:
            text = e.text if e.text and not e.text.startswith("<") else _STATUS_TEXT.get(
                e.status, e.reason)
        resp = message(e.status, text)
        if e.status == 401:
            _challenge(request, resp)
        return resp
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return message(500, "The hub could not complete this request; it has been logged")


@web.middleware
async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    # before anything is read: a foreign page's POST is refused whoever it logs in as,
    # login itself included (login CSRF)
    check_same_origin(request)
    public = is_public(request.path)
    try:
        user = await request.app[AUTH].authenticate(request)
    except ApplianceError:
        if public:
            user = None
        else:
            raise
    if user is None and not public:
        resp = message(401, "Unauthorized")
        _challenge(request, resp)
        return resp
    request[USER_KEY] = user  # type: ignore[misc]
    response = await handler(request)
    sid = request.get(NEW_SESSION)
    if sid is not None:
        response.set_cookie(SESSION_COOKIE, sid, httponly=True, samesite="Lax", path="/")
    return response
