"""The demo's Bangla (issue 14): every name a CHCP reads on the hub's pages, in the forms
and in the registers, has a Bangla translation in Bengali script, and no form, register,
option list or place says two different things with one Bangla name."""

from __future__ import annotations

import copy
import re
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pytest

from appliance import demo
from appliance.demo import bangla

Doc = dict[str, Any]
Obj = dict[str, Any]

# stored property -> the DHIS2 translation property of its display* variant
PROPS = {
    "name": "NAME", "shortName": "SHORT_NAME", "formName": "FORM_NAME",
    "description": "DESCRIPTION", "instruction": "INSTRUCTION", "content": "CONTENT",
    "enrollmentDateLabel": "ENROLLMENT_DATE_LABEL", "incidentDateLabel": "INCIDENT_DATE_LABEL",
    "executionDateLabel": "EXECUTION_DATE_LABEL", "dueDateLabel": "DUE_DATE_LABEL",
    "fromToName": "RELATIONSHIP_FROM_TO_NAME", "toFromName": "RELATIONSHIP_TO_FROM_NAME",
}
# What a CHCP reads: the forms, the places, the registers (and the rules' messages).
# Not here: users (people's own names), user roles, and program rule variables (names
# the rules' expressions use, never shown).
READ = (
    "dataSets", "sections", "dataElements", "categories", "categoryOptions", "categoryCombos",
    "categoryOptionCombos", "optionSets", "options", "validationRules", "constants",
    "organisationUnits", "organisationUnitLevels", "organisationUnitGroups",
    "trackedEntityTypes", "trackedEntityAttributes", "programs", "programStages",
    "programRules", "programRuleActions", "relationshipTypes",
)
BENGALI = re.compile(r"[\u0980-\u09FF]")
LATIN = re.compile(r"[A-Za-z]")


@pytest.fixture(scope="module", params=["hub", "national"])
def doc(request: pytest.FixtureRequest) -> Doc:
    # the hub's cut (what its pages serve) and the whole country (other upazilas' places)
    return demo.hub() if request.param == "hub" else demo.national()


def objects(doc: Doc) -> Iterator[tuple[str, Obj]]:
    """The read metadata, a validation rule's two sides as objects of their own."""
    for coll in READ:
        for obj in doc.get(coll, []):
            yield coll, obj
            if coll == "validationRules":
                for side in ("leftSide", "rightSide"):
                    yield f"{coll}.{side}", obj[side]


def bn(obj: Obj, prop: str) -> str | None:
    return next((t["value"] for t in obj.get("translations", [])
                 if t["property"] == prop and t["locale"] == "bn"), None)


def is_default(obj: Obj) -> bool:
    # DHIS2's default category model: clients (hub.js too) recognise it by this name
    return obj.get("name") == "default"


def untranslated(doc: Doc) -> list[tuple[str, str, str]]:
    """(collection, property, English) of every read property without its Bangla."""
    return [(coll, prop, obj[key]) for coll, obj in objects(doc) if not is_default(obj)
            for key, prop in PROPS.items()
            if isinstance(obj.get(key), str) and obj[key] and bn(obj, prop) is None]


def not_bengali(doc: Doc) -> list[tuple[str, str]]:
    """(collection, value) of every Bangla translation not in Bengali script (or with a
    Latin letter in it: an English word or acronym left in)."""
    return [(coll, t["value"]) for coll, obj in objects(doc)
            for t in obj.get("translations", [])
            if t["locale"] == "bn" and (not BENGALI.search(t["value"])
                                        or LATIN.search(t["value"]))]


