"""The sync log: per-entity sync state, events, conflicts, rejections, push chunks and
clock anchors (tables ``sync_state``, ``sync_event``, ``sync_conflict``,
``sync_rejection``, ``sync_push_chunk``, ``sync_clock_anchor``).

Writes take a ``Tx`` and run on the writer thread (``Store.write``); reads take a
connection (``Store.read``).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from .db import Tx
from .keys import CR_KEY, DV_KEY, key_sql, key_str, split_key


# -- sync_state: the worker's key/value bookkeeping ------------------------------------------
def set_state(tx: Tx, values: Mapping[str, Any]) -> None:
    """Set keys (``None`` is stored as the empty string)."""
    tx.executemany(
        "INSERT INTO sync_state(key, value) VALUES (?, ?) "
        "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
        [(k, "" if v is None else str(v)) for k, v in values.items()])


def read_state(conn: sqlite3.Connection) -> dict[str, str]:
    return {k: v for k, v in conn.execute("SELECT key, value FROM sync_state")}


def state_value(conn: sqlite3.Connection, key: str) -> str | None:
    """One key's value, ``None`` if it was never set."""
    row = conn.execute("SELECT value FROM sync_state WHERE key=?", (key,)).fetchone()
    return None if row is None else row[0]


def add_bytes(tx: Tx, sent: int, received: int) -> None:
    """Add to the cumulative wire byte counters ``bytes_sent`` and ``bytes_received``."""
    for key, n in (("bytes_sent", sent), ("bytes_received", received)):
        if n:
            tx.execute("INSERT INTO sync_state(key, value) VALUES (?, ?) ON CONFLICT(key) DO "
                       "UPDATE SET value = CAST(CAST(value AS INTEGER) + ? AS TEXT)",
                       (key, str(n), n))


# -- sync_event: the bounded event log ---------------------------------------------------------
def add_event(tx: Tx, level: str, kind: str, message: str, at: str, *, keep: int,
              data: Mapping[str, Any] | None = None) -> None:
    """Log an event (message cut to 2000 characters), keeping only the last ``keep``."""
    cur = tx.execute("INSERT INTO sync_event(at, level, kind, message, data) VALUES (?,?,?,?,?)",
                     (at, level, kind, message[:2000],
                      json.dumps(dict(data), separators=(",", ":")) if data else None))
    tx.execute("DELETE FROM sync_event WHERE id <= ?", ((cur.lastrowid or 0) - keep,))


# -- sync_clock_anchor: HLC stamp -> this boot's monotonic clock -> national time --------------
def write_anchor(tx: Tx, boot: str, mono_ms: int, wall_ms: int, national_ms: int | None) -> int:
    """Record an anchor at a fresh HLC stamp; returns the stamp."""
    stamp = tx.stamp()
    tx.execute("INSERT OR REPLACE INTO sync_clock_anchor(hlc, boot_id, mono_ms, wall_ms, "
               "national_ms) VALUES (?,?,?,?,?)", (stamp, boot, mono_ms, wall_ms, national_ms))
    return stamp


def last_anchor(conn: sqlite3.Connection, boot: str) -> tuple[int, int] | None:
    """(hlc, mono_ms) of this boot's newest anchor."""
    row = conn.execute("SELECT hlc, mono_ms FROM sync_clock_anchor WHERE boot_id=? "
                       "ORDER BY hlc DESC LIMIT 1", (boot,)).fetchone()
    return (row[0], row[1]) if row else None


def fill_anchors(tx: Tx, boot: str, server_ms: int, mid_ms: float) -> int:
    """Give this boot's anchors that lack national time ``server_ms + mono_ms - mid_ms``;
    returns how many."""
    cur = tx.execute("UPDATE sync_clock_anchor SET national_ms = ? + mono_ms - ? "
                     "WHERE boot_id=? AND national_ms IS NULL", (server_ms, int(mid_ms), boot))
    return cur.rowcount


def anchors_around(conn: sqlite3.Connection, stamp: int
                   ) -> tuple[tuple[int, int] | None, tuple[int, int] | None]:
    """(hlc, national_ms) of the nearest anchors with national time at or below and at or
    above ``stamp``."""
    lo = conn.execute("SELECT hlc, national_ms FROM sync_clock_anchor WHERE hlc <= ? AND "
                      "national_ms IS NOT NULL ORDER BY hlc DESC LIMIT 1", (stamp,)).fetchone()
    hi = conn.execute("SELECT hlc, national_ms FROM sync_clock_anchor WHERE hlc >= ? AND "
                      "national_ms IS NOT NULL ORDER BY hlc ASC LIMIT 1", (stamp,)).fetchone()
    return ((lo[0], lo[1]) if lo else None, (hi[0], hi[1]) if hi else None)


