"""The tracker API on a real hub: import (job and synchronous), reads, DHIS2's E1xxx
refusals one by one, atomic modes, dry runs, reserved values, referrals and potential
duplicates. Records are written by the CHCP at their own clinic unless a test says so."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from appliance import demo
from appliance.dhis2.uid import generate_uid
from tests.conftest import ADMIN, CHCP, RunningHub
from tests.hub.cells import cells
from tests.hub.tracker_data import enrollment, event, person, registers, registration

C = cells()
R = registers()
HOME, OTHER, UHC = C.chcp_clinic, C.other_clinic, C.uhc
SYNC = {"async": "false"}
Payload = dict[str, Any]


async def post(http: aiohttp.ClientSession, hub: RunningHub, body: Payload, auth: Any = CHCP,
               **params: str) -> tuple[int, Payload]:
    async with http.post(hub.api("tracker"), json=body, params={**SYNC, **params},
                         headers=auth) as r:
        return r.status, await r.json()


def codes(report: Payload) -> list[str]:
    return [e["errorCode"] for e in report["validationReport"]["errorReports"]]


def stored(hub: RunningHub, table: str) -> int:
    """Rows the tests wrote (the demo's seeded register history is national's)."""
    return int(hub.store.read_sync(lambda c: c.execute(
        f"SELECT count(*) FROM {table} WHERE origin != 'national'").fetchone()[0]))  # noqa: S608


async def test_the_sdk_flow_job_then_report_then_read_back(
        hub: RunningHub, http: aiohttp.ClientSession) -> None:
    body = registration(HOME)
    async with http.post(hub.api("tracker"), json=body, headers=CHCP,
                         params={"atomicMode": "OBJECT"}) as r:
        job = await r.json()
    assert r.status == 200 and job["response"]["responseType"] == "TrackerJob"
    jid = job["response"]["id"]
    assert job["response"]["location"].endswith(f"/api/tracker/jobs/{jid}")
    async with http.get(hub.api(f"tracker/jobs/{jid}"), headers=CHCP) as r:
        notes = await r.json()
    assert r.status == 200 and notes[0]["completed"] is True
    async with http.get(hub.api(f"tracker/jobs/{jid}"), headers=ADMIN) as r:
        assert r.status == 404  # a job's report is its owner's
    async with http.get(hub.api(f"tracker/jobs/{jid}/report"), headers=CHCP) as r:
        report = await r.json()
    assert report["status"] == "OK"
    assert report["stats"] == {"created": 3, "updated": 0, "deleted": 0, "ignored": 0, "total": 3}
    tmap = report["bundleReport"]["typeReportMap"]
    assert set(tmap) == {"TRACKED_ENTITY", "ENROLLMENT", "EVENT", "RELATIONSHIP"}
    assert [o["uid"] for o in tmap["EVENT"]["objectReports"]] == [body["events"][0]["event"]]
    te = body["trackedEntities"][0]["trackedEntity"]
    async with http.get(hub.api(f"tracker/trackedEntities/{te}"), headers=CHCP,
                        params={"program": R.program("BD_MATERNAL")["id"]}) as r:
        doc = await r.json()
    assert r.status == 200 and doc["trackedEntity"] == te and doc["orgUnit"] == HOME
    assert {a["attribute"]: a["value"] for a in doc["attributes"]}[R.attr("BD_NAME_EN")] == \
        "Fatema Begum"
    assert [e["event"] for e in doc["enrollments"][0]["events"]] == [body["events"][0]["event"]]
    mine = (te, body["enrollments"][0]["enrollment"], body["events"][0]["event"])
    states = hub.store.read_sync(lambda c: [r[0] for r in c.execute(
        "SELECT sync_state FROM tracked_entity WHERE uid IN (?,?,?) UNION ALL SELECT "
        "sync_state FROM enrollment WHERE uid IN (?,?,?) UNION ALL SELECT sync_state FROM "
        "event WHERE uid IN (?,?,?)", mine * 3)])
    assert states == ["pending"] * 3  # queued for national
    audited = hub.store.read_sync(lambda c: c.execute(
        "SELECT count(*) FROM audit WHERE username='chcp' AND entity IN "
        "('tracked_entity','enrollment','event','te_attribute')").fetchone()[0])
    assert audited >= 3


async def test_reads_page_and_filter_by_attribute(hub: RunningHub,
                                                  http: aiohttp.ClientSession) -> None:
    for name in ("Rokeya Begum", "Salma Akter", "Rokeya Khatun"):
        status, _ = await post(http, hub, registration(HOME, name=name))
        assert status == 200
    params = {"program": R.program("BD_MATERNAL")["id"], "orgUnits": HOME,
              "filter": f"{R.attr('BD_NAME_EN')}:like:rokeya", "fields": "*",
              "totalPages": "true"}
    async with http.get(hub.api("tracker/trackedEntities"), headers=CHCP, params=params) as r:
        body = await r.json()
    assert r.status == 200 and body["pager"]["total"] == 2
    assert len(body["trackedEntities"]) == 2
    async with http.get(hub.api("tracker/events"), headers=CHCP,
                        params={"orgUnit": HOME, "pageSize": "2"}) as r:
        page = await r.json()
    assert r.status == 200 and len(page["events"]) == 2 and page["pager"]["pageSize"] == 2


# -- the refusals, one E-code each -------------------------------------------------------------
def _first(kind: str) -> Callable[[Payload], dict[str, Any]]:
    return lambda p: p[kind][0]


def _set(kind: str, **kw: Any) -> Callable[[Payload], None]:
    return lambda p: p[kind][0].update(kw)


def _attr(code: str, value: Any) -> Callable[[Payload], None]:
    def go(p: Payload) -> None:
        p["trackedEntities"][0]["attributes"].append({"attribute": R.attr(code), "value": value})
    return go


def _drop_attr(code: str) -> Callable[[Payload], None]:
    def go(p: Payload) -> None:
        te = p["trackedEntities"][0]
        te["attributes"] = [a for a in te["attributes"] if a["attribute"] != R.attr(code)]
    return go


def _value(de: str, value: Any) -> Callable[[Payload], None]:
    return lambda p: p["events"][0]["dataValues"].append({"dataElement": de, "value": value})


def _second_enrollment(program: str, **kw: Any) -> Callable[[Payload], None]:
    def go(p: Payload) -> None:
        p["events"] = []
        te = p["trackedEntities"][0]["trackedEntity"]
        first = enrollment(te, HOME, program)
        p["enrollments"] = [first, {**enrollment(te, HOME, program), **kw}]
    return go


def _second_event(stage: str) -> Callable[[Payload], None]:
    def go(p: Payload) -> None:
        enr = p["enrollments"][0]
        p["events"] = [event(enr, stage), event(enr, stage)]
    return go


def _epi(p: Payload) -> None:
    te = p["trackedEntities"][0]["trackedEntity"]
    p["enrollments"] = [enrollment(te, HOME, "BD_EPI")]
    p["events"] = []


ANC = R.stage("BD_MATERNAL", "ANC")
GA = R.element(ANC, "INTEGER_POSITIVE")
CASES: dict[str, tuple[Callable[[Payload], None], str]] = {
    "E1000 capture scope": (_set("trackedEntities", orgUnit=OTHER), "E1000"),
    "E1005 unknown type": (_set("trackedEntities", trackedEntityType="AbCdEfGhIj1"), "E1005"),
    "E1049 unknown org unit": (_set("trackedEntities", orgUnit="AbCdEfGhIj1"), "E1049"),
    "E1006 unknown attribute": (lambda p: p["trackedEntities"][0]["attributes"].append(
        {"attribute": "AbCdEfGhIj1", "value": "x"}), "E1006"),
    "E1007 value type": (_attr("BD_AGE_YEARS", "twenty"), "E1007"),
    "E1125 option code": (_attr("BD_SEX", "Martian"), "E1125"),
    "E1048 uid format": (_set("trackedEntities", trackedEntity="not-a-uid"), "E1048"),
    "E1018 mandatory program attribute": (_drop_attr("BD_RELATION_NAME"), "E1018"),
    "E1069 unknown program": (_set("enrollments", program="AbCdEfGhIj1"), "E1069"),
    "E1070 enrollment org unit": (_set("enrollments", orgUnit="AbCdEfGhIj1"), "E1070"),
    "E1041 program not at org unit": (_set("enrollments", orgUnit=demo.RAMU_UID), "E1041"),
    "E1068 unknown tracked entity": (_set("enrollments", trackedEntity="AbCdEfGhIj1"), "E1068"),
    "E1025 enrolledAt": (_set("enrollments", enrolledAt="yesterday"), "E1025"),
    "E1020 future enrollment": (_set("enrollments", enrolledAt="2099-01-01T00:00:00.000"),
                                "E1020"),
    "E1015 second active enrollment": (_second_enrollment("BD_MATERNAL"), "E1015"),
    "E1016 only enrol once": (_second_enrollment("BD_EPI", status="COMPLETED"), "E1016"),
    "E1013 unknown stage": (_set("events", programStage="AbCdEfGhIj1"), "E1013"),
    "E1089 stage of another program": (
        _set("events", programStage=R.stage("BD_U5", "")["id"]), "E1089"),
    "E1033 event without enrollment": (_set("events", enrollment=None), "E1033"),
    "E1031 occurredAt missing": (_set("events", occurredAt=None), "E1031"),
    "E1050 scheduledAt missing": (_set("events", status="SCHEDULE", occurredAt=None), "E1050"),
    "E1039 non-repeatable stage twice": (_second_event("Delivery"), "E1039"),
    "E1304 unknown data element": (_value("AbCdEfGhIj1", "1"), "E1304"),
    "E1305 data element of another stage": (_value(R.other_stage_element(ANC), "1"), "E1305"),
    "E1302 data value type": (_value(GA, "many"), "E1302"),
    "E1303 mandatory data element on completion": (_set("events", status="COMPLETED"), "E1303"),
    "E1029 event org unit not in program": (_set("events", orgUnit=demo.RAMU_UID), "E1029"),
    "E1011 event org unit unknown": (_set("events", orgUnit="AbCdEfGhIj1"), "E1011"),
    "E1054 attribute option combo of another combo": (
        _set("events", attributeOptionCombo=R.other_coc()), "E1054"),
}


@pytest.mark.parametrize("case", sorted(CASES))
async def test_each_refusal_has_dhis2s_code_and_stores_nothing(
        case: str, hub: RunningHub, http: aiohttp.ClientSession) -> None:
    mutate, code = CASES[case]
    body = registration(HOME)
    mutate(body)
    before = [stored(hub, t) for t in ("tracked_entity", "enrollment", "event")]
    status, report = await post(http, hub, body)
    assert status == 409 and report["status"] == "ERROR", report
    assert code in codes(report), report["validationReport"]
    assert [stored(hub, t) for t in ("tracked_entity", "enrollment", "event")] == before


async def test_existence_rules_per_strategy(hub: RunningHub, http: aiohttp.ClientSession) -> None:
    body = registration(HOME)
    assert (await post(http, hub, body))[0] == 200
    status, report = await post(http, hub, body, importStrategy="CREATE")
    assert status == 409 and {"E1002", "E1080", "E1030"} <= set(codes(report))
    fresh = registration(HOME)
    status, report = await post(http, hub, fresh, importStrategy="UPDATE")
    assert status == 409 and "E1063" in codes(report)
    status, report = await post(http, hub, {"trackedEntities": body["trackedEntities"]},
                                importStrategy="DELETE")
    assert status == 200 and report["stats"]["deleted"] == 1
    status, report = await post(http, hub, body)
    assert status == 409 and "E1114" in codes(report)  # deleted records stay deleted


async def test_unique_attribute_and_reserved_values(hub: RunningHub,
                                                    http: aiohttp.ClientSession) -> None:
    brn = R.attr("BD_BRN")
    async with http.get(hub.api(f"trackedEntityAttributes/{brn}/generateAndReserve"),
                        headers=CHCP, params={"numberToReserve": "5"}) as r:
        values = await r.json()
    assert r.status == 200 and len({v["value"] for v in values}) == 5
    assert all(v["value"].startswith("BRN-") and v["ownerUid"] == brn for v in values)
    first = values[0]["value"]
    assert (await post(http, hub, registration(HOME, brn=first)))[0] == 200
    status, report = await post(http, hub, registration(HOME, brn=first))
    assert status == 409 and codes(report) == ["E1064", "E5000", "E5000"]  # and its children
    async with http.get(hub.api(f"trackedEntityAttributes/{brn}/generateAndReserve"),
                        headers=CHCP, params={"numberToReserve": "5"}) as r:
        again = {v["value"] for v in await r.json()}
    assert not again & {v["value"] for v in values}  # never handed out twice


async def test_atomic_modes_and_dry_run(hub: RunningHub, http: aiohttp.ClientSession) -> None:
    good, bad = registration(HOME), registration(HOME)
    bad["trackedEntities"][0]["orgUnit"] = OTHER
    both = {k: good[k] + bad[k] for k in good}
    status, report = await post(http, hub, both)  # atomicMode=ALL: nothing
    assert status == 409 and stored(hub, "tracked_entity") == 0
    assert report["stats"]["created"] == 0
    status, report = await post(http, hub, both, atomicMode="OBJECT")
    assert status == 409 and report["stats"]["created"] == 3  # the good three are written
    assert sorted(codes(report)) == ["E1000", "E5000", "E5000"]
    assert stored(hub, "tracked_entity") == 1 and stored(hub, "event") == 1
    status, report = await post(http, hub, registration(HOME), dryRun="true")
    assert status == 200 and report["stats"]["created"] == 3
    assert stored(hub, "tracked_entity") == 1  # a dry run writes nothing


async def test_search_scope_is_the_upazila_capture_is_the_clinic(
        hub: RunningHub, http: aiohttp.ClientSession) -> None:
    admin_body = registration(OTHER)
    assert (await post(http, hub, admin_body, auth=ADMIN))[0] == 200
    te = admin_body["trackedEntities"][0]["trackedEntity"]
    async with http.get(hub.api("tracker/trackedEntities"), headers=CHCP,
                        params={"orgUnits": OTHER}) as r:
        found = await r.json()
    assert r.status == 200 and te in [t["trackedEntity"] for t in found["trackedEntities"]]
    assert {t["orgUnit"] for t in found["trackedEntities"]} == {OTHER}
    edit = copy.deepcopy(admin_body)
    edit["trackedEntities"][0]["attributes"] = [
        {"attribute": R.attr("BD_VILLAGE"), "value": "Elsewhere"}]
    status, report = await post(http, hub, {"trackedEntities": edit["trackedEntities"]})
    assert status == 409 and codes(report) == ["E1000"]
    outside = next(o["id"] for o in R.doc["organisationUnits"] if o.get("level") == 1)
    async with http.get(hub.api("tracker/trackedEntities"), headers=CHCP,
                        params={"orgUnits": outside}) as r:
        assert r.status == 403


async def test_referral_moves_ownership_and_write_access(
        hub: RunningHub, http: aiohttp.ClientSession) -> None:
    body = registration(HOME)
    assert (await post(http, hub, body))[0] == 200
    te = body["trackedEntities"][0]["trackedEntity"]
    program = R.program("BD_MATERNAL")["id"]
    async with http.put(hub.api("tracker/ownership/transfer"), headers=CHCP,
                        params={"trackedEntity": te, "program": program, "ou": UHC}) as r:
        assert r.status == 200, await r.text()
    owner = hub.store.read_sync(lambda c: c.execute(
        "SELECT org_unit, sync_state FROM program_owner WHERE te=?", (te,)).fetchone())
    assert tuple(owner) == (UHC, "pending")
    visit = event(body["enrollments"][0])
    status, report = await post(http, hub, {"events": [visit]})
    assert status == 409 and codes(report) == ["E1102"]  # the UHC owns the record now
    async with http.put(hub.api("tracker/ownership/transfer"), headers=CHCP,
                        params={"trackedEntity": te, "program": program, "ou": HOME}) as r:
        assert r.status == 403  # and only the UHC can send it back


async def test_potential_duplicates(hub: RunningHub, http: aiohttp.ClientSession) -> None:
    a, b = registration(HOME), registration(HOME)
    for body in (a, b):
        assert (await post(http, hub, body))[0] == 200
    pair = {"original": a["trackedEntities"][0]["trackedEntity"],
            "duplicate": b["trackedEntities"][0]["trackedEntity"],
            "reasons": ["same phone", "name sounds the same"]}
    async with http.post(hub.api("potentialDuplicates"), json=pair, headers=CHCP) as r:
        made = await r.json()
    assert r.status == 200 and made["status"] == "OPEN"
    swapped = {**pair, "original": pair["duplicate"], "duplicate": pair["original"]}
    for again in (pair, swapped):  # as DHIS2: one open flag per pair
        async with http.post(hub.api("potentialDuplicates"), json=again, headers=CHCP) as r:
            assert r.status == 409 and "already marked" in (await r.json())["message"]
    async with http.get(hub.api("potentialDuplicates"), headers=CHCP,
                        params={"trackedEntity": pair["duplicate"]}) as r:
        listed = (await r.json())["potentialDuplicates"]
    assert [d["id"] for d in listed] == [made["id"]]
    async with http.put(hub.api(f"potentialDuplicates/{made['id']}"), headers=CHCP,
                        params={"status": "INVALID"}) as r:
        assert r.status == 200
    async with http.put(hub.api(f"potentialDuplicates/{generate_uid()}"), headers=CHCP,
                        params={"status": "INVALID"}) as r:
        assert r.status == 404


async def test_an_event_without_attribute_option_combo_gets_the_default(
        hub: RunningHub, http: aiohttp.ClientSession) -> None:
    body = registration(HOME)
    assert "attributeOptionCombo" not in body["events"][0]
    assert (await post(http, hub, body))[0] == 200
    async with http.get(hub.api(f"tracker/events/{body['events'][0]['event']}"),
                        headers=CHCP) as r:
        assert (await r.json())["attributeOptionCombo"] == R.default_coc()


async def test_nested_payloads_are_flattened(hub: RunningHub,
                                             http: aiohttp.ClientSession) -> None:
    te = person(HOME)
    enr = enrollment(te["trackedEntity"], HOME)
    ev = event(enr)
    enr["events"] = [ev]
    te["enrollments"] = [enr]
    status, report = await post(http, hub, {"trackedEntities": [te]})
    assert status == 200 and report["stats"]["created"] == 3
    assert stored(hub, "event") == 1


async def test_relationships_read_by_item_and_uid_and_a_resend_is_a_warning(
        hub: RunningHub, http: aiohttp.ClientSession) -> None:
    mother, child = person(HOME, name="Mina Rani"), person(HOME, name="Baby Rani")
    rtype = next(t["id"] for t in demo.national()["relationshipTypes"]
                 if t["code"] == "BD_MOTHER_CHILD")
    link = {"relationship": generate_uid(), "relationshipType": rtype,
            "from": {"trackedEntity": {"trackedEntity": mother["trackedEntity"]}},
            "to": {"trackedEntity": {"trackedEntity": child["trackedEntity"]}}}
    status, report = await post(http, hub, {"trackedEntities": [mother, child],
                                            "relationships": [link]})
    assert status == 200 and report["stats"]["created"] == 3
    # the default reportMode (ERRORS) carries no warnings and no timings, as DHIS2's
    assert "warningReports" not in report["validationReport"] and "timingsStats" not in report
    for te in (mother, child):
        async with http.get(hub.api("tracker/relationships"), headers=CHCP,
                            params={"trackedEntity": te["trackedEntity"]}) as r:
            assert r.status == 200
            assert [x["relationship"] for x in (await r.json())["relationships"]] == \
                [link["relationship"]]
    async with http.get(hub.api(f"tracker/relationships/{link['relationship']}"),
                        headers=CHCP) as r:
        one = await r.json()
    assert r.status == 200 and one["to"]["trackedEntity"]["trackedEntity"] == \
        child["trackedEntity"]
    # sent again: relationships are never updated; DHIS2 ignores it with warning E4015
    status, report = await post(http, hub, {"relationships": [link]}, reportMode="WARNINGS")
    assert status == 200 and report["stats"]["ignored"] == 1
    assert [(w["errorCode"], w["uid"]) for w in report["validationReport"]["warningReports"]] \
        == [("E4015", link["relationship"])]
    status, report = await post(http, hub, {"relationships": [link]}, reportMode="FULL")
    assert "totalImport" in report["timingsStats"]["timers"]
    async with http.post(hub.api("tracker"), json={"relationships": [link]},
                         params={**SYNC, "reportMode": "SOME"}, headers=CHCP) as r:
        assert r.status == 400 and "reportMode" in (await r.json())["message"]


# -- scope, route by route (the route table classifies these routes as "tracker") ------------
OUTSIDE = next(o["id"] for o in demo.national()["organisationUnits"]
               if o.get("level") == 6 and not o.get("path", "").count(demo.RAMU_UID))
PROBES: dict[tuple[str, str], Callable[[RunningHub, aiohttp.ClientSession, Payload],
                                       Any]] = {}


def probe(method: str, path: str) -> Callable[[Any], Any]:
    def add(fn: Any) -> Any:
        PROBES[(method, path)] = fn
        return fn
    return add


@probe("POST", "/api/tracker")
async def _p_import(hub: RunningHub, http: aiohttp.ClientSession, planted: Payload) -> None:
    status, report = await post(http, hub, registration(OTHER))
    assert status == 409 and "E1000" in codes(report)


@probe("PUT", "/api/tracker/ownership/transfer")
async def _p_transfer(hub: RunningHub, http: aiohttp.ClientSession, planted: Payload) -> None:
    async with http.put(hub.api("tracker/ownership/transfer"), headers=CHCP, params={
            "trackedEntity": planted["trackedEntities"][0]["trackedEntity"],
            "program": R.program("BD_MATERNAL")["id"], "ou": HOME}) as r:
        assert r.status == 403


for _name in ("trackedEntities", "enrollments", "events"):
    @probe("GET", f"/api/tracker/{_name}")
    async def _p_list(hub: RunningHub, http: aiohttp.ClientSession, planted: Payload,
                      name: str = _name) -> None:
        for params in ({"orgUnits": OUTSIDE}, {"orgUnit": OUTSIDE},
                       {"orgUnits": OUTSIDE, "orgUnitMode": "DESCENDANTS"},
                       {"orgUnitMode": "ALL"}):
            async with http.get(hub.api(f"tracker/{name}"), headers=CHCP, params=params) as r:
                assert r.status in (400, 403), (name, params)

    @probe("GET", f"/api/tracker/{_name}/{{uid}}")
    async def _p_one(hub: RunningHub, http: aiohttp.ClientSession, planted: Payload,
                     name: str = _name) -> None:
        async with http.get(hub.api(f"tracker/{name}/{generate_uid()}"), headers=CHCP) as r:
            assert r.status == 404


@probe("GET", "/api/tracker/relationships")
async def _p_rel(hub: RunningHub, http: aiohttp.ClientSession, planted: Payload) -> None:
    for kind in ("trackedEntity", "enrollment", "event"):
        async with http.get(hub.api("tracker/relationships"), headers=CHCP,
                            params={kind: generate_uid()}) as r:
            assert r.status == 404, kind


@probe("GET", "/api/tracker/relationships/{uid}")
async def _p_rel_one(hub: RunningHub, http: aiohttp.ClientSession, planted: Payload) -> None:
    async with http.get(hub.api(f"tracker/relationships/{generate_uid()}"), headers=CHCP) as r:
        assert r.status == 404


@probe("GET", "/api/potentialDuplicates")
async def _p_dups(hub: RunningHub, http: aiohttp.ClientSession, planted: Payload) -> None:
    async with http.get(hub.api("potentialDuplicates"), headers=CHCP) as r:
        assert r.status == 200


@probe("POST", "/api/potentialDuplicates")
async def _p_dup_add(hub: RunningHub, http: aiohttp.ClientSession, planted: Payload) -> None:
    pair = {"original": planted["trackedEntities"][0]["trackedEntity"],
            "duplicate": generate_uid()}
    async with http.post(hub.api("potentialDuplicates"), json=pair, headers=CHCP) as r:
        assert r.status == 404


@probe("PUT", "/api/potentialDuplicates/{id}")
async def _p_dup_set(hub: RunningHub, http: aiohttp.ClientSession, planted: Payload) -> None:
    async with http.put(hub.api(f"potentialDuplicates/{generate_uid()}"), headers=CHCP,
                        params={"status": "MERGED"}) as r:
        assert r.status == 403  # merging needs F_TRACKED_ENTITY_MERGE


# -- search and the duplicate check ------------------------------------------------------------
async def test_search_finds_a_person_across_scripts_and_the_duplicate_check_explains(
        hub: RunningHub, http: aiohttp.ClientSession) -> None:
    body = registration(HOME, name="Fatema Begum")
    assert (await post(http, hub, body))[0] == 200
    te = body["trackedEntities"][0]["trackedEntity"]
    for q in ("ফাতেমা", "Fatima Bagum", "fatem begum"):
        async with http.get(hub.api("hub/people"), headers=CHCP, params={"q": q}) as r:
            people = (await r.json())["people"]
        assert r.status == 200 and te in [p["trackedEntity"] for p in people], q
    phone = next(a["value"] for a in body["trackedEntities"][0]["attributes"]
                 if a["attribute"] == R.attr("BD_PHONE"))
    form = {"BD_NAME_EN": "Fatima Begum", "BD_RELATION_NAME": "Abdul Karim",
            "BD_PHONE": phone, "BD_VILLAGE": "Merongloa", "BD_DOB": "1998-04-12"}
    async with http.post(hub.api("hub/people/duplicates"), headers=CHCP,
                         json={"attributes": form}) as r:
        found = await r.json()
    assert r.status == 200 and found["candidates"][0]["trackedEntity"] == te
    assert found["candidates"][0]["score"] >= found["threshold"]
    assert any("phone" in reason for reason in found["candidates"][0]["reasons"])
    # the same reasons in the CHCP's Bangla, for the registration page; English stays in
    # "reasons", which is what national is sent
    async with http.post(hub.api("hub/people/duplicates") + "?lang=bn&digits=bengali",
                         headers=CHCP, json={"attributes": form}) as r:
        bn = (await r.json())["candidates"][0]
    assert bn["reasons"] == found["candidates"][0]["reasons"]
    assert len(bn["said"]) == len(bn["reasons"])
    assert any(s.startswith("একই ফোন নম্বর") for s in bn["said"]), bn["said"]
    assert not any(c.isascii() and c.isalpha() for s in bn["said"]
                   for c in s.replace("Fatima Begum", "").replace("Abdul Karim", "")
                   .replace("Merongloa", "")), bn["said"]
    assert not any(c in "0123456789" for s in bn["said"] for c in s), bn["said"]
    async with http.post(hub.api("hub/people/duplicates"), headers=CHCP, json={"attributes": {
            "BD_NAME_EN": "Shirin Akter", "BD_PHONE": "01999999999", "BD_VILLAGE": "Ramu"}}) as r:
        assert (await r.json())["candidates"] == []


@probe("GET", "/api/hub/people")
async def _p_people(hub: RunningHub, http: aiohttp.ClientSession, planted: Payload) -> None:
    async with http.get(hub.api("hub/people"), headers=CHCP, params={"q": "x" * 201}) as r:
        assert r.status == 400


@probe("POST", "/api/hub/people/duplicates")
async def _p_people_dups(hub: RunningHub, http: aiohttp.ClientSession, planted: Payload) -> None:
    async with http.post(hub.api("hub/people/duplicates"), headers=CHCP,
                         json={"attributes": ["not", "a", "form"]}) as r:
        assert r.status == 400


@probe("POST", "/api/hub/rules")
async def _p_rules(hub: RunningHub, http: aiohttp.ClientSession, planted: Payload) -> None:
    program = R.program("BD_MATERNAL")["id"]
    async with http.post(hub.api("hub/rules"), headers=CHCP, json={
            "program": program, "enrollment": generate_uid()}) as r:
        assert r.status == 404  # another enrollment's events are read only in search scope


@probe("GET", "/api/hub/people/{uid}/syncStates")
async def _p_sync_states(hub: RunningHub, http: aiohttp.ClientSession, planted: Payload) -> None:
    async with http.get(hub.api(f"hub/people/{generate_uid()}/syncStates"), headers=CHCP) as r:
        assert r.status == 404
    te = planted["trackedEntities"][0]["trackedEntity"]  # the neighbouring clinic: searchable
    async with http.get(hub.api(f"hub/people/{te}/syncStates"), headers=CHCP) as r:
        assert r.status == 200 and (await r.json())["trackedEntity"] == "pending"


@probe("GET", "/api/hub/lists/{list}")
async def _p_lists(hub: RunningHub, http: aiohttp.ClientSession, planted: Payload) -> None:
    country = next(o["id"] for o in R.doc["organisationUnits"] if o.get("level") == 1)
    for name in ("pregnant", "children", "due"):
        for ou, status in ((OUTSIDE, 400), (country, 403), (OTHER, 200)):
            async with http.get(hub.api(f"hub/lists/{name}"), headers=CHCP,
                                params={"orgUnit": ou}) as r:
                assert r.status == status, (name, ou)


# -- run every probe (after all are registered) ---------------------------------------------
def test_every_tracker_route_has_a_probe() -> None:
    from tests.hub.test_scope_routes import ROUTES, TRACKER
    assert {k for k, v in ROUTES.items() if v == TRACKER} == set(PROBES)


@pytest.mark.parametrize("route", sorted(PROBES))
async def test_tracker_route_scope(route: tuple[str, str], hub: RunningHub,
                                   http: aiohttp.ClientSession) -> None:
    planted = registration(OTHER)  # another clinic's record, registered by the admin
    assert (await post(http, hub, planted, auth=ADMIN))[0] == 200
    before = [stored(hub, t) for t in ("tracked_entity", "enrollment", "event",
                                       "program_owner", "potential_duplicate")]
    await PROBES[route](hub, http, planted)
    assert [stored(hub, t) for t in ("tracked_entity", "enrollment", "event", "program_owner",
                                     "potential_duplicate")] == before
