"""The national DHIS2 client: aiohttp, PAT or Basic, timeouts, jittered retries, gzip.

Every failure becomes a ``SyncError`` whose message a person can act on:

* ``LinkDown``: national could not be reached, the connection broke, or a reply did not
  finish in time (retried with jittered exponential backoff first);
* ``NationalRejected``: national answered but refused (401/403, an expired token), or
  answered something that is not DHIS2 JSON (an HTML error or login page, a truncated
  body, a 5xx after retries).

Bodies are counted as they cross the wire (compressed), for the status page and benches:
in total (``bytes_sent``, ``bytes_received``) and by the category the caller names for
each request (``wire``: metadata, pull, push or other; ``store/wirebytes.py``), in memory,
for the cycle to write once. The credentials are sent in headers only and never logged.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import errno
import gzip
import logging
import random
import socket
import time
import weakref
import zlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import aiohttp
import orjson
from multidict import CIMultiDictProxy
from yarl import URL

from ..dhis2.timefmt import parse_http_date, parse_ts
from ..errors import LinkDown, NationalRejected, SyncError
from ..store.wirebytes import OTHER, Tally
from .backoff import backoff_delay
from .clock import Interval, NationalClock, estimate_offset, mono

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({500, 502, 503, 504, 429})
# connect() failed before a packet left: our own interface is down (the modem dropped).
# Waiting for it to come back costs nothing on the wire, so look again soon.
LOCAL_DOWN_ERRNOS = frozenset({errno.ENETUNREACH, errno.ENETDOWN})
LOCAL_POLL_S = 0.5
LOCAL_WAIT_S = 30.0
USER_AGENT = "upazila-hub-sync/1"
GZIP_LEVEL = 9  # bytes matter more than CPU on a 32-256 kbit/s uplink
# Sent with every request, so each byte counts once per request on the modem: no
# ``Accept: application/json`` (DHIS2 answers /api JSON by default; aiohttp sends its
# shorter ``Accept: */*``), and the CSV pull names its own Accept.
SESSION_HEADERS = {"User-Agent": USER_AGENT, "Accept-Encoding": "gzip"}
_AUTO_HEADERS = {"Accept": "*/*"}  # what aiohttp adds when the request names none
# rtnetlink multicast groups (linux/rtnetlink.h): a link or route change wakes the client
RTMGRP_LINK, RTMGRP_IPV4_ROUTE, RTMGRP_IPV6_ROUTE = 0x1, 0x40, 0x400


@dataclass
class Reply:
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes
    wire_bytes: int
    sent_ms: float          # local wall clock around the exchange (offset estimation)
    recv_ms: float
    mono_sent: float
    mono_recv: float
    url: str = ""
    data: Any = None
    sent_body_bytes: int = 0

    def json(self) -> Any:
        return parse_json(self)


def _looks_html(reply: Reply) -> bool:
    ctype = reply.headers.get("Content-Type", "").lower()
    head = reply.body[:200].lstrip().lower()
    return "html" in ctype or head.startswith((b"<!doctype", b"<html", b"<"))


def parse_json(reply: Reply) -> Any:
    if _looks_html(reply):
        raise NationalRejected(
            f"national answered HTTP {reply.status} with an HTML page instead of DHIS2 JSON "
            "(a proxy error page, captive portal or login page?)")
    try:
        return orjson.loads(reply.body)
    except orjson.JSONDecodeError as e:
        raise NationalRejected(
            f"national's reply (HTTP {reply.status}, {len(reply.body)} bytes) is not valid "
            f"JSON; it was probably cut off: {e}") from None


def _message(reply: Reply) -> str:
    try:
        data = orjson.loads(reply.body)
        if isinstance(data, dict) and data.get("message"):
            return str(data["message"])
    except orjson.JSONDecodeError:
        pass
    if _looks_html(reply):
        return "an HTML error page"
    return reply.body[:120].decode("utf-8", "replace").strip() or "no message"


@dataclass
class ProbeResult:
    server_date: str
    server_ms: int
    version: str
    time_zone: str
    offset: Interval | None
    clock: NationalClock
    rtt_s: float
    info: dict[str, Any] = field(default_factory=dict)


TCP_RTO_MAX_MS = getattr(socket, "TCP_RTO_MAX_MS", 44)  # linux/tcp.h, since 6.15
ROUTE_DOWN_RTO_MS = 1000  # the kernel's floor for TCP_RTO_MAX_MS


class NationalClient:
    """One national DHIS2. ``wall`` is the hub's wall clock (injectable for skew tests)."""

    def __init__(self, url: str, *, token: str = "", username: str = "", password: str = "",
                 timeout_s: float = 60.0, retries: int = 3, backoff_base: float = 1.0,
                 backoff_cap: float = 30.0, wall: Callable[[], float] = time.time,
                 rand: Callable[[], float] = random.random,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 rto_max_ms: int = 0, congestion: str = "") -> None:
        if not url:
            raise SyncError("no national DHIS2 configured: set [national] url in hub.toml")
        self.base = url.rstrip("/")
        if token:
            self._auth = f"ApiToken {token}"
        elif username:
            cred = base64.b64encode(f"{username}:{password}".encode()).decode()
            self._auth = f"Basic {cred}"
        else:
            raise SyncError("no credentials for national: set [national] token (a PAT) or "
                            "username and password")
        self.timeout_s = float(timeout_s)
        self.retries = retries
        self.backoff_base, self.backoff_cap = backoff_base, backoff_cap
        self.wall, self.rand, self.sleep = wall, rand, sleep
        self.bytes_sent = 0
        self.bytes_received = 0
        self.requests = 0
        self.wire = Tally()  # the same bytes by category, until the cycle writes them
        self._session: aiohttp.ClientSession | None = None
        self._addr: tuple[int, Any] | None = None
        self.rto_max_ms = int(rto_max_ms)
        self.congestion = congestion
        self.rto_capped: bool | None = None  # known after the first connection
        self.cut_epoch = 0  # counts the local route's disappearances seen by route_ok()
        self._route_was: bool | None = None
        self._sockets: weakref.WeakSet[socket.socket] = weakref.WeakSet()
        self._netlink: tuple[asyncio.AbstractEventLoop, socket.socket] | None = None

    # -- lifecycle --------------------------------------------------------------------------
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # auto_decompress off: we count compressed bytes, then inflate ourselves
            self._session = aiohttp.ClientSession(
                auto_decompress=False,
                connector=aiohttp.TCPConnector(limit=4, enable_cleanup_closed=True,
                                               socket_factory=self._socket),
                headers=SESSION_HEADERS)
            self._watch_routes()
        return self._session

    def _socket(self, addr_info: Any) -> socket.socket:
        """A socket to national whose retransmission timeout is capped. A cut stalls the
        request in flight in TCP's exponential backoff: on a buffered 256 kbit/s link the
        timeout is ~1 s before the cut and 4 s after two retries, so the request would
        resume up to ~4 s after the link is back (measured in bench/sync_bench.py), and
        re-sending it instead costs its bytes again. Kernels without the option (before
        6.15) keep their default, and the push falls back to re-sending early-cut chunks.
        Every socket is tracked, for what ``route_ok`` does to them at a cut and after."""
        family, type_, proto, _, _ = addr_info
        sock = socket.socket(family=family, type=type_, proto=proto)
        if family in (socket.AF_INET, socket.AF_INET6):
            self._sockets.add(sock)
            if self.congestion:
                try:
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION,
                                    self.congestion.encode())
                except OSError as e:
                    log.warning("TCP congestion control %r refused (%s); using the "
                                "kernel's default", self.congestion, e.strerror)
                    self.congestion = ""
            if self.rto_max_ms > 0 and self.rto_capped is not False:
                try:
                    sock.setsockopt(socket.IPPROTO_TCP, TCP_RTO_MAX_MS, self._rto_now())
                    self.rto_capped = True
                except OSError:
                    self.rto_capped = False
        return sock

    def _rto_now(self) -> int:
        # while the route is gone, retransmissions die on this machine and cost nothing on
        # the wire: the shortest timeout the kernel takes means TCP resumes within ~1 s
        return min(self.rto_max_ms, ROUTE_DOWN_RTO_MS) if self._route_was is False \
            else self.rto_max_ms

    def _each_socket(self, fn: Callable[[socket.socket], None]) -> None:
        for sock in list(self._sockets):
            with contextlib.suppress(OSError):  # closed meanwhile
                if sock.fileno() >= 0:
                    fn(sock)

    def _retune_sockets(self) -> None:
        rto = self._rto_now()
        self._each_socket(lambda s: s.setsockopt(socket.IPPROTO_TCP, TCP_RTO_MAX_MS, rto))

    def _forget_routes(self) -> None:
        """Drop the route each socket to national has cached, once the modem's is gone.

        The kernel re-points a vanished route at its blackhole device, whose MTU is 68, and
        TCP then cuts whatever the request writes next into 36-byte segments that "leave"
        into the blackhole. After the link is back they crawl through retransmission for
        seconds (seen with ``ss -ti`` in bench/sync_bench.py: MSS 1448 -> 36). Changing
        IP_TOS makes the kernel reset the cached route, so until the link is back the
        lookup fails and writes wait unsent in full-size segments. IPv6 sockets revalidate
        their route by its serial number and need nothing."""
        def reset(sock: socket.socket) -> None:
            if sock.family == socket.AF_INET:
                tos = sock.getsockopt(socket.IPPROTO_IP, socket.IP_TOS)
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, tos ^ 0x04)
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, tos)
        self._each_socket(reset)

    def _kick_sockets(self) -> None:
        """When the route is back, push what each socket holds unsent. A connection cut
        in flight otherwise waits for its retransmission timer (up to a second with the cap,
        seconds of exponential backoff without it); a new segment sent now
        draws a SACK from national that starts recovery of the lost ones within a round
        trip. Setting TCP_NODELAY (which aiohttp already set) is what pushes them."""
        self._each_socket(lambda s: s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1))

    def _watch_routes(self) -> None:
        """Hear of link and route changes from rtnetlink as they happen, rather than at the
        push watchdog's next look: what a request writes between the route's loss and
        ``_forget_routes`` is what gets cut small. Without netlink the watchdog's polling
        still finds the change."""
        if self._netlink is not None:
            return
        try:
            loop = asyncio.get_running_loop()
            nl = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_NONBLOCK,
                               socket.NETLINK_ROUTE)
        except (RuntimeError, OSError, AttributeError):
            return
        try:
            nl.bind((0, RTMGRP_LINK | RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE))
            loop.add_reader(nl.fileno(), self._on_netlink)
        except OSError:
            nl.close()
            return
        self._netlink = loop, nl

    def _on_netlink(self) -> None:
        if self._netlink is None:
            return
        with contextlib.suppress(OSError):  # drained (EAGAIN), or overrun (ENOBUFS)
            while self._netlink[1].recv(65536):
                pass
        if self._addr is not None:  # never resolve a name from here: it could block the loop
            self.route_ok()

    def _unwatch_routes(self) -> None:
        if self._netlink is None:
            return
        loop, nl = self._netlink
        self._netlink = None
        if not loop.is_closed():
            loop.remove_reader(nl.fileno())
        nl.close()

    async def close(self) -> None:
        self._unwatch_routes()
        if self._session is not None and not self._session.closed:
            await self._session.close()

    async def __aenter__(self) -> NationalClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- one exchange ---------------------------------------------------------------------------
    async def _once(self, method: str, url: str, *, data: bytes | None,
                    headers: dict[str, str], timeout: float, category: str = OTHER) -> Reply:
        to = aiohttp.ClientTimeout(total=timeout, sock_connect=min(timeout, 15.0))
        req_bytes = request_bytes(method, url, headers, data)
        sent_ms, mono_sent = self.wall() * 1000, mono()
        self.requests += 1
        self.bytes_sent += req_bytes
        self.wire.add(category, req_bytes)
        try:
            return await self._exchange(method, url, data, headers, to, sent_ms, mono_sent,
                                        category)
        except aiohttp.ClientConnectorError:
            self.bytes_sent -= req_bytes  # never connected: nothing went on the wire
            self.wire.add(category, -req_bytes)
            raise

    async def _exchange(self, method: str, url: str, data: bytes | None,
                        headers: dict[str, str], to: aiohttp.ClientTimeout, sent_ms: float,
                        mono_sent: float, category: str = OTHER) -> Reply:
        epoch = self.cut_epoch
        async with self.session().request(method, url, data=data, headers=headers,
                                          timeout=to, allow_redirects=False) as resp:
            if self.cut_epoch != epoch and resp.connection is not None:
                # this request lived through a cut: its connection leaves TCP's backoff
                # with a collapsed window and inflated timeout (seen stalling the next
                # chunk sent on it for seconds), so it is closed rather than reused
                resp.connection.protocol.force_close()  # type: ignore[union-attr]
            raw = await resp.read()
            mono_recv, recv_ms = mono(), self.wall() * 1000
            # "HTTP/1.1 200 OK\r\n", the headers, the blank line, the body
            got = len(raw) + 17 + len(resp.reason or "") + sum(
                len(k) + len(v) + 4 for k, v in resp.raw_headers)
            self.bytes_received += got
            self.wire.add(category, 0, got)
            enc = resp.headers.get("Content-Encoding", "").lower()
            body = raw
            try:
                if enc == "gzip" and raw:
                    body = gzip.decompress(raw)
                elif enc == "deflate" and raw:
                    body = zlib.decompress(raw)
            except (OSError, EOFError, zlib.error) as e:
                raise aiohttp.ClientPayloadError(f"compressed reply is damaged: {e}") from None
            return Reply(resp.status, resp.headers, body, len(raw), sent_ms, recv_ms,
                         mono_sent, mono_recv, url, sent_body_bytes=len(data or b""))

    async def request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
                      payload: Any = None, gzip_body: bool = True, timeout: float | None = None,
                      retries: int | None = None, auth: str | None = None,
                      ok: tuple[int, ...] = (200,), parse: bool = False,
                      cut_retries: int | None = None, category: str = OTHER,
                      content_type: str = "application/json",
                      accept: str | None = None) -> Reply:
        """Send with retries; returns a reply whose status is in ``ok``, else raises.

        ``category``: what the bytes of this request (and its retries) count as on the
        modem: ``metadata``, ``pull``, ``push`` or ``other`` (``store.wirebytes``).

        With ``parse`` the body must be JSON (in ``reply.data``); an HTML page or a body
        cut short is retried like a broken connection, then reported. ``cut_retries`` caps
        the retries after a reply was cut off or timed out (a caller that can ask for less
        would rather split than repeat); refused connections use ``retries``. A ``bytes``
        payload is sent as ``content_type`` (CSV, appliance/sync/wire.py); ``accept``
        replaces aiohttp's ``Accept: */*``.
        """
        url = self.base + path
        if params:
            url += "?" + urlencode(_flatten(params), safe=":[],/*!$")
        headers = {"Authorization": auth or self._auth}
        if accept:
            headers["Accept"] = accept
        data: bytes | None = None
        if payload is not None:
            data = payload if isinstance(payload, bytes) else orjson.dumps(payload)
            headers["Content-Type"] = content_type
            if gzip_body:
                data = gzip.compress(data, GZIP_LEVEL)
                headers["Content-Encoding"] = "gzip"
        timeout = self.timeout_s if timeout is None else timeout
        attempts = (self.retries if retries is None else retries) + 1
        last: SyncError | None = None
        cuts = 0
        attempt = 0
        local_wait = 0.0
        while True:
            if isinstance(last, LinkDown) and last.error_code in ("cut", "timeout"):
                cuts += 1
                if cut_retries is not None and cuts > cut_retries:
                    break
            if isinstance(last, LinkDown) and last.error_code == "local-down" and \
                    local_wait < LOCAL_WAIT_S:
                await self.sleep(LOCAL_POLL_S)  # not an attempt: nothing reached the wire
                local_wait += LOCAL_POLL_S
            elif attempt >= attempts:
                break
            elif attempt:
                await self.sleep(backoff_delay(attempt - 1, base=self.backoff_base,
                                               cap=self.backoff_cap, rand=self.rand))
                attempt += 1
            else:
                attempt += 1
            try:
                reply = await self._once(method, url, data=data, headers=headers,
                                         timeout=timeout, category=category)
            except TimeoutError:
                last = LinkDown(f"national did not answer {method} {path} within "
                                f"{timeout:g}s (the link is very slow or the reply never "
                                "ended)", error_code="timeout")
                continue
            except aiohttp.ClientPayloadError as e:
                last = LinkDown(f"national's reply to {method} {path} was cut off "
                                f"({_short(e)})", error_code="cut")
                continue
            except aiohttp.ClientConnectorError as e:  # nothing was sent
                local = getattr(e, "os_error", None) is not None and \
                    e.os_error.errno in LOCAL_DOWN_ERRNOS
                last = LinkDown(f"cannot reach national at {self.base}: {_reason(e)}",
                                error_code="local-down" if local else "connect")
                continue
            except (aiohttp.ClientConnectionError, OSError) as e:
                last = LinkDown(f"the connection to national broke during {method} {path}: "
                                f"{_reason(e)}", error_code="cut")
                continue
            if reply.status in ok:
                if not parse:
                    return reply
                try:
                    reply.data = reply.json()
                    return reply
                except NationalRejected as e:
                    last = e
                    continue
            if reply.status in (401, 403):
                raise NationalRejected(
                    f"national refused our credentials (HTTP {reply.status}: {_message(reply)});"
                    " check [national] token - it may have expired - or username/password",
                    error_code=str(reply.status))
            if 300 <= reply.status < 400:
                loc = reply.headers.get("Location", "")
                raise NationalRejected(
                    f"national redirected {method} {path} to {loc or 'elsewhere'} (HTTP "
                    f"{reply.status}): credentials not accepted or wrong [national] url")
            if reply.status in RETRY_STATUSES:
                last = NationalRejected(f"national failed: HTTP {reply.status} on {method} "
                                        f"{path}: {_message(reply)}",
                                        error_code=str(reply.status))
                continue
            raise NationalRejected(f"national answered HTTP {reply.status} on {method} {path}: "
                                   f"{_message(reply)}", error_code=str(reply.status))
        assert last is not None
        raise last

    async def get_json(self, path: str, params: Mapping[str, Any] | None = None, *,
                       timeout: float | None = None, retries: int | None = None,
                       cut_retries: int | None = None, category: str = OTHER) -> Any:
        reply = await self.request("GET", path, params=params, timeout=timeout,
                                   retries=retries, parse=True, cut_retries=cut_retries,
                                   category=category)
        return reply.data

    # -- the local link ------------------------------------------------------------------------
    def route_ok(self) -> bool | None:
        """Does this machine have a route to national right now? A UDP ``connect`` only
        looks the route up: no packet leaves, so it costs nothing on the wire. False
        while the modem's interface is down; None if it cannot tell (name unresolved)."""
        url = URL(self.base)
        host, port = url.host or "", url.port or 80
        if self._addr is None:
            try:
                infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
            except OSError:
                return None
            self._addr = infos[0][0], infos[0][4]
        family, addr = self._addr
        ok: bool | None = True
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            try:
                s.connect(addr)
            except OSError as e:
                ok = False if e.errno in LOCAL_DOWN_ERRNOS or e.errno == errno.EHOSTUNREACH \
                    else None
        if ok is False and self._route_was is not False:
            self.cut_epoch += 1
            self._forget_routes()
        changed = (ok is False) != (self._route_was is False)
        back = ok is not False and self._route_was is False
        self._route_was = ok
        if changed and self.rto_capped:
            self._retune_sockets()
        if back:
            self._kick_sockets()
        return ok

    # -- calls sync makes ---------------------------------------------------------------------
    async def probe(self, timeout: float | None = None) -> ProbeResult:
        """Cheap link check: ``/api/system/info`` with just the fields we use."""
        reply = await self.request(
            "GET", "/api/system/info",
            params={"fields": "serverDate,version,serverTimeZoneId"},
            timeout=timeout or min(self.timeout_s, 30.0), parse=True)
        info = reply.data
        if not isinstance(info, dict) or "serverDate" not in info:
            raise NationalRejected("national's /api/system/info has no serverDate: is "
                                   f"{self.base} a DHIS2 server?")
        tz = str(info.get("serverTimeZoneId") or "Etc/UTC")
        server_ms = parse_ts(str(info["serverDate"]), tz)
        if server_ms is None:
            raise NationalRejected(f"national's serverDate {info['serverDate']!r} is unreadable")
        offset = estimate_offset(reply.sent_ms, reply.recv_ms, server_ms,
                                 parse_http_date(reply.headers.get("Date")))
        return ProbeResult(
            server_date=str(info["serverDate"]), server_ms=server_ms,
            version=str(info.get("version") or ""), time_zone=tz, offset=offset,
            clock=NationalClock(server_ms, reply.mono_sent, reply.mono_recv),
            rtt_s=reply.mono_recv - reply.mono_sent, info=info)


