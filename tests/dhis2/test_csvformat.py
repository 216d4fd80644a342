"""DHIS2's CSV data value sets (appliance/dhis2/csvformat.py) and compressed import bodies
(appliance/dhis2/compression.py).

What the hub POSTs as CSV must be read by DHIS2 2.41 and by 2.43 as the JSON it replaces
would be. The two readers below are ports of dhis2-core's, kept as small as the rules
they follow: 2.41's ``CsvDataValueSetReader`` (javacsv: columns by position, unquoted
fields trimmed, a missing column empty; the importer then ``trimToNull``s) and 2.43's
``org.hisp.dhis.csv.CSV`` with ``LineBuffer`` (columns by header name, its own line and
quote splitting without escapes, ``null`` read as absent)."""

from __future__ import annotations

import csv
import gzip
import io
import zipfile
from typing import Any

import pytest

from appliance.dhis2 import compression, csvformat

KEY = ("dataElement", "period", "orgUnit", "categoryOptionCombo", "attributeOptionCombo")


def _trim_to_null(v: str | None) -> str | None:
    v = (v or "").strip()
    return v or None


def read_241(body: bytes) -> list[dict[str, Any]]:
    """DHIS2 2.41: the header row skipped, columns by position."""
    rows = list(csv.reader(io.StringIO(body.decode(), newline="")))[1:]
    out = []
    for row in rows:
        if not row:
            continue  # javacsv SkipEmptyRecords

        def get(i: int, row: list[str] = row) -> str:
            return row[i] if i < len(row) else ""
        out.append({
            **{k: _trim_to_null(get(i)) for i, k in enumerate(KEY)},
            "value": _trim_to_null(get(5)), "storedBy": _trim_to_null(get(6)),
            "comment": _trim_to_null(get(8)), "followup": get(9).lower() == "true",
            "deleted": get(10).lower() == "true"})
    return out


def _split_243(line: str) -> list[str | None]:
    """``LineBuffer.split`` of 2.43.0, as written."""
    res: list[str | None] = []
    n = len(line)

    def skip(i: int) -> int:
        while i < n and line[i] in " \t":
            i += 1
        return i

    def nxt(c: str, i: int) -> int:
        while i < n and line[i] != c:
            i += 1
        return i
    i = skip(0)
    while i < n:
        if line[i] == ",":
            res.append(None)
            i = skip(i + 1)
        elif line[i] == '"':
            q = nxt('"', i + 1)
            res.append(line[i + 1:q])
            i = skip(nxt(",", skip(q + 1)) + 1)
        else:
            c = nxt(",", i)
            res.append(line[i:c].strip())
            i = skip(c + 1)
    return res


def read_243(body: bytes) -> list[dict[str, Any]]:
    """DHIS2 2.43: the header names the columns (``DataEntryValue.Input``'s components,
    lower-cased); a row ends at the first line break; an empty line ends the input."""
    lines = body.decode().replace("\r", "\n").split("\n")
    header = [c.strip().strip('"') for c in lines[0].split(",")]
    comps = {"dataelement": "dataElement", "orgunit": "orgUnit",
             "categoryoptioncombo": "categoryOptionCombo",
             "attributeoptioncombo": "attributeOptionCombo", "period": "period",
             "value": "value", "comment": "comment", "followup": "followUp",
             "deleted": "deleted"}
    out = []
    for line in lines[1:]:
        if not line:
            break
        cells = _split_243(line)
        rec: dict[str, Any] = {}
        for col, cell in zip(header, cells, strict=False):
            name = comps.get(col) or comps.get(col.lower())
            if name is None:
                continue  # storedBy is ignored; lastUpdated goes to the unused "any" map
            rec[name] = None if cell is None or cell == "null" else cell
        out.append({**{k: rec.get(k) for k in KEY}, "value": rec.get("value"),
                    "comment": rec.get("comment"),
                    "followup": (rec.get("followUp") or "").lower() == "true",
                    "deleted": (rec.get("deleted") or "").lower() == "true"})
    return out


def as_json_import(v: dict[str, Any]) -> dict[str, Any]:
    """What DHIS2 takes from the same value sent as JSON."""
    deleted = bool(v.get("deleted"))
    return {**{k: v[k] for k in KEY},
            "value": None if deleted else _trim_to_null(v.get("value")),
            "comment": None if deleted else _trim_to_null(v.get("comment")),
            "followup": bool(v.get("followup")), "deleted": deleted}


VALUES: list[dict[str, Any]] = [
    {"dataElement": "NLpdElAKOoT", "period": "202401", "orgUnit": "KsEiTAp1p0I",
     "categoryOptionCombo": "QZGCoZuBwjN", "attributeOptionCombo": "HllvX50cXC0", "value": "26"},
    {"dataElement": "NLpdElAKOoT", "period": "202401", "orgUnit": "KsEiTAp1p0I",
     "categoryOptionCombo": "tgoDOwIh6fV", "attributeOptionCombo": "HllvX50cXC0",
     "deleted": True, "storedBy": "chcp"},
    {"dataElement": "a1b2c3d4e5F", "period": "202401", "orgUnit": "KsEiTAp1p0I",
     "categoryOptionCombo": "QZGCoZuBwjN", "attributeOptionCombo": "HllvX50cXC0",
     "value": "Yes, twice", "comment": "ঔষধ শেষ, আবার আসবে", "followup": True,
     "storedBy": "rahim uddin"},
    {"dataElement": "a1b2c3d4e5F", "period": "202401", "orgUnit": "KsEiTAp1p0I",
     "categoryOptionCombo": "QZGCoZuBwjN", "attributeOptionCombo": "HllvX50cXC0",
     "value": " 7 ", "comment": "only a comment"},
]


