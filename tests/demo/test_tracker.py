"""The demo's tracker metadata: the Person type, the three registers, their rules, and what
a hub's subset holds of them."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import pytest

from appliance import demo
from appliance.dhis2 import program_rules as pr
from appliance.store.metadata import TYPES
from appliance.sync.subset import subset_for
from tests.demo.checks import dangling
from tests.demo.rules import compared_literals, fired, program_of

Doc = dict[str, Any]
TRACKER_KEYS = ["trackedEntityAttributes", "trackedEntityTypes", "programs", "programStages",
                "programRuleVariables", "programRules", "programRuleActions",
                "relationshipTypes"]
ATTRIBUTE_TYPES = {
    "BD_NAME_BN": "TEXT", "BD_NAME_EN": "TEXT", "BD_RELATION_NAME": "TEXT", "BD_DOB": "DATE",
    "BD_AGE_YEARS": "INTEGER_ZERO_OR_POSITIVE", "BD_SEX": "TEXT", "BD_PHONE": "PHONE_NUMBER",
    "BD_BRN": "TEXT", "BD_VILLAGE": "TEXT",
}
# Bangladesh EPI: vaccine -> days from birth (months as 30 days, as DHIS2 schedules in days).
EPI_DAYS = {
    "BCG": 0, "PENTA1": 42, "OPV1": 42, "PCV1": 42, "FIPV1": 42,
    "PENTA2": 70, "OPV2": 70, "PCV2": 70,
    "PENTA3": 98, "OPV3": 98, "FIPV2": 98, "PCV3": 126,
    "MR1": 270, "MR2": 450,
}
# ANC contact -> gestational weeks (ANC1 *by* 16 weeks; ANC2 within 24-28).
ANC_WEEKS = {"ANC1": (16, 16), "ANC2": (24, 28), "ANC3": (32, 32), "ANC4": (36, 36)}
ACTIONS = {"HIDEFIELD", "SHOWWARNING", "SHOWERROR", "ASSIGN"}


@pytest.fixture(scope="module")
def doc() -> Doc:
    return demo.national()


@pytest.fixture(scope="module")
def hub() -> Doc:
    return demo.hub()


def ids(doc: Doc) -> dict[str, dict[str, Any]]:
    return {o["id"]: o for k, v in doc.items() if isinstance(v, list) for o in v}


def program(doc: Doc, code: str) -> dict[str, Any]:
    (p,) = [p for p in doc["programs"] if p["code"] == code]
    return p


def stages(doc: Doc, p: dict[str, Any]) -> list[dict[str, Any]]:
    by = ids(doc)
    return [by[r["id"]] for r in p["programStages"]]


def stage_des(doc: Doc, st: dict[str, Any]) -> dict[str, dict[str, Any]]:
    by = ids(doc)
    return {by[e["dataElement"]["id"]]["code"]: by[e["dataElement"]["id"]]
            for e in st["programStageDataElements"]}


def option_codes(doc: Doc, os_id: str) -> list[str]:
    by = ids(doc)
    return [by[r["id"]]["code"] for r in by[os_id]["options"]]


def variables(doc: Doc, p: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in doc["programRuleVariables"] if v["program"]["id"] == p["id"]}


def rules(doc: Doc, p: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in doc["programRules"] if r["program"]["id"] == p["id"]]


def facilities(doc: Doc, root: str | None = None) -> set[str]:
    return {r["id"] for g in doc["organisationUnitGroups"] for r in g["organisationUnits"]
            if root is None or f"/{root}/" in ids(doc)[r["id"]]["path"]}


def test_collections_are_served_and_stored() -> None:
    assert set(TRACKER_KEYS) <= set(TYPES)


def test_attributes(doc: Doc) -> None:
    teas = {a["code"]: a for a in doc["trackedEntityAttributes"]}
    assert {c: a["valueType"] for c, a in teas.items()} == ATTRIBUTE_TYPES
    brn = teas["BD_BRN"]
    assert brn["unique"] is True and brn["generated"] is True
    # a TextPattern: quoted text + SEQUENTIAL(#...) (the reserved-value generator's input)
    assert re.fullmatch(r'"[A-Z]+-" \+ SEQUENTIAL\(#{6,}\)', brn["pattern"])
    assert all(a["generated"] is False and a["unique"] is False
               for c, a in teas.items() if c != "BD_BRN")
    sex = teas["BD_SEX"]
    assert sex["optionSetValue"] is True
    by = ids(doc)
    assert [(by[r["id"]]["code"], by[r["id"]]["name"]) for r in
            by[sex["optionSet"]["id"]]["options"]] == [
        ("FEMALE", "Female"), ("MALE", "Male"), ("OTHER", "Other")]
    (person,) = doc["trackedEntityTypes"]
    assert person["name"] == "Person" and person["access"]["data"] == {"read": True,
                                                                       "write": True}
    assert {r["trackedEntityAttribute"]["id"] for r in person["trackedEntityTypeAttributes"]} \
        == {a["id"] for a in teas.values()}


def test_programs(doc: Doc) -> None:
    by = ids(doc)
    assert sorted(p["code"] for p in doc["programs"]) == ["BD_EPI", "BD_MATERNAL", "BD_U5"]
    (person,) = doc["trackedEntityTypes"]
    everywhere = facilities(doc)
    assert len(everywhere) > 50
    for p in doc["programs"]:
        assert p["programType"] == "WITH_REGISTRATION" and p["accessLevel"] == "PROTECTED"
        assert p["trackedEntityType"] == {"id": person["id"]}
        assert p["categoryCombo"] == {"id": demo.DEFAULT_CATEGORY_COMBO_UID}
        assert p["access"]["data"] == {"read": True, "write": True}
        assert {r["id"] for r in p["organisationUnits"]} == everywhere
        ptea = p["programTrackedEntityAttributes"]
        codes = [by[a["trackedEntityAttribute"]["id"]]["code"] for a in ptea]
        assert {"BD_NAME_BN", "BD_NAME_EN", "BD_DOB", "BD_PHONE", "BD_BRN"} <= set(codes)
        assert len(codes) == len(set(codes))
        for a in ptea:
            assert a["program"] == {"id": p["id"]}
            assert all(isinstance(a[k], bool) for k in ("mandatory", "searchable",
                                                        "displayInList"))
        assert any(a["searchable"] for a in ptea) and any(a["mandatory"] for a in ptea)
        for order, st in enumerate(stages(doc, p), start=1):
            assert st["program"] == {"id": p["id"]} and st["sortOrder"] == order
            assert st["access"]["data"]["write"] is True
            assert st["programStageDataElements"]
            for e in st["programStageDataElements"]:
                de = by[e["dataElement"]["id"]]
                assert de["domainType"] == "TRACKER" and e["programStage"] == {"id": st["id"]}
                assert isinstance(e["compulsory"], bool)
                assert de["optionSetValue"] is ("optionSet" in de)
    epi, u5 = program(doc, "BD_EPI"), program(doc, "BD_U5")
    for p in (epi, u5):  # a child's date of birth and sex are required to enroll
        req = {by[a["trackedEntityAttribute"]["id"]]["code"]
               for a in p["programTrackedEntityAttributes"] if a["mandatory"]}
        assert {"BD_DOB", "BD_SEX", "BD_NAME_BN"} <= req


def test_tracker_data_elements_only_in_stages(doc: Doc) -> None:
    in_stages = {e["dataElement"]["id"] for st in doc["programStages"]
                 for e in st["programStageDataElements"]}
    tracker = {d["id"] for d in doc["dataElements"] if d["domainType"] == "TRACKER"}
    in_sets = {e["dataElement"]["id"] for ds in doc["dataSets"] for e in ds["dataSetElements"]}
    assert tracker == in_stages and not tracker & in_sets


def test_maternal_register(doc: Doc) -> None:
    anc, delivery, pnc = stages(doc, program(doc, "BD_MATERNAL"))
    assert (anc["name"], delivery["name"], pnc["name"]) == ("ANC visit", "Delivery", "PNC visit")
    assert anc["repeatable"] and not delivery["repeatable"] and pnc["repeatable"]
    assert {"BD_MAT_GEST_WEEKS", "BD_MAT_BP_SYS", "BD_MAT_BP_DIA", "BD_MAT_WEIGHT",
            "BD_MAT_HB", "BD_MAT_DANGER", "BD_MAT_NEXT_VISIT"} <= set(stage_des(doc, anc))
    # the schedule note, in days from LMP, is the national four-contact model
    note = re.search(r"BD_SCHEDULE[^:]*:(.*)", anc["description"])
    assert note
    got = {c: (int(lo), int(hi or lo))
           for c, lo, hi in re.findall(r"(ANC\d)=(\d+)(?:-(\d+))?", note.group(1))}
    assert got == {c: (lo * 7, hi * 7) for c, (lo, hi) in ANC_WEEKS.items()}
    assert anc["minDaysFromStart"] == 16 * 7  # ANC1 due by 16 weeks
    assert 0 < anc["standardInterval"] <= 8 * 7
    des = stage_des(doc, delivery)
    place = des["BD_MAT_DELIV_PLACE"]
    assert {"HOME", "CC", "UHC"} <= set(option_codes(doc, place["optionSet"]["id"]))
    assert des["BD_MAT_DELIV_DATE"]["valueType"] == "DATE"
    assert des["BD_MAT_DELIV_SKILLED"]["valueType"] == "BOOLEAN"
    assert "LIVE_BIRTH" in option_codes(doc, des["BD_MAT_DELIV_OUTCOME"]["optionSet"]["id"])
    assert delivery["minDaysFromStart"] == 280 < pnc["minDaysFromStart"]


def test_epi_stages_follow_the_schedule(doc: Doc) -> None:
    seen: dict[str, int] = {}
    for st in stages(doc, program(doc, "BD_EPI")):
        assert not st["repeatable"] and st["autoGenerateEvent"]
        assert st["generatedByEnrollmentDate"] is False  # due dates count from birth
        des = stage_des(doc, st)
        compulsory = {e["dataElement"]["id"]: e["compulsory"]
                      for e in st["programStageDataElements"]}
        vaccines = [c.removeprefix("BD_EPI_").removesuffix("_GIVEN") for c in des
                    if c.endswith("_GIVEN")]
        assert vaccines, st["name"]
        for v in vaccines:
            given, date = des[f"BD_EPI_{v}_GIVEN"], des[f"BD_EPI_{v}_DATE"]
            assert given["valueType"] == "BOOLEAN" and date["valueType"] == "DATE"
            assert compulsory[given["id"]] is True
            assert v not in seen
            seen[v] = st["minDaysFromStart"]
    assert seen == EPI_DAYS


def test_under5_register(doc: Doc) -> None:
    (visit,) = stages(doc, program(doc, "BD_U5"))
    assert visit["repeatable"]
    des = stage_des(doc, visit)
    assert option_codes(doc, des["BD_U5_ILLNESS"]["optionSet"]["id"]) == [
        "DIARRHOEA", "PNEUMONIA", "FEVER", "OTHER"]
    assert des["BD_U5_REFERRED"]["valueType"] == "BOOLEAN"
    assert {des[c]["valueType"] for c in ("BD_U5_WEIGHT", "BD_U5_HEIGHT")} == {"NUMBER"}


def test_rule_variables_resolve_within_their_program(doc: Doc) -> None:
    by = ids(doc)
    for p in doc["programs"]:
        in_stages = {e["dataElement"]["id"] for st in stages(doc, p)
                     for e in st["programStageDataElements"]}
        attrs = {a["trackedEntityAttribute"]["id"] for a in p["programTrackedEntityAttributes"]}
        vs = variables(doc, p)
        assert {r["id"] for r in p["programRuleVariables"]} == {v["id"] for v in vs.values()}
        for v in vs.values():
            src = v["programRuleVariableSourceType"]
            if src == "TEI_ATTRIBUTE":
                assert v["trackedEntityAttribute"]["id"] in attrs and "dataElement" not in v
            else:
                assert src.startswith("DATAELEMENT_") and v["dataElement"]["id"] in in_stages
        for r in rules(doc, p):
            acts = [by[a["id"]] for a in r["programRuleActions"]]
            assert acts and all(a["programRule"] == {"id": r["id"]} for a in acts)
            targets = in_stages
            if "programStage" in r:
                st = by[r["programStage"]["id"]]
                assert st["program"] == {"id": p["id"]}
                targets = {e["dataElement"]["id"] for e in st["programStageDataElements"]}
            for a in acts:
                if a["programRuleActionType"] in ("HIDEFIELD", "ASSIGN"):
                    assert "dataElement" in a or "trackedEntityAttribute" in a
                if "dataElement" in a:
                    assert a["dataElement"]["id"] in targets, (r["name"], a)
                if "trackedEntityAttribute" in a:
                    assert a["trackedEntityAttribute"]["id"] in attrs
    owned = {a["id"] for r in doc["programRules"] for a in r["programRuleActions"]}
    assert owned == {a["id"] for a in doc["programRuleActions"]}


def test_every_rule_expression_parses(doc: Doc) -> None:
    """Every condition and ASSIGN expression passes the production engine's check: the
    variables it names are its program's, functions and environment variables exist."""
    by = ids(doc)
    for p in doc["programs"]:
        vs = variables(doc, p)
        prog = program_of(doc, p)
        assert len(prog.rules) == len(rules(doc, p))
        kinds = set()
        for r in rules(doc, p):
            pr.check(r["condition"], prog)
            for name, literal in compared_literals(r["condition"]):
                os_ = by[(vs[name].get("dataElement") or vs[name]["trackedEntityAttribute"])
                         ["id"]]["optionSet"]["id"]
                assert vs[name]["useCodeForOptionSet"] and literal in option_codes(doc, os_)
            for a in r["programRuleActions"]:
                act = by[a["id"]]
                kinds.add(act["programRuleActionType"])
                if act["programRuleActionType"] == "ASSIGN":
                    pr.check(act["data"], prog)
                elif act["programRuleActionType"] in ("SHOWWARNING", "SHOWERROR"):
                    assert act["content"]
        assert kinds >= ACTIONS, p["code"]


