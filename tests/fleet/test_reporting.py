"""Reporting rates across the fleet (#14): heartbeats carry each hub's completeness counts;
the fleet sums them by division, district and upazila for the last three months, worst
first, beside hardware and sync health (/reporting and /api/reporting)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from appliance.fleet.models import parse_reporting
from appliance.fleet.reporting import last_months
from appliance.health.agent import reporting_counts
from appliance.store import Store

from .conftest import FleetServer, heartbeat

PES = last_months(time.time())
DS1, DS2 = "NwLMuiBAxSb", "df0AIFZ54aA"


def counts(pe: str, expected: int, complete: int, on_time: int, received: int,
           ds: str = DS1) -> dict[str, Any]:
    return {"dataSet": ds, "period": pe, "expected": expected, "complete": complete,
            "onTime": on_time, "received": received}


async def test_rates_by_place_worst_first(server: FleetServer) -> None:
    server.enroll("ramu", upazila="Ramu", district="Cox's Bazar", division="Chattogram")
    server.enroll("ukhia", upazila="Ukhia", district="Cox's Bazar", division="Chattogram")
    server.enroll("savar", upazila="Savar", district="Dhaka", division="Dhaka")
    server.enroll("old", upazila="Oldhub", district="Dhaka", division="Dhaka")
    latest = PES[0]
    for hub_id, rep in (
            ("ramu", [counts(latest, 27, 27, 20, 10), counts(latest, 27, 21, 21, 0, DS2),
                      counts(PES[1], 27, 27, 27, 27)]),
            ("ukhia", [counts(latest, 20, 5, 1, 0)]),
            ("savar", [counts(latest, 30, 24, 24, 24)])):
        status, body = await server.send(heartbeat(hub_id, 1, reporting=rep))
        assert status == 200, body
    status, body = await server.send(heartbeat("old", 1))  # an older hub: no counts
    assert status == 200, body

    status, rep = await server.get_json("/api/reporting")
    assert status == 200 and rep["periods"] == PES
    ups = [(u["name"], u["months"][latest]["reportingRate"]) for u in rep["upazilas"]]
    assert ups == [("Ukhia", 25.0), ("Savar", 80.0), ("Ramu", 88.9), ("Oldhub", None)]
    ramu = next(u for u in rep["upazilas"] if u["name"] == "Ramu")
    assert ramu["months"][latest] == {"expected": 54, "complete": 48, "onTime": 41,
                                      "received": 10, "reportingRate": 88.9,
                                      "onTimeRate": 75.9}
    assert ramu["months"][PES[1]]["reportingRate"] == 100.0
    assert ramu["months"][PES[2]]["reportingRate"] is None
    assert ramu["health"]["state"] in ("green", "amber", "red") and ramu["hubId"] == "ramu"
    # a place's rate is its forms' (53 of 74), not the mean of its hubs' rates
    cox = next(d for d in rep["districts"] if d["name"] == "Cox's Bazar")
    assert cox["months"][latest]["complete"] == 53 and cox["months"][latest]["expected"] == 74
    assert cox["months"][latest]["reportingRate"] == 71.6
    assert [d["name"] for d in rep["divisions"]] == ["Chattogram", "Dhaka"]
    dhaka = rep["divisions"][1]
    assert dhaka["hubs"] == 2 and dhaka["reportingHubs"] == 1

    # the next heartbeat's months replace the earlier counts of those months only
    status, _ = await server.send(heartbeat("ukhia", 2, reporting=[counts(latest, 20, 19, 19, 0)]))
    assert status == 200
    status, _ = await server.send(heartbeat("ramu", 2))  # none: what was known stays
    _, rep = await server.get_json("/api/reporting")
    assert [u["name"] for u in rep["upazilas"]][:2] == ["Savar", "Ramu"]
    assert next(u for u in rep["upazilas"] if u["name"] == "Ukhia")["months"][latest][
        "reportingRate"] == 95.0

    # the page: the same, worst first, the state beside the rates
    status, html, _ = await server.get_text("/reporting")
    assert status == 200
    assert html.index("Savar") < html.index("Ramu") < html.index("Oldhub")
    assert 'id="rep-upazila"' in html and 'id="rep-district"' in html
    assert "no counts yet" in html and "Cox&#x27;s Bazar" in html


async def test_bad_counts_are_refused(server: FleetServer) -> None:
    server.enroll("ramu")
    before = server.snapshot()
    for bad in ([counts(PES[0], 10, 11, 0, 0)], [counts(PES[0], 10, 5, 6, 0)],
                [counts("2024W01", 1, 1, 1, 1)], [{**counts(PES[0], 1, 1, 1, 1), "dataSet": "x"}],
                "all", [counts(PES[0], -1, 0, 0, 0)]):
        status, body = await server.send(heartbeat("ramu", 1, reporting=bad))
        assert status == 400, (bad, body)
    assert server.snapshot() == before


def test_the_hubs_counts_pass_the_fleets_checks(demo_template: dict[str, Path],
                                                tmp_path: Path) -> None:
    """The health agent's counts from a demo hub: every monthly form × 3 months."""
    import shutil
    shutil.copy(demo_template["hub"], tmp_path / "hub.db")
    with Store(tmp_path / "hub.db") as s:
        got = s.read_sync(reporting_counts)
    assert len(got) == 5 * 3
    assert {g["period"] for g in got} == set(PES)
    assert sorted({g["expected"] for g in got}) == [1, 27]
    parsed = parse_reporting(got)
    assert len(parsed) == 15
