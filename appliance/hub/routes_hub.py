"""Hub-specific endpoints under /api/hub/ (DESIGN.md §5)."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from .. import __version__
from ..health.api import backup_status, health_payload
from ..health.updater import update_status
from ..store import backlog, synclog, wirebytes
from ..store import datavalues as dv
from . import tls
from .web import CONFIG, ROLE, STATE, STORE, json_response


def read_status(conn: Any) -> dict[str, Any]:
    """What the status endpoint and page show of sync: its state keys, rows per sync
    state, open conflicts and the latest events."""
    counts = dv.state_counts(conn)
    return {"state": synclog.read_state(conn), "values": counts["values"],
            "registrations": counts["registrations"],
            "tracker": backlog.tracker_counts(conn),
            "conflicts": synclog.open_conflicts(conn), "events": synclog.event_log(conn)}


def wire_status(conn: Any, budget_mb: Any, now: float | None = None) -> dict[str, Any]:
    """``wire``: bytes on the modem today and this month by category, and the budget."""
    try:
        budget = float(budget_mb or 0)
    except (TypeError, ValueError):
        budget = 0.0
    return wirebytes.report(conn, time.time() if now is None else now, budget)


def _num(v: str | None) -> float | None:
    try:
        return float(v) if v is not None else None
    except ValueError:
        return None


async def status(request: web.Request) -> web.Response:
    cfg = request.app[CONFIG]
    raw = await request.app[STORE].read(read_status)
    configured = bool(cfg.get("backup", "replica"))
    backup = await request.app[STORE].read(lambda c: backup_status(c, configured))
    budget = cfg.get("sync", "modem_budget_mb")
    wire = await request.app[STORE].read(lambda c: wire_status(c, budget))
    st = raw["state"]
    values = raw["values"]
    tracker = raw["tracker"]
    pending = values["pending"] + raw["registrations"].get("pending", 0) + tracker["pending"]
    return json_response({
        "hub": {"id": cfg.get("hub", "id"), "name": cfg.get("hub", "name"),
                "orgUnit": cfg.get("hub", "org_unit"), "role": request.app[ROLE],
                "version": __version__, "dhis2Version": cfg.get("hub", "dhis2_version"),
                "uptimeSeconds": round(time.time() - request.app[STATE].started, 1)},
        "sync": {
            "link": st.get("link", "unknown"), "syncing": st.get("syncing") == "1",
            "lastSuccess": st.get("last_success"), "lastAttempt": st.get("last_attempt"),
            "lastError": st.get("last_error"),
            "pending": pending, "pendingValues": values["pending"],
            # saves held after a push until the batch window ends ([sync] batch_s): when
            # they go to national unless someone asks for a sync first; null: not held
            "nextPush": st.get("next_push") or None,
            "pendingRegistrations": raw["registrations"].get("pending", 0),
            "pendingTracker": tracker["pending"], "rejectedTracker": tracker["rejected"],
            "synced": values["synced"], "rejected": values["rejected"] +
            raw["registrations"].get("rejected", 0) + tracker["rejected"],
            "conflicts": raw["conflicts"], "bytesSent": int(_num(st.get("bytes_sent")) or 0),
            "bytesReceived": int(_num(st.get("bytes_received")) or 0),
            "clockOffsetSeconds": _num(st.get("clock_offset_s")),
            "national": cfg.get("national", "url") or None,
        },
        "events": raw["events"],
        "metadataVersion": request.app[STATE].index.version,
        "tls": await tls.status(request.app),  # null: no [tls] name, no HTTPS
        "backup": backup,  # the litestream replica: how far behind, and why
        "update": await request.app[STORE].read(update_status),  # null: no update agent
        "wire": wire,  # bytes on the modem today and this month, and the monthly budget
    })


async def health(request: web.Request) -> web.Response:
    return json_response(await health_payload(request.app[STORE]))


def setup(app: web.Application) -> None:
    app.router.add_get("/api/hub/status", status)
    app.router.add_get("/api/hub/health", health)
