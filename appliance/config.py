"""hub.toml: every key has a default and one line of documentation.

``KEYS`` is the single source of truth: the loader, ``appliance config --docs`` and
the test that checks README/docs coverage all read it.
"""

from __future__ import annotations

import os
import stat
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError


@dataclass(frozen=True)
class Key:
    section: str
    name: str
    default: Any
    doc: str
    secret: bool = False


KEYS: list[Key] = [
    Key("hub", "id", "hub-demo", "Stable identifier of this hub (also its fleet identity)."),
    Key("hub", "name", "Demo hub", "Human name shown on pages and in the fleet dashboard."),
    Key("hub", "org_unit", "", "UID of the upazila org unit this hub serves (root of its subtree)."),
    Key("hub", "listen", "0.0.0.0:8080", "host:port of the LAN HTTP listener."),
    Key("hub", "role", "hub", "'hub' on an upazila hub (provisioning refuses anything else). The "
        "national stand-in is its own command, `appliance national`, not a value of this key."),
    Key("hub", "dhis2_version", "2.41.3", "DHIS2 version the LAN API emulates (reported in /api/system/info)."),
    Key("hub", "max_body_mb", 32, "Largest request body accepted, in MiB (413 above it)."),
    Key("hub", "zeroconf", True, "Advertise the hub over mDNS (_http._tcp, _dhis2._tcp)."),
    Key("tls", "name", "", "This hub's public HTTPS name, <upazila>.hub.<national domain> (set by provisioning); empty: no HTTPS. Tablets use https://<name>."),
    Key("tls", "listen", "0.0.0.0:443", "host:port of the HTTPS listener (started once a certificate is installed)."),
    Key("tls", "dir", "", "Folder holding the hub's private key (0600) and certificate; empty: <data-dir>/tls."),
    Key("tls", "renew_days", 30, "Renew the certificate when fewer than this many days (or a third of its lifetime) are left."),
    Key("tls", "certificate_url", "", "Fleet endpoint the hub sends its CSR to; empty: /api/certificates beside [health] heartbeat_url."),
    Key("tls", "check_every_s", 3600, "Seconds between the health agent's renewal checks (and retries after a failure)."),
    Key("tls", "offer_https", True, "Offer laptops on http:// a link to the HTTPS name once it answers (they keep plain HTTP)."),
    Key("dns", "enabled", False, "Run dnsmasq on the hub: answer [tls] name with the hub's LAN address, forward the rest upstream."),
    Key("dns", "interface", "", "LAN interface whose address answers the hub's name and where dnsmasq listens (eth0, wlan0)."),
    Key("dns", "address", "", "A fixed LAN address to answer the hub's name with, instead of the interface's."),
    Key("dns", "port", 53, "Port dnsmasq answers DNS on."),
    Key("dns", "upstream", [], "Upstream DNS servers (\"ip\" or \"ip#port\") for every other name; empty: those in /etc/resolv.conf."),
    Key("dns", "dhcp_range", "", "When the hub is the UHC's Wi-Fi access point: DHCP range start,end,lease (e.g. 192.168.50.20,192.168.50.250,12h); empty: no DHCP."),
    Key("dns", "dhcp_router", "", "Default gateway handed out with DHCP leases; empty: none (a LAN with no internet but the hub)."),
    Key("national", "url", "", "Base URL of the national DHIS2 (empty: no upstream)."),
    Key("national", "username", "", "Service account for national (Basic auth) if no token is set."),
    Key("national", "password", "", "Password of the service account.", secret=True),
    Key("national", "token", "", "Personal access token (d2pat_...) for national; preferred over a password.", secret=True),
    Key("national", "timeout_s", 60, "Per-request timeout towards national, in seconds."),
    Key("national", "tcp_rto_max_ms", 1500, "Cap on TCP's retransmission timeout towards national, 1000-120000 (Linux >= 6.15; 0: the kernel's 120 s). After a cut, a request in flight resumes within this long of the link's return instead of sitting in exponential backoff."),
    Key("national", "tcp_congestion", "", "TCP congestion control for connections to national (cubic, bbr, ...); empty: the kernel's default (cubic on Raspberry Pi OS). One the kernel refuses is ignored, with a warning in the log."),
    Key("sync", "interval_s", 900, "Seconds between timer-driven sync cycles."),
    Key("sync", "policy", "latest-wins", "Default conflict policy: latest-wins, national-wins or hub-wins."),
    Key("sync", "policies", {}, "Per data set policy overrides: {<dataSet uid> = <policy>}."),
    Key("sync", "debounce_s", 20, "Seconds to wait after new local data before a sync cycle starts."),
    Key("sync", "batch_s", 900, "After a cycle that pushed data, newly saved data waits until this many seconds have passed since that cycle started (a sync a person asks for, the timer and a modem appearing do not wait): on the modem a few large pushes cost far fewer bytes than one a minute (bench/day_bench.py). 0: push after every debounce, for a hub on a fixed line."),
    Key("sync", "chunk_values", 500, "Initial number of data values per pushed chunk (adapts to the link)."),
    Key("sync", "wire_format", "csv", "How data values travel to and from national: 'csv' (DHIS2's CSV, the fewest bytes: bench/wire_bench.py) or 'json'. With 'csv' the hub falls back to JSON by itself while a national refuses CSV (remembered until its version changes)."),
    Key("sync", "tracker_chunk_rows", 8000, "Tracker records and values per pushed /api/tracker chunk."),
    Key("sync", "modem_budget_mb", 0, "Monthly data budget of the modem in MB (1 MB = 1024 x 1024 bytes, as operators count packs); the fleet alerts when a calendar month's bytes (sync and fleet traffic, up and down) exceed it. 0: no budget."),
    Key("sync", "metadata_page_size", 250, "Metadata objects per page of a metadata pull (a cut link resumes at the page it reached)."),
    Key("sync", "socket", "", "Unix socket the sync daemon listens on for 'sync now' (default: <data-dir>/sync.sock)."),
    Key("backup", "replica", "", "litestream replica URL (sftp://... or s3://...); empty disables backup."),
    Key("backup", "sftp_key", "", "This hub's own SSH private key (OpenSSH format) for an sftp:// replica; provisioning makes one per hub.", secret=True),
    Key("backup", "host_key", "", "The backup server's SSH host key ('ecdsa-sha2-nistp256 AAAA...', set by provisioning): litestream refuses any other server. Required with an sftp:// replica."),
    Key("health", "heartbeat_url", "", "The fleet service: its base URL or its /api/heartbeats endpoint (empty: no heartbeats)."),
    Key("health", "token", "", "This hub's fleet token (from 'appliance fleet add-hub').", secret=True),
    Key("health", "interval_s", 60, "Seconds between health samples."),
    Key("health", "heartbeat_every", 5, "Send a heartbeat every N samples."),
    Key("health", "commit_every", 3, "Write the health samples to the SD card every N heartbeats (3: every 15 minutes); between, a heartbeat goes straight from memory. Each write costs the card a WAL write, its fsync and a backup file."),
    Key("health", "retention_days", 14, "Days of health samples kept in the store."),
    Key("health", "quick_check_every_s", 21600, "Seconds between SQLite quick_check runs."),
    Key("health", "disk_device", "", "Block device whose writes are counted (e.g. mmcblk0); empty: the data dir's."),
    Key("health", "queue_max", 500, "Heartbeats kept while the link is down; older ones are summarised."),
    Key("gpio", "enabled", True, "Drive LEDs and the button (off on machines without GPIO)."),
    Key("gpio", "led_status", 17, "BCM pin of the green status LED."),
    Key("gpio", "led_fault", 27, "BCM pin of the red fault/activity LED."),
    Key("gpio", "button", 22, "BCM pin of the push button (to ground, internal pull-up)."),
    Key("gpio", "hold_s", 5.0, "Seconds the button must be held for a clean shutdown."),
    Key("gpio", "poweroff_command", ["touch", "/run/upazila-hub/poweroff"], "Command the held button runs for a clean shutdown; the default asks the image's upazila-poweroff.path, which powers off as root (logind refuses the hub's user)."),
    Key("update", "enabled", True, "Let the health agent install the software release national's fleet offers (RAUC A/B update); a hub without the rauc command reports no update state."),
    Key("update", "url", "", "Fleet endpoint the hub asks which release to run; empty: /api/updates/check beside [health] heartbeat_url."),
    Key("update", "check_every_s", 3600, "Seconds between asking the fleet which release to run (while the link is up)."),
    Key("update", "dir", "", "Folder the offered bundle is downloaded to (resumed after a cut); empty: <data-dir>/updates."),
    Key("update", "rauc", "rauc", "The rauc command (hub: status, info, install, mark-good/bad; national: reads and checks bundles)."),
    Key("update", "keyring", "", "CA certificate(s) (PEM) a bundle's signature must chain to before it is installed; empty: the keyring in RAUC's system.conf."),
    Key("update", "quiet_hours", "02:00-05:00", "Local time window (HH:MM-HH:MM, may pass midnight) in which the hub reboots into a new release; empty: reboot as soon as it is installed."),
    Key("update", "timezone", "Asia/Dhaka", "Time zone of [update] quiet_hours."),
    Key("update", "reboot_command", ["touch", "/run/upazila-hub/reboot"], "Command that reboots the hub into the new slot (or back to the old one); the default asks the image's upazila-reboot.path, which reboots as root (logind refuses the hub's user)."),
    Key("update", "healthy_for_s", 120, "After booting a new release: seconds the hub, sync and health services must be healthy before the slot is marked good."),
    Key("update", "commit_deadline_s", 900, "After booting a new release: seconds it may take to become healthy; past this the slot is marked bad and the hub reboots into the old one."),
    Key("update", "fleet_keyring", "", "National side: CA certificate(s) (PEM) release bundles must be signed under; add-release refuses any other bundle."),
    Key("fleet", "listen", "0.0.0.0:8090", "host:port of the fleet service (national side)."),
    Key("fleet", "silent_after_s", 1800, "Alert when a hub sent no heartbeat for this many seconds."),
    Key("fleet", "retention_days", 90, "Days of heartbeats kept by the fleet service."),
    Key("fleet", "disk_pct", 90.0, "Alert when a hub's data disk is fuller than this percentage."),
    Key("fleet", "temp_c", 80.0, "Alert when a hub's temperature exceeds this (deg C)."),
    Key("fleet", "sync_lag_h", 48.0, "Alert when a hub's last successful sync is older than this (hours)."),
    Key("fleet", "clock_offset_s", 300.0, "Alert when a hub's clock is off by more than this (seconds)."),
    Key("fleet", "language", "bn", "Language of the fleet pages for a user who has not chosen one (bn or en); each user's choice (the বাংলা / English switch) is remembered on their account."),
    Key("fleet", "max_skew_s", 900, "Heartbeats stamped further than this from fleet time are refused (replay)."),
    Key("fleet", "backup_lag_h", 12.0, "Alert when a hub's backup replica is further behind than this (hours): litestream cannot reach the backup server, or is not running."),
    Key("fleet", "cert_expiry_days", 14.0, "Alert when a hub's served certificate expires within this many days (its renewal keeps failing)."),
    Key("acme", "directory", "", "National side: ACME directory URL hub certificates are ordered from (Let's Encrypt: https://acme-v02.api.letsencrypt.org/directory); empty: no certificates."),
    Key("acme", "email", "", "National side: contact e-mail registered with the ACME account."),
    Key("acme", "ca_bundle", "", "National side: PEM bundle to trust the ACME server's HTTPS with; empty: the system CAs."),
    Key("acme", "domain", "", "National side: the domain hub names live under (hub.<national domain>); provisioning names hubs <upazila>.<domain>."),
    Key("acme", "account_key", "", "National side: the ACME account key file (0600); empty: <fleet data-dir>/acme-account.pem, made on first use."),
    Key("acme", "dns_server", "", "National side: host:port of the authoritative DNS primary that accepts RFC 2136 updates for the domain."),
    Key("acme", "dns_zone", "", "National side: the zone updated (empty: [acme] domain)."),
    Key("acme", "tsig_name", "", "National side: TSIG key name for RFC 2136 updates."),
    Key("acme", "tsig_secret", "", "National side: TSIG key secret (base64).", secret=True),
    Key("acme", "tsig_algorithm", "hmac-sha256", "National side: TSIG algorithm."),
    Key("acme", "dns_hook", "", "National side: a program run instead of RFC 2136, as <hook> set-txt|del-txt|set-a <name> <value>, for another DNS provider's API."),
    Key("acme", "propagation_s", 0.0, "National side: seconds to wait after the TXT record answers on the primary before asking the CA to validate (secondaries catching up)."),
    Key("fleet", "metrics_token", "", "Bearer token Prometheus sends to read /metrics (scrape_config authorization credentials_file); empty: /metrics only for logged-in fleet users.", secret=True),
]