def request_bytes(method: str, url: str, headers: Mapping[str, str], data: bytes | None) -> int:
    """What a request puts on the wire, as aiohttp writes it: the request line, ``Host``,
    the session's headers, aiohttp's defaults not overridden, this request's own, the
    blank line and the body (not TCP/IP or TLS)."""
    u = URL(url)
    line = len(method) + len(u.raw_path_qs) + 12  # "GET <path?query> HTTP/1.1\r\n"
    host = 8 + len(u.raw_authority)  # "Host: <host:port>\r\n"
    own = {k.lower() for k in headers}
    hdrs = {**{k: v for k, v in _AUTO_HEADERS.items() if k.lower() not in own},
            **{k: v for k, v in SESSION_HEADERS.items() if k.lower() not in own}, **headers}
    if data is not None:
        hdrs["Content-Length"] = str(len(data))
    return line + host + sum(len(k) + len(v) + 4 for k, v in hdrs.items()) + 2 + \
        len(data or b"")


def _flatten(params: Mapping[str, Any]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for k, v in params.items():
        if v is None:
            continue
        if isinstance(v, (list, tuple)):
            out.extend((k, str(x)) for x in v)
        elif isinstance(v, bool):
            out.append((k, "true" if v else "false"))
        else:
            out.append((k, str(v)))
    return out


def _short(e: BaseException) -> str:
    text = str(e) or type(e).__name__
    if "Not enough data" in text:
        return "fewer bytes arrived than announced"
    return text.split(". ")[0][:160]


def _reason(e: BaseException) -> str:
    text = str(e) or type(e).__name__
    return text.split(" [")[0] if "Cannot connect" in text else text
