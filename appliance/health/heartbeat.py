"""Heartbeats to the fleet service, queued in the store while the link is down.

Contract (the fleet side is built to it)::

    POST <[health] heartbeat_url>
    Content-Type: application/json        Content-Encoding: gzip
    X-Hub-Id: <hub id>                     Authorization: Bearer <token>
    X-Hub-Signature: sha256=<hex HMAC-SHA256(key=token, msg=the gzip body as sent)>
    body = gzip(JSON {"hub_id", "seq", "sent_at", "version", "name", "org_unit",
                      "boot_id", "uptime_s", "samples": [...], "summary": null | {...},
                      "tls": null | {"name", "not_after", "issuer", "fingerprint"},
                      "lan_ip": null | "10.77.0.1", "update": {...}, "wire": {...}})

``tls`` is the certificate the hub serves now, ``lan_ip`` the LAN address its name
resolves to (``certrenew``), ``update`` where the hub is with software updates
(``updater.Updater.report``; absent without an update agent), ``wire`` its bytes on the
modem today and this month by category and its monthly budget (``store.wirebytes.report``,
as ``/api/hub/status`` shows them); all are optional for the fleet (older hubs omit them).
The agent's own requests to the fleet (these POSTs, update checks and downloads,
certificate renewal) count as ``fleet`` bytes: ``HttpOutcome.sent_bytes``/``received_bytes``.

Each heartbeat adds the current sample to ``heartbeat_queue``; a flush POSTs every
queued sample in one batch. ``seq`` is allocated in the same transaction that freezes
the batch, so it is strictly increasing across restarts and processes. A batch whose
outcome is unknown (timeout, 5xx, connection dropped mid-request) stays frozen and is
retried with the same seq, so the fleet can answer 409 "seen it" instead of storing it
twice. When the queue exceeds ``queue_max`` the oldest samples are folded into
``summary`` ({"dropped", "from", "to", "max_temp_c", "undervoltage_seen",
"min_disk_free_mb"}).

Outcomes: 2xx delivered; 409 replay = delivered already; 401/403 and other 4xx kept
and the error recorded; network error or 5xx kept.

Clock: ``sent_at`` is our wall clock, unless a fleet response's ``Date`` header showed
ours to be more than 30 s off (no RTC, no NTP yet after a power cut); it is then stamped
in fleet time. A 409 whose ``Date`` shows our ``sent_at`` was more than 5 min off is the
fleet refusing a stale stamp, not a replay: the batch is resent at once in fleet time.

Signing and verifying are ``appliance.signing``. Receivers: the HMAC is over the gzip
bytes as sent; an aiohttp server must be run with ``auto_decompress=False`` to see them.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import http.client
import json
import logging
import sqlite3
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

from .. import signing
from ..dhis2.timefmt import iso_z
from ..store import Store
from ..store import health as hstore
from ..store.db import Tx
from ..store.metadata import org_unit_row
from ..store.wirebytes import FLEET, Tally
from . import state
from .syncstatus import parse_iso
from .system import BOOT_ID_PATH, UPTIME_PATH, read_boot_id, read_uptime

log = logging.getLogger(__name__)

# Beyond this, a 409 is the fleet refusing our skewed sent_at, not a replay.
SKEW_SUSPECT_S = 300.0


@dataclass(frozen=True)
class HubIdentity:
    hub_id: str
    name: str
    org_unit: str
    version: str


@dataclass(frozen=True)
class Batch:
    seq: int
    samples: list[dict[str, Any]]
    summary: dict[str, Any] | None
    retry: bool  # the same seq was sent before with an unknown outcome


@dataclass(frozen=True)
class SendResult:
    delivered: bool             # everything queued reached the fleet (or nothing was queued)
    status: int | None = None   # HTTP status of the last attempt
    seq: int | None = None
    count: int = 0              # samples delivered by this flush
    error: str | None = None
    queued: int = 0             # samples still queued afterwards
    held: bool = False          # outcome unknown: the batch stays frozen under its seq


# -- wire format ---------------------------------------------------------------------------------
def encode(body: dict[str, Any]) -> bytes:
    raw = json.dumps(body, separators=(",", ":"), allow_nan=False).encode()
    return gzip.compress(raw, compresslevel=9, mtime=0)


def date_header_time(header: str | None) -> float | None:
    """The fleet's clock from its HTTP ``Date`` header (epoch seconds), if it sent one."""
    if not header:
        return None
    try:
        return parsedate_to_datetime(header).timestamp()
    except (TypeError, ValueError):
        return None


