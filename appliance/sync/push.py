"""Pushing pending rows to national in acknowledged, gzip-compressed chunks.

The pending rows are the queue (repeated edits of a key are one row, so they coalesce).
A chunk's keys are written to ``sync_push_chunk`` before it is sent; its import summary
is recorded, and the chunk marked acknowledged, in one transaction. After a cut or a
kill the first open chunk is sent again with the same keys (DHIS2 imports by natural
key: a repeat changes nothing). Rows are marked only if their HLC is still the one sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..dhis2 import csvformat
from ..dhis2.timefmt import format_ts
from ..errors import LinkDown, NationalRejected
from ..store import Store, synclog
from ..store import datavalues as dv
from ..store.db import Tx
from ..store.hlc import to_iso
from ..store.keys import key_str
from ..store.wirebytes import PUSH
from . import apply
from .backoff import backoff_delay
from .chunking import ChunkSizer
from .client import ROUTE_DOWN_RTO_MS, NationalClient
from .clock import NationalClock, mono
from .state import EventFn
from .summary import ImportResult, Refusal, parse_import_summary
from .wire import WireFormat, blame, misread

log = logging.getLogger(__name__)

OrderKey = Callable[[tuple[str, ...]], Any]
# reads national's current state of a chunk's keys just before its POST (cycle.py)
# a chunk's keys -> whether it read them at national (False: their cells were, earlier)
CheckFn = Callable[[Sequence[tuple[str, ...]]], Awaitable[bool]]


def form_order(index: Any) -> OrderKey:
    """Push order for gzip: period, attribute combo, then each data set's elements in form
    order with the org unit varying fastest. Consecutive values then differ only in
    orgUnit and value, and the run of org units repeats for every cell, so a month of an
    upazila compresses to ~5.5 bytes a value (by UID order: ~6; by form: ~5.4 without the
    storedBy we add)."""
    ds_rank = {d["id"]: i for i, d in enumerate(index.list("dataSets"))}
    de_pos: dict[str, tuple[int, int]] = {}
    for d in index.list("dataSets"):
        for i, e in enumerate(d.get("dataSetElements") or []):
            de = (e.get("dataElement") or {}).get("id")
            if de:
                de_pos.setdefault(de, (ds_rank[d["id"]], i))
    coc_pos: dict[str, int] = {}
    for cc in index.list("categoryCombos"):
        for i, r in enumerate(cc.get("categoryOptionCombos") or []):
            coc_pos.setdefault(r["id"], i)
    big = (len(ds_rank), 0)

    def key(k: tuple[str, ...]) -> Any:
        if len(k) == 4:  # completions: form by form
            return (k[1], k[3], ds_rank.get(k[0], len(ds_rank)), k[2])
        de, pe, ou, coc, aoc = k
        ds, pos = de_pos.get(de, big)
        return (pe, aoc, ds, pos, de, coc_pos.get(coc, 0), coc, ou)
    return key


def plan(conn: Any, entity: str, order: OrderKey | None) -> list[tuple[str, ...]]:
    """Every pending key, in push order."""
    keys = dv.pending_keys(conn, entity)
    keys.sort(key=order or (lambda k: k))
    return keys


def next_chunk(tx: Tx, entity: str, size: int, planned: Sequence[tuple[str, ...]] = (),
               pos: int = 0, busy: Sequence[int] = ()) -> tuple[Chunk | None, int]:
    """The first unacknowledged chunk not in flight (``busy``), trimmed to ``size`` after
    failures, else a new one of the next ``size`` keys of the plan that are still pending
    and in no open chunk. Returns (chunk, the plan position after it)."""
    row = synclog.open_chunk(tx.conn, entity, busy)
    if row is not None:
        chunk_id, keys, attempts = row
        if len(keys) > size:  # the link got worse: resend less; the rest is still pending
            keys = keys[:size]
            synclog.set_chunk_keys(tx, chunk_id, keys)
        return Chunk(chunk_id, entity, keys, attempts), pos
    taken: set[tuple[str, ...]] = set()
    if busy:  # keys of chunks in flight are not free, though still pending
        taken = synclog.open_chunk_keys(tx.conn, entity)
    keys = []
    while pos < len(planned) and len(keys) < size:
        k = planned[pos]
        pos += 1
        if dv.is_pending(tx.conn, entity, k) and k not in taken:
            keys.append(k)
    if not keys:
        return None, pos
    return Chunk(synclog.new_chunk(tx, entity, keys, to_iso(tx.stamp())), entity, keys, 0), pos


def inflight(conn: Any) -> dict[tuple[str, str], tuple[int, list[list[Any]]]]:
    """(entity, key) -> (national ms before the first attempt, [[value, deleted], ...]) for
    the values of chunks sent but not acknowledged."""
    out: dict[tuple[str, str], tuple[int, list[list[Any]]]] = {}
    for entity, sent in synclog.sent_records(conn):
        rec = json.loads(sent)
        for key, seen in rec.get("values", {}).items():
            out[(entity, key)] = (int(rec.get("since", 0)), seen)
    return out
ENTITIES = ("datavalue", "complete_registration")  # values before the forms' completions
WATCH_EVERY_S = 0.25
STALL_GRACE_S = 1.0    # after the route is back, before in-flight requests count as stuck
# (plus the short retransmission timeout kept while the route was gone, when the kernel
# takes the cap: by then TCP has retransmitted at least once on the restored link)
STUCK_CANCEL_S = 20.0  # a stuck request is given this long to finish before it is re-sent
STUCK_IDLE_CANCEL_S = 4.0  # ... or this long, when it is all that is left to send
# A chunk that had sent less than this share of itself when the link dropped is re-sent at
# once when the link is back: TCP must retransmit nearly all of it anyway, and it would do
# so only after its exponential backoff (up to ~3 s after a 3 s cut). A chunk mostly up
# already is left to TCP, which resends only what was lost.
RESEND_BELOW = 0.3
ROUTE_WAIT_S = 60.0   # no new chunk is started while the local route is down, for this long


def resend_at_once(started: float, cut_at: float, upload_s: float | None) -> bool:
    """Was a request cut so early in its upload (by the measured link speed) that sending
    it again on a fresh connection wastes less than waiting out TCP's backoff?"""
    if not upload_s:
        return False  # no measurement: leave it to TCP and the stuck-request timers
    return (cut_at - started) / upload_s < RESEND_BELOW


