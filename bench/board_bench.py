"""The reporting board's targets (issue 14):

- 300 boards open on a real hub process (Server-Sent Events, /api/hub/board/events) of
  28 clinics × 4 forms while the reporting-day load (bench/hub_bench.py's: 300 clients ×
  4 forms of ~150 values) runs against the same process: a form completed through the API
  reaches every board in under 2 s at the 99th percentile. The latency is measured from
  just before the completion is sent (so it includes that write's own wait under the load)
  to the moment each board's stream delivers the changed cell; a board that never gets it
  counts as missed.
- page weight: /hub/board with every asset it loads, gzip as a browser asks, under 100 KB
  transferred, nothing from another host; the board's data (the stream's first event)
  is printed beside it.

The same load runs first with no board open, on the same hub, and its p99 is printed
beside: what the boards cost the reporting day is the difference.

The hub runs as its own process; the 300 boards and the load come from this one, so on a
2-core machine they share the CPU with the hub, as laptops on the LAN would not.
"""

from __future__ import annotations

import asyncio
import base64
import re
import shutil
import signal
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from appliance import demo
from appliance.demo import values as demo_values
from bench.hub_bench import pct, post_forms, start_hub

AUTH = "Basic " + base64.b64encode(b"admin:district").decode()
BOARDS = 300
CHANGES = 24           # completions made while the load runs
# the load of 1,200 forms lasts a few seconds on a quiet machine: the changes come fast
# enough to fall inside it, and the target is read from those that did
CHANGE_EVERY_S = 0.05
TARGET_S = 2.0
PAGE_KB = 100


def previous_month() -> str:
    d = date.today()
    m = d.year * 12 + d.month - 2
    return f"{m // 12}{m % 12 + 1:02d}"


class Boards:
    """BOARDS streams, and when each saw each change."""

    def __init__(self) -> None:
        self.ready = 0
        self.started: dict[tuple[str, str], float] = {}  # change -> time it was sent
        self.arrived: dict[tuple[str, str], list[float]] = {}
        self.errors: list[str] = []
        self.first_event_bytes = 0
        self.all_ready = asyncio.Event()

    async def watch(self, s: aiohttp.ClientSession, url: str) -> None:
        try:
            async with s.get(url, headers={"Accept": "text/event-stream"}) as r:
                if r.status != 200:
                    self.errors.append(f"{r.status}")
                    return
                event, size = "", 0
                async for raw in r.content:
                    line = raw.decode()
                    size += len(raw)
                    if line.startswith("event: "):
                        event = line[7:].strip()
                    elif line.startswith("data: "):
                        if event == "board":
                            self.first_event_bytes = size
                            self.ready += 1
                            if self.ready == BOARDS:
                                self.all_ready.set()
                        elif event == "cells":
                            now = time.perf_counter()
                            for c in orjson.loads(line[6:])["cells"]:
                                key = (c["ou"], c["ds"])
                                if key in self.started and c["state"] == "complete":
                                    self.arrived.setdefault(key, []).append(now - self.started[key])
        except (aiohttp.ClientError, asyncio.CancelledError) as e:
            if not isinstance(e, asyncio.CancelledError):
                self.errors.append(repr(e))


async def page_weight(url: str) -> dict[str, Any]:
    """Bytes on the wire (gzip) of /hub/board and everything it loads."""
    async with aiohttp.ClientSession(auto_decompress=False, headers={
            "Accept-Encoding": "gzip, deflate"}) as s:
        async def get(path: str) -> tuple[int, bytes, str]:
            async with s.get(url + path) as r:
                body = await r.read()
                head = sum(len(k) + len(v) + 4 for k, v in r.raw_headers) + 17
                return len(body) + head, body, r.headers.get("Content-Encoding", "")
        total, body, _enc = await get("/hub/board")
        import gzip
        html = gzip.decompress(body).decode() if body[:2] == b"\x1f\x8b" else body.decode()
        assets = re.findall(r'(?:href|src)="(/hub/static/[^"]+)"', html)
        external = re.findall(r'(?:href|src)="(https?://[^"]+)"', html)
        seen, files = set(), {}
        queue = list(assets)
        while queue:
            a = queue.pop()
            if a in seen:
                continue
            seen.add(a)
            n, b, enc = await get(a)
            total += n
            files[a.split("?")[0]] = n
            text = gzip.decompress(b).decode() if enc == "gzip" else b.decode()
            for imp in re.findall(r"from '\./([\w.]+)'", text):  # ES module imports
                queue.append(f"/hub/static/{imp}")
        return {"bytes": total, "files": files, "external": external}


