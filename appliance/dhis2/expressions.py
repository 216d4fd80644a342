"""DHIS2 validation-rule expressions: a small recursive-descent parser and evaluator.

Semantics follow DHIS2 2.41 (``DefaultExpressionService.getExpressionValue``,
``ExpressionState.handleNulls``, ``DataValidationRunner`` and the antlr expression parser
library 1.0.39):

* Operator precedence, high to low: ``^`` (right-assoc), unary ``+ - ! not``, ``* / %``,
  ``+ -``, ``< > <= >=``, ``== !=``, ``&& and``, ``|| or``. So ``-2^2`` is -4.
* A missing data item counts as "found" and is replaced by 0; the side's
  ``missingValueStrategy`` then decides: SKIP_IF_ALL_VALUES_MISSING (the default) gives null
  when the expression has items and none had a value, SKIP_IF_ANY_VALUE_MISSING gives null
  when any was missing, NEVER_SKIP never does. Items inside ``isNull``, ``isNotNull`` and
  ``firstNonNull`` are looked at "allowing nulls": not replaced and not counted.
* ``+ - *`` use exact decimal arithmetic (Java BigDecimal on ``Double.toString``), so
  ``0.1 + 0.2 == 0.3``; ``/`` rounds to 16 digits; ``x / 0`` and ``x % 0`` are NaN, which
  propagates, and the validation runner then treats that side as having no value.
* Null propagates through arithmetic and comparisons; ``&&``/``||`` use three-valued logic
  and short-circuit (items not visited are not counted).
* A null result that was not skipped by the strategy becomes 0 (DHIS2 "replaceNulls").
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Context, Decimal, DecimalException
from functools import lru_cache
from typing import Any

__all__ = [
    "Expr",
    "Num",
    "Bool",
    "Null",
    "Item",
    "Const",
    "Unary",
    "Binary",
    "Func",
    "MISSING_VALUE_STRATEGIES",
    "OPERATORS",
    "Str",
    "Var",
    "parse",
    "parse_rule",
    "items",
    "evaluate",
    "run_rule",
]

MISSING_VALUE_STRATEGIES = (
    "SKIP_IF_ANY_VALUE_MISSING",
    "SKIP_IF_ALL_VALUES_MISSING",
    "NEVER_SKIP",
)
_DEFAULT_STRATEGY = "SKIP_IF_ALL_VALUES_MISSING"  # dhis2-core Expression default

# DHIS2 Operator enum name -> mathematical operator (rules may carry either form).
OPERATORS: dict[str, str] = {
    "equal_to": "==",
    "not_equal_to": "!=",
    "greater_than": ">",
    "greater_than_or_equal_to": ">=",
    "less_than": "<",
    "less_than_or_equal_to": "<=",
    "compulsory_pair": "[Compulsory pair]",
    "exclusive_pair": "[Exclusive pair]",
}
_OPERATOR_BY_SYMBOL = {sym.lower(): name for name, sym in OPERATORS.items()}

_MAX_DEPTH = 100  # deeper trees are refused: keeps parse/evaluate far from Python's stack limit
_MAX_LENGTH = 100_000


# --------------------------------------------------------------------------- AST


@dataclass(frozen=True)
class Num:
    value: float
    depth: int = field(default=1, compare=False, repr=False)


@dataclass(frozen=True)
class Bool:
    value: bool
    depth: int = field(default=1, compare=False, repr=False)


@dataclass(frozen=True)
class Null:
    depth: int = field(default=1, compare=False, repr=False)


@dataclass(frozen=True)
class Item:
    """``#{de}``, ``#{de.coc}``, ``#{de.coc.aoc}``; ``coc``/``aoc`` None mean "all"."""

    de: str
    coc: str | None = None
    aoc: str | None = None
    depth: int = field(default=1, compare=False, repr=False)


@dataclass(frozen=True)
class Const:
    uid: str
    depth: int = field(default=1, compare=False, repr=False)


@dataclass(frozen=True)
class Unary:
    op: str  # "-", "+", "!"
    operand: Expr
    depth: int = field(default=1, compare=False, repr=False)


