"""``appliance sync [--once]``: the sync worker (see ``daemon.py``) or one full cycle.

``--once`` exits 0 only when nothing is left pending: every local change was accepted
by national, or is recorded as a conflict or a rejection with its reason. Otherwise it
prints why and exits 1 (link down, national refusing, values still queued).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from ..config import Config
from ..store import Store
from .cycle import SyncEngine
from .daemon import Daemon, WorkerLock
from .state import set_state

log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--once", action="store_true",
                   help="run one full cycle and exit (0 only when nothing is left pending)")
    p.add_argument("--reason", default=None, help=argparse.SUPPRESS)


def run(args: argparse.Namespace, config: Config) -> int:
    config.data_dir.mkdir(parents=True, exist_ok=True)
    lock = WorkerLock(config.data_dir)
    if not lock.acquire(wait_s=120.0 if args.once else 0.0):
        print("appliance sync: another sync worker is running on this data directory",
              file=sys.stderr)
        return 1
    store = Store(config.data_dir / "hub.db", autocheckpoint=not config.get("backup", "replica"))
    try:
        if args.once:
            return asyncio.run(_once(store, config, args.reason or "cli"))
        asyncio.run(_daemon(store, config))
        return 0
    finally:
        store.close()
        lock.release()


async def _once(store: Store, config: Config, reason: str) -> int:
    engine = SyncEngine(store, config)
    try:
        result = await engine.cycle(reason)
    finally:
        await engine.close()
    if not result.ok:
        print(f"appliance sync: {result.error}", file=sys.stderr)
        return 1
    print(f"sync: {result.summary()}; {result.rejected} refused by national, "
          f"{result.conflicts} open conflicts; {result.bytes_sent} bytes sent, "
          f"{result.bytes_received} received in {result.seconds:.1f}s", flush=True)
    if result.pending:
        print(f"appliance sync: {result.pending} changes still pending (edited during the "
              "cycle?)", file=sys.stderr)
        return 1
    return 0


async def _daemon(store: Store, config: Config) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    daemon = Daemon(store, config)
    # a killed worker left it at '1'
    await store.write(lambda tx: set_state(tx, {"syncing": "0"}))
    print(f"sync worker ready: national {config.get('national', 'url') or '(none)'}, "
          f"socket {daemon.sock_path}", flush=True)
    await daemon.run(stop)
