"""The languages of the pages and messages (issue 14): Bangla by default, English on request.

Code that shows text to a person marks it through this interface so the catalogues can find
it (``appliance i18n extract`` / ``make i18n``):

- ``N_(s)`` marks a string defined at module level (a label in a table) and returns it;
- ``translator(locale)`` gives a ``Tr``; ``tr(s, **fields)`` is ``s`` in ``tr.locale`` with
  ``{name}`` fields filled (numbers in the reader's digits); ``tr.locale`` is what the page's
  ``lang`` says;
- in the browser, ``t(s, fields)`` from ``/hub/static/i18n.js`` does the same from the
  catalogue ``js_catalog`` serves.

The catalogues are gettext ``.po`` files (``appliance/locale/<locale>/LC_MESSAGES/
appliance.po``) read with Babel once per process: no compile step, and the wheel ships the
``.po`` files themselves. English is the source language: its catalogue is empty, and a
string missing from the Bangla one shows in English (``tests/test_i18n_catalog.py`` fails on
that). Dates, months and numbers come from Babel's CLDR data; Babel formats Latin digits, so
Bengali digits (the default in Bangla, a per-user choice) are mapped here.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from babel.dates import format_datetime, format_skeleton
from babel.numbers import format_decimal

if TYPE_CHECKING:
    from babel.messages.catalog import Catalog

LOCALES = ("bn", "en")
DEFAULT_LOCALE = "bn"
DOMAIN = "appliance"
# The reader's digits in Bangla: "bengali" (০১২…, the default) or "latin" (012…). Stored per
# user as the hub's own user setting DIGITS_SETTING next to DHIS2's keyUiLocale (DHIS2 has no
# setting for it); English always uses Latin digits.
DIGITS = ("bengali", "latin")
DEFAULT_DIGITS = "bengali"
UI_LOCALE_SETTING = "keyUiLocale"
DB_LOCALE_SETTING = "keyDbLocale"
DIGITS_SETTING = "keyHubDigits"
# The logged-out reader's choice (the login page), remembered by the browser
LOCALE_COOKIE = "hub_lang"
DIGITS_COOKIE = "hub_digits"

LOCALE_NAMES = {"bn": "বাংলা", "en": "English"}  # each in its own language: never translated
_BENGALI = str.maketrans("0123456789", "০১২৩৪৫৬৭৮৯")
_LATIN = str.maketrans("০১২৩৪৫৬৭৮৯", "0123456789")
_FIELD = re.compile(r"\{(\w+)\}")


def N_(s: str) -> str:  # noqa: N802 - gettext's name for a marker
    return s


def locale_dir() -> Any:
    return resources.files("appliance").joinpath("locale")


@cache
def catalog(locale: str) -> Catalog:
    """The locale's catalogue as Babel reads it (an empty one for a locale without a file).
    Babel's catalogue reader is imported here, by the first process that translates: the
    sync worker and the health agent mostly never do, and it costs each a few MB."""
    from babel.messages.catalog import Catalog
    from babel.messages.pofile import read_po

    path = locale_dir().joinpath(locale, "LC_MESSAGES", f"{DOMAIN}.po")
    if not path.is_file():
        return Catalog(locale=locale, domain=DOMAIN)
    with path.open("rb") as f:
        return read_po(f, locale=locale, domain=DOMAIN)


@cache
def messages(locale: str) -> dict[str, str]:
    """msgid -> translation, the translated and not fuzzy ones only."""
    return {m.id: m.string for m in catalog(locale)
            if m.id and isinstance(m.id, str) and isinstance(m.string, str) and m.string
            and not m.fuzzy}


def _from_js(msg: Any) -> bool:
    return any(str(path).endswith(".js") for path, _line in msg.locations)


@cache
def js_catalog(locale: str) -> dict[str, str]:
    """The translations the pages' scripts use (``t('…')`` calls in ``static/*.js``): the
    catalogue the browser loads, without the server's strings."""
    return {m.id: m.string for m in catalog(locale) if isinstance(m.id, str) and m.id
            and isinstance(m.string, str) and m.string and not m.fuzzy and _from_js(m)}


def pick_locale(*choices: object) -> str:
    """The first of ``choices`` that is a locale the hub speaks (``bn_BD`` counts as bn)."""
    for c in choices:
        if isinstance(c, str) and c:
            lang = c.replace("-", "_").split("_")[0].lower()
            if lang in LOCALES:
                return lang
    return DEFAULT_LOCALE


def pick_digits(*choices: object) -> str:
    for c in choices:
        if c in DIGITS:
            return str(c)
    return DEFAULT_DIGITS


@dataclass(frozen=True)
class Tr:
    locale: str = DEFAULT_LOCALE
    digits: str = DEFAULT_DIGITS

    @property
    def bengali_digits(self) -> bool:
        return self.locale == "bn" and self.digits == "bengali"

    def __call__(self, s: str, **fields: object) -> str:
        text = messages(self.locale).get(s, s) if self.locale != "en" else s
        if not fields:
            return text
        vals = {k: self.field(v) for k, v in fields.items()}
        return _FIELD.sub(lambda m: vals.get(m.group(1), m.group(0)), text)

    def field(self, v: object) -> str:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return str(v)
        return self.num(v)

    def digit(self, s: str) -> str:
        """``s`` with its digits in the reader's digits."""
        return s.translate(_BENGALI) if self.bengali_digits else s.translate(_LATIN)

    def num(self, v: float | int | str | None, decimals: int | None = None) -> str:
        """A number as the reader writes it (grouping, decimal sign, digits); text that is no
        number comes back with its digits mapped."""
        if v is None or v == "":
            return "—"
        try:
            n = float(v) if isinstance(v, str) else v
        except ValueError:
            return self.digit(str(v))
        if decimals is not None:
            text = format_decimal(n, format=f"#,##0.{'0' * decimals}" if decimals else "#,##0",
                                  locale=self.locale)
        else:
            text = format_decimal(n, locale=self.locale)
        return self.digit(text)

    def period(self, pe: str) -> str:
        """A DHIS2 period id as words: ``202612`` is "ডিসেম্বর ২০২৬" / "December 2026";
        other period types keep their id (in the reader's digits)."""
        if len(pe) == 6 and pe.isdigit() and 1 <= int(pe[4:]) <= 12:
            return self.digit(format_skeleton("yMMMM", dt.date(int(pe[:4]), int(pe[4:]), 1),
                                              locale=self.locale))
        return self.digit(pe)

    def datetime(self, d: dt.datetime, tz: dt.tzinfo | None = None) -> str:
        """A moment as "1 ডিসে, 2026 14:05" / "1 Dec 2026, 14:05" (24-hour clock)."""
        return self.digit(format_datetime(d, "d MMM y, HH:mm", tzinfo=tz, locale=self.locale))

    def date(self, d: dt.date) -> str:
        return self.digit(format_skeleton("yMMMd", d, locale=self.locale))


def translator(locale: str | None = None, digits: str | None = None) -> Tr:
    return Tr(pick_locale(locale), pick_digits(digits))
