"""Data values as CSV on the wire (issue 15), the hub's side: refusals map back to the
right values in 2.41- and 2.43-shaped summaries in both formats, national's edits come
down whole, and a national that refuses or misreads CSV makes the hub fall back to JSON
without losing or duplicating anything. Real components: the stand-in on a real port,
real SQLite, and a small proxy in front of the stand-in that records what the hub sends
and plays the part of a national the stand-in is not (refusing CSV, answering as 2.43).
The stand-in's own CSV: tests/hub/test_dvs_csv.py."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

from appliance import demo
from appliance.dhis2 import csvformat
from appliance.store import datavalues as dv
from appliance.sync import wire
from tests.conftest import RunningHub, free_port

from .conftest import (
    AOC,
    PERIOD,
    RAMU,
    Pair,
    as_value,
    first_values,
    hub_edit,
    key_of,
    key_of_dict,
    national_post,
    national_rows,
    row,
)


def audit_counts(national: RunningHub) -> dict[str, list[str]]:
    rows = national.store.read_sync(lambda c: c.execute(
        "SELECT key, audit_type FROM audit WHERE entity='datavalue' ORDER BY id").fetchall())
    out: dict[str, list[str]] = {}
    for r in rows:
        out.setdefault(r["key"], []).append(r["audit_type"])
    return out


# -- a national in front of the stand-in --------------------------------------------------------------
@dataclass
class Seen:
    method: str
    path: str
    ctype: str
    body: bytes
    status: int = 0


@dataclass
class Proxy:
    url: str = ""
    mode: str = ""   # "", "refuse", "misread", "shuffle", "2.43"
    seen: list[Seen] = field(default_factory=list)

    def pushes(self) -> list[Seen]:
        return [s for s in self.seen if s.method == "POST" and s.path.endswith("/dataValueSets")]

    def pulls(self) -> list[Seen]:
        return [s for s in self.seen if s.method == "GET" and "/dataValueSets" in s.path]


def _summary_243(body: dict[str, Any]) -> dict[str, Any]:
    """A 2.41 import summary as 2.43 words it: values through SQL (imported always 0,
    updated every success) and the E80xx/E81xx codes."""
    resp = body.get("response") or {}
    counts = resp.get("importCount") or {}
    resp["importCount"] = {"imported": 0, "deleted": counts.get("deleted", 0),
                           "updated": counts.get("imported", 0) + counts.get("updated", 0),
                           "ignored": counts.get("ignored", 0)}
    codes = {"E7619": "E8122", "E7617": "E8011", "E7612": "E8107"}
    for c in resp.get("conflicts") or []:
        c["errorCode"] = codes.get(c.get("errorCode"), c.get("errorCode"))
    return body


def _shuffled(body: bytes) -> bytes:
    """The CSV with data element and org unit swapped: what a server reading the columns
    in another order would make of it."""
    lines = body.decode().split("\n")
    out = [lines[0]]
    for line in lines[1:]:
        cells = line.split(",")
        if len(cells) > 2:
            cells[0], cells[2] = cells[2], cells[0]
        out.append(",".join(cells))
    return "\n".join(out).encode()


@pytest.fixture
async def proxy(national: RunningHub) -> AsyncIterator[Proxy]:
    p = Proxy()
    session = aiohttp.ClientSession()

    async def handler(request: web.Request) -> web.StreamResponse:
        body = await request.read()  # aiohttp inflates the hub's Content-Encoding: gzip
        ctype = request.headers.get("Content-Type", "").split(";")[0]
        seen = Seen(request.method, request.path, ctype, body)
        p.seen.append(seen)
        csv_post = seen in p.pushes() and ctype == "application/csv"
        csv_get = request.method == "GET" and request.path.endswith("/dataValueSets.csv")
        if p.mode == "refuse" and csv_post:
            seen.status = 415
            return web.json_response({"httpStatus": "Unsupported Media Type",
                                      "httpStatusCode": 415, "status": "ERROR",
                                      "message": "Content type 'application/csv' not supported"},
                                     status=415)
        if p.mode == "refuse" and csv_get:
            seen.status = 406
            return web.json_response({"httpStatus": "Not Acceptable", "httpStatusCode": 406,
                                      "status": "ERROR", "message": "Not Acceptable"},
                                     status=406)
        if p.mode == "misread" and csv_post:
            seen.status = 409
            return web.json_response({
                "httpStatus": "Conflict", "httpStatusCode": 409, "status": "ERROR",
                "message": "An error occurred, please check import summary.",
                "response": {"responseType": "ImportSummary", "status": "ERROR",
                             "description": "The import process failed: Failed to read record",
                             "importCount": {"imported": 0, "updated": 0, "ignored": 0,
                                             "deleted": 0}, "conflicts": []}}, status=409)
        if p.mode == "shuffle" and csv_post:
            body = _shuffled(body)
        headers = {k: v for k, v in request.headers.items()
                   if k.lower() in ("authorization", "content-type", "accept")}
        async with session.request(request.method, national.url + request.path_qs, data=body,
                                   headers=headers) as up:
            data = await up.read()
            status, ctype_up = up.status, up.headers.get("Content-Type", "application/json")
        if p.mode == "2.43" and seen in p.pushes() and status in (200, 409):
            data = orjson.dumps(_summary_243(json.loads(data)))
        seen.status = status
        return web.Response(status=status, body=data, headers={"Content-Type": ctype_up})

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.2)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    p.url = f"http://127.0.0.1:{port}"
    try:
        yield p
    finally:
        await session.close()
        await runner.cleanup()


def _sync_state(pair: Pair) -> dict[str, str]:
    return dict(pair.hub.read_sync(lambda c: c.execute(
        "SELECT key, value FROM sync_state").fetchall()))


def _events(pair: Pair, code: str) -> list[Any]:
    return pair.hub.read_sync(lambda c: [r for r in c.execute(
        "SELECT * FROM sync_event ORDER BY id").fetchall() if code in (r["data"] or "")])


@pytest.mark.parametrize("style", ["2.41", "2.43"])
async def test_refusals_map_back_to_their_values(pair: Pair, proxy: Proxy, wire_format: str,
                                                 style: str) -> None:
    """Both formats, 2.41- and 2.43-shaped replies: the values national refused (in the
    middle of the chunk) are the ones marked rejected, with national's code; their
    neighbours are accepted."""
    proxy.mode = "" if style == "2.41" else "2.43"
    vs = first_values(8)
    other_ou = next(o["id"] for o in demo.national()["organisationUnits"]
                    if o.get("level") == 5 and RAMU not in o["path"])
    bad_type = key_of({**vs[3]})
    outside = (vs[5]["dataElement"], PERIOD, other_ou, vs[5]["categoryOptionCombo"], AOC)
    await hub_edit(pair.hub, [v for i, v in enumerate(vs) if i != 3] +
                   [as_value(bad_type, "lots")])
    pair.hub.write_sync(lambda tx: dv.import_values(tx, [dv.ValueRow(
        0, *outside, "5", None, None, None, False)], username="chcp"))
    engine = pair.new_engine(national__url=proxy.url)
    try:
        r = await engine.cycle()
    finally:
        await engine.close()
    assert r.ok, r.error
    assert r.push.accepted == 7 and r.push.rejected == 2
    push = proxy.pushes()
    assert len(push) == 1 and push[0].ctype == f"application/{wire_format}"
    sent = (csvformat.decode(push[0].body.decode()) if wire_format == "csv"
            else orjson.loads(push[0].body)["dataValues"])
    positions = [i for i, v in enumerate(sent)
                 if (v["dataElement"], v["orgUnit"], v["categoryOptionCombo"]) in (
                     (bad_type[0], bad_type[2], bad_type[3]), (outside[0], outside[2], outside[3]))]
    assert len(positions) == 2 and len(sent) == 9
    rejected = pair.hub.read_sync(lambda c: {r["key"]: r["error_code"] for r in c.execute(
        "SELECT key, error_code FROM sync_rejection")})
    codes = {"2.41": ("E7619", "E7617"), "2.43": ("E8122", "E8011")}[style]
    assert rejected == {"|".join(bad_type): codes[0], "|".join(outside): codes[1]}
    assert row(pair.hub, bad_type)["sync_state"] == "rejected"
    assert all(row(pair.hub, key_of(v))["sync_state"] == "synced"
               for i, v in enumerate(vs) if i != 3)
    assert _sync_state(pair).get(wire.REFUSED) is None


async def test_national_s_edits_come_down_whole(pair: Pair, proxy: Proxy, wire_format: str,
                                                http: aiohttp.ClientSession) -> None:
    """The pull, in both formats: values, comments, follow-ups, who stored them and
    deletions arrive as national holds them."""
    vs = first_values(4)
    await national_post(http, pair.national, [{**vs[0], "value": "31"}, {**vs[1], "value": "1"}])
    first = pair.new_engine(national__url=proxy.url)
    try:
        assert (await first.cycle()).ok  # the first two are known at the hub
    finally:
        await first.close()
    await national_post(http, pair.national, [
        {**vs[0], "value": "32", "comment": "recounted, twice", "followup": True},
        {**key_of_dict(vs[1]), "deleted": True},
        {**vs[2], "value": "33", "comment": "নতুন"}, {**vs[3], "value": "34"}])
    engine = pair.new_engine(national__url=proxy.url)
    try:
        r = await engine.cycle()
    finally:
        await engine.close()
    assert r.ok, r.error
    assert r.pulled_values >= 4
    assert {s.path.rsplit("/", 1)[1] for s in proxy.pulls()} == {
        "dataValueSets.csv" if wire_format == "csv" else "dataValueSets"}
    nat = national_rows(pair.national)
    for v in vs:
        hub_row = dict(row(pair.hub, key_of(v)))
        want = nat[key_of(v)]
        assert {k: hub_row[k] for k in ("value", "comment", "followup", "stored_by",
                                        "deleted")} == \
            {k: want[k] for k in ("value", "comment", "followup", "stored_by", "deleted")}
        assert hub_row["sync_state"] == "synced"
    assert dict(row(pair.hub, key_of(vs[0])))["followup"] == 1
    assert dict(row(pair.hub, key_of(vs[1])))["deleted"] == 1


@pytest.mark.default_wire  # the default is CSV: what it falls back from
@pytest.mark.parametrize("mode", ["refuse", "misread", "shuffle"])
async def test_a_national_that_cannot_take_csv_gets_json(pair: Pair, proxy: Proxy,
                                                         http: aiohttp.ClientSession,
                                                         mode: str) -> None:
    assert pair.engine.wire_format.csv  # the default
    proxy.mode = mode
    vs = first_values(45)
    await hub_edit(pair.hub, vs)
    await national_post(http, pair.national, [{**first_values(60)[50], "value": "77"}])
    engine = pair.new_engine(national__url=proxy.url, sync__chunk_values=20)
    try:
        r = await engine.cycle()
        assert r.ok, r.error
        assert r.pending == 0 and r.push.accepted == 45 and r.push.rejected == 0
        # national holds each value once: one CREATE, no second write
        nat = national_rows(pair.national)
        audits = audit_counts(pair.national)
        for v in vs:
            assert nat[key_of(v)]["value"] == v["value"]
            assert audits["|".join(key_of(v))] == ["CREATE"]
        assert row(pair.hub, key_of(first_values(60)[50]))["value"] == "77"  # pulled
        version = _sync_state(pair)[wire.REFUSED]
        assert version == "2.41.3" and not engine.wire_format.csv
        assert len(_events(pair, "csv-refused")) == 1
        from appliance.hub.events import event_words
        from appliance.i18n import Tr
        from appliance.store.synclog import event_log
        ev = next(e for e in pair.hub.read_sync(lambda c: event_log(c, 50))
                  if (e["data"] or {}).get("code") == "csv-refused")
        words, details = event_words(ev, Tr("bn", "bengali"))
        assert words.startswith("জাতীয় সার্ভার ডেটার মান CSV আকারে নেয় না") and \
            "refused CSV" in details
        csv_pushes = [s for s in proxy.pushes() if s.ctype == "application/csv"]
        if mode == "refuse":  # the pull comes first: its CSV refused, every chunk is JSON
            assert [s.status for s in proxy.pulls()][:2] == [406, 200] and not csv_pushes
        else:  # the pull took CSV; one chunk was misread, then JSON from then on
            assert all(s.status == 200 for s in proxy.pulls()) and len(csv_pushes) == 1
        # the next cycle goes straight to JSON
        proxy.seen.clear()
        await hub_edit(pair.hub, [{**vs[0], "value": "99"}])
        r = await engine.cycle()
        assert r.ok and r.push.accepted == 1
        assert {s.ctype for s in proxy.pushes()} == {"application/json"}
        assert not any(s.path.endswith(".csv") for s in proxy.seen)
    finally:
        await engine.close()
    # national upgraded (another version): CSV is tried again, and now it works
    pair.hub.write_sync(lambda tx: tx.execute(
        "UPDATE sync_state SET value='2.40.0' WHERE key=?", (wire.REFUSED,)))
    proxy.mode, proxy.seen = "", []
    await hub_edit(pair.hub, [{**vs[1], "value": "98"}])
    engine = pair.new_engine(national__url=proxy.url)
    try:
        r = await engine.cycle()
    finally:
        await engine.close()
    assert r.ok and r.push.accepted == 1
    assert [s.ctype for s in proxy.pushes()] == ["application/csv"]
    assert national_rows(pair.national)[key_of(vs[1])]["value"] == "98"


@pytest.mark.default_wire
async def test_a_value_csv_cannot_carry_goes_as_json(pair: Pair, proxy: Proxy) -> None:
    vs = first_values(3)
    quoted = {**vs[1], "value": "7", "comment": 'the "old" register'}
    await hub_edit(pair.hub, [vs[0], quoted, vs[2]])
    engine = pair.new_engine(national__url=proxy.url)
    try:
        r = await engine.cycle()
    finally:
        await engine.close()
    assert r.ok and r.push.accepted == 3
    assert [s.ctype for s in proxy.pushes()] == ["application/json"]  # its chunk
    assert national_rows(pair.national)[key_of(quoted)]["comment"] == 'the "old" register'
    assert _sync_state(pair).get(wire.REFUSED) is None  # not national's doing
    assert all(s.path.endswith(".csv") for s in proxy.pulls())  # the pull stays CSV


# -- reading national's CSV replies ------------------------------------------------------------
def _reply(body: bytes, ctype: str = "application/csv") -> Any:
    from multidict import CIMultiDict, CIMultiDictProxy

    from appliance.sync.client import Reply
    return Reply(200, CIMultiDictProxy(CIMultiDict({"Content-Type": ctype})), body, len(body),
                 0.0, 0.0, 0.0, 0.0, url="http://national/api/dataValueSets.csv?dataSet=x")


def test_reading_national_s_csv_replies() -> None:
    from appliance.errors import ConfigError, NationalRejected
    v = {**first_values(1)[0], "storedBy": "admin", "lastUpdated": "2024-02-01T09:00:00.000",
         "comment": "a, b"}
    text = csvformat.encode_export([v]).encode()
    assert wire.read_csv_reply(_reply(text)) == [{**v, "followup": False, "deleted": False}]
    assert wire.read_csv_reply(_reply(csvformat.HEADER_LINE.encode())) == []
    # a server that ignored .csv and answered JSON: taken as it is
    assert wire.read_csv_reply(_reply(orjson.dumps({"dataValues": [v]}),
                                      "application/json")) == [v]
    # not CSV: a refusal, asked again as JSON and remembered if that works
    with pytest.raises(NationalRejected) as e:
        wire.read_csv_reply(_reply(b"<html><body>Not here</body></html>", "text/html"))
    assert wire.blame(e.value) == "refused"
    # cut in the middle of a row: asked again as JSON this once, not held against CSV
    with pytest.raises(NationalRejected) as e:
        wire.read_csv_reply(_reply(text[:-5]))
    assert wire.blame(e.value) == "once"
    assert wire.blame(NationalRejected("x", error_code="503")) == "once"
    assert wire.blame(NationalRejected("x", error_code="401")) is None
    assert wire.blame(NationalRejected("x", error_code="415")) == "refused"
    with pytest.raises(ConfigError):
        wire.WireFormat("xml")
    w = wire.WireFormat("csv")
    w.resolve({wire.REFUSED: "2.41.3"}, "2.41.3")
    assert not w.csv and w.name == "json"
    w.resolve({wire.REFUSED: "2.41.3"}, "2.42.0")  # national upgraded: CSV again
    assert w.csv
    assert wire.WireFormat("json").csv_body([v]) is None
    assert w.csv_body([{**v, "comment": 'say "hi"'}]) is None  # goes as JSON
