"""The demo's program rules run by the production engine (``appliance.dhis2.program_rules``).

``program_of`` compiles a demo program's rules from the demo metadata document; ``fired``
runs them on values given by rule-variable name, in an event of the rule's own stage, and
says whether the named rule fired.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from appliance.dhis2 import program_rules as pr

REF = date(2026, 11, 15)


def program_of(doc: dict[str, Any], p: dict[str, Any]) -> pr.Program:
    return pr.compile_program(p, lambda k: doc.get(k, []))


def fired(doc: dict[str, Any], p: dict[str, Any], name: str, values: dict[str, Any],
          *, event_date: str = REF.isoformat()) -> list[dict[str, Any]]:
    """The effects of the rule whose name ends with ``name`` when the variables hold
    ``values`` (by variable name; attributes and data elements alike)."""
    prog = program_of(doc, p)
    (rule,) = [r for r in prog.rules if r.name.endswith(name)]
    stage = rule.stage or next(iter(prog.stage_names))
    attrs, data = {}, {}
    for var, v in values.items():
        src = prog.variables[var]
        assert src.field is not None
        (attrs if src.source == "TEI_ATTRIBUTE" else data)[src.field] = str(v)
    ctx = pr.Context(today=REF, attributes=attrs,
                     event=pr.Event(stage=stage, date=event_date, values=data))
    result = pr.run(prog, ctx)
    assert result.errors == [], result.errors
    return [e for e in result.effects if e["rule"] == rule.uid]


def compared_literals(expr: str) -> list[tuple[str, str]]:
    """(variable name, string) for each ``#{var} == 'x'`` / ``!=`` comparison."""
    return re.findall(r"[#A]\{([A-Za-z0-9_ .]+)\}\s*[!=]=\s*'([^']*)'", expr)
