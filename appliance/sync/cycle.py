"""One sync cycle (DESIGN.md §6): probe the link, pull metadata deltas, pull data deltas,
resolve, push pending rows in acknowledged chunks, record the status.

``SyncEngine`` holds what outlives a cycle in this process (the learned chunk size, the
clock offset, national's clock); everything that must survive a kill is in the store.
A cycle that is cut anywhere leaves the store consistent: the next one resumes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..config import Config
from ..dhis2 import approvals as approvals_pure
from ..dhis2.timefmt import format_ts, iso_z, parse_ts
from ..errors import LinkDown, NationalRejected, SyncError
from ..store import Store, backlog, tracker_sync, wirebytes
from ..store import approvals as approvals_db
from ..store import datavalues as dv
from ..store.datavalues import pending_org_units_periods
from ..store.hlc import pack
from ..store.metadata import MetadataIndex, load_index
from ..store.wirebytes import PULL
from . import apply, approvals, metadata, state, tracker_pull
from . import clock as clock_mod
from .approvals import ApprovalStats
from .chunking import ChunkSizer
from .client import NationalClient, ProbeResult
from .clock import NationalClock, OffsetTracker
from .push import Pusher, PushStats, form_order
from .push import inflight as push_inflight
from .tracker_push import TrackerPusher, TrackerPushStats
from .watermark import advance, pull_since
from .wire import WireFormat

log = logging.getLogger(__name__)

# A data-triggered or retried cycle within this long of the last full data pull skips
# the full pull (which would re-download the echo of everything already pushed); the
# pre-push check of each chunk (``check_keys``) still reads national's edits of its keys.
RESUME_WINDOW_MS = 10 * 60 * 1000
# metadata on timer and data-triggered cycles at most hourly: an idle 15-minute timer
# cycle then asks national nothing about metadata (issue 15: an idle cycle <= 2 KB)
METADATA_EVERY_MS = 60 * 60 * 1000
# a metadata check first asks whether anything changed (``metadata.anything_changed``, two
# requests); the page of every collection is asked for anyway once a day, in case
METADATA_FULL_EVERY_MS = 24 * 60 * 60 * 1000
APPLY_BATCH = 2000
ROUND_MAX_MS = 60 * 60 * 1000  # a pull round unfinished for an hour starts again
WHOLE = "*"  # a pull piece meaning "the root and all its children"
# national's un-completes are looked for at most this often, and on every sync a person asks for
CHECK_UNCOMPLETES_EVERY_MS = 6 * 60 * 60 * 1000
CHECK_UNCOMPLETES_REASONS = frozenset({"cli", "api", "button", "usb", "start"})
UNCOMPLETE_LOOKBACK_MS = 366 * 24 * 60 * 60 * 1000
FULL_REASONS = frozenset({"cli", "timer", "api", "modem", "button", "usb", "start", "update"})
META_AT_ONCE_REASONS = FULL_REASONS - {"timer"}  # these check metadata whenever they run
LIGHT_REASONS = frozenset({"timer", "local-data"})  # between hourly checks: values only
ANCHOR_MIN_GAP_MS = 1000


@dataclass
class CycleResult:
    ok: bool = False
    reason: str = ""
    error: str | None = None
    pending: int = 0
    rejected: int = 0
    conflicts: int = 0
    metadata_changes: int = 0
    pulled_values: int = 0
    pulled_registrations: int = 0
    pull: apply.PullStats = field(default_factory=apply.PullStats)
    # the part of ``pull`` read by the pre-push checks of the chunks
    checked: apply.PullStats = field(default_factory=apply.PullStats)
    push: PushStats = field(default_factory=PushStats)
    tracker_pull: tracker_pull.TrackerPullStats = field(
        default_factory=tracker_pull.TrackerPullStats)
    tracker_push: TrackerPushStats = field(default_factory=TrackerPushStats)
    approvals: ApprovalStats = field(default_factory=ApprovalStats)
    bytes_sent: int = 0
    bytes_received: int = 0
    # the same bytes by category (metadata, pull, push, other): {category: (sent, received)}
    wire: dict[str, tuple[int, int]] = field(default_factory=dict)
    resumed: bool = False
    # a timer or data-triggered cycle between the hourly metadata checks: it reads
    # national's data values (and the registers of people with something to push), not
    # its completions or the upazila's register changes
    light: bool = False
    seconds: float = 0.0

    def words(self) -> dict[str, Any]:
        """What the cycle did, for the status page's sentence (appliance/hub/events.py)."""
        return {"code": "synced",
                "sent": self.push.accepted + self.tracker_push.accepted,
                "refused": self.push.rejected + self.tracker_push.rejected,
                "received": self.pulled_values + self.pulled_registrations
                + self.tracker_pull.tracked_entities,
                "conflicts": self.pull.conflicts + self.tracker_pull.conflicts,
                "left": self.pending}

    def quiet(self) -> bool:
        """Nothing moved either way and nothing waits: an idle timer cycle, logged at
        DEBUG (the journal is on the SD card; the status page still shows the cycle)."""
        w = self.words()
        return not (w["sent"] or w["refused"] or w["received"] or w["conflicts"] or w["left"]
                    or self.metadata_changes or self.approvals.locked
                    or self.approvals.unlocked)

    def summary(self) -> str:
        return (f"pulled {self.pulled_values} values/{self.pulled_registrations} completions "
                f"({self.pull.conflicts} conflicts), pushed {self.push.accepted} accepted, "
                f"{self.push.rejected} refused; tracker: pulled "
                f"{self.tracker_pull.tracked_entities} people ({self.tracker_pull.conflicts} "
                f"conflicts), pushed {self.tracker_push.accepted} records, "
                f"{self.tracker_push.rejected} refused; {self.pending} left pending"
                + (f"; longest check-to-push gap {self.push.check_gap_s:.2f} s"
                   if self.push.checks else ""))


