"""Issue 14 in real headless Chromium against a real hub on a loopback port:

- the data entry page's header count agrees with the cells: it said "0 waiting for
  national" while five cells said "received by the hub" (the header was read on its own
  10 s timer, apart from the cells); now the count comes with the cells, from one snapshot;
- the reporting board (/hub/board) shows every clinic × form and updates live, within
  2 s, when another client completes a form through the API; at 1280×800 and 412×915
  (screenshots in artifacts/), and it prints on A4 landscape.

The tests in this module run in order and share one browser and one hub.
"""

from __future__ import annotations

import base64
import re
import time
from typing import Any

import requests
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from tests.conftest import ADMIN
from tests.hub.cells import cells, month

from .conftest import ARTIFACTS, ThreadedHub
from .test_browser import js_errors, login, rows, status, type_into, wait

C = cells()
FORM1 = C.form1
CLINIC = C.chcp_clinic
INTS = [(de, coc) for de in C.elements(FORM1) if de["valueType"].startswith("INTEGER")
        for coc in C.cocs(de)][:5]
SAMPLE = """
const pend = document.querySelectorAll('td.cell[data-state=pending]').length;
return [document.getElementById('pending').textContent, pend];"""


def header_n(text: str) -> int | None:
    m = re.search(r"(\d+) waiting for national", text)
    return int(m.group(1)) if m else None


def hub_pending(hub: ThreadedHub) -> int:
    return int(rows(hub, "SELECT (SELECT count(*) FROM datavalue WHERE sync_state='pending') + "
                         "(SELECT count(*) FROM complete_registration WHERE "
                         "sync_state='pending')")[0][0])


def test_the_header_count_matches_the_cells(live_hub: ThreadedHub,
                                            browser: webdriver.Chrome) -> None:
    d = browser
    d.set_window_size(1280, 800)
    d.get(live_hub.url + "/hub?lang=en")  # the counts read in English (Bangla: test_i18n_browser)
    login(d, "chcp", "district")
    wait(d, "the form picker", lambda: d.find_element(By.ID, "ou").is_displayed())
    Select(d.find_element(By.ID, "ds")).select_by_value(FORM1["id"])
    Select(d.find_element(By.ID, "pe")).select_by_value(month(0))
    wait(d, "the form", lambda: d.find_elements(By.CSS_SELECTOR, "td.cell input"))
    base = hub_pending(live_hub)
    assert base == 0
    wait(d, "the header", lambda: header_n(d.find_element(By.ID, "pending").text) == 0)

    for de, coc in INTS:
        type_into(d, de, coc, "7")
    for de, coc in INTS:
        wait(d, "'received by the hub'", lambda de=de, coc=coc:
             status(d, de, coc) == "received by the hub")
    t_cells = time.monotonic()
    # the header follows the save at once, not at its next 10 s refresh
    wait(d, "the header to count the five cells", lambda: header_n(
        d.find_element(By.ID, "pending").text) == 5, timeout=2)
    assert time.monotonic() - t_cells < 2
    assert hub_pending(live_hub) == 5

    # national accepts them (the sync process writes; this page polls): at every moment
    # the header says as many as the cells saying "received by the hub"
    live_hub.store.write_sync(lambda tx: tx.execute(
        "UPDATE datavalue SET sync_state='synced' WHERE sync_state='pending'"))
    samples: list[tuple[int | None, int]] = []
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        text, pend = d.execute_script(SAMPLE)
        samples.append((header_n(text), pend))
        if pend == 0:
            break
        time.sleep(0.1)
    assert samples[-1] == (0, 0), samples[-5:]
    assert all(h == p for h, p in samples), [s for s in samples if s[0] != s[1]][:5]
    assert status(d, *INTS[0]) == "accepted by national"
    assert js_errors(d) == []


def matrix_state(d: webdriver.Chrome, ou: str, ds: str) -> str:
    return str(d.find_element(By.CSS_SELECTOR, f'td.bc[data-ou="{ou}"][data-ds="{ds}"]')
               .get_attribute("data-state"))


