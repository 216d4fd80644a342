"""The hub's HTTPS listener (issue 12): the same app and runner as plain HTTP, on
``[tls] listen``, with the certificate in ``[tls] dir`` hot-swapped.

Every ``POLL_S`` a watcher stats the ``live`` symlink and the pair it points at (no
reading, no parsing unless something changed). A new pair is checked with
``tlscert.check_pair`` against ``[tls] name``; a good one becomes a new ``SSLContext``,
and the serving context's SNI callback hands that context to every new handshake
(``ssl_object.context = current``). Connections already open keep the session they
negotiated, so none is dropped. A pair that fails the check is refused with one log line
and the old one stays served. With no certificate at start, the site starts as soon as
the first good one appears; plain HTTP never depends on any of this.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
import time
from asyncio import sslproto
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from .. import tlscert
from ..config import Config
from ..errors import CertificateError
from ..health import certrenew
from .web import CONFIG, STORE

log = logging.getLogger(__name__)


# asyncio's SSLProtocol gives every TLS connection a 256 KiB read buffer (``max_size``,
# zero-filled, so resident), which a protocol that is not a BufferedProtocol, as aiohttp's
# is not, never reads into; ``max_size`` also caps each plaintext read, and a TLS record
# holds at most 16 KiB. On reporting day 300 tablets held 75 MB of those zeros: the hub's
# peak RSS went from ~100 MB over HTTP to ~200 MB with the HTTPS day (bench/hub_bench.py).
TLS_READ_BUFFER = 16 * 1024


def small_tls_read_buffers() -> None:
    """Set asyncio's per-connection TLS read buffer to one record (process-wide: the hub
    process serves the LAN and makes only small TLS requests of its own)."""
    if sslproto.SSLProtocol.max_size > TLS_READ_BUFFER:
        sslproto.SSLProtocol.max_size = TLS_READ_BUFFER

POLL_S = 2.0


@dataclass(frozen=True)
class TlsSettings:
    name: str
    directory: Path
    host: str
    port: int
    offer_https: bool = True

    @classmethod
    def from_config(cls, config: Config) -> TlsSettings | None:
        """None when ``[tls] name`` is empty (no HTTPS on this hub)."""
        name = str(config.get("tls", "name")).strip()
        if not name:
            return None
        host, _, port = str(config.get("tls", "listen")).rpartition(":")
        return cls(name=name, directory=tlscert.tls_dir(config.get("tls", "dir"),
                                                        config.data_dir),
                   host=host.strip("[]") or "0.0.0.0", port=int(port or 443),
                   offer_https=bool(config.get("tls", "offer_https")))

    @property
    def url(self) -> str:
        return f"https://{self.name}" + ("" if self.port == 443 else f":{self.port}")


def server_context(cert_path: Path, key_path: Path) -> ssl.SSLContext:
    """A server context for one pair: TLS 1.2 or newer, HTTP/1.1 by ALPN."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_alpn_protocols(["http/1.1"])
    ctx.load_cert_chain(cert_path, key_path)
    return ctx


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