counts = backlog.backlog  # aggregate and tracker, as status and health report it


def _log_event(level: str, kind: str, message: str) -> None:
    """A sync event's English line, for the log (the status page reads its data)."""
    log.log(logging.WARNING if level != "info" else logging.INFO, "%s: %s", kind, message)


def failure_cause(e: SyncError) -> str:
    """Why a cycle failed, as the status page words it: ``link`` (national not reached),
    ``credentials`` (it refused the hub's account), ``national`` (it answered with an
    error) or ``other`` (the hub's settings, a reply it could not use: the text says)."""
    if isinstance(e, LinkDown):
        return "link"
    if isinstance(e, NationalRejected):
        return "credentials" if e.error_code in ("401", "403") else "national"
    return "other"


def make_client(config: Config, wall: Callable[[], float] = time.time) -> NationalClient:
    return NationalClient(
        config.get("national", "url"), token=config.get("national", "token"),
        username=config.get("national", "username"),
        password=config.get("national", "password"),
        timeout_s=float(config.get("national", "timeout_s")), wall=wall,
        rto_max_ms=int(config.get("national", "tcp_rto_max_ms") or 0),
        congestion=str(config.get("national", "tcp_congestion") or ""))


class SyncEngine:
    def __init__(self, store: Store, config: Config, *, client: NationalClient | None = None,
                 wall: Callable[[], float] = time.time) -> None:
        self.store = store
        self.config = config
        self.wall = wall
        self.client = client or make_client(config, wall)
        self.sizer = ChunkSizer(size=int(config.get("sync", "chunk_values") or 500))
        self.wire_format = WireFormat.from_config(config)  # CSV or JSON for data values
        self.offset = OffsetTracker()
        self.clock: NationalClock | None = None
        self.probe: ProbeResult | None = None
        self._sizer_loaded = False
        # sync_state that can wait for the cycle's last transaction (a watermark moved over
        # nothing, the link's state): an idle cycle then costs the SD card three commits,
        # not a dozen. A cycle cut before its end loses only these, and re-reads a little.
        self._later: dict[str, Any] = {}
        self.metadata_stats: metadata.PullStats | None = None  # the last metadata pull's
        self.metadata_gate = True  # False once national refused the metadata export
        # a chunk lost to a cut is re-sent after a jittered backoff, this many times in a row
        self.push_retries = 6
        self.push_backoff_s = 0.5

    async def close(self) -> None:
        await self.client.close()

    # -- small store helpers ---------------------------------------------------------------------
    async def _set(self, **values: Any) -> None:
        later, self._later = self._later, {}
        await self.store.write(lambda tx: state.set_state(tx, {**later, **values}))

    def _defer(self, values: Mapping[str, Any] | None) -> None:
        """sync_state for the cycle's last transaction (or the next ``_set``)."""
        self._later.update(values or {})

    async def event(self, level: str, kind: str, message: str,
                    data: Mapping[str, Any] | None = None) -> None:
        """``message`` for the log, in English; ``data`` ({"code": ...}) for the status page
        to say it in the reader's language (appliance/hub/events.py)."""
        at = iso_z(self.wall(), millis=True)
        _log_event(level, kind, message)
        await self.store.write(lambda tx: state.add_event(tx, level, kind, message, at, data))

    async def _finish(self, result: CycleResult, end: dict[str, Any],
                      event: Callable[[], tuple[str, str, str, dict[str, Any]]] | None) -> None:
        """The cycle's last transaction: what waited (``_defer``), the outcome, its event,
        and the bytes (the cumulative counters, and by category and local day in
        ``store.wirebytes``: never a commit per request) and syncing=0, together."""
        wire = self.client.wire.take()
        sent, recv = wirebytes.total(wire)
        result.bytes_sent, result.bytes_received, result.wire = sent, recv, wire
        result.pending, result.rejected, result.conflicts = await self.store.read(counts)
        now = self.wall()
        at = iso_z(now, millis=True)
        ev = event() if event is not None else None
        if ev is not None and ev[0] == "info" and result.quiet():
            log.debug("%s: %s", ev[1], ev[2])
        elif ev is not None:
            _log_event(*ev[:3])
        later, self._later = self._later, {}

        def write(tx: Any) -> None:
            state.set_state(tx, {**later, **end, "syncing": "0"})
            state.add_bytes(tx, sent, recv)
            wirebytes.record(tx, wire, now)
            if ev is not None:
                state.add_event(tx, ev[0], ev[1], ev[2], at, ev[3])
        try:
            await self.store.write(write)
        except Exception:  # the write failed: the next cycle's commit carries the bytes
            self.client.wire.put_back(wire)
            raise

    # -- clock -------------------------------------------------------------------------------------
    async def do_probe(self) -> ProbeResult:
        p = await self.client.probe()
        self.probe = p
        self.clock = p.clock
        if p.offset is not None:
            self.offset.add(p.offset, p.clock.mono_recv)
        boot = clock_mod.boot_id()

        def write(tx: Any) -> None:
            state.fill_anchors(tx, boot, p.clock.server_ms, p.clock.mid_ms)
            # a fresh anchor above the hub's pending edits places them on national's time
            # line (conflicts); with nothing pending there is nothing to place, and an idle
            # cycle skips the commit (the anchor loop still writes one on a clock step, or
            # hourly)
            self._anchor(tx, force=counts(tx.conn)[0] > 0)
        await self.store.write(write)
        return p

    async def tick_anchor(self, force: bool = False) -> bool:
        """Record (HLC, this boot's monotonic clock, national time if known) when the HLC
        stopped tracking the monotonic clock since the last anchor (the wall clock was
        stepped, or is behind the HLC so every stamp is pinned), or when ``force``d.
        Runs offline too: national's time is filled in by the next probe of this boot."""
        return bool(await self.store.write(lambda tx: self._anchor(tx, force=force)))

    def _anchor(self, tx: Any, *, force: bool) -> bool:
        """``tick_anchor``'s work, inside the caller's transaction."""
        clock = self.clock
        boot = clock_mod.boot_id()
        mono_ms = int(clock_mod.mono() * 1000)
        wall_ms = int(self.wall() * 1000)
        last = state.last_anchor(tx.conn, boot)
        if not force and last is not None:
            hlc_now = max(pack(wall_ms), state.persisted_hlc(tx.conn))
            drift = state.hlc_drift_ms(hlc_now, mono_ms) - state.hlc_drift_ms(*last)
            if abs(drift) < ANCHOR_MIN_GAP_MS and mono_ms - last[1] < 3600_000:
                return False
        national = clock.at_mono_ms(mono_ms) if clock is not None else None
        state.write_anchor(tx, boot, mono_ms, wall_ms, national)
        state.prune_anchors(tx, boot)
        return True

    def context(self, index: MetadataIndex,
                inflight: dict[tuple[str, str], tuple[int, list[list[Any]]]] | None = None
                ) -> apply.Context:
        assert self.clock is not None and self.probe is not None
        policies = self.config.get("sync", "policies") or {}
        return apply.Context(inflight=inflight or {},
            default_policy=self.config.get("sync", "policy"), policies=dict(policies),
            de_datasets={de: list(dss) for de, dss in index.de_datasets.items()},
            offset_ms=self.offset.offset_ms, now_national_ms=self.clock.now_ms(),
            tz=self.probe.time_zone)

    # -- the cycle ------------------------------------------------------------------------------------
    async def cycle(self, reason: str = "cli") -> CycleResult:
        result = CycleResult(reason=reason)
        t0 = time.monotonic()
        self._later = {}
        await self._set(syncing="1", last_attempt=iso_z(self.wall(), millis=True))
        await self._load_sizer()
        end: dict[str, Any] = {}
        event: Callable[[], tuple[str, str, str, dict[str, Any]]] | None = None
        try:
            await self._cycle(reason, result)
            result.ok = True
            end = {"link": "up", "last_success": iso_z(self.wall(), millis=True),
                   "last_error": "", "chunk_size": self.sizer.size}
            # after _finish has counted what is left: the sentence says how much waits
            event = lambda: ("info", "cycle", f"{reason}: {result.summary()}",  # noqa: E731
                             result.words())
        except SyncError as e:
            result.error = e.message
            cause = failure_cause(e)
            end = {"link": "down" if isinstance(e, LinkDown) else "up",
                   "last_error": e.message, "last_error_cause": cause,
                   "chunk_size": self.sizer.size}
            message = f"{reason}: {e.message}"
            event = lambda: ("error", "cycle", message,  # noqa: E731
                             {"code": "failed", "cause": cause})
        except Exception as e:  # a bug: say so on the status page, then let the caller log it
            result.error = f"internal error in the sync worker ({type(e).__name__}: {e})"
            end = {"last_error": result.error}
            raise
        finally:
            try:
                await self._finish(result, end, event)
            except BaseException:
                await self._set(syncing="0")
                raise
            result.seconds = time.monotonic() - t0
        return result

    async def _load_sizer(self) -> None:
        if self._sizer_loaded:
            return
        self._sizer_loaded = True
        st = await self.store.read(state.read_state)
        if st.get("chunk_size", "").isdigit():  # keep what the last process learned
            self.sizer.size = self.sizer._clamp(int(st["chunk_size"]))

    async def _cycle(self, reason: str, result: CycleResult) -> None:
        probe = await self.do_probe()
        st = await self.store.read(state.read_state)
        self.wire_format.resolve(st, probe.version)
        seen = {"link": "up", "clock_offset_s": round(self.offset.offset_ms / 1000, 3),
                "national_version": probe.version}
        if st.get("link") == "up" and st.get("national_version") == probe.version:
            self._defer(seen)  # nothing the status page must show at once
        else:
            await self._set(**seen)
        root = await self._root(st)
        last_pull = st.get("last_full_pull", "")
        last_pull_ms = int(last_pull) if last_pull.isdigit() else None
        now_ms = probe.server_ms
        # data-triggered cycles and retries soon after a full pull only re-check the keys
        # they push: a full pull would re-download the echo of what was just pushed
        resume = reason not in FULL_REASONS and last_pull_ms is not None and \
            0 <= now_ms - last_pull_ms < RESUME_WINDOW_MS
        result.resumed = resume
        meta_ms = int(st["metadata_pulled_ms"]) if st.get("metadata_pulled_ms", "").isdigit() \
            else None
        want_meta = not resume and (reason in META_AT_ONCE_REASONS or meta_ms is None or
                                    now_ms - meta_ms >= METADATA_EVERY_MS or now_ms < meta_ms)
        # completions and the upazila's register changes: hourly, with the metadata check
        # (other people's rare edits; NATIONAL.md "Light cycles"). Data-triggered cycles
        # too: on the modem they run every batch_s (15 minutes) on reporting day, as often
        # as the timer, and their two extra reads were 1.3 KB up of each one's ~2.3 KB
        result.light = reason in LIGHT_REASONS and not want_meta and not resume
        if want_meta:
            result.metadata_changes = await self.pull_metadata(root, st, probe)
        index, sent = await self.store.read(lambda c: (load_index(c), push_inflight(c)))
        ctx = self.context(index, sent)
        data_sets = sorted(d["id"] for d in index.list("dataSets"))
        floor = st.get("data_watermark") or None
        if data_sets and not resume:
            floor = await self.pull_data(root, index, ctx, st, data_sets, probe, result)

        subtree = frozenset(index.descendants(root))

        synced = frozenset(data_sets)
        # the cells (data set, period, org unit) this cycle has read at national, each with
        # the time the hub knew national's state from when it read it (None: the first
        # pull's look-back): a key of a read cell is checked if the hub knew it as of that
        # time or later. Checking the cell again before each later chunk of the same form
        # would read back the echo of the earlier chunks each time: on a link that cuts,
        # chunks shrink and a form's cell was read a dozen times (3,001 values read back
        # to push 350)
        checked: dict[tuple[str, str, str], int | None] = {}
        # two chunks are in flight: the second one's check waits for the first's, then
        # finds its cells read, rather than reading them at the same time
        one_at_a_time = asyncio.Lock()

        async def check(keys: Sequence[tuple[str, ...]]) -> bool:
            async with one_at_a_time:
                return await check_cells(keys)

        def covered(cell: tuple[str, str, str], known: int | None) -> bool:
            if cell not in checked:
                return False
            read_from = checked[cell]
            return read_from is None or (known is not None and read_from <= known)

        async def check_cells(keys: Sequence[tuple[str, ...]]) -> bool:
            # keys outside the upazila: national refuses them (and a query naming them)
            mine = [k for k in keys if k[2] in subtree]
            # DHIS2 reads data value sets by data set (or data element group), never by
            # data element: the check names the data sets that hold the chunk's elements
            cells = {k: {(ds, k[1], k[2]) for ds, els in index.ds_elements.items()
                         if ds in synced and k[0] in els} for k in mine}
            known = await self.known_as_of(mine, floor, ctx)
            todo = [(k, kn) for k, kn in zip(mine, known, strict=True)
                    if cells[k] and not all(covered(c, kn) for c in cells[k])]
            if not todo:
                return False
            times = [kn for _k, kn in todo]
            first = None if None in times else min(t for t in times if t is not None)
            for sets, pes, ous in cell_groups(c for k, _kn in todo for c in cells[k]):
                await self.check_keys(pes, ous, sets, first, ctx, result)
                # the read covered each data set x period x org unit it named, from ``first``
                checked.update(((ds, pe, ou), first) for ds in sets for pe in pes
                               for ou in ous)
            return True
        pusher = Pusher(self.store, self.client, self.sizer, probe.clock, self.event,
                        lambda ds, aoc: _aoc_params(index, ds, aoc), form_order(index),
                        default_aoc=index.default_coc, wire_format=self.wire_format,
                        check=check)
        result.push = pusher.stats  # filled in as chunks are acknowledged, even if cut
        try:
            await pusher.push_all(max_failures=self.push_retries,
                                  backoff_base=self.push_backoff_s)
        finally:
            c = result.checked
            if c.conflicts:
                await self.event("warning", "conflict", f"{c.conflicts} conflicts found just "
                                 f"before the push: {c.hub_won} kept the hub's edit, "
                                 f"{c.national_won} national's",
                                 {"code": "conflicts", "n": c.conflicts, "hub": c.hub_won,
                                  "national": c.national_won})
        # the registers after the aggregate forms: monthly reports have deadlines and are
        # small, a month of visits is not; a cut in the tracker push delays no report
        if index.list("programs"):
            await self.sync_tracker(root, index, st, probe, resume, result)

    # -- tracker -------------------------------------------------------------------------------------
    async def sync_tracker(self, root: str, index: MetadataIndex, st: dict[str, str],
                           probe: ProbeResult, resume: bool, result: CycleResult) -> None:
        """Pull national's tracker changes (all of the upazila's since the watermark; on
        a resumed cycle only those of people with something to push, so that the echo
        of a push is not downloaded again; the same on a light cycle), then push."""
        ctx = self.context(index)
        sent = await self.store.read(tracker_pull.echoes)
        if resume or result.light:
            tes = await self.store.read(tracker_sync.known_pending_tes)
            since = pull_since(st.get("tracker_watermark"), probe.server_ms)
            for i in range(0, len(tes), tracker_pull.PAGE_SIZE):
                await self._pull_tracker_pages(
                    {"trackedEntities": ";".join(tes[i:i + tracker_pull.PAGE_SIZE]),
                     "updatedAfter": since}, ctx, sent, result, None)
        else:
            await self._pull_tracker_pages(
                {"orgUnits": root, "orgUnitMode": "DESCENDANTS",
                 "updatedAfter": pull_since(st.get("tracker_watermark"), probe.server_ms)},
                ctx, sent, result,
                {"tracker_watermark": advance(st.get("tracker_watermark"), probe.server_date)})
        if result.tracker_pull.conflicts:
            p = result.tracker_pull
            await self.event("warning", "conflict", f"{p.conflicts} tracker conflicts: "
                             f"{p.hub_won} kept the hub's edit, {p.national_won} national's",
                             {"code": "conflicts", "n": p.conflicts, "hub": p.hub_won,
                              "national": p.national_won, "tracker": True})
        pusher = TrackerPusher(self.store, self.client, probe.clock, self.event,
                               int(self.config.get("sync", "tracker_chunk_rows") or 8000))
        result.tracker_push = pusher.stats
        await pusher.push_all(max_failures=self.push_retries, backoff_base=self.push_backoff_s)

    async def _pull_tracker_pages(self, query: dict[str, Any], ctx: apply.Context,
                                  sent: tracker_pull.Echoes, result: CycleResult,
                                  done_state: dict[str, Any] | None) -> None:
        page = 1
        while True:
            data = await self.client.get_json("/api/tracker/trackedEntities", {
                **query, "includeDeleted": "true", "fields": tracker_pull.FIELDS,
                "order": "updatedAt:asc", "page": page, "pageSize": tracker_pull.PAGE_SIZE},
                category=PULL)
            items = data.get("trackedEntities", data.get("instances")) \
                if isinstance(data, dict) else None
            if not isinstance(items, list):
                raise SyncError("national's trackedEntities reply has no trackedEntities list")
            last = len(items) < tracker_pull.PAGE_SIZE
            extra = done_state if last else None
            if not items:
                self._defer(extra)
                return

            def write(tx: Any, page_items: list[Any] = items, fin: dict[str, Any] | None = extra
                      ) -> tracker_pull.TrackerPullStats:
                stats = tracker_pull.apply_page(tx, page_items, ctx, sent)
                if fin:  # the watermark moves once every page is applied
                    state.set_state(tx, fin)
                return stats
            result.tracker_pull.add(await self.store.write(write))
            if last:
                return
            page += 1

    async def _root(self, st: dict[str, str]) -> str:
        root = self.config.get("hub", "org_unit") or st.get("root_org_unit")
        if root:
            return str(root)
        me = await self.client.get_json("/api/me", {"fields": "id,organisationUnits[id]"})
        ous = [o.get("id") for o in (me.get("organisationUnits") or []) if isinstance(o, dict)]
        if len(ous) != 1:
            raise SyncError("set [hub] org_unit: the national account is assigned to "
                            f"{len(ous)} org units, so the hub's upazila is ambiguous")
        await self._set(root_org_unit=ous[0])
        return str(ous[0])

    # -- metadata ---------------------------------------------------------------------------------------
    async def pull_metadata(self, root: str, st: dict[str, str], probe: ProbeResult) -> int:
        """National's metadata changes since the watermark, in pages (``metadata.py``): a
        cut resumes at the page it reached, and nothing reaches the forms (nor moves the
        watermark) before every page of every collection is in."""
        watermark = st.get("metadata_watermark") or None
        rnd = metadata.load_round(st.get(metadata.ROUND_KEY), root, watermark)
        puller = metadata.MetadataPull(self.client, root, int(
            self.config.get("sync", "metadata_page_size") or metadata.PAGE_SIZE),
            fresh=rnd is None)
        if rnd is None:
            since = pull_since(watermark, probe.server_ms) if watermark else None
            full = st.get("metadata_full_ms", "")
            if since is not None and self.metadata_gate and full.isdigit() and \
                    0 <= probe.server_ms - int(full) < METADATA_FULL_EVERY_MS:
                changed = await metadata.anything_changed(self.client, since)
                self.metadata_gate = changed is not None
                if changed is False:  # nothing to fetch: the watermark moves at the end
                    self._defer({"metadata_watermark": advance(watermark, probe.server_date)
                                 or probe.server_date, "metadata_pulled_ms": probe.server_ms})
                    return 0
            rnd = metadata.new_round(root, watermark, since, probe.server_date, probe.server_ms)
        changes = await puller.run(self.store, rnd, at=probe.server_date, done_state={
            "metadata_watermark": advance(watermark, rnd["started"]) or rnd["started"],
            "metadata_pulled_ms": probe.server_ms, "metadata_full_ms": rnd["started_ms"]},
            defer=self._defer)
        self.metadata_stats = puller.stats
        if changes.count:
            await self.event("info", "metadata", f"{changes.count} metadata changes applied "
                             f"({', '.join(f'{t}: {len(v)}' for t, v in changes.put.items())})",
                             {"code": "metadata", "n": changes.count})
        return changes.count

    # -- data ---------------------------------------------------------------------------------------------
    async def _apply_values(self, values: Sequence[Any], ctx: apply.Context,
                            extra_state: dict[str, Any] | None, result: CycleResult) -> None:
        parsed = [p for p in (apply.Pulled.value_from(v, ctx.tz) for v in values) if p]
        result.pulled_values += len(parsed)
        if not parsed:
            self._defer(extra_state)  # nothing came: the watermark can wait for the end
            return
        for i in range(0, len(parsed), APPLY_BATCH):
            batch = parsed[i:i + APPLY_BATCH]
            last = i + APPLY_BATCH >= len(parsed)

            def write(tx: Any, b: list[apply.Pulled] = batch, done: bool = last) -> apply.PullStats:
                stats = apply.apply_values(tx, b, ctx)
                if done and extra_state:  # the watermark moves with the last batch applied
                    state.set_state(tx, extra_state)
                return stats
            result.pull.add(await self.store.write(write))

    async def pull_data(self, root: str, index: MetadataIndex, ctx: apply.Context,
                        st: dict[str, str], data_sets: list[str], probe: ProbeResult,
                        result: CycleResult) -> str | None:
        """Everything national changed in the subtree since the watermark; returns the
        watermark it moved to.

        A *round* asks for the whole subtree at once; a reply cut off by the link (too
        big for the time the link stays up) is split by org units and asked again in
        pieces. The round is persisted, so a cut cycle resumes with the pieces left, and
        the watermark moves (to national's serverDate at the round's start) only when
        every piece is applied."""
        rnd = _load_round(st.get("pull_round"))
        if rnd is None or not 0 <= probe.server_ms - rnd["started_ms"] < ROUND_MAX_MS:
            rnd = {"since": pull_since(st.get("data_watermark"), probe.server_ms),
                   "started": probe.server_date, "started_ms": probe.server_ms,
                   "todo": [[WHOLE]]}
        subtree = sorted(index.descendants(root))

        watermark = advance(st.get("data_watermark"), rnd["started"])

        def finished() -> dict[str, Any]:
            return {"data_watermark": watermark, "last_full_pull": rnd["started_ms"],
                    "pull_round": ""}

        await self._pull_pieces(rnd, root, subtree, data_sets, None, ctx, result,
                                persist=True, done_state=finished)
        if not result.light:  # its watermark stays: the next read covers the skipped hour
            await self.pull_registrations(root, index, ctx, st, data_sets, probe, result)
        checked = st.get("registrations_checked_ms", "")
        if result.reason in CHECK_UNCOMPLETES_REASONS or not checked.isdigit() or \
                not 0 <= probe.server_ms - int(checked) < CHECK_UNCOMPLETES_EVERY_MS:
            await self.check_uncompletes(root, index, data_sets, probe, result)
        await self.pull_approvals(root, index, st, probe, result)
        if result.pull.conflicts:
            await self.event("warning", "conflict", f"{result.pull.conflicts} conflicts: "
                             f"{result.pull.hub_won} kept the hub's edit, "
                             f"{result.pull.national_won} national's",
                             {"code": "conflicts", "n": result.pull.conflicts,
                              "hub": result.pull.hub_won, "national": result.pull.national_won})
        return watermark

    async def pull_registrations(self, root: str, index: MetadataIndex, ctx: apply.Context,
                                 st: dict[str, str], data_sets: list[str],
                                 probe: ProbeResult, result: CycleResult) -> None:
        """National's completions in the subtree since the registration watermark."""
        since_r = pull_since(st.get("registration_watermark"), probe.server_ms)
        regs = await self.client.get_json("/api/completeDataSetRegistrations", {
            "dataSet": data_sets, "orgUnit": root, "children": "true", "lastUpdated": since_r,
            "paging": "false"}, category=PULL)
        items = regs.get("completeDataSetRegistrations") if isinstance(regs, dict) else None
        if not isinstance(items, list):
            items = []
        await self._apply_registrations(items, index, ctx, {
            "registration_watermark": advance(st.get("registration_watermark"),
                                              probe.server_date)}, result)

    async def _pull_pieces(self, rnd: dict[str, Any], root: str, subtree: list[str],
                           data_sets: list[str], periods: list[str] | None,
                           ctx: apply.Context, result: CycleResult, *, persist: bool,
                           done_state: Callable[[], dict[str, Any]] | None) -> None:
        todo: list[list[str]] = [list(p) for p in rnd["todo"]]
        while todo:
            piece = todo[0]
            ous = subtree if piece == [WHOLE] else piece
            params: dict[str, Any] = {"dataSet": data_sets, "lastUpdated": rnd["since"],
                                      "includeDeleted": "true", "paging": "false"}
            if piece == [WHOLE]:
                params.update(orgUnit=root, children="true")
            else:
                params["orgUnit"] = piece
            if periods:
                params["period"] = periods
            try:
                values = await self.wire_format.get_values(
                    self.client, params, cut_retries=0 if len(ous) > 1 else None,
                    store=self.store, event=self.event)
            except LinkDown as e:
                if e.error_code not in ("cut", "timeout") or len(ous) <= 1:
                    raise
                half = len(ous) // 2
                todo = [ous[:half], ous[half:], *todo[1:]]
                rnd["todo"] = todo
                if persist:
                    await self._set(pull_round=json.dumps(rnd))
                await self.event("warning", "pull", f"national's reply was cut off; asking "
                                 f"again in pieces of {half} org units",
                                 {"code": "pieces", "n": half})
                continue
            todo = todo[1:]
            rnd["todo"] = todo
            extra: dict[str, Any] | None = None
            if persist:
                extra = {"pull_round": json.dumps(rnd)} if todo else (
                    done_state() if done_state else {})
            await self._apply_values(values, ctx, extra, result)

    async def check_uncompletes(self, root: str, index: MetadataIndex, data_sets: list[str],
                                probe: ProbeResult, result: CycleResult) -> None:
        """Forms un-completed at national: DHIS2 deletes the registration, so the pull by
        ``lastUpdated`` never shows it. The hub asks for the registrations of the periods
        in which it holds accepted ones (changed in the last year) and takes back those
        national no longer lists."""
        since = format_ts(probe.server_ms - UNCOMPLETE_LOOKBACK_MS)
        held = await self.store.read(lambda c: dv.synced_registrations(c, data_sets, since))
        gone: list[tuple[str, str, str, str]] = []
        if held:
            periods = sorted({k[1] for k in held})
            regs = await self.client.get_json("/api/completeDataSetRegistrations", {
                "dataSet": data_sets, "orgUnit": root, "children": "true", "period": periods,
                "paging": "false"}, category=PULL)
            items = regs.get("completeDataSetRegistrations") if isinstance(regs, dict) else None
            if not isinstance(items, list):
                return  # not an answer to judge by: nothing is taken back
            default_aoc = index.default_coc or ""
            listed = {p.key for p in (apply.Pulled.registration_from(r, default_aoc)
                                      for r in items if isinstance(r, dict))
                      if p is not None and p.value == "true" and not p.deleted}
            gone = sorted(held - listed)

        checked = {"registrations_checked_ms": str(probe.server_ms)}
        if not gone:
            self._defer(checked)
            return

        def write(tx: Any) -> int:
            n = apply.apply_national_uncompletes(tx, gone)
            state.set_state(tx, checked)
            return n
        n = await self.store.write(write)
        result.pull.applied += n
        if n:
            await self.event("info", "pull", f"national un-completed {n} forms the hub held "
                             "as complete; the hub shows them not complete",
                             {"code": "uncompleted", "n": n})

    async def pull_approvals(self, root: str, index: MetadataIndex, st: dict[str, str],
                             probe: ProbeResult, result: CycleResult) -> None:
        """National's approval states of the forms that matter now (``approvals.py``),
        before anything is pushed: a form national approved is locked at the hub, one it
        unapproved is open again."""
        flows = approvals_pure.workflows(index.list("dataSets"))
        national = await self.store.read(approvals_db.national_approvals)
        if not flows and not national:
            return  # no data set has a workflow: nothing can be approved
        checked = st.get("approvals_checked_ms", "")
        sweep = result.reason in approvals.SWEEP_REASONS or not checked.isdigit() or \
            not 0 <= probe.server_ms - int(checked) < approvals.SWEEP_EVERY_MS

        def read(c: Any) -> tuple[list[str], set[str]]:
            return (pending_org_units_periods(c)[1], dv.held_periods(c) if sweep else set())
        pending, held = await self.store.read(read)
        asks = approvals.plan(index, root, national_date(probe), pending=pending, held=held,
                              national=national if sweep else ())
        answer = approvals.Answer()
        stats = result.approvals
        try:
            for ask in asks:
                stats.requests += 1
                stats.asked += ask.size
                items = await self.client.get_json("/api/dataApprovals/multiple", ask.params())
                answer.add(*approvals.read_reply(ask, items, flows, index.default_coc or ""))
        except NationalRejected as e:
            if e.error_code in ("401", "403"):
                raise
            # approvals only show at the hub what national enforces anyway: a national
            # that cannot answer them must not stop the push
            await self.event("warning", "approvals", f"approval states not read: {e.message}",
                             {"code": "approvals-failed"})
            return
        answer.without_workflow(national, {ds for dss in flows.values() for ds in dss})
        if not sweep and not answer.changes(national):
            return  # as the hub holds it already: no commit
        at = probe.server_date

        def write(tx: Any) -> tuple[int, int]:
            n = approvals_db.apply_national(tx, answer.approved, answer.unapproved, at)
            if sweep:
                state.set_state(tx, {"approvals_checked_ms": str(probe.server_ms)})
            return n
        stats.locked, stats.unlocked = await self.store.write(write)
        if stats.locked or stats.unlocked:
            await self.event("info", "approvals", f"national approved {stats.locked} and "
                             f"unapproved {stats.unlocked} forms; the hub locks what is "
                             "approved", {"code": "approvals", "locked": stats.locked,
                                          "unlocked": stats.unlocked})

    async def _apply_registrations(self, items: list[Any], index: MetadataIndex,
                                   ctx: apply.Context, extra: dict[str, Any],
                                   result: CycleResult) -> None:
        default_aoc = index.default_coc or ""
        parsed = [p for p in (apply.Pulled.registration_from(r, default_aoc, ctx.tz)
                              for r in items if isinstance(r, dict)) if p]
        result.pulled_registrations += len(parsed)
        if not parsed:
            self._defer(extra)
            return

        def write(tx: Any) -> apply.PullStats:
            stats = apply.apply_registrations(tx, parsed, ctx)
            if extra:
                state.set_state(tx, extra)
            return stats
        result.pull.add(await self.store.write(write))

    async def known_as_of(self, keys: Sequence[tuple[str, ...]], floor: str | None,
                          ctx: apply.Context) -> list[int | None]:
        """When the hub last knew national's state of each key (national ms): the later
        of ``floor`` (the full pull's watermark, every key) and the key's ``base`` (what
        national said last, or when it acknowledged the hub's push of it); None for a key
        known by neither (the first pull's look-back then applies)."""
        bases = await self.store.read(lambda c: dv.bases(c, "datavalue", keys))
        floor_ms = parse_ts(floor) if floor else None
        known: list[int | None] = []
        for b in bases:
            seen = [x for x in (parse_ts(b, ctx.tz) if b else None, floor_ms) if x is not None]
            known.append(max(seen) if seen else None)
        return known

    async def check_keys(self, periods: list[str], ous: list[str], data_sets: list[str],
                         first: int | None, ctx: apply.Context, result: CycleResult) -> None:
        """National's values of a chunk's cells (the data sets holding its data elements x
        its periods x its org units: DHIS2 reads no narrower) changed since ``first``,
        the earliest time the hub knew its keys as of (``known_as_of``), read just before
        the chunk's POST and applied like a pull: a national edit of a pending key is a
        conflict, not overwritten. A key the hub pushed before brings back only what
        changed since, not the echo since the last full pull."""
        assert self.clock is not None
        if not data_sets:
            return
        sent = await self.store.read(push_inflight)
        now_ms = self.clock.now_ms()
        since = pull_since(format_ts(first) if first is not None else None, now_ms)
        try:
            values = await self._check_pieces(data_sets, periods, ous, since)
        except NationalRejected as e:
            if e.error_code in ("401", "403"):
                raise
            # e.g. a data element national deleted: its refusal of the POST says which
            # value; a check that cannot be made must not hold the push up for ever
            await self.event("warning", "pull", f"national refused the check before a push "
                             f"({e.message}); the chunk goes unchecked",
                             {"code": "check-failed"})
            return
        parsed = [p for p in (apply.Pulled.value_from(v, ctx.tz) for v in values) if p]
        result.pulled_values += len(parsed)
        # chunks cut earlier in this cycle are in flight too: their echo is no conflict
        now_ctx = dataclasses.replace(ctx, inflight=sent, now_national_ms=now_ms)
        for i in range(0, len(parsed), APPLY_BATCH):
            def write(tx: Any, b: list[apply.Pulled] = parsed[i:i + APPLY_BATCH]
                      ) -> apply.PullStats:
                return apply.apply_values(tx, b, now_ctx)
            stats = await self.store.write(write)
            result.pull.add(stats)
            result.checked.add(stats)

    async def _check_pieces(self, data_sets: list[str], periods: list[str], ous: list[str],
                            since: str) -> list[Any]:
        """The check's read; a reply cut short is asked for again in halves of its org units
        (a reply longer than the link stays up never arrives whole), as the pull does."""
        values: list[Any] = []
        todo = [ous]
        while todo:
            piece, todo = todo[0], todo[1:]
            try:
                values += await self.wire_format.get_values(self.client, {
                    "dataSet": data_sets, "period": periods, "orgUnit": piece,
                    "lastUpdated": since, "includeDeleted": "true", "paging": "false"},
                    cut_retries=0 if len(piece) > 1 else None, store=self.store,
                    event=self.event)
            except LinkDown as e:
                if e.error_code not in ("cut", "timeout") or len(piece) <= 1:
                    raise
                half = len(piece) // 2
                todo = [piece[:half], piece[half:], *todo]
        return values


