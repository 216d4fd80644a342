"""The sync worker's reads and writes of the tracker tables (owned by ``store.tracker``).

* the push queue: pending rows of ``tracked_entity``, ``te_attribute``, ``enrollment``,
  ``event``, ``event_value``, ``relationship`` and ``program_owner`` (``pending``), and the
  rows of the objects a chunk names (``object_rows``);
* acknowledgements: a sent row becomes ``synced`` (or ``rejected``) only if its HLC is
  still the one sent (``mark``);
* pulled records: national's header fields and its attribute and data values written as
  national's (``write_header``, ``write_cell``), deletions applied (``write_header`` with
  ``deleted``), the search index kept up to date.

Rows are addressed by (table, key): ``(uid,)`` for the four object tables,
``(te, attribute)``, ``(event, data_element)`` and ``(te, program)`` for the others.
Conflict decisions are the sync layer's; this module only reads and writes.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import audit, search
from .db import Tx
from .hlc import to_iso

KEY_COLS: dict[str, tuple[str, ...]] = {
    "tracked_entity": ("uid",), "te_attribute": ("te", "attribute"),
    "enrollment": ("uid",), "event": ("uid",), "event_value": ("event", "data_element"),
    "relationship": ("uid",), "program_owner": ("te", "program"),
    "potential_duplicate": ("uid",)}
OBJECT_TABLES = ("tracked_entity", "enrollment", "event", "relationship")
# header columns national's JSON carries, per object table (what a pull compares and writes)
HEADER_COLS: dict[str, tuple[str, ...]] = {
    "tracked_entity": ("type", "org_unit", "inactive", "geometry", "deleted"),
    "enrollment": ("te", "program", "org_unit", "status", "enrolled_at", "occurred_at",
                   "completed_at", "follow_up", "geometry", "deleted"),
    "event": ("enrollment", "te", "program", "program_stage", "org_unit", "status",
              "occurred_at", "scheduled_at", "completed_at", "aoc", "follow_up", "geometry",
              "deleted"),
    "relationship": ("type", "from_doc", "to_doc", "bidirectional", "deleted"),
}


def _where(table: str) -> str:
    return " AND ".join(f"{c}=?" for c in KEY_COLS[table])


def _marks(n: int) -> str:
    return ",".join("?" * n)


def _chunks(items: Sequence[Any], n: int = 500) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), n):
        yield items[i:i + n]


# -- the push queue -------------------------------------------------------------------------
@dataclass
class Pending:
    """What is pending, by object: deleted objects (kind, uid), and the live objects with
    something to push, each with the tracked entity it belongs to (its 'family')."""

    deleted: list[tuple[str, str]] = field(default_factory=list)
    live: list[tuple[str, str, str]] = field(default_factory=list)  # (kind, uid, family)
    owners: list[tuple[str, str, str, int]] = field(default_factory=list)  # te, program, ou, hlc
    weight: dict[str, int] = field(default_factory=dict)  # uid -> pending cells (te, ev)


def pending(conn: sqlite3.Connection) -> Pending:
    """Every pending object, oldest edit first within each kind."""
    out = Pending()
    te_live: dict[str, int] = {}
    for uid, hlc, deleted in conn.execute(
            "SELECT uid, hlc, deleted FROM tracked_entity WHERE sync_state='pending'"):
        if deleted:
            out.deleted.append(("te", uid))
        else:
            te_live[uid] = hlc
    for te, hlc, n in conn.execute(
            "SELECT a.te, min(a.hlc), count(*) FROM te_attribute a JOIN tracked_entity t ON "
            "t.uid=a.te WHERE a.sync_state='pending' AND t.deleted=0 GROUP BY a.te"):
        te_live[te] = min(hlc, te_live.get(te, hlc))
        out.weight[te] = n
    out.live += [("te", u, u) for u, _ in sorted(te_live.items(), key=lambda x: x[1])]
    for uid, te, deleted in conn.execute(
            "SELECT uid, te, deleted FROM enrollment WHERE sync_state='pending' ORDER BY hlc"):
        if deleted:
            out.deleted.append(("en", uid))
        else:
            out.live.append(("en", uid, te))
    ev_live: dict[str, tuple[int, str]] = {}
    for uid, te, hlc, deleted in conn.execute(
            "SELECT uid, te, hlc, deleted FROM event WHERE sync_state='pending'"):
        if deleted:
            out.deleted.append(("ev", uid))
        else:
            ev_live[uid] = (hlc, te or uid)
    for ev, te, hlc, n in conn.execute(
            "SELECT v.event, e.te, min(v.hlc), count(*) FROM event_value v JOIN event e ON "
            "e.uid=v.event WHERE v.sync_state='pending' AND e.deleted=0 GROUP BY v.event"):
        out.weight[ev] = n
        old = ev_live.get(ev)
        ev_live[ev] = (min(hlc, old[0]) if old else hlc, te or ev)
    out.live += [("ev", u, fam) for u, (_, fam) in sorted(ev_live.items(), key=lambda x: x[1][0])]
    for uid, deleted in conn.execute(
            "SELECT uid, deleted FROM relationship WHERE sync_state='pending' ORDER BY hlc"):
        if deleted:
            out.deleted.append(("rel", uid))
        else:
            out.live.append(("rel", uid, ""))
    out.owners = [(r[0], r[1], r[2], r[3]) for r in conn.execute(
        "SELECT te, program, org_unit, hlc FROM program_owner WHERE sync_state='pending' "
        "ORDER BY hlc")]
    return out


def pending_duplicates(conn: sqlite3.Connection) -> list[tuple[str, str, str, list[str], int]]:
    """Possible duplicates flagged at the hub and not yet at national, once national holds
    both people: (uid, original, duplicate, reasons, hlc), oldest first."""
    return [(r[0], r[1], r[2], json.loads(r[3] or "[]"), int(r[4])) for r in conn.execute(
        "SELECT d.uid, d.original, d.duplicate, d.reasons, d.hlc FROM potential_duplicate d "
        "WHERE d.sync_state='pending' AND d.status='OPEN' AND NOT EXISTS (SELECT 1 FROM "
        "tracked_entity t WHERE t.uid IN (d.original, d.duplicate) AND t.sync_state<>'synced')"
        " ORDER BY d.hlc")]






_KIND_TABLE = {"te": "tracked_entity", "en": "enrollment", "ev": "event", "rel": "relationship"}


@dataclass
class ObjectRows:
    """An object's stored row and its pending children (attributes or data values)."""

    kind: str
    row: sqlite3.Row
    cells: list[sqlite3.Row]  # pending te_attribute / event_value rows


