"""On the modem, data saved during a busy morning goes in a few large pushes
(``appliance/sync/batching.py``), while a person's "sync now" is never held."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Any

import aiohttp
import pytest

from appliance.store import datavalues as dv
from appliance.sync.batching import DEBOUNCE_CAP, DataTrigger
from appliance.sync.daemon import Daemon
from appliance.trigger import request_sync
from tests.conftest import RunningHub

from .conftest import Pair, basic, first_values, hub_app, row, sync_config
from .test_daemon import _wait


def test_the_first_save_after_a_quiet_spell_goes_after_the_debounce() -> None:
    t = DataTrigger(debounce_s=20, batch_s=900)
    assert t.wait(0) is None
    t.saved(100)
    assert t.wait(100) == 20
    t.saved(110)  # the form's next value: the debounce starts again
    assert t.wait(110) == 20


def test_a_steady_trickle_still_goes_within_the_cap() -> None:
    t = DataTrigger(debounce_s=20, batch_s=0)
    for s in range(0, 200, 5):
        t.saved(s)
        if t.wait(s) is not None and t.wait(s) <= 0:  # type: ignore[operator]
            break
    assert t.due_at == DEBOUNCE_CAP * 20


def test_saves_after_a_push_wait_for_the_batch_window() -> None:
    t = DataTrigger(debounce_s=20, batch_s=900)
    t.saved(0)
    t.started()
    t.ran(20, pushed=True)       # the cycle that started at 20 s pushed them
    t.saved(60)
    assert t.due_at == 920 and t.held  # 900 s after that cycle started, not 80 s
    t.saved(700)
    assert t.due_at == 920       # later saves ride along; they do not push it back
    t.started()
    t.ran(920, pushed=True)
    assert not t.held
    t.saved(2000)                # after a quiet spell longer than the window: at once
    assert t.due_at == 2020 and not t.held


def test_a_cycle_that_pushed_nothing_holds_nothing() -> None:
    t = DataTrigger(debounce_s=20, batch_s=900)
    t.ran(0, pushed=False)       # e.g. the start-up cycle, or an idle timer cycle
    t.saved(10)
    assert t.due_at == 30


def test_a_fixed_line_pushes_after_every_debounce() -> None:
    t = DataTrigger(debounce_s=20, batch_s=0)
    t.ran(0, pushed=True)
    t.saved(10)
    assert t.due_at == 30


def test_edits_left_pending_by_a_cycle_are_held_too() -> None:
    t = DataTrigger(debounce_s=20, batch_s=900)
    t.started()
    t.ran(0, pushed=True)
    t.left_pending(30)           # saved while the cycle ran, their signal lost
    assert t.due_at == 900


def _save(pair: Pair, key: tuple[str, ...], value: str) -> None:
    de, pe, ou, coc, aoc = key
    pair.hub.write_sync(lambda tx: dv.import_values(
        tx, [dv.ValueRow(0, de, pe, ou, coc, aoc, value, None, None, None, False)],
        username="chcp"))


async def _status(hub: RunningHub, http: aiohttp.ClientSession) -> Any:
    async with http.get(hub.api("hub/status"), headers=basic("admin")) as r:
        assert r.status == 200
        return await r.json()


async def _page(hub: RunningHub, http: aiohttp.ClientSession, query: str = "") -> str:
    async with http.get(hub.url + "/hub/status" + query, headers=basic("admin")) as r:
        assert r.status == 200
        return await r.text()


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


@pytest.mark.default_wire  # the schedule, not the wire format
async def test_the_worker_batches_saves_after_a_push_and_sync_now_goes_at_once(
        pair: Pair, http: aiohttp.ClientSession) -> None:
    batch = 10.0  # room for the status page to answer inside it on a loaded machine
    cfg = sync_config(pair.data_dir, pair.national.url, sync__debounce_s=0.2,
                      sync__batch_s=batch, sync__interval_s=3600)
    daemon = Daemon(pair.hub, cfg, wall=pair.wall)
    stop = asyncio.Event()
    async with hub_app(pair.hub, pair.data_dir) as hub:
        task = asyncio.create_task(daemon.run(stop))
        try:
            await _worker(pair, daemon, hub, http, batch)
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)


async def _worker(pair: Pair, daemon: Daemon, hub: RunningHub, http: aiohttp.ClientSession,
                  batch: float) -> None:
    assert await _wait(lambda: len(daemon.cycles) == 1, 20)  # at start: nothing to push
    first, second, third = [(v["dataElement"], v["period"], v["orgUnit"],
                             v["categoryOptionCombo"], v["attributeOptionCombo"])
                            for v in first_values(3)]
    # the first form after a quiet spell goes after the debounce
    _save(pair, first, "7")
    assert request_sync(pair.data_dir, "local-data")
    assert await _wait(lambda: len(daemon.cycles) == 2, 20)
    assert daemon.cycles[1].reason == "local-data" and daemon.cycles[1].push.accepted == 1
    pushed_at = time.monotonic() - daemon.cycles[1].seconds
    # the next one waits for the window: on the hub, "waiting for national", and the
    # status page says until when
    _save(pair, second, "8")
    assert request_sync(pair.data_dir, "local-data")
    goes_at = pair.wall() + pushed_at + batch - time.monotonic()
    await asyncio.sleep(1.0)
    assert len(daemon.cycles) == 2 and row(pair.hub, second)["sync_state"] == "pending"
    held = await _status(hub, http)
    assert held["sync"]["pendingValues"] == 1
    assert abs(_epoch(held["sync"]["nextPush"]) - goes_at) < 1.5
    en = await _page(hub, http, "?lang=en")
    assert "data-next-push" in en and "goes to national at" in en
    assert held["sync"]["nextPush"][:19] in en  # the <time> the laptop shows locally
    assert "এখনই সিঙ্ক করুন" in await _page(hub, http)  # Bangla by default
    assert await _wait(lambda: len(daemon.cycles) == 3, batch + 20)
    assert time.monotonic() - pushed_at >= batch - 0.1
    assert daemon.cycles[2].reason == "local-data"
    assert row(pair.hub, second)["sync_state"] == "synced"
    gone = await _status(hub, http)
    assert gone["sync"]["nextPush"] is None and gone["sync"]["pending"] == 0
    assert "data-next-push" not in await _page(hub, http, "?lang=en")
    # a person asking for a sync is not held
    _save(pair, third, "9")
    assert request_sync(pair.data_dir, "local-data")
    t0 = time.monotonic()
    assert request_sync(pair.data_dir, "api")
    assert await _wait(lambda: len(daemon.cycles) == 4, 20)
    started = time.monotonic() - daemon.cycles[3].seconds
    assert daemon.cycles[3].reason == "api" and started - t0 < batch / 2
    assert row(pair.hub, third)["sync_state"] == "synced"
    # and it carried the held save: no second cycle follows for it
    await asyncio.sleep(batch + 0.5)
    assert len(daemon.cycles) == 4
