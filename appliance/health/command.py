"""``appliance health``: run the health agent; ``--once``: one sample, one heartbeat."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from ..config import Config
from ..store import Store
from .agent import HealthAgent, Settings

log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--once", action="store_true",
                   help="take one sample, send one heartbeat; exit 0 only if it was delivered")
    p.add_argument("--no-gpio", action="store_true", help="do not drive LEDs or read the button")
    p.add_argument("--no-udev", action="store_true", help="do not watch modem/USB events")


def run(args: argparse.Namespace, config: Config) -> int:
    settings = Settings.from_config(config)
    if getattr(args, "no_gpio", False):
        settings.gpio_enabled = False
    config.data_dir.mkdir(parents=True, exist_ok=True)
    store = Store(config.data_dir / "hub.db",
                  autocheckpoint=not config.get("backup", "replica"))
    try:
        if args.once:
            return asyncio.run(run_once(settings, store, udev=not args.no_udev))
        asyncio.run(run_agent(settings, store, udev=not args.no_udev))
        return 0
    finally:
        store.close()


async def run_once(settings: Settings, store: Store, *, udev: bool = True) -> int:
    """0: the heartbeat reached the fleet; 1: it did not (queued); 2: nowhere to send it."""
    settings.gpio_enabled = False  # a one-shot must not fight the running agent for the pins
    settings.hub_ping_url = None
    agent = HealthAgent(settings, store, udev_source=None)
    if udev:
        try:
            from .udev import present_devices
            agent.udev.enumerate(present_devices())
        except Exception:  # noqa: BLE001 - modem state stays unknown
            log.debug("no udev", exc_info=True)
    try:
        sample = await agent.take_sample(cpu_interval=0.5)
        backup = await agent.check_backup()
        if backup is not None:
            print(f"health: backup replica {backup['lag_s']:.0f} s behind (last replicated "
                  f"{backup['last_replicated_at'] or 'never'})"
                  + (f"; error: {backup['error']}" if backup["error"] else ""))
        if not settings.heartbeat_url:
            print("health: sample taken; no [health] heartbeat_url configured")
            return 2
        res = await agent.heartbeat(sample)
    finally:
        await agent.aclose()
    if res.delivered:
        print(f"health: heartbeat seq {res.seq} delivered ({res.count} samples, HTTP {res.status})")
        return 0
    print(f"health: heartbeat not delivered: {res.error or res.status}; "
          f"{res.queued} samples queued")
    return 1


async def run_agent(settings: Settings, store: Store, *, udev: bool = True) -> None:
    agent = HealthAgent(settings, store, udev_source="pyudev" if udev else None)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    agent.start()
    log.info("health agent running: sample every %ss, heartbeat every %d samples to %s",
             settings.interval_s, settings.heartbeat_every, settings.heartbeat_url or "(none)")
    await agent.run(stop)


def main(argv: list[str] | None = None) -> int:
    """``python -m appliance.health.command``: the agent without the full CLI (bench, debug)."""
    from .. import config as config_mod

    p = argparse.ArgumentParser(prog="appliance health")
    p.add_argument("--config", metavar="PATH")
    p.add_argument("--data-dir", metavar="DIR")
    add_arguments(p)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return run(args, config_mod.load(args.config, args.data_dir))


if __name__ == "__main__":
    raise SystemExit(main())
