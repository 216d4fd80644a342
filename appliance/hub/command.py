"""``appliance hub``: serve the LAN API."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
import time

from aiohttp import web

from ..config import Config
from ..httpserver import make_runner
from ..store import Store
from .app import create_app
from .seed import is_empty, seed

log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--demo", action="store_true", help="seed the embedded demo data into an empty store")
    p.add_argument("--role", choices=("hub", "national"), help="hub (default) or national stand-in")
    p.add_argument("--host", help="address to listen on (default from [hub] listen)")
    p.add_argument("--port", type=int, help="port to listen on (default from [hub] listen)")
    p.add_argument("--no-zeroconf", action="store_true", help="do not advertise over mDNS")


def run(args: argparse.Namespace, config: Config) -> int:
    # the writer thread hands the GIL back after every SQLite step; with the default 5 ms
    # switch interval it then waits behind request parsing, stretching every commit
    sys.setswitchinterval(0.001)
    role = args.role or config.get("hub", "role")
    config.set("hub", "role", role)
    host, _, port = config.get("hub", "listen").rpartition(":")
    host = args.host or host or "0.0.0.0"
    port_n = args.port if args.port is not None else int(port or 8080)
    config.data_dir.mkdir(parents=True, exist_ok=True)
    store = Store(config.data_dir / "hub.db",
                  autocheckpoint=not config.get("backup", "replica"))
    if args.demo and is_empty(store):
        t0 = time.monotonic()
        counts = seed(store, role)
        log.info("seeded demo %s data in %.1fs: %s", role, time.monotonic() - t0, counts)
    try:
        asyncio.run(serve(config, store, host, port_n, role,
                          zeroconf=config.get("hub", "zeroconf") and not args.no_zeroconf,
                          demo=args.demo))
    finally:
        store.close()
    return 0


async def serve(config: Config, store: Store, host: str, port: int, role: str, *,
                zeroconf: bool, demo: bool) -> None:
    app = create_app(config, store, role=role, zeroconf=zeroconf, port=port, host=host)
    runner = make_runner(app)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=1024, reuse_address=True)
    await site.start()
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
    print(f"{'national stand-in' if role == 'national' else 'hub'} ready: "
          f"http://{shown}:{port}/api/system/info", flush=True)
    if demo:
        print("demo logins: admin/district (whole upazila), chcp/district (one community clinic)"
              + (", dghs/district (national)" if role == "national" else ""), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()
