"""The hub's certificate renewal (issue 12): a CSR to the fleet, the certificate back.

Contract (the fleet side is built to it)::

    POST <[tls] certificate_url>    (default: /api/certificates beside [health] heartbeat_url)
    Content-Type: application/json  (not compressed)
    X-Hub-Id, Authorization: Bearer <token>, X-Hub-Signature: sha256=<HMAC of the body>
    body = {"hub_id", "csr": "<PEM CSR>", "sent_at": "<iso Z>"}
    200 response.state "issued", response.certificate: the full chain PEM
    202 + Retry-After, response.state "pending", response.last_error
    400 bad CSR, 401 token/signature, 403 not this hub's name, 409 stale sent_at,
    503 the fleet does not issue certificates

Every ``[tls] check_every_s`` (and at start) the health agent calls ``CertRenewer.check``:
when the certificate is missing, expired, for another name, or due (``tlscert.renewal_due``),
the key in ``next-key.pem`` (made once, 0600) signs a CSR that is re-sent until the fleet
returns its certificate. A returned certificate is checked against that key and
``[tls] name``; a good one is installed (the hub picks it up within 2 s), a refused one
is not, and the old pair stays. Only the CSR leaves the hub, never the key.

What happened is kept in ``health_state`` under ``tls`` for the hub's status API and page.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import socket
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import tlscert
from ..config import Config
from ..dhis2.timefmt import iso_z
from ..errors import CertificateError
from ..store import Store
from ..store.wirebytes import FLEET, Tally
from . import state
from .fleeturl import fleet_endpoint
from .heartbeat import HttpOutcome, date_header_time, post, request_headers

log = logging.getLogger(__name__)

STATE_KEY = "tls"
MAX_CERT_BYTES = 256 * 1024
DEFAULT_RETRY_S = 10.0


def default_url(heartbeat_url: str) -> str:
    """``/api/certificates`` on the fleet the heartbeat URL names (its base, or its /api/heartbeats)."""
    return fleet_endpoint(heartbeat_url, "/api/certificates")


@dataclass
class RenewSettings:
    name: str
    directory: Path
    url: str
    hub_id: str
    token: str
    renew_days: float = 30.0
    check_every_s: float = 3600.0
    wait_s: float = 60.0       # how long one check follows a pending issuance
    timeout_s: float = 30.0

    @classmethod
    def from_config(cls, config: Config) -> RenewSettings:
        g = config.get
        return cls(name=str(g("tls", "name")).strip(),
                   directory=tlscert.tls_dir(g("tls", "dir"), config.data_dir),
                   url=g("tls", "certificate_url") or default_url(g("health", "heartbeat_url")),
                   hub_id=g("hub", "id"), token=g("health", "token"),
                   renew_days=float(g("tls", "renew_days")),
                   check_every_s=float(g("tls", "check_every_s")))


@dataclass
class RenewResult:
    state: str                  # "ok" (nothing to do), "installed", "pending", "error", "off"
    message: str = ""
    info: tlscert.CertInfo | None = None
    retry_after_s: float | None = None
    fleet_error: str | None = None  # pending: why the fleet's last attempt failed

    @property
    def valid(self) -> bool:
        """A valid certificate is installed now."""
        return self.state in ("ok", "installed")


def current(settings: RenewSettings, now: float | None = None) -> tlscert.CertInfo | None:
    """The installed certificate if it may be served now as ``[tls] name`` (None: none, or
    one refused: expired, another name, another key)."""
    try:
        pair = tlscert.load(settings.directory)
        if pair is None:
            return None
        return tlscert.check_pair(pair.cert_pem, pair.key_pem, settings.name, now)
    except CertificateError:
        return None


def _message(text: str) -> tuple[str, dict[str, Any]]:
    """The fleet's WebMessage: its message and its ``response`` object."""
    try:
        doc = json.loads(text) if text else {}
    except ValueError:
        return text.strip()[:200], {}
    if not isinstance(doc, dict):
        return "", {}
    resp = doc.get("response")
    return str(doc.get("message") or ""), resp if isinstance(resp, dict) else {}


def _retry_after(out: HttpOutcome, response: dict[str, Any]) -> float:
    for v in (out.retry_after, response.get("retry_after_s")):
        try:
            if v is not None:
                return max(0.0, float(v))
        except (TypeError, ValueError):
            continue
    return DEFAULT_RETRY_S


