"""The ``appliance`` console script: a thin dispatcher; each subcommand lives in its package."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from . import __version__, config
from .errors import ApplianceError
from .memory import tune_malloc

# subcommand -> module exposing add_arguments(parser) and run(args, config) -> int
COMMANDS = {
    "hub": ("appliance.hub.command", "serve the DHIS2-compatible LAN API"),
    "national": ("appliance.national.command",
                 "the national DHIS2 stand-in hubs sync with (demo and tests)"),
    "sync": ("appliance.sync.command", "replicate with the national DHIS2"),
    "health": ("appliance.health.command", "hardware health agent, LEDs, button, heartbeats"),
    "tls": ("appliance.health.tlscommand",
            "the hub's HTTPS certificate: status, renew (a CSR to the fleet)"),
    "fleet": ("appliance.fleet.command", "national fleet service (dashboard, alerts, /metrics)"),
    "provision": ("appliance.provisioning.command",
                  "per-upazila provisioning files from the national org-unit tree"),
    "dns": ("appliance.provisioning.dnscommand",
            "the hub's LAN resolver: dnsmasq answering [tls] name (and DHCP)"),
    "demo": ("appliance.demo.command", "national stand-in + hub + fleet on loopback"),
    "config": ("appliance.configcmd", "show the configuration reference or resolved values"),
    "i18n": ("appliance.i18ncmd", "the Bangla/English catalogues: extract strings, check them"),
}


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """Every subcommand, with the options of the one ``argv`` names (all, without argv).

    Only that subcommand's module is imported: importing all of them put the fleet's ACME
    client, the national stand-in and Babel's catalogue tools into every process on the
    hub (about 890 modules and 25 MB each for sync and health, 340 of them used).
    """
    chosen = _chosen(argv)
    parser = argparse.ArgumentParser(prog="appliance", description="The upazila hub appliance")
    parser.add_argument("--version", action="version", version=f"appliance {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (module, help_) in COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        p.add_argument("--config", metavar="PATH", help="hub.toml (TOML)")
        p.add_argument("--data-dir", metavar="DIR", help="where the database and state live")
        p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
        if chosen is not None and name != chosen:
            continue
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name and e.name.startswith("appliance"):
                p.set_defaults(_missing=module)
                continue
            raise
        mod.add_arguments(p)
        p.set_defaults(_module=mod)
    return parser


def _chosen(argv: list[str] | None) -> str | None:
    """The subcommand ``argv`` names: its first word that is not an option (the top level
    has only --help and --version); None for no argv, or a word that names none."""
    if argv is None:
        return None
    first = next((a for a in argv if not a.startswith("-")), None)
    return first if first in COMMANDS else None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv).parse_args(argv)
    tune_malloc()
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if getattr(args, "_missing", None):
        print(f"appliance {args.command}: not available in this build", file=sys.stderr)
        return 2
    try:
        cfg = config.load(args.config, args.data_dir)
        return int(args._module.run(args, cfg) or 0)
    except ApplianceError as e:
        print(f"appliance {args.command}: {e.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
