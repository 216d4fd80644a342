"""The data values' wire format, chosen by measurement (issue 15, item 1): gzip of CSV
against gzip of JSON for what the hub really sends and receives, for one upazila-month.

No network: the bytes are what the hub's own code builds (``appliance.sync.push``'s
chunks, ``appliance.dhis2.csvformat``) and what national serves (the stand-in's JSON
and CSV replies), gzip'd as they travel. Measured:

* **B**, the issue's baseline: gzip -9 of the month's minimal JSON (``dataElement``,
  ``period``, ``orgUnit``, ``categoryOptionCombo``, ``attributeOptionCombo``, ``value``)
  in one request, and the same minimal CSV;
* **push**: the month cut into chunks as the pusher cuts them (its push order, and at
  the chunk sizes the sizer uses), each chunk's body gzip -9 as JSON (``value_set``:
  period and default attribute combo named once) and as CSV (``encode_import``);
* **pull**: national's reply to the pull of the whole month, gzip -6 (Tomcat's and the
  stand-in's level), as JSON (every field DHIS2 writes, ``created`` included) and as
  CSV (DHIS2's export columns).

Each in two orders of the values, as the issue asks: *entry* (clinic by clinic, form by
form: the order CHCPs enter them) and *data set* (form by form, each form's clinics
in turn: the demo generator's order). The push is also measured in the pusher's own
order (``form_order``: cell by cell, the clinics varying fastest), which is the order
it really sends. The default of ``[sync] wire_format`` must be the smaller format in
every case measured (a target row below).
"""

from __future__ import annotations

import gzip
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from appliance import demo
from appliance.config import defaults
from appliance.demo import values as demo_values
from appliance.dhis2 import csvformat
from appliance.sync import push

PERIOD = "202401"
CHUNKS = (250, 500, 1000)  # the sizer starts at 500 ([sync] chunk_values) and adapts
MINIMAL = ("dataElement", "period", "orgUnit", "categoryOptionCombo", "attributeOptionCombo",
           "value")
REPLY_GZIP = 6


def month() -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """The month's values in entry order, in data-set order, and the forms."""
    forms = demo_values.forms(demo.hub(), PERIOD)
    by_ds = [v for f in forms for v in f["dataValues"]]
    clinics: list[str] = []
    for f in forms:
        if f["orgUnit"] not in clinics:
            clinics.append(f["orgUnit"])
    entry = [v for ou in clinics for f in forms if f["orgUnit"] == ou for v in f["dataValues"]]
    return entry, by_ds, forms


def push_order(values: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The pusher's order (``push.form_order`` over the demo's metadata)."""
    from appliance.store.metadata import MetadataIndex
    doc = demo.hub()
    index = MetadataIndex({t: list(doc.get(t, [])) for t in ("dataSets", "categoryCombos")})
    key = push.form_order(index)
    return sorted(values, key=lambda v: key(tuple(v[k] for k in MINIMAL[:5])))


def gz(data: bytes, level: int = 9) -> int:
    return len(gzip.compress(data, level))


def minimal_json(values: Sequence[dict[str, Any]]) -> bytes:
    return orjson.dumps({"dataValues": [{k: v[k] for k in MINIMAL} for v in values]})


def minimal_csv(values: Sequence[dict[str, Any]]) -> bytes:
    return csvformat.encode_import([{k: v[k] for k in MINIMAL} for v in values])


def pushed_rows(values: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The values as pending rows the pusher reads (the LAN import stores no storedBy
    unless the client sent one; the web data entry sends none)."""
    return [{"de": v["dataElement"], "pe": v["period"], "ou": v["orgUnit"],
             "coc": v["categoryOptionCombo"], "aoc": v["attributeOptionCombo"],
             "value": v["value"], "deleted": 0, "stored_by": None, "comment": None,
             "followup": 0} for v in values]


def push_bytes(values: Sequence[dict[str, Any]], size: int,
               encode: Callable[[list[dict[str, Any]]], bytes]) -> int:
    rows = pushed_rows(values)
    total = 0
    for i in range(0, len(rows), size):
        total += gz(encode([push.value_json(r) for r in rows[i:i + size]]))
    return total


def push_json(values: list[dict[str, Any]]) -> bytes:
    return orjson.dumps(push.value_set(values, demo.DEFAULT_COC_UID))