def object_rows(conn: sqlite3.Connection, objects: Sequence[tuple[str, str]]
                ) -> list[ObjectRows]:
    """The named objects' rows (with their pending cells), in the order given; objects
    that are gone are left out."""
    by_kind: dict[str, list[str]] = {}
    for kind, uid in objects:
        by_kind.setdefault(kind, []).append(uid)
    rows: dict[tuple[str, str], sqlite3.Row] = {}
    cells: dict[str, list[sqlite3.Row]] = {}
    for kind, uids in by_kind.items():
        table = _KIND_TABLE[kind]
        for part in _chunks(uids):
            for r in conn.execute(f"SELECT * FROM {table} WHERE uid IN ({_marks(len(part))})",
                                  tuple(part)):
                rows[(kind, r["uid"])] = r
            if kind == "te":
                for r in conn.execute(
                        "SELECT * FROM te_attribute WHERE sync_state='pending' AND te IN "
                        f"({_marks(len(part))}) ORDER BY te, attribute", tuple(part)):
                    cells.setdefault(r["te"], []).append(r)
            elif kind == "ev":
                for r in conn.execute(
                        "SELECT * FROM event_value WHERE sync_state='pending' AND event IN "
                        f"({_marks(len(part))}) ORDER BY event, data_element", tuple(part)):
                    cells.setdefault(r["event"], []).append(r)
    out = []
    for kind, uid in objects:
        r = rows.get((kind, uid))
        if r is not None:
            out.append(ObjectRows(kind, r, cells.get(uid, []) if kind in ("te", "ev") else []))
    return out


def rows_state(conn: sqlite3.Connection, table: str, key: Sequence[str]
               ) -> tuple[str, int] | None:
    """(sync_state, hlc) of one row."""
    r = conn.execute(f"SELECT sync_state, hlc FROM {table} WHERE {_where(table)}",
                     tuple(key)).fetchone()
    return None if r is None else (r[0], r[1])


