"""Reporting rates across the fleet (#14): what hubs' heartbeats say of their upazilas'
monthly forms, added up by division, district and upazila for the last three months,
worst first, beside each place's hardware and sync health.

Rates are DHIS2's: complete ÷ expected and complete on time ÷ expected, summed over the
hubs of a place (a place's rate is not the mean of its hubs' rates). A hub that has not
sent counts (an older release) shows as such and sorts last.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .alerts import STATE_RANK, age
from .pages import dot, esc, hub_url, layout

MONTHS = 3
LEVELS = ("division", "district", "upazila")


def last_months(now: float, n: int = MONTHS) -> list[str]:
    """The ``n`` months before the current one, newest first (what hubs report on)."""
    d = datetime.fromtimestamp(now, UTC)
    m = d.year * 12 + d.month - 1
    return [f"{(m - i) // 12}{(m - i) % 12 + 1:02d}" for i in range(1, n + 1)]


@dataclass
class Place:
    level: str
    name: str
    division: str | None
    district: str | None
    hub_id: str | None = None  # upazilas: the hub serving it
    hubs: int = 0
    reporting_hubs: int = 0
    worst_state: str = "green"
    alerts: int = 0
    pending: int = 0
    last_seen: float | None = None
    counts: dict[str, list[int]] = field(default_factory=dict)  # period -> [exp, cpl, ot, rcv]

    def rates(self, pe: str) -> dict[str, Any]:
        exp, cpl, ot, rcv = self.counts.get(pe, [0, 0, 0, 0])
        return {"expected": exp, "complete": cpl, "onTime": ot, "received": rcv,
                "reportingRate": round(100 * cpl / exp, 1) if exp else None,
                "onTimeRate": round(100 * ot / exp, 1) if exp else None}


def _hub_rows(conn: sqlite3.Connection, periods: list[str]) -> tuple[list[Any], list[Any]]:
    hubs = conn.execute(
        "SELECT id, name, upazila, district, division, state, alert_codes, pending, last_seen "
        "FROM hubs").fetchall()
    counts = conn.execute(
        "SELECT hub_id, period, sum(expected), sum(complete), sum(on_time), sum(received) "
        f"FROM reporting WHERE period IN ({','.join('?' * len(periods))}) "
        "GROUP BY hub_id, period", periods).fetchall()
    return hubs, counts


def places(conn: sqlite3.Connection, periods: list[str]) -> dict[str, list[Place]]:
    """Divisions, districts and upazilas with their summed counts, worst first."""
    hubs, counts = _hub_rows(conn, periods)
    by_hub: dict[str, dict[str, list[int]]] = {}
    for hub_id, pe, *n in counts:
        by_hub.setdefault(hub_id, {})[pe] = [int(x or 0) for x in n]
    out: dict[str, dict[tuple[Any, ...], Place]] = {lv: {} for lv in LEVELS}
    for h in hubs:
        div, dist = h["division"] or "—", h["district"] or "—"
        keys = {"division": (div,), "district": (div, dist),
                "upazila": (div, dist, h["upazila"] or h["name"] or h["id"], h["id"])}
        for lv in LEVELS:
            k = keys[lv]
            p = out[lv].get(k)
            if p is None:
                p = out[lv][k] = Place(lv, k[-1] if lv != "upazila" else k[2], div,
                                       dist if lv != "division" else None,
                                       h["id"] if lv == "upazila" else None)
            p.hubs += 1
            mine = by_hub.get(h["id"])
            if mine:
                p.reporting_hubs += 1
                for pe, n in mine.items():
                    acc = p.counts.setdefault(pe, [0, 0, 0, 0])
                    for i in range(4):
                        acc[i] += n[i]
            state = h["state"] or "green"
            if STATE_RANK.get(state, 0) > STATE_RANK.get(p.worst_state, 0):
                p.worst_state = state
            p.alerts += len([c for c in (h["alert_codes"] or "").split(",") if c])
            p.pending += int(h["pending"] or 0)
            if h["last_seen"] is not None and (p.last_seen is None or h["last_seen"] > p.last_seen):
                p.last_seen = h["last_seen"]

    def worst_first(p: Place) -> tuple[int, float, str]:
        rate = p.rates(periods[0])["reportingRate"] if periods else None
        return (rate is None, rate if rate is not None else 0.0, p.name)
    return {lv: sorted(out[lv].values(), key=worst_first) for lv in LEVELS}


def place_json(p: Place, periods: list[str]) -> dict[str, Any]:
    return {"level": p.level, "name": p.name, "division": p.division, "district": p.district,
            "hubId": p.hub_id, "hubs": p.hubs, "reportingHubs": p.reporting_hubs,
            "health": {"state": p.worst_state, "alerts": p.alerts, "pending": p.pending,
                       "lastSeen": p.last_seen},
            "months": {pe: p.rates(pe) for pe in periods}}


def as_json(by_level: dict[str, list[Place]], periods: list[str]) -> dict[str, Any]:
    return {"periods": periods, **{lv + "s": [place_json(p, periods) for p in by_level[lv]]
                                   for lv in LEVELS}}


# -- the page -------------------------------------------------------------------------------------
CSS = """
table.rep td.rate{font-variant-numeric:tabular-nums}
table.rep td.low{color:#b3261e;font-weight:600}
table.rep th.name,table.rep td.name{position:sticky;left:0;background:#fff;z-index:1}
table.rep thead th.name{background:#e9eef2;z-index:2}
h2{font-size:1.05em;margin:1.1em 0 .3em;color:#0b4f6c}
"""
LOW = 80.0  # a rate below this is shown in red


def _month(pe: str) -> str:
    names = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
             "Dec")
    return f"{names[int(pe[4:]) - 1]} {pe[:4]}"


def _rate(r: dict[str, Any]) -> str:
    rr, ot = r["reportingRate"], r["onTimeRate"]
    if rr is None:
        return '<td class="rate muted">–</td><td class="rate muted">–</td>'
    cls = ' low' if rr < LOW else ''
    return (f'<td class="rate{cls}" title="{r["complete"]} of {r["expected"]} forms complete">'
            f'{rr:.0f} %</td><td class="rate">{ot:.0f} %</td>')


def _table(level: str, rows: list[Place], periods: list[str], now: float) -> str:
    head = "".join(f'<th colspan="2">{esc(_month(pe))}<br><small>rate · on time</small></th>'
                   for pe in periods)
    body = []
    for p in rows:
        name = esc(p.name)
        if p.hub_id:
            name = f'<a href="{esc(hub_url(p.hub_id))}">{name}</a>'
        where = ", ".join(x for x in (p.district if level == "upazila" else None,
                                      p.division if level != "division" else None) if x)
        latest = p.rates(periods[0]) if periods else {}
        seen = "never" if p.last_seen is None else age(max(0.0, now - p.last_seen)) + " ago"
        no_counts = "" if p.reporting_hubs else ' <small class="muted">no counts yet</small>'
        body.append(
            f'<tr data-place="{esc(p.name)}" data-state="{esc(p.worst_state)}">'
            f'<td class="name">{name}{no_counts}'
            + (f"<br><small>{esc(where)}</small>" if where else "") + "</td>"
            + f"<td>{dot(p.worst_state)} {esc(p.worst_state)}</td>"
            + "".join(_rate(p.rates(pe)) for pe in periods)
            + f'<td class="n">{latest.get("received", 0)}</td>'
            + f'<td class="n">{p.hubs}</td><td class="n">{p.alerts}</td>'
            + f'<td class="n">{p.pending}</td><td>{esc(seen)}</td></tr>')
    title = {"division": "Divisions", "district": "Districts", "upazila": "Upazilas"}[level]
    return (f'<h2 id="{level}s">{title}, worst first</h2><div class="wrap">'
            f'<table class="rep" id="rep-{level}"><thead><tr><th class="name">{title[:-1]}</th>'
            f"<th>State</th>{head}"
            '<th class="n">Received<br><small>by national</small></th><th class="n">Hubs</th>'
            '<th class="n">Alerts</th><th class="n">Backlog</th><th>Last heartbeat</th>'
            f"</tr></thead><tbody>{''.join(body)}</tbody></table></div>")


def page(by_level: dict[str, list[Place]], periods: list[str], *, now: float,
         account: Any = None) -> str:
    intro = ('<p class="muted">Monthly forms reported as DHIS2 counts them: complete ÷ '
             "expected, and complete within the form's timely days ÷ expected, from each "
             "hub's latest heartbeat. Hardware and sync health beside them.</p>")
    body = intro + "".join(_table(lv, by_level[lv], periods, now) for lv in LEVELS)
    return layout("Fleet: reporting rates", f"<style>{CSS}</style>" + body, account=account)
