"""Approvals come down with the data: national approves a clinic's form, the next cycle
locks it at the hub (its LAN API refuses edits with E7642 before anything is pushed, its
data entry page says why), national unapproves and the hub opens it again. Values a CHCP
entered before the approval came down stay on the hub, refused with national's reason.

Real components: the national stand-in on a real port, the hub's SQLite file, the hub's
LAN server; the demo's Form-1 is given an approval workflow at national first, as
national's metadata team would."""

from __future__ import annotations

from typing import Any

import aiohttp

from appliance import demo

from .conftest import (
    AOC,
    CHCP_FORM,
    CLINIC,
    DS_FORM1,
    RAMU,
    Pair,
    as_value,
    basic,
    hub_app,
    national_post,
    this_month,
)

WF = "WfCcMonthly"  # the CC forms' approval workflow at national (a made-up uid)


async def _give_form1_a_workflow(pair: Pair, http: aiohttp.ClientSession) -> None:
    async with http.post(pair.national.api("metadata"), headers=basic("dghs"), json={
            "dataSets": [{"id": DS_FORM1, "workflow": {"id": WF}}]}) as r:
        assert r.status == 200, await r.text()
    r = await pair.cycle()
    assert r.ok, r.error


async def _national(http: aiohttp.ClientSession, pair: Pair, method: str, ou: str,
                    pe: str, **extra: str) -> None:
    async with http.request(method, pair.national.api("dataApprovals"), headers=basic("dghs"),
                            params={"wf": WF, "pe": pe, "ou": ou, **extra}) as r:
        assert r.status == 204, await r.text()


def _locks(pair: Pair) -> dict[tuple[str, ...], str | None]:
    return pair.hub.read_sync(lambda c: {tuple(r[:4]): r[4] for r in c.execute(
        "SELECT ds, pe, ou, aoc, state FROM data_approval")})


async def _post_form(http: aiohttp.ClientSession, hub: Any, form: dict[str, Any]
                     ) -> tuple[int, dict[str, Any]]:
    async with http.post(hub.api("dataValueSets"), json=form, headers=basic("chcp")) as r:
        return r.status, await r.json()


async def _entry(http: aiohttp.ClientSession, hub: Any, pe: str) -> dict[str, Any]:
    async with http.get(hub.api("dataEntry/dataValues"), headers=basic("chcp"),
                        params={"ds": DS_FORM1, "pe": pe, "ou": CLINIC}) as r:
        assert r.status == 200, await r.text()
        return await r.json()  # type: ignore[no-any-return]


async def test_national_approval_locks_the_form_at_the_hub_and_unapproval_opens_it(
        pair: Pair, http: aiohttp.ClientSession) -> None:
    pe = this_month()
    await _give_form1_a_workflow(pair, http)
    # nothing approved yet: one cheap request a cycle, for the open periods
    r = await pair.cycle("timer")
    assert r.ok and r.approvals.requests == 1 and r.approvals.locked == 0
    assert _locks(pair) == {}
    form = CHCP_FORM(pe)
    # the LAN server runs all along, as on the hub: it learns of the lock from the store
    async with hub_app(pair.hub, pair.data_dir) as hub:
        assert (await _entry(http, hub, pe))["lockStatus"] == "OPEN"
        await _national(http, pair, "POST", CLINIC, pe)
        # a timer cycle (not a person's): this month is open for entry, so it is asked about
        r = await pair.cycle("timer")
        assert r.ok, r.error
        assert r.approvals.locked == 1 and r.push.chunks == 0
        assert _locks(pair) == {(DS_FORM1, pe, CLINIC, AOC): "APPROVED_HERE"}

        # the LAN API refuses the form as national would: E7642, nothing stored or queued
        status, body = await _post_form(http, hub, form)
        assert status == 409, body
        codes = {c["errorCode"] for c in body["response"]["conflicts"]}
        assert codes == {"E7642"}, body
        assert body["response"]["importCount"]["imported"] == 0
        assert pair.hub.read_sync(lambda c: c.execute(
            "SELECT count(*) FROM datavalue WHERE ou=? AND pe=?", (CLINIC, pe)).fetchone()[0]) == 0
        # what the data entry page reads: approved by national, and why
        entry = await _entry(http, hub, pe)
        assert entry["lockStatus"] == "APPROVED"
        assert entry["hubApproval"]["national"] is True
        assert entry["hubApproval"]["state"] == "APPROVED_HERE"
        # and what DHIS2 clients (the Android app) ask the hub
        async with http.get(hub.api("dataApprovals/multiple"), headers=basic("chcp"), params={
                "wf": WF, "pe": pe, "ou": CLINIC, "fields": "wf,ou,pe,aoc,state"}) as resp:
            (item,) = await resp.json()
        assert {k: item[k] for k in ("wf", "ou", "pe", "aoc", "state")} == {
            "wf": WF, "ou": CLINIC, "pe": pe, "aoc": AOC, "state": "APPROVED_HERE"}
        assert item["permissions"]["mayApprove"] is False  # a CHCP's
        # another form of the clinic (no workflow) is not locked
        other = next(d["id"] for d in demo.hub()["dataSets"]
                     if d["id"] != DS_FORM1 and d["name"].startswith("CC Form"))
        async with http.get(hub.api("dataEntry/dataValues"), headers=basic("chcp"),
                            params={"ds": other, "pe": pe, "ou": CLINIC}) as resp:
            assert (await resp.json())["lockStatus"] == "OPEN"

        # national unapproves: the next cycle takes the lock back, and the form saves
        await _national(http, pair, "DELETE", CLINIC, pe)
        r = await pair.cycle("timer")
        assert r.ok and r.approvals.unlocked == 1
        assert _locks(pair) == {}
        status, body = await _post_form(http, hub, form)
        assert status == 200 and body["response"]["importCount"]["imported"] > 0, body
        assert (await _entry(http, hub, pe))["lockStatus"] == "OPEN"


