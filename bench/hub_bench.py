"""Hub LAN targets (DESIGN.md §8, issue 2):

- import through HTTP >= 0.5x raw SQLite executemany of the same rows, form by form;
- reporting day: 300 concurrent clients x 4 forms of ~150 values, zero errors, p99 < 1 s;
- ready to answer within 3 s of start; RSS < 100 MB through the load;
- issue 12: the same reporting day over HTTPS, as the tablets use the hub: p99 < 1 s and
  < 1.3x the plain-HTTP p99 of this run. The hub serves both at once (the laptops stay on
  http://hub.local); its certificate comes from a throwaway CA made here. HTTP runs first,
  HTTPS second on a store that is 1,200 forms bigger, with forms of other months.

"Start" is the appliance's: a hub starting on the store it already holds (after a power
cut). The demo's first boot, which also builds the demo store (metadata, a year of
values, the register history), is timed and printed beside it, not against the target.

The hub runs as a real process on loopback; the load comes from this process, so on a
2-core machine the clients and the hub share the CPU, as they would not on the LAN.
"""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import signal
import socket
import sqlite3
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import psutil

from appliance import demo
from appliance.demo import values as demo_values
from appliance.store import Store
from appliance.store.datavalues import DV_COLS

AUTH = "Basic " + base64.b64encode(b"admin:district").decode()
PERIODS_2025 = [f"2025{m:02d}" for m in range(1, 13)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_hub(data_dir: Path, config: Path | None = None
              ) -> tuple[subprocess.Popen[bytes], str, float]:
    port = _free_port()
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "appliance.cli", "hub", "--demo", "--host", "127.0.0.1",
         "--port", str(port), "--data-dir", str(data_dir), "--no-zeroconf",
         *(["--config", str(config)] if config else [])],
        stdout=subprocess.DEVNULL, stderr=open(data_dir.parent / "hub.err", "wb"))  # noqa: SIM115
    url = f"http://127.0.0.1:{port}"
    import urllib.request
    while True:
        if proc.poll() is not None:
            raise RuntimeError("hub exited during start")
        try:
            with urllib.request.urlopen(url + "/api/system/ping", timeout=0.5) as r:
                if r.status == 200:
                    return proc, url, time.monotonic() - t0
        except OSError:
            time.sleep(0.02)


def raw_baseline(forms: list[dict[str, Any]], path: Path) -> float:
    """values/s of executemany into the same table, one transaction per form, same pragmas."""
    Store(path).close()  # same schema, WAL, migrations
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    sql = (f"INSERT INTO datavalue({DV_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) "
           "ON CONFLICT(de, pe, ou, coc, aoc) DO UPDATE SET value=excluded.value")
    n = 0
    t0 = time.perf_counter()
    for i, f in enumerate(forms):
        rows = [(v["dataElement"], v["period"], v["orgUnit"], v["categoryOptionCombo"],
                 v["attributeOptionCombo"], v["value"], None, 0, "admin",
                 "2025-01-01T00:00:00.000", "2025-01-01T00:00:00.000", 0, "pending", i, "local",
                 None) for v in f["dataValues"]]
        conn.execute("BEGIN")
        conn.executemany(sql, rows)
        conn.execute("COMMIT")
        n += len(rows)
    dt = time.perf_counter() - t0
    conn.close()
    return n / dt