class HttpsListener:
    """The HTTPS site and the certificate it serves. ``info`` is the certificate being
    served now (None: none yet); ``refused`` why the newest pair on disk was not taken."""

    def __init__(self, settings: TlsSettings, *, poll_s: float = POLL_S,
                 announce: Callable[[str], None] | None = None,
                 ready_label: str = "hub") -> None:
        self.s = settings
        self.poll_s = poll_s
        self.announce = announce or (lambda line: print(line, flush=True))
        self.ready_label = ready_label
        self.info: tlscert.CertInfo | None = None
        self.refused: str | None = None
        self.current: ssl.SSLContext | None = None
        self.serving: ssl.SSLContext | None = None  # the site's context; its SNI callback swaps
        self.site: web.TCPSite | None = None
        self.swaps = 0
        self._seen: object = None
        self._bind_error: str | None = None
        self._runner: web.BaseRunner | None = None
        self._task: asyncio.Task[None] | None = None

    # -- the certificate ----------------------------------------------------------------------
    def _signature(self) -> object:
        d = self.s.directory
        gen = tlscert.live_generation(d)
        if gen is None:
            return None
        return (str(gen), _stamp(gen / tlscert.CERT_FILE), _stamp(gen / tlscert.KEY_FILE))

    def reload(self) -> bool:
        """Take the pair on disk if it changed and passes the checks. True if a new
        certificate is now served to new handshakes."""
        sig = self._signature()
        if sig == self._seen:
            return False
        try:
            pair = tlscert.load(self.s.directory)
            if pair is None:
                self._seen = sig
                return False
            info = tlscert.check_pair(pair.cert_pem, pair.key_pem, self.s.name)
            ctx = server_context(pair.generation / tlscert.CERT_FILE,
                                 pair.generation / tlscert.KEY_FILE)
            # generations are never rewritten, but make sure what OpenSSL read is what was
            # checked (a hand-copied file replaced between the two reads)
            again = tlscert.load(self.s.directory)
            if again is None or (again.cert_pem, again.key_pem) != (pair.cert_pem,
                                                                    pair.key_pem):
                return False  # changing under us: look again at the next poll
        except (CertificateError, ssl.SSLError, OSError) as e:
            self._seen = sig
            why = e.message if isinstance(e, CertificateError) else str(e)
            self.refused = why
            kept = (f"still serving the certificate valid until {self.info.not_after:%Y-%m-%d}"
                    if self.info else "HTTPS stays off until a good one is installed")
            log.warning("tls: refused the certificate in %s: %s; %s", self.s.directory, why,
                        kept)
            return False
        self._seen = sig
        self.refused = None
        self.current = ctx
        if self.serving is None:
            ctx.sni_callback = self._sni
            self.serving = ctx
        first = self.info is None
        self.info = info
        self.swaps += 1
        log.info("tls: %s certificate for %s from %s, valid until %s, fingerprint %s",
                 "serving the" if first else "swapped in a new", self.s.name, info.issuer,
                 info.not_after.isoformat(), info.fingerprint[:16])
        return True

    def _sni(self, ssl_object: ssl.SSLObject | ssl.SSLSocket, server_name: str | None,
             ctx: ssl.SSLContext) -> int | None:
        current = self.current
        if current is not None and current is not ctx:
            ssl_object.context = current
        return None

    # -- the site -----------------------------------------------------------------------------
    async def start(self, runner: web.BaseRunner) -> None:
        """Serve HTTPS on ``runner`` once a good certificate is in place, and keep watching."""
        self._runner = runner
        await asyncio.to_thread(self.reload)
        if self.serving is None:
            log.info("tls: no usable certificate in %s yet; HTTPS (%s) starts when one is "
                     "installed", self.s.directory, self.s.url)
        await self._start_site()
        self._task = asyncio.create_task(self._watch(), name="tls-watch")

    async def _start_site(self) -> None:
        if self.site is not None or self.serving is None or self._runner is None:
            return
        small_tls_read_buffers()
        site = web.TCPSite(self._runner, self.s.host, self.s.port, ssl_context=self.serving,
                           backlog=1024, reuse_address=True)
        try:
            await site.start()
        except OSError as e:
            if str(e) != self._bind_error:
                self._bind_error = str(e)
                log.error("tls: cannot listen on %s:%d for HTTPS: %s (plain HTTP still "
                          "serves); retrying", self.s.host, self.s.port, e)
            return
        self.site = site
        port = self.bound_port or self.s.port
        shown = "127.0.0.1" if self.s.host in ("0.0.0.0", "", "::") else self.s.host
        assert self.info is not None
        self.announce(f"{self.ready_label} ready: https://{shown}:{port}/api/system/info "
                      f"(tablets: {self.s.url}, certificate valid until "
                      f"{self.info.not_after:%Y-%m-%d})")

    @property
    def bound_port(self) -> int | None:
        server = getattr(self.site, "_server", None)
        sockets = getattr(server, "sockets", None) or ()
        for sock in sockets:
            return int(sock.getsockname()[1])
        return None

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.poll_s)
            try:
                await asyncio.to_thread(self.reload)
                await self._start_site()
            except Exception:  # noqa: BLE001 - keep serving what we have
                log.exception("tls: certificate check failed")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.site is not None:
            await self.site.stop()
            self.site = None


# -- what the pages and the status API show -----------------------------------------------------
TLS = web.AppKey("tls", TlsSettings)
LISTENER = web.AppKey("tls_listener", HttpsListener)
CACHE_S = 2.0


class _DiskCache:
    """The installed certificate read from disk at most every CACHE_S (a hub app without
    its own listener: tests, or the HTTPS site not started)."""

    def __init__(self) -> None:
        self.at = -1e9
        self.info: tlscert.CertInfo | None = None

    def get(self, directory: Path) -> tlscert.CertInfo | None:
        now = time.monotonic()
        if now - self.at >= CACHE_S:
            self.at = now
            try:
                pair = tlscert.load(directory)
            except CertificateError:
                pair = None
            self.info = pair.info if pair else None
        return self.info


DISK = web.AppKey("tls_disk", _DiskCache)


def setup(app: web.Application, settings: TlsSettings | None,
          listener: HttpsListener | None = None) -> None:
    """Tell the app's pages and status API about HTTPS (nothing when ``settings`` is None)."""
    if settings is None:
        return
    app[TLS] = settings
    app[DISK] = _DiskCache()
    if listener is not None:
        app[LISTENER] = listener


def served_certificate(app: web.Application) -> tlscert.CertInfo | None:
    """The certificate HTTPS serves now (from disk when this app has no listener)."""
    if TLS not in app:
        return None
    listener = app.get(LISTENER)
    if listener is not None:
        return listener.info
    return app[DISK].get(app[TLS].directory)


def https_offer(app: web.Application) -> str | None:
    """The name to offer laptops (``[tls] offer_https``), when a valid certificate is
    served; None otherwise."""
    settings = app.get(TLS)
    if settings is None or not settings.offer_https:
        return None
    info = served_certificate(app)
    if info is None or info.days_left() <= 0 or settings.name not in info.names:
        return None
    return settings.url.removeprefix("https://")


async def status(app: web.Application) -> dict[str, Any] | None:
    """The ``tls`` object of ``/api/hub/status`` and the status page (None: no HTTPS)."""
    settings = app.get(TLS)
    if settings is None:
        return None
    renewal = await app[STORE].read(certrenew.renewal_state)
    renew_days = float(app[CONFIG].get("tls", "renew_days"))
    return certrenew.status(settings.name, served_certificate(app), renewal, renew_days,
                            port=settings.port)
