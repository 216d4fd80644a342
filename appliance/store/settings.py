"""System and user settings (table ``settings``), as DHIS2 serves them: JSON values by key."""

from __future__ import annotations

import json
import sqlite3
from typing import Any


def read_scope(conn: sqlite3.Connection, scope: str) -> dict[str, Any]:
    """Every setting of ``scope`` ('system', or a user's), decoded."""
    return {k: json.loads(v) for k, v in
            conn.execute("SELECT key, value FROM settings WHERE scope=?", (scope,))}
