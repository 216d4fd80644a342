"""Real national infrastructure for the HTTPS tests (#12): BIND as the authoritative DNS
primary that accepts RFC 2136 updates signed with TSIG, and pebble as the ACME CA.

Every listen address is a parameter, so an end-to-end test can start them inside a
network namespace (wrap the call in ``ip netns exec`` by passing ``prefix``). Both are
context managers: the process is stopped (SIGTERM, then SIGKILL) and waited for on exit.

    with run_bind(tmp_path, zone="hub.example.test", port=free_port()) as bind:
        bind.query("ramu.hub.example.test", "A")
    with run_pebble(tmp_path, dns_server=f"127.0.0.1:{bind.port}") as pebble:
        pebble.directory, pebble.ca_bundle, pebble.root_pem
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import ipaddress
import json
import os
import secrets
import signal
import socket
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

NAMED = "/usr/sbin/named"
PEBBLE = "/usr/bin/pebble"


def free_port(host: str = "127.0.0.1") -> int:
    """A port free for both TCP and UDP on ``host`` (DNS listens on both)."""
    for _ in range(50):
        with socket.socket() as t:
            t.bind((host, 0))
            port = int(t.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                try:
                    u.bind((host, port))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free TCP+UDP port")


def _stop(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)


def _tail(path: Path, n: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no log)"


# ------------------------------------------------------------------------------- BIND
@dataclass
class Bind:
    """A running ``named``: the zone ``zone`` on ``listen:port``, updatable with the TSIG
    key ``tsig_name``/``tsig_secret`` (hmac-sha256, base64 secret)."""

    zone: str
    listen: str
    port: int
    tsig_name: str
    tsig_secret: str
    directory: Path
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    tsig_algorithm: str = "hmac-sha256"

    @property
    def server(self) -> str:
        """``host:port``, as ``[acme] dns_server`` and pebble's ``-dnsserver`` take it."""
        return f"{self.listen}:{self.port}"

    def query(self, name: str, rdtype: str = "A") -> list[str]:
        """The records BIND answers for ``name`` (texts, sorted; TXT values unquoted);
        empty when there are none. Asked over TCP, straight from the primary."""
        q = dns.message.make_query(name, rdtype)
        r = dns.query.tcp(q, self.listen, port=self.port, timeout=5)
        out = []
        for rrset in r.answer:
            if rrset.rdtype != dns.rdatatype.from_text(rdtype):
                continue
            for rd in rrset:
                if rrset.rdtype == dns.rdatatype.TXT:
                    out.append(b"".join(rd.strings).decode())
                else:
                    out.append(rd.to_text())
        return sorted(out)

    def soa_ok(self) -> bool:
        try:
            q = dns.message.make_query(self.zone, "SOA")
            r = dns.query.udp(q, self.listen, port=self.port, timeout=1)
        except (OSError, dns.exception.DNSException):
            return False
        return r.rcode() == dns.rcode.NOERROR and bool(r.answer)

    def config(self) -> dict[str, object]:
        """The ``[acme]`` keys that point the fleet at this server."""
        return {"dns_server": self.server, "dns_zone": self.zone, "tsig_name": self.tsig_name,
                "tsig_secret": self.tsig_secret, "tsig_algorithm": self.tsig_algorithm}


def _named_conf(d: Path, zone: str, listen: str, port: int, key: str, secret: str) -> str:
    return f"""
options {{
  directory "{d}";
  pid-file none;
  session-keyfile "{d}/session.key";
  managed-keys-directory "{d}";
  listen-on port {port} {{ {listen}; }};
  listen-on-v6 {{ none; }};
  recursion no;
  dnssec-validation no;
  allow-transfer {{ none; }};
  notify no;
}};
controls {{ }};
key "{key}" {{ algorithm hmac-sha256; secret "{secret}"; }};
zone "{zone}" {{
  type primary;
  file "{d}/zone.db";
  allow-update {{ key "{key}"; }};
}};
"""


def _zone_file(zone: str, listen: str) -> str:
    # SOA/NS only: tests add what they need over RFC 2136. Short TTLs, negative TTL 1 s.
    return (f"$ORIGIN {zone}.\n$TTL 1\n"
            f"@ IN SOA ns1.{zone}. hostmaster.{zone}. 1 3600 600 86400 1\n"
            f"@ IN NS ns1.{zone}.\n"
            f"ns1 IN A {listen}\n")


@contextlib.contextmanager
def run_bind(tmp_path: Path, *, zone: str, listen: str = "127.0.0.1", port: int,
             prefix: Sequence[str] = (), timeout: float = 20.0) -> Iterator[Bind]:
    """Run ``named -g`` (foreground, as root) serving ``zone`` on ``listen:port``.

    ``prefix`` is put before the command (``["ip", "netns", "exec", "national"]``); the
    test process must still reach ``listen:port`` (the readiness probe and ``query``).
    Waits until the zone's SOA answers; raises with named's log if it does not.
    """
    d = tmp_path / f"bind-{port}"
    d.mkdir(parents=True, exist_ok=True)
    os.chmod(d, 0o700)
    key = "fleet-update"
    secret = base64.b64encode(secrets.token_bytes(32)).decode()
    conf = d / "named.conf"
    conf.write_text(_named_conf(d, zone, listen, port, key, secret))
    conf.chmod(0o600)  # it holds the TSIG secret
    (d / "zone.db").write_text(_zone_file(zone, listen))
    log = d / "named.log"
    bind = Bind(zone=zone, listen=listen, port=port, tsig_name=key, tsig_secret=secret,
                directory=d, log=log)
    with open(log, "wb") as out:
        # -g: foreground, log to stderr, no setuid; -n 1: one worker is plenty here
        bind.proc = subprocess.Popen([*prefix, NAMED, "-g", "-n", "1", "-c", str(conf)],
                                     stdout=out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + timeout
        while not bind.soa_ok():
            if bind.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"named did not answer for {zone} on {bind.server}:\n"
                                   + _tail(log))
            time.sleep(0.05)
        yield bind
    finally:
        _stop(bind.proc)


