"""The DHIS2 Android SDK's tracker sequence, replayed against a real hub process.

Login → program metadata → reserved values → tracked-entity download → online search →
registration upload (job, poll, report) → edit and deletion → incremental download, with
the SDK's parameters for a 2.41 server (DHIS2-API-NOTES §3, §4, §9) and its rule for a job
report: what is in ``objectReports`` becomes SYNCED, what is in ``errorReports`` ERROR,
the rest goes back to pending. Each reply is checked for what the SDK's DTOs need (a missing
non-nullable key or a wrong JSON type fails its parser).
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp

from appliance import demo
from appliance.dhis2.uid import generate_uid
from tests.conftest import ADMIN, CHCP
from tests.contract import sdk
from tests.contract.test_android_sdk_sequence import Sdk
from tests.hub.cells import cells
from tests.hub.tracker_data import CLIENT, enrollment, event, person, registers

C = cells()
R = registers()
PAGE = 50  # TrackerQueryCall's page size

# NewTrackerImporterTrackedEntityFields / …EnrollmentFields / …EventFields (SDK 1.14)
_DATA_VALUE = "dataElement,value,createdAt,updatedAt,providedElsewhere,storedBy"
_EVENT = ("event,enrollment,createdAt,updatedAt,createdAtClient,updatedAtClient,program,"
          "programStage,orgUnit,occurredAt,status,geometry,completedAt,completedBy,scheduledAt,"
          f"attributeOptionCombo,assignedUser,deleted,trackedEntity,notes,dataValues[{_DATA_VALUE}]")
_ATTRIBUTE = "attribute,value,createdAt,updatedAt"
TRACKED_ENTITY = (
    "trackedEntity,createdAt,updatedAt,createdAtClient,updatedAtClient,orgUnit,"
    f"trackedEntityType,geometry,deleted,attributes[{_ATTRIBUTE}],"
    "relationships[relationship,relationshipType,relationshipName,bidirectional,createdAt,"
    "updatedAt,deleted,from,to],"
    "enrollments[enrollment,createdAt,updatedAt,createdAtClient,updatedAtClient,orgUnit,program,"
    "enrolledAt,occurredAt,completedAt,followUp,status,deleted,trackedEntity,geometry,notes,"
    f"attributes[{_ATTRIBUTE}],events[{_EVENT}]],programOwners[orgUnit,trackedEntity,program]")
TYPES = ("TRACKED_ENTITY", "ENROLLMENT", "EVENT", "RELATIONSHIP")


def _ts(value: Any) -> datetime:
    """The SDK's tracker dates: ``yyyy-MM-dd'T'HH:mm:ss.SSS``, read in serverTimeZoneId."""
    assert isinstance(value, str), value
    return sdk.parse_server_date(value.removesuffix("Z"))


def _opt_ts(doc: dict[str, Any], *keys: str) -> None:
    for k in keys:
        if doc.get(k) is not None:
            _ts(doc[k])


def check_tracked_entity(te: dict[str, Any]) -> None:
    """What NewTrackerImporterTrackedEntity and its children need to parse."""
    assert sdk.UID.match(te["trackedEntity"]) and sdk.UID.match(te["trackedEntityType"])
    assert sdk.UID.match(te["orgUnit"]) and isinstance(te["deleted"], bool)
    _ts(te["createdAt"]), _ts(te["updatedAt"])
    _opt_ts(te, "createdAtClient", "updatedAtClient")
    for a in te["attributes"]:
        assert sdk.UID.match(a["attribute"]) and isinstance(a["value"], str), a
        _opt_ts(a, "createdAt", "updatedAt")
    for o in te.get("programOwners", []):
        assert sdk.UID.match(o["program"]) and sdk.UID.match(o["orgUnit"]), o
        assert o["trackedEntity"] == te["trackedEntity"]
    for en in te["enrollments"]:
        assert sdk.UID.match(en["enrollment"]) and en["trackedEntity"] == te["trackedEntity"]
        assert sdk.UID.match(en["program"]) and sdk.UID.match(en["orgUnit"])
        assert en["status"] in ("ACTIVE", "COMPLETED", "CANCELLED")
        assert isinstance(en["deleted"], bool) and isinstance(en.get("followUp", False), bool)
        _ts(en["enrolledAt"]), _ts(en["createdAt"]), _ts(en["updatedAt"])
        _opt_ts(en, "occurredAt", "completedAt", "createdAtClient", "updatedAtClient")
        assert isinstance(en.get("notes", []), list)
        for ev in en["events"]:
            check_event(ev)
            assert ev["enrollment"] == en["enrollment"] and ev["program"] == en["program"]


