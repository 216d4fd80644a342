"""The tracker API's replies against the Android SDK's tracker fixtures: every field the
fixture carries, in the same JSON types, except those listed with the reason."""

from __future__ import annotations

from typing import Any

import aiohttp

from tests.conftest import CHCP, RunningHub
from tests.contract.test_fixtures import assert_conforms
from tests.hub.cells import cells
from tests.hub.tracker_data import registers, registration

C = cells()
R = registers()



async def _import(hub: RunningHub, http: aiohttp.ClientSession) -> dict[str, Any]:
    body = registration(C.chcp_clinic)
    body["events"][0]["dataValues"] = [{"dataElement": R.element(
        R.stage("BD_MATERNAL", "ANC"), "INTEGER_POSITIVE"), "value": "20"}]
    body["trackedEntities"][0]["geometry"] = {"type": "Point", "coordinates": [92.1, 21.4]}
    async with http.post(hub.api("tracker"), json=body, headers=CHCP,
                         params={"atomicMode": "OBJECT"}) as r:
        job = await r.json()
    assert_conforms(job, "imports/tracker-importer/job_response.json")
    jid = job["response"]["id"]
    async with http.get(hub.api(f"tracker/jobs/{jid}"), headers=CHCP) as r:
        notes = await r.json()
    assert_conforms(notes[:1], "imports/tracker-importer/job_response_completed.json")
    async with http.get(hub.api(f"tracker/jobs/{jid}/report"), headers=CHCP) as r:
        report = await r.json()
    assert_conforms(report, "imports/tracker-importer/tei-new.json")
    return body


async def test_tracked_entity_download_matches_fixture(hub: RunningHub,
                                                       http: aiohttp.ClientSession) -> None:
    body = await _import(hub, http)
    params = {"program": R.program("BD_MATERNAL")["id"], "orgUnits": C.chcp_clinic,
              "orgUnitMode": "SELECTED", "fields": "*", "includeDeleted": "true",
              "order": "createdAt:desc", "paging": "true", "page": "1", "pageSize": "50"}
    async with http.get(hub.api("tracker/trackedEntities"), headers=CHCP, params=params) as r:
        page = await r.json()
    assert r.status == 200
    te = next(t for t in page["trackedEntities"]
              if t["trackedEntity"] == body["trackedEntities"][0]["trackedEntity"])
    assert_conforms(te, "trackedentity/new_tracker_importer_tracked_entity.json", ignore=(
        "attributes[].value",  # the fixture's one attribute is a date; these are text
        "relationships",       # none were made (they come with fields=relationships)
        "enrollments[].notes",  # stored when sent; none were
        "enrollments[].attributeOptionCombo",  # not kept: the registers use the default combo
        "enrollments[].events[].scheduledAt"))  # a visit made, not scheduled
    ev_id = body["events"][0]["event"]
    async with http.get(hub.api(f"tracker/events/{ev_id}"), headers=CHCP) as r:
        event = await r.json()
    assert_conforms(event, "event/new_tracker_importer_event.json", ignore=(
        # who did it and display names: the hub does not invent users the SDK then stores
        "assignedUser", "updatedBy", "dataValues[].updatedBy", "orgUnitName", "attributeCategoryOptions",
        "relationships", "geometry", "completedAt", "scheduledAt", "notes",
        "attributeOptionCombo"))


async def _post_sync(http: aiohttp.ClientSession, hub: RunningHub,
                     body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    async with http.post(hub.api("tracker"), json=body, headers=CHCP,
                         params={"async": "false", "atomicMode": "OBJECT"}) as r:
        return r.status, await r.json()


async def test_enrollment_and_collections_match_fixtures(hub: RunningHub,
                                                         http: aiohttp.ClientSession) -> None:
    body = await _import(hub, http)
    enr = body["enrollments"][0]
    async with http.get(hub.api(f"tracker/enrollments/{enr['enrollment']}"), headers=CHCP,
                        params={"fields": "*"}) as r:
        got = await r.json()
    assert r.status == 200
    assert_conforms(got, "enrollment/new_tracker_importer_enrollment.json", ignore=(
        "orgUnitName", "completedBy", "completedAt",  # an active enrollment, no display names
        "attributeOptionCombo",  # not kept: the registers use the default combo
        "events", "relationships", "attributes", "notes"))  # empty in the fixture: no types
    common = {"orgUnits": C.chcp_clinic, "orgUnitMode": "SELECTED", "paging": "true",
              "page": "1", "pageSize": "50", "program": R.program("BD_MATERNAL")["id"]}
    async with http.get(hub.api("tracker/trackedEntities"), headers=CHCP, params={
            **common, "fields": "trackedEntityType,orgUnit,trackedEntity,deleted,"
                                "attributes[attribute,value]"}) as r:
        page = await r.json()
    assert_conforms(page, "trackedentity/new_tracker_importer_tracked_entities_greater_equal_v41"
                          ".json", ignore=("trackedEntities[].attributes[].value",))
    async with http.get(hub.api("tracker/events"), headers=CHCP, params=common) as r:
        events = await r.json()
    assert_conforms(events, "event/new_tracker_importer_events_greater_equal_v41.json",
                    ignore=("events[].scheduledAt",))  # visits made, not scheduled


async def test_refusals_and_reserved_values_match_fixtures(hub: RunningHub,
                                                          http: aiohttp.ClientSession) -> None:
    body = registration(C.chcp_clinic)
    body["enrollments"][0]["orgUnit"] = C.uhc  # not in the CHCP's capture scope
    body["events"] = []
    status, report = await _post_sync(http, hub, body)
    assert status == 409 and report["status"] == "ERROR"
    assert_conforms(report, "imports/tracker-importer/tei-with-enrollment-error-new.json")
    brn = R.attr("BD_BRN")
    async with http.get(hub.api(f"trackedEntityAttributes/{brn}/generateAndReserve"),
                        headers=CHCP, params={"numberToReserve": "2"}) as r:
        values = await r.json()
    assert r.status == 200 and len(values) == 2
    assert_conforms(values, "trackedentity/tracked_entity_attribute_reserved_values.json")
