"""The register pages in real headless Chromium against a real demo hub (Ramu, with the
demo's register history): search across scripts, the duplicate warning at registration,
registering a new person, a visit whose program rules hide a field, warn and assign, and
the due/overdue list with its print stylesheet.

The tests in this module run in order and share one browser and one hub.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select

from appliance.store import synclog
from tests.hub.cells import cells
from tests.hub.tracker_data import registers

from .conftest import ThreadedHub
from .test_browser import js_errors, login, rows, wait

pytestmark = pytest.mark.slow

C = cells()
R = registers()
HOME = C.chcp_clinic
REF = "2026-11-15"  # the demo history's reference day


def attr(code: str) -> str:
    return R.attr(code)


def de(code: str) -> str:
    return next(d["id"] for d in R.doc["dataElements"] if d.get("code") == code)


def person_at_home(hub: ThreadedHub, program_code: str) -> dict[str, str]:
    """A demo person registered at the CHCP's clinic in ``program_code``, by attribute code."""
    (te,) = rows(hub, "SELECT e.te FROM enrollment e JOIN te_attribute a ON a.te = e.te AND "
                      "a.attribute = ? WHERE e.org_unit = ? AND e.program = ? AND e.status = "
                      "'ACTIVE' ORDER BY e.uid LIMIT 1", attr("BD_PHONE"), HOME,
                 R.program(program_code)["id"])[0]
    codes = {a["id"]: a["code"] for a in R.doc["trackedEntityAttributes"]}
    values = dict(rows(hub, "SELECT attribute, value FROM te_attribute WHERE te = ?", te))
    return {"te": te, **{codes[k]: v for k, v in values.items()}}


def field(browser: webdriver.Chrome, css: str) -> WebElement:
    return browser.find_element(By.CSS_SELECTOR, css)


def type_in(el: WebElement, text: str) -> None:
    el.clear()
    el.send_keys(text)


def set_date(browser: webdriver.Chrome, el: WebElement, iso: str) -> None:
    # a date input's keyboard entry follows the locale; set it as the page would read it
    browser.execute_script("arguments[0].value = arguments[1];"
                           "arguments[0].dispatchEvent(new Event('input', {bubbles: true}));"
                           "arguments[0].dispatchEvent(new Event('change', {bubbles: true}));",
                           el, iso)


def open_logged_in(browser: webdriver.Chrome, url: str) -> None:
    browser.get(url)
    if browser.get_cookie("hub_lang") is None:  # these pages' words are checked in English
        browser.add_cookie({"name": "hub_lang", "value": "en", "path": "/"})
        browser.get(url)
    wait(browser, "the page or its login", lambda: browser.find_element(By.ID, "login")
         .is_displayed() or browser.find_element(By.ID, "who").text)
    if browser.find_element(By.ID, "login").is_displayed():
        login(browser, "chcp", "district")
    wait(browser, "the page to load", lambda: browser.find_element(By.ID, "who").text)


# -- search -------------------------------------------------------------------------------------
def test_search_in_latin_finds_the_bangla_named_person(live_hub: ThreadedHub,
                                                       browser: webdriver.Chrome) -> None:
    p = person_at_home(live_hub, "BD_MATERNAL")
    open_logged_in(browser, live_hub.url + "/hub/people")
    assert browser.title.startswith("People")
    box = wait(browser, "the search box", lambda: browser.find_element(By.ID, "q"))
    # a different spelling of the English name: vowels change in transliteration
    given = p["BD_NAME_EN"].split()[0]
    variant = given.replace("a", "o", 1) if "a" in given[1:] else given + "a"
    box.send_keys(f"{variant} {p['BD_NAME_EN'].split()[-1]}")
    row = wait(browser, "the person in the results", lambda: browser.find_element(
        By.CSS_SELECTOR, f'#result-table tr[data-te="{p["te"]}"]'))
    assert row.find_element(By.CSS_SELECTOR, "td.bn").text == p["BD_NAME_BN"]
    assert "found" in browser.find_element(By.ID, "count").text
    box.clear()
    box.send_keys(p["BD_NAME_BN"].split()[0])  # and in Bangla script
    wait(browser, "the Bangla search", lambda: browser.find_elements(
        By.CSS_SELECTOR, f'#result-table tr[data-te="{p["te"]}"]'))
    box.clear()
    box.send_keys(p["BD_PHONE"])
    wait(browser, "the phone search", lambda: browser.find_elements(
        By.CSS_SELECTOR, f'#result-table tr[data-te="{p["te"]}"]'))
    assert js_errors(browser) == []


