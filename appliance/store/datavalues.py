"""Aggregate data values and complete registrations: the write functions and reads.

Every function taking a ``Tx`` runs on the writer thread (see ``Store.write``).
Sync columns follow DESIGN.md §6: a local edit is ``pending`` with a fresh HLC stamp
and keeps the row's ``base`` (the national lastUpdated it was edited from); rows
applied from national are ``synced`` with ``base`` = national's lastUpdated.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from .db import Tx
from .hlc import physical_ms, to_iso
from .keys import CR_KEY, DV_KEY, key_sql, key_str
from .synclog import open_conflicts

DV_COLS = ("de, pe, ou, coc, aoc, value, comment, followup, stored_by, created, last_updated, "
           "deleted, sync_state, hlc, origin, base")


@dataclass(slots=True)
class ValueRow:
    """One validated incoming value (natural key already resolved to UIDs)."""

    index: int
    de: str
    pe: str
    ou: str
    coc: str
    aoc: str
    value: str | None
    comment: str | None
    followup: bool | None
    stored_by: str | None
    delete: bool            # deleted:true, DELETE strategy, or a non-significant zero
    zero_skip: bool = False  # a non-significant zero: ignored if new, deletes if present

    @property
    def key(self) -> tuple[str, str, str, str, str]:
        return (self.de, self.pe, self.ou, self.coc, self.aoc)


@dataclass
class Counts:
    imported: int = 0
    updated: int = 0
    ignored: int = 0
    deleted: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"imported": self.imported, "updated": self.updated,
                "ignored": self.ignored, "deleted": self.deleted}


@dataclass(frozen=True, slots=True)
class Provenance:
    """What an edit written here is to sync: its rows' ``sync_state`` and ``origin``."""

    state: str
    origin: str


LOCAL_EDIT = Provenance("pending", "local")  # a hub's edit: queued for national
NATIONAL = Provenance("synced", "national")  # national's own record (the stand-in's edits)


class DryRun(Exception):
    """Raised inside a write to roll it back while handing the counts out."""

    def __init__(self, counts: Counts) -> None:
        super().__init__("dry run")
        self.counts = counts


_OLD_COLS = "de, coc, aoc, value, comment, followup, created, deleted, base"
# positions in an existing-row tuple (the key is the dict key)
_VALUE, _COMMENT, _FOLLOWUP, _CREATED, _DELETED, _BASE = range(6)


def _existing(tx: Tx, rows: Sequence[ValueRow]) -> dict[tuple[str, ...], tuple[Any, ...]]:
    """Current rows for the payload's keys; the key's (ou, pe, de) prefix keeps this to the
    form's own cells even when other forms of the same clinic-month are already stored."""
    out: dict[tuple[str, ...], tuple[Any, ...]] = {}
    groups: dict[tuple[str, str], set[str]] = {}
    for r in rows:
        groups.setdefault((r.ou, r.pe), set()).add(r.de)
    cur = tx.conn.cursor()
    cur.row_factory = None  # plain tuples: this runs for every form on reporting day
    for (ou, pe), des in groups.items():
        marks = ",".join("?" * len(des))
        for de, coc, aoc, *rest in cur.execute(
                f"SELECT {_OLD_COLS} FROM datavalue WHERE ou=? AND pe=? AND de IN ({marks})",
                (ou, pe, *des)):
            out[(de, pe, ou, coc, aoc)] = tuple(rest)
    return out


# The writes go to SQLite as one JSON array per statement, not through executemany: the
# writer thread then holds the GIL for one bind instead of 150 bind/step round trips, and
# the event loop parses and validates the next forms meanwhile. Values common to the whole
# import (time, stamp, user, state) are bound once. Most of a form is new cells with no
# comment, follow-up or storedBy sharing one period, org unit and attribute combo: those
# go as [de, coc, value] and both their row and their audit row are made from that array,
# which halves SQLite's JSON work (bench/hub_bench.py measures the whole path).
_INSERT_PLAIN = (
    f"INSERT INTO datavalue({DV_COLS}) SELECT j->>0, ?7, ?8, j->>1, ?9, j->>2, NULL, 0, ?2, "
    "?3, ?3, 0, ?4, ?5, ?6, NULL FROM (SELECT value AS j FROM json_each(?1))")
