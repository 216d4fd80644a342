"""/metrics is valid Prometheus text exposition with the expected values."""

from __future__ import annotations

import re
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from .conftest import FleetServer, heartbeat, sample

# one sample line: name, optional {labels}, value (no timestamps: we never send them)
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\\\|\\"|\\n)*"'
SAMPLE_LINE = re.compile(
    r"^[a-zA-Z_:][a-zA-Z0-9_:]*(?:\{" + LABEL + r"(?:," + LABEL + r")*\})? "
    r"(?:[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+)|NaN|[+-]Inf)$")
META_LINE = re.compile(r"^# (?:HELP [a-zA-Z_:][a-zA-Z0-9_:]* .*|TYPE [a-zA-Z_:][a-zA-Z0-9_:]* "
                       r"(?:counter|gauge|histogram|summary|untyped))$")


def check_format(text: str) -> dict[str, dict[frozenset[tuple[str, str]], float]]:
    assert text.endswith("\n")
    typed: set[str] = set()
    for line in text.splitlines():
        if line.startswith("#"):
            assert META_LINE.match(line), line
            if line.startswith("# TYPE "):
                name = line.split()[2]
                assert name not in typed, f"TYPE twice for {name}"
                typed.add(name)
        else:
            assert SAMPLE_LINE.match(line), line
    values: dict[str, dict[frozenset[tuple[str, str]], float]] = {}
    for family in text_string_to_metric_families(text):  # the reference parser agrees
        for s in family.samples:
            values.setdefault(s.name, {})[frozenset(s.labels.items())] = s.value
    return values


def hub_labels(hub: str, district: str, division: str) -> frozenset[tuple[str, str]]:
    return frozenset({("hub", hub), ("district", district), ("division", division)})


async def test_metrics_format_and_values(server: FleetServer) -> None:
    server.enroll("ramu", district="Cox's Bazar", division="Chattogram")
    server.enroll("odd", district='Quote "and" back\\slash', division="Line\nbreak")
    server.enroll("quiet", district="Sylhet", division="Sylhet")
    now = time.time()
    s = sample(now - 30, temp_c=83.5, disk_pct=91.0, power_cuts=17, undervoltage_now=True,
               sync={"pending": 4200, "conflicts": 3})
    assert (await server.send(heartbeat("ramu", seq=1, samples=[s])))[0] == 200
    odd = heartbeat("odd", seq=1, sent_at=now - 1000, org_unit=None)
    assert (await server.send(odd))[0] == 200
    await server.send(heartbeat("ramu", seq=1))  # a replay, counted as rejected

    status, text, headers = await server.get_text("/metrics")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    v = check_format(text)

    ramu = hub_labels("ramu", "Cox's Bazar", "Chattogram")
    assert v["fleet_hub_up"][ramu] == 1
    assert v["fleet_hub_temperature_celsius"][ramu] == 83.5
    assert v["fleet_hub_disk_used_percent"][ramu] == 91.0
    assert v["fleet_hub_sync_pending"][ramu] == 4200
    assert v["fleet_hub_sync_conflicts"][ramu] == 3
    assert v["fleet_hub_power_cuts"][ramu] == 17
    assert v["fleet_hub_undervoltage"][ramu] == 1
    assert v["fleet_hub_state"][ramu] == 2  # red
    assert v["fleet_hub_last_seen_age_seconds"][ramu] < 10
    assert abs(v["fleet_hub_clock_offset_seconds"][ramu]) < 5

    odd_labels = hub_labels("odd", 'Quote "and" back\\slash', "Line\nbreak")
    assert v["fleet_hub_clock_offset_seconds"][odd_labels] == pytest.approx(1000, abs=5)
    quiet = hub_labels("quiet", "Sylhet", "Sylhet")
    assert v["fleet_hub_up"][quiet] == 0
    assert quiet not in v["fleet_hub_temperature_celsius"]  # never reported: absent, not 0

    assert v["fleet_hubs"][frozenset({("state", "red")})] == 1
    assert v["fleet_hubs"][frozenset({("state", "amber")})] == 1
    assert v["fleet_hubs"][frozenset({("state", "green")})] == 1
    assert v["fleet_hubs_up"][frozenset()] == 2
    assert v["fleet_sync_pending_total"][frozenset()] == 4200 + 120
    assert v["fleet_alerts"][frozenset({("code", "temp")})] == 1
    assert v["fleet_alerts"][frozenset({("code", "clock")})] == 1
    assert v["fleet_heartbeats_accepted_total"][frozenset()] == 2
    assert v["fleet_heartbeats_received_total"][frozenset()] == 3
    assert v["fleet_heartbeats_rejected_total"][frozenset({("reason", "replay")})] == 1
    assert v["fleet_samples_stored_total"][frozenset()] == 2
    assert v["fleet_ingest_seconds_count"][frozenset()] == 2
    assert v["fleet_ingest_seconds_bucket"][frozenset({("le", "+Inf")})] == 2


async def test_metrics_gzip(server: FleetServer) -> None:
    server.enroll("ramu")
    async with server.session.get(server.url + "/metrics",
                                  headers={"Accept-Encoding": "gzip"}) as r:
        assert r.headers["Content-Encoding"] == "gzip"
        check_format(await r.text())