# -- registration -------------------------------------------------------------------------------
def fill_registration(browser: webdriver.Chrome, values: dict[str, str], incident: str) -> None:
    for code, value in values.items():
        el = field(browser, f"#a-{attr(code)}")
        if el.tag_name == "select":
            Select(el).select_by_value(value)
        elif el.get_attribute("type") == "date":
            set_date(browser, el, value)
        else:
            type_in(el, value)
    set_date(browser, field(browser, "#reg-incident"), incident)


def test_registering_someone_already_registered_shows_the_duplicate_first(
        live_hub: ThreadedHub, browser: webdriver.Chrome) -> None:
    p = person_at_home(live_hub, "BD_MATERNAL")
    open_logged_in(browser, live_hub.url + "/hub/people")
    box = wait(browser, "the search box", lambda: browser.find_element(By.ID, "q"))
    box.send_keys(p["BD_NAME_EN"])
    browser.find_element(By.ID, "register").click()
    wait(browser, "the registration form", lambda: browser.find_element(By.ID, "reg"))
    # the name searched for is carried into the form, whichever register is chosen
    assert field(browser, f"#a-{attr('BD_NAME_EN')}").get_attribute("value") == p["BD_NAME_EN"]
    Select(field(browser, "#reg-program")).select_by_value(R.program("BD_MATERNAL")["id"])
    assert field(browser, f"#a-{attr('BD_NAME_EN')}").get_attribute("value") == p["BD_NAME_EN"]
    fill_registration(browser, {"BD_NAME_BN": p["BD_NAME_BN"],
                                "BD_RELATION_NAME": p.get("BD_RELATION_NAME", "Abdul"),
                                "BD_PHONE": p["BD_PHONE"], "BD_VILLAGE": p["BD_VILLAGE"]},
                      "2026-09-01")
    before = rows(live_hub, "SELECT count(*) FROM tracked_entity")[0][0]
    browser.find_element(By.ID, "reg-check").click()
    cand = wait(browser, "the duplicate warning", lambda: browser.find_element(
        By.CSS_SELECTOR, f'.dups .cand[data-te="{p["te"]}"]'))
    reasons = [li.text for li in cand.find_elements(By.CSS_SELECTOR, ".reasons li")]
    assert any("phone" in r for r in reasons), reasons
    assert cand.find_element(By.CSS_SELECTOR, "a.open-existing").get_attribute(
        "href").endswith(f"/hub/people/{p['te']}")
    assert rows(live_hub, "SELECT count(*) FROM tracked_entity")[0][0] == before  # not saved yet
    # the CHCP says it is someone else: saved, and flagged for review
    browser.find_element(By.ID, "confirm-new").click()
    wait(browser, "the new record", lambda: "/hub/people/" in browser.current_url and
         p["te"] not in browser.current_url and browser.find_elements(By.ID, "person-name"))
    new = browser.current_url.split("/hub/people/")[1].split("?")[0]
    assert "Flagged for review" in browser.find_element(By.ID, "flagged").text
    assert rows(live_hub, "SELECT potential_duplicate FROM tracked_entity WHERE uid = ?",
                new) == [(1,)]
    assert rows(live_hub, "SELECT original, status FROM potential_duplicate WHERE duplicate = ?",
                new) == [(p["te"], "OPEN")]
    assert js_errors(browser) == []


NEW = {"BD_NAME_BN": "শাপলা খাতুন", "BD_NAME_EN": "Shapla Khatun",
       "BD_RELATION_NAME": "Jamal Uddin", "BD_PHONE": "01899123456",
       "BD_VILLAGE": "Uttar Mithachari", "BD_DOB": "2025-09-20", "BD_SEX": "FEMALE"}


