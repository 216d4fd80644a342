"""Concurrent edits at national and at the hub: both orders, the three policies, closed
periods, the conflict log and resolving an entry from the API."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from appliance.sync.cycle import SyncEngine

from .conftest import (
    CLINIC,
    DS_FORM1,
    PERIOD,
    Pair,
    as_value,
    basic,
    cell,
    conflicts,
    hub_app,
    hub_edit,
    national_post,
    row,
    sync_config,
    value_at,
)


def national_value(pair: Pair, key: tuple[str, ...]) -> str | None:
    r = pair.national.store.read_sync(lambda c: c.execute(
        "SELECT value, deleted FROM datavalue WHERE de=? AND pe=? AND ou=? AND coc=? AND aoc=?",
        key).fetchone())
    return None if r is None or r["deleted"] else r["value"]


async def _synced_cell(pair: Pair, value: str = "10") -> tuple[str, ...]:
    """A cell both sides agree on (the usual starting point of a conflict)."""
    key = cell()
    await hub_edit(pair.hub, [as_value(key, value)])
    r = await pair.cycle()
    assert r.ok and r.pending == 0
    return key


async def test_national_first_then_hub_later_hub_wins_everywhere(
        pair: Pair, http: aiohttp.ClientSession) -> None:
    key = await _synced_cell(pair)
    await national_post(http, pair.national, [as_value(key, "21")], user="statistician")
    await asyncio.sleep(0.05)
    await hub_edit(pair.hub, [as_value(key, "33")], username="chcp")
    r = await pair.cycle()
    assert r.ok and r.pull.conflicts == 1 and r.pull.hub_won == 1
    assert national_value(pair, key) == "33" and value_at(pair.hub, key) == "33"
    (c,) = conflicts(pair.hub)
    assert c["winner"] == "hub" and c["policy"] == "latest-wins"
    assert (c["hub_value"], c["hub_user"]) == ("33", "chcp")
    assert (c["national_value"], c["national_user"]) == ("21", "statistician")
    assert c["hub_at"] > c["national_at"] and "later" in c["reason"]
    # the API shows it with both sides, and the status page counts it
    async with hub_app(pair.hub, pair.data_dir) as hub:
        async with http.get(hub.api("hub/conflicts"), headers=basic("chcp")) as resp:
            body = await resp.json()
        (entry,) = body["conflicts"]
        assert entry["hub"]["value"] == "33" and entry["national"]["value"] == "21"
        assert entry["hub"]["user"] == "chcp" and entry["national"]["user"] == "statistician"
        assert entry["hub"]["at"] and entry["national"]["at"] and entry["winner"] == "hub"
        assert entry["status"] == "open" and entry["resolution"] is None
        async with http.get(hub.api("hub/status")) as resp:
            assert (await resp.json())["sync"]["conflicts"] == 1
        # next cycle: the echo of our own push is no new conflict
    r = await pair.cycle()
    assert r.pull.conflicts == 0 and len(conflicts(pair.hub)) == 1


async def test_hub_first_then_national_later_national_wins_everywhere(
        pair: Pair, http: aiohttp.ClientSession) -> None:
    key = await _synced_cell(pair)
    await hub_edit(pair.hub, [as_value(key, "44")], username="chcp")
    await asyncio.sleep(0.05)
    await national_post(http, pair.national, [as_value(key, "55")], user="statistician")
    r = await pair.cycle()
    assert r.ok and r.pull.conflicts == 1 and r.pull.national_won == 1 and r.pending == 0
    assert national_value(pair, key) == "55" and value_at(pair.hub, key) == "55"
    assert row(pair.hub, key)["sync_state"] == "synced"
    (c,) = conflicts(pair.hub)
    assert c["winner"] == "national" and c["hub_value"] == "44" and c["national_value"] == "55"
    assert c["hub_user"] == "chcp" and c["national_user"] == "statistician"


async def _engine(pair: Pair, **over: Any) -> SyncEngine:
    eng = pair.new_engine(**over)
    return eng


async def test_policy_national_wins(pair: Pair, http: aiohttp.ClientSession) -> None:
    key = await _synced_cell(pair)
    eng = pair.new_engine(sync__policies={DS_FORM1: "national-wins"})
    try:
        await national_post(http, pair.national, [as_value(key, "21")])
        await asyncio.sleep(0.05)
        await hub_edit(pair.hub, [as_value(key, "33")])  # later, but the data set says national
        r = await eng.cycle("cli")
    finally:
        await eng.close()
    assert r.pull.national_won == 1
    assert value_at(pair.hub, key) == "21" and national_value(pair, key) == "21"
    (c,) = conflicts(pair.hub)
    assert c["policy"] == "national-wins" and c["hub_value"] == "33" and c["data_set"] == DS_FORM1


async def test_policy_hub_wins(pair: Pair, http: aiohttp.ClientSession) -> None:
    key = await _synced_cell(pair)
    eng = pair.new_engine(sync__policy="hub-wins")
    try:
        await hub_edit(pair.hub, [as_value(key, "33")])
        await asyncio.sleep(0.05)
        await national_post(http, pair.national, [as_value(key, "21")])  # later, hub wins anyway
        r = await eng.cycle("cli")
    finally:
        await eng.close()
    assert r.pull.hub_won == 1
    assert value_at(pair.hub, key) == "33" and national_value(pair, key) == "33"
    (c,) = conflicts(pair.hub)
    assert c["policy"] == "hub-wins" and c["national_value"] == "21" and c["winner"] == "hub"


async def test_policy_latest_wins_is_the_default(pair: Pair, http: aiohttp.ClientSession) -> None:
    key = await _synced_cell(pair)
    await hub_edit(pair.hub, [as_value(key, "33")])
    await asyncio.sleep(0.05)
    await national_post(http, pair.national, [as_value(key, "21")])
    await pair.cycle()
    (c,) = conflicts(pair.hub)
    assert c["policy"] == "latest-wins" and c["winner"] == "national"


async def _closed_period_case(pair: Pair, http: aiohttp.ClientSession, key: tuple[str, ...],
                              engine: SyncEngine, close: Any, code: str) -> None:
    """national edits, the period closes at national, the hub edits later: national wins."""
    await national_post(http, pair.national, [as_value(key, "21")], user="statistician")
    await close()
    await asyncio.sleep(0.05)
    await hub_edit(pair.hub, [as_value(key, "33")], username="chcp")
    r = await engine.cycle("cli")
    assert r.ok, r.error
    assert r.pending == 0
    assert national_value(pair, key) == "21"
    assert value_at(pair.hub, key) == "21" and row(pair.hub, key)["sync_state"] == "synced"
    (c,) = conflicts(pair.hub)
    assert c["winner"] == "national" and c["hub_value"] == "33" and c["hub_user"] == "chcp"
    assert code in c["reason"] and "closed at national" in c["reason"]
    async with hub_app(pair.hub, pair.data_dir) as hub, http.get(hub.api("hub/rejections"), headers=basic("chcp")) as resp:
        rej = (await resp.json())["rejections"]
    (entry,) = [x for x in rej if x["dataElement"] == key[0] and x["orgUnit"] == key[2]]
    assert entry["errorCode"] == code and entry["value"] == "33" and entry["message"]


async def test_closed_period_expired(pair: Pair, http: aiohttp.ClientSession) -> None:
    """The CC forms expire after 15 days: a service account without F_EDIT_EXPIRED is
    refused with E7640, while the statistician (F_EDIT_EXPIRED) could still edit."""
    key = await _synced_cell(pair)

    async def no_edit_expired() -> None:
        # the hub's service account loses ALL: it keeps data entry rights over the upazila
        # but, like a CHCP, may no longer edit periods past their expiry days
        import json

        from appliance.hub.web import AUTH
        from appliance.store.users import upsert_user
        doc = json.loads(pair.national.store.read_sync(lambda c: c.execute(
            "SELECT doc FROM users WHERE username='hub-ramu'").fetchone()[0]))
        doc["userRoles"] = doc["userCredentials"]["userRoles"] = [{"id": "epkhTxGyNhF"}]
        pair.national.store.write_sync(lambda tx: upsert_user(tx, doc))
        pair.national.app[AUTH].forget()
    await _closed_period_case(pair, http, key, pair.engine, no_edit_expired, "E7640")


async def test_closed_period_approved(pair: Pair, http: aiohttp.ClientSession) -> None:
    key = await _synced_cell(pair)

    async def approve() -> None:
        async with http.post(pair.national.api("dataApprovals"), params={
                "ds": DS_FORM1, "pe": PERIOD, "ou": CLINIC}, headers=basic("dghs")) as resp:
            assert resp.status == 204, await resp.text()
    await _closed_period_case(pair, http, key, pair.engine, approve, "E7642")


async def test_closed_period_outside_data_input_periods(
        pair: Pair, http: aiohttp.ClientSession) -> None:
    key = await _synced_cell(pair)

    async def close_input() -> None:
        body = {"dataSets": [{"id": DS_FORM1, "dataInputPeriods": [{
            "period": {"id": "202402"}, "openingDate": "2024-02-01",
            "closingDate": "2030-01-01"}]}]}
        async with http.post(pair.national.api("metadata"), json=body,
                             headers=basic("dghs")) as resp:
            assert resp.status == 200, await resp.text()
    await _closed_period_case(pair, http, key, pair.engine, close_input, "E7643")


async def test_resolve_from_the_api(pair: Pair, http: aiohttp.ClientSession) -> None:
    key = await _synced_cell(pair)
    await hub_edit(pair.hub, [as_value(key, "44")])
    await asyncio.sleep(0.05)
    await national_post(http, pair.national, [as_value(key, "55")])
    await pair.cycle()
    (c,) = conflicts(pair.hub)
    assert c["winner"] == "national"
    hlc_before = row(pair.hub, key)["hlc"]
    async with hub_app(pair.hub, pair.data_dir) as hub:
        url = hub.api(f"hub/conflicts/{c['id']}/resolve")
        async with http.post(url, json={"choose": "sideways"}, headers=basic("chcp")) as resp:
            assert resp.status == 400 and (await resp.json())["httpStatusCode"] == 400
        async with http.post(hub.api("hub/conflicts/999999/resolve"), json={"choose": "hub"},
                             headers=basic("chcp")) as resp:
            assert resp.status == 404
        async with http.post(url, json={"choose": "value", "value": "many"},
                             headers=basic("chcp")) as resp:
            assert resp.status == 409  # not an integer: refused before it is queued
        async with http.post(url, json={"choose": "hub"}, headers=basic("chcp")) as resp:
            body = await resp.json()
            assert resp.status == 200, body
        async with http.post(url, json={"choose": "national"}, headers=basic("chcp")) as resp:
            assert resp.status == 409  # already resolved
        async with http.get(hub.api("hub/conflicts?status=resolved"),
                            headers=basic("chcp")) as resp:
            (entry,) = (await resp.json())["conflicts"]
        assert entry["resolution"]["by"] == "chcp" and entry["resolution"]["choose"] == "hub"
        async with http.get(hub.api("hub/conflicts"), headers=basic("chcp")) as resp:
            assert (await resp.json())["conflicts"] == []
    r = row(pair.hub, key)
    assert r["value"] == "44" and r["sync_state"] == "pending" and r["hlc"] > hlc_before
    audit = pair.hub.read_sync(lambda c: c.execute(
        "SELECT via, username, new_value FROM audit WHERE key=? ORDER BY id DESC",
        ("|".join(key),)).fetchone())
    assert tuple(audit) == ("conflict-resolution", "chcp", "44")
    res = await pair.cycle()
    assert res.ok and res.pull.conflicts == 0
    assert national_value(pair, key) == "44"


async def test_conflicts_are_scoped_to_the_users_org_units(
        pair: Pair, http: aiohttp.ClientSession) -> None:
    from .conftest import first_values
    other = next(v for v in first_values(4000) if v["orgUnit"] != CLINIC)
    key = (other["dataElement"], PERIOD, other["orgUnit"], other["categoryOptionCombo"],
           other["attributeOptionCombo"])
    await hub_edit(pair.hub, [as_value(key, "1")], username="admin")
    await pair.cycle()
    await hub_edit(pair.hub, [as_value(key, "2")], username="admin")
    await asyncio.sleep(0.05)
    await national_post(http, pair.national, [as_value(key, "3")])
    await pair.cycle()
    assert len(conflicts(pair.hub)) == 1
    async with hub_app(pair.hub, pair.data_dir) as hub:
        async with http.get(hub.api("hub/conflicts"), headers=basic("chcp")) as resp:
            assert (await resp.json())["conflicts"] == []  # not the CHCP's clinic
        async with http.get(hub.api("hub/conflicts"), headers=basic("admin")) as resp:
            assert len((await resp.json())["conflicts"]) == 1
        cid = conflicts(pair.hub)[0]["id"]
        async with http.post(hub.api(f"hub/conflicts/{cid}/resolve"), json={"choose": "hub"},
                             headers=basic("chcp")) as resp:
            assert resp.status == 404


_ = sync_config
