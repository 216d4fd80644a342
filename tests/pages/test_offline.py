"""The data entry page survives a Wi-Fi drop (issue 14), in real headless Chromium: values
typed while the laptop cannot reach the hub wait in the browser's IndexedDB, marked "not yet
on the hub" (in Bangla) with a count in the header; a reload shows them over the hub's values;
when the hub answers again they reach its store exactly once, even with two tabs open; a
refusal shows on its cell and leaves the outbox; another user's waiting values are never sent
under this login.

The laptop goes offline through the DevTools protocol (Network.emulateNetworkConditions). The
page itself cannot load without the hub (no service worker: browsers allow them only in secure
contexts, and the hub is plain HTTP on the UHC's LAN), so the reload happens once the page can
load again but saves still get no answer: the hub hangs up on imports (DROP).

The tests in this module run in order and share one browser and one hub.
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import urllib.request
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By

from appliance.hub import routes_data

from .conftest import ThreadedHub
from .test_browser import cell, field, js_errors, login, status, type_into, wait
from .test_i18n_browser import FORM1, PATIENTS, PE, C, open_form1, shot

QUEUED = "এখনও হাবে পৌঁছায়নি"  # "not yet on the hub"
RECEIVED = "হাবে জমা হয়েছে"    # "received by the hub"
A, B = C.cocs(PATIENTS)[0], C.cocs(PATIENTS)[1]
REFUSED = next(e for e in C.elements(FORM1) if e["code"] == "CC_MAL_TEST")
R = C.cocs(REFUSED)[0]
DROP = threading.Event()  # the hub's imports hang up without an answer


@pytest.fixture(scope="module")
def stored(live_hub: ThreadedHub) -> Iterator[Counter[tuple[str, str, str]]]:
    """(de, coc, value) -> how many times an import handed it to the store."""
    seen: Counter[tuple[str, str, str]] = Counter()
    lock = threading.Lock()
    real = routes_data.dv.import_values

    def counting(tx: Any, rows: Any, **kw: Any) -> Any:
        with lock:
            seen.update((r.de, r.coc, str(r.value)) for r in rows)
        return real(tx, rows, **kw)
    post = routes_data._post_data_value_sets

    async def dropping(request: Any, opts: Any) -> Any:
        if DROP.is_set():  # as a Wi-Fi that drops: the page's fetch() rejects
            request.transport.close()
            raise ConnectionResetError("dropped by the test")
        return await post(request, opts)
    mp = pytest.MonkeyPatch()
    mp.setattr(routes_data.dv, "import_values", counting)
    mp.setattr(routes_data, "_post_data_value_sets", dropping)
    try:
        yield seen
    finally:
        mp.undo()


def offline(d: webdriver.Chrome, off: bool) -> None:
    d.execute_cdp_cmd("Network.enable", {})
    d.execute_cdp_cmd("Network.emulateNetworkConditions", {
        "offline": off, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})


def header(d: webdriver.Chrome) -> str:
    el = d.find_elements(By.ID, "outbox")
    return el[0].text if el and el[0].is_displayed() else ""


def waiting(d: webdriver.Chrome) -> list[dict[str, Any]]:
    """The browser's outbox, every user's."""
    return list(d.execute_async_script("""const done = arguments[arguments.length - 1];
      import('/hub/static/outbox.js').then(m => m.all()).then(done);"""))


def audits(hub: ThreadedHub, de: str, coc: str) -> list[dict[str, Any]]:
    q = f"/api/audits/dataValue?de={de}&pe={PE}&ou={C.chcp_clinic}&co={coc}&paging=false"
    req = urllib.request.Request(hub.url + q, headers={
        "Authorization": "Basic " + base64.b64encode(b"chcp:district").decode()})
    with urllib.request.urlopen(req, timeout=10) as r:
        return list(json.load(r)["dataValueAudits"])


def test_values_typed_offline_reach_the_hub_once(live_hub: ThreadedHub, browser: webdriver.Chrome,
                                                  stored: Counter[tuple[str, str, str]]) -> None:
    d = browser
    d.set_window_size(1280, 800)
    d.get(live_hub.url + "/hub")
    login(d, "chcp", "district")
    open_form1(d)

    # the Wi-Fi drops: saves get no answer, the values wait in the browser
    offline(d, True)
    type_into(d, PATIENTS, A, "7")
    type_into(d, PATIENTS, B, "8")
    wait(d, "queued", lambda: status(d, PATIENTS, B) == QUEUED)
    type_into(d, PATIENTS, A, "9")  # the same cell again: replaces the queued 7
    type_into(d, REFUSED, R, "-3")  # the hub will refuse this one
    wait(d, "queued", lambda: status(d, PATIENTS, A) == QUEUED and status(d, REFUSED, R) == QUEUED)
    assert cell(d, PATIENTS, A).get_attribute("data-state") == "queued"
    assert "quiet" in (cell(d, PATIENTS, A).get_attribute("class") or "")
    wait(d, "the header's count", lambda: header(d) == "৩টি এখনও হাবে পৌঁছায়নি")
    shot(d, "offline-queued-1280")
    assert not stored

    # the hub's page loads again but saves still get no answer: a reload keeps every value,
    # over the hub's (empty) ones
    DROP.set()
    offline(d, False)
    # (the page tries at once and fails; the reload waits for that, or it would be a reload
    # mid-send, the last test's case)
    wait(d, "the failed send settled", lambda: not any(e["claim"] for e in waiting(d)))
    d.get(live_hub.url + "/hub")
    open_form1(d)
    wait(d, "the outbox over the hub's values", lambda: field(d, PATIENTS, A).get_attribute(
        "value") == "9" and status(d, PATIENTS, A) == QUEUED)
    assert field(d, PATIENTS, B).get_attribute("value") == "8"
    assert status(d, REFUSED, R) == QUEUED
    wait(d, "the header's count", lambda: header(d) == "৩টি এখনও হাবে পৌঁছায়নি")

    # a second tab with the same outbox; both come back at once: one of them sends it
    first = d.current_window_handle
    d.switch_to.new_window("tab")
    d.get(live_hub.url + "/hub")
    open_form1(d)
    wait(d, "the second tab's outbox", lambda: status(d, PATIENTS, B) == QUEUED)
    second = d.current_window_handle
    DROP.clear()
    d.execute_script("dispatchEvent(new Event('online'))")
    d.switch_to.window(first)
    d.execute_script("dispatchEvent(new Event('online'))")
    refused = {}
    for w in (first, second):
        d.switch_to.window(w)
        wait(d, "sent", lambda: status(d, PATIENTS, A) == RECEIVED and
             status(d, PATIENTS, B) == RECEIVED, timeout=30)
        wait(d, "an empty outbox", lambda: header(d) == "", timeout=30)
        # the tab that sent shows the refusal on its cell; the other one the hub's (empty) value
        wait(d, "the refused cell settled", lambda: cell(d, REFUSED, R).get_attribute(
            "data-state") == "error" or field(d, REFUSED, R).get_attribute("value") == "")
        refused[w] = status(d, REFUSED, R)
    assert sorted(bool(v) for v in refused.values()) == [False, True]
    sender = next(w for w, v in refused.items() if v)
    assert refused[sender].startswith("সংরক্ষণ হয়নি:")
    d.switch_to.window(sender)
    shot(d, "offline-sent-1280")

    # each value reached the store once; the 7 typed over never left the laptop
    assert stored[(PATIENTS["id"], A, "9")] == 1
    assert stored[(PATIENTS["id"], B, "8")] == 1
    assert stored[(PATIENTS["id"], A, "7")] == 0
    assert [a["auditType"] for a in audits(live_hub, PATIENTS["id"], A)] == ["CREATE"]
    assert [a["auditType"] for a in audits(live_hub, PATIENTS["id"], B)] == ["CREATE"]
    # and a reload sends nothing again
    d.get(live_hub.url + "/hub")
    open_form1(d)
    wait(d, "the hub's values", lambda: field(d, PATIENTS, A).get_attribute("value") == "9")
    assert sum(stored.values()) == 2  # the refused -3 never reached the store
    assert js_errors(d) == []


def test_another_users_values_wait_for_them(live_hub: ThreadedHub, browser: webdriver.Chrome,
                                            stored: Counter[tuple[str, str, str]]) -> None:
    d = browser
    before = sum(stored.values())
    d.execute_async_script("""const done = arguments[arguments.length - 1];
      import('/hub/static/outbox.js').then(m => m.put([{user: 'chcp2', ds: arguments[0], de: arguments[1],
        pe: arguments[2], ou: arguments[3], coc: arguments[4], aoc: '', value: '41'}])).then(() => done(1));""",
                           FORM1["id"], PATIENTS["id"], PE, C.chcp_clinic, A)
    d.get(live_hub.url + "/hub")
    open_form1(d)
    banner = d.find_element(By.ID, "outbox-others")
    wait(d, "the other user's values", lambda: banner.is_displayed())
    assert "chcp2" in banner.text and "১টি" in banner.text
    assert header(d) == ""  # not this user's
    assert field(d, PATIENTS, A).get_attribute("value") == "9"
    shot(d, "offline-other-user-1280")
    d.execute_script("dispatchEvent(new Event('online'))")
    d.refresh()
    open_form1(d)
    wait(d, "the banner again", lambda: d.find_element(By.ID, "outbox-others").is_displayed())
    assert sum(stored.values()) == before


def test_a_reload_mid_send_does_not_send_again(live_hub: ThreadedHub, browser: webdriver.Chrome,
                                               stored: Counter[tuple[str, str, str]],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The page is reloaded while the hub is still importing its send: the new page leaves the
    entry alone while the send may be alive, then finds the value on the hub and drops it."""
    d = browser
    c = C.cocs(PATIENTS)[2]
    posts, gate = Counter[str](), threading.Event()
    real = routes_data._post_data_value_sets

    async def slow(request: Any, opts: Any) -> Any:
        posts["n"] += 1
        await request.read()  # kept by aiohttp for the handler

        async def later() -> Any:
            while not gate.is_set():
                await asyncio.sleep(0.05)
            return await real(request, opts)
        # the import outlives its page (aiohttp would stop it when the page goes): the case
        # where the new page cannot know whether the send arrived
        return await asyncio.shield(asyncio.ensure_future(later()))
    monkeypatch.setattr(routes_data, "_post_data_value_sets", slow)
    d.get(live_hub.url + "/hub")
    wait(d, "the page", lambda: d.find_element(By.ID, "login").is_displayed() or
         d.find_elements(By.ID, "ds"))
    if d.find_element(By.ID, "login").is_displayed():
        login(d, "chcp", "district")
    open_form1(d)

    offline(d, True)
    type_into(d, PATIENTS, c, "23")
    wait(d, "queued", lambda: status(d, PATIENTS, c) == QUEUED)
    offline(d, False)
    d.execute_script("dispatchEvent(new Event('online'))")
    wait(d, "the send on its way", lambda: posts["n"] == 1)
    d.get(live_hub.url + "/hub")  # mid-send
    open_form1(d)
    wait(d, "still queued after the reload", lambda: status(d, PATIENTS, c) == QUEUED)
    assert waiting(d)[0]["claim"]  # the dead page's claim
    gate.set()  # its import completes
    wait(d, "the hub's value found, the entry dropped", lambda: header(d) == "" and
         status(d, PATIENTS, c) == RECEIVED, timeout=60)
    assert posts["n"] == 1
    assert stored[(PATIENTS["id"], c, "23")] == 1
    assert [e for e in waiting(d) if e["user"] == "chcp"] == []
    assert js_errors(d) == []