def test_registering_a_new_person_stores_it_pending(live_hub: ThreadedHub,
                                                     browser: webdriver.Chrome) -> None:
    open_logged_in(browser, live_hub.url + "/hub/people")
    box = wait(browser, "the search box", lambda: browser.find_element(By.ID, "q"))
    box.send_keys(NEW["BD_NAME_EN"])
    wait(browser, "no one found", lambda: browser.find_element(By.ID, "count").text)
    browser.find_element(By.ID, "register").click()
    wait(browser, "the registration form", lambda: browser.find_element(By.ID, "reg"))
    Select(field(browser, "#reg-program")).select_by_value(R.program("BD_U5")["id"])
    wait(browser, "the under-5 form", lambda: field(browser, f"#a-{attr('BD_SEX')}"))
    fill_registration(browser, {k: v for k, v in NEW.items() if k != "BD_NAME_EN"}, "2025-09-20")
    browser.find_element(By.ID, f"issue-{attr('BD_BRN')}").click()  # a BRN- number, reserved
    brn = wait(browser, "the reserved number", lambda: field(
        browser, f"#a-{attr('BD_BRN')}").get_attribute("value"))
    assert brn.startswith("BRN-")
    browser.find_element(By.ID, "reg-check").click()
    name = wait(browser, "the new record", lambda: browser.find_element(By.ID, "person-name"))
    assert name.text == NEW["BD_NAME_BN"]  # the Bangla name as stored
    te = browser.current_url.split("/hub/people/")[1].split("?")[0]
    assert rows(live_hub, "SELECT org_unit, sync_state, potential_duplicate FROM tracked_entity "
                          "WHERE uid = ?", te) == [(HOME, "pending", 0)]
    stored = dict(rows(live_hub, "SELECT attribute, value FROM te_attribute WHERE te = ?", te))
    assert stored[attr("BD_PHONE")] == NEW["BD_PHONE"] and stored[attr("BD_BRN")] == brn
    assert rows(live_hub, "SELECT program, sync_state FROM enrollment WHERE te = ?", te) == [
        (R.program("BD_U5")["id"], "pending")]
    assert rows(live_hub, "SELECT used FROM reserved_value WHERE value = ?", brn) == [(1,)]
    states = {e.get_attribute("data-state") for e in browser.find_elements(
        By.CSS_SELECTOR, "#attrs .sync")}
    assert states == {"pending"}
    assert "received by the hub" in browser.find_element(By.ID, "attrs").text
    sex = browser.find_element(By.CSS_SELECTOR, f'#attrs tr[data-attribute="{attr("BD_SEX")}"]')
    assert "Female" in sex.text and "FEMALE" not in sex.text  # the option's name, not its code
    assert js_errors(browser) == []


