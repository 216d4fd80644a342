"""Contract tests against real DHIS2 server replies (the Android SDK's own test fixtures).

For every request in the reference README's table that the hub covers, the hub is asked the
same thing with the query parameters the Android SDK sends (tests/contract/sdk.py), and its
reply must carry every field the fixture carries, in the same JSON types, with timestamps and
dates written the way the SDK parses them (tests/contract/shapes.py). Fixture fields the SDK
does not need are listed per endpoint, each with the reason, and every such entry must name a
field the fixture really has.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest

from appliance import demo
from tests.conftest import ADMIN, CHCP, RunningHub, basic
from tests.contract import sdk
from tests.contract.shapes import TIMESTAMP, conforms
from tests.hub.cells import cells, month

C = cells()
RAMU = demo.RAMU_UID
CC_FORMS = [d for d in C.doc["dataSets"] if d["name"].startswith("CC Form-")]
ALL_DATA_SETS = [d["id"] for d in C.doc["dataSets"]]
FORM1_ELEMENTS = [e["dataElement"]["id"] for e in C.form1["dataSetElements"]]
COMBOS = sorted({d["categoryCombo"]["id"] for d in C.doc["dataSets"]}
                | {C.by_id[e]["categoryCombo"]["id"] for e in FORM1_ELEMENTS})
CATEGORIES = sorted({c["id"] for cc in COMBOS for c in C.by_id[cc]["categories"]})
OPTION_SETS = sorted({o["id"] for o in C.doc["optionSets"]})

# Fields of DHIS2's sharing/favourite/analytics machinery that the SDK never asks for.
SHARING = ("href", "publicAccess", "externalAccess", "userAccesses", "userGroupAccesses",
           "access", "favorite", "favorites", "translations", "attributeValues", "user",
           "dimensionItem", "dimensionItemType", "legendSets")


def is_uid(uid: str) -> bool:
    return bool(sdk.UID.match(uid))


def under(prefix: str, names: Sequence[str]) -> list[str]:
    return [f"{prefix}{n}" for n in names]


async def get(http: aiohttp.ClientSession, hub: RunningHub, path: str,
              params: Sequence[tuple[str, str]] = (), auth: dict[str, str] | None = None
              ) -> tuple[int, Any]:
    async with http.get(hub.api(path), params=list(params),
                        headers=ADMIN if auth is None else auth) as r:
        assert r.content_type == "application/json", (path, r.content_type)
        return r.status, await r.json()


def assert_conforms(actual: Any, fixture_name: str, ignore: Sequence[str] = ()) -> None:
    problems = conforms(actual, sdk.fixture(fixture_name), ignore)
    assert not problems, f"hub reply vs {fixture_name}:\n  " + "\n  ".join(problems)


# -- metadata: one table, one request each --------------------------------------------------
@dataclass(frozen=True)
class Case:
    id: str
    path: str
    params: list[tuple[str, str]]
    fixture: str
    ignore: list[str] = field(default_factory=list)
    collection: str | None = None  # a list that must come back non-empty
    auth: dict[str, str] | None = None  # default: admin


NO_PAGER = "pager"  # paging=false: a real server sends no pager either

CASES = [
    Case("organisationUnits", "organisationUnits", [
        ("fields", sdk.ORG_UNIT), ("filter", f"path:like:{RAMU}"), ("order", "id:asc"),
        ("paging", "true"), ("pageSize", str(sdk.ORG_UNIT_PAGE)), ("page", "1")],
        "organisationunit/organisation_units.json", [
            # later wave (tracker): the hub has no programs; the DTO defaults a missing list to []
            "organisationUnits[].programs",
            # beyond OrganisationUnitGroupFields (identifiable + shortName/displayShortName)
            *under("organisationUnits[].organisationUnitGroups[].", (
                *(f for f in SHARING if f != "href"), "symbol", "featureType", "groupSets",
                "organisationUnits"))],
        "organisationUnits"),
    Case("organisationUnitLevels", "organisationUnitLevels", [
        ("fields", sdk.ORG_UNIT_LEVEL), ("paging", "false")],
        "organisationunit/organisation_unit_levels.json", [], "organisationUnitLevels"),
    Case("dataSets", "dataSets", [
        ("fields", sdk.DATA_SET), ("filter", sdk.in_filter("id", ALL_DATA_SETS)),
        ("filter", "access.data.read:eq:true"), ("paging", "false")],
        "dataset/data_sets.json", [
            # DataSetElement.categoryCombo is an optional override; DHIS2 writes it only when set
            "dataSets[].dataSetElements[].categoryCombo",
            # a JSON string DHIS2 writes only when configured; nullable in DataSetDTO
            "dataSets[].displayOptions",
            # SectionDTO: nullable / defaulted, and unset on the demo's sections
            "dataSets[].sections[].disableDataElementAutoGroup",
            "dataSets[].sections[].displayOptions",
            "dataSets[].sections[].indicators"],
        "dataSets"),
    Case("dataElements", "dataElements", [
        ("fields", sdk.DATA_ELEMENT), ("filter", sdk.in_filter("id", FORM1_ELEMENTS[:100])),
        ("filter", "access.read:eq:true"), ("paging", "false")],
        "dataelement/data_elements.json", [
            # not in DataElementFields
            *under("dataElements[].", ("href", "publicAccess", "externalAccess", "dimensionItem",
                                       "dimensionItemType", "optionSetValue")),
            # ObjectWithStyleDTO is nullable; the demo elements have no colour or icon
            "dataElements[].style"],
        "dataElements"),
    Case("categoryCombos-default", "categoryCombos", [
        ("fields", sdk.CATEGORY_COMBO), ("filter", "isDefault:eq:true"), ("paging", "false")],
        "category/default_category_combo.json", [
            # not in CategoryOptionComboFields (the SDK links the combo itself)
            "categoryCombos[].categoryOptionCombos[].categoryCombo",
            # nullable; the demo's option combos have no code
            "categoryCombos[].categoryOptionCombos[].code"],
        "categoryCombos"),
    Case("categoryCombos", "categoryCombos", [
        ("fields", sdk.CATEGORY_COMBO), ("filter", sdk.in_filter("id", COMBOS)),
        ("paging", "false")],
        "category/category_combos.json", [
            NO_PAGER,
            "categoryCombos[].categoryOptionCombos[].categoryCombo",
            "categoryCombos[].categoryOptionCombos[].code"],
        "categoryCombos"),
    Case("categories", "categories", [
        ("fields", sdk.CATEGORY), ("filter", sdk.in_filter("id", CATEGORIES)),
        ("paging", "false")],
        "category/categories.json", [
            NO_PAGER,
            "categories[].shortName"],  # not in CategoryFields (identifiable only)
        "categories"),
    Case("categoryOptions", "categoryOptions", [
        ("fields", sdk.CATEGORY_OPTION), ("filter", sdk.in_filter("categories.id", CATEGORIES)),
        ("filter", "access.data.read:eq:true"), ("paging", "false")],
        "category/category_options.json", [
            NO_PAGER,
            "categoryOptions[].description"],  # nullable; the demo options have none
        "categoryOptions"),
    Case("optionSets", "optionSets", [
        ("fields", sdk.OPTION_SET), ("filter", sdk.in_filter("id", OPTION_SETS)),
        ("paging", "false")],
        "option/option_sets.json", [], "optionSets"),
    Case("options", "options", [
        ("fields", sdk.OPTION), ("filter", sdk.in_filter("optionSet.id", OPTION_SETS)),
        ("paging", "true"), ("page", "1"), ("pageSize", str(sdk.OPTION_PAGE))],
        "option/options.json", [], "options"),
    # the hub holds no option groups: a well-formed empty answer (its shape is still checked)
    Case("optionGroups", "optionGroups", [
        ("fields", f"{sdk.IDENTIFIABLE},optionSet[id],options[id]"),
        ("filter", sdk.in_filter("optionSet.id", OPTION_SETS)), ("paging", "false")],
        "option/option_groups.json"),
    Case("validationRules-dataSet", "validationRules", [
        ("dataSet", C.form1["id"]), ("fields", "id"), ("paging", "false")],
        "validation/validation_rule_uids.json", [], "validationRules"),
    Case("constants", "constants", [("fields", sdk.CONSTANT), ("paging", "false")],
         "constant/constants.json",
         # not in ConstantFields
         under("constants[].", ("href", "externalAccess", "favorite", "access", "favorites",
                                "userGroupAccesses", "attributeValues", "translations",
                                "userAccesses")),
         "constants"),
    Case("userSettings", "userSettings", [("fields", sdk.USER_SETTINGS)],
         "settings/user_settings.json"),
    Case("systemSettings", "systemSettings", [("key", sdk.SYSTEM_SETTING_KEYS)],
         "settings/system_settings.json", [
             # SystemSettingsDTO: all nullable; none of these is configured on the hub
             "keyCustomColorMobile", "keyDefaultBaseMap", "analyticsFinancialYearStart",
             "analyticsWeeklyStart",
             # asked for by a separate call, key=keyBingMapsApiKey
             "keyBingMapsApiKey"]),
    # asked before login, without credentials
    Case("loginConfig", "loginConfig", [], "server/login_config.json", [
        # LoginConfigDTO: nullable, and not configured on the hub
        "loginPageLogo", "loginPopup", "recaptchaSite",
        # not in LoginConfigDTO
        "loginPageTemplate"], auth={}),
    Case("me", "me", [("fields", sdk.ME_38)], "user/user38.json", [
        # later wave (tracker): programs on user roles
        "userRoles[].programs",
        # not in UserGroupFields (identifiable only); the demo users have no groups anyway
        "userGroups[].href", "userGroups[].createdBy"]),
    Case("me/authorization", "me/authorization", [], "authority/authorities.json"),
    Case("system/info", "system/info", [("fields", sdk.SYSTEM_INFO)],
         "systeminfo/system_info.json", [
             # not in SystemInfoFields
             "userAgent", "calendar", "lastAnalyticsTableSuccess",
             "intervalSinceLastAnalyticsTableSuccess", "lastAnalyticsTableRuntime", "revision",
             "buildTime", "jasperReportsVersion", "environmentVariable", "databaseInfo",
             "encryption", "systemId", "isMetadataVersionEnabled", "isMetadataSyncEnabled"]),
    # what web apps, dhis2.py and dhis2-client read: everything
    Case("system/info-all", "system/info", [], "systeminfo/system_info.json", [
        # the hub runs no analytics tables and has no Jasper
        "lastAnalyticsTableSuccess", "intervalSinceLastAnalyticsTableSuccess",
        "lastAnalyticsTableRuntime", "jasperReportsVersion"]),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_metadata_matches_fixture(hub: RunningHub, http: aiohttp.ClientSession,
                                        case: Case) -> None:
    status, body = await get(http, hub, case.path, case.params, auth=case.auth)
    assert status == 200, body
    assert_conforms(body, case.fixture, case.ignore)
    if case.collection:
        assert body[case.collection], f"{case.path}: empty {case.collection}"


# -- what the shapes alone do not say ------------------------------------------------------------
async def test_org_units_paged_by_path_in_id_order(hub: RunningHub,
                                                   http: aiohttp.ClientSession) -> None:
    seen: list[dict[str, Any]] = []
    page = 1
    while True:  # the SDK's loop, with a page size small enough to need several pages
        status, body = await get(http, hub, "organisationUnits", [
            ("fields", sdk.ORG_UNIT), ("filter", f"path:like:{RAMU}"), ("order", "id:asc"),
            ("paging", "true"), ("pageSize", "7"), ("page", str(page))])
        assert status == 200
        pager = body["pager"]
        assert all(isinstance(pager[k], int) for k in ("page", "pageCount", "total", "pageSize"))
        assert pager["page"] == page and pager["pageSize"] == 7
        seen += body["organisationUnits"]
        if len(body["organisationUnits"]) < 7:
            break
        page += 1
    ids = [o["id"] for o in seen]
    assert page > 1 and len(ids) == len(set(ids)) == pager["total"]
    assert ids == sorted(ids)  # order=id:asc across pages
    ramu_tree = [o for o in C.doc["organisationUnits"] if RAMU in (o.get("path") or "")]
    assert set(ids) == {o["id"] for o in ramu_tree}
    for o in seen:
        assert RAMU in o["path"].split("/") and o["path"].endswith("/" + o["id"])
        assert is_uid(o["id"]) and (o["parent"]["id"] if o["level"] > 1 else True)
        assert TIMESTAMP.match(o["openingDate"])
        # ancestors[id,displayName] give the SDK its display-name path
        assert [a["id"] for a in o["ancestors"]] == o["path"].split("/")[1:-1]
        assert all(isinstance(a.get("displayName"), str) for a in o["ancestors"])
    clinic = next(o for o in seen if o["id"] == C.chcp_clinic)
    assert {d["id"] for d in clinic["dataSets"]} == {d["id"] for d in CC_FORMS}


async def test_enum_values_are_ones_the_sdk_can_parse(hub: RunningHub,
                                                      http: aiohttp.ClientSession) -> None:
    _, ds = await get(http, hub, "dataSets", [("fields", sdk.DATA_SET), ("paging", "false")])
    assert {d["periodType"] for d in ds["dataSets"]} <= sdk.PERIOD_TYPES
    for d in ds["dataSets"]:
        assert isinstance(d["access"]["data"]["write"], bool)
        assert is_uid(d["categoryCombo"]["id"])
    _, de = await get(http, hub, "dataElements", [("fields", sdk.DATA_ELEMENT),
                                                  ("paging", "false")])
    assert {d["valueType"] for d in de["dataElements"]} <= sdk.VALUE_TYPES
    assert all(is_uid(d["categoryCombo"]["id"]) for d in de["dataElements"])
    _, uids = await get(http, hub, "validationRules", [("fields", "id"), ("paging", "false")])
    _, vr = await get(http, hub, "validationRules", [
        ("fields", sdk.VALIDATION_RULE),
        ("filter", sdk.in_filter("id", [r["id"] for r in uids["validationRules"]])),
        ("paging", "false")])
    assert len(vr["validationRules"]) == len(uids["validationRules"]) > 0
    for r in vr["validationRules"]:
        # non-nullable in ValidationRuleDTO, and parsed with valueOf
        assert r["importance"] in sdk.IMPORTANCES and r["operator"] in sdk.OPERATORS
        assert r["periodType"] in sdk.PERIOD_TYPES
        assert isinstance(r["skipFormValidation"], bool)
        assert all(isinstance(level, int) for level in r["organisationUnitLevels"])
        for side in (r["leftSide"], r["rightSide"]):
            assert side["missingValueStrategy"] in sdk.MISSING_VALUE_STRATEGIES
            assert side["expression"]  # the SDK drops rules without both expressions
    status, cfg = await get(http, hub, "loginConfig", auth={})
    assert status == 200 and cfg["loginPageLayout"] in sdk.LOGIN_PAGE_LAYOUTS


async def test_validation_rules_by_filter_match_fixture(hub: RunningHub,
                                                        http: aiohttp.ClientSession) -> None:
    ids: set[str] = set()
    for ds in CC_FORMS:  # the SDK's validationRules?dataSet=<uid>&fields=id, one per data set
        status, body = await get(http, hub, "validationRules", [
            ("dataSet", ds["id"]), ("fields", "id"), ("paging", "false")])
        assert status == 200 and "pager" not in body
        assert all(set(r) == {"id"} for r in body["validationRules"])
        ids |= {r["id"] for r in body["validationRules"]}
    status, body = await get(http, hub, "validationRules", [
        ("fields", sdk.VALIDATION_RULE), ("filter", sdk.in_filter("id", sorted(ids))),
        ("paging", "false")])
    assert status == 200
    assert_conforms(body, "validation/validation_rules.json")
    assert {r["id"] for r in body["validationRules"]} == ids


async def test_category_option_combos(hub: RunningHub, http: aiohttp.ClientSession) -> None:
    combo = C.by_id[C.element("INTEGER_ZERO_OR_POSITIVE", C.form1)["categoryCombo"]["id"]]
    status, body = await get(http, hub, "categoryOptionCombos", [
        ("fields", f"{sdk.IDENTIFIABLE},categoryCombo[id],categoryOptions[id]"),
        ("filter", f"categoryCombo.id:eq:{combo['id']}"), ("paging", "false")])
    assert status == 200
    assert {c["id"] for c in body["categoryOptionCombos"]} == \
        {c["id"] for c in combo["categoryOptionCombos"]}
    problems = conforms({"x": body["categoryOptionCombos"]},
                        {"x": [sdk.fixture("category/category_option_combo.json")]}, [
        # nullable; the demo's option combos have no code
        "x[].code",
        # sharing and analytics fields, not asked for
        *under("x[].", ("externalAccess", "ignoreApproval", "dimensionItem", "translations",
                        "userGroupAccesses", "attributeValues"))])
    assert not problems, problems


async def test_category_option_org_units(hub: RunningHub, http: aiohttp.ClientSession) -> None:
    _, body = await get(http, hub, "categoryOptions", [
        ("fields", "id"), ("filter", sdk.in_filter("categories.id", CATEGORIES)),
        ("paging", "false")])
    ids = sorted(o["id"] for o in body["categoryOptions"])
    status, body = await get(http, hub, "categoryOptions/orgUnits",
                             [("categoryOptions", ",".join(ids))])
    assert status == 200
    # a bare map, keyed by the options asked for (so the fixture's keys cannot apply) ...
    assert sorted(body) == ids
    # ... of lists of org unit ids (null allowed), as in the fixture
    fx = sdk.fixture("category/category_option_orgunits.json")
    assert not conforms({"x": list(body.values())}, {"x": list(fx.values())})
    assert all(isinstance(v, list) and all(u is None or sdk.UID.match(u) for u in v)
               for v in body.values())


async def test_system_info_for_the_sdk(hub: RunningHub, http: aiohttp.ClientSession) -> None:
    status, info = await get(http, hub, "system/info", [("fields", sdk.SYSTEM_INFO)])
    assert status == 200 and set(info) == set(sdk.SYSTEM_INFO.split(","))
    assert sdk.version_ok(info["version"]), info["version"]
    server = sdk.parse_server_date(info["serverDate"])
    now = datetime.now(UTC).replace(tzinfo=None)
    assert abs((server - now).total_seconds()) < 60  # UTC, written without a zone
    assert info["serverTimeZoneId"] == "Etc/UTC"


async def test_system_settings_only_the_keys_asked(hub: RunningHub,
                                                   http: aiohttp.ClientSession) -> None:
    status, body = await get(http, hub, "systemSettings", [("key", sdk.SYSTEM_SETTING_KEYS)])
    assert status == 200 and set(body) <= set(sdk.SYSTEM_SETTING_KEYS.split(","))
    assert body["keyFlag"]
    status, body = await get(http, hub, "systemSettings", [("key", "keyBingMapsApiKey")])
    assert status == 200 and set(body) <= {"keyBingMapsApiKey"}


# -- dataStore -----------------------------------------------------------------------------------
async def test_settings_app_missing_is_a_404_webmessage(hub: RunningHub,
                                                        http: aiohttp.ClientSession) -> None:
    for path in ("dataStore/ANDROID_SETTINGS_APP/info",
                 "dataStore/ANDROID_SETTING_APP/general_settings"):
        status, body = await get(http, hub, path, auth=CHCP)
        assert status == 404
        assert_conforms(body, "datastore/actions/namespace_key_deleted_not_found_404.json")
        assert body["httpStatus"] == "Not Found" and body["status"] == "ERROR"
        ns, key = path.split("/")[1:]
        assert body["message"] == f"Key '{key}' not found in namespace '{ns}'"


async def test_data_store_round_trip(hub: RunningHub, http: aiohttp.ClientSession) -> None:
    url = hub.api("dataStore/ANDROID_SETTINGS_APP/info")
    info = sdk.fixture("settings/app_info.json")
    async with http.post(url, json=info, headers=ADMIN) as r:
        assert r.status == 201
        assert_conforms(await r.json(), "datastore/actions/namespace_key_post_201.json")
    async with http.post(url, json=info, headers=ADMIN) as r:
        assert r.status == 409
        assert_conforms(await r.json(),
                        "datastore/actions/namespace_key_post_already_exists_409.json")
    status, body = await get(http, hub, "dataStore/ANDROID_SETTINGS_APP/info", auth=CHCP)
    assert status == 200 and body == info  # the value comes back verbatim
    async with http.put(url, json=dict(info, dataStoreVersion="2.1"), headers=ADMIN) as r:
        assert r.status == 200
        assert_conforms(await r.json(), "datastore/actions/namespace_key_put_200.json")
    async with http.delete(url, headers=ADMIN) as r:
        assert r.status == 200
        assert_conforms(await r.json(), "datastore/actions/namespace_key_deleted_200.json")
    async with http.put(url, json=info, headers=ADMIN) as r:
        assert r.status == 404
        assert_conforms(await r.json(), "datastore/actions/namespace_key_put_not_found_404.json")


# -- 401 -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("auth", [{}, basic("admin", "not-the-password")],
                         ids=["no-credentials", "wrong-password"])
async def test_unauthorized_is_a_webmessage(hub: RunningHub, http: aiohttp.ClientSession,
                                            auth: dict[str, str]) -> None:
    status, body = await get(http, hub, "me", [("fields", sdk.ME_LOGIN)], auth=auth)
    assert status == 401
    assert_conforms(body, "user/user_unauthorized.json")
    assert body["httpStatus"] == "Unauthorized" and body["httpStatusCode"] == 401
    assert body["status"] == "ERROR"


# -- aggregate data ------------------------------------------------------------------------------
INT = C.element("INTEGER_ZERO_OR_POSITIVE", C.form1)


async def post_values(http: aiohttp.ClientSession, hub: RunningHub,
                      values: list[dict[str, Any]], auth: dict[str, str] = CHCP
                      ) -> tuple[int, dict[str, Any]]:
    async with http.post(hub.api("dataValueSets"), json={"dataSet": C.form1["id"],
                                                         "dataValues": values},
                         headers=auth) as r:
        assert r.content_type == "application/json"
        return r.status, await r.json()


def assert_import_summary_for_sdk(body: dict[str, Any], values: list[dict[str, Any]]) -> None:
    """What DataValueImportSummaryWebResponseDTO needs, beyond the fixture's shape."""
    assert isinstance(body["httpStatus"], str) and isinstance(body["httpStatusCode"], int)
    assert isinstance(body["status"], str) and isinstance(body["message"], str)
    r = body["response"]
    assert r["responseType"] == "ImportSummary" and r["status"] in sdk.IMPORT_STATUSES
    assert all(type(r["importCount"][k]) is int
               for k in ("imported", "updated", "ignored", "deleted"))
    for c in r.get("conflicts") or []:
        assert isinstance(c["object"], str) and isinstance(c["value"], str)
        # the SDK (2.37+) marks exactly dataValues[i] for i in indexes as WARNING
        assert c["indexes"] and all(0 <= i < len(values) for i in c["indexes"])


