"""Hybrid logical clock.

A stamp is one 64-bit integer: wall milliseconds in the high 48 bits, a counter in
the low 16. Stamps only ever grow: after a power cut the Pi has no RTC and may boot
with a clock earlier than before, so the persisted high-water mark (see
``Store``) is folded in before the first stamp is handed out.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from ..dhis2.timefmt import format_ts

COUNTER_BITS = 16
COUNTER_MASK = (1 << COUNTER_BITS) - 1


def pack(ms: int, counter: int = 0) -> int:
    return (ms << COUNTER_BITS) | (counter & COUNTER_MASK)


def physical_ms(stamp: int) -> int:
    return stamp >> COUNTER_BITS


def to_iso(stamp: int) -> str:
    """The stamp's wall part as DHIS2's ``yyyy-MM-ddTHH:mm:ss.SSS`` (UTC)."""
    return format_ts(physical_ms(stamp))


class HLC:
    """Thread-safe HLC; ``wall`` is injectable so tests can set the clock back."""

    def __init__(self, last: int = 0, wall: Callable[[], float] = time.time) -> None:
        self._last = last
        self._wall = wall
        self._lock = threading.Lock()

    @property
    def last(self) -> int:
        return self._last

    def now(self) -> int:
        with self._lock:
            wall = pack(int(self._wall() * 1000))
            self._last = wall if wall > self._last else self._last + 1
            return self._last

    def observe(self, remote: int) -> int:
        """Merge a stamp seen elsewhere (e.g. national's corrected lastUpdated)."""
        with self._lock:
            wall = pack(int(self._wall() * 1000))
            self._last = max(wall, self._last + 1, remote + 1)
            return self._last

    def advance_to(self, floor: int) -> None:
        with self._lock:
            if floor > self._last:
                self._last = floor
