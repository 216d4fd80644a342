"""One provisioning file per upazila, from the national org-unit tree.

Input: a DHIS2 ``/api/metadata`` document (or ``/api/organisationUnits?paging=false``
with ``id,name,code,level,path,parent``). Every org unit at the upazila level (4 in
Bangladesh: country, division, district, upazila) gets ``<district>-<upazila>.toml``:
a complete hub.toml, mode 0600 because it carries the hub's credentials. ``index.csv``
lists them for the IT focal points, without any secret.

With an ``sftp://`` replica template each hub also gets its own SSH key for the backup
server (``[backup] sftp_key``; kept when the file is generated again, so a dead card's
new file still matches the server) and the server's pinned host key (``[backup]
host_key``); ``backup-authorized_keys`` holds the public halves, one SFTP-only line per
hub, for the backup server (provisioning/README.md).
"""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
import tomllib
import unicodedata
import urllib.parse
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import KEYS, load
from ..errors import ConfigError
from ..fsutil import write_atomic
from . import sshkeys, tomlout

# What the national team replaces with the hub's personal access token (apply refuses it).
PAT_PLACEHOLDER = "PASTE-THIS-HUB-PERSONAL-ACCESS-TOKEN-HERE"
UPAZILA_LEVEL = 4
# the DHIS2 LAN API on port 80, so that clinics type just http://hub.local
LISTEN = "0.0.0.0:80"
INDEX_COLUMNS = ["file", "hub_id", "hub_name", "division", "district", "upazila", "org_unit",
                 "code", "https_name", "national_token", "fleet_token", "backup"]
# the hub's LAN interface per deployment: behind the UHC's router (wired), or as the UHC's
# own Wi-Fi access point (hostapd on wlan0, dnsmasq handing out leases); docs/lan.md
LAN_INTERFACE = {"router": "eth0", "access-point": "wlan0"}
AP_ADDRESS = "192.168.50.1"
AP_DHCP_RANGE = "192.168.50.20,192.168.50.250,12h"
_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
AUTHORIZED_KEYS = "backup-authorized_keys"


@dataclass(frozen=True)
class Upazila:
    uid: str
    name: str
    code: str
    district: str
    division: str


@dataclass
class Row:
    file: Path
    hub_id: str
    upazila: Upazila
    national_token: bool
    fleet_token: bool
    backup: bool
    https_name: str = ""

    def csv(self) -> dict[str, str]:
        u = self.upazila
        return {"file": self.file.name, "hub_id": self.hub_id, "hub_name": hub_name(u),
                "division": u.division, "district": u.district, "upazila": u.name,
                "org_unit": u.uid, "code": u.code, "https_name": self.https_name,
                "national_token": "set" if self.national_token else "TO PASTE",
                "fleet_token": "set" if self.fleet_token else "none",
                "backup": "yes" if self.backup else "no"}


def slug(text: str) -> str:
    """``"Cox's Bazar"`` -> ``"coxs-bazar"``: ASCII, lower case, safe on FAT and in hub ids."""
    ascii_ = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    ascii_ = re.sub(r"['\u2019`]", "", ascii_.lower())
    return re.sub(r"[^a-z0-9]+", "-", ascii_).strip("-") or "x"


def hub_name(u: Upazila) -> str:
    return f"{u.name} UHC hub"


def upazilas(doc: Mapping[str, Any], level: int = UPAZILA_LEVEL) -> list[Upazila]:
    """Org units at ``level``, with their district (level-1) and division (level-2) names."""
    units = doc.get("organisationUnits")
    if not isinstance(units, list):
        raise ConfigError("national metadata has no organisationUnits list (expected the "
                          "shape of DHIS2 /api/metadata)")
    by_id = {u["id"]: u for u in units if isinstance(u, dict) and "id" in u}

    def ancestor(u: Mapping[str, Any], at: int) -> str:
        # path is /root/division/district/upazila: the ancestor at level n is element n
        parts = [p for p in str(u.get("path", "")).split("/") if p]
        if len(parts) >= at and parts[at - 1] in by_id:
            return str(by_id[parts[at - 1]].get("name", ""))
        parent = by_id.get((u.get("parent") or {}).get("id", ""))
        while parent is not None and parent.get("level", 0) > at:
            parent = by_id.get((parent.get("parent") or {}).get("id", ""))
        return str(parent.get("name", "")) if parent is not None else ""

    out = [Upazila(uid=u["id"], name=str(u.get("name", u["id"])), code=str(u.get("code", "")),
                   district=ancestor(u, level - 1) or "unknown",
                   division=ancestor(u, level - 2) or "unknown")
           for u in by_id.values() if u.get("level") == level]
    if not out:
        raise ConfigError(f"national metadata has no org units at level {level}")
    return sorted(out, key=lambda u: (u.division, u.district, u.name, u.uid))


