"""DHIS2's metadata query language over in-memory JSON documents.

The one import for handlers::

    spec = parse_fields(request.query.get("fields"))
    pred = parse_filters(request.query.getall("filter", []), request.query.get("rootJunction"))
    keys = parse_order(request.query.get("order"))
    docs = sort(pred.select(docs, lookup), keys, lookup)
    page, pager = paginate(docs, paging=..., page=..., page_size=...)
    body = {"pager": pager, "dataSets": project_all(page, spec, lookup)}

Everything that reads user input raises :class:`appliance.errors.BadRequest` (and nothing
else) when that input is malformed. Parse once per request, evaluate per document.

- ``fields``: :mod:`appliance.dhis2.fields`;
- ``filter`` / ``rootJunction``: :mod:`appliance.dhis2.filters`;
- ``order`` and ``paging``/``page``/``pageSize``: here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from appliance.dhis2.fields import (
    DEFAULT_FIELDS,
    Field,
    FieldSpec,
    Lookup,
    Transformer,
    get_prop,
    parse_fields,
    project,
    project_all,
)
from appliance.dhis2.filters import Predicate, parse_filters, parse_path, resolve_path
from appliance.errors import BadRequest

__all__ = [
    "DEFAULT_FIELDS",
    "DEFAULT_PAGE_SIZE",
    "Field",
    "FieldSpec",
    "Lookup",
    "OrderKey",
    "Predicate",
    "Transformer",
    "get_prop",
    "paginate",
    "parse_fields",
    "parse_filters",
    "parse_order",
    "project",
    "project_all",
    "resolve_path",
    "sort",
]

DEFAULT_PAGE_SIZE = 50
_MAX_INT = 2**31 - 1  # DHIS2 binds page/pageSize to a Java int

T = TypeVar("T")
D = TypeVar("D", bound=Mapping[str, Any])

# ---------------------------------------------------------------------------------------------
# order=


@dataclass(frozen=True, slots=True)
class OrderKey:
    path: tuple[str, ...]
    descending: bool = False
    ignore_case: bool = False

    @property
    def name(self) -> str:
        """The dotted property name, as written in ``order=``."""
        return ".".join(self.path)

    @property
    def direction(self) -> str:
        return ("i" if self.ignore_case else "") + ("desc" if self.descending else "asc")


_DIRECTIONS = {
    "asc": (False, False),
    "desc": (True, False),
    "iasc": (False, True),
    "idesc": (True, True),
}


def parse_order(expr: str | None) -> list[OrderKey]:
    """``"name:asc,code:idesc,id"`` -> order keys (default direction ``asc``)."""
    if expr is None:
        return []
    if not isinstance(expr, str):
        raise BadRequest("Invalid order: expected a string")
    keys: list[OrderKey] = []
    seen: set[tuple[str, ...]] = set()
    for item in expr.split(","):
        item = item.strip()
        if not item:
            continue  # tolerate ``name,`` and ``a,,b`` like DHIS2 does
        parts = item.split(":")
        if len(parts) > 2:
            raise BadRequest(f"Invalid order `{item}`; expected property[:asc|desc|iasc|idesc]")
        path = parse_path(parts[0].strip(), "order property")
        direction = parts[1].strip().lower() if len(parts) == 2 else "asc"
        flags = _DIRECTIONS.get(direction)
        if flags is None:
            raise BadRequest(f"Invalid order direction `{parts[1]}` in `{item}`; "
                             "expected one of asc, desc, iasc, idesc")
        if path in seen:
            continue  # the first mention of a property decides its direction
        seen.add(path)
        keys.append(OrderKey(path, *flags))
    return keys


def _sort_value(obj: Mapping[str, object], key: OrderKey, lookup: Lookup | None
                ) -> tuple[int, Any] | None:
    """A comparable ``(type rank, value)`` for ``obj``, or ``None`` when missing."""
    values = resolve_path(obj, key.path, lookup) if len(key.path) > 1 else [
        get_prop(obj, key.path[0])]
    for value in values:
        if value is None or isinstance(value, (Mapping, list)):
            continue  # objects and collections have no order; treat as missing
        if isinstance(value, (bool, int, float)):
            if value != value:  # NaN
                continue
            return (0, value)  # numbers (and booleans) before strings
        text = str(value)
        return (1, text.lower() if key.ignore_case else text)
    return None


def sort(objs: Sequence[D], keys: Sequence[OrderKey], lookup: Lookup | None = None) -> list[D]:
    """A new list ordered by ``keys``; ties keep their input order; missing values go last."""
    out = list(objs)
    # Stable sorts from the least to the most significant key give the combined order.
    for key in reversed(keys):
        present: list[tuple[tuple[int, Any], D]] = []
        missing: list[D] = []
        for obj in out:
            value = _sort_value(obj, key, lookup)
            if value is None:
                missing.append(obj)
            else:
                present.append((value, obj))
        present.sort(key=lambda pair: pair[0], reverse=key.descending)  # reverse stays stable
        out = [obj for _, obj in present] + missing
    return out


# ---------------------------------------------------------------------------------------------
# paging=, page=, pageSize=

_TRUE = frozenset({"true", "on", "yes", "1"})  # what Spring accepts for a boolean parameter
_FALSE = frozenset({"false", "off", "no", "0"})


def _parse_paging(value: str | bool | None) -> bool:
    if value is None or isinstance(value, bool):
        return value is not False
    if isinstance(value, str):
        low = value.strip().lower()
        if not low or low in _TRUE:
            return True
        if low in _FALSE:
            return False
    raise BadRequest(f"Invalid value `{value}` for paging; expected true or false")


def _parse_positive(value: str | int | None, name: str, default: int) -> int:
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str):
        text = value.strip()
        if text.isascii() and text.isdigit() and len(text) <= 10:
            number = int(text)
    if number is None:
        raise BadRequest(f"Invalid value `{value}` for {name}; expected a positive integer")
    if number < 1:
        raise BadRequest(f"{name} must be greater than or equal to 1, got {number}")
    if number > _MAX_INT:
        raise BadRequest(f"{name} must be at most {_MAX_INT}, got {number}")
    return number


def paginate(objs: Sequence[T], *, paging: str | bool | None = True,
             page: str | int | None = 1, page_size: str | int | None = DEFAULT_PAGE_SIZE
             ) -> tuple[list[T], dict[str, int] | None]:
    """One page of ``objs`` and its pager, or every object and ``None`` when paging is off.

    The pager is ``{"page", "pageCount", "total", "pageSize"}``; the caller adds
    ``nextPage``/``prevPage`` URLs. A page past the end is empty (the pager still reports
    the requested page). ``pageCount`` is at least 1, as in DHIS2.
    """
    if not _parse_paging(paging):
        return list(objs), None
    number = _parse_positive(page, "page", 1)
    size = _parse_positive(page_size, "pageSize", DEFAULT_PAGE_SIZE)
    total = len(objs)
    page_count = max(1, -(-total // size))
    start = (number - 1) * size
    items = list(objs[start:start + size]) if start < total else []
    return items, {"page": number, "pageCount": page_count, "total": total, "pageSize": size}
