"""The DHIS2 Android SDK's call sequence, replayed against a real hub on a real port.

Login → metadata download → aggregate data download → aggregate upload → incremental
download, with the SDK's exact parameters (DHIS2-API-NOTES §3–§5; tests/contract/sdk.py) and
its HTTP habits: Basic on the login call, then only the session cookie if the server set one,
``x-dhis2-user-id`` on every call after login, JSON replies only, and a 3xx to a login page
meaning "session expired". Each step asserts its status and what the SDK reads from the reply.

Where the real SDK differs in a way that matters here: its incremental download sends the
watermark minus 24 hours; this replay sends the previous ``serverDate`` itself, so that "only
what changed" is checkable to the millisecond.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import aiohttp

from appliance import demo
from tests.conftest import ADMIN, RunningHub, basic
from tests.contract import sdk
from tests.hub.cells import cells, month

C = cells()
CC_FORM_IDS = {d["id"] for d in C.doc["dataSets"] if d["name"].startswith("CC Form-")}
_DE_REF = re.compile(r"#\{([A-Za-z][A-Za-z0-9]{10})")


@dataclass
class Call:
    method: str
    path: str
    params: list[tuple[str, str]]
    status: int


@dataclass
class Metadata:
    me: dict[str, Any]
    org_units: dict[str, dict[str, Any]]
    capture_roots: list[str]
    data_sets: dict[str, dict[str, Any]]
    data_elements: dict[str, dict[str, Any]]
    option_sets: dict[str, dict[str, Any]]
    options: dict[str, dict[str, Any]]
    validation_rules: dict[str, dict[str, Any]]
    category_combos: dict[str, dict[str, Any]]
    categories: dict[str, dict[str, Any]]
    category_options: dict[str, dict[str, Any]]
    default_combo: dict[str, Any]


@dataclass
class Sdk:
    """Just enough of the SDK's HTTP client (okhttp/ktor with its auth interceptors)."""

    session: aiohttp.ClientSession
    hub: RunningHub
    username: str
    password: str
    user_id: str | None = None
    cookie_only: bool = False
    calls: list[Call] = field(default_factory=list)

    def _headers(self) -> dict[str, str]:
        h = {"Accept": "application/json"}
        if not self.cookie_only:
            h.update(basic(self.username, self.password))
        if self.user_id:
            h["x-dhis2-user-id"] = self.user_id
        return h

    async def call(self, method: str, path: str, params: Sequence[tuple[str, str]] = (),
                   body: Any = None, expect: Sequence[int] = (200,)) -> Any:
        async with self.session.request(method, self.hub.api(path), params=list(params),
                                        json=body, headers=self._headers(),
                                        allow_redirects=False) as r:
            self.calls.append(Call(method, path, list(params), r.status))
            location = r.headers.get("Location", "")
            # the only thing the SDK takes for an expired session
            assert not (300 <= r.status < 400 and ("login.action" in location
                                                   or "dhis-web-login" in location)), location
            raw = await r.read()
            assert r.status in expect, (method, path, params, r.status, raw[:500])
            if not raw:
                return None
            assert r.content_type == "application/json", (path, r.content_type)
            return json.loads(raw)

    async def get(self, path: str, params: Sequence[tuple[str, str]] = (),
                  expect: Sequence[int] = (200,)) -> Any:
        return await self.call("GET", path, params, expect=expect)

    async def settings(self, path: str) -> Any:
        """A dataStore read the SDK tolerates as 404 (no Android Settings App installed)."""
        body = await self.get(path, expect=(200, 404))
        if self.calls[-1].status == 404:  # must still be a WebMessage, not HTML
            assert body["httpStatusCode"] == 404 and body["status"] == "ERROR", body
            return None
        return body

    # -- §3 login --------------------------------------------------------------------------
    async def login(self) -> dict[str, Any]:
        me = await self.get("me", [("fields", sdk.ME_LOGIN)])
        assert sdk.UID.match(me["id"])  # the one non-nullable field of UserDTO
        assert me["username"] == self.username
        assert me["userRoles"] and all(sdk.UID.match(r["id"]) for r in me["userRoles"])
        assert isinstance(me["userGroups"], list)
        for ou in me["organisationUnits"] + me["teiSearchOrganisationUnits"]:
            assert ou["path"].split("/")[-1] == ou["id"]
        self.user_id = me["id"]
        if any(c.key == "JSESSIONID" for c in self.session.cookie_jar):
            self.cookie_only = True  # from now on the SDK sends only the cookie
        if await self.settings("dataStore/ANDROID_SETTINGS_APP/info") is None:
            await self.settings("dataStore/ANDROID_SETTING_APP/general_settings")
        await self.settings("dataStore/ANDROID_SETTINGS_APP/generalSettings")
        await self.system_info()
        return me

    async def system_info(self) -> str:
        info = await self.get("system/info", [("fields", sdk.SYSTEM_INFO)])
        assert sdk.version_ok(info["version"]), info["version"]
        sdk.parse_server_date(info["serverDate"])
        assert info["serverTimeZoneId"]
        return str(info["serverDate"])

    # -- §4 metadata -------------------------------------------------------------------------
    async def metadata(self) -> Metadata:
        await self.system_info()
        assert "apiVersion" in await self.get("loginConfig")
        for key in ("generalSettings", "synchronization", "appearance", "analytics",
                    "customIntents"):
            await self.settings(f"dataStore/ANDROID_SETTINGS_APP/{key}")
        us = await self.get("userSettings", [("fields", sdk.USER_SETTINGS)])
        assert all(isinstance(us.get(k), str | None) for k in sdk.USER_SETTINGS.split(","))
        ss = await self.get("systemSettings", [("key", sdk.SYSTEM_SETTING_KEYS)])
        assert set(ss) <= set(sdk.SYSTEM_SETTING_KEYS.split(","))
        await self.get("systemSettings", [("key", "keyBingMapsApiKey")])
        await self.settings("dataStore/APK_DISTRIBUTION/versions")
        await self.settings("dataStore/USE_CASES/stockUseCases")
        constants = await self.get("constants", [("fields", sdk.CONSTANT), ("paging", "false")])
        assert all(isinstance(c["value"], int | float) for c in constants["constants"])
        default = await self.get("categoryCombos", [
            ("fields", sdk.CATEGORY_COMBO), ("filter", "isDefault:eq:true"), ("paging", "false")])
        default_combo = next(c for c in default["categoryCombos"] if c.get("isDefault") is True)
        me = await self.get("me", [("fields", sdk.ME_38)])
        assert me["id"] == self.user_id
        auths = await self.get("me/authorization")
        assert isinstance(auths, list) and all(isinstance(a, str) for a in auths) and auths
        levels = await self.get("organisationUnitLevels", [("fields", sdk.ORG_UNIT_LEVEL),
                                                           ("paging", "false")])
        assert {type(lv["level"]) for lv in levels["organisationUnitLevels"]} == {int}

        # org units: the search scope's roots, then capture roots outside it, each paged
        search_roots = sdk.find_roots(me["teiSearchOrganisationUnits"])
        capture_roots = sdk.find_roots(me["organisationUnits"])
        paths = {o["id"]: set(o["path"].split("/")) for o in me["organisationUnits"]}
        outside = [r for r in capture_roots if not paths[r] & set(search_roots)]
        org_units: dict[str, dict[str, Any]] = {}
        for root in search_roots + outside:
            page = 1
            while True:
                body = await self.get("organisationUnits", [
                    ("fields", sdk.ORG_UNIT), ("filter", f"path:like:{root}"),
                    ("order", "id:asc"), ("paging", "true"),
                    ("pageSize", str(sdk.ORG_UNIT_PAGE)), ("page", str(page))])
                for ou in body["organisationUnits"]:
                    assert root in ou["path"].split("/")
                    org_units[ou["id"]] = ou
                if len(body["organisationUnits"]) < sdk.ORG_UNIT_PAGE:
                    break
                page += 1
        capture = {u for u in org_units
                   if set(org_units[u]["path"].split("/")) & set(capture_roots)}
        # programs: the union of programs[id] over the user's org units, then their stages,
        # rules, tracked entity types and attributes, each by an id filter
        prog_ids = sorted({p["id"] for ou in org_units.values() for p in ou.get("programs", [])})
        assert len(prog_ids) == 3  # the maternal, EPI and under-5 registers
        body = await self.get("programs", [
            ("fields", "id,name,programType,trackedEntityType[id],programStages[id],"
                       "programTrackedEntityAttributes[trackedEntityAttribute[id],mandatory]"),
            ("filter", sdk.in_filter("id", prog_ids)),
            ("filter", "access.data.read:eq:true"), ("paging", "false")])
        programs = {p["id"]: p for p in body["programs"]}
        assert sorted(programs) == prog_ids
        assert {p["programType"] for p in programs.values()} == {"WITH_REGISTRATION"}
        stage_ids = sorted({s["id"] for p in programs.values() for s in p["programStages"]})
        body = await self.get("programStages", [
            ("fields", "id,program[id],repeatable,programStageDataElements[dataElement[id]]"),
            ("filter", sdk.in_filter("program.id", prog_ids)), ("paging", "false")])
        assert sorted(s["id"] for s in body["programStages"]) == stage_ids
        body = await self.get("programRules", [
            ("fields", "id,condition,program[id],programRuleActions[id]"),
            ("filter", sdk.in_filter("program.id", prog_ids)), ("paging", "false")])
        assert body["programRules"] and {r["program"]["id"] for r in body["programRules"]} \
            <= set(prog_ids)
        tet = sorted({p["trackedEntityType"]["id"] for p in programs.values()})
        body = await self.get("trackedEntityTypes", [
            ("fields", "id,trackedEntityTypeAttributes[trackedEntityAttribute[id]]"),
            ("filter", sdk.in_filter("id", tet)), ("paging", "false")])
        assert [t["id"] for t in body["trackedEntityTypes"]] == tet
        tea = sorted({a["trackedEntityAttribute"]["id"] for p in programs.values()
                      for a in p["programTrackedEntityAttributes"]})
        body = await self.get("trackedEntityAttributes", [
            ("fields", "id,valueType,unique,generated,pattern,optionSet[id]"),
            ("filter", sdk.in_filter("id", tea)), ("paging", "false")])
        assert sorted(a["id"] for a in body["trackedEntityAttributes"]) == tea

        # data sets: the union of dataSets[id] over the user's org units
        ds_ids = sorted({d["id"] for u in capture for d in org_units[u]["dataSets"]})
        body = await self.get("dataSets", [
            ("fields", sdk.DATA_SET), ("filter", sdk.in_filter("id", ds_ids)),
            ("filter", "access.data.read:eq:true"), ("paging", "false")])
        data_sets = {d["id"]: d for d in body["dataSets"]}
        assert sorted(data_sets) == ds_ids
        de_ids = sorted({e["dataElement"]["id"] for d in data_sets.values()
                         for e in d["dataSetElements"]})
        data_elements: dict[str, dict[str, Any]] = {}
        for part in sdk.chunks(de_ids, sdk.DATA_ELEMENTS_PER_CALL):
            body = await self.get("dataElements", [
                ("fields", sdk.DATA_ELEMENT), ("filter", sdk.in_filter("id", part)),
                ("filter", "access.read:eq:true"), ("paging", "false")])
            assert sorted(d["id"] for d in body["dataElements"]) == part
            data_elements.update((d["id"], d) for d in body["dataElements"])

        os_ids = sorted({d["optionSet"]["id"] for d in data_elements.values()
                         if d.get("optionSet")})
        option_sets: dict[str, dict[str, Any]] = {}
        options: dict[str, dict[str, Any]] = {}
        for part in sdk.chunks(os_ids, sdk.OPTION_SETS_PER_CALL):
            body = await self.get("optionSets", [
                ("fields", sdk.OPTION_SET), ("filter", sdk.in_filter("id", part)),
                ("paging", "false")])
            option_sets.update((o["id"], o) for o in body["optionSets"])
            body = await self.get("options", [
                ("fields", sdk.OPTION), ("filter", sdk.in_filter("optionSet.id", part)),
                ("paging", "true"), ("page", "1"), ("pageSize", str(sdk.OPTION_PAGE))])
            assert len(body["options"]) < sdk.OPTION_PAGE
            options.update((o["id"], o) for o in body["options"])
        assert sorted(option_sets) == os_ids
        assert {o["optionSet"]["id"] for o in options.values()} == set(os_ids)

        rule_ids: set[str] = set()
        for ds in ds_ids:
            body = await self.get("validationRules", [("dataSet", ds), ("fields", "id"),
                                                      ("paging", "false")])
            rule_ids |= {r["id"] for r in body["validationRules"]}
        rules: dict[str, dict[str, Any]] = {}
        if rule_ids:
            body = await self.get("validationRules", [
                ("fields", sdk.VALIDATION_RULE), ("filter", sdk.in_filter("id", sorted(rule_ids))),
                ("paging", "false")])
            rules = {r["id"]: r for r in body["validationRules"]}
        assert set(rules) == rule_ids
        for r in rules.values():  # the rules are about the data sets the user reports
            refs = set(_DE_REF.findall(r["leftSide"]["expression"] + r["rightSide"]["expression"]))
            assert refs and refs <= set(data_elements), (r["id"], refs - set(data_elements))

        cc_ids = sorted({d["categoryCombo"]["id"] for d in data_sets.values()}
                        | {d["categoryCombo"]["id"] for d in data_elements.values()}
                        | {e["categoryCombo"]["id"] for d in data_sets.values()
                           for e in d["dataSetElements"] if e.get("categoryCombo")})
        combos: dict[str, dict[str, Any]] = {}
        for part in sdk.chunks(cc_ids, sdk.CATEGORY_COMBOS_PER_CALL):
            body = await self.get("categoryCombos", [
                ("fields", sdk.CATEGORY_COMBO), ("filter", sdk.in_filter("id", part)),
                ("paging", "false")])
            combos.update((c["id"], c) for c in body["categoryCombos"])
        assert sorted(combos) == cc_ids
        assert all(c["categoryOptionCombos"] for c in combos.values())
        cat_ids = sorted({c["id"] for cc in combos.values() for c in cc["categories"]})
        categories: dict[str, dict[str, Any]] = {}
        for part in sdk.chunks(cat_ids, sdk.CATEGORIES_PER_CALL):
            body = await self.get("categories", [
                ("fields", sdk.CATEGORY), ("filter", sdk.in_filter("id", part)),
                ("paging", "false")])
            categories.update((c["id"], c) for c in body["categories"])
        assert sorted(categories) == cat_ids
        body = await self.get("categoryOptions", [
            ("fields", sdk.CATEGORY_OPTION), ("filter", sdk.in_filter("categories.id", cat_ids)),
            ("filter", "access.data.read:eq:true"), ("paging", "false")])
        category_options = {o["id"]: o for o in body["categoryOptions"]}
        wanted = {o["id"] for c in categories.values() for o in c["categoryOptions"]}
        assert set(category_options) == wanted
        # every option combo the forms use is made of options the SDK now has
        assert {o["id"] for cc in combos.values() for coc in cc["categoryOptionCombos"]
                for o in coc["categoryOptions"]} <= set(category_options)
        ou_map = await self.get("categoryOptions/orgUnits",
                                [("categoryOptions", ",".join(sorted(category_options)))])
        assert set(ou_map) == set(category_options)
        assert all(isinstance(v, list) for v in ou_map.values())
        return Metadata(me, org_units, capture_roots, data_sets, data_elements, option_sets,
                        options, rules, combos, categories, category_options, default_combo)

    # -- §5 aggregate data ---------------------------------------------------------------------
    def periods(self, md: Metadata) -> list[str]:
        futures = {d.get("openFuturePeriods") or 0 for d in md.data_sets.values()}
        assert {d["periodType"] for d in md.data_sets.values()} == {"Monthly"}
        return sdk.monthly_periods(max(futures))

    async def download(self, md: Metadata, last_updated: str | None
                       ) -> tuple[str, dict[str, list[dict[str, Any]]], list[dict[str, Any]]]:
        """One AggregatedDataCall: system/info, then values per data set, then completions."""
        server_date = await self.system_info()
        since = [("lastUpdated", last_updated)] if last_updated else []
        pes = ",".join(self.periods(md))
        roots = ",".join(md.capture_roots)
        values: dict[str, list[dict[str, Any]]] = {}
        for ds in sorted(md.data_sets):
            body = await self.get("dataValueSets", [
                ("fields", sdk.DATA_VALUE), *since, ("dataSet", ds), ("period", pes),
                ("orgUnit", roots), ("children", "true"), ("includeDeleted", "true"),
                ("paging", "false")])
            values[ds] = body["dataValues"]
            for v in values[ds]:  # only the capture subtree, only this data set's elements
                assert set(md.org_units[v["orgUnit"]]["path"].split("/")) & set(
                    md.capture_roots)
                assert v["dataElement"] in {e["dataElement"]["id"]
                                            for e in md.data_sets[ds]["dataSetElements"]}
        body = await self.get("completeDataSetRegistrations", [
            ("fields", sdk.COMPLETE_REGISTRATION), *since,
            ("dataSet", ",".join(sorted(md.data_sets))), ("period", pes), ("orgUnit", roots),
            ("children", "true"), ("paging", "false")])
        # dataApprovals/multiple is only called for data sets with a workflow: none here
        assert not any(d.get("workflow") for d in md.data_sets.values())
        return server_date, values, body["completeDataSetRegistrations"]

    async def upload(self, data_set: str, values: list[dict[str, Any]]
                     ) -> tuple[dict[str, Any], set[int]]:
        """POST one data set's values (SDK >= 2.39); 200 and 409 are both import summaries.
        Returns the summary and the indexes the SDK marks WARNING (the rest become SYNCED)."""
        body = await self.call("POST", "dataValueSets", body={
            "dataSet": data_set, "dataValues": [{k: v for k, v in d.items() if v is not None}
                                                for d in values]}, expect=(200, 409))
        r = body["response"]
        assert r["status"] in sdk.IMPORT_STATUSES and r["responseType"] == "ImportSummary"
        assert all(type(r["importCount"][k]) is int
                   for k in ("imported", "updated", "ignored", "deleted"))
        warned: set[int] = set()
        for c in r.get("conflicts") or []:
            assert isinstance(c["object"], str) and isinstance(c["value"], str)
            warned |= set(c["indexes"])
        assert warned <= set(range(len(values)))
        return r, warned


