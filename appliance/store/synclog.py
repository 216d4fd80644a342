"""The sync log: per-entity sync state, events, conflicts, rejections, push chunks and
clock anchors (tables ``sync_state``, ``sync_event``, ``sync_conflict``,
``sync_rejection``, ``sync_push_chunk``, ``sync_clock_anchor``).

Writes take a ``Tx`` and run on the writer thread (``Store.write``); reads take a
connection (``Store.read``).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

from .keys import CR_KEY, DV_KEY, key_sql, split_key

# -- what the hub's pages and API show, scoped to the caller ---------------------------------
# The status page and /api/hub/{conflicts,rejections} show the same lists; the scoping rule
# lives here once. ``may_view(org_unit)`` is the caller's view scope (``User.can_view``).
CONFLICT_STATUS = {"open": "WHERE resolved_at IS NULL", "resolved": "WHERE resolved_at IS NOT NULL",
                   "all": ""}


def open_conflicts(conn: sqlite3.Connection) -> int:
    return int(conn.execute(
        "SELECT count(*) FROM sync_conflict WHERE resolved_at IS NULL").fetchone()[0])


def visible_conflicts(conn: sqlite3.Connection, may_view: Callable[[str], bool], *,
                      status: str = "all", open_first: bool = False, scan: int = 5000,
                      keep: int | None = None) -> list[dict[str, Any]]:
    """The newest ``scan`` conflicts with ``status`` (open, resolved or all), those in the
    caller's scope, at most ``keep``: each row's columns plus its decoded key's parts."""
    order = "resolved_at IS NOT NULL, id DESC" if open_first else "id DESC"
    out: list[dict[str, Any]] = []
    for r in conn.execute(f"SELECT * FROM sync_conflict {CONFLICT_STATUS[status]} "
                          f"ORDER BY {order} LIMIT ?", (scan,)):
        if may_view(r["org_unit"] or ""):
            out.append({**dict(r), **json.loads(r["key"])})
            if keep is not None and len(out) >= keep:
                break
    return out


def conflict_target(conn: sqlite3.Connection, cid: int) -> dict[str, Any] | None:
    """What a resolution needs to check first: the entity, its key's parts, the org unit."""
    r = conn.execute("SELECT entity, key, org_unit FROM sync_conflict WHERE id=?",
                     (cid,)).fetchone()
    return None if r is None else {**dict(r), **json.loads(r["key"])}


def visible_rejections(conn: sqlite3.Connection, may_view: Callable[[str], bool], *,
                       username: str, superuser: bool, only_user: str | None = None,
                       scan: int = 5000, keep: int | None = None) -> list[dict[str, Any]]:
    """Why national refused rows, newest first, for their author: the caller's own entries
    (a superuser's: everyone's) in the caller's scope, or ``only_user``'s. Each is the
    rejection's columns, its key's parts and ``state``, the row's sync state now."""
    out: list[dict[str, Any]] = []
    for r in conn.execute(
            "SELECT r.*, d.sync_state AS dv_state, c.sync_state AS cr_state FROM sync_rejection r "
            f"LEFT JOIN datavalue d ON r.entity='datavalue' AND {key_sql('datavalue', 'd')} = r.key "
            "LEFT JOIN complete_registration c ON r.entity='complete_registration' AND "
            f"{key_sql('complete_registration', 'c')} = r.key ORDER BY r.at DESC LIMIT ?",
            (scan,)):
        if not may_view(r["org_unit"] or ""):
            continue
        if only_user is not None:
            if r["username"] != only_user:
                continue
        elif r["username"] != username and not superuser:
            continue
        item = dict(r)
        item["parts"] = split_key(r["key"])
        names = DV_KEY if r["entity"] == "datavalue" else CR_KEY
        item.update(zip(names, item["parts"], strict=False))
        item["state"] = r["dv_state"] or r["cr_state"]
        out.append(item)
        if keep is not None and len(out) >= keep:
            break
    return out


def event_log(conn: sqlite3.Connection, limit: int = 20) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(
        "SELECT at, level, kind, message FROM sync_event ORDER BY id DESC LIMIT ?", (limit,))]


def state_map(conn: sqlite3.Connection) -> dict[str, str]:
    """Every ``sync_state`` key: link, syncing, last success and error, byte counters..."""
    return {k: v for k, v in conn.execute("SELECT key, value FROM sync_state")}


def sync_state_values(conn: sqlite3.Connection, keys: Sequence[str]) -> dict[str, str]:
    """Those of ``keys`` that are set in ``sync_state``, as text."""
    marks = ",".join("?" * len(keys))
    return {str(k): str(v) for k, v in conn.execute(
        f"SELECT key, value FROM sync_state WHERE key IN ({marks})", tuple(keys))}
