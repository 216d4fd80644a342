"""dnsmasq.conf for the hub's LAN resolver (and DHCP server in access-point mode).

Tablets reach the hub at ``https://<[tls] name>``; that name is public, so its
certificate can be publicly trusted, but a UHC's internet link is down for hours. dnsmasq
on the hub answers the name itself with the hub's LAN address, from its own records and
without asking anyone, and forwards every other name upstream while the link is up.

Every value that reaches the file is validated here, at render time: a bad hub.toml
raises ``ConfigError`` naming the key, never a dnsmasq that starts and answers wrong.
"""

from __future__ import annotations

import ipaddress
import os
import re
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..config import Config
from ..errors import ConfigError

SYSTEM_DNSMASQ = Path("/usr/sbin/dnsmasq")
# the image's copy, 0750 root:hub, with file capabilities for DHCP (see image/chroot-setup.sh)
IMAGE_DNSMASQ = Path("/opt/upazila-hub/bin/dnsmasq")
LEASE_FILE = "dnsmasq.leases"
CONF_NAME = "dnsmasq.conf"
# seconds a tablet may cache the hub's own name: an address change reaches it this soon
LOCAL_TTL = 10
CACHE_SIZE = 1000

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_IFNAME = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")  # Linux: IFNAMSIZ 16 with the NUL
_LEASE = re.compile(r"^(infinite|\d+[smhdw]?)$")
_LEASE_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@dataclass(frozen=True)
class DhcpRange:
    start: ipaddress.IPv4Address
    end: ipaddress.IPv4Address
    netmask: ipaddress.IPv4Address | None
    lease: str

    def contains(self, addr: ipaddress.IPv4Address) -> bool:
        return self.start <= addr <= self.end

    def conf(self) -> str:
        parts = [str(self.start), str(self.end)]
        if self.netmask is not None:
            parts.append(str(self.netmask))
        return ",".join([*parts, self.lease])


@dataclass(frozen=True)
class DnsSettings:
    """The validated ``[dns]`` section and ``[tls] name``."""

    name: str
    interface: str  # "" with a fixed address only
    address: ipaddress.IPv4Address | None  # None: follow the interface's address
    port: int
    upstream: tuple[str, ...]  # dnsmasq server= values, "ip" or "ip#port"
    dhcp: DhcpRange | None
    router: ipaddress.IPv4Address | None

    @property
    def rebind_ok_domain(self) -> str:
        """The hub's domain: other hubs' names under it resolve to private addresses too."""
        parent = self.name.split(".", 1)[1]
        return parent if "." in parent else self.name