def mark(tx: Tx, rows: Iterable[tuple[str, Sequence[str], int]], state: str,
         base: str | None) -> int:
    """Set ``state`` (synced or rejected) on each (table, key, hlc) still pending at that
    HLC; a synced row's ``base`` becomes ``base``. Returns how many rows changed."""
    n = 0
    for table, key, hlc in rows:
        if state == "synced":
            cur = tx.execute(f"UPDATE {table} SET sync_state='synced', base=? WHERE "
                             f"{_where(table)} AND sync_state='pending' AND hlc=?",
                             (base, *key, hlc))
        else:
            cur = tx.execute(f"UPDATE {table} SET sync_state=? WHERE {_where(table)} AND "
                             "sync_state='pending' AND hlc=?", (state, *key, hlc))
        n += cur.rowcount
    return n


def settle_deleted(tx: Tx, kind_table: str, uid: str, base: str | None) -> int:
    """A deletion national took: the deleted object's own pending values (and, for a
    tracked entity, its pending owner rows) have nothing left to push."""
    sql = {"tracked_entity": ("UPDATE te_attribute SET sync_state='synced', base=? WHERE te=? "
                              "AND sync_state='pending'",
                              "UPDATE program_owner SET sync_state='synced', base=? WHERE "
                              "te=? AND sync_state='pending'"),
           "event": ("UPDATE event_value SET sync_state='synced', base=? WHERE event=? AND "
                     "sync_state='pending'",)}.get(kind_table, ())
    return sum(tx.execute(q, (base, uid)).rowcount for q in sql)


def set_base(tx: Tx, table: str, key: Sequence[str], base: str | None) -> None:
    tx.execute(f"UPDATE {table} SET base=? WHERE {_where(table)}", (base, *key))


def implied_owners(tx: Tx, enrollments: Sequence[str], base: str | None) -> int:
    """An enrollment national accepted made its org unit the owner there too: the
    pending owner row it created (same org unit) needs no transfer."""
    n = 0
    for part in _chunks(list(enrollments)):
        cur = tx.execute(
            "UPDATE program_owner SET sync_state='synced', base=? WHERE sync_state='pending' "
            "AND EXISTS (SELECT 1 FROM enrollment e WHERE e.uid IN "
            f"({_marks(len(part))}) AND e.te = program_owner.te AND "
            "e.program = program_owner.program AND e.org_unit = program_owner.org_unit "
            "AND e.hlc >= program_owner.hlc)", (base, *part))
        n += cur.rowcount
    return n


# -- pulled records --------------------------------------------------------------------------
def row(conn: sqlite3.Connection, table: str, key: Sequence[str]) -> sqlite3.Row | None:
    return conn.execute(  # type: ignore[no-any-return]
        f"SELECT * FROM {table} WHERE {_where(table)}", tuple(key)).fetchone()


def rows_by_uid(conn: sqlite3.Connection, table: str, uids: Sequence[str]
                ) -> dict[str, sqlite3.Row]:
    out: dict[str, sqlite3.Row] = {}
    for part in _chunks(list(uids)):
        for r in conn.execute(f"SELECT * FROM {table} WHERE uid IN ({_marks(len(part))})",
                              tuple(part)):
            out[r["uid"]] = r
    return out


def cells_of(conn: sqlite3.Connection, table: str, parents: Sequence[str]
             ) -> dict[tuple[str, str], sqlite3.Row]:
    """te_attribute or event_value rows of these parents, by key."""
    parent = KEY_COLS[table][0]
    out: dict[tuple[str, str], sqlite3.Row] = {}
    for part in _chunks(list(parents)):
        for r in conn.execute(f"SELECT * FROM {table} WHERE {parent} IN "
                              f"({_marks(len(part))})", tuple(part)):
            out[(r[0], r[1])] = r
    return out


def owners_of(conn: sqlite3.Connection, tes: Sequence[str]) -> dict[tuple[str, str], sqlite3.Row]:
    return cells_of(conn, "program_owner", tes)


def header(table: str, r: Mapping[str, Any]) -> dict[str, Any]:
    """The header columns of a row (or of national's record in column names)."""
    return {c: r[c] for c in HEADER_COLS[table]}