@dataclass(frozen=True)
class Binary:
    op: str  # "+ - * / % ^ < > <= >= == != && ||"
    left: Expr
    right: Expr
    depth: int = field(default=1, compare=False, repr=False)


@dataclass(frozen=True)
class Func:
    name: str  # if, isNull, isNotNull, firstNonNull, greatest, least
    args: tuple[Expr, ...]
    depth: int = field(default=1, compare=False, repr=False)


@dataclass(frozen=True)
class Str:
    """A string literal (program-rule expressions only)."""

    value: str
    depth: int = field(default=1, compare=False, repr=False)


@dataclass(frozen=True)
class Var:
    """A program-rule variable by name: ``#{name}`` (kind "#"), ``A{name}`` ("A") or an
    environment variable ``V{name}`` ("V")."""

    kind: str
    name: str
    depth: int = field(default=1, compare=False, repr=False)


Expr = Num | Bool | Null | Item | Const | Unary | Binary | Func | Str | Var

# name -> (min args, max args or None for unbounded)
_FUNCTIONS: dict[str, tuple[int, int | None]] = {
    "if": (3, 3),
    "isNull": (1, 1),
    "isNotNull": (1, 1),
    "firstNonNull": (1, None),
    "greatest": (1, None),
    "least": (1, None),
}

# --------------------------------------------------------------------------- lexer

_UID = r"[A-Za-z][A-Za-z0-9]{10}"
_TOKEN_RE = re.compile(
    r"""
    (?P<ws>[ \t\n\r]+)
  | (?P<num>[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?|\.[0-9]+(?:[eE][+-]?[0-9]+)?)
  | (?P<item>\#\{[^}]*\})
  | (?P<const>C\{[^}]*\})
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op><=|>=|==|!=|&&|\|\||[-+*/%^<>!(),])
    """,
    re.VERBOSE | re.ASCII,
)
# Program-rule expressions: the same grammar plus string literals, variables by name and
# ``d2:`` functions (DHIS2's rule engine reads both with one ANTLR grammar).
_RULE_TOKEN_RE = re.compile(
    r"""
    (?P<ws>[ \t\n\r]+)
  | (?P<num>[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?|\.[0-9]+(?:[eE][+-]?[0-9]+)?)
  | (?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
  | (?P<var>[\#AV]\{[^}]*\})
  | (?P<const>C\{[^}]*\})
  | (?P<d2>d2:[A-Za-z][A-Za-z0-9]*)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op><=|>=|==|!=|&&|\|\||[-+*/%^<>!(),])
    """,
    re.VERBOSE,
)
_ITEM_RE = re.compile(
    rf"\#\{{(?P<de>{_UID})(?:\.(?P<coc>{_UID}|\*)(?:\.(?P<aoc>{_UID}|\*))?)?\}}", re.ASCII
)
_CONST_RE = re.compile(rf"C\{{(?P<uid>{_UID})\}}", re.ASCII)


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    pos: int


def _tokens(expr: str, token_re: re.Pattern[str] = _TOKEN_RE) -> list[_Token]:
    out: list[_Token] = []
    pos = 0
    while pos < len(expr):
        m = token_re.match(expr, pos)
        if m is None:
            raise ValueError(f"Unexpected character {expr[pos]!r} at position {pos}")
        kind = m.lastgroup or ""
        if kind != "ws":
            out.append(_Token(kind, m.group(), pos))
        pos = m.end()
    return out


# --------------------------------------------------------------------------- parser

# Binary operator -> (precedence, right associative)
_BINARY: dict[str, tuple[int, bool]] = {
    "||": (1, False), "or": (1, False),
    "&&": (2, False), "and": (2, False),
    "==": (3, False), "!=": (3, False),
    "<": (4, False), ">": (4, False), "<=": (4, False), ">=": (4, False),
    "+": (5, False), "-": (5, False),
    "*": (6, False), "/": (6, False), "%": (6, False),
    "^": (8, True),  # unary operators sit at 7: -2^2 == -(2^2)
}
_CANONICAL_OP = {"or": "||", "and": "&&", "not": "!"}


