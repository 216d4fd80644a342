"""Push, pull, rejections and status against the national stand-in on a real port."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import aiohttp
import orjson

from appliance.store import Store
from appliance.store import datavalues as dv
from appliance.sync.cycle import SyncEngine
from tests.conftest import RunningHub, copy_db, free_port

from .conftest import (
    AOC,
    CLINIC,
    PERIOD,
    RAMU,
    Pair,
    as_value,
    basic,
    cell,
    first_values,
    hub_app,
    hub_edit,
    national_post,
    row,
    sync_config,
)


def _national_values(national: RunningHub) -> dict[tuple[str, ...], str | None]:
    rows = national.store.read_sync(lambda c: c.execute(
        "SELECT de, pe, ou, coc, aoc, value, deleted FROM datavalue").fetchall())
    return {tuple(r[:5]): (None if r["deleted"] else r["value"]) for r in rows}


async def test_offline_entry_reaches_national_when_link_returns(
        demo_template: dict[str, Path], national: RunningHub, tmp_path: Path,
        http: aiohttp.ClientSession) -> None:
    data_dir = tmp_path / "hub"
    store = Store(copy_db(demo_template["hub"], data_dir))
    values = first_values(40)
    await hub_edit(store, values)
    # the link is down: national's port is closed
    dead = SyncEngine(store, sync_config(data_dir, f"http://127.0.0.1:{free_port()}"))
    dead.client.retries = 1
    dead.client.backoff_base = 0.01
    r = await dead.cycle("timer")
    await dead.close()
    assert not r.ok and "cannot reach national" in (r.error or "")
    async with hub_app(store, data_dir) as hub:
        async with http.get(hub.api("hub/status")) as resp:
            st = (await resp.json())["sync"]
        assert st["link"] == "down" and st["pendingValues"] == 40 and st["lastError"]
        assert all(row(store, k)["sync_state"] == "pending" for k in
                   [(v["dataElement"], v["period"], v["orgUnit"], v["categoryOptionCombo"],
                     v["attributeOptionCombo"]) for v in values])
        engine = SyncEngine(store, sync_config(data_dir, national.url))
        r = await engine.cycle("modem")
        await engine.close()
        assert r.ok, r.error
        assert r.push.accepted == 40 and r.pending == 0
        async with http.get(hub.api("hub/status")) as resp:
            st = (await resp.json())["sync"]
        assert st["link"] == "up" and st["pending"] == 0 and st["lastSuccess"]
        assert st["lastError"] in ("", None) and st["bytesSent"] > 0 and st["bytesReceived"] > 0
        assert st["clockOffsetSeconds"] is not None and abs(st["clockOffsetSeconds"]) < 5
    nat = _national_values(national)
    for v in values:
        key = (v["dataElement"], v["period"], v["orgUnit"], v["categoryOptionCombo"],
               v["attributeOptionCombo"])
        assert nat[key] == v["value"]
        hub_row = row(store, key)
        assert hub_row["sync_state"] == "synced" and hub_row["base"]
    # stored by the CHCP who entered it, not the hub's service account
    who = national.store.read_sync(lambda c: {r[0] for r in c.execute(
        "SELECT stored_by FROM datavalue")})
    assert who == {"chcp"}
    store.close()


async def test_refusals_are_recorded_with_dhis2_reason_and_not_retried(
        pair: Pair, http: aiohttp.ClientSession) -> None:
    from appliance import demo
    values = first_values(3)
    good = cell()
    # a value of the wrong type, and one for an org unit outside the hub's service account
    other_ou = next(o["id"] for o in demo.national()["organisationUnits"]
                    if o.get("level") == 5 and RAMU not in o["path"])
    outside = (good[0], PERIOD, other_ou, good[3], AOC)
    bad_type = (values[1]["dataElement"], PERIOD, values[1]["orgUnit"],
                values[1]["categoryOptionCombo"], AOC)
    await hub_edit(pair.hub, [values[0], as_value(bad_type, "lots")])
    pair.hub.write_sync(lambda tx: dv.import_values(tx, [dv.ValueRow(
        0, *outside, "5", None, None, None, False)], username="chcp"))
    r = await pair.cycle()
    assert r.ok and r.pending == 0 and r.push.accepted == 1 and r.push.rejected == 2
    assert row(pair.hub, bad_type)["sync_state"] == "rejected"
    assert row(pair.hub, outside)["sync_state"] == "rejected"
    rej = pair.hub.read_sync(lambda c: {r["key"].split("|")[2] + r["key"].split("|")[0]: dict(r)
                                        for r in c.execute("SELECT * FROM sync_rejection")})
    codes = {v["error_code"] for v in rej.values()}
    assert codes == {"E7619", "E7617"}
    assert all(v["username"] == "chcp" and v["message"] for v in rej.values())
    # shown to the CHCP who entered them (the admin sees them too; the hub's other users not)
    async with hub_app(pair.hub, pair.data_dir) as hub:
        async with http.get(hub.api("hub/rejections"), headers=basic("chcp")) as resp:
            body = await resp.json()
        assert resp.status == 200
        mine = {(x["orgUnit"], x["errorCode"]) for x in body["rejections"]}
        assert (bad_type[2], "E7619") in mine
        msg = next(x["message"] for x in body["rejections"] if x["errorCode"] == "E7619")
        assert "type" in msg
        async with http.get(hub.api("hub/status")) as resp:
            st = (await resp.json())["sync"]
        assert st["rejected"] == 2
    # not retried until someone edits it
    r = await pair.cycle()
    assert r.push.chunks == 0
    await hub_edit(pair.hub, [as_value(bad_type, "12")])
    r = await pair.cycle()
    assert r.push.accepted == 1 and row(pair.hub, bad_type)["sync_state"] == "synced"
    assert pair.hub.read_sync(lambda c: c.execute(
        "SELECT count(*) FROM sync_rejection").fetchone()[0]) == 1


async def test_repeated_edits_coalesce_and_deletions_sync(pair: Pair) -> None:
    key = cell()
    for v in ("1", "2", "3"):
        await hub_edit(pair.hub, [as_value(key, v)])
    r = await pair.cycle()
    assert r.push.accepted == 1 and r.push.chunks == 1
    assert _national_values(pair.national)[key] == "3"
    audits = pair.national.store.read_sync(lambda c: c.execute(
        "SELECT count(*) FROM audit WHERE entity='datavalue' AND key=?",
        ("|".join(key),)).fetchone()[0])
    assert audits == 1
    await hub_edit(pair.hub, [as_value(key, None)])  # a tombstone
    assert row(pair.hub, key)["deleted"] == 1 and row(pair.hub, key)["sync_state"] == "pending"
    r = await pair.cycle()
    assert r.push.accepted == 1
    assert _national_values(pair.national)[key] is None


async def test_completions_sync_both_ways(pair: Pair, http: aiohttp.ClientSession) -> None:
    from .conftest import DS_FORM1
    reg = {"ds": DS_FORM1, "pe": PERIOD, "ou": CLINIC, "aoc": AOC, "date": "2024-02-03"}
    pair.hub.write_sync(lambda tx: dv.register_complete(tx, [reg], username="chcp"))
    r = await pair.cycle()
    assert r.ok and r.pending == 0
    nat = pair.national.store.read_sync(lambda c: c.execute(
        "SELECT completed, deleted FROM complete_registration WHERE ds=? AND pe=? AND ou=?",
        (DS_FORM1, PERIOD, CLINIC)).fetchone())
    assert nat is not None and nat["completed"] == 1 and nat["deleted"] == 0
    pair.hub.write_sync(lambda tx: dv.register_complete(tx, [dict(reg, delete=True)],
                                                        username="chcp"))
    r = await pair.cycle()
    assert r.ok and r.pending == 0
    nat = pair.national.store.read_sync(lambda c: c.execute(
        "SELECT deleted FROM complete_registration WHERE ds=? AND pe=? AND ou=?",
        (DS_FORM1, PERIOD, CLINIC)).fetchone())
    assert nat["deleted"] == 1
    # completed at national by the district: comes down to the hub
    other = "202402"
    async with http.post(pair.national.api("completeDataSetRegistrations"), headers=basic(
            "statistician"), json={"completeDataSetRegistrations": [
                {"dataSet": DS_FORM1, "period": other, "organisationUnit": CLINIC}]}) as resp:
        assert resp.status == 200, await resp.text()
    r = await pair.cycle()
    hub_reg = pair.hub.read_sync(lambda c: c.execute(
        "SELECT completed, sync_state, origin, base FROM complete_registration WHERE ds=? AND "
        "pe=? AND ou=?", (DS_FORM1, other, CLINIC)).fetchone())
    assert hub_reg is not None and hub_reg["sync_state"] == "synced"
    assert hub_reg["origin"] == "national" and hub_reg["base"]


async def test_national_changes_come_down_and_equal_values_are_no_conflict(
        pair: Pair, http: aiohttp.ClientSession) -> None:
    a, b = first_values(2, ous=[CLINIC])
    ka = (a["dataElement"], PERIOD, CLINIC, a["categoryOptionCombo"], AOC)
    kb = (b["dataElement"], PERIOD, CLINIC, b["categoryOptionCombo"], AOC)
    await national_post(http, pair.national, [a, b])
    # the hub independently entered the same value for b: equal, so not a conflict
    await hub_edit(pair.hub, [b])
    r = await pair.cycle()
    assert r.ok and r.pull.conflicts == 0
    ra = row(pair.hub, ka)
    assert ra["value"] == a["value"] and ra["origin"] == "national" and ra["sync_state"] == "synced"
    nat_lu = pair.national.store.read_sync(lambda c: c.execute(
        "SELECT last_updated FROM datavalue WHERE de=? AND pe=? AND ou=? AND coc=? AND aoc=?",
        ka).fetchone()[0])
    assert ra["base"] == nat_lu  # base = national's lastUpdated
    assert row(pair.hub, kb)["sync_state"] == "synced"
    # deleted at national: the tombstone comes down too
    await national_post(http, pair.national, [as_value(ka, None)])
    await pair.cycle()
    assert row(pair.hub, ka)["deleted"] == 1 and row(pair.hub, ka)["sync_state"] == "synced"
    audit = pair.hub.read_sync(lambda c: c.execute(
        "SELECT via FROM audit WHERE entity='datavalue' AND key=? ORDER BY id DESC",
        ("|".join(ka),)).fetchone())
    assert audit["via"] == "sync"


async def test_stand_in_accepts_gzip_request_bodies(national: RunningHub,
                                                    http: aiohttp.ClientSession) -> None:
    """aiohttp decompresses ``Content-Encoding: gzip`` request bodies before the handler
    reads them: the national stand-in imports a gzip POST like a plain one."""
    v = first_values(1)[0]
    body = gzip.compress(orjson.dumps({"dataValues": [v]}))
    async with http.post(national.api("dataValueSets"), data=body, headers={
            **basic("statistician"), "Content-Type": "application/json",
            "Content-Encoding": "gzip", "Accept-Encoding": "gzip"}) as resp:
        assert resp.status == 200, await resp.text()
        reply = await resp.json()
        assert resp.headers.get("Content-Encoding") == "gzip"  # and replies are gzipped
    assert reply["response"]["importCount"]["imported"] == 1
    key = (v["dataElement"], v["period"], v["orgUnit"], v["categoryOptionCombo"],
           v["attributeOptionCombo"])
    assert _national_values(national)[key] == v["value"]
    # LAN replies of a hub are not compressed by this (national-only) behaviour
    assert json.loads(json.dumps(reply))["httpStatusCode"] == 200


async def test_the_event_log_says_what_happened_in_the_reader_s_language(
        demo_template: dict[str, Path], national: RunningHub, tmp_path: Path) -> None:
    """Each event carries what it says ({"code": ...} and its numbers) beside the English
    line for the logs: the status page words it in Bangla without reading the English."""
    from appliance.hub.events import event_words
    from appliance.i18n import Tr
    from appliance.store.synclog import event_log

    data_dir = tmp_path / "hub"
    store = Store(copy_db(demo_template["hub"], data_dir))
    await hub_edit(store, first_values(40))
    dead = SyncEngine(store, sync_config(data_dir, f"http://127.0.0.1:{free_port()}"))
    dead.client.retries = 1
    dead.client.backoff_base = 0.01
    assert not (await dead.cycle("timer")).ok
    await dead.close()
    engine = SyncEngine(store, sync_config(data_dir, national.url))
    assert (await engine.cycle("modem")).ok
    await engine.close()
    synced, failed = store.read_sync(lambda c: event_log(c, 20))[0], \
        [e for e in store.read_sync(lambda c: event_log(c, 20)) if e["level"] == "error"][0]
    store.close()
    assert failed["data"] == {"code": "failed", "cause": "link"}
    assert synced["data"]["code"] == "synced" and synced["data"]["sent"] == 40
    assert synced["data"]["left"] == 0

    bn = Tr("bn", "bengali")
    words, details = event_words(failed, bn)
    assert words == "জাতীয় সার্ভারের সাথে সংযোগ নেই; হাব সব তথ্য সংরক্ষণ করে রাখছে এবং আবার চেষ্টা করবে।"
    assert "cannot reach national" in details  # the worker's own line, for the IT focal point
    words, _ = event_words(synced, bn)
    assert words.startswith("জাতীয় সার্ভারের সাথে সিঙ্ক হয়েছে।") and "৪০" in words, words
    assert not any(c.isascii() and c.isalpha() for c in words), words
    # an event from before there were codes is shown as the worker wrote it
    old = {"kind": "push", "level": "warning", "message": "chunk of 9 lost; retrying",
           "data": None}
    assert event_words(old, bn)[0].endswith(": chunk of 9 lost; retrying")