def reply_values(values: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The month as national serves it back: every field DHIS2 writes, stamped chunk by
    chunk as its imports stamp them (one time per import of 500), by its service user."""
    out = []
    for i, v in enumerate(values):
        ms = 123 + (i // 500) * 1731
        ts = f"2024-02-01T09:{(ms // 60000) % 60:02d}:{(ms // 1000) % 60:02d}.{ms % 1000:03d}"
        out.append({**{k: v[k] for k in MINIMAL}, "storedBy": "hub-ramu", "created": ts,
                    "lastUpdated": ts, "followup": False, "deleted": False})
    return out


def pull_json(values: Sequence[dict[str, Any]]) -> bytes:
    return orjson.dumps({"dataValues": reply_values(values)})


def pull_csv(values: Sequence[dict[str, Any]]) -> bytes:
    return csvformat.encode_export(reply_values(values)).encode()


def main() -> dict[str, Any]:
    entry, by_ds, forms = month()
    pushed = push_order(entry)
    orders = {"entry": entry, "data set": by_ds}
    res: dict[str, Any] = {"values": len(entry), "forms": len(forms)}
    rows: list[tuple[str, Any, str, str, Any]] = []
    ratios: list[float] = []

    b = gz(minimal_json(entry))
    res["B"] = b
    for name, vals in orders.items():
        j, c = gz(minimal_json(vals)), gz(minimal_csv(vals))
        res[f"minimal {name}"] = {"json": j, "csv": c, "json/B": round(j / b, 3),
                                  "csv/json": round(c / j, 3), "csv/B": round(c / b, 3)}
        rows.append((f"minimal month, {name} order: gzip CSV / gzip JSON", round(c / j, 3),
                     "info", "x", None))
    rows.append(("B: gzip -9 minimal JSON, entry order", b, "info", "bytes", None))
    rows.append(("B in data-set order / B", round(gz(minimal_json(by_ds)) / b, 3), "info",
                 "x", None))

    for name, vals in (*orders.items(), ("push", pushed)):
        for size in CHUNKS:
            j = push_bytes(vals, size, push_json)
            c = push_bytes(vals, size, csvformat.encode_import)
            ratios.append(c / j)
            res[f"push {name} {size}"] = {"json": j, "csv": c, "csv/json": round(c / j, 3),
                                          "csv/B": round(c / b, 3), "json/B": round(j / b, 3)}
            if size == 500:
                rows.append((f"push in {name} order, chunks of 500: gzip CSV / JSON",
                             round(c / j, 3), "info", "x", None))
                rows.append((f"push in {name} order, chunks of 500: CSV bytes / B",
                             round(c / b, 3), "info", "x", None))
    # the attribute combo is written on every CSV row, though DHIS2 takes an empty one as
    # the default: a national with "require attribute option combo" on refuses empty ones
    # (E7631), while JSON names the default once for the chunk. What that safety costs:
    empty = push_bytes(pushed, 500, lambda vs: csvformat.encode_import(
        [{**v, "attributeOptionCombo": None} for v in vs]))
    explicit = res["push push 500"]["csv"]
    res["push push 500, default combo left empty"] = {"csv": empty,
                                                       "explicit/empty": round(explicit / empty, 3)}
    rows.append(("push order, chunks of 500: CSV with the combo on every row / left empty",
                 round(explicit / empty, 3), "info", "x", None))
    for name, vals in (*orders.items(), ("push", pushed)):
        j, c = gz(pull_json(vals), REPLY_GZIP), gz(pull_csv(vals), REPLY_GZIP)
        ratios.append(c / j)
        res[f"pull {name}"] = {"json": j, "csv": c, "csv/json": round(c / j, 3),
                               "csv/B": round(c / b, 3), "json/B": round(j / b, 3)}
        rows.append((f"pull of the month in {name} order: gzip CSV / JSON", round(c / j, 3),
                     "info", "x", None))
    winner = "csv" if max(ratios) < 1 else "json" if min(ratios) > 1 else "mixed"
    default = defaults()["sync"]["wire_format"]
    res["smaller"] = winner
    res["default"] = default
    rows.append(("[sync] wire_format default is the smaller format everywhere measured",
                 default, f"= {winner}", "", default == winner))
    for k, v in res.items():
        print(f"   {k}: {v}")
    res["targets"] = rows
    return res


if __name__ == "__main__":
    import json
    out = main()
    print(json.dumps(out["targets"], indent=1))