@pytest.mark.parametrize("fixture_name", [
    "datavalueset/data_value_set_success.json",
    "imports/data_value_import_summary_web_response.json"])
async def test_data_value_set_post_success(hub: RunningHub, http: aiohttp.ClientSession,
                                           fixture_name: str) -> None:
    values = [C.value(INT, "4", coc=coc) for coc in C.cocs(INT)]
    status, body = await post_values(http, hub, values)
    assert status == 200 and body["httpStatusCode"] == 200, body
    assert_conforms(body, fixture_name)
    assert_import_summary_for_sdk(body, values)
    assert body["response"]["status"] == "SUCCESS"
    assert body["response"]["importCount"]["imported"] == len(values)


async def test_data_value_set_post_warning(hub: RunningHub, http: aiohttp.ClientSession) -> None:
    coc = C.cocs(INT)
    values = [C.value(INT, "4", coc=coc[0]), C.value(INT, "40L", coc=coc[1]),
              C.value(INT, "5", coc=coc[2])]
    status, body = await post_values(http, hub, values)
    assert status == 409 and body["httpStatusCode"] == 409, body
    assert_conforms(body, "datavalueset/data_value_set_warning.json")
    assert_import_summary_for_sdk(body, values)
    r = body["response"]
    assert body["status"] == r["status"] == "WARNING" and body["httpStatus"] == "Conflict"
    assert [c["indexes"] for c in r["conflicts"]] == [[1]]
    assert r["importCount"] == {"imported": 2, "updated": 0, "ignored": 1, "deleted": 0}