@pytest.mark.parametrize("bad, error", [
    ("#{nope} > 1", "Unknown program rule variable"),
    ("A{bp_systolic} > 1", "names a data element"),
    ("d2:yearsBetween(A{dob}) > 1", "Wrong number of arguments"),
    ("d2:ageInYears(A{dob}) > 1", "Unknown function"),
    ("V{today} > 1", "Unknown environment variable"),
    ("#{bp_systolic} >", "end of expression"),
])
def test_the_expression_check_can_fail(doc: Doc, bad: str, error: str) -> None:
    with pytest.raises(pr.RuleError, match=error):
        pr.check(bad, program_of(doc, program(doc, "BD_MATERNAL")))


def test_rules_fire_at_their_thresholds(doc: Doc) -> None:
    mat = program(doc, "BD_MATERNAL")

    def fires(p: dict[str, Any], name: str, values: dict[str, Any], **kw: Any) -> bool:
        return bool(fired(doc, p, name, values, **kw))
    assert fires(mat, "High blood pressure", {"bp_systolic": 140, "bp_diastolic": 80})
    assert fires(mat, "High blood pressure", {"bp_systolic": 120, "bp_diastolic": 90})
    assert not fires(mat, "High blood pressure", {"bp_systolic": 139, "bp_diastolic": 89})
    assert fires(mat, "Gestational age above 45 weeks", {"gest_age": 46})
    assert not fires(mat, "Gestational age above 45 weeks", {"gest_age": 45})
    assert fires(mat, "Danger sign present", {"danger_sign": "BLEEDING"})
    assert not fires(mat, "Danger sign present", {"danger_sign": "NONE"})
    assert not fires(mat, "Danger sign present", {})
    assert fires(mat, "Birth weight only for a live birth", {"outcome": "STILLBIRTH"})
    assert not fires(mat, "Birth weight only for a live birth", {"outcome": "LIVE_BIRTH"})
    assert fires(mat, "Adolescent pregnancy", {"age_years": 16})
    assert not fires(mat, "Adolescent pregnancy", {"age_years": 18})
    u5 = program(doc, "BD_U5")
    assert fires(u5, "Severe acute malnutrition (MUAC)", {"muac": 114})
    assert not fires(u5, "Severe acute malnutrition (MUAC)", {"muac": 115})
    assert not fires(u5, "Severe acute malnutrition (MUAC)", {})  # no MUAC: no warning
    assert fires(u5, "Referral facility only when referred", {"referred": "false"})
    assert fires(u5, "Referral facility only when referred", {})
    assert not fires(u5, "Referral facility only when referred", {"referred": "true"})
    assert fires(u5, "Weight outside 0.5-40 kg", {"weight": 41})
    assert not fires(u5, "Weight outside 0.5-40 kg", {"weight": 12.5})
    assert fires(u5, "Pneumonia under 2 months", {"illness": "PNEUMONIA", "dob": "2026-10-01"})
    assert not fires(u5, "Pneumonia under 2 months", {"illness": "PNEUMONIA",
                                                      "dob": "2026-01-01"})
    assert fires(u5, "Child is five or older", {"dob": "2021-11-15"})
    assert not fires(u5, "Child is five or older", {"dob": "2021-11-16"})
    assert fires(mat, "Severe anaemia", {"hb": 6})
    assert not fires(mat, "Severe anaemia", {"hb": 11})
    (age,) = fired(doc, u5, "Age in months at the visit", {"dob": "2025-09-20"})
    assert age["action"] == "ASSIGN" and age["value"] == "13"
    (years,) = fired(doc, mat, "Age in years from the date of birth", {"dob": "2008-11-16"})
    assert years["value"] == "17"  # one day short of 18
    epi = program(doc, "BD_EPI")
    (early,) = fired(doc, epi, "6 weeks: dose given early", {"dob": "2026-10-15"})
    assert early["action"] == "SHOWWARNING" and "younger than 42 days" in early["content"]
    assert not fired(doc, epi, "6 weeks: dose given early", {"dob": "2026-10-04"})
    (before,) = fired(doc, epi, "Vaccination before the date of birth", {"dob": "2026-11-20"})
    assert before["action"] == "SHOWERROR"