def check_event(ev: dict[str, Any]) -> None:
    assert sdk.UID.match(ev["event"]) and sdk.UID.match(ev["programStage"])
    assert ev["status"] in ("ACTIVE", "COMPLETED", "VISITED", "SCHEDULE", "OVERDUE", "SKIPPED")
    assert isinstance(ev["deleted"], bool)
    _ts(ev["createdAt"]), _ts(ev["updatedAt"])
    _opt_ts(ev, "occurredAt", "scheduledAt", "completedAt", "createdAtClient", "updatedAtClient")
    for dv in ev["dataValues"]:
        assert sdk.UID.match(dv["dataElement"]) and isinstance(dv["value"], str), dv
        assert isinstance(dv.get("providedElsewhere", False), bool)


class TrackerSdk(Sdk):
    """The SDK's tracker calls on top of its login and HTTP habits."""

    async def program_metadata(self, me: dict[str, Any]) -> dict[str, Any]:
        await self.system_info()
        roots = sdk.find_roots(me["teiSearchOrganisationUnits"]) + [
            r for r in sdk.find_roots(me["organisationUnits"])
            if not set(next(o["path"] for o in me["organisationUnits"] if o["id"] == r)
                       .split("/")) & set(sdk.find_roots(me["teiSearchOrganisationUnits"]))]
        org_units: dict[str, dict[str, Any]] = {}
        for root in roots:
            body = await self.get("organisationUnits", [
                ("fields", sdk.ORG_UNIT), ("filter", f"path:like:{root}"), ("order", "id:asc"),
                ("paging", "true"), ("pageSize", str(sdk.ORG_UNIT_PAGE)), ("page", "1")])
            assert len(body["organisationUnits"]) < sdk.ORG_UNIT_PAGE
            org_units.update((o["id"], o) for o in body["organisationUnits"])
        prog_ids = sorted({p["id"] for o in org_units.values() for p in o.get("programs", [])})
        body = await self.get("programs", [
            ("fields", f"{sdk.NAMEABLE},version,programType,accessLevel,onlyEnrollOnce,"
                       "displayIncidentDate,selectEnrollmentDatesInFuture,"
                       "trackedEntityType[id],categoryCombo[id],programStages[id],"
                       "programTrackedEntityAttributes[id,mandatory,searchable,sortOrder,"
                       "displayInList,trackedEntityAttribute[id],program[id]],"
                       "access[data[read,write]]"),
            ("filter", sdk.in_filter("id", prog_ids)),
            ("filter", "access.data.read:eq:true"), ("paging", "false")])
        programs = {p["id"]: p for p in body["programs"]}
        assert sorted(programs) == prog_ids
        for p in programs.values():
            assert p["programType"] == "WITH_REGISTRATION"
            assert p["accessLevel"] in ("OPEN", "AUDITED", "PROTECTED", "CLOSED")
            assert isinstance(p["version"], int) and p["access"]["data"]["write"] is True
        body = await self.get("programStages", [
            ("fields", f"{sdk.IDENTIFIABLE},program[id],repeatable,sortOrder,"
                       "validationStrategy,programStageDataElements[id,compulsory,"
                       "dataElement[id],programStage[id]]"),
            ("filter", sdk.in_filter("program.id", prog_ids)), ("paging", "false")])
        stages = {s["id"]: s for s in body["programStages"]}
        assert set(stages) == {s["id"] for p in programs.values() for s in p["programStages"]}
        for s in stages.values():
            assert isinstance(s["repeatable"], bool) and s["program"]["id"] in programs
            assert all(isinstance(e["compulsory"], bool) for e in s["programStageDataElements"])
        tet_ids = sorted({p["trackedEntityType"]["id"] for p in programs.values()})
        body = await self.get("trackedEntityTypes", [
            ("fields", f"{sdk.NAMEABLE},featureType,trackedEntityTypeAttributes["
                       "trackedEntityType[id],trackedEntityAttribute[id],displayInList,"
                       "mandatory,searchable],access[data[read,write]]"),
            ("filter", sdk.in_filter("id", tet_ids)), ("paging", "false")])
        assert sorted(t["id"] for t in body["trackedEntityTypes"]) == tet_ids
        tea_ids = sorted({a["trackedEntityAttribute"]["id"] for p in programs.values()
                          for a in p["programTrackedEntityAttributes"]}
                         | {a["trackedEntityAttribute"]["id"] for t in body["trackedEntityTypes"]
                            for a in t["trackedEntityTypeAttributes"]})
        body = await self.get("trackedEntityAttributes", [
            ("fields", f"{sdk.NAMEABLE},pattern,sortOrderInListNoProgram,valueType,expression,"
                       "programScope,displayInListNoProgram,generated,displayOnVisitSchedule,"
                       "orgunitScope,unique,inherit,optionSet[id],fieldMask,formName"),
            ("filter", sdk.in_filter("id", tea_ids)), ("paging", "false")])
        attributes = {a["id"]: a for a in body["trackedEntityAttributes"]}
        assert sorted(attributes) == tea_ids
        for a in attributes.values():
            assert a["valueType"] in sdk.VALUE_TYPES
            assert isinstance(a["unique"], bool) and isinstance(a["generated"], bool)
        rules = await self.get("programRules", [
            ("fields", f"{sdk.IDENTIFIABLE},priority,condition,program[id],programStage[id],"
                       "programRuleActions[id]"),
            ("filter", sdk.in_filter("program.id", prog_ids)), ("paging", "false")])
        assert rules["programRules"]
        action_ids = {a["id"] for r in rules["programRules"] for a in r["programRuleActions"]}
        body = await self.get("programRuleActions", [
            ("fields", f"{sdk.IDENTIFIABLE},programRuleActionType,programRule[id],data,content,"
                       "dataElement[id],trackedEntityAttribute[id],programStage[id]"),
            ("filter", sdk.in_filter("id", sorted(action_ids))), ("paging", "false")])
        assert {a["id"] for a in body["programRuleActions"]} == action_ids
        assert all(isinstance(a["programRuleActionType"], str)
                   for a in body["programRuleActions"])
        body = await self.get("programRuleVariables", [
            ("fields", f"{sdk.IDENTIFIABLE},programRuleVariableSourceType,program[id],"
                       "dataElement[id],trackedEntityAttribute[id],programStage[id],"
                       "useCodeForOptionSet,valueType"),
            ("filter", sdk.in_filter("program.id", prog_ids)), ("paging", "false")])
        assert body["programRuleVariables"]
        assert {v["program"]["id"] for v in body["programRuleVariables"]} <= set(prog_ids)
        os_ids = sorted({a["optionSet"]["id"] for a in attributes.values()
                         if a.get("optionSet")})
        body = await self.get("optionSets", [
            ("fields", sdk.OPTION_SET), ("filter", sdk.in_filter("id", os_ids)),
            ("paging", "false")])
        assert sorted(o["id"] for o in body["optionSets"]) == os_ids
        body = await self.get("options", [
            ("fields", sdk.OPTION), ("filter", sdk.in_filter("optionSet.id", os_ids)),
            ("paging", "true"), ("page", "1"), ("pageSize", str(sdk.OPTION_PAGE))])
        assert {o["optionSet"]["id"] for o in body["options"]} == set(os_ids)
        assert all(isinstance(o["code"], str) for o in body["options"])
        body = await self.get("relationshipTypes", [
            ("fields", f"{sdk.IDENTIFIABLE},fromToName,toFromName,bidirectional,"
                       "fromConstraint[relationshipEntity,trackedEntityType[id],program[id],"
                       "programStage[id]],toConstraint[relationshipEntity,"
                       "trackedEntityType[id],program[id],programStage[id]],access[data[read,write]]"),
            ("paging", "false")])
        for rt in body["relationshipTypes"]:
            assert isinstance(rt["bidirectional"], bool)
            assert rt["fromConstraint"]["relationshipEntity"] in (
                "TRACKED_ENTITY_INSTANCE", "PROGRAM_INSTANCE", "PROGRAM_STAGE_INSTANCE")
        return {"org_units": org_units, "programs": programs, "stages": stages,
                "attributes": attributes, "relationship_types": body["relationshipTypes"]}

    async def reserve(self, attribute: str, n: int) -> list[dict[str, Any]]:
        values = await self.get(f"trackedEntityAttributes/{attribute}/generateAndReserve",
                                [("numberToReserve", str(n))])
        assert isinstance(values, list) and len(values) == n
        for v in values:
            assert v["ownerObject"] == "TRACKEDENTITYATTRIBUTE" and v["ownerUid"] == attribute
            assert isinstance(v["key"], str) and isinstance(v["value"], str)
            assert _ts(v["expiryDate"]) > _ts(v["created"]) > datetime(2020, 1, 1)
        return values

    async def tracker_download(self, program: str, capture_roots: list[str],
                       updated_after: str | None) -> list[dict[str, Any]]:
        """TrackerQueryCall for one program: pages of 50 until a short page."""
        out: list[dict[str, Any]] = []
        page = 1
        while True:
            body = await self.get("tracker/trackedEntities", [
                ("fields", TRACKED_ENTITY), ("program", program),
                ("orgUnits", ",".join(capture_roots)), ("orgUnitMode", "DESCENDANTS"),
                *([("updatedAfter", updated_after)] if updated_after else []),
                ("includeDeleted", "true"), ("order", "createdAt:desc"), ("paging", "true"),
                ("page", str(page)), ("pageSize", str(PAGE))])
            items = body.get("trackedEntities", body.get("instances"))
            assert isinstance(items, list)
            pager = body.get("pager") or body
            assert pager["page"] == page and pager["pageSize"] == PAGE
            for te in items:
                check_tracked_entity(te)
                assert all(en["program"] == program for en in te["enrollments"])
            out += items
            if len(items) < PAGE:
                return out
            page += 1

    async def tracker_upload(self, payload: dict[str, Any], strategy: str = "CREATE_AND_UPDATE"
                     ) -> tuple[dict[str, Any], dict[str, str]]:
        """POST, poll the job, read its report; returns it and each sent uid's new state."""
        reply = await self.call("POST", "tracker", [("atomicMode", "OBJECT"),
                                                    ("importStrategy", strategy)], body=payload)
        assert reply["status"] == "OK" and reply["httpStatusCode"] == 200
        job = reply["response"]
        assert job["responseType"] == "TrackerJob" and isinstance(job["id"], str)
        assert job["location"].endswith(f"/api/tracker/jobs/{job['id']}")
        for _ in range(90):
            notes = await self.get(f"tracker/jobs/{job['id']}", expect=(200, 404))
            if self.calls[-1].status == 200:
                assert isinstance(notes, list) and all(
                    isinstance(n["message"], str) and isinstance(n["completed"], bool)
                    for n in notes)
                if any(n["completed"] for n in notes):
                    break
            await asyncio.sleep(2)
        else:
            raise AssertionError("the job never completed")
        report = await self.get(f"tracker/jobs/{job['id']}/report")
        assert report["status"] in ("OK", "ERROR", "WARNING")
        assert set(report["stats"]) >= {"created", "updated", "deleted", "ignored", "total"}
        assert all(type(v) is int for v in report["stats"].values())
        errors = report["validationReport"]["errorReports"]
        tmap = report["bundleReport"]["typeReportMap"]
        assert set(tmap) >= set(TYPES)  # all four are required when bundleReport is there
        state: dict[str, str] = {}
        for t in TYPES:
            assert tmap[t]["trackerType"] == t
            assert all(type(v) is int for v in tmap[t]["stats"].values())
            for o in tmap[t]["objectReports"]:
                assert o["trackerType"] == t and isinstance(o["errorReports"], list)
                state[o["uid"]] = "SYNCED"
        for e in errors:
            assert isinstance(e["message"], str) and e["trackerType"] in TYPES
            assert isinstance(e["errorCode"], str) and isinstance(e["uid"], str)
            state[e["uid"]] = "ERROR"
        sent = {o[key] for k, key in (("trackedEntities", "trackedEntity"),
                                      ("enrollments", "enrollment"), ("events", "event"),
                                      ("relationships", "relationship"))
                for o in payload.get(k, [])}
        assert set(state) <= sent
        return report, {u: state.get(u, "TO_UPDATE") for u in sent}