def _depth(*children: Expr) -> int:
    d = 1 + max((c.depth for c in children), default=0)
    if d > _MAX_DEPTH:
        raise ValueError("Expression is nested too deeply")
    return d


class _Parser:
    def __init__(self, text: str, token_re: re.Pattern[str] = _TOKEN_RE) -> None:
        self.text = text
        self.toks = _tokens(text, token_re)
        self.i = 0
        self.nesting = 0

    def peek(self) -> _Token | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def next(self) -> _Token:
        tok = self.peek()
        if tok is None:
            raise ValueError("Unexpected end of expression")
        self.i += 1
        return tok

    def expect(self, text: str) -> None:
        tok = self.next()
        if tok.text != text:
            raise ValueError(f"Expected {text!r} at position {tok.pos}, found {tok.text!r}")

    def parse(self) -> Expr:
        if not self.toks:
            raise ValueError("Expression is empty")
        expr = self.binary(0)
        tok = self.peek()
        if tok is not None:
            raise ValueError(f"Unexpected {tok.text!r} at position {tok.pos}")
        return expr

    def _enter(self) -> None:
        self.nesting += 1
        if self.nesting > _MAX_DEPTH:
            raise ValueError("Expression is nested too deeply")

    def binary(self, min_prec: int) -> Expr:
        # Precedence climbing: one Python frame per precedence jump, not per level.
        left = self.unary()
        while True:
            tok = self.peek()
            if tok is None or tok.kind not in ("op", "name") or tok.text not in _BINARY:
                return left
            prec, right_assoc = _BINARY[tok.text]
            if prec < min_prec:
                return left
            self.next()
            self._enter()
            right = self.binary(prec if right_assoc else prec + 1)
            self.nesting -= 1
            op = _CANONICAL_OP.get(tok.text, tok.text)
            # Left spines are evaluated iteratively, so only the right side adds depth:
            # "#{a}+#{b}+...+#{z}" with hundreds of terms is fine.
            depth = max(left.depth, right.depth + 1)
            if depth > _MAX_DEPTH:
                raise ValueError("Expression is nested too deeply")
            left = Binary(op, left, right, depth)

    def unary(self) -> Expr:
        tok = self.peek()
        if tok is not None and tok.text in ("-", "+", "!", "not"):
            self.next()
            self._enter()
            operand = self.binary(7)  # binds tighter than * but looser than ^
            self.nesting -= 1
            return Unary(_CANONICAL_OP.get(tok.text, tok.text), operand, _depth(operand))
        return self.primary()

    def primary(self) -> Expr:
        tok = self.next()
        if tok.kind == "num":
            return Num(float(tok.text))
        if tok.kind == "item":
            m = _ITEM_RE.fullmatch(tok.text)
            if m is None:
                raise ValueError(f"Invalid data element reference {tok.text!r}")
            coc, aoc = m.group("coc"), m.group("aoc")
            if coc == "*" and aoc == "*":  # not in the DHIS2 grammar
                raise ValueError(f"Invalid data element reference {tok.text!r}")
            return Item(m.group("de"), None if coc == "*" else coc, None if aoc == "*" else aoc)
        if tok.kind == "const":
            m = _CONST_RE.fullmatch(tok.text)
            if m is None:
                raise ValueError(f"Invalid constant reference {tok.text!r}")
            return Const(m.group("uid"))
        if tok.text == "(":
            self._enter()
            inner = self.binary(0)
            self.nesting -= 1
            self.expect(")")
            return inner
        if tok.kind == "name":
            if tok.text in ("true", "false"):
                return Bool(tok.text == "true")
            if tok.text == "null":
                return Null()
            if tok.text in _FUNCTIONS:
                return self.call(tok)
        raise ValueError(f"Unexpected {tok.text!r} at position {tok.pos}")

    def call(self, name: _Token, arity: Mapping[str, tuple[int, int | None]] = _FUNCTIONS
             ) -> Expr:
        self.expect("(")
        self._enter()
        args: list[Expr] = []
        if (tok := self.peek()) is not None and tok.text == ")":
            pass  # d2: functions may take no arguments
        else:
            args.append(self.binary(0))
        while (tok := self.peek()) is not None and tok.text == ",":
            self.next()
            args.append(self.binary(0))
        self.expect(")")
        self.nesting -= 1
        lo, hi = arity[name.text]
        if len(args) < lo or (hi is not None and len(args) > hi):
            raise ValueError(f"Wrong number of arguments to {name.text}() at position {name.pos}")
        return Func(name.text, tuple(args), _depth(*args))