async def test_complete_registration_post_reply(hub: RunningHub,
                                                http: aiohttp.ClientSession) -> None:
    reg = {"period": month(), "dataSet": C.form1["id"], "organisationUnit": C.chcp_clinic,
           "attributeOptionCombo": C.default_coc, "date": month()[:4] + "-" + month()[4:] + "-01",
           "storedBy": "chcp", "completed": True}
    async with http.post(hub.api("completeDataSetRegistrations"),
                         json={"completeDataSetRegistrations": [reg]}, headers=CHCP) as r:
        assert r.status == 200
        body = await r.json()
    # from 2.38 the SDK parses the reply with the same WebMessage DTO as data values
    assert_conforms(body, "imports/data_value_import_summary_web_response.json")
    assert_import_summary_for_sdk(body, [reg])
    assert body["response"]["importCount"]["imported"] == 1


DATA_VALUE_FIXTURES = [
    "datavalue/data_values_BfMAe6Itzgt.json", "datavalue/data_values_TaMAefItzgt.json",
    "datavalue/data_values_lyLU2wR22tC.json", "datavalue/data_values_monthly.json",
    "datavalue/data_values_weekly.json", "datavalue/data_values_single_period.json",
    "datavalue/data_values_empty.json"]
DATA_VALUE_IGNORE: dict[str, list[str]] = {
    "datavalue/data_values_single_period.json": [
        # a real server adds these only for one period and one org unit without children;
        # the SDK asks for twelve periods under its root org units
        "period", "orgUnit", "completeDate",
        # nullable in DataValueDTO; DHIS2 leaves comment out when there is none
        "dataValues[].comment"],
}


