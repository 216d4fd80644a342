"""Sync backlog, lag and conflicts as the sync daemon left them in the store."""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..dhis2.timefmt import iso_z
from ..store.backlog import backlog
from ..store.synclog import sync_state_values


@dataclass(frozen=True)
class SyncStatus:
    pending: int | None
    conflicts: int | None
    rejected: int | None
    last_success: str | None     # ISO-8601 UTC with Z
    lag_s: int | None            # seconds since the last successful cycle
    link_up: bool | None
    clock_offset_s: float | None
    syncing: bool
    last_error: str | None

    def to_sample(self) -> dict[str, Any]:
        return {"pending": self.pending, "conflicts": self.conflicts, "rejected": self.rejected,
                "last_success": self.last_success, "lag_s": self.lag_s}


def parse_iso(value: str | None) -> datetime | None:
    """ISO timestamps as the sync daemon writes them (with or without Z/offset/millis)."""
    if not value:
        return None
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


# the sync daemon's keys this module reads
_KEYS = ("last_success", "last_error", "link", "clock_offset_s", "syncing")


def _kv(conn: sqlite3.Connection) -> dict[str, str]:
    return sync_state_values(conn, _KEYS)


def _float(value: str | None) -> float | None:
    try:
        return None if value in (None, "") else float(value)  # type: ignore[arg-type]
    except ValueError:
        return None


def read_flags(conn: sqlite3.Connection) -> tuple[bool, bool | None]:
    """(syncing now, link up): the cheap read the LED loop polls every few seconds."""
    kv = _kv(conn)
    link = kv.get("link")
    return kv.get("syncing") == "1", (None if link is None else link == "up")


def read_sync_status(conn: sqlite3.Connection, now: float | None = None) -> SyncStatus:
    kv = _kv(conn)
    pending, rejected, conflicts = backlog(conn)
    last = parse_iso(kv.get("last_success"))
    lag = None
    if last is not None:
        # clamp: a clock set back after a power cut must not report negative lag
        lag = max(0, int((time.time() if now is None else now) - last.timestamp()))
    link = kv.get("link")
    return SyncStatus(
        pending=int(pending), conflicts=int(conflicts), rejected=int(rejected),
        last_success=iso_z(last.timestamp()) if last else None, lag_s=lag,
        link_up=None if link is None else link == "up",
        clock_offset_s=_float(kv.get("clock_offset_s")),
        syncing=kv.get("syncing") == "1", last_error=kv.get("last_error") or None)
