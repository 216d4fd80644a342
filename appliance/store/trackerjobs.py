"""Tracker import jobs (table ``tracker_job``): each async ``POST /api/tracker``'s report,
for the user who started it, the newest ``KEPT`` on disk."""

from __future__ import annotations

import sqlite3
from typing import Any

import orjson

from .db import Tx

KEPT = 500


def save(tx: Tx, uid: str, user_uid: str, at: str, report: dict[str, Any]) -> None:
    seq = tx.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM tracker_job").fetchone()[0]
    tx.execute("INSERT INTO tracker_job(uid, user_uid, at, report, seq) VALUES (?,?,?,?,?)",
               (uid, user_uid, at, orjson.dumps(report).decode(), seq))
    tx.execute("DELETE FROM tracker_job WHERE seq <= ?", (seq - KEPT,))


def get(conn: sqlite3.Connection, uid: str, user_uid: str) -> dict[str, Any] | None:
    """A job's record ({report, at}), to the user who started it only."""
    r = conn.execute("SELECT at, report FROM tracker_job WHERE uid = ? AND user_uid = ?",
                     (uid, user_uid)).fetchone()
    return None if r is None else {"at": r[0], "report": orjson.loads(r[1])}