def hub_ids(items: Iterable[Upazila]) -> dict[str, str]:
    """{uid: hub id}: ``<district>-<upazila>``, with the code appended where two collide."""
    items = list(items)
    base = {u.uid: f"{slug(u.district)}-{slug(u.name)}" for u in items}
    counts: dict[str, int] = {}
    for b in base.values():
        counts[b] = counts.get(b, 0) + 1
    return {u.uid: base[u.uid] if counts[base[u.uid]] == 1
            else f"{base[u.uid]}-{slug(u.code or u.uid)}" for u in items}


def https_names(items: Iterable[Upazila], ids: Mapping[str, str], domain: str) -> dict[str, str]:
    """{uid: public HTTPS name}: ``<upazila>.<domain>``, as tablets type it; an upazila whose
    name is not unique in the country (there are many "Sadar"s) gets its hub id instead
    (``<district>-<upazila>.<domain>``)."""
    domain = domain.strip().strip(".").lower()
    labels = domain.split(".")
    if not domain or not all(_LABEL.match(p) for p in labels):
        raise ConfigError(f"--hub-domain {domain!r} is not a DNS domain (e.g. hub.dghs.gov.bd)")
    items = list(items)
    counts: dict[str, int] = {}
    for u in items:
        counts[slug(u.name)] = counts.get(slug(u.name), 0) + 1
    out: dict[str, str] = {}
    for u in items:
        label = slug(u.name) if counts[slug(u.name)] == 1 else ids[u.uid]
        if not _LABEL.match(label):
            raise ConfigError(f"the hub name label {label!r} for {u.name} is not a valid DNS "
                              "label (at most 63 letters, digits and hyphens)")
        name = f"{label}.{domain}"
        if len(name) > 253:
            raise ConfigError(f"{name} is longer than a DNS name may be (253)")
        out[u.uid] = name
    return out


def _defaults(section: str) -> dict[str, Any]:
    return {k.name: k.default for k in KEYS if k.section == section}


def hub_document(u: Upazila, hub_id: str, *, national_url: str, national_token: str,
                 heartbeat_url: str, fleet_token: str, replica: str, https_name: str = "",
                 lan: str = "router", sftp_key: str = "",
                 host_key: str = "", modem_budget_mb: int = 0) -> dict[str, dict[str, Any]]:
    gpio = _defaults("gpio")
    doc: dict[str, dict[str, Any]] = {
        "hub": {"id": hub_id, "name": hub_name(u), "org_unit": u.uid, "listen": LISTEN},
        "national": {"url": national_url, "token": national_token},
        "sync": {"interval_s": _defaults("sync")["interval_s"],
                 "policy": _defaults("sync")["policy"],
                 **({"modem_budget_mb": modem_budget_mb} if modem_budget_mb > 0 else {})},
        "backup": {"replica": replica, **({"sftp_key": sftp_key, "host_key": host_key}
                                          if sftp_key else {})},
        "health": {"heartbeat_url": heartbeat_url, "token": fleet_token},
        "gpio": {k: gpio[k] for k in ("enabled", "led_status", "led_fault", "button", "hold_s")},
    }
    if https_name:
        doc["tls"] = {"name": https_name, "listen": "0.0.0.0:443"}
        dns: dict[str, Any] = {"enabled": True, "interface": LAN_INTERFACE[lan]}
        if lan == "access-point":
            dns.update(address=AP_ADDRESS, dhcp_range=AP_DHCP_RANGE)
        doc["dns"] = dns
    return doc