@pytest.mark.parametrize("fixture_name", DATA_VALUE_FIXTURES)
async def test_data_value_sets_get(hub: RunningHub, http: aiohttp.ClientSession,
                                   fixture_name: str) -> None:
    coc = C.cocs(INT)
    status, _ = await post_values(http, hub, [
        C.value(INT, "3", coc=coc[0], comment="counted twice"), C.value(INT, "8", coc=coc[1]),
        C.value(INT, "2", coc=coc[2])])
    assert status == 200
    status, body = await get(http, hub, "dataValueSets", [
        ("fields", sdk.DATA_VALUE), ("dataSet", C.form1["id"]),
        ("period", ",".join(sdk.monthly_periods(1))), ("orgUnit", C.chcp_clinic),
        ("children", "true"), ("includeDeleted", "true"), ("paging", "false")], auth=CHCP)
    assert status == 200
    assert len(body["dataValues"]) == 3
    assert_conforms(body, fixture_name, DATA_VALUE_IGNORE.get(fixture_name, ()))
    for v in body["dataValues"]:  # DataValueDTO: these five are non-nullable
        assert all(isinstance(v[k], str) and v[k] for k in (
            "dataElement", "period", "orgUnit", "categoryOptionCombo", "attributeOptionCombo"))
        assert v["deleted"] is False


