"""The pages over plain HTTP (no browser): the hub's sync state in
``/api/dataEntry/dataValues``, how the pages are served (public, gzip, ETags, CSP, small),
and the status page's escaping and scoping."""

from __future__ import annotations

import gzip
import json
import re
from typing import Any

import aiohttp

from appliance.hub.pages import led_words
from appliance.store.db import Tx
from tests.conftest import ADMIN, CHCP, RunningHub
from tests.hub.cells import cells, month

C = cells()
FORM1 = C.form1
INT = C.elements(FORM1)[0]
PE = month(0)


async def entry_values(http: aiohttp.ClientSession, hub: RunningHub, ou: str | None = None,
                       auth: dict[str, str] = CHCP) -> dict[str, Any]:
    async with http.get(hub.api("dataEntry/dataValues"), headers=auth, params={
            "ds": FORM1["id"], "pe": PE, "ou": ou or C.chcp_clinic}) as r:
        assert r.status == 200
        return dict(await r.json())


async def test_data_entry_values_carry_the_hub_sync_state(hub: RunningHub,
                                                          http: aiohttp.ClientSession) -> None:
    cocs = C.cocs(INT)
    body = {"dataSet": FORM1["id"], "dataValues": [C.value(INT, str(i + 1), coc=coc)
                                                   for i, coc in enumerate(cocs[:5])]}
    async with http.post(hub.api("dataValueSets"), json=body, headers=CHCP) as r:
        assert r.status == 200
    got = await entry_values(http, hub)
    assert got["hubSync"] == {"pending": 5, "synced": 0, "rejected": 0, "conflict": 0}
    assert {v["hubSync"]["state"] for v in got["dataValues"]} == {"pending"}
    assert got["completeStatus"]["complete"] is False
    assert got["completeStatus"]["hubSync"] is None

    async with http.post(hub.api("completeDataSetRegistrations"), headers=CHCP, json={
            "completeDataSetRegistrations": [{"dataSet": FORM1["id"], "period": PE,
                                              "organisationUnit": C.chcp_clinic}]}) as r:
        assert r.status == 200
    ou, aoc = C.chcp_clinic, C.default_coc
    key = "|".join((INT["id"], PE, ou, cocs[0], aoc))

    def national(tx: Tx) -> None:
        tx.execute("UPDATE datavalue SET sync_state='synced' WHERE coc IN (?, ?)", cocs[1:3])
        tx.execute("UPDATE datavalue SET sync_state='conflict' WHERE coc=?", (cocs[3],))
        tx.execute("UPDATE datavalue SET sync_state='rejected' WHERE coc=?", (cocs[0],))
        tx.execute("INSERT INTO sync_rejection(entity, key, error_code, message, at) "
                   "VALUES ('datavalue', ?, 'E7617', 'not in hierarchy', '2026-01-01')", (key,))
        # a stale rejection of a value since accepted says nothing any more
        tx.execute("INSERT INTO sync_rejection(entity, key, error_code, message, at) "
                   "VALUES ('datavalue', ?, 'E7619', 'old', '2026-01-01')",
                   ("|".join((INT["id"], PE, ou, cocs[1], aoc)),))
        tx.execute("UPDATE complete_registration SET sync_state='rejected'")
        tx.execute("INSERT INTO sync_rejection(entity, key, error_code, message, at) "
                   "VALUES ('complete_registration', ?, 'E7640', 'past expiry', '2026-01-01')",
                   ("|".join((FORM1["id"], PE, ou, aoc)),))
    await hub.store.write(national)
    # a deletion still waiting for national counts as outstanding; the value is not listed
    async with http.post(hub.api("dataValueSets"), headers=CHCP, json={"dataValues": [
            C.value(INT, "", coc=cocs[4], deleted=True)]}) as r:
        assert r.status == 200

    got = await entry_values(http, hub)
    by_coc = {v["categoryOptionCombo"]: v["hubSync"] for v in got["dataValues"]}
    assert by_coc[cocs[0]] == {"state": "rejected", "message": "not in hierarchy",
                               "errorCode": "E7617"}
    assert by_coc[cocs[1]] == {"state": "synced", "message": None, "errorCode": None}
    assert by_coc[cocs[3]]["state"] == "conflict"
    assert cocs[4] not in by_coc
    assert got["hubSync"] == {"pending": 1, "synced": 2, "rejected": 1, "conflict": 1}
    assert got["completeStatus"]["complete"] is True
    assert got["completeStatus"]["hubSync"] == {"state": "rejected", "message": "past expiry",
                                                "errorCode": "E7640"}
    # another clinic's form counts only its own values
    other = await entry_values(http, hub, C.other_clinic, ADMIN)
    assert other["hubSync"] == {"pending": 0, "synced": 0, "rejected": 0, "conflict": 0}
    assert other["completeStatus"]["hubSync"] is None


