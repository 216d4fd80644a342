"""Simulated hubs: realistic, varied fleets that post signed heartbeats over HTTP.

Used by the tests, the bench, ``appliance fleet simulate`` and ``appliance demo``::

    hubs = make_hubs(500)
    tokens = register_hubs(data_dir / "fleet.db", hubs)   # enrol directly in the fleet DB
    stats = await run_simulation("http://127.0.0.1:8090", hubs, rounds=2)

Most hubs are green; the rest have one realistic problem each (see ``PROFILES``). Hubs
are spread across all 8 divisions and named after real upazilas. A ``silent`` hub gets
one heartbeat back-dated by hours at registration and never posts afterwards, so it
shows as silent at once.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import random
import re
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from .. import signing
from ..dhis2.timefmt import iso_z as iso
from .alerts import Thresholds
from .db import FleetDB, NewHub, ingest_tx, sweep_tx
from .geography import upazilas
from .models import parse_heartbeat

# profile -> share of the fleet (the rest is green)
PROFILES: dict[str, float] = {
    "silent": 0.04, "hot": 0.04, "undervoltage": 0.06, "disk_full": 0.03, "backlog": 0.05,
    "conflicts": 0.05, "clock_off": 0.03, "integrity": 0.01,
}
SAMPLE_INTERVAL_S = 60.0


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


@dataclass
class SimHub:
    hub_id: str
    name: str
    division: str
    district: str
    upazila: str
    profile: str = "green"
    token: str = ""
    seq: int = 0
    boot_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    version: str = "0.1.0"
    clock_error_s: float = 0.0  # hub clock minus true time
    seed: int = 0
    # evolving readings
    power_cuts: int = 0
    sd_written_mb: float = 0.0
    booted_at: float = 0.0
    disk_pct: float = 40.0
    base_temp: float = 55.0
    pending: int = 0
    conflicts: int = 0
    modem: bool | None = True
    has_sensors: bool = True
    last_sample_at: float | None = None  # true time
    rng: random.Random = field(default_factory=random.Random, repr=False)

    @property
    def org_unit_id(self) -> str:
        # stable across runs (str hash() is salted per process)
        return "OU" + hashlib.sha256(self.hub_id.encode()).hexdigest()[:9]

    # -- one sample -----------------------------------------------------------------
    def sample(self, t: float) -> dict[str, Any]:
        r, p = self.rng, self.profile
        temp = self.base_temp + r.uniform(-2.5, 2.5)
        uv_now = p == "undervoltage" and r.random() < 0.3
        uv_seen = p == "undervoltage"
        throttled_now = p == "hot" and temp > 84
        capped = p == "hot"
        mask = (uv_now * 1) | (throttled_now * 4) | (uv_seen << 16) | (capped << 17) | \
            ((throttled_now or p == "hot") << 18)
        if p == "undervoltage" and r.random() < 0.02:
            self.power_cuts += 1
        self.sd_written_mb += r.uniform(0.5, 3.0)
        if p == "backlog":
            self.pending += r.randint(0, 40)
        else:
            self.pending = max(0, self.pending + r.randint(-15, 15))
        lag = (r.uniform(50, 150) * 3600 if p == "backlog" else r.uniform(60, 1800))
        disk = min(99.5, self.disk_pct + r.uniform(-0.01, 0.012))
        self.disk_pct = disk
        hub_t = t + self.clock_error_s
        return {
            "at": iso(hub_t),
            "cpu_pct": round(r.uniform(3, 35), 1), "load1": round(r.uniform(0.05, 1.5), 2),
            "mem_pct": round(r.uniform(25, 70), 1), "disk_pct": round(disk, 1),
            "disk_free_mb": round((100 - disk) * 290, 0),
            "temp_c": round(temp, 1) if self.has_sensors else None,
            "throttled": mask if self.has_sensors else None,
            "undervoltage_now": uv_now if self.has_sensors else None,
            "undervoltage_seen": uv_seen if self.has_sensors else None,
            "throttled_now": throttled_now if self.has_sensors else None,
            "freq_capped_seen": capped if self.has_sensors else None,
            "sd_written_mb": round(self.sd_written_mb, 1),
            "ro_remount": p == "integrity" and self.seed % 2 == 1,
            "power_cuts": self.power_cuts,
            "ntp_synced": p != "clock_off",
            # the hub's own estimate, national minus hub: positive when the hub is behind
            "clock_offset_s": round(-self.clock_error_s if p == "clock_off" else
                                    r.uniform(-0.5, 0.5), 2),
            "integrity_ok": not (p == "integrity" and self.seed % 2 == 0),
            "modem_present": self.modem,
            "link_up": (p != "backlog") if self.modem is not None else None,
            "sync": {"pending": self.pending,
                     "conflicts": self.conflicts,
                     "rejected": 1 if p == "conflicts" else 0,
                     "last_success": iso(hub_t - lag), "lag_s": round(lag)},
        }

    # -- one heartbeat -----------------------------------------------------------------
    def heartbeat(self, now: float, n_samples: int = 5,
                  summary: dict[str, Any] | None = None) -> dict[str, Any]:
        """The next heartbeat at true time ``now``; samples are spread since the last one."""
        start = now - (n_samples - 1) * SAMPLE_INTERVAL_S
        if self.last_sample_at is not None:
            start = max(start, self.last_sample_at + 1.0)
        step = (now - start) / (n_samples - 1) if n_samples > 1 else 0.0
        times = [min(now, start + i * step) for i in range(n_samples)]
        self.last_sample_at = now
        self.seq += 1
        return {
            "hub_id": self.hub_id, "seq": self.seq, "sent_at": iso(now + self.clock_error_s),
            "version": self.version, "name": self.name,
            "org_unit": {"id": self.org_unit_id, "name": self.upazila,
                         "district": self.district, "division": self.division},
            "boot_id": self.boot_id, "uptime_s": int(max(0.0, now - self.booted_at)),
            "samples": [self.sample(t) for t in times], "summary": summary,
            "reporting": self.reporting(now),
        }

    def reporting(self, now: float) -> list[dict[str, Any]]:
        """Completeness of 4 CC forms at 27 clinics and the UHC's report (#14) for the last
        3 months; a hub with a sync backlog has less received, a silent one less done."""
        r = random.Random(self.seed * 7919 + 14)  # its own: the samples' sequence stays
        share = {"silent": 0.4, "backlog": 0.75}.get(self.profile, r.uniform(0.7, 1.0))
        d = time.gmtime(now)
        m = d.tm_year * 12 + d.tm_mon - 1
        out = []
        for i in range(1, 4):
            pe = f"{(m - i) // 12}{(m - i) % 12 + 1:02d}"
            for k, expected in enumerate((27, 27, 27, 27, 1)):
                done = min(expected, round(expected * min(1.0, share + 0.05 * i)))
                on_time = round(done * r.uniform(0.6, 1.0))
                received = done if self.profile != "backlog" else round(done * 0.3)
                out.append({"dataSet": f"SimForm{k:04d}", "period": pe, "expected": expected,
                            "complete": done, "onTime": on_time, "received": received})
        return out


def make_hubs(n: int, *, seed: int = 1, now: float | None = None) -> list[SimHub]:
    """``n`` hubs across Bangladesh with a deterministic mix of states."""
    now = time.time() if now is None else now
    rng = random.Random(seed)
    places = upazilas()
    clashes = Counter(slug(u) for _, _, u in places)
    profiles: list[str] = []
    for name, share in PROFILES.items():
        profiles += [name] * max(1 if n >= 3 * len(PROFILES) else 0, round(n * share))
    profiles = (profiles + ["green"] * n)[:n]
    rng.shuffle(profiles)
    hubs = []
    for i in range(n):
        div, dist, upa = places[i % len(places)]
        base = slug(upa) if clashes[slug(upa)] == 1 else f"{slug(upa)}-{slug(dist)}"
        lap = i // len(places)
        hub_id = base if lap == 0 else f"{base}-{lap + 1}"
        name = f"{upa} UHC hub" + ("" if lap == 0 else f" {lap + 1}")
        h = SimHub(hub_id=hub_id, name=name, division=div, district=dist, upazila=upa,
                   profile=profiles[i], seed=i, rng=random.Random(seed * 1_000_003 + i),
                   boot_id=uuid.UUID(int=rng.getrandbits(128)).hex)
        r = h.rng
        h.version = "0.1.0" if r.random() < 0.9 else "0.0.9"
        h.booted_at = now - r.uniform(600, 20 * 86400)
        h.power_cuts = r.randint(0, 30) + (40 if h.profile == "undervoltage" else 0)
        h.sd_written_mb = r.uniform(200, 20000)
        h.disk_pct = r.uniform(92, 97) if h.profile == "disk_full" else r.uniform(15, 70)
        h.base_temp = r.uniform(83, 87) if h.profile == "hot" else r.uniform(44, 66)
        h.pending = r.randint(3000, 25000) if h.profile == "backlog" else r.randint(0, 60)
        h.conflicts = r.randint(1, 12) if h.profile == "conflicts" else 0
        h.modem = None if r.random() < 0.05 else r.random() < 0.6
        h.has_sensors = h.profile in ("hot", "undervoltage") or r.random() > 0.04
        if h.profile == "clock_off":  # no RTC and no NTP since the last power cut
            h.clock_error_s = -r.uniform(1200, 4 * 3600)
        else:
            h.clock_error_s = r.uniform(-3, 3)
        hubs.append(h)
    return hubs


# ------------------------------------------------------------------------ enrolment
def register_hubs(db: FleetDB | str | Path, hubs: list[SimHub], *, now: float | None = None,
                  history_h: float = 0.0, thresholds: Thresholds | None = None,
                  max_skew_s: float = 900.0) -> dict[str, str]:
    """Enrol ``hubs`` directly in a fleet DB; returns {hub_id: token} and sets ``hub.token``.

    Hubs already enrolled keep their token and continue their ``seq``. ``silent`` hubs get
    one heartbeat back-dated by hours; with ``history_h`` every other hub gets that much
    back-dated history too (half-hourly heartbeats), so charts have something to show.
    """
    own = not isinstance(db, FleetDB)
    fdb = FleetDB(db) if not isinstance(db, FleetDB) else db
    now = time.time() if now is None else now
    th = thresholds or Thresholds()
    try:
        known = dict(fdb.read_sync(lambda c: [
            (r[0], (r[1], r[2])) for r in c.execute("SELECT id, last_seq, boot_id FROM hubs")]))
        new = [h for h in hubs if h.hub_id not in known]
        issued = fdb.add_hubs([NewHub(h.hub_id, h.name, h.district, h.division, h.upazila,
                                      h.org_unit_id) for h in new], now=now)
        for h in hubs:
            if h.hub_id in issued:
                h.token = issued[h.hub_id]
            else:
                h.token = fdb.token_of(h.hub_id) or ""
                last_seq, boot = known[h.hub_id]
                h.seq = max(h.seq, last_seq or 0)
                h.boot_id = boot or h.boot_id
        backfill: list[tuple[dict[str, Any], float]] = []
        for h in new:
            if h.profile == "silent":
                when = now - h.rng.uniform(2, 30) * 3600
                backfill.append((h.heartbeat(when), when))
            elif history_h > 0:
                t = now - history_h * 3600
                while t < now - 600:
                    backfill.append((h.heartbeat(t, n_samples=30), t))
                    t += 1800
        backfill.sort(key=lambda x: x[1])

        def tx(conn: Any) -> None:
            for payload, received in backfill:
                ingest_tx(conn, parse_heartbeat(payload), received, max_skew_s, th)
            sweep_tx(conn, now, th)
        fdb.write_sync(tx)
    finally:
        if own:
            fdb.close()
    return {h.hub_id: h.token for h in hubs}


# ------------------------------------------------------------------------------ HTTP
def encode_heartbeat(payload: dict[str, Any], hub_id: str, token: str,
                     ) -> tuple[bytes, dict[str, str]]:
    """Body and headers exactly as the hub's health agent sends them."""
    body = gzip.compress(orjson.dumps(payload), compresslevel=6)
    return body, {"Content-Type": "application/json", "Content-Encoding": "gzip",
                  "X-Hub-Id": hub_id, "X-Hub-Signature": signing.sign(token, body),
                  "Authorization": f"Bearer {token}"}