_AUDIT_PLAIN = (
    "INSERT INTO audit(hlc, at, username, via, client, entity, key, audit_type, old_value, "
    "new_value) SELECT ?5, ?3, ?2, ?10, ?11, 'datavalue', "  # the key as keys.key_str makes it
    "(j->>0) || '|' || ?7 || '|' || ?8 || '|' || (j->>1) || '|' || ?9, 'CREATE', NULL, j->>2 "
    "FROM (SELECT value AS j FROM json_each(?1))")
_INSERT_FRESH = (
    f"INSERT INTO datavalue({DV_COLS}) SELECT j->>0, j->>1, j->>2, j->>3, j->>4, j->>5, "
    "j->>6, j->>7, coalesce(j->>8, ?2), ?3, ?3, 0, ?4, ?5, ?6, NULL FROM "
    "(SELECT value AS j FROM json_each(?1))")
_UPSERT = (
    f"INSERT INTO datavalue({DV_COLS}) SELECT j->>0, j->>1, j->>2, j->>3, j->>4, j->>5, "
    "j->>6, j->>7, coalesce(j->>8, ?2), j->>9, ?3, j->>10, ?4, ?5, ?6, j->>11 FROM "
    "(SELECT value AS j FROM json_each(?1)) WHERE 1 "  # WHERE: SQLite's upsert-after-SELECT rule
    "ON CONFLICT(ou, pe, de, coc, aoc) DO UPDATE SET value=excluded.value, "
    "comment=excluded.comment, followup=excluded.followup, stored_by=excluded.stored_by, "
    "last_updated=excluded.last_updated, deleted=excluded.deleted, "
    "sync_state=excluded.sync_state, hlc=excluded.hlc, origin=excluded.origin, "
    "base=excluded.base")
_AUDIT = (
    "INSERT INTO audit(hlc, at, username, via, client, entity, key, audit_type, old_value, "
    "new_value) SELECT ?2, ?3, ?4, ?5, ?6, 'datavalue', j->>0, j->>1, j->>2, j->>3 FROM "
    "(SELECT value AS j FROM json_each(?1))")


def upsert_values(tx: Tx, rows: list[tuple[Any, ...]], *, stored_by: str | None,
                  last_updated: str, sync_state: str, hlc: int, origin: str) -> None:
    """Write whole value rows (the one upsert of ``datavalue``, for LAN imports and the
    sync worker alike), as one JSON array in one statement: each of ``rows`` is (de, pe,
    ou, coc, aoc, value, comment, followup, stored_by, created, deleted, base), a NULL
    stored_by taking ``stored_by``; the other columns are common to all. A stored row
    keeps its ``created`` and takes every other column."""
    tx.execute(_UPSERT, (_json_rows(rows), stored_by, last_updated, sync_state, hlc, origin))