class CertRenewer:
    """One renewal check at a time (the agent's loop, or ``appliance tls renew``)."""

    def __init__(self, settings: RenewSettings, store: Store, *,
                 clock_offset: Callable[[], float] = lambda: 0.0,
                 sleep: Callable[[float], Any] = asyncio.sleep) -> None:
        self.s = settings
        self.store = store
        self.clock_offset = clock_offset  # fleet time minus ours, as heartbeats measured it
        self.sleep = sleep
        self.fleet_offset_s = 0.0
        self.requests = 0
        self.wire: Tally | None = None  # the agent's count of bytes on the modem

    async def check(self, *, force: bool = False, wait_s: float | None = None) -> RenewResult:
        """Renew if due (or ``force``). Never raises for the network or the fleet's answer;
        the outcome is recorded and returned."""
        if not self.s.name:
            return RenewResult("off", "no [tls] name set: this hub serves no HTTPS")
        installed = await asyncio.to_thread(current, self.s)
        if not force and installed is not None and \
                not tlscert.renewal_due(installed, self.s.renew_days):
            res = RenewResult("ok", f"the certificate is good until "
                              f"{installed.not_after:%Y-%m-%d}", installed)
            await self._record(res, attempted=False)
            return res
        if not self.s.url:
            res = RenewResult("error", "nowhere to ask for a certificate: set [health] "
                              "heartbeat_url (or [tls] certificate_url)", installed)
            await self._record(res, attempted=False)
            return res
        res = await self._renew(installed, self.s.wait_s if wait_s is None else wait_s)
        await self._record(res, attempted=True)
        return res

    async def _renew(self, installed: tlscert.CertInfo | None, wait_s: float) -> RenewResult:
        key = await asyncio.to_thread(tlscert.next_key, self.s.directory)
        csr = tlscert.make_csr(key, self.s.name).decode()
        deadline = time.monotonic() + max(0.0, wait_s)
        skew_retried = False
        while True:
            out = await self._post(csr)
            message, response = _message(out.text)
            status = out.status
            if status is None:
                return RenewResult("error", out.error or "fleet unreachable", installed)
            if status == 200:
                return await self._install(response, key, installed)
            if status == 202:
                after = _retry_after(out, response)
                why = response.get("last_error")
                if time.monotonic() + after > deadline:
                    text = "the fleet is getting the certificate"
                    if why:
                        text += f"; its last attempt failed: {why}"
                    return RenewResult("pending", text, installed, retry_after_s=after,
                                       fleet_error=str(why) if why else None)
                await self.sleep(max(0.2, after))
                continue
            if status == 409 and not skew_retried and self._observe_date(out.date):
                skew_retried = True  # refused for our clock: once more in fleet time
                continue
            return RenewResult("error", self._refusal(status, message), installed)

    async def _post(self, csr: str) -> HttpOutcome:
        now = time.time()
        offset = self.fleet_offset_s or self.clock_offset()
        if abs(offset) > 30:  # no RTC after a power cut: stamp in the fleet's time
            now += offset
        body = json.dumps({"hub_id": self.s.hub_id, "csr": csr, "sent_at": iso_z(now)},
                          separators=(",", ":")).encode()
        headers = request_headers(self.s.hub_id, self.s.token, body, gzipped=False)
        self.requests += 1
        out = await asyncio.to_thread(post, self.s.url, body, headers, self.s.timeout_s,
                                      read_ok=MAX_CERT_BYTES)
        if self.wire is not None:
            self.wire.add(FLEET, out.sent_bytes, out.received_bytes)
        return out

    def _observe_date(self, header: str | None) -> bool:
        fleet_now = date_header_time(header)
        if fleet_now is None:
            return False
        self.fleet_offset_s = fleet_now - time.time()
        return abs(self.fleet_offset_s) > 30

    def _refusal(self, status: int, message: str) -> str:
        said = f": {message}" if message else ""
        if status == 401:
            return f"the fleet refused this hub's token (HTTP 401){said}; check [health] token"
        if status == 403:
            return (f"the fleet says {self.s.name} is not this hub's name (HTTP 403){said}; "
                    "check [tls] name against the fleet's record of this hub")
        if status == 409:
            return f"the fleet refused the request's time (HTTP 409){said}; check this hub's clock"
        if status == 503:
            return f"the fleet service does not issue certificates (HTTP 503){said}"
        if status == 400:
            return f"the fleet refused the certificate request (HTTP 400){said}"
        return f"the fleet answered HTTP {status}{said}"

    async def _install(self, response: dict[str, Any], key: bytes,
                       installed: tlscert.CertInfo | None) -> RenewResult:
        cert = response.get("certificate")
        if not isinstance(cert, str) or not cert:
            return RenewResult("error", "the fleet answered 200 without a certificate",
                               installed)
        try:
            info = await asyncio.to_thread(tlscert.install, self.s.directory, cert, key,
                                           self.s.name)
        except CertificateError as e:
            # the fleet would hand back the same certificate for this key: start over
            # with a new key (and a new order) at the next check
            await asyncio.to_thread(tlscert.drop_next_key, self.s.directory)
            log.warning("tls: refused the certificate the fleet returned: %s; the installed "
                        "one stays", e.message)
            return RenewResult("error", f"refused the certificate the fleet returned: "
                               f"{e.message}", installed)
        await asyncio.to_thread(tlscert.drop_next_key, self.s.directory)
        log.info("tls: installed a new certificate for %s from %s, valid until %s",
                 self.s.name, info.issuer, info.not_after.isoformat())
        return RenewResult("installed", f"installed a certificate valid until "
                           f"{info.not_after:%Y-%m-%d}", info)

    async def _record(self, res: RenewResult, *, attempted: bool) -> None:
        if res.state in ("error", "pending"):
            log.log(logging.WARNING if res.state == "error" else logging.INFO,
                    "tls renewal: %s", res.message)
        now = iso_z(time.time())

        def write(tx: Any) -> None:
            rec = state.get_json(tx.conn, STATE_KEY) or {}
            rec.update({"state": res.state, "message": res.message, "checked_at": now,
                        "retry_after_s": res.retry_after_s})
            if attempted:
                rec["last_attempt"] = now
            if res.state == "installed":
                rec["last_success"] = now
            if res.state in ("ok", "installed"):
                rec["last_error"] = None
            elif res.state == "error":
                rec["last_error"] = res.message
            elif res.state == "pending":
                rec["last_error"] = res.fleet_error
            state.put_json(tx, STATE_KEY, rec)
        await self.store.write(write)

    async def run(self, stop: asyncio.Event) -> None:
        """Check at start, then every ``check_every_s`` (sooner while the fleet said to come
        back: a pending issuance)."""
        while not stop.is_set():
            try:
                res = await self.check()
                delay = self.s.check_every_s
                if res.state == "pending" and res.retry_after_s is not None:
                    delay = min(delay, max(5.0, res.retry_after_s))
            except Exception:  # noqa: BLE001 - a bug here must not end the health agent
                log.exception("tls renewal check failed")
                delay = self.s.check_every_s
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)


