"""The catalogues (issue 14): every string the code marks has a Bangla translation, the .po
files are current with the source, and the check fails when one is missing."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

from appliance import i18ncmd
from appliance.i18n import js_catalog, messages, translator
from tests.conftest import REPO


def test_every_string_has_a_bangla_translation() -> None:
    assert i18ncmd.run_check() == []
    assert len(messages("bn")) >= 250
    # the browser's catalogue holds the scripts' strings only
    js = js_catalog("bn")
    assert js["received by the hub"] == "হাবে জমা হয়েছে"
    assert "Tablet server URL" not in js and "Tablet server URL" in messages("bn")


def test_the_check_fails_on_a_missing_string(tmp_path: Path) -> None:
    root = tmp_path / "src"
    (root / "appliance" / "hub" / "static").mkdir(parents=True)
    shutil.copy(REPO / "babel.cfg", root / "babel.cfg")
    (root / "appliance" / "pages.py").write_text(
        'from appliance.i18n import N_\nLABEL = N_("Clinic")\n\n\ndef f(tr):\n'
        '    return tr("Only whole numbers of zero or more go here.")\n', encoding="utf-8")
    (root / "appliance" / "hub" / "static" / "x.js").write_text(
        "import {t} from './i18n.js';\nexport const a = t('Save form');\n", encoding="utf-8")
    assert i18ncmd.run_extract(root)  # the catalogues are made, every string untranslated
    problems = i18ncmd.run_check(root)
    assert sorted(p for p in problems if p.startswith("bn:")) == [
        "bn: no translation for 'Clinic'",
        "bn: no translation for 'Only whole numbers of zero or more go here.'",
        "bn: no translation for 'Save form'"]

    # translate two of them in the .po: the third is still reported
    po = i18ncmd.po_path("bn", root)
    cat = i18ncmd.read(po, "bn")
    cat["Clinic"].string = "ক্লিনিক"
    cat["Save form"].string = "ফর্ম সংরক্ষণ"
    po.write_bytes(i18ncmd.render(cat))
    assert i18ncmd.run_check(root) == [
        "bn: no translation for 'Only whole numbers of zero or more go here.'"]

    # a new string in the source makes the catalogue out of date, and untranslated
    (root / "appliance" / "more.py").write_text('tr("Reporting month")\n', encoding="utf-8")
    problems = i18ncmd.run_check(root)
    assert any("out of date" in p for p in problems)
    assert "bn: no translation for 'Reporting month'" in problems


def test_dates_numbers_and_digits() -> None:
    bn, latin, en = translator("bn"), translator("bn", "latin"), translator("en")
    assert bn.period("202612") == "ডিসেম্বর ২০২৬"
    assert latin.period("202612") == "ডিসেম্বর 2026"
    assert en.period("202612") == "December 2026"
    assert bn.num(1234567) == "১২,৩৪,৫৬৭" and en.num(1234567) == "1,234,567"
    assert bn("{n} waiting for national", n=12) == "১২টি জাতীয় সার্ভারে যাওয়ার অপেক্ষায়"
    assert latin("{n} waiting for national", n=12) == "12টি জাতীয় সার্ভারে যাওয়ার অপেক্ষায়"
    assert en("{n} waiting for national", n=12) == "12 waiting for national"
    moment = dt.datetime(2026, 12, 1, 14, 5, tzinfo=dt.UTC)
    assert bn.datetime(moment) == "১ ডিসে ২০২৬, ১৪:০৫"
    assert en.datetime(moment) == "1 Dec 2026, 14:05"
    # a string field stays as given (an error code keeps its digits)
    assert bn("Could not sync with national: {why}", why="E7619") == \
        "জাতীয় সার্ভারের সাথে সিঙ্ক করা যায়নি: E7619"
    # an unknown locale falls back to Bangla, bn_BD is Bangla
    assert translator("fr").locale == "bn" and translator("bn_BD").locale == "bn"
