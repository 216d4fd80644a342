"""The health agent's key/value state in the store (``health_state``).

Keys: ``power_cuts``, ``agent_restarts``, ``heartbeat_seq``, ``hb_summary``,
``hb_inflight``, ``heartbeat`` (last attempt), ``quick_check``, ``led``.
Values are text; JSON helpers for structured ones.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from ..store.db import Tx


def get(conn: sqlite3.Connection, key: str) -> str | None:
    row = conn.execute("SELECT value FROM health_state WHERE key=?", (key,)).fetchone()
    return None if row is None else str(row[0])


def get_json(conn: sqlite3.Connection, key: str) -> Any:
    raw = get(conn, key)
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError:  # a hand-edited or truncated value must not stop the agent
        return None


def get_int(conn: sqlite3.Connection, key: str, default: int = 0) -> int:
    raw = get(conn, key)
    try:
        return int(raw) if raw is not None else default
    except ValueError:
        return default


def put(tx: Tx | sqlite3.Connection, key: str, value: str) -> None:
    tx.execute("INSERT INTO health_state(key, value) VALUES (?, ?) "
               "ON CONFLICT(key) DO UPDATE SET value=excluded.value", (key, value))


def put_json(tx: Tx | sqlite3.Connection, key: str, value: Any) -> None:
    put(tx, key, json.dumps(value, separators=(",", ":"), sort_keys=True))


def delete(tx: Tx | sqlite3.Connection, key: str) -> None:
    tx.execute("DELETE FROM health_state WHERE key=?", (key,))


def increment(tx: Tx, key: str, by: int = 1) -> int:
    """Add to a counter inside the write transaction (atomic across processes)."""
    value = get_int(tx.conn, key) + by
    put(tx, key, str(value))
    return value