async def post_forms(url: str, forms: list[list[dict[str, Any]]],
                     latencies: list[float], errors: list[str],
                     tls: tuple[ssl.SSLContext, str] | None = None) -> None:
    """Each inner list is one client's forms, posted one after the other. ``tls``: (a
    context trusting the hub's CA, the name to verify) for an https:// ``url``."""
    conn = aiohttp.TCPConnector(limit=0, ssl=tls[0] if tls else True)
    extra: dict[str, Any] = {"server_hostname": tls[1]} if tls else {}
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=conn, timeout=timeout,
                                     headers={"Authorization": AUTH}) as s:
        async def client(mine: list[dict[str, Any]]) -> None:
            for f in mine:
                body = orjson.dumps(f)
                t0 = time.perf_counter()
                try:
                    async with s.post(url + "/api/dataValueSets", data=body,
                                      headers={"Content-Type": "application/json"},
                                      **extra) as r:
                        reply = await r.json()
                        ok = r.status == 200 and reply["response"]["status"] == "SUCCESS"
                        if not ok:
                            errors.append(f"{r.status} {reply.get('message')}")
                except Exception as e:  # counted, not raised: the figure is the error count
                    errors.append(repr(e))
                latencies.append(time.perf_counter() - t0)
        await asyncio.gather(*(client(m) for m in forms))


class RssSampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.proc = psutil.Process(pid)
        self.peak = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.peak = max(self.peak, self.proc.memory_info().rss)
            except psutil.Error:
                return
            time.sleep(0.05)


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


HTTPS_NAME = "ramu.hub.bench.test"


def https_config(tmp: Path, data_dir: Path) -> tuple[Path, int, ssl.SSLContext]:
    """hub.toml serving HTTPS on loopback with a certificate from a throwaway CA, installed
    as the fleet's would be; the client context trusts that CA only."""
    from appliance import tlscert
    from appliance.provisioning import tomlout
    from tests.tlsca import TestCA

    ca = TestCA()
    key = tlscert.new_key()
    tlscert.install(data_dir / "tls", ca.issue(key, HTTPS_NAME), key, HTTPS_NAME)
    port = _free_port()
    conf = tmp / "hub.toml"
    conf.write_text(tomlout.dumps({"tls": {"name": HTTPS_NAME,
                                           "listen": f"127.0.0.1:{port}"}}))
    return conf, port, ca.client_context()


