"""Data approvals: national's decisions a hub mirrors (and the national stand-in makes).

A key is (data set, period, org unit, attribute option combo).
"""

from __future__ import annotations

import sqlite3

from . import audit
from .db import Tx
from .keys import key_str

ApprovalKey = tuple[str, str, str, str]


def all_approved(conn: sqlite3.Connection) -> set[ApprovalKey]:
    return {(r[0], r[1], r[2], r[3]) for r in
            conn.execute("SELECT ds, pe, ou, aoc FROM data_approval")}


def approve(tx: Tx, key: ApprovalKey, *, username: str, at: str,
            client: str | None = None) -> None:
    old = tx.execute("SELECT approved_by FROM data_approval WHERE ds=? AND pe=? AND ou=? AND "
                     "aoc=?", key).fetchone()
    tx.execute("INSERT OR REPLACE INTO data_approval(ds, pe, ou, aoc, approved_by, at) "
               "VALUES (?,?,?,?,?,?)", (*key, username, at))
    audit.record(tx, entity="data_approval", key=key_str(key),
                 audit_type="UPDATE" if old else "CREATE", old="approved" if old else None,
                 new="approved", username=username, client=client)


def unapprove(tx: Tx, key: ApprovalKey, *, username: str, client: str | None = None) -> bool:
    gone = tx.execute("DELETE FROM data_approval WHERE ds=? AND pe=? AND ou=? AND aoc=?",
                      key).rowcount > 0
    if gone:
        audit.record(tx, entity="data_approval", key=key_str(key), audit_type="DELETE",
                     old="approved", new=None, username=username, client=client)
    return gone
