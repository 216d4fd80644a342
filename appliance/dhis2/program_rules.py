"""DHIS2 program rules: the rule engine the hub's pages run (hide fields, show warnings and
errors, assign values), as DHIS2 2.41's rule engine does for its web and Android clients.

Pure: no I/O. ``compile_program`` resolves a program's rules, actions and variables in the
metadata collections; ``run`` evaluates them for one enrollment (the registration form) or
one event (a visit form) and returns the effects. Expressions are parsed by
``expressions.parse_rule`` (the validation-rule grammar plus strings, ``#{}``/``A{}``/
``V{}`` variables and ``d2:`` functions) and evaluated here, where values can be numbers,
booleans, strings and dates (``yyyy-MM-dd`` strings, which compare correctly as text).

What follows DHIS2's engine:

* rules run in ``priority`` order (lowest first, rules without a priority last), each only
  in its ``programStage``'s events when it names one;
* a variable with no value reads as its type's default (0, false, or the empty string),
  and ``d2:hasValue`` tells the difference;
* an ASSIGN changes the value later rules read: the target field's variables, or the
  CALCULATED_VALUE variable its ``content`` names (``#{name}``);
* a rule whose expression fails (bad syntax, unknown variable, a string where a number is
  needed) is skipped and reported in ``Result.errors``; the others still run;
* SHOWWARNING/SHOWERROR/...: the message is ``content`` followed by the evaluated ``data``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from . import expressions as ex

__all__ = ["ACTIONS", "Event", "Context", "Program", "Result", "RuleError",
           "compile_program", "run", "evaluate", "check"]

# The action types the engine returns; anything else is ignored (web-only layout actions).
ACTIONS = ("HIDEFIELD", "SHOWWARNING", "SHOWERROR", "WARNINGONCOMPLETE", "ERRORONCOMPLETE",
           "ASSIGN", "DISPLAYTEXT", "DISPLAYKEYVALUEPAIR", "HIDESECTION", "SETMANDATORYFIELD",
           "HIDEPROGRAMSTAGE")
SOURCE_TYPES = ("DATAELEMENT_CURRENT_EVENT", "DATAELEMENT_NEWEST_EVENT_PROGRAM",
                "DATAELEMENT_NEWEST_EVENT_PROGRAM_STAGE", "DATAELEMENT_PREVIOUS_EVENT",
                "TEI_ATTRIBUTE", "CALCULATED_VALUE")
ENV_VARIABLES = ("current_date", "event_date", "due_date", "event_count", "enrollment_date",
                 "incident_date", "enrollment_id", "event_id", "enrollment_status",
                 "event_status", "tei_count", "enrollment_count", "orgunit_code",
                 "program_stage_id", "program_stage_name", "program_name", "completed_date",
                 "environment", "value_count", "zero_pos_value_count")
NUMERIC = {"NUMBER", "INTEGER", "INTEGER_POSITIVE", "INTEGER_NEGATIVE",
           "INTEGER_ZERO_OR_POSITIVE", "PERCENTAGE", "UNIT_INTERVAL"}
BOOLEAN = {"BOOLEAN", "TRUE_ONLY"}
DATES = {"DATE", "DATETIME", "AGE"}

Value = float | bool | str | None


class RuleError(ValueError):
    """An expression that cannot be evaluated (DHIS2 skips the rule)."""


# ------------------------------------------------------------------ compiled metadata


@dataclass(frozen=True)
class Variable:
    name: str
    source: str
    field: str | None  # data element or attribute uid
    stage: str | None  # for DATAELEMENT_NEWEST_EVENT_PROGRAM_STAGE
    value_type: str
    use_code: bool


@dataclass(frozen=True)
class Action:
    uid: str
    kind: str
    data_element: str | None
    attribute: str | None
    content: str
    data: str
    section: str | None
    stage: str | None
    location: str | None


@dataclass(frozen=True)
class Rule:
    uid: str
    name: str
    condition: str
    priority: int | None
    stage: str | None
    actions: tuple[Action, ...]


@dataclass(frozen=True)
class Program:
    uid: str
    name: str
    rules: tuple[Rule, ...]
    variables: Mapping[str, Variable]
    stage_names: Mapping[str, str]
    value_types: Mapping[str, str]  # data element / attribute uid -> valueType
    option_names: Mapping[str, Mapping[str, str]]  # field uid -> {option code: name}
    constants: Mapping[str, float] = field(default_factory=dict)


def _ref(doc: Mapping[str, Any], key: str) -> str | None:
    ref = doc.get(key)
    return ref.get("id") if isinstance(ref, Mapping) and isinstance(ref.get("id"), str) else None


def compile_program(program: Mapping[str, Any],
                    collection: Callable[[str], Iterable[Mapping[str, Any]]]) -> Program:
    """Resolve ``program``'s rules, actions and variables. ``collection(name)`` lists a
    metadata collection (``programRules``, ``programRuleActions``, ``programRuleVariables``,
    ``dataElements``, ``trackedEntityAttributes``, ``optionSets``, ``options``,
    ``programStages``, ``constants``): a metadata document's lists or the hub's index."""
    pid = str(program["id"])
    types: dict[str, str] = {}
    option_set_of: dict[str, str] = {}
    for kind in ("dataElements", "trackedEntityAttributes"):
        for d in collection(kind):
            types[d["id"]] = str(d.get("valueType") or "TEXT")
            if (os_ := _ref(d, "optionSet")) is not None:
                option_set_of[d["id"]] = os_
    options = {o["id"]: o for o in collection("options")}
    sets: dict[str, dict[str, str]] = {}
    for s in collection("optionSets"):
        names = {}
        for o in s.get("options") or []:
            full = options.get(o.get("id"), o)
            if full.get("code") is not None:
                names[str(full["code"])] = str(full.get("name") or full["code"])
        sets[s["id"]] = names
    option_names = {f: sets.get(os_, {}) for f, os_ in option_set_of.items()}

    variables: dict[str, Variable] = {}
    for v in collection("programRuleVariables"):
        if _ref(v, "program") != pid or not v.get("name"):
            continue
        fid = _ref(v, "dataElement") or _ref(v, "trackedEntityAttribute")
        source = str(v.get("programRuleVariableSourceType") or "DATAELEMENT_CURRENT_EVENT")
        vt = str(v.get("valueType") or types.get(fid or "", "TEXT"))
        variables[str(v["name"])] = Variable(
            str(v["name"]), source, fid, _ref(v, "programStage"), vt,
            bool(v.get("useCodeForOptionSet", False)))

    by_action = {a["id"]: a for a in collection("programRuleActions")}
    rules = []
    for r in collection("programRules"):
        if _ref(r, "program") != pid:
            continue
        acts = []
        for ref in r.get("programRuleActions") or []:
            a = {**by_action.get(ref.get("id"), {}), **ref}
            kind = str(a.get("programRuleActionType") or "")
            if kind not in ACTIONS:
                continue
            acts.append(Action(str(a.get("id") or ""), kind, _ref(a, "dataElement"),
                               _ref(a, "trackedEntityAttribute"), str(a.get("content") or ""),
                               str(a.get("data") or ""), _ref(a, "programStageSection"),
                               _ref(a, "programStage"), a.get("location")))
        prio = r.get("priority")
        rules.append(Rule(str(r["id"]), str(r.get("name") or r["id"]),
                          str(r.get("condition") or "false"),
                          prio if isinstance(prio, int) else None, _ref(r, "programStage"),
                          tuple(acts)))
    # DHIS2: by priority, those without one last; ties keep their metadata order
    rules.sort(key=lambda r: (r.priority is None, r.priority or 0))
    stage_names = {s["id"]: str(s.get("name") or s["id"]) for s in collection("programStages")
                   if _ref(s, "program") in (pid, None)}
    constants = {}
    for c in collection("constants"):
        if isinstance(c.get("value"), int | float):
            constants[c["id"]] = float(c["value"])
    return Program(pid, str(program.get("name") or pid), tuple(rules), variables, stage_names,
                   types, option_names, constants)


# ------------------------------------------------------------------ run-time inputs


@dataclass(frozen=True)
class Event:
    """One event as the engine reads it: values by data element uid."""

    stage: str
    date: str | None = None  # occurredAt (or scheduledAt while scheduled), yyyy-MM-dd...
    values: Mapping[str, str] = field(default_factory=dict)
    uid: str | None = None
    status: str = "ACTIVE"
    due_date: str | None = None
    completed_date: str | None = None


@dataclass(frozen=True)
class Context:
    """What the rules run on: the enrollment's attributes and dates, the event being
    entered (None on the registration/enrolment form) and the enrollment's other events."""

    today: date
    attributes: Mapping[str, str] = field(default_factory=dict)
    event: Event | None = None
    other_events: Sequence[Event] = ()
    enrollment_date: str | None = None
    incident_date: str | None = None
    enrollment_id: str | None = None
    enrollment_status: str | None = None
    org_unit_code: str | None = None
    user_roles: frozenset[str] = frozenset()
    org_unit_groups: frozenset[str] = frozenset()


