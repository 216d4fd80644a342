"""The national demo document: DHIS2 shapes, resolvable references, the promised content."""

from __future__ import annotations

import itertools
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from appliance import demo
from appliance.demo import generate
from tests.demo.checks import STAMP_RE, UID_RE, collections, dangling

Doc = dict[str, Any]

KEYS = [
    "system", "organisationUnits", "organisationUnitLevels", "organisationUnitGroups",
    "categoryOptions", "categories", "categoryCombos", "categoryOptionCombos", "dataElements",
    "dataSets", "sections", "optionSets", "options", "validationRules", "minMaxDataElements",
    "constants", "userRoles", "users", "trackedEntityAttributes", "trackedEntityTypes",
    "programs", "programStages", "programRuleVariables", "programRules", "programRuleActions",
    "relationshipTypes",
]
CC_FORMS = [
    "CC Form-1 Services", "CC Form-2 Maternal & Newborn (ANC/PNC)",
    "CC Form-3 EPI & Child Health", "CC Form-4 Family Planning",
]


@pytest.fixture(scope="module")
def doc() -> Doc:
    return demo.national()


def by_id(doc: Doc) -> dict[str, dict[str, Any]]:
    return {o["id"]: o for _, objs in collections(doc) for o in objs}


def named(doc: Doc, coll: str, name: str) -> dict[str, Any]:
    found = [o for o in doc[coll] if o["name"] == name]
    assert len(found) == 1, (coll, name, len(found))
    return found[0]


def children(doc: Doc, uid: str) -> list[dict[str, Any]]:
    return [o for o in doc["organisationUnits"] if o.get("parent", {}).get("id") == uid]


def test_document_has_every_collection(doc: Doc) -> None:
    assert list(doc) == KEYS
    assert doc["system"]["version"].startswith("2.4")
    assert all(doc[k] for k in KEYS[1:]), [k for k in KEYS[1:] if not doc[k]]


def test_committed_json_is_what_the_generator_writes(tmp_path: Path) -> None:
    # Deterministic, and nobody edited national.json by hand or forgot to regenerate.
    out = tmp_path / "national.json"
    assert generate.main([str(out)]) == 0
    assert out.read_text(encoding="utf-8") == generate.dumps(generate.build())
    assert out.read_text(encoding="utf-8") == generate.OUT.read_text(encoding="utf-8")


def test_uids_are_valid_and_unique_across_the_document(doc: Doc) -> None:
    all_ids = [o["id"] for _, objs in collections(doc) for o in objs]
    assert all(UID_RE.match(i) for i in all_ids), [i for i in all_ids if not UID_RE.match(i)]
    dupes = [i for i, n in Counter(all_ids).items() if n > 1]
    assert not dupes
    creds = [u["userCredentials"]["id"] for u in doc["users"]]
    assert all(UID_RE.match(i) for i in creds) and not set(creds) & set(all_ids)


def test_identifiable_fields(doc: Doc) -> None:
    for coll, objs in collections(doc):
        for o in objs:
            if coll == "minMaxDataElements":  # not an identifiable object in DHIS2
                assert {"source", "dataElement", "optionCombo", "min", "max"} <= set(o)
                continue
            if coll == "programRuleActions":  # DHIS2 gives actions no name
                assert o["programRuleActionType"] and STAMP_RE.match(o["lastUpdated"])
                continue
            assert o["name"] and o["displayName"] == o["name"], (coll, o["id"])
            assert STAMP_RE.match(o["created"]) and STAMP_RE.match(o["lastUpdated"])
    for coll in ("organisationUnits", "dataElements", "dataSets", "categoryOptions",
                 "categories", "constants"):
        for o in doc[coll]:
            assert o["code"] and o["shortName"], (coll, o["id"])
            assert len(o["shortName"]) <= 50, o["shortName"]
    for coll in ("dataElements", "dataSets", "organisationUnits", "categoryOptions"):
        for field in ("name", "shortName", "code"):
            values = [o[field] for o in doc[coll]]
            if coll == "organisationUnits" and field != "code":
                continue  # e.g. "Chattogram" is a division and a district, as in reality
            assert len(values) == len(set(values)), (coll, field)


