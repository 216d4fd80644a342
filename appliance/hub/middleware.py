"""Middlewares: every error becomes a DHIS2 WebMessage; every API call is authenticated;
no page on another site can make a browser change data here."""

from __future__ import annotations

import logging
import re
from typing import Any

from aiohttp import web

from ..dhis2.fields import DISPLAY_LOCALE
from ..errors import ApplianceError
from ..httpserver import error_middleware
from ..webguard import check_same_origin
from .auth import NEW_SESSION, SESSION_COOKIE
from .lang import display_locale
from .web import AUTH, STATE, STORE, USER_KEY, Handler, message

log = logging.getLogger(__name__)

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

def _challenge(request: web.Request, resp: web.Response) -> None:
    """Ask for Basic credentials, except from web apps: DHIS2 apps send X-Requested-With
    so that a browser shows their login form instead of its own password pop-up."""
    if request.headers.get("X-Requested-With") != "XMLHttpRequest":
        resp.headers["WWW-Authenticate"] = 'Basic realm="DHIS2"'


def _respond(request: web.Request, status: int, text: str, error_code: str | None,
             response: Any) -> web.Response:
    resp = message(status, text, error_code=error_code, response=response)
    if status == 401:
        _challenge(request, resp)
    return resp


# every error a DHIS2 WebMessage, one log line per refusal (shared with the fleet)
errors = error_middleware(_respond, service="hub", logger=log)


WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@web.middleware
async def fresh_metadata(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A write is checked against the metadata and users' roles sync has committed, not
    the index of up to two seconds ago: right after a sync brings a user's roles, a data
    set or an approval, a form must not be refused (or let through) by the old ones."""
    if request.method in WRITE_METHODS:
        await request.app[STATE].refresh(request.app[STORE])
    return await handler(request)


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
    # metadata's displayName & co in the reader's language (DHIS2's keyDbLocale, ?locale=)
    token = DISPLAY_LOCALE.set(await display_locale(request, user))
    try:
        response = await handler(request)
    finally:
        DISPLAY_LOCALE.reset(token)
    sid = request.get(NEW_SESSION)
    if sid is not None:
        response.set_cookie(SESSION_COOKIE, sid, httponly=True, samesite="Lax", path="/")
    return response