# DHIS2 2.41 program-rule d2: functions this parser accepts -> (min args, max or None).
RULE_FUNCTIONS: dict[str, tuple[int, int | None]] = {
    "d2:hasValue": (1, 1), "d2:daysBetween": (2, 2), "d2:weeksBetween": (2, 2),
    "d2:monthsBetween": (2, 2), "d2:yearsBetween": (2, 2), "d2:minutesBetween": (2, 2),
    "d2:addDays": (2, 2), "d2:ceil": (1, 1), "d2:floor": (1, 1), "d2:round": (1, 1),
    "d2:modulus": (2, 2), "d2:zing": (1, 1), "d2:oizp": (1, 1), "d2:zpvc": (1, None),
    "d2:count": (1, 1), "d2:countIfValue": (2, 2), "d2:countIfZeroPos": (1, 1),
    "d2:length": (1, 1), "d2:left": (2, 2), "d2:right": (2, 2), "d2:substring": (3, 3),
    "d2:split": (3, 3), "d2:concatenate": (1, None), "d2:validatePattern": (2, 2),
    "d2:condition": (3, 3), "d2:inOrgUnitGroup": (1, 1), "d2:hasUserRole": (1, 1),
    "d2:lastEventDate": (1, 1), "d2:maxValue": (1, 1), "d2:minValue": (1, 1),
    "d2:zScoreWFA": (3, 3), "d2:zScoreHFA": (3, 3), "d2:zScoreWFH": (3, 3),
}
_RULE_CALLS: dict[str, tuple[int, int | None]] = {**_FUNCTIONS, **RULE_FUNCTIONS}
_VAR_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_ .\-]*")


class _RuleParser(_Parser):
    """Program-rule expressions: validation-rule grammar plus strings, variables and d2:."""

    def __init__(self, text: str) -> None:
        super().__init__(text, _RULE_TOKEN_RE)

    def primary(self) -> Expr:
        tok = self.peek()
        if tok is not None and tok.kind == "str":
            self.next()
            return Str(_unquote(tok.text))
        if tok is not None and tok.kind == "var":
            self.next()
            name = tok.text[2:-1].strip()
            if not _VAR_NAME_RE.fullmatch(name):
                raise ValueError(f"Invalid variable {tok.text!r} at position {tok.pos}")
            if tok.text[0] == "V" and not re.fullmatch(r"[a-z_]+", name):
                raise ValueError(f"Invalid environment variable {tok.text!r}")
            return Var(tok.text[0], name)
        if tok is not None and tok.kind == "d2":
            self.next()
            if tok.text not in RULE_FUNCTIONS:
                raise ValueError(f"Unknown function {tok.text} at position {tok.pos}")
            return self.call(tok, _RULE_CALLS)
        if tok is not None and tok.kind == "name" and tok.text in _FUNCTIONS:
            self.next()
            return self.call(tok, _RULE_CALLS)
        return super().primary()


def _unquote(text: str) -> str:
    body = text[1:-1]
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)),
                  body)


def parse_rule(expr: str) -> Expr:
    """Parse a program-rule condition or action expression; ``ValueError`` on bad syntax.

    Evaluated by ``appliance.dhis2.program_rules``, not by ``evaluate`` (which is numeric)."""
    if not isinstance(expr, str):
        raise ValueError("Expression must be a string")
    if len(expr) > _MAX_LENGTH:
        raise ValueError("Expression is too long")
    return _parse_rule_cached(expr)