def test_every_reference_resolves(doc: Doc) -> None:
    assert dangling(doc) == []


def test_two_way_links_agree(doc: Doc) -> None:
    ds_ous = {(ds["id"], r["id"]) for ds in doc["dataSets"] for r in ds["organisationUnits"]}
    ou_ds = {(r["id"], ou["id"]) for ou in doc["organisationUnits"] for r in ou["dataSets"]}
    assert ds_ous == ou_ds
    g_ous = {(g["id"], r["id"]) for g in doc["organisationUnitGroups"]
             for r in g["organisationUnits"]}
    ou_g = {(r["id"], ou["id"]) for ou in doc["organisationUnits"]
            for r in ou["organisationUnitGroups"]}
    assert g_ous == ou_g
    cat_cc = {(c["id"], r["id"]) for c in doc["categories"] for r in c["categoryCombos"]}
    cc_cat = {(r["id"], cc["id"]) for cc in doc["categoryCombos"] for r in cc["categories"]}
    assert cat_cc == cc_cat
    os_opt = {(s["id"], r["id"]) for s in doc["optionSets"] for r in s["options"]}
    opt_os = {(o["optionSet"]["id"], o["id"]) for o in doc["options"]}
    assert os_opt == opt_os
    sections = {s["id"]: s for s in doc["sections"]}
    for ds in doc["dataSets"]:
        secs = [sections[r["id"]] for r in ds["sections"]]
        assert all(s["dataSet"]["id"] == ds["id"] for s in secs)
        in_sections = [r["id"] for s in secs for r in s["dataElements"]]
        in_ds = [e["dataElement"]["id"] for e in ds["dataSetElements"]]
        assert in_sections == in_ds  # every element in exactly one section, same order
        assert all(e["dataSet"]["id"] == ds["id"] for e in ds["dataSetElements"])


def test_paths_levels_and_parents(doc: Doc) -> None:
    ous = {o["id"]: o for o in doc["organisationUnits"]}
    for o in ous.values():
        segments = o["path"].strip("/").split("/")
        assert segments[-1] == o["id"] and o["level"] == len(segments)
        if o["level"] == 1:
            assert "parent" not in o and o["id"] == demo.ROOT_UID
            continue
        parent = ous[o["parent"]["id"]]
        assert o["path"] == parent["path"] + "/" + o["id"]
        assert o["level"] == parent["level"] + 1
        assert re.match(r"^\d{4}-\d\d-\d\dT00:00:00\.000$", o["openingDate"])
    levels = sorted((lv["level"], lv["name"]) for lv in doc["organisationUnitLevels"])
    assert levels == list(enumerate(
        ["Country", "Division", "District", "Upazila", "Union", "Facility"], start=1))
    assert max(o["level"] for o in ous.values()) == 6
    # Facilities are exactly the members of the two groups.
    members = {r["id"] for g in doc["organisationUnitGroups"] for r in g["organisationUnits"]}
    assert members == {o["id"] for o in ous.values() if o["level"] == 6}


