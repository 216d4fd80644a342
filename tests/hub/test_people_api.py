"""The hub's API behind the register pages, on a real demo hub: program rules run for a
form (``POST /api/hub/rules``), a person's sync states, and the weekly lists with the due
and overdue visits of the demo history (seeded relative to 2026-11-15)."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from appliance import demo
from tests.conftest import ADMIN, CHCP, RunningHub
from tests.hub.cells import cells
from tests.hub.tracker_data import registers, registration

C = cells()
R = registers()
HOME, OTHER, UHC = C.chcp_clinic, C.other_clinic, C.uhc
REF = "2026-11-15"


def de(code: str) -> str:
    return next(d["id"] for d in R.doc["dataElements"] if d.get("code") == code)


async def rules(http: aiohttp.ClientSession, hub: RunningHub, body: dict[str, Any],
                auth: Any = CHCP) -> tuple[int, dict[str, Any]]:
    async with http.post(hub.api("hub/rules"), json=body, headers=auth) as r:
        return r.status, await r.json()


async def test_rules_for_a_visit_hide_warn_and_assign(hub: RunningHub,
                                                      http: aiohttp.ClientSession) -> None:
    u5 = R.program("BD_U5")
    visit = R.stage("BD_U5", "visit")
    status, out = await rules(http, hub, {
        "program": u5["id"], "programStage": visit["id"], "eventDate": "2026-11-20",
        "attributes": {R.attr("BD_DOB"): "2025-09-20"},
        "dataValues": {de("BD_U5_MUAC"): "110", de("BD_U5_REFERRED"): "false"}})
    assert status == 200 and out["errors"] == []
    by = {(e["action"], e.get("dataElement")): e for e in out["effects"]}
    assert ("HIDEFIELD", de("BD_U5_REFERRED_TO")) in by
    assert "severe acute malnutrition" in by[("SHOWWARNING", de("BD_U5_MUAC"))]["content"]
    assert by[("ASSIGN", de("BD_U5_AGE_MONTHS"))]["value"] == "14"
    status, out = await rules(http, hub, {
        "program": u5["id"], "programStage": visit["id"], "eventDate": "2026-11-20",
        "dataValues": {de("BD_U5_WEIGHT"): "55", de("BD_U5_REFERRED"): "true"}})
    actions = [(e["action"], e.get("dataElement")) for e in out["effects"]]
    assert ("SHOWERROR", de("BD_U5_WEIGHT")) in actions
    assert ("HIDEFIELD", de("BD_U5_REFERRED_TO")) not in actions


async def test_rules_on_the_enrolment_form(hub: RunningHub, http: aiohttp.ClientSession) -> None:
    status, out = await rules(http, hub, {
        "program": R.program("BD_MATERNAL")["id"], "enrollmentDate": REF,
        "incidentDate": "2026-08-01", "attributes": {R.attr("BD_AGE_YEARS"): "16"}})
    assert status == 200
    assert [e["action"] for e in out["effects"]] == ["SHOWWARNING"]
    assert "under 18" in out["effects"][0]["content"]


async def test_rules_read_the_enrollments_other_events(hub: RunningHub,
                                                       http: aiohttp.ClientSession) -> None:
    body = registration(HOME)
    async with http.post(hub.api("tracker"), json=body, params={"async": "false"},
                         headers=CHCP) as r:
        assert r.status == 200, await r.text()
    enr = body["enrollments"][0]["enrollment"]
    status, out = await rules(http, hub, {"program": R.program("BD_MATERNAL")["id"],
                                          "enrollment": enr,
                                          "programStage": R.stage("BD_MATERNAL", "ANC")["id"]})
    assert status == 200 and out["errors"] == []


@pytest.mark.parametrize("body, status, message", [
    ({}, 400, "program"),
    ({"program": "AbCdEfGhIj1"}, 400, "Program does not exist"),
    ({"program": "@maternal"}, 400, "Program does not exist"),
    ({"program": "P", "attributes": []}, 400, "Program does not exist"),
    (["not", "an", "object"], 400, "program"),
])
async def test_rules_bad_input(hub: RunningHub, http: aiohttp.ClientSession,
                               body: Any, status: int, message: str) -> None:
    got, out = await rules(http, hub, body)
    assert got == status and message in out["message"] and out["httpStatusCode"] == status


@pytest.mark.parametrize("extra, message", [
    ({"attributes": ["x"]}, "attributes"),
    ({"dataValues": {"a": {"nested": 1}}}, "dataValues.a"),
    ({"eventDate": "next tuesday"}, "eventDate"),
    ({"programStage": "AbCdEfGhIj1"}, "not in program"),
    ({"enrollment": 7}, "enrollment"),
])
async def test_rules_bad_fields(hub: RunningHub, http: aiohttp.ClientSession,
                                extra: dict[str, Any], message: str) -> None:
    got, out = await rules(http, hub, {"program": R.program("BD_U5")["id"], **extra})
    assert got == 400 and message in out["message"]


async def test_rules_need_login(hub: RunningHub, http: aiohttp.ClientSession) -> None:
    async with http.post(hub.api("hub/rules"), json={"program": R.program("BD_U5")["id"]}) as r:
        assert r.status == 401


async def get_list(http: aiohttp.ClientSession, hub: RunningHub, name: str,
                   auth: Any = CHCP, **params: str) -> tuple[int, dict[str, Any]]:
    async with http.get(hub.api(f"hub/lists/{name}"), params=params, headers=auth) as r:
        return r.status, await r.json()


async def test_weekly_lists_of_the_clinic(hub: RunningHub, http: aiohttp.ClientSession) -> None:
    status, preg = await get_list(http, hub, "pregnant", date=REF)
    assert status == 200 and preg["orgUnit"] == HOME and preg["people"]
    assert all(p["orgUnit"] == HOME and p["attributes"].get("BD_NAME_BN") for p in preg["people"])
    assert len({p["trackedEntity"] for p in preg["people"]}) == len(preg["people"])
    assert all(0 <= p["weeks"] <= 52 for p in preg["people"])
    status, kids = await get_list(http, hub, "children", date=REF)
    assert status == 200 and kids["people"]
    tes = [p["trackedEntity"] for p in kids["people"]]
    assert len(tes) == len(set(tes))  # once each, even when on both child registers
    assert all(p["ageMonths"] is None or p["ageMonths"] < 60 for p in kids["people"])


async def test_due_list_has_overdue_and_due_visits_with_phones(
        hub: RunningHub, http: aiohttp.ClientSession) -> None:
    status, due = await get_list(http, hub, "due", date=REF)
    assert status == 200 and due["weekEnds"] == "2026-11-21"
    overdue = [v for v in due["visits"] if v["status"] == "overdue"]
    soon = [v for v in due["visits"] if v["status"] == "due"]
    assert overdue and soon
    assert all(v["daysOverdue"] > 0 and v["dueDate"] < REF for v in overdue)
    assert all(REF <= v["dueDate"] <= "2026-11-21" for v in soon)
    assert {v["programName"] for v in overdue} >= {"Maternal register", "Child health (EPI)"}
    assert sum(1 for v in overdue if v["attributes"].get("BD_PHONE")) > len(overdue) // 2
    # the scheduled events of the history are there, with their own due dates
    ev = next(v for v in overdue if v["event"])
    sched = hub.store.read_sync(lambda c: c.execute(
        "SELECT status, substr(scheduled_at, 1, 10) FROM event WHERE uid=?",
        (ev["event"],)).fetchone())
    assert tuple(sched) == ("SCHEDULE", ev["dueDate"])
    # a day later each overdue visit is a day more overdue
    _, later = await get_list(http, hub, "due", date="2026-11-16")
    again = {(v["enrollment"], v["programStage"], v["dueDate"]): v for v in later["visits"]}
    for v in overdue:
        assert again[(v["enrollment"], v["programStage"], v["dueDate"])]["daysOverdue"] == \
            v["daysOverdue"] + 1


async def test_a_referral_moves_the_person_to_the_uhcs_list(
        hub: RunningHub, http: aiohttp.ClientSession) -> None:
    body = registration(HOME)
    async with http.post(hub.api("tracker"), json=body, params={"async": "false"},
                         headers=CHCP) as r:
        assert r.status == 200
    te = body["trackedEntities"][0]["trackedEntity"]

    async def on_list(ou: str) -> bool:
        status, out = await get_list(http, hub, "pregnant", auth=ADMIN, orgUnit=ou)
        assert status == 200
        return te in {p["trackedEntity"] for p in out["people"]}
    assert await on_list(HOME) and not await on_list(UHC)
    async with http.put(hub.api("tracker/ownership/transfer"), headers=CHCP, params={
            "trackedEntity": te, "program": R.program("BD_MATERNAL")["id"], "ou": UHC}) as r:
        assert r.status == 200
    assert not await on_list(HOME) and await on_list(UHC)


@pytest.mark.parametrize("name, params, status", [
    ("nope", {}, 404), ("due", {"date": "15/11/2026"}, 400),
    ("due", {"orgUnit": "AbCdEfGhIj1"}, 400), ("pregnant", {"orgUnit": "x" * 300}, 400),
])
async def test_list_bad_input(hub: RunningHub, http: aiohttp.ClientSession, name: str,
                              params: dict[str, str], status: int) -> None:
    got, out = await get_list(http, hub, name, **params)
    assert got == status and out["httpStatusCode"] == status


async def test_superuser_lists_need_an_org_unit(hub: RunningHub,
                                                http: aiohttp.ClientSession) -> None:
    got, out = await get_list(http, hub, "due", auth=ADMIN)
    assert got in (200, 400)
    if got == 400:
        assert "orgUnit" in out["message"]
    got, out = await get_list(http, hub, "due", auth=ADMIN, orgUnit=demo.RAMU_UID)
    assert got == 200 and {v["orgUnit"] for v in out["visits"]} > {HOME}


async def test_sync_states_of_a_new_person(hub: RunningHub, http: aiohttp.ClientSession) -> None:
    body = registration(HOME)
    body["events"] = []
    async with http.post(hub.api("tracker"), json=body, params={"async": "false"},
                         headers=CHCP) as r:
        assert r.status == 200
    te = body["trackedEntities"][0]["trackedEntity"]
    async with http.get(hub.api(f"hub/people/{te}/syncStates"), headers=CHCP) as r:
        states = await r.json()
    assert states["trackedEntity"] == "pending"
    assert set(states["attributes"].values()) == {"pending"}
    assert list(states["enrollments"]) == [body["enrollments"][0]["enrollment"]]
    hub.store.write_sync(lambda tx: tx.execute(
        "UPDATE tracked_entity SET sync_state='synced' WHERE uid=?", (te,)))
    hub.store.write_sync(lambda tx: tx.execute(
        "UPDATE te_attribute SET sync_state='synced' WHERE te=?", (te,)))
    async with http.get(hub.api(f"hub/people/{te}/syncStates"), headers=CHCP) as r:
        assert (await r.json())["trackedEntity"] == "synced"