def main() -> dict[str, Any]:
    doc = demo.hub()
    tmp = Path(tempfile.mkdtemp(prefix="hubbench-"))
    try:
        month = [f for f in demo_values.forms(doc, PERIODS_2025[0])]
        cc_forms = [f for f in month if len(f["dataValues"]) >= 100]
        values_per_form = statistics.mean(len(f["dataValues"]) for f in cc_forms)

        raw_first = raw_baseline(month, tmp / "raw.db")

        (tmp / "hub").mkdir()
        conf, https_port, https_ctx = https_config(tmp, tmp / "hub")
        # the demo seeds its store
        proc, url, first_boot_s = start_hub(tmp / "hub", conf)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        proc, url, ready_s = start_hub(tmp / "hub", conf)
        sampler = RssSampler(proc.pid)
        sampler.start()
        try:
            # import rate, form by form: 1 client (sequential) and 8 clients at once
            seq_forms = demo_values.forms(doc, PERIODS_2025[1])
            lat: list[float] = []
            err: list[str] = []
            t0 = time.perf_counter()
            asyncio.run(post_forms(url, [seq_forms], lat, err))
            seq_rate = sum(len(f["dataValues"]) for f in seq_forms) / (time.perf_counter() - t0)
            par_forms = demo_values.forms(doc, PERIODS_2025[2])
            t0 = time.perf_counter()
            asyncio.run(post_forms(url, [par_forms[i::8] for i in range(8)], lat, err))
            par_rate = sum(len(f["dataValues"]) for f in par_forms) / (time.perf_counter() - t0)
            import_errors = len(err)

            # reporting day: 300 clients x 4 CC forms
            pool: list[dict[str, Any]] = []
            for pe in [f"2024{m:02d}" for m in range(1, 13)]:
                pool += [f for f in demo_values.forms(doc, pe) if len(f["dataValues"]) >= 100]
            clients = [pool[i * 4:(i + 1) * 4] for i in range(300)]
            assert all(len(c) == 4 for c in clients), "not enough distinct forms for 300 clients"
            day_lat: list[float] = []
            day_err: list[str] = []
            t0 = time.perf_counter()
            asyncio.run(post_forms(url, clients, day_lat, day_err))
            day_wall = time.perf_counter() - t0
            http_peak = sampler.peak

            # the same day over HTTPS (other months' forms: each is new to the store)
            tls_pool: list[dict[str, Any]] = []
            for pe in [f"2023{m:02d}" for m in range(1, 13)]:
                tls_pool += [f for f in demo_values.forms(doc, pe)
                             if len(f["dataValues"]) >= 100]
            tls_clients = [tls_pool[i * 4:(i + 1) * 4] for i in range(300)]
            assert all(len(c) == 4 for c in tls_clients), "not enough forms for 300 clients"
            tls_lat: list[float] = []
            tls_err: list[str] = []
            t0 = time.perf_counter()
            asyncio.run(post_forms(f"https://127.0.0.1:{https_port}", tls_clients, tls_lat,
                                   tls_err, tls=(https_ctx, HTTPS_NAME)))
            tls_wall = time.perf_counter() - t0
        finally:
            sampler.stop.set()
            sampler.join()
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
        # the raw rate is taken before and after the HTTP runs, so a disk or CPU that is
        # busy for part of the run weighs on both sides of the ratio
        raw_rate = (raw_first + raw_baseline(demo_values.forms(doc, PERIODS_2025[3]),
                                             tmp / "raw2.db")) / 2
        # the plain-HTTP load (the laptops), and the whole run with the HTTPS day after it
        rss_mb, rss_all_mb = http_peak / 1e6, sampler.peak / 1e6
        ratio = max(seq_rate, par_rate) / raw_rate
        p99 = pct(day_lat, 99)
        tls_p99 = pct(tls_lat, 99)
        res: dict[str, Any] = {
            "values_per_cc_form": round(values_per_form, 1),
            "raw_executemany_values_per_s": round(raw_rate),
            "http_import_values_per_s_sequential": round(seq_rate),
            "http_import_values_per_s_8_clients": round(par_rate),
            "import_errors": import_errors,
            "reporting_day": {"clients": 300, "forms": 1200, "wall_s": round(day_wall, 2),
                              "p50_s": round(pct(day_lat, 50), 3), "p99_s": round(p99, 3),
                              "max_s": round(max(day_lat), 3), "errors": len(day_err),
                              "first_errors": day_err[:3]},
            "reporting_day_https": {"clients": 300, "forms": 1200, "wall_s": round(tls_wall, 2),
                                    "p50_s": round(pct(tls_lat, 50), 3),
                                    "p99_s": round(tls_p99, 3), "max_s": round(max(tls_lat), 3),
                                    "errors": len(tls_err), "first_errors": tls_err[:3]},
            "ready_s": round(ready_s, 2), "demo_first_boot_s": round(first_boot_s, 2),
            "peak_rss_mb": round(rss_mb, 1), "peak_rss_mb_with_https": round(rss_all_mb, 1),
            "cpus": os.cpu_count(),
        }
        res["targets"] = [
            ("LAN import / raw executemany", round(ratio, 2), ">= 0.5", "x", ratio >= 0.5),
            ("reporting day p99", round(p99, 3), "< 1", "s", p99 < 1.0),
            ("reporting day errors", len(day_err), "0", "", not day_err),
            ("reporting day over HTTPS p99", round(tls_p99, 3), "< 1", "s", tls_p99 < 1.0),
            ("HTTPS / HTTP reporting-day p99", round(tls_p99 / p99, 2), "< 1.3", "x",
             tls_p99 / p99 < 1.3),
            ("reporting day over HTTPS errors", len(tls_err), "0", "", not tls_err),
            ("hub ready after start", round(ready_s, 2), "< 3", "s", ready_s < 3),
            ("hub peak RSS under load", round(rss_mb, 1), "< 100", "MB", rss_mb < 100),
            ("the same, after the HTTPS day too", round(rss_all_mb, 1), "< 100", "MB",
             rss_all_mb < 100),
        ]
        for k, v in res.items():
            if k != "targets":
                print(f"   {k}: {v}")
        return res
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
