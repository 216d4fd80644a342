"""Bytes on the modem per local day and category (table ``wire_bytes``, issue 15).

Who counts what, as estimates of what crossed the wire (request line, headers and body as
sent, compressed; reply headers and body as received; not TCP/IP or TLS overhead):

* the sync worker's national client (``sync/client.py``) counts each request under the
  category its caller names: ``metadata`` (everything the metadata pull fetches: org
  units, users, the category model, deletions...), ``pull`` (data values, completions,
  tracker reads), ``push`` (data value, completion and tracker imports, their job
  reports, ownership transfers, duplicates) and ``other`` (the probe, the hub's root
  lookup, anything else). The hub's first-login checks against national are ``other``;
* the health agent counts its own traffic to the fleet as ``fleet``: heartbeats, update
  checks, bundle downloads and certificate renewal. It is reported inside ``other``
  (the issue's four categories) and apart within it (``other.fleet``): one software
  update moves tens of MB, and the national team must be able to tell that from sync.

Counts are kept in memory (``Tally``) and added by a commit that happens anyway: the sync
cycle's one ``add_bytes`` commit, and the health agent's sample commit. Never a commit per
request: each one costs SD card writes.

Days are the hub's local days (the system's zone: Asia/Dhaka on the image), as the people
at the upazila count them; a month is the calendar month of those days. A budget is in MB
of 1024 × 1024 bytes, as Bangladesh's operators count their data packs.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Mapping
from typing import Any

from ..dhis2.timefmt import iso_z
from .db import Tx

METADATA, PULL, PUSH, OTHER, FLEET = "metadata", "pull", "push", "other", "fleet"
CATEGORIES = (METADATA, PULL, PUSH, OTHER, FLEET)
REPORTED = (METADATA, PULL, PUSH, OTHER)  # the API's keys; ``fleet`` is inside ``other``
MB = 1024 * 1024
DAYS_KEPT = 400  # a year and a bit of days: 5 short rows a day
Counts = Mapping[str, tuple[int, int]]  # category -> (sent, received)


class Tally:
    """Bytes counted in memory until the next commit that carries them. Thread-safe (the
    health agent reads it from a worker thread while its loop adds to it)."""

    def __init__(self) -> None:
        self._counts: dict[str, list[int]] = {}
        self._lock = threading.Lock()

    def add(self, category: str, sent: int = 0, received: int = 0) -> None:
        if not (sent or received):
            return
        with self._lock:
            c = self._counts.setdefault(category, [0, 0])
            c[0] += sent
            c[1] += received

    def peek(self) -> dict[str, tuple[int, int]]:
        with self._lock:
            return {k: (v[0], v[1]) for k, v in self._counts.items() if v[0] or v[1]}

    def take(self) -> dict[str, tuple[int, int]]:
        """What was counted since the last ``take``; the tally starts again at zero."""
        with self._lock:
            out = {k: (v[0], v[1]) for k, v in self._counts.items() if v[0] or v[1]}
            self._counts = {}
        return out

    def put_back(self, counts: Counts) -> None:
        """Counts taken for a write that failed: the next one carries them."""
        for k, (s, r) in counts.items():
            self.add(k, s, r)

    def total(self) -> tuple[int, int]:
        with self._lock:
            return (sum(v[0] for v in self._counts.values()),
                    sum(v[1] for v in self._counts.values()))


def total(counts: Counts) -> tuple[int, int]:
    return sum(s for s, _ in counts.values()), sum(r for _, r in counts.values())


def local_day(now: float) -> str:
    """``now``'s calendar day in the system's zone, YYYY-MM-DD."""
    return time.strftime("%Y-%m-%d", time.localtime(now))


def record(tx: Tx, counts: Counts, now: float) -> None:
    """Add ``counts`` to ``now``'s local day, and forget days older than ``DAYS_KEPT``.
    Bytes counted across midnight go to the day they are written on."""
    rows = [(local_day(now), k, int(s), int(r)) for k, (s, r) in counts.items() if s or r]
    if not rows:
        return
    tx.executemany("INSERT INTO wire_bytes(day, category, sent, received) VALUES (?,?,?,?) "
                   "ON CONFLICT(day, category) DO UPDATE SET sent = sent + excluded.sent, "
                   "received = received + excluded.received", rows)
    prune(tx, now)


def prune(tx: Tx, now: float, days: int = DAYS_KEPT) -> int:
    """Delete days before ``days`` ago; returns how many rows went. A clock that runs
    behind (no RTC after a power cut) only keeps more; its own rows go once it is right."""
    return tx.execute("DELETE FROM wire_bytes WHERE day < ?",
                      (local_day(now - days * 86400),)).rowcount


def days(conn: sqlite3.Connection, since: str = "") -> dict[str, dict[str, tuple[int, int]]]:
    """{day: {category: (sent, received)}} from ``since`` (YYYY-MM-DD) on."""
    out: dict[str, dict[str, tuple[int, int]]] = {}
    for day, cat, s, r in conn.execute(
            "SELECT day, category, sent, received FROM wire_bytes WHERE day >= ? "
            "ORDER BY day, category", (since,)):
        out.setdefault(day, {})[cat] = (int(s), int(r))
    return out


def _month_after(year: int, month: int) -> tuple[int, int]:
    return (year + 1, 1) if month == 12 else (year, month + 1)


def _shape(counts: Mapping[str, tuple[int, int]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for cat in (METADATA, PULL, PUSH):
        s, r = counts.get(cat, (0, 0))
        out[cat] = {"sent": s, "received": r}
    fleet = counts.get(FLEET, (0, 0))
    rest = [v for k, v in counts.items() if k not in (METADATA, PULL, PUSH)]  # other, fleet
    out[OTHER] = {"sent": sum(s for s, _ in rest), "received": sum(r for _, r in rest),
                  FLEET: {"sent": fleet[0], "received": fleet[1]}}
    s_all, r_all = total(counts)
    out["total"] = {"sent": s_all, "received": r_all}
    return out


def _sums(conn: sqlite3.Connection, lo: str, hi: str) -> dict[str, tuple[int, int]]:
    return {cat: (int(s), int(r)) for cat, s, r in conn.execute(
        "SELECT category, sum(sent), sum(received) FROM wire_bytes WHERE day >= ? AND day < ? "
        "GROUP BY category", (lo, hi))}


def _plus(a: Mapping[str, tuple[int, int]], b: Counts) -> dict[str, tuple[int, int]]:
    out = dict(a)
    for k, (s, r) in b.items():
        s0, r0 = out.get(k, (0, 0))
        out[k] = (s0 + s, r0 + r)
    return out


def report(conn: sqlite3.Connection, now: float, budget_mb: float | None = 0,
           unsaved: Counts | None = None) -> dict[str, Any]:
    """``/api/hub/status``'s and heartbeats' ``wire``: today's and this month's bytes by
    category (``unsaved``: counted but not written yet, added in), the monthly budget in
    MB (null: none) and how much of it this month used, in percent."""
    t = time.localtime(now)
    day = f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}"
    ny, nm = _month_after(t.tm_year, t.tm_mon)
    first, nxt = f"{t.tm_year:04d}-{t.tm_mon:02d}-01", f"{ny:04d}-{nm:02d}-01"
    today = _plus(_sums(conn, day, day + "~"), unsaved or {})  # "~" sorts after any day
    month = _plus(_sums(conn, first, nxt), unsaved or {})
    ends = time.mktime((ny, nm, 1, 0, 0, 0, 0, 0, -1))  # local midnight starting next month
    budget = round(budget_mb) if budget_mb and budget_mb >= 1 else None
    used = sum(s + r for s, r in month.values())
    return {
        "today": {"date": day, **_shape(today)},
        "month": {"period": f"{t.tm_year:04d}{t.tm_mon:02d}", "startDate": first,
                  "endsAt": iso_z(ends), **_shape(month)},
        "budgetMb": budget,
        "monthUsedPct": round(100 * used / (budget * MB), 1) if budget else None,
    }
