"""Whose language a page speaks (issue 14), and DHIS2's user settings that hold it.

A logged-in reader's choice is DHIS2's user setting ``keyUiLocale`` (and the hub's own
``keyHubDigits``: Bengali or Latin digits in Bangla), stored per user in ``settings`` and so
the same on every laptop; a logged-out reader's (the login form) is a cookie the switch
sets; a ``?lang=`` link (the switch without JS) wins for that page and sets the cookie.
Otherwise Bangla.

``GET/POST /api/userSettings[/{key}]`` follow DHIS2: ``POST /api/userSettings/{key}`` takes
the value as ``?value=`` or as the body (text), ``POST /api/userSettings`` a JSON object of
keys; a key DHIS2 (or the hub) does not know is a 409 ``Key is not supported``; every
change is audited (entity ``setting``).
"""

from __future__ import annotations

from typing import Any
from weakref import WeakKeyDictionary

from aiohttp import web

from ..errors import BadRequest, Conflict, NotFound
from ..i18n import (
    DB_LOCALE_SETTING,
    DEFAULT_LOCALE,
    DIGITS,
    DIGITS_COOKIE,
    DIGITS_SETTING,
    LOCALE_COOKIE,
    LOCALES,
    UI_LOCALE_SETTING,
    Tr,
    pick_digits,
    pick_locale,
    translator,
)
from ..store import Store
from ..store import settings as settings_db
from ..store.users import User
from ..webguard import parse_json
from .web import STORE, USER_KEY, add_api, json_response, message, user_of

# the user settings the hub keeps (DHIS2's names; keyHubDigits is the hub's own)
KNOWN = {UI_LOCALE_SETTING, DB_LOCALE_SETTING, DIGITS_SETTING, "keyStyle",
         "keyAnalysisDisplayProperty", "keyMessageEmailNotification",
         "keyMessageSmsNotification", "keyTrackerDashboardLayout"}
MAX_VALUE = 200
TR_KEY = web.RequestKey("hub_tr", Tr)


# user uid -> stored settings, per store: every API request asks for the reader's locale,
# and only this process writes user settings (_save drops the entry)
_CACHE: WeakKeyDictionary[Store, dict[str, dict[str, Any]]] = WeakKeyDictionary()


async def user_settings_of(request: web.Request, user: User) -> dict[str, Any]:
    store = request.app[STORE]
    cache = _CACHE.setdefault(store, {})
    got = cache.get(user.uid)
    if got is None:
        def q(conn: Any) -> dict[str, Any]:
            return settings_db.read_scope(conn, user.uid)
        got = cache[user.uid] = await store.read(q)
    return dict(got)


async def display_locale(request: web.Request, user: User | None) -> str | None:
    """The locale metadata's display names are translated to: ``?locale=``, else the user's
    keyDbLocale or keyUiLocale if they chose one; None (the stored names) otherwise, so a
    client that never chose gets what it always got."""
    asked = request.query.get("locale")
    if asked:
        lang = asked.replace("-", "_").split("_")[0].lower()
        return lang if lang in LOCALES else None
    if user is None:
        return None
    mine = await user_settings_of(request, user)
    chosen = mine.get(DB_LOCALE_SETTING) or mine.get(UI_LOCALE_SETTING)
    return pick_locale(chosen) if chosen else None


def with_defaults(settings: dict[str, Any]) -> dict[str, Any]:
    """A user's settings as DHIS2 shows them: unset ones fall back to the system's."""
    out = dict(settings)
    out.setdefault(UI_LOCALE_SETTING, DEFAULT_LOCALE)
    out.setdefault(DB_LOCALE_SETTING, out[UI_LOCALE_SETTING])
    out.setdefault(DIGITS_SETTING, pick_digits(None))
    return out


async def reader(request: web.Request) -> Tr:
    """The translator for this request's reader (see the module's docstring)."""
    cached = request.get(TR_KEY)
    if cached is not None:
        return cached
    user: User | None = request.get(USER_KEY)
    mine: dict[str, Any] = await user_settings_of(request, user) if user is not None else {}
    tr = translator(pick_locale(request.query.get("lang"), mine.get(UI_LOCALE_SETTING),
                                request.cookies.get(LOCALE_COOKIE)),
                    pick_digits(request.query.get("digits"), mine.get(DIGITS_SETTING),
                                request.cookies.get(DIGITS_COOKIE)))
    request[TR_KEY] = tr
    return tr


