"""Keys are checked strictly by default: a value's COC must be in its element's category
combo (E7634), its AOC in the data set's (E7635), its period of the data set's type
(E7632); completions get the same checks plus field types (E4027), an existing AOC
(E7615), AOC sharing and dates (E7616, E7638). Every refusal leaves the stored data as it
was, over JSON, CSV, the single-value endpoint and completions (POST and DELETE)."""

from __future__ import annotations

from datetime import date
from typing import Any

import aiohttp
import pytest

from tests.conftest import ADMIN, CHCP, RunningHub
from tests.hub import catoptions
from tests.hub.cells import cells, month

C = cells()
INT = C.element("INTEGER_ZERO_OR_POSITIVE", C.form1)       # Form-1 only, "Sex and Age group"
FORM2_DE = C.elements(C.ds("Form-2"))[0]                     # Form-2 only, another combo
OTHER_COC = next(c for c in C.cocs(FORM2_DE) if c not in C.cocs(INT))
SEX_AGE = INT["categoryCombo"]["id"]
DISAGG_COC = C.cocs(INT)[0]                                  # exists, but not an AOC of Form-1
DEFAULT_COMBO = next(c["id"] for c in C.doc["categoryCombos"] if c.get("isDefault"))
TABLES = ("datavalue", "complete_registration", "audit")


def this_week() -> str:
    """The current ISO week: open (not expired, not in the future) but not Monthly."""
    y, w, _ = date.today().isocalendar()
    return f"{y}W{w}"


def snapshot(hub: RunningHub) -> dict[str, list[tuple[Any, ...]]]:
    return hub.store.read_sync(lambda c: {t: sorted((tuple(r) for r in c.execute(
        f"SELECT * FROM {t}")), key=repr) for t in TABLES})


def conflicts(body: dict[str, Any]) -> list[tuple[str, list[int]]]:
    return [(c.get("errorCode"), c["indexes"]) for c in body["response"]["conflicts"]]


async def post_values(http: aiohttp.ClientSession, hub: RunningHub, body: dict[str, Any],
                      auth: dict[str, str] = CHCP, **params: str) -> tuple[int, dict[str, Any]]:
    async with http.post(hub.api("dataValueSets"), json=body, params=params, headers=auth) as r:
        return r.status, await r.json()


async def post_regs(http: aiohttp.ClientSession, hub: RunningHub, regs: list[Any],
                    auth: dict[str, str] = CHCP) -> tuple[int, dict[str, Any]]:
    async with http.post(hub.api("completeDataSetRegistrations"),
                         json={"completeDataSetRegistrations": regs}, headers=auth) as r:
        return r.status, await r.json()


def reg(**change: Any) -> dict[str, Any]:
    """A completion of CHCP's Form-1 this month, as the Android SDK sends it."""
    return {"dataSet": C.form1["id"], "period": month(), "organisationUnit": C.chcp_clinic,
            "attributeOptionCombo": C.default_coc, "date": date.today().isoformat(),
            "storedBy": "chcp", "completed": True, **change}


# -- dataValueSets (JSON) -------------------------------------------------------------------
@pytest.mark.parametrize("code, change", [
    ("E7634", {"categoryOptionCombo": OTHER_COC}),            # another element's COC
    ("E7634", {"categoryOptionCombo": C.default_coc}),        # default, element disaggregated
    ("E7635", {"attributeOptionCombo": DISAGG_COC}),          # a COC, not Form-1's AOC
    ("E7632", {"period": this_week()}),                       # weekly on a monthly form
], ids=["coc-other-combo", "coc-default", "aoc-other-combo", "weekly-period"])
@pytest.mark.parametrize("named_set", [True, False], ids=["with-dataSet", "no-dataSet"])
async def test_json_values_refused(hub: RunningHub, http: aiohttp.ClientSession, code: str,
                                   change: dict[str, Any], named_set: bool) -> None:
    before = snapshot(hub)
    body = {"dataValues": [C.value(INT, "5", coc=DISAGG_COC, **change)]}
    if named_set:
        body["dataSet"] = C.form1["id"]
    status, reply = await post_values(http, hub, body)
    assert status == 409, reply
    assert conflicts(reply) == [(code, [0])]
    assert reply["response"]["importCount"] == {"imported": 0, "updated": 0, "ignored": 1,
                                                "deleted": 0}
    assert snapshot(hub) == before


