"""A small recursive JSON shape comparer for contract tests against real DHIS2 replies.

The fixture (a real server reply) is reduced to a :class:`Shape`: for objects, the keys present
in *every* sample (so a key only some fixture items carry counts as optional); for arrays, the
merged shape of all their elements; for scalars, the JSON types seen and, for strings, whether
every sample was a timestamp or a date. :func:`compare` then checks that a hub reply has every
required key with a JSON type the fixture used, recursively, and that timestamps and dates are
written as the Android SDK parses them (``yyyy-MM-ddTHH:mm:ss.SSS`` and ``yyyy-MM-dd``).

Paths name places in a document: ``dataSets[].dataSetElements[].dataElement.id``. Ignore
patterns are such paths, where ``*`` stands for any run of characters.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

# What a real server writes (data value sets carry a zone suffix on some versions) ...
FIXTURE_TIMESTAMP = re.compile(
    r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}(?:Z|[+-]\d{2}:?\d{2})?$")
# ... and what the hub must write: the SDK's DateUtils.DATE_FORMAT, no zone (NOTES §7).
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}$")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    raise TypeError(f"not a JSON value: {value!r}")


@dataclass
class Shape:
    types: set[str] = field(default_factory=set)
    keys: dict[str, Shape] = field(default_factory=dict)  # required keys of objects
    items: Shape | None = None  # element shape of arrays (None: no fixture elements)
    fmt: str | None = None  # "timestamp" or "date" when every fixture string was one


def shape_of(samples: Sequence[Any]) -> Shape:
    """The shape every sample shares."""
    shape = Shape(types={json_type(s) for s in samples})
    objects = [s for s in samples if isinstance(s, dict)]
    if objects:
        common = set(objects[0]).intersection(*objects[1:])
        shape.keys = {k: shape_of([o[k] for o in objects]) for k in sorted(common)}
    arrays = [s for s in samples if isinstance(s, list)]
    elements = [e for a in arrays for e in a]
    if elements:
        shape.items = shape_of(elements)
    strings = [s for s in samples if isinstance(s, str)]
    if strings and all(FIXTURE_TIMESTAMP.match(s) for s in strings):
        shape.fmt = "timestamp"
    elif strings and all(DATE.match(s) for s in strings):
        shape.fmt = "date"
    return shape


def paths(shape: Shape, prefix: str = "") -> Iterable[str]:
    """Every path the shape has (for checking that ignore patterns name real fixture fields)."""
    for k, sub in shape.keys.items():
        p = f"{prefix}.{k}" if prefix else k
        yield p
        yield from paths(sub, p)
    if shape.items is not None:
        yield from paths(shape.items, f"{prefix}[]")


def _match(path: str, pattern: str) -> bool:
    return re.fullmatch(re.escape(pattern).replace(r"\*", ".*"), path) is not None


def _ignored(path: str, ignore: Sequence[str]) -> bool:
    return any(_match(path, pat) for pat in ignore)


def compare(actual: Any, shape: Shape, ignore: Sequence[str] = (), path: str = "") -> list[str]:
    """Problems with ``actual`` against the fixture ``shape``; an empty list means it conforms."""
    if path and _ignored(path, ignore):
        return []
    where = path or "<root>"
    t = json_type(actual)
    non_null = shape.types - {"null"}
    if t == "null":
        if "null" in shape.types or not non_null:
            return []
        return [f"{where}: null where the fixture has {'/'.join(sorted(non_null))}"]
    # A whole number fits wherever the fixture has numbers (a Double field reads 5 as well as
    # 2.5); a fraction only where the fixture has one (an Int field cannot read 15.0).
    if t == "integer" and "number" in non_null:
        t = "number"
    if non_null and t not in non_null:
        return [f"{where}: {t} where the fixture has {'/'.join(sorted(non_null))} "
                f"(value {actual!r:.60})"]
    problems: list[str] = []
    if t == "string" and shape.fmt == "timestamp" and not TIMESTAMP.match(actual):
        problems.append(f"{where}: {actual!r} is not yyyy-MM-ddTHH:mm:ss.SSS")
    if t == "string" and shape.fmt == "date" and not DATE.match(actual):
        problems.append(f"{where}: {actual!r} is not yyyy-MM-dd")
    if t == "object":
        for k, sub in shape.keys.items():
            p = f"{path}.{k}" if path else k
            if _ignored(p, ignore):
                continue
            if k not in actual:
                problems.append(f"{p}: missing")
            else:
                problems.extend(compare(actual[k], sub, ignore, p))
    if t == "array" and shape.items is not None:
        for item in actual:
            problems.extend(compare(item, shape.items, ignore, f"{path}[]"))
    return problems


def conforms(actual: Any, fixture: Any, ignore: Sequence[str] = ()) -> list[str]:
    """Check ``actual`` against a fixture document; also that every ignore pattern is used."""
    shape = shape_of([fixture])
    known = list(paths(shape))
    unused = [pat for pat in ignore if not any(_match(p, pat) for p in known)]
    problems = [f"ignore pattern {pat!r} names no fixture field" for pat in unused]
    # report each problem once (arrays repeat them per element)
    return problems + list(dict.fromkeys(compare(actual, shape, ignore)))
