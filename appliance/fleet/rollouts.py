"""Rollouts (#13): which release each hub should run, and how far each hub has got.

National targets a release at one hub, a district, a division or every hub. A hub asks
(``POST /api/updates/check``, with its update report) and is offered the release of the
**most specific** active rollout that matches it and its hardware (RAUC's ``compatible``):
a hub rollout beats a district one, which beats a division one, which beats "all"; among
equals the newest wins. So "everyone to 1.4, but Ramu stays on 1.3" is two rollouts.
A new rollout for the same scope and target (and hardware) supersedes the old one.

Reports: a hub's update agent reports its state with a ``seq`` that grows with each
change; the report with the highest ``seq`` is kept on the hub's row (``update_*``), so
a heartbeat queued for hours cannot undo a newer report. Each state change is also kept
in ``update_events`` (the last ``EVENTS_KEPT`` per hub) for the hub's page.

A hub's progress in a rollout: ``committed`` once it runs the release; otherwise what it
last reported about this rollout, ``offered`` if the fleet offered it but has heard
nothing since, ``waiting`` if it has not asked yet.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..dhis2.timefmt import iso_z
from ..errors import BadRequest, Conflict, NotFound
from . import alerts as al
from .db import apply_alerts, audit_tx
from .models import UpdateReport
from .releases import find_release

SCOPES = {"hub": 0, "district": 1, "division": 2, "all": 3}  # most specific first
PROGRESS = ("waiting", "offered", "downloading", "installing", "installed", "rebooting",
            "trial", "rolling_back", "committed", "rolled_back", "refused", "failed")
TROUBLE = frozenset({"rolled_back", "refused", "failed"})
EVENTS_KEPT = 50
CHECK_AFTER_S = 3600  # what the fleet suggests between checks (the hub's config decides)


@dataclass(frozen=True)
class Offer:
    """The release a hub should run, as ``POST /api/updates/check`` returns it."""

    rollout_id: int
    version: str
    compatible: str
    sha256: str
    size: int

    def to_json(self) -> dict[str, Any]:
        return {"rollout_id": self.rollout_id, "version": self.version,
                "compatible": self.compatible, "sha256": self.sha256, "size": self.size,
                "url": f"/api/updates/bundles/{self.sha256}"}


# ------------------------------------------------------------------------- resolution
_ACTIVE = ("SELECT ro.id, ro.scope, ro.target, ro.created_at, ro.created_by, ro.cancelled_at, "
           "ro.cancelled_by, re.id AS release_id, re.version, re.compatible, re.sha256, "
           "re.size FROM rollouts ro JOIN releases re ON re.id = ro.release_id")


def active_rollouts(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    return conn.execute(_ACTIVE + " WHERE ro.cancelled_at IS NULL").fetchall()


def _same(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and a.casefold() == b.casefold()


def applies(ro: sqlite3.Row | dict[str, Any], hub: sqlite3.Row | dict[str, Any]) -> bool:
    scope, target = ro["scope"], ro["target"]
    return (scope == "all" or (scope == "hub" and target == hub["id"])
            or (scope == "district" and _same(target, hub["district"]))
            or (scope == "division" and _same(target, hub["division"])))


def choose(rollouts: Iterable[sqlite3.Row], hub: sqlite3.Row | dict[str, Any],
           compatible: str | None) -> sqlite3.Row | None:
    """The rollout that governs ``hub`` (None: none). ``compatible`` None (the hub has
    not said what it is): any hardware, for the progress pages only."""
    found = [r for r in rollouts if applies(r, hub)
             and (compatible is None or r["compatible"] == compatible)]
    return min(found, key=lambda r: (SCOPES[r["scope"]], -r["created_at"], -r["id"]),
               default=None)


# ---------------------------------------------------------------------------- reports
def record_report_tx(conn: sqlite3.Connection, hub_id: str, rep: UpdateReport,
                     received: float, th: al.Thresholds) -> bool:
    """Keep a hub's update report unless a newer one is stored; True if kept."""
    row = conn.execute("SELECT update_seq, update_state, update_target, update_reason "
                       "FROM hubs WHERE id=?", (hub_id,)).fetchone()
    if row is None:
        raise NotFound(f"no hub {hub_id!r}")
    if row["update_seq"] is not None and rep.seq < row["update_seq"]:
        return False
    conn.execute(
        "UPDATE hubs SET update_seq=?, update_state=?, update_version=?, update_compatible=?, "
        "update_slot=?, update_rollout=?, update_target=?, update_sha256=?, update_bytes=?, "
        "update_size=?, update_reason=?, update_at=? WHERE id=?",
        (rep.seq, rep.state, rep.version, rep.compatible, rep.booted_slot, rep.rollout_id,
         rep.target_version, rep.sha256, rep.bytes, rep.size, rep.reason, received, hub_id))
    changed = (rep.state, rep.target_version, rep.reason) != \
        (row["update_state"], row["update_target"], row["update_reason"])
    if changed:
        conn.execute("INSERT INTO update_events (hub_id, at, state, version, target, "
                     "rollout_id, reason) VALUES (?,?,?,?,?,?,?)",
                     (hub_id, received, rep.state, rep.version, rep.target_version,
                      rep.rollout_id, rep.reason))
        conn.execute("DELETE FROM update_events WHERE hub_id=? AND id <= (SELECT id FROM "
                     "update_events WHERE hub_id=? ORDER BY id DESC LIMIT 1 OFFSET ?)",
                     (hub_id, hub_id, EVENTS_KEPT))
        hub = conn.execute("SELECT * FROM hubs WHERE id=?", (hub_id,)).fetchone()
        apply_alerts(conn, hub, received, th)  # a rollback or a refusal is an alert
    return True