def import_values(tx: Tx, rows: Sequence[ValueRow], *, username: str, via: str = "api",
                  client: str | None = None, strategy: str = "CREATE_AND_UPDATE",
                  provenance: Provenance = LOCAL_EDIT, dry_run: bool = False,
                  audit: bool = True) -> Counts:
    """Apply validated values as DHIS2's importer does, counting as it counts.

    Audit rows of one key keep payload order; rows of different keys in one import share
    a stamp and time, and new cells' rows come first."""
    counts = Counts()
    existing = _existing(tx, rows)
    stamp = tx.stamp()
    now = to_iso(stamp)
    state, origin = provenance.state, provenance.origin
    deleting = strategy == "DELETE"
    plain: dict[tuple[str, str, str], list[tuple[Any, ...]]] = {}  # (pe, ou, aoc): [de, coc, v]
    fresh: list[tuple[Any, ...]] = []    # de, pe, ou, coc, aoc, value, comment, followup, by
    changed: list[tuple[Any, ...]] = []  # the same, then created, deleted, base
    audits: list[tuple[Any, ...]] = []   # key, type, old, new (new cells' are made in SQL)
    entry: tuple[str, str, Any, Any]
    for r in rows:
        key = (r.de, r.pe, r.ou, r.coc, r.aoc)
        old = existing.get(key)
        live = old is not None and not old[_DELETED]
        by = r.stored_by or None
        if deleting or r.delete or r.zero_skip:
            if old is None or not live:
                counts.ignored += 1
                continue
            counts.deleted += 1
            changed.append((*key, old[_VALUE], old[_COMMENT], old[_FOLLOWUP], by, old[_CREATED],
                            1, old[_BASE]))
            existing[key] = (old[_VALUE], old[_COMMENT], old[_FOLLOWUP], old[_CREATED], 1,
                             old[_BASE])
            entry = (key_str(key), "DELETE", old[_VALUE], None)
        elif live:
            assert old is not None
            followup = int(r.followup) if r.followup is not None else old[_FOLLOWUP]
            if strategy == "CREATE" or (old[_VALUE] == r.value and old[_COMMENT] == r.comment
                                        and old[_FOLLOWUP] == followup):
                counts.ignored += 1
                continue
            counts.updated += 1
            changed.append((*key, r.value, r.comment, followup, by, old[_CREATED], 0, old[_BASE]))
            existing[key] = (r.value, r.comment, followup, old[_CREATED], 0, old[_BASE])
            entry = (key_str(key), "UPDATE", old[_VALUE], r.value)
        else:
            if strategy == "UPDATE":
                counts.ignored += 1
                continue
            counts.imported += 1
            followup = int(bool(r.followup))
            if old is None:  # a cell never stored, and not earlier in this payload
                existing[key] = (r.value, r.comment, followup, now, 0, None)
                if r.comment is None and not followup and by is None:
                    plain.setdefault((r.pe, r.ou, r.aoc), []).append((r.de, r.coc, r.value))
                    continue
                fresh.append((*key, r.value, r.comment, followup, by))
                entry = (key_str(key), "CREATE", None, r.value)
            else:  # a deleted cell revived
                changed.append((*key, r.value, r.comment, followup, by, now, 0, old[_BASE]))
                existing[key] = (r.value, r.comment, followup, now, 0, old[_BASE])
                entry = (key_str(key), "CREATE", old[_VALUE], r.value)
        if audit:
            audits.append(entry)
    if dry_run:
        raise DryRun(counts)
    common = (username, now, state, stamp, origin)
    for (pe, ou, aoc), cells in plain.items():
        cells_json = _json_rows(cells)
        tx.execute(_INSERT_PLAIN, (cells_json, *common, pe, ou, aoc))
        if audit:
            tx.execute(_AUDIT_PLAIN, (cells_json, *common, pe, ou, aoc, via, client))
    if fresh:
        tx.execute(_INSERT_FRESH, (_json_rows(fresh), *common))
    if changed:
        # a key both inserted and changed in one payload: the change comes after the insert
        upsert_values(tx, changed, stored_by=username, last_updated=now, sync_state=state,
                      hlc=stamp, origin=origin)
    if audits:
        tx.execute(_AUDIT, (_json_rows(audits), stamp, now, username, via, client))
    return counts


def _json_rows(rows: list[tuple[Any, ...]]) -> str:
    return orjson.dumps(rows).decode()