_KNOWN = "national_ms IS NOT NULL"


def newest_known_anchor(conn: sqlite3.Connection, at_most: int | None = None) -> int | None:
    """The HLC of the newest anchor with national time (at or below ``at_most``)."""
    if at_most is None:
        return conn.execute(
            f"SELECT max(hlc) FROM sync_clock_anchor WHERE {_KNOWN}").fetchone()[0]
    return conn.execute(
        f"SELECT max(hlc) FROM sync_clock_anchor WHERE {_KNOWN} AND hlc <= ?",
        (at_most,)).fetchone()[0]


def nth_newest_anchor(conn: sqlite3.Connection, n: int) -> int | None:
    """The HLC of the anchor with ``n`` newer ones, if there are that many."""
    row = conn.execute("SELECT hlc FROM sync_clock_anchor ORDER BY hlc DESC LIMIT 1 OFFSET ?",
                       (n,)).fetchone()
    return None if row is None else row[0]


def delete_anchors_before(tx: Tx, cut: int, boot: str) -> None:
    """Drop anchors older than ``cut``, except this boot's still lacking national time."""
    tx.execute(f"DELETE FROM sync_clock_anchor WHERE hlc < ? AND ({_KNOWN} OR boot_id != ?)",
               (cut, boot))


def delete_orphan_anchors(tx: Tx, boot: str) -> None:
    """Drop anchors of earlier boots that lack national time (they can never learn it)."""
    tx.execute("DELETE FROM sync_clock_anchor WHERE national_ms IS NULL AND boot_id != ?", (boot,))


# -- sync_conflict: the losing side of concurrent edits ----------------------------------------
def add_conflict(tx: Tx, *, entity: str, key: str, data_set: str | None,
                 hub_value: str | None, hub_deleted: bool, hub_user: str | None,
                 hub_at: str | None, hub_hlc: int | None, national_value: str | None,
                 national_deleted: bool, national_user: str | None, national_at: str | None,
                 winner: str, policy: str, reason: str, detected_at: str, org_unit: str,
                 hub_comment: str | None, national_comment: str | None,
                 national_last_updated: str | None) -> int:
    """Log a conflict (``key`` is the JSON natural key); returns its id."""
    cur = tx.execute(
        "INSERT INTO sync_conflict(entity, key, data_set, hub_value, hub_deleted, hub_user, "
        "hub_at, hub_hlc, national_value, national_deleted, national_user, national_at, winner, "
        "policy, reason, detected_at, org_unit, hub_comment, national_comment, "
        "national_last_updated) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (entity, key, data_set, hub_value, int(hub_deleted), hub_user, hub_at, hub_hlc,
         national_value, int(national_deleted), national_user, national_at, winner, policy,
         reason, detected_at, org_unit, hub_comment, national_comment, national_last_updated))
    return int(cur.lastrowid or 0)


def conflict(conn: sqlite3.Connection, conflict_id: int) -> sqlite3.Row | None:
    """One conflict entry, every column."""
    return conn.execute(
        "SELECT * FROM sync_conflict WHERE id=?", (conflict_id,)).fetchone()


def open_hub_win(conn: sqlite3.Connection, entity: str, key: str, hub_hlc: int
                 ) -> tuple[Any, ...] | None:
    """The newest open entry where the hub's edit stamped ``hub_hlc`` won: (id,
    national_value, national_deleted, national_user, national_comment,
    national_last_updated, reason)."""
    return conn.execute(
        "SELECT id, national_value, national_deleted, national_user, "
        "national_comment, national_last_updated, reason FROM sync_conflict "
        "WHERE entity=? AND key=? AND resolved_at IS NULL AND winner='hub' "
        "AND hub_hlc=? ORDER BY id DESC LIMIT 1", (entity, key, hub_hlc)).fetchone()


def set_conflict_winner(tx: Tx, conflict_id: int, winner: str, reason: str) -> None:
    tx.execute("UPDATE sync_conflict SET winner=?, reason=? WHERE id=?",
               (winner, reason, conflict_id))


def close_conflict(tx: Tx, conflict_id: int, at: str, username: str, resolution: str) -> None:
    """Mark an entry resolved by a person (``resolution`` is JSON)."""
    tx.execute("UPDATE sync_conflict SET resolved_at=?, resolved_by=?, resolution=? WHERE id=?",
               (at, username, resolution, conflict_id))


