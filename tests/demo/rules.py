"""Program-rule expressions checked with ``appliance.dhis2.expressions``.

That module parses DHIS2's validation-rule grammar. Program-rule expressions are the
same grammar plus variables by name (``#{name}``, ``A{name}``, ``V{name}``), ``d2:``
functions and string literals. ``lower`` rewrites those into validation-rule terms and
checks them on the way: a variable becomes its source item ``#{uid}`` (so it must be a
variable of the rule's program), ``V{...}`` must be a DHIS2 environment variable, a
``d2:`` function must exist in DHIS2 and is called as ``greatest(...)`` (so its arguments
parse, and their count is checked afterwards), a string literal becomes ``0``.
"""

from __future__ import annotations

import re
from typing import Any

from appliance.dhis2 import expressions as ex

# DHIS2 2.41 program-rule d2: functions used or likely, with their argument counts.
D2_ARITY = {
    "hasValue": 1, "daysBetween": 2, "weeksBetween": 2, "monthsBetween": 2,
    "yearsBetween": 2, "addDays": 2, "ceil": 1, "floor": 1, "round": 1, "modulus": 2,
    "zing": 1, "oizp": 1, "count": 1, "countIfValue": 2, "countIfZeroPos": 1, "length": 1,
    "left": 2, "right": 2, "substring": 3, "split": 3, "validatePattern": 2,
    "inOrgUnitGroup": 1, "hasUserRole": 1, "zScoreWFA": 3, "zScoreHFA": 3, "zScoreWFH": 3,
}
ENV_VARIABLES = {
    "current_date", "event_date", "due_date", "event_count", "enrollment_date",
    "incident_date", "enrollment_id", "event_id", "enrollment_status", "event_status",
    "tei_count", "enrollment_count", "orgunit_code", "program_stage_id",
    "program_stage_name", "program_name", "completed_date", "environment", "value_count",
    "zero_pos_value_count",
}

_VAR = re.compile(r"([#A])\{([A-Za-z0-9_ .]+)\}")
_ENV = re.compile(r"V\{([a-z_]+)\}")
_D2 = re.compile(r"d2:([A-Za-z0-9]+)\s*\(")
_STRING = re.compile(r"'[^']*'")


def lower(expr: str, variables: dict[str, dict[str, Any]]) -> tuple[ex.Expr, list[str]]:
    """Parse a program-rule expression; returns the tree and the d2: functions in order.

    ``variables``: the program's rule variables by name. ``ValueError`` on anything that
    would not work in DHIS2: unknown variable, environment variable or function, wrong
    argument count, bad syntax.
    """
    def var(m: re.Match[str]) -> str:
        v = variables.get(m.group(2))
        if v is None:
            raise ValueError(f"no program rule variable {m.group(2)!r}")
        src = v.get("dataElement") or v.get("trackedEntityAttribute")
        if m.group(1) == "A" and "trackedEntityAttribute" not in v:
            raise ValueError(f"A{{{m.group(2)}}} names a data element variable")
        return "#{" + src["id"] + "}"

    def env(m: re.Match[str]) -> str:
        if m.group(1) not in ENV_VARIABLES:
            raise ValueError(f"no environment variable V{{{m.group(1)}}}")
        return "0"

    funcs = _D2.findall(expr)
    unknown = [f for f in funcs if f not in D2_ARITY]
    if unknown:
        raise ValueError(f"unknown d2: functions {unknown}")
    text = _STRING.sub("0", expr)
    text = _ENV.sub(env, _VAR.sub(var, text))
    text = _D2.sub("greatest(", text)
    tree = ex.parse(text)
    calls = [n for n in _preorder(tree) if isinstance(n, ex.Func)]
    if len(calls) != len(funcs):
        raise ValueError("calls other than d2: functions")
    for name, call in zip(funcs, calls, strict=True):
        if len(call.args) != D2_ARITY[name]:
            raise ValueError(f"d2:{name} takes {D2_ARITY[name]} arguments, got {len(call.args)}")
    return tree, funcs


def _preorder(node: ex.Expr) -> list[ex.Expr]:
    """Nodes in source order of their first token (a call before its arguments)."""
    out: list[ex.Expr] = [node]
    if isinstance(node, ex.Unary):
        out += _preorder(node.operand)
    elif isinstance(node, ex.Binary):
        out += _preorder(node.left) + _preorder(node.right)
    elif isinstance(node, ex.Func):
        for a in node.args:
            out += _preorder(a)
    return out


def fires(tree: ex.Expr, values: dict[str, float]) -> bool:
    """Evaluate a lowered condition with ``values`` by source uid (missing counts as 0,
    as DHIS2's rule engine treats an empty numeric variable)."""
    wrapped = ex.Func("if", (tree, ex.Num(1.0), ex.Num(0.0)))
    result = ex.evaluate(wrapped, {(uid, "x"): v for uid, v in values.items()},
                         strategy="NEVER_SKIP")
    return result == 1.0


def compared_literals(expr: str) -> list[tuple[str, str]]:
    """(variable name, string) for each ``#{var} == 'x'`` / ``!=`` comparison."""
    return re.findall(r"[#A]\{([A-Za-z0-9_ .]+)\}\s*[!=]=\s*'([^']*)'", expr)