async def test_data_value_sets_get_single_period_and_unit(hub: RunningHub,
                                                          http: aiohttp.ClientSession) -> None:
    status, body = await get(http, hub, "dataValueSets", [
        ("dataSet", C.form1["id"]), ("period", month()), ("orgUnit", C.chcp_clinic)], auth=CHCP)
    assert status == 200
    assert_conforms(body, "datavalue/data_values_only_common_fields.json")
    assert (body["dataSet"], body["period"], body["orgUnit"]) == \
        (C.form1["id"], month(), C.chcp_clinic)


async def test_complete_registrations_get(hub: RunningHub, http: aiohttp.ClientSession) -> None:
    regs = [{"period": pe, "dataSet": ds["id"], "organisationUnit": C.chcp_clinic,
             "attributeOptionCombo": C.default_coc, "date": f"{pe[:4]}-{pe[4:]}-02",
             "storedBy": "chcp", "completed": True}
            for ds in CC_FORMS[:2] for pe in (month(), month(-1))]
    async with http.post(hub.api("completeDataSetRegistrations"),
                         json={"completeDataSetRegistrations": regs}, headers=ADMIN) as r:
        assert r.status == 200, await r.text()
    status, body = await get(http, hub, "completeDataSetRegistrations", [
        ("fields", sdk.COMPLETE_REGISTRATION), ("dataSet", ",".join(d["id"] for d in CC_FORMS)),
        ("period", ",".join(sdk.monthly_periods(1))), ("orgUnit", RAMU), ("children", "true"),
        ("paging", "false")], auth=ADMIN)
    assert status == 200
    assert_conforms(body, "dataset/data_set_complete_registrations.json")
    got = {(r["dataSet"], r["period"], r["date"], r["completed"])
           for r in body["completeDataSetRegistrations"]}
    assert got == {(r["dataSet"], r["period"], r["date"], True) for r in regs}