# -- reads ------------------------------------------------------------------------------
def query_values(conn: sqlite3.Connection, *, org_units: Sequence[str], periods: Sequence[str] | None,
                 data_elements: Sequence[str] | None, start: str | None = None,
                 end: str | None = None, last_updated: str | None = None,
                 include_deleted: bool = False, aocs: Sequence[str] | None = None,
                 limit: int | None = None) -> list[sqlite3.Row]:
    """Values for the given org units (already expanded for children), periods and elements."""
    where, params = [], []  # type: ignore[var-annotated]
    if org_units:
        where.append(f"ou IN ({','.join('?' * len(org_units))})")
        params.extend(org_units)
    if periods is not None:
        where.append(f"pe IN ({','.join('?' * len(periods))})")
        params.extend(periods)
    if data_elements is not None:
        where.append(f"de IN ({','.join('?' * len(data_elements))})")
        params.extend(data_elements)
    if aocs:
        where.append(f"aoc IN ({','.join('?' * len(aocs))})")
        params.extend(aocs)
    if last_updated:
        where.append("last_updated >= ?")
        params.append(last_updated)
    if not include_deleted:
        where.append("deleted = 0")
    sql = f"SELECT {DV_COLS} FROM datavalue"
    if where:
        sql += " WHERE " + " AND ".join(where)
    # DHIS2's export SQL has no ORDER BY (SpringDataValueSetStore): a lastUpdated read is
    # answered through its lastupdated index, oldest write first and one import's values
    # in the order it listed them. Values written together are listed here by data
    # element with org units fastest, the order the hub pushes them (sync/push.py
    # form_order): listed by org unit instead, a clinic's four forms were longer than
    # gzip's window and the echo of a push cost 9 B a value against the push's 5.6
    sql += (" ORDER BY last_updated, pe, aoc, de, coc, ou" if last_updated
            else " ORDER BY ou, pe, de, coc, aoc")
    if limit:
        sql += f" LIMIT {int(limit)}"
    rows = conn.execute(sql, params).fetchall()
    if start or end:
        from ..dhis2.periods import parse_period  # periods filter by date range
        out = []
        for r in rows:
            try:
                p = parse_period(r["pe"])
            except ValueError:
                continue
            if (not start or p.start.isoformat() >= start) and (not end or p.end.isoformat() <= end):
                out.append(r)
        rows = out
    return rows


def value_json(r: sqlite3.Row | dict[str, Any]) -> dict[str, Any]:
    out = {"dataElement": r["de"], "period": r["pe"], "orgUnit": r["ou"],
           "categoryOptionCombo": r["coc"], "attributeOptionCombo": r["aoc"],
           "value": r["value"], "storedBy": r["stored_by"], "created": r["created"],
           "lastUpdated": r["last_updated"], "followup": bool(r["followup"]),
           "deleted": bool(r["deleted"])}
    if r["comment"] is not None:
        out["comment"] = r["comment"]
    if out["value"] is None:
        del out["value"]
    return out


# -- complete registrations ----------------------------------------------------------------
CR_COLS = ("ds, pe, ou, aoc, date, stored_by, completed, last_updated, deleted, sync_state, "
           "hlc, origin, base")
_UPSERT_CR = (
    f"INSERT INTO complete_registration({CR_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?) "
    "ON CONFLICT(ds, pe, ou, aoc) DO UPDATE SET date=excluded.date, "
    "stored_by=excluded.stored_by, completed=excluded.completed, "
    "last_updated=excluded.last_updated, deleted=excluded.deleted, "
    "sync_state=excluded.sync_state, hlc=excluded.hlc, origin=excluded.origin, "
    "base=excluded.base")


def upsert_registration(tx: Tx, row: Sequence[Any]) -> None:
    """Write one whole completion row, in ``CR_COLS`` order (the one upsert of
    ``complete_registration``): a stored row takes every column."""
    tx.execute(_UPSERT_CR, row)



def local_day(stamp: int) -> str:
    """The stamp's calendar day where the hub is (the system's zone: Asia/Dhaka on the
    image), as DHIS2 dates a completion in its server's zone: a form completed at 01:00 in
    Ramu is dated that day, not the day before in UTC."""
    return datetime.fromtimestamp(physical_ms(stamp) / 1000).date().isoformat()