# -- what the hub's status, the CLI and heartbeats show ---------------------------------------------
def status(name: str, info: tlscert.CertInfo | None, renewal: dict[str, Any] | None,
           renew_days: float, port: int = 443, now: float | None = None) -> dict[str, Any] | None:
    """The ``tls`` object of ``/api/hub/status`` (None when ``name`` is empty)."""
    if not name:
        return None
    renewal = renewal or {}
    t = time.time() if now is None else now
    if info is None:
        st = "none"
    elif info.days_left(t) <= 0:
        st = "expired"
    elif tlscert.renewal_due(info, renew_days, t) or renewal.get("state") == "pending":
        st = "renewing"
    else:
        st = "ok"
    return {"name": name, "url": f"https://{name}" + ("" if port == 443 else f":{port}"),
            "state": st,
            "not_after": iso_z(info.not_after.timestamp()) if info else None,
            "days_left": round(info.days_left(t), 1) if info else None,
            "issuer": info.issuer if info else None,
            "fingerprint": info.fingerprint if info else None,
            "last_error": renewal.get("last_error")}


def renewal_state(conn: Any) -> dict[str, Any] | None:
    """What the health agent last recorded of renewal (``health_state`` ``tls``)."""
    rec = state.get_json(conn, STATE_KEY)
    return rec if isinstance(rec, dict) else None


def heartbeat_tls(directory: Path) -> dict[str, Any] | None:
    """The heartbeat's ``tls``: the certificate installed (and so served) now."""
    try:
        pair = tlscert.load(directory)
    except CertificateError:
        return None
    if pair is None:
        return None
    i = pair.info
    return {"name": i.names[0] if i.names else None, "not_after": iso_z(i.not_after.timestamp()),
            "issuer": i.issuer, "fingerprint": i.fingerprint}


@dataclass
class LanAddress:
    """The heartbeat's ``lan_ip``: ``[dns] address``, else ``[dns] interface``'s IPv4
    address, else the source address the kernel picks towards the fleet."""

    address: str = ""
    interface: str = ""
    fleet_url: str = ""
    _ifaddrs: Callable[[], dict[str, list[Any]]] | None = field(default=None, repr=False)

    def get(self) -> str | None:
        if self.address:
            return self.address
        found = self._interface_ipv4() if self.interface else route_source(self.fleet_url)
        # a fleet on this very machine (a test rig, a bench) is reached over loopback: no
        # address a tablet could use, and not one to publish for the hub's name
        if found is None or ipaddress.ip_address(found).is_loopback:
            return None
        return found

    def _interface_ipv4(self) -> str | None:
        if self._ifaddrs is None:
            import psutil
            addrs = psutil.net_if_addrs()
        else:
            addrs = self._ifaddrs()
        for a in addrs.get(self.interface, []):
            if a.family == socket.AF_INET:
                return str(a.address)
        return None


def route_source(url: str) -> str | None:
    """The local IPv4 address the kernel would send from towards ``url``'s host (a UDP
    socket's connect picks the route; no packet is sent)."""
    host = urllib.parse.urlsplit(url).hostname if url else None
    if not host:
        return None
    try:
        infos = socket.getaddrinfo(host, 443, socket.AF_INET, socket.SOCK_DGRAM)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(infos[0][4])
            return str(s.getsockname()[0])
    except (OSError, IndexError):
        return None