# -- a visit with program rules ----------------------------------------------------------------
def test_visit_entry_runs_the_program_rules(live_hub: ThreadedHub,
                                            browser: webdriver.Chrome) -> None:
    te = rows(live_hub, "SELECT te FROM te_attribute WHERE attribute = ? AND value = ?",
              attr("BD_PHONE"), NEW["BD_PHONE"])[0][0]
    open_logged_in(browser, f"{live_hub.url}/hub/people/{te}")
    section = wait(browser, "the under-5 enrolment", lambda: browser.find_element(
        By.CSS_SELECTOR, f'section.enrollment[data-program="{R.program("BD_U5")["id"]}"]'))
    section.find_element(By.CSS_SELECTOR, "button.new-visit").click()
    form = wait(browser, "the visit form", lambda: browser.find_element(By.ID, "visit"))
    set_date(browser, field(browser, "#v-date"), "2026-11-20")
    age = field(browser, f"#d-{de('BD_U5_AGE_MONTHS')}")
    # ASSIGN: age in months from the date of birth to the visit date, read-only
    wait(browser, "the assigned age", lambda: age.get_attribute("value") == "14")
    assert age.get_attribute("readonly") is not None
    # HIDEFIELD: "Referred to" only when referred
    referred_to = field(browser, f"#w-d-{de('BD_U5_REFERRED_TO')}")
    wait(browser, "Referred to hidden", lambda: not referred_to.is_displayed())
    Select(field(browser, f"#d-{de('BD_U5_REFERRED')}")).select_by_value("true")
    wait(browser, "Referred to shown", lambda: referred_to.is_displayed())
    Select(field(browser, f"#d-{de('BD_U5_REFERRED')}")).select_by_value("false")
    wait(browser, "Referred to hidden again", lambda: not referred_to.is_displayed())
    # SHOWWARNING beside its field
    type_in(field(browser, f"#d-{de('BD_U5_WEIGHT')}"), "8.2")
    type_in(field(browser, f"#d-{de('BD_U5_MUAC')}"), "110")
    msg = field(browser, f"#m-d-{de('BD_U5_MUAC')}")
    wait(browser, "the MUAC warning", lambda: "severe acute malnutrition" in msg.text)
    assert msg.find_element(By.CSS_SELECTOR, ".warn").is_displayed()
    # SHOWERROR blocks saving until the entry is corrected
    type_in(field(browser, f"#d-{de('BD_U5_WEIGHT')}"), "82")
    wait(browser, "the weight error", lambda: "between 0.5 and 40 kg" in field(
        browser, f"#m-d-{de('BD_U5_WEIGHT')}").text)
    assert not browser.find_element(By.ID, "v-save").is_enabled()
    type_in(field(browser, f"#d-{de('BD_U5_WEIGHT')}"), "8.2")
    wait(browser, "saving allowed again", lambda: browser.find_element(By.ID, "v-save")
         .is_enabled())
    assert form.is_displayed()
    browser.find_element(By.ID, "v-save").click()
    wait(browser, "the saved visit", lambda: browser.find_elements(
        By.CSS_SELECTOR, "table.events tr[data-event]"))
    (ev, state, when), = rows(live_hub, "SELECT uid, sync_state, substr(occurred_at, 1, 10) "
                                        "FROM event WHERE te = ?", te)
    assert (state, when) == ("pending", "2026-11-20")
    values = dict(rows(live_hub, "SELECT data_element, value FROM event_value WHERE event = ?",
                       ev))
    assert values[de("BD_U5_AGE_MONTHS")] == "14" and values[de("BD_U5_MUAC")] == "110"
    assert values[de("BD_U5_REFERRED")] == "false"
    assert de("BD_U5_REFERRED_TO") not in values
    row = browser.find_element(By.CSS_SELECTOR, f'tr[data-event="{ev}"]')
    assert row.find_element(By.CSS_SELECTOR, ".sync").get_attribute("data-state") == "pending"
    assert js_errors(browser) == []