def register_complete(tx: Tx, regs: Iterable[dict[str, Any]], *, username: str,
                      provenance: Provenance = LOCAL_EDIT, via: str = "api",
                      client: str | None = None) -> Counts:
    counts = Counts()
    stamp = tx.stamp()
    now = to_iso(stamp)
    state, origin = provenance.state, provenance.origin
    for r in regs:
        key = (r["ds"], r["pe"], r["ou"], r["aoc"])
        old = tx.execute(f"SELECT {CR_COLS} FROM complete_registration WHERE ds=? AND pe=? AND ou=? "
                         "AND aoc=?", key).fetchone()
        completed = int(r.get("completed", True))
        delete = bool(r.get("delete"))
        if delete:
            if old is None or old["deleted"]:
                counts.ignored += 1
                continue
            counts.deleted += 1
            audit_type = "DELETE"
        elif old is not None and not old["deleted"]:
            if old["completed"] == completed:
                counts.ignored += 1
                continue
            counts.updated += 1
            audit_type = "UPDATE"
        else:
            counts.imported += 1
            audit_type = "CREATE"
        # the row keeps its base: national has not seen this edit
        upsert_registration(
            tx, (*key, r.get("date") or local_day(stamp), r.get("storedBy") or username, completed, now,
                 int(delete), state, stamp, origin, old["base"] if old is not None else None))
        tx.execute("INSERT INTO audit(hlc, at, username, via, client, entity, key, audit_type, "
                   "old_value, new_value) VALUES (?,?,?,?,?,?,?,?,?,?)",
                   (stamp, now, username, via, client, "complete_registration", key_str(key),
                    audit_type, json.dumps(bool(old["completed"])) if old is not None else None,
                    None if delete else json.dumps(bool(completed))))
    return counts


def registration_json(r: sqlite3.Row) -> dict[str, Any]:
    return {"period": r["pe"], "dataSet": r["ds"], "organisationUnit": r["ou"],
            "attributeOptionCombo": r["aoc"], "date": r["date"], "storedBy": r["stored_by"],
            "completed": bool(r["completed"]), "lastUpdated": r["last_updated"]}


def sync_counts(conn: sqlite3.Connection) -> tuple[int, int, int]:
    """(pending, rejected, open conflicts) over values and completions: the sync backlog
    the status page, the sync worker and the health agent all report."""
    pending, rejected = conn.execute(
        "SELECT (SELECT count(*) FROM datavalue WHERE sync_state='pending') + "
        "(SELECT count(*) FROM complete_registration WHERE sync_state='pending'), "
        "(SELECT count(*) FROM datavalue WHERE sync_state='rejected') + "
        "(SELECT count(*) FROM complete_registration WHERE sync_state='rejected')").fetchone()
    return pending, rejected, open_conflicts(conn)


def state_counts(conn: sqlite3.Connection) -> dict[str, dict[str, int]]:
    """Rows per sync state (pending, synced, conflict, rejected) of values and of
    completions: the status page's and /api/hub/status's counts."""
    values = {s: 0 for s in ("pending", "synced", "conflict", "rejected")}
    values.update(conn.execute("SELECT sync_state, count(*) FROM datavalue GROUP BY sync_state"))
    regs = dict(conn.execute(
        "SELECT sync_state, count(*) FROM complete_registration GROUP BY sync_state"))
    return {"values": values, "registrations": regs}


def live_value(conn: sqlite3.Connection, key: Sequence[Any]) -> sqlite3.Row | None:
    """A live (not deleted) cell's row, holding its ``value``; None if there is none."""
    return conn.execute(  # type: ignore[no-any-return]
        "SELECT value FROM datavalue WHERE de=? AND pe=? AND ou=? AND coc=? AND aoc=? "
        "AND deleted=0", tuple(key)).fetchone()


def form_sync(conn: sqlite3.Connection, ou: str, pe: str, aoc: str, des: set[str]
              ) -> dict[tuple[str, str], tuple[str, str | None, str | None, int]]:
    """A form's cells' sync state: (de, coc) -> (sync_state, national's error code and
    message if it refused the row, deleted), tombstones included."""
    out = {}
    for r in conn.execute(
            "SELECT d.de, d.coc, d.sync_state, r.error_code, r.message, d.deleted "
            "FROM datavalue d LEFT JOIN sync_rejection r ON r.entity='datavalue' AND r.key = "
            f"{key_sql('datavalue', 'd')} WHERE d.ou=? AND d.pe=? AND d.aoc=?", (ou, pe, aoc)):
        if r[0] in des:
            out[(r[0], r[1])] = (r[2], r[3], r[4], r[5])
    return out