@dataclass
class Result:
    effects: list[dict[str, Any]]
    errors: list[dict[str, str]]


# ------------------------------------------------------------------ values


def _day(v: Any) -> str | None:
    return v[:10] if isinstance(v, str) and len(v) >= 10 else None


def _typed(raw: str, var: Variable, option_names: Mapping[str, str]) -> Value:
    vt = var.value_type
    if vt in NUMERIC:
        try:
            return float(raw)
        except ValueError:
            return raw
    if vt in BOOLEAN:
        return raw.strip().lower() == "true"
    if vt in DATES:
        return raw[:10]
    if not var.use_code and raw in option_names:
        return option_names[raw]  # DHIS2 reads the option's name unless told to use codes
    return raw


def _default(vt: str) -> Value:
    return 0.0 if vt in NUMERIC else False if vt in BOOLEAN else ""


@dataclass
class _Slot:
    value: Value
    has: bool
    all_values: list[Value]
    dates: list[str]


class _State:
    def __init__(self, prog: Program, ctx: Context) -> None:
        self.prog, self.ctx = prog, ctx
        self.slots: dict[str, _Slot] = {}
        for name, var in prog.variables.items():
            self.slots[name] = self._initial(var)
        self.env = self._environment()

    def _events(self) -> list[Event]:
        evs = list(self.ctx.other_events)
        if self.ctx.event is not None:
            evs = [e for e in evs if e.uid is None or e.uid != self.ctx.event.uid]
            evs.append(self.ctx.event)
        return sorted(evs, key=lambda e: e.date or "")

    def _initial(self, var: Variable) -> _Slot:
        names = self.prog.option_names.get(var.field or "", {})
        empty = _Slot(_default(var.value_type), False, [], [])
        if var.source == "CALCULATED_VALUE" or var.field is None:
            return empty
        if var.source == "TEI_ATTRIBUTE":
            raw = self.ctx.attributes.get(var.field)
            if raw in (None, ""):
                return empty
            v = _typed(str(raw), var, names)
            return _Slot(v, True, [v], [])
        cur = self.ctx.event
        if var.source == "DATAELEMENT_CURRENT_EVENT":
            pool = [cur] if cur is not None else []
        elif var.source == "DATAELEMENT_PREVIOUS_EVENT":
            pool = [e for e in self._events() if cur is not None and e is not cur
                    and (e.date or "") <= (cur.date or "9999")]
        elif var.source == "DATAELEMENT_NEWEST_EVENT_PROGRAM_STAGE":
            pool = [e for e in self._events() if e.stage == var.stage]
        else:
            pool = self._events()
        found = [(e.date or "", _typed(str(e.values[var.field]), var, names)) for e in pool
                 if e.values.get(var.field) not in (None, "")]
        if not found:
            return empty
        return _Slot(found[-1][1], True, [v for _, v in found], [d for d, _ in found])

    def _environment(self) -> dict[str, Value]:
        ctx, ev = self.ctx, self.ctx.event
        values = [s for s in self.slots.values() if s.has]
        env: dict[str, Value] = {
            "current_date": ctx.today.isoformat(),
            "event_date": _day(ev.date) if ev else None,
            "due_date": _day(ev.due_date) if ev else None,
            "completed_date": _day(ev.completed_date) if ev else None,
            "event_count": float(len(self._events())),
            "enrollment_date": _day(ctx.enrollment_date),
            "incident_date": _day(ctx.incident_date),
            "enrollment_id": ctx.enrollment_id, "event_id": ev.uid if ev else None,
            "enrollment_status": ctx.enrollment_status,
            "event_status": ev.status if ev else None,
            "tei_count": 1.0, "enrollment_count": 1.0 if ctx.enrollment_id else 0.0,
            "orgunit_code": ctx.org_unit_code,
            "program_stage_id": ev.stage if ev else None,
            "program_stage_name": self.prog.stage_names.get(ev.stage) if ev else None,
            "program_name": self.prog.name, "environment": "WebClient",
            "value_count": float(len(values)),
            "zero_pos_value_count": float(sum(1 for s in values if isinstance(s.value, float)
                                              and s.value >= 0)),
        }
        return env

    def assign(self, target: str, value: Value, *, calculated: bool) -> None:
        for name, var in self.prog.variables.items():
            if (var.name == target) if calculated else (var.field == target):
                has = value not in (None, "")
                v = value if has else _default(var.value_type)
                if has and isinstance(value, str):
                    v = _typed(value, var, {})
                self.slots[name] = _Slot(v, has, [v] if has else [], [])


