"""The register pages in Bangla (issue 14), in real headless Chromium: search, a person's
record with a visit form and its rules, and the due/overdue list speak the reader's
language: no English catalogue string, and none of the registers' metadata (programs, their
date labels, stages, attributes, data elements, options, the clinics) in English where the
demo has its Bangla; screenshots in artifacts/."""

from __future__ import annotations

import re

from selenium import webdriver
from selenium.webdriver.common.by import By

from tests.hub.tracker_data import registers
from tests.i18n.test_locale_api import _Text, english_left

from .conftest import ThreadedHub
from .test_browser import js_errors, login, wait
from .test_i18n_browser import shot
from .test_registers import REF, de, field, person_at_home, type_in

R = registers()


def bn(obj: dict[str, object], prop: str = "NAME") -> str:
    return next(str(t["value"]) for t in obj.get("translations", [])  # type: ignore[union-attr]
                if t["property"] == prop and t["locale"] == "bn")


# The registers' metadata and the places in English: DHIS2's content, which the pages show
# in the reader's language from the metadata's translations.
METADATA = {o[k] for coll in ("trackedEntityAttributes", "dataElements", "programs",
                              "programStages", "options")
            for o in R.doc[coll] if coll != "dataElements" or o.get("domainType") == "TRACKER"
            for k in ("name", "shortName", "formName", "enrollmentDateLabel",
                      "incidentDateLabel") if o.get(k)}
METADATA |= {o["name"] for o in R.doc["organisationUnits"]
             if o["name"].endswith((" Community Clinic", " UHC"))}


def english_metadata(html: str) -> list[str]:
    """Text on the page that is, or has as one of its parts ("name: value · ..."), an
    English name of the registers' metadata."""
    p = _Text()
    p.feed(html)
    return [t for t in p.texts for part in re.split(r" · |: |, ", t)
            if part.strip() in METADATA]


def in_bangla(html: str) -> list[str]:
    return english_left(html) + english_metadata(html)


def open_in_bangla(d: webdriver.Chrome, url: str) -> None:
    d.get(url)
    wait(d, "the page or its login", lambda: d.find_element(By.ID, "login").is_displayed() or
         d.find_element(By.ID, "who").text)
    if d.find_element(By.ID, "login").is_displayed():
        login(d, "chcp", "district")
    wait(d, "the page to load", lambda: d.find_element(By.ID, "who").text)
    assert d.find_element(By.TAG_NAME, "html").get_attribute("lang") == "bn"


def test_the_check_sees_english_metadata() -> None:
    assert english_metadata("<td>ওজন (কেজি): 12 · Oedema: হ্যাঁ</td>") == [
        "ওজন (কেজি): 12 · Oedema: হ্যাঁ"]
    assert english_metadata("<option>Merongloa Community Clinic</option>") == [
        "Merongloa Community Clinic"]
    assert english_metadata("<td>Merongloa Noapara</td><td>Fatema Begum</td>") == []


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
    assert in_bangla(d.page_source) == []

    maternal = R.program("BD_MATERNAL")
    p = person_at_home(live_hub, "BD_MATERNAL")
    open_in_bangla(d, f"{live_hub.url}/hub/people/{p['te']}")
    wait(d, "the record", lambda: "ব্যক্তিগত তথ্য" in d.find_element(By.ID, "main").text)
    section = d.find_element(By.CSS_SELECTOR,
                             f'section.enrollment[data-program="{maternal["id"]}"]')
    # the register, its date labels and the clinic responsible, in Bangla
    assert section.find_element(By.TAG_NAME, "h2").text.startswith(bn(maternal))
    assert bn(maternal, "INCIDENT_DATE_LABEL") in section.text
    assert "মেরংলোয়া কমিউনিটি ক্লিনিক" in section.text
    shot(d, "i18n-bn-record-1280")
    assert in_bangla(d.page_source) == []

    # a visit's form: fields, options and a rule's warning in Bangla
    section.find_element(By.CSS_SELECTOR, "button.new-visit").click()
    wait(d, "the visit form", lambda: d.find_element(By.ID, "visit"))
    type_in(field(d, f"#d-{de('BD_MAT_BP_SYS')}"), "150")
    msg = field(d, f"#m-d-{de('BD_MAT_BP_SYS')}")
    wait(d, "the blood pressure warning", lambda: "প্রি-একলাম্পসিয়া" in msg.text)
    assert "রক্তচাপ সিস্টোলিক" in d.find_element(By.ID, "v-fields").text
    shot(d, "i18n-bn-visit-1280")
    assert in_bangla(d.page_source) == []

    open_in_bangla(d, f"{live_hub.url}/hub/lists?list=due&date={REF}")
    wait(d, "the list", lambda: "বাকি ও সময় পেরোনো ভিজিট" in d.find_element(By.ID, "main").text)
    wait(d, "the overdue visits", lambda: d.find_elements(By.CSS_SELECTOR, "#overdue-table td"))
    assert bn(maternal) in d.find_element(By.ID, "main").text
    shot(d, "i18n-bn-lists-1280")
    assert in_bangla(d.page_source) == []
    assert js_errors(d) == []