async def run(url: str) -> dict[str, Any]:
    pe = previous_month()
    boards = Boards()
    conn = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=conn, headers={"Authorization": AUTH},
                                     timeout=aiohttp.ClientTimeout(total=None)) as s:
        async with s.get(f"{url}/api/hub/board", params={"pe": pe}) as r:
            board = await r.json()
        cc = [d["id"] for d in board["dataSets"] if d["name"].startswith("CC Form")]
        todo = [(c["ou"], c["ds"]) for c in board["cells"]
                if c["ds"] in cc and c["expected"] and c["state"] != "complete"][:CHANGES]
        # the same load with no board open first (other months' forms, each new to the
        # store): what the boards cost the reporting day is the difference
        doc = demo.hub()
        base_pool: list[dict[str, Any]] = []
        for m in [f"2023{m:02d}" for m in range(1, 13)]:
            base_pool += [f for f in demo_values.forms(doc, m) if len(f["dataValues"]) >= 100]
        base_lat: list[float] = []
        base_err: list[str] = []
        await post_forms(url, [base_pool[i * 4:(i + 1) * 4] for i in range(300)], base_lat,
                         base_err)
        t0 = time.perf_counter()
        watchers = [asyncio.create_task(boards.watch(s, f"{url}/api/hub/board/events?pe={pe}"))
                    for _ in range(BOARDS)]
        await asyncio.wait_for(boards.all_ready.wait(), 120)
        connect_s = time.perf_counter() - t0

        # the reporting day's load, as bench/hub_bench.py makes it
        pool: list[dict[str, Any]] = []
        for m in [f"2024{m:02d}" for m in range(1, 13)]:
            pool += [f for f in demo_values.forms(doc, m) if len(f["dataValues"]) >= 100]
        clients = [pool[i * 4:(i + 1) * 4] for i in range(300)]
        day_lat: list[float] = []
        day_err: list[str] = []
        load = asyncio.create_task(post_forms(url, clients, day_lat, day_err))
        await asyncio.sleep(0.3)
        write_s: list[float] = []
        during: list[tuple[str, str]] = []
        for ou, ds in todo:
            boards.started[(ou, ds)] = time.perf_counter()
            async with s.post(f"{url}/api/completeDataSetRegistrations", json={
                    "completeDataSetRegistrations": [
                        {"dataSet": ds, "period": pe, "organisationUnit": ou}]}) as r:
                if r.status != 200:
                    boards.errors.append(f"completion {r.status}")
            write_s.append(time.perf_counter() - boards.started[(ou, ds)])
            if not load.done():
                during.append((ou, ds))
            await asyncio.sleep(CHANGE_EVERY_S)
        await load
        await asyncio.sleep(TARGET_S * 2)  # the last changes' stragglers
        for w in watchers:
            w.cancel()
        await asyncio.gather(*watchers, return_exceptions=True)
    lat: list[float] = []
    lat_load: list[float] = []
    missed = 0
    for key in todo:
        got = boards.arrived.get(key, [])
        missed += BOARDS - len(got)
        lat += got
        if key in during:
            lat_load += got
    return {"boards": BOARDS, "changes": len(todo), "changes_during_load": len(during),
            "p99_during_load_s": round(pct(lat_load, 99), 3) if lat_load else None,
            "deliveries": len(lat), "missed": missed, "connect_all_s": round(connect_s, 2),
            "p50_s": round(pct(lat, 50), 3) if lat else None,
            "p99_s": round(pct(lat, 99), 3) if lat else None,
            "max_s": round(max(lat), 3) if lat else None,
            "completion_write_p50_s": round(pct(write_s, 50), 3) if write_s else None,
            "first_event_bytes": boards.first_event_bytes,
            "stream_errors": boards.errors[:5],
            "reporting_day": {"p99_s": round(pct(day_lat, 99), 3), "errors": len(day_err),
                              "forms": len(day_lat)},
            "reporting_day_no_board": {"p99_s": round(pct(base_lat, 99), 3),
                                       "errors": len(base_err), "forms": len(base_lat)}}


def main() -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="boardbench-"))
    try:
        (tmp / "hub").mkdir()
        proc, url, _ = start_hub(tmp / "hub")
        try:
            weight = asyncio.run(page_weight(url))
            res = asyncio.run(run(url))
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
        res["page_weight"] = weight
        p99 = res["p99_s"] if res["p99_s"] is not None else float("inf")
        kb = weight["bytes"] / 1024
        ok = p99 < TARGET_S and res["missed"] == 0
        loaded = res["p99_during_load_s"]
        res["targets"] = [
            ("board update to all 300 boards p99", res["p99_s"], f"< {TARGET_S}", "s", ok),
            (f"the same, the {res['changes_during_load']} changes made during the load",
             loaded, f"< {TARGET_S}", "s", loaded is not None and loaded < TARGET_S),
            ("board updates missed", res["missed"], "0", "", res["missed"] == 0),
            ("reporting day p99 beside 300 boards", res["reporting_day"]["p99_s"], "< 1", "s",
             res["reporting_day"]["p99_s"] < 1.0),
            ("the same day with no board open, this run", res["reporting_day_no_board"]["p99_s"],
             "info", "s", None),
            ("board page weight (gzip, with assets)", round(kb, 1), f"< {PAGE_KB}", "KB",
             kb < PAGE_KB and not weight["external"]),
            ("board data, first event (not gzip)", round(res["first_event_bytes"] / 1024, 1),
             "", "KB", None),
        ]
        for k, v in res.items():
            if k != "targets":
                print(f"   {k}: {v}")
        return res
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