def test_record_shows_national_refusal_and_refers_to_the_uhc(live_hub: ThreadedHub,
                                                              browser: webdriver.Chrome) -> None:
    te = rows(live_hub, "SELECT te FROM te_attribute WHERE attribute = ? AND value = ?",
              attr("BD_PHONE"), NEW["BD_PHONE"])[0][0]
    (ev,), = rows(live_hub, "SELECT uid FROM event WHERE te = ?", te)
    live_hub.store.write_sync(lambda tx: tx.execute(
        "UPDATE event SET sync_state = 'rejected' WHERE uid = ?", (ev,)))
    # as the sync worker records national's refusal (appliance/sync/tracker_push.py)
    live_hub.store.write_sync(lambda tx: synclog.record_rejection(
        tx, "event", (ev,), code="E1303", message="Mandatory DataElement `wt` is not present",
        at="2026-12-06T08:00:00.000", username="chcp", org_unit=C.chcp_clinic,
        value=None, hlc=1))
    live_hub.store.write_sync(lambda tx: tx.execute(
        "UPDATE te_attribute SET sync_state = 'synced' WHERE te = ?", (te,)))
    open_logged_in(browser, f"{live_hub.url}/hub/people/{te}")
    row = wait(browser, "the visit", lambda: browser.find_element(
        By.CSS_SELECTOR, f'tr[data-event="{ev}"]'))
    cell = row.find_element(By.CSS_SELECTOR, ".sync")
    assert cell.get_attribute("data-state") == "rejected"
    assert cell.text == "refused by national: E1303 Mandatory DataElement `wt` is not present"
    assert {e.get_attribute("data-state") for e in browser.find_elements(
        By.CSS_SELECTOR, "#attrs .sync")} == {"synced"}
    section = browser.find_element(
        By.CSS_SELECTOR, f'section.enrollment[data-program="{R.program("BD_U5")["id"]}"]')
    target = Select(section.find_element(By.CSS_SELECTOR, "select.refer-to"))
    assert target.first_selected_option.get_attribute("value") == C.uhc  # the UHC first
    section.find_element(By.CSS_SELECTOR, "button.refer").click()
    wait(browser, "the referral", lambda: "the record now belongs to Ramu UHC" in
         browser.find_element(By.ID, "main").text)
    assert rows(live_hub, "SELECT org_unit, sync_state FROM program_owner WHERE te = ? AND "
                          "program = ?", te, R.program("BD_U5")["id"]) == [(C.uhc, "pending")]
    section = browser.find_element(
        By.CSS_SELECTOR, f'section.enrollment[data-program="{R.program("BD_U5")["id"]}"]')
    assert "Ramu UHC" in section.text  # the clinic responsible now
    # the clinic may no longer add visits or refer: the UHC owns the record
    assert not section.find_elements(By.CSS_SELECTOR, "button.new-visit, button.refer")
    assert js_errors(browser) == []


# -- the due list ------------------------------------------------------------------------------
def overdue_visit(hub: ThreadedHub) -> dict[str, Any]:
    """An overdue scheduled visit at the CHCP's clinic, with the person's phone."""
    (ev, te, due), = rows(
        hub, "SELECT ev.uid, ev.te, substr(ev.scheduled_at, 1, 10) FROM event ev "
             "JOIN enrollment e ON e.uid = ev.enrollment JOIN te_attribute a ON a.te = ev.te "
             "AND a.attribute = ? WHERE ev.status = 'SCHEDULE' AND e.status = 'ACTIVE' AND "
             "e.org_unit = ? AND ev.scheduled_at < ? AND ev.deleted = 0 "
             "ORDER BY ev.scheduled_at DESC LIMIT 1", attr("BD_PHONE"), HOME, REF)
    phone = rows(hub, "SELECT value FROM te_attribute WHERE te = ? AND attribute = ?", te,
                 attr("BD_PHONE"))[0][0]
    return {"event": ev, "te": te, "due": due, "phone": phone,
            "days": (date.fromisoformat(REF) - date.fromisoformat(due)).days}


