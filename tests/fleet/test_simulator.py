"""The simulator: a realistic spread of hubs, posting signed heartbeats that are accepted."""

from __future__ import annotations

from collections import Counter

from appliance.fleet.geography import GEOGRAPHY
from appliance.fleet.simulator import PROFILES, make_hubs, register_hubs, run_simulation

from .conftest import FleetServer


def test_make_hubs_spreads_over_bangladesh() -> None:
    hubs = make_hubs(500)
    assert len({h.hub_id for h in hubs}) == 500
    assert {h.division for h in hubs} == set(GEOGRAPHY)
    assert len(GEOGRAPHY) == 8
    assert sum(len(d) for d in GEOGRAPHY.values()) == 64
    assert len({h.district for h in hubs}) == 64
    for h in hubs:
        assert h.upazila in GEOGRAPHY[h.division][h.district]
    profiles = Counter(h.profile for h in hubs)
    assert profiles["green"] > 300  # most are green
    assert set(profiles) == {"green", *PROFILES}
    ramu = next(h for h in hubs if h.hub_id == "ramu")
    assert (ramu.district, ramu.division) == ("Cox's Bazar", "Chattogram")
    # deterministic, and any prefix spans every division
    assert [h.hub_id for h in make_hubs(20)] == [h.hub_id for h in hubs[:20]]
    assert len({h.division for h in hubs[:8]}) == 8
    assert len({h.hub_id for h in make_hubs(10_000)}) == 10_000


async def test_simulated_fleet_reports_and_raises_the_right_alerts(server: FleetServer) -> None:
    hubs = make_hubs(120, seed=7)
    tokens = register_hubs(server.db, hubs)
    assert set(tokens) == {h.hub_id for h in hubs} and all(tokens.values())
    stats = await run_simulation(server.url, hubs, rounds=2, concurrency=16)
    live = [h for h in hubs if h.profile != "silent"]
    assert stats.sent == 2 * len(live)
    assert stats.accepted == stats.sent, stats.errors

    _, body = await server.get_json("/api/hubs?paging=false")
    by_id = {h["id"]: h for h in body["hubs"]}
    expect = {"silent": ("red", "silent"), "hot": ("red", "temp"),
              "disk_full": ("red", "disk"), "integrity": ("red", "integrity"),
              "undervoltage": ("amber", "undervoltage"), "backlog": ("amber", "sync_lag"),
              "conflicts": ("amber", "conflicts"), "clock_off": ("amber", "clock")}
    for h in hubs:
        got = by_id[h.hub_id]
        if h.profile == "green":
            assert got["state"] == "green", (h.hub_id, got["alerts"])
        else:
            state, code = expect[h.profile]
            assert code in got["alerts"], (h.hub_id, h.profile, got["alerts"])
            assert got["state"] == state or (state == "amber" and got["state"] == "red")
    # backlog hubs came back from an outage with an offline summary
    backlog = next(h for h in hubs if h.profile == "backlog")
    _, detail = await server.get_json(f"/api/hubs/{backlog.hub_id}")
    assert detail["summary"]["dropped"] == 120
    assert detail["heartbeats"] == 2 and detail["samples"] == 10

    # registering again (a restarted simulator) keeps tokens and continues seq
    again = make_hubs(120, seed=7)
    assert register_hubs(server.db, again) == tokens
    stats = await run_simulation(server.url, again, rounds=1)
    assert stats.accepted == stats.sent, stats.errors