def request_headers(hub_id: str, token: str, data: bytes, *,
                    gzipped: bool = True) -> dict[str, str]:
    """The fleet's authentication for ``data`` as sent (heartbeats are gzipped; the
    certificate requests of ``certrenew`` are not)."""
    headers = {"Content-Type": "application/json",
               "X-Hub-Id": hub_id, "X-Hub-Signature": signing.sign(token, data),
               "Authorization": f"Bearer {token}"}
    if gzipped:
        headers["Content-Encoding"] = "gzip"
    return headers


def org_unit_info(conn: sqlite3.Connection, uid: str) -> dict[str, Any]:
    """Name, district (level 3) and division (level 2) from the stored metadata."""
    out: dict[str, Any] = {"id": uid or None, "name": None, "district": None, "division": None}
    if not uid:
        return out
    row = org_unit_row(conn, uid)
    if row is None:
        return out
    try:
        doc = json.loads(row[2])
    except ValueError:
        doc = {}
    out["name"] = doc.get("name") or row[0]
    path = doc.get("path") or row[1] or ""
    parts = [p for p in path.split("/") if p]  # parts[i] is the ancestor at level i + 1
    for key, level in (("division", 2), ("district", 3)):
        if len(parts) >= level:
            anc = org_unit_row(conn, parts[level - 1])
            if anc is not None:
                try:
                    out[key] = json.loads(anc[2]).get("name") or anc[0]
                except ValueError:
                    out[key] = anc[0]
    return out


# -- the queue (all methods run inside a store write transaction) --------------------------------
def _fold(summary: dict[str, Any] | None, sample: dict[str, Any]) -> dict[str, Any]:
    s = dict(summary or {"dropped": 0, "from": sample.get("at"), "to": sample.get("at"),
                         "max_temp_c": None, "undervoltage_seen": False,
                         "min_disk_free_mb": None})
    s["dropped"] = int(s.get("dropped") or 0) + 1
    s["to"] = sample.get("at")
    t = sample.get("temp_c")
    if t is not None:
        s["max_temp_c"] = t if s.get("max_temp_c") is None else max(s["max_temp_c"], t)
    if sample.get("undervoltage_now") or sample.get("undervoltage_seen"):
        s["undervoltage_seen"] = True
    f = sample.get("disk_free_mb")
    if f is not None:
        s["min_disk_free_mb"] = f if s.get("min_disk_free_mb") is None else min(s["min_disk_free_mb"], f)
    return s


def merge_summaries(older: dict[str, Any] | None,
                    newer: dict[str, Any] | None) -> dict[str, Any] | None:
    if not older or not newer:
        return older or newer

    def pick(fn: Any, key: str) -> Any:
        vals = [v for v in (older.get(key), newer.get(key)) if v is not None]
        return fn(vals) if vals else None

    return {"dropped": int(older.get("dropped") or 0) + int(newer.get("dropped") or 0),
            "from": older.get("from"), "to": newer.get("to"),
            "max_temp_c": pick(max, "max_temp_c"),
            "undervoltage_seen": bool(older.get("undervoltage_seen") or newer.get("undervoltage_seen")),
            "min_disk_free_mb": pick(min, "min_disk_free_mb")}


