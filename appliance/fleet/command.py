"""``appliance fleet``: serve the fleet service, enrol hubs, simulate a fleet.

    appliance fleet [--host H] [--port P]             serve (default: [fleet] listen)
    appliance fleet add-hub --hub-id ID [--name N] [--district D] [--division V] [--upazila U]
                                                      print a new token (only that, one line)
    appliance fleet simulate --hubs N --url URL       enrol N simulated hubs and post heartbeats

The database is ``<data-dir>/fleet.db`` (and its token key ``fleet.key``); ``add-hub`` and
``simulate`` write to it directly, so run them with the server's ``--data-dir``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import signal
import sys

from ..config import Config
from ..errors import ApplianceError, FleetError
from .db import FleetDB, NewHub
from .web import create_app, start

log = logging.getLogger(__name__)
HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="address to listen on (default from [fleet] listen)")
    parser.add_argument("--port", type=int, help="port to listen on (default from [fleet] listen)")
    sub = parser.add_subparsers(dest="fleet_action", metavar="ACTION")
    add = sub.add_parser("add-hub", help="enrol a hub and print its new token",
                         description="Enrol a hub and print its token on stdout (only the "
                                     "token, one line). Put it in the hub's [health] token.")
    add.add_argument("--hub-id", required=True, help="the hub's [hub] id")
    add.add_argument("--name", help="human name, e.g. 'Ramu UHC hub'")
    add.add_argument("--district")
    add.add_argument("--division")
    add.add_argument("--upazila")
    add.add_argument("--org-unit", help="UID of the upazila org unit")
    add.add_argument("--rotate", action="store_true",
                     help="the hub exists: issue a new token (the old one stops working) "
                          "and restart its seq (a re-flashed card)")
    sim = sub.add_parser("simulate", help="enrol N simulated hubs and post their heartbeats")
    sim.add_argument("--hubs", type=int, default=500, help="how many hubs (default 500)")
    sim.add_argument("--url", required=True, help="fleet service base URL")
    sim.add_argument("--rounds", type=int, default=1, help="heartbeats per hub; 0: forever")
    sim.add_argument("--interval", type=float, default=60.0,
                     help="seconds between rounds (default 60)")
    sim.add_argument("--history-h", type=float, default=0.0,
                     help="back-fill this many hours of history at enrolment")
    sim.add_argument("--seed", type=int, default=1)
    for p in (add, sim):  # accept the common options after the action too
        p.add_argument("--config", metavar="PATH", default=argparse.SUPPRESS)
        p.add_argument("--data-dir", metavar="DIR", default=argparse.SUPPRESS)


def run(args: argparse.Namespace, config: Config) -> int:
    action = getattr(args, "fleet_action", None)
    if action == "add-hub":
        return add_hub(args, config)
    if action == "simulate":
        return simulate(args, config)
    host, _, port = str(config.get("fleet", "listen")).rpartition(":")
    host = args.host or host or "0.0.0.0"
    port_n = args.port if args.port is not None else int(port or 8090)
    config.data_dir.mkdir(parents=True, exist_ok=True)
    asyncio.run(serve(config, host, port_n))
    return 0


async def serve(config: Config, host: str, port: int) -> None:
    app = create_app(config)
    runner, url = await start(app, host, port)
    print(f"fleet ready: {url}/", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def add_hub(args: argparse.Namespace, config: Config) -> int:
    if not HUB_ID.match(args.hub_id):
        raise FleetError(f"hub id {args.hub_id!r} must be 1-100 letters, digits, '.', '_' or "
                         "'-', starting with a letter or digit")
    with FleetDB(config.data_dir / "fleet.db") as db:
        token = db.add_hubs([NewHub(args.hub_id, args.name, args.district, args.division,
                                    args.upazila, args.org_unit)], rotate=args.rotate)
    print(token[args.hub_id], flush=True)
    return 0


def simulate(args: argparse.Namespace, config: Config) -> int:
    from .alerts import Thresholds
    from .simulator import make_hubs, register_hubs, run_simulation

    hubs = make_hubs(args.hubs, seed=args.seed)
    register_hubs(config.data_dir / "fleet.db", hubs, history_h=args.history_h,
                  thresholds=Thresholds.from_config(config),
                  max_skew_s=float(config.get("fleet", "max_skew_s")))
    stats = asyncio.run(run_simulation(args.url, hubs, args.rounds, interval_s=args.interval))
    print(f"sent {stats.sent} heartbeats from {len(hubs)} hubs: {stats.accepted} accepted, "
          f"statuses {dict(stats.statuses)}", file=sys.stderr)
    for e in stats.errors:
        print(f"  {e}", file=sys.stderr)
    return 0 if stats.accepted == stats.sent else 1


def main(argv: list[str] | None = None) -> int:
    """``python -m appliance.fleet.command``: the same as ``appliance fleet``."""
    from .. import config as config_mod

    parser = argparse.ArgumentParser(prog="appliance fleet", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", metavar="PATH", help="hub.toml (TOML)")
    parser.add_argument("--data-dir", metavar="DIR", help="where the database and state live")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return run(args, config_mod.load(args.config, args.data_dir))
    except ApplianceError as e:
        print(f"appliance fleet: {e.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
