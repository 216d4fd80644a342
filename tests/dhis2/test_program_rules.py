"""The program-rule engine (``appliance.dhis2.program_rules``): one test per rule action,
the order rules run in, variable sources, and the d2: functions the demo and DHIS2's
common rules use."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from appliance.dhis2 import expressions as ex
from appliance.dhis2 import program_rules as pr

TODAY = date(2026, 11, 15)
P, S1, S2 = "Prog0000001", "Stage000001", "Stage000002"
DE_NUM, DE_TXT, DE_BOOL, DE_HIDE, DE_OUT = ("DeNum000001", "DeTxt000001", "DeBool00001",
                                            "DeHide00001", "DeOut000001")
AT_DOB, AT_NAME = "AtDob000001", "AtName00001"
OPTS = "OptSet00001"


def program(rules: list[dict[str, Any]], *, variables: list[dict[str, Any]] | None = None
            ) -> pr.Program:
    vs = variables if variables is not None else [
        {"name": "num", "dataElement": {"id": DE_NUM}},
        {"name": "txt", "dataElement": {"id": DE_TXT}, "useCodeForOptionSet": True},
        {"name": "txt_name", "dataElement": {"id": DE_TXT}},
        {"name": "flag", "dataElement": {"id": DE_BOOL}},
        {"name": "out", "dataElement": {"id": DE_OUT}},
        {"name": "newest", "dataElement": {"id": DE_NUM},
         "programRuleVariableSourceType": "DATAELEMENT_NEWEST_EVENT_PROGRAM"},
        {"name": "previous", "dataElement": {"id": DE_NUM},
         "programRuleVariableSourceType": "DATAELEMENT_PREVIOUS_EVENT"},
        {"name": "dob", "trackedEntityAttribute": {"id": AT_DOB},
         "programRuleVariableSourceType": "TEI_ATTRIBUTE"},
        {"name": "pname", "trackedEntityAttribute": {"id": AT_NAME},
         "programRuleVariableSourceType": "TEI_ATTRIBUTE"},
        {"name": "calc", "programRuleVariableSourceType": "CALCULATED_VALUE",
         "valueType": "NUMBER"},
    ]
    actions = []
    for r in rules:
        for i, a in enumerate(r.pop("actions")):
            a = {"id": f"{r['id']}A{i}", **a}
            actions.append(a)
            r.setdefault("programRuleActions", []).append({"id": a["id"]})
    docs: dict[str, list[dict[str, Any]]] = {
        "programRules": [{"program": {"id": P}, **r} for r in rules],
        "programRuleActions": actions,
        "programRuleVariables": [{"id": f"Var{i:08d}", "program": {"id": P},
                                  "programRuleVariableSourceType":
                                      "DATAELEMENT_CURRENT_EVENT", **v}
                                 for i, v in enumerate(vs)],
        "dataElements": [{"id": DE_NUM, "valueType": "INTEGER"},
                         {"id": DE_TXT, "valueType": "TEXT", "optionSet": {"id": OPTS}},
                         {"id": DE_BOOL, "valueType": "BOOLEAN"},
                         {"id": DE_HIDE, "valueType": "TEXT"},
                         {"id": DE_OUT, "valueType": "INTEGER_ZERO_OR_POSITIVE"}],
        "trackedEntityAttributes": [{"id": AT_DOB, "valueType": "DATE"},
                                    {"id": AT_NAME, "valueType": "TEXT"}],
        "optionSets": [{"id": OPTS, "options": [{"code": "RED", "name": "Red colour"}]}],
        "programStages": [{"id": S1, "name": "First", "program": {"id": P}},
                          {"id": S2, "name": "Second", "program": {"id": P}}],
    }
    return pr.compile_program({"id": P, "name": "Test program"}, lambda k: docs.get(k, []))


def rule(condition: str, *actions: dict[str, Any], uid: str = "Rule0000001",
         **kw: Any) -> dict[str, Any]:
    return {"id": uid, "name": uid, "condition": condition, "actions": list(actions), **kw}


def ctx(values: dict[str, str] | None = None, *, stage: str = S1, attrs: dict[str, str] | None
        = None, date_: str = "2026-11-10", others: tuple[pr.Event, ...] = ()) -> pr.Context:
    return pr.Context(today=TODAY, attributes=attrs or {},
                      event=pr.Event(stage=stage, date=date_, values=values or {}, uid="EvCur"),
                      other_events=others, enrollment_date="2026-06-01",
                      incident_date="2026-05-01")


def effects(prog: pr.Program, c: pr.Context) -> list[dict[str, Any]]:
    res = pr.run(prog, c)
    assert res.errors == []
    return res.effects


# -- one test per action ---------------------------------------------------------------------
def test_hidefield() -> None:
    prog = program([rule("!#{flag}", {"programRuleActionType": "HIDEFIELD",
                                      "dataElement": {"id": DE_HIDE}})])
    (e,) = effects(prog, ctx({DE_BOOL: "false"}))
    assert e["action"] == "HIDEFIELD" and e["dataElement"] == DE_HIDE
    assert effects(prog, ctx({DE_BOOL: "true"})) == []
    assert len(effects(prog, ctx({}))) == 1  # an empty boolean reads false


def test_showwarning_with_data() -> None:
    prog = program([rule("#{num} >= 140", {"programRuleActionType": "SHOWWARNING",
                                           "dataElement": {"id": DE_NUM},
                                           "content": "High:", "data": "#{num} - 140"})])
    (e,) = effects(prog, ctx({DE_NUM: "150"}))
    assert e == {"action": "SHOWWARNING", "rule": "Rule0000001", "ruleName": "Rule0000001",
                 "programRuleAction": "Rule0000001A0", "dataElement": DE_NUM,
                 "content": "High: 10", "data": "10"}
    assert effects(prog, ctx({DE_NUM: "139"})) == []


def test_showerror() -> None:
    prog = program([rule("d2:hasValue(#{num}) && #{num} > 45",
                         {"programRuleActionType": "SHOWERROR", "dataElement": {"id": DE_NUM},
                          "content": "Too many weeks"})])
    (e,) = effects(prog, ctx({DE_NUM: "46"}))
    assert (e["action"], e["content"]) == ("SHOWERROR", "Too many weeks")
    assert effects(prog, ctx({})) == []


def test_assign_to_a_field_feeds_later_rules() -> None:
    prog = program([
        rule("d2:hasValue(A{dob})", {"programRuleActionType": "ASSIGN",
                                     "dataElement": {"id": DE_OUT},
                                     "data": "d2:monthsBetween(A{dob}, V{event_date})"},
             uid="RuleAssign1", priority=1),
        rule("#{out} < 12", {"programRuleActionType": "SHOWWARNING", "content": "Infant"},
             uid="RuleLater01", priority=2),
    ])
    out = effects(prog, ctx(attrs={AT_DOB: "2026-01-11"}))
    assert [(e["action"], e.get("value")) for e in out] == [("ASSIGN", "9"), ("SHOWWARNING", None)]
    assert out[0]["dataElement"] == DE_OUT
    # 2025-11-11 to 2026-11-10 is 11 months and 30 days: 11 whole months, still an infant
    assert effects(prog, ctx(attrs={AT_DOB: "2025-11-11"}))[0]["value"] == "11"
    assert len(effects(prog, ctx(attrs={AT_DOB: "2025-11-10"}))) == 1  # 12 months: no warning


def test_assign_to_a_calculated_variable() -> None:
    prog = program([
        rule("true", {"programRuleActionType": "ASSIGN", "content": "#{calc}",
                      "data": "#{num} * 2"}, uid="RuleCalc001", priority=1),
        rule("#{calc} > 10", {"programRuleActionType": "SHOWWARNING", "content": "big"},
             uid="RuleUse0001", priority=5),
    ])
    out = effects(prog, ctx({DE_NUM: "6"}))
    assert [e["action"] for e in out] == ["ASSIGN", "SHOWWARNING"]
    assert out[0]["variable"] == "calc" and out[0]["value"] == "12"
    assert [e["action"] for e in effects(prog, ctx({DE_NUM: "5"}))] == ["ASSIGN"]


def test_warning_and_error_on_complete() -> None:
    prog = program([rule("!d2:hasValue(#{txt})",
                         {"programRuleActionType": "WARNINGONCOMPLETE", "content": "No colour"},
                         {"programRuleActionType": "ERRORONCOMPLETE", "content": "Colour!"})])
    assert [e["action"] for e in effects(prog, ctx())] == ["WARNINGONCOMPLETE",
                                                           "ERRORONCOMPLETE"]
    assert effects(prog, ctx({DE_TXT: "RED"})) == []


def test_displaytext() -> None:
    prog = program([rule("true", {"programRuleActionType": "DISPLAYTEXT", "content": "Age:",
                                  "data": "d2:yearsBetween(A{dob}, V{current_date})",
                                  "location": "feedback"})])
    (e,) = effects(prog, ctx(attrs={AT_DOB: "2000-11-16"}))
    assert (e["content"], e["location"]) == ("Age: 25", "feedback")


def test_hidesection() -> None:
    prog = program([rule("#{txt} == 'RED'", {"programRuleActionType": "HIDESECTION",
                                             "programStageSection": {"id": "Section0001"}})])
    (e,) = effects(prog, ctx({DE_TXT: "RED"}))
    assert e["programStageSection"] == "Section0001"


# -- how rules run ---------------------------------------------------------------------------
def test_priority_order_and_stage_filter() -> None:
    prog = program([
        rule("true", {"programRuleActionType": "SHOWWARNING", "content": "none"}, uid="RuleNoPrio1"),
        rule("true", {"programRuleActionType": "SHOWWARNING", "content": "second"},
             uid="RuleSecond1", priority=2),
        rule("true", {"programRuleActionType": "SHOWWARNING", "content": "first"},
             uid="RuleFirst01", priority=1),
        rule("true", {"programRuleActionType": "SHOWWARNING", "content": "stage 2"},
             uid="RuleStage21", programStage={"id": S2}),
    ])
    assert [e["content"] for e in effects(prog, ctx())] == ["first", "second", "none"]
    assert [e["content"] for e in effects(prog, ctx(stage=S2))][-1] == "stage 2"
    enrolment = pr.run(prog, pr.Context(today=TODAY))  # the registration form: no event
    assert [e["content"] for e in enrolment.effects] == ["first", "second", "none"]


def test_a_broken_rule_is_skipped_and_reported() -> None:
    prog = program([
        rule("#{nope} > 1", {"programRuleActionType": "SHOWWARNING", "content": "x"},
             uid="RuleBroken1"),
        rule("#{num} / 0 > 1", {"programRuleActionType": "SHOWWARNING", "content": "x"},
             uid="RuleDivide1"),
        rule("#{num} >", {"programRuleActionType": "SHOWWARNING", "content": "x"},
             uid="RuleSyntax1"),
        rule("true", {"programRuleActionType": "SHOWWARNING", "content": "ok"}, uid="RuleOk00001"),
    ])
    res = pr.run(prog, ctx({DE_NUM: "3"}))
    assert [e["content"] for e in res.effects] == ["ok"]
    assert [e["rule"] for e in res.errors] == ["RuleBroken1", "RuleDivide1", "RuleSyntax1"]


def test_variable_sources_and_option_names() -> None:
    prog = program([])
    older = pr.Event(stage=S1, date="2026-09-01", values={DE_NUM: "4"}, uid="EvOld")
    newer = pr.Event(stage=S2, date="2026-12-01", values={DE_NUM: "9"}, uid="EvNew")
    c = ctx({DE_NUM: "7", DE_TXT: "RED"}, others=(older, newer))
    assert pr.evaluate("#{num}", prog, c) == 7.0
    assert pr.evaluate("#{newest}", prog, c) == 9.0
    assert pr.evaluate("#{previous}", prog, c) == 4.0
    assert pr.evaluate("#{txt}", prog, c) == "RED"
    assert pr.evaluate("#{txt_name}", prog, c) == "Red colour"  # without useCodeForOptionSet
    assert pr.evaluate("d2:count(#{newest})", prog, c) == 3.0
    assert pr.evaluate("d2:countIfValue(#{newest}, 9)", prog, c) == 1.0
    assert pr.evaluate("V{event_count}", prog, c) == 3.0
    assert pr.evaluate("V{program_stage_name}", prog, c) == "First"
    assert pr.evaluate("V{enrollment_date}", prog, c) == "2026-06-01"
    assert pr.evaluate("d2:hasValue(#{out})", prog, c) is False
    assert pr.evaluate("#{out}", prog, c) == 0.0
    assert pr.evaluate("A{pname}", prog, c) == ""


@pytest.mark.parametrize("expr, value", [
    ("d2:daysBetween('2026-01-01', '2026-03-01')", 59.0),
    ("d2:weeksBetween('2026-01-01', '2026-01-20')", 2.0),
    ("d2:monthsBetween('2026-01-31', '2026-02-28')", 0.0),
    ("d2:monthsBetween('2026-03-15', '2026-01-20')", -1.0),
    ("d2:yearsBetween('2020-02-29', '2026-02-28')", 5.0),
    ("d2:addDays('2026-12-30', 5)", "2027-01-04"),
    ("d2:addDays(V{incident_date}, 16 * 7)", "2026-08-21"),
    ("d2:ceil(2.1) + d2:floor(2.9) + d2:round(2.5)", 3.0 + 2.0 + 3.0),
    ("d2:modulus(17, 5)", 2.0),
    ("d2:zing(-3) + d2:oizp(0) + d2:oizp(-1)", 1.0),
    ("d2:zpvc(1, -2, 0)", 2.0),
    ("d2:length('আমিনা')", 5.0),
    ("d2:left('01712345678', 3) + '-' + d2:right('01712345678', 4)", "017-5678"),
    ("d2:substring('Fatema Begum', 0, 6)", "Fatema"),
    ("d2:split('a,b,c', ',', 1)", "b"),
    ("d2:concatenate('BRN-', 12)", "BRN-12"),
    ("d2:validatePattern('01712345678', '01[3-9][0-9]{8}')", True),
    ("d2:validatePattern('0171234567', '01[3-9][0-9]{8}')", False),
    ("d2:condition('#{num} > 5', 'big', 'small')", "big"),
    ("if(#{num} > 50, 1, 2)", 2.0),
    ("'2026-11-10' < V{current_date} && !(1 > 2) || false", True),
    ("#{txt} == 'RED' and #{num} != 0", True),
    ("'abc' < 'abd'", True),
    ("#{num} == '7'", True),
    ("d2:hasUserRole('CHCP') && d2:inOrgUnitGroup('CC')", True),
])
def test_functions_and_operators(expr: str, value: Any) -> None:
    c = pr.Context(today=TODAY, incident_date="2026-05-01", user_roles=frozenset({"CHCP"}),
                   org_unit_groups=frozenset({"CC"}),
                   event=pr.Event(stage=S1, date="2026-11-10",
                                  values={DE_NUM: "7", DE_TXT: "RED"}))
    assert pr.evaluate(expr, program([]), c) == value


@pytest.mark.parametrize("expr, error", [
    ("d2:daysBetween('x', '2026-01-01')", "not a date"),
    ("#{txt} * 2", "not a number"),
    ("A{num} > 1", "names a data element"),
    ("V{nope}", "Unknown environment variable"),
    ("d2:zScoreWFA(1, 2, 3)", "not supported"),
])
def test_evaluation_errors(expr: str, error: str) -> None:
    with pytest.raises(pr.RuleError, match=error):
        pr.evaluate(expr, program([]), ctx({DE_TXT: "RED"}))


def test_rule_parser_keeps_validation_rules_apart() -> None:
    assert ex.parse_rule(r"'a\'b'") == ex.Str("a'b")
    with pytest.raises(ValueError):
        ex.parse("#{num} > 1")  # variables by name are program-rule syntax only
    with pytest.raises(ValueError, match="Unknown function"):
        ex.parse_rule("d2:nope(1)")
