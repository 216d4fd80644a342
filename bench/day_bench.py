"""The whole reporting day (issue 15, "Performance"): one upazila-month entered at the hub
over two hours, then eight hours of timer cycles, against the national stand-in over a
256 kbit/s link cut every 15 s.

In one run, no timed test. The national stand-in is its own process; the hub's sync engine
runs here, in-process, talking to national through the userspace ``FlappingProxy`` of
``tests/netlink/harness.py`` (a token bucket of 256 kbit/s each way, every connection reset
every 15 s and new ones refused for 3 s): ``bench/sync_bench.py``'s link without root.
(Its network-namespace link would need the engine in a namespace of its own.)

Time is compressed, never waited for, except what the link itself takes:

* *entry*: the month's forms (the demo generator's, as ``bench/wire_bench.py`` builds
  them) are written into the hub's store clinic by clinic, form by form, as the LAN import
  writes them, in 24 batches ("every 5 minutes for two hours"); the cycles run when the
  worker would run them (``enter_month``: the debounce and ``[sync] batch_s`` of
  ``sync/batching.py``, the timer, quick retries after a cut), until nothing is pending;
* *the rest of the day*: 32 timer cycles ("every 15 minutes for eight hours").

Between cycles the hub's own periodic decisions (the last full pull, the last metadata
check, the daily sweeps) are moved back by the simulated minutes, so each cycle decides
what it would after that much time. Bytes are counted twice: the proxy's payload bytes
(what crossed, no TCP/IP headers) for the targets, the client's categories for the split.

The day runs three times, each against a fresh stand-in: in CSV, the default wire format,
for the targets; then in JSON (the fallback, and the format before issue 15) and in CSV
pushed after every debounce (``batch_s = 0``, the schedule before the modem's batching),
printed beside.

Baseline **B**: gzip -9 of the month's minimal JSON (``dataElement``, ``period``,
``orgUnit``, ``categoryOptionCombo``, ``attributeOptionCombo``, ``value``) in entry order;
B in data-set order is printed beside it.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from appliance.config import defaults
from appliance.config import load as load_config
from appliance.store import Store
from appliance.store import datavalues as dv
from appliance.store.wirebytes import CATEGORIES, METADATA, OTHER, PULL, PUSH
from appliance.sync import state as sync_state
from appliance.sync.batching import DataTrigger
from appliance.sync.cycle import CycleResult, SyncEngine

from . import sync_bench, wire_bench

RATE_KBIT = sync_bench.RATE_KBIT
CUT_EVERY_S, CUT_DOWN_S = sync_bench.CUT_EVERY_S, sync_bench.CUT_DOWN_S
ENTRY_BATCHES = 24      # two hours of entry, a data-triggered cycle every 5 minutes
ENTRY_STEP_MIN = 5
TIMER_CYCLES = 32       # eight hours of the 15-minute timer
TIMER_STEP_MIN = 15
# sync_state keys holding a time (ms) the cycle compares with national's clock
CLOCK_KEYS = ("last_full_pull", "metadata_pulled_ms", "metadata_full_ms",
              "registrations_checked_ms", "approvals_checked_ms")


# The pulls re-read the 60 s before their watermark (a late national commit). Compressed,
# the day's cycles are a fraction of a second apart, so 60 s would re-download every
# cycle's echo many times over: the overlap is compressed too, to 600 ms, and the bench
# waits longer than that between cycles (``GAP_S``), as a hub's cycles are minutes apart
# and its pushes end long before the next pull's overlap begins. Without the wait, a push
# ended a few ms before the next cycle's pull began, and the bench downloaded each echo
# twice where a hub downloads it once.
OVERLAP_MS = 600
GAP_S = OVERLAP_MS / 1000 + 0.2


def compress_overlap() -> None:
    from appliance.sync import cycle, watermark

    def pull_since(wm: str | None, now_ms: int, overlap_ms: int = OVERLAP_MS) -> str:
        return watermark.pull_since(wm, now_ms, overlap_ms=min(overlap_ms, OVERLAP_MS))
    cycle.pull_since = pull_since  # type: ignore[assignment]


async def age(store: Store, minutes: float) -> None:
    """As if ``minutes`` had passed since the hub's periodic decisions were last taken."""
    st = await store.read(sync_state.read_state)
    shift = int(minutes * 60_000)
    moved = {k: str(int(st[k]) - shift) for k in CLOCK_KEYS if st.get(k, "").isdigit()}
    if moved:
        await store.write(lambda tx: sync_state.set_state(tx, moved))


