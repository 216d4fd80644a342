"""Health agent footprint (issue: health agent): < 2 % of one core and < 40 MB RSS.

The real agent runs as a subprocess (``python -m appliance.health.command``) over a real
store, sampling every 1 s, with heartbeats (every 5 samples) to a loopback sink that also
answers the hub's ping, so the LEDs show real states (on gpiozero's mock pins: this
machine has no GPIO). Two phases:

1. ``interval_s = 1`` for ~20 s: CPU at 1 s sampling, and RSS.
2. ``interval_s = <production>`` for ~10 s after the first sample: the idle cost (LED
   loop, hub ping, blink threads), which does not shrink with a longer interval.

CPU at the production interval = idle + (cost per sample) / interval_s, where the cost
per sample (its share of heartbeats included) comes from phase 1 minus idle. CPU counts
the agent and the child processes it waited for (timedatectl, vcgencmd).
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psutil

from appliance import config as config_mod
from appliance.signing import verify

TOKEN = "bench-token"
CPU_TARGET_PCT = 2.0
RSS_TARGET_MB = 40.0
REPO = Path(__file__).resolve().parent.parent


class Sink:
    """Loopback fleet endpoint + hub ping, on the stdlib so it costs the bench little."""

    def __init__(self) -> None:
        self.posts = 0
        self.samples = 0
        self.bad = 0
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                ok = verify(TOKEN, raw, self.headers.get("X-Hub-Signature"))
                sink.posts += 1
                if ok:
                    sink.samples += len(json.loads(gzip.decompress(raw))["samples"])
                else:
                    sink.bad += 1
                self._reply(200 if ok else 401)

            def do_GET(self) -> None:  # noqa: N802 - the hub's /api/system/ping
                self._reply(200)

            def _reply(self, status: int) -> None:
                body = b'{"ok":true}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _write_config(path: Path, port: int, interval_s: int) -> None:
    path.write_text(
        f'[hub]\nid = "bench"\nlisten = "127.0.0.1:{port}"\n'
        f'[health]\nheartbeat_url = "http://127.0.0.1:{port}/api/heartbeats"\n'
        f'token = "{TOKEN}"\ninterval_s = {interval_s}\nheartbeat_every = 5\n'
        f'[gpio]\nenabled = true\n')
    path.chmod(0o600)  # it holds the fleet token


def _cpu_s(p: psutil.Process) -> float:
    t = p.cpu_times()
    return t.user + t.system + t.children_user + t.children_system


def _samples(db: Path) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as c:
        return int(c.execute("SELECT count(*) FROM health_sample").fetchone()[0])


def _phase(tmp: Path, sink: Sink, interval_s: int, seconds: float) -> dict[str, Any]:
    data = tmp / f"data-{interval_s}"
    data.mkdir()
    cfg = tmp / f"hub-{interval_s}.toml"
    _write_config(cfg, sink.port, interval_s)
    log = open(data / "agent.log", "wb")  # noqa: SIM115 - lives with the process
    env = {**os.environ, "GPIOZERO_PIN_FACTORY": "mock", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "appliance.health.command", "--config", str(cfg),
         "--data-dir", str(data)], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    p = psutil.Process(proc.pid)
    try:
        posts0 = sink.posts
        deadline = time.monotonic() + 20
        while sink.posts == posts0:  # warm-up: imports, migrations, first sample + heartbeat
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"health agent did not start; see {data / 'agent.log'}")
            time.sleep(0.1)
        time.sleep(0.5)
        db = data / "hub.db"
        n0, cpu0, t0, posts1 = _samples(db), _cpu_s(p), time.monotonic(), sink.posts
        rss_max = 0.0
        while time.monotonic() - t0 < seconds:
            rss_max = max(rss_max, p.memory_info().rss / 2**20)
            time.sleep(0.5)
        cpu1, t1, n1 = _cpu_s(p), time.monotonic(), _samples(db)
        rss_max = max(rss_max, p.memory_info().rss / 2**20)
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    wall = t1 - t0
    return {"interval_s": interval_s, "wall_s": round(wall, 2), "cpu_s": round(cpu1 - cpu0, 4),
            "cpu_pct": round((cpu1 - cpu0) / wall * 100, 3), "samples": n1 - n0,
            "heartbeats": sink.posts - posts1, "rss_max_mb": round(rss_max, 1),
            "exit_code": rc, "clean_stop": not (data / ".health-running").exists()}


def main() -> dict[str, Any]:
    production = int(config_mod.defaults()["health"]["interval_s"])
    tmp = Path(tempfile.mkdtemp(prefix="health-bench-"))
    sink = Sink()
    try:
        fast = _phase(tmp, sink, 1, 20.0)
        idle = _phase(tmp, sink, production, 10.0)
    finally:
        sink.close()
        shutil.rmtree(tmp, ignore_errors=True)
    idle_pct = idle["cpu_pct"]
    per_sample_s = max(0.0, fast["cpu_s"] - idle_pct / 100 * fast["wall_s"]) / max(1, fast["samples"])
    prod_pct = idle_pct + per_sample_s / production * 100
    rss = max(fast["rss_max_mb"], idle["rss_max_mb"])
    res: dict[str, Any] = {
        "phase_1s": fast, "phase_idle": idle,
        "cpu_per_sample_ms": round(per_sample_s * 1000, 2),
        "cpu_pct_at_1s": fast["cpu_pct"],
        f"cpu_pct_at_{production}s": round(prod_pct, 3),
        "rss_max_mb": rss,
        "heartbeats_bad_signature": sink.bad,
        "cpu_ratio_at_1s": round(fast["cpu_pct"] / CPU_TARGET_PCT, 3),
        f"cpu_ratio_at_{production}s": round(prod_pct / CPU_TARGET_PCT, 3),
        "rss_ratio": round(rss / RSS_TARGET_MB, 3),
        "cpus": os.cpu_count(),
    }
    res["targets"] = [
        (f"health agent CPU at {production}s interval", round(prod_pct, 3), f"< {CPU_TARGET_PCT}",
         "% core", prod_pct < CPU_TARGET_PCT),
        ("health agent CPU at 1s interval", fast["cpu_pct"], f"< {CPU_TARGET_PCT}", "% core",
         fast["cpu_pct"] < CPU_TARGET_PCT),
        ("health agent RSS", rss, f"< {RSS_TARGET_MB:.0f}", "MB", rss < RSS_TARGET_MB),
    ]
    for k, v in res.items():
        if k != "targets":
            print(f"   {k}: {v}")
    for label, measured, target, unit, ok in res["targets"]:
        print(f"   {label}: {measured} {unit} (target {target}) {'ok' if ok else 'MISSED'}")
    return res


if __name__ == "__main__":
    main()