async def metadata_locale(request: web.Request) -> str:
    """The locale of metadata names (DHIS2's keyDbLocale, else the page's language)."""
    user: User | None = request.get(USER_KEY)
    if user is None:
        return (await reader(request)).locale
    mine = await user_settings_of(request, user)
    return pick_locale(mine.get(DB_LOCALE_SETTING), mine.get(UI_LOCALE_SETTING),
                       request.cookies.get(LOCALE_COOKIE))


def remember(request: web.Request, resp: web.StreamResponse, tr: Tr) -> None:
    """A ``?lang=``/``?digits=`` choice is kept by the browser for the logged-out pages."""
    if request.query.get("lang") in LOCALES:
        resp.set_cookie(LOCALE_COOKIE, tr.locale, max_age=365 * 86400, samesite="Lax", path="/")
    if request.query.get("digits") in DIGITS:
        resp.set_cookie(DIGITS_COOKIE, tr.digits, max_age=365 * 86400, samesite="Lax",
                        path="/")


def _check(key: str, value: Any) -> Any:
    if key not in KNOWN:
        raise Conflict(f"Key is not supported: {key}")
    if key in (UI_LOCALE_SETTING, DB_LOCALE_SETTING):
        lang = value.replace("-", "_").split("_")[0].lower() if isinstance(value, str) else ""
        if lang not in LOCALES:
            raise BadRequest(f"Locale `{value}` is not one of {', '.join(LOCALES)}")
        return lang
    if key == DIGITS_SETTING and value not in DIGITS:
        raise BadRequest(f"{key} is one of {', '.join(DIGITS)}")
    if value is not None and (not isinstance(value, (str, int, float, bool))
                              or len(str(value)) > MAX_VALUE):
        raise BadRequest(f"Value of {key} must be a short string, number or boolean")
    return value


async def _save(request: web.Request, values: dict[str, Any]) -> None:
    user = user_of(request)
    checked = {k: _check(k, v) for k, v in values.items()}
    await request.app[STORE].write(lambda tx: settings_db.write(
        tx, user.uid, checked, username=user.username, client=request.remote))
    _CACHE.get(request.app[STORE], {}).pop(user.uid, None)


async def get_settings(request: web.Request) -> web.Response:
    settings = with_defaults(await user_settings_of(request, user_of(request)))
    keys = [k for v in request.query.getall("key", []) for k in v.split(",") if k]
    return json_response({k: settings[k] for k in keys if k in settings} if keys else settings)


async def get_setting(request: web.Request) -> web.Response:
    key = request.match_info["key"]
    if key not in KNOWN:
        raise Conflict(f"Key is not supported: {key}")
    value = with_defaults(await user_settings_of(request, user_of(request))).get(key)
    if value is None:
        raise NotFound(f"User setting not found: {key}")
    return web.Response(text=str(value), content_type="text/plain", charset="utf-8")


async def post_setting(request: web.Request) -> web.Response:
    key = request.match_info["key"]
    value: Any = request.query.get("value")
    if value is None:
        body = (await request.read()).decode("utf-8", "replace").strip()
        value = body or None
    if value is None:
        raise BadRequest("You need to specify a value, as ?value= or as the body")
    await _save(request, {key: value})
    return message(200, "User setting saved")


async def post_settings(request: web.Request) -> web.Response:
    body = parse_json(await request.read(), what="User settings")
    if not isinstance(body, dict):
        raise BadRequest("User settings are a JSON object of keys and values")
    await _save(request, body)
    return message(200, "User settings saved")


def setup(app: web.Application) -> None:
    add_api(app, "GET", "/userSettings", get_settings)
    add_api(app, "POST", "/userSettings", post_settings)
    add_api(app, "GET", "/userSettings/{key}", get_setting)
    add_api(app, "POST", "/userSettings/{key}", post_setting)