class HeartbeatQueue:
    def __init__(self, queue_max: int) -> None:
        self.queue_max = max(1, int(queue_max))

    def enqueue(self, tx: Tx, sample: dict[str, Any]) -> None:
        hstore.enqueue_heartbeat(tx, sample.get("at") or iso_z(time.time()), sample)
        over = hstore.heartbeat_count(tx.conn) - self.queue_max
        if over <= 0:
            return
        rows = hstore.oldest_heartbeats(tx.conn, over)
        if any(r[2] is not None for r in rows):
            # folding changes an in-flight batch: unfreeze it (a later resend gets a new seq)
            inflight = state.get_json(tx.conn, "hb_inflight") or {}
            if "seq" in inflight:
                self.release(tx, int(inflight["seq"]))
        summary = state.get_json(tx.conn, "hb_summary")
        for r in rows:
            try:
                summary = _fold(summary, json.loads(r[1]))
            except ValueError:
                summary = _fold(summary, {})
        hstore.drop_heartbeats_through(tx, rows[-1][0])
        state.put_json(tx, "hb_summary", summary)

    def take_batch(self, tx: Tx) -> Batch | None:
        inflight = state.get_json(tx.conn, "hb_inflight")
        if isinstance(inflight, dict) and "seq" in inflight:
            seq = int(inflight["seq"])
            samples = hstore.batch_samples(tx.conn, seq)
            if samples or inflight.get("summary"):
                return Batch(seq, samples, inflight.get("summary"), True)
            state.delete(tx, "hb_inflight")
        samples = hstore.unbatched_samples(tx.conn)
        summary = state.get_json(tx.conn, "hb_summary")
        if not samples and not summary:
            return None
        seq = state.increment(tx, "heartbeat_seq")
        hstore.freeze_batch(tx, seq)
        state.put_json(tx, "hb_inflight", {"seq": seq, "summary": summary})
        state.delete(tx, "hb_summary")
        return Batch(seq, samples, summary, False)

    def reserve_seqs(self, tx: Tx, n: int) -> list[int]:
        """``n`` seqs for heartbeats sent from memory before the next commit: taken from the
        counter now, so a power cut never hands one out twice (a gap is fine to the fleet,
        which wants each seq greater than the last)."""
        if n <= 0:
            return []
        last = state.increment(tx, "heartbeat_seq", n)
        return list(range(last - n + 1, last + 1))

    def hold(self, tx: Tx, seq: int) -> None:
        """Freeze what is queued under ``seq``, in flight with an unknown outcome: the next
        batch resends it under the same seq (only when nothing else is in flight)."""
        inflight = state.get_json(tx.conn, "hb_inflight")
        if isinstance(inflight, dict) and "seq" in inflight:
            return  # one batch in flight at a time: these join the queue unbatched
        hstore.freeze_batch(tx, seq)
        state.put_json(tx, "hb_inflight", {"seq": seq, "summary": None})

    def delivered(self, tx: Tx, seq: int) -> None:
        hstore.delete_batch(tx, seq)
        inflight = state.get_json(tx.conn, "hb_inflight") or {}
        if inflight.get("seq") == seq:
            state.delete(tx, "hb_inflight")

    def release(self, tx: Tx, seq: int) -> None:
        """The batch certainly did not arrive: its samples rejoin the queue."""
        inflight = state.get_json(tx.conn, "hb_inflight") or {}
        if inflight.get("seq") != seq:
            return
        hstore.release_batch(tx, seq)
        merged = merge_summaries(inflight.get("summary"), state.get_json(tx.conn, "hb_summary"))
        if merged:
            state.put_json(tx, "hb_summary", merged)
        state.delete(tx, "hb_inflight")


def queued_count(conn: sqlite3.Connection) -> int:
    return hstore.heartbeat_count(conn)


# -- sending ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class HttpOutcome:
    status: int | None
    text: str = ""
    date: str | None = None
    connected: bool = True   # False: no connection was made, so nothing can have arrived
    error: str | None = None
    retry_after: str | None = None
    sent_bytes: int = 0      # on the wire, estimated as the sync client does (wirebytes)
    received_bytes: int = 0


def request_size(method: str, target: str, headers: dict[str, str], body: int = 0) -> int:
    """A request's bytes on the wire: its line, headers (with Host, Content-Length and
    Accept-Encoding, which http.client adds: ~80) and body. TLS is not counted."""
    return len(method) + len(target) + 12 + sum(len(k) + len(v) + 4 for k, v in headers.items()) \
        + 80 + body


def reply_size(resp: http.client.HTTPResponse, read: int = 0, *, whole: bool = False) -> int:
    """A reply's bytes on the wire: status line, headers and body. ``read``: the body's
    bytes read; unless that was ``whole`` of it, its Content-Length counts (a body is on
    the wire whether or not it is read)."""
    body = read
    if not whole:
        with contextlib.suppress(ValueError):
            body = max(read, int(resp.getheader("Content-Length") or 0))
    return 17 + len(resp.reason or "") + sum(len(k) + len(v) + 4 for k, v in resp.getheaders()) \
        + 2 + body


