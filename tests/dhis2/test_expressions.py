"""Validation-rule expressions: parsing, DHIS2 evaluation semantics and rule outcomes."""

from __future__ import annotations

import random

import pytest

from appliance.dhis2.expressions import (
    Binary,
    Item,
    Num,
    Unary,
    evaluate,
    items,
    parse,
    run_rule,
)

A, B, C, Z = "AAAAAAAAAAA", "BBBBBBBBBBB", "CCCCCCCCCCC", "ZZZZZZZZZZZ"  # data elements
M, F = "cocMale0001", "cocFemale01"  # category option combos
AOC1, AOC2 = "aocDefault1", "aocOther001"
K = "kConstant01"

VALUES = {(A, M): 5.0, (A, F): 3.0, (B, M): 2.0}


def ev(expr: str, values: dict[tuple[str, str], float] | None = None, **kw: object) -> object:
    return evaluate(parse(expr), VALUES if values is None else values, **kw)  # type: ignore


# --------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("expr", "value"),
    [
        ("1+2*3", 7.0), ("(1+2)*3", 9.0), ("10-4-3", 3.0), ("64/4/2", 8.0), ("2^3^2", 512.0),
        ("-2^2", -4.0), ("2^-1", 0.5), ("-3*-2", 6.0), ("--3", 3.0), ("+3", 3.0),
        ("7%3", 1.0), ("-7%3", -1.0), ("1.5e2", 150.0), (".5", 0.5), ("007", 7.0),
        (" 1 +\n2\t", 3.0), ("0.1+0.2", 0.3), ("1.1*3", 3.3), ("10/3", 3.333333333333333),
        ("1-0.9", 0.1), ("2^10", 1024.0), ("5^0", 1.0), ("if(1<2 && 2<3, 1, 0)", 1.0),
        ("if(1<2 and not 2<1, 1, 0)", 1.0), ("if(1>2 || 3==3, 1, 0)", 1.0),
        ("if(1>2 or 3!=3, 1, 0)", 0.0), ("if(!(1>=2), 4, 5)", 4.0), ("if(2<=2, 4, 5)", 4.0),
        ("if(1 == 1 == true, 1, 0)", 1.0), ("if(true, 1, 0)", 1.0), ("if(0, 1, 2)", 2.0),
        ("if(3, 1, 2)", 1.0), ("greatest(1, 5, 3)", 5.0), ("least(4, -2, 9)", -2.0),
        ("firstNonNull(null, 7)", 7.0), ("if(isNull(null), 1, 0)", 1.0),
    ],
)
def test_arithmetic_and_precedence(expr: str, value: float) -> None:
    assert ev(expr, {}) == value


def test_parse_tree_shape() -> None:
    tree = parse("#{AAAAAAAAAAA} - -#{BBBBBBBBBBB.cocMale0001}")
    assert tree == Binary("-", Item(A), Unary("-", Item(B, M)))
    assert parse("(((1)))") == Num(1.0)


@pytest.mark.parametrize(
    "bad",
    [
        "", "   ", "1+", "*1", "(1", "1)", "()", "1 2", "#{}", "#{AAAAAAAAAAA", "#{AAAA}",
        "#{1AAAAAAAAAA}", "#{AAAAAAAAAAA.}", "#{AAAAAAAAAAA.*.*}", "#{A.B.C.D}", "C{}",
        "C{short}", "foo(1)", "if(1,2)", "if(1,2,3,4)", "isNull()", "greatest()", "1 +* 2",
        "1 === 2", "a", "#{AAAAAAAAAAA}#{BBBBBBBBBBB}", "1,2", "[days]", "'text'",
        "sum(#{AAAAAAAAAAA})", "1 & 2", "1 | 2", "1=2", "((((((((((((((((((((((((((((1",
        "#{deGroup:AAAAAAAAAAA}",
    ],
)
def test_syntax_errors(bad: str) -> None:
    with pytest.raises(ValueError):
        parse(bad)


def test_nesting_limits_are_value_errors() -> None:
    with pytest.raises(ValueError):
        parse("(" * 5000 + "1" + ")" * 5000)
    with pytest.raises(ValueError):
        parse("-" * 5000 + "1")
    with pytest.raises(ValueError):
        parse("2^" * 3000 + "2")
    # long flat sums are common in real rules and must work
    expr = "+".join(["#{AAAAAAAAAAA.cocMale0001}"] * 3000)
    assert ev(expr) == 15000.0