def _values(ev: dict[str, Any]) -> dict[str, str]:
    return {d["dataElement"]: d["value"] for d in ev["dataValues"]}


async def test_chcp_registers_edits_and_deletes_as_the_sdk_does(
        hub_process_factory: Any, tmp_path: Path) -> None:
    hp = hub_process_factory(tmp_path / "hub")
    maternal, epi = R.program("BD_MATERNAL")["id"], R.program("BD_EPI")["id"]
    anc = R.stage("BD_MATERNAL", "ANC")
    anc_number = R.element(anc, "INTEGER_POSITIVE")
    name, brn_attr = R.attr("BD_NAME_EN"), R.attr("BD_BRN")

    # before the tablet syncs, the upazila office registered a woman at another clinic:
    # the CHCP finds her by search but does not download her
    elsewhere = person(C.other_clinic, name="Zubaida Quraishi")
    enr_elsewhere = enrollment(elsewhere["trackedEntity"], C.other_clinic)
    async with aiohttp.ClientSession() as http, http.post(
            hp.api("tracker"), params={"async": "false"}, headers=ADMIN,
            json={"trackedEntities": [elsewhere], "enrollments": [enr_elsewhere]}) as r:
        assert r.status == 200, await r.text()

    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as session:
        tablet = TrackerSdk(session, hp, "chcp", "district")  # type: ignore[arg-type]
        # -- 1. login and program metadata --
        me = await tablet.login()
        capture = sdk.find_roots(me["organisationUnits"])
        assert capture == [C.chcp_clinic]
        assert sdk.find_roots(me["teiSearchOrganisationUnits"]) == [demo.RAMU_UID]
        md = await tablet.program_metadata(me)
        assert sorted(md["programs"]) == sorted(
            [maternal, epi, R.program("BD_U5")["id"]])
        assert md["attributes"][brn_attr]["generated"] is True
        assert md["attributes"][brn_attr]["unique"] is True

        # -- 2. reserved values: none stored yet, so the SDK tops up to 100 --
        reserved = await tablet.reserve(brn_attr, 100)
        assert len({v["value"] for v in reserved}) == 100
        again = await tablet.reserve(brn_attr, 1)  # a second device, or the next top-up
        assert again[0]["value"] not in {v["value"] for v in reserved}

        # -- 3. first tracker download: the clinic's register (the demo history), owned
        # by the clinic, and nothing of the other clinic's --
        w1 = await tablet.system_info()
        for program in sorted(md["programs"]):
            register = await tablet.tracker_download(program, capture, None)
            assert register, program
            for te in register:
                check_tracked_entity(te)
                assert te["trackedEntity"] != elsewhere["trackedEntity"]
                assert {o["orgUnit"] for o in te["programOwners"]
                        if o["program"] == program} == {C.chcp_clinic}
        await asyncio.sleep(0.01)

        # -- 4. search online before registering --
        found = await tablet.get("tracker/trackedEntities", [
            ("fields", TRACKED_ENTITY), ("program", maternal), ("orgUnitMode", "ACCESSIBLE"),
            ("filter", f"{name}:like:zubaida"), ("paging", "true"), ("page", "1"),
            ("pageSize", "10")])
        assert [t["trackedEntity"] for t in found["trackedEntities"]] == \
            [elsewhere["trackedEntity"]]
        for te in found["trackedEntities"]:
            check_tracked_entity(te)
        nobody = await tablet.get("tracker/trackedEntities", [
            ("program", maternal), ("orgUnitMode", "ACCESSIBLE"),
            ("filter", f"{name}:like:nilufar"), ("paging", "true"), ("page", "1"),
            ("pageSize", "10")])
        assert nobody["trackedEntities"] == []

        # -- 5. register a mother and her newborn offline, then sync --
        mother = person(C.chcp_clinic, name="Nilufar Quraishi", brn=reserved[0]["value"])
        child = person(C.chcp_clinic, name="Baby Quraishi", brn=reserved[1]["value"])
        m_enr = enrollment(mother["trackedEntity"], C.chcp_clinic)
        c_enr = enrollment(child["trackedEntity"], C.chcp_clinic, "BD_EPI",
                           enrolledAt="2026-11-20T00:00:00.000",
                           occurredAt="2026-11-19T00:00:00.000")
        visit = event(m_enr, "ANC", dataValues=[{"dataElement": anc_number, "value": "2"}])
        wrong = event(m_enr, "ANC", dataValues=[{"dataElement": anc_number, "value": "two"}])
        postnatal = event(m_enr, "PNC")
        bcg = event(c_enr, "birth")
        rel_type = md["relationship_types"][0]["id"]
        link = {"relationship": generate_uid(), "relationshipType": rel_type,
                "from": {"trackedEntity": {"trackedEntity": mother["trackedEntity"]}},
                "to": {"trackedEntity": {"trackedEntity": child["trackedEntity"]}}}
        for o in (mother, child, m_enr, c_enr, visit, wrong, postnatal, bcg):
            o.update(createdAt=CLIENT["createdAtClient"], updatedAt=CLIENT["updatedAtClient"])
        payload = {"trackedEntities": [mother, child], "enrollments": [m_enr, c_enr],
                   "events": [visit, wrong, postnatal, bcg], "relationships": [link]}
        report, states = await tablet.tracker_upload(payload)
        post = next(c for c in reversed(tablet.calls) if c.method == "POST")
        assert post.params == [("atomicMode", "OBJECT"), ("importStrategy", "CREATE_AND_UPDATE")]
        assert report["status"] == "ERROR"  # one refusal; atomicMode=OBJECT wrote the rest
        assert states.pop(wrong["event"]) == "ERROR"
        assert set(states.values()) == {"SYNCED"}, states
        (err,) = report["validationReport"]["errorReports"]
        assert err["uid"] == wrong["event"] and err["trackerType"] == "EVENT"
        assert err["errorCode"].startswith("E13"), err
        assert report["stats"]["created"] == 8 and report["stats"]["total"] == 9

        # -- the reply was lost (Wi-Fi dropped before the report): the SDK sends it again --
        report, states = await tablet.tracker_upload({k: [o for o in v if o is not wrong]
                                              for k, v in payload.items()})
        # stored objects count as updated (DHIS2 does not compare), so they become SYNCED;
        # a relationship is never updated, only ignored, as in DHIS2
        assert report["status"] == "OK" and report["stats"]["created"] == 0
        assert report["stats"]["updated"] == 7 and report["stats"]["ignored"] == 1
        assert states.pop(link["relationship"]) == "TO_UPDATE"
        assert set(states.values()) == {"SYNCED"}, states

        # -- 6. an edit, then a deletion --
        w_mid = await tablet.system_info()
        await asyncio.sleep(0.01)
        edited = {**visit, "dataValues": [{"dataElement": anc_number, "value": "3"}],
                  "updatedAtClient": "2026-11-21T08:00:00.000",
                  "updatedAt": "2026-11-21T08:00:00.000"}
        report, states = await tablet.tracker_upload({"events": [edited]})
        assert report["status"] == "OK" and states == {visit["event"]: "SYNCED"}
        assert report["stats"]["updated"] == 1 and report["stats"]["created"] == 0
        report, states = await tablet.tracker_upload({"events": [postnatal]}, strategy="DELETE")
        assert report["status"] == "OK" and states == {postnatal["event"]: "SYNCED"}
        assert report["stats"]["deleted"] == 1
        await asyncio.sleep(0.01)

        # -- 7. incremental download since the serverDate before the registration --
        w2 = await tablet.system_info()
        got = {te["trackedEntity"]: te
               for te in await tablet.tracker_download(maternal, capture, w1)}
        assert set(got) == {mother["trackedEntity"]}  # not the other clinic's woman
        te = got[mother["trackedEntity"]]
        assert _ts(te["updatedAt"]) > _ts(w1) and te["deleted"] is False
        assert {a["attribute"]: a["value"] for a in te["attributes"]}[brn_attr] == \
            reserved[0]["value"]
        assert te["programOwners"] == [{"orgUnit": C.chcp_clinic, "trackedEntity":
                                        mother["trackedEntity"], "program": maternal}]
        events = {e["event"]: e for e in te["enrollments"][0]["events"]}
        assert set(events) == {visit["event"], postnatal["event"]}  # not the refused one
        assert _values(events[visit["event"]]) == {anc_number: "3"}
        assert events[visit["event"]]["deleted"] is False
        assert events[postnatal["event"]]["deleted"] is True
        assert events[visit["event"]]["updatedAtClient"] == edited["updatedAtClient"]
        assert _ts(events[visit["event"]]["updatedAt"]) > _ts(w_mid)  # server time, not ours
        epi_got = await tablet.tracker_download(epi, capture, w1)
        assert [t["trackedEntity"] for t in epi_got] == [child["trackedEntity"]]
        assert [e["event"] for e in epi_got[0]["enrollments"][0]["events"]] == [bcg["event"]]
        assert await tablet.tracker_download(R.program("BD_U5")["id"], capture, w1) == []
        for program in sorted(md["programs"]):  # nothing changed since
            assert await tablet.tracker_download(program, capture, w2) == []

        assert all(c.status < 500 for c in tablet.calls)
        assert tablet.calls[0].path == "me"


