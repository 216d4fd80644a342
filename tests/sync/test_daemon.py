"""The worker's schedule and the ``appliance sync`` command."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from appliance.store import datavalues as dv
from appliance.sync.daemon import Daemon
from appliance.trigger import request_sync
from tests.conftest import REPO, free_port
from tests.netlink.harness import FlappingProxy

from .conftest import (
    CHCP_FORM,
    Pair,
    basic,
    cell,
    first_values,
    hub_app,
    row,
    sync_config,
)


async def _wait(pred: object, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():  # type: ignore[operator]
            return True
        await asyncio.sleep(0.05)
    return False


@pytest.mark.default_wire  # a flaky link: the default format only
async def test_form_entered_offline_reaches_national_by_itself(
        pair: Pair, http: aiohttp.ClientSession) -> None:
    """The CHCP's story: entered while the link is down ("on the hub, waiting for
    national"); the link comes back; it reaches national with nobody doing anything."""
    port = pair.national.url.rsplit(":", 1)[1]
    proxy = await FlappingProxy("127.0.0.1", int(port)).start()
    cfg = sync_config(pair.data_dir, f"http://127.0.0.1:{proxy.port}", national__timeout_s=2,
                      sync__debounce_s=0.2, sync__interval_s=3600)
    daemon = Daemon(pair.hub, cfg, wall=pair.wall)
    daemon.retry_base_s = 0.3
    daemon.engine.client.retries = 0
    stop = asyncio.Event()
    await proxy.cut(down_s=2.5)  # the modem is off, for a while
    task = asyncio.create_task(daemon.run(stop))
    try:
        async with hub_app(pair.hub, pair.data_dir) as hub:
            form = CHCP_FORM()
            async with http.post(hub.api("dataValueSets"), json=form,
                                 headers=basic("chcp")) as r:
                assert r.status == 200, await r.text()
            keys = [(v["dataElement"], form["period"], form["orgUnit"],
                     v["categoryOptionCombo"], v.get("attributeOptionCombo") or
                     "HllvX50cXC0") for v in form["dataValues"]]
            assert await _wait(lambda: any(not c.ok for c in daemon.cycles))
            async with http.get(hub.api("hub/status")) as r:
                st = (await r.json())["sync"]
            assert st["link"] == "down" and st["pendingValues"] == len(keys)
            assert row(pair.hub, keys[0])["sync_state"] == "pending"
            # the link comes back by itself; nobody does anything
            assert await _wait(lambda: daemon.cycles and daemon.cycles[-1].ok, 15)
            async with http.get(hub.api("hub/status")) as r:
                st = (await r.json())["sync"]
            assert st["link"] == "up" and st["pending"] == 0
            assert all(row(pair.hub, k)["sync_state"] == "synced" for k in keys)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        await proxy.stop()


async def test_triggers_debounce_and_immediate_reasons(pair: Pair) -> None:
    cfg = sync_config(pair.data_dir, pair.national.url, sync__debounce_s=0.6,
                      sync__interval_s=3600)
    daemon = Daemon(pair.hub, cfg, wall=pair.wall)
    stop = asyncio.Event()
    task = asyncio.create_task(daemon.run(stop))
    try:
        assert await _wait(lambda: len(daemon.cycles) == 1)  # at start
        assert daemon.cycles[0].reason == "start"
        key = cell()
        pair.hub.write_sync(lambda tx: dv.import_values(
            tx, [dv.ValueRow(0, *key, "7", None, None, None, False)], username="chcp"))
        t0 = time.monotonic()
        for _ in range(3):  # a form being typed: several signals, one cycle
            assert request_sync(pair.data_dir, "local-data")
            await asyncio.sleep(0.1)
        assert await _wait(lambda: len(daemon.cycles) == 2)
        assert time.monotonic() - t0 >= 0.6 and daemon.cycles[1].reason == "local-data"
        assert row(pair.hub, key)["sync_state"] == "synced"
        await asyncio.sleep(0.3)
        assert len(daemon.cycles) == 2
        t0 = time.monotonic()
        assert request_sync(pair.data_dir, "modem")  # the health agent saw the modem
        assert await _wait(lambda: len(daemon.cycles) == 3)
        # it started at once (its own length, a full cycle, varies with the machine's load)
        started = time.monotonic() - daemon.cycles[2].seconds
        assert started - t0 < 0.5 and daemon.cycles[2].reason == "modem"
        # the update agent trying a new release: it commits only after a cycle there
        assert request_sync(pair.data_dir, "update")
        assert await _wait(lambda: len(daemon.cycles) == 4)
        assert daemon.cycles[3].reason == "update"
        assert not request_sync(pair.data_dir / "elsewhere", "api")  # nobody listening
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
    assert not (pair.data_dir / "sync.sock").exists()


async def test_sync_now_endpoint_reaches_the_worker(pair: Pair,
                                                    http: aiohttp.ClientSession) -> None:
    cfg = sync_config(pair.data_dir, pair.national.url, sync__interval_s=3600)
    daemon = Daemon(pair.hub, cfg, wall=pair.wall)
    stop = asyncio.Event()
    task = asyncio.create_task(daemon.run(stop))
    try:
        assert await _wait(lambda: len(daemon.cycles) == 1)
        async with hub_app(pair.hub, pair.data_dir) as hub, http.post(hub.api("hub/sync"), headers=basic("chcp")) as r:
            body = await r.json()
            assert r.status == 202 and body["response"]["delivered"] is True
        assert await _wait(lambda: len(daemon.cycles) == 2)
        assert daemon.cycles[1].reason == "api"
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def _cli(data_dir: Path, toml: str) -> tuple[int, str, str]:
    cfg = data_dir / "hub.toml"
    cfg.write_text(toml)
    os.chmod(cfg, 0o600)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "appliance.cli", "sync", "--once", "--config", str(cfg),
        "--data-dir", str(data_dir), cwd=REPO, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode(), err.decode()


def _toml(url: str) -> str:
    from .conftest import RAMU, TOKEN
    return (f'[hub]\norg_unit = "{RAMU}"\n[national]\nurl = "{url}"\ntoken = "{TOKEN}"\n'
            "timeout_s = 3\n")


async def test_sync_once_exit_codes(pair: Pair) -> None:
    await pair.engine.close()
    good, bad = first_values(2)
    pair.hub.write_sync(lambda tx: dv.import_values(tx, [
        dv.ValueRow(0, good["dataElement"], good["period"], good["orgUnit"],
                    good["categoryOptionCombo"], good["attributeOptionCombo"], "5", None, None,
                    None, False),
        dv.ValueRow(1, bad["dataElement"], bad["period"], bad["orgUnit"],
                    bad["categoryOptionCombo"], bad["attributeOptionCombo"], "five", None,
                    None, None, False)], username="chcp"))
    rc, out, err = await _cli(pair.data_dir, _toml(f"http://127.0.0.1:{free_port()}"))
    assert rc == 1 and "cannot reach national" in err
    rc, out, err = await _cli(pair.data_dir, _toml(pair.national.url))
    # one accepted, one refused with its reason: nothing left pending, so 0
    assert rc == 0, err
    assert "1 refused by national" in out
    assert row(pair.hub, (bad["dataElement"], bad["period"], bad["orgUnit"],
                          bad["categoryOptionCombo"], bad["attributeOptionCombo"]))[
        "sync_state"] == "rejected"

