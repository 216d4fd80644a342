"""The CHCP's reporting day in real headless Chromium against a real hub on a loopback port,
in English (the reader's choice, kept in a cookie; Bangla is tested in test_i18n_browser.py):
log in, open CC Form-1, type values, see "received by the hub", an import conflict inline,
complete the form; then national accepts and refuses values (simulated in the store) and
the page shows it without a reload; then the hub's status page.

The tests in this module run in order and share one browser and one hub.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, TypeVar

from selenium import webdriver
from selenium.common.exceptions import (
    StaleElementReferenceException,
    TimeoutException,
    WebDriverException,
)
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select, WebDriverWait

from appliance.store.db import Tx
from tests.hub.cells import cells, month

from .conftest import ARTIFACTS, ThreadedHub

C = cells()
FORM1 = C.form1
CLINIC = C.chcp_clinic
PE = month(0)
PATIENTS = C.elements(FORM1)[0]                          # Sex and Age group, 10 columns
NEW = C.elements(FORM1)[1]
PCT = C.element("PERCENTAGE", FORM1)
REMARKS = C.element("TEXT", FORM1, options=False)
STOCK = C.element("TEXT", FORM1, options=True)
BOOL = C.element("BOOLEAN", FORM1)
TRUE_ONLY = C.element("TRUE_ONLY", FORM1)
DATE = C.element("DATE", FORM1)
INTEGER = C.element("INTEGER", FORM1)
DEFAULT = C.default_coc
REFUSAL = f"Organisation unit: `{CLINIC}` not in hierarchy of current user: `hub-ramu`"

T = TypeVar("T")


def wait(driver: webdriver.Chrome, what: str, fn: Callable[[], T], timeout: float = 10) -> T:
    def attempt(_d: webdriver.Chrome) -> T | bool:
        try:
            return fn()
        except WebDriverException as e:
            # a node detached while chromedriver read it: Chrome reports this as an inspector
            # error rather than a stale element (seen in CI after a logout re-rendered the page)
            if "does not belong to the document" in (e.msg or ""):
                return False
            raise

    try:
        # the pages refresh themselves every 10 s: an element can go stale between polls
        return WebDriverWait(driver, timeout, poll_frequency=0.1,
                             ignored_exceptions=[StaleElementReferenceException]).until(
            attempt)  # type: ignore[return-value]
    except TimeoutException:
        raise AssertionError(f"timed out after {timeout} s waiting for {what}") from None


def cell(driver: webdriver.Chrome, de: dict[str, Any], coc: str) -> WebElement:
    return driver.find_element(By.CSS_SELECTOR, f'td[data-de="{de["id"]}"][data-coc="{coc}"]')


def field(driver: webdriver.Chrome, de: dict[str, Any], coc: str) -> WebElement:
    return driver.find_element(By.ID, f"v-{de['id']}-{coc}")


def status(driver: webdriver.Chrome, de: dict[str, Any], coc: str) -> str:
    """What the cell says: a quiet state (received, accepted) is a mark with its words in the
    tooltip; a refusal is a sentence, with DHIS2's text and code in a details line below."""
    st = cell(driver, de, coc).find_element(By.CSS_SELECTOR, ".st")
    return str(st.get_attribute("title") or st.text)


def type_into(driver: webdriver.Chrome, de: dict[str, Any], coc: str, text: str) -> None:
    el = field(driver, de, coc)
    el.clear()
    el.send_keys(text, Keys.TAB)


def login(driver: webdriver.Chrome, username: str, password: str) -> None:
    wait(driver, "the login form", lambda: driver.find_element(By.ID, "login").is_displayed())
    for name, value in (("username", username), ("password", password)):
        el = driver.find_element(By.ID, name)
        el.clear()
        el.send_keys(value)
    driver.find_element(By.ID, "login-btn").click()


def js_errors(driver: webdriver.Chrome) -> list[str]:
    """Uncaught exceptions and console errors, not the failed requests the tests provoke."""
    return [e["message"] for e in driver.get_log("browser")
            if e["level"] == "SEVERE" and "Failed to load resource" not in e["message"]]


def minmax(de: dict[str, Any], coc: str) -> tuple[int, int]:
    m = next(m for m in C.doc["minMaxDataElements"] if m["source"]["id"] == CLINIC and
             m["dataElement"]["id"] == de["id"] and m["optionCombo"]["id"] == coc)
    return int(m["min"]), int(m["max"])