@lru_cache(maxsize=4096)
def _parse_rule_cached(expr: str) -> Expr:
    try:
        return _RuleParser(expr).parse()
    except RecursionError:
        raise ValueError("Expression is nested too deeply") from None


def parse(expr: str) -> Expr:
    """Parse a validation rule side expression; ``ValueError`` on any syntax error."""
    if not isinstance(expr, str):
        raise ValueError("Expression must be a string")
    if len(expr) > _MAX_LENGTH:
        raise ValueError("Expression is too long")
    return _parse_cached(expr)


@lru_cache(maxsize=4096)
def _parse_cached(expr: str) -> Expr:
    # Trees are immutable, so rules run for every form on reporting day parse only once.
    try:
        return _Parser(expr).parse()
    except RecursionError:  # belt and braces: depth is already capped
        raise ValueError("Expression is nested too deeply") from None


def _walk(expr: Expr) -> Iterator[Expr]:
    stack: list[Expr] = [expr]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, Unary):
            stack.append(node.operand)
        elif isinstance(node, Binary):
            stack.extend((node.left, node.right))
        elif isinstance(node, Func):
            stack.extend(node.args)


def items(expr: Expr) -> set[tuple[str, str | None]]:
    """The ``(dataElement, categoryOptionCombo or None)`` pairs the expression refers to."""
    return {(n.de, n.coc) for n in _walk(expr) if isinstance(n, Item)}


# --------------------------------------------------------------------------- evaluation

Value = float | bool | None

_EXACT = Context(prec=1000, Emax=999_999_999, Emin=-999_999_999, traps=[])
_DIVIDE = Context(prec=16, rounding=ROUND_HALF_EVEN, Emax=999_999_999, Emin=-999_999_999,
                  traps=[])
_POWER = Context(prec=7, rounding=ROUND_HALF_EVEN, Emax=999_999_999, Emin=-999_999_999,
                 traps=[])


def _dec(x: float) -> Decimal:
    return Decimal(repr(x))  # ~ Java BigDecimal.valueOf(double), i.e. Double.toString


def _arith(op: str, a: float, b: float) -> float:
    if not (math.isfinite(a) and math.isfinite(b)):
        return math.nan  # Java's BigDecimal.valueOf(Infinity) throws: no usable value
    try:
        da, db = _dec(a), _dec(b)
        if op == "+":
            r = _EXACT.add(da, db)
        elif op == "-":
            r = _EXACT.subtract(da, db)
        elif op == "*":
            r = _EXACT.multiply(da, db)
        elif op in ("/", "%"):
            if db.is_zero():
                return math.nan  # DHIS2: division (or modulus) by zero is NaN
            r = _DIVIDE.divide(da, db) if op == "/" else _EXACT.remainder(da, db)
        else:  # "^": BigDecimal.pow(int exponent, DECIMAL32)
            exponent = int(db)
            if exponent == 0:
                return 1.0
            if abs(exponent) > 999_999_999 or (da.is_zero() and exponent < 0):
                return math.nan  # Java throws ArithmeticException here
            r = _POWER.power(da, exponent)
        result = float(r)
    except (DecimalException, OverflowError, ValueError):
        return math.nan
    return result if math.isfinite(result) else math.nan


def _java_compare(a: float, b: float) -> int:
    # Double.compareTo: NaN is greater than everything (and equals NaN); -0.0 < 0.0.
    if a < b:
        return -1
    if a > b:
        return 1
    a_nan, b_nan = math.isnan(a), math.isnan(b)
    if a_nan or b_nan:
        return int(a_nan) - int(b_nan)
    sa, sb = math.copysign(1.0, a), math.copysign(1.0, b)
    return (sa > sb) - (sa < sb)


def _to_double(v: Value) -> float | None:
    if v is None or isinstance(v, float):
        return v
    raise ValueError(f"Could not cast Boolean '{str(v).lower()}' to Double")


def _make_bool(v: Value) -> bool | None:
    if isinstance(v, bool):
        return v
    if isinstance(v, float) and math.isfinite(v) and v % 1 == 0:
        return v != 0.0
    return None