def groups(doc: Doc) -> Iterator[tuple[str, list[Obj]]]:
    """The objects a reader sees side by side and must tell apart."""
    ids = {o["id"]: o for _, objs in doc.items() if isinstance(objs, list)
           for o in objs if isinstance(o, dict) and "id" in o}
    for ds in doc["dataSets"]:
        yield ds["name"], [ids[x["dataElement"]["id"]] for x in ds["dataSetElements"]]
        yield f"{ds['name']} sections", [ids[x["id"]] for x in ds["sections"]]
    for p in doc["programs"]:
        stages = [ids[x["id"]] for x in p["programStages"]]
        yield p["name"], [ids[x["dataElement"]["id"]] for s in stages
                          for x in s["programStageDataElements"]]
        yield f"{p['name']} stages", stages
        yield f"{p['name']} attributes", [ids[x["trackedEntityAttribute"]["id"]]
                                          for x in p["programTrackedEntityAttributes"]]
    for coll, key in (("optionSets", "options"), ("categories", "categoryOptions"),
                      ("categoryCombos", "categoryOptionCombos")):
        for o in doc[coll]:
            yield o["name"], [ids[x["id"]] for x in o[key]]
    siblings: dict[str, list[Obj]] = defaultdict(list)
    for ou in doc["organisationUnits"]:
        siblings[ou.get("parent", {}).get("id", "")].append(ou)
    for parent, ous in siblings.items():
        yield f"organisationUnits under {parent}", ous


def ambiguous(doc: Doc) -> list[tuple[str, str, str, set[str]]]:
    """(group, property, Bangla, English names) where distinct English names of one group
    read the same in Bangla."""
    out = []
    for group, objs in groups(doc):
        for key, prop in (("name", "NAME"), ("shortName", "SHORT_NAME"),
                          ("formName", "FORM_NAME")):
            english: dict[str, set[str]] = defaultdict(set)
            for o in objs:
                if o.get(key) and bn(o, prop):
                    english[str(bn(o, prop))].add(o[key])
            out += [(group, prop, b, e) for b, e in english.items() if len(e) > 1]
    return out


def test_every_name_a_chcp_reads_has_bangla(doc: Doc) -> None:
    assert untranslated(doc) == []
    # and there is something to read: the checks above ran over the forms and registers
    counted = defaultdict(int)
    for coll, obj in objects(doc):
        counted[coll] += bn(obj, "NAME") is not None
    for coll in ("dataSets", "sections", "dataElements", "organisationUnits", "programs",
                 "programStages", "trackedEntityAttributes", "trackedEntityTypes", "options",
                 "categoryOptions", "categoryOptionCombos", "programRules"):
        assert counted[coll] > 0, coll
    assert {d.get("domainType") for d in doc["dataElements"] if bn(d, "NAME")} == {
        "AGGREGATE", "TRACKER"}


def test_translations_are_in_bengali_script(doc: Doc) -> None:
    assert not_bengali(doc) == []
    # each translates a property the object has, in the one locale the demo speaks
    for coll, obj in objects(doc):
        for t in obj.get("translations", []):
            assert t["locale"] == "bn" and t["property"] in PROPS.values(), (coll, t)
            key = next(k for k, p in PROPS.items() if p == t["property"])
            assert obj.get(key), (coll, obj.get("name"), t)


def test_no_two_names_on_a_form_read_the_same(doc: Doc) -> None:
    assert ambiguous(doc) == []


def test_the_checks_see_what_they_look_for() -> None:
    doc = demo.hub()
    clean = copy.deepcopy(doc)
    de = next(d for d in doc["dataElements"] if d.get("code") == "CC_ANC2")
    de["translations"] = [t for t in de["translations"] if t["property"] != "FORM_NAME"]
    assert untranslated(doc) == [("dataElements", "FORM_NAME", "ANC 2nd visit")]
    # the 2nd visit read as the 1st: two things on Form-2 with one Bangla name
    anc1 = next(d for d in doc["dataElements"] if d.get("code") == "CC_ANC1")
    de["translations"] = copy.deepcopy(anc1["translations"])
    assert {(g, p) for g, p, _, _ in ambiguous(doc)} == {
        ("CC Form-2 Maternal & Newborn (ANC/PNC)", p) for p in ("NAME", "SHORT_NAME", "FORM_NAME")}
    option = doc["options"][0]
    option["translations"] = [{"property": "NAME", "locale": "bn", "value": "ANC সেবা"}]
    assert not_bengali(doc) == [("options", "ANC সেবা")]
    option["translations"][0]["value"] = "Female"
    assert not_bengali(doc) == [("options", "Female")]
    assert untranslated(clean) == [] and ambiguous(clean) == [] and not_bengali(clean) == []