def check_tx(conn: sqlite3.Connection, hub_id: str, rep: UpdateReport | None,
             received: float, th: al.Thresholds) -> Offer | None:
    """A hub's update check: keep its report, then say what it should run."""
    if rep is not None:
        record_report_tx(conn, hub_id, rep, received, th)
    hub = conn.execute("SELECT * FROM hubs WHERE id=?", (hub_id,)).fetchone()
    if hub is None:
        raise NotFound(f"no hub {hub_id!r}")
    compatible = rep.compatible if rep is not None else hub["update_compatible"]
    if not compatible:  # a hub that cannot say what it is gets nothing it might not boot
        return None
    ro = choose(active_rollouts(conn), hub, compatible)
    if ro is None:
        return None
    if hub["offered_rollout"] != ro["id"]:
        conn.execute("UPDATE hubs SET offered_rollout=?, offered_at=? WHERE id=?",
                     (ro["id"], received, hub_id))
    return Offer(ro["id"], ro["version"], ro["compatible"], ro["sha256"], ro["size"])


def may_download(conn: sqlite3.Connection, hub_id: str, sha256: str) -> bool | None:
    """None: no such release; False: not offered to this hub; True: go ahead."""
    rel = conn.execute("SELECT 1 FROM releases WHERE sha256=?", (sha256,)).fetchone()
    if rel is None:
        return None
    hub = conn.execute("SELECT * FROM hubs WHERE id=?", (hub_id,)).fetchone()
    if hub is None:
        return False
    ro = choose(active_rollouts(conn), hub, hub["update_compatible"])
    return ro is not None and ro["sha256"] == sha256


# --------------------------------------------------------------------------- changes
def _place(conn: sqlite3.Connection, column: str, name: str) -> str | None:
    """A district or division as the hubs spell it (case-insensitive match)."""
    row = conn.execute(f"SELECT {column} FROM hubs WHERE {column} = ? COLLATE NOCASE "
                       f"GROUP BY {column} ORDER BY count(*) DESC LIMIT 1", (name,)).fetchone()
    return None if row is None else str(row[0])