# ------------------------------------------------------------------ evaluation


def _num(v: Value) -> float:
    if isinstance(v, bool):
        return 1.0 if v else 0.0
    if isinstance(v, float):
        return v
    if v is None or v == "":
        return 0.0
    try:
        return float(v)
    except ValueError:
        raise RuleError(f"{v!r} is not a number") from None


def _bool(v: Value) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, float):
        return v != 0.0
    if v is None or v == "":
        return False
    if v.lower() in ("true", "false"):
        return v.lower() == "true"
    raise RuleError(f"{v!r} is not true or false")


def _date(v: Value) -> date:
    if isinstance(v, str):
        try:
            return date.fromisoformat(v[:10])
        except ValueError:
            pass
    raise RuleError(f"{v!r} is not a date")


def text(v: Value) -> str:
    """A value as DHIS2 writes it into a field or message."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        if math.isfinite(v) and v == int(v):
            return str(int(v))
        return repr(round(v, 10))
    return v


def _numeric_like(v: Value) -> bool:
    if isinstance(v, float | bool):
        return True
    if isinstance(v, str):
        try:
            float(v)
        except ValueError:
            return False
        return True
    return False


def _compare(a: Value, b: Value) -> int:
    if a is None and b is None:
        return 0
    if isinstance(a, bool) or isinstance(b, bool):
        return int(_bool(a)) - int(_bool(b))
    if (isinstance(a, float) or isinstance(b, float)) and \
            _numeric_like(0.0 if a is None else a) and _numeric_like(0.0 if b is None else b):
        x, y = _num(a), _num(b)
        return (x > y) - (x < y)
    sa, sb = text(a), text(b)
    return (sa > sb) - (sa < sb)


def _months_between(a: date, b: date) -> int:
    # Joda's Months.monthsBetween: whole months, a day short does not count
    sign = 1
    if b < a:
        a, b, sign = b, a, -1
    m = (b.year - a.year) * 12 + b.month - a.month
    if b.day < a.day:
        m -= 1
    return sign * m


class _Eval:
    def __init__(self, st: _State) -> None:
        self.st = st

    def var(self, node: ex.Var) -> _Slot:
        if node.kind == "V":
            raise RuleError(f"V{{{node.name}}} is not a variable with a value list")
        slot = self.st.slots.get(node.name)
        if slot is None:
            raise RuleError(f"Unknown program rule variable {node.name!r}")
        if node.kind == "A" and self.st.prog.variables[node.name].source not in (
                "TEI_ATTRIBUTE", "CALCULATED_VALUE"):
            raise RuleError(f"A{{{node.name}}} names a data element variable")
        return slot

    def slot_arg(self, node: ex.Expr) -> _Slot:
        if isinstance(node, ex.Var) and node.kind != "V":
            return self.var(node)
        if isinstance(node, ex.Str):  # d2:hasValue('name') is allowed too
            return self.var(ex.Var("#", node.value))
        raise RuleError("expected a program rule variable")

    def __call__(self, node: ex.Expr) -> Value:
        if isinstance(node, ex.Num | ex.Bool | ex.Str):
            return node.value
        if isinstance(node, ex.Null):
            return None
        if isinstance(node, ex.Var):
            if node.kind == "V":
                if node.name not in ENV_VARIABLES:
                    raise RuleError(f"Unknown environment variable V{{{node.name}}}")
                return self.st.env.get(node.name)
            return self.var(node).value
        if isinstance(node, ex.Const):
            if node.uid not in self.st.prog.constants:
                raise RuleError(f"No constant {node.uid}")
            return self.st.prog.constants[node.uid]
        if isinstance(node, ex.Item):
            raise RuleError(f"#{{{node.de}}} names no program rule variable")
        if isinstance(node, ex.Unary):
            v = self(node.operand)
            if node.op == "!":
                return not _bool(v)
            return -_num(v) if node.op == "-" else _num(v)
        if isinstance(node, ex.Binary):
            return self.binary(node)
        assert isinstance(node, ex.Func)
        return self.func(node)

    def binary(self, node: ex.Binary) -> Value:
        op = node.op
        if op == "&&":
            return _bool(self(node.left)) and _bool(self(node.right))
        if op == "||":
            return _bool(self(node.left)) or _bool(self(node.right))
        a, b = self(node.left), self(node.right)
        if op in ("==", "!=", "<", ">", "<=", ">="):
            c = _compare(a, b)
            return {"==": c == 0, "!=": c != 0, "<": c < 0, ">": c > 0, "<=": c <= 0,
                    ">=": c >= 0}[op]
        if op == "+" and not (_numeric_like(a) and _numeric_like(b)):
            return text(a) + text(b)
        x, y = _num(a), _num(b)
        if op == "+":
            return x + y
        if op == "-":
            return x - y
        if op == "*":
            return x * y
        if op in ("/", "%"):
            if y == 0:
                raise RuleError("division by zero")
            return x / y if op == "/" else math.fmod(x, y)
        try:
            return float(x ** y)
        except (OverflowError, ZeroDivisionError, TypeError):
            raise RuleError("power out of range") from None

    def func(self, node: ex.Func) -> Value:  # noqa: C901 - one branch per DHIS2 function
        name, args = node.name.removeprefix("d2:"), node.args
        if name == "hasValue":
            return self.slot_arg(args[0]).has
        if name in ("count", "countIfZeroPos", "countIfValue", "maxValue", "minValue",
                    "lastEventDate"):
            slot = self.slot_arg(args[0])
            vals = slot.all_values
            if name == "count":
                return float(len(vals))
            if name == "countIfZeroPos":
                return float(sum(1 for v in vals if _numeric_like(v) and _num(v) >= 0))
            if name == "countIfValue":
                want = self(args[1])
                return float(sum(1 for v in vals if _compare(v, want) == 0))
            if name == "lastEventDate":
                return slot.dates[-1] if slot.dates else None
            nums = [_num(v) for v in vals if _numeric_like(v)]
            return (max(nums) if name == "maxValue" else min(nums)) if nums else None
        if name == "if":
            return self(args[1]) if _bool(self(args[0])) else self(args[2])
        if name == "condition":
            cond = self(args[0])
            if not isinstance(cond, str):
                raise RuleError("d2:condition takes the condition as a string")
            try:
                tree = ex.parse_rule(cond)
            except ValueError as e:
                raise RuleError(str(e)) from None
            return self(args[1]) if _bool(self(tree)) else self(args[2])
        if name in ("isNull", "isNotNull"):
            v = self(args[0])
            null = v is None or v == ""
            return null if name == "isNull" else not null
        if name == "firstNonNull":
            for arg in args:
                first = self(arg)
                if first is not None and first != "":
                    return first
            return None
        vals = [self(a) for a in args]
        if name in ("greatest", "least"):
            nums = [_num(v) for v in vals if v is not None]
            return (max(nums) if name == "greatest" else min(nums)) if nums else None
        if name in ("daysBetween", "weeksBetween", "monthsBetween", "yearsBetween"):
            d0, d1 = _date(vals[0]), _date(vals[1])
            days = (d1 - d0).days
            if name == "daysBetween":
                return float(days)
            if name == "weeksBetween":
                return float(int(days / 7))
            months = _months_between(d0, d1)
            return float(months if name == "monthsBetween" else int(months / 12))
        if name == "minutesBetween":
            try:
                t0 = datetime.fromisoformat(text(vals[0]))
                t1 = datetime.fromisoformat(text(vals[1]))
            except ValueError:
                raise RuleError("d2:minutesBetween takes two date-times") from None
            return float(int((t1 - t0).total_seconds() // 60))
        if name == "addDays":
            return (_date(vals[0]) + timedelta(days=int(_num(vals[1])))).isoformat()
        if name in ("ceil", "floor", "round"):
            x = _num(vals[0])
            if name == "round":
                return float(math.floor(x + 0.5))  # Java Math.round
            return float(math.ceil(x) if name == "ceil" else math.floor(x))
        if name == "modulus":
            y = _num(vals[1])
            if y == 0:
                raise RuleError("modulus by zero")
            return math.fmod(_num(vals[0]), y)
        if name == "zing":
            return max(0.0, _num(vals[0]))
        if name == "oizp":
            return 1.0 if _num(vals[0]) >= 0 else 0.0
        if name == "zpvc":
            return float(sum(1 for v in vals if _numeric_like(v) and v != ""
                             and _num(v) >= 0))
        if name == "length":
            return float(len(text(vals[0])))
        if name in ("left", "right"):
            s, n = text(vals[0]), max(0, int(_num(vals[1])))
            return s[:n] if name == "left" else (s[-n:] if n else "")
        if name == "substring":
            s = text(vals[0])
            return s[max(0, int(_num(vals[1]))):max(0, int(_num(vals[2])))]
        if name == "split":
            parts = text(vals[0]).split(text(vals[1])) if text(vals[1]) else [text(vals[0])]
            i = int(_num(vals[2]))
            return parts[i] if 0 <= i < len(parts) else ""
        if name == "concatenate":
            return "".join(text(v) for v in vals)
        if name == "validatePattern":
            try:
                return re.fullmatch(text(vals[1]), text(vals[0])) is not None
            except re.error:
                raise RuleError(f"bad pattern {text(vals[1])!r}") from None
        if name == "inOrgUnitGroup":
            return text(vals[0]) in self.st.ctx.org_unit_groups
        if name == "hasUserRole":
            return text(vals[0]) in self.st.ctx.user_roles
        raise RuleError(f"d2:{name} is not supported by the hub's rule engine")


def evaluate(expr: str, prog: Program, ctx: Context) -> Value:
    """One expression's value in ``ctx`` (no ASSIGNs applied); ``RuleError`` if it fails."""
    try:
        tree = ex.parse_rule(expr)
    except ValueError as e:
        raise RuleError(str(e)) from None
    return _Eval(_State(prog, ctx))(tree)