# ------------------------------------------------------------------------------ pebble
@dataclass
class Pebble:
    """A running pebble: ACME ``directory``, its HTTPS listener's CA (``ca_bundle``, what
    the fleet trusts to talk ACME) and the root it issues under (``root_pem``, what a tablet
    trusts)."""

    directory: str
    management: str
    ca_bundle: Path
    root_pem: Path
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    env: dict[str, str] = field(default_factory=dict)

    def config(self) -> dict[str, object]:
        """The ``[acme]`` keys that point the fleet at this CA."""
        return {"directory": self.directory, "ca_bundle": str(self.ca_bundle)}

    def intermediate_pem(self) -> str:
        return _get(self.management + "/intermediates/0", self.ca_bundle)


def make_listener_ca(directory: Path, hosts: Sequence[str]) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for ``hosts`` (names or IPs) under it.
    Returns (ca_bundle, cert, key) paths; the key is 0600."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test listener CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(hours=1))
          .not_valid_after(now + dt.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                       crl_sign=True, content_commitment=False,
                                       key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False,
                                       decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = []
    for h in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            sans.append(x509.DNSName(h))
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    directory.mkdir(parents=True, exist_ok=True)
    bundle, cert_path, key_path = (directory / "listener-ca.pem", directory / "listener.pem",
                                   directory / "listener-key.pem")
    bundle.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.touch(mode=0o600)
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return bundle, cert_path, key_path


def _get(url: str, ca_bundle: Path, timeout: float = 5.0) -> str:
    ctx = ssl.create_default_context(cafile=str(ca_bundle))
    with urllib.request.urlopen(url, context=ctx, timeout=timeout) as r:  # noqa: S310
        return str(r.read().decode())


@contextlib.contextmanager
def run_pebble(tmp_path: Path, *, dns_server: str, listen: str = "127.0.0.1",
               validity_s: int | None = None, env: dict[str, str] | None = None,
               acme_port: int | None = None, management_port: int | None = None,
               prefix: Sequence[str] = (), timeout: float = 20.0) -> Iterator[Pebble]:
    """Run ``/usr/bin/pebble`` on ``listen`` (ACME and management ports picked free),
    resolving DNS-01 challenges through ``dns_server`` (``host:port``).

    ``validity_s`` sets ``certificateValidityPeriod`` (short-lived certificates for
    renewal tests); ``env`` adds variables (``{"PEBBLE_VA_ALWAYS_VALID": "1"}``).
    Waits until the directory answers and saves pebble's root (``/roots/0``, made fresh
    at each start) to ``root_pem``. Ports default to free ones on ``listen``; pass them
    when ``listen`` is not an address of this namespace (``prefix`` runs pebble in
    another). The test process must be able to reach ``listen`` either way.
    """
    acme_port = acme_port or free_port(listen)
    mgmt_port = management_port or free_port(listen)
    d = tmp_path / f"pebble-{acme_port}"
    d.mkdir(parents=True, exist_ok=True)
    hosts = [listen, "localhost"] if listen != "localhost" else ["localhost"]
    bundle, cert, key = make_listener_ca(d, hosts)
    cfg: dict[str, object] = {
        "listenAddress": f"{listen}:{acme_port}",
        "managementListenAddress": f"{listen}:{mgmt_port}",
        "certificate": str(cert), "privateKey": str(key),
        # http-01/tls-alpn-01 are not used; ports nobody listens on
        "httpPort": 5002, "tlsPort": 5001,
        "ocspResponderURL": "", "externalAccountBindingRequired": False,
    }
    if validity_s is not None:
        cfg["certificateValidityPeriod"] = int(validity_s)
    conf = d / "pebble.json"
    conf.write_text(json.dumps({"pebble": cfg}, indent=2))
    host = listen if ":" not in listen else f"[{listen}]"
    peb = Pebble(directory=f"https://{host}:{acme_port}/dir",
                 management=f"https://{host}:{mgmt_port}", ca_bundle=bundle,
                 root_pem=d / "pebble-root.pem", log=d / "pebble.log")
    peb.env = {**os.environ, "PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0",
               **(env or {})}
    with open(peb.log, "wb") as out:
        peb.proc = subprocess.Popen([*prefix, PEBBLE, "-config", str(conf),
                                     "-dnsserver", dns_server],
                                    stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, env=peb.env, cwd=d)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                _get(peb.directory, bundle, timeout=1)
                peb.root_pem.write_text(_get(peb.management + "/roots/0", bundle))
                break
            except OSError as e:
                if peb.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"pebble did not start on {listen}: {e}\n"
                                       + _tail(peb.log)) from None
                time.sleep(0.05)
        yield peb
    finally:
        _stop(peb.proc)


# ---------------------------------------------------------------------------- fixtures
# Import them into a conftest.py (``from tests.tlsinfra import national_dns, pebble``).
ZONE = "hub.example.test"


@pytest.fixture
def national_dns(tmp_path: Path) -> Iterator[Bind]:
    """BIND on 127.0.0.1 serving ``ZONE``, updatable with its TSIG key."""
    with run_bind(tmp_path, zone=ZONE, port=free_port()) as bind:
        yield bind


@pytest.fixture
def pebble(tmp_path: Path, national_dns: Bind) -> Iterator[Pebble]:
    """pebble on 127.0.0.1 validating DNS-01 against ``national_dns``."""
    with run_pebble(tmp_path, dns_server=national_dns.server) as peb:
        yield peb
