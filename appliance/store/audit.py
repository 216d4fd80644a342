"""The audit trail: one row per change to data, who made it, from where and via what.

Bulk data-value imports write their audit rows set-based inside their own statements
(``datavalues``), for speed on reporting day; everything else records through ``record``.
"""

from __future__ import annotations

import sqlite3

from .db import Tx
from .hlc import to_iso


def record(tx: Tx, *, entity: str, key: str, audit_type: str, old: str | None,
           new: str | None, username: str | None, client: str | None,
           via: str = "api") -> None:
    """``audit_type`` is CREATE, UPDATE or DELETE; ``key`` the natural key, '|'-joined."""
    stamp = tx.stamp()
    tx.execute("INSERT INTO audit(hlc, at, username, via, client, entity, key, audit_type, "
               "old_value, new_value) VALUES (?,?,?,?,?,?,?,?,?,?)",
               (stamp, to_iso(stamp), username, via, client, entity, key, audit_type, old, new))


def newest(conn: sqlite3.Connection, entity: str, limit: int = 100_000) -> list[sqlite3.Row]:
    """The audit rows of one entity, newest first (the audit API filters them further)."""
    return conn.execute("SELECT * FROM audit WHERE entity=? ORDER BY id DESC LIMIT ?",
                        (entity, limit)).fetchall()
