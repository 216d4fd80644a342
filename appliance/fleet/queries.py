"""Read-side queries shared by the JSON API, the pages and ``/metrics``.

Plain functions over a read-only ``sqlite3.Connection`` (run them via ``FleetDB.read``).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from ..dhis2.timefmt import iso_z as iso
from .alerts import MB, STATE_RANK
from .db import BOOL_COLUMNS, SAMPLE_COLUMNS

ORDER = "state_rank, division, district, upazila, id"
# what the dashboard table and /metrics need: no tokens, no summary blobs
LIST_COLUMNS = ("id, name, upazila, district, division, org_unit_id, created_at, last_seq, "
                "last_seen, sent_offset_s, clock_offset_s, version, sample_at, " +
                ", ".join(SAMPLE_COLUMNS) +
                ", pending, conflicts, rejected, lag_s, last_success, undervoltage_at, state, "
                "state_rank, alert_codes, wire_period, wire_month_bytes, wire_budget_mb")


@dataclass(frozen=True)
class HubFilter:
    division: str | None = None
    district: str | None = None
    state: str | None = None
    q: str | None = None

    def where(self, p: str = "") -> tuple[str, list[Any]]:
        """SQL ``WHERE`` for ``hubs``; ``p`` qualifies its columns (``"h."``) in joins."""
        clauses, params = [], []
        if self.division:
            clauses.append(f"{p}division = ?")
            params.append(self.division)
        if self.district:
            clauses.append(f"{p}district = ?")
            params.append(self.district)
        if self.state in STATE_RANK:
            clauses.append(f"{p}state = ?")
            params.append(self.state)
        if self.q:
            like = "%" + self.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            clauses.append(f"({p}id LIKE ? ESCAPE '\\' OR {p}name LIKE ? ESCAPE '\\' "
                           f"OR {p}upazila LIKE ? ESCAPE '\\')")
            params += [like, like, like]
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


@dataclass(frozen=True)
class HubPage:
    rows: list[sqlite3.Row]
    total: int  # matching the filter
    counts: dict[str, int]  # by state, matching the filter's place but not its state


def list_hubs(conn: sqlite3.Connection, f: HubFilter, page: int, page_size: int | None
              ) -> HubPage:
    where, params = f.where()
    sql = f"SELECT {LIST_COLUMNS} FROM hubs{where} ORDER BY {ORDER}"
    if page_size is not None:
        sql += f" LIMIT {int(page_size)} OFFSET {int(max(0, page - 1) * page_size)}"
    rows = conn.execute(sql, params).fetchall()
    place_where, place_params = HubFilter(f.division, f.district, None, f.q).where()
    counts = {s: 0 for s in STATE_RANK}
    for state, n in conn.execute(f"SELECT state, count(*) FROM hubs{place_where} GROUP BY state",
                                 place_params):
        counts[state] = n
    total = counts.get(f.state, 0) if f.state in STATE_RANK else sum(counts.values())
    return HubPage(rows, total, counts)


def places(conn: sqlite3.Connection) -> list[tuple[str, str, int]]:
    """(division, district, hubs) for the filter menus."""
    return [(r[0] or "", r[1] or "", r[2]) for r in conn.execute(
        "SELECT division, district, count(*) FROM hubs GROUP BY division, district "
        "ORDER BY division, district")]


def get_hub(conn: sqlite3.Connection, hub_id: str) -> sqlite3.Row | None:
    row: sqlite3.Row | None = conn.execute(
        "SELECT * FROM hubs WHERE id=?", (hub_id,)).fetchone()
    return row


HISTORY_COLUMNS = ("t", "temp_c", "disk_pct", "pending", "lag_s", "power_cuts", "conflicts",
                   "cpu_pct", "mem_pct", "undervoltage_now", "undervoltage_seen",
                   "sd_written_mb", "ntp_offset_s")


def history(conn: sqlite3.Connection, hub_id: str, since: float,
            limit: int = 20000) -> list[sqlite3.Row]:
    # newest `limit` samples since `since`, returned oldest first
    rows = conn.execute(
        f"SELECT {', '.join(HISTORY_COLUMNS)} FROM samples WHERE hub_id=? AND t>=? "
        "ORDER BY t DESC LIMIT ?", (hub_id, since, limit)).fetchall()
    rows.reverse()
    return rows


def recent_heartbeats(conn: sqlite3.Connection, hub_id: str, limit: int = 20
                      ) -> list[sqlite3.Row]:
    return conn.execute(
        "SELECT seq, received, sent_at, boot_id, version, uptime_s, n_samples, summary "
        "FROM heartbeats WHERE hub_id=? ORDER BY received DESC LIMIT ?",
        (hub_id, limit)).fetchall()


def alerts(conn: sqlite3.Connection, f: HubFilter, *, hub_id: str | None = None,
           level: str | None = None, resolved: bool = False, limit: int = 5000
           ) -> list[sqlite3.Row]:
    where, params = f.where("h.")
    hub_where = where.replace(" WHERE ", "", 1) if where else ""
    clauses = ["a.resolved_at IS NOT NULL" if resolved else "a.resolved_at IS NULL"]
    if hub_where:
        clauses.append(hub_where)
    if hub_id:
        clauses.append("a.hub_id = ?")
        params.append(hub_id)
    if level in ("red", "amber"):
        clauses.append("a.level = ?")
        params.append(level)
    order = "a.resolved_at DESC" if resolved else \
        "CASE a.level WHEN 'red' THEN 0 ELSE 1 END, a.since, a.hub_id"
    return conn.execute(
        "SELECT a.hub_id, a.code, a.level, a.message, a.words, a.since, a.updated, "
        "a.resolved_at, "
        "h.name, h.upazila, h.district, h.division, h.state FROM alerts a "
        "JOIN hubs h ON h.id = a.hub_id WHERE " + " AND ".join(clauses) +
        f" ORDER BY {order} LIMIT ?", (*params, limit)).fetchall()


def open_alert_counts(conn: sqlite3.Connection) -> dict[str, int]:
    return {r[0]: r[1] for r in conn.execute(
        "SELECT code, count(*) FROM alerts WHERE resolved_at IS NULL GROUP BY code")}


def metrics_rows(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    return conn.execute(f"SELECT {LIST_COLUMNS} FROM hubs ORDER BY id").fetchall()


# ------------------------------------------------------------------------- JSON shapes
def _val(col: str, v: Any) -> Any:
    return None if v is None else (bool(v) if col in BOOL_COLUMNS else v)


def latest_json(row: sqlite3.Row) -> dict[str, Any] | None:
    if row["sample_at"] is None:
        return None
    out: dict[str, Any] = {"at": iso(row["sample_at"])}
    for col in SAMPLE_COLUMNS:
        out["clock_offset_s" if col == "ntp_offset_s" else col] = _val(col, row[col])
    out["sync"] = {"pending": row["pending"], "conflicts": row["conflicts"],
                   "rejected": row["rejected"], "lag_s": row["lag_s"],
                   "last_success": iso(row["last_success"])}
    return out


def hub_json(row: sqlite3.Row, now: float) -> dict[str, Any]:
    keys = row.keys()
    out: dict[str, Any] = {
        "id": row["id"], "name": row["name"], "upazila": row["upazila"],
        "district": row["district"], "division": row["division"],
        "org_unit_id": row["org_unit_id"], "state": row["state"],
        "alerts": [c for c in row["alert_codes"].split(",") if c],
        "last_seen": iso(row["last_seen"]),
        "last_seen_age_s": None if row["last_seen"] is None else round(now - row["last_seen"], 1),
        "last_seq": row["last_seq"], "version": row["version"],
        # the hub's clock error as alerted on; sent_at_offset_s is receipt minus sent_at
        "clock_offset_s": row["clock_offset_s"], "sent_at_offset_s": row["sent_offset_s"],
        "undervoltage_at": iso(row["undervoltage_at"]),
        "enrolled_at": iso(row["created_at"]),
        "latest": latest_json(row),
    }
    if "boot_id" in keys:  # full rows (one hub) carry more
        out.update(boot_id=row["boot_id"], uptime_s=row["uptime_s"],
                   heartbeats=row["heartbeats"], samples=row["samples"],
                   summary=json.loads(row["summary"]) if row["summary"] else None,
                   summary_received=iso(row["summary_at"]))
    if "wire_month_bytes" in keys:  # bytes on the modem this month and the budget (#15)
        out["wire"] = None if row["wire_period"] is None else wire_json(row)
    if "backup_reported_at" in keys:  # the litestream replica (#13), full rows only
        out["backup"] = None if not row["backup_configured"] else {
            "lag_s": row["backup_lag_s"], "last_replicated_at": iso(row["backup_last_at"]),
            "error": row["backup_error"], "reported_at": iso(row["backup_reported_at"])}
    return out


def wire_json(row: sqlite3.Row) -> dict[str, Any]:
    """What the hub's latest heartbeat said of its modem: this month's bytes (sent plus
    received) against its budget; full rows add today and the split by category."""
    used, budget = row["wire_month_bytes"], row["wire_budget_mb"]
    out: dict[str, Any] = {
        "period": row["wire_period"], "month_bytes": used, "budget_mb": budget,
        "month_used_pct": round(100 * used / (budget * MB), 1) if budget and used is not None
        else None}
    keys = row.keys()  # a sqlite3.Row: ``in`` would look at its values
    if "wire_detail" in keys:
        out.update(day=row["wire_day"], today_bytes=row["wire_today_bytes"],
                   month_ends=iso(row["wire_month_ends"]),
                   reported_at=iso(row["wire_reported_at"]),
                   detail=json.loads(row["wire_detail"]) if row["wire_detail"] else None)
    return out


def tls_json(hub: sqlite3.Row, issuance: sqlite3.Row | None, now: float) -> dict[str, Any]:
    """A hub's HTTPS name and certificate (#12): ``name`` as national assigned it, the
    certificate its heartbeats say it serves (``cert_name`` ... ``fingerprint``; null when
    it reports none), its LAN address and what DNS holds, and national's latest issuance."""
    na = hub["tls_not_after"]
    out: dict[str, Any] = {
        "name": hub["tls_name"], "url": f"https://{hub['tls_name']}" if hub["tls_name"] else None,
        "cert_name": hub["tls_cert_name"], "not_after": iso(na),
        "days_left": None if na is None else round((na - now) / 86400, 1),
        "issuer": hub["tls_issuer"], "fingerprint": hub["tls_fingerprint"],
        "reported_at": iso(hub["tls_reported_at"]),
        "lan_ip": hub["lan_ip"], "published_ip": hub["published_ip"],
        "published_at": iso(hub["published_at"]), "issuance": None}
    if issuance is not None:
        out["issuance"] = {
            "name": issuance["name"], "state": issuance["state"],
            "not_after": iso(issuance["not_after"]), "fingerprint": issuance["fingerprint"],
            "attempts": issuance["attempts"], "last_error": issuance["last_error"],
            "requested_at": iso(issuance["created_at"]), "updated_at": iso(issuance["updated_at"])}
    return out


def alert_json(row: sqlite3.Row) -> dict[str, Any]:
    return {"hub": row["hub_id"], "hub_name": row["name"], "upazila": row["upazila"],
            "district": row["district"], "division": row["division"], "code": row["code"],
            "level": row["level"], "message": row["message"], "since": iso(row["since"]),
            "updated": iso(row["updated"]), "resolved_at": iso(row["resolved_at"])}