def registration(conn: sqlite3.Connection, key: Sequence[str]) -> sqlite3.Row | None:
    """A live completion (completed, stored_by, date, last_updated), or None."""
    return conn.execute(  # type: ignore[no-any-return]
        "SELECT completed, stored_by, date, last_updated FROM complete_registration "
        "WHERE ds=? AND pe=? AND ou=? AND aoc=? AND deleted=0", tuple(key)).fetchone()


def registration_sync(conn: sqlite3.Connection, key: Sequence[str]
                      ) -> tuple[str, str | None, str | None] | None:
    """A completion's (sync_state, error code, message if national refused it), or None."""
    r = conn.execute(
        "SELECT c.sync_state, r.error_code, r.message FROM complete_registration c "
        "LEFT JOIN sync_rejection r ON r.entity='complete_registration' AND r.key = "
        f"{key_sql('complete_registration', 'c')} "
        "WHERE c.ds=? AND c.pe=? AND c.ou=? AND c.aoc=?", tuple(key)).fetchone()
    return None if r is None else (r[0], r[1], r[2])


def synced_registrations(conn: sqlite3.Connection, data_sets: Sequence[str],
                          since: str) -> set[tuple[str, str, str, str]]:
    """Keys of live completions national accepted (or sent), changed since ``since``: what
    the hub believes national holds, to compare with national's list of them."""
    rows = conn.execute(
        "SELECT ds, pe, ou, aoc FROM complete_registration WHERE sync_state='synced' AND "
        f"deleted=0 AND completed=1 AND last_updated >= ? AND ds IN "
        f"({','.join('?' * len(data_sets))})", (since, *data_sets))
    return {(r[0], r[1], r[2], r[3]) for r in rows}


def query_registrations(conn: sqlite3.Connection, *, data_sets: Sequence[str],
                        org_units: Sequence[str], periods: Sequence[str] | None = None,
                        last_updated: str | None = None, include_deleted: bool = False
                        ) -> list[sqlite3.Row]:
    sql = (f"SELECT {CR_COLS} FROM complete_registration WHERE ds IN "
           f"({','.join('?' * len(data_sets))}) AND ou IN ({','.join('?' * len(org_units))})")
    params: list[Any] = [*data_sets, *org_units]
    if periods:
        sql += f" AND pe IN ({','.join('?' * len(periods))})"
        params += periods
    if last_updated:
        sql += " AND last_updated >= ?"
        params.append(last_updated)
    if not include_deleted:
        sql += " AND deleted = 0"
    return conn.execute(sql, params).fetchall()


# -- the sync worker's reads and writes ------------------------------------------------------
# entity name = table name: ``datavalue`` or ``complete_registration``
_COLS = {"datavalue": DV_COLS, "complete_registration": CR_COLS}
_WHERE = {"datavalue": " AND ".join(f"{c}=?" for c in DV_KEY),
          "complete_registration": " AND ".join(f"{c}=?" for c in CR_KEY)}
_ROW = {e: f"SELECT {_COLS[e]} FROM {e} WHERE {_WHERE[e]}" for e in _COLS}
_PENDING_KEYS = {"datavalue": f"SELECT {', '.join(DV_KEY)} FROM datavalue WHERE sync_state='pending'",
                 "complete_registration": (f"SELECT {', '.join(CR_KEY)} FROM complete_registration "
                                           "WHERE sync_state='pending'")}
_IS_PENDING = {e: f"SELECT 1 FROM {e} WHERE {_WHERE[e]} AND sync_state='pending'" for e in _COLS}
_PENDING_ROW = {
    "datavalue": ("SELECT de, pe, ou, coc, aoc, value, comment, followup, stored_by, deleted, "
                  f"hlc FROM datavalue WHERE {_WHERE['datavalue']} AND sync_state='pending'"),
    "complete_registration": (
        "SELECT ds, pe, ou, aoc, date, stored_by, completed, deleted, hlc FROM "
        f"complete_registration WHERE {_WHERE['complete_registration']} AND "
        "sync_state='pending'"),
}