def _to_bool(v: Value) -> bool | None:
    if v is None:
        return None
    b = _make_bool(v)
    if b is None:
        raise ValueError(f"Could not cast Double '{v}' to Boolean")
    return b


def _compare(a: Value, b: Value) -> int:
    if isinstance(a, float) and isinstance(b, float):
        return _java_compare(a, b)
    ba, bb = _make_bool(a), _make_bool(b)
    if ba is not None and bb is not None:
        return int(ba) - int(bb)
    raise ValueError(f"Could not compare {a!r} to {b!r}")


def _invalid(v: Value) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


class _Values:
    """Lookup of (de, coc) values, with per-element totals for ``#{de}``."""

    def __init__(self, values: Mapping[tuple[str, str], Any]) -> None:
        self.by_key: dict[tuple[str, str], float] = {}
        self.totals: dict[str, float] = {}
        for key, raw in values.items():
            v = _number(raw)
            if v is None or not isinstance(key, tuple) or len(key) < 2:
                continue
            de, coc = key[0], key[1]
            self.by_key[(de, coc)] = v
            self.totals[de] = self.totals.get(de, 0.0) + v

    def get(self, de: str, coc: str | None) -> float | None:
        return self.totals.get(de) if coc is None else self.by_key.get((de, coc))


def _number(raw: Any) -> float | None:
    if raw is None or isinstance(raw, bool):
        return None if raw is None else float(raw)
    if isinstance(raw, int | float):
        return float(raw)
    if isinstance(raw, str):
        try:
            v = float(raw)
        except ValueError:
            return None
        return v if math.isfinite(v) else None
    return None


@dataclass
class _State:
    values: _Values
    constants: Mapping[str, Any]
    aoc: str | None
    replace_nulls: bool = True
    items_found: int = 0
    item_values_found: int = 0


def _eval_item(node: Item, st: _State) -> Value:
    # An item bound to another attribute option combo has no value in this one.
    value = None
    if node.aoc is None or st.aoc is None or node.aoc == st.aoc:
        value = st.values.get(node.de, node.coc)
    if not st.replace_nulls:
        return value
    st.items_found += 1  # ExpressionState.handleNulls
    if value is None:
        return 0.0
    st.item_values_found += 1
    return value


def _allowing_nulls(node: Expr, st: _State) -> Value:
    saved = st.replace_nulls
    st.replace_nulls = False
    try:
        return _eval(node, st)
    finally:
        st.replace_nulls = saved


def _eval_func(node: Func, st: _State) -> Value:
    name, args = node.name, node.args
    if name == "if":
        cond = _to_bool(_eval(args[0], st))
        if cond is None:
            return None
        return _eval(args[1] if cond else args[2], st)
    if name == "isNull":
        return _allowing_nulls(args[0], st) is None
    if name == "isNotNull":
        return _allowing_nulls(args[0], st) is not None
    if name == "firstNonNull":
        for arg in args:
            v = _allowing_nulls(arg, st)
            if v is not None:
                return v
        return None
    # greatest / least: every argument is evaluated; nulls are ignored.
    sign = 1.0 if name == "greatest" else -1.0
    best: float | None = None
    for v in [_to_double(_eval(arg, st)) for arg in args]:
        if best is None or (v is not None and (v - best) * sign > 0):
            best = v
    return best


def _apply_binary(node: Binary, left: Value, st: _State) -> Value:
    """``node`` with its left operand already evaluated to ``left``."""
    op = node.op
    if op == "&&":
        a = _to_bool(left)
        return _to_bool(_eval(node.right, st)) if a else a
    if op == "||":
        a = _to_bool(left)
        if a is None:
            return True if _to_bool(_eval(node.right, st)) else None
        return True if a else _to_bool(_eval(node.right, st))
    comparison = op in ("<", ">", "<=", ">=", "==", "!=")
    # Stop at the first null (or NaN for arithmetic) without visiting the right, like DHIS2.
    if left is None or (not comparison and _invalid(left)):
        return left
    right = _eval(node.right, st)
    if right is None or (not comparison and _invalid(right)):
        return right
    if comparison:
        c = _compare(left, right)
        return {"<": c < 0, ">": c > 0, "<=": c <= 0, ">=": c >= 0, "==": c == 0,
                "!=": c != 0}[op]
    x, y = _to_double(left), _to_double(right)
    assert x is not None and y is not None
    return _arith(op, x, y)


