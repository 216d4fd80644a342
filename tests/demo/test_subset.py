"""hub(): what the demo upazila hub holds of the national document (the rule itself,
``appliance.sync.subset.subset_for``, is tested in tests/sync/test_subset.py)."""

from __future__ import annotations

from typing import Any

import pytest

from appliance import demo
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
