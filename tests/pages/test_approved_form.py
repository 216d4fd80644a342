"""A form national approved, in real headless Chromium: the data entry page shows it
locked with the reason in plain words, every input and button disabled, and a value the
CHCP had entered before the approval came down is still there, refused by national with
why. The store is set as the sync worker leaves it (tests/sync/test_approvals.py drives
the worker itself against the national stand-in)."""

from __future__ import annotations

from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from appliance.store import approvals
from appliance.store import datavalues as dv
from appliance.store.db import Tx
from tests.hub.cells import cells, month

from .conftest import ThreadedHub
from .test_browser import cell, field, js_errors, login, status, wait

C = cells()
FORM1 = C.form1
CLINIC = C.chcp_clinic
PE = month(0)
DE = C.elements(FORM1)[0]
COC = C.cocs(DE)[0]
DEFAULT = C.default_coc
WHY = f"Data already approved for data set: `{FORM1['id']}` period: `{PE}` org unit: `{CLINIC}`"


def _as_sync_leaves_it(tx: Tx) -> None:
    # the CHCP's value, entered while the link was down...
    dv.import_values(tx, [dv.ValueRow(index=0, de=DE["id"], pe=PE, ou=CLINIC, coc=COC,
                                      aoc=DEFAULT, value="17", comment=None, followup=None,
                                      stored_by="chcp", delete=False)],
                     username="chcp", provenance=dv.LOCAL_EDIT)
    # ...the approval that came down, then national's refusal of the push
    approvals.apply_national(tx, {(FORM1["id"], PE, CLINIC, DEFAULT): "APPROVED_HERE"}, (),
                             "2026-01-05T10:00:00.000")
    key = (DE["id"], PE, CLINIC, COC, DEFAULT)
    tx.execute("UPDATE datavalue SET sync_state='rejected' WHERE de=? AND pe=? AND ou=? AND "
               "coc=? AND aoc=?", key)
    tx.execute("INSERT INTO sync_rejection(entity, key, error_code, message, at, username, "
               "org_unit, value) VALUES ('datavalue', ?, 'E7642', ?, ?, 'chcp', ?, '17')",
               ("|".join(key), WHY, "2026-01-05T10:00:01.000", CLINIC))


def test_an_approved_form_is_locked_and_says_why(live_hub: ThreadedHub,
                                                 browser: webdriver.Chrome) -> None:
    live_hub.store.write_sync(_as_sync_leaves_it)
    d = browser
    d.get(live_hub.url + "/hub?lang=en")
    login(d, "chcp", "district")
    wait(d, "the form picker", lambda: d.find_element(By.ID, "ds").is_displayed())
    Select(d.find_element(By.ID, "ds")).select_by_value(FORM1["id"])
    Select(d.find_element(By.ID, "pe")).select_by_value(PE)
    wait(d, "the form", lambda: d.find_elements(By.CSS_SELECTOR, "td.cell input"))
    lock = d.find_element(By.ID, "lock")
    wait(d, "the approval banner", lambda: "National has approved this form" in lock.text)
    assert "nothing in it can be changed here" in lock.text
    assert "ask national to unapprove it" in lock.text
    inputs = d.find_elements(By.CSS_SELECTOR, "td.cell input, td.cell select")
    assert inputs and all(not i.is_enabled() for i in inputs)
    assert not d.find_element(By.ID, "save").is_enabled()
    assert not d.find_element(By.ID, "complete").is_enabled()
    # the value entered before the lock came down: kept, refused by national, with why
    assert field(d, DE, COC).get_attribute("value") == "17"
    wait(d, "the refusal on the cell", lambda: status(d, DE, COC).startswith(
        "Refused by national: This form is approved and cannot be changed."))
    det = cell(d, DE, COC).find_element(By.CSS_SELECTOR, ".det").get_attribute("title")
    assert det == f"E7642 · {WHY}"
    assert "1 refused by national" in d.find_element(By.ID, "sum").text
    assert js_errors(d) == []

    # the same in Bangla, the reader's other language
    d.get(live_hub.url + "/hub?lang=bn")
    wait(d, "the form picker", lambda: d.find_element(By.ID, "ds").is_displayed())
    Select(d.find_element(By.ID, "ds")).select_by_value(FORM1["id"])
    Select(d.find_element(By.ID, "pe")).select_by_value(PE)
    lock = d.find_element(By.ID, "lock")
    wait(d, "the Bangla approval banner", lambda: "অনুমোদন করেছে" in lock.text)
    assert "National" not in lock.text