async def test_conflict_shapes_follow_dhis2(hub: RunningHub, http: aiohttp.ClientSession) -> None:
    status, reply = await post_values(http, hub, {"dataValues": [
        C.value(INT, "1", coc=OTHER_COC),
        C.value(INT, "2", attributeOptionCombo=DISAGG_COC),
        C.value(INT, "3", pe=this_week())]})
    assert status == 409
    de = INT["id"]
    assert reply["response"]["conflicts"] == [
        {"object": OTHER_COC, "objects": {}, "errorCode": "E7634", "indexes": [0],
         "property": "categoryOptionCombo",
         "value": f"Category option combo: `{OTHER_COC}` must be part of category combo of "
                  f"data element: `{de}`"},
        {"object": DISAGG_COC, "objects": {}, "errorCode": "E7635", "indexes": [1],
         "property": "attributeOptionCombo",
         "value": f"Attribute option combo: `{DISAGG_COC}` must be part of category combo of "
                  f"data sets of data element: `{de}`"},
        {"object": this_week(), "objects": {}, "errorCode": "E7632", "indexes": [2],
         "value": f"Period type of period: `{this_week()}` not valid for data element: `{de}`"}]


async def test_only_refused_keys_are_left_out(hub: RunningHub,
                                              http: aiohttp.ClientSession) -> None:
    before = snapshot(hub)
    status, reply = await post_values(http, hub, {"dataSet": C.form1["id"], "dataValues": [
        C.value(INT, "7", coc=OTHER_COC), C.value(INT, "8", coc=DISAGG_COC)]})
    assert status == 409 and conflicts(reply) == [("E7634", [0])]
    assert reply["response"]["importCount"]["imported"] == 1
    after = snapshot(hub)
    new = [r for r in after["datavalue"] if r not in before["datavalue"]]
    assert [(r[0], r[3], r[5]) for r in new] == [(INT["id"], DISAGG_COC, "8")]


async def test_aoc_of_another_attribute_combo(hub: RunningHub,
                                              http: aiohttp.ClientSession) -> None:
    aoc = await catoptions.attribute_combo(hub)  # Form-1's attribute combo, not Form-2's
    before = snapshot(hub)
    status, reply = await post_values(http, hub, {"dataSet": C.ds("Form-2")["id"], "dataValues": [
        C.value(FORM2_DE, "4", attributeOptionCombo=aoc)]})
    assert status == 409 and conflicts(reply) == [("E7635", [0])]
    assert snapshot(hub) == before
    # in Form-1 it belongs
    status, reply = await post_values(http, hub, {"dataSet": C.form1["id"], "dataValues": [
        C.value(INT, "4", attributeOptionCombo=aoc)]})
    assert status == 200, reply


async def test_strict_options_are_in_force_and_reported(hub: RunningHub,
                                                        http: aiohttp.ClientSession) -> None:
    before = snapshot(hub)
    status, reply = await post_values(
        http, hub, {"dataValues": [C.value(INT, "5", coc=OTHER_COC)]},
        strictCategoryOptionCombos="false", strictPeriods="false",
        strictAttributeOptionCombos="false")
    assert status == 409 and conflicts(reply) == [("E7634", [0])]
    options = reply["response"]["importOptions"]
    assert (options["strictCategoryOptionCombos"], options["strictAttributeOptionCombos"],
            options["strictPeriods"]) == (True, True, True)
    assert snapshot(hub) == before
    status, reply = await post_values(http, hub, {"dataValues": []}, strictPeriods="maybe")
    assert status == 400