@dataclass
class Chunk:
    id: int
    entity: str
    keys: list[tuple[str, ...]]
    attempts: int


@dataclass
class PushStats:
    chunks: int = 0
    accepted: int = 0
    rejected: int = 0
    superseded: int = 0
    national_won: int = 0
    body_bytes: int = 0
    checks: int = 0
    # the longest time from a pre-push check's request to its chunk's POST: a national
    # edit of a key in this gap (or during the POST) is overwritten unseen (NATIONAL.md)
    check_gap_s: float = 0.0


def load_rows(conn: Any, entity: str, keys: Sequence[tuple[str, ...]]) -> list[Any]:
    """The chunk's rows that are still pending, in chunk order."""
    return dv.pending_rows(conn, entity, keys)


def value_json(r: Any) -> dict[str, Any]:
    """A pending row as DHIS2 imports it: natural key, value, who; nulls left out."""
    v: dict[str, Any] = {"dataElement": r["de"], "period": r["pe"], "orgUnit": r["ou"],
                         "categoryOptionCombo": r["coc"], "attributeOptionCombo": r["aoc"]}
    if r["deleted"]:
        v["deleted"] = True
    elif r["value"] is not None:
        v["value"] = r["value"]
    if r["stored_by"]:
        v["storedBy"] = r["stored_by"]
    if r["comment"] is not None and not r["deleted"]:
        v["comment"] = r["comment"]
    if r["followup"]:
        v["followup"] = True
    return v


def value_set(values: list[dict[str, Any]], default_aoc: str | None = None) -> dict[str, Any]:
    """The dataValueSet to POST. A chunk of one period (push order makes nearly every
    chunk one) names the period once at the top, as DHIS2 allows, and so does a chunk
    all in the default attribute option combo: the run gzip must encode per value then
    shrinks to org unit and value, ~7% fewer bytes (bench/sync_bench.py). A non-default
    combo stays on each value, where a combo national lacks refuses that value (E7615)
    instead of the whole import (E7604)."""
    if not values:
        return {"dataValues": []}
    out: dict[str, Any] = {}
    drop = []
    pe = values[0]["period"]
    if all(v["period"] == pe for v in values):
        out["period"] = pe
        drop.append("period")
    if default_aoc and all(v["attributeOptionCombo"] == default_aoc for v in values):
        out["attributeOptionCombo"] = default_aoc
        drop.append("attributeOptionCombo")
    if not drop:
        return {"dataValues": values}
    out["dataValues"] = [{k: x for k, x in v.items() if k not in drop} for v in values]
    return out


