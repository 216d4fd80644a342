"""hub() / subset_for(): what an upazila hub holds of the national document."""

from __future__ import annotations

import json
from typing import Any

import pytest

from appliance import demo
from appliance.demo import subset_for
from tests.demo.checks import dangling

Doc = dict[str, Any]


@pytest.fixture(scope="module")
def national() -> Doc:
    return demo.national()


@pytest.fixture(scope="module")
def hub() -> Doc:
    return demo.hub()


def subtree(doc: Doc, root: str) -> set[str]:
    return {o["id"] for o in doc["organisationUnits"] if f"/{root}/" in o["path"] + "/"}


def ou_named(doc: Doc, name: str, level: int) -> str:
    (uid,) = [o["id"] for o in doc["organisationUnits"]
              if o["name"] == name and o["level"] == level]
    return uid


def test_hub_holds_the_subtree_and_its_ancestors_only(national: Doc, hub: Doc) -> None:
    ramu = next(o for o in national["organisationUnits"] if o["id"] == demo.RAMU_UID)
    ancestors = set(ramu["path"].strip("/").split("/")) - {demo.RAMU_UID}
    assert len(ancestors) == 3
    got = {o["id"] for o in hub["organisationUnits"]}
    assert got == subtree(national, demo.RAMU_UID) | ancestors
    assert demo.CHCP_CLINIC_UID in got and demo.RAMU_UHC_UID in got
    ukhia = ou_named(national, "Ukhia", 4)
    assert ukhia not in got and not subtree(national, ukhia) & got
    # 1 upazila + 11 unions + 27 clinics + 1 UHC, plus country, division, district.
    assert len(got) == 43


def test_hub_keeps_every_reference_resolvable(hub: Doc) -> None:
    assert dangling(hub) == []


def test_hub_data_sets_are_trimmed_to_the_subtree(national: Doc, hub: Doc) -> None:
    inside = subtree(national, demo.RAMU_UID)
    nat = {ds["id"]: ds for ds in national["dataSets"]}
    assert {ds["id"] for ds in hub["dataSets"]} == set(nat)
    for ds in hub["dataSets"]:
        expected = [r for r in nat[ds["id"]]["organisationUnits"] if r["id"] in inside]
        assert ds["organisationUnits"] == expected and expected
        assert ds["dataSetElements"] == nat[ds["id"]]["dataSetElements"]
    cc1 = next(ds for ds in hub["dataSets"] if ds["name"] == "CC Form-1 Services")
    assert len(cc1["organisationUnits"]) == 27


def test_hub_keeps_what_its_data_sets_need(national: Doc, hub: Doc) -> None:
    for coll in ("dataElements", "sections", "categoryOptionCombos", "optionSets", "options",
                 "validationRules", "constants", "userRoles", "organisationUnitLevels"):
        assert hub[coll], coll
    assert len(hub["dataElements"]) == len(national["dataElements"])
    assert len(hub["validationRules"]) == len(national["validationRules"])
    combos = {c["name"] for c in hub["categoryCombos"]}
    assert "default" in combos and "Sex and Age group" in combos
    # No data element uses the plain "Age group" combo: a hub does not need it.
    assert "Age group" not in combos
    age = next(c for c in hub["categories"] if c["name"] == "Age group")
    assert {r["id"] for r in age["categoryCombos"]} <= {c["id"] for c in hub["categoryCombos"]}
    assert hub["system"] == national["system"]


def test_hub_min_max_only_for_its_org_units(national: Doc, hub: Doc) -> None:
    inside = subtree(national, demo.RAMU_UID)
    assert hub["minMaxDataElements"]
    assert all(m["source"]["id"] in inside for m in hub["minMaxDataElements"])
    expected = [m for m in national["minMaxDataElements"] if m["source"]["id"] in inside]
    assert hub["minMaxDataElements"] == expected
    assert len(national["minMaxDataElements"]) > len(expected)  # Ukhia's were dropped


def test_hub_users_are_those_inside_the_subtree(hub: Doc) -> None:
    assert sorted(u["username"] for u in hub["users"]) == ["admin", "chcp", "hub-ramu"]


def test_wider_and_narrower_roots(national: Doc) -> None:
    coxs = ou_named(national, "Cox's Bazar", 3)
    doc = subset_for(national, coxs)
    assert sorted(u["username"] for u in doc["users"]) == [
        "admin", "chcp", "hub-ramu", "statistician"]
    assert dangling(doc) == []
    everything = subset_for(national, demo.ROOT_UID)
    assert len(everything["organisationUnits"]) == len(national["organisationUnits"])
    assert len(everything["users"]) == len(national["users"])
    clinic = subset_for(national, demo.CHCP_CLINIC_UID)
    assert [u["username"] for u in clinic["users"]] == ["chcp"]
    assert [o["level"] for o in clinic["organisationUnits"]] == [1, 2, 3, 4, 5, 6]
    assert {ds["name"] for ds in clinic["dataSets"]} == {
        "CC Form-1 Services", "CC Form-2 Maternal & Newborn (ANC/PNC)",
        "CC Form-3 EPI & Child Health", "CC Form-4 Family Planning"}
    assert all(ds["organisationUnits"] == [{"id": demo.CHCP_CLINIC_UID}]
               for ds in clinic["dataSets"])
    assert not any(vr["code"].startswith("VR_UHC") for vr in clinic["validationRules"])
    assert dangling(clinic) == []


def test_subset_is_pure(national: Doc) -> None:
    before = json.dumps(national, sort_keys=True)
    out = subset_for(national, demo.RAMU_UID)
    assert json.dumps(national, sort_keys=True) == before
    out["dataSets"][0]["organisationUnits"].clear()
    out["organisationUnits"][0]["name"] = "changed"
    assert json.dumps(national, sort_keys=True) == before


def test_subset_rules_and_unknown_collections(national: Doc) -> None:
    doc = json.loads(json.dumps(national))
    foreign = dict(doc["validationRules"][0], id="ForeignRul1", code="VR_FOREIGN")
    foreign["leftSide"] = dict(foreign["leftSide"], expression="#{NotAnElem01}")
    doc["validationRules"].append(foreign)
    doc["programs"] = [{"id": "PrgAAAAAAA1", "name": "Maternal register"}]
    out = subset_for(doc, demo.RAMU_UID)
    assert "ForeignRul1" not in {r["id"] for r in out["validationRules"]}
    assert out["programs"] == doc["programs"]  # passed through untouched
    with pytest.raises(ValueError):
        subset_for(doc, "NoSuchUnit1")