def write_forms(store: Store, forms: list[dict[str, Any]]) -> None:
    for f in forms:
        rows = [dv.ValueRow(i, v["dataElement"], v["period"], v["orgUnit"],
                            v["categoryOptionCombo"], v["attributeOptionCombo"], v["value"],
                            None, None, None, False) for i, v in enumerate(f["dataValues"])]
        store.write_sync(lambda tx, r=rows: dv.import_values(tx, r, username="chcp"))


def pending(store: Store) -> int:
    return int(store.read_sync(lambda c: c.execute(
        "SELECT count(*) FROM datavalue WHERE sync_state='pending'").fetchone()[0]))


class Day:
    def __init__(self, engine: SyncEngine, proxy: Any) -> None:
        self.engine, self.proxy = engine, proxy
        self.wire: dict[str, list[int]] = {c: [0, 0] for c in CATEGORIES}
        self.cycles: list[tuple[str, CycleResult]] = []

    async def cycle(self, reason: str) -> CycleResult:
        r = await self.engine.cycle(reason)
        for k, (s, rcv) in r.wire.items():
            self.wire[k][0] += s
            self.wire[k][1] += rcv
        self.cycles.append((reason, r))
        return r

    def link(self) -> tuple[int, int, float]:
        st = self.proxy.stats()
        return st.bytes_up, st.bytes_down, float(st.dead_time_s)