async def test_an_event_change_moves_its_tracked_entity_for_the_next_download(
        hub_process_factory: Any, tmp_path: Path) -> None:
    """DHIS2 stamps a tracked entity's updatedAt when one of its enrollments or events is
    written or deleted (TrackerBundle.updatedTrackedEntities, postCommit), so the SDK's
    tracked-entity download with ``updatedAfter`` carries changes made on another device."""
    hp = hub_process_factory(tmp_path / "hub")
    maternal = R.program("BD_MATERNAL")["id"]
    anc = R.stage("BD_MATERNAL", "ANC")
    anc_number = R.element(anc, "INTEGER_POSITIVE")
    mother = person(C.chcp_clinic)
    m_enr = enrollment(mother["trackedEntity"], C.chcp_clinic)
    visit = event(m_enr, "ANC", dataValues=[{"dataElement": anc_number, "value": "1"}])
    async with aiohttp.ClientSession() as session:
        tablet = TrackerSdk(session, hp, "chcp", "district")  # type: ignore[arg-type]
        await tablet.login()
        _, states = await tablet.tracker_upload({"trackedEntities": [mother], "enrollments": [m_enr],
                                         "events": [visit]})
        assert set(states.values()) == {"SYNCED"}
        await asyncio.sleep(0.01)
        w = await tablet.system_info()
        await asyncio.sleep(0.01)
        _, states = await tablet.tracker_upload({"events": [
            {**visit, "dataValues": [{"dataElement": anc_number, "value": "2"}]}]})
        assert states == {visit["event"]: "SYNCED"}
        got = await tablet.tracker_download(maternal, [C.chcp_clinic], w)
        assert [t["trackedEntity"] for t in got] == [mother["trackedEntity"]]
        w = await tablet.system_info()
        await asyncio.sleep(0.01)
        await tablet.tracker_upload({"events": [visit]}, strategy="DELETE")
        got = await tablet.tracker_download(maternal, [C.chcp_clinic], w)
        assert [e["deleted"] for e in got[0]["enrollments"][0]["events"]] == [True]


