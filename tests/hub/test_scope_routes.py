"""Read and write scope, route by route: the test walks the app's route table.

Every route the hub registers must be classified below. A route added later without a
class fails ``test_every_route_is_classified``, so nobody has to remember this file.

For each data route, a CHCP (one community clinic) asks about another clinic, the whole
upazila, and an org unit that does not exist. Reads are refused or show nothing of it;
writes are refused (403, or DHIS2's per-value conflict E7617) and store nothing. On top
of the probes, every GET route is swept with every org-unit parameter the hub knows set
to the other clinic, and no reply may carry the marker planted in the other clinic's data.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest

from appliance import demo
from appliance.store.hlc import to_iso
from tests.conftest import ADMIN, CHCP, RunningHub
from tests.hub.cells import cells, month

C = cells()
MARK_VALUE = "987654"
MARK_TEXT = "zzSECRETzz"
MADE_UP = "AbCdEfGhIj1"
PE = month()

# -- the classification ----------------------------------------------------------------------------
PUBLIC = "public"      # reachable without login (only what DHIS2 makes public)
SELF = "self"          # the caller's own account, session or settings
META = "metadata"      # metadata and server facts: no org-unit data
SHARED = "sharing"     # dataStore: per-entry owner and sharing (tests/hub/test_datastore.py)
DATA = "data"          # org-unit data: probed below
ADMIN_ONLY = "admin"   # superusers only
TRACKER = "tracker"    # individual records: search scope to read, capture scope and program
#                        ownership to write; probed in tests/hub/test_tracker_api.py

ROUTES: dict[tuple[str, str], str] = {
    ("GET", "/api/system/info"): META, ("GET", "/api/system/ping"): PUBLIC,
    ("GET", "/api/ping"): PUBLIC, ("GET", "/api/system/id"): META,
    ("GET", "/api/loginConfig"): PUBLIC, ("GET", "/api/me"): SELF,
    ("GET", "/api/me/authorization"): SELF, ("GET", "/api/me/authorization/{auth}"): SELF,
    ("GET", "/api/userSettings"): SELF, ("GET", "/api/systemSettings"): META,
    ("POST", "/api/userSettings"): SELF, ("GET", "/api/userSettings/{key}"): SELF,
    ("POST", "/api/userSettings/{key}"): SELF, ("GET", "/hub/i18n/{name}"): PUBLIC,
    ("POST", "/api/auth/login"): PUBLIC, ("POST", "/api/auth/logout"): SELF,
    ("POST", "/dhis-web-commons-security/login.action"): PUBLIC,
    ("GET", "/dhis-web-commons-security/logout.action"): SELF,
    ("GET", "/api/dataStore"): SHARED, ("GET", "/api/dataStore/{ns}"): SHARED,
    ("DELETE", "/api/dataStore/{ns}"): SHARED,
    ("GET", "/api/dataStore/{ns}/{key}"): SHARED, ("POST", "/api/dataStore/{ns}/{key}"): SHARED,
    ("PUT", "/api/dataStore/{ns}/{key}"): SHARED,
    ("DELETE", "/api/dataStore/{ns}/{key}"): SHARED,
    ("GET", "/api/dataStore/{ns}/{key}/metaData"): SHARED,
    ("GET", "/api/dataStore/{ns}/keys"): SHARED, ("GET", "/api/sharing"): SHARED,
    ("POST", "/api/sharing"): SHARED, ("PUT", "/api/sharing"): SHARED,
    ("GET", "/"): PUBLIC,
    ("GET", "/api/dataValueSets"): DATA, ("POST", "/api/dataValueSets"): DATA,
    ("GET", "/api/dataValues"): DATA, ("POST", "/api/dataValues"): DATA,
    ("DELETE", "/api/dataValues"): DATA,
    ("GET", "/api/completeDataSetRegistrations"): DATA,
    ("POST", "/api/completeDataSetRegistrations"): DATA,
    ("DELETE", "/api/completeDataSetRegistrations"): DATA,
    ("GET", "/api/dataEntry/dataValues"): DATA, ("GET", "/api/validation/dataSet/{ds}"): DATA,
    ("GET", "/api/dataApprovals"): DATA, ("POST", "/api/dataApprovals"): DATA,
    ("DELETE", "/api/dataApprovals"): DATA, ("GET", "/api/audits/dataValue"): DATA,
    ("GET", "/api/dataApprovals/multiple"): DATA, ("GET", "/api/dataApprovals/approvals"): DATA,
    ("GET", "/api/hub/status"): PUBLIC, ("GET", "/api/hub/health"): META,
    ("GET", "/api/hub/conflicts"): DATA, ("POST", "/api/hub/conflicts/{id}/resolve"): DATA,
    ("POST", "/api/hub/sync"): SELF, ("GET", "/api/hub/rejections"): DATA,
    ("GET", "/hub"): PUBLIC, ("GET", "/hub/"): PUBLIC, ("GET", "/hub/status"): DATA,
    ("GET", "/hub/session"): PUBLIC, ("GET", "/hub/static/{name}"): PUBLIC,
    ("GET", "/hub/people"): PUBLIC, ("GET", "/hub/people/{uid}"): PUBLIC,
    ("GET", "/hub/lists"): PUBLIC, ("GET", "/hub/board"): PUBLIC,
    ("GET", "/api/hub/board"): DATA, ("GET", "/api/hub/board/events"): DATA,
    ("GET", "/api/openapi.json"): META,
    ("GET", "/api/metadata"): META, ("POST", "/api/metadata"): ADMIN_ONLY,
    ("GET", "/api/deletedObjects"): META, ("GET", "/api/categoryOptions/orgUnits"): META,
    ("GET", "/api/{collection}"): META, ("GET", "/api/{collection}/{uid}"): META,
    ("POST", "/api/tracker"): TRACKER, ("GET", "/api/tracker/jobs/{id}"): SELF,
    ("GET", "/api/tracker/jobs/{id}/report"): SELF,
    ("PUT", "/api/tracker/ownership/transfer"): TRACKER,
    ("GET", "/api/tracker/trackedEntities"): TRACKER,
    ("GET", "/api/tracker/trackedEntities/{uid}"): TRACKER,
    ("GET", "/api/tracker/enrollments"): TRACKER, ("GET", "/api/tracker/enrollments/{uid}"): TRACKER,
    ("GET", "/api/tracker/events"): TRACKER, ("GET", "/api/tracker/events/{uid}"): TRACKER,
    ("GET", "/api/tracker/relationships"): TRACKER,
    ("GET", "/api/tracker/relationships/{uid}"): TRACKER,
    ("GET", "/api/trackedEntityAttributes/{id}/generateAndReserve"): META,
    ("GET", "/api/trackedEntityAttributes/{id}/generate"): META,
    ("GET", "/api/potentialDuplicates"): TRACKER, ("POST", "/api/potentialDuplicates"): TRACKER,
    ("PUT", "/api/potentialDuplicates/{id}"): TRACKER,
    ("GET", "/api/hub/people"): TRACKER, ("POST", "/api/hub/people/duplicates"): TRACKER,
    ("POST", "/api/hub/rules"): TRACKER, ("GET", "/api/hub/people/{uid}/syncStates"): TRACKER,
    ("GET", "/api/hub/lists/{list}"): TRACKER,
}


def route_key(route: Any) -> tuple[str, str] | None:
    """(method, path) with the API's version and .json optional parts dropped."""
    if route.method == "HEAD" or route.resource is None:
        return None
    path = route.resource.canonical.replace("{_v}", "").replace("{_x}", "")
    return route.method, path


