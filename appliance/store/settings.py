"""System and user settings (table ``settings``), as DHIS2 serves them: JSON values by key."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from . import audit
from .db import Tx


def read_scope(conn: sqlite3.Connection, scope: str) -> dict[str, Any]:
    """Every setting of ``scope`` ('system', or a user's), decoded."""
    return {k: json.loads(v) for k, v in
            conn.execute("SELECT key, value FROM settings WHERE scope=?", (scope,))}


def write(tx: Tx, scope: str, values: dict[str, Any], *, username: str | None,
          client: str | None) -> None:
    """Set ``values`` in ``scope`` (a user's uid, or 'system'), audited as DHIS2 audits a
    user setting change; ``None`` removes a key."""
    for key, value in values.items():
        row = tx.execute("SELECT value FROM settings WHERE scope=? AND key=?",
                         (scope, key)).fetchone()
        old = row[0] if row else None
        new = None if value is None else json.dumps(value, ensure_ascii=False)
        if old == new:
            continue
        if new is None:
            tx.execute("DELETE FROM settings WHERE scope=? AND key=?", (scope, key))
        else:
            tx.execute("INSERT INTO settings(scope, key, value) VALUES (?,?,?) "
                       "ON CONFLICT(scope, key) DO UPDATE SET value=excluded.value",
                       (scope, key, new))
        audit.record(tx, entity="setting", key=f"{scope}|{key}",
                     audit_type="CREATE" if old is None else "DELETE" if new is None
                     else "UPDATE", old=old, new=new, username=username, client=client)