def _eval_binary(node: Binary, st: _State) -> Value:
    # Walk the left spine without recursion, then fold back up in evaluation order.
    spine: list[Binary] = []
    cur: Expr = node
    while isinstance(cur, Binary):
        spine.append(cur)
        cur = cur.left
    acc = _eval(cur, st)
    for b in reversed(spine):
        acc = _apply_binary(b, acc, st)
    return acc


def _eval(node: Expr, st: _State) -> Value:
    if isinstance(node, Num):
        return node.value
    if isinstance(node, Bool):
        return node.value
    if isinstance(node, Null):
        st.replace_nulls = False  # DHIS2 NullLiteral switches replacement off from here on
        return None
    if isinstance(node, Item):
        return _eval_item(node, st)
    if isinstance(node, Const):
        if node.uid not in st.constants:
            raise ValueError(f"No constant defined for {node.uid}")
        v = _number(st.constants[node.uid])
        if v is None:
            raise ValueError(f"Constant {node.uid} is not a number")
        return v
    if isinstance(node, Unary):
        v = _eval(node.operand, st)
        if node.op == "!":
            b = _to_bool(v)
            return None if b is None else not b
        if _invalid(v):
            return v
        d = _to_double(v)
        assert d is not None
        return -d if node.op == "-" else d
    if isinstance(node, Binary):
        return _eval_binary(node, st)
    if isinstance(node, Str | Var):  # only parse_rule makes these
        raise ValueError("Program-rule terms have no numeric value")
    return _eval_func(node, st)


def _strategy(name: str | None) -> str:
    if name is None:
        return _DEFAULT_STRATEGY
    if name not in MISSING_VALUE_STRATEGIES:
        raise ValueError(f"Unknown missingValueStrategy: {name!r}")
    return name


def evaluate(
    expr: Expr,
    values: Mapping[tuple[str, str], float],
    constants: Mapping[str, float] | None = None,
    *,
    strategy: str = _DEFAULT_STRATEGY,
    aoc: str | None = None,
) -> float | None:
    """Value of one rule side, or None when DHIS2 would have no value for it.

    ``values`` are the data values of one org unit / period / attribute option combo, keyed
    ``(dataElement, categoryOptionCombo)``; ``#{de}`` sums all of an element's combos. ``aoc``
    is that attribute option combo: ``#{de.coc.aoc}`` for another one counts as missing.
    None means skipped by ``strategy`` (SKIP_IF_ALL_VALUES_MISSING by default, as DHIS2),
    or no usable number (division by zero). ``ValueError`` for unknown constants, type errors
    (e.g. a boolean where a number is needed) and a boolean overall result.
    """
    st = _State(_Values(values), constants or {}, aoc)
    strategy = _strategy(strategy)
    try:
        value = _eval(expr, st)
    except RecursionError:
        raise ValueError("Expression is nested too deeply") from None
    if strategy == "SKIP_IF_ANY_VALUE_MISSING" and st.item_values_found < st.items_found:
        return None
    if strategy == "SKIP_IF_ALL_VALUES_MISSING" and st.items_found and not st.item_values_found:
        return None
    if value is None:
        return 0.0 if st.replace_nulls else None
    if isinstance(value, bool):
        raise ValueError("Expression does not evaluate to a number")
    return value if math.isfinite(value) else None


# --------------------------------------------------------------------------- rules


def _round_significant(v: float) -> float:
    """MathUtils.roundSignificant: 1 decimal from 10 up, else 3 significant digits."""
    if v >= 10.0 or v <= -10.0:
        return float(_dec(v).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP, context=_EXACT))
    if abs(v) <= 0.01:  # MathUtils.isEqual(value, 0.0) uses a 0.01 tolerance
        return 0.0
    power = 3 - math.ceil(math.log10(abs(v)))
    magnitude = 10.0**power
    return math.floor(v * magnitude + 0.5) / magnitude  # Java Math.round


