"""The languages of the pages and messages (issue 14): Bangla by default, English on request.

Only the interface is here so far; the catalogues are being built. Code that shows text to a
person marks it through this interface so the catalogues can find it:

- ``N_(s)`` marks a string defined at module level (a label in a table) and returns it;
- ``translator(locale)`` gives a ``Tr``; ``tr(s, **fields)`` is ``s`` in ``tr.locale`` with
  ``{name}`` fields filled; ``tr.locale`` is what the page's ``lang`` says;
- in the browser, ``t(s, fields)`` from ``/hub/static/i18n.js`` does the same.
"""

from __future__ import annotations

from dataclasses import dataclass

LOCALES = ("bn", "en")
DEFAULT_LOCALE = "en"  # until the Bangla catalogue exists


def N_(s: str) -> str:  # noqa: N802 - gettext's name for a marker
    return s


@dataclass(frozen=True)
class Tr:
    locale: str = DEFAULT_LOCALE

    def __call__(self, s: str, **fields: object) -> str:
        return s.format(**fields) if fields else s


def translator(locale: str | None = None) -> Tr:
    return Tr(locale if locale in LOCALES else DEFAULT_LOCALE)