def check(expr: str, prog: Program) -> None:
    """Refuse an expression DHIS2 would not run: bad syntax, a variable the program lacks,
    an ``A{}`` naming a data element, an unknown ``V{}`` or ``d2:`` function or its
    argument count. Does not evaluate."""
    try:
        tree = ex.parse_rule(expr)
    except ValueError as e:
        raise RuleError(str(e)) from None
    stack: list[ex.Expr] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ex.Var):
            if node.kind == "V":
                if node.name not in ENV_VARIABLES:
                    raise RuleError(f"Unknown environment variable V{{{node.name}}}")
            elif node.name not in prog.variables:
                raise RuleError(f"Unknown program rule variable {node.name!r}")
            elif node.kind == "A" and prog.variables[node.name].source not in (
                    "TEI_ATTRIBUTE", "CALCULATED_VALUE"):
                raise RuleError(f"A{{{node.name}}} names a data element variable")
        elif isinstance(node, ex.Item):
            raise RuleError(f"#{{{node.de}}} names no program rule variable")
        elif isinstance(node, ex.Unary):
            stack.append(node.operand)
        elif isinstance(node, ex.Binary):
            stack.extend((node.left, node.right))
        elif isinstance(node, ex.Func):
            stack.extend(node.args)


_CALC = re.compile(r"\s*[#A]\{([^}]+)\}\s*")