def rows(hub: ThreadedHub, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    return hub.store.read_sync(lambda c: [tuple(r) for r in c.execute(sql, params)])


# -- login ------------------------------------------------------------------------------------
def test_wrong_password_and_lockout_show_why(live_hub: ThreadedHub,
                                             browser: webdriver.Chrome) -> None:
    browser.get(live_hub.url + "/hub?lang=en")  # the switch without JS: the hub sets a cookie
    assert browser.title.startswith("Monthly forms")
    login(browser, "chcp", "not-the-password")
    err = browser.find_element(By.ID, "login-error")
    wait(browser, "the login error", lambda: "Invalid username or password" in err.text)
    assert not browser.find_element(By.ID, "main").is_displayed()
    assert browser.find_element(By.ID, "password").get_attribute("value") == ""

    live_hub.store.write_sync(lambda tx: tx.execute(
        "UPDATE users SET locked_until=? WHERE username='admin'", (time.time() + 600,)))
    try:
        login(browser, "admin", "district")
        wait(browser, "the lockout message", lambda: "locked" in err.text)
        assert "IT focal point" in err.text
    finally:
        live_hub.store.write_sync(lambda tx: tx.execute(
            "UPDATE users SET locked_until=0, failed=0 WHERE username='admin'"))
    assert js_errors(browser) == []


# -- data entry -------------------------------------------------------------------------------
def test_chcp_enters_and_completes_form1(live_hub: ThreadedHub,
                                         browser: webdriver.Chrome) -> None:
    d = browser
    d.get(live_hub.url + "/hub")
    login(d, "chcp", "district")
    wait(d, "the form picker", lambda: d.find_element(By.ID, "ou").is_displayed())
    assert "chcp" in d.find_element(By.ID, "who").text
    assert d.find_element(By.ID, "logout").is_displayed()

    # only their clinic, and the 4 CC forms
    ou = Select(d.find_element(By.ID, "ou"))
    assert [o.get_attribute("value") for o in ou.options] == [CLINIC]
    ds = Select(d.find_element(By.ID, "ds"))
    names = [o.text for o in ds.options if o.get_attribute("value")]
    assert names == sorted(x["name"] for x in C.doc["dataSets"] if x["name"].startswith("CC Form"))
    assert len(names) == 4
    ds.select_by_value(FORM1["id"])

    # monthly periods, newest first; last month is past expiry (15 days) after the 15th
    pe = Select(d.find_element(By.ID, "pe"))
    ids = [o.get_attribute("value") for o in pe.options if o.get_attribute("value")]
    assert ids[0] == PE and ids[1] == month(-1) and len(ids) >= 12
    assert "(locked" in next(o.text for o in pe.options if o.get_attribute("value") == month(-2))
    assert "(locked" not in pe.options[1].text
    pe.select_by_value(PE)
    wait(d, "the form", lambda: d.find_elements(By.CSS_SELECTOR, "td.cell input"))

    # the section form: sections, nested category headers, inputs typed by value type
    heads = [h.text for h in d.find_elements(By.CSS_SELECTOR, "section.sec h3")]
    assert heads[:2] == ["General outpatient", "Common illnesses"] and len(heads) == 5
    first_head = d.find_element(By.CSS_SELECTOR, "table.form thead").text
    assert "Male" in first_head and "Female" in first_head and "15-49y" in first_head
    assert field(d, PATIENTS, C.cocs(PATIENTS)[0]).get_attribute("type") == "number"
    assert field(d, PCT, DEFAULT).get_attribute("type") == "number"
    assert field(d, REMARKS, DEFAULT).get_attribute("type") == "text"
    assert field(d, STOCK, DEFAULT).tag_name == "select"
    assert field(d, BOOL, DEFAULT).tag_name == "select"
    assert field(d, TRUE_ONLY, DEFAULT).get_attribute("type") == "checkbox"
    assert field(d, DATE, DEFAULT).get_attribute("type") == "date"
    label = field(d, PATIENTS, C.cocs(PATIENTS)[0]).get_attribute("aria-label") or ""
    assert PATIENTS["formName"] in label and "Male, <1y" in label

    # type several values; each is saved on its own and says "received by the hub"
    p0, p1 = C.cocs(PATIENTS)[:2]
    lo, hi = minmax(PATIENTS, p0)
    type_into(d, PATIENTS, p0, str(hi + 400))            # out of the usual range: warned, saved
    type_into(d, PATIENTS, p1, "25")
    type_into(d, NEW, C.cocs(NEW)[0], "12")
    type_into(d, REMARKS, DEFAULT, "Register <b>checked</b> & signed")
    Select(field(d, STOCK, DEFAULT)).select_by_value("LOW")
    Select(field(d, BOOL, DEFAULT)).select_by_value("true")
    field(d, TRUE_ONLY, DEFAULT).click()
    d.execute_script("var e = arguments[0]; e.value = '2026-11-03';"
                     "e.dispatchEvent(new Event('change'));", field(d, DATE, DEFAULT))
    saved = [(PATIENTS, p0), (PATIENTS, p1), (NEW, C.cocs(NEW)[0]), (REMARKS, DEFAULT),
             (STOCK, DEFAULT), (BOOL, DEFAULT), (TRUE_ONLY, DEFAULT), (DATE, DEFAULT)]
    for de, coc in saved:
        wait(d, f"'received by the hub' on {de['name']}",
             lambda de=de, coc=coc: status(d, de, coc) == "received by the hub")
    out = cell(d, PATIENTS, p0)
    assert "range" in (out.get_attribute("class") or "")
    assert out.find_element(By.CSS_SELECTOR, ".rng").text == f"outside usual range {lo:,}–{hi:,}"
    assert "range" not in (cell(d, PATIENTS, p1).get_attribute("class") or "")

    # an invalid value: a sentence about the form next to the cell, DHIS2's E7619 message in
    # the details line, the typed text kept
    type_into(d, PCT, DEFAULT, "101")
    wait(d, "the E7619 conflict inline",
         lambda: cell(d, PCT, DEFAULT).get_attribute("data-state") == "error")
    text = status(d, PCT, DEFAULT)
    assert text.startswith("Not saved: Only a percentage from 0 to 100 goes here.")
    det = cell(d, PCT, DEFAULT).find_element(By.CSS_SELECTOR, ".det").get_attribute("title")
    assert det.startswith("E7619 · ") and "percentage" in det.lower()
    assert field(d, PCT, DEFAULT).get_attribute("value") == "101"
    # a number input the browser cannot parse never reaches the hub, and is kept as typed
    type_into(d, INTEGER, DEFAULT, "1e")
    wait(d, "the local number error", lambda: status(d, INTEGER, DEFAULT) == "Not saved: "
         "Only a number goes here.")

    # mark complete
    d.find_element(By.ID, "complete").click()
    wait(d, "the completion", lambda: d.find_element(By.ID, "complete").text == "Mark incomplete")
    assert d.find_element(By.ID, "complete-st").text.startswith("Complete (by chcp): received")
    summary = d.find_element(By.ID, "sum").text
    assert "8 received by the hub" in summary and "2 with errors" in summary

    # in the store: pending, as typed (normalised by the hub); the refused ones absent
    stored = dict(((r[0], r[1]), r[2:]) for r in rows(
        live_hub, "SELECT de, coc, value, sync_state, stored_by FROM datavalue "
        "WHERE ou=? AND pe=? AND deleted=0", CLINIC, PE))
    assert stored[(PATIENTS["id"], p0)] == (str(hi + 400), "pending", "chcp")
    assert stored[(PATIENTS["id"], p1)] == ("25", "pending", "chcp")
    assert stored[(REMARKS["id"], DEFAULT)][0] == "Register <b>checked</b> & signed"
    assert stored[(STOCK["id"], DEFAULT)][0] == "LOW"
    assert stored[(TRUE_ONLY["id"], DEFAULT)][0] == "true"
    assert stored[(DATE["id"], DEFAULT)][0] == "2026-11-03"
    assert len(stored) == 8 and {s[1] for s in stored.values()} == {"pending"}
    assert (PCT["id"], DEFAULT) not in stored and (INTEGER["id"], DEFAULT) not in stored
    assert rows(live_hub, "SELECT completed, sync_state FROM complete_registration "
                "WHERE ds=? AND pe=? AND ou=?", FORM1["id"], PE, CLINIC) == [(1, "pending")]
    # the HTML in the remark is shown as text, never as markup
    assert field(d, REMARKS, DEFAULT).get_attribute("value") == "Register <b>checked</b> & signed"
    assert not d.find_elements(By.CSS_SELECTOR, "main b")

    # national accepts most values and refuses one (what the sync worker records)
    refused = (NEW["id"], PE, CLINIC, C.cocs(NEW)[0], DEFAULT)

    def national(tx: Tx) -> None:
        tx.execute("UPDATE datavalue SET sync_state='synced' WHERE ou=? AND pe=?", (CLINIC, PE))
        tx.execute("UPDATE datavalue SET sync_state='rejected' WHERE de=? AND pe=? AND ou=? "
                   "AND coc=? AND aoc=?", refused)
        tx.execute("INSERT INTO sync_rejection(entity, key, error_code, message, at, username, "
                   "org_unit, value) VALUES ('datavalue', ?, 'E7617', ?, ?, 'chcp', ?, '12')",
                   ("|".join(refused), REFUSAL, "2026-11-02T09:15:00.000", CLINIC))
        tx.execute("UPDATE complete_registration SET sync_state='synced' WHERE ou=? AND pe=?",
                   (CLINIC, PE))
    live_hub.store.write_sync(national)
    wait(d, "'accepted by national' after the refresh", lambda: status(
        d, PATIENTS, p1) == "accepted by national", timeout=25)
    for de, coc in saved:
        if de is not NEW:
            assert status(d, de, coc) == "accepted by national", de["name"]
    assert status(d, NEW, C.cocs(NEW)[0]).startswith(
        "Refused by national: You cannot enter data for this clinic.")
    det = cell(d, NEW, C.cocs(NEW)[0]).find_element(By.CSS_SELECTOR, ".det")
    assert det.get_attribute("title") == f"E7617 · {REFUSAL}"
    assert cell(d, NEW, C.cocs(NEW)[0]).get_attribute("data-state") == "rejected"
    assert "accepted by national" in d.find_element(By.ID, "complete-st").text
    assert "7 accepted by national · 1 refused by national" in d.find_element(By.ID, "sum").text
    # what the user typed is still there after the refresh
    assert field(d, PCT, DEFAULT).get_attribute("value") == "101"
    assert field(d, PATIENTS, p1).get_attribute("value") == "25"

    # run validation
    d.find_element(By.ID, "validate").click()
    vres = d.find_element(By.ID, "vres")
    wait(d, "the validation result", lambda: "Validation passed" in vres.text or
         "found a problem" in vres.text)

    d.execute_script("window.scrollTo(0, 0)")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    assert d.save_screenshot(str(ARTIFACTS / "hub-data-entry.png"))
    width = d.execute_script("return document.documentElement.scrollWidth")
    assert width <= d.execute_script("return window.innerWidth"), "the page scrolls sideways"

    # "Sync now" asks the sync worker; "Incomplete" takes the completion back
    d.find_element(By.ID, "sync-now").click()
    wait(d, "the sync request", lambda: d.find_element(By.ID, "sync-msg").text.startswith(
        "Sync requested"))
    d.find_element(By.ID, "complete").click()
    wait(d, "the un-completion", lambda: d.find_element(By.ID, "complete").text == "Mark complete")
    assert d.find_element(By.ID, "complete-st").text == "Not complete yet"
    assert rows(live_hub, "SELECT deleted, sync_state FROM complete_registration WHERE ds=? AND "
                "pe=? AND ou=?", FORM1["id"], PE, CLINIC) == [(1, "pending")]
    assert js_errors(d) == []


# -- the status page ----------------------------------------------------------------------------
def test_status_page(live_hub: ThreadedHub, browser: webdriver.Chrome) -> None:
    d = browser
    p0 = C.cocs(PATIENTS)[0]
    key = {"de": PATIENTS["id"], "pe": PE, "ou": CLINIC, "coc": p0, "aoc": DEFAULT}
    sample = {"at": "2026-11-24T09:40:00Z", "temp_c": 71.5, "undervoltage_now": True,
              "undervoltage_seen": True, "disk_pct": 42.0, "disk_free_mb": 9100, "power_cuts": 3,
              "ntp_synced": True, "mem_pct": 38.0, "cpu_pct": 12.0}
    led = {"status": "waiting", "code": 4, "faults": [
        {"code": 4, "name": "undervoltage", "text": "under-voltage now (power supply)"}]}

    def seed(tx: Tx) -> None:
        tx.execute(
            "INSERT INTO sync_conflict(entity, key, data_set, hub_value, hub_user, hub_at, "
            "national_value, national_user, national_at, winner, policy, reason, detected_at, "
            "org_unit) VALUES ('datavalue', ?, ?, '<i>31</i>', 'chcp', '2026-11-02T08:00:00.000',"
            " '29', 'dhis2-district', '2026-11-02T07:30:00.000', 'hub', 'latest-wins', "
            "'hub edit is later', '2026-11-02T09:00:00.000', ?)",
            (json.dumps(key), FORM1["id"], CLINIC))
        tx.execute("INSERT INTO sync_event(at, level, kind, message) VALUES "
                   "('2026-11-24T09:30:00.000', 'warning', 'link', 'national unreachable')")
        for k, v in (("link", "down"), ("last_success", "2026-11-24T08:00:00Z")):
            tx.execute("INSERT OR REPLACE INTO sync_state(key, value) VALUES (?, ?)", (k, v))
        tx.execute("INSERT INTO health_sample(hlc, at, doc) VALUES (?, ?, ?)",
                   (tx.stamp(), sample["at"], json.dumps(sample)))
        tx.execute("INSERT OR REPLACE INTO health_state(key, value) VALUES ('led', ?)",
                   (json.dumps(led),))
        tx.execute("INSERT OR REPLACE INTO health_state(key, value) VALUES ('power_cuts', '3')")
    live_hub.store.write_sync(seed)
    pending = rows(live_hub, "SELECT (SELECT count(*) FROM datavalue WHERE sync_state='pending')"
                   " + (SELECT count(*) FROM complete_registration WHERE sync_state='pending')")[0][0]
    assert pending == 1  # the completion taken back

    # the IT focal point: log the CHCP out, open the status page, log in as admin
    d.find_element(By.ID, "logout").click()
    wait(d, "the login form after logout", lambda: d.find_element(By.ID, "login").is_displayed())
    d.get(live_hub.url + "/hub/status")
    counts = {e.get_attribute("data-count"): e.find_element(By.CSS_SELECTOR, ".big-n").text
              for e in d.find_elements(By.CSS_SELECTOR, "#counts .card")}
    assert counts == {"pending": str(pending), "synced": "7", "conflicts": "1", "rejected": "1"}
    assert "Log in to see the conflict log" in d.find_element(By.ID, "main").text
    assert not d.find_elements(By.ID, "conflict-log")
    login(d, "admin", "district")
    wait(d, "the conflict log", lambda: d.find_elements(By.CSS_SELECTOR, "#conflict-log tbody tr"))
    wait(d, "the header", lambda: d.find_element(By.ID, "link").text == "offline")

    sync = d.find_element(By.ID, "sync").text
    assert "offline" in sync and "Last success" in sync
    hw = d.find_element(By.ID, "hardware").text
    assert "71.5 °C" in hw and "UNDER-VOLTAGE NOW" in hw and "42 % used" in hw
    assert "red blinks 4 times: under-voltage now (power supply)" in hw
    assert "green blinking slowly" in hw
    hub = d.find_element(By.ID, "hub").text
    assert "0.1.0" in hub and "2.41" in hub
    assert "national unreachable" in d.find_element(By.ID, "events").text

    row = d.find_element(By.CSS_SELECTOR, "#conflict-log tbody tr").text
    for part in ("<i>31</i>", "chcp", "29", "dhis2-district", "hub", "latest-wins",
                 "hub edit is later", PATIENTS["name"], "Male, <1y", "Merongloa", "open"):
        assert part in row, part
    assert not d.find_elements(By.CSS_SELECTOR, "#conflict-log i")  # escaped, not markup
    rej = d.find_element(By.ID, "rejection-list").text
    assert REFUSAL in rej and "E7617" in rej and NEW["name"] in rej and "still refused" in rej

    d.execute_script("window.scrollTo(0, 0)")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    assert d.save_screenshot(str(ARTIFACTS / "hub-status.png"))
    assert js_errors(d) == []
