"""``/api/hub/health`` payload: the latest sample and the LED state the agent shows.

The hub process reads what the health agent (another process) persisted; it never
touches hardware itself.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from ..store import Store
from ..store import health as hstore
from . import state
from .syncstatus import parse_iso


def _payload(conn: sqlite3.Connection) -> dict[str, Any]:
    sample = hstore.latest_sample(conn)
    age = None
    if sample is not None:
        at = parse_iso(sample.get("at"))
        age = None if at is None else max(0, int(time.time() - at.timestamp()))
    events = hstore.recent_events(conn, 20)
    return {
        "sample": sample,
        "sample_age_s": age,           # large: the health agent is not running
        "led": state.get_json(conn, "led"),
        "power_cuts": state.get_int(conn, "power_cuts"),
        "agent_restarts": state.get_int(conn, "agent_restarts"),
        "quick_check": state.get_json(conn, "quick_check"),
        "heartbeat": state.get_json(conn, "heartbeat"),
        "heartbeats_queued": hstore.heartbeat_count(conn),
        "events": events,
    }


async def health_payload(store: Store) -> dict[str, Any]:
    return await store.read(_payload)


def backup_status(conn: sqlite3.Connection, configured: bool) -> dict[str, Any]:
    """``/api/hub/status``'s ``backup``: what the health agent last saw of litestream
    (``health/backup.py``). The lag counts on from the last replication it saw, so a
    stopped health agent does not freeze it; ``checkedAt`` says how fresh the rest is."""
    if not configured:
        return {"configured": False, "lastReplicatedAt": None, "lagSeconds": None,
                "error": None, "checkedAt": None}
    rep = state.get_json(conn, "backup") or {}
    last = parse_iso(rep.get("last_replicated_at"))
    lag = rep.get("lag_s")
    if last is not None:
        lag = round(max(0.0, time.time() - last.timestamp()), 1)
    return {"configured": True, "lastReplicatedAt": rep.get("last_replicated_at"),
            "lagSeconds": lag, "error": rep.get("error"), "checkedAt": rep.get("checked_at")}