def test_every_demo_rule_runs_without_errors(doc: Doc) -> None:
    """Each program's whole rule set, on an empty form and with a date of birth, in each
    stage: the engine evaluates every rule without an error."""
    for p in doc["programs"]:
        prog = program_of(doc, p)
        attrs = {v.field: "2025-01-01" for v in prog.variables.values()
                 if v.source == "TEI_ATTRIBUTE" and v.value_type == "DATE" and v.field}
        for stage in [*prog.stage_names, None]:
            for a in ({}, attrs):
                ev = None if stage is None else pr.Event(stage=stage, date="2026-11-15")
                res = pr.run(prog, pr.Context(today=date(2026, 11, 15), attributes=a,
                                              event=ev))
                if stage is not None:
                    assert res.errors == [], (p["code"], stage, res.errors)
                else:  # the enrolment form has no event date: only those rules give up
                    by_uid = {r.uid: r for r in prog.rules}
                    def text(r: pr.Rule) -> str:
                        return r.condition + " ".join(a.data for a in r.actions)
                    assert all("V{event_date}" in text(by_uid[e["rule"]])
                               for e in res.errors), res.errors


def test_epi_early_dose_warnings_use_the_stage_schedule(doc: Doc) -> None:
    by = ids(doc)
    epi = program(doc, "BD_EPI")
    early = [r for r in rules(doc, epi) if r["name"].endswith("dose given early")]
    assert len(early) == len(stages(doc, epi)) - 1  # every stage after birth
    for r in early:
        (days,) = re.findall(r"V\{event_date\}\) < (\d+)", r["condition"])
        assert int(days) == by[r["programStage"]["id"]]["minDaysFromStart"] > 0
    (assign,) = [by[a["id"]] for r in rules(doc, epi) for a in r["programRuleActions"]
                 if by[a["id"]]["programRuleActionType"] == "ASSIGN"]
    assert by[assign["dataElement"]["id"]]["code"] == "BD_EPI_AGE_MONTHS"
    assert assign["data"] == "d2:monthsBetween(A{dob}, V{event_date})"