def cell_groups(cells: Iterable[tuple[str, str, str]]
                ) -> list[tuple[list[str], list[str], list[str]]]:
    """The reads (data sets, periods, org units) that cover ``cells`` (data set, period,
    org unit), crossing data sets and periods only within an org unit: DHIS2 reads data
    sets x periods x org units, so org units that need the same data sets and periods
    share a read. One read of the whole cross product would also bring back the echo of
    the same clinics' forms pushed in an earlier cycle (a chunk holding one clinic's last
    form and the next clinic's first read both clinics' every form): on reporting day
    that was a third of a value read back per value pushed."""
    need: dict[str, tuple[set[str], set[str]]] = {}
    for ds, pe, ou in cells:
        sets, pes = need.setdefault(ou, (set(), set()))
        sets.add(ds)
        pes.add(pe)
    groups: dict[tuple[tuple[str, ...], tuple[str, ...]], list[str]] = {}
    for ou, (sets, pes) in sorted(need.items()):
        groups.setdefault((tuple(sorted(sets)), tuple(sorted(pes))), []).append(ou)
    return [(list(sets), list(pes), ous) for (sets, pes), ous in sorted(groups.items())]


def national_date(probe: ProbeResult) -> date:
    """National's today, in its time zone: which periods are open is its call."""
    try:
        zone: tzinfo = ZoneInfo(probe.time_zone)
    except (ValueError, KeyError, ZoneInfoNotFoundError):
        zone = UTC
    return datetime.fromtimestamp(probe.server_ms / 1000, zone).date()


def _load_round(text: str | None) -> dict[str, Any] | None:
    try:
        rnd = json.loads(text) if text else None
    except ValueError:
        return None
    if not isinstance(rnd, dict) or not isinstance(rnd.get("todo"), list) or \
            not isinstance(rnd.get("started_ms"), int) or not rnd.get("since"):
        return None
    return rnd


def _aoc_params(index: MetadataIndex, ds: str, aoc: str) -> dict[str, str]:
    """``cc``/``cp`` for un-completing a form with a non-default attribute option combo."""
    if not aoc or aoc == index.default_coc:
        return {}
    ds_doc = index.get_typed("dataSets", ds) or {}
    coc = index.get_typed("categoryOptionCombos", aoc) or {}
    cc = (ds_doc.get("categoryCombo") or {}).get("id")
    opts = [o["id"] for o in coc.get("categoryOptions") or [] if isinstance(o, dict)]
    return {"cc": cc, "cp": ";".join(opts)} if cc and opts else {}