COMMENTS = {
    ("hub", "id"): "This hub's identity at national and in the fleet dashboard: do not change.",
    ("hub", "org_unit"): "DHIS2 UID of the upazila org unit this hub serves.",
    ("national", "token"): "The hub's personal access token at national (d2pat_...). Until it\n"
                           "is pasted here, the hub refuses this file at first boot.",
    ("backup", "replica"): "litestream replica for disaster recovery (empty: no backup).",
    ("backup", "sftp_key"): "This hub's own key for the backup server (its public half is in\n"
                            "backup-authorized_keys). Secret: never share it.",
    ("backup", "host_key"): "The backup server's host key: the hub talks to no other server.",
    ("health", "token"): "Fleet token from `appliance fleet add-hub` (empty: not enrolled).",
    ("sync", "modem_budget_mb"): "The modem's monthly data budget in MB: the fleet alerts the\n"
                                 "national team when a month's traffic goes over it.",
    ("gpio", "enabled"): "LEDs and button on the BCM pins below.",
    ("tls", "name"): "Tablets use https://<this name>. National issues its certificate to the\n"
                     "key this hub makes itself; the hub renews it on its own.",
    ("dns", "enabled"): "The hub answers its HTTPS name on the LAN (dnsmasq), also with the\n"
                        "internet down. docs/lan.md: access point or behind the UHC's router.",
}


def header(u: Upazila, hub_id: str) -> str:
    return "\n".join([
        f"# Upazila hub provisioning file: {u.name} Upazila, {u.district} district, "
        f"{u.division} division",
        f"# hub id {hub_id}, org unit {u.uid}" + (f" ({u.code})" if u.code else ""),
        "#",
        "# Copy this file onto the SD card's boot partition as  upazila-hub.toml  and boot the",
        "# hub. It holds the hub's secrets: keep it off shared drives. The hub moves it off",
        "# the boot partition once applied (upazila-hub.toml.applied, secrets removed).",
    ])


def enrol(hub_id: str, u: Upazila, fleet_data_dir: Path, *, rotate: bool,
          https_name: str = "") -> str:
    """``appliance fleet add-hub`` as a subprocess (it owns the fleet database and its key)."""
    cmd = [sys.executable, "-m", "appliance.cli", "fleet", "--data-dir", str(fleet_data_dir),
           "add-hub", "--hub-id", hub_id, "--name", hub_name(u), "--district", u.district,
           "--division", u.division, "--upazila", u.name, "--org-unit", u.uid]
    if https_name:  # the only name the fleet will get a certificate for, for this hub
        cmd += ["--tls-name", https_name]
    if rotate:
        cmd.append("--rotate")
    res = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=120)
    lines = res.stdout.strip().splitlines()
    if res.returncode != 0 or not lines:
        why = res.stderr.strip().splitlines()[-1:] or [f"exit code {res.returncode}"]
        raise ConfigError(f"appliance fleet add-hub --hub-id {hub_id} failed: {why[0]}"
                          + ("" if rotate else " (to re-issue tokens, pass --rotate-fleet-tokens)"))
    return lines[-1].strip()


def write_private(path: Path, text: str) -> None:
    """Write ``text`` as a 0600 file, atomically and durably: never readable by others."""
    write_atomic(path, text, mode=0o600)


def existing_sftp_key(path: Path) -> str:
    """The SFTP key in a provisioning file generated before (empty: none, or unreadable).
    Keeping it means a regenerated file still matches the backup server's authorized_keys."""
    try:
        key = tomllib.loads(path.read_text(encoding="utf-8")).get("backup", {}).get("sftp_key")
    except (OSError, ValueError):
        return ""
    if not isinstance(key, str) or not key.strip():
        return ""
    try:
        sshkeys.public_of(key)
    except ConfigError:
        return ""
    return key


def sftp_template_check(template: str, host_key: str) -> None:
    """What litestream needs of an sftp:// template, said before any file is written."""
    u = urllib.parse.urlsplit(template)
    if not u.username:
        raise ConfigError(f"--replica-template {template!r} names no user: write "
                          "sftp://backup@<host>/hubs/{hub_id}")
    if not u.path.strip("/"):
        raise ConfigError(f"--replica-template {template!r} names no directory: write "
                          "sftp://backup@<host>/hubs/{hub_id}")
    if "{hub_id}" not in template and "{org_unit}" not in template:
        raise ConfigError("--replica-template must contain {hub_id}: every hub needs its own "
                          "directory on the backup server")
    if not host_key:
        raise ConfigError("an sftp:// --replica-template needs --backup-host-key FILE (the "
                          "backup server's host keys, e.g. ssh-keyscan <host> > FILE, checked "
                          "by hand): without it a hub would send its data to any server "
                          "that answers")


