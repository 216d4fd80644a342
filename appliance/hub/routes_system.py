"""System, login, current user, settings and dataStore endpoints (DHIS2 §3, §8)."""

from __future__ import annotations

import json
import time
from typing import Any

from aiohttp import web

from .. import __version__
from ..dhis2 import query
from ..dhis2.uid import generate_uids
from ..errors import BadRequest, Conflict, NotFound
from ..store.hlc import ms_to_iso
from ..store.users import User
from .auth import SESSION_COOKIE
from .web import AUTH, CONFIG, ROLE, STORE, add_api, index_of, json_response, message, user_of


def server_date() -> str:
    return ms_to_iso(int(time.time() * 1000))


def system_info(request: web.Request) -> dict[str, Any]:
    cfg = request.app[CONFIG]
    role = request.app[ROLE]
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
        "systemName": cfg.get("hub", "name") + (" (national stand-in)" if role == "national" else ""),
        "instanceBaseUrl": base, "isMetadataVersionEnabled": False, "isMetadataSyncEnabled": False,
        "lastAnalyticsTableSuccess": None,
        "hub": {"role": role, "version": __version__},
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
        "applicationRightSideFooter": "", "countryFlag": "bangladesh", "uiLocale": "en",
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
    doc["programs"] = []
    doc["settings"] = {"keyUiLocale": "en", "keyDbLocale": "en"}
    doc["access"] = {"read": True, "update": False, "externalize": False, "delete": False,
                     "write": False, "manage": False}
    return doc


async def get_me(request: web.Request) -> web.Response:
    doc = me_doc(request, user_of(request))
    fields = request.query.get("fields")
    spec = query.parse_fields(fields, default=":all")
    return json_response(query.project(doc, spec, index_of(request).get))


async def get_me_authorization(request: web.Request) -> web.Response:
    auth = request.match_info.get("auth")
    user = user_of(request)
    if auth:
        return json_response(user.has(auth))
    return json_response(sorted(user.authorities))


async def user_settings(request: web.Request) -> web.Response:
    user = user_of(request)
    settings = await _settings(request, user.uid)
    settings.setdefault("keyUiLocale", "en")
    settings.setdefault("keyDbLocale", "en")
    return json_response(_pick(settings, request))


async def system_settings(request: web.Request) -> web.Response:
    settings = await _settings(request, "system")
    settings.setdefault("keyFlag", "bangladesh")
    settings.setdefault("keyUiLocale", "en")
    settings.setdefault("applicationTitle", request.app[CONFIG].get("hub", "name"))
    return json_response(_pick(settings, request))


def _pick(settings: dict[str, Any], request: web.Request) -> dict[str, Any]:
    keys = [k for v in request.query.getall("key", []) for k in v.split(",") if k]
    return {k: settings[k] for k in keys if k in settings} if keys else settings


async def _settings(request: web.Request, scope: str) -> dict[str, Any]:
    def q(conn: Any) -> dict[str, Any]:
        return {k: json.loads(v) for k, v in
                conn.execute("SELECT key, value FROM settings WHERE scope=?", (scope,))}
    return await request.app[STORE].read(q)


async def system_id(request: web.Request) -> web.Response:
    try:
        limit = int(request.query.get("limit", "1"))
    except ValueError:
        raise BadRequest("limit must be a whole number") from None
    if not 1 <= limit <= 10000:
        raise BadRequest("limit must be between 1 and 10000")
    return json_response({"codes": generate_uids(limit)})


# -- login ----------------------------------------------------------------------------------
async def api_login(request: web.Request) -> web.Response:
    try:
        body = await request.json()
        username, password = body["username"], body["password"]
        if not isinstance(username, str) or not isinstance(password, str):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise BadRequest("Login needs a JSON body {\"username\": ..., \"password\": ...}") from None
    auth = request.app[AUTH]
    user = await auth.login(username, password, request.remote, "form")
    sid = await auth.start_session(user)
    resp = json_response({"loginStatus": "SUCCESS", "redirectUrl": "/"})
    resp.set_cookie(SESSION_COOKIE, sid, httponly=True, samesite="Lax", path="/")
    return resp


async def legacy_login(request: web.Request) -> web.Response:
    form = await request.post()
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


# -- dataStore --------------------------------------------------------------------------------
async def ds_namespaces(request: web.Request) -> web.Response:
    rows = await request.app[STORE].read(
        lambda c: [r[0] for r in c.execute("SELECT DISTINCT namespace FROM datastore ORDER BY 1")])
    return json_response(rows)


async def ds_keys(request: web.Request) -> web.Response:
    ns = request.match_info["ns"]
    rows = await request.app[STORE].read(
        lambda c: [r[0] for r in c.execute("SELECT key FROM datastore WHERE namespace=? ORDER BY 1",
                                           (ns,))])
    if not rows:
        raise NotFound(f"Namespace not found: '{ns}'")
    return json_response(rows)


async def ds_get(request: web.Request) -> web.Response:
    ns, key = request.match_info["ns"], request.match_info["key"]
    row = await request.app[STORE].read(
        lambda c: c.execute("SELECT value FROM datastore WHERE namespace=? AND key=?",
                            (ns, key)).fetchone())
    if row is None:
        raise NotFound(f"Key '{key}' not found in namespace '{ns}'")
    return web.Response(body=row[0].encode(), content_type="application/json", charset="utf-8")


async def ds_put(request: web.Request) -> web.Response:
    ns, key = request.match_info["ns"], request.match_info["key"]
    try:
        value = json.dumps(await request.json())
    except ValueError:
        raise BadRequest("dataStore values must be valid JSON") from None
    creating = request.method == "POST"

    def w(tx: Any) -> bool:
        exists = tx.execute("SELECT 1 FROM datastore WHERE namespace=? AND key=?",
                            (ns, key)).fetchone() is not None
        if creating and exists:
            raise Conflict(f"Key '{key}' already exists in namespace '{ns}'")
        if not creating and not exists:
            raise NotFound(f"Key '{key}' not found in namespace '{ns}'")
        tx.execute("INSERT OR REPLACE INTO datastore(namespace, key, value) VALUES (?,?,?)",
                   (ns, key, value))
        return exists
    await request.app[STORE].write(w)
    if creating:
        return message(201, f"Key '{key}' created.", status="OK")
    return message(200, f"Key '{key}' updated.", status="OK")


async def ds_delete(request: web.Request) -> web.Response:
    ns, key = request.match_info["ns"], request.match_info["key"]

    def w(tx: Any) -> int:
        return tx.execute("DELETE FROM datastore WHERE namespace=? AND key=?", (ns, key)).rowcount
    if not await request.app[STORE].write(w):
        raise NotFound(f"Key '{key}' not found in namespace '{ns}'")
    return message(200, f"Key '{key}' deleted from namespace '{ns}'.", status="OK")


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
    add_api(app, "GET", "/userSettings", user_settings)
    add_api(app, "GET", "/systemSettings", system_settings)
    add_api(app, "POST", "/auth/login", api_login)
    add_api(app, "POST", "/auth/logout", logout)
    app.router.add_post("/dhis-web-commons-security/login.action", legacy_login)
    app.router.add_get("/dhis-web-commons-security/logout.action", logout)
    add_api(app, "GET", "/dataStore", ds_namespaces)
    add_api(app, "GET", "/dataStore/{ns}", ds_keys)
    for method, h in (("GET", ds_get), ("POST", ds_put), ("PUT", ds_put), ("DELETE", ds_delete)):
        add_api(app, method, "/dataStore/{ns}/{key:[^/]+?}", h)
    app.router.add_get("/", root)