def test_items() -> None:
    tree = parse(
        "#{AAAAAAAAAAA} + #{BBBBBBBBBBB.cocMale0001} * isNull(#{CCCCCCCCCCC.*.aocDefault1})"
        " + #{ZZZZZZZZZZZ.cocFemale01.aocOther001} + C{kConstant01} + #{AAAAAAAAAAA.*}"
    )
    assert items(tree) == {(A, None), (B, M), (C, None), (Z, F)}
    assert items(parse("1 + 2")) == set()


# --------------------------------------------------------------------------- evaluation


def test_items_totals_and_operands() -> None:
    assert ev("#{AAAAAAAAAAA}") == 8.0  # sum over all category option combos
    assert ev("#{AAAAAAAAAAA.*}") == 8.0
    assert ev("#{AAAAAAAAAAA.cocFemale01}") == 3.0
    assert ev("#{AAAAAAAAAAA.cocFemale01.*}") == 3.0
    assert ev("#{AAAAAAAAAAA} - #{BBBBBBBBBBB}") == 6.0


def test_attribute_option_combo_is_a_filter() -> None:
    expr = "#{AAAAAAAAAAA.cocMale0001.aocDefault1} + #{BBBBBBBBBBB}"
    assert ev(expr, aoc=AOC1) == 7.0
    assert ev(expr, aoc=AOC2) == 2.0  # the A operand belongs to another AOC: missing
    assert ev(expr) == 7.0  # no AOC given: not filtered
    assert ev("#{AAAAAAAAAAA.*.aocOther001}", aoc=AOC1) is None


def test_constants() -> None:
    assert ev("C{kConstant01} * 2", constants={K: 2.5}) == 5.0
    with pytest.raises(ValueError, match="No constant"):
        ev("C{kConstant01}")
    # constants are not data items: they never make a side "missing"
    assert ev("C{kConstant01}", {}, constants={K: 1}, strategy="SKIP_IF_ANY_VALUE_MISSING") == 1


def test_division_by_zero_gives_null() -> None:
    assert ev("1/0", {}) is None
    assert ev("#{AAAAAAAAAAA} / #{ZZZZZZZZZZZ}", strategy="NEVER_SKIP") is None  # missing = 0
    assert ev("5 % 0", {}) is None
    assert ev("1/0 + 5", {}) is None  # NaN propagates through arithmetic
    assert ev("greatest(1/0, 5)", {}) is None  # NaN wins nothing but is not skipped either
    assert ev("if(1/0 > 1, 1, 2)", {}) == 1.0  # Java: NaN compares greater than everything
    assert ev("0/5", {}) == 0.0


@pytest.mark.parametrize(
    ("strategy", "expr", "expected"),
    [
        # all items present
        ("SKIP_IF_ANY_VALUE_MISSING", "#{AAAAAAAAAAA} + #{BBBBBBBBBBB}", 10.0),
        ("SKIP_IF_ALL_VALUES_MISSING", "#{AAAAAAAAAAA} + #{BBBBBBBBBBB}", 10.0),
        ("NEVER_SKIP", "#{AAAAAAAAAAA} + #{BBBBBBBBBBB}", 10.0),
        # some items missing: they count as 0 unless the strategy skips
        ("SKIP_IF_ANY_VALUE_MISSING", "#{AAAAAAAAAAA} + #{ZZZZZZZZZZZ}", None),
        ("SKIP_IF_ALL_VALUES_MISSING", "#{AAAAAAAAAAA} + #{ZZZZZZZZZZZ}", 8.0),
        ("NEVER_SKIP", "#{AAAAAAAAAAA} + #{ZZZZZZZZZZZ}", 8.0),
        # all items missing
        ("SKIP_IF_ANY_VALUE_MISSING", "#{ZZZZZZZZZZZ} + #{CCCCCCCCCCC}", None),
        ("SKIP_IF_ALL_VALUES_MISSING", "#{ZZZZZZZZZZZ} + #{CCCCCCCCCCC}", None),
        ("NEVER_SKIP", "#{ZZZZZZZZZZZ} + #{CCCCCCCCCCC} + 1", 1.0),
        # no items at all: nothing can be missing
        ("SKIP_IF_ALL_VALUES_MISSING", "2 + 2", 4.0),
        ("SKIP_IF_ANY_VALUE_MISSING", "2 + 2", 4.0),
        # items inside isNull / firstNonNull are neither replaced nor counted
        ("SKIP_IF_ALL_VALUES_MISSING", "if(isNull(#{ZZZZZZZZZZZ}), 1, 2)", 1.0),
        ("SKIP_IF_ANY_VALUE_MISSING", "if(isNotNull(#{ZZZZZZZZZZZ}), 1, 2)", 2.0),
        ("SKIP_IF_ALL_VALUES_MISSING", "firstNonNull(#{ZZZZZZZZZZZ}, #{CCCCCCCCCCC})", 0.0),
        ("SKIP_IF_ANY_VALUE_MISSING", "firstNonNull(#{ZZZZZZZZZZZ}, #{BBBBBBBBBBB})", 2.0),
        # only the branch taken by if() is visited
        ("SKIP_IF_ANY_VALUE_MISSING", "if(1 > 0, #{AAAAAAAAAAA}, #{ZZZZZZZZZZZ})", 8.0),
        ("SKIP_IF_ANY_VALUE_MISSING", "if(1 < 0, #{AAAAAAAAAAA}, #{ZZZZZZZZZZZ})", None),
        # && short-circuits: the right side's items are not counted
        ("SKIP_IF_ANY_VALUE_MISSING", "if(1 > 2 && #{ZZZZZZZZZZZ} > 0, 1, 2)", 2.0),
    ],
)
def test_missing_value_strategies(strategy: str, expr: str, expected: float | None) -> None:
    assert ev(expr, strategy=strategy) == expected


