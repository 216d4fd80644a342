"""The register pages in Bangla (issue 14), in real headless Chromium: search, a person's
record and the due/overdue list speak the reader's language and ship no English catalogue
string; screenshots in artifacts/."""

from __future__ import annotations

from selenium import webdriver
from selenium.webdriver.common.by import By

from tests.hub.tracker_data import registers
from tests.i18n.test_locale_api import english_left

from .conftest import ThreadedHub
from .test_browser import js_errors, login, wait
from .test_i18n_browser import shot
from .test_registers import REF, person_at_home

R = registers()
# the demo's tracker metadata has no Bangla translations yet: its names are DHIS2's content,
# not the page's words, even where they read like a catalogue string ("Mobile")
METADATA = {o["name"] for k in ("trackedEntityAttributes", "dataElements", "programs",
                                "programStages") for o in R.doc.get(k, [])}


LABELS = {p[k] for p in R.doc.get("programs", [])
          for k in ("enrollmentDateLabel", "incidentDateLabel") if p.get(k)}


def own_english(html: str) -> list[str]:
    return [s for s in english_left(html)
            if s not in METADATA and not any(label in s for label in LABELS)]


def open_in_bangla(d: webdriver.Chrome, url: str) -> None:
    d.get(url)
    wait(d, "the page or its login", lambda: d.find_element(By.ID, "login").is_displayed() or
         d.find_element(By.ID, "who").text)
    if d.find_element(By.ID, "login").is_displayed():
        login(d, "chcp", "district")
    wait(d, "the page to load", lambda: d.find_element(By.ID, "who").text)
    assert d.find_element(By.TAG_NAME, "html").get_attribute("lang") == "bn"


def test_register_pages_in_bangla(live_hub: ThreadedHub, browser: webdriver.Chrome) -> None:
    d = browser
    d.set_window_size(1280, 800)
    open_in_bangla(d, live_hub.url + "/hub/people")
    wait(d, "the search", lambda: d.find_element(By.CSS_SELECTOR, "h1.big").text == "রেজিস্টারের ব্যক্তিরা")
    box = d.find_element(By.CSS_SELECTOR, "#q")
    box.send_keys("a\n")
    wait(d, "the count", lambda: "জনকে পাওয়া গেছে" in d.find_element(By.ID, "count").text
         or "কাউকে" in d.find_element(By.ID, "count").text)
    shot(d, "i18n-bn-people-1280")
    assert own_english(d.page_source) == []

    p = person_at_home(live_hub, "BD_MATERNAL")
    open_in_bangla(d, f"{live_hub.url}/hub/people/{p['te']}")
    wait(d, "the record", lambda: "ব্যক্তিগত তথ্য" in d.find_element(By.ID, "main").text)
    shot(d, "i18n-bn-record-1280")
    assert own_english(d.page_source) == []

    open_in_bangla(d, f"{live_hub.url}/hub/lists?list=due&date={REF}")
    wait(d, "the list", lambda: "বাকি ও সময় পেরোনো ভিজিট" in d.find_element(By.ID, "main").text)
    shot(d, "i18n-bn-lists-1280")
    assert own_english(d.page_source) == []
    assert js_errors(d) == []