def write_header(tx: Tx, table: str, uid: str, cols: Mapping[str, Any], *,
                 national_updated: str | None, created: str | None, stored_by: str | None,
                 notes: str | None = None, exists: bool) -> None:
    """Write national's header of an object as national's (synced, origin national,
    base national's updatedAt); the hub's own updatedAt moves so devices see it."""
    stamp = tx.stamp()
    now = to_iso(stamp)
    vals: dict[str, Any] = {**cols, "updated_at": now, "sync_state": "synced", "hlc": stamp,
                            "origin": "national", "base": national_updated}
    if table != "relationship":
        vals["stored_by"] = stored_by
    if notes is not None and table in ("enrollment", "event"):
        vals["notes"] = notes
    if exists:
        sets = ", ".join(f"{c}=?" for c in vals)
        tx.execute(f"UPDATE {table} SET {sets} WHERE uid=?", (*vals.values(), uid))
    else:
        vals.update(uid=uid, created_at=created or now)
        tx.execute(f"INSERT INTO {table}({', '.join(vals)}) VALUES ({_marks(len(vals))})",
                   tuple(vals.values()))
    audit.record(tx, entity=table, key=uid,
                 audit_type="DELETE" if cols.get("deleted") else "UPDATE" if exists else "CREATE",
                 old=None, new=json.dumps(dict(cols), ensure_ascii=False, default=str),
                 username=stored_by, client=None, via="sync")
    te = uid if table == "tracked_entity" else cols.get("te")
    if te and table != "tracked_entity":
        tx.execute("UPDATE tracked_entity SET updated_at=? WHERE uid=? AND updated_at < ?",
                   (now, te, now))


def write_cell(tx: Tx, table: str, key: tuple[str, str], value: str | None, *,
               national_updated: str | None, created: str | None, stored_by: str | None,
               old: sqlite3.Row | None, provided_elsewhere: bool = False) -> None:
    """Write national's attribute or data value (None: national has none) as national's."""
    stamp = tx.stamp()
    now = to_iso(stamp)
    cols = ["value", "created_at", "updated_at", "stored_by", "sync_state", "hlc", "origin",
            "base"]
    vals: list[Any] = [value, created or now, now, stored_by, "synced", stamp, "national",
                       national_updated]
    if table == "event_value":
        cols.append("provided_elsewhere")
        vals.append(int(provided_elsewhere))
    k1, k2 = KEY_COLS[table]
    updates = ", ".join(f"{c}=excluded.{c}" for c in cols if c != "created_at")
    tx.execute(f"INSERT INTO {table}({k1}, {k2}, {', '.join(cols)}) VALUES "
               f"({_marks(len(cols) + 2)}) ON CONFLICT({k1}, {k2}) DO UPDATE SET {updates}",
               (*key, *vals))
    kind = "DELETE" if value is None else "CREATE" if old is None or old["value"] is None \
        else "UPDATE"
    audit.record(tx, entity=table, key="|".join(key), audit_type=kind,
                 old=None if old is None else old["value"], new=value, username=stored_by,
                 client=None, via="sync")


def write_owner(tx: Tx, te: str, program: str, org_unit: str, national_updated: str | None,
                old: str | None) -> None:
    stamp = tx.stamp()
    tx.execute("INSERT INTO program_owner(te, program, org_unit, updated_at, sync_state, hlc, "
               "origin, base) VALUES (?,?,?,?,'synced',?,'national',?) ON CONFLICT(te, program) "
               "DO UPDATE SET org_unit=excluded.org_unit, updated_at=excluded.updated_at, "
               "sync_state='synced', hlc=excluded.hlc, origin='national', base=excluded.base",
               (te, program, org_unit, to_iso(stamp), stamp, national_updated))
    audit.record(tx, entity="program_owner", key=f"{te}|{program}",
                 audit_type="CREATE" if old is None else "UPDATE", old=old, new=org_unit,
                 username=None, client=None, via="sync")


def reindex(tx: Tx, tes: Sequence[str]) -> None:
    """The search index follows what a pull wrote."""
    if tes:
        search.reindex(tx, sorted(set(tes)))


def known_pending_tes(conn: sqlite3.Connection) -> list[str]:
    """Tracked entities national already holds (pulled, or pushed and acknowledged) with
    something pending under them: the ones a concurrent national edit could touch."""
    # set-based over the pending partial indexes: a correlated EXISTS per entity scans
    # event (no index on te) once per person, minutes for a month's registrations
    return [r[0] for r in conn.execute(
        "SELECT t.uid FROM tracked_entity t WHERE t.uid IN ("
        "SELECT uid FROM tracked_entity WHERE sync_state='pending' "
        "UNION SELECT te FROM te_attribute WHERE sync_state='pending' "
        "UNION SELECT te FROM enrollment WHERE sync_state='pending' "
        "UNION SELECT te FROM event WHERE sync_state='pending' "
        "UNION SELECT e.te FROM event_value v JOIN event e ON e.uid=v.event "
        "WHERE v.sync_state='pending') "
        "AND (t.origin='national' OR t.base IS NOT NULL) AND t.deleted=0 ORDER BY t.uid")]