def write_authorized_keys(path: Path, lines: list[str]) -> None:
    header = ["# Public SSH keys of the upazila hubs, one line per hub (comment: hub:<hub id>).",
              "# Install as the backup user's authorized_keys on the backup server",
              "# (provisioning/README.md). Each key may only use SFTP. No secrets here."]
    write_atomic(path, "\n".join(header + lines) + "\n")


def generate(doc: Mapping[str, Any], out_dir: Path, *, national_url: str,
             national_tokens: Mapping[str, str] | None = None, fleet_url: str = "",
             fleet_data_dir: Path | None = None, rotate_fleet_tokens: bool = False,
             replica_template: str = "", level: int = UPAZILA_LEVEL, hub_domain: str = "",
             lan: str = "router", backup_host_key: str = "",
             modem_budget_mb: int = 0) -> list[Row]:
    """Write every upazila's file and ``index.csv`` into ``out_dir``; returns the index rows.

    ``national_tokens``: {org unit uid: PAT} known already (the demo's); others get the
    placeholder. ``replica_template``: e.g. ``sftp://backup@host/hubs/{hub_id}``.
    ``hub_domain``: national's hub domain (``hub.dghs.gov.bd``): each hub gets its HTTPS
    name under it, registered with the fleet, and runs dnsmasq on its ``lan`` side.
    ``backup_host_key``: the backup server's host key line (``sshkeys.pick_host_key``),
    required with an sftp:// template. ``modem_budget_mb``: every hub's monthly modem
    budget (``[sync] modem_budget_mb``; 0: none).
    """
    if modem_budget_mb < 0:
        raise ConfigError(f"--modem-budget-mb must be 0 (none) or more, not {modem_budget_mb}")
    if lan not in LAN_INTERFACE:
        raise ConfigError(f"--lan must be one of {', '.join(LAN_INTERFACE)}, not {lan!r}")
    sftp = replica_template.startswith("sftp://")
    if sftp:
        sftp_template_check(replica_template, backup_host_key)
    elif backup_host_key:
        raise ConfigError("--backup-host-key is only for an sftp:// --replica-template")
    items = upazilas(doc, level)
    ids = hub_ids(items)
    names = https_names(items, ids, hub_domain) if hub_domain else {}
    out_dir.mkdir(parents=True, exist_ok=True)
    out_dir.chmod(0o700)
    heartbeat_url = fleet_url.rstrip("/") + "/api/heartbeats" if fleet_url else ""
    fleet_tokens: dict[str, str] = {}
    if fleet_data_dir is not None:
        # one interpreter start per hub: a few in parallel (the fleet DB serialises writes)
        with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
            futures = {u.uid: pool.submit(enrol, ids[u.uid], u, fleet_data_dir,
                                          rotate=rotate_fleet_tokens,
                                          https_name=names.get(u.uid, "")) for u in items}
            fleet_tokens = {uid: f.result() for uid, f in futures.items()}
    rows: list[Row] = []
    authorized: list[str] = []
    for u in items:
        hub_id = ids[u.uid]
        pat = (national_tokens or {}).get(u.uid, "")
        fleet_token = fleet_tokens.get(u.uid, "")
        replica = replica_template.format(hub_id=hub_id, org_unit=u.uid) \
            if replica_template else ""
        path = out_dir / f"{hub_id}.toml"
        sftp_key = ""
        if sftp:
            sftp_key = existing_sftp_key(path) or sshkeys.new_keypair()[0]
            authorized.append(sshkeys.authorized_line(sshkeys.public_of(sftp_key), hub_id))
        body = hub_document(u, hub_id, national_url=national_url,
                            national_token=pat or PAT_PLACEHOLDER,
                            heartbeat_url=heartbeat_url, fleet_token=fleet_token,
                            replica=replica, https_name=names.get(u.uid, ""), lan=lan,
                            sftp_key=sftp_key, host_key=backup_host_key if sftp else "",
                            modem_budget_mb=modem_budget_mb)
        write_private(path, tomlout.dumps(body, COMMENTS, header(u, hub_id)))
        load(path)  # what we wrote must be what apply accepts (keys, types, mode)
        rows.append(Row(path, hub_id, u, bool(pat), bool(fleet_token), bool(replica),
                        names.get(u.uid, "")))
    index = out_dir / "index.csv"
    with index.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=INDEX_COLUMNS)
        w.writeheader()
        w.writerows(r.csv() for r in rows)
    if sftp:
        write_authorized_keys(out_dir / AUTHORIZED_KEYS, authorized)
    return rows
