"""Hostile input: the query parsers raise BadRequest or succeed, and never anything else.

Random strings are drawn from the characters that matter to the grammars (brackets,
separators, operators, transformer marks, unicode, whitespace) plus fragments of valid
syntax, with a fixed seed so a failure is reproducible. Whatever parses is then evaluated
against the fixture documents, which must not raise either.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from functools import partial

import pytest

from appliance.dhis2.query import (
    paginate,
    parse_fields,
    parse_filters,
    parse_order,
    project_all,
    sort,
)
from appliance.errors import BadRequest
from tests.dhis2.test_query import ALL_DOCS, lookup

SEED = 20240601
ROUNDS = 400

ALPHABET = list("abcdeid.,:;[]()!*~|$%^&<> \t\n_-+=?/\\'\"{}#@0123456789") + [
    "é", "ß", "৫", "\u200b", "\x00", "😀"]
FRAGMENTS = [
    "id", "name", "displayName", "parent", "dataSets", "categories", "access", "data", "read",
    "eq", "!eq", "ne", "like", "!like", "$ilike", "ilike$", "in", "!in", "null", "!null",
    "empty", "!empty", "gt", "le", "token", "identifiable", "true", "false", "[", "]", "(",
    ")", ",", ":", "::", "~", "~rename(", "~size", "~pluck", "~keyBy(", ";", "!", "*", ":owner",
    ":all", ":identifiable", ":nameable", "asc", "desc", "iasc", "idesc", ".", "3", "-1",
    "2024-01-01T00:00:00", "[a,b]", "isEmpty", "isNotEmpty",
]


def random_text(rng: random.Random) -> str:
    parts: list[str] = []
    for _ in range(rng.randint(0, 12)):
        if rng.random() < 0.5:
            parts.append(rng.choice(FRAGMENTS))
        else:
            parts.append("".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 4))))
    return "".join(parts)


def only_bad_request(action: Callable[[], object]) -> bool:
    """Run ``action``; True if it succeeded, False if it raised BadRequest."""
    try:
        action()
    except BadRequest as err:
        assert err.message and err.http_status == 400
        return False
    return True


@pytest.mark.parametrize("salt", range(4))
def test_fuzz_fields(salt: int) -> None:
    rng = random.Random(SEED + salt)
    ok = 0
    for _ in range(ROUNDS):
        text = random_text(rng)
        try:
            spec = parse_fields(text)
        except BadRequest:
            continue
        ok += 1
        project_all(ALL_DOCS, spec, lookup)  # must not raise
        project_all(ALL_DOCS, spec, None)
    assert ok > 0  # the generator does reach the success path


@pytest.mark.parametrize("salt", range(4))
def test_fuzz_filters(salt: int) -> None:
    rng = random.Random(SEED + 100 + salt)
    ok = 0
    for _ in range(ROUNDS):
        texts = [random_text(rng) if rng.random() < 0.5 else ":".join(
                     (rng.choice(FRAGMENTS[:8]), rng.choice(FRAGMENTS[8:25]), random_text(rng)))
                 for _ in range(rng.randint(1, 3))]
        junction = rng.choice(["AND", "OR", "and", None, "", "XOR"])
        try:
            pred = parse_filters(texts, junction)
        except BadRequest:
            continue
        ok += 1
        for doc in ALL_DOCS:
            pred(doc, lookup)
            pred(doc, None)
    assert ok > 0


def test_fuzz_structured_filters() -> None:
    # Well-formed property:operator:value triples with random parts exercise evaluation.
    rng = random.Random(SEED + 200)
    props = ["id", "name", "level", "isDefault", "parent.name", "dataSets.id", "access.data.read",
             "userRoles.authorities", "categories", "geometry.coordinates", "nothing.deeper",
             "identifiable", "openingDate", "timelyDays"]
    ops = ["eq", "!eq", "ne", "neq", "ieq", "like", "!like", "$like", "!$like", "like$",
           "!like$", "ilike", "!ilike", "$ilike", "!$ilike", "ilike$", "!ilike$", "in", "!in",
           "null", "!null", "empty", "!empty", "gt", "ge", "lt", "le", "token", "!token"]
    values = ["x", "1", "-1", "3.5", "true", "false", "[a,b]", "[1,2]", "2024-01-01", "Bo",
              "ALL", "nan", "inf", "1e400", "😀", "[", "[]", "a:b:c", " ", "2024-13-45",
              "9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00"]
    for _ in range(ROUNDS * 3):
        text = f"{rng.choice(props)}:{rng.choice(ops)}:{rng.choice(values)}"
        if only_bad_request(partial(parse_filters, [text])):
            pred = parse_filters([text])
            for doc in ALL_DOCS:
                assert isinstance(pred(doc, lookup), bool)


@pytest.mark.parametrize("salt", range(3))
def test_fuzz_order(salt: int) -> None:
    rng = random.Random(SEED + 300 + salt)
    ok = 0
    for _ in range(ROUNDS):
        text = random_text(rng)
        try:
            keys = parse_order(text)
        except BadRequest:
            continue
        ok += 1
        sort(ALL_DOCS, keys, lookup)
    assert ok > 0


def test_fuzz_paging() -> None:
    rng = random.Random(SEED + 400)
    pool: list[object] = [None, "", " ", "0", "1", "2", "-1", "abc", "1e3", "10", "true",
                          "false", "99999999999", 0, 1, 7, -3, True, False, 2**40, 1.5, [], "٣"]
    for _ in range(ROUNDS):
        args = {"paging": rng.choice(pool), "page": rng.choice(pool),
                "page_size": rng.choice(pool)}
        only_bad_request(partial(paginate, ALL_DOCS, **args))  # type: ignore[arg-type]


def test_parse_once_evaluate_many_is_fast() -> None:
    # ~5,000 documents per request on a Pi: filter + sort + page + project stays well under
    # a second here (generous bound; this is a smoke test, not a benchmark).
    docs = []
    for i in range(5000):
        docs.append({"id": f"ou{i:09d}", "name": f"Clinic {i}", "level": 1 + i % 5,
                     "path": f"/ImspTQPwCqd/O6uvpzGd5pu/x{i}", "parent": {"id": "O6uvpzGd5pu"},
                     "dataSets": [{"id": "lyLU2wR22tC"}], "access": {"data": {"read": True}}})
    pred = parse_filters(["path:like:O6uvpzGd5pu", "level:le:3", "access.data.read:eq:true",
                          "dataSets.id:in:[lyLU2wR22tC,x]"])
    keys = parse_order("name:idesc")
    spec = parse_fields("id,displayName,level,parent[id,name],dataSets[id]")
    start = time.perf_counter()
    selected = sort(pred.select(docs, lookup), keys, lookup)
    page, pager = paginate(selected, page_size=500)
    out = project_all(selected, spec, lookup)
    elapsed = time.perf_counter() - start
    assert pager is not None and pager["total"] == 3000 and len(page) == 500
    assert out[0]["parent"] == {"id": "O6uvpzGd5pu", "name": "Bo"}
    assert elapsed < 2.0, elapsed