# -- sync_rejection: why national refused a pushed row ---------------------------------------
def record_rejection(tx: Tx, entity: str, key: Sequence[str], *, code: str | None,
                     message: str, at: str, username: str | None, org_unit: str,
                     value: str | None, hlc: int) -> None:
    """Record (or replace) the refusal of the row at ``key``."""
    tx.execute(
        "INSERT INTO sync_rejection(entity, key, error_code, message, at, username, org_unit, "
        "value, hlc) VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT(entity, key) DO UPDATE SET "
        "error_code=excluded.error_code, message=excluded.message, at=excluded.at, "
        "username=excluded.username, org_unit=excluded.org_unit, value=excluded.value, "
        "hlc=excluded.hlc",
        (entity, key_str(key), code, message, at, username, org_unit, value, hlc))


def rejection(conn: sqlite3.Connection, entity: str, key: Sequence[str]
              ) -> tuple[str | None, str] | None:
    """(error_code, message) of the refusal of the row at ``key``."""
    row = conn.execute("SELECT error_code, message FROM sync_rejection WHERE entity=? AND "
                       "key=?", (entity, key_str(key))).fetchone()
    return (row[0], row[1]) if row else None


def delete_rejection(tx: Tx, entity: str, key: Sequence[str]) -> None:
    tx.execute("DELETE FROM sync_rejection WHERE entity=? AND key=?", (entity, key_str(key)))


def delete_rejections(tx: Tx, entity: str, keys: Iterable[Sequence[str]]) -> None:
    tx.executemany("DELETE FROM sync_rejection WHERE entity=? AND key=?",
                   [(entity, key_str(k)) for k in keys])


# Tracker refusals are kept here too: entity is the object's table (tracked_entity,
# enrollment, event, relationship, program_owner) and key its uid (te|program for an owner).
TRACKER_ENTITIES = ("tracked_entity", "enrollment", "event", "relationship", "program_owner",
                    "potential_duplicate")


def tracker_rejections(conn: sqlite3.Connection, uids: Iterable[str]
                       ) -> dict[str, dict[str, Any]]:
    """uid -> {entity, errorCode, message, at, username, orgUnit} of national's refusals of
    these tracker objects (for the record pages and the SDK-facing hub)."""
    wanted = list(dict.fromkeys(uids))
    out: dict[str, dict[str, Any]] = {}
    ents = json.dumps(list(TRACKER_ENTITIES))
    for i in range(0, len(wanted), 500):
        part = wanted[i:i + 500]
        for r in conn.execute(
                "SELECT entity, key, error_code, message, at, username, org_unit FROM "
                "sync_rejection WHERE entity IN (SELECT value FROM json_each(?)) AND key IN "
                f"({','.join('?' * len(part))})", (ents, *part)):
            out[r[1]] = {"entity": r[0], "errorCode": r[2], "message": r[3], "at": r[4],
                         "username": r[5], "orgUnit": r[6]}
    return out


def tracker_rejection_count(conn: sqlite3.Connection) -> int:
    return int(conn.execute(
        "SELECT count(*) FROM sync_rejection WHERE entity IN (SELECT value FROM json_each(?))",
        (json.dumps(list(TRACKER_ENTITIES)),)).fetchone()[0])


# -- sync_push_chunk: chunks written before they are sent, acknowledged with their summary ----
def _keys_json(keys: Iterable[Sequence[str]]) -> str:
    return json.dumps([key_str(k) for k in keys])


def open_chunk(conn: sqlite3.Connection, entity: str, busy: Sequence[int] = ()
               ) -> tuple[int, list[tuple[str, ...]], int] | None:
    """(id, keys, attempts) of the first open chunk whose id is not in ``busy``."""
    row = conn.execute("SELECT id, keys, attempts FROM sync_push_chunk WHERE entity=? AND "
                       "state='open' AND id NOT IN (SELECT value FROM json_each(?)) "
                       "ORDER BY id LIMIT 1", (entity, json.dumps(list(busy)))).fetchone()
    if row is None:
        return None
    return row[0], [split_key(k) for k in json.loads(row[1] or "[]")], row[2]


def open_chunk_keys(conn: sqlite3.Connection, entity: str) -> set[tuple[str, ...]]:
    """Every key in an open chunk."""
    taken: set[tuple[str, ...]] = set()
    for (ks,) in conn.execute("SELECT keys FROM sync_push_chunk WHERE state='open' AND "
                              "entity=?", (entity,)):
        taken.update(split_key(k) for k in json.loads(ks or "[]"))
    return taken


def new_chunk(tx: Tx, entity: str, keys: Sequence[Sequence[str]], created: str) -> int:
    """Open a chunk of ``keys``; returns its id."""
    cur = tx.execute("INSERT INTO sync_push_chunk(entity, state, keys, n, created) "
                     "VALUES (?, 'open', ?, ?, ?)", (entity, _keys_json(keys), len(keys), created))
    return int(cur.lastrowid or 0)