def registered(hub: RunningHub) -> set[tuple[str, str]]:
    return {k for r in hub.app.router.routes() if (k := route_key(r)) is not None}


async def test_every_route_is_classified(hub: RunningHub) -> None:
    missing = sorted(registered(hub) - ROUTES.keys())
    assert not missing, ("classify these routes in ROUTES (and give DATA routes a probe in "
                         f"PROBES): {missing}")


# -- probes: one or more requests per data route, made about one org unit -------------------------
@dataclass
class Probe:
    method: str
    path: str
    params: Callable[[str], dict[str, str]] = lambda ou: {}
    body: Callable[[str], Any] | None = None
    form: bool = False
    refused: tuple[int, ...] = (403, 409, 404)
    empty_ok: bool = True  # a 200 is fine if it shows nothing of the org unit
    extra: dict[str, Any] = field(default_factory=dict)


DE = C.element("INTEGER_ZERO_OR_POSITIVE", C.form1)
COC = C.cocs(DE)[0]
DS = C.form1["id"]


def _value(ou: str, value: str = "3") -> dict[str, str]:
    return {"dataElement": DE["id"], "period": PE, "orgUnit": ou,
            "categoryOptionCombo": COC, "value": value}


PROBES: dict[tuple[str, str], list[Probe]] = {
    ("GET", "/api/dataValueSets"): [
        Probe("GET", "/api/dataValueSets", lambda ou: {"dataSet": DS, "period": PE,
                                                       "orgUnit": ou}),
        Probe("GET", "/api/dataValueSets", lambda ou: {"dataSet": DS, "period": PE,
                                                       "orgUnit": ou, "children": "true"})],
    ("POST", "/api/dataValueSets"): [
        Probe("POST", "/api/dataValueSets", body=lambda ou: {"dataValues": [_value(ou)]}),
        Probe("POST", "/api/dataValueSets",
              body=lambda ou: {"orgUnit": ou, "period": PE, "dataSet": DS,
                               "completeDate": PE[:4] + "-" + PE[4:] + "-01",
                               "dataValues": [_value(C.chcp_clinic)]})],
    ("GET", "/api/dataValues"): [
        Probe("GET", "/api/dataValues", lambda ou: {"de": DE["id"], "pe": PE, "ou": ou,
                                                    "co": COC})],
    ("POST", "/api/dataValues"): [
        Probe("POST", "/api/dataValues", lambda ou: {"de": DE["id"], "pe": PE, "ou": ou,
                                                     "co": COC, "value": "4"}, form=True),
        Probe("POST", "/api/dataValues", lambda ou: {"de": DE["id"], "pe": PE, "ou": ou,
                                                     "co": COC, "value": "4"}),
        Probe("POST", "/api/dataValues", body=lambda ou: _value(ou, "5"))],
    ("DELETE", "/api/dataValues"): [
        Probe("DELETE", "/api/dataValues", lambda ou: {"de": DE["id"], "pe": PE, "ou": ou,
                                                       "co": COC})],
    ("GET", "/api/completeDataSetRegistrations"): [
        Probe("GET", "/api/completeDataSetRegistrations",
              lambda ou: {"dataSet": DS, "period": PE, "orgUnit": ou}),
        Probe("GET", "/api/completeDataSetRegistrations",
              lambda ou: {"dataSet": DS, "period": PE, "orgUnit": ou, "children": "true"})],
    ("POST", "/api/completeDataSetRegistrations"): [
        Probe("POST", "/api/completeDataSetRegistrations", body=lambda ou: {
            "completeDataSetRegistrations": [{"dataSet": DS, "period": PE,
                                              "organisationUnit": ou}]})],
    ("DELETE", "/api/completeDataSetRegistrations"): [
        Probe("DELETE", "/api/completeDataSetRegistrations",
              lambda ou: {"ds": DS, "pe": PE, "ou": ou}),
        Probe("DELETE", "/api/completeDataSetRegistrations",
              lambda ou: {"ds": DS, "pe": PE, "ou": ou, "multiOu": "true"})],
    ("GET", "/api/dataEntry/dataValues"): [
        Probe("GET", "/api/dataEntry/dataValues", lambda ou: {"ds": DS, "pe": PE, "ou": ou})],
    ("GET", "/api/validation/dataSet/{ds}"): [
        Probe("GET", f"/api/validation/dataSet/{DS}", lambda ou: {"pe": PE, "ou": ou})],
    ("GET", "/api/dataApprovals"): [
        Probe("GET", "/api/dataApprovals", lambda ou: {"ds": DS, "pe": PE, "ou": ou})],
    ("POST", "/api/dataApprovals"): [
        Probe("POST", "/api/dataApprovals", lambda ou: {"ds": DS, "pe": PE, "ou": ou})],
    ("DELETE", "/api/dataApprovals"): [
        Probe("DELETE", "/api/dataApprovals", lambda ou: {"ds": DS, "pe": PE, "ou": ou})],
    ("GET", "/api/dataApprovals/multiple"): [
        Probe("GET", "/api/dataApprovals/multiple",
              lambda ou: {"wf": DS, "pe": PE, "ou": f"{C.chcp_clinic},{ou}"})],
    ("GET", "/api/dataApprovals/approvals"): [
        Probe("GET", "/api/dataApprovals/approvals",
              lambda ou: {"wf": DS, "pe": PE, "ou": ou})],
    ("GET", "/api/audits/dataValue"): [
        Probe("GET", "/api/audits/dataValue", lambda ou: {"ou": ou}),
        Probe("GET", "/api/audits/dataValue", lambda ou: {"de": DE["id"]})],
    ("GET", "/api/hub/conflicts"): [
        Probe("GET", "/api/hub/conflicts", lambda ou: {"status": "all", "orgUnit": ou})],
    ("POST", "/api/hub/conflicts/{id}/resolve"): [
        Probe("POST", "/api/hub/conflicts/{conflict}/resolve", body=lambda ou: {"choose": "hub"})],
    ("GET", "/api/hub/rejections"): [
        Probe("GET", "/api/hub/rejections", lambda ou: {}),
        Probe("GET", "/api/hub/rejections", lambda ou: {"username": "chcp"})],
    ("GET", "/hub/status"): [Probe("GET", "/hub/status", lambda ou: {})],
    # the board has no org-unit parameter: a CHCP's shows their clinic only (the stream's
    # first event is checked in tests/hub/test_board.py; without EventSource's Accept: 406)
    ("GET", "/api/hub/board"): [Probe("GET", "/api/hub/board", lambda ou: {"pe": PE})],
    ("GET", "/api/hub/board/events"): [
        Probe("GET", "/api/hub/board/events", lambda ou: {"pe": PE}, refused=(406,))],
}

