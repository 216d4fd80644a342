"""End to end with real processes on real ports: the national stand-in, the hub's LAN
server and the sync worker, the uplink a 32 kbit/s link that drops every few seconds.
~3,000 values entered at the hub's LAN API reach national, then edits and deletions do;
national then equals the hub exactly."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from appliance import demo
from appliance.demo import values as dvals
from tests.conftest import REPO, HubProcess, start_hub_process
from tests.netlink.harness import FlappingProxy

from .conftest import RAMU, TOKEN, basic

pytestmark = pytest.mark.slow

PERIOD = "202401"


def write_config(path: Path, url: str, **sync: Any) -> Path:
    # these tests follow data through the link, not the modem's batching (test_batching.py)
    sync.setdefault("batch_s", 0)
    lines = ["[hub]", f'org_unit = "{RAMU}"', "zeroconf = false", "[national]",
             f'url = "{url}"', f'token = "{TOKEN}"', "timeout_s = 8", "[sync]"]
    lines += [f"{k} = {v!r}" if not isinstance(v, str) else f'{k} = "{v}"'
              for k, v in sync.items()]
    path.write_text("\n".join(lines) + "\n")
    os.chmod(path, 0o600)
    return path


def start_sync(data_dir: Path, cfg: Path, *extra: str) -> subprocess.Popen[bytes]:
    log = open(data_dir / "sync.log", "ab")  # noqa: SIM115 - lives with the process
    return subprocess.Popen(
        [sys.executable, "-m", "appliance.cli", "sync", "--config", str(cfg), "--data-dir",
         str(data_dir), *extra], cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})


def table(db: Path, where: str = "") -> dict[tuple[str, ...], tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as c:
        rows = c.execute("SELECT de, pe, ou, coc, aoc, value, comment, deleted, stored_by, "
                         f"sync_state FROM datavalue {where}").fetchall()
    return {tuple(r[:5]): tuple(r[5:]) for r in rows}


def live(t: dict[tuple[str, ...], tuple[Any, ...]]) -> dict[tuple[str, ...], tuple[Any, ...]]:
    """key -> (value, comment, storedBy) of values that exist (tombstones left out)."""
    return {k: (v[0], v[1], v[3]) for k, v in t.items() if not v[2]}


@contextlib.contextmanager
def processes() -> Iterator[list[Any]]:
    procs: list[Any] = []
    try:
        yield procs
    finally:
        for p in procs:
            popen = p.proc if isinstance(p, HubProcess) else p
            if popen.poll() is None:
                popen.terminate()
                try:
                    popen.wait(10)
                except subprocess.TimeoutExpired:
                    popen.kill()


def provisioned(tmp_path: Path, procs: list[Any], *, national_extra: list[str] | None = None,
                first_timeout: float = 180) -> tuple[HubProcess, HubProcess, Path, int]:
    """National and a hub provisioned while the link is good: the first sync (metadata, the
    demo history) runs direct. Returns (national, hub, the hub's data dir, national's port)."""
    national = start_hub_process(tmp_path / "national", role="national", extra=national_extra)
    procs.append(national)
    hub_dir = tmp_path / "hub"
    direct = write_config(tmp_path / "direct.toml", national.url)
    hub = start_hub_process(hub_dir, extra=["--config", str(direct)])
    procs.append(hub)
    first = subprocess.run(
        [sys.executable, "-m", "appliance.cli", "sync", "--once", "--config", str(direct),
         "--data-dir", str(hub_dir)], cwd=REPO, capture_output=True, timeout=first_timeout)
    assert first.returncode == 0, first.stderr.decode()
    return national, hub, hub_dir, int(national.url.rsplit(":", 1)[1])


async def wait_synced(http: aiohttp.ClientSession, hub: HubProcess, timeout: float) -> dict:  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout
    st: dict[str, Any] = {}
    while time.monotonic() < deadline:
        async with http.get(hub.api("hub/status")) as r:
            st = (await r.json())["sync"]
        if st["pending"] == 0 and not st["syncing"] and st["lastSuccess"]:
            return st
        await asyncio.sleep(0.5)
    raise AssertionError(f"not synced after {timeout}s: {st}")


async def test_month_through_a_flapping_32kbit_link(tmp_path: Path,
                                                    http: aiohttp.ClientSession) -> None:
    with processes() as procs:
        national, hub, hub_dir, port = provisioned(tmp_path, procs, first_timeout=120)
        # from now on: 32 kbit/s each way, a cut (connections reset) every 3 s for 0.7 s
        proxy = await FlappingProxy("127.0.0.1", port, rate=4000, every_s=3.0, down_s=0.7,
                                    mode="reset").start()
        try:
            cfg = write_config(tmp_path / "hub.toml", f"http://127.0.0.1:{proxy.port}",
                               debounce_s=1, interval_s=3600, chunk_values=200)
            procs.append(start_sync(hub_dir, cfg))
            forms = dvals.forms(demo.hub(), PERIOD, data_sets=["NwLMuiBAxSb", "df0AIFZ54aA"])
            sent = 0
            for form in forms:
                if sent >= 3000:
                    break
                async with http.post(hub.api("dataValueSets"), json=form,
                                     headers=basic("admin")) as r:
                    assert r.status == 200, await r.text()
                sent += len(form["dataValues"])
            st = await wait_synced(http, hub, 150)
            assert st["rejected"] == 0 and st["conflicts"] == 0
            hub_rows = table(hub_dir / "hub.db")
            assert len(hub_rows) >= 3000
            assert all(v[4] == "synced" for v in hub_rows.values())
            assert live(table(national.data_dir / "hub.db")) == live(hub_rows)
            # edits and deletions of what is already at national, still over the bad link
            keys = sorted(k for k, v in hub_rows.items() if (v[0] or "").isdigit())
            edits = [{"dataElement": k[0], "period": k[1], "orgUnit": k[2],
                      "categoryOptionCombo": k[3], "attributeOptionCombo": k[4],
                      "value": str(int(hub_rows[k][0]) + 1000)} for k in keys[:300]]
            gone = [{"dataElement": k[0], "period": k[1], "orgUnit": k[2],
                     "categoryOptionCombo": k[3], "attributeOptionCombo": k[4],
                     "deleted": True} for k in keys[300:350]]
            async with http.post(hub.api("dataValueSets"), json={"dataValues": edits + gone},
                                 headers=basic("admin")) as r:
                assert r.status == 200, await r.text()
            await wait_synced(http, hub, 120)
            hub_rows = table(hub_dir / "hub.db")
            nat_rows = table(national.data_dir / "hub.db")
            assert live(nat_rows) == live(hub_rows)
            assert sum(1 for v in nat_rows.values() if v[2]) == 50
            stats = proxy.stats()
            assert stats.cuts >= 2 and stats.connections_reset >= 1  # the link really flapped
        finally:
            await proxy.stop()
