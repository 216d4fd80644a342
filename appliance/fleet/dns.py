"""National's public DNS for hub names: ACME DNS-01 TXT records and each hub's A record.

Two providers behind one ``DnsProvider`` protocol, picked by ``provider_from_config``:

* ``Rfc2136``: dynamic updates (RFC 2136) signed with TSIG, sent over TCP to the zone's
  primary (``[acme] dns_server``). BIND, Knot and PowerDNS all accept them.
* ``CommandHook``: ``[acme] dns_hook``, a program run as
  ``<hook> set-txt|del-txt|set-a <name> <value>``, for a DNS provider with its own API.

Blocking (sockets, subprocesses, sleeps): the fleet service calls them from a thread.
``set_txt`` returns only once the primary answers the new TXT value (when the primary is
known) and ``[acme] propagation_s`` more has passed, so the CA can be asked to validate.
"""

from __future__ import annotations

import logging
import subprocess
import time
from typing import Protocol

import dns.exception
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TXT
import dns.rdtypes.IN.A
import dns.tsig
import dns.tsigkeyring
import dns.update

from ..config import Config
from ..errors import AcmeError, ConfigError

log = logging.getLogger(__name__)

TXT_TTL = 60  # challenge records live for minutes
A_TTL = 300  # a hub's LAN address changes rarely; resolvers re-ask within 5 minutes
HOOK_TIMEOUT_S = 120.0
DNS_TIMEOUT_S = 10.0
VISIBLE_TIMEOUT_S = 60.0  # waiting for the primary to answer a TXT it accepted


class DnsProvider(Protocol):
    """What national's DNS must do for hub certificates and names."""

    def set_txt(self, name: str, value: str) -> None:
        """Add ``value`` to ``name``'s TXT records (others stay) and wait until it answers."""

    def remove_txt(self, name: str, value: str) -> None:
        """Remove exactly that TXT value from ``name`` (others stay)."""

    def set_a(self, name: str, ip: str) -> None:
        """Make ``ip`` the only A record of ``name``."""


