"""The reporting board's API and its live stream, against a real hub on a real port over a
real SQLite file: the board of a month in the caller's scope, its rates, and the stream's
change within 2 s of a write by another client or by another process (the sync worker's
acknowledgement, simulated by a second Store on the same file)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from appliance.hub.board import BOARD, default_period
from appliance.store import Store
from tests.conftest import ADMIN, CHCP, RunningHub
from tests.hub.cells import cells, month

C = cells()
PE = month(-1)
FORM1 = C.form1["id"]
CLINIC = C.chcp_clinic
SSE = {"Accept": "text/event-stream"}


async def board(http: aiohttp.ClientSession, hub: RunningHub, auth: dict[str, str],
                **params: str) -> tuple[int, Any]:
    async with http.get(hub.api("hub/board"), params=params, headers=auth) as r:
        return r.status, await r.json()


async def enter(http: aiohttp.ClientSession, hub: RunningHub, n: int, ou: str = CLINIC,
                auth: dict[str, str] = CHCP) -> None:
    values = []
    for de in C.elements(C.form1):
        for coc in C.cocs(de):
            if de["valueType"].startswith("INTEGER") and len(values) < n:
                values.append({"dataElement": de["id"], "categoryOptionCombo": coc, "value": "3"})
    body = {"dataSet": FORM1, "period": PE, "orgUnit": ou, "dataValues": values}
    async with http.post(hub.api("dataValueSets"), json=body, headers=auth) as r:
        assert r.status == 200, await r.text()


async def complete(http: aiohttp.ClientSession, hub: RunningHub, ou: str = CLINIC,
                   auth: dict[str, str] = CHCP) -> None:
    async with http.post(hub.api("completeDataSetRegistrations"), headers=auth, json={
            "completeDataSetRegistrations": [{"dataSet": FORM1, "period": PE,
                                              "organisationUnit": ou}]}) as r:
        assert r.status == 200, await r.text()


class Stream:
    """An EventSource's view of /api/hub/board/events."""

    def __init__(self, resp: aiohttp.ClientResponse) -> None:
        self.resp = resp

    async def next(self, timeout: float = 5.0) -> tuple[str, Any]:
        event, data = "message", []
        async with asyncio.timeout(timeout):
            while True:
                line = (await self.resp.content.readline()).decode().rstrip("\n")
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: "):
                    data.append(line[6:])
                elif line == "" and data:
                    return event, json.loads("\n".join(data))


@pytest.fixture
async def stream(http: aiohttp.ClientSession, hub: RunningHub
                 ) -> AsyncIterator[Any]:
    opened: list[aiohttp.ClientResponse] = []

    async def open_(auth: dict[str, str], pe: str = PE) -> Stream:
        r = await http.get(hub.api("hub/board/events"), params={"pe": pe},
                           headers={**auth, **SSE}, timeout=aiohttp.ClientTimeout(total=None))
        assert r.status == 200, await r.text()
        assert r.headers["Content-Type"].startswith("text/event-stream")
        opened.append(r)
        return Stream(r)
    yield open_
    for r in opened:
        r.close()


def cell(b: dict[str, Any], ou: str, ds: str) -> dict[str, Any]:
    return next(c for c in b["cells"] if c["ou"] == ou and c["ds"] == ds)


async def test_the_board_of_a_month(hub: RunningHub, http: aiohttp.ClientSession) -> None:
    status, b = await board(http, hub, ADMIN, pe=PE)
    assert status == 200, b
    assert len(b["orgUnits"]) == 28 and len(b["dataSets"]) == 5  # 27 clinics + the UHC
    assert len(b["cells"]) == 28 * 5
    assert b["rates"]["all"]["expected"] == 27 * 4 + 1
    assert cell(b, C.uhc, FORM1)["state"] == "not_expected"
    before = b["rates"]["all"]["complete"]
    c = cell(b, CLINIC, FORM1)
    assert c["state"] in ("not_started", "in_progress") and c["cells"] > 5

    await enter(http, hub, 5, ou=CLINIC)
    _, b = await board(http, hub, ADMIN, pe=PE)
    c = cell(b, CLINIC, FORM1)
    assert c["state"] == "in_progress" and c["filled"] >= 5
    await complete(http, hub)
    _, b = await board(http, hub, ADMIN, pe=PE)
    c = cell(b, CLINIC, FORM1)
    assert c["state"] == "complete" and c["sync"] == "pending" and c["completedBy"] == "chcp"
    assert b["rates"]["all"]["complete"] == before + 1
    assert b["rates"]["byDataSet"][FORM1]["complete"] >= 1


