"""Checks shared by the demo tests: reference resolution and validation-rule evaluation."""

from __future__ import annotations

import ast
import operator
import re
from collections.abc import Iterator
from typing import Any

UID_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9]{10}$")
STAMP_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}$")

# Property name -> the collection its {"id": ...} references must resolve in.
REF_FIELDS = {
    "parent": "organisationUnits",
    "organisationUnits": "organisationUnits",
    "dataViewOrganisationUnits": "organisationUnits",
    "teiSearchOrganisationUnits": "organisationUnits",
    "source": "organisationUnits",
    "organisationUnitGroups": "organisationUnitGroups",
    "dataSets": "dataSets",
    "dataSet": "dataSets",
    "dataElement": "dataElements",
    "dataElements": "dataElements",
    "sections": "sections",
    "categoryCombo": "categoryCombos",
    "categoryCombos": "categoryCombos",
    "categories": "categories",
    "categoryOptions": "categoryOptions",
    "categoryOptionCombos": "categoryOptionCombos",
    "optionCombo": "categoryOptionCombos",
    "optionSet": "optionSets",
    "options": "options",
    "userRoles": "userRoles",
    "trackedEntityType": "trackedEntityTypes",
    "trackedEntityAttribute": "trackedEntityAttributes",
    "program": "programs",
    "programStage": "programStages",
    "programStages": "programStages",
    "programRuleVariables": "programRuleVariables",
    "programRule": "programRules",
    "programRuleActions": "programRuleActions",
    "option": "options",
}
NOT_REFS = {"period"}  # dataInputPeriods[].period is {"id": "202410"}, a period, not a UID

EXPR_DE = re.compile(r"#\{([A-Za-z0-9]{11})(?:\.([A-Za-z0-9]{11}))?\}")
EXPR_CONST = re.compile(r"C\{([A-Za-z0-9]{11})\}")


def collections(doc: dict[str, Any]) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    for key, value in doc.items():
        if isinstance(value, list):
            yield key, value


def ids_by_collection(doc: dict[str, Any]) -> dict[str, set[str]]:
    return {k: {o["id"] for o in v if "id" in o} for k, v in collections(doc)}


def _walk(node: Any, key: str | None, where: str) -> Iterator[tuple[str, str, str]]:
    """Yield (property, referenced id, location) for every {"id": ...} reference."""
    if isinstance(node, dict):
        if set(node) == {"id"} and key is not None:
            yield key, node["id"], where
            return
        for k, v in node.items():
            yield from _walk(v, k, f"{where}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _walk(v, key, f"{where}[{i}]")


def dangling(doc: dict[str, Any]) -> list[str]:
    """Every reference that does not resolve to an object of the right collection."""
    ids = ids_by_collection(doc)
    problems = []
    for coll, objs in collections(doc):
        for obj in objs:
            for key, ref, where in _walk(obj, None, f"{coll}/{obj.get('id')}"):
                if key in NOT_REFS:
                    continue
                target = REF_FIELDS.get(key)
                if target is None:
                    problems.append(f"{where}: unknown reference property {key!r}")
                elif ref not in ids.get(target, set()):
                    problems.append(f"{where}: {ref} not in {target}")
            for side in ("leftSide", "rightSide"):
                expr = obj.get(side, {}).get("expression", "") if coll == "validationRules" else ""
                for de, coc in EXPR_DE.findall(expr):
                    if de not in ids["dataElements"]:
                        problems.append(f"{coll}/{obj['id']}.{side}: data element {de}")
                    if coc and coc not in ids["categoryOptionCombos"]:
                        problems.append(f"{coll}/{obj['id']}.{side}: COC {coc}")
                for k in EXPR_CONST.findall(expr):
                    if k not in ids["constants"]:
                        problems.append(f"{coll}/{obj['id']}.{side}: constant {k}")
    return problems


# ------------------------------------------------------------- rule evaluation

_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
        ast.Div: operator.truediv}


def _arith(node: ast.AST) -> float:
    if isinstance(node, ast.Expression):
        return _arith(node.body)
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return float(node.value)
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        return _OPS[type(node.op)](_arith(node.left), _arith(node.right))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_arith(node.operand)
    raise ValueError(f"unsupported expression node {ast.dump(node)}")


COMPARE = {
    "equal_to": operator.eq, "not_equal_to": operator.ne,
    "greater_than": operator.gt, "greater_than_or_equal_to": operator.ge,
    "less_than": operator.lt, "less_than_or_equal_to": operator.le,
}


def side_value(side: dict[str, Any], values: dict[tuple[str, str], float],
               constants: dict[str, float]) -> float | None:
    """Evaluate one side the way DHIS2 does for the simple operand forms the demo uses.

    ``values`` maps (dataElement, coc) -> number for one org unit and period. Returns None
    when the side's missingValueStrategy says to skip the rule.
    """
    expr = side["expression"]
    items = EXPR_DE.findall(expr)
    present = []

    def de_value(m: re.Match[str]) -> str:
        de, coc = m.group(1), m.group(2)
        found = [v for (d, c), v in values.items() if d == de and (coc is None or c == coc)]
        present.append(bool(found))
        return repr(sum(found))

    text = EXPR_DE.sub(de_value, expr)
    text = EXPR_CONST.sub(lambda m: repr(constants[m.group(1)]), text)
    strategy = side.get("missingValueStrategy", "SKIP_IF_ALL_VALUES_MISSING")
    if items and strategy == "SKIP_IF_ALL_VALUES_MISSING" and not any(present):
        return None
    if items and strategy == "SKIP_IF_ANY_VALUE_MISSING" and not all(present):
        return None
    return _arith(ast.parse(text, mode="eval"))