def test_due_list_shows_overdue_visits_and_prints_on_a4(live_hub: ThreadedHub,
                                                        browser: webdriver.Chrome) -> None:
    v = overdue_visit(live_hub)
    open_logged_in(browser, f"{live_hub.url}/hub/lists?list=due&date={REF}")
    table = wait(browser, "the overdue table", lambda: browser.find_element(By.ID,
                                                                            "overdue-table"))
    row = next(r for r in table.find_elements(By.CSS_SELECTOR, f'tr[data-te="{v["te"]}"]')
               if v["due"] in r.text)
    assert row.find_element(By.CSS_SELECTOR, "td.phone").text == v["phone"]
    assert row.find_element(By.CSS_SELECTOR, "td.late").text == str(v["days"])
    assert browser.find_element(By.ID, "due-table")  # the visits due this week
    for name in ("pregnant", "children"):
        browser.find_element(By.CSS_SELECTOR, f'.tabs button[data-list="{name}"]').click()
        wait(browser, f"the {name} list", lambda n=name: browser.find_elements(
            By.CSS_SELECTOR, "#list-table tbody tr") and f"list={n}" in browser.current_url)
    browser.find_element(By.CSS_SELECTOR, '.tabs button[data-list="due"]').click()
    wait(browser, "the due list again", lambda: browser.find_elements(By.ID, "overdue-table"))

    a4 = 718  # A4's printable width at 96 px/in with 10 mm margins

    def look() -> dict[str, Any]:
        return dict(browser.execute_script(
            "const t = document.getElementById('overdue-table');"
            "return {bar: getComputedStyle(document.querySelector('.bar')).display,"
            " print: getComputedStyle(document.getElementById('print')).display,"
            " title: getComputedStyle(document.querySelector('.print-title')).display,"
            " width: t.scrollWidth, font: getComputedStyle(t).fontSize};"))
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": a4, "height": 1000, "deviceScaleFactor": 1, "mobile": False})
    try:
        screen = look()
        assert screen["bar"] != "none" and screen["title"] == "none"
        assert screen["width"] > a4  # on screen the list is too wide for the page...
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
        printed = look()
        assert printed["bar"] == "none" and printed["print"] == "none"  # no nav, no buttons
        assert printed["title"] == "block"  # the list says what it is, where and when
        assert printed["width"] <= a4, printed  # ...printed it fits A4
        assert float(printed["font"].removesuffix("px")) < float(
            screen["font"].removesuffix("px"))
    finally:
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    assert js_errors(browser) == []


def test_an_overdue_visit_recorded_from_the_list_leaves_it(live_hub: ThreadedHub,
                                                           browser: webdriver.Chrome) -> None:
    anc = R.stage("BD_MATERNAL", "ANC")["id"]
    (ev, te), = rows(live_hub, "SELECT ev.uid, ev.te FROM event ev JOIN enrollment e ON "
                               "e.uid = ev.enrollment WHERE ev.status = 'SCHEDULE' AND "
                               "ev.program_stage = ? AND e.org_unit = ? AND e.status = 'ACTIVE' "
                               "AND ev.scheduled_at < ? ORDER BY ev.uid LIMIT 1", anc, HOME, REF)
    open_logged_in(browser, f"{live_hub.url}/hub/lists?list=due&date={REF}")
    row = wait(browser, "the overdue ANC visit", lambda: browser.find_element(
        By.CSS_SELECTOR, f'#overdue-table tr[data-te="{te}"][data-stage="{anc}"]'))
    row.find_element(By.CSS_SELECTOR, "td.bn a").click()  # to the person's record
    button = wait(browser, "the scheduled visit", lambda: browser.find_element(
        By.CSS_SELECTOR, f'tr[data-event="{ev}"] button.record-visit'))
    button.click()
    wait(browser, "the visit form", lambda: browser.find_element(By.ID, "visit"))
    for code, value in (("BD_MAT_GEST_WEEKS", "30"), ("BD_MAT_BP_SYS", "150"),
                        ("BD_MAT_BP_DIA", "85"), ("BD_MAT_WEIGHT", "56")):
        type_in(field(browser, f"#d-{de(code)}"), value)
    Select(field(browser, f"#d-{de('BD_MAT_DANGER')}")).select_by_value("NONE")
    wait(browser, "the blood pressure warning", lambda: "pre-eclampsia" in field(
        browser, f"#m-d-{de('BD_MAT_BP_SYS')}").text)
    browser.find_element(By.ID, "v-save").click()
    wait(browser, "the recorded visit", lambda: browser.find_elements(
        By.CSS_SELECTOR, f'tr[data-event="{ev}"]') and not browser.find_elements(
        By.CSS_SELECTOR, f'tr[data-event="{ev}"] button.record-visit'))
    assert rows(live_hub, "SELECT status, sync_state FROM event WHERE uid = ?", ev) == [
        ("COMPLETED", "pending")]
    browser.get(f"{live_hub.url}/hub/lists?list=due&date={REF}")
    wait(browser, "the due list", lambda: browser.find_elements(By.ID, "overdue-table"))
    assert not browser.find_elements(
        By.CSS_SELECTOR, f'#overdue-table tr[data-te="{te}"][data-stage="{anc}"]')
    assert js_errors(browser) == []
