"""Issue 15, the idle cycle: a timer or data-triggered cycle between the hourly metadata
checks reads national's data values and nothing else (its completions and the upazila's
register changes wait for the hourly check); a person's sync reads everything at once."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest

from appliance.store import datavalues as dv
from appliance.sync import state as sync_state

from .conftest import AOC, CLINIC, DS_FORM1, Pair, national_complete, this_month
from .test_idle_bytes import metadata_due

REG = "/api/completeDataSetRegistrations"
TRACKER = "/api/tracker/trackedEntities"


def record(pair: Pair, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """The path and query of every request the engine sends to national."""
    client = pair.engine.client
    real = client._once
    sent: list[tuple[str, str]] = []

    async def once(method: str, url: str, **kw: Any) -> Any:
        parts = urlsplit(url)
        sent.append((parts.path, parts.query))
        return await real(method, url, **kw)
    monkeypatch.setattr(client, "_once", once)
    return sent


def paths(sent: list[tuple[str, str]]) -> list[str]:
    return [p for p, _q in sent]


async def pull_long_ago(pair: Pair) -> None:
    """As if the last full pull had been 11 minutes ago."""
    st = await pair.hub.read(sync_state.read_state)
    when = str(int(st["last_full_pull"]) - 11 * 60_000)
    await pair.hub.write(lambda tx: sync_state.set_state(tx, {"last_full_pull": when}))


def completed_at_hub(pair: Pair, period: str) -> bool:
    reg = pair.hub.read_sync(lambda c: dv.registration(c, (DS_FORM1, period, CLINIC, AOC)))
    return bool(reg is not None and reg["completed"])


async def test_a_light_timer_cycle_reads_values_and_the_hourly_one_the_rest(
        pair: Pair, http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch) -> None:
    period = this_month()
    sent = record(pair, monkeypatch)
    await national_complete(http, pair.national.url, period)
    r = await pair.cycle("timer")  # the metadata check ran with the pair's first cycle
    assert r.ok and r.light, r.error
    assert any(p.startswith("/api/dataValueSets") for p in paths(sent)), sent
    assert REG not in paths(sent) and TRACKER not in paths(sent), sent  # nothing to push
    assert not completed_at_hub(pair, period)  # national's completion waits for the hour

    sent.clear()
    await metadata_due(pair)
    r = await pair.cycle("timer")
    assert r.ok and not r.light, r.error
    assert REG in paths(sent) and TRACKER in paths(sent), sent
    assert r.pulled_registrations >= 1 and completed_at_hub(pair, period)

    # back to light, and so is a data-triggered cycle that pulls (more than 10 minutes
    # after the last full pull: on the modem they come every [sync] batch_s)
    sent.clear()
    assert (await pair.cycle("timer")).light
    assert REG not in paths(sent)
    await pull_long_ago(pair)
    r = await pair.cycle("local-data")
    assert r.ok and r.light and not r.resumed, r.error
    assert any(p.startswith("/api/dataValueSets") for p in paths(sent)), sent
    assert REG not in paths(sent) and TRACKER not in paths(sent), sent
    # and a person's sync reads it all
    sent.clear()
    r = await pair.cycle("cli")
    assert r.ok and not r.light and REG in paths(sent) and TRACKER in paths(sent), sent


async def test_a_light_cycle_reads_national_on_the_people_it_pushes_first(
        pair: Pair, monkeypatch: pytest.MonkeyPatch) -> None:
    """The merge of DESIGN.md §6 needs national's side of a person before the hub's edit
    of them goes up: a light cycle reads those people (by uid), not the whole upazila."""
    import asyncio

    from appliance.store import tracker as tstore

    from .test_tracker_sync import M, history_person, hub_write, national_write, te_in
    p = history_person(pair.hub)
    phone = M["attrs"]["BD_PHONE"]
    await hub_write(pair.hub, tstore.Bundle(tracked_entities=[te_in(p, [(phone, "01811111111")])]))
    await asyncio.sleep(0.3)
    await national_write(pair.national.store, tstore.Bundle(
        tracked_entities=[te_in(p, [(phone, "01922222222")])]))  # the later edit
    sent = record(pair, monkeypatch)
    r = await pair.cycle("timer")
    queries = [q for path, q in sent if path == TRACKER]
    assert r.ok and r.light, r.error
    assert queries and all("trackedEntities=" + p["te"] in q and "orgUnitMode" not in q
                           for q in queries), queries
    assert r.tracker_pull.conflicts == 1 and r.tracker_pull.national_won == 1
    assert r.tracker_push.rejected == 0