async def test_data_approvals_multiple(hub: RunningHub, http: aiohttp.ClientSession) -> None:
    """What the SDK asks for the data sets that have a workflow (the demo's have none:
    one is given a workflow here, as national's metadata would bring it)."""
    from appliance.hub.web import STATE
    from appliance.store.metadata import put_metadata
    form1 = dict(C.form1, workflow={"id": "WfCcMonthly"})
    hub.store.write_sync(lambda tx: put_metadata(tx, {"dataSets": [form1]}))
    await hub.app[STATE].reload(hub.store)
    async with http.post(hub.api("dataApprovals"), headers=ADMIN, params={
            "wf": "WfCcMonthly", "pe": month(-1), "ou": C.chcp_clinic}) as r:
        assert r.status == 204, await r.text()
    status, body = await get(http, hub, "dataApprovals/multiple", [
        ("fields", "wf,ou,pe,aoc,state"), ("wf", "WfCcMonthly"),
        ("pe", f"{month(-1)},{month()}"), ("ou", C.chcp_clinic), ("aoc", C.default_coc)],
        auth=CHCP)
    assert status == 200
    assert_conforms(body, "dataapproval/data_approvals_multiple.json")
    assert {(x["pe"], x["state"]) for x in body} == {(month(-1), "APPROVED_HERE"),
                                                     (month(), "UNAPPROVED_READY")}


