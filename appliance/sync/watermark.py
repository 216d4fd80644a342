"""Incremental pull watermarks (pure).

The watermark is national's own ``serverDate`` read *before* a pull starts (never the
hub's clock), stored once everything that pull returned has been applied. The next pull
asks for ``lastUpdated >= watermark - overlap``: DHIS2 stamps ``lastUpdated`` when a value
is written, but the transaction may commit a little later, so a value stamped just before
our serverDate could be invisible to the pull that read it. Re-reading the overlap is
harmless: applying a pulled value is idempotent.
"""

from __future__ import annotations

from ..dhis2.timefmt import format_ts, parse_ts

OVERLAP_MS = 60_000
# First pull: everything national changed in the last ~13 months, which covers every
# period a hub still edits (the Android SDK pulls 12 monthly periods).
INITIAL_LOOKBACK_MS = 400 * 24 * 3600 * 1000


def pull_since(watermark: str | None, national_now_ms: int,
               overlap_ms: int | None = None) -> str:
    """The ``lastUpdated`` parameter for the next pull."""
    ms = parse_ts(watermark) if watermark else None
    if ms is None:
        return format_ts(national_now_ms - INITIAL_LOOKBACK_MS)
    # OVERLAP_MS read at call time: tests shorten it to reach past it in seconds
    return format_ts(ms - (OVERLAP_MS if overlap_ms is None else overlap_ms))


def advance(current: str | None, server_date_before_pull: str) -> str | None:
    """The watermark to store after a pull that began at ``server_date_before_pull``.

    National's serverDate as it was, even if it is earlier than ``current``: when
    national's clock is stepped back, values it stamps afterwards carry the earlier
    times, and only a watermark that follows national's clock will see them (re-reading
    what was already applied is harmless).
    """
    ms = parse_ts(server_date_before_pull)
    if ms is None:  # unreadable serverDate: keep what we had
        return current
    return format_ts(ms)