def dns_name(value: object, key: str = "[tls] name") -> str:
    """A lower-case host name with at least two labels (a trailing dot is dropped)."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{key} is empty: set it to this hub's public name "
                          "(<upazila>.hub.<national domain>) or set [dns] enabled = false")
    name = value.strip().lower().removesuffix(".")
    labels = name.split(".")
    if len(name) > 253 or len(labels) < 2 or not all(_LABEL.match(x) for x in labels):
        raise ConfigError(f"{key} = {value!r} is not a DNS name: use letters, digits and "
                          "'-' in dot-separated labels of 1-63 characters, e.g. "
                          "ramu.hub.dghs.gov.bd")
    if labels[-1].isdigit():
        raise ConfigError(f"{key} = {value!r} looks like an address, not a name")
    if labels[-1] == "local":
        raise ConfigError(f"{key} = {value!r}: .local names belong to mDNS (hub.local); "
                          "tablets need the hub's public name under the national domain")
    return name


def interface_name(value: object, key: str = "[dns] interface") -> str:
    if not isinstance(value, str) or not _IFNAME.match(value) or value in (".", ".."):
        raise ConfigError(f"{key} = {value!r} is not a network interface name "
                          "(1-15 letters, digits, '_', '.' or '-', e.g. eth0 or wlan0)")
    if value == "lo":
        raise ConfigError(f"{key} = 'lo' is the loopback interface: tablets could not reach "
                          "it; name the LAN interface (eth0, wlan0)")
    return value


def lan_ipv4(value: object, key: str) -> ipaddress.IPv4Address:
    """An IPv4 address a LAN device can be given (not 0.0.0.0, loopback, multicast...)."""
    try:
        addr = ipaddress.ip_address(str(value).strip()) if isinstance(value, str) else None
    except ValueError:
        addr = None
    if not isinstance(addr, ipaddress.IPv4Address):
        raise ConfigError(f"{key} = {value!r} is not an IPv4 address (like 192.168.50.1)")
    if addr.is_unspecified or addr.is_loopback or addr.is_multicast or addr.is_link_local \
            or addr == ipaddress.IPv4Address("255.255.255.255"):
        raise ConfigError(f"{key} = {value!r} cannot be a LAN device's address "
                          "(unspecified, loopback, link-local, multicast or broadcast)")
    return addr


def upstream_server(value: object) -> tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, int]:
    """``"ip"`` or ``"ip#port"`` -> (address, port)."""
    key = "[dns] upstream"
    if not isinstance(value, str):
        raise ConfigError(f"{key}: {value!r} is not a string (\"ip\" or \"ip#port\")")
    host, sep, port_s = value.strip().partition("#")
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        hint = " (write ip#port: dnsmasq's form)" if host.count(":") == 1 else ""
        raise ConfigError(f"{key}: {value!r} is not an IP address or ip#port{hint}; "
                          "upstream servers are given by address, not by name") from None
    if addr.is_unspecified or addr.is_multicast:
        raise ConfigError(f"{key}: {value!r} is not a server's address")
    port = 53
    if sep:
        if not port_s.isdigit() or not 0 < int(port_s) < 65536:
            raise ConfigError(f"{key}: {value!r} has a bad port (1-65535 after '#')")
        port = int(port_s)
    return addr, port


def dhcp_range(value: str, key: str = "[dns] dhcp_range") -> DhcpRange:
    parts = [p.strip() for p in value.split(",")]
    if not 2 <= len(parts) <= 4:
        raise ConfigError(f"{key} = {value!r}: write start,end,lease "
                          "(e.g. 192.168.50.20,192.168.50.250,12h)")
    lease = "12h"
    if len(parts) >= 3 and _LEASE.match(parts[-1]):
        lease = parts.pop()
    elif len(parts) == 3 and not _looks_ip(parts[-1]):
        raise ConfigError(f"{key} = {value!r}: lease {parts[-1]!r} is not a duration "
                          "(like 12h, 30m, 1d or infinite)")
    if len(parts) > 3:
        raise ConfigError(f"{key} = {value!r}: write start,end[,netmask],lease")
    start, end = (lan_ipv4(p, key) for p in parts[:2])
    netmask = None
    if len(parts) == 3:
        try:
            net = ipaddress.IPv4Network(f"{start}/{parts[2]}", strict=False)
        except ValueError:
            raise ConfigError(f"{key} = {value!r}: {parts[2]!r} is not a netmask") from None
        netmask = net.netmask
        if end not in net:
            raise ConfigError(f"{key} = {value!r}: {start} and {end} are not in one "
                              f"{net.with_netmask} network")
    if end < start:
        raise ConfigError(f"{key} = {value!r}: the range ends ({end}) before it starts "
                          f"({start})")
    if lease != "infinite":
        secs = int(lease.rstrip("smhdw")) * _LEASE_S.get(lease[-1], 1)
        if secs < 120:
            raise ConfigError(f"{key} = {value!r}: a lease of {lease} is too short "
                              "(dnsmasq's minimum is 2m; 12h suits a UHC)")
    return DhcpRange(start, end, netmask, lease)


def _looks_ip(text: str) -> bool:
    return text.count(".") == 3


def settings(config: Config) -> DnsSettings:
    """Validate ``[tls] name`` and the ``[dns]`` section; raise ConfigError naming the key."""
    g = config.get
    name = dns_name(g("tls", "name"))
    iface_raw = g("dns", "interface")
    addr_raw = g("dns", "address")
    interface = interface_name(iface_raw) if iface_raw else ""
    address = lan_ipv4(addr_raw, "[dns] address") if addr_raw else None
    if not interface and address is None:
        raise ConfigError("[dns] interface is empty and so is [dns] address: name the LAN "
                          "interface (eth0, wlan0) whose address answers "
                          f"{name}, or give a fixed [dns] address")
    port = g("dns", "port")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise ConfigError(f"[dns] port = {port!r} is not a port (1-65535; 53 for tablets)")
    raw_up = g("dns", "upstream")
    if not isinstance(raw_up, list):
        raise ConfigError("[dns] upstream must be a list, e.g. [\"192.168.1.1\"]")
    upstream = []
    for item in raw_up:
        addr, up_port = upstream_server(item)
        # ourselves as upstream: every forwarded query would loop until it times out
        ours = addr.is_loopback or (address is not None and addr == address)
        if ours and up_port == port:
            raise ConfigError(f"[dns] upstream: {item!r} is this dnsmasq itself (port "
                              f"{port}); give the UHC router's or the ISP's DNS server")
        upstream.append(str(addr) if up_port == 53 else f"{addr}#{up_port}")
    dhcp = None
    router = None
    range_raw = g("dns", "dhcp_range")
    router_raw = g("dns", "dhcp_router")
    if range_raw:
        if not interface:
            raise ConfigError("[dns] dhcp_range is set but [dns] interface is empty: name the "
                              "interface DHCP serves (wlan0 when the hub is the access point)")
        dhcp = dhcp_range(str(range_raw))
        if address is not None and dhcp.netmask is not None and address not in \
                ipaddress.IPv4Network(f"{dhcp.start}/{dhcp.netmask}", strict=False):
            raise ConfigError(f"[dns] dhcp_range = {range_raw!r} is not in the network of "
                              f"the hub's [dns] address {address}")
        if address is not None and dhcp.contains(address):
            raise ConfigError(f"[dns] dhcp_range = {range_raw!r} contains the hub's own "
                              f"[dns] address {address}: DHCP would hand it to a tablet")
        if router_raw:
            router = lan_ipv4(router_raw, "[dns] dhcp_router")
            if dhcp.contains(router):
                raise ConfigError(f"[dns] dhcp_router = {router_raw!r} is inside "
                                  f"[dns] dhcp_range: DHCP would hand it to a tablet")
    elif router_raw:
        raise ConfigError("[dns] dhcp_router is set but [dns] dhcp_range is empty: the "
                          "router is only handed out with DHCP leases; set both or neither")
    return DnsSettings(name, interface, address, port, tuple(upstream), dhcp, router)


def render(config: Config, *, user: str | None = None) -> str:
    """dnsmasq.conf text. ``user``: the account dnsmasq drops to when started as root."""
    s = settings(config)
    if user is not None and not re.match(r"^[a-z_][a-z0-9_-]{0,31}$", user):
        raise ConfigError(f"dnsmasq user {user!r} is not a user name")
    src = str(config.source) if config.source else "defaults"
    lines = [
        f"# generated by `appliance dns` from {src}; do not edit: change [dns] in hub.toml",
        "# only what this file says: no /etc/hosts",
        "no-hosts",
        # follows addresses appearing and changing on the interface (and wlan0 coming up
        # after we started), unlike bind-interfaces, which binds once at start
        "bind-dynamic",
    ]
    if s.interface:
        lines.append(f"interface={s.interface}")
    else:
        lines.append(f"listen-address={s.address}")
    lines += [f"port={s.port}", "pid-file=", "log-facility=-"]
    if user:
        lines.append(f"user={user}")
    lines += ["", f"# {s.name}: the hub itself, answered here even with the internet down"]
    if s.address is not None:
        lines.append(f"host-record={s.name},{s.address}")
    else:
        lines.append(f"interface-name={s.name},{s.interface}/4")
    lines += [
        # never forwarded: AAAA and other types get an empty answer at once, not a timeout
        f"local=/{s.name}/",
        f"local-ttl={LOCAL_TTL}",
        "",
        "# everything else goes upstream",
        "domain-needed",
        "bogus-priv",
        "stop-dns-rebind",
        # hub names resolve to LAN addresses by design (<upazila>.hub... -> 10.x)
        f"rebind-domain-ok=/{s.rebind_ok_domain}/",
        "dns-loop-detect",
        f"cache-size={CACHE_SIZE}",
    ]
    if s.upstream:
        lines.append("no-resolv")
        lines += [f"server={u}" for u in s.upstream]
    else:
        # the OS's resolvers (the modem's or DHCP's); dnsmasq re-reads the file on change
        lines.append("resolv-file=/etc/resolv.conf")
    if s.dhcp is not None:
        dns = str(s.address) if s.address is not None else "0.0.0.0"  # 0.0.0.0: our own
        lines += [
            "",
            f"# DHCP on {s.interface}: the hub is the access point",
            f"dhcp-range={s.dhcp.conf()}",
            # an empty router option: no default gateway (dnsmasq would offer itself)
            "dhcp-option=option:router" + (f",{s.router}" if s.router else ""),
            f"dhcp-option=option:dns-server,{dns}",
            "dhcp-authoritative",
            f"dhcp-leasefile={(config.data_dir / LEASE_FILE).resolve()}",
        ]
    return "\n".join(lines) + "\n"


def lan_address(config: Config) -> str | None:
    """The IPv4 address the hub answers its name with now (heartbeat ``lan_ip``), or None.

    ``[dns] address`` when set, else the first IPv4 address of ``[dns] interface``.
    """
    fixed = config.get("dns", "address")
    if fixed:
        return str(lan_ipv4(fixed, "[dns] address"))
    iface = config.get("dns", "interface")
    if not iface:
        return None
    nets = interface_networks(str(iface))
    return str(nets[0].ip) if nets else None


def interface_networks(iface: str) -> list[ipaddress.IPv4Interface]:
    """IPv4 addresses with their prefix on ``iface`` in this network namespace."""
    try:
        out = subprocess.run(["ip", "-4", "-o", "addr", "show", "dev", iface],
                             capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    words = out.split()
    return [ipaddress.IPv4Interface(words[i + 1]) for i, w in enumerate(words[:-1])
            if w == "inet"]


def check(conf: Path, dnsmasq: Path | str = SYSTEM_DNSMASQ) -> None:
    """``dnsmasq --test``: dnsmasq's own parser agrees with the file, or ConfigError."""
    try:
        proc = subprocess.run([str(dnsmasq), "--test", f"--conf-file={conf}"],
                              capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        raise ConfigError(f"{dnsmasq} is not installed (Debian package dnsmasq-base)") \
            from None
    if proc.returncode != 0:
        out = (proc.stderr or proc.stdout).strip()
        raise ConfigError(f"dnsmasq refused {conf}: {out}")


# capabilities dnsmasq needs when it is not started as root: binding port 53 (and 67);
# DHCP also needs NET_ADMIN (ARP entries for clients without an address yet) and NET_RAW
CAP_NET_BIND_SERVICE, CAP_NET_ADMIN, CAP_NET_RAW = 10, 12, 13


def file_capabilities(path: Path) -> int:
    """Permitted file capabilities of ``path`` (setcap ...+ep) as a bit mask; 0: none."""
    try:
        raw = os.getxattr(path, "security.capability")
    except OSError:
        return 0
    if len(raw) < 12:
        return 0
    lo = struct.unpack_from("<I", raw, 4)[0]
    hi = struct.unpack_from("<I", raw, 12)[0] if len(raw) >= 16 else 0
    return lo | (hi << 32)


def process_capabilities(field: str = "CapAmb") -> int:
    """A mask from /proc/self/status (CapAmb: what an exec'd program keeps)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1], 16)
    return 0
