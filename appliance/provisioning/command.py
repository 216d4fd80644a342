"""``appliance provision``: provisioning files, first-boot apply, supervisord.conf.

    appliance provision generate (--national-metadata FILE | --demo) --out DIR
                                 [--national-url URL] [--fleet-url URL --fleet-data-dir D]
    appliance provision apply FILE|DIR [--etc DIR] [--data-dir DIR] [--user hub]
    appliance provision supervisord-conf --config hub.toml --out FILE [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from ..config import Config
from ..errors import ConfigError
from .supervisord import Layout, available_programs, render

ETC = Path("/etc/upazila-hub")
DATA_DIR = Path("/var/lib/upazila-hub")
RUN_DIR = Path("/run/upazila-hub")
DEMO_NATIONAL_URL = "http://127.0.0.1:8081"  # where `appliance demo` runs the stand-in


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="provision_action", metavar="ACTION", required=True)
    gen = sub.add_parser("generate", help="one provisioning file per upazila",
                         description="Write <district>-<upazila>.toml (mode 0600) for every "
                                     "upazila org unit, and index.csv for the IT focal points.")
    src = gen.add_mutually_exclusive_group(required=True)
    src.add_argument("--national-metadata", metavar="FILE", type=Path,
                     help="DHIS2 /api/metadata JSON (organisationUnits with level and path)")
    src.add_argument("--demo", action="store_true", help="the embedded demo national metadata")
    gen.add_argument("--out", metavar="DIR", type=Path, required=True)
    gen.add_argument("--national-url", help="base URL of the national DHIS2 "
                                            f"(with --demo: {DEMO_NATIONAL_URL})")
    gen.add_argument("--fleet-url", default="", help="fleet service base URL (heartbeats)")
    gen.add_argument("--fleet-data-dir", metavar="D", type=Path,
                     help="the fleet service's --data-dir: enrol each hub there "
                          "(appliance fleet add-hub) and put its token in the file")
    gen.add_argument("--rotate-fleet-tokens", action="store_true",
                     help="hubs already enrolled get new tokens (their old ones stop working)")
    gen.add_argument("--replica-template", default="",
                     help="litestream replica URL per hub, e.g. "
                          "sftp://backup@host/hubs/{hub_id} ({hub_id}, {org_unit}); with "
                          "sftp:// each hub gets its own SSH key and the server's public "
                          "halves go to <out>/backup-authorized_keys")
    gen.add_argument("--backup-host-key", metavar="FILE", type=Path,
                     help="the backup server's SSH host keys (ssh-keyscan output or its "
                          "ssh_host_*_key.pub files), required with an sftp:// template: "
                          "hubs talk to no other server")
    gen.add_argument("--level", type=int, default=4, help="org unit level of upazilas (4)")
    gen.add_argument("--hub-domain", default="",
                     help="national's domain for hub names (e.g. hub.dghs.gov.bd): each hub "
                          "serves HTTPS as <upazila>.<domain> with a certificate national "
                          "issues (needs the fleet's [acme] settings)")
    gen.add_argument("--lan", choices=("router", "access-point"), default="router",
                     help="how tablets reach the hub (docs/lan.md): behind the UHC's router "
                          "(eth0), or the hub as the Wi-Fi access point (wlan0, DHCP)")
    gen.add_argument("--modem-budget-mb", type=int, default=0, metavar="MB",
                     help="each hub's monthly modem data budget in MB ([sync] "
                          "modem_budget_mb; the fleet alerts above it); 0: none")

    app = sub.add_parser("apply", help="install a provisioning file (first boot)",
                         description="Validate FILE (or the one upazila-hub*.toml in DIR), "
                                     "install it as <etc>/hub.toml and write supervisord.conf.")
    app.add_argument("file", metavar="FILE|DIR", type=Path)
    app.add_argument("--etc", type=Path, default=ETC, help=f"config directory ({ETC})")
    app.add_argument("--user", default="hub",
                     help="service user owning the installed files when run as root (hub)")
    app.add_argument("--keep-source", action="store_true",
                     help="leave the provisioning file where it is (default: move it aside)")
    app.add_argument("--no-restore", action="store_true",
                     help="with [backup] replica and no database: do not restore it")
    app.add_argument("--certificate-wait", type=float, default=120.0, metavar="S",
                     help="with [tls] name: wait this long for national to issue the hub's "
                          "first certificate (0: leave it to the health agent)")
    _layout_args(app)

    sup = sub.add_parser("supervisord-conf", help="write supervisord.conf for a hub.toml")
    sup.add_argument("--out", type=Path, required=True, help="file to write ('-': stdout)")
    _layout_args(sup)
    for p in (gen, app, sup):  # the common options, also accepted after the action
        p.add_argument("--config", metavar="PATH", default=argparse.SUPPRESS)
        p.add_argument("--data-dir", metavar="DIR", default=argparse.SUPPRESS)


def _layout_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run-dir", type=Path, default=RUN_DIR,
                   help=f"supervisord socket and pid file (tmpfs; {RUN_DIR})")
    p.add_argument("--log-dir", type=Path,
                   help="also log each program to <dir>/<program>.log (default: syslog only)")
    p.add_argument("--without", action="append", default=[], choices=("sync", "health", "dns"),
                   help="leave a program out")


def _layout(args: argparse.Namespace) -> Layout:
    # absolute: supervisord resolves relative paths against its own working directory
    return Layout(run_dir=args.run_dir.resolve(),
                  log_dir=args.log_dir.resolve() if args.log_dir else None)


def _available(args: argparse.Namespace) -> dict[str, bool]:
    have = available_programs()
    return {k: v and k not in args.without for k, v in have.items()}


def run(args: argparse.Namespace, config: Config) -> int:
    action = args.provision_action
    if action == "generate":
        return _generate(args)
    if action == "apply":
        return _apply(args)
    return _supervisord_conf(args, config)


def _generate(args: argparse.Namespace) -> int:
    from .generate import generate

    tokens: dict[str, str] = {}
    if args.demo:
        from .. import demo
        doc = demo.national()
        national_url = args.national_url or DEMO_NATIONAL_URL
        # the stand-in has a service account for Ramu: its file works as generated
        tokens = {demo.RAMU_UID: demo.DEMO_TOKENS["hub-ramu"]}
    else:
        try:
            doc = json.loads(args.national_metadata.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise ConfigError(f"cannot read national metadata {args.national_metadata}: {e}") \
                from None
        if not args.national_url:
            raise ConfigError("--national-url is required with --national-metadata")
        national_url = args.national_url
    if args.fleet_data_dir and not args.fleet_url:
        raise ConfigError("--fleet-data-dir needs --fleet-url (where the hubs send heartbeats)")
    host_key = ""
    if args.backup_host_key is not None:
        from .sshkeys import pick_host_key
        try:
            text = args.backup_host_key.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"cannot read --backup-host-key {args.backup_host_key}: {e}") \
                from None
        try:
            host_key = pick_host_key(text)
        except ConfigError as e:
            raise ConfigError(f"--backup-host-key {args.backup_host_key}: {e.message}") \
                from None
    rows = generate(doc, args.out, national_url=national_url, national_tokens=tokens,
                    fleet_url=args.fleet_url, fleet_data_dir=args.fleet_data_dir,
                    rotate_fleet_tokens=args.rotate_fleet_tokens,
                    replica_template=args.replica_template, level=args.level,
                    hub_domain=args.hub_domain, lan=args.lan, backup_host_key=host_key,
                    modem_budget_mb=args.modem_budget_mb)
    todo = sum(not r.national_token for r in rows)
    print(f"wrote {len(rows)} provisioning files and index.csv to {args.out}")
    if host_key:
        print(f"the hubs' SFTP keys for the backup server (pinned to its {host_key.split()[0]} "
              f"host key): {args.out / 'backup-authorized_keys'}")
    if todo:
        print(f"{todo} of them still need the hub's national personal access token in "
              "[national] token (see index.csv)")
    return 0


def _apply(args: argparse.Namespace) -> int:
    from .apply import apply

    data_dir = Path(getattr(args, "data_dir", None) or DATA_DIR)
    done = apply(args.file, etc=args.etc.resolve(), data_dir=data_dir.resolve(), user=args.user,
                 layout=_layout(args),
                 keep_source=args.keep_source, available=_available(args),
                 restore=not args.no_restore)
    print(f"provisioned hub {done.config.get('hub', 'id')} ({done.config.get('hub', 'name')}): "
          f"{done.hub_toml}, {done.supervisord_conf}"
          + (f"; {done.source.name} moved aside to {done.aside.name}" if done.aside else "")
          + (f"; backup: {done.restored}" if done.restored else ""))
    if done.config.get("tls", "name") and args.certificate_wait > 0:
        print(first_certificate(done.hub_toml, data_dir.resolve(), args.certificate_wait))
    return 0


def first_certificate(hub_toml: Path, data_dir: Path, wait_s: float) -> str:
    """The hub's first certificate, while the IT focal point is still there: the hub makes
    its key and CSR, national issues through the fleet (``appliance tls renew``, the same
    client the health agent renews with). Never fatal: without a link, the health agent
    gets it as soon as the link is up."""
    cmd = [sys.executable, "-m", "appliance.cli", "tls", "--config", str(hub_toml),
           "--data-dir", str(data_dir), "renew", "--wait", str(wait_s)]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=wait_s + 60,
                             check=False)
    except subprocess.TimeoutExpired:
        return ("HTTPS: no certificate yet (national did not answer in time); the hub asks "
                "again on its own while its link is up")
    last = (res.stdout.strip().splitlines() or res.stderr.strip().splitlines() or [""])[-1]
    if res.returncode == 0:
        return f"HTTPS: {last}"
    return (f"HTTPS: no certificate yet ({last or f'exit code {res.returncode}'}); the hub "
            "asks again on its own while its link is up")


def _supervisord_conf(args: argparse.Namespace, config: Config) -> int:
    if config.source is None:
        raise ConfigError("supervisord-conf needs --config hub.toml")
    layout = _layout(args)
    layout.config = config.source.resolve()
    layout.data_dir = Path(getattr(args, "data_dir", None) or DATA_DIR).resolve()
    layout.litestream_config = layout.config.parent / "litestream.yml"
    text = render(config, layout, _available(args))
    if str(args.out) == "-":
        sys.stdout.write(text)
    else:
        args.out.write_text(text)
    return 0
