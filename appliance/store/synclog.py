"""The sync log: per-entity sync state, events, conflicts, rejections, push chunks and
clock anchors (tables ``sync_state``, ``sync_event``, ``sync_conflict``,
``sync_rejection``, ``sync_push_chunk``, ``sync_clock_anchor``).

Writes take a ``Tx`` and run on the writer thread (``Store.write``); reads take a
connection (``Store.read``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence


def sync_state_values(conn: sqlite3.Connection, keys: Sequence[str]) -> dict[str, str]:
    """Those of ``keys`` that are set in ``sync_state``, as text."""
    marks = ",".join("?" * len(keys))
    return {str(k): str(v) for k, v in conn.execute(
        f"SELECT key, value FROM sync_state WHERE key IN ({marks})", tuple(keys))}
