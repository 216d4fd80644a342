"""``appliance demo``: a national stand-in, a hub syncing to it, its health agent, and the
fleet service with simulated hubs, all on loopback. Prints the URLs; Ctrl-C stops all."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from ..config import Config

PORTS = {"hub": 8080, "national": 8081, "fleet": 8090}
FLEET_LOGIN = ("national", "district")  # the fleet dashboard's demo admin


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--base-port", type=int, default=8080,
                   help="hub on this port, national +1, fleet +10")
    p.add_argument("--fleet-hubs", type=int, default=500, help="simulated hubs in the fleet")
    p.add_argument("--for", dest="duration", type=float, default=0,
                   help="stop after this many seconds (0: until Ctrl-C)")
    p.add_argument("--no-reporting-day", action="store_true",
                   help="do not post a month of CHCP forms to the hub")


def _write_config(path: Path, body: str) -> Path:
    path.write_text(body)
    path.chmod(0o600)  # holds the demo PAT
    return path


def _wait_port(port: int, proc: subprocess.Popen[bytes], name: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"demo: {name} exited with code {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.1)
    raise SystemExit(f"demo: {name} did not start on port {port}")


def run(args: argparse.Namespace, config: Config) -> int:
    from . import DEMO_TOKENS, RAMU_UID
    base = Path(args.data_dir or "data/demo")
    hub_port, nat_port, fleet_port = args.base_port, args.base_port + 1, args.base_port + 10
    for d in ("national", "hub", "fleet"):
        (base / d).mkdir(parents=True, exist_ok=True)
    py = [sys.executable, "-m", "appliance.cli"]
    procs: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(name: str, cmd: list[str], port: int | None = None) -> subprocess.Popen[bytes]:
        log = open(base / f"{name}.log", "ab")  # noqa: SIM115 - owned by the child
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        procs.append((name, proc))
        if port:
            _wait_port(port, proc, name)
        return proc

    fleet_token = ""
    try:
        start("national", py + ["national", "--demo", "--host", "127.0.0.1",
                                "--port", str(nat_port),
                                "--data-dir", str(base / "national")], nat_port)
        fleet_cfg = _write_config(base / "fleet.toml", f'[fleet]\nlisten = "127.0.0.1:{fleet_port}"\n')
        fleet_available = _has("appliance.fleet.command")
        if fleet_available:
            out = subprocess.run(py + ["fleet", "--config", str(fleet_cfg), "--data-dir",
                                       str(base / "fleet"), "add-hub", "--hub-id", "ramu",
                                       "--name", "Ramu UHC hub", "--upazila", "Ramu",
                                       "--district", "Cox's Bazar", "--division", "Chattogram"],
                                 capture_output=True, text=True, check=False)
            fleet_token = out.stdout.strip().splitlines()[-1] if out.returncode == 0 else ""
            # the dashboard needs a login: a demo admin, password on stdin (never argv)
            user = subprocess.run(py + ["fleet", "--config", str(fleet_cfg), "--data-dir",
                                        str(base / "fleet"), "add-user", "--username",
                                        FLEET_LOGIN[0], "--role", "admin"],
                                  input=FLEET_LOGIN[1] + "\n", capture_output=True, text=True,
                                  check=False)
            if user.returncode != 0:
                print(f"demo: no fleet dashboard login: {user.stderr.strip()}", file=sys.stderr)
            start("fleet", py + ["fleet", "--config", str(fleet_cfg), "--data-dir",
                                 str(base / "fleet")], fleet_port)
            start("fleet-simulator", py + ["fleet", "--config", str(fleet_cfg), "--data-dir",
                                           str(base / "fleet"), "simulate", "--hubs",
                                           str(args.fleet_hubs), "--url",
                                           f"http://127.0.0.1:{fleet_port}"])
        hub_cfg = _write_config(base / "hub.toml", "\n".join([
            "[hub]", 'id = "ramu"', 'name = "Ramu UHC hub"', f'org_unit = "{RAMU_UID}"',
            f'listen = "127.0.0.1:{hub_port}"', "zeroconf = false", "",
            "[national]", f'url = "http://127.0.0.1:{nat_port}"',
            f'token = "{DEMO_TOKENS["hub-ramu"]}"', "",
            "[sync]", "interval_s = 60", "debounce_s = 3", "",
            "[health]", f'heartbeat_url = "http://127.0.0.1:{fleet_port}/api/heartbeats"',
            f'token = "{fleet_token}"', "interval_s = 10", "heartbeat_every = 1", "",
            "[gpio]", "enabled = false", ""]))
        common = ["--config", str(hub_cfg), "--data-dir", str(base / "hub")]
        start("hub", py + ["hub", "--demo", *common], hub_port)
        if _has("appliance.sync.command"):
            start("sync", py + ["sync", *common])
        if _has("appliance.health.command") and fleet_token:
            start("health", py + ["health", *common])
        print(f"""