def registration_json(r: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"dataSet": r["ds"], "period": r["pe"], "organisationUnit": r["ou"],
                           "attributeOptionCombo": r["aoc"], "completed": bool(r["completed"])}
    if r["date"]:
        out["date"] = r["date"][:10]
    if r["stored_by"]:
        out["storedBy"] = r["stored_by"]
    return out


def _next_chunk_fn(entity: str, size: int, planned: Sequence[tuple[str, ...]], pos: int,
                   busy: Sequence[int] = ()) -> Callable[[Tx], tuple[Chunk | None, int]]:
    return lambda tx: next_chunk(tx, entity, size, planned, pos, busy)


async def _wait_event(event: asyncio.Event) -> None:
    await event.wait()


def _plan_fn(entity: str, order: OrderKey | None) -> Callable[[Any], list[tuple[str, ...]]]:
    return lambda conn: plan(conn, entity, order)


class Pusher:
    def __init__(self, store: Store, client: NationalClient, sizer: ChunkSizer,
                 clock: NationalClock,
                 event: EventFn | None = None,
                 aoc_params: Callable[[str, str], dict[str, str]] | None = None,
                 order: OrderKey | None = None, default_aoc: str | None = None,
                 wire_format: WireFormat | None = None,
                 check: CheckFn | None = None) -> None:
        self.store = store
        self.check = check
        self.client = client
        self.sizer = sizer
        self.clock = clock
        self.event = event
        self.aoc_params = aoc_params or (lambda ds, aoc: {})
        self.order = order
        self.default_aoc = default_aoc
        self.wire_format = wire_format or WireFormat()
        self.stats = PushStats()

    async def push_all(self, max_chunks: int = 100000, max_failures: int = 6,
                       backoff_base: float = 0.5, window: int = 2,
                       sleep: Callable[[float], Awaitable[None]] | None = None) -> PushStats:
        """Push every pending row.

        Up to ``window`` chunks are in flight, so the next one travels while national
        imports the last (its import time would otherwise leave the link idle). A chunk
        lost to a cut is re-sent (smaller) after a jittered backoff; after
        ``max_failures`` losses in a row the cycle gives up (LinkDown). A chunk that was
        in flight when the link dropped is left to TCP to finish (re-sending it would
        cost its bytes again) while fresh connections carry the next chunks; only if it
        is still stuck long after the link came back is it cancelled and re-sent."""
        pause = sleep or asyncio.sleep
        failures = 0
        for entity in ENTITIES:
            planned: list[tuple[str, ...]] = []
            pos = 0
            replanned = False
            running: dict[asyncio.Task[None], Chunk] = {}
            started: dict[asyncio.Task[None], float] = {}
            stuck: dict[asyncio.Task[None], float] = {}
            hit: set[asyncio.Task[None]] = set()  # in flight when the link last dropped
            wake = asyncio.Event()
            width = window if entity == "datavalue" else 1
            watchdog = asyncio.create_task(self._watchdog(running, started, stuck, hit,
                                                          wake))
            try:
                for _ in range(max_chunks):
                    while True:
                        active = [t for t in running if t not in stuck]
                        if any(t in hit for t in active):
                            # a request cut in flight gets the restored link to itself: it
                            # has only its lost tail to retransmit, and a fresh connection
                            # in slow start beside it fills the modem's queue and has those
                            # retransmissions dropped again (measured: seconds of backoff)
                            break
                        if len(active) >= width:
                            break
                        if active and not await self._upload_done(active[-1], running,
                                                                  started):
                            break
                        if self.client.route_ok() is False:
                            await self._route_back()
                            if self.client.route_ok() is not False:
                                continue  # the checks above again: a request cut in flight
                            # still down after ROUTE_WAIT_S: send, fail, and let the retry
                            # and max_failures logic below end the cycle
                        size = self.sizer.next_size() if entity == "datavalue" else 200
                        busy = [c.id for c in running.values()]
                        chunk, pos = await self.store.write(
                            _next_chunk_fn(entity, size, planned, pos, busy))
                        if chunk is None and not replanned:
                            # plan (again): rows edited meanwhile are pending once more
                            planned = await self.store.read(_plan_fn(entity, self.order))
                            pos, replanned = 0, True
                            continue
                        if chunk is None:
                            break
                        replanned = False
                        task = asyncio.create_task(self._push_chunk(chunk))
                        running[task], started[task] = chunk, time.monotonic()
                    if not running:
                        break
                    wake.clear()
                    waiter = asyncio.create_task(_wait_event(wake))
                    await asyncio.wait([*running, waiter], return_when=asyncio.FIRST_COMPLETED)
                    waiter.cancel()
                    lost: LinkDown | None = None
                    for task in [t for t in running if t.done()]:
                        chunk = running.pop(task)
                        started.pop(task, None)
                        stuck.pop(task, None)
                        hit.discard(task)
                        if task.cancelled():  # cut early in its upload, or stuck since
                            if self.event is not None:
                                await self.event("warning", "push", f"chunk of "
                                                 f"{len(chunk.keys)} was cut in flight; "
                                                 "re-sending it on a fresh connection",
                                                 {"code": "resend", "n": len(chunk.keys)})
                            continue
                        exc = task.exception()
                        if exc is None:
                            failures = 0
                            replanned = False
                        elif isinstance(exc, LinkDown):
                            lost = exc
                            if self.event is not None:
                                await self.event("warning", "push", f"chunk of "
                                                 f"{len(chunk.keys)} lost ({exc.message}); "
                                                 "retrying",
                                                 {"code": "resend", "n": len(chunk.keys)})
                        else:
                            raise exc
                    if lost is not None:
                        failures += 1
                        if failures >= max_failures:
                            raise lost
                        await pause(backoff_delay(failures - 1, base=backoff_base, cap=20.0))
            finally:
                watchdog.cancel()
                for task in running:
                    task.cancel()
                if running:
                    await asyncio.gather(*running, return_exceptions=True)
        return self.stats

    async def _route_back(self) -> None:
        """Start no chunk while the modem's route is gone: it would sit in TCP's backoff
        from its first byte. Gives up waiting after ROUTE_WAIT_S (the request then fails
        and the cycle's own retry logic takes over)."""
        deadline = time.monotonic() + ROUTE_WAIT_S
        while self.client.route_ok() is False and time.monotonic() < deadline:
            await asyncio.sleep(WATCH_EVERY_S / 5)

    async def _watchdog(self, running: dict[asyncio.Task[None], Chunk],
                        started: dict[asyncio.Task[None], float],
                        stuck: dict[asyncio.Task[None], float], hit: set[asyncio.Task[None]],
                        wake: asyncio.Event) -> None:
        """Watch the local route to national (free: no packet is sent). A request in
        flight when the link went down (``hit``) sits in TCP's retransmission backoff.
        When the route is back it has the link to itself for a grace period (the push
        loop starts nothing beside it); still unfinished after that, it is marked stuck
        (fresh connections then carry the next chunks) and, if still stuck after
        STUCK_CANCEL_S (STUCK_IDLE_CANCEL_S when nothing else is left), cancelled so that
        its chunk is sent again."""
        down_since: float | None = None
        while True:
            await asyncio.sleep(WATCH_EVERY_S)
            now = time.monotonic()
            idle = all(t in stuck or t.done() for t in started)
            limit = STUCK_IDLE_CANCEL_S if idle else STUCK_CANCEL_S
            for task, since in list(stuck.items()):
                if not task.done() and now - since > limit:
                    task.cancel()
            ok = self.client.route_ok()
            if ok is False and down_since is None:
                down_since = now
                hit.update(t for t in started if not t.done())
            elif ok and down_since is not None:
                cut_at, down_since = down_since, None
                cut = [t for t in hit if not t.done()]
                if cut:
                    self.sizer.failure(mono())  # a cut that stalled requests is a failure too
                for task in cut:
                    chunk = running.get(task)
                    est = self.sizer.upload_s(len(chunk.keys)) if chunk is not None else None
                    # with TCP's timeout capped, TCP resumes soon enough by itself
                    if not self.client.rto_capped and resend_at_once(started[task], cut_at,
                                                                     est):
                        task.cancel()
                        wake.set()
                await asyncio.sleep(self._grace_s())
                marked = False
                for task in list(hit):
                    if task.done():
                        hit.discard(task)
                    elif task not in stuck:
                        stuck[task] = time.monotonic()
                        marked = True
                if marked:
                    wake.set()

    def _grace_s(self) -> float:
        """How long a request cut in flight has the restored link to itself."""
        if self.client.rto_capped:  # TCP retransmits every ROUTE_DOWN_RTO_MS until then
            return STALL_GRACE_S + ROUTE_DOWN_RTO_MS / 1000
        return STALL_GRACE_S

    async def _upload_done(self, task: asyncio.Task[None],
                           running: dict[asyncio.Task[None], Chunk],
                           started: dict[asyncio.Task[None], float]) -> bool:
        """Wait until the chunk in flight has (by the measured link speed) finished going
        up, so the next one only overlaps national's import of it, not its upload: two
        uploads at once would share a slow link and both be exposed to the next cut.
        False if it completed meanwhile (the caller handles it first)."""
        chunk = running[task]
        est = self.sizer.upload_s(len(chunk.keys))
        if est is None:
            return False  # no measurement yet: one at a time
        wait = started[task] + est - time.monotonic()
        if wait > 0:
            done, _ = await asyncio.wait([task], timeout=wait)
            if done:
                return False
        return True

    async def _push_chunk(self, chunk: Chunk) -> None:
        checked_at: float | None = None
        if chunk.entity == "datavalue" and self.check is not None:
            # national's edits of these keys since the hub last knew them become conflicts
            # now, not after the POST has overwritten them; rows national won drop out
            started = time.monotonic()
            if await self.check(chunk.keys):
                checked_at = started
                self.stats.checks += 1
        rows = await self.store.read(lambda c: load_rows(c, chunk.entity, chunk.keys))
        if not rows:  # everything in it was resolved meanwhile
            def empty(tx: Tx) -> apply.AckStats:
                return apply.ack(tx, chunk.entity, [], ImportResult("SUCCESS", 0), "", chunk.id)
            await self.store.write(empty)
            return
        if chunk.entity == "datavalue":
            result, seconds, nbytes = await self._post_values(chunk, rows, checked_at)
        else:
            result, seconds, nbytes = await self._post_registrations(chunk, rows)
        key_len = 5 if chunk.entity == "datavalue" else 4
        sent = [(tuple(r[i] for i in range(key_len)), r["hlc"]) for r in rows]
        if result.ambiguous:
            # national refused something without saying which value: nothing in this
            # request is called accepted; send halves until each refusal has its value
            half = [k for k, _ in sent[:max(1, len(sent) // 2)]]
            await self.store.write(lambda tx: synclog.set_chunk_keys(tx, chunk.id, half))
            if self.event is not None:
                await self.event("warning", "push", "national reported a conflict without "
                                 f"saying which value ({result.ambiguous[0].message}); "
                                 f"re-sending {len(half)} of {len(sent)} to find it",
                                 {"code": "halving", "n": len(half), "of": len(sent)})
            return
        # national stamped these values before answering: its clock has not passed
        # upper_ms() yet, so base >= national's lastUpdated and our own echo is no conflict
        base = format_ts(self.clock.upper_ms())
        st = await self.store.write(lambda tx: apply.ack(
            tx, chunk.entity, sent, result, base, chunk.id, seconds))
        self.stats.chunks += 1
        self.stats.accepted += st.accepted
        self.stats.rejected += st.rejected
        self.stats.superseded += st.superseded
        self.stats.national_won += st.national_won
        self.stats.body_bytes += nbytes
        if chunk.entity == "datavalue":
            self.sizer.success(len(rows), nbytes, seconds, mono())
        if (st.rejected or st.national_won) and self.event is not None:
            reasons = sorted({f"{r.code or ''} {r.message}".strip()
                              for r in result.rejected.values()})[:3]
            await self.event("warning", "push", f"national refused {st.rejected + st.national_won}"
                             f" of {len(rows)} values: " + "; ".join(reasons),
                             {"code": "refused", "n": st.rejected + st.national_won})

    async def _attempt(self, chunk: Chunk, sent: Sequence[tuple[str, Any, bool]]) -> None:
        """Note what this attempt sends before sending it (see ``sync_push_chunk.sent``)."""
        since = self.clock.lower_ms()

        def write(tx: Tx) -> None:
            text = synclog.chunk_sent(tx.conn, chunk.id)
            rec: dict[str, Any] = json.loads(text) if text else {"since": since, "values": {}}
            rec["since"] = min(rec["since"], since)
            for key, value, deleted in sent:
                seen = rec["values"].setdefault(key, [])
                if [value, deleted] not in seen:
                    seen.append([value, deleted])
            synclog.note_attempt(tx, chunk.id, json.dumps(rec, separators=(",", ":")))
        await self.store.write(write)

    async def _post_values(self, chunk: Chunk, rows: list[Any], checked_at: float | None = None
                           ) -> tuple[ImportResult, float, int]:
        values = [value_json(r) for r in rows]
        await self._attempt(chunk, [(key_str(r[:5]),
                                     None if r["deleted"] else r["value"], bool(r["deleted"]))
                                    for r in rows])
        t0 = time.monotonic()
        if checked_at is not None:
            self.stats.check_gap_s = max(self.stats.check_gap_s, t0 - checked_at)
        try:
            result, nbytes = await self._post_chunk(values)
        except LinkDown as e:
            if e.error_code not in ("connect", "local-down"):  # bytes were lost in flight
                self.sizer.failure(mono())
            raise
        seconds = time.monotonic() - t0
        if result.aborted is not None:
            raise NationalRejected(
                f"national refused the whole import ({result.aborted.code or 'no code'}: "
                f"{result.aborted.message}); nothing was marked synced",
                error_code=result.aborted.code)
        return result, seconds, nbytes

    async def _post_chunk(self, values: list[dict[str, Any]]) -> tuple[ImportResult, int]:
        """POST one chunk in the wire format in use (appliance/sync/wire.py) and read its
        import summary; returns it and the body bytes sent. A CSV chunk that national
        refuses or misreads is sent again as JSON at once; when JSON goes through, national
        cannot take CSV and the hub uses JSON from then on. The summary's indexes count
        CSV rows after the header as they count JSON's ``dataValues``: the same values."""
        body = self.wire_format.csv_body(values)
        if body is None:
            return await self._post_once(values, None)
        verdict: str | None
        try:
            result, nbytes = await self._post_once(values, body)
        except NationalRejected as e:
            # its bytes are in the client's counters; the chunk's figure is the re-send's
            verdict, why, nbytes = blame(e), e.message, 0
            if verdict is None:
                raise
        else:
            misreading = misread(result)
            if misreading is None:
                return result, nbytes
            verdict, why = "refused", misreading
        result, more = await self._post_once(values, None)
        if verdict == "refused" and misread(result) is None:
            await self.wire_format.refuse(self.store, self.event, "push", why)
        return result, nbytes + more

    async def _post_once(self, values: list[dict[str, Any]], csv_body: bytes | None
                         ) -> tuple[ImportResult, int]:
        if csv_body is not None:
            payload: Any = csv_body
            ctype = csvformat.MEDIA_TYPE
        else:
            payload, ctype = value_set(values, self.default_aoc), "application/json"
        reply = await self.client.request(
            "POST", "/api/dataValueSets", payload=payload, content_type=ctype,
            ok=(200, 409), parse=True,
            timeout=self.sizer.timeout_s(len(values), floor=self.client.timeout_s),
            retries=0, category=PUSH)
        return (parse_import_summary(reply.status, reply.data, len(values), values),
                reply.sent_body_bytes)

    async def _post_registrations(self, chunk: Chunk, rows: list[Any]
                                  ) -> tuple[ImportResult, float, int]:
        t0 = time.monotonic()
        await self._attempt(chunk, [(key_str(r[:4]),
                                     "true" if r["completed"] else "false", bool(r["deleted"]))
                                    for r in rows])
        live = [(i, r) for i, r in enumerate(rows) if not r["deleted"]]
        gone = [(i, r) for i, r in enumerate(rows) if r["deleted"]]
        result = ImportResult("SUCCESS", len(rows))
        nbytes = 0
        if live:
            regs = [registration_json(r) for _, r in live]
            reply = await self.client.request(
                "POST", "/api/completeDataSetRegistrations",
                payload={"completeDataSetRegistrations": regs}, ok=(200, 409), parse=True,
                retries=1, category=PUSH)
            nbytes += reply.sent_body_bytes
            sub = parse_import_summary(reply.status, reply.data, len(regs), regs)
            if sub.aborted is not None:
                raise NationalRejected(f"national refused the completions ({sub.aborted.message})")
            for j, refusal in sub.rejected.items():
                result.rejected[live[j][0]] = refusal
        for i, r in gone:
            params = {"ds": r["ds"], "pe": r["pe"], "ou": r["ou"], "multiOu": "false",
                      **self.aoc_params(r["ds"], r["aoc"])}
            reply = await self.client.request("DELETE", "/api/completeDataSetRegistrations",
                                              params=params, ok=(200, 204, 404, 409),
                                              retries=1, category=PUSH)
            if reply.status == 409:
                msg = reply.body.decode("utf-8", "replace")
                with contextlib.suppress(ValueError, AttributeError):
                    msg = json.loads(msg).get("message") or msg
                result.rejected[i] = Refusal(None, str(msg)[:500])
        return result, time.monotonic() - t0, nbytes
