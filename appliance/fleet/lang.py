"""Which language a fleet page speaks (issue 14): Bangla by default, English one click away.

A ``?lang=`` link (the ``বাংলা | English`` switch, no JS needed) wins for that page, sets a
cookie and, for a logged-in user, their record's ``locale`` (audited), so the choice follows
them to another computer; otherwise their record's choice, then the cookie (the login form),
then ``[fleet] language``. That defaults to Bangla, as every hub page does: the national
team's staff read Bangla, and issue 14 asks that every page be Bangla by default. A
deployment whose readers want English without clicking sets ``language = "en"``."""

from __future__ import annotations

import sqlite3

from aiohttp import web

from ..config import Config
from ..errors import ConfigError
from ..i18n import DEFAULT_LOCALE, LOCALE_NAMES, LOCALES, Tr, translator
from .auth import Account
from .db import FleetDB, set_user_locale, user_locale

COOKIE = "fleet_lang"
CHOSEN = web.RequestKey("fleet_lang_chosen", str)


def configured(config: Config) -> str:
    """``[fleet] language``, checked when the app is built: a typo stops the service with
    the key's name rather than serving pages in a language nobody asked for."""
    value = str(config.get("fleet", "language")).strip().lower() or DEFAULT_LOCALE
    if value not in LOCALES:
        raise ConfigError(f"[fleet] language is {value!r}; use one of: " + ", ".join(LOCALES))
    return value


async def reader(request: web.Request, account: Account | None, db: FleetDB,
                 now: float, default: str) -> Tr:
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
    return _cookie(request, default)


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


def anonymous(request: web.Request, default: str) -> Tr:
    """Before login (the login form, an error page): ``?lang=``, else the cookie, else
    ``default`` (``[fleet] language``)."""
    asked = request.query.get("lang", "")
    if asked in LOCALES:
        request[CHOSEN] = asked
        return translator(asked)
    return _cookie(request, default)


def _cookie(request: web.Request, default: str) -> Tr:
    cookie = request.cookies.get(COOKIE, "")
    return translator(cookie if cookie in LOCALES else default)
