"""Bad input always gets a clear WebMessage with a proper status, never a 500, and never
changes stored data."""

from __future__ import annotations

import gzip
from typing import Any

import aiohttp
import pytest

from tests.conftest import ADMIN, RunningHub, basic


def _count(hub: RunningHub) -> tuple[int, int]:
    return hub.store.read_sync(lambda c: (
        c.execute("SELECT count(*) FROM datavalue").fetchone()[0],
        c.execute("SELECT count(*) FROM audit").fetchone()[0]))


async def _expect(r: aiohttp.ClientResponse, status: int, words: str = "") -> dict[str, Any]:
    assert r.status == status, await r.text()
    assert r.content_type == "application/json"
    body = await r.json()
    assert body["httpStatusCode"] == status and body["status"] == "ERROR"
    assert isinstance(body["message"], str) and body["message"]
    assert "Traceback" not in body["message"]
    if words:
        assert words.lower() in body["message"].lower(), body["message"]
    return body


POSTS = [
    ("application/json", b"{not json", 400, "not valid JSON"),
    ("application/json", b'{"dataValues": "nope"}', 400, "must be an array"),
    ("application/json", b'{"dataValues": [1, 2]}', 400, "must be an object"),
    ("application/json", b"[[[", 400, "not valid JSON"),
    ("application/json", b'"just a string"', 400, "JSON object"),
    ("application/json", b"", 400, "empty"),
    ("application/csv", b"\xff\xfe\x00bad", 400, "UTF-8"),
    ("application/csv", b"a,b\n1,2\n", 400, "header"),
    ("application/xml", b"<dataValueSet/>", 415, "XML"),
    ("image/png", b"\x89PNG", 415, "not supported"),
]


@pytest.mark.parametrize("ctype, body, status, words", POSTS)
async def test_bad_data_value_set_bodies(hub: RunningHub, http: aiohttp.ClientSession,
                                         ctype: str, body: bytes, status: int,
                                         words: str) -> None:
    before = _count(hub)
    async with http.post(hub.api("dataValueSets"), data=body,
                         headers={**ADMIN, "Content-Type": ctype}) as r:
        await _expect(r, status, words)
    assert _count(hub) == before


async def test_oversized_body(hub: RunningHub, http: aiohttp.ClientSession) -> None:
    big = b'{"dataValues": [' + b'{"dataElement":"x"},' * 2_000_000 + b"{}]}"
    async with http.post(hub.api("dataValueSets"), data=big,
                         headers={**ADMIN, "Content-Type": "application/json"}) as r:
        await _expect(r, 413, "too large")


async def test_gzip_bomb_is_refused(hub: RunningHub, http: aiohttp.ClientSession) -> None:
    bomb = gzip.compress(b" " * (64 * 1024 * 1024))
    async with http.post(hub.api("dataValueSets"), data=bomb,
                         headers={**ADMIN, "Content-Type": "application/json",
                                  "Content-Encoding": "gzip"}) as r:
        assert r.status in (400, 413)
        assert (await r.json())["status"] == "ERROR"


@pytest.mark.parametrize("path, status", [
    ("nosuchthing", 404), ("dataElements/nosuchuid01", 404), ("system/nope", 404),
    ("dataStore/nons/nokey", 404),
])
async def test_unknown_paths(hub: RunningHub, http: aiohttp.ClientSession, path: str,
                             status: int) -> None:
    async with http.get(hub.api(path), headers=ADMIN) as r:
        await _expect(r, status)


async def test_wrong_method(hub: RunningHub, http: aiohttp.ClientSession) -> None:
    async with http.put(hub.api("system/info"), headers=ADMIN) as r:
        await _expect(r, 405)


@pytest.mark.parametrize("query", [
    {"fields": "id,name[code"}, {"fields": "id]"}, {"filter": "name:eq"},
    {"filter": "name:bogus:x"}, {"filter": "level"}, {"order": "name:sideways"},
    {"pageSize": "0"}, {"page": "-1"}, {"pageSize": "lots"}, {"filter": "id:in:[a,b"},
])
async def test_bad_query_syntax(hub: RunningHub, http: aiohttp.ClientSession,
                                query: dict[str, str]) -> None:
    async with http.get(hub.api("dataElements"), params=query, headers=ADMIN) as r:
        await _expect(r, 400)


async def test_wrong_and_missing_credentials(hub: RunningHub, http: aiohttp.ClientSession) -> None:
    async with http.post(hub.api("dataValueSets"), json={"dataValues": []}) as r:
        await _expect(r, 401)
    async with http.post(hub.api("dataValueSets"), json={"dataValues": []},
                         headers=basic("admin", "bad")) as r:
        await _expect(r, 401)


async def test_bad_parameters(hub: RunningHub, http: aiohttp.ClientSession) -> None:
    async with http.post(hub.api("dataValueSets"), json={"dataValues": []},
                         params={"importStrategy": "EXPLODE"}, headers=ADMIN) as r:
        await _expect(r, 400, "importStrategy")
    async with http.post(hub.api("dataValueSets"), json={"dataValues": []},
                         params={"dryRun": "maybe"}, headers=ADMIN) as r:
        await _expect(r, 400, "dryRun")
    async with http.get(hub.api("dataValueSets"), params={"dataSet": "x"}, headers=ADMIN) as r:
        await _expect(r, 409)
    async with http.get(hub.api("system/id"), params={"limit": "many"}, headers=ADMIN) as r:
        await _expect(r, 400)


async def test_unknown_fields_in_payload_are_ignored_not_fatal(
        hub: RunningHub, http: aiohttp.ClientSession) -> None:
    # DHIS2's JSON reader ignores unknown properties; so does the hub (no 500, no data change)
    async with http.post(hub.api("dataValueSets"), headers=ADMIN,
                         json={"surprise": {"nested": [1]}, "dataValues": [
                             {"dataElement": "nosuchde001", "period": "202501",
                              "orgUnit": "x", "value": "1", "extra": True}]}) as r:
        assert r.status == 409
        body = await r.json()
        assert body["response"]["conflicts"][0]["errorCode"] == "E7610"
