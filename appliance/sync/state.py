"""The sync worker's shared bookkeeping: ``sync_state`` keys, the bounded event log, byte
counters and clock anchors, and how many of each are kept (the SQL is ``store.synclog``'s).

Keys others read (``/api/hub/status``, the health agent): link, last_success,
last_attempt, last_error, clock_offset_s, syncing, bytes_sent, bytes_received (cumulative;
the same bytes by local day and category are ``store.wirebytes``'s, added in the same
commit). The
worker's own keys: data_watermark, registration_watermark, metadata_watermark,
last_full_pull (national ms), national_version, root_org_unit.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Mapping
from typing import Any, Protocol

from ..store import synclog
from ..store.datavalues import oldest_pending_hlc
from ..store.db import Tx, persisted_hlc
from ..store.hlc import physical_ms
from ..store.synclog import (
    add_bytes,
    fill_anchors,
    last_anchor,
    read_state,
    set_state,
    write_anchor,
)
from .clock import Anchor

__all__ = [
    "ANCHORS_KEPT", "EVENTS_KEPT", "EventFn", "add_bytes", "add_event", "anchors_around", "fill_anchors",
    "hlc_drift_ms", "last_anchor", "persisted_hlc", "prune_anchors", "read_state",
    "set_state", "write_anchor",
]

EVENTS_KEPT = 1000
ANCHORS_KEPT = 5000


def add_event(tx: Tx, level: str, kind: str, message: str, at: str,
              data: Mapping[str, Any] | None = None) -> None:
    """``message``: the English line for the logs; ``data``: what it says for the status
    page to word ({"code": ..., its numbers}; appliance/hub/events.py)."""
    # bounded: the status page shows the last few; keep the last EVENTS_KEPT
    synclog.add_event(tx, level, kind, message, at, keep=EVENTS_KEPT, data=data)


class EventFn(Protocol):
    """The sync engine's ``event``, as the pushers call it."""

    def __call__(self, level: str, kind: str, message: str,
                 data: Mapping[str, Any] | None = None) -> Awaitable[None]: ...


# -- clock anchors ------------------------------------------------------------------------------
def anchors_around(conn: sqlite3.Connection, stamp: int) -> tuple[Anchor | None, Anchor | None]:
    lo, hi = synclog.anchors_around(conn, stamp)
    return (Anchor(*lo) if lo else None, Anchor(*hi) if hi else None)


def prune_anchors(tx: Tx, boot: str) -> None:
    """Keep what can still place a pending edit: the newest known anchor at or below the
    oldest pending stamp and every anchor after it (at most ANCHORS_KEPT), plus this
    boot's anchors still waiting for national's time. Nothing pending: the newest only."""
    oldest_pending = oldest_pending_hlc(tx.conn)
    if oldest_pending is None:
        cut = synclog.newest_known_anchor(tx.conn)
    else:
        cut = synclog.newest_known_anchor(tx.conn, oldest_pending)
        nth = synclog.nth_newest_anchor(tx.conn, ANCHORS_KEPT)
        if nth is not None:
            cut = nth if cut is None else max(cut, nth)
    if cut is not None:
        synclog.delete_anchors_before(tx, cut, boot)
    # offline anchors of an earlier boot can never learn national's time
    synclog.delete_orphan_anchors(tx, boot)


def hlc_drift_ms(hlc: int, mono_ms: int) -> int:
    """The HLC's wall part against the monotonic clock: constant while the HLC tracks
    real time, changing when the wall clock steps or the HLC is pinned."""
    return physical_ms(hlc) - mono_ms
