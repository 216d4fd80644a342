"""``appliance fleet``: serve the fleet service, enrol hubs, manage users, simulate a fleet.

    appliance fleet [--host H] [--port P]             serve (default: [fleet] listen)
    appliance fleet add-hub --hub-id ID [--name N] [--district D] [--division V] [--upazila U]
                            [--tls-name NAME]         print a new token (only that, one line)
    appliance fleet set-tls-name --hub-id ID NAME     assign an enrolled hub its HTTPS name
    appliance fleet add-user --username U --role viewer|admin [--password-file F]
                                                      create or update a dashboard user
    appliance fleet simulate --hubs N --url URL       enrol N simulated hubs and post heartbeats
    appliance fleet add-release BUNDLE.raucb [--version V --compatible C]
                                                      check and store a signed RAUC bundle
    appliance fleet rollout --release VERSION|SHA256 (--hub ID | --district D | --division V
                            | --all) [--compatible C] target a release (#13)
    appliance fleet stop-rollout ID                   stop offering a rollout's release

``add-release``: RAUC reads the bundle's version and compatible and checks its signature
against ``[update] fleet_keyring``; a bundle that does not verify is refused. The bundle
is copied to ``<data-dir>/releases/<sha256>.raucb``. ``rollout``: hubs ask which release
to run; the most specific active rollout matching a hub (hub, then district, then
division, then all) and its hardware wins. See ``rollouts``.

The database is ``<data-dir>/fleet.db`` (and its token key ``fleet.key``); ``add-hub``,
``add-user``, ``set-tls-name`` and ``simulate`` write to it directly, so run them with the
server's ``--data-dir``.

``--tls-name``/``set-tls-name``: the hub's public name (``<upazila>.<[acme] domain>``).
The fleet issues certificates only for that name to that hub, and publishes it in DNS
as an A record of the LAN address the hub reports. ``set-tls-name --hub-id ID ''``
removes it.

``add-user``: a ``viewer`` reads the dashboard, the JSON API and ``/metrics``; an ``admin``
may also enrol hubs and change alert rules over HTTP. The password (at least 8
characters) is read from the first line of ``--password-file``; without it, it is asked
twice when stdin is a terminal, or read from the first line of stdin otherwise (``echo
... | appliance fleet add-user ...``). An existing user gets the new role and password and
is logged out everywhere. It prints one line saying what it did, never the password, and
the change is written to the fleet's admin audit.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import signal
import sys
import time
from pathlib import Path

from ..config import Config
from ..errors import ApplianceError, FleetError
from . import auth, releases, rollouts
from .certs import check_name
from .db import HUB_ID, FleetDB, NewHub
from .web import create_app, start

log = logging.getLogger(__name__)


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
    add.add_argument("--tls-name", metavar="NAME",
                     help="the hub's public HTTPS name, e.g. ramu.hub.example.org: the only "
                          "name it may get a certificate for")
    tls = sub.add_parser("set-tls-name", help="assign an enrolled hub its public HTTPS name",
                         description="Assign an enrolled hub its public HTTPS name (the only "
                                     "name it may get a certificate for); '' removes it.")
    tls.add_argument("--hub-id", required=True, help="the hub's [hub] id")
    tls.add_argument("tls_name", metavar="NAME", help="e.g. ramu.hub.example.org")
    user = sub.add_parser("add-user", help="create or update a fleet dashboard user",
                          description="Create or update a fleet user. The password is read "
                                      "from --password-file, else asked twice on a terminal, "
                                      "else read from the first line of stdin.")
    user.add_argument("--username", required=True)
    user.add_argument("--role", required=True, choices=auth.ROLES,
                      help="viewer: read pages and API; admin: also enrol hubs, change rules")
    user.add_argument("--password-file", metavar="FILE",
                      help="read the password from the first line of FILE")
    sim = sub.add_parser("simulate", help="enrol N simulated hubs and post their heartbeats")
    sim.add_argument("--hubs", type=int, default=500, help="how many hubs (default 500)")
    sim.add_argument("--url", required=True, help="fleet service base URL")
    sim.add_argument("--rounds", type=int, default=1, help="heartbeats per hub; 0: forever")
    sim.add_argument("--interval", type=float, default=60.0,
                     help="seconds between rounds (default 60)")
    sim.add_argument("--history-h", type=float, default=0.0,
                     help="back-fill this many hours of history at enrolment")
    sim.add_argument("--seed", type=int, default=1)
    rel = sub.add_parser("add-release", help="check and store a signed RAUC bundle",
                         description="Check a RAUC bundle's signature against [update] "
                                     "fleet_keyring and store it as a release hubs can be "
                                     "given. Prints the release in one line.")
    rel.add_argument("bundle", metavar="BUNDLE", help="the .raucb file")
    rel.add_argument("--version", help="only without RAUC on this server: the bundle's version")
    rel.add_argument("--compatible", help="only without RAUC on this server: its compatible")
    ro = sub.add_parser("rollout", help="target a release at a hub, a district, a division "
                                        "or every hub")
    ro.add_argument("--release", required=True, metavar="VERSION|SHA256")
    ro.add_argument("--compatible", help="when the version exists for several kinds of "
                                         "hardware")
    who = ro.add_mutually_exclusive_group(required=True)
    who.add_argument("--hub", metavar="ID")
    who.add_argument("--district", metavar="NAME")
    who.add_argument("--division", metavar="NAME")
    who.add_argument("--all", action="store_true", help="every hub")
    stop = sub.add_parser("stop-rollout", help="stop offering a rollout's release (hubs "
                                               "that installed it keep it)")
    stop.add_argument("rollout_id", metavar="ID", type=int)
    for p in (add, user, sim, tls, rel, ro, stop):  # accept the common options after it too
        p.add_argument("--config", metavar="PATH", default=argparse.SUPPRESS)
        p.add_argument("--data-dir", metavar="DIR", default=argparse.SUPPRESS)


def run(args: argparse.Namespace, config: Config) -> int:
    action = getattr(args, "fleet_action", None)
    if action == "add-hub":
        return add_hub(args, config)
    if action == "add-user":
        return add_user(args, config)
    if action == "set-tls-name":
        return set_tls_name(args, config)
    if action == "simulate":
        return simulate(args, config)
    if action == "add-release":
        return add_release(args, config)
    if action == "rollout":
        return rollout(args, config)
    if action == "stop-rollout":
        return stop_rollout(args, config)
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
    tls_name = check_name(args.tls_name) if args.tls_name else None
    with FleetDB(config.data_dir / "fleet.db") as db:
        token = db.add_hubs([NewHub(args.hub_id, args.name, args.district, args.division,
                                    args.upazila, args.org_unit, tls_name)], rotate=args.rotate)
    print(token[args.hub_id], flush=True)
    return 0


def set_tls_name(args: argparse.Namespace, config: Config) -> int:
    name = check_name(args.tls_name) if args.tls_name.strip() else ""
    with FleetDB(config.data_dir / "fleet.db") as db:
        before = db.set_tls_name(args.hub_id, name, by=_cli_user())
    what = f"is now {name}" if name else "removed"
    print(f"hub {args.hub_id}: HTTPS name {what} (was {before or 'none'})", flush=True)
    return 0


def _cli_user() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # a container without a passwd entry
        return "cli"


def read_password(password_file: str | None) -> str:
    """The new password: from a file, a terminal (asked twice), or stdin's first line."""
    if password_file:
        try:
            text = Path(password_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise FleetError(f"cannot read the password file {password_file}: "
                             f"{getattr(e, 'strerror', None) or e}") from None
        return text.splitlines()[0] if text else ""
    if sys.stdin.isatty():
        first = getpass.getpass("New password: ")
        if getpass.getpass("Repeat it: ") != first:
            raise FleetError("the two passwords differ; nothing was changed")
        return first
    line = sys.stdin.readline()
    return line.rstrip("\r\n")


def add_user(args: argparse.Namespace, config: Config) -> int:
    name = auth.check_username(args.username)
    password = auth.check_password(read_password(args.password_file))
    by = _cli_user()
    with FleetDB(config.data_dir / "fleet.db") as db:
        print(auth.set_user(db, name, args.role, password, by=by), flush=True)
    return 0


def add_release(args: argparse.Namespace, config: Config) -> int:
    config.data_dir.mkdir(parents=True, exist_ok=True)
    with FleetDB(config.data_dir / "fleet.db") as db:
        rel = releases.add_release(db, config, Path(args.bundle), by=_cli_user(),
                                   version=args.version, compatible=args.compatible,
                                   now=time.time())
    what = "added" if rel.created else "already there:"
    check = "signature verified" if rel.verified else "signature NOT checked here"
    print(f"{what} release {rel.version} for {rel.compatible}, {rel.size} bytes, sha256 "
          f"{rel.sha256} ({check})", flush=True)
    return 0


def rollout(args: argparse.Namespace, config: Config) -> int:
    scope, target = next((s, v) for s, v in (("hub", args.hub), ("district", args.district),
                                             ("division", args.division),
                                             ("all", "" if args.all else None))
                         if v is not None)
    now = time.time()
    with FleetDB(config.data_dir / "fleet.db") as db:
        item = db.write_sync(lambda c: rollouts.create_rollout_tx(
            c, release=args.release, scope=scope, target=target or None,
            compatible=args.compatible, by=_cli_user(), client=None, now=now))
    rel = item["release"]
    print(f"rollout {item['id']}: {rel['version']} ({rel['compatible']}) to "
          f"{'all hubs' if scope == 'all' else scope + ' ' + str(item['target'])}", flush=True)
    return 0


def stop_rollout(args: argparse.Namespace, config: Config) -> int:
    now = time.time()
    with FleetDB(config.data_dir / "fleet.db") as db:
        item = db.write_sync(lambda c: rollouts.cancel_rollout_tx(
            c, args.rollout_id, by=_cli_user(), client=None, now=now))
    print(f"rollout {item['id']} ({item['release']['version']}) stopped", flush=True)
    return 0


def simulate(args: argparse.Namespace, config: Config) -> int:
    from .alerts import Thresholds
    from .simulator import make_hubs, register_hubs, run_simulation

    hubs = make_hubs(args.hubs, seed=args.seed)
    with FleetDB(config.data_dir / "fleet.db") as db:  # the rules the server uses
        register_hubs(db, hubs, history_h=args.history_h,
                      thresholds=db.thresholds(Thresholds.from_config(config)),
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