def test_the_board_updates_live_and_prints(live_hub: ThreadedHub,
                                           browser: webdriver.Chrome) -> None:
    d = browser
    pe = month(-1)
    d.find_element(By.ID, "logout").click()
    wait(d, "the login form after logout", lambda: d.find_element(By.ID, "login").is_displayed())
    d.set_window_size(1280, 800)
    d.get(live_hub.url + "/hub/board?lang=en")
    login(d, "admin", "district")
    wait(d, "the board", lambda: d.find_elements(By.CSS_SELECTOR, "table#board tbody tr"))
    wait(d, "the stream", lambda: d.find_element(By.ID, "board-live").text == "live")
    assert len(d.find_elements(By.CSS_SELECTOR, "table#board tbody tr")) == 28
    heads = [e.text for e in d.find_elements(By.CSS_SELECTOR, "table#board thead th")]
    assert FORM1["name"] in heads and len(heads) == 6
    assert Select(d.find_element(By.ID, "board-pe")).first_selected_option.get_attribute(
        "value") == pe  # the previous month by default
    assert matrix_state(d, C.uhc, FORM1["id"]) == "not_expected"
    assert matrix_state(d, CLINIC, FORM1["id"]) in ("not_started", "in_progress")
    rate_before = d.find_element(By.CSS_SELECTOR, '[data-rate="reporting"] .big-n').text
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    assert d.save_screenshot(str(ARTIFACTS / "board-1280x800.png"))

    # another client completes the clinic's Form-1 through the API
    t0 = time.monotonic()
    r = requests.post(live_hub.url + "/api/completeDataSetRegistrations", headers=ADMIN,
                      json={"completeDataSetRegistrations": [
                          {"dataSet": FORM1["id"], "period": pe, "organisationUnit": CLINIC}]},
                      timeout=10)
    assert r.status_code == 200, r.text
    wait(d, "the cell to turn complete", lambda: matrix_state(d, CLINIC, FORM1["id"]) ==
         "complete", timeout=2)
    took = time.monotonic() - t0
    assert took < 2, took
    td = d.find_element(By.CSS_SELECTOR, f'td.bc[data-ou="{CLINIC}"][data-ds="{FORM1["id"]}"]')
    assert "complete at the hub" in td.text
    assert d.find_element(By.CSS_SELECTOR, '[data-rate="reporting"] .big-n').text != rate_before

    # a phone: the page does not scroll sideways (the table does), the clinic column stays
    d.set_window_size(412, 915)
    time.sleep(0.3)
    over = d.execute_script("return document.documentElement.scrollWidth - innerWidth")
    assert over <= 1, over
    first = d.find_element(By.CSS_SELECTOR, "table#board tbody th.ou")
    assert first.is_displayed() and first.rect["x"] >= 0
    assert d.save_screenshot(str(ARTIFACTS / "board-412x915.png"))

    # print: no header bar or picker; A4 landscape
    d.set_window_size(1280, 800)
    d.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    try:
        assert not d.find_element(By.CSS_SELECTOR, "header.bar").is_displayed()
        assert not d.find_element(By.ID, "board-pe").is_displayed()
        assert d.find_element(By.ID, "board").is_displayed()
    finally:
        d.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})
    pdf: dict[str, Any] = d.execute_cdp_cmd("Page.printToPDF", {"preferCSSPageSize": True,
                                                                "printBackground": True})
    data = base64.b64decode(pdf["data"])
    assert data.startswith(b"%PDF")
    (ARTIFACTS / "board-print.pdf").write_bytes(data)
    # A4 landscape: 842 × 595 points
    assert re.search(rb"/MediaBox\s*\[\s*0\s+0\s+84[12][.\d]*\s+59[45][.\d]*", data), data[:2000]
    # one sheet for the upazila's clinics, to pin on the wall
    assert re.findall(rb"/Type\s*/Pages\b[^>]*?/Count\s+(\d+)", data) == [b"1"], \
        re.findall(rb"/Count\s+\d+", data)
    assert js_errors(d) == []