def test_default_strategy_is_skip_if_all_values_missing() -> None:
    assert ev("#{ZZZZZZZZZZZ}") is None
    assert ev("#{ZZZZZZZZZZZ} + #{AAAAAAAAAAA}") == 8.0
    with pytest.raises(ValueError, match="missingValueStrategy"):
        ev("1", strategy="SKIP_SOMETIMES")


def test_null_semantics() -> None:
    assert ev("null", {}) is None  # a null literal switches null replacement off
    assert ev("null + 1", {}) is None
    assert ev("if(null > 1, 1, 2)", {}) is None  # unknown condition: null
    assert ev("if(null > 1 || 1 > 0, 1, 2)", {}) == 1.0  # null || true is true
    assert ev("if(null > 1 || 1 < 0, 1, 2)", {}) is None  # null || false is null
    assert ev("if(null > 1 && 1 > 0, 1, 2)", {}) is None
    assert ev("if(1 < 0 && null > 1, 1, 2)", {}) == 2.0
    assert ev("greatest(null, 3)", {}) == 3.0
    assert ev("least(null, null)", {}) is None  # the null literal disabled replacement
    assert ev("least(firstNonNull(#{ZZZZZZZZZZZ}))", {}) == 0.0  # a null result becomes 0


def test_type_errors_are_value_errors() -> None:
    for bad in ("1 > 0", "isNull(#{AAAAAAAAAAA})", "true + 1", "-true", "if(0.5, 1, 2)",
                "greatest(true, 1)"):
        with pytest.raises(ValueError):
            ev(bad)


def test_values_may_arrive_as_strings_or_ints() -> None:
    vals = {(A, M): "4", (A, F): 1, (B, M): "not a number"}
    assert evaluate(parse("#{AAAAAAAAAAA} + #{BBBBBBBBBBB}"), vals) == 5.0  # type: ignore


# --------------------------------------------------------------------------- rules


def rule(op: str, left: str, right: str, left_mvs: str | None = None,
         right_mvs: str | None = None, **extra: object) -> dict[str, object]:
    r: dict[str, object] = {
        "id": "vrUid000001", "name": "ANC", "displayDescription": "ANC1 >= ANC4",
        "importance": "HIGH", "operator": op,
        "leftSide": {"expression": left}, "rightSide": {"expression": right},
    }
    if left_mvs:
        r["leftSide"]["missingValueStrategy"] = left_mvs  # type: ignore[index]
    if right_mvs:
        r["rightSide"]["missingValueStrategy"] = right_mvs  # type: ignore[index]
    r.update(extra)
    return r


@pytest.mark.parametrize(
    ("op", "left", "right", "violated"),
    [
        ("equal_to", "5", "5", False), ("equal_to", "5", "6", True),
        ("not_equal_to", "5", "6", False), ("not_equal_to", "5", "5", True),
        ("greater_than", "6", "5", False), ("greater_than", "5", "5", True),
        ("greater_than_or_equal_to", "5", "5", False),
        ("greater_than_or_equal_to", "4", "5", True),
        ("less_than", "4", "5", False), ("less_than", "5", "5", True),
        ("less_than_or_equal_to", "5", "5", False), ("less_than_or_equal_to", "6", "5", True),
        ("equal_to", "0.1+0.2", "0.3", False),  # decimal arithmetic, like DHIS2
        (">=", "4", "5", True), ("==", "5", "5", False),  # symbols are accepted too
    ],
)
def test_each_operator(op: str, left: str, right: str, violated: bool) -> None:
    result = run_rule(rule(op, left, right), VALUES)
    assert (result is not None) is violated