async def test_a_chcp_sees_their_clinic_only(hub: RunningHub,
                                             http: aiohttp.ClientSession) -> None:
    await complete(http, hub, ou=C.other_clinic, auth=ADMIN)
    status, b = await board(http, hub, CHCP, pe=PE)
    assert status == 200
    assert [o["id"] for o in b["orgUnits"]] == [CLINIC]
    assert {c["ou"] for c in b["cells"]} == {CLINIC}
    assert b["rates"]["all"]["expected"] == 4


async def test_the_default_month_and_bad_ones(hub: RunningHub,
                                              http: aiohttp.ClientSession) -> None:
    status, b = await board(http, hub, ADMIN)
    assert status == 200 and b["period"] == default_period() == month(-1)
    for pe in ("2024W01", "abc", "209901", "199001", "2024Q1"):
        status, body = await board(http, hub, ADMIN, pe=pe)
        assert status == 400 and body["httpStatusCode"] == 400, (pe, body)
    async with http.get(hub.api("hub/board")) as r:
        assert r.status == 401
    async with http.get(hub.api("hub/board/events"), headers=ADMIN) as r:
        assert r.status == 406 and (await r.json())["httpStatusCode"] == 406


async def test_the_stream_shows_another_clients_completion_within_2s(
        hub: RunningHub, http: aiohttp.ClientSession, stream: Any) -> None:
    admin = await stream(ADMIN)
    chcp = await stream(CHCP)
    event, first = await admin.next()
    assert event == "board" and len(first["cells"]) == 28 * 5
    event, mine = await chcp.next()
    assert event == "board" and {c["ou"] for c in mine["cells"]} == {CLINIC}

    t0 = time.monotonic()
    await complete(http, hub, ou=C.other_clinic, auth=ADMIN)
    event, msg = await admin.next(timeout=2.0)
    assert time.monotonic() - t0 < 2.0
    assert event == "cells"
    assert [(c["ou"], c["ds"], c["state"]) for c in msg["cells"]] == [
        (C.other_clinic, FORM1, "complete")]
    assert msg["rates"]["all"]["complete"] == first["rates"]["all"]["complete"] + 1

    # the CHCP's stream hears nothing of the other clinic, then its own completion
    await complete(http, hub)
    event, msg = await chcp.next(timeout=2.0)
    assert [(c["ou"], c["state"]) for c in msg["cells"]] == [(CLINIC, "complete")]
    assert msg["rates"]["all"]["expected"] == 4
    event, msg = await admin.next(timeout=2.0)
    assert [c["ou"] for c in msg["cells"]] == [CLINIC]


async def test_the_stream_shows_national_accepting_from_another_process(
        hub: RunningHub, http: aiohttp.ClientSession, stream: Any) -> None:
    await complete(http, hub)
    admin = await stream(ADMIN)
    _, first = await admin.next()
    assert cell(first, CLINIC, FORM1)["state"] == "complete"
    feed_reads = hub.app[BOARD].recomputes

    # the sync process's acknowledgement: another connection, another Store on the file
    with Store(hub.store.path) as sync_store:
        def ack(tx: Any) -> None:
            tx.execute("UPDATE complete_registration SET sync_state='synced' WHERE ds=? "
                       "AND pe=? AND ou=?", (FORM1, PE, CLINIC))
        t0 = time.monotonic()
        sync_store.write_sync(ack)
        event, msg = await admin.next(timeout=2.0)
    assert time.monotonic() - t0 < 2.0
    assert [(c["ou"], c["state"], c["sync"]) for c in msg["cells"]] == [
        (CLINIC, "received", "synced")]
    assert msg["rates"]["all"]["received"] == first["rates"]["all"]["received"] + 1
    # one read of the month per change, however many boards
    assert hub.app[BOARD].recomputes \
        - feed_reads <= 3
