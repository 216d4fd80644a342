"""Which language a fleet page speaks (issue 14): the national team's ``বাংলা | English``.

A ``?lang=`` link (the switch, no JS needed) wins for that page, sets a cookie and, for a
logged-in user, their record's ``locale`` (audited), so the choice follows them to another
computer; otherwise their record's choice, then the cookie (the login form), then English:
the fleet's readers are national staff, and its pages were English before the switch."""

from __future__ import annotations

import sqlite3

from aiohttp import web

from ..i18n import LOCALE_NAMES, LOCALES, Tr, translator
from .auth import Account
from .db import FleetDB, set_user_locale, user_locale

COOKIE = "fleet_lang"
DEFAULT = "en"
CHOSEN = web.RequestKey("fleet_lang_chosen", str)


async def reader(request: web.Request, account: Account | None, db: FleetDB,
                 now: float) -> Tr:
    asked = request.query.get("lang", "")
    if asked in LOCALES:
        request[CHOSEN] = asked
        if account is not None:
            name, client = account.username, request.remote

            def write(c: sqlite3.Connection) -> None:
                if user_locale(c, name) != asked:
                    set_user_locale(c, name, asked, at=now, client=client)
            await db.write(write)
        return translator(asked)
    if account is not None:
        name = account.username
        mine = await db.read(lambda c: user_locale(c, name))
        if mine in LOCALES:
            return translator(mine)
    cookie = request.cookies.get(COOKIE, "")
    return translator(cookie if cookie in LOCALES else DEFAULT)


def remember(request: web.Request, resp: web.StreamResponse) -> None:
    """After ``?lang=``: the cookie, for the pages before login."""
    chosen = request.get(CHOSEN)
    if chosen:
        resp.set_cookie(COOKIE, chosen, max_age=365 * 86400, path="/", samesite="Lax")


def switch(tr: Tr) -> str:
    """বাংলা | English as plain links to the same page."""
    return ('<span class="lang">' + " | ".join(
        f'<a href="?lang={loc}" lang="{loc}"' + (' aria-current="true"' if loc == tr.locale
                                                 else "") + f">{LOCALE_NAMES[loc]}</a>"
        for loc in LOCALES) + "</span>")


def anonymous(request: web.Request) -> Tr:
    """Before login (the login form, an error page): ``?lang=``, else the cookie."""
    asked = request.query.get("lang", "")
    if asked in LOCALES:
        request[CHOSEN] = asked
        return translator(asked)
    cookie = request.cookies.get(COOKIE, "")
    return translator(cookie if cookie in LOCALES else DEFAULT)