def test_what_the_hub_sends_reads_as_its_json_in_2_41_and_2_43() -> None:
    body = csvformat.encode_import(VALUES)
    lines = body.decode().split("\n")
    assert lines[0] == ",".join(csvformat.HEADER)  # 2.43 maps by these names
    assert lines[1] == "NLpdElAKOoT,202401,KsEiTAp1p0I,QZGCoZuBwjN,HllvX50cXC0,26"  # trimmed
    assert lines[2].endswith(",,chcp,,,,true")  # a deletion: no value, deleted=true
    assert body.endswith(b"\n") and b"\r" not in body
    expected = [as_json_import(v) for v in VALUES]
    assert read_241(body) == [{**e, "storedBy": _trim_to_null(v.get("storedBy"))}
                              for e, v in zip(expected, VALUES, strict=True)]
    got_243 = read_243(body)
    for v in got_243:  # 2.43 keeps what it read; its importer trims like 2.41's
        v["value"], v["comment"] = _trim_to_null(v["value"]), _trim_to_null(v["comment"])
    assert got_243 == expected


@pytest.mark.parametrize("bad", ['say "no"', "two\nlines", "cr\r", "null"])
def test_what_2_43_cannot_read_back_is_refused(bad: str) -> None:
    assert not csvformat.csv_safe(bad)
    with pytest.raises(csvformat.CsvUnsafe):
        csvformat.encode_import([{**VALUES[0], "comment": bad}])
    # the check catches what would break: 2.43 reads something else than was sent
    raw = ('dataelement,period,orgunit,categoryoptioncombo,attributeoptioncombo,value,'
           f'storedby,lastupdated,comment\nde,202401,ou,coc,aoc,1,,,"{bad}"\n').encode()
    read = read_243(raw)
    assert len(read) != 1 or read[0]["comment"] != bad


def test_export_is_read_back_with_every_field() -> None:
    served = [{**VALUES[0], "storedBy": "admin", "lastUpdated": "2024-02-01T09:10:11.123",
               "created": "2024-02-01T09:10:11.123", "followup": False, "deleted": False},
              {**VALUES[2], "value": 'a "quoted", multi\nline value', "deleted": True,
               "lastUpdated": "2024-02-02T00:00:00.000"}]
    for live in ("null", "false"):  # 2.41 writes null for a live value, 2.43 false
        text = csvformat.encode_export(served, live_deleted=live)
        assert text.split("\n")[1].endswith(f",false,{live}")
        got = csvformat.decode(text)
        assert got[0] == {**{k: served[0][k] for k in KEY}, "value": "26",
                          "storedBy": "admin", "lastUpdated": "2024-02-01T09:10:11.123",
                          "followup": False, "deleted": False}
        assert got[1]["value"] == served[1]["value"] and got[1]["deleted"] is True
        assert got[1]["comment"] == VALUES[2]["comment"] and got[1]["followup"] is True


def test_decode_reads_dhis2_s_documented_headers_and_refuses_rows_without_keys() -> None:
    old = ('"dataelement","period","orgunit","catoptcombo","attroptcombo","value","storedby",'
           '"timestamp"\n"DUSpd8Jq3M7","201202","gP6hn503KUX","Prlt0C1RF0s",,"7","bombali",'
           '"2010-04-17"\n')
    assert csvformat.decode(old) == [{
        "dataElement": "DUSpd8Jq3M7", "period": "201202", "orgUnit": "gP6hn503KUX",
        "categoryOptionCombo": "Prlt0C1RF0s", "value": "7", "storedBy": "bombali",
        "lastUpdated": "2010-04-17", "followup": False, "deleted": False}]
    # no header: DHIS2's column order
    assert csvformat.decode("de,202401,ou,coc,aoc,5\n")[0]["value"] == "5"
    assert csvformat.decode(csvformat.HEADER_LINE) == []
    with pytest.raises(ValueError):
        csvformat.decode(csvformat.HEADER_LINE + ",202401,ou\n")


def test_compressed_bodies_are_found_by_their_magic() -> None:
    body = csvformat.encode_import(VALUES)
    assert compression.unpack(body, 1 << 20) == body
    assert compression.unpack(gzip.compress(body), 1 << 20) == body
    two = gzip.compress(body[:50]) + gzip.compress(body[50:])  # concatenated members
    assert compression.unpack(two, 1 << 20) == body
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("values.csv", body)
        z.writestr("other.csv", b"ignored")
    assert compression.unpack(buf.getvalue(), 1 << 20) == body  # the first entry
    with pytest.raises(compression.TooLarge):
        compression.unpack(gzip.compress(b"0" * 100_000), 50_000)
    with pytest.raises(ValueError):
        compression.unpack(gzip.compress(body)[:-12], 1 << 20)  # cut short
    with pytest.raises(ValueError):
        compression.unpack(b"\x1f\x8bnot gzip at all", 1 << 20)
