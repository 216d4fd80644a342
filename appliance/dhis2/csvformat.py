"""DHIS2's CSV form of a data value set, both ways. Pure: text in, text out.

What DHIS2 writes and reads (dhis2-core; see appliance/sync/NATIONAL.md, "CSV"):

* **Export** (``GET /api/dataValueSets.csv``; 2.41 ``CsvDataValueSetWriter``, 2.43
  ``DataExportOutput.toCsv``): the header row ``dataelement,period,orgunit,
  categoryoptioncombo,attributeoptioncombo,value,storedby,lastupdated,comment,followup,
  deleted``, then one row per value, every column, written by javacsv (quotes only where
  needed, ``""`` inside quotes, ``\\n`` line ends). ``followup`` is ``true``/``false``;
  ``deleted`` is ``true`` or, for a live value, ``null`` in 2.41 (``String.valueOf`` of a
  null ``Boolean``) and ``false`` in 2.43. There is no ``created`` column.
* **Import** (``POST /api/dataValueSets``, ``Content-Type: application/csv``): the first
  row is a header and is skipped; the values' ``indexes`` in the import summary count the
  rows after it from 0, as they count ``dataValues`` in JSON. 2.41
  (``CsvDataValueSetReader``) reads the columns by position in the order above and takes
  a missing trailing column as empty; 2.43 (``DataEntryInput.fromCsv`` with
  ``org.hisp.dhis.csv.CSV``) maps them by the header's names (case-insensitively) and
  splits lines itself: a quoted field may hold commas but not a ``"`` (no ``""``
  escape) nor a line break, an unquoted field is trimmed, and a field ``null`` is read as
  absent. ``storedby`` is read by 2.41 and ignored by 2.43 (as in its JSON).

``encode_import`` writes what both versions read the same way as the JSON the hub would
send; a value it cannot carry that way (see ``csv_safe``) raises ``CsvUnsafe``, and the
caller sends that chunk as JSON instead.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from typing import Any

HEADER = ("dataelement", "period", "orgunit", "categoryoptioncombo", "attributeoptioncombo",
          "value", "storedby", "lastupdated", "comment", "followup", "deleted")
# the JSON name of each column (dataValues' fields), in column order
FIELDS = ("dataElement", "period", "orgUnit", "categoryOptionCombo", "attributeOptionCombo",
          "value", "storedBy", "lastUpdated", "comment", "followup", "deleted")
HEADER_LINE = ",".join(HEADER) + "\n"
MEDIA_TYPE = "application/csv"  # the one DHIS2's POST consumes (2.41 and 2.43)
# older DHIS2 documentation's names for the same columns
_ALIASES = {"catoptcombo": "categoryoptioncombo", "attroptcombo": "attributeoptioncombo",
            "flwup": "followup", "timestamp": "lastupdated", "created": "lastupdated"}
_QUOTE_IF = (",", " ", "\t")


class CsvUnsafe(ValueError):
    """A field that DHIS2 2.43's CSV reader would not read back as it was written."""


def csv_safe(text: str) -> bool:
    """Can ``text`` travel as one CSV field to both 2.41 and 2.43 unchanged? Not if it
    holds a double quote or a line break (2.43's reader splits lines and quotes itself,
    without escapes), nor if it is the word ``null`` (2.43 reads that as no value)."""
    return '"' not in text and "\n" not in text and "\r" not in text and text != "null"


def _field(v: Any) -> str:
    if v is None or v is False:
        return ""
    text = "true" if v is True else str(v)
    if not csv_safe(text):
        raise CsvUnsafe(f"{text[:40]!r} cannot be sent as CSV")
    if text and (any(c in text for c in _QUOTE_IF)):
        return f'"{text}"'  # commas, and spaces 2.43 would trim outside quotes
    return text


def import_row(v: Mapping[str, Any]) -> str:
    """One value (a ``dataValues`` entry as the hub POSTs it in JSON) as a CSV line:
    every column up to the last non-empty one (both readers take missing trailing
    columns as empty). ``deleted`` and ``followup`` are written only when true; a
    deletion carries no value, as in JSON."""
    deleted = v.get("deleted") in (True, "true")
    cols = [_field(v.get("dataElement")), _field(v.get("period")), _field(v.get("orgUnit")),
            _field(v.get("categoryOptionCombo")), _field(v.get("attributeOptionCombo")),
            "" if deleted else _field(v.get("value")), _field(v.get("storedBy")), "",
            "" if deleted else _field(v.get("comment")),
            "true" if v.get("followup") in (True, "true") else "",
            "true" if deleted else ""]
    while cols and cols[-1] == "":
        cols.pop()
    return ",".join(cols) + "\n"


def encode_import(values: Iterable[Mapping[str, Any]]) -> bytes:
    """The body of a CSV ``POST /api/dataValueSets``: the header row, then one row per
    value in the order given (row i after the header is index i in the summary).
    Raises ``CsvUnsafe`` if any field cannot travel as CSV."""
    return (HEADER_LINE + "".join(import_row(v) for v in values)).encode()


def encode_export(values: Iterable[Mapping[str, Any]], live_deleted: str = "null") -> str:
    """Values (``dataValues`` entries as the API serves them) as DHIS2 writes its CSV
    export: every column, quoting only where needed. ``live_deleted`` is what the
    ``deleted`` column says of a value that is not deleted (2.41: ``null``)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(HEADER)
    for v in values:
        w.writerow([
            v.get("dataElement") or "", v.get("period") or "", v.get("orgUnit") or "",
            v.get("categoryOptionCombo") or "", v.get("attributeOptionCombo") or "",
            "" if v.get("value") is None else v["value"], v.get("storedBy") or "",
            v.get("lastUpdated") or "", "" if v.get("comment") is None else v["comment"],
            "true" if v.get("followup") else "false",
            "true" if v.get("deleted") else live_deleted])
    return buf.getvalue()


def columns(header: list[str]) -> list[str] | None:
    """The column names of a header row, or None if it is not one (no ``dataelement``)."""
    names = [_ALIASES.get(n, n) for n in (c.strip().lower().replace("_", "") for c in header)]
    return names if "dataelement" in names else None


def decode(text: str) -> list[dict[str, Any]]:
    """DHIS2's CSV data values as ``dataValues`` entries (the JSON reply's shape, without
    ``created``, which the CSV lacks). Columns are read by the header's names; without a
    header row, by DHIS2's column order. Empty cells are absent; ``deleted`` and
    ``followup`` are true only when they say ``true``. Raises ``ValueError`` on rows
    that are not CSV or lack a key column."""
    out: list[dict[str, Any]] = []
    names = list(HEADER)
    try:
        for n, row in enumerate(csv.reader(io.StringIO(text))):
            if not row or all(not c.strip() for c in row):
                continue
            if n == 0:
                header = columns(row)
                if header is not None:
                    names = header
                    continue
            rec = dict(zip(names, row, strict=False))
            v: dict[str, Any] = {}
            for col, name in zip(HEADER, FIELDS, strict=True):
                cell = rec.get(col)
                if col in ("followup", "deleted"):
                    v[name] = (cell or "").strip().lower() == "true"
                elif cell is not None and cell != "":
                    v[name] = cell.strip() if col in HEADER[:5] else cell
            if not all(v.get(k) for k in FIELDS[:3]):
                raise ValueError(f"CSV row {n + 1} lacks a data element, period or org unit")
            out.append(v)
    except csv.Error as e:
        raise ValueError(f"malformed CSV: {e}") from None
    return out
