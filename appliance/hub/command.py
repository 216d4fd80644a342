"""``appliance hub``: serve the LAN API."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
import time
from collections.abc import Callable

from aiohttp import web

from ..config import Config
from ..httpserver import make_runner, start_site
from ..store import Store
from ..store.metadata import is_empty
from .app import create_app
from .tls import HttpsListener, TlsSettings

log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--demo", action="store_true", help="seed the embedded demo data into an empty store")
    p.add_argument("--host", help="address to listen on (default from [hub] listen)")
    p.add_argument("--port", type=int, help="port to listen on (default from [hub] listen)")
    p.add_argument("--no-zeroconf", action="store_true", help="do not advertise over mDNS")


DEMO_LOGINS = "admin/district (whole upazila), chcp/district (one community clinic)"


def run(args: argparse.Namespace, config: Config) -> int:
    tls = TlsSettings.from_config(config)
    https = HttpsListener(tls) if tls is not None else None  # [tls] name set: HTTPS too
    return serve_store(args, config, demo_data="hub", name="hub", demo_logins=DEMO_LOGINS,
                       make_app=lambda store, host, port, zc: create_app(
                           config, store, zeroconf=zc, port=port, host=host, https=https),
                       https=https)


AppFactory = Callable[[Store, str, int, bool], web.Application]


def serve_store(args: argparse.Namespace, config: Config, *, demo_data: str, name: str,
                demo_logins: str, make_app: AppFactory,
                https: HttpsListener | None = None) -> int:
    """Open the store (seeding the demo into an empty one with --demo) and serve the app
    ``make_app`` builds over it until SIGINT/SIGTERM: the hub's and the stand-in's CLI."""
    # the writer thread hands the GIL back after every SQLite step; with the default 5 ms
    # switch interval it then waits behind request parsing, stretching every commit
    sys.setswitchinterval(0.001)
    host, _, port = config.get("hub", "listen").rpartition(":")
    host = args.host or host or "0.0.0.0"
    port_n = args.port if args.port is not None else int(port or 8080)
    config.data_dir.mkdir(parents=True, exist_ok=True)
    store = Store(config.data_dir / "hub.db",
                  autocheckpoint=not config.get("backup", "replica"))
    if args.demo and store.read_sync(is_empty):
        from ..demo.seed import seed  # only for --demo: a hub in service never loads it

        t0 = time.monotonic()
        counts = seed(store, demo_data)
        log.info("seeded demo %s data in %.1fs: %s", demo_data, time.monotonic() - t0, counts)
    try:
        zeroconf = bool(config.get("hub", "zeroconf")) and not getattr(args, "no_zeroconf", True)
        asyncio.run(serve(lambda: make_app(store, host, port_n, zeroconf), host, port_n,
                          name=name, demo_logins=demo_logins if args.demo else None,
                          https=https))
    finally:
        store.close()
    return 0


async def serve(make_app: Callable[[], web.Application], host: str, port: int, *, name: str,
                demo_logins: str | None, https: HttpsListener | None = None) -> None:
    """Serve until SIGINT/SIGTERM on HTTP, and on HTTPS too when ``https`` is given (the
    same app and runner: a second site, started once a certificate is installed)."""
    runner = make_runner(make_app())
    await runner.setup()
    try:
        await start_site(runner, host, port)
    except BaseException:
        await runner.cleanup()
        raise
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
    print(f"{name} ready: http://{shown}:{port}/api/system/info", flush=True)
    if demo_logins:
        print(f"demo logins: {demo_logins}", flush=True)
    if https is not None:
        await https.start(runner)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    if https is not None:
        await https.stop()
    await runner.cleanup()
