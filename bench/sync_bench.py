"""Upstream target (DESIGN.md §8, issue 3): one upazila-month over a 256 kbit/s link that
is cut every 15 s.

Real processes: the national stand-in (root network namespace) and the hub's sync worker
(``appliance sync``, in a network namespace behind a veth pair with a tbf qdisc capping
each direction at 256 kbit/s; every 15 s the hub's interface goes down for 3 s). The
month is written into the hub's store form by form, as the LAN import does, and the
worker is told "new local data" through its socket, as the hub tells it. Measured until
nothing is pending:

* bytes on the wire: the veth's counters, both directions, including Ethernet/IP/TCP
  headers and retransmissions, against 1.2x the gzip size of the minimal DHIS2 JSON
  payload of the same values (``{"dataValues": [...]}`` with only the key and the value,
  in the generator's form order, gzip -9);
* wall time: against 1.5 x (bytes / link rate) + the dead time of the cuts;
* against the CouchDB-style reference for the same month: 12.3 MB on the wire and 94 s
  at 1 Mbit/s (targets: >= 10x fewer bytes, >= 8x less time).

Three trials start at different phases of the cut cycle, so that a cut lands early, in
the middle and late in the transfer (a different month each). The
next full cycle, which downloads national's copy of the month once (the "echo": DHIS2
has no way to ask for "changed by someone else"), is reported on its own.

The hub's namespace gets the image's network sysctls (image/rootfs/etc/sysctl.d) and
its sockets to national use cubic, Raspberry Pi OS's default congestion control.
Knobs: SYNC_BENCH_RTO_MAX_MS=0 (kernels before 6.15), SYNC_BENCH_STOCK_SYSCTL=1,
SYNC_BENCH_CC=<algorithm>, SYNC_BENCH_PHASES=<s,...>, SYNC_BENCH_KEEP=1 (logs, DBs).

Without root (no network namespaces) the same runs go through the userspace
``FlappingProxy`` (token bucket, connections reset at each cut); the result says which.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson

from appliance import demo
from appliance.demo import values as demo_values
from appliance.demo.seed import seed
from appliance.store import Store
from appliance.store import datavalues as dv
from appliance.trigger import request_sync

REPO = Path(__file__).resolve().parent.parent
RATE_KBIT = 256
CUT_EVERY_S = 15.0
CUT_DOWN_S = 3.0
COUCH_BYTES = 12.3e6
COUCH_SECONDS = 94.0
# seconds between the start of the cut cycle and the sync request: the push of a month
# takes ~4-5 s, so the cut at 15 s lands 3.5, 2 and 0.5 s into it
PHASES_S = (11.5, 13.0, 14.5)
PERIODS = ("202401", "202402", "202403")
TOKEN = demo.DEMO_TOKENS["hub-ramu"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        return int(s.getsockname()[1])


def minimal_payload_gzip(values: list[dict[str, str]]) -> int:
    minimal = [{k: v[k] for k in ("dataElement", "period", "orgUnit", "categoryOptionCombo",
                                  "attributeOptionCombo", "value")} for v in values]
    return len(gzip.compress(orjson.dumps({"dataValues": minimal}), 9))


def start_national(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    data_dir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [sys.executable, "-m", "appliance.cli", "national", "--demo",
         "--host", "0.0.0.0", "--port", str(port), "--data-dir", str(data_dir)], cwd=REPO, stdout=subprocess.DEVNULL,
        stderr=open(data_dir / "national.err", "wb"))  # noqa: SIM115
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("national stand-in exited at start")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return proc
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("national stand-in did not start")


def write_config(path: Path, url: str) -> Path:
    # SYNC_BENCH_RTO_MAX_MS=0 measures what kernels before 6.15 (no TCP_RTO_MAX_MS) get
    rto = os.environ.get("SYNC_BENCH_RTO_MAX_MS", "")
    # the hub runs Raspberry Pi OS's default, cubic, whatever this host defaults to
    # (SYNC_BENCH_CC=bbr measures another)
    cc = os.environ.get("SYNC_BENCH_CC", "cubic")
    path.write_text(f'[hub]\norg_unit = "{demo.RAMU_UID}"\n[national]\nurl = "{url}"\n'
                    f'token = "{TOKEN}"\ntimeout_s = 30\ntcp_congestion = "{cc}"\n'
                    + (f"tcp_rto_max_ms = {int(rto)}\n" if rto else "")
                    + "[sync]\ndebounce_s = 0\nbatch_s = 0\ninterval_s = 36000\n")
    os.chmod(path, 0o600)
    return path


def state(db: Path) -> dict[str, str]:
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)) as c:
        kv = dict(c.execute("SELECT key, value FROM sync_state").fetchall())
        kv["_pending"] = str(c.execute("SELECT count(*) FROM datavalue WHERE "
                                       "sync_state='pending'").fetchone()[0])
    return kv


def wait_for(pred: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.1)
    raise RuntimeError(f"timed out waiting for {what}")


class Link:
    """The same interface over a NetnsLink (preferred) or a userspace FlappingProxy."""

    def __init__(self, national_port: int) -> None:
        self.national_port = national_port
        self.kind = "netns"
        self._netns: Any = None
        self._flapper: Any = None
        self._proxy: Any = None

    def __enter__(self) -> Link:
        sys.path.insert(0, str(REPO))
        from tests.netlink.harness import NetnsLink, image_sysctls, netns_available
        ok, why = netns_available()
        if ok:
            self._netns = NetnsLink(RATE_KBIT).__enter__()
            # the hub's namespace gets the image's network settings, unless
            # SYNC_BENCH_STOCK_SYSCTL=1 asks for a stock kernel's
            if not os.environ.get("SYNC_BENCH_STOCK_SYSCTL"):
                try:
                    self._netns.sysctl(image_sysctls())
                except BaseException:
                    self._netns.close()
                    raise
            self.url = f"http://{self._netns.national_addr}:{self.national_port}"
        else:
            from tests.netlink.harness import FlappingProxy
            self.kind = f"userspace FlappingProxy ({why})"
            self._proxy = FlappingProxy.thread("127.0.0.1", self.national_port,
                                               rate=RATE_KBIT * 1000 / 8)
            self._proxy.__enter__()
            self.url = f"http://127.0.0.1:{self._proxy.port}"
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_cuts()
        if self._netns is not None:
            self._netns.close()
        if self._proxy is not None:
            self._proxy.__exit__(None, None, None)

    def run(self, cmd: list[str], log: Path) -> subprocess.Popen[bytes]:
        kw: dict[str, Any] = {"cwd": REPO, "stdout": open(log, "ab"),  # noqa: SIM115
                              "stderr": subprocess.STDOUT}
        if self._netns is not None:
            return self._netns.run(cmd, **kw)  # type: ignore[no-any-return]
        return subprocess.Popen(cmd, **kw)

    def start_cuts(self) -> None:
        if self._netns is not None:
            self._flapper = self._netns.flap(CUT_EVERY_S, CUT_DOWN_S)
        else:
            self._cutter_stop = False

            def cutter() -> None:
                t0 = time.monotonic()
                k = 1
                while not self._cutter_stop:
                    if time.monotonic() >= t0 + k * CUT_EVERY_S:
                        self._proxy.cut(CUT_DOWN_S)
                        k += 1
                    time.sleep(0.05)
            import threading
            self._cutter = threading.Thread(target=cutter, daemon=True)
            self._cutter.start()

    def stop_cuts(self) -> None:
        if self._flapper is not None:
            self._flapper.stop()
            self._flapper = None
        if self._proxy is not None and getattr(self, "_cutter", None) is not None:
            self._cutter_stop = True
            self._cutter.join()
            self._cutter = None

    def wire_bytes(self) -> tuple[int, int]:
        if self._netns is not None:
            c = self._netns.bytes_counters()
            return c.hub_tx_bytes, c.hub_rx_bytes
        st = self._proxy.stats()
        return st.bytes_up, st.bytes_down

    def dead_time(self) -> float:
        if self._flapper is not None:
            return float(self._flapper.dead_time_s)
        if self._proxy is not None:
            return float(self._proxy.stats().dead_time_s)
        return 0.0


@contextlib.contextmanager
def _workdir() -> Iterator[Path]:
    tmp = Path(tempfile.mkdtemp(prefix="syncbench-"))
    try:
        yield tmp
    finally:
        if os.environ.get("SYNC_BENCH_KEEP"):  # logs and databases, for a closer look
            print(f"   kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def load_month(hub_db: Path, period: str) -> tuple[int, int, int]:
    """The month, written form by form as the LAN import writes it; returns (values,
    forms, minimal gzip payload bytes)."""
    forms = demo_values.forms(demo.hub(), period)
    values = [v for f in forms for v in f["dataValues"]]
    with Store(hub_db) as store:
        for f in forms:
            rows = [dv.ValueRow(i, v["dataElement"], v["period"], v["orgUnit"],
                                v["categoryOptionCombo"], v["attributeOptionCombo"],
                                v["value"], None, None, None, False)
                    for i, v in enumerate(f["dataValues"])]
            store.write_sync(lambda tx, r=rows: dv.import_values(tx, r, username="chcp"))
    return len(values), len(forms), minimal_payload_gzip(values)


def trial(link: Link, hub_db: Path, hub_dir: Path, period: str, phase_s: float
          ) -> dict[str, Any]:
    n_values, n_forms, baseline = load_month(hub_db, period)
    link.start_cuts()
    time.sleep(phase_s)  # where in the cut cycle the sync starts
    before = state(hub_db)
    tx0, rx0 = link.wire_bytes()
    dead0 = link.dead_time()
    t0 = time.monotonic()
    request_sync(hub_dir, "local-data")
    wait_for(lambda: state(hub_db)["_pending"] == "0" and state(hub_db).get("syncing") == "0",
             600, "the month to reach national")
    wall = time.monotonic() - t0
    tx1, rx1 = link.wire_bytes()
    dead = link.dead_time() - dead0
    after = state(hub_db)
    link.stop_cuts()
    wire = (tx1 - tx0) + (rx1 - rx0)
    app = (int(after.get("bytes_sent", 0)) - int(before.get("bytes_sent", 0)) +
           int(after.get("bytes_received", 0)) - int(before.get("bytes_received", 0)))
    # the next full cycle re-reads national's copy of what changed (the month's echo)
    last = after.get("last_success")
    etx0, erx0 = link.wire_bytes()
    request_sync(hub_dir, "api")
    wait_for(lambda: state(hub_db).get("last_success") != last and
             state(hub_db).get("syncing") == "0", 600, "the follow-up cycle")
    etx1, erx1 = link.wire_bytes()
    rate = RATE_KBIT * 1000 / 8
    time_target = 1.5 * wire / rate + dead
    return {"period": period, "phase_s": phase_s, "values": n_values, "forms": n_forms,
            "minimal_gzip_bytes": baseline, "wire_bytes": wire, "wire_up": tx1 - tx0,
            "wire_down": rx1 - rx0, "http_bytes": app,
            "bytes_ratio": round(wire / baseline, 3), "wall_s": round(wall, 2),
            "dead_s": round(dead, 2), "time_target_s": round(time_target, 2),
            "time_ratio": round(wall / time_target, 3),
            "echo_wire_bytes_next_cycle": (etx1 - etx0) + (erx1 - erx0)}


def main() -> dict[str, Any]:
    with _workdir() as tmp:
        port = _free_port()
        national = start_national(tmp / "national", port)
        hub_dir = tmp / "hub"
        hub_dir.mkdir()
        hub_db = hub_dir / "hub.db"
        with Store(hub_db) as s:
            seed(s, "hub")
        sync: subprocess.Popen[bytes] | None = None
        try:
            # provisioning (metadata) over a good link, as at installation
            direct = write_config(tmp / "direct.toml", f"http://127.0.0.1:{port}")
            first = subprocess.run([sys.executable, "-m", "appliance.cli", "sync", "--once",
                                    "--config", str(direct), "--data-dir", str(hub_dir)],
                                   cwd=REPO, capture_output=True, timeout=300)
            if first.returncode != 0:
                raise RuntimeError(f"provisioning sync failed: {first.stderr.decode()[-500:]}")
            with Link(port) as link:
                cfg = write_config(tmp / "hub.toml", link.url)
                last = state(hub_db).get("last_success")
                sync = link.run([sys.executable, "-m", "appliance.cli", "sync", "--config",
                                 str(cfg), "--data-dir", str(hub_dir)], tmp / "sync.log")
                wait_for(lambda: state(hub_db).get("last_success") != last, 120,
                         "the worker's first cycle")
                phases = [float(x) for x in os.environ.get("SYNC_BENCH_PHASES", "").split(",")
                          if x] or PHASES_S
                trials = [trial(link, hub_db, hub_dir, pe, ph)
                          for pe, ph in zip(PERIODS, phases, strict=False)]
                kind = link.kind
        finally:
            if sync is not None and sync.poll() is None:
                sync.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    sync.wait(10)
            national.terminate()
            national.wait(30)
    worst_bytes = max(t["bytes_ratio"] for t in trials)
    worst_time = max(t["time_ratio"] for t in trials)
    wire = max(t["wire_bytes"] for t in trials)
    wall = max(t["wall_s"] for t in trials)
    res: dict[str, Any] = {
        "link": f"{kind}: {RATE_KBIT} kbit/s each way, cut every {CUT_EVERY_S:g} s for "
                f"{CUT_DOWN_S:g} s", "trials": trials,
        "couchdb_bytes_over_ours": round(COUCH_BYTES / wire, 1),
        "couchdb_seconds_over_ours": round(COUCH_SECONDS / wall, 1),
    }
    res["targets"] = [
        ("sync bytes / 1.2x gzip minimal payload (worst trial)", round(worst_bytes / 1.2, 3),
         "<= 1", "x", worst_bytes <= 1.2),
        ("sync wall / (1.5 bytes/rate + dead time) (worst)", worst_time, "<= 1", "x",
         worst_time <= 1.0),
        ("CouchDB bytes / sync bytes", res["couchdb_bytes_over_ours"], ">= 10", "x",
         res["couchdb_bytes_over_ours"] >= 10),
        ("CouchDB time (1 Mbit/s) / sync time (256 kbit/s)", res["couchdb_seconds_over_ours"],
         ">= 8", "x", res["couchdb_seconds_over_ours"] >= 8),
    ]
    for k, v in res.items():
        if k == "trials":
            for t in v:
                print(f"   trial {t}")
        elif k != "targets":
            print(f"   {k}: {v}")
    return res


if __name__ == "__main__":
    import json
    out = main()
    print(json.dumps(out["targets"], indent=1))
    asyncio.run(asyncio.sleep(0))