@dataclass
class SimStats:
    sent: int = 0
    accepted: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # first few rejection messages


async def post(session: aiohttp.ClientSession, url: str, body: bytes,
               headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    async with session.post(url.rstrip("/") + "/api/heartbeats", data=body,
                            headers=headers) as resp:
        data = await resp.read()
        try:
            return resp.status, orjson.loads(data)
        except orjson.JSONDecodeError:
            return resp.status, {"message": data[:200].decode(errors="replace")}


async def run_simulation(url: str, hubs: list[SimHub], rounds: int = 1, *,
                         interval_s: float = 0.0, concurrency: int = 32,
                         samples_per_heartbeat: int = 5,
                         session: aiohttp.ClientSession | None = None) -> SimStats:
    """Each round, every hub except the ``silent`` ones posts one heartbeat.

    ``rounds=0`` runs until cancelled; ``interval_s`` is the pause between rounds.
    """
    stats = SimStats()
    own = session is None
    sess = session or aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=concurrency),
        timeout=aiohttp.ClientTimeout(total=60), auto_decompress=True)
    sem = asyncio.Semaphore(concurrency)
    first_round = True

    async def one(h: SimHub) -> None:
        summary = None
        if first_round and h.profile == "backlog":
            # offline for hours: the oldest queued samples were summarised and dropped
            summary = {"dropped": 120, "from": iso(time.time() - 5 * 3600),
                       "to": iso(time.time() - 3 * 3600), "max_temp_c": h.base_temp + 4,
                       "undervoltage_seen": False, "min_disk_free_mb": 8000}
        payload = h.heartbeat(time.time(), samples_per_heartbeat, summary)
        body, headers = encode_heartbeat(payload, h.hub_id, h.token)
        async with sem:
            t0 = time.perf_counter()
            try:
                status, reply = await post(sess, url, body, headers)
            except (TimeoutError, aiohttp.ClientError) as e:
                status, reply = 0, {"message": str(e)}
            stats.latencies.append(time.perf_counter() - t0)
        stats.sent += 1
        stats.statuses[status] += 1
        if status == 200:
            stats.accepted += 1
        elif len(stats.errors) < 10:
            stats.errors.append(f"{h.hub_id}: {status} {reply.get('message')}")

    try:
        n = 0
        while rounds == 0 or n < rounds:
            await asyncio.gather(*(one(h) for h in hubs if h.profile != "silent"))
            first_round = False
            n += 1
            if interval_s and (rounds == 0 or n < rounds):
                await asyncio.sleep(interval_s)
    finally:
        if own:
            await sess.close()
    return stats