OU_KINDS = {"other clinic": C.other_clinic, "the upazila": demo.RAMU_UID,
            "the UHC": C.uhc, "a made-up org unit": MADE_UP}


def test_every_data_route_has_a_probe() -> None:
    data_routes = {k for k, v in ROUTES.items() if v == DATA}
    assert data_routes == set(PROBES), data_routes ^ set(PROBES)


# -- the planted data ------------------------------------------------------------------------------
def _snapshot(hub: RunningHub) -> list[Any]:
    return hub.store.read_sync(lambda c: [
        [tuple(r) for r in c.execute(f"SELECT * FROM {t} ORDER BY 1, 2")]  # noqa: S608
        for t in ("datavalue", "complete_registration", "data_approval", "sync_conflict")])


def _violated_rule() -> tuple[dict[str, Any], dict[str, Any]]:
    """(bigger, smaller) of a Form-1 rule `smaller >= bigger` (or `bigger <= smaller`):
    planting MARK_VALUE on the bigger side makes it fail, so a validation run shows the
    planted number."""
    in_form = {e["id"]: e for e in C.elements(C.form1)}
    for rule in C.doc["validationRules"]:
        left, right = (rule[s]["expression"] for s in ("leftSide", "rightSide"))
        ids = [x.strip("#{}") for x in (left, right)]
        if not all(i in in_form for i in ids):
            continue
        if rule["operator"] == "less_than_or_equal_to":
            return in_form[ids[0]], in_form[ids[1]]
        if rule["operator"] == "greater_than_or_equal_to":
            return in_form[ids[1]], in_form[ids[0]]
    raise AssertionError("the demo has no simple Form-1 rule")