def test_geography(doc: Doc) -> None:
    ous = doc["organisationUnits"]
    assert len(ous) < 400
    divisions = children(doc, demo.ROOT_UID)
    assert sorted(d["name"] for d in divisions) == [
        "Barishal", "Chattogram", "Dhaka", "Khulna", "Mymensingh", "Rajshahi", "Rangpur",
        "Sylhet"]
    ctg = next(d for d in divisions if d["name"] == "Chattogram")
    districts = {d["name"]: d for d in children(doc, ctg["id"])}
    assert "Cox's Bazar" in districts and 3 <= len(districts) - 1 <= 3
    for d in divisions:
        assert children(doc, d["id"])
    upazilas = {u["name"]: u for u in children(doc, districts["Cox's Bazar"]["id"])}
    assert set(upazilas) == {"Ramu", "Ukhia", "Teknaf", "Chakaria"}
    assert upazilas["Ramu"]["id"] == demo.RAMU_UID

    def facilities(uz: str, group: str) -> list[dict[str, Any]]:
        gid = named(doc, "organisationUnitGroups", group)["id"]
        return [o for o in ous if f"/{uz}/" in o["path"]
                and gid in {r["id"] for r in o["organisationUnitGroups"]}]

    unions = children(doc, demo.RAMU_UID)
    assert len(unions) == 11 and all(u["level"] == 5 for u in unions)
    clinics = facilities(demo.RAMU_UID, "Community Clinic")
    assert len(clinics) == 27
    assert all(c["name"].endswith(" Community Clinic") for c in clinics)
    assert len({c["parent"]["id"] for c in clinics}) == 11  # spread over every union
    uhcs = facilities(demo.RAMU_UID, "Upazila Health Complex")
    assert [u["name"] for u in uhcs] == ["Ramu UHC"] and uhcs[0]["id"] == demo.RAMU_UHC_UID
    for uz in ous:
        if uz["level"] != 4 or uz["id"] == demo.RAMU_UID:
            continue
        assert 2 <= len(children(doc, uz["id"])) <= 3, uz["name"]
        assert 3 <= len(facilities(uz["id"], "Community Clinic")) <= 6, uz["name"]
        assert len(facilities(uz["id"], "Upazila Health Complex")) == 1


def test_named_constants(doc: Doc) -> None:
    ous = {o["id"]: o for o in doc["organisationUnits"]}
    assert ous[demo.ROOT_UID]["name"] == "Bangladesh"
    assert ous[demo.RAMU_UID]["name"] == "Ramu" and ous[demo.RAMU_UID]["level"] == 4
    chcp = ous[demo.CHCP_CLINIC_UID]
    assert chcp["level"] == 6 and f"/{demo.RAMU_UID}/" in chcp["path"]
    assert chcp["name"].endswith("Community Clinic")


def test_default_category_model(doc: Doc) -> None:
    ids = by_id(doc)
    combo = ids[demo.DEFAULT_CATEGORY_COMBO_UID]
    assert combo["name"] == "default" and combo["isDefault"] is True
    assert [c for c in doc["categoryCombos"] if c["isDefault"]] == [combo]
    assert combo["categories"] == [{"id": "GLevLNI9wkl"}]
    assert combo["categoryOptionCombos"] == [{"id": demo.DEFAULT_COC_UID}]
    assert ids["GLevLNI9wkl"]["categoryOptions"] == [{"id": "xYerKDKCefk"}]
    coc = ids[demo.DEFAULT_COC_UID]
    assert coc["name"] == "default" and coc["categoryOptions"] == [{"id": "xYerKDKCefk"}]


def test_every_combo_has_all_its_option_combos(doc: Doc) -> None:
    ids = by_id(doc)
    owner = Counter(r["id"] for cc in doc["categoryCombos"] for r in cc["categoryOptionCombos"])
    assert set(owner) == {c["id"] for c in doc["categoryOptionCombos"]}
    assert set(owner.values()) == {1}
    names = {cc["name"] for cc in doc["categoryCombos"]}
    assert {"Sex", "Age group", "Sex and Age group"} <= names
    for cc in doc["categoryCombos"]:
        cats = [ids[r["id"]] for r in cc["categories"]]
        expected = {
            frozenset(combo)
            for combo in itertools.product(*[[r["id"] for r in c["categoryOptions"]] for c in cats])
        }
        cocs = [ids[r["id"]] for r in cc["categoryOptionCombos"]]
        got = {frozenset(r["id"] for r in x["categoryOptions"]) for x in cocs}
        assert got == expected and len(cocs) == len(expected), cc["name"]
        for x in cocs:
            assert x["categoryCombo"]["id"] == cc["id"]
            if not cc["isDefault"]:  # named like DHIS2: options joined in category order
                assert x["name"] == ", ".join(ids[r["id"]]["name"] for r in x["categoryOptions"])
    sex_age = named(doc, "categoryCombos", "Sex and Age group")
    assert len(sex_age["categoryOptionCombos"]) == 10
    assert "Female, 15-49y" in {ids[r["id"]]["name"] for r in sex_age["categoryOptionCombos"]}