async def enter_month(day: Day, store: Store, forms: list[dict[str, Any]], batch_s: float) -> float:
    """The two hours of entry, on the worker's schedule (``daemon.py``) in simulated time:
    a batch of forms saved every 5 minutes signals "local-data", which ``DataTrigger``
    debounces and, after a push, holds for ``batch_s``; the timer runs 15 minutes after
    the last cycle; a cycle cut short is retried 3 s later, as the worker does after a
    cycle that moved data. Returns the seconds the cycles took."""
    trigger = DataTrigger(float(defaults()["sync"]["debounce_s"]), batch_s)
    interval = TIMER_STEP_MIN * 60.0
    per = -(-len(forms) // ENTRY_BATCHES)
    saves = [(i // per * ENTRY_STEP_MIN * 60.0, forms[i:i + per])
             for i in range(0, len(forms), per)]
    now, next_timer, retry_at = 0.0, interval, None
    busy_s = 0.0
    cycles = 0
    while (saves or pending(store)) and cycles < 200:
        events = [(saves[0][0], 0, "save")] if saves else []
        if trigger.due_at is not None:
            events.append((trigger.due_at, 1, "local-data"))
        if retry_at is not None:
            events.append((retry_at, 1, "retry"))
        events.append((next_timer, 2, "timer"))
        at, _, what = min(events)
        await age(store, (at - now) / 60)
        now = at
        if what == "save":
            await asyncio.to_thread(write_forms, store, saves.pop(0)[1])
            trigger.saved(now)
            continue
        await asyncio.sleep(GAP_S)
        trigger.started()
        retry_at = None
        t = time.monotonic()
        r = await day.cycle(what)
        busy_s += time.monotonic() - t
        cycles += 1
        trigger.ran(now, pushed=bool(r.push.chunks))
        next_timer = now + interval
        if not r.ok:
            retry_at = now + 3.0
        elif r.pending:
            trigger.left_pending(now)
    return busy_s


async def run_day(tmp: Path, port: int, wire_format: str = "csv",
                  batch_s: float | None = None) -> dict[str, Any]:
    from appliance.demo.seed import seed
    from tests.netlink.harness import FlappingProxy

    compress_overlap()
    entry, by_ds, forms = wire_bench.month()
    clinics: list[str] = []
    for f in forms:
        if f["orgUnit"] not in clinics:
            clinics.append(f["orgUnit"])
    entry_forms = [f for ou in clinics for f in forms if f["orgUnit"] == ou]
    b_entry = wire_bench.gz(wire_bench.minimal_json(entry))
    b_ds = wire_bench.gz(wire_bench.minimal_json(by_ds))

    hub_dir = tmp / "hub"
    hub_dir.mkdir()
    store = Store(hub_dir / "hub.db")
    seed(store, "hub")
    # provisioning over a good link, as at installation: not part of the day
    direct = load_config(sync_bench.write_config(tmp / "direct.toml",
                                                 f"http://127.0.0.1:{port}"), hub_dir)
    first = SyncEngine(store, direct)
    try:
        r = await first.cycle("start")
        if not r.ok:
            raise RuntimeError(f"provisioning sync failed: {r.error}")
    finally:
        await first.close()

    rate = RATE_KBIT * 1000 / 8
    proxy = FlappingProxy.thread("127.0.0.1", port, rate=rate, every_s=CUT_EVERY_S,
                                 down_s=CUT_DOWN_S)
    with proxy:
        toml = sync_bench.write_config(tmp / "hub.toml", f"http://127.0.0.1:{proxy.port}")
        with toml.open("a") as out:  # the [sync] section is the file's last
            out.write(f'wire_format = "{wire_format}"\n')
        cfg = load_config(toml, hub_dir)
        engine = SyncEngine(store, cfg)
        day = Day(engine, proxy)
        try:
            # the night before: the day starts idle, an hour after the last sync
            await age(store, 60)
            up0, down0, dead0 = day.link()
            # the worker's default schedule (the bench's config sets 0 for the one-cycle
            # benches)
            batch = float(defaults()["sync"]["batch_s"]) if batch_s is None else batch_s
            busy_s = await enter_month(day, store, entry_forms, batch)
            up1, down1, dead1 = day.link()
            left = pending(store)
            entry_cycles = len(day.cycles)
            # the rest of the day: the timer
            for _ in range(TIMER_CYCLES):
                await age(store, TIMER_STEP_MIN)
                await asyncio.sleep(GAP_S)
                await day.cycle("timer")
            up2, down2, dead2 = day.link()
        finally:
            await engine.close()
            store.close()

    timer = [r for reason, r in day.cycles[entry_cycles:]]
    idle = [r.bytes_sent + r.bytes_received for r in timer if r.ok]
    failed = sum(1 for _, r in day.cycles if not r.ok)
    month_wire = (up1 - up0) + (down1 - down0)
    month_dead = dead1 - dead0
    month_target = month_wire / rate + month_dead
    day_up, day_down = up2 - up0, down2 - down0
    cats = {METADATA: day.wire[METADATA], PULL: day.wire[PULL], PUSH: day.wire[PUSH],
            OTHER: [day.wire[OTHER][0] + day.wire["fleet"][0],
                    day.wire[OTHER][1] + day.wire["fleet"][1]]}
    counted = sum(s + r for s, r in cats.values())
    return {
        "link": f"userspace FlappingProxy: {RATE_KBIT} kbit/s each way, connections reset "
                f"every {CUT_EVERY_S:g} s, refused for {CUT_DOWN_S:g} s",
        "values": len(entry), "forms": len(forms), "clinics": len(clinics),
        "B_entry": b_entry, "B_data_set": b_ds,
        "batch_s": batch,
        "cycles": len(day.cycles), "entry_cycles": entry_cycles, "failed_cycles": failed,
        "entry_pushes": sum(1 for _, r in day.cycles[:entry_cycles] if r.push.chunks),
        "entry_reasons": dict(Counter(reason for reason, _ in day.cycles[:entry_cycles])),
        "pending_after_entry": left,
        "day_wire_up": day_up, "day_wire_down": day_down,
        "day_ratio": round((day_up + day_down) / b_entry, 3),
        "up_ratio": round(day_up / b_entry, 3),
        "day_client_counted": counted,
        "by_category": {k: {"sent": s, "received": r,
                            "share": round((s + r) / counted, 3) if counted else 0}
                        for k, (s, r) in cats.items()},
        "idle_cycle_bytes_median": int(statistics.median(idle)) if idle else None,
        "idle_cycle_bytes_max": max(idle) if idle else None,
        "idle_cycle_bytes_min": min(idle) if idle else None,
        # the cost per cycle of the eight hours, the hourly checks included (the first
        # timer cycle, which brings down the last entry's echo, left out)
        "idle_cycle_bytes_mean": int(statistics.mean(idle[1:])) if len(idle) > 1 else None,
        "month_wire_bytes": month_wire, "month_busy_s": round(busy_s, 2),
        "month_dead_s": round(month_dead, 2), "month_target_s": round(month_target, 2),
        "month_time_ratio": round(busy_s / month_target, 3) if month_target else None,
    }


def one_day(wire_format: str, batch_s: float | None = None) -> dict[str, Any]:
    """The day against a fresh national stand-in."""
    tmp = Path(tempfile.mkdtemp(prefix="daybench-"))
    national = None
    try:
        port = sync_bench._free_port()
        national = sync_bench.start_national(tmp / "national", port)
        return asyncio.run(run_day(tmp, port, wire_format, batch_s))
    finally:
        if national is not None:
            national.terminate()
            national.wait(30)
        if os.environ.get("DAY_BENCH_KEEP"):
            print(f"   kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def main() -> dict[str, Any]:
    res = one_day("csv")
    # the same day in JSON, the fallback (and the wire format before issue 15), beside it
    js = one_day("json")
    keep = ("day_ratio", "up_ratio", "day_wire_up", "day_wire_down",
            "idle_cycle_bytes_median", "by_category", "failed_cycles", "entry_pushes",
            "month_time_ratio")
    res["json_day"] = {k: js[k] for k in keep}
    # before the modem's batching (``[sync] batch_s = 0``): a push after every save's
    # debounce, in the same run
    unbatched = one_day("csv", batch_s=0)
    res["unbatched_day"] = {k: unbatched[k] for k in keep}
    idle = res["idle_cycle_bytes_median"] or 0
    cat, js = res["by_category"], res["json_day"]
    res["targets"] = [
        ("day: bytes up+down / B (entry order)", res["day_ratio"], "<= 1.5", "x",
         res["day_ratio"] <= 1.5),
        ("day: bytes up / B", res["up_ratio"], "<= 0.65", "x", res["up_ratio"] <= 0.65),
        ("idle timer cycle, median (client-counted)", idle, "<= 2048", "bytes",
         idle <= 2048),
        ("idle timer cycles, mean (hourly checks included)", res["idle_cycle_bytes_mean"],
         "info", "bytes", None),
        ("timer cycle, largest (an echo or metadata check)", res["idle_cycle_bytes_max"],
         "info", "bytes", None),
        ("month: wall / (bytes/rate + dead time)", res["month_time_ratio"], "<= 1.5", "x",
         res["month_time_ratio"] is not None and res["month_time_ratio"] <= 1.5),
        ("pushes while entering (a push held for [sync] batch_s after the last)",
         res["entry_pushes"], "info", "", None),
        ("the same day pushed after every debounce (batch_s 0): up+down / B",
         res["unbatched_day"]["day_ratio"], "info", "x", None),
        ("the same day pushed after every debounce (batch_s 0): up / B",
         res["unbatched_day"]["up_ratio"], "info", "x", None),
        ("the same day in JSON: bytes up+down / B", js["day_ratio"], "info", "x", None),
        ("the same day in JSON: bytes up / B", js["up_ratio"], "info", "x", None),
        ("B: gzip -9 minimal JSON, entry order", res["B_entry"], "info", "bytes", None),
        ("B in data-set order", res["B_data_set"], "info", "bytes", None),
        *((f"day's bytes: {k} share", v["share"], "info", "x", None)
          for k, v in cat.items()),
    ]
    for k, v in res.items():
        if k != "targets":
            print(f"   {k}: {v}")
    return res


if __name__ == "__main__":
    import json
    out = main()
    print(json.dumps(out["targets"], indent=1))