Upazila hub demo (Ramu Upazila, Cox's Bazar, Chattogram) is running:

  hub (LAN API)        http://127.0.0.1:{hub_port}/api/system/info
  hub status           http://127.0.0.1:{hub_port}/api/hub/status
  national stand-in    http://127.0.0.1:{nat_port}/api/system/info
  fleet dashboard      {f'http://127.0.0.1:{fleet_port}/   login {"/".join(FLEET_LOGIN)}' if fleet_available else '(not in this build)'}

  logins: admin/district (whole upazila), chcp/district (one community clinic),
          dghs/district (national stand-in only)
  try:    curl -u admin:district http://127.0.0.1:{hub_port}/api/me
  logs:   {base}/*.log          stop: Ctrl-C
""", flush=True)
        if not args.no_reporting_day:
            reporting_day(f"http://127.0.0.1:{hub_port}", f"http://127.0.0.1:{nat_port}")
        deadline = time.monotonic() + args.duration if args.duration else None
        while deadline is None or time.monotonic() < deadline:
            for name, p in procs:
                if p.poll() is not None and name != "fleet-simulator":
                    print(f"demo: {name} exited with code {p.returncode}; see {base}/{name}.log",
                          file=sys.stderr)
                    return 1
            time.sleep(0.5)
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        for _name, p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for _name, p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()


def reporting_day(hub: str, national: str, timeout: float = 120) -> None:
    """Post this month's forms from all 27 clinics, the way CHCPs do at 09:00, then watch
    them reach national through the sync worker."""
    import base64
    import json
    import urllib.request
    from concurrent.futures import ThreadPoolExecutor
    from datetime import date

    from . import hub as hub_doc
    from .values import forms

    auth = "Basic " + base64.b64encode(b"admin:district").decode()

    def call(url: str, body: object | None = None) -> dict:
        req = urllib.request.Request(url, data=None if body is None else json.dumps(body).encode(),
                                     headers={"Authorization": auth,
                                              "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as r:
            return json.loads(r.read())

    period = date.today().strftime("%Y%m")
    month = [f for f in forms(hub_doc(), period) if len(f["dataValues"]) >= 100]
    t0 = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(lambda f: call(f"{hub}/api/dataValueSets", f), month))
    n = sum(r["response"]["importCount"]["imported"] for r in replies)
    print(f"reporting day: {len(month)} forms ({n} values) for {period} received by the hub "
          f"in {time.monotonic() - t0:.1f}s; syncing to national...", flush=True)
    call(f"{hub}/api/hub/sync", {})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = call(f"{hub}/api/hub/status")["sync"]
        # the cycle's byte counts are written when it ends (the registers go after the
        # monthly forms), so wait for the end, not only for the last value to be accepted
        if status["pending"] == 0 and not status["syncing"]:
            print(f"accepted by national: {status['synced']} values, {status['rejected']} "
                  f"refused, {status['conflicts']} conflicts; {status['bytesSent']} bytes sent "
                  f"({time.monotonic() - t0:.1f}s after the first form)", flush=True)
            return
        time.sleep(2)
    print(f"still {status['pending']} values waiting for national; see {hub}/api/hub/status")


def _has(module: str) -> bool:
    import importlib.util
    return importlib.util.find_spec(module) is not None
