"""Data approvals: national's decisions a hub mirrors (and the national stand-in makes).

A key is (data set, period, org unit, attribute option combo). A row is an approved key:
made on this server (``state`` NULL: the national stand-in's own approvals, or one made on
a hub's LAN) or pulled from national by sync (``state`` is national's: APPROVED_HERE,
APPROVED_ABOVE, ACCEPTED_HERE, ...). ``meta.approvals_version`` moves with every change,
so the LAN server reloads its set (``all_approved``) when sync brings one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping

from . import audit
from .db import Tx
from .keys import key_str

ApprovalKey = tuple[str, str, str, str]


def all_approved(conn: sqlite3.Connection) -> set[ApprovalKey]:
    return {(r[0], r[1], r[2], r[3]) for r in
            conn.execute("SELECT ds, pe, ou, aoc FROM data_approval")}


def approvals_version(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT value FROM meta WHERE key='approvals_version'").fetchone()
    return int(row[0]) if row else 0


def _bump(tx: Tx) -> None:
    tx.execute("INSERT INTO meta(key, value) VALUES ('approvals_version', '1') "
               "ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1")


def approval(conn: sqlite3.Connection, keys: Iterable[ApprovalKey]
             ) -> tuple[ApprovalKey, str | None, str, str | None] | None:
    """The first of ``keys`` that is approved: (key, national's state or None if approved
    here, when, by whom)."""
    for key in keys:
        r = conn.execute("SELECT state, at, approved_by FROM data_approval WHERE ds=? AND "
                         "pe=? AND ou=? AND aoc=?", key).fetchone()
        if r is not None:
            return key, r[0], r[1], r[2]
    return None


def approve(tx: Tx, key: ApprovalKey, *, username: str, at: str,
            client: str | None = None) -> None:
    old = tx.execute("SELECT approved_by FROM data_approval WHERE ds=? AND pe=? AND ou=? AND "
                     "aoc=?", key).fetchone()
    tx.execute("INSERT OR REPLACE INTO data_approval(ds, pe, ou, aoc, approved_by, at, state) "
               "VALUES (?,?,?,?,?,?,NULL)", (*key, username, at))
    audit.record(tx, entity="data_approval", key=key_str(key),
                 audit_type="UPDATE" if old else "CREATE", old="approved" if old else None,
                 new="approved", username=username, client=client)
    _bump(tx)


def unapprove(tx: Tx, key: ApprovalKey, *, username: str, client: str | None = None) -> bool:
    gone = tx.execute("DELETE FROM data_approval WHERE ds=? AND pe=? AND ou=? AND aoc=?",
                      key).rowcount > 0
    if gone:
        audit.record(tx, entity="data_approval", key=key_str(key), audit_type="DELETE",
                     old="approved", new=None, username=username, client=client)
        _bump(tx)
    return gone


def national_approvals(conn: sqlite3.Connection) -> dict[ApprovalKey, str]:
    """The approvals sync pulled from national, with national's state."""
    return {(r[0], r[1], r[2], r[3]): r[4] for r in conn.execute(
        "SELECT ds, pe, ou, aoc, state FROM data_approval WHERE state IS NOT NULL")}


def apply_national(tx: Tx, approved: Mapping[ApprovalKey, str],
                   unapproved: Iterable[ApprovalKey], at: str) -> tuple[int, int]:
    """National's answer for the keys sync asked about: ``approved`` (key -> national's
    state) are locked here, ``unapproved`` lose a lock that came from national (one made
    here is left). Returns (approvals added or changed, approvals taken back)."""
    added = removed = 0
    for key, state in approved.items():
        old = tx.execute("SELECT state FROM data_approval WHERE ds=? AND pe=? AND ou=? AND "
                         "aoc=?", key).fetchone()
        if old is not None and old[0] == state:
            continue
        tx.execute("INSERT OR REPLACE INTO data_approval(ds, pe, ou, aoc, approved_by, at, "
                   "state) VALUES (?,?,?,?,NULL,?,?)", (*key, at, state))
        audit.record(tx, entity="data_approval", key=key_str(key),
                     audit_type="UPDATE" if old else "CREATE",
                     old=(old[0] or "approved") if old else None, new=state, username=None,
                     client=None, via="sync")
        added += 1
    for key in unapproved:
        row = tx.execute("DELETE FROM data_approval WHERE ds=? AND pe=? AND ou=? AND aoc=? "
                         "AND state IS NOT NULL RETURNING state", key).fetchone()
        if row is not None:
            audit.record(tx, entity="data_approval", key=key_str(key), audit_type="DELETE",
                         old=row[0], new=None, username=None, client=None, via="sync")
            removed += 1
    if added or removed:
        _bump(tx)
    return added, removed
