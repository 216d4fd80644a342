"""``appliance dns``: the hub's LAN resolver (dnsmasq), as supervisord runs it.

    appliance dns --config hub.toml [--data-dir DIR] [--run-dir DIR | --conf PATH]
                  [--dnsmasq PATH] [--user USER] [--check]

Renders dnsmasq.conf from hub.toml (a bad value is refused with a message naming the
key), has dnsmasq itself check the file (``--test``), then *becomes* dnsmasq (exec), so
supervisord's signals reach dnsmasq directly and its log (stderr) goes where supervisord
sends it. ``--check`` stops after the checks and prints the file.

On the image supervisord runs as the ``hub`` user with CAP_NET_BIND_SERVICE, which is all
DNS on port 53 needs. DHCP also needs CAP_NET_ADMIN, which only the image's copy of
dnsmasq holds (file capabilities, ``image/chroot-setup.sh``). Started as root (tests, by
hand), dnsmasq drops to ``--user`` itself once its sockets are open.
"""

from __future__ import annotations

import argparse
import logging
import os
import pwd
import sys
import tempfile
from pathlib import Path

from ..config import Config
from ..errors import ConfigError
from ..fsutil import write_atomic
from . import dnsmasq as dm

log = logging.getLogger("appliance.dns")
RUN_DIR = Path("/run/upazila-hub")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run-dir", type=Path, default=RUN_DIR,
                        help=f"where dnsmasq.conf is written (tmpfs; {RUN_DIR})")
    parser.add_argument("--conf", type=Path,
                        help="write the configuration here instead of <run-dir>/dnsmasq.conf")
    parser.add_argument("--dnsmasq", type=Path,
                        help=f"the dnsmasq binary ({dm.IMAGE_DNSMASQ} when present, "
                             f"else {dm.SYSTEM_DNSMASQ})")
    parser.add_argument("--user", help="when started as root: the user dnsmasq drops to "
                                       "(dnsmasq, else nobody)")
    parser.add_argument("--check", action="store_true",
                        help="render and check the configuration, print it, do not start")


def default_binary() -> Path:
    if os.access(dm.IMAGE_DNSMASQ, os.X_OK):
        return dm.IMAGE_DNSMASQ
    return dm.SYSTEM_DNSMASQ


def default_user() -> str | None:
    """dnsmasq drops privileges only when started as root; then to this account."""
    if os.geteuid() != 0:
        return None
    for name in ("dnsmasq", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise ConfigError("neither a 'dnsmasq' nor a 'nobody' user exists: pass --user")


def prepare(config: Config, conf: Path, *, dnsmasq: Path | None = None,
            user: str | None = None) -> list[str]:
    """Render, write and check ``conf``; return the argv that runs dnsmasq in the foreground.

    Raises ConfigError for a bad hub.toml, a file dnsmasq refuses, or a dnsmasq that
    could not do what the file asks (privileges, a DHCP range off the interface's network).
    """
    binary = dnsmasq or default_binary()
    text = dm.render(config, user=user)
    s = dm.settings(config)
    _preflight(s, binary)
    conf.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(conf, text)
    dm.check(conf, binary)
    return [str(binary), "--keep-in-foreground", f"--conf-file={conf}"]


def _preflight(s: dm.DnsSettings, binary: Path) -> None:
    if s.interface:
        nets = dm.interface_networks(s.interface)
        if not nets:
            # bind-dynamic picks the address up when it appears (wlan0 after hostapd)
            log.warning("%s has no IPv4 address yet: %s gets no answer until it has one",
                        s.interface, s.name)
        elif s.dhcp is not None and not any(
                s.dhcp.start in n.network and s.dhcp.end in n.network for n in nets):
            have = ", ".join(str(n) for n in nets)
            raise ConfigError(f"[dns] dhcp_range {s.dhcp.start}-{s.dhcp.end} is not in the "
                              f"network of {s.interface} ({have}): dnsmasq would ignore "
                              "every DHCP request there")
    if os.geteuid() == 0:
        return
    caps = dm.process_capabilities("CapAmb") | (
        dm.file_capabilities(binary) & dm.process_capabilities("CapBnd"))
    if s.dhcp is not None and not caps & (1 << dm.CAP_NET_ADMIN):
        raise ConfigError(
            f"DHCP ([dns] dhcp_range) needs {binary} to hold CAP_NET_ADMIN and this user "
            f"(uid {os.geteuid()}) has no such dnsmasq: use the image's {dm.IMAGE_DNSMASQ}, "
            "or run `appliance dns` as root")
    if s.port < _unprivileged_port_start() and not caps & (1 << dm.CAP_NET_BIND_SERVICE):
        raise ConfigError(
            f"[dns] port {s.port} needs CAP_NET_BIND_SERVICE, which uid {os.geteuid()} "
            "does not have here (upazila-hub.service grants it; or run as root)")


def _unprivileged_port_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_unprivileged_port_start").read_text())
    except (OSError, ValueError):
        return 1024


def run(args: argparse.Namespace, config: Config) -> int:
    if not args.check and not config.get("dns", "enabled"):
        raise ConfigError(f"[dns] enabled is false in {config.source or 'the defaults'}: "
                          "this hub runs no resolver (see docs/lan.md)")
    user = args.user if args.user is not None else default_user()
    if args.check and args.conf is None:
        # a check by hand must not rewrite the running dnsmasq's file
        with tempfile.TemporaryDirectory(prefix="appliance-dns-") as tmp:
            return _check(config, Path(tmp) / dm.CONF_NAME, args, user)
    conf = args.conf or args.run_dir / dm.CONF_NAME
    if args.check:
        return _check(config, conf, args, user)
    argv = prepare(config, conf.resolve(), dnsmasq=args.dnsmasq, user=user)
    log.info("starting %s", " ".join(argv))
    for h in logging.getLogger().handlers:
        h.flush()
    os.execv(argv[0], argv)  # no return: supervisord now supervises dnsmasq itself
    return 1  # pragma: no cover


def _check(config: Config, conf: Path, args: argparse.Namespace, user: str | None) -> int:
    prepare(config, conf.resolve(), dnsmasq=args.dnsmasq, user=user)
    sys.stdout.write(conf.read_text())
    print("# dnsmasq: syntax check OK (--check: not started)", file=sys.stderr)
    return 0