def test_mother_child_relationship(doc: Doc) -> None:
    (rt,) = doc["relationshipTypes"]
    (person,) = doc["trackedEntityTypes"]
    assert rt["name"] == "Mother \u2013 child"
    for side in ("fromConstraint", "toConstraint"):
        assert rt[side] == {"relationshipEntity": "TRACKED_ENTITY_INSTANCE",
                            "trackedEntityType": {"id": person["id"]}}
    assert rt["fromToName"] and rt["toFromName"]


# --------------------------------------------------------------------- the hub's share


def test_hub_holds_the_registers_for_ramu_only(doc: Doc, hub: Doc) -> None:
    ramu = facilities(doc, demo.RAMU_UID)
    assert len(ramu) == 28  # 27 clinics and the UHC
    assert sorted(p["code"] for p in hub["programs"]) == ["BD_EPI", "BD_MATERNAL", "BD_U5"]
    for p in hub["programs"]:
        assert {r["id"] for r in p["organisationUnits"]} == ramu
    # every program reaches Ramu, so the rest of the tracker metadata comes whole
    for key in TRACKER_KEYS:
        if key != "programs":
            assert hub[key] == doc[key], key
    hub_des = {d["id"] for d in hub["dataElements"]}
    assert {e["dataElement"]["id"] for st in hub["programStages"]
            for e in st["programStageDataElements"]} <= hub_des
    os_ids = {o["id"] for o in hub["optionSets"]}
    assert {a["optionSet"]["id"] for a in hub["trackedEntityAttributes"] if "optionSet" in a} \
        <= os_ids
    assert dangling(hub) == []
    (chcp,) = [u for u in hub["users"] if u["username"] == "chcp"]
    assert chcp["teiSearchOrganisationUnits"] == [{"id": demo.RAMU_UID}]
    assert chcp["organisationUnits"] == [{"id": demo.CHCP_CLINIC_UID}]


