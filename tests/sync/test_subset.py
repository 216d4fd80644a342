"""subset_for(): which part of a national metadata document a hub holds."""

from __future__ import annotations

import json
from typing import Any

import pytest

from appliance import demo
from appliance.sync.subset import subset_for
from tests.demo.checks import dangling

Doc = dict[str, Any]


@pytest.fixture(scope="module")
def national() -> Doc:
    return demo.national()


def ou_named(doc: Doc, name: str, level: int) -> str:
    (uid,) = [o["id"] for o in doc["organisationUnits"]
              if o["name"] == name and o["level"] == level]
    return uid


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
    doc["indicators"] = [{"id": "IndAAAAAAA1", "name": "ANC 4 coverage"}]
    doc["programs"].append({"id": "PrgAAAAAAA1", "name": "Unassigned register"})
    out = subset_for(doc, demo.RAMU_UID)
    assert "ForeignRul1" not in {r["id"] for r in out["validationRules"]}
    assert out["indicators"] == doc["indicators"]  # passed through untouched
    # programs are cut like data sets: one assigned to no org unit of the subtree is not kept
    assert "PrgAAAAAAA1" not in {p["id"] for p in out["programs"]} and out["programs"]
    with pytest.raises(ValueError):
        subset_for(doc, "NoSuchUnit1")