async def _plant(hub: RunningHub, http: aiohttp.ClientSession) -> dict[str, int]:
    """The other clinic's and the UHC's data, with a value and text no CHCP may see."""
    left, right = _violated_rule()
    for ou in (C.other_clinic, C.uhc):
        ds = DS if ou == C.other_clinic else C.uhc_form["id"]
        de = DE if ou == C.other_clinic else C.element("INTEGER_ZERO_OR_POSITIVE", C.uhc_form)
        body = {"dataSet": ds, "period": PE, "orgUnit": ou, "dataValues": [
            {"dataElement": de["id"], "categoryOptionCombo": C.cocs(de)[0],
             "value": MARK_VALUE, "comment": MARK_TEXT}]}
        if ou == C.other_clinic:
            body["dataValues"] += [
                {"dataElement": left["id"], "categoryOptionCombo": C.cocs(left)[0],
                 "value": MARK_VALUE},
                {"dataElement": right["id"], "categoryOptionCombo": C.cocs(right)[0],
                 "value": "1"}]
        async with http.post(f"{hub.url}/api/dataValueSets", json=body, headers=ADMIN) as r:
            assert r.status == 200, await r.text()
        async with http.post(f"{hub.url}/api/completeDataSetRegistrations", headers=ADMIN,
                             json={"completeDataSetRegistrations": [
                                 {"dataSet": ds, "period": PE, "organisationUnit": ou,
                                  "storedBy": MARK_TEXT}]}) as r:
            assert r.status == 200, await r.text()

    def conflict_and_rejection(tx: Any) -> int:
        key = {"de": DE["id"], "pe": PE, "ou": C.other_clinic, "coc": COC, "aoc": C.default_coc}
        now = to_iso(tx.stamp())
        cur = tx.execute(
            "INSERT INTO sync_conflict(entity, key, data_set, hub_value, hub_user, hub_at, "
            "national_value, national_user, winner, policy, reason, detected_at, org_unit) "
            "VALUES ('datavalue',?,?,?,?,?,?,?,?,?,?,?,?)",
            (json.dumps(key), DS, MARK_VALUE, MARK_TEXT, now, MARK_VALUE, MARK_TEXT,
             "national", "latest-wins", MARK_TEXT, now, C.other_clinic))
        tx.execute("INSERT INTO sync_rejection(entity, key, error_code, message, at, username, "
                   "org_unit, value) VALUES ('datavalue',?,?,?,?,?,?,?)",
                   ("|".join(key.values()), "E7619", MARK_TEXT, now, "chcp", C.other_clinic,
                    MARK_VALUE))
        return int(cur.lastrowid)
    conflict = await hub.store.write(conflict_and_rejection)
    return {"conflict": conflict}