async def test_an_approval_above_the_clinic_locks_it_at_national_and_at_the_hub(
        pair: Pair, http: aiohttp.ClientSession) -> None:
    """DHIS2 locks a unit's data once a unit above it is approved: national approves the
    whole upazila, the hub's clinics come down APPROVED_ABOVE."""
    pe = this_month()
    await _give_form1_a_workflow(pair, http)
    await _national(http, pair, "POST", RAMU, pe)
    # national itself now refuses a clinic's value (the stand-in as DHIS2)
    value = CHCP_FORM(pe)["dataValues"][0]
    body = await national_post(http, pair.national, [{**value, "orgUnit": CLINIC,
                                                      "period": pe}])
    assert [c["errorCode"] for c in body["response"]["conflicts"]] == ["E7642"]
    r = await pair.cycle("timer")
    assert r.ok, r.error
    locks = _locks(pair)
    assert locks[(DS_FORM1, pe, CLINIC, AOC)] == "APPROVED_ABOVE"
    assert len(locks) == r.approvals.locked > 20  # every clinic the form is assigned to
    async with hub_app(pair.hub, pair.data_dir) as hub:
        entry = await _entry(http, hub, pe)
        assert entry["lockStatus"] == "APPROVED"
        assert entry["hubApproval"]["state"] == "APPROVED_ABOVE"


async def test_offline_edits_to_a_form_approved_meanwhile_are_kept_and_refused_with_why(
        pair: Pair, http: aiohttp.ClientSession) -> None:
    pe = this_month()
    await _give_form1_a_workflow(pair, http)
    form = CHCP_FORM(pe)
    # the CHCP enters the form at the hub while the link to national is down...
    async with hub_app(pair.hub, pair.data_dir) as hub:
        status, body = await _post_form(http, hub, form)
        assert status == 200, body
    entered = pair.hub.read_sync(lambda c: {r[0] + r[1]: r[2] for r in c.execute(
        "SELECT de, coc, value FROM datavalue WHERE ou=? AND pe=? AND sync_state='pending'",
        (CLINIC, pe))})
    n = len(entered)
    assert n > 100
    # ...and national approves the month meanwhile, after keying one value of its own
    first = form["dataValues"][0]
    theirs = as_value((first["dataElement"], pe, CLINIC, first["categoryOptionCombo"], AOC),
                      "8" if first["value"] == "7" else "7")
    await national_post(http, pair.national, [theirs])
    await _national(http, pair, "POST", CLINIC, pe)

    r = await pair.cycle()  # the link is back
    assert r.ok, r.error
    assert r.approvals.locked == 1  # the lock came down before the push...
    assert r.pull.conflicts == 1 and r.push.rejected == n - 1  # ...which national refused
    # nothing of it reached national...
    at_national = pair.national.store.read_sync(lambda c: c.execute(
        "SELECT count(*) FROM datavalue WHERE ou=? AND pe=? AND deleted=0",
        (CLINIC, pe)).fetchone()[0])
    assert at_national == 1
    # ...and nothing is lost at the hub: each value kept as entered, refused, with why
    kept = pair.hub.read_sync(lambda c: {r[0] + r[1]: (r[2], r[3]) for r in c.execute(
        "SELECT de, coc, value, sync_state FROM datavalue WHERE ou=? AND pe=?", (CLINIC, pe))})
    mine = first["dataElement"] + first["categoryOptionCombo"]
    assert {k: v for k, v in kept.items() if k != mine} == {
        k: (v, "rejected") for k, v in entered.items() if k != mine}
    # the value national had keyed too: national's is kept (it is the later edit, and the
    # month is approved there), the CHCP's is in the conflict log with both sides
    assert kept[mine] == (theirs["value"], "synced")
    conflict = pair.hub.read_sync(lambda c: c.execute(
        "SELECT hub_value, national_value, winner FROM sync_conflict").fetchone())
    assert tuple(conflict) == (entered[mine], theirs["value"], "national")
    async with hub_app(pair.hub, pair.data_dir) as hub:
        async with http.get(hub.api("hub/rejections"), headers=basic("chcp")) as resp:
            rej = (await resp.json())["rejections"]
        assert len([x for x in rej if x["errorCode"] == "E7642" and x["message"]]) == n - 1
        entry = await _entry(http, hub, pe)
        assert entry["lockStatus"] == "APPROVED"
        states = [v["hubSync"] for v in entry["dataValues"]]
        assert sum(s["state"] == "rejected" and s["errorCode"] == "E7642" and bool(s["message"])
                   for s in states) == n - 1
        assert entry["hubSync"]["rejected"] == n - 1
    # and they are not sent again, cycle after cycle
    r = await pair.cycle()
    assert r.ok and r.push.chunks == 0 and r.pending == 0