def test_violation_shape() -> None:
    r = rule("greater_than_or_equal_to", "#{BBBBBBBBBBB}", "#{AAAAAAAAAAA}")
    assert run_rule(r, VALUES) == {
        "validationRuleId": "vrUid000001",
        "validationRuleDescription": "ANC1 >= ANC4",
        "importance": "HIGH",
        "leftSideValue": 2.0,
        "rightSideValue": 8.0,
        "operator": "greater_than_or_equal_to",
        "validationRule": {"id": "vrUid000001"},
        "leftsideValue": 2.0,
        "rightsideValue": 8.0,
    }
    bare = {"id": "x", "operator": "equal_to", "leftSide": {"expression": "1"},
            "rightSide": {"expression": "2"}}
    result = run_rule(bare, VALUES)
    assert result is not None
    assert result["importance"] == "MEDIUM" and result["validationRuleDescription"] is None


def test_reported_values_are_rounded_like_dhis2() -> None:
    result = run_rule(rule("less_than", "1234.56", "2/3"), VALUES)
    assert result is not None
    assert (result["leftSideValue"], result["rightSideValue"]) == (1234.6, 0.667)
    result = run_rule(rule("less_than", "0.005", "-12.25"), VALUES)
    assert result is not None
    assert (result["leftSideValue"], result["rightSideValue"]) == (0.0, -12.3)


def test_rule_missing_value_strategies() -> None:
    vals = {(A, M): 5.0}
    # default SKIP_IF_ALL_VALUES_MISSING: right side has no data -> rule skipped
    assert run_rule(rule("less_than", "#{AAAAAAAAAAA}", "#{ZZZZZZZZZZZ}"), vals) is None
    # NEVER_SKIP on the right: its missing item is 0 -> 5 < 0 is violated
    result = run_rule(rule("less_than", "#{AAAAAAAAAAA}", "#{ZZZZZZZZZZZ}",
                           right_mvs="NEVER_SKIP"), vals)
    assert result is not None and result["rightSideValue"] == 0.0
    # SKIP_IF_ANY on the left with one of two items missing -> skipped
    assert run_rule(rule("less_than", "#{AAAAAAAAAAA}+#{CCCCCCCCCCC}", "1",
                         left_mvs="SKIP_IF_ANY_VALUE_MISSING"), vals) is None
    assert run_rule(rule("less_than", "#{AAAAAAAAAAA}+#{CCCCCCCCCCC}", "1"), vals) is not None
    # NEVER_SKIP on both but a NaN (division by zero) side: treated as 0
    result = run_rule(rule("greater_than", "#{AAAAAAAAAAA}/0", "1", left_mvs="NEVER_SKIP",
                           right_mvs="NEVER_SKIP"), vals)
    assert result is not None and result["leftSideValue"] == 0.0
    # both sides without a value: DHIS2 does not even compare
    assert run_rule(rule("equal_to", "1/0", "#{ZZZZZZZZZZZ}", left_mvs="NEVER_SKIP"),
                    vals) is None


def test_no_data_at_all_means_no_violation() -> None:
    r = rule("greater_than", "#{ZZZZZZZZZZZ} + 1", "5", left_mvs="NEVER_SKIP",
             right_mvs="NEVER_SKIP")
    assert run_rule(r, {}) is None
    assert run_rule(r, {(A, M): 1.0}) is not None


def test_compulsory_and_exclusive_pairs() -> None:
    vals = {(A, M): 5.0, (B, M): 0.0}
    compulsory = "compulsory_pair"
    assert run_rule(rule(compulsory, "#{AAAAAAAAAAA}", "#{BBBBBBBBBBB}"), vals) is None
    assert run_rule(rule(compulsory, "#{AAAAAAAAAAA}", "#{ZZZZZZZZZZZ}"), vals) is not None
    assert run_rule(rule(compulsory, "#{ZZZZZZZZZZZ}", "#{AAAAAAAAAAA}"), vals) is not None
    assert run_rule(rule(compulsory, "#{ZZZZZZZZZZZ}", "#{CCCCCCCCCCC}"), vals) is None
    exclusive = "exclusive_pair"
    assert run_rule(rule(exclusive, "#{AAAAAAAAAAA}", "#{BBBBBBBBBBB}"), vals) is not None
    assert run_rule(rule(exclusive, "#{AAAAAAAAAAA}", "#{ZZZZZZZZZZZ}"), vals) is None
    assert run_rule(rule(exclusive, "#{ZZZZZZZZZZZ}", "#{CCCCCCCCCCC}"), vals) is None
    result = run_rule(rule(exclusive, "#{AAAAAAAAAAA}", "#{BBBBBBBBBBB}"), vals)
    assert result is not None and result["operator"] == "exclusive_pair"