def test_data_sets(doc: Doc) -> None:
    ids = by_id(doc)
    groups = {g["name"]: {r["id"] for r in g["organisationUnits"]}
              for g in doc["organisationUnitGroups"]}
    assert sorted(ds["name"] for ds in doc["dataSets"]) == sorted([*CC_FORMS, "UHC Monthly Report"])
    for ds in doc["dataSets"]:
        assert ds["periodType"] == "Monthly"
        assert ds["categoryCombo"]["id"] == demo.DEFAULT_CATEGORY_COMBO_UID
        assert ds["compulsoryDataElementOperands"] == [] and "workflow" not in ds
        for flag in ("fieldCombinationRequired", "validCompleteOnly", "noValueRequiresComment",
                     "skipOffline", "renderAsTabs", "renderHorizontally"):
            assert isinstance(ds[flag], bool), flag
        assert ds["openFuturePeriods"] in (0, 1) and isinstance(ds["timelyDays"], int)
        assigned = {r["id"] for r in ds["organisationUnits"]}
        cells = sum(len(ids[ids[e["dataElement"]["id"]]["categoryCombo"]["id"]]
                        ["categoryOptionCombos"]) for e in ds["dataSetElements"])
        if ds["name"] in CC_FORMS:
            assert assigned == groups["Community Clinic"]
            assert ds["expiryDays"] == 15 and ds["dataInputPeriods"] == []
            assert 140 <= cells <= 160, (ds["name"], cells)
        else:
            assert assigned == groups["Upazila Health Complex"]
            # no input periods: fixed dates would close the UHC form for every current month
            assert ds["expiryDays"] == 0 and ds["dataInputPeriods"] == []


def test_data_elements(doc: Doc) -> None:
    ids = by_id(doc)
    des = [d for d in doc["dataElements"] if d["domainType"] == "AGGREGATE"]
    tracker = [d for d in doc["dataElements"] if d["domainType"] == "TRACKER"]
    assert len(des) + len(tracker) == len(doc["dataElements"]) and tracker
    types = Counter(d["valueType"] for d in des)
    assert types.most_common(1)[0][0] == "INTEGER_ZERO_OR_POSITIVE"
    assert {"NUMBER", "INTEGER", "PERCENTAGE", "BOOLEAN", "TRUE_ONLY", "TEXT", "DATE"} <= set(types)
    zero_sig = sum(d["zeroIsSignificant"] for d in des)
    assert 0 < zero_sig < len(des) / 4
    assert {d["aggregationType"] for d in des} <= {"SUM", "AVERAGE", "NONE"}
    with_options = [d for d in des if d.get("optionSet")]
    assert with_options and all(d["optionSetValue"] for d in with_options)
    for d in with_options:
        assert d["valueType"] == ids[d["optionSet"]["id"]]["valueType"] == "TEXT"
    stock = named(doc, "optionSets", "Stock status")
    codes = [ids[r["id"]]["code"] for r in stock["options"]]
    assert codes == ["ADEQUATE", "LOW", "STOCKOUT"]
    assert [ids[r["id"]]["sortOrder"] for r in stock["options"]] == [1, 2, 3]
    anc1 = next(d for d in des if d["code"] == "CC_ANC1")
    assert anc1["name"] == "CC - ANC 1st visit" and anc1["formName"] == "ANC 1st visit"


