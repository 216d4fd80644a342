"""DHIS2 ``filter=property:operator:value`` over in-memory JSON documents.

Each filter is compiled once into a clause; :func:`parse_filters` combines the clauses with
the root junction (``AND`` by default, ``OR`` with ``rootJunction=OR``) into a
:class:`Predicate` that is then called once per document.

Property paths are dotted (``access.data.read``, ``parent.level``, ``dataSets.id``). A step
through a list visits every element, and a step into a ``{"id"}`` reference stub that lacks
the property resolves the stub through ``lookup``. The path yields every value it reaches;
a positive operator matches when ANY of them matches. A negated operator (``!eq``, ``ne``,
``!like``, ``!in``, ``!token``, ``!null``, ``!empty``...) is the exact complement of its
positive form, so ``dataSets.id:!eq:x`` means "no data set has id x".
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, TypeVar

from appliance.dhis2.fields import Lookup, get_prop
from appliance.errors import BadRequest

__all__ = ["Predicate", "parse_filters", "resolve_path", "parse_path"]

# Operator -> (kind, negated, kind parameter).
_OPERATORS: dict[str, tuple[str, bool, str]] = {
    "eq": ("eq", False, ""),
    "!eq": ("eq", True, ""),
    "ne": ("eq", True, ""),
    "neq": ("eq", True, ""),
    "ieq": ("ieq", False, ""),
    "!ieq": ("ieq", True, ""),
    "like": ("like", False, "any"),
    "!like": ("like", True, "any"),
    "$like": ("like", False, "start"),
    "!$like": ("like", True, "start"),
    "like$": ("like", False, "end"),
    "!like$": ("like", True, "end"),
    "ilike": ("ilike", False, "any"),
    "!ilike": ("ilike", True, "any"),
    "$ilike": ("ilike", False, "start"),
    "startsWith": ("ilike", False, "start"),
    "!$ilike": ("ilike", True, "start"),
    "ilike$": ("ilike", False, "end"),
    "endsWith": ("ilike", False, "end"),
    "!ilike$": ("ilike", True, "end"),
    "in": ("in", False, ""),
    "!in": ("in", True, ""),
    "null": ("null", False, ""),
    "!null": ("null", True, ""),
    "empty": ("empty", False, ""),
    "!empty": ("empty", True, ""),
    "gt": ("cmp", False, "gt"),
    "ge": ("cmp", False, "ge"),
    "gte": ("cmp", False, "ge"),
    "lt": ("cmp", False, "lt"),
    "le": ("cmp", False, "le"),
    "lte": ("cmp", False, "le"),
    "token": ("token", False, ""),
    "!token": ("token", True, ""),
}
_NO_VALUE = frozenset({"null", "empty"})

# DHIS2's pseudo-property: one test against id, code, name and shortName, OR-ed.
_IDENTIFIABLE_PATHS: tuple[tuple[str, ...], ...] = (("id",), ("code",), ("name",), ("shortName",))

_SEGMENT = re.compile(r"\w+")
_TOKEN = re.compile(r"[^\W_]+")  # letters and digits, as DHIS2 tokenizes

D = TypeVar("D", bound=Mapping[str, Any])
Matcher = Callable[[object], bool]
Clause = Callable[[Mapping[str, object], "Lookup | None"], bool]


# ---------------------------------------------------------------------------------------------
# Paths


def parse_path(text: str, what: str = "property") -> tuple[str, ...]:
    """``"a.b.c"`` -> ``("a", "b", "c")``; BadRequest unless every step is a plain name."""
    segments = tuple(text.split("."))
    for seg in segments:
        if not _SEGMENT.fullmatch(seg):
            raise BadRequest(f"Invalid {what} path `{text}`")
    return segments


def _walk(node: Mapping[str, object], path: tuple[str, ...], i: int, lookup: Lookup | None,
          root: bool, out: list[object]) -> None:
    key = path[i]
    value = get_prop(node, key)
    if value is None and not root and lookup is not None and key != "id":
        uid = node.get("id")
        if isinstance(uid, str):  # a reference stub: the property lives in the full document
            full = lookup(uid)
            if full is not None:
                value = get_prop(full, key)
    if i == len(path) - 1:
        out.append(value)
    elif isinstance(value, Mapping):
        _walk(value, path, i + 1, lookup, False, out)
    elif isinstance(value, list):
        for item in value:  # ANY element: collect from each
            if isinstance(item, Mapping):
                _walk(item, path, i + 1, lookup, False, out)
    else:
        out.append(None)  # the path stops early: the property is absent


def resolve_path(obj: Mapping[str, object], path: tuple[str, ...],
                 lookup: Lookup | None = None) -> list[object]:
    """Every value ``path`` reaches in ``obj`` (``None`` where a step is missing).

    A terminal list is returned as one value (operators decide how to treat it).
    """
    if len(path) == 1:  # the common case, without recursion
        return [get_prop(obj, path[0])]
    out: list[object] = []
    _walk(obj, path, 0, lookup, True, out)
    return out


# ---------------------------------------------------------------------------------------------
# Value parsing


def _as_bool(text: str) -> bool | None:
    low = text.strip().lower()
    return True if low == "true" else False if low == "false" else None


def _as_number(text: str) -> float | None:
    try:
        number = float(text)
    except ValueError:
        return None
    return number if number == number else None  # NaN never compares equal


def _as_int(text: str) -> int | None:
    text = text.strip()
    return int(text) if text.isascii() and text.isdigit() and len(text) < 10 else None


def _as_datetime(text: str) -> datetime | None:
    """ISO-8601 date or date-time (naive, or aware converted to naive UTC), else None."""
    if len(text) < 10 or not text[:4].isdigit() or text[4] != "-":
        return None
    try:
        parsed = datetime.fromisoformat(text)
        if parsed.tzinfo is not None:
            parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    except (ValueError, OverflowError):  # not a date, or shifted past year 1..9999
        return None
    return parsed


def _parse_in(arg: str, op: str) -> list[str]:
    text = arg.strip()
    if text.startswith("[") != text.endswith("]"):
        raise BadRequest(f"Invalid argument `{arg}` for {op} operator.")
    if text.startswith("["):
        text = text[1:-1]
    items = [item.strip() for item in text.split(",")]
    items = [item for item in items if item]
    if not items:
        raise BadRequest(f"Invalid argument `{arg}` for {op} operator.")
    return items


# ---------------------------------------------------------------------------------------------
# Matchers: each answers "does this one (non-null) value match the positive operator?"


def _any_item(items: list[object], test: Matcher) -> bool:
    return any(test(item) for item in items if item is not None)


def _eq_matcher(arg: str, ignore_case: bool) -> Matcher:
    arg_bool = _as_bool(arg)
    arg_num = _as_number(arg)
    arg_int = _as_int(arg)
    arg_low = arg.lower()

    def test(value: object) -> bool:
        if isinstance(value, str):
            return value.lower() == arg_low if ignore_case else value == arg
        if isinstance(value, bool):
            return value is arg_bool
        if isinstance(value, (int, float)):
            return arg_num is not None and value == arg_num
        if isinstance(value, list):
            # DHIS2 compares a collection's size with an integer; otherwise match any item.
            return len(value) == arg_int if arg_int is not None else _any_item(value, test)
        if isinstance(value, Mapping):  # a reference equals its id
            uid = value.get("id")
            return isinstance(uid, str) and test(uid)
        return False

    return test


def _like_matcher(arg: str, ignore_case: bool, mode: str) -> Matcher:
    needle = arg.lower() if ignore_case else arg

    def test(value: object) -> bool:
        if isinstance(value, str):
            hay = value.lower() if ignore_case else value
            if mode == "start":
                return hay.startswith(needle)
            if mode == "end":
                return hay.endswith(needle)
            return needle in hay
        if isinstance(value, list):
            return _any_item(value, test)
        return False

    return test


def _in_matcher(items: list[str]) -> Matcher:
    strings = frozenset(items)
    numbers = frozenset(n for n in map(_as_number, items) if n is not None)
    bools = frozenset(b for b in map(_as_bool, items) if b is not None)

    def test(value: object) -> bool:
        if isinstance(value, str):
            return value in strings
        if isinstance(value, bool):
            return value in bools
        if isinstance(value, (int, float)):
            return value in numbers
        if isinstance(value, list):
            return _any_item(value, test)
        if isinstance(value, Mapping):
            uid = value.get("id")
            return isinstance(uid, str) and uid in strings
        return False

    return test


def _cmp_matcher(arg: str, which: str) -> Matcher:
    arg_bool = _as_bool(arg)
    arg_num = _as_number(arg)
    arg_int = _as_int(arg)
    arg_dt = _as_datetime(arg)

    def sign(a: object, b: object) -> int:
        return (a > b) - (a < b)  # type: ignore[operator]

    def compare(value: object) -> int | None:
        if isinstance(value, bool):
            return None if arg_bool is None else sign(value, arg_bool)
        if isinstance(value, (int, float)):
            return None if arg_num is None else sign(value, arg_num)
        if isinstance(value, str):
            if arg_dt is not None:  # dates compare as dates, whatever their precision
                value_dt = _as_datetime(value)
                if value_dt is not None:
                    return sign(value_dt, arg_dt)
            return sign(value, arg)
        if isinstance(value, list) and arg_int is not None:  # DHIS2: collection size
            return sign(len(value), arg_int)
        return None

    def test(value: object) -> bool:
        c = compare(value)
        if c is None:
            return False
        if which == "gt":
            return c > 0
        if which == "ge":
            return c >= 0
        if which == "lt":
            return c < 0
        return c <= 0

    return test


def _token_matcher(arg: str) -> Matcher:
    # Like DHIS2's SQL form: every token of the argument occurs in the value, ignoring case.
    tokens = tuple(_TOKEN.findall(arg.lower()))

    def test(value: object) -> bool:
        if isinstance(value, str):
            low = value.lower()
            return all(t in low for t in tokens)
        if isinstance(value, list):
            return _any_item(value, test)
        return False

    return test


def _is_empty(value: object) -> bool:
    return value is None or (isinstance(value, (str, list, Mapping)) and len(value) == 0)


# ---------------------------------------------------------------------------------------------
# Clauses


def _values(obj: Mapping[str, object], paths: tuple[tuple[str, ...], ...],
            lookup: Lookup | None) -> list[object]:
    if len(paths) == 1:
        return resolve_path(obj, paths[0], lookup)
    out: list[object] = []
    for path in paths:
        out.extend(resolve_path(obj, path, lookup))
    return out


@lru_cache(maxsize=1024)
def _compile(text: str) -> Clause:
    parts = text.split(":", 2)
    if len(parts) < 2:
        raise BadRequest(f"Invalid filter => {text}")
    prop, op = parts[0].strip(), parts[1].strip()
    arg = parts[2] if len(parts) == 3 else ""
    if not prop:
        raise BadRequest(f"Invalid filter => {text}: missing property")
    spec = _OPERATORS.get(op)
    if spec is None:
        raise BadRequest(f"`{op}` is not a valid operator.")
    kind, negated, param = spec
    if kind not in _NO_VALUE and arg == "":
        raise BadRequest(f"Invalid filter => {text}: operator `{op}` needs a value")

    paths = _IDENTIFIABLE_PATHS if prop == "identifiable" else (parse_path(prop),)

    if kind == "null":
        def null_clause(obj: Mapping[str, object], lookup: Lookup | None) -> bool:
            present = any(v is not None for v in _values(obj, paths, lookup))
            return present if negated else not present
        return null_clause

    if kind == "empty":
        def empty_clause(obj: Mapping[str, object], lookup: Lookup | None) -> bool:
            values = [v for v in _values(obj, paths, lookup) if v is not None]
            # Missing counts as empty: the hub's documents may omit empty collections.
            empty = not values or any(_is_empty(v) for v in values)
            return not empty if negated else empty
        return empty_clause

    matcher: Matcher
    if kind in ("eq", "ieq"):
        matcher = _eq_matcher(arg, ignore_case=kind == "ieq")
    elif kind in ("like", "ilike"):
        matcher = _like_matcher(arg, ignore_case=kind == "ilike", mode=param)
    elif kind == "in":
        matcher = _in_matcher(_parse_in(arg, op))
    elif kind == "cmp":
        matcher = _cmp_matcher(arg, param)
    else:
        matcher = _token_matcher(arg)

    if len(paths) == 1 and len(paths[0]) == 1:
        key = paths[0][0]

        def top_clause(obj: Mapping[str, object], lookup: Lookup | None) -> bool:
            value = get_prop(obj, key)  # fast path: one top-level property
            hit = value is not None and matcher(value)
            return not hit if negated else hit
        return top_clause

    def path_clause(obj: Mapping[str, object], lookup: Lookup | None) -> bool:
        hit = _any_item(_values(obj, paths, lookup), matcher)
        return not hit if negated else hit
    return path_clause


class Predicate:
    """Compiled filters: ``predicate(doc, lookup) -> bool``."""

    __slots__ = ("clauses", "junction")

    def __init__(self, clauses: Sequence[Clause], junction: str = "AND") -> None:
        self.clauses = tuple(clauses)
        self.junction = junction

    @property
    def is_trivial(self) -> bool:
        """True when there is no filter at all (every document matches)."""
        return not self.clauses

    def __call__(self, obj: Mapping[str, object], lookup: Lookup | None = None) -> bool:
        if not self.clauses:
            return True
        if self.junction == "OR":
            return any(c(obj, lookup) for c in self.clauses)
        return all(c(obj, lookup) for c in self.clauses)

    def select(self, objs: Iterable[D], lookup: Lookup | None = None) -> list[D]:
        """The documents that match, in their original order."""
        if not self.clauses:
            return list(objs)
        return [o for o in objs if self(o, lookup)]


def parse_filters(filters: Sequence[str] | None, root_junction: str | None = "AND") -> Predicate:
    """Compile ``filter=`` values; BadRequest on malformed filters or junction."""
    if root_junction is not None and not isinstance(root_junction, str):
        raise BadRequest(f"Invalid rootJunction `{root_junction}`; expected AND or OR")
    junction = (root_junction or "AND").strip().upper()
    if junction not in ("AND", "OR"):
        raise BadRequest(f"Invalid rootJunction `{root_junction}`; expected AND or OR")
    if isinstance(filters, str):  # one filter passed bare: do not iterate its characters
        filters = [filters]
    clauses = [_compile(f) if isinstance(f, str) else _compile_bad(f) for f in filters or ()]
    return Predicate(clauses, junction)


def _compile_bad(value: object) -> Clause:
    raise BadRequest(f"Invalid filter => {value!r}")