def _operator(raw: Any) -> str:
    if isinstance(raw, str):
        if raw in OPERATORS:
            return raw
        name = _OPERATOR_BY_SYMBOL.get(raw.strip().lower())
        if name is not None:
            return name
    raise ValueError(f"Unknown validation rule operator: {raw!r}")


def _side(rule: Mapping[str, Any], key: str) -> tuple[str, str]:
    side = rule.get(key)
    if not isinstance(side, Mapping) or not isinstance(side.get("expression"), str):
        raise ValueError(f"Validation rule {rule.get('id')!r} has no {key}.expression")
    return side["expression"], _strategy(side.get("missingValueStrategy"))


def _is_violation(operator: str, left: float | None, right: float | None,
                  left_strategy: str, right_strategy: str) -> bool:
    # DataValidationRunner.isViolation
    if operator == "compulsory_pair":
        return (left is None) != (right is None)
    if operator == "exclusive_pair":
        return left is not None and right is not None
    if left is None:
        if left_strategy != "NEVER_SKIP":
            return False
        left = 0.0
    if right is None:
        if right_strategy != "NEVER_SKIP":
            return False
        right = 0.0
    c = _java_compare(left, right)
    tests: dict[str, Callable[[int], bool]] = {
        "equal_to": lambda c: c == 0,
        "not_equal_to": lambda c: c != 0,
        "greater_than": lambda c: c > 0,
        "greater_than_or_equal_to": lambda c: c >= 0,
        "less_than": lambda c: c < 0,
        "less_than_or_equal_to": lambda c: c <= 0,
    }
    return not tests[operator](c)


def run_rule(
    rule: Mapping[str, Any],
    values: Mapping[tuple[str, str], float],
    constants: Mapping[str, float] | None = None,
    *,
    aoc: str | None = None,
) -> dict[str, Any] | None:
    """Run one validation rule on one org unit / period / attribute option combo.

    None if the rule holds or is skipped. DHIS2 evaluates an attribute option combo only when
    it has data and at least one side has a value: so no data at all, or both sides skipped
    (even with NEVER_SKIP, whose sides are never skipped but may be NaN), is never a
    violation. A violation is returned as the fields asked for by the hub plus the DHIS2 2.41
    ``validationRuleViolations`` entry fields (``validationRule: {id}``, ``leftsideValue``,
    ``rightsideValue``); values are rounded like DHIS2 (``MathUtils.roundSignificant``).
    ``ValueError`` if the rule itself is broken (syntax, operator, unknown constant).
    """
    operator = _operator(rule.get("operator"))
    left_expr, left_strategy = _side(rule, "leftSide")
    right_expr, right_strategy = _side(rule, "rightSide")
    left_ast, right_ast = parse(left_expr), parse(right_expr)
    if not values:
        return None
    left = evaluate(left_ast, values, constants, strategy=left_strategy, aoc=aoc)
    right = evaluate(right_ast, values, constants, strategy=right_strategy, aoc=aoc)
    if left is None and right is None:
        return None
    if not _is_violation(operator, left, right, left_strategy, right_strategy):
        return None
    left_value = _round_significant(left if left is not None else 0.0)
    right_value = _round_significant(right if right is not None else 0.0)
    rule_id = rule.get("id")
    description = next(
        (rule[k] for k in ("displayDescription", "description", "displayName", "name")
         if isinstance(rule.get(k), str) and rule[k]),
        None,
    )
    return {
        "validationRuleId": rule_id,
        "validationRuleDescription": description,
        "importance": rule.get("importance") or "MEDIUM",
        "leftSideValue": left_value,
        "rightSideValue": right_value,
        "operator": operator,
        "validationRule": {"id": rule_id},
        "leftsideValue": left_value,
        "rightsideValue": right_value,
    }