async def test_value_set_complete_date_checked(hub: RunningHub,
                                              http: aiohttp.ClientSession) -> None:
    before = snapshot(hub)
    status, reply = await post_values(http, hub, {
        "dataSet": C.form1["id"], "completeDate": "last Tuesday",
        "dataValues": [C.value(INT, "5", coc=DISAGG_COC)]})
    assert status == 400 and "completeDate" in reply["message"]
    assert snapshot(hub) == before


# -- dataValueSets (CSV) --------------------------------------------------------------------
@pytest.mark.parametrize("code, pe, coc, aoc", [
    ("E7634", month(), OTHER_COC, ""),
    ("E7635", month(), DISAGG_COC, DISAGG_COC),
    ("E7632", this_week(), DISAGG_COC, ""),
], ids=["coc", "aoc", "period"])
async def test_csv_values_refused(hub: RunningHub, http: aiohttp.ClientSession, code: str,
                                  pe: str, coc: str, aoc: str) -> None:
    before = snapshot(hub)
    csv = ("dataelement,period,orgunit,categoryoptioncombo,attributeoptioncombo,value\n"
           f"{INT['id']},{pe},{C.chcp_clinic},{coc},{aoc},17\n")
    async with http.post(hub.api("dataValueSets"), data=csv,
                         headers={**CHCP, "Content-Type": "application/csv"}) as r:
        status, reply = r.status, await r.json()
    assert status == 409, reply
    assert conflicts(reply) == [(code, [0])]
    assert snapshot(hub) == before


# -- dataValues (one value) -----------------------------------------------------------------
SINGLE = [
    ("POST", {"co": OTHER_COC}, "E7634"),
    ("POST", {"co": DISAGG_COC, "pe": this_week()}, "E7632"),
    ("POST", {"co": DISAGG_COC, "cc": SEX_AGE,
              "cp": ";".join(o["id"] for o in C.by_id[DISAGG_COC]["categoryOptions"])}, "E7635"),
    ("DELETE", {"co": OTHER_COC}, "E7634"),
    ("DELETE", {"co": DISAGG_COC, "pe": this_week()}, "E7632"),
]


@pytest.mark.parametrize("method, change, code", SINGLE,
                         ids=["post-coc", "post-period", "post-aoc", "delete-coc",
                              "delete-period"])
async def test_single_value_refused(hub: RunningHub, http: aiohttp.ClientSession, method: str,
                                    change: dict[str, str], code: str) -> None:
    before = snapshot(hub)
    params = {"de": INT["id"], "pe": month(), "ou": C.chcp_clinic, **change}
    if method == "POST":
        params["value"] = "3"
    async with http.request(method, hub.api("dataValues"), params=params, headers=CHCP) as r:
        status, reply = r.status, await r.json()
    assert status == 409, reply
    assert reply["errorCode"] == code and reply["status"] == "ERROR"
    assert snapshot(hub) == before


async def test_single_value_json_body_aoc(hub: RunningHub, http: aiohttp.ClientSession) -> None:
    before = snapshot(hub)
    body = {"dataElement": INT["id"], "period": month(), "orgUnit": C.chcp_clinic,
            "categoryOptionCombo": DISAGG_COC, "attributeOptionCombo": OTHER_COC, "value": "2"}
    async with http.post(hub.api("dataValues"), json=body, headers=CHCP) as r:
        assert r.status == 409
        assert (await r.json())["errorCode"] == "E7635"
    assert snapshot(hub) == before


# -- completeDataSetRegistrations: POST -----------------------------------------------------
BAD_TYPES: list[tuple[str, Any]] = [
    (prop, bad) for prop in ("dataSet", "period", "organisationUnit", "attributeOptionCombo",
                             "storedBy", "date", "completed")
    for bad in (["x"], 7, {"id": "x"})
] + [("date", "2024-02-30"), ("date", "20240203"), ("date", "03/02/2024"),
     ("date", "2024-02-03 10:11"), ("completed", "true"), ("completed", 1)]


