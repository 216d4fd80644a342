"""System, login, current user and settings endpoints (DHIS2 §3, §8); the dataStore is in
routes_datastore."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from .. import __version__
from ..dhis2 import query
from ..dhis2.timefmt import format_ts
from ..dhis2.uid import generate_uids
from ..errors import BadRequest, UnsupportedMediaType
from ..i18n import DEFAULT_LOCALE, LOCALE_COOKIE, pick_locale
from ..store import settings as settings_db
from ..store.users import User
from ..webguard import bounded_int, parse_json, read_form
from . import lang
from .auth import SESSION_COOKIE
from .web import (
    AUTH,
    CONFIG,
    ROLE,
    STORE,
    SYSTEM_NAME,
    add_api,
    index_of,
    json_response,
    message,
    user_of,
)


def server_date() -> str:
    return format_ts(int(time.time() * 1000))


def system_info(request: web.Request) -> dict[str, Any]:
    cfg = request.app[CONFIG]
    base = f"{request.scheme}://{request.host}"
    return {
        "contextPath": base, "userAgent": request.headers.get("User-Agent", ""),
        "calendar": "iso8601", "dateFormat": "yyyy-mm-dd", "serverDate": server_date(),
        "serverTimeZoneId": "Etc/UTC", "serverTimeZoneDisplayName": "Coordinated Universal Time",
        "version": cfg.get("hub", "dhis2_version"), "revision": f"hub-{__version__}",
        "buildTime": "2026-11-01T00:00:00.000", "environmentVariable": "DHIS2_HOME",
        "databaseInfo": {"type": "SQLite", "spatialSupport": False},
        "encryption": False, "emailConfigured": False, "redisEnabled": False,
        "systemId": cfg.get("hub", "id"),
        "systemName": request.app[SYSTEM_NAME],
        "instanceBaseUrl": base, "isMetadataVersionEnabled": False, "isMetadataSyncEnabled": False,
        "lastAnalyticsTableSuccess": None,
        "hub": {"role": request.app[ROLE], "version": __version__},
    }


async def get_system_info(request: web.Request) -> web.Response:
    info = system_info(request)
    fields = request.query.get("fields")
    if fields:
        info = query.project(info, query.parse_fields(fields))
    return json_response(info)


async def ping(request: web.Request) -> web.Response:
    return web.Response(text="pong", content_type="text/plain")


async def login_config(request: web.Request) -> web.Response:
    cfg = request.app[CONFIG]
    return json_response({
        "apiVersion": cfg.get("hub", "dhis2_version"), "applicationTitle": cfg.get("hub", "name"),
        "applicationDescription": "Upazila hub: DHIS2 data entry that keeps working offline",
        "applicationNotification": "", "applicationLeftSideFooter": "",
        "applicationRightSideFooter": "", "countryFlag": "bangladesh",
        "uiLocale": pick_locale(request.cookies.get(LOCALE_COOKIE)),
        "loginPageLayout": "DEFAULT", "minPasswordLength": "8", "maxPasswordLength": "72",
        "emailConfigured": False, "selfRegistrationEnabled": False,
        "selfRegistrationNoRecaptcha": False, "allowAccountRecovery": False,
        "useCustomLogoFront": False, "oidcProviders": [],
    })


def me_doc(request: web.Request, user: User) -> dict[str, Any]:
    idx = index_of(request)
    doc = dict(user.doc)
    doc.setdefault("displayName", doc.get("name") or user.username)
    doc["username"] = user.username
    doc["authorities"] = sorted(user.authorities)
    roles = []
    for ref in doc.get("userRoles") or []:
        role = idx.get(ref.get("id", "")) or ref
        roles.append({k: role[k] for k in ("id", "name", "displayName", "authorities") if k in role})
    doc["userRoles"] = roles
    doc.setdefault("userGroups", [])
    for key in ("organisationUnits", "dataViewOrganisationUnits", "teiSearchOrganisationUnits"):
        refs = doc.get(key) or []
        doc[key] = [{"id": r["id"], "path": idx.path(r["id"]) or None,
                     "name": (idx.get(r["id"]) or {}).get("name")} for r in refs]
    creds = dict(doc.get("userCredentials") or {})
    creds.update(username=user.username, userRoles=roles)
    doc["userCredentials"] = creds
    ds_ids = sorted({d for r in user.org_units for ou in idx.descendants(r)
                     for d in idx.ou_datasets.get(ou, ())})
    doc["dataSets"] = ds_ids
    doc["programs"] = sorted({p["id"] for r in user.org_units for ou in idx.descendants(r)
                              for p in (idx.get(ou) or {}).get("programs") or []})
    doc["settings"] = {"keyUiLocale": DEFAULT_LOCALE, "keyDbLocale": DEFAULT_LOCALE}
    doc["access"] = {"read": True, "update": False, "externalize": False, "delete": False,
                     "write": False, "manage": False}
    return doc


async def get_me(request: web.Request) -> web.Response:
    user = user_of(request)
    doc = me_doc(request, user)
    doc["settings"] = lang.with_defaults(await lang.user_settings_of(request, user))
    fields = request.query.get("fields")
    spec = query.parse_fields(fields, default=":all")
    return json_response(query.project(doc, spec, index_of(request).get))


async def get_me_authorization(request: web.Request) -> web.Response:
    auth = request.match_info.get("auth")
    user = user_of(request)
    if auth:
        return json_response(user.has(auth))
    return json_response(sorted(user.authorities))


async def system_settings(request: web.Request) -> web.Response:
    settings = await _settings(request, "system")
    settings.setdefault("keyFlag", "bangladesh")
    settings.setdefault("keyUiLocale", DEFAULT_LOCALE)
    settings.setdefault("applicationTitle", request.app[CONFIG].get("hub", "name"))
    return json_response(_pick(settings, request))


def _pick(settings: dict[str, Any], request: web.Request) -> dict[str, Any]:
    keys = [k for v in request.query.getall("key", []) for k in v.split(",") if k]
    return {k: settings[k] for k in keys if k in settings} if keys else settings


async def _settings(request: web.Request, scope: str) -> dict[str, Any]:
    def q(conn: Any) -> dict[str, Any]:
        return settings_db.read_scope(conn, scope)
    return await request.app[STORE].read(q)


async def system_id(request: web.Request) -> web.Response:
    limit = bounded_int(request.query.get("limit"), "limit", default=1, lo=1, hi=10000)
    return json_response({"codes": generate_uids(limit or 1)})


# -- login ----------------------------------------------------------------------------------
LOGIN_HELP = 'Login needs {"username": ..., "password": ...} as JSON or a form'


async def api_login(request: web.Request) -> web.Response:
    # JSON, as DHIS2's login app sends, or a form; never text/plain, which any page on
    # another site can make a browser send without asking
    ctype = request.content_type
    if ctype == "application/json":
        body = parse_json(await request.read(), what="Login body")
    elif ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        body = dict(await read_form(request))
    else:
        raise UnsupportedMediaType(f"{LOGIN_HELP}, not `{ctype}`")
    username = body.get("username") if isinstance(body, dict) else None
    password = body.get("password") if isinstance(body, dict) else None
    if not isinstance(username, str) or not isinstance(password, str):
        raise BadRequest(LOGIN_HELP)
    auth = request.app[AUTH]
    user = await auth.login(username, password, request.remote, "form")
    sid = await auth.start_session(user)
    resp = json_response({"loginStatus": "SUCCESS", "redirectUrl": "/"})
    resp.set_cookie(SESSION_COOKIE, sid, httponly=True, samesite="Lax", path="/")
    return resp


async def legacy_login(request: web.Request) -> web.Response:
    form = await read_form(request)
    username, password = form.get("j_username"), form.get("j_password")
    if not isinstance(username, str) or not isinstance(password, str):
        raise BadRequest("Login form needs j_username and j_password")
    auth = request.app[AUTH]
    user = await auth.login(username, password, request.remote, "form")
    sid = await auth.start_session(user)
    resp = web.HTTPFound("/")
    resp.set_cookie(SESSION_COOKIE, sid, httponly=True, samesite="Lax", path="/")
    raise resp


async def logout(request: web.Request) -> web.Response:
    sid = request.cookies.get(SESSION_COOKIE)
    if sid:
        await request.app[AUTH].end_session(sid)
    resp = message(200, "Logged out")
    resp.del_cookie(SESSION_COOKIE, path="/")
    return resp


async def root(request: web.Request) -> web.Response:
    raise web.HTTPFound("/hub")


def setup(app: web.Application) -> None:
    add_api(app, "GET", "/system/info", get_system_info)
    add_api(app, "GET", "/system/ping", ping)
    add_api(app, "GET", "/ping", ping)
    add_api(app, "GET", "/system/id", system_id)
    add_api(app, "GET", "/loginConfig", login_config)
    add_api(app, "GET", "/me", get_me)
    add_api(app, "GET", "/me/authorization", get_me_authorization)
    add_api(app, "GET", "/me/authorization/{auth}", get_me_authorization)
    lang.setup(app)  # /api/userSettings[/{key}]
    add_api(app, "GET", "/systemSettings", system_settings)
    add_api(app, "POST", "/auth/login", api_login)
    add_api(app, "POST", "/auth/logout", logout)
    app.router.add_post("/dhis-web-commons-security/login.action", legacy_login)
    app.router.add_get("/dhis-web-commons-security/logout.action", logout)
    app.router.add_get("/", root)