def test_rule_with_attribute_option_combo() -> None:
    r = rule("equal_to", "#{AAAAAAAAAAA.cocMale0001.aocOther001}", "5", left_mvs="NEVER_SKIP")
    assert run_rule(r, VALUES, aoc=AOC2) is None
    assert run_rule(r, VALUES, aoc=AOC1) is not None  # operand is for another AOC -> 0 != 5


def test_broken_rules_raise_value_error() -> None:
    with pytest.raises(ValueError):
        run_rule(rule("between", "1", "2"), VALUES)
    with pytest.raises(ValueError):
        run_rule(rule("equal_to", "1 +", "2"), VALUES)
    with pytest.raises(ValueError):
        run_rule({"operator": "equal_to", "leftSide": {}, "rightSide": {"expression": "1"}},
                 VALUES)
    with pytest.raises(ValueError):
        run_rule(rule("equal_to", "1", "2", left_mvs="SOMETIMES"), VALUES)
    with pytest.raises(ValueError):
        run_rule(rule("equal_to", "C{kConstant01}", "2"), VALUES)


# --------------------------------------------------------------------------- fuzz


_ATOMS = ["1", "0", "2.5", ".5", "1e3", "#{AAAAAAAAAAA}", "#{ZZZZZZZZZZZ.cocMale0001}",
          "#{BBBBBBBBBBB.cocMale0001.aocDefault1}", "#{AAAAAAAAAAA.*.aocOther001}",
          "C{kConstant01}", "true", "false", "null"]
_BINOPS = ["+", "-", "*", "/", "%", "^", "<", ">", "<=", ">=", "==", "!=", "&&", "||", " and ",
           " or "]


def _random_expr(rng: random.Random, depth: int = 0) -> str:
    """A mostly well-formed expression (types may still clash)."""
    roll = rng.random()
    if depth > 4 or roll < 0.3:
        return rng.choice(_ATOMS)
    if roll < 0.6:
        op = rng.choice(_BINOPS)
        return f"{_random_expr(rng, depth + 1)}{op}{_random_expr(rng, depth + 1)}"
    if roll < 0.7:
        return rng.choice(["-", "+", "!", "not "]) + _random_expr(rng, depth + 1)
    if roll < 0.8:
        return f"({_random_expr(rng, depth + 1)})"
    name = rng.choice(["if", "isNull", "isNotNull", "firstNonNull", "greatest", "least"])
    n = {"if": 3, "isNull": 1, "isNotNull": 1}.get(name, rng.randint(1, 3))
    return f"{name}({', '.join(_random_expr(rng, depth + 1) for _ in range(n))})"


def _mutate(rng: random.Random, s: str) -> str:
    chars = list(s)
    for _ in range(rng.randint(1, 3)):
        pos = rng.randint(0, len(chars))
        if chars and rng.random() < 0.5:
            del chars[min(pos, len(chars) - 1)]
        else:
            chars.insert(pos, rng.choice("(){},.#*+-/<>=!&|^% \n\u00a0x9১"))
    return "".join(chars)


def test_fuzz_parser_and_evaluator_only_raise_value_error() -> None:
    rng = random.Random(2024)
    parsed = evaluated = 0
    for i in range(700):
        expr = _random_expr(rng)
        if i % 3 == 1:
            expr = _mutate(rng, expr)
        elif i % 7 == 2:
            expr = "".join(chr(rng.randint(0, 0x3000)) for _ in range(rng.randint(0, 12)))
        try:
            tree = parse(expr)
        except ValueError:
            continue
        parsed += 1
        for strategy in ("NEVER_SKIP", "SKIP_IF_ANY_VALUE_MISSING", "SKIP_IF_ALL_VALUES_MISSING"):
            try:
                result = evaluate(tree, VALUES, {K: 3.0}, strategy=strategy, aoc=AOC1)
            except ValueError:
                continue
            evaluated += 1
            assert result is None or isinstance(result, float)
    assert parsed > 300 and evaluated > 150
