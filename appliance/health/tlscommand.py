"""``appliance tls``: the hub's HTTPS certificate, for the IT focal point and provisioning.

``appliance tls status`` shows the certificate tablets see and how its renewal goes;
``appliance tls renew [--wait S] [--force]`` runs the health agent's renewal once (a CSR to
the fleet, the certificate installed when it comes back) and exits 0 when a valid
certificate is installed. Provisioning runs ``appliance tls renew --wait 300`` for a new
hub's first certificate.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from .. import tlscert
from ..config import Config
from ..dhis2.timefmt import iso_z
from ..errors import CertificateError
from ..store import Store
from .certrenew import CertRenewer, RenewSettings, current, renewal_state, status


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="tls_command", required=True)
    sub.add_parser("status", help="the certificate tablets see, and its renewal")
    r = sub.add_parser("renew", help="ask the fleet for a certificate now if one is due "
                       "(exit 0 when a valid certificate is installed)")
    r.add_argument("--wait", type=float, default=60.0, metavar="SECONDS",
                   help="how long to wait for national to issue it (default 60)")
    r.add_argument("--force", action="store_true",
                   help="renew even if the installed certificate is not due yet")


def run(args: argparse.Namespace, config: Config) -> int:
    settings = RenewSettings.from_config(config)
    if not settings.name:
        print("tls: no [tls] name is set in hub.toml: this hub serves no HTTPS")
        return 2
    config.data_dir.mkdir(parents=True, exist_ok=True)
    store = Store(config.data_dir / "hub.db",
                  autocheckpoint=not config.get("backup", "replica"))
    try:
        if args.tls_command == "status":
            print(status_text(settings, store, port=_port(config)))
            return 0
        res = asyncio.run(CertRenewer(settings, store).check(force=args.force,
                                                             wait_s=args.wait))
        print(f"tls renew: {res.state}: {res.message}")
        return 0 if current(settings) is not None else 1
    finally:
        store.close()


def _port(config: Config) -> int:
    return int(str(config.get("tls", "listen")).rpartition(":")[2] or 443)


def status_text(settings: RenewSettings, store: Store, *, port: int = 443) -> str:
    try:
        pair = tlscert.load(settings.directory)
        unreadable = None
    except CertificateError as e:
        pair, unreadable = None, e.message
    usable = current(settings)
    renewal = store.read_sync(renewal_state) or {}
    doc = status(settings.name, usable, renewal, settings.renew_days, port=port) or {}
    lines = [f"name:        {settings.name}", f"address:     {doc.get('url')}",
             f"state:       {doc.get('state')}"]
    if usable is not None:
        lines += [f"valid until: {iso_z(usable.not_after.timestamp())} "
                  f"({usable.days_left():.0f} days left)",
                  f"issuer:      {usable.issuer}", f"fingerprint: {usable.fingerprint}"]
    elif pair is not None:
        why = "?"
        try:
            tlscert.check_pair(pair.cert_pem, pair.key_pem, settings.name, time.time())
        except CertificateError as e:
            why = e.message
        lines.append(f"installed:   not usable: {why}")
    elif unreadable:
        lines.append(f"installed:   not usable: {unreadable}")
    else:
        lines.append("installed:   none yet")
    lines.append(f"folder:      {settings.directory}")
    if tlscert.next_key_path(settings.directory).exists():
        lines.append("renewal:     in progress (next-key.pem is waiting for its certificate)")
    for key, label in (("last_attempt", "last asked:  "), ("last_success", "last renewed:"),
                       ("last_error", "last error:  ")):
        if renewal.get(key):
            lines.append(f"{label} {renewal[key]}")
    lines.append(f"fleet:       {settings.url or '(none: set [health] heartbeat_url)'}")
    return "\n".join(lines)