def post(url: str, data: bytes, headers: dict[str, str], timeout_s: float, *,
         read_ok: int = 0) -> HttpOutcome:
    """One blocking POST with the stdlib (aiohttp would cost the agent ~20 MB of RSS for a
    request every few minutes). Connecting and sending are told apart on purpose. The
    body of an error is read (4 KiB); of a success, up to ``read_ok`` bytes."""
    u = urllib.parse.urlsplit(url)
    conn_cls = http.client.HTTPSConnection if u.scheme == "https" else http.client.HTTPConnection
    conn = conn_cls(u.hostname or "", u.port, timeout=timeout_s)
    try:
        try:
            conn.connect()  # includes the TLS handshake for https
        except OSError as e:
            return HttpOutcome(None, connected=False, error=f"fleet unreachable: {e}")
        path = (u.path or "/") + (f"?{u.query}" if u.query else "")
        sent = request_size("POST", path, headers, len(data))
        try:
            conn.request("POST", path, body=data, headers=headers)
            resp = conn.getresponse()
            limit = 4096 if resp.status >= 300 else read_ok
            raw = resp.read(limit) if limit else b""
            got = reply_size(resp, len(raw), whole=limit > 0 and len(raw) < limit)
            return HttpOutcome(resp.status, raw.decode("utf-8", "replace"),
                               resp.getheader("Date"), retry_after=resp.getheader("Retry-After"),
                               sent_bytes=sent, received_bytes=got)
        except (OSError, http.client.HTTPException) as e:
            return HttpOutcome(None, error=f"heartbeat failed: {type(e).__name__} {e}".strip(),
                               sent_bytes=sent)
    finally:
        conn.close()