async def test_pages_are_public_small_cached_and_locked_down(hub: RunningHub,
                                                             http: aiohttp.ClientSession) -> None:
    async with http.get(hub.url + "/hub") as r:
        assert r.status == 200 and r.content_type == "text/html"
        html = await r.text()
        etag = r.headers["ETag"]
        assert r.headers["Content-Encoding"] == "gzip"  # aiohttp asks for gzip by default
        csp = r.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp and r.headers["X-Content-Type-Options"] == "nosniff"
    assert "<script>" not in html and "style=" not in html and "http" not in html.split(
        "<body")[1]  # nothing inline, nothing from elsewhere
    async with http.get(hub.url + "/hub", headers={"If-None-Match": etag}) as r:
        assert r.status == 304
    async with http.get(hub.url + "/") as r:  # http://hub.local lands on the data entry
        assert r.status == 200 and str(r.url).endswith("/hub")

    # everything the data entry page loads, in Bangla (the default): the shell, its links,
    # the modules hub.js imports and the Bangla catalogue; under 100 KB as sent (gzip)
    total, sent = len(html.encode()), len(gzip.compress(html.encode()))
    linked = re.findall(r'(?:src|href|content)="(/hub/(?:static|i18n)/[^"]+)"', html)
    assert any(u.startswith("/hub/i18n/bn.json?v=") for u in linked)
    for src in linked + ["/hub/static/dom.js", "/hub/static/i18n.js",
                         "/hub/static/offline.js", "/hub/static/outbox.js"]:
        async with http.get(hub.url + src) as r:
            assert r.status == 200
            if "?v=" in src:
                assert "immutable" in r.headers["Cache-Control"]
            body = await r.read()
            total += len(body)
            sent += len(gzip.compress(body))
            if src.startswith("/hub/static/hub.js"):
                assert r.content_type == "text/javascript"
                # a guard against bloat; the target is the page's whole weight (below)
                assert len(body) < 35_000, f"hub.js grew to {len(body)} bytes"
                assert b"innerHTML" not in body and b"eval(" not in body
    assert sent < 100_000, f"the data entry page sends {sent} bytes"
    assert total < 110_000
    async with http.get(hub.url + "/hub/static/nope.js") as r:
        assert r.status == 404
    async with http.get(hub.url + "/hub/static/hub.js", headers={"Accept-Encoding": "gzip"}) as r:
        assert r.headers["Content-Encoding"] == "gzip" and int(r.headers["Content-Length"]) < 13_000

    # the page asks whether its session cookie is good without provoking a 401
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        async with browser.get(hub.url + "/hub/session") as r:
            assert await r.json() == {"loggedIn": False, "username": None, "locale": "bn",
                                      "digits": "bengali"}
        async with browser.post(hub.api("auth/login"), json={"username": "chcp",
                                                             "password": "district"}) as r:
            assert r.status == 200
        async with browser.get(hub.url + "/hub/session") as r:
            assert await r.json() == {"loggedIn": True, "username": "chcp", "locale": "bn",
                                      "digits": "bengali"}


def _conflict(tx: Tx, ou: str, hub_value: str) -> None:
    key = {"de": INT["id"], "pe": PE, "ou": ou, "coc": C.cocs(INT)[0], "aoc": C.default_coc}
    tx.execute("INSERT INTO sync_conflict(entity, key, data_set, hub_value, hub_user, hub_at, "
               "national_value, national_user, national_at, winner, policy, reason, detected_at, "
               "org_unit) VALUES ('datavalue', ?, ?, ?, 'chcp', '2026-11-02T08:00:00.000', '9', "
               "'nat', '2026-11-02T07:00:00.000', 'national', 'national-wins', 'period locked', "
               "'2026-11-02T09:00:00.000', ?)", (json.dumps(key), FORM1["id"], hub_value, ou))


async def test_status_page_escapes_and_scopes(hub: RunningHub,
                                              http: aiohttp.ClientSession) -> None:
    def seed(tx: Tx) -> None:
        _conflict(tx, C.chcp_clinic, "<script>alert(1)</script>")
        _conflict(tx, C.other_clinic, "other-clinic-value")
        tx.execute("INSERT INTO sync_event(at, level, kind, message) VALUES "
                   "('2026-11-24T09:30:00.000', 'error', 'push', '<img src=x onerror=alert(1)>')")
    await hub.store.write(seed)

    async with http.get(hub.url + "/hub/status") as r:  # anonymous: counts and events only
        assert r.status == 200 and r.headers["Cache-Control"] == "no-store"
        html = await r.text()
    # Bangla with Bengali digits unless the reader chose otherwise
    assert '<html lang="bn"' in html
    assert 'data-count="conflicts"><span class="big-n">২</span>' in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html and "<img" not in html
    assert "conflict-log" not in html and "other-clinic-value" not in html

    for auth, mine, others in ((CHCP, True, False), (ADMIN, True, True)):
        async with http.get(hub.url + "/hub/status", headers=auth) as r:
            html = await r.text()
        assert 'id="conflict-log"' in html
        assert ("&lt;script&gt;alert(1)&lt;/script&gt;" in html) is mine
        assert "<script>alert" not in html
        assert ("other-clinic-value" in html) is others


def test_led_words() -> None:
    assert led_words(None).startswith("unknown")
    assert led_words({"status": "synced", "faults": []}).startswith("green steady")
    words = led_words({"status": "syncing", "faults": [
        {"code": 1, "text": "database integrity check failed"},
        {"code": 3, "text": "data disk more than 90% full"}]})
    assert "green blinking fast" in words
    assert "red blinks 1 time: database integrity check failed" in words
    assert "also: data disk more than 90% full" in words
