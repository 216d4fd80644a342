"""Generated data values: valid, plausible, consistent with the rules, deterministic."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
from collections import Counter, defaultdict
from typing import Any

import pytest

from appliance import demo
from appliance.demo.values import forms, month_values
from tests.demo.checks import COMPARE, side_value

Doc = dict[str, Any]
PERIOD = "202410"
KEYS = {"dataElement", "period", "orgUnit", "categoryOptionCombo", "attributeOptionCombo",
        "value"}

# DHIS2 2.42 DataValueSetImportValidator / ValueType rules (DHIS2-API-NOTES.md section 6).
TYPE_RE = {
    "NUMBER": re.compile(r"^(-?0|-?[1-9]\d*)(\.\d+)?$"),
    "INTEGER": re.compile(r"^(0|-?[1-9]\d*)$"),
    "INTEGER_POSITIVE": re.compile(r"^[1-9]\d*$"),
    "INTEGER_ZERO_OR_POSITIVE": re.compile(r"(^0$)|(^[1-9]\d*$)"),
    "INTEGER_NEGATIVE": re.compile(r"^-[1-9]\d*$"),
    "PERCENTAGE": re.compile(r"^(0|[1-9]\d*)$"),
    "BOOLEAN": re.compile(r"^(true|false)$"),
    "TRUE_ONLY": re.compile(r"^true$"),
    "DATE": re.compile(r"^\d{4}-\d\d-\d\d$"),
}


@pytest.fixture(scope="module")
def hub() -> Doc:
    return demo.hub()


@pytest.fixture(scope="module")
def values(hub: Doc) -> list[dict[str, str]]:
    return month_values(hub, PERIOD)


def index(doc: Doc) -> dict[str, dict[str, Any]]:
    return {o["id"]: o for k, v in doc.items() if isinstance(v, list) for o in v if "id" in o}


def test_one_ramu_month_has_the_promised_size(hub: Doc, values: list[dict[str, str]]) -> None:
    assert 16_000 <= len(values) <= 20_000
    by_form = Counter((v["orgUnit"], v["dataElement"]) for v in values)
    assert len({ou for ou, _ in by_form}) == 28  # 27 clinics + the UHC
    keys = [(v["dataElement"], v["orgUnit"], v["categoryOptionCombo"]) for v in values]
    assert len(keys) == len(set(keys))


def test_each_cc_form_yields_140_to_160_values_per_clinic_month(hub: Doc) -> None:
    cc = {ds["id"] for ds in hub["dataSets"] if ds["name"].startswith("CC Form-")}
    sizes = []
    for month in range(1, 13):
        for f in forms(hub, f"2024{month:02d}", data_sets=sorted(cc)):
            sizes.append(len(f["dataValues"]))
    assert len(sizes) == 12 * 27 * 4
    assert min(sizes) >= 140 and max(sizes) <= 160, (min(sizes), max(sizes))


def test_values_are_well_formed_and_assigned(hub: Doc, values: list[dict[str, str]]) -> None:
    ids = index(hub)
    assigned = {(ds["id"], r["id"]) for ds in hub["dataSets"] for r in ds["organisationUnits"]}
    de_sets = defaultdict(set)
    for ds in hub["dataSets"]:
        for e in ds["dataSetElements"]:
            de_sets[e["dataElement"]["id"]].add(ds["id"])
    for v in values:
        assert set(v) == KEYS and all(isinstance(x, str) for x in v.values())
        assert v["period"] == PERIOD and v["attributeOptionCombo"] == demo.DEFAULT_COC_UID
        de = ids[v["dataElement"]]
        combo = ids[de["categoryCombo"]["id"]]
        assert {"id": v["categoryOptionCombo"]} in combo["categoryOptionCombos"]
        assert any((ds, v["orgUnit"]) in assigned for ds in de_sets[de["id"]])


def test_values_match_their_value_type(hub: Doc, values: list[dict[str, str]]) -> None:
    ids = index(hub)
    seen_types: Counter[str] = Counter()
    for v in values:
        de = ids[v["dataElement"]]
        vt, value = de["valueType"], v["value"]
        seen_types[vt] += 1
        if de.get("optionSet"):
            codes = {ids[r["id"]]["code"] for r in ids[de["optionSet"]["id"]]["options"]}
            assert value in codes
            continue
        if vt in ("TEXT", "LONG_TEXT"):
            assert 0 < len(value) <= 50_000
            continue
        assert TYPE_RE[vt].match(value), (de["code"], vt, value)
        if vt == "NUMBER":
            assert len(value) < 250
        if vt == "PERCENTAGE":
            assert 0 <= int(value) <= 100
        if vt == "DATE":
            d = dt.date.fromisoformat(value)
            assert f"{d.year}{d.month:02d}" == PERIOD
    assert set(seen_types) >= {"INTEGER_ZERO_OR_POSITIVE", "NUMBER", "INTEGER", "PERCENTAGE",
                               "BOOLEAN", "TRUE_ONLY", "TEXT", "DATE"}


def test_zeros_only_where_significant(hub: Doc, values: list[dict[str, str]]) -> None:
    ids = index(hub)
    zeros = [v for v in values if v["value"] in ("0", "0.0")]
    assert zeros  # e.g. maternal deaths: 0 is a reported fact
    assert all(ids[v["dataElement"]]["zeroIsSignificant"] for v in zeros)


def test_about_five_percent_of_cells_are_blank(hub: Doc, values: list[dict[str, str]]) -> None:
    ids = index(hub)
    cells = sum(
        len(ids[ids[e["dataElement"]["id"]]["categoryCombo"]["id"]]["categoryOptionCombos"])
        * len(ds["organisationUnits"])
        for ds in hub["dataSets"] for e in ds["dataSetElements"])
    assert 0.88 <= len(values) / cells <= 0.97


def test_generated_months_pass_the_validation_rules(hub: Doc) -> None:
    constants = {c["id"]: float(c["value"]) for c in hub["constants"]}
    for period in ("202401", "202407", PERIOD):
        cells: dict[str, dict[tuple[str, str], float]] = defaultdict(dict)
        for v in month_values(hub, period, seed=3):
            with contextlib.suppress(ValueError):  # text, dates, booleans: not in rules
                key = (v["dataElement"], v["categoryOptionCombo"])
                cells[v["orgUnit"]][key] = float(v["value"])
        evaluated = 0
        for ou, vals in cells.items():
            for rule in hub["validationRules"]:
                left = side_value(rule["leftSide"], vals, constants)
                right = side_value(rule["rightSide"], vals, constants)
                if left is None or right is None:
                    continue
                evaluated += 1
                assert COMPARE[rule["operator"]](left, right), (period, ou, rule["name"],
                                                              left, right)
        assert evaluated > 27 * 8


def test_values_mostly_within_min_max(hub: Doc, values: list[dict[str, str]]) -> None:
    ranges = {(m["source"]["id"], m["dataElement"]["id"], m["optionCombo"]["id"]):
              (m["min"], m["max"]) for m in hub["minMaxDataElements"]}
    checked = inside = 0
    for v in values:
        r = ranges.get((v["orgUnit"], v["dataElement"], v["categoryOptionCombo"]))
        if r:
            checked += 1
            inside += r[0] <= int(v["value"]) <= r[1]
    assert checked > 500 and inside / checked > 0.9


def test_generation_is_deterministic_and_seeded(hub: Doc, values: list[dict[str, str]]) -> None:
    assert month_values(hub, PERIOD) == values
    assert month_values(demo.hub(), PERIOD, seed=0) == values
    other = month_values(hub, PERIOD, seed=1)
    assert other != values
    assert month_values(hub, "202409") != values


def test_hub_and_national_generate_the_same_ramu_values(hub: Doc,
                                                        values: list[dict[str, str]]) -> None:
    national = month_values(demo.national(), PERIOD, org_units=[demo.CHCP_CLINIC_UID])
    mine = [v for v in values if v["orgUnit"] == demo.CHCP_CLINIC_UID]
    assert national == mine and len(mine) > 500
    one_form = month_values(hub, PERIOD, org_units=[demo.CHCP_CLINIC_UID],
                            data_sets=[hub["dataSets"][1]["id"]])
    assert one_form and all(v in mine for v in one_form)


def test_forms_group_the_same_values(hub: Doc, values: list[dict[str, str]]) -> None:
    payloads = forms(hub, PERIOD)
    assert len(payloads) == 27 * 4 + 1
    assert [v for p in payloads for v in p["dataValues"]] == values
    for p in payloads:
        assert set(p) == {"dataSet", "period", "orgUnit", "dataValues"}
        assert all(v["orgUnit"] == p["orgUnit"] and v["period"] == p["period"]
                   for v in p["dataValues"])
    json.dumps(payloads)  # plain JSON, ready to POST


def test_unknown_elements_get_generic_valid_values(hub: Doc) -> None:
    doc = json.loads(json.dumps(hub))
    for de in doc["dataElements"]:
        de["code"] = "X_" + de["code"]  # as in a real national pull: codes the demo never saw
    out = month_values(doc, PERIOD, org_units=[demo.CHCP_CLINIC_UID])
    ids = index(doc)
    assert len(out) > 400
    for v in out:
        de = ids[v["dataElement"]]
        if de["valueType"] in TYPE_RE and not de.get("optionSet"):
            assert TYPE_RE[de["valueType"]].match(v["value"]), (de["valueType"], v["value"])


def test_rejects_non_monthly_periods(hub: Doc) -> None:
    for bad in ("2024", "2024W1", "202413", "20241001"):
        with pytest.raises(ValueError):
            month_values(hub, bad)