def sdk_value(de: str, coc: str, value: str, *, comment: str | None = None,
              deleted: bool = False, aoc: str = C.default_coc) -> dict[str, Any]:
    """DataValue.toDto(): created/lastUpdated are null and so left out, like every null."""
    return {"dataElement": de, "period": month(), "orgUnit": C.chcp_clinic,
            "categoryOptionCombo": coc, "attributeOptionCombo": aoc, "value": value,
            "storedBy": "chcp", "comment": comment, "followup": False, "deleted": deleted}


async def post_as_admin(http: aiohttp.ClientSession, hub: RunningHub, ds: str,
                        values: list[dict[str, Any]]) -> None:
    async with http.post(hub.api("dataValueSets"), json={"dataSet": ds, "dataValues": values},
                         headers=ADMIN) as r:
        assert r.status == 200, await r.text()


def key(v: dict[str, Any]) -> tuple[str, str, str, str, str]:
    return (v["dataElement"], v["period"], v["orgUnit"], v["categoryOptionCombo"],
            v["attributeOptionCombo"])


async def test_chcp_login_metadata_download_upload_incremental(hub: RunningHub) -> None:
    form1, form2 = C.form1["id"], C.ds("Form-2")["id"]
    num = C.element("INTEGER_ZERO_OR_POSITIVE", C.form1)
    cocs = C.cocs(num)
    other = next(de for de in C.elements(C.form1)
                 if de["id"] != num["id"] and de["valueType"].startswith("INTEGER"))
    form2_de = C.element("INTEGER_ZERO_OR_POSITIVE", C.ds("Form-2"))

    # before the tablet logs in, the upazila office entered some of the clinic's Form-1 on the
    # web, and another clinic's (which this CHCP must never download)
    async with aiohttp.ClientSession() as http:
        await post_as_admin(http, hub, form1, [
            C.value(num, "5", coc=cocs[0]),                       # the CHCP will correct it
            C.value(num, "6", coc=cocs[1]),                       # untouched
            C.value(num, "9", coc=cocs[3]),                       # the CHCP will delete it
            C.value(num, "1", coc=cocs[0], ou=C.other_clinic)])

    jar = aiohttp.CookieJar(unsafe=True)  # 127.0.0.1 is an IP address: keep its cookies
    async with aiohttp.ClientSession(cookie_jar=jar) as session:
        tablet = Sdk(session, hub, "chcp", "district")
        # before login the app may ask, without credentials, whether this is a DHIS2 server
        async with session.get(hub.api("loginConfig")) as r:
            assert r.status == 200 and r.content_type == "application/json"

        me = await tablet.login()
        assert [o["id"] for o in me["organisationUnits"]] == [C.chcp_clinic]
        md = await tablet.metadata()
        assert md.capture_roots == [C.chcp_clinic]
        # the CHCP searches the whole upazila for people: the SDK takes its subtree too
        assert set(md.org_units) == {o["id"] for o in C.doc["organisationUnits"]
                                     if demo.RAMU_UID in o["path"].split("/")}
        assert [c.path for c in tablet.calls].count("organisationUnits") == 1  # one page
        assert set(md.data_sets) == CC_FORM_IDS  # exactly the four CC forms, not the UHC's
        assert md.default_combo["id"] == demo.DEFAULT_CATEGORY_COMBO_UID
        assert {v["id"] for v in md.option_sets.values()} <= {o["id"] for o in C.doc["optionSets"]}

        # -- first aggregate download (no watermark yet) --
        w1, values, regs = await tablet.download(md, None)
        assert {key(v): v["value"] for v in values[form1]} == {
            key(C.value(num, "", coc=cocs[0]) | {"attributeOptionCombo": C.default_coc}): "5",
            key(C.value(num, "", coc=cocs[1]) | {"attributeOptionCombo": C.default_coc}): "6",
            key(C.value(num, "", coc=cocs[3]) | {"attributeOptionCombo": C.default_coc}): "9"}
        assert all(values[ds] == [] for ds in CC_FORM_IDS - {form1}) and regs == []
        await asyncio.sleep(0.01)  # edits land strictly after the watermark (ms resolution)

        # -- the CHCP edits offline, then syncs: one POST per data set --
        form1_edits = [
            sdk_value(num["id"], cocs[0], "12"),                          # updated
            sdk_value(other["id"], C.cocs(other)[0], "3", comment="from register"),  # new
            sdk_value(num["id"], cocs[2], "-3"),                          # wrong type: WARNING
            sdk_value(num["id"], cocs[3], "9", deleted=True)]             # deleted
        summary, warned = await tablet.upload(form1, form1_edits)
        assert tablet.calls[-1].status == 409 and summary["status"] == "WARNING"
        assert warned == {2}  # only that value is WARNING; the other three become SYNCED
        assert summary["conflicts"][0]["errorCode"] == "E7619"
        assert summary["importCount"] == {"imported": 1, "updated": 1, "ignored": 1, "deleted": 1}
        assert tablet.calls[-1].params == []  # the SDK sends no query parameters

        form2_cocs = C.cocs(form2_de)
        form2_edits = [sdk_value(form2_de["id"], coc, str(i + 1))
                       for i, coc in enumerate(form2_cocs[:2])]
        summary, warned = await tablet.upload(form2, form2_edits)
        assert tablet.calls[-1].status == 200 and summary["status"] == "SUCCESS" and not warned
        assert summary["importCount"]["imported"] == len(form2_edits)

        today = date.today().isoformat()
        reply = await tablet.call("POST", "completeDataSetRegistrations", body={
            "completeDataSetRegistrations": [
                {"period": month(), "dataSet": ds, "organisationUnit": C.chcp_clinic,
                 "attributeOptionCombo": C.default_coc, "date": today, "storedBy": "chcp",
                 "completed": True} for ds in (form1, form2)]}, expect=(200, 409))
        assert reply["response"]["status"] == "SUCCESS"
        assert reply["response"]["importCount"]["imported"] == 2

        # un-complete Form-2: cc is the attribute option combo's combo, cp its options
        aoc = next(coc for cc in md.category_combos.values()
                   for coc in cc["categoryOptionCombos"] if coc["id"] == C.default_coc)
        aoc_combo = next(cc["id"] for cc in md.category_combos.values()
                         if aoc in cc["categoryOptionCombos"])
        await tablet.call("DELETE", "completeDataSetRegistrations", [
            ("ds", form2), ("pe", month()), ("ou", C.chcp_clinic), ("cc", aoc_combo),
            ("cp", ";".join(o["id"] for o in aoc["categoryOptions"])), ("multiOu", "false")],
            expect=(200, 202, 204))

        # -- incremental download: only what changed since the first download's serverDate --
        await asyncio.sleep(0.01)  # so that w2 is strictly after the last write
        w2, values, regs = await tablet.download(md, w1)
        assert w2 > w1
        got = {key(v): (v.get("value"), v["deleted"]) for v in values[form1]}
        assert got == {key(form1_edits[0]): ("12", False), key(form1_edits[1]): ("3", False),
                       key(form1_edits[3]): ("9", True)}  # not the untouched "6", not "-3"
        assert next(v for v in values[form1] if key(v) == key(form1_edits[1]))["comment"] == \
            "from register"
        assert {key(v): v["value"] for v in values[form2]} == \
            {key(v): v["value"] for v in form2_edits}
        assert all(values[ds] == [] for ds in CC_FORM_IDS - {form1, form2})
        assert [(r["dataSet"], r["period"], r["organisationUnit"], r["completed"], r["date"])
                for r in regs] == [(form1, month(), C.chcp_clinic, True, today)]
        for v in values[form1] + values[form2]:
            assert v["lastUpdated"] > w1 and sdk.parse_server_date(v["lastUpdated"])

        _, values, regs = await tablet.download(md, w2)  # nothing changed since
        assert all(v == [] for v in values.values()) and regs == []

        assert all(c.status < 500 for c in tablet.calls)
        assert tablet.calls[0].path == "me"


async def test_admin_gets_the_whole_upazila(hub: RunningHub) -> None:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        office = Sdk(session, hub, "admin", "district")
        me = await office.login()
        md = await office.metadata()
        assert md.capture_roots == [demo.RAMU_UID] == [o["id"] for o in me["organisationUnits"]]
        ramu = {o["id"] for o in C.doc["organisationUnits"] if demo.RAMU_UID in o["path"]}
        assert set(md.org_units) == ramu
        assert set(md.data_sets) == {d["id"] for d in C.doc["dataSets"]}  # the UHC's form too
        _, values, regs = await office.download(md, None)
        assert all(v == [] for v in values.values()) and regs == []
