"""What an idle cycle costs on the modem (issue 15: "an idle cycle, when nothing changed on
either side: at most 2 KB on the wire, both ways"), as the store's wire accounting counts
it, and the bounded delay that buys for national's metadata changes."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest

from appliance.store import Store, wirebytes
from appliance.store.wirebytes import METADATA
from appliance.sync import state
from appliance.sync.cycle import METADATA_EVERY_MS

from .conftest import DS_FORM1, Pair
from .test_metadata import hub_doc, post_metadata

pytestmark = [pytest.mark.slow, pytest.mark.default_wire]  # a minute's wait, as test_idle_cycle

# An idle timer cycle asks national for nothing but the probe and the data values' pull
# (2 requests, ~1.2 KB with these URLs and the stand-in's reply headers): the 2 KB
IDLE_TIMER_BYTES = 2048
# the hourly metadata check adds two requests (``metadata.anything_changed``)...
METADATA_CHECK_BYTES = 1600
# ...and the hourly reads of national's completions and the upazila's register changes
HOURLY_READS_BYTES = 1600


def today(store: Store) -> dict[str, tuple[int, int]]:
    day = wirebytes.local_day(time.time())
    return store.read_sync(lambda c: wirebytes.days(c, day)).get(day, {})


async def counted_cycle(pair: Pair, reason: str) -> tuple[int, dict[str, tuple[int, int]]]:
    """A cycle's bytes both ways as the wire_bytes table counts them, and by category."""
    before = today(pair.hub)
    r = await pair.engine.cycle(reason)
    assert r.ok, r.error
    after = today(pair.hub)
    delta = {k: (s - before.get(k, (0, 0))[0], rcv - before.get(k, (0, 0))[1])
             for k, (s, rcv) in after.items()}
    delta = {k: v for k, v in delta.items() if v != (0, 0)}
    return sum(s + rcv for s, rcv in delta.values()), delta


async def metadata_due(pair: Pair) -> None:
    """As if the last metadata check was over an hour ago."""
    ms = int(pair.hub.read_sync(state.read_state)["metadata_pulled_ms"])
    await pair.hub.write(lambda tx: state.set_state(
        tx, {"metadata_pulled_ms": str(ms - METADATA_EVERY_MS - 1)}))


async def test_an_idle_cycle_costs_little_and_metadata_still_arrives(
        pair: Pair, http: aiohttp.ClientSession) -> None:
    await asyncio.sleep(61)  # past the pulls' one-minute overlap after national's seeding
    assert (await pair.engine.cycle("timer")).ok
    n, wire = await counted_cycle(pair, "timer")
    assert n <= IDLE_TIMER_BYTES, wire
    assert METADATA not in wire  # checked within the hour: no metadata request at all

    await metadata_due(pair)  # the hourly check: one export and one deletions page
    n_check, wire = await counted_cycle(pair, "timer")
    assert 0 < sum(wire[METADATA]) <= METADATA_CHECK_BYTES, wire
    assert n_check <= IDLE_TIMER_BYTES + METADATA_CHECK_BYTES + HOURLY_READS_BYTES

    # a national rename waits for the next hourly check on timer cycles...
    de = hub_doc(pair, "dataSets", DS_FORM1)["dataSetElements"][0]["dataElement"]["id"]  # type: ignore[index]
    await post_metadata(http, pair, {"dataElements": [{"id": de, "name": "CC - Renamed"}]})
    assert (await pair.engine.cycle("timer")).ok
    assert hub_doc(pair, "dataElements", de)["name"] != "CC - Renamed"  # type: ignore[index]
    # ...and arrives with it
    await metadata_due(pair)
    r = await pair.engine.cycle("timer")
    assert r.ok and r.metadata_changes >= 1
    assert hub_doc(pair, "dataElements", de)["name"] == "CC - Renamed"  # type: ignore[index]
    # a sync a person asks for checks at once
    await post_metadata(http, pair, {"dataElements": [{"id": de, "name": "CC - Again"}]})
    r = await pair.engine.cycle("cli")
    assert r.ok and hub_doc(pair, "dataElements", de)["name"] == "CC - Again"  # type: ignore[index]


async def test_a_national_without_the_export_gets_each_collection(
        pair: Pair, monkeypatch: pytest.MonkeyPatch) -> None:
    """An account that may not export metadata (403 on /api/metadata): the check asks
    every collection, as before, and stops trying the export."""
    from appliance.errors import NationalRejected
    client = pair.engine.client
    real = client.get_json
    paths: list[str] = []

    async def refuse(path: str, *a: Any, **kw: Any) -> Any:
        paths.append(path)
        if path == "/api/metadata":
            raise NationalRejected("no export for you", error_code="403")
        return await real(path, *a, **kw)
    monkeypatch.setattr(client, "get_json", refuse)
    assert (await pair.engine.cycle("cli")).ok
    assert "/api/metadata" in paths and "/api/dataElements" in paths
    paths.clear()
    assert (await pair.engine.cycle("cli")).ok
    assert "/api/metadata" not in paths and "/api/dataElements" in paths
