"""``appliance demo``: a national stand-in, a hub syncing to it, its health agent, and the
fleet service with simulated hubs, all on loopback; then reporting day (``reportingday``).
Prints the pages to open; Ctrl-C (or SIGTERM) stops all and exits 0."""

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
        # a session of its own: Ctrl-C reaches the demo alone, which stops the others in
        # order (before, they died of the same SIGINT and the demo reported it as a failure)
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"},
                                start_new_session=True)
        procs.append((name, proc))
        if port:
            _wait_port(port, proc, name)
        return proc

    busy = [p for p in (hub_port, nat_port, fleet_port) if not _port_free(p)]
    if busy:
        print(f"demo: port {', '.join(map(str, busy))} on 127.0.0.1 is already in use (is the "
              "demo or a hub already running?); stop it, or start with --base-port",
              file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _interrupt)
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
            "[sync]", "interval_s = 60", "debounce_s = 3", "batch_s = 60", "",
            "[health]", f'heartbeat_url = "http://127.0.0.1:{fleet_port}/api/heartbeats"',
            f'token = "{fleet_token}"', "interval_s = 10", "heartbeat_every = 1", "",
            "[gpio]", "enabled = false", ""]))
        common = ["--config", str(hub_cfg), "--data-dir", str(base / "hub")]
        start("hub", py + ["hub", "--demo", *common], hub_port)
        if _has("appliance.sync.command"):
            start("sync", py + ["sync", *common])
        if _has("appliance.health.command") and fleet_token:
            start("health", py + ["health", *common])
        hub_url = f"http://127.0.0.1:{hub_port}"
        fleet_line = (f"http://127.0.0.1:{fleet_port}/   (log in {'/'.join(FLEET_LOGIN)})"
                      if fleet_available else "(not in this build)")
        print(f"""
Upazila hub demo (Ramu Upazila, Cox's Bazar, Chattogram) is running. Open:

  data entry (CHCPs)     {hub_url}/hub          log in chcp/district
  reporting board        {hub_url}/hub/board    log in admin/district
  hub status             {hub_url}/hub/status
  registers              {hub_url}/hub/people
  fleet dashboard        {fleet_line}
  national stand-in      http://127.0.0.1:{nat_port}/api/system/info   (dghs/district)

  the DHIS2 API          curl -u admin:district {hub_url}/api/me
  logs                   {base}/*.log
  stop                   Ctrl-C
""", flush=True)
        if not args.no_reporting_day:
            from .reportingday import reporting_day
            reporting_day(hub_url, f"http://127.0.0.1:{nat_port}")
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
        print("\ndemo: stopping", flush=True)
        return 0
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        for _name, p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for _name, p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _interrupt(_sig: int, _frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM stops the demo as Ctrl-C does


def _has(module: str) -> bool:
    import importlib.util
    return importlib.util.find_spec(module) is not None