def test_another_upazilas_hub_gets_none_of_ramu(doc: Doc) -> None:
    (ukhia,) = [o["id"] for o in doc["organisationUnits"] if o["name"] == "Ukhia"]
    sub = subset_for(doc, ukhia)
    ramu = facilities(doc, demo.RAMU_UID)
    assert len(sub["programs"]) == 3
    for p in sub["programs"]:
        got = {r["id"] for r in p["organisationUnits"]}
        assert got == facilities(doc, ukhia) and not got & ramu


def test_programs_assigned_elsewhere_stay_out(doc: Doc) -> None:
    # Programs (and so their stages, rules, attributes and the Person type) only at
    # Ukhia's facilities: a Ramu hub holds no tracker metadata at all.
    (ukhia,) = [o["id"] for o in doc["organisationUnits"] if o["name"] == "Ukhia"]
    elsewhere = {**doc, "programs": [
        {**p, "organisationUnits": [{"id": u} for u in sorted(facilities(doc, ukhia))]}
        for p in doc["programs"]]}
    sub = subset_for(elsewhere, demo.RAMU_UID)
    assert all(sub[k] == [] for k in TRACKER_KEYS), {k: len(sub[k]) for k in TRACKER_KEYS}
    assert not {d["id"] for d in sub["dataElements"] if d["domainType"] == "TRACKER"}
    assert "Sex" not in {o["name"] for o in sub["optionSets"]}
    # and only the one program still at a Ramu clinic comes back with its own rules
    (kept, *_) = elsewhere["programs"] = [
        {**doc["programs"][0], "organisationUnits": [{"id": demo.CHCP_CLINIC_UID}]},
        *elsewhere["programs"][1:]]
    sub = subset_for(elsewhere, demo.RAMU_UID)
    assert [p["id"] for p in sub["programs"]] == [kept["id"]]
    assert {r["program"]["id"] for r in sub["programRules"]} == {kept["id"]}
    assert {s["program"]["id"] for s in sub["programStages"]} == {kept["id"]}
    assert len(sub["relationshipTypes"]) == 1 and dangling(sub) == []