def parse_server(server: str) -> tuple[str, int]:
    """``host:port``, ``host``, ``[v6]:port`` -> (host, port); port 53 by default."""
    s = server.strip()
    if s.startswith("["):
        host, _, rest = s[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else 53
    if s.count(":") == 1:
        host, _, port = s.partition(":")
        try:
            return host, int(port)
        except ValueError:
            raise ConfigError(f"[acme] dns_server {server!r}: the port must be a number") \
                from None
    return s, 53


def txt_answers(host: str, port: int, name: str, *, timeout: float = DNS_TIMEOUT_S
                ) -> list[str]:
    """The TXT values ``host:port`` answers for ``name`` (asked over TCP)."""
    q = dns.message.make_query(name, dns.rdatatype.TXT)
    r = dns.query.tcp(q, host, port=port, timeout=timeout)
    return [b"".join(rd.strings).decode("utf-8", "replace")
            for rrset in r.answer if rrset.rdtype == dns.rdatatype.TXT for rd in rrset]


def wait_for_txt(host: str, port: int, name: str, value: str, *, propagation_s: float,
                 timeout: float = VISIBLE_TIMEOUT_S) -> None:
    """Until ``host:port`` answers ``value`` for ``name``, then ``propagation_s`` more."""
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        try:
            if value in txt_answers(host, port, name):
                break
            last = "it answers without the new value"
        except (OSError, dns.exception.DNSException) as e:
            last = f"asking it failed: {e}"
        if time.monotonic() > deadline:
            raise AcmeError(f"The DNS primary {host}:{port} accepted the TXT record for {name} "
                            f"but does not answer it after {timeout:g} s ({last}). Check that "
                            "it serves the zone it accepted the update for.",
                            error_code="dns")
        time.sleep(0.2)
    if propagation_s > 0:
        time.sleep(propagation_s)


class Rfc2136:
    """RFC 2136 updates with TSIG, sent over TCP to the zone's primary."""

    def __init__(self, server: str, zone: str, *, tsig_name: str = "", tsig_secret: str = "",
                 tsig_algorithm: str = "hmac-sha256", propagation_s: float = 0.0,
                 timeout: float = DNS_TIMEOUT_S) -> None:
        if not zone:
            raise ConfigError("[acme] dns_zone (or [acme] domain) must name the zone the hub "
                              "names live in for RFC 2136 updates")
        self.host, self.port = parse_server(server)
        self.zone = dns.name.from_text(zone)
        self.propagation_s = propagation_s
        self.timeout = timeout
        self.keyring = None
        self.keyname: dns.name.Name | None = None
        self.keyalgorithm = dns.name.from_text(tsig_algorithm)
        if tsig_name:
            try:
                self.keyring = dns.tsigkeyring.from_text({tsig_name: tsig_secret})
            except (ValueError, TypeError) as e:  # bad base64
                raise ConfigError(f"[acme] tsig_secret is not a base64 TSIG secret: {e}") \
                    from None
            self.keyname = dns.name.from_text(tsig_name)

    def __repr__(self) -> str:  # never the secret
        return f"Rfc2136({self.host}:{self.port}, zone {self.zone})"

    def _update(self) -> dns.update.UpdateMessage:
        return dns.update.UpdateMessage(self.zone, keyring=self.keyring, keyname=self.keyname,
                                        keyalgorithm=self.keyalgorithm)

    def _send(self, upd: dns.update.UpdateMessage, what: str) -> None:
        try:
            r = dns.query.tcp(upd, self.host, port=self.port, timeout=self.timeout)
        except dns.tsig.PeerError as e:
            raise AcmeError(f"The DNS primary {self.host}:{self.port} refused our TSIG "
                            f"signature when we tried to {what} ({type(e).__name__}): check "
                            "[acme] tsig_name, tsig_secret and tsig_algorithm against the "
                            "key in its configuration.", error_code="dns") from None
        except (OSError, dns.exception.DNSException) as e:
            raise AcmeError(f"Could not reach the DNS primary {self.host}:{self.port} to "
                            f"{what}: {e or type(e).__name__}. Check [acme] dns_server and "
                            "that it accepts TCP.", error_code="dns") from None
        rc = r.rcode()
        if rc != dns.rcode.NOERROR:
            hint = {dns.rcode.REFUSED: "it does not allow updates with this key (allow-update "
                                       "or update-policy)",
                    dns.rcode.NOTAUTH: "it is not authoritative for the zone, or the TSIG "
                                       "key is wrong",
                    dns.rcode.NOTZONE: "the name is not inside the zone",
                    }.get(rc, "see its log")
            raise AcmeError(f"The DNS primary {self.host}:{self.port} answered "
                            f"{dns.rcode.to_text(rc)} when we tried to {what} in zone "
                            f"{self.zone}: {hint}.", error_code="dns")

    def set_txt(self, name: str, value: str) -> None:
        upd = self._update()
        upd.add(_abs(name), TXT_TTL, _txt(value))  # add: other TXT values stay
        self._send(upd, f"add the TXT record for {name}")
        wait_for_txt(self.host, self.port, name, value, propagation_s=self.propagation_s)

    def remove_txt(self, name: str, value: str) -> None:
        upd = self._update()
        upd.delete(_abs(name), _txt(value))
        self._send(upd, f"remove the TXT record for {name}")

    def set_a(self, name: str, ip: str) -> None:
        upd = self._update()
        upd.replace(_abs(name), A_TTL, dns.rdtypes.IN.A.A(dns.rdataclass.IN,
                                                           dns.rdatatype.A, ip))
        self._send(upd, f"set {name} A {ip}")


class CommandHook:
    """``<hook> set-txt|del-txt|set-a <name> <value>``, for a provider with its own API.

    Exit 0 is success; otherwise the last line of its stderr says why. After ``set-txt``
    the primary is asked for the value when ``[acme] dns_server`` is known; in any case
    ``propagation_s`` is waited.
    """

    def __init__(self, hook: str, *, check_server: str = "", propagation_s: float = 0.0,
                 timeout: float = HOOK_TIMEOUT_S) -> None:
        self.hook = hook
        self.check = parse_server(check_server) if check_server else None
        self.propagation_s = propagation_s
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"CommandHook({self.hook})"

    def _run(self, action: str, name: str, value: str) -> None:
        try:
            p = subprocess.run([self.hook, action, name, value], capture_output=True,
                               timeout=self.timeout, stdin=subprocess.DEVNULL, check=False)
        except subprocess.TimeoutExpired:
            raise AcmeError(f"The DNS hook {self.hook} did not finish '{action} {name}' within "
                            f"{self.timeout:g} s.", error_code="dns") from None
        except OSError as e:
            raise AcmeError(f"Cannot run the DNS hook {self.hook} ([acme] dns_hook): "
                            f"{e.strerror or e}.", error_code="dns") from None
        if p.returncode != 0:
            lines = p.stderr.decode("utf-8", "replace").strip().splitlines()
            why = lines[-1].strip() if lines else "it printed nothing on stderr"
            raise AcmeError(f"The DNS hook {self.hook} failed on '{action} {name}' (exit "
                            f"{p.returncode}): {why}", error_code="dns")

    def set_txt(self, name: str, value: str) -> None:
        self._run("set-txt", name, value)
        if self.check is not None:
            wait_for_txt(*self.check, name, value, propagation_s=self.propagation_s)
        elif self.propagation_s > 0:
            time.sleep(self.propagation_s)

    def remove_txt(self, name: str, value: str) -> None:
        self._run("del-txt", name, value)

    def set_a(self, name: str, ip: str) -> None:
        self._run("set-a", name, ip)


def provider_from_config(config: Config) -> DnsProvider | None:
    """``CommandHook`` when ``[acme] dns_hook`` is set, else ``Rfc2136`` when ``[acme]
    dns_server`` is; None when neither is (this fleet publishes no DNS records)."""
    a = config.section("acme")
    propagation = float(a.get("propagation_s") or 0.0)
    hook = str(a.get("dns_hook") or "").strip()
    server = str(a.get("dns_server") or "").strip()
    if hook:
        return CommandHook(hook, check_server=server, propagation_s=propagation)
    if server:
        return Rfc2136(server, str(a.get("dns_zone") or a.get("domain") or "").strip(),
                       tsig_name=str(a.get("tsig_name") or "").strip(),
                       tsig_secret=str(a.get("tsig_secret") or "").strip(),
                       tsig_algorithm=str(a.get("tsig_algorithm") or "hmac-sha256"),
                       propagation_s=propagation)
    return None


def _abs(name: str) -> dns.name.Name:
    return dns.name.from_text(name)  # relative text is taken as absolute (root origin)


def _txt(value: str) -> dns.rdtypes.ANY.TXT.TXT:
    return dns.rdtypes.ANY.TXT.TXT(dns.rdataclass.IN, dns.rdatatype.TXT, [value.encode()])