def create_rollout_tx(conn: sqlite3.Connection, *, release: str, scope: str,
                      target: str | None, by: str, client: str | None, now: float,
                      compatible: str | None = None) -> dict[str, Any]:
    """Target a release; returns the new rollout as the API shows it."""
    if scope not in SCOPES:
        raise BadRequest(f"scope must be one of {', '.join(SCOPES)}; got {str(scope)[:20]!r}")
    target = (target or "").strip() or None
    if scope == "all":
        if target is not None:
            raise BadRequest("a rollout to all hubs takes no target")
    elif target is None:
        raise BadRequest(f"a {scope} rollout needs a target: the {scope}'s "
                         + ("id" if scope == "hub" else "name"))
    elif scope == "hub":
        if conn.execute("SELECT 1 FROM hubs WHERE id=?", (target,)).fetchone() is None:
            raise NotFound(f"no hub {target[:100]!r} is enrolled")
    else:
        found = _place(conn, scope, target)
        if found is None:
            raise BadRequest(f"no enrolled hub is in the {scope} {target[:100]!r}")
        target = found
    rel = find_release(conn, release, compatible)
    if rel is None:
        raise NotFound(f"no release {release[:70]!r}: add it with 'appliance fleet "
                       "add-release BUNDLE' first")
    cur = conn.execute("INSERT INTO rollouts (release_id, scope, target, created_at, "
                       "created_by) VALUES (?,?,?,?,?)",
                       (rel["id"], scope, target, now, by))
    rid = int(cur.lastrowid or 0)
    conn.execute(  # the same audience on the same hardware: the new one replaces it
        "UPDATE rollouts SET cancelled_at=?, cancelled_by=? WHERE cancelled_at IS NULL "
        "AND id != ? AND scope=? AND target IS ? AND release_id IN "
        "(SELECT id FROM releases WHERE compatible=?)",
        (now, f"superseded by rollout {rid}", rid, scope, target, rel["compatible"]))
    audit_tx(conn, at=now, username=by, client=client, action="rollout",
             detail={"rollout": rid, "version": rel["version"], "compatible": rel["compatible"],
                     "scope": scope, "target": target})
    return rollout_json(conn.execute(_ACTIVE + " WHERE ro.id=?", (rid,)).fetchone())


def cancel_rollout_tx(conn: sqlite3.Connection, rollout_id: int, *, by: str,
                      client: str | None, now: float) -> dict[str, Any]:
    row = conn.execute(_ACTIVE + " WHERE ro.id=?", (rollout_id,)).fetchone()
    if row is None:
        raise NotFound(f"no rollout {rollout_id}")
    if row["cancelled_at"] is not None:
        raise Conflict(f"rollout {rollout_id} was already stopped ({row['cancelled_by']})",
                       error_code="cancelled")
    conn.execute("UPDATE rollouts SET cancelled_at=?, cancelled_by=? WHERE id=?",
                 (now, by, rollout_id))
    audit_tx(conn, at=now, username=by, client=client, action="cancel-rollout",
             detail={"rollout": rollout_id, "version": row["version"]})
    return rollout_json(conn.execute(_ACTIVE + " WHERE ro.id=?", (rollout_id,)).fetchone())


# ------------------------------------------------------------------------------ reads
def rollout_json(r: sqlite3.Row) -> dict[str, Any]:
    return {"id": r["id"], "scope": r["scope"], "target": r["target"],
            "release": {"id": r["release_id"], "version": r["version"],
                        "compatible": r["compatible"], "sha256": r["sha256"],
                        "size": r["size"]},
            "created_at": iso_z(r["created_at"]), "created_by": r["created_by"],
            "active": r["cancelled_at"] is None,
            "cancelled_at": iso_z(r["cancelled_at"]) if r["cancelled_at"] else None,
            "cancelled_by": r["cancelled_by"]}


def hub_progress(hub: sqlite3.Row, ro: sqlite3.Row) -> str:
    """Where ``hub`` is in rollout ``ro`` (one of ``PROGRESS``)."""
    state = hub["update_state"]
    if hub["update_version"] == ro["version"] and state in (None, "idle", "committed"):
        return "committed"
    if hub["update_rollout"] == ro["id"] and state in PROGRESS:
        return str(state)
    if hub["offered_rollout"] == ro["id"]:
        return "offered"
    return "waiting"