_BY_SECTION: dict[str, dict[str, Key]] = {}
for _k in KEYS:
    _BY_SECTION.setdefault(_k.section, {})[_k.name] = _k


@dataclass
class Config:
    """Resolved configuration: defaults overlaid by the TOML file."""

    values: dict[str, dict[str, Any]] = field(default_factory=dict)
    data_dir: Path = Path("data")
    source: Path | None = None

    def get(self, section: str, name: str) -> Any:
        try:
            return self.values[section][name]
        except KeyError:
            raise ConfigError(f"unknown config key [{section}] {name}") from None

    def section(self, section: str) -> dict[str, Any]:
        return dict(self.values.get(section, {}))

    def set(self, section: str, name: str, value: Any) -> None:
        if name not in _BY_SECTION.get(section, {}):
            raise ConfigError(f"unknown config key [{section}] {name}")
        self.values[section][name] = value


def defaults() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for k in KEYS:
        out.setdefault(k.section, {})[k.name] = k.default
    return out


def load(path: str | os.PathLike[str] | None, data_dir: str | os.PathLike[str] | None = None) -> Config:
    values = defaults()
    source: Path | None = None
    if path:
        source = Path(path)
        try:
            raw = tomllib.loads(source.read_text())
        except FileNotFoundError:
            raise ConfigError(f"config file {source} does not exist") from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"config file {source} is not valid TOML: {e}") from None
        for section, items in raw.items():
            if section not in _BY_SECTION or not isinstance(items, dict):
                raise ConfigError(f"{source}: unknown section [{section}]")
            for name, value in items.items():
                key = _BY_SECTION[section].get(name)
                if key is None:
                    raise ConfigError(f"{source}: unknown key [{section}] {name}")
                if key.default is not None and not _same_kind(key.default, value):
                    raise ConfigError(
                        f"{source}: [{section}] {name} should be {type(key.default).__name__}, "
                        f"got {type(value).__name__}")
                values[section][name] = value
        if any(values[k.section][k.name] for k in KEYS if k.secret):
            mode = stat.S_IMODE(source.stat().st_mode)
            if mode & 0o077:
                raise ConfigError(
                    f"{source} holds secrets but is mode {mode:o}; run: chmod 600 {source}")
    return Config(values=values, data_dir=Path(data_dir or "data"), source=source)


def _same_kind(default: Any, value: Any) -> bool:
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, (int, float)):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, type(default))


def docs_markdown() -> str:
    """Reference for every key, as written into docs/config.md."""
    lines = ["# hub.toml reference", "",
             "Every key is optional; the default is shown. Files holding secrets must be mode 0600.", ""]
    section = None
    for k in KEYS:
        if k.section != section:
            section = k.section
            lines += ["", f"## [{section}]", "", "| key | default | meaning |", "|---|---|---|"]
        default = "(secret)" if k.secret else repr(k.default)
        lines.append(f"| `{k.name}` | `{default}` | {k.doc} |")
    return "\n".join(lines) + "\n"