def test_validation_rules(doc: Doc) -> None:
    rules = doc["validationRules"]
    assert 5 <= len(rules) <= 10
    ops = {"equal_to", "not_equal_to", "greater_than", "greater_than_or_equal_to",
           "less_than", "less_than_or_equal_to", "compulsory_pair", "exclusive_pair"}
    strategies = {"SKIP_IF_ANY_VALUE_MISSING", "SKIP_IF_ALL_VALUES_MISSING", "NEVER_SKIP"}
    for r in rules:
        assert r["operator"] in ops and r["periodType"] == "Monthly"
        assert r["importance"] in ("HIGH", "MEDIUM", "LOW")
        for side in (r["leftSide"], r["rightSide"]):
            assert side["missingValueStrategy"] in strategies and side["description"]
    exprs = " ".join(r["leftSide"]["expression"] + r["rightSide"]["expression"] for r in rules)
    assert re.search(r"#\{\w{11}\.\w{11}\}", exprs)  # a COC-level operand
    assert "C{" in exprs  # a constant
    assert {r["operator"] for r in rules} >= {"less_than_or_equal_to", "equal_to",
                                             "greater_than_or_equal_to"}


def test_min_max(doc: Doc) -> None:
    ids = by_id(doc)
    cc_group = named(doc, "organisationUnitGroups", "Community Clinic")
    clinics = {r["id"] for r in cc_group["organisationUnits"]}
    mm = doc["minMaxDataElements"]
    assert len(mm) > 100
    for m in mm:
        assert m["source"]["id"] in clinics
        combo = ids[ids[m["dataElement"]["id"]]["categoryCombo"]["id"]]
        assert {"id": m["optionCombo"]["id"]} in combo["categoryOptionCombos"]
        assert 0 <= m["min"] < m["max"] and m["generated"] is False
    ramu = {m["source"]["id"] for m in mm if f"/{demo.RAMU_UID}/" in ids[m["source"]["id"]]["path"]}
    assert len(ramu) == 27


def test_users_roles_and_credentials(doc: Doc) -> None:
    ids = by_id(doc)
    roles = {r["name"]: r for r in doc["userRoles"]}
    assert roles["Superuser"]["authorities"] == ["ALL"]
    assert set(roles["CHCP"]["authorities"]) == {
        "F_DATAVALUE_ADD", "F_DATAVALUE_DELETE", "M_dhis-web-aggregate-data-entry",
        "M_dhis-web-dataentry", "M_dhis-web-capture"}
    assert set(roles["Data manager"]["authorities"]) == (
        set(roles["CHCP"]["authorities"]) | {"F_EDIT_EXPIRED"})
    assert "Hub service" in roles
    users = {u["username"]: u for u in doc["users"]}
    assert set(users) == set(demo.DEMO_PASSWORDS)
    expect = {
        "admin": ("Ramu", "Superuser"), "chcp": (None, "CHCP"), "dghs": ("Bangladesh", "Superuser"),
        "hub-ramu": ("Ramu", "Hub service"), "statistician": ("Cox's Bazar", "Data manager"),
    }
    for name, (ou_name, role) in expect.items():
        u = users[name]
        (ou,) = u["organisationUnits"]
        assert ou_name is None or ids[ou["id"]]["name"] == ou_name
        assert [ids[r["id"]]["name"] for r in u["userRoles"]] == [role]
        assert u["dataViewOrganisationUnits"] == [ou]
        # the CHCP searches the whole upazila for people; everyone else their own subtree
        search = [{"id": demo.RAMU_UID}] if name == "chcp" else [ou]
        assert u["teiSearchOrganisationUnits"] == search
        assert u["userCredentials"]["username"] == name
        assert u["userCredentials"]["userRoles"] == u["userRoles"]
        assert u["firstName"] and u["surname"] and u["name"] == f"{u['firstName']} {u['surname']}"
    assert users["chcp"]["organisationUnits"] == [{"id": demo.CHCP_CLINIC_UID}]
    for username, token in demo.DEMO_TOKENS.items():
        assert username in users and re.match(r"^d2pat_[A-Za-z0-9]{32}\d{10}$", token)


def test_national_and_hub_return_fresh_copies() -> None:
    a = demo.national()
    a["organisationUnits"].clear()
    assert demo.national()["organisationUnits"]
    h = demo.hub()
    h["users"].clear()
    assert demo.hub()["users"]
    assert json.dumps(demo.hub()) == json.dumps(demo.hub(demo.RAMU_UID))