def set_chunk_keys(tx: Tx, chunk_id: int, keys: Sequence[Sequence[str]]) -> None:
    """Replace an open chunk's keys (it is re-sent smaller)."""
    tx.execute("UPDATE sync_push_chunk SET keys=?, n=? WHERE id=?",
               (_keys_json(keys), len(keys), chunk_id))


def chunk_sent(conn: sqlite3.Connection, chunk_id: int) -> str | None:
    """The chunk's record of what its attempts sent (JSON), if any."""
    row = conn.execute("SELECT sent FROM sync_push_chunk WHERE id=?", (chunk_id,)).fetchone()
    return row[0] if row and row[0] else None


def note_attempt(tx: Tx, chunk_id: int, sent: str) -> None:
    """Count an attempt and store the updated record of what was sent."""
    tx.execute("UPDATE sync_push_chunk SET attempts=attempts+1, sent=? WHERE id=?",
               (sent, chunk_id))


def set_chunk_sent(tx: Tx, chunk_id: int, sent: str) -> None:
    """Replace the record of what was sent (e.g. to add the job national answered with)."""
    tx.execute("UPDATE sync_push_chunk SET sent=? WHERE id=?", (sent, chunk_id))


def sent_records(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    """(entity, sent) of the open chunks that were sent at least once."""
    return [(entity, sent) for entity, sent in conn.execute(
        "SELECT entity, sent FROM sync_push_chunk WHERE state='open' AND sent IS NOT NULL")]


def ack_chunk(tx: Tx, chunk_id: int, *, at: str, accepted: int, rejected: int,
              seconds: float | None) -> None:
    """Mark a chunk acknowledged, dropping its keys and sent record."""
    tx.execute("UPDATE sync_push_chunk SET state='acked', keys=NULL, sent=NULL, acked_at=?, "
               "accepted=?, rejected=?, seconds=? WHERE id=?",
               (at, accepted, rejected, seconds, chunk_id))


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
            "SELECT r.*, d.sync_state AS dv_state, c.sync_state AS cr_state, "
            "coalesce(t.sync_state, e.sync_state, v.sync_state, l.sync_state) AS tr_state "
            "FROM sync_rejection r "
            f"LEFT JOIN datavalue d ON r.entity='datavalue' AND {key_sql('datavalue', 'd')} = r.key "
            "LEFT JOIN complete_registration c ON r.entity='complete_registration' AND "
            f"{key_sql('complete_registration', 'c')} = r.key "
            "LEFT JOIN tracked_entity t ON r.entity='tracked_entity' AND t.uid = r.key "
            "LEFT JOIN enrollment e ON r.entity='enrollment' AND e.uid = r.key "
            "LEFT JOIN event v ON r.entity='event' AND v.uid = r.key "
            "LEFT JOIN relationship l ON r.entity='relationship' AND l.uid = r.key "
            "ORDER BY r.at DESC LIMIT ?",
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
        if r["entity"] in TRACKER_ENTITIES:
            item["uid"] = r["key"]
        else:
            names = DV_KEY if r["entity"] == "datavalue" else CR_KEY
            item.update(zip(names, item["parts"], strict=False))
        item["state"] = r["dv_state"] or r["cr_state"] or r["tr_state"]
        out.append(item)
        if keep is not None and len(out) >= keep:
            break
    return out


def event_log(conn: sqlite3.Connection, limit: int = 20) -> list[dict[str, Any]]:
    """The newest events; ``data`` is what each says ({"code": ..., its numbers}, or None)."""
    out = []
    for r in conn.execute("SELECT at, level, kind, message, data FROM sync_event "
                          "ORDER BY id DESC LIMIT ?", (limit,)):
        e = dict(r)
        e["data"] = json.loads(e["data"]) if e["data"] else None
        out.append(e)
    return out


def sync_state_values(conn: sqlite3.Connection, keys: Sequence[str]) -> dict[str, str]:
    """Those of ``keys`` that are set in ``sync_state``, as text."""
    marks = ",".join("?" * len(keys))
    return {str(k): str(v) for k, v in conn.execute(
        f"SELECT key, value FROM sync_state WHERE key IN ({marks})", tuple(keys))}


def last_cycle_event(conn: sqlite3.Connection) -> int:
    """The id of the newest finished sync cycle's event (0: none kept): grows each time the
    sync worker finishes a cycle, whatever the link did (the update agent's health check)."""
    row = conn.execute("SELECT max(id) FROM sync_event WHERE kind = 'cycle'").fetchone()
    return int(row[0] or 0)