class HeartbeatClient:
    def __init__(self, store: Store, *, url: str, token: str, identity: HubIdentity,
                 queue_max: int, boot_id_path: str = BOOT_ID_PATH,
                 uptime_path: str = UPTIME_PATH, timeout_s: float = 30.0,
                 extra: Callable[[], dict[str, Any]] | None = None) -> None:
        self.store = store
        self.url = url
        self.token = token
        self.identity = identity
        self.queue = HeartbeatQueue(queue_max)
        self.boot_id_path = boot_id_path
        self.uptime_path = uptime_path
        self.timeout_s = timeout_s
        self.fleet_offset_s = 0.0  # fleet clock minus ours, from response Date headers
        self.extra = extra  # more top-level fields, read when sent (tls, lan_ip, update)
        # what a send left to write (the batch delivered or released, the result for the
        # status page): run by ``settle`` in the next transaction, so that the agent's
        # heartbeat costs the SD card one commit; a power cut before it only resends a
        # batch under the same seq, which the fleet takes as a replay
        self._unsettled: list[Callable[[Tx], None]] = []
        self._last_delivered: bool | None = None
        self.wire: Tally | None = None  # the agent's count of bytes on the modem

    async def close(self) -> None:
        """Nothing to release (one connection per POST); kept for symmetry."""

    async def enqueue(self, sample: dict[str, Any]) -> None:
        await self.store.write(lambda tx: self.queue.enqueue(tx, sample))

    def settle(self, tx: Tx) -> None:
        """Write what the sends since the last transaction left (inside the caller's)."""
        todo, self._unsettled = self._unsettled, []
        for fn in todo:
            fn(tx)

    async def flush(self, max_batches: int = 4) -> SendResult:
        """Send everything queued (normally one batch). Never raises on network trouble."""
        if not self.url:
            res = self._record(SendResult(False, error="no [health] heartbeat_url set"))
            await self.store.write(self.settle)
            return res
        sent = 0
        last: SendResult | None = None
        for _ in range(max_batches):
            batch = await self.store.write(self._settle_and_take)
            if batch is None:
                break
            last = await self._send(batch)
            if not last.delivered:
                break
            sent += len(batch.samples)
        await self.store.write(self.settle)
        queued = await self.store.read(queued_count)
        if last is None:
            return SendResult(True, queued=queued)
        res = self._record(SendResult(last.delivered and queued == 0, last.status, last.seq,
                                      sent, last.error, queued))
        if self._unsettled:
            await self.store.write(self.settle)
        return res

    def _settle_and_take(self, tx: Tx) -> Batch | None:
        self.settle(tx)
        return self.queue.take_batch(tx)

    async def send(self, batch: Batch) -> SendResult:
        """Send one batch taken in the caller's transaction (``queue.take_batch``); its
        bookkeeping waits for the next ``settle``, but a change of outcome (delivered
        after failures, or failing after deliveries) is written at once: the status page
        says so."""
        res = await self._send(batch)
        queued = await self.store.read(queued_count)
        self._record(SendResult(res.delivered, res.status, res.seq,
                                len(batch.samples) if res.delivered else 0, res.error, queued))
        if res.delivered != self._last_delivered:
            self._last_delivered = res.delivered
            await self.store.write(self.settle)
        return res

    async def send_unqueued(self, seq: int, sample: dict[str, Any]) -> SendResult:
        """One sample straight from memory, under a ``seq`` reserved by an earlier commit
        (``reserve_seqs``), when nothing is queued: delivered, it costs the SD card nothing.
        Otherwise the sample joins the queue at once, frozen under its seq if it may have
        arrived (the resend is then a replay to the fleet), unbatched if it certainly did
        not."""
        res = await self._send(Batch(seq, [sample], None, False))

        def keep(tx: Tx) -> None:
            self.settle(tx)
            self.queue.enqueue(tx, sample)
            if res.held:
                self.queue.hold(tx, seq)
        if not res.delivered:
            await self.store.write(keep)
        queued = await self.store.read(queued_count)
        self._record(SendResult(res.delivered, res.status, res.seq, 1 if res.delivered else 0,
                                res.error, queued, res.held))
        if res.delivered != self._last_delivered or not res.delivered:
            self._last_delivered = res.delivered
            await self.store.write(self.settle)
        return res

    async def _send(self, batch: Batch, *, skew_retry: bool = True) -> SendResult:
        body = await self._body(batch)
        data = encode(body)
        headers = request_headers(self.identity.hub_id, self.token, data)
        out = await asyncio.to_thread(post, self.url, data, headers, self.timeout_s)
        if self.wire is not None:
            self.wire.add(FLEET, out.sent_bytes, out.received_bytes)
        status = out.status
        if status is None:
            if not out.connected:
                # no connection was ever made: the batch certainly did not arrive
                self._unsettled.append(lambda tx: self.queue.release(tx, batch.seq))
            # else unknown outcome: keep the batch frozen, retry it with the same seq
            return SendResult(False, None, batch.seq, error=out.error, held=out.connected)
        fleet_skew = self._observe_date(out.date, body["sent_at"])
        if 200 <= status < 300 or (status == 409 and not (skew_retry and fleet_skew)):
            self._unsettled.append(lambda tx: self.queue.delivered(tx, batch.seq))
            return SendResult(True, status, batch.seq, len(batch.samples))
        if status == 409:
            # refused for our clock, not a replay: resend now with sent_at in fleet time
            log.warning("fleet refused heartbeat seq %d; our clock is %.0fs off; resending",
                        batch.seq, -self.fleet_offset_s)
            return await self._send(batch, skew_retry=False)
        if 400 <= status < 500:
            # refused (401/403: token): definitely not stored; samples rejoin the queue
            self._unsettled.append(lambda tx: self.queue.release(tx, batch.seq))
            what = "fleet refused the hub's token" if status in (401, 403) else "fleet refused"
            return SendResult(False, status, batch.seq,
                              error=f"{what} (HTTP {status}) {out.text[:200]}".strip())
        return SendResult(False, status, batch.seq, held=True,
                          error=f"fleet error (HTTP {status}) {out.text[:200]}".strip())

    def _observe_date(self, header: str | None, sent_at: str) -> bool:
        """Track the fleet's clock; True if our sent_at was off by more than SKEW_SUSPECT_S."""
        fleet_now = date_header_time(header)
        if fleet_now is None:
            return False
        self.fleet_offset_s = fleet_now - time.time()
        sent = parse_iso(sent_at)
        return sent is not None and abs(fleet_now - sent.timestamp()) > SKEW_SUSPECT_S

    async def _body(self, batch: Batch) -> dict[str, Any]:
        org = await self.store.read(lambda c: org_unit_info(c, self.identity.org_unit))
        now = time.time()
        # stamp in the fleet's time when we know ours is off (no RTC after a power cut)
        if abs(self.fleet_offset_s) > 30:
            now += self.fleet_offset_s
        body = {"hub_id": self.identity.hub_id, "seq": batch.seq, "sent_at": iso_z(now),
                "version": self.identity.version, "name": self.identity.name,
                "org_unit": org, "boot_id": read_boot_id(self.boot_id_path),
                "uptime_s": read_uptime(self.uptime_path),
                "samples": batch.samples, "summary": batch.summary}
        if self.extra is not None:
            try:
                body.update(await asyncio.to_thread(self.extra))
            except Exception:  # noqa: BLE001 - the heartbeat goes without them
                log.exception("heartbeat: cannot read the tls/lan_ip/update fields")
        return body

    def _record(self, res: SendResult) -> SendResult:
        """The result for the status page, written with the next ``settle``."""
        if res.error:
            log.warning("heartbeat: %s", res.error)
        rec = {"at": iso_z(time.time()), "delivered": res.delivered, "status": res.status,
               "seq": res.seq, "count": res.count, "queued": res.queued, "error": res.error}
        self._unsettled.append(lambda tx: state.put_json(tx, "heartbeat", rec))
        return res
