"""Clock offset between the hub and national, and placing hub edits on national's time line.

Pure logic. Inputs are numbers the I/O layer measured:

* a probe gives the local wall time before sending and after receiving, national's
  ``serverDate`` (ms resolution) and its ``Date`` header (1 s resolution). National's
  clock read happened between send and receive, so each gives an *interval* for the
  offset (national - hub wall); intersecting the intervals is the estimate (NTP-style,
  without assuming symmetric delays).
* ``NationalClock`` turns one probe plus the monotonic clock into "national now", immune
  to the hub's wall clock being stepped (no RTC, NTP arriving late).
* ``place_edit`` puts a local edit's HLC stamp on national's time line using the anchors
  the worker recorded around it (HLC stamp, national time). Between anchors the HLC's own
  elapsed time is used; the result is clamped between the anchors, so a wall clock stepped
  backwards (HLC pinned) or forwards errs by at most the anchor spacing.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from pathlib import Path

from ..store.hlc import physical_ms


def mono() -> float:
    """Seconds on a clock that never steps and counts suspend (CLOCK_BOOTTIME on Linux)."""
    try:
        return time.clock_gettime(time.CLOCK_BOOTTIME)
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return time.monotonic()


@functools.cache
def boot_id() -> str:
    """Identifies this boot: monotonic readings only compare within one."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:  # pragma: no cover - not Linux
        import uuid
        return f"proc-{uuid.uuid4()}"


@dataclass(frozen=True)
class Interval:
    lo: float
    hi: float

    @property
    def mid(self) -> float:
        return (self.lo + self.hi) / 2

    @property
    def width(self) -> float:
        return self.hi - self.lo

    def intersect(self, other: Interval) -> Interval | None:
        lo, hi = max(self.lo, other.lo), min(self.hi, other.hi)
        return Interval(lo, hi) if lo <= hi else None


def offset_interval(sent_ms: float, recv_ms: float, server_lo_ms: float,
                    server_hi_ms: float) -> Interval:
    """Offset (national - local) consistent with national reading its clock in [sent, recv].

    ``server_lo..server_hi`` is what national's clock said (a ``Date`` header of second
    resolution is ``[d, d + 999]``; a ``serverDate`` is ``[s, s]``).
    """
    if recv_ms < sent_ms:  # the local wall clock was stepped during the request
        sent_ms, recv_ms = recv_ms, sent_ms
    return Interval(server_lo_ms - recv_ms, server_hi_ms - sent_ms)


def estimate_offset(sent_ms: float, recv_ms: float, server_date_ms: float | None,
                    http_date_ms: float | None) -> Interval | None:
    """Best interval for national - local from one exchange (either source may be missing)."""
    parts = []
    if server_date_ms is not None:
        parts.append(offset_interval(sent_ms, recv_ms, server_date_ms, server_date_ms))
    if http_date_ms is not None:
        parts.append(offset_interval(sent_ms, recv_ms, http_date_ms, http_date_ms + 999))
    if not parts:
        return None
    best = parts[0]
    for p in parts[1:]:
        both = best.intersect(p)
        # disagreeing sources (a proxy rewrote Date?): trust serverDate, which comes first
        best = both if both is not None else best
    return best


class OffsetTracker:
    """Keeps the tightest offset interval seen while samples stay consistent.

    A sample that does not overlap the current interval means one of the clocks was
    stepped: start again from that sample. Samples older than ``max_age_s`` are dropped
    (clocks drift a little).
    """

    def __init__(self, max_age_s: float = 3600.0) -> None:
        self.max_age_s = max_age_s
        self.interval: Interval | None = None
        self._since = 0.0

    def add(self, sample: Interval, now_mono: float) -> Interval:
        cur = self.interval
        if cur is not None and now_mono - self._since <= self.max_age_s:
            both = cur.intersect(sample)
            if both is not None:
                self.interval = both
                return both
        self.interval = sample
        self._since = now_mono
        return sample

    @property
    def offset_ms(self) -> float:
        return self.interval.mid if self.interval is not None else 0.0


@dataclass(frozen=True)
class NationalClock:
    """National time now, from one probe and the monotonic clock (not the wall clock)."""

    server_ms: int        # national's serverDate in the probe reply
    mono_sent: float      # mono() just before the probe was sent
    mono_recv: float      # ... and just after its reply arrived

    @property
    def mid_ms(self) -> float:
        return (self.mono_sent + self.mono_recv) / 2 * 1000

    def at_mono_ms(self, mono_ms: float) -> int:
        """National time at a reading of mono() (in ms) of this boot."""
        return int(self.server_ms + mono_ms - self.mid_ms)

    def now_ms(self, now: float | None = None) -> int:
        now = mono() if now is None else now
        return self.at_mono_ms(now * 1000)

    def lower_ms(self, now: float | None = None) -> int:
        """A time national's clock has certainly passed already."""
        now = mono() if now is None else now
        return int(self.server_ms + (now - self.mono_recv) * 1000) - 1

    def upper_ms(self, now: float | None = None) -> int:
        """A time national's clock has certainly not passed yet (for acknowledgement bases)."""
        now = mono() if now is None else now
        return int(self.server_ms + (now - self.mono_sent) * 1000) + 1


@dataclass(frozen=True)
class Anchor:
    hlc: int
    national_ms: int


def place_edit(stamp: int, below: Anchor | None, above: Anchor | None, now_national_ms: int,
               offset_ms: float) -> int:
    """National-time estimate of a hub edit stamped ``stamp``.

    ``below``/``above`` are the nearest anchors with ``hlc <= stamp`` / ``hlc >= stamp``.
    Without an anchor below, the current offset is applied to the stamp's wall part.
    """
    phys = physical_ms(stamp)
    if below is not None:
        est = below.national_ms + (phys - physical_ms(below.hlc))
        lo = below.national_ms
    else:
        est = int(phys + offset_ms)
        lo = None
    hi = above.national_ms if above is not None else now_national_ms
    if lo is not None and est < lo:
        est = lo
    if est > hi:
        est = hi
    return int(est)