def _leaks(text: str) -> bool:
    return MARK_VALUE in text or MARK_TEXT in text


async def _send(http: aiohttp.ClientSession, hub: RunningHub, p: Probe, ou: str,
                ids: dict[str, int]) -> tuple[int, str]:
    path = p.path.format(**ids)
    kw: dict[str, Any] = {"params": p.params(ou), "headers": CHCP}
    if p.body is not None:
        kw["json"] = p.body(ou)
    elif p.form:
        kw["data"], kw["params"] = kw["params"], {}
    async with http.request(p.method, hub.url + path, **kw) as r:
        return r.status, await r.text()


@pytest.mark.parametrize("kind", list(OU_KINDS))
async def test_chcp_is_kept_to_their_clinic(hub: RunningHub, http: aiohttp.ClientSession,
                                            kind: str) -> None:
    ou = OU_KINDS[kind]
    ids = await _plant(hub, http)
    before = _snapshot(hub)
    for key, probes in PROBES.items():
        for p in probes:
            status, text = await _send(http, hub, p, ou, ids)
            where = f"{p.method} {p.path} {p.params(ou)} about {kind}"
            assert status < 500, where
            assert not _leaks(text), f"{where} shows the other clinic's data: {text[:300]}"
            if status in p.refused:
                continue
            assert status in (200, 201, 204), f"{where}: {status} {text[:200]}"
            if key[0] == "GET":
                continue  # a read that shows nothing of the org unit
            # a write that was 'accepted' must have stored nothing outside the clinic:
            # DHIS2's import summary carries the per-value E7617 conflicts
            body = json.loads(text) if text else {}
            counts = (body.get("response") or {}).get("importCount") or {}
            assert not (counts.get("imported") or counts.get("updated") or
                        counts.get("deleted")), f"{where}: {text[:300]}"
        assert _snapshot(hub) == before, f"{key} changed stored data about {kind}"


async def test_get_sweep_never_shows_another_clinic(hub: RunningHub,
                                                    http: aiohttp.ClientSession) -> None:
    """Every GET route, whatever its class, with every org-unit parameter name the hub
    reads set to the other clinic: the marker never comes back to the CHCP."""
    ids = await _plant(hub, http)
    ou = C.other_clinic
    generic = {"ou": ou, "orgUnit": ou, "orgUnits": ou, "org_unit": ou, "ds": DS,
               "dataSet": DS, "pe": PE, "period": PE, "children": "true", "de": DE["id"],
               "status": "all", "fields": "*", "paging": "false"}
    fill = {"{ds}": DS, "{ns}": "ANDROID_SETTINGS_APP", "{key}": "info", "{auth}": "ALL",
            "{collection}": "dataSets", "{uid}": DS, "{id}": str(ids["conflict"]),
            "{name}": "hub.js"}
    swept = 0
    for method, path in sorted(registered(hub)):
        if method != "GET":
            continue
        for k, v in fill.items():
            path = path.replace(k, v)
        async with http.get(hub.url + path, params=generic, headers=CHCP) as r:
            text = await r.text()
            assert r.status < 500, path
            assert not _leaks(text), f"GET {path} shows the other clinic's data"
        swept += 1
    assert swept >= 30
    # the planted data is really there for someone allowed to see it
    async with http.get(f"{hub.url}/api/dataValueSets", headers=ADMIN, params={
            "dataSet": DS, "period": PE, "orgUnit": ou}) as r:
        assert _leaks(await r.text())
    async with http.get(f"{hub.url}/api/validation/dataSet/{DS}", headers=ADMIN, params={
            "pe": PE, "ou": ou}) as r:
        assert MARK_VALUE in await r.text()
