"""dataValueSets as DHIS2's CSV at the national stand-in (and so at the hub's LAN API, which
serves the same code): a round trip of values, deletions, comments, follow-ups and who
stored them; gzip and zip bodies found by their magic bytes whatever the headers say; and
refusals whose indexes count the CSV's rows as JSON's count its values (issue 15). The
stand-in on a real port over real SQLite."""

from __future__ import annotations

import gzip
import io
import zipfile
from typing import Any

import aiohttp
import orjson

from appliance import demo
from appliance.dhis2 import csvformat
from tests.conftest import RunningHub
from tests.sync.conftest import (
    PERIOD,
    RAMU,
    basic,
    first_values,
    key_of,
    key_of_dict,
    national_post,
    national_rows,
)

STAT = basic("statistician")


async def _post(http: aiohttp.ClientSession, national: RunningHub, body: bytes,
                **headers: str) -> tuple[int, dict[str, Any]]:
    async with http.post(national.api("dataValueSets"), data=body,
                         headers={**STAT, **headers}) as r:
        return r.status, await r.json()


async def test_csv_round_trip_at_the_stand_in(national: RunningHub,
                                              http: aiohttp.ClientSession) -> None:
    vs = first_values(5)
    await national_post(http, national, [vs[2]])  # to be deleted below
    sent = [
        {**vs[0], "value": "11", "comment": "register torn, see page 4", "followup": True,
         "storedBy": "rahim"},
        {**vs[1], "value": "12", "storedBy": "karim"},
        {**key_of_dict(vs[2]), "deleted": True},
        {**vs[3], "value": "14", "comment": "দুইবার গোনা হয়েছে"},
        {**vs[4], "value": "15"},
    ]
    status, reply = await _post(http, national, csvformat.encode_import(sent),
                                **{"Content-Type": "application/csv"})
    assert status == 200, reply
    assert reply["response"]["importCount"] == {"imported": 4, "updated": 0, "ignored": 0,
                                                "deleted": 1}
    rows = national_rows(national)
    assert rows[key_of(vs[0])].items() >= {"value": "11", "comment": "register torn, see page 4",
                                           "followup": 1, "stored_by": "rahim",
                                           "deleted": 0}.items()
    assert rows[key_of(vs[1])]["stored_by"] == "karim" and rows[key_of(vs[1])]["followup"] == 0
    assert rows[key_of(vs[2])]["deleted"] == 1
    assert rows[key_of(vs[3])]["comment"] == "দুইবার গোনা হয়েছে"

    # served back as DHIS2 2.41 writes it, by path, Accept or format=; JSON agrees
    q = {"dataSet": sorted({d["id"] for d in demo.hub()["dataSets"]}), "period": PERIOD,
         "orgUnit": RAMU, "children": "true", "includeDeleted": "true"}
    texts = []
    for path, extra, params in (("dataValueSets.csv", {}, {}),
                                ("dataValueSets", {"Accept": "application/csv"}, {}),
                                ("dataValueSets", {}, {"format": "csv"})):
        async with http.get(national.api(path), params={**q, **params},
                            headers={**STAT, **extra}) as r:
            assert r.status == 200 and r.content_type == "application/csv"
            texts.append(await r.text())
    assert texts[0] == texts[1] == texts[2]
    lines = texts[0].split("\n")
    assert lines[0] == ",".join(csvformat.HEADER) and texts[0].endswith("\n")
    assert all(line.endswith((",null", ",true")) for line in lines[1:] if line)  # 2.41
    async with http.get(national.api("dataValueSets"), params=q, headers=STAT) as r:
        as_json = (await r.json())["dataValues"]
    from_csv = {key_of(v): v for v in csvformat.decode(texts[0])}
    assert len(from_csv) == len(as_json) == 5
    for v in as_json:
        got = from_csv[key_of(v)]
        want = {k: x for k, x in v.items() if k != "created" and x is not None}
        assert got == want
    assert from_csv[key_of(vs[0])]["followup"] is True
    assert from_csv[key_of(vs[2])]["deleted"] is True


async def test_stand_in_finds_gzip_by_its_magic_whatever_the_headers_say(
        national: RunningHub, http: aiohttp.ClientSession) -> None:
    vs = first_values(6)
    csv_body = csvformat.encode_import([{**v, "value": "21"} for v in vs[:2]])
    json_body = orjson.dumps({"dataValues": [{**v, "value": "22"} for v in vs[2:4]]})
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("values.csv", csvformat.encode_import([{**v, "value": "23"}
                                                           for v in vs[4:]]))
    cases = [  # (body, headers): none of them says "gzip" or "zip"
        (gzip.compress(csv_body), {"Content-Type": "application/csv"}),
        (gzip.compress(csv_body.replace(b",21\n", b",25\n")),
         {"Content-Type": "application/csv; charset=UTF-8", "Content-Encoding": "identity"}),
        (gzip.compress(json_body), {"Content-Type": "application/json"}),
        (zipped.getvalue(), {"Content-Type": "application/csv"}),
    ]
    for body, headers in cases:
        status, reply = await _post(http, national, body, **headers)
        assert status == 200, reply
        counts = reply["response"]["importCount"]
        assert counts["ignored"] == 0 and counts["imported"] + counts["updated"] == 2
    rows = national_rows(national)
    assert [rows[key_of(v)]["value"] for v in vs] == ["25", "25", "22", "22", "23", "23"]
    # gzip declared honestly still works (aiohttp inflates it before the sniffing)
    status, reply = await _post(http, national, gzip.compress(csv_body),
                                **{"Content-Type": "application/csv",
                                   "Content-Encoding": "gzip"})
    assert status == 200 and reply["response"]["importCount"]["updated"] == 2
    status, reply = await _post(http, national, gzip.compress(csv_body)[:-9],
                                **{"Content-Type": "application/csv"})
    assert status == 400 and "gzip" in reply["message"]


async def test_stand_in_refusals_have_the_same_indexes_in_csv_and_json(
        national: RunningHub, http: aiohttp.ClientSession) -> None:
    vs = first_values(5)
    other_ou = next(o["id"] for o in demo.national()["organisationUnits"]
                    if o.get("level") == 5 and RAMU not in o["path"])
    sent = [{**vs[0], "value": "1"}, {**vs[1], "value": "lots"}, {**vs[2], "value": "3"},
            {**vs[3], "orgUnit": "NoSuchOrgU1", "value": "4"}, {**vs[4], "value": "5"},
            {**vs[0], "orgUnit": other_ou, "value": "6"}]
    s_csv, r_csv = await _post(http, national, csvformat.encode_import(sent),
                               **{"Content-Type": "application/csv"})
    s_json, r_json = await _post(http, national, orjson.dumps({"dataValues": sent}),
                                 **{"Content-Type": "application/json"})
    assert s_csv == s_json == 409
    conflicts = r_csv["response"]["conflicts"]
    assert {c["errorCode"]: c["indexes"] for c in conflicts} == {
        "E7619": [1], "E7612": [3], "E7617": [5]}  # rows after the header, from 0
    assert r_csv["response"]["rejectedIndexes"] == [1, 3, 5]
    assert conflicts == r_json["response"]["conflicts"]
    assert r_json["response"]["rejectedIndexes"] == [1, 3, 5]
