"""``/metrics`` in the Prometheus text exposition format (version 0.0.4).

Per-hub gauges carry the labels ``hub``, ``district`` and ``division`` so Grafana can
group by place; a value the hub did not report is left out (absent, not 0) as Prometheus
expects for unknown data. Ingest counters are per process and restart from zero, which
Prometheus' ``rate()`` handles.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .alerts import ALL_CODES, MB, STATE_RANK

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


@dataclass
class IngestStats:
    """Counters of the heartbeat endpoint, kept in memory."""

    received: int = 0
    accepted: int = 0
    samples: int = 0
    rejected: Counter[str] = field(default_factory=Counter)  # by reason
    buckets: list[int] = field(default_factory=lambda: [0] * len(LATENCY_BUCKETS))
    latency_sum: float = 0.0
    latency_count: int = 0

    def observe(self, seconds: float) -> None:
        self.latency_sum += seconds
        self.latency_count += 1
        for i, le in enumerate(LATENCY_BUCKETS):
            if seconds <= le:
                self.buckets[i] += 1


def escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def fmt(value: float) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


# (metric, help, hub row column or callable(row, now) -> value)
HUB_GAUGES: list[tuple[str, str, Any]] = [
    ("fleet_hub_up", "1 if the hub sent a heartbeat within silent_after_s, else 0", None),
    ("fleet_hub_last_seen_age_seconds", "Seconds since the hub's last accepted heartbeat",
     lambda r, now: None if r["last_seen"] is None else max(0.0, now - r["last_seen"])),
    ("fleet_hub_state", "Alert state: 0 green, 1 amber, 2 red",
     lambda r, now: 2 - STATE_RANK[r["state"]]),
    ("fleet_hub_sync_pending", "Changes waiting to be pushed to national (backlog)", "pending"),
    ("fleet_hub_sync_lag_seconds", "Seconds since the hub's last successful sync", "lag_s"),
    ("fleet_hub_sync_conflicts", "Unresolved sync conflicts", "conflicts"),
    ("fleet_hub_disk_used_percent", "Data disk used, percent", "disk_pct"),
    ("fleet_hub_temperature_celsius", "SoC temperature, degrees Celsius", "temp_c"),
    ("fleet_hub_undervoltage", "1 if undervoltage was seen in the last day",
     lambda r, now: int(",undervoltage," in r["alert_codes"])),
    ("fleet_hub_undervoltage_now", "1 if the hub is under-volted right now", "undervoltage_now"),
    ("fleet_hub_power_cuts", "Power cuts counted by the hub", "power_cuts"),
    ("fleet_hub_clock_offset_seconds",
     "Hub clock error in seconds, positive when behind (worst of receipt minus sent_at "
     "and the hub's own estimates)",
     "clock_offset_s"),
    ("fleet_hub_sd_written_megabytes", "Megabytes written to the SD card", "sd_written_mb"),
    ("fleet_hub_modem_month_bytes", "Bytes on the hub's modem this month (its zone), sent "
     "plus received, as its latest heartbeat counted them", "wire_month_bytes"),
    ("fleet_hub_modem_budget_bytes", "The hub's monthly modem budget in bytes (absent: none)",
     lambda r, now: None if not r["wire_budget_mb"] else r["wire_budget_mb"] * MB),
]


def render(hubs: Iterable[Any], now: float, silent_after_s: float,
           stats: IngestStats, open_alerts: Mapping[str, int]) -> str:
    rows = list(hubs)  # sqlite3.Row or dicts: anything indexable by column name
    out: list[str] = []
    labels = [
        f'hub="{escape_label(r["id"])}",district="{escape_label(r["district"] or "")}",'
        f'division="{escape_label(r["division"] or "")}"' for r in rows]
    for name, help_, src in HUB_GAUGES:
        out.append(f"# HELP {name} {help_}")
        out.append(f"# TYPE {name} gauge")
        for r, lab in zip(rows, labels, strict=True):
            if src is None:
                seen = r["last_seen"]
                v: Any = int(seen is not None and now - seen <= silent_after_s)
            elif callable(src):
                v = src(r, now)
            else:
                v = r[src]
            if v is not None:
                out.append(f"{name}{{{lab}}} {fmt(v)}")

    states = Counter(r["state"] for r in rows)
    up = sum(1 for r in rows
             if r["last_seen"] is not None and now - r["last_seen"] <= silent_after_s)
    out += ["# HELP fleet_hubs Enrolled hubs by alert state", "# TYPE fleet_hubs gauge"]
    out += [f'fleet_hubs{{state="{s}"}} {states.get(s, 0)}' for s in STATE_RANK]
    out += ["# HELP fleet_hubs_up Hubs heard from within silent_after_s",
            "# TYPE fleet_hubs_up gauge", f"fleet_hubs_up {up}"]
    out += ["# HELP fleet_sync_pending_total Backlog summed over all hubs",
            "# TYPE fleet_sync_pending_total gauge",
            f"fleet_sync_pending_total {sum(r['pending'] or 0 for r in rows)}"]
    out += ["# HELP fleet_sync_conflicts_total Unresolved conflicts summed over all hubs",
            "# TYPE fleet_sync_conflicts_total gauge",
            f"fleet_sync_conflicts_total {sum(r['conflicts'] or 0 for r in rows)}"]
    out += ["# HELP fleet_alerts Open alerts by rule", "# TYPE fleet_alerts gauge"]
    out += [f'fleet_alerts{{code="{c}"}} {open_alerts.get(c, 0)}' for c in ALL_CODES]

    out += ["# HELP fleet_heartbeats_received_total Heartbeat requests received",
            "# TYPE fleet_heartbeats_received_total counter",
            f"fleet_heartbeats_received_total {stats.received}",
            "# HELP fleet_heartbeats_accepted_total Heartbeats stored",
            "# TYPE fleet_heartbeats_accepted_total counter",
            f"fleet_heartbeats_accepted_total {stats.accepted}",
            "# HELP fleet_heartbeats_rejected_total Heartbeats refused, by reason",
            "# TYPE fleet_heartbeats_rejected_total counter"]
    out += [f'fleet_heartbeats_rejected_total{{reason="{escape_label(k)}"}} {v}'
            for k, v in sorted(stats.rejected.items())]
    out += ["# HELP fleet_samples_stored_total Samples stored",
            "# TYPE fleet_samples_stored_total counter",
            f"fleet_samples_stored_total {stats.samples}",
            "# HELP fleet_ingest_seconds Time to handle a heartbeat (accepted ones)",
            "# TYPE fleet_ingest_seconds histogram"]
    for le, n in zip(LATENCY_BUCKETS, stats.buckets, strict=True):
        out.append(f'fleet_ingest_seconds_bucket{{le="{le:g}"}} {n}')
    out += [f'fleet_ingest_seconds_bucket{{le="+Inf"}} {stats.latency_count}',
            f"fleet_ingest_seconds_sum {fmt(stats.latency_sum)}",
            f"fleet_ingest_seconds_count {stats.latency_count}"]
    return "\n".join(out) + "\n"