# -- the comparer itself must be able to fail ----------------------------------------------------
def test_shape_comparer_catches_drift() -> None:
    good = sdk.fixture("dataset/data_sets.json")
    assert conforms(good, good) == []
    drifted = sdk.fixture("dataset/data_sets.json")
    first = drifted["dataSets"][0]
    del first["periodType"]                                   # a required key goes missing
    first["version"] = "22"                                   # number -> string
    first["lastUpdated"] = "2015-08-09 12:35:36"              # not yyyy-MM-ddTHH:mm:ss.SSS
    first["dataSetElements"][0]["dataElement"] = "g9eOBujte1U"  # object -> string
    first["renderAsTabs"] = None                              # null where a boolean is required
    problems = conforms(drifted, good)
    for expected in ("dataSets[].periodType: missing", "dataSets[].version: string",
                     "dataSets[].lastUpdated: '2015-08-09 12:35:36' is not",
                     "dataSets[].dataSetElements[].dataElement: string",
                     "dataSets[].renderAsTabs: null"):
        assert any(p.startswith(expected) for p in problems), (expected, problems)
    assert conforms(drifted, good, ["dataSets[].periodType", "dataSets[].version",
                                    "dataSets[].lastUpdated", "dataSets[].dataSetElements",
                                    "dataSets[].renderAsTabs"]) == []
    assert conforms(good, good, ["dataSets[].noSuchField"]) == [
        "ignore pattern 'dataSets[].noSuchField' names no fixture field"]


def test_shape_comparer_numbers() -> None:
    # an Int field (version) must not get a fraction; a Double field (expiryDays) takes both
    fx = {"x": [{"version": 22, "expiryDays": 2.5}, {"version": 2, "expiryDays": 2}]}
    assert conforms({"x": [{"version": 3, "expiryDays": 15}]}, fx) == []
    assert conforms({"x": [{"version": 3, "expiryDays": 0.5}]}, fx) == []
    assert conforms({"x": [{"version": 3.0, "expiryDays": 1}]}, fx) == [
        "x[].version: number where the fixture has integer (value 3.0)"]