async def test_a_job_report_outlives_a_hub_restart(hub_process_factory: Any,
                                                   tmp_path: Path) -> None:
    """The SDK posts a job, then polls its report. A power cut in between must not lose the
    report (the tablet would upload again); it is on disk, and only its owner reads it."""
    hp = hub_process_factory(tmp_path / "hub")
    te = person(C.chcp_clinic, name="Parul Quraishi")
    async with aiohttp.ClientSession() as http:
        async with http.post(hp.api("tracker"), headers=CHCP, json={"trackedEntities": [te]},
                             params={"atomicMode": "OBJECT"}) as r:
            job = (await r.json())["response"]["id"]
        async with http.get(hp.api(f"tracker/jobs/{job}/report"), headers=CHCP) as r:
            before = await r.json()
        assert before["status"] == "OK" and before["stats"]["created"] == 1
    port = int(hp.url.rsplit(":", 1)[1])
    hp.kill()
    hp = hub_process_factory(tmp_path / "hub", port=port)
    async with aiohttp.ClientSession() as http:
        async with http.get(hp.api(f"tracker/jobs/{job}/report"), headers=CHCP) as r:
            assert r.status == 200 and await r.json() == before
        async with http.get(hp.api(f"tracker/jobs/{job}"), headers=CHCP) as r:
            assert r.status == 200 and (await r.json())[0]["completed"] is True
        async with http.get(hp.api(f"tracker/jobs/{job}/report"), headers=ADMIN) as r:
            assert r.status == 404  # another user's job
