"""The sync worker's shared bookkeeping in the store: ``sync_state`` keys, the bounded
event log, byte counters and clock anchors.

Keys others read (``/api/hub/status``, the health agent): link, last_success,
last_attempt, last_error, clock_offset_s, syncing, bytes_sent, bytes_received. The
worker's own keys: data_watermark, registration_watermark, metadata_watermark,
last_full_pull (national ms), national_version, root_org_unit.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from ..store.db import Tx
from ..store.hlc import physical_ms
from .clock import Anchor

EVENTS_KEPT = 1000
ANCHORS_KEPT = 5000


def iso_wall(wall_s: float) -> str:
    """Hub wall time as ISO-8601 UTC with Z (what the health agent compares with)."""
    dt = datetime.fromtimestamp(wall_s, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(wall_s * 1000) % 1000:03d}Z"


def set_state(tx: Tx, values: Mapping[str, Any]) -> None:
    tx.executemany(
        "INSERT INTO sync_state(key, value) VALUES (?, ?) "
        "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
        [(k, "" if v is None else str(v)) for k, v in values.items()])


def del_state(tx: Tx, *keys: str) -> None:
    tx.executemany("DELETE FROM sync_state WHERE key=?", [(k,) for k in keys])


def read_state(conn: sqlite3.Connection) -> dict[str, str]:
    return {k: v for k, v in conn.execute("SELECT key, value FROM sync_state")}


def add_bytes(tx: Tx, sent: int, received: int) -> None:
    """Cumulative wire bytes (the status page shows totals)."""
    for key, n in (("bytes_sent", sent), ("bytes_received", received)):
        if n:
            tx.execute("INSERT INTO sync_state(key, value) VALUES (?, ?) ON CONFLICT(key) DO "
                       "UPDATE SET value = CAST(CAST(value AS INTEGER) + ? AS TEXT)",
                       (key, str(n), n))


def add_event(tx: Tx, level: str, kind: str, message: str, at: str) -> None:
    cur = tx.execute("INSERT INTO sync_event(at, level, kind, message) VALUES (?,?,?,?)",
                     (at, level, kind, message[:2000]))
    # bounded: the status page shows the last few; keep the last EVENTS_KEPT
    tx.execute("DELETE FROM sync_event WHERE id <= ?", ((cur.lastrowid or 0) - EVENTS_KEPT,))


# -- clock anchors ------------------------------------------------------------------------------
def write_anchor(tx: Tx, boot: str, mono_ms: int, wall_ms: int, national_ms: int | None) -> int:
    stamp = tx.stamp()
    tx.execute("INSERT OR REPLACE INTO sync_clock_anchor(hlc, boot_id, mono_ms, wall_ms, "
               "national_ms) VALUES (?,?,?,?,?)", (stamp, boot, mono_ms, wall_ms, national_ms))
    return stamp


def last_anchor(conn: sqlite3.Connection, boot: str) -> tuple[int, int] | None:
    """(hlc, mono_ms) of this boot's newest anchor."""
    row = conn.execute("SELECT hlc, mono_ms FROM sync_clock_anchor WHERE boot_id=? "
                       "ORDER BY hlc DESC LIMIT 1", (boot,)).fetchone()
    return (row[0], row[1]) if row else None


def fill_anchors(tx: Tx, boot: str, server_ms: int, mid_ms: float) -> int:
    """Give this boot's anchors recorded offline their national time, now that a probe
    related this boot's monotonic clock to national's."""
    cur = tx.execute("UPDATE sync_clock_anchor SET national_ms = ? + mono_ms - ? "
                     "WHERE boot_id=? AND national_ms IS NULL", (server_ms, int(mid_ms), boot))
    return cur.rowcount


def anchors_around(conn: sqlite3.Connection, stamp: int) -> tuple[Anchor | None, Anchor | None]:
    lo = conn.execute("SELECT hlc, national_ms FROM sync_clock_anchor WHERE hlc <= ? AND "
                      "national_ms IS NOT NULL ORDER BY hlc DESC LIMIT 1", (stamp,)).fetchone()
    hi = conn.execute("SELECT hlc, national_ms FROM sync_clock_anchor WHERE hlc >= ? AND "
                      "national_ms IS NOT NULL ORDER BY hlc ASC LIMIT 1", (stamp,)).fetchone()
    return (Anchor(lo[0], lo[1]) if lo else None, Anchor(hi[0], hi[1]) if hi else None)


def prune_anchors(tx: Tx, boot: str) -> None:
    """Keep what can still place a pending edit: the newest known anchor at or below the
    oldest pending stamp and every anchor after it (at most ANCHORS_KEPT), plus this
    boot's anchors still waiting for national's time. Nothing pending: the newest only."""
    oldest_pending = tx.execute(
        "SELECT min(h) FROM (SELECT min(hlc) AS h FROM datavalue WHERE sync_state='pending' "
        "UNION ALL SELECT min(hlc) FROM complete_registration WHERE sync_state='pending')"
    ).fetchone()[0]
    known = "national_ms IS NOT NULL"
    if oldest_pending is None:
        cut = tx.execute(f"SELECT max(hlc) FROM sync_clock_anchor WHERE {known}").fetchone()[0]
    else:
        cut = tx.execute(f"SELECT max(hlc) FROM sync_clock_anchor WHERE {known} AND hlc <= ?",
                         (oldest_pending,)).fetchone()[0]
        nth = tx.execute("SELECT hlc FROM sync_clock_anchor ORDER BY hlc DESC LIMIT 1 OFFSET ?",
                         (ANCHORS_KEPT,)).fetchone()
        if nth is not None:
            cut = nth[0] if cut is None else max(cut, nth[0])
    if cut is not None:
        tx.execute(f"DELETE FROM sync_clock_anchor WHERE hlc < ? AND ({known} OR boot_id != ?)",
                   (cut, boot))
    # offline anchors of an earlier boot can never learn national's time
    tx.execute("DELETE FROM sync_clock_anchor WHERE national_ms IS NULL AND boot_id != ?", (boot,))


def persisted_hlc(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT value FROM meta WHERE key='hlc'").fetchone()
    return int(row[0]) if row else 0


def hlc_drift_ms(hlc: int, mono_ms: int) -> int:
    """The HLC's wall part against the monotonic clock: constant while the HLC tracks
    real time, changing when the wall clock steps or the HLC is pinned."""
    return physical_ms(hlc) - mono_ms
