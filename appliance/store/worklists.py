"""Reads for the weekly lists (the pregnant women and under-5 children of a clinic, and the
visits due and missed): active enrollments by their program owner, their people's
attribute values and their events. The schedule itself is ``dhis2.schedule``'s.

Joins read ``store.tracker``'s tables; the rows returned are the lists' own.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

_CHUNK = 500  # well under SQLite's bound-parameter limit


def _chunks(items: Iterable[str]) -> Iterator[list[str]]:
    batch: list[str] = []
    for it in items:
        batch.append(it)
        if len(batch) == _CHUNK:
            yield batch
            batch = []
    if batch:
        yield batch


def _marks(n: int) -> str:
    return ",".join("?" * n)


def active_enrollments(conn: sqlite3.Connection, *, programs: Sequence[str],
                       org_units: Sequence[str]) -> list[dict[str, Any]]:
    """Active, undeleted enrollments in ``programs`` whose program owner (the enrolling
    org unit until a transfer) is one of ``org_units``; oldest first."""
    if not programs or not org_units:
        return []
    out: list[dict[str, Any]] = []
    for ous in _chunks(sorted(set(org_units))):
        rows = conn.execute(
            "SELECT e.uid, e.te, e.program, e.org_unit, e.enrolled_at, e.occurred_at, "
            "e.sync_state, COALESCE(po.org_unit, e.org_unit) AS owner "
            "FROM enrollment e JOIN tracked_entity t ON t.uid = e.te AND t.deleted = 0 "
            "LEFT JOIN program_owner po ON po.te = e.te AND po.program = e.program "
            f"WHERE e.deleted = 0 AND e.status = 'ACTIVE' AND e.program IN "
            f"({_marks(len(programs))}) AND COALESCE(po.org_unit, e.org_unit) IN "
            f"({_marks(len(ous))})", [*programs, *ous])
        out += [{"enrollment": r["uid"], "trackedEntity": r["te"], "program": r["program"],
                 "orgUnit": r["owner"], "enrolledAt": r["enrolled_at"],
                 "occurredAt": r["occurred_at"], "syncState": r["sync_state"]} for r in rows]
    return sorted(out, key=lambda e: (e["enrolledAt"] or "", e["enrollment"]))


def attribute_values(conn: sqlite3.Connection, tes: Iterable[str]
                     ) -> dict[str, dict[str, str]]:
    """tracked entity -> {attribute uid: value} (deleted values left out)."""
    out: dict[str, dict[str, str]] = {}
    for batch in _chunks(sorted(set(tes))):
        for r in conn.execute("SELECT te, attribute, value FROM te_attribute WHERE te IN "
                              f"({_marks(len(batch))}) AND value IS NOT NULL", batch):
            out.setdefault(r["te"], {})[r["attribute"]] = r["value"]
    return out


def enrollment_events(conn: sqlite3.Connection, enrollments: Iterable[str]
                      ) -> dict[str, list[dict[str, Any]]]:
    """enrollment -> its undeleted events (uid, stage, status, dates, sync state)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for batch in _chunks(sorted(set(enrollments))):
        for r in conn.execute(
                "SELECT uid, enrollment, program_stage, status, occurred_at, scheduled_at, "
                "sync_state FROM event WHERE deleted = 0 AND enrollment IN "
                f"({_marks(len(batch))})", batch):
            out.setdefault(r["enrollment"], []).append({
                "event": r["uid"], "programStage": r["program_stage"], "status": r["status"],
                "occurredAt": r["occurred_at"], "scheduledAt": r["scheduled_at"],
                "syncState": r["sync_state"]})
    return out


_RANK = {"synced": 0, "pending": 1, "rejected": 2, "conflict": 3}


def record_sync_states(conn: sqlite3.Connection, te: str) -> dict[str, Any]:
    """One person's sync states as the record page shows them: the person (the worst of
    the row and its attribute values), each attribute, each enrollment and each event
    (the worst of the row and its data values), and each data value."""
    def worst(states: Iterable[str]) -> str:
        return max(states, key=lambda s: _RANK.get(s, 1), default="synced")
    row = conn.execute("SELECT sync_state FROM tracked_entity WHERE uid = ?", (te,)).fetchone()
    if row is None:
        return {}
    attrs = {r["attribute"]: r["sync_state"] for r in conn.execute(
        "SELECT attribute, sync_state FROM te_attribute WHERE te = ?", (te,))}
    enrollments = {r["uid"]: r["sync_state"] for r in conn.execute(
        "SELECT uid, sync_state FROM enrollment WHERE te = ? AND deleted = 0", (te,))}
    events: dict[str, str] = {}
    values: dict[str, dict[str, str]] = {}
    for r in conn.execute(
            "SELECT ev.uid, ev.sync_state, v.data_element, v.sync_state AS vstate "
            "FROM event ev LEFT JOIN event_value v ON v.event = ev.uid "
            "WHERE ev.te = ? AND ev.deleted = 0", (te,)):
        events[r["uid"]] = worst([events.get(r["uid"], r["sync_state"]), r["sync_state"],
                                  *([r["vstate"]] if r["vstate"] else [])])
        if r["data_element"]:
            values.setdefault(r["uid"], {})[r["data_element"]] = r["vstate"]
    return {"trackedEntity": worst([row["sync_state"], *attrs.values()]),
            "attributes": attrs, "enrollments": enrollments, "events": events,
            "dataValues": values}


def enrollment_owner(conn: sqlite3.Connection, enrollment: str) -> str | None:
    """The org unit owning an enrollment's program for its person (None: no such one)."""
    r = conn.execute(
        "SELECT COALESCE(po.org_unit, e.org_unit) AS owner FROM enrollment e "
        "LEFT JOIN program_owner po ON po.te = e.te AND po.program = e.program "
        "WHERE e.uid = ? AND e.deleted = 0", (enrollment,)).fetchone()
    return None if r is None else str(r["owner"])


def person_org_unit(conn: sqlite3.Connection, te: str) -> str | None:
    r = conn.execute("SELECT org_unit FROM tracked_entity WHERE uid = ? AND deleted = 0",
                     (te,)).fetchone()
    return None if r is None else str(r["org_unit"])


def event_values(conn: sqlite3.Connection, events: Iterable[str]) -> dict[str, dict[str, str]]:
    """event -> {data element: value} (deleted values left out)."""
    out: dict[str, dict[str, str]] = {}
    for batch in _chunks(sorted(set(events))):
        for r in conn.execute("SELECT event, data_element, value FROM event_value WHERE event "
                              f"IN ({_marks(len(batch))}) AND value IS NOT NULL", batch):
            out.setdefault(r["event"], {})[r["data_element"]] = r["value"]
    return out