@pytest.mark.parametrize("prop, bad", BAD_TYPES,
                         ids=[f"{p}-{type(b).__name__}-{b}" for p, b in BAD_TYPES])
async def test_completion_field_types(hub: RunningHub, http: aiohttp.ClientSession, prop: str,
                                      bad: Any) -> None:
    before = snapshot(hub)
    status, reply = await post_regs(http, hub, [reg(**{prop: bad})])
    assert status == 409, reply
    (conflict,) = reply["response"]["conflicts"]
    assert (conflict["errorCode"], conflict["property"], conflict["indexes"]) == \
        ("E4027", prop, [0])
    assert conflict["value"].startswith("Value `") and f"for property `{prop}`" in \
        conflict["value"]
    assert reply["response"]["importCount"] == {"imported": 0, "updated": 0, "ignored": 1,
                                                "deleted": 0}
    assert snapshot(hub) == before


async def test_completion_every_bad_field_is_named(hub: RunningHub,
                                                   http: aiohttp.ClientSession) -> None:
    status, reply = await post_regs(http, hub, [reg(date=20240203, completed="yes",
                                                    attributeOptionCombo=["a"])])
    assert status == 409
    assert sorted(c["property"] for c in reply["response"]["conflicts"]) == [
        "attributeOptionCombo", "completed", "date"]


@pytest.mark.parametrize("code, change", [
    ("E7615", {"attributeOptionCombo": "nosuchaoc01"}),
    ("E7635", {"attributeOptionCombo": DISAGG_COC}),
    ("E7632", {"period": this_week()}),
    ("E7600", {"dataSet": "nosuchds001"}),
    ("E7611", {"period": "2025M13"}),
    ("E7612", {"organisationUnit": "nosuchou001"}),
    ("E7617", {"organisationUnit": C.other_clinic}),
    ("E7637", {"storedBy": "u" * 256}),
], ids=["unknown-aoc", "aoc-other-combo", "weekly-period", "unknown-ds", "bad-period",
        "unknown-ou", "other-clinic", "long-storedBy"])
async def test_completion_keys_refused(hub: RunningHub, http: aiohttp.ClientSession, code: str,
                                       change: dict[str, Any]) -> None:
    before = snapshot(hub)
    status, reply = await post_regs(http, hub, [reg(**change)])
    assert status == 409, reply
    assert conflicts(reply) == [(code, [0])]
    assert reply["response"]["status"] == "WARNING"
    assert snapshot(hub) == before


async def test_completion_aoc_of_another_attribute_combo(hub: RunningHub,
                                                         http: aiohttp.ClientSession) -> None:
    aoc = await catoptions.attribute_combo(hub)  # Form-1's attribute combo
    before = snapshot(hub)
    status, reply = await post_regs(http, hub, [reg(dataSet=C.ds("Form-2")["id"],
                                                    attributeOptionCombo=aoc)])
    assert status == 409 and conflicts(reply) == [("E7635", [0])]
    assert reply["response"]["conflicts"][0]["value"] == \
        f"Attribute option combo: `{aoc}` must have category combo: `{DEFAULT_COMBO}`"
    assert snapshot(hub) == before
    status, reply = await post_regs(http, hub, [reg(attributeOptionCombo=aoc)])
    assert status == 200, reply


