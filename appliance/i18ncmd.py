"""``appliance i18n extract|check`` (and ``make i18n``): the catalogues' upkeep.

``extract`` reads every marked string from the source (``babel.cfg``: Python's ``N_``/``tr``
calls, the pages' ``t`` calls), adds new ones to each locale's ``.po`` (untranslated),
drops the ones no code uses any more and refreshes the source locations (the browser's
catalogue is the strings used by ``.js`` files). ``check`` changes nothing and fails when a
string has no Bangla translation or a catalogue is out of date, for CI and before a commit.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path
from typing import Any

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po, write_po

from .i18n import DOMAIN, LOCALES

# Python marks with N_ and tr, the pages' scripts with t (Python code has other t's)
KEYWORDS: dict[str, dict[str, Any]] = {"python": {"N_": None, "tr": None},
                                       "javascript": {"t": None}}
SOURCE_LOCALE = "en"
SOURCE = Path(__file__).resolve().parent.parent  # the checkout babel.cfg is in


def extract(root: Path = SOURCE) -> Catalog:
    """Every marked string under ``root``/appliance with its locations."""
    with (root / "babel.cfg").open() as f:
        method_map, options_map = parse_mapping_cfg(f)
    cat = Catalog(domain=DOMAIN, project="upazila-hub", charset="utf-8")
    for method, keywords in KEYWORDS.items():
        for filename, _lineno, message, _comments, context in extract_from_dir(
                root, [m for m in method_map if m[1] == method], options_map,
                keywords=keywords,
                directory_filter=lambda d: not Path(d).name.startswith(".")):
            # files without line numbers: moving code does not make the catalogues stale
            if isinstance(message, str) and message.strip():
                cat.add(message, None, [(filename, None)], context=context)  # type: ignore[list-item]
    return cat


def po_path(locale: str, root: Path = SOURCE) -> Path:
    return root / "appliance" / "locale" / locale / "LC_MESSAGES" / f"{DOMAIN}.po"


def read(path: Path, locale: str) -> Catalog:
    if not path.is_file():
        return Catalog(locale=locale, domain=DOMAIN)
    with path.open("rb") as f:
        return read_po(f, locale=locale, domain=DOMAIN)


def merged(template: Catalog, old: Catalog, locale: str) -> Catalog:
    """``template``'s strings with ``old``'s translations (exact matches only: a changed
    English string needs a new translation, never a guessed one)."""
    new = Catalog(locale=locale, domain=DOMAIN, project="upazila-hub", charset="utf-8",
                  fuzzy=False)
    for msg in template:
        if not msg.id:
            continue
        prev = old.get(msg.id, context=msg.context)
        string = prev.string if prev is not None and not prev.fuzzy else ""
        new.add(msg.id, string, sorted(set(msg.locations)), context=msg.context,
                user_comments=prev.user_comments if prev is not None else ())
    return new


def render(cat: Catalog) -> bytes:
    buf = io.BytesIO()
    write_po(buf, cat, width=100, sort_output=True, omit_header=False, ignore_obsolete=True)
    # the header's creation date would change on every run
    return b"\n".join(line for line in buf.getvalue().split(b"\n")
                      if not line.startswith((b'"POT-Creation-Date', b'"PO-Revision-Date',
                                              b'"Generated-By')))


def missing(cat: Catalog, template: Catalog) -> list[str]:
    """The template's strings ``cat`` has no translation for."""
    return sorted(str(m.id) for m in template if m.id and (
        (t := cat.get(m.id, context=m.context)) is None or not t.string or t.fuzzy))


def run_extract(root: Path = SOURCE) -> list[Path]:
    template = extract(root)
    changed = []
    for locale in LOCALES:
        path = po_path(locale, root)
        body = render(merged(template, read(path, locale), locale))
        if not path.is_file() or path.read_bytes() != body:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(body)
            changed.append(path)
    return changed


def run_check(root: Path = SOURCE) -> list[str]:
    """Problems: untranslated Bangla strings and catalogues behind the source."""
    template = extract(root)
    problems = []
    for locale in LOCALES:
        path = po_path(locale, root)
        if path.is_file() and path.read_bytes() != render(merged(template, read(path, locale),
                                                                 locale)):
            problems.append(f"{path.relative_to(root)}: out of date, run `make i18n`")
    bn = read(po_path("bn", root), "bn")
    problems += [f"bn: no translation for {m!r}" for m in missing(bn, template)]
    return problems


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=("extract", "check"),
                   help="extract: refresh the .po files from the source; check: fail when a "
                        "string is untranslated or a catalogue is out of date")


def run(args: argparse.Namespace, cfg: Any) -> int:
    if args.action == "extract":
        for path in run_extract():
            print(f"updated {path.relative_to(SOURCE)}")
        left = missing(read(po_path("bn"), "bn"), extract())
        print(f"{len(left)} string(s) still need a Bangla translation")
        return 0
    problems = run_check()
    for p in problems:
        print(p, file=sys.stderr)
    return 1 if problems else 0
