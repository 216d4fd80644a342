"""The sync backlog over aggregate and tracker rows, as the status page, /api/hub/status,
the sync worker and the health agent report it.

Kept apart from ``store.tracker`` so the health agent, which counts but never reads
records, does not load the tracker and search code (and rapidfuzz) into its ~35 MB.
Every count reads a partial index (``*_pending``, ``*_unsynced``), never a whole table:
at 200,000 people the tracker tables hold millions of rows and these run every few
seconds.
"""

from __future__ import annotations

import sqlite3

from .datavalues import sync_counts

# the tracker tables whose rows carry a sync state (store/migrations/0007_tracker.sql)
TRACKER_TABLES = ("tracked_entity", "te_attribute", "enrollment", "event", "event_value",
                  "relationship", "program_owner", "potential_duplicate")


def tracker_counts(conn: sqlite3.Connection) -> dict[str, int]:
    """Tracker rows pending, refused and in conflict (synced rows are not counted)."""
    out = {"pending": 0, "conflict": 0, "rejected": 0}
    pending = " UNION ALL ".join(
        f"SELECT count(*) FROM {t} WHERE sync_state = 'pending'" for t in TRACKER_TABLES)
    out["pending"] = sum(int(r[0]) for r in conn.execute(pending))
    unsynced = " UNION ALL ".join(
        f"SELECT sync_state, count(*) FROM {t} WHERE sync_state IN ('rejected', 'conflict') "
        "GROUP BY sync_state" for t in TRACKER_TABLES)
    for state, n in conn.execute(unsynced):
        out[state] += int(n)
    return out


def backlog(conn: sqlite3.Connection) -> tuple[int, int, int]:
    """(pending, rejected, open conflicts) over aggregate and tracker rows."""
    pending, rejected, conflicts = sync_counts(conn)
    counts = tracker_counts(conn)
    return pending + counts["pending"], rejected + counts["rejected"], conflicts