def run(prog: Program, ctx: Context) -> Result:
    """The effects of ``prog``'s rules on ``ctx``, in the order DHIS2 applies them."""
    st = _State(prog, ctx)
    ev = _Eval(st)
    stage = ctx.event.stage if ctx.event is not None else None
    effects: list[dict[str, Any]] = []
    errors: list[dict[str, str]] = []
    for rule in prog.rules:
        if rule.stage is not None and rule.stage != stage:
            continue
        try:
            fired = _bool(ev(ex.parse_rule(rule.condition)))
        except (ValueError, ZeroDivisionError) as e:
            errors.append({"rule": rule.uid, "name": rule.name, "message": str(e)})
            continue
        if not fired:
            continue
        for act in rule.actions:
            try:
                effect = _effect(rule, act, ev, st)
            except (ValueError, ZeroDivisionError) as e:
                errors.append({"rule": rule.uid, "name": rule.name, "message": str(e)})
                continue
            if effect is not None:
                effects.append(effect)
    return Result(effects, errors)


def _effect(rule: Rule, act: Action, ev: _Eval, st: _State) -> dict[str, Any] | None:
    out: dict[str, Any] = {"action": act.kind, "rule": rule.uid, "ruleName": rule.name,
                           "programRuleAction": act.uid}
    if act.data_element:
        out["dataElement"] = act.data_element
    if act.attribute:
        out["trackedEntityAttribute"] = act.attribute
    if act.kind == "ASSIGN":
        value = ev(ex.parse_rule(act.data)) if act.data else None
        target = act.data_element or act.attribute
        if target is not None:
            st.assign(target, value, calculated=False)
            if st.prog.value_types.get(target, "").startswith("INTEGER") and \
                    isinstance(value, float) and math.isfinite(value):
                value = float(int(value))  # integer fields take whole numbers
        else:
            m = _CALC.fullmatch(act.content)
            if m is None:
                return None  # an ASSIGN with nowhere to go does nothing in DHIS2
            st.assign(m.group(1).strip(), text(value) if value is not None else None,
                      calculated=True)
            out["variable"] = m.group(1).strip()
        out["value"] = text(value)
        return out
    if act.kind in ("HIDESECTION",):
        if act.section is None:
            return None
        out["programStageSection"] = act.section
        return out
    if act.kind == "HIDEPROGRAMSTAGE":
        if act.stage is None:
            return None
        out["programStage"] = act.stage
        return out
    message = act.content
    if act.data and act.kind not in ("HIDEFIELD", "SETMANDATORYFIELD"):
        data = text(ev(ex.parse_rule(act.data)))
        out["data"] = data
        message = f"{message} {data}".strip() if message else data
    if act.kind not in ("HIDEFIELD", "SETMANDATORYFIELD") or act.content:
        out["content"] = message
    if act.location:
        out["location"] = act.location
    return out