def hub_row_json(hub: sqlite3.Row, progress: str) -> dict[str, Any]:
    return {"hub_id": hub["id"], "name": hub["name"], "district": hub["district"],
            "division": hub["division"], "progress": progress,
            "state": hub["update_state"], "version": hub["update_version"],
            "bytes": hub["update_bytes"], "size": hub["update_size"],
            "reason": hub["update_reason"],
            "reported_at": iso_z(hub["update_at"]) if hub["update_at"] else None}


def progress(conn: sqlite3.Connection, rollout_id: int | None = None, *,
             with_hubs: bool = False, include_stopped: int = 20) -> list[dict[str, Any]]:
    """Active rollouts (and the last ``include_stopped`` stopped ones) with, for each, the
    hubs it governs now and their progress counts (``hubs``: per hub, on request)."""
    active = active_rollouts(conn)
    if rollout_id is not None:
        rows = conn.execute(_ACTIVE + " WHERE ro.id=?", (rollout_id,)).fetchall()
    else:
        rows = active + conn.execute(
            _ACTIVE + " WHERE ro.cancelled_at IS NOT NULL ORDER BY ro.cancelled_at DESC "
            "LIMIT ?", (include_stopped,)).fetchall()
    hubs = conn.execute("SELECT * FROM hubs ORDER BY division, district, upazila, id").fetchall()
    governed: dict[int, list[sqlite3.Row]] = {}
    for hub in hubs:
        ro = choose(active, hub, hub["update_compatible"])
        if ro is not None:
            governed.setdefault(ro["id"], []).append(hub)
    out = []
    for r in sorted(rows, key=lambda r: (r["cancelled_at"] is not None, -r["created_at"])):
        mine = governed.get(r["id"], [])
        states = [(h, hub_progress(h, r)) for h in mine]
        counts = Counter(p for _h, p in states)
        item = rollout_json(r)
        item.update(hubs_total=len(mine), counts={p: counts.get(p, 0) for p in PROGRESS},
                    done=counts.get("committed", 0),
                    trouble=sum(counts.get(p, 0) for p in TROUBLE))
        if with_hubs:
            item["hubs"] = [hub_row_json(h, p) for h, p in states]
        out.append(item)
    return out


def versions(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """How many hubs run each release (the hub's package version when it reported none)."""
    return [{"version": r[0], "compatible": r[1], "hubs": r[2]} for r in conn.execute(
        "SELECT COALESCE(update_version, version) AS v, update_compatible, count(*) "
        "FROM hubs GROUP BY v, update_compatible ORDER BY count(*) DESC, v")]


def trouble_hubs(conn: sqlite3.Connection, limit: int = 200) -> list[sqlite3.Row]:
    return conn.execute("SELECT * FROM hubs WHERE update_state IN ('rolled_back', 'refused', "
                        "'failed') ORDER BY update_at DESC LIMIT ?", (limit,)).fetchall()


def hub_events(conn: sqlite3.Connection, hub_id: str, limit: int = 20) -> list[sqlite3.Row]:
    return conn.execute("SELECT * FROM update_events WHERE hub_id=? ORDER BY id DESC LIMIT ?",
                        (hub_id, limit)).fetchall()


def hub_update_json(hub: sqlite3.Row, events: list[sqlite3.Row]) -> dict[str, Any] | None:
    """``/api/hubs/{id}``'s ``update``: the hub's latest report and recent changes (null:
    it never reported one)."""
    if hub["update_state"] is None:
        return None
    return {"state": hub["update_state"], "version": hub["update_version"],
            "compatible": hub["update_compatible"], "booted_slot": hub["update_slot"],
            "rollout_id": hub["update_rollout"], "target_version": hub["update_target"],
            "bytes": hub["update_bytes"], "size": hub["update_size"],
            "reason": hub["update_reason"], "seq": hub["update_seq"],
            "reported_at": iso_z(hub["update_at"]) if hub["update_at"] else None,
            "offered_rollout": hub["offered_rollout"],
            "events": [{"at": iso_z(e["at"]), "state": e["state"], "version": e["version"],
                        "target_version": e["target"], "rollout_id": e["rollout_id"],
                        "reason": e["reason"]} for e in events]}