def test_place_names_as_bangladeshis_write_them() -> None:
    doc = demo.hub()
    ous = {o["id"]: o for o in doc["organisationUnits"]}
    assert bn(ous[demo.ROOT_UID], "NAME") == "বাংলাদেশ"
    assert bn(ous[demo.RAMU_UID], "NAME") == "রামু"
    district = ous[ous[demo.RAMU_UID]["parent"]["id"]]
    assert (district["name"], bn(district, "NAME")) == ("Cox's Bazar", "কক্সবাজার")
    assert bn(ous[demo.RAMU_UHC_UID], "NAME") == "রামু উপজেলা স্বাস্থ্য কমপ্লেক্স"
    clinic = ous[demo.CHCP_CLINIC_UID]
    assert bn(clinic, "NAME") == "মেরংলোয়া কমিউনিটি ক্লিনিক"
    assert bn(ous[clinic["parent"]["id"]], "NAME") == "ফতেখাঁরকূল"
    # a name made of a listed place and a listed word
    assert bangla.org_unit("Dakshin Mithachhari") == "দক্ষিণ মিঠাছড়ি"
    assert bangla.org_unit("Jalia Palong Uttarpara Community Clinic") == \
        "জালিয়াপালং উত্তরপাড়া কমিউনিটি ক্লিনিক"
    assert bangla.org_unit("Nowhere Community Clinic") is None  # never half-English


def test_medical_words_as_dghs_writes_them() -> None:
    doc = demo.hub()
    form = {d["code"]: bn(d, "FORM_NAME") for d in doc["dataElements"]}
    assert form["CC_ANC1"] == "গর্ভকালীন ১ম সেবা" and form["CC_PNC4"] == "প্রসবোত্তর ৪র্থ সেবা (মা)"
    assert form["CC_PENTA3"] == "পেন্টা ৩য় ডোজ" and form["CC_BCG"] == "বিসিজি"
    assert form["CC_FP_PILL"] == "খাবার বড়ি গ্রহণকারী" and form["CC_TD2"] == "টিডি ২য় ডোজ"
    assert form["BD_EPI_FIPV1_GIVEN"] == "এফআইপিভি ১ দেওয়া হয়েছে"
    names = {d["code"]: bn(d, "NAME") for d in doc["dataElements"]}
    assert names["CC_OPD_TOTAL"] == "সিসি - সেবা নেওয়া রোগী"  # the form's prefix in Bangla
    assert names["BD_MAT_WEIGHT"] == "মাতৃ - ওজন (কেজি)"
    maternal = next(p for p in doc["programs"] if p["code"] == "BD_MATERNAL")
    assert bn(maternal, "INCIDENT_DATE_LABEL") == "শেষ মাসিকের প্রথম দিন (এলএমপি)"
    assert bn(maternal, "ENROLLMENT_DATE_LABEL") == "নিবন্ধনের তারিখ"
    # the ANC stage's Bangla description follows the schedule its English one encodes
    anc = next(s for s in doc["programStages"] if s["code"] == "BD_MAT_ANC")
    assert "২৪-২৮ সপ্তাহে" in str(bn(anc, "DESCRIPTION"))


def test_every_table_entry_is_used() -> None:
    """A renamed English name leaves no stale Bangla behind (the untranslated new name
    fails the first test)."""
    doc = demo.national()
    english = {obj[k] for _, obj in objects(doc) for k in PROPS if isinstance(obj.get(k), str)}
    parts = set(english)
    for s in english:
        parts |= {s.removeprefix(p) for p in bangla.PREFIXES}
        parts |= set(s.split(": ", 1)) | set(s.split(", "))
    assert sorted(set(bangla.BN) - parts) == []
