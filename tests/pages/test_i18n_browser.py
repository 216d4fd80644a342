"""Bangla by default, English with one click (issue 14), in real headless Chromium at the
CHCP's laptop (1280×800) and a phone (412×915), with screenshots in artifacts/: the form in
Bangla from the metadata's translations, months in Bengali digits, a negative number's
plain-language refusal, a failed rule as a sentence, the switch remembered per user across
logins, and no English catalogue string left on a Bangla page.

The tests in this module run in order and share one browser and one hub.
"""

from __future__ import annotations

from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from tests.hub.cells import cells, month
from tests.i18n.test_locale_api import english_left

from .conftest import ARTIFACTS, ThreadedHub
from .test_browser import cell, js_errors, login, status, type_into, wait

C = cells()
FORM1 = C.form1
PE = month(0)
PATIENTS = C.elements(FORM1)[0]
TESTED = next(e for e in C.elements(FORM1) if e["code"] == "CC_MAL_TEST")
POSITIVE = next(e for e in C.elements(FORM1) if e["code"] == "CC_MAL_POS")
SIZES = {"laptop": (1280, 800), "phone": (412, 915)}
BN_DIGITS = set("০১২৩৪৫৬৭৮৯")


def shot(d: webdriver.Chrome, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    d.execute_script("window.scrollTo(0, 0)")
    assert d.save_screenshot(str(ARTIFACTS / f"{name}.png"))


def size(d: webdriver.Chrome, which: str) -> None:
    d.set_window_size(*SIZES[which])


def open_form1(d: webdriver.Chrome) -> None:
    wait(d, "the form picker", lambda: d.find_element(By.ID, "ds").is_displayed())
    Select(d.find_element(By.ID, "ds")).select_by_value(FORM1["id"])
    Select(d.find_element(By.ID, "pe")).select_by_value(PE)
    wait(d, "the form", lambda: d.find_elements(By.CSS_SELECTOR, "td.cell input"))


def test_bangla_by_default(live_hub: ThreadedHub, browser: webdriver.Chrome) -> None:
    d = browser
    size(d, "laptop")
    d.get(live_hub.url + "/hub")
    assert d.find_element(By.TAG_NAME, "html").get_attribute("lang") == "bn"
    wait(d, "the login form", lambda: d.find_element(By.ID, "login").is_displayed())
    assert d.find_element(By.ID, "login-h").text == "লগ ইন"
    assert d.title.startswith("মাসিক ফর্ম")
    shot(d, "i18n-bn-login-1280")
    login(d, "chcp", "wrong-password")
    wait(d, "the login error", lambda: "ইউজারনেম বা পাসওয়ার্ড ভুল।" in
         d.find_element(By.ID, "login-error").text)
    login(d, "chcp", "district")
    wait(d, "the form picker", lambda: d.find_element(By.ID, "ds").is_displayed())

    # the form's names from the metadata's Bangla translations; months in Bengali digits
    names = [o.text for o in Select(d.find_element(By.ID, "ds")).options
             if o.get_attribute("value")]
    assert "সিসি ফর্ম-১ সেবা" in names
    Select(d.find_element(By.ID, "ds")).select_by_value(FORM1["id"])
    months = [o.text for o in Select(d.find_element(By.ID, "pe")).options
              if o.get_attribute("value")]
    assert months[0].split()[-1] == "".join("০১২৩৪৫৬৭৮৯"[int(c)] for c in PE[:4])
    open_form1(d)
    heads = [h.text for h in d.find_elements(By.CSS_SELECTOR, "section.sec h3")]
    assert heads[:2] == ["সাধারণ বহির্বিভাগ", "সাধারণ রোগ"]
    thead = d.find_element(By.CSS_SELECTOR, "table.form thead").text
    assert "পুরুষ" in thead and "নারী" in thead and "১৫-৪৯ বছর" in thead
    assert d.find_element(By.ID, "save").text == "ফর্ম সংরক্ষণ"

    # a negative number: a sentence about the form, the code in the details line
    p0 = C.cocs(PATIENTS)[0]
    type_into(d, PATIENTS, p0, "-5")
    wait(d, "the refusal", lambda: cell(d, PATIENTS, p0).get_attribute("data-state") == "error")
    assert status(d, PATIENTS, p0).startswith(
        "সংরক্ষণ হয়নি: এখানে শুধু শূন্য বা তার বেশি পূর্ণসংখ্যা লেখা যাবে।")
    det = cell(d, PATIENTS, p0).find_element(By.CSS_SELECTOR, ".det").get_attribute("title")
    assert det.startswith("E7619 · ")
    # a value the hub takes: a small mark, its words in the tooltip
    type_into(d, PATIENTS, p0, "12")
    wait(d, "the mark", lambda: status(d, PATIENTS, p0) == "হাবে জমা হয়েছে")
    assert "quiet" in (cell(d, PATIENTS, p0).get_attribute("class") or "")

    # a failed rule as a sentence with both sides' values
    type_into(d, POSITIVE, C.cocs(POSITIVE)[0], "5")
    wait(d, "saved", lambda: status(d, POSITIVE, C.cocs(POSITIVE)[0]) == "হাবে জমা হয়েছে")
    d.find_element(By.ID, "validate").click()
    vres = d.find_element(By.ID, "vres")
    want = "ম্যালেরিয়া আরডিটি পজিটিভ (৫) ম্যালেরিয়া আরডিটি পরীক্ষা (০)-এর বেশি হতে পারে না।"
    wait(d, "the validation sentence", lambda: want in vres.text)
    # the result is in view below the sticky toolbar, not under it
    tools = d.find_element(By.CSS_SELECTOR, ".tools").rect
    assert vres.rect["y"] - d.execute_script("return window.scrollY") >= \
        tools["height"] - 1
    shot(d, "i18n-bn-entry-1280")
    assert english_left(d.page_source) == []
    assert js_errors(d) == []


def test_phone_sizes_in_bangla(live_hub: ThreadedHub, browser: webdriver.Chrome) -> None:
    d = browser
    size(d, "phone")
    d.get(live_hub.url + "/hub")
    open_form1(d)
    # the page itself never scrolls sideways; each column names its parent option
    assert d.execute_script("return document.documentElement.scrollWidth") <= \
        d.execute_script("return window.innerWidth")
    leaf = d.find_elements(By.CSS_SELECTOR, "table.form thead tr:nth-child(2) th")[0].text
    assert "পুরুষ" in leaf
    shot(d, "i18n-bn-entry-412")
    d.get(live_hub.url + "/hub/status")
    counts = d.find_elements(By.CSS_SELECTOR, "#counts .big-n")
    assert counts and all(set(c.text) <= BN_DIGITS for c in counts)
    shot(d, "i18n-bn-status-412")
    assert english_left(d.page_source) == []


def test_english_with_one_click_remembered_per_user(live_hub: ThreadedHub,
                                                    browser: webdriver.Chrome) -> None:
    d = browser
    size(d, "laptop")
    d.get(live_hub.url + "/hub")
    wait(d, "logged in", lambda: d.find_element(By.ID, "who").text)
    d.find_element(By.CSS_SELECTOR, '.lang a[data-lang="en"]').click()
    wait(d, "the English page", lambda: d.find_element(By.TAG_NAME, "html")
         .get_attribute("lang") == "en")
    open_form1(d)
    assert d.find_element(By.ID, "save").text == "Save form"
    assert "CC Form-1 Services" in [o.text for o in Select(d.find_element(By.ID, "ds")).options]
    shot(d, "i18n-en-entry-1280")
    saved = live_hub.store.read_sync(lambda c: c.execute(
        "SELECT value FROM settings WHERE key='keyUiLocale' AND scope=(SELECT uid FROM users "
        "WHERE username='chcp')").fetchone())
    assert saved is not None and saved[0] == '"en"'

    # another laptop: no cookies; Bangla until chcp logs in, then English
    d.find_element(By.ID, "logout").click()
    wait(d, "logged out", lambda: d.find_element(By.ID, "login").is_displayed())
    d.delete_all_cookies()
    d.get(live_hub.url + "/hub")
    assert d.find_element(By.TAG_NAME, "html").get_attribute("lang") == "bn"
    login(d, "chcp", "district")
    wait(d, "the English page after login", lambda: d.find_element(By.TAG_NAME, "html")
         .get_attribute("lang") == "en" and d.find_element(By.ID, "who").text)
    open_form1(d)
    size(d, "phone")
    shot(d, "i18n-en-entry-412")
    d.get(live_hub.url + "/hub/status")
    assert d.find_element(By.CSS_SELECTOR, "h1.big").text == "Hub status"
    shot(d, "i18n-en-status-412")
    # back to Bangla with Latin digits
    d.find_element(By.CSS_SELECTOR, '.lang a[data-lang="bn"]').click()
    wait(d, "Bangla", lambda: d.find_element(By.TAG_NAME, "html").get_attribute("lang") == "bn")
    d.find_element(By.CSS_SELECTOR, '.lang a[data-digits="latin"]').click()
    wait(d, "Latin digits", lambda: d.find_element(By.TAG_NAME, "html")
         .get_attribute("data-digits") == "latin")
    counts = d.find_elements(By.CSS_SELECTOR, "#counts .big-n")
    assert all(c.text.isascii() for c in counts)
    size(d, "laptop")
    shot(d, "i18n-bn-latin-status-1280")
    assert js_errors(d) == []
