"""The hub's wall clock is wrong (no RTC): 2 h behind, 2 h ahead, stepped back between
two edits. The later real edit still wins, and the HLC never goes backwards."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from appliance.dhis2.timefmt import parse_ts
from appliance.store import Store
from appliance.store.hlc import physical_ms
from appliance.sync.cycle import SyncEngine
from tests.conftest import RunningHub, copy_db

from .conftest import (
    Pair,
    Wall,
    as_value,
    cell,
    conflicts,
    first_values,
    hub_edit,
    national_post,
    row,
    sync_config,
    value_at,
)


def national_value(national: RunningHub, key: tuple[str, ...]) -> str | None:
    r = national.store.read_sync(lambda c: c.execute(
        "SELECT value, deleted FROM datavalue WHERE de=? AND pe=? AND ou=? AND coc=? AND aoc=?",
        key).fetchone())
    return None if r is None or r["deleted"] else r["value"]


def national_lu_ms(national: RunningHub, key: tuple[str, ...]) -> int:
    lu = national.store.read_sync(lambda c: c.execute(
        "SELECT last_updated FROM datavalue WHERE de=? AND pe=? AND ou=? AND coc=? AND aoc=?",
        key).fetchone()[0])
    ms = parse_ts(lu)
    assert ms is not None
    return ms


@pytest.fixture
async def skewed(request: pytest.FixtureRequest, demo_template: dict[str, Path],
                 national: RunningHub, tmp_path: Path) -> AsyncIterator[Pair]:
    """A hub whose clock has always been ``request.param`` seconds off (its HLC never saw
    the right time), synced once with national."""
    wall = Wall(request.param)
    data_dir = tmp_path / "hub"
    path = copy_db(demo_template["hub"], data_dir)
    with sqlite3.connect(path) as c:  # the template was made with a correct clock
        c.execute("UPDATE meta SET value='0' WHERE key='hlc'")
    store = Store(path, wall=wall)
    cfg = sync_config(data_dir, national.url)
    engine = SyncEngine(store, cfg, wall=wall)
    p = Pair(store, national, cfg, engine, wall, data_dir)
    try:
        assert (await p.cycle()).ok
        yield p
    finally:
        await engine.close()
        store.close()


@pytest.mark.parametrize("skewed", [-7200.0, 7200.0], indirect=True,
                         ids=["2h-behind", "2h-ahead"])
async def test_later_real_edit_wins_whatever_the_hub_clock_says(
        skewed: Pair, http: aiohttp.ClientSession) -> None:
    p = skewed
    assert abs(p.engine.offset.offset_ms / 1000 + p.wall.offset_s) < 5  # measured offset
    a, b = (tuple(v[k] for k in ("dataElement", "period", "orgUnit", "categoryOptionCombo",
                                 "attributeOptionCombo")) for v in first_values(2))
    # a: national edits, then the hub (really later): the hub wins
    await national_post(http, p.national, [as_value(a, "11")])
    await asyncio.sleep(0.05)
    await hub_edit(p.hub, [as_value(a, "12")])
    # b: the hub edits, then national (really later): national wins
    await hub_edit(p.hub, [as_value(b, "21")])
    hub_b_stamp = row(p.hub, b)["hlc"]
    await asyncio.sleep(0.05)
    await national_post(http, p.national, [as_value(b, "22")])
    nat_b = national_lu_ms(p.national, b)
    hub_a_stamp = row(p.hub, a)["hlc"]
    nat_a = national_lu_ms(p.national, a)
    r = await p.cycle()
    assert r.ok and r.pull.conflicts == 2
    assert value_at(p.hub, a) == "12" and national_value(p.national, a) == "12"
    assert value_at(p.hub, b) == "22" and national_value(p.national, b) == "22"
    by_key = {c["key"]: c for c in conflicts(p.hub)}
    assert len(by_key) == 2
    winners = sorted(c["winner"] for c in by_key.values())
    assert winners == ["hub", "national"]
    # the raw stamps alone would have ordered one of the two pairs the wrong way round
    if p.wall.offset_s < 0:
        assert physical_ms(hub_a_stamp) < nat_a  # hub clock says "earlier" for a later edit
    else:
        assert physical_ms(hub_b_stamp) > nat_b  # hub clock says "later" for an earlier edit


async def test_clock_set_back_between_two_edits(pair: Pair, http: aiohttp.ClientSession) -> None:
    key = cell()
    await hub_edit(pair.hub, [as_value(key, "1")])
    first = row(pair.hub, key)["hlc"]
    assert (await pair.cycle()).ok and national_value(pair.national, key) == "1"
    pair.wall.offset_s = -7200.0  # the clock is set back two hours (power cut, no RTC)
    await national_post(http, pair.national, [as_value(key, "2")])
    await asyncio.sleep(1.1)
    # the worker's periodic clock anchor (every minute) while the wall clock is wrong
    assert await pair.engine.tick_anchor()
    await hub_edit(pair.hub, [as_value(key, "3")])
    second = row(pair.hub, key)["hlc"]
    assert second > first  # the HLC never goes backwards
    assert physical_ms(second) >= physical_ms(first)
    r = await pair.cycle()
    assert r.ok and r.pull.conflicts == 1 and r.pull.hub_won == 1
    assert value_at(pair.hub, key) == "3" and national_value(pair.national, key) == "3"
    (c,) = conflicts(pair.hub)
    assert c["national_value"] == "2" and c["winner"] == "hub"
    # and a third edit, after the clock is corrected forwards again, still comes later
    pair.wall.offset_s = 0.0
    await hub_edit(pair.hub, [as_value(key, "4")])
    assert row(pair.hub, key)["hlc"] > second
    assert (await pair.cycle()).ok and national_value(pair.national, key) == "4"


async def test_hlc_persists_across_restart_with_clock_set_back(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    with Store(path) as s:
        top = s.write_sync(lambda tx: tx.stamp())
    with Store(path, wall=Wall(-86400)) as s:
        assert s.write_sync(lambda tx: tx.stamp()) > top