async def test_completion_aoc_sharing_and_dates(hub: RunningHub,
                                                http: aiohttp.ClientSession) -> None:
    aoc = await catoptions.attribute_combo(hub, {"sharing": {"public": "rw------"}})
    before = snapshot(hub)
    status, reply = await post_regs(http, hub, [reg(attributeOptionCombo=aoc)])
    assert status == 409 and conflicts(reply) == [("E7616", [0])]
    assert snapshot(hub) == before
    aoc = await catoptions.attribute_combo(
        hub, {"endDate": catoptions.stamp(catoptions.last_day(-2))})
    status, reply = await post_regs(http, hub, [reg(attributeOptionCombo=aoc)])
    assert status == 409 and conflicts(reply) == [("E7638", [0])]
    assert snapshot(hub) == before


async def test_completion_good_ones_still_land(hub: RunningHub,
                                               http: aiohttp.ClientSession) -> None:
    status, reply = await post_regs(http, hub, [
        reg(date=[2024]), reg(date="2024-02-03T10:11:12.000"), reg(period=this_week())])
    assert status == 409
    assert conflicts(reply) == [("E4027", [0]), ("E7632", [2])]
    assert reply["response"]["importCount"] == {"imported": 1, "updated": 0, "ignored": 2,
                                                "deleted": 0}
    rows = hub.store.read_sync(lambda c: [tuple(r) for r in c.execute(
        "SELECT ds, pe, ou, aoc, date, completed FROM complete_registration")])
    assert rows == [(C.form1["id"], month(), C.chcp_clinic, C.default_coc, "2024-02-03", 1)]


# -- completeDataSetRegistrations: DELETE ---------------------------------------------------
DELETES = [
    ("E7600", {"ds": f"{C.form1['id']},nosuchds001"}),
    ("E7611", {"pe": f"{month()},2025M13"}),
    ("E7632", {"pe": f"{month()},{this_week()}"}),
    ("E7612", {"ou": f"{C.chcp_clinic},nosuchou001"}),
    ("E7617", {"ou": C.other_clinic}),
    ("E1110", {"cc": "nosuchcc001", "cp": "nosuchco001"}),
    ("E2041", {"cc": DEFAULT_COMBO, "cp": "nosuchco001"}),
    ("E7635", {"cc": SEX_AGE,
               "cp": ";".join(o["id"] for o in C.by_id[DISAGG_COC]["categoryOptions"])}),
]


@pytest.mark.parametrize("code, change", DELETES,
                         ids=["unknown-ds", "bad-period", "weekly-period", "unknown-ou",
                              "other-clinic", "unknown-cc", "no-such-aoc", "aoc-other-combo"])
async def test_completion_delete_refused(hub: RunningHub, http: aiohttp.ClientSession, code: str,
                                         change: dict[str, str]) -> None:
    status, _ = await post_regs(http, hub, [reg()])
    assert status == 200
    before = snapshot(hub)
    params = {"ds": C.form1["id"], "pe": month(), "ou": C.chcp_clinic, "multiOu": "false",
              **change}
    async with http.delete(hub.api("completeDataSetRegistrations"), params=params,
                           headers=CHCP) as r:
        status, reply = r.status, await r.json()
    assert status == 409, reply
    assert reply["errorCode"] == code and reply["status"] == "ERROR"
    assert snapshot(hub) == before  # the good key named alongside is not un-completed either


async def test_completion_delete_with_cc_cp_of_the_default(hub: RunningHub,
                                                           http: aiohttp.ClientSession) -> None:
    """What the Android SDK sends to un-complete a form still works."""
    status, _ = await post_regs(http, hub, [reg()], ADMIN)
    assert status == 200
    default_options = ";".join(o["id"] for o in C.by_id[C.default_coc]["categoryOptions"])
    async with http.delete(hub.api("completeDataSetRegistrations"), headers=CHCP, params={
            "ds": C.form1["id"], "pe": month(), "ou": C.chcp_clinic, "cc": DEFAULT_COMBO,
            "cp": default_options, "multiOu": "false"}) as r:
        assert r.status == 204
    rows = hub.store.read_sync(lambda c: [tuple(r) for r in c.execute(
        "SELECT deleted FROM complete_registration")])
    assert rows == [(1,)]
