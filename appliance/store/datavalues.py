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
from typing import Any

from .db import Tx
from .hlc import to_iso

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


class DryRun(Exception):
    """Raised inside a write to roll it back while handing the counts out."""

    def __init__(self, counts: Counts) -> None:
        super().__init__("dry run")
        self.counts = counts


def key_str(key: Sequence[str]) -> str:
    return "|".join(key)


def _existing(tx: Tx, rows: Sequence[ValueRow]) -> dict[tuple[str, ...], sqlite3.Row]:
    """Current rows for the payload's keys; the key's (ou, pe, de) prefix keeps this to the
    form's own cells even when other forms of the same clinic-month are already stored."""
    out: dict[tuple[str, ...], sqlite3.Row] = {}
    groups: dict[tuple[str, str], set[str]] = {}
    for r in rows:
        groups.setdefault((r.ou, r.pe), set()).add(r.de)
    for (ou, pe), des in groups.items():
        marks = ",".join("?" * len(des))
        for row in tx.execute(f"SELECT {DV_COLS} FROM datavalue WHERE ou=? AND pe=? "
                              f"AND de IN ({marks})", (ou, pe, *des)):
            out[(row["de"], row["pe"], row["ou"], row["coc"], row["aoc"])] = row
    return out


def import_values(tx: Tx, rows: Sequence[ValueRow], *, username: str, via: str = "api",
                  client: str | None = None, strategy: str = "CREATE_AND_UPDATE",
                  role: str = "hub", dry_run: bool = False, audit: bool = True) -> Counts:
    """Apply validated values as DHIS2's importer does, counting as it counts."""
    counts = Counts()
    existing = _existing(tx, rows)
    stamp = tx.stamp()
    now = to_iso(stamp)
    state, origin = ("pending", "local") if role == "hub" else ("synced", "national")
    upserts: list[tuple[Any, ...]] = []
    inserts: list[tuple[Any, ...]] = []
    audits: list[tuple[Any, ...]] = []
    for r in rows:
        old = existing.get(r.key)
        live = old is not None and not old["deleted"]
        if strategy == "DELETE" or r.delete or r.zero_skip:
            if old is None or not live:
                counts.ignored += 1
                continue
            counts.deleted += 1
            new = (r.de, r.pe, r.ou, r.coc, r.aoc, old["value"], old["comment"], old["followup"],
                   r.stored_by or username, old["created"], now, 1, state, stamp, origin, old["base"])
            audit_type, old_v, new_v = "DELETE", old["value"], None
        elif live:
            assert old is not None
            followup = int(r.followup) if r.followup is not None else old["followup"]
            same = (old["value"] == r.value and old["comment"] == r.comment
                    and old["followup"] == followup)
            if same or strategy == "CREATE":
                counts.ignored += 1
                continue
            counts.updated += 1
            new = (r.de, r.pe, r.ou, r.coc, r.aoc, r.value, r.comment, followup,
                   r.stored_by or username, old["created"], now, 0, state, stamp, origin, old["base"])
            audit_type, old_v, new_v = "UPDATE", old["value"], r.value
        else:
            if strategy == "UPDATE":
                counts.ignored += 1
                continue
            counts.imported += 1
            base = old["base"] if old is not None else None
            new = (r.de, r.pe, r.ou, r.coc, r.aoc, r.value, r.comment, int(bool(r.followup)),
                   r.stored_by or username, now, now, 0, state, stamp, origin, base)
            audit_type, old_v, new_v = "CREATE", old["value"] if old is not None else None, r.value
        (upserts if old is not None else inserts).append(new)
        existing[r.key] = _as_row(new)  # so a duplicate later in the payload sees this one
        if audit:
            audits.append((stamp, now, username, via, client, "datavalue", key_str(r.key),
                           audit_type, old_v, new_v))
    if dry_run:
        raise DryRun(counts)
    _upsert(tx, upserts, inserts)
    if audits:
        tx.executemany("INSERT INTO audit(hlc, at, username, via, client, entity, key, audit_type, "
                       "old_value, new_value) VALUES (?,?,?,?,?,?,?,?,?,?)", audits)
    return counts


_DV_NAMES = [c.strip() for c in DV_COLS.split(",")]


def _as_row(t: tuple[Any, ...]) -> Any:
    return dict(zip(_DV_NAMES, t, strict=True))


def _upsert(tx: Tx, rows: list[tuple[Any, ...]], fresh: list[tuple[Any, ...]] | None = None
            ) -> None:
    if fresh:  # keys not stored yet: a plain INSERT skips the conflict machinery
        tx.executemany(f"INSERT INTO datavalue({DV_COLS}) VALUES "
                       "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", fresh)
    if not rows:
        return
    tx.executemany(
        f"INSERT INTO datavalue({DV_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) "
        "ON CONFLICT(ou, pe, de, coc, aoc) DO UPDATE SET value=excluded.value, "
        "comment=excluded.comment, followup=excluded.followup, stored_by=excluded.stored_by, "
        "last_updated=excluded.last_updated, deleted=excluded.deleted, "
        "sync_state=excluded.sync_state, hlc=excluded.hlc, origin=excluded.origin, "
        "base=excluded.base", rows)


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
    sql += " ORDER BY ou, pe, de, coc, aoc"
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


def register_complete(tx: Tx, regs: Iterable[dict[str, Any]], *, username: str, role: str = "hub",
                      via: str = "api", client: str | None = None) -> Counts:
    counts = Counts()
    stamp = tx.stamp()
    now = to_iso(stamp)
    state, origin = ("pending", "local") if role == "hub" else ("synced", "national")
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
        tx.execute(
            f"INSERT INTO complete_registration({CR_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?) "
            "ON CONFLICT(ds, pe, ou, aoc) DO UPDATE SET date=excluded.date, "
            "stored_by=excluded.stored_by, completed=excluded.completed, "
            "last_updated=excluded.last_updated, deleted=excluded.deleted, "
            "sync_state=excluded.sync_state, hlc=excluded.hlc, origin=excluded.origin",
            (*key, r.get("date") or now[:10], r.get("storedBy") or username, completed, now,
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
    conflicts = conn.execute(
        "SELECT count(*) FROM sync_conflict WHERE resolved_at IS NULL").fetchone()[0]
    return pending, rejected, conflicts