def row_by_key(conn: sqlite3.Connection, entity: str, key: Sequence[str]) -> sqlite3.Row | None:
    """The stored row (``DV_COLS`` or ``CR_COLS``) at a natural key."""
    return conn.execute(_ROW[entity], key).fetchone()


def set_base(tx: Tx, entity: str, key: Sequence[str], base: str) -> None:
    """Record the national lastUpdated the row at ``key`` now supersedes."""
    tx.execute(f"UPDATE {entity} SET base=? WHERE {_WHERE[entity]}", (base, *key))


def mark_synced(tx: Tx, entity: str, key: Sequence[str], hlc: int, base: str) -> None:
    """The row at ``key`` equals national's (lastUpdated ``base``), if still stamped ``hlc``."""
    tx.execute(f"UPDATE {entity} SET sync_state='synced', base=? WHERE {_WHERE[entity]} AND "
               "hlc=?", (base, *key, hlc))


def mark_acked(tx: Tx, entity: str, base: str,
               sent: Sequence[tuple[Sequence[str], int]]) -> None:
    """National accepted these (key, hlc): each row still pending with that stamp is synced."""
    tx.executemany(f"UPDATE {entity} SET sync_state='synced', base=? WHERE {_WHERE[entity]} "
                   "AND hlc=? AND sync_state='pending'", [(base, *k, h) for k, h in sent])


def mark_rejected(tx: Tx, entity: str, key: Sequence[str], hlc: int) -> None:
    """National refused the row at ``key``, if it is still stamped ``hlc``."""
    tx.execute(f"UPDATE {entity} SET sync_state='rejected' WHERE {_WHERE[entity]} AND hlc=?",
               (*key, hlc))


def pending_keys(conn: sqlite3.Connection, entity: str) -> list[tuple[str, ...]]:
    """The natural keys of every pending row."""
    return [tuple(r) for r in conn.execute(_PENDING_KEYS[entity])]


def is_pending(conn: sqlite3.Connection, entity: str, key: Sequence[str]) -> bool:
    return conn.execute(_IS_PENDING[entity], key).fetchone() is not None


def pending_rows(conn: sqlite3.Connection, entity: str, keys: Iterable[Sequence[str]]
                 ) -> list[sqlite3.Row]:
    """The rows at ``keys`` that are still pending, in that order: the key, then value,
    comment, followup, stored_by, deleted, hlc (completions: date, stored_by, completed,
    deleted, hlc)."""
    sql = _PENDING_ROW[entity]
    out = []
    for k in keys:
        r = conn.execute(sql, k).fetchone()
        if r is not None:
            out.append(r)
    return out


def bases(conn: sqlite3.Connection, entity: str, keys: Iterable[Sequence[str]]
          ) -> list[str | None]:
    """The ``base`` (national lastUpdated the row reflects) of each key; None if no row."""
    sql = f"SELECT base FROM {entity} WHERE {_WHERE[entity]}"
    out: list[str | None] = []
    for k in keys:
        r = conn.execute(sql, tuple(k)).fetchone()
        out.append(r[0] if r is not None else None)
    return out


def pending_org_units_periods(conn: sqlite3.Connection) -> tuple[list[str], list[str]]:
    """The org units and the periods (each sorted) of pending values."""
    return (sorted({r[0] for r in conn.execute(
                "SELECT DISTINCT ou FROM datavalue WHERE sync_state='pending'")}),
            sorted({r[0] for r in conn.execute(
                "SELECT DISTINCT pe FROM datavalue WHERE sync_state='pending'")}))


def held_periods(conn: sqlite3.Connection) -> set[str]:
    """Every period the hub holds values in (once a day: it reads the whole table)."""
    return {r[0] for r in conn.execute("SELECT DISTINCT pe FROM datavalue")}


def oldest_pending_hlc(conn: sqlite3.Connection) -> int | None:
    """The smallest HLC stamp of a pending value or completion."""
    return conn.execute(
        "SELECT min(h) FROM (SELECT min(hlc) AS h FROM datavalue WHERE sync_state='pending' "
        "UNION ALL SELECT min(hlc) FROM complete_registration WHERE sync_state='pending')"
    ).fetchone()[0]
