"""dataValueSets import: one test per E76xx rule in scope, value types, zero handling,
counts, expiry and scope — as DHIS2 2.41's DataValueSetImportValidator behaves."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from appliance.hub.web import STATE
from appliance.store.metadata import put_metadata
from tests.conftest import ADMIN, CHCP, RunningHub
from tests.hub import catoptions
from tests.hub.cells import cells, month

C = cells()


async def post(http: aiohttp.ClientSession, hub: RunningHub, body: dict[str, Any],
               auth: dict[str, str] = CHCP, **params: str) -> tuple[int, dict[str, Any]]:
    async with http.post(hub.api("dataValueSets"), json=body, params=params, headers=auth) as r:
        return r.status, await r.json()


def conflict_codes(body: dict[str, Any]) -> list[str]:
    return [c.get("errorCode") for c in body["response"]["conflicts"]]


def stored(hub: RunningHub, de: str, ou: str | None = None) -> list[tuple[Any, ...]]:
    return hub.store.read_sync(lambda c: [tuple(r) for r in c.execute(
        "SELECT value, deleted, sync_state FROM datavalue WHERE de=? AND (? IS NULL OR ou=?)",
        (de, ou, ou))])


INT = C.element("INTEGER_ZERO_OR_POSITIVE", C.form1)


async def test_success_is_200_with_counts(hub: RunningHub, http: aiohttp.ClientSession) -> None:
    status, body = await post(http, hub, {"dataSet": C.form1["id"], "dataValues": [
        C.value(INT, "5", coc=coc) for coc in C.cocs(INT)]})
    assert status == 200
    assert body["httpStatus"] == "OK" and body["status"] == "OK"
    r = body["response"]
    assert r["responseType"] == "ImportSummary" and r["status"] == "SUCCESS"
    assert r["importCount"] == {"imported": len(C.cocs(INT)), "updated": 0, "ignored": 0,
                                "deleted": 0}
    assert all(s == ("5", 0, "pending") for s in stored(hub, INT["id"]))


async def test_set_level_period_and_org_unit_override_the_values(
        hub: RunningHub, http: aiohttp.ClientSession) -> None:
    """As dhis2-core's DefaultDataValueSetService: a set's period, orgUnit and
    attributeOptionCombo win over each value's own; a set period that does not parse is
    ignored. (The sync push names shared ones once at the set level.)"""
    coc = C.cocs(INT)[0]
    this, last = month(), month(-1)
    status, body = await post(http, hub, {"period": this, "orgUnit": C.chcp_clinic,
                                          "dataValues": [
        C.value(INT, "5", coc=coc, pe=last, ou=C.other_clinic),  # overridden by the set
        {"dataElement": INT["id"], "categoryOptionCombo": coc, "value": "5"}]})
    assert status == 200, body
    assert body["response"]["importCount"]["imported"] == 1  # both name the same cell
    assert body["response"]["importCount"]["ignored"] == 1
    rows = hub.store.read_sync(lambda c: [tuple(r) for r in c.execute(
        "SELECT pe, ou FROM datavalue WHERE de=? AND coc=?", (INT["id"], coc))])
    assert rows == [(this, C.chcp_clinic)]
    # (a cell two months back alone is refused: past expiry days, E7640; last month's is
    # still open in the first expiryDays of this month)
    status, body = await post(http, hub, {"dataValues": [C.value(INT, "6", coc=coc,
                                                                 pe=month(-2))]})
    assert status == 409 and conflict_codes(body) == ["E7640"]
    status, body = await post(http, hub, {"period": "not-a-period", "dataValues": [
        C.value(INT, "7", coc=coc, pe=this)]})
    assert status == 200 and body["response"]["importCount"]["updated"] == 1, body


async def test_counts_update_ignore_delete(hub: RunningHub, http: aiohttp.ClientSession) -> None:
    coc = C.cocs(INT)
    await post(http, hub, {"dataValues": [C.value(INT, "5", coc=coc[0]),
                                          C.value(INT, "6", coc=coc[1])]})
    status, body = await post(http, hub, {"dataValues": [
        C.value(INT, "7", coc=coc[0]),                    # updated
        C.value(INT, "6", coc=coc[1]),                    # unchanged: ignored
        C.value(INT, "", coc=coc[1], deleted=True)]})      # deleted
    assert status == 200
    assert body["response"]["importCount"] == {"imported": 0, "updated": 1, "ignored": 1,
                                               "deleted": 1}


@pytest.mark.parametrize("zero_significant", [False])
async def test_zero_not_significant_skipped_then_deletes(
        hub: RunningHub, http: aiohttp.ClientSession, zero_significant: bool) -> None:
    de = C.element("INTEGER_ZERO_OR_POSITIVE", zero_significant=zero_significant)
    status, body = await post(http, hub, {"dataValues": [C.value(de, "0")]})
    assert body["response"]["importCount"]["ignored"] == 1 and stored(hub, de["id"]) == []
    await post(http, hub, {"dataValues": [C.value(de, "3")]})
    status, body = await post(http, hub, {"dataValues": [C.value(de, "0")]})
    assert body["response"]["importCount"]["deleted"] == 1
    assert stored(hub, de["id"])[0][1] == 1  # a tombstone, so the deletion syncs


@pytest.mark.parametrize("value_type, bad, good, normalised", [
    ("INTEGER_ZERO_OR_POSITIVE", "-1", "12", "12"),
    ("INTEGER_ZERO_OR_POSITIVE", "1.5", "0", None),
    ("INTEGER", "abc", "-4", "-4"),
    ("NUMBER", "01", "2.5", "2.5"),
    ("PERCENTAGE", "101", "99.5", "99.5"),
    ("BOOLEAN", "yes", "T", "true"),
    ("TRUE_ONLY", "false", "1", "true"),
    ("DATE", "2024-02-30", "2024-02-29", "2024-02-29"),
])
async def test_value_types(hub: RunningHub, http: aiohttp.ClientSession, value_type: str,
                           bad: str, good: str, normalised: str | None) -> None:
    de = C.element(value_type, options=False)
    status, body = await post(http, hub, {"dataValues": [C.value(de, bad)]}, ADMIN)
    assert status == 409 and body["response"]["status"] == "WARNING"
    assert conflict_codes(body) == ["E7619"]
    assert body["response"]["conflicts"][0]["indexes"] == [0]
    status, body = await post(http, hub, {"dataValues": [C.value(de, good)]}, ADMIN)
    assert status == 200, body
    if normalised is not None:
        assert stored(hub, de["id"])[0][0] == normalised


async def test_options(hub: RunningHub, http: aiohttp.ClientSession) -> None:
    de = C.element("TEXT", options=True)
    status, body = await post(http, hub, {"dataValues": [C.value(de, "Plenty")]}, ADMIN)
    assert conflict_codes(body) == ["E7621"]
    code = C.by_id[C.by_id[de["optionSet"]["id"]]["options"][0]["id"]]["code"]
    status, body = await post(http, hub, {"dataValues": [C.value(de, code)]}, ADMIN)
    assert status == 200


WHOLE = [
    ({"dataSet": "nosuchds001"}, "E7600"),
    ({"orgUnit": "nosuchou001"}, "E7603"),
    ({"attributeOptionCombo": "nosuchaoc01"}, "E7604"),
]


@pytest.mark.parametrize("outer, code", WHOLE)
async def test_whole_import_aborts(hub: RunningHub, http: aiohttp.ClientSession,
                                   outer: dict[str, str], code: str) -> None:
    status, body = await post(http, hub, {**outer, "dataValues": [C.value(INT, "1")]})
    assert status == 409 and body["response"]["status"] == "ERROR"
    assert conflict_codes(body) == [code]
    assert stored(hub, INT["id"]) == []


PER_VALUE = [
    ("E7610", {"dataElement": "nosuchde001"}, {}),
    ("E7611", {"period": "2025M13"}, {}),
    ("E7612", {"orgUnit": "nosuchou001"}, {}),
    ("E7613", {"categoryOptionCombo": "nosuchcoc01"}, {}),
    ("E7615", {"attributeOptionCombo": "nosuchaoc01"}, {}),
    ("E7618", {"value": None}, {}),
    ("E7620", {"comment": "x" * 50001}, {}),
    ("E7630", {"categoryOptionCombo": None}, {"requireCategoryOptionCombo": "true"}),
    ("E7631", {}, {"requireAttributeOptionCombo": "true"}),
    ("E7632", {"period": "2025W10"}, {"strictPeriods": "true"}),
    ("E7634", {"categoryOptionCombo": "HllvX50cXC0"}, {"strictCategoryOptionCombos": "true"}),
    ("E7637", {"storedBy": "u" * 256}, {}),
]


@pytest.mark.parametrize("code, change, params", PER_VALUE)
async def test_per_value_conflicts(hub: RunningHub, http: aiohttp.ClientSession, code: str,
                                   change: dict[str, Any], params: dict[str, str]) -> None:
    good = C.value(INT, "4", coc=C.cocs(INT)[1], attributeOptionCombo=C.default_coc)
    bad = {k: v for k, v in {**C.value(INT, "5"), **change}.items() if v is not None}
    status, body = await post(http, hub, {"dataValues": [good, bad]}, **params)
    assert status == 409, body
    assert conflict_codes(body) == [code], body["response"]["conflicts"]
    assert body["response"]["conflicts"][0]["indexes"] == [1]
    assert body["response"]["importCount"]["imported"] == 1  # the good one still lands


async def test_e7617_outside_users_org_units(hub: RunningHub, http: aiohttp.ClientSession) -> None:
    status, body = await post(http, hub, {"dataValues": [C.value(INT, "1", ou=C.other_clinic)]})
    assert conflict_codes(body) == ["E7617"]
    assert stored(hub, INT["id"]) == []


# -- category options: sharing (E7614/E7616), dates (E7638), org units (E7639) -------------
MALE_COC = C.cocs(INT)[0]                                # "Male, <1y"
MALE = C.by_id[MALE_COC]["categoryOptions"][0]["id"]      # the option it shares with 4 others
FEMALE_COC = next(c for c in C.cocs(INT)
                  if MALE not in {o["id"] for o in C.by_id[c]["categoryOptions"]})
NO_DATA_WRITE = {"sharing": {"public": "rw------", "external": False, "users": {},
                             "userGroups": {}}}  # metadata read/write, no data access


def only_conflict(body: dict[str, Any]) -> dict[str, Any]:
    conflicts = body["response"]["conflicts"]
    assert len(conflicts) == 1, conflicts
    return conflicts[0]  # type: ignore[no-any-return]


@pytest.mark.parametrize("no_write", [
    NO_DATA_WRITE,
    {"publicAccess": "rw------", "userAccesses": [], "userGroupAccesses": []},  # legacy fields
    {"sharing": {"public": "rwr-----", "owner": catoptions.uid_of("chcp")}},  # owner: no data
], ids=["sharing", "legacy", "owner"])
async def test_e7614_category_option_not_writable(hub: RunningHub, http: aiohttp.ClientSession,
                                                  no_write: dict[str, Any]) -> None:
    await catoptions.restrict_option(hub, MALE, **no_write)
    status, body = await post(http, hub, {"dataValues": [
        C.value(INT, "4", coc=FEMALE_COC), C.value(INT, "5", coc=MALE_COC)]})
    assert status == 409
    assert only_conflict(body) == {
        "object": MALE_COC, "objects": {}, "errorCode": "E7614", "property": "categoryOptionCombo",
        "value": f"Category option combo: `{MALE_COC}` option not accessible: `{MALE}`",
        "indexes": [1]}
    assert body["response"]["importCount"]["imported"] == 1
    assert stored(hub, INT["id"]) == [("4", 0, "pending")]


@pytest.mark.parametrize("grant, group", [
    ({"sharing": {"public": "rw------", "users": {catoptions.uid_of("chcp"): {
        "id": catoptions.uid_of("chcp"), "access": "r-rw----"}}}}, False),
    ({"sharing": {"public": "--------", "userGroups": {catoptions.GROUP: {
        "id": catoptions.GROUP, "access": "rwrw----"}}}}, True),
    ({"publicAccess": "rw------", "userAccesses": [
        {"userUid": catoptions.uid_of("chcp"), "access": "rwrw----"}]}, False),
    ({"sharing": {"public": "rwrw----"}}, False),
    ({"name": "Male"}, False),  # no sharing information at all: the hub models no restriction
], ids=["user", "user-group", "legacy-user", "public", "none"])
async def test_data_write_granted_by_sharing(hub: RunningHub, http: aiohttp.ClientSession,
                                             grant: dict[str, Any], group: bool) -> None:
    if group:
        await catoptions.join_group(hub, "chcp")
    await catoptions.restrict_option(hub, MALE, **grant)
    status, body = await post(http, hub, {"dataValues": [C.value(INT, "5", coc=MALE_COC)]})
    assert status == 200, body["response"]["conflicts"]


async def test_e7616_attribute_option_not_writable(hub: RunningHub,
                                                   http: aiohttp.ClientSession) -> None:
    aoc = await catoptions.attribute_combo(hub, NO_DATA_WRITE)
    option = catoptions.OPTIONS[0]
    status, body = await post(http, hub, {"dataValues": [
        C.value(INT, "4", attributeOptionCombo=C.default_coc),
        C.value(INT, "5", attributeOptionCombo=aoc),
        C.value(INT, "6", ou=C.other_clinic, attributeOptionCombo=aoc)]})  # E7616 before E7617
    assert status == 409
    assert only_conflict(body) == {
        "object": aoc, "objects": {}, "errorCode": "E7616", "property": "attributeOptionCombo",
        "value": f"Attribute option combo: `{aoc}` option not accessible: `{option}`",
        "indexes": [1, 2]}
    assert body["response"]["importCount"]["imported"] == 1
    # the data set level attribute option combo is checked the same way
    status, body = await post(http, hub, {"attributeOptionCombo": aoc,
                                          "dataValues": [C.value(INT, "7")]})
    assert conflict_codes(body) == ["E7616"]


async def test_superuser_bypasses_sharing(hub: RunningHub, http: aiohttp.ClientSession) -> None:
    await catoptions.restrict_option(hub, MALE, **NO_DATA_WRITE)
    aoc = await catoptions.attribute_combo(hub, NO_DATA_WRITE)
    values = [C.value(INT, "5", coc=MALE_COC, attributeOptionCombo=aoc)]
    status, body = await post(http, hub, {"dataValues": values})
    assert conflict_codes(body) == ["E7614"]
    status, body = await post(http, hub, {"dataValues": values}, ADMIN)  # ALL: DHIS2 superuser
    assert status == 200, body["response"]["conflicts"]
    assert stored(hub, INT["id"]) == [("5", 0, "pending")]


async def test_e7638_period_outside_attribute_option_dates(
        hub: RunningHub, http: aiohttp.ClientSession) -> None:
    # the project ran from three months ago to the end of the month before last; admin posts
    # so that expiry (E7640) does not get in the way
    dates = {"startDate": catoptions.stamp(catoptions.first_day(-3)),
             "endDate": catoptions.stamp(catoptions.last_day(-2))}
    aoc = await catoptions.attribute_combo(hub, dates)

    def at(pe: str, v: str) -> dict[str, Any]:
        return C.value(INT, v, pe=pe, attributeOptionCombo=aoc)
    status, body = await post(http, hub, {"dataSet": C.form1["id"], "dataValues": [
        at(month(-2), "1"), at(month(-1), "2"), at(month(-4), "3")]}, ADMIN)
    assert status == 409
    assert body["response"]["conflicts"] == [
        {"object": pe, "objects": {}, "errorCode": "E7638", "property": "period", "indexes": [i],
         "value": f"Period: `{pe}` is not within date range of attribute option combo: `{aoc}`"}
        for i, pe in ((1, month(-1)), (2, month(-4)))]
    assert body["response"]["importCount"]["imported"] == 1
    # the data set keeps one more period open after the options' end date
    aoc = await catoptions.attribute_combo(hub, dates, openPeriodsAfterCoEndDate=1)
    status, body = await post(http, hub, {"dataSet": C.form1["id"], "dataValues": [
        at(month(-1), "2"), at(month(0), "4")]}, ADMIN)
    assert [(c["errorCode"], c["indexes"]) for c in body["response"]["conflicts"]] == [
        ("E7638", [1])]
    # without a data set in the payload, the data element's data sets decide (the same here)
    status, body = await post(http, hub, {"dataValues": [at(month(-1), "5"), at(month(0), "6")]},
                              ADMIN)
    assert [(c["errorCode"], c["indexes"]) for c in body["response"]["conflicts"]] == [
        ("E7638", [1])]
    # a start date in the future: E7638 comes before E7641 (after latest open future period)
    await catoptions.attribute_combo(hub, {"startDate": catoptions.stamp(catoptions.first_day(2))})
    status, body = await post(http, hub, {"dataValues": [at(month(1), "7")]}, ADMIN)
    assert conflict_codes(body) == ["E7638"]


async def test_e7639_org_unit_not_valid_for_attribute_option(
        hub: RunningHub, http: aiohttp.ClientSession) -> None:
    union = C.by_id[C.chcp_clinic]["parent"]["id"]
    elsewhere = next(o["id"] for o in C.form1["organisationUnits"]
                     if C.by_id[o["id"]]["parent"]["id"] != union)
    aoc = await catoptions.attribute_combo(hub, {"organisationUnits": [{"id": union}]})
    status, body = await post(http, hub, {"dataValues": [
        C.value(INT, "1", attributeOptionCombo=aoc),                  # in the union's subtree
        C.value(INT, "2", ou=elsewhere, attributeOptionCombo=aoc),
        C.value(INT, "3", ou=elsewhere)]}, ADMIN)                     # default AOC: anywhere
    assert status == 409
    assert only_conflict(body) == {
        "object": elsewhere, "objects": {}, "errorCode": "E7639", "property": "orgUnit",
        "indexes": [1],
        "value": f"Organisation unit: `{elsewhere}` is not valid for attribute option combo: "
                 f"`{aoc}`"}
    assert body["response"]["importCount"]["imported"] == 2
    # with two restricted options only org units both allow are valid: here none
    await catoptions.attribute_combo(hub, {"organisationUnits": [{"id": union}]},
                                     {"organisationUnits": [{"id": elsewhere}]}, {})
    status, body = await post(http, hub, {"dataValues": [
        C.value(INT, "4", attributeOptionCombo=aoc),
        C.value(INT, "5", ou=elsewhere, attributeOptionCombo=aoc)]}, ADMIN)
    assert [(c["errorCode"], c["indexes"]) for c in body["response"]["conflicts"]] == [
        ("E7639", [0]), ("E7639", [1])]


async def test_e7633_element_not_in_data_set(hub: RunningHub, http: aiohttp.ClientSession) -> None:
    other = C.elements(C.ds("Form-2"))[0]
    status, body = await post(http, hub, {"dataSet": C.form1["id"], "dataValues": [
        C.value(other, "1")]}, strictDataElements="true")
    assert conflict_codes(body) == ["E7633"]


async def test_e7636_org_unit_not_assigned(hub: RunningHub, http: aiohttp.ClientSession) -> None:
    status, body = await post(http, hub, {"dataSet": C.form1["id"], "dataValues": [
        C.value(INT, "1", ou=C.uhc)]}, ADMIN, strictOrganisationUnits="true")
    assert conflict_codes(body) == ["E7636"]


async def test_e7640_expired_and_authority_bypass(hub: RunningHub,
                                                  http: aiohttp.ClientSession) -> None:
    old = month(-2)  # the CC forms expire 15 days after the period ends
    status, body = await post(http, hub, {"dataSet": C.form1["id"],
                                          "dataValues": [C.value(INT, "1", pe=old)]})
    assert conflict_codes(body) == ["E7640"]
    # admin has ALL, which includes F_EDIT_EXPIRED, as in DHIS2
    status, body = await post(http, hub, {"dataSet": C.form1["id"], "dataValues": [
        C.value(INT, "1", pe=old, ou=C.chcp_clinic)]}, ADMIN)
    assert status == 200


async def test_period_rules_across_the_element_data_sets(hub: RunningHub,
                                                        http: aiohttp.ClientSession) -> None:
    """An element in two data sets: as dhis2-core 2.41 (non-strict), a period one of them
    still accepts is accepted; E7641 (open future periods) refuses if any data set does."""
    old = month(-2)
    other = {"id": "dsSecond001", "name": "Second form", "periodType": "Monthly",
             "expiryDays": 0, "openFuturePeriods": 3, "categoryCombo": C.form1["categoryCombo"],
             "dataSetElements": [{"dataElement": {"id": INT["id"]}}],
             "organisationUnits": [{"id": C.chcp_clinic}]}
    await hub.store.write(lambda tx: put_metadata(tx, {"dataSets": [other]}))
    await hub.app[STATE].reload(hub.store)
    status, body = await post(http, hub, {"dataValues": [C.value(INT, "1", pe=old)]})
    assert status == 200, body  # Form-1 has expired it; the second form has not
    status, body = await post(http, hub, {"dataSet": C.form1["id"],
                                          "dataValues": [C.value(INT, "1", pe=old)]})
    assert conflict_codes(body) == ["E7640"]  # named data set: only its rules count
    status, body = await post(http, hub, {"dataValues": [C.value(INT, "1", pe=month(2))]})
    assert conflict_codes(body) == ["E7641"]  # Form-1 opens one future period, not two


async def test_e7641_after_open_future_periods(hub: RunningHub,
                                               http: aiohttp.ClientSession) -> None:
    status, body = await post(http, hub, {"dataSet": C.form1["id"],
                                          "dataValues": [C.value(INT, "1", pe=month(1))]})
    assert conflict_codes(body) == ["E7641"]
    # the current period is open
    status, body = await post(http, hub, {"dataSet": C.form1["id"],
                                          "dataValues": [C.value(INT, "1", pe=month(0))]})
    assert status == 200


async def test_e7643_outside_data_input_periods(hub: RunningHub,
                                                http: aiohttp.ClientSession) -> None:
    # national restricts the UHC form to one closed input period; it reaches the hub as metadata
    ds = dict(C.uhc_form, dataInputPeriods=[{"period": {"id": month(-1)},
                                             "openingDate": "2020-01-01T00:00:00.000",
                                             "closingDate": "2020-01-20T00:00:00.000"}])
    await hub.store.write(lambda tx: put_metadata(tx, {"dataSets": [ds]}))
    await hub.app[STATE].reload(hub.store)
    de = C.element("INTEGER_ZERO_OR_POSITIVE", C.uhc_form)
    status, body = await post(http, hub, {"dataSet": C.uhc_form["id"], "dataValues": [
        C.value(de, "1", ou=C.uhc, pe=month(0))]}, ADMIN)
    assert conflict_codes(body) == ["E7643"]


async def test_e7642_approved(national: RunningHub, http: aiohttp.ClientSession) -> None:
    from tests.conftest import basic
    dghs = basic("dghs", "district")
    key = {"ds": C.form1["id"], "pe": month(0), "ou": C.chcp_clinic}
    async with http.post(national.api("dataApprovals"), params=key, headers=dghs) as r:
        assert r.status == 204
    status, body = await post(http, national, {"dataSet": C.form1["id"], "dataValues": [
        C.value(INT, "1")]}, dghs)
    assert conflict_codes(body) == ["E7642"]


async def test_dry_run_stores_nothing(hub: RunningHub, http: aiohttp.ClientSession) -> None:
    status, body = await post(http, hub, {"dataValues": [C.value(INT, "9")]}, dryRun="true")
    assert status == 200 and body["response"]["importCount"]["imported"] == 1
    assert body["response"]["importOptions"]["dryRun"] is True
    assert stored(hub, INT["id"]) == []


async def test_strategies(hub: RunningHub, http: aiohttp.ClientSession) -> None:
    v = C.value(INT, "2")
    _, body = await post(http, hub, {"dataValues": [v]}, importStrategy="UPDATE")
    assert body["response"]["importCount"]["ignored"] == 1  # UPDATE never creates
    _, body = await post(http, hub, {"dataValues": [v]}, importStrategy="CREATE")
    assert body["response"]["importCount"]["imported"] == 1
    _, body = await post(http, hub, {"dataValues": [{**v, "value": "3"}]},
                         importStrategy="CREATE")
    assert body["response"]["importCount"]["ignored"] == 1  # CREATE never updates
    _, body = await post(http, hub, {"dataValues": [v]}, importStrategy="DELETE")
    assert body["response"]["importCount"]["deleted"] == 1


async def test_csv_import_and_export(hub: RunningHub, http: aiohttp.ClientSession) -> None:
    pe, ou, coc = month(), C.chcp_clinic, C.cocs(INT)[0]
    csv = ("dataelement,period,orgunit,categoryoptioncombo,attributeoptioncombo,value\n"
           f"{INT['id']},{pe},{ou},{coc},,17\n")
    async with http.post(hub.api("dataValueSets"), data=csv,
                         headers={**CHCP, "Content-Type": "application/csv"}) as r:
        assert r.status == 200, await r.text()
    async with http.get(hub.api("dataValueSets.csv"), headers=CHCP, params={
            "dataSet": C.form1["id"], "period": pe, "orgUnit": ou}) as r:
        text = await r.text()
    assert r.status == 200 and f"{INT['id']},{pe},{ou},{coc}" in text and ",17," in text


async def test_id_scheme_code(hub: RunningHub, http: aiohttp.ClientSession) -> None:
    ou_code = C.by_id[C.chcp_clinic]["code"]
    status, body = await post(http, hub, {"dataValues": [
        {**C.value(INT, "8"), "dataElement": INT["code"], "orgUnit": ou_code}]},
        dataElementIdScheme="CODE", orgUnitIdScheme="CODE")
    assert status == 200, body
    assert stored(hub, INT["id"], C.chcp_clinic)[0][0] == "8"


async def test_read_scope(hub: RunningHub, http: aiohttp.ClientSession) -> None:
    params = {"dataSet": C.form1["id"], "period": month(), "orgUnit": C.other_clinic}
    async with http.get(hub.api("dataValueSets"), params=params, headers=CHCP) as r:
        assert r.status == 409
        assert "not allowed to view" in (await r.json())["message"]
    async with http.get(hub.api("dataValueSets"), params=params, headers=ADMIN) as r:
        assert r.status == 200


async def test_audit_trail(hub: RunningHub, http: aiohttp.ClientSession) -> None:
    await post(http, hub, {"dataValues": [C.value(INT, "1")]})
    await post(http, hub, {"dataValues": [C.value(INT, "2")]})
    async with http.get(hub.api("audits/dataValue"), headers=ADMIN,
                        params={"de": INT["id"]}) as r:
        audits = (await r.json())["dataValueAudits"]
    assert [(a["auditType"], a["prevValue"], a["newValue"], a["modifiedBy"]) for a in audits] == [
        ("UPDATE", "1", "2", "chcp"), ("CREATE", None, "1", "chcp")]


async def test_single_data_value_and_completion(hub: RunningHub,
                                                http: aiohttp.ClientSession) -> None:
    q = {"de": INT["id"], "pe": month(), "ou": C.chcp_clinic, "co": C.cocs(INT)[0]}
    async with http.post(hub.api("dataValues"), params={**q, "value": "11"}, headers=CHCP) as r:
        assert r.status == 201
    async with http.get(hub.api("dataValues"), params=q, headers=CHCP) as r:
        assert await r.json() == ["11"]
    async with http.post(hub.api("dataValues"), params={**q, "value": "x"}, headers=CHCP) as r:
        assert r.status == 409 and (await r.json())["errorCode"] == "E7619"
    async with http.delete(hub.api("dataValues"), params=q, headers=CHCP) as r:
        assert r.status == 204
    reg = {"completeDataSetRegistrations": [{"dataSet": C.form1["id"], "period": month(),
                                             "organisationUnit": C.chcp_clinic}]}
    async with http.post(hub.api("completeDataSetRegistrations"), json=reg, headers=CHCP) as r:
        assert r.status == 200
        assert (await r.json())["response"]["importCount"]["imported"] == 1
    params = {"dataSet": C.form1["id"], "period": month(), "orgUnit": C.chcp_clinic}
    async with http.get(hub.api("completeDataSetRegistrations"), params=params,
                        headers=CHCP) as r:
        regs = (await r.json())["completeDataSetRegistrations"]
    assert len(regs) == 1 and regs[0]["completed"] is True and regs[0]["storedBy"] == "chcp"
    async with http.delete(hub.api("completeDataSetRegistrations"), headers=CHCP, params={
            "ds": C.form1["id"], "pe": month(), "ou": C.chcp_clinic}) as r:
        assert r.status == 204
    async with http.get(hub.api("completeDataSetRegistrations"), params=params,
                        headers=CHCP) as r:
        assert (await r.json())["completeDataSetRegistrations"] == []


async def test_min_max_and_validation_rules(hub: RunningHub, http: aiohttp.ClientSession) -> None:
    ds = C.ds("Form-2")
    async with http.get(hub.api("dataEntry/dataValues"), headers=CHCP, params={
            "ds": ds["id"], "pe": month(), "ou": C.chcp_clinic}) as r:
        ctx = await r.json()
    assert r.status == 200 and ctx["lockStatus"] == "OPEN"
    assert ctx["minMaxValues"] and all(m["orgUnit"] == C.chcp_clinic for m in ctx["minMaxValues"])
    rule = next(r for r in C.doc["validationRules"] if "ANC 4th" in r["name"])
    anc4, anc1 = (C.by_id[rule[s]["expression"][2:13]] for s in ("leftSide", "rightSide"))
    await post(http, hub, {"dataValues": [C.value(anc4, "30", coc=C.cocs(anc4)[0]),
                                          C.value(anc1, "10", coc=C.cocs(anc1)[0])]})
    async with http.get(hub.api(f"validation/dataSet/{ds['id']}"), headers=CHCP,
                        params={"pe": month(), "ou": C.chcp_clinic}) as r:
        result = await r.json()
    assert r.status == 200
    assert any(v["validationRuleId"] == rule["id"] for v in result["validationRuleViolations"])


async def test_a_write_sees_metadata_sync_just_committed(hub: RunningHub,
                                                        http: aiohttp.ClientSession) -> None:
    """The sync process commits a data set's new input periods; the very next form is
    checked against them, not against the index the hub loaded before (it polls for
    changes every two seconds, which is too late for a write)."""
    ds = dict(C.uhc_form, dataInputPeriods=[{"period": {"id": month(-1)},
                                             "openingDate": "2020-01-01T00:00:00.000",
                                             "closingDate": "2020-01-20T00:00:00.000"}])
    de = C.element("INTEGER_ZERO_OR_POSITIVE", C.uhc_form)
    form = {"dataSet": C.uhc_form["id"], "dataValues": [C.value(de, "1", ou=C.uhc, pe=month(0))]}
    status, body = await post(http, hub, form, ADMIN)
    assert status == 200, body
    await hub.store.write(lambda tx: put_metadata(tx, {"dataSets": [ds]}))  # no reload asked
    status, body = await post(http, hub, form, ADMIN)
    assert conflict_codes(body) == ["E7643"]
