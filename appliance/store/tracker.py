"""Tracker (individual records): tracked entities, enrollments, events, relationships.

The family owns ``tracked_entity``, ``te_attribute``, ``enrollment``, ``event``,
``event_value``, ``relationship``, ``program_owner``, ``potential_duplicate`` and
``reserved_value`` (migration 0007). Writes take a ``Tx`` and run on the writer thread;
reads take a connection and return DHIS2 2.41 tracker JSON (camelCase, the SDK's shapes).

Sync columns follow ``datavalues``: a write stamps the rows it changes with one HLC stamp
and the ``Provenance``'s state and origin, and keeps their ``base``. Attribute values and
event data values are written field by field: an unchanged value keeps its row (and its
sync state); a null or empty value deletes the field, kept as a row with value NULL so
sync can push the deletion.
"""

from __future__ import annotations

import itertools
import json
import re
import secrets
import sqlite3
import string
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..dhis2.timefmt import format_ts, parse_ts
from ..dhis2.uid import generate_uid
from ..errors import BadRequest, Conflict, NotFound
from . import audit, search
from .datavalues import LOCAL_EDIT, Provenance
from .db import Tx
from .hlc import to_iso

TRACKED_ENTITY = "TRACKED_ENTITY"
ENROLLMENT = "ENROLLMENT"
EVENT = "EVENT"
RELATIONSHIP = "RELATIONSHIP"
TRACKER_TYPES = (TRACKED_ENTITY, ENROLLMENT, EVENT, RELATIONSHIP)
STRATEGIES = ("CREATE_AND_UPDATE", "CREATE", "UPDATE", "DELETE")
CREATED, UPDATED, DELETED, IGNORED = "created", "updated", "deleted", "ignored"
DUPLICATE_STATUSES = ("OPEN", "INVALID", "MERGED")
SYNC_TABLES = ("tracked_entity", "te_attribute", "enrollment", "event", "event_value",
               "relationship", "program_owner", "potential_duplicate")
_REF_KINDS = ("trackedEntity", "enrollment", "event")
_CHUNK = 500  # uids per IN (...) list


# -- incoming objects (validated by the caller) -------------------------------------------
@dataclass(slots=True, kw_only=True)
class TrackedEntityIn:
    uid: str
    type: str
    org_unit: str
    attributes: list[tuple[str, str | None]] = field(default_factory=list)
    inactive: bool = False
    geometry: str | None = None  # GeoJSON text
    created_at_client: str | None = None
    updated_at_client: str | None = None
    deleted: bool = False  # true: delete it (as importStrategy=DELETE would)


@dataclass(slots=True, kw_only=True)
class EnrollmentIn:
    uid: str
    te: str
    program: str
    org_unit: str
    status: str = "ACTIVE"
    enrolled_at: str | None = None
    occurred_at: str | None = None
    completed_at: str | None = None
    follow_up: bool = False
    notes: list[dict[str, Any]] = field(default_factory=list)  # DHIS2 notes; appended
    geometry: str | None = None
    created_at_client: str | None = None
    updated_at_client: str | None = None
    deleted: bool = False


@dataclass(slots=True, kw_only=True)
class EventIn:
    uid: str
    program: str
    program_stage: str
    org_unit: str
    enrollment: str | None = None  # None in an event program
    te: str | None = None          # taken from the enrollment when not given
    status: str = "ACTIVE"
    occurred_at: str | None = None
    scheduled_at: str | None = None
    completed_at: str | None = None
    aoc: str | None = None         # None keeps the stored one
    data_values: list[tuple[str, str | None, bool]] = field(default_factory=list)
    notes: list[dict[str, Any]] = field(default_factory=list)
    follow_up: bool = False
    geometry: str | None = None
    created_at_client: str | None = None
    updated_at_client: str | None = None
    deleted: bool = False


@dataclass(slots=True, kw_only=True)
class RelationshipIn:
    """``from_doc``/``to_doc`` as DHIS2 sends them: ``{"trackedEntity": {"trackedEntity":
    uid}}`` (or ``{"trackedEntity": uid}``), likewise enrollment and event. Relationships
    cannot be updated in DHIS2; the client times are accepted but not stored."""

    uid: str
    type: str
    from_doc: dict[str, Any]
    to_doc: dict[str, Any]
    bidirectional: bool = False
    created_at_client: str | None = None
    updated_at_client: str | None = None
    deleted: bool = False


@dataclass(slots=True)
class Bundle:
    tracked_entities: list[TrackedEntityIn] = field(default_factory=list)
    enrollments: list[EnrollmentIn] = field(default_factory=list)
    events: list[EventIn] = field(default_factory=list)
    relationships: list[RelationshipIn] = field(default_factory=list)


def _zero() -> dict[str, int]:
    return {CREATED: 0, UPDATED: 0, DELETED: 0, IGNORED: 0, "total": 0}


@dataclass
class BundleResult:
    """Per tracker type ``stats`` and per object ``(uid, trackerType, action)``, as the
    import report's ``bundleReport.typeReportMap`` needs them."""

    stats: dict[str, dict[str, int]] = field(
        default_factory=lambda: {t: _zero() for t in TRACKER_TYPES})
    objects: list[tuple[str, str, str]] = field(default_factory=list)

    def add(self, uid: str, tracker_type: str, action: str) -> None:
        s = self.stats[tracker_type]
        s[action] += 1
        s["total"] += 1
        self.objects.append((uid, tracker_type, action))

    @property
    def totals(self) -> dict[str, int]:
        out = _zero()
        for s in self.stats.values():
            for k, v in s.items():
                out[k] += v
        return out


# -- the write ---------------------------------------------------------------------------
def apply_bundle(tx: Tx, bundle: Bundle, *, username: str,
                 strategy: str = "CREATE_AND_UPDATE", provenance: Provenance = LOCAL_EDIT,
                 client: str | None = None, via: str = "api") -> BundleResult:
    """Write a validated bundle as DHIS2's importer does: tracked entities, enrollments,
    events, relationships; then deletions (DELETE, or objects flagged ``deleted``) in the
    reverse order. A stored object in the payload counts as updated (as DHIS2 counts it)
    even when only unchanged fields came, but only what changed is rewritten."""
    if strategy not in STRATEGIES:
        raise BadRequest(f"unknown importStrategy {strategy!r}")
    w = _Writer(tx, username, provenance, client, via)
    res = BundleResult()
    deleting = strategy == "DELETE"
    if not deleting:
        for te in bundle.tracked_entities:
            if not te.deleted:
                res.add(te.uid, TRACKED_ENTITY, w.tracked_entity(te, strategy))
        for en in bundle.enrollments:
            if not en.deleted:
                res.add(en.uid, ENROLLMENT, w.enrollment(en, strategy))
        for ev in bundle.events:
            if not ev.deleted:
                res.add(ev.uid, EVENT, w.event(ev, strategy))
        for rel in bundle.relationships:
            if not rel.deleted:
                res.add(rel.uid, RELATIONSHIP, w.relationship(rel, strategy))
    for rel in bundle.relationships:
        if deleting or rel.deleted:
            res.add(rel.uid, RELATIONSHIP, w.delete("relationship", rel.uid))
    for ev in bundle.events:
        if deleting or ev.deleted:
            res.add(ev.uid, EVENT, w.delete("event", ev.uid))
    for en in bundle.enrollments:
        if deleting or en.deleted:
            res.add(en.uid, ENROLLMENT, w.delete("enrollment", en.uid))
    for te in bundle.tracked_entities:
        if deleting or te.deleted:
            res.add(te.uid, TRACKED_ENTITY, w.delete("tracked_entity", te.uid))
    w.bump_parents()
    if w.touched:
        _reindex(tx, sorted(w.touched))
    return res


def _reindex(tx: Tx, te_uids: Sequence[str]) -> None:
    """Bring the search index up to date for these tracked entities, in the same Tx."""
    search.reindex(tx, te_uids)


def _blank(value: str | None) -> str | None:
    """DHIS2: a null or empty value deletes the field."""
    return None if value is None or value == "" else value


class _Writer:
    """One bundle's writes: one stamp, one time, one user for every row it changes."""

    def __init__(self, tx: Tx, username: str, provenance: Provenance, client: str | None,
                 via: str) -> None:
        self.tx = tx
        self.username = username
        self.state, self.origin = provenance.state, provenance.origin
        self.client, self.via = client, via
        self.stamp = tx.stamp()
        self.now = to_iso(self.stamp)
        self.touched: set[str] = set()  # tracked entities whose row or attributes changed
        # tracked entities whose enrollments or events changed: their updatedAt moves too,
        # as DHIS2's does, or a device downloading by updatedAfter never sees the change
        self.bumped: set[str] = set()

    def audit(self, entity: str, key: str, kind: str, old: Any, new: Any) -> None:
        audit.record(self.tx, entity=entity, key=key, audit_type=kind, old=_text(old),
                     new=_text(new), username=self.username, client=self.client, via=self.via)

    def _row(self, table: str, uid: str) -> sqlite3.Row | None:
        return self.tx.execute(  # type: ignore[no-any-return]
            f"SELECT * FROM {table} WHERE uid=?", (uid,)).fetchone()

    def _update(self, table: str, uid: str, cols: dict[str, Any],
                client_times: tuple[str | None, str | None] | None) -> None:
        cols = dict(cols)
        if client_times is not None:
            cols["created_at_client"], cols["updated_at_client"] = client_times
        cols.update(updated_at=self.now, sync_state=self.state, hlc=self.stamp,
                    origin=self.origin)
        if table != "relationship":
            cols["stored_by"] = self.username
        sets = ", ".join(f"{c}=?" for c in cols)
        self.tx.execute(f"UPDATE {table} SET {sets} WHERE uid=?", (*cols.values(), uid))
        if table in ("enrollment", "event"):
            row = self.tx.execute(f"SELECT te FROM {table} WHERE uid=?", (uid,)).fetchone()
            if row is not None and row[0]:
                self.bumped.add(row[0])

    def _insert(self, table: str, cols: dict[str, Any]) -> None:
        cols = {**cols, "created_at": self.now, "updated_at": self.now,
                "sync_state": self.state, "hlc": self.stamp, "origin": self.origin}
        if table != "relationship":
            cols["stored_by"] = self.username
        self.tx.execute(f"INSERT INTO {table}({', '.join(cols)}) VALUES "
                        f"({','.join('?' * len(cols))})", tuple(cols.values()))
        if table in ("enrollment", "event") and cols.get("te"):
            self.bumped.add(cols["te"])

    def bump_parents(self) -> None:
        """Move the updatedAt of entities whose records changed (not their sync state:
        the entity's own row is unchanged and has nothing new to push)."""
        for te in sorted(self.bumped - self.touched):
            self.tx.execute("UPDATE tracked_entity SET updated_at=? WHERE uid=? AND "
                            "updated_at < ?", (self.now, te, self.now))

    # -- tracked entities ------------------------------------------------------------
    def tracked_entity(self, te: TrackedEntityIn, strategy: str) -> str:
        old = self._row("tracked_entity", te.uid)
        fields = {"type": te.type, "org_unit": te.org_unit, "inactive": int(te.inactive),
                  "geometry": te.geometry}
        times = (te.created_at_client, te.updated_at_client)
        if old is None:
            if strategy == "UPDATE":
                return IGNORED
            self._insert("tracked_entity", {"uid": te.uid, **fields, "created_at_client": times[0],
                                            "updated_at_client": times[1]})
            self.audit("tracked_entity", te.uid, "CREATE", None, fields)
            self._attributes(te.uid, te.attributes)
            self.touched.add(te.uid)
            return CREATED
        if old["deleted"] or strategy == "CREATE":
            return IGNORED
        diff = {k: v for k, v in fields.items() if old[k] != v}
        if self._attributes(te.uid, te.attributes) or diff:
            # an attribute change moves the entity's updatedAt, as DHIS2's does
            self._update("tracked_entity", te.uid, diff, times)
            self.touched.add(te.uid)
        if diff:
            self.audit("tracked_entity", te.uid, "UPDATE", {k: old[k] for k in diff}, diff)
        return UPDATED

    def _attributes(self, te: str, values: Iterable[tuple[str, str | None]]) -> bool:
        olds = {r[0]: r[1] for r in self.tx.execute(
            "SELECT attribute, value FROM te_attribute WHERE te=?", (te,))}
        changed = False
        for attribute, raw in values:
            value = _blank(raw)
            old = olds.get(attribute)
            if value == old:
                continue  # unchanged (or deleting a field that is not there): keep the row
            self.tx.execute(
                "INSERT INTO te_attribute(te, attribute, value, created_at, updated_at, "
                "stored_by, sync_state, hlc, origin) VALUES (?,?,?,?,?,?,?,?,?) "
                "ON CONFLICT(te, attribute) DO UPDATE SET value=excluded.value, "
                "created_at=CASE WHEN te_attribute.value IS NULL THEN excluded.created_at "
                "ELSE te_attribute.created_at END, updated_at=excluded.updated_at, "
                "stored_by=excluded.stored_by, sync_state=excluded.sync_state, "
                "hlc=excluded.hlc, origin=excluded.origin",
                (te, attribute, value, self.now, self.now, self.username, self.state,
                 self.stamp, self.origin))
            if value is not None:
                self.tx.execute("UPDATE reserved_value SET used=1 WHERE attribute=? AND value=?",
                                (attribute, value))
            kind = "DELETE" if value is None else "CREATE" if old is None else "UPDATE"
            self.audit("te_attribute", f"{te}|{attribute}", kind, old, value)
            olds[attribute] = value
            changed = True
        return changed

    # -- enrollments -------------------------------------------------------------------
    def enrollment(self, en: EnrollmentIn, strategy: str) -> str:
        old = self._row("enrollment", en.uid)
        times = (en.created_at_client, en.updated_at_client)
        if old is None:
            if strategy == "UPDATE":
                return IGNORED
            fields = {"uid": en.uid, "te": en.te, "program": en.program,
                      **self._enrollment_fields(en, None)}
            self._insert("enrollment", {**fields, "created_at_client": times[0],
                                        "updated_at_client": times[1]})
            self.audit("enrollment", en.uid, "CREATE", None, fields)
            cur = self.tx.execute(
                "INSERT INTO program_owner(te, program, org_unit, updated_at, sync_state, hlc, "
                "origin) VALUES (?,?,?,?,?,?,?) ON CONFLICT(te, program) DO NOTHING",
                (en.te, en.program, en.org_unit, self.now, self.state, self.stamp, self.origin))
            if cur.rowcount:
                self.audit("program_owner", f"{en.te}|{en.program}", "CREATE", None, en.org_unit)
            return CREATED
        if old["deleted"] or strategy == "CREATE":
            return IGNORED
        fields = self._enrollment_fields(en, old)
        diff = {k: v for k, v in fields.items() if old[k] != v}
        if diff:
            self._update("enrollment", en.uid, diff, times)
            self.audit("enrollment", en.uid, "UPDATE", {k: old[k] for k in diff}, diff)
        return UPDATED

    def _enrollment_fields(self, en: EnrollmentIn, old: sqlite3.Row | None) -> dict[str, Any]:
        return {"org_unit": en.org_unit, "status": en.status, "enrolled_at": en.enrolled_at,
                "occurred_at": en.occurred_at,
                "completed_at": self._completed_at(en.status, en.completed_at, old),
                "follow_up": int(en.follow_up), "geometry": en.geometry,
                "notes": self._notes(en.notes, old)}

    def _completed_at(self, status: str, given: str | None, old: sqlite3.Row | None
                      ) -> str | None:
        """DHIS2 stamps completedAt when an object becomes COMPLETED without one."""
        if given or status != "COMPLETED":
            return given
        if old is not None and old["status"] == "COMPLETED" and old["completed_at"]:
            return str(old["completed_at"])
        return self.now

    def _notes(self, new: Sequence[dict[str, Any]], old: sqlite3.Row | None) -> str | None:
        """DHIS2 notes are append-only: the stored ones plus those not seen before."""
        stored = old["notes"] if old is not None else None
        notes: list[dict[str, Any]] = json.loads(stored or "[]")
        seen = {n.get("note") for n in notes}
        fresh = [n for n in new if not (n.get("note") and n.get("note") in seen)]
        if old is not None and not fresh:
            return stored  # type: ignore[no-any-return]  # nothing new: no change seen
        for n in fresh:
            notes.append({"note": n.get("note") or generate_uid(), "value": n.get("value"),
                          "storedBy": n.get("storedBy") or self.username,
                          "storedAt": n.get("storedAt") or self.now})
        return _dumps(notes)

    # -- events --------------------------------------------------------------------------
    def event(self, ev: EventIn, strategy: str) -> str:
        old = self._row("event", ev.uid)
        times = (ev.created_at_client, ev.updated_at_client)
        te = ev.te
        if te is None and ev.enrollment:
            row = self.tx.execute("SELECT te FROM enrollment WHERE uid=?",
                                  (ev.enrollment,)).fetchone()
            te = row[0] if row is not None else None
        if old is None:
            if strategy == "UPDATE":
                return IGNORED
            fields = {"uid": ev.uid, "enrollment": ev.enrollment, "te": te,
                      "program": ev.program, "program_stage": ev.program_stage,
                      **self._event_fields(ev, None)}
            self._insert("event", {**fields, "created_at_client": times[0],
                                   "updated_at_client": times[1]})
            self.audit("event", ev.uid, "CREATE", None, fields)
            self._data_values(ev.uid, ev.data_values)
            return CREATED
        if old["deleted"] or strategy == "CREATE":
            return IGNORED
        fields = self._event_fields(ev, old)
        diff = {k: v for k, v in fields.items() if old[k] != v}
        if self._data_values(ev.uid, ev.data_values) or diff:
            self._update("event", ev.uid, diff, times)
        if diff:
            self.audit("event", ev.uid, "UPDATE", {k: old[k] for k in diff}, diff)
        return UPDATED

    def _event_fields(self, ev: EventIn, old: sqlite3.Row | None) -> dict[str, Any]:
        aoc = ev.aoc if ev.aoc is not None or old is None else old["aoc"]
        return {"org_unit": ev.org_unit, "status": ev.status, "occurred_at": ev.occurred_at,
                "scheduled_at": ev.scheduled_at,
                "completed_at": self._completed_at(ev.status, ev.completed_at, old),
                "aoc": aoc, "follow_up": int(ev.follow_up), "geometry": ev.geometry,
                "notes": self._notes(ev.notes, old)}

    def _data_values(self, event: str, values: Iterable[tuple[str, str | None, bool]]) -> bool:
        olds = {r[0]: (r[1], r[2]) for r in self.tx.execute(
            "SELECT data_element, value, provided_elsewhere FROM event_value WHERE event=?",
            (event,))}
        changed = False
        for de, raw, elsewhere in values:
            value = _blank(raw)
            old_value, old_elsewhere = olds.get(de, (None, 0))
            new_elsewhere = int(elsewhere) if value is not None else old_elsewhere
            if value == old_value and new_elsewhere == old_elsewhere:
                continue
            self.tx.execute(
                "INSERT INTO event_value(event, data_element, value, provided_elsewhere, "
                "created_at, updated_at, stored_by, sync_state, hlc, origin) "
                "VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT(event, data_element) DO UPDATE SET "
                "value=excluded.value, provided_elsewhere=excluded.provided_elsewhere, "
                "created_at=CASE WHEN event_value.value IS NULL THEN excluded.created_at "
                "ELSE event_value.created_at END, updated_at=excluded.updated_at, "
                "stored_by=excluded.stored_by, sync_state=excluded.sync_state, "
                "hlc=excluded.hlc, origin=excluded.origin",
                (event, de, value, new_elsewhere, self.now, self.now, self.username,
                 self.state, self.stamp, self.origin))
            kind = ("DELETE" if value is None else
                    "CREATE" if old_value is None else "UPDATE")
            self.audit("event_value", f"{event}|{de}", kind, old_value, value)
            olds[de] = (value, new_elsewhere)
            changed = True
        return changed

    # -- relationships -----------------------------------------------------------------
    def relationship(self, rel: RelationshipIn, strategy: str) -> str:
        if self._row("relationship", rel.uid) is not None or strategy == "UPDATE":
            return IGNORED  # DHIS2 does not update relationships
        fields = {"uid": rel.uid, "type": rel.type, "from_doc": _dumps(_ref(rel.from_doc)),
                  "to_doc": _dumps(_ref(rel.to_doc)), "bidirectional": int(rel.bidirectional)}
        self._insert("relationship", fields)
        self.audit("relationship", rel.uid, "CREATE", None, fields)
        return CREATED

    # -- deletions -------------------------------------------------------------------------
    def delete(self, table: str, uid: str) -> str:
        """Soft-delete, cascading as DHIS2 does: an entity's enrollments, events and
        relationships; an enrollment's events; everything's relationships."""
        old = self.tx.execute(f"SELECT deleted FROM {table} WHERE uid=?", (uid,)).fetchone()
        if old is None or old[0]:
            return IGNORED
        self._update(table, uid, {"deleted": 1}, None)
        self.audit(table, uid, "DELETE", None, None)
        children: list[tuple[str, str]] = []
        if table == "tracked_entity":
            self.touched.add(uid)
            children += [("enrollment", r[0]) for r in self.tx.execute(
                "SELECT uid FROM enrollment WHERE te=? AND deleted=0", (uid,))]
            children += [("event", r[0]) for r in self.tx.execute(
                "SELECT uid FROM event WHERE te=? AND enrollment IS NULL AND deleted=0", (uid,))]
        elif table == "enrollment":
            children += [("event", r[0]) for r in self.tx.execute(
                "SELECT uid FROM event WHERE enrollment=? AND deleted=0", (uid,))]
        if table != "relationship":
            kind = {"tracked_entity": "trackedEntity", "enrollment": "enrollment",
                    "event": "event"}[table]
            children += [("relationship", r) for r in _relationship_uids(self.tx.conn, kind,
                                                                         [uid], False)]
        for child_table, child in children:
            self.delete(child_table, child)
        return DELETED


def _ref(doc: dict[str, Any]) -> dict[str, dict[str, str]]:
    """A relationship item in its one stored form, ``{kind: {kind: uid}}``."""
    for kind in _REF_KINDS:
        v = doc.get(kind)
        uid = v.get(kind) if isinstance(v, dict) else v
        if isinstance(uid, str) and uid:
            return {kind: {kind: uid}}
    raise BadRequest("a relationship item must name a trackedEntity, an enrollment or an event")


def _dumps(v: Any) -> str:
    return json.dumps(v, separators=(",", ":"), ensure_ascii=False)


def _text(v: Any) -> str | None:
    return v if v is None or isinstance(v, str) else _dumps(v)


# -- ownership --------------------------------------------------------------------------
def owner(conn: sqlite3.Connection, te: str, program: str) -> str | None:
    """The org unit that owns ``te`` in ``program``, or None."""
    row = conn.execute("SELECT org_unit FROM program_owner WHERE te=? AND program=?",
                       (te, program)).fetchone()
    return None if row is None else str(row[0])


def transfer_ownership(tx: Tx, te: str, program: str, org_unit: str, *, username: str,
                       provenance: Provenance = LOCAL_EDIT, client: str | None = None,
                       via: str = "api") -> None:
    """Make ``org_unit`` the owner of ``te`` in ``program`` (pending for sync)."""
    if tx.execute("SELECT 1 FROM tracked_entity WHERE uid=? AND deleted=0",
                  (te,)).fetchone() is None:
        raise NotFound(f"TrackedEntity {te} not found")
    old = owner(tx.conn, te, program)
    if old == org_unit:
        return
    stamp = tx.stamp()
    tx.execute("INSERT INTO program_owner(te, program, org_unit, updated_at, sync_state, hlc, "
               "origin) VALUES (?,?,?,?,?,?,?) ON CONFLICT(te, program) DO UPDATE SET "
               "org_unit=excluded.org_unit, updated_at=excluded.updated_at, "
               "sync_state=excluded.sync_state, hlc=excluded.hlc, origin=excluded.origin",
               (te, program, org_unit, to_iso(stamp), provenance.state, stamp,
                provenance.origin))
    audit.record(tx, entity="program_owner", key=f"{te}|{program}",
                 audit_type="CREATE" if old is None else "UPDATE", old=old, new=org_unit,
                 username=username, client=client, via=via)


# -- lookups for validation ------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class TeInfo:
    type: str
    org_unit: str
    deleted: bool
    owners: dict[str, str]  # program -> owning org unit


@dataclass(frozen=True, slots=True)
class EnrollmentInfo:
    te: str
    program: str
    org_unit: str
    status: str
    deleted: bool


@dataclass(frozen=True, slots=True)
class EventInfo:
    te: str | None
    enrollment: str | None
    program: str
    program_stage: str
    org_unit: str
    status: str
    deleted: bool


@dataclass(frozen=True, slots=True)
class RelationshipInfo:
    type: str
    deleted: bool


@dataclass
class Existing:
    """The stored objects among a payload's uids (deleted ones included)."""

    tracked_entities: dict[str, TeInfo] = field(default_factory=dict)
    enrollments: dict[str, EnrollmentInfo] = field(default_factory=dict)
    events: dict[str, EventInfo] = field(default_factory=dict)
    relationships: dict[str, RelationshipInfo] = field(default_factory=dict)


def _chunks(items: Iterable[str]) -> Iterator[list[str]]:
    seq = list(dict.fromkeys(items))
    for i in range(0, len(seq), _CHUNK):
        yield seq[i:i + _CHUNK]


def _marks(n: int) -> str:
    return ",".join("?" * n)


def existing(conn: sqlite3.Connection, *, te_uids: Iterable[str] = (),
             enrollment_uids: Iterable[str] = (), event_uids: Iterable[str] = (),
             relationship_uids: Iterable[str] = ()) -> Existing:
    out = Existing()
    for part in _chunks(te_uids):
        owners: dict[str, dict[str, str]] = {}
        for r in conn.execute(f"SELECT te, program, org_unit FROM program_owner WHERE te IN "
                              f"({_marks(len(part))})", part):
            owners.setdefault(r[0], {})[r[1]] = r[2]
        for r in conn.execute(f"SELECT uid, type, org_unit, deleted FROM tracked_entity "
                              f"WHERE uid IN ({_marks(len(part))})", part):
            out.tracked_entities[r[0]] = TeInfo(r[1], r[2], bool(r[3]), owners.get(r[0], {}))
    for part in _chunks(enrollment_uids):
        for r in conn.execute(f"SELECT uid, te, program, org_unit, status, deleted FROM "
                              f"enrollment WHERE uid IN ({_marks(len(part))})", part):
            out.enrollments[r[0]] = EnrollmentInfo(r[1], r[2], r[3], r[4], bool(r[5]))
    for part in _chunks(event_uids):
        for r in conn.execute(f"SELECT uid, te, enrollment, program, program_stage, org_unit, "
                              f"status, deleted FROM event WHERE uid IN ({_marks(len(part))})",
                              part):
            out.events[r[0]] = EventInfo(r[1], r[2], r[3], r[4], r[5], r[6], bool(r[7]))
    for part in _chunks(relationship_uids):
        for r in conn.execute(f"SELECT uid, type, deleted FROM relationship WHERE uid IN "
                              f"({_marks(len(part))})", part):
            out.relationships[r[0]] = RelationshipInfo(r[1], bool(r[2]))
    return out


def unique_value_owner(conn: sqlite3.Connection, attribute: str, value: str) -> str | None:
    """The live tracked entity holding ``value`` for ``attribute``, if any."""
    row = conn.execute(
        "SELECT a.te FROM te_attribute a JOIN tracked_entity t ON t.uid = a.te "
        "WHERE a.attribute=? AND a.value=? AND t.deleted=0 LIMIT 1", (attribute, value)).fetchone()
    return None if row is None else str(row[0])


# -- reads: JSON -------------------------------------------------------------------------
def _put(out: dict[str, Any], key: str, value: Any) -> None:
    """DHIS2 leaves null fields out."""
    if value is not None:
        out[key] = value


def _geometry(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _attribute_json(r: sqlite3.Row) -> dict[str, Any]:
    out = {"attribute": r["attribute"], "value": r["value"], "createdAt": r["created_at"],
           "updatedAt": r["updated_at"]}
    _put(out, "storedBy", r["stored_by"])
    return out


def _value_json(r: sqlite3.Row) -> dict[str, Any]:
    out = {"dataElement": r["data_element"], "value": r["value"],
           "providedElsewhere": bool(r["provided_elsewhere"]), "createdAt": r["created_at"],
           "updatedAt": r["updated_at"]}
    _put(out, "storedBy", r["stored_by"])
    return out


def _times(out: dict[str, Any], r: sqlite3.Row) -> None:
    out["createdAt"] = r["created_at"]
    _put(out, "createdAtClient", r["created_at_client"])
    out["updatedAt"] = r["updated_at"]
    _put(out, "updatedAtClient", r["updated_at_client"])


def _te_json(r: sqlite3.Row) -> dict[str, Any]:
    out: dict[str, Any] = {"trackedEntity": r["uid"], "trackedEntityType": r["type"],
                           "orgUnit": r["org_unit"]}
    _times(out, r)
    out.update(inactive=bool(r["inactive"]), deleted=bool(r["deleted"]),
               potentialDuplicate=bool(r["potential_duplicate"]))
    _put(out, "storedBy", r["stored_by"])
    _put(out, "geometry", _geometry(r["geometry"]))
    return out


def _enrollment_json(r: sqlite3.Row) -> dict[str, Any]:
    out: dict[str, Any] = {"enrollment": r["uid"], "trackedEntity": r["te"],
                           "program": r["program"], "status": r["status"],
                           "orgUnit": r["org_unit"]}
    _times(out, r)
    _put(out, "enrolledAt", r["enrolled_at"])
    _put(out, "occurredAt", r["occurred_at"])
    _put(out, "completedAt", r["completed_at"])
    out.update(followUp=bool(r["follow_up"]), deleted=bool(r["deleted"]))
    _put(out, "storedBy", r["stored_by"])
    _put(out, "geometry", _geometry(r["geometry"]))
    out["notes"] = json.loads(r["notes"] or "[]")
    out["attributes"] = []
    return out


def _event_json(r: sqlite3.Row) -> dict[str, Any]:
    out: dict[str, Any] = {"event": r["uid"], "status": r["status"], "program": r["program"],
                           "programStage": r["program_stage"]}
    _put(out, "enrollment", r["enrollment"])
    _put(out, "trackedEntity", r["te"])
    out["orgUnit"] = r["org_unit"]
    _put(out, "occurredAt", r["occurred_at"])
    _put(out, "scheduledAt", r["scheduled_at"])
    _put(out, "completedAt", r["completed_at"])
    _put(out, "storedBy", r["stored_by"])
    out.update(followup=bool(r["follow_up"]), deleted=bool(r["deleted"]))  # 'followup', as DHIS2
    _times(out, r)
    _put(out, "attributeOptionCombo", r["aoc"])
    _put(out, "geometry", _geometry(r["geometry"]))
    out["notes"] = json.loads(r["notes"] or "[]")
    return out


def _relationship_json(r: sqlite3.Row) -> dict[str, Any]:
    return {"relationship": r["uid"], "relationshipType": r["type"],
            "createdAt": r["created_at"], "updatedAt": r["updated_at"],
            "bidirectional": bool(r["bidirectional"]), "from": json.loads(r["from_doc"]),
            "to": json.loads(r["to_doc"])}


# -- reads: filters and order --------------------------------------------------------------
def _ts(text: str | None, name: str) -> str | None:
    """A time filter as stored text: ``2024-01-31`` is ``2024-01-31T00:00:00.000``."""
    if text is None:
        return None
    ms = parse_ts(text)
    if ms is None:
        raise BadRequest(f"{name} is not a date or time: {text!r}")
    return format_ts(ms)


def _in(col: str, values: Sequence[str], where: list[str], params: list[Any]) -> None:
    where.append(f"{col} IN ({_marks(len(values))})" if values else "0")
    params.extend(values)


def _order(order: str | None, columns: dict[str, str], alias: str,
           attribute_sql: str | None = None) -> tuple[str, list[Any]]:
    """``field:asc,field2:desc`` as ORDER BY; the uid breaks ties so pages are stable.
    Tracked entities may also be ordered by an attribute's uid."""
    parts, params = [], []
    for item in (order or "").split(","):
        if not item.strip():
            continue
        name, _, direction = item.strip().partition(":")
        direction = (direction or "asc").lower()
        if direction not in ("asc", "desc"):
            raise BadRequest(f"order direction must be asc or desc: {item!r}")
        if name in columns:
            parts.append(f"{alias}.{columns[name]} {direction.upper()}")
        elif attribute_sql is not None and re.fullmatch(r"[A-Za-z][A-Za-z0-9]{10}", name):
            parts.append(f"({attribute_sql}) {direction.upper()}")
            params.append(name)
        else:
            raise BadRequest(f"cannot order by {name!r}")
    parts.append(f"{alias}.uid ASC")
    return " ORDER BY " + ", ".join(parts), params


def _page(offset: int, limit: int | None) -> str:
    return "" if limit is None else f" LIMIT {int(limit)} OFFSET {int(offset)}"


_TE_ORDER = {"createdAt": "created_at", "updatedAt": "updated_at",
             "createdAtClient": "created_at_client", "updatedAtClient": "updated_at_client",
             "trackedEntity": "uid", "orgUnit": "org_unit", "inactive": "inactive"}
_ENROLLMENT_ORDER = {"createdAt": "created_at", "updatedAt": "updated_at",
                     "createdAtClient": "created_at_client",
                     "updatedAtClient": "updated_at_client", "enrolledAt": "enrolled_at",
                     "occurredAt": "occurred_at", "completedAt": "completed_at",
                     "enrollment": "uid", "status": "status", "orgUnit": "org_unit"}
_EVENT_ORDER = {"createdAt": "created_at", "updatedAt": "updated_at",
                "createdAtClient": "created_at_client", "updatedAtClient": "updated_at_client",
                "occurredAt": "occurred_at", "scheduledAt": "scheduled_at",
                "completedAt": "completed_at", "event": "uid", "status": "status",
                "orgUnit": "org_unit", "programStage": "program_stage",
                "enrollment": "enrollment", "trackedEntity": "te"}
_ATTRIBUTE_OPS = {"eq": "lower(a.value) = lower(?)",
                  "like": "lower(a.value) LIKE '%' || ? || '%' ESCAPE '\\'",
                  "sw": "lower(a.value) LIKE ? || '%' ESCAPE '\\'",
                  "ew": "lower(a.value) LIKE '%' || ? ESCAPE '\\'"}


def _like(value: str) -> str:
    return value.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _te_where(*, org_units: Sequence[str] | None, program: str | None, te_type: str | None,
              uids: Sequence[str] | None, updated_after: str | None, include_deleted: bool,
              attribute_filters: Sequence[tuple[str, str, str]], program_status: str | None
              ) -> tuple[str, list[Any]]:
    where: list[str] = []
    params: list[Any] = []
    if program is not None:
        # enrolled in the program; scoped by the program's owner, as DHIS2 scopes it
        where.append("EXISTS (SELECT 1 FROM enrollment e WHERE e.te = t.uid AND e.program = ?"
                     + ("" if include_deleted else " AND e.deleted = 0")
                     + (" AND e.status = ?" if program_status else "") + ")")
        params += [program] + ([program_status] if program_status else [])
        if org_units is not None:
            # owned here, or registered here with no owner; both halves walk an index
            marks = _marks(len(org_units))
            where.append(
                "t.uid IN (SELECT o.te FROM program_owner o WHERE o.program = ? AND "
                f"o.org_unit IN ({marks}) UNION SELECT x.uid FROM tracked_entity x WHERE "
                f"x.org_unit IN ({marks}) AND NOT EXISTS (SELECT 1 FROM program_owner n "
                "WHERE n.te = x.uid AND n.program = ?))")
            params += [program, *org_units, *org_units, program]
    elif org_units is not None:
        _in("t.org_unit", org_units, where, params)
    if te_type is not None:
        where.append("t.type = ?")
        params.append(te_type)
    if uids is not None:
        _in("t.uid", uids, where, params)
    if updated_after is not None:
        where.append("t.updated_at >= ?")
        params.append(_ts(updated_after, "updatedAfter"))
    if not include_deleted:
        where.append("t.deleted = 0")
    for attribute, op, value in attribute_filters:
        op = op.lower()
        if op == "in":
            options = [v.lower() for v in value.split(";")]
            cond = f"lower(a.value) IN ({_marks(len(options))})"
            args: list[Any] = options
        elif op in _ATTRIBUTE_OPS:
            cond = _ATTRIBUTE_OPS[op]
            args = [value if op == "eq" else _like(value)]
        else:
            raise BadRequest(f"unsupported attribute filter operator {op!r}")
        where.append("EXISTS (SELECT 1 FROM te_attribute a WHERE a.te = t.uid AND "
                     f"a.attribute = ? AND a.value IS NOT NULL AND {cond})")
        params += [attribute, *args]
    return (" WHERE " + " AND ".join(where)) if where else "", params


def query_tracked_entities(
        conn: sqlite3.Connection, *, org_units: Sequence[str] | None, program: str | None,
        te_type: str | None, uids: Sequence[str] | None = None,
        updated_after: str | None = None, include_deleted: bool = False,
        attribute_filters: Sequence[tuple[str, str, str]] = (),
        program_status: str | None = None, order: str | None = "createdAt:desc",
        offset: int = 0, limit: int | None = 50, with_enrollments: bool = True,
        with_events: bool = True, with_relationships: bool = False) -> list[dict[str, Any]]:
    """Tracked entities as ``/api/tracker/trackedEntities`` returns them. ``org_units``
    are already expanded (None: any); with a ``program``, entities enrolled in it, scoped
    by its owner org unit, and only that program's enrollments and owners. Attribute
    filters are (attribute, eq|like|sw|ew|in, value), case-insensitive; ``in`` takes
    ``a;b``. ``enrollments``/``relationships`` appear only when asked for."""
    where, params = _te_where(
        org_units=org_units, program=program, te_type=te_type, uids=uids,
        updated_after=updated_after, include_deleted=include_deleted,
        attribute_filters=attribute_filters, program_status=program_status)
    order_sql, order_params = _order(
        order, _TE_ORDER, "t",
        "SELECT v.value FROM te_attribute v WHERE v.te = t.uid AND v.attribute = ?")
    rows = conn.execute(f"SELECT t.* FROM tracked_entity t{where}{order_sql}"
                        f"{_page(offset, limit)}", [*params, *order_params]).fetchall()
    tes = [_te_json(r) for r in rows]
    if not tes:
        return tes
    ids = [t["trackedEntity"] for t in tes]
    attrs = _children(conn, "te_attribute", "te", ids, "AND value IS NOT NULL",
                      _attribute_json, order="attribute")
    owners: dict[str, list[dict[str, str]]] = {}
    for part in _chunks(ids):
        sql = f"SELECT te, program, org_unit FROM program_owner WHERE te IN ({_marks(len(part))})"
        args = list(part)
        if program is not None:
            sql += " AND program = ?"
            args.append(program)
        for r in conn.execute(sql + " ORDER BY te, program", args):
            owners.setdefault(r[0], []).append(
                {"orgUnit": r[2], "trackedEntity": r[0], "program": r[1]})
    enrollments: dict[str, list[dict[str, Any]]] = {}
    if with_enrollments:
        for en in query_enrollments(conn, org_units=None, program=program, tes=ids,
                                    include_deleted=include_deleted, order="enrolledAt:asc",
                                    limit=None, with_events=with_events,
                                    with_relationships=with_relationships):
            enrollments.setdefault(en["trackedEntity"], []).append(en)
    rels = (_relationships_of(conn, "trackedEntity", ids, include_deleted)
            if with_relationships else {})
    for t in tes:
        uid = t["trackedEntity"]
        t["attributes"] = attrs.get(uid, [])
        if with_enrollments:
            t["enrollments"] = enrollments.get(uid, [])
        if with_relationships:
            t["relationships"] = rels.get(uid, [])
        t["programOwners"] = owners.get(uid, [])
    return tes


def count_tracked_entities(
        conn: sqlite3.Connection, *, org_units: Sequence[str] | None, program: str | None,
        te_type: str | None, uids: Sequence[str] | None = None,
        updated_after: str | None = None, include_deleted: bool = False,
        attribute_filters: Sequence[tuple[str, str, str]] = (),
        program_status: str | None = None, **_: Any) -> int:
    """How many tracked entities ``query_tracked_entities`` would page through (paging,
    order and the nested collections are accepted and ignored)."""
    where, params = _te_where(
        org_units=org_units, program=program, te_type=te_type, uids=uids,
        updated_after=updated_after, include_deleted=include_deleted,
        attribute_filters=attribute_filters, program_status=program_status)
    return int(conn.execute(f"SELECT count(*) FROM tracked_entity t{where}", params).fetchone()[0])


def _children(conn: sqlite3.Connection, table: str, parent: str, ids: Sequence[str],
              extra: str, to_json: Any, *, order: str) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for part in _chunks(ids):
        for r in conn.execute(f"SELECT * FROM {table} WHERE {parent} IN ({_marks(len(part))}) "
                              f"{extra} ORDER BY {parent}, {order}", part):
            out.setdefault(r[parent], []).append(to_json(r))
    return out


def query_enrollments(
        conn: sqlite3.Connection, *, org_units: Sequence[str] | None = None,
        program: str | None = None, te: str | None = None, tes: Sequence[str] | None = None,
        uids: Sequence[str] | None = None, status: str | None = None,
        updated_after: str | None = None, include_deleted: bool = False,
        order: str | None = "createdAt:desc", offset: int = 0, limit: int | None = 50,
        with_events: bool = False, with_attributes: bool = False,
        with_relationships: bool = False) -> list[dict[str, Any]]:
    """Enrollments as ``/api/tracker/enrollments`` returns them, scoped by the
    enrollment's org unit. ``with_attributes`` fills ``attributes`` with all the entity's
    values (the caller keeps the program's)."""
    where: list[str] = []
    params: list[Any] = []
    if org_units is not None:
        _in("e.org_unit", org_units, where, params)
    for col, val in (("e.program", program), ("e.te", te), ("e.status", status)):
        if val is not None:
            where.append(f"{col} = ?")
            params.append(val)
    if tes is not None:
        _in("e.te", tes, where, params)
    if uids is not None:
        _in("e.uid", uids, where, params)
    if updated_after is not None:
        where.append("e.updated_at >= ?")
        params.append(_ts(updated_after, "updatedAfter"))
    if not include_deleted:
        where.append("e.deleted = 0")
    order_sql, _ = _order(order, _ENROLLMENT_ORDER, "e")
    sql = (f"SELECT e.* FROM enrollment e{' WHERE ' + ' AND '.join(where) if where else ''}"
           f"{order_sql}{_page(offset, limit)}")
    out = [_enrollment_json(r) for r in conn.execute(sql, params)]
    if not out:
        return out
    ids = [e["enrollment"] for e in out]
    events: dict[str, list[dict[str, Any]]] = {}
    if with_events:
        for ev in query_events(conn, enrollments=ids, include_deleted=include_deleted,
                               order="occurredAt:asc", limit=None,
                               with_relationships=with_relationships):
            events.setdefault(ev["enrollment"], []).append(ev)
    attrs = (_children(conn, "te_attribute", "te", [e["trackedEntity"] for e in out],
                       "AND value IS NOT NULL", _attribute_json, order="attribute")
             if with_attributes else {})
    rels = _relationships_of(conn, "enrollment", ids, include_deleted) if with_relationships else {}
    for e in out:
        if with_events:
            e["events"] = events.get(e["enrollment"], [])
        if with_attributes:
            e["attributes"] = attrs.get(e["trackedEntity"], [])
        if with_relationships:
            e["relationships"] = rels.get(e["enrollment"], [])
    return out


def query_events(
        conn: sqlite3.Connection, *, org_units: Sequence[str] | None = None,
        program: str | None = None, program_stage: str | None = None,
        enrollment: str | None = None, enrollments: Sequence[str] | None = None,
        te: str | None = None, uids: Sequence[str] | None = None,
        updated_after: str | None = None, occurred_after: str | None = None,
        occurred_before: str | None = None, scheduled_after: str | None = None,
        scheduled_before: str | None = None, status: str | None = None,
        include_deleted: bool = False, order: str | None = "occurredAt:desc",
        offset: int = 0, limit: int | None = 50,
        with_relationships: bool = False) -> list[dict[str, Any]]:
    """Events as ``/api/tracker/events`` returns them, scoped by the event's org unit;
    time bounds are inclusive."""
    where: list[str] = []
    params: list[Any] = []
    if org_units is not None:
        _in("v.org_unit", org_units, where, params)
    for col, val in (("v.program", program), ("v.program_stage", program_stage),
                     ("v.enrollment", enrollment), ("v.te", te), ("v.status", status)):
        if val is not None:
            where.append(f"{col} = ?")
            params.append(val)
    if enrollments is not None:
        _in("v.enrollment", enrollments, where, params)
    if uids is not None:
        _in("v.uid", uids, where, params)
    for col, op, val, name in (("updated_at", ">=", updated_after, "updatedAfter"),
                               ("occurred_at", ">=", occurred_after, "occurredAfter"),
                               ("occurred_at", "<=", occurred_before, "occurredBefore"),
                               ("scheduled_at", ">=", scheduled_after, "scheduledAfter"),
                               ("scheduled_at", "<=", scheduled_before, "scheduledBefore")):
        if val is not None:
            where.append(f"v.{col} {op} ?")
            params.append(_ts(val, name))
    if not include_deleted:
        where.append("v.deleted = 0")
    order_sql, _ = _order(order, _EVENT_ORDER, "v")
    sql = (f"SELECT v.* FROM event v{' WHERE ' + ' AND '.join(where) if where else ''}"
           f"{order_sql}{_page(offset, limit)}")
    out = [_event_json(r) for r in conn.execute(sql, params)]
    if not out:
        return out
    ids = [e["event"] for e in out]
    values = _children(conn, "event_value", "event", ids, "AND value IS NOT NULL", _value_json,
                       order="data_element")
    rels = _relationships_of(conn, "event", ids, include_deleted) if with_relationships else {}
    for e in out:
        e["dataValues"] = values.get(e["event"], [])
        if with_relationships:
            e["relationships"] = rels.get(e["event"], [])
    return out


def _relationship_uids(conn: sqlite3.Connection, kind: str, ids: Sequence[str],
                       include_deleted: bool) -> list[str]:
    return [r["relationship"] for rels in _relationships_of(
        conn, kind, ids, include_deleted).values() for r in rels]


def _relationships_of(conn: sqlite3.Connection, kind: str, ids: Sequence[str],
                      include_deleted: bool) -> dict[str, list[dict[str, Any]]]:
    """Relationships with an item of ``kind`` among ``ids`` on either side, by that uid."""
    path = f"$.{kind}.{kind}"
    out: dict[str, list[dict[str, Any]]] = {}
    for part in _chunks(ids):
        marks = _marks(len(part))
        sql = ("SELECT r.*, json_extract(r.from_doc, ?) AS f, json_extract(r.to_doc, ?) AS t "
               f"FROM relationship r WHERE (json_extract(r.from_doc, ?) IN ({marks}) OR "
               f"json_extract(r.to_doc, ?) IN ({marks}))"
               + ("" if include_deleted else " AND r.deleted = 0") + " ORDER BY r.created_at")
        for r in conn.execute(sql, (path, path, path, *part, path, *part)):
            doc = _relationship_json(r)
            for side in {r["f"], r["t"]} & set(part):
                out.setdefault(side, []).append(doc)
    return out


def query_relationships(conn: sqlite3.Connection, *, te: str | None = None,
                        enrollment: str | None = None, event: str | None = None,
                        include_deleted: bool = False) -> list[dict[str, Any]]:
    """Relationships of one tracked entity, enrollment or event (either side)."""
    for kind, uid in (("trackedEntity", te), ("enrollment", enrollment), ("event", event)):
        if uid is not None:
            return _relationships_of(conn, kind, [uid], include_deleted).get(uid, [])
    raise BadRequest("name a trackedEntity, an enrollment or an event")


def relationship_by_uid(conn: sqlite3.Connection, uid: str,
                        include_deleted: bool = False) -> dict[str, Any] | None:
    r = conn.execute("SELECT * FROM relationship WHERE uid = ?"
                     + ("" if include_deleted else " AND deleted = 0"), (uid,)).fetchone()
    return None if r is None else _relationship_json(r)


_ITEM_TABLE = {"trackedEntity": "tracked_entity", "enrollment": "enrollment", "event": "event"}


def item_org_unit(conn: sqlite3.Connection, kind: str, uid: str) -> str | None:
    """The org unit of a tracked entity, enrollment or event (None: not stored)."""
    r = conn.execute(f"SELECT org_unit FROM {_ITEM_TABLE[kind]} WHERE uid = ?",  # noqa: S608
                     (uid,)).fetchone()
    return None if r is None else str(r[0])


def relationship_ends(doc: Mapping[str, Any]) -> list[tuple[str, str]]:
    """A relationship's two ends as (kind, uid)."""
    out = []
    for side in ("from", "to"):
        item = doc.get(side) or {}
        for kind in _ITEM_TABLE:
            ref = item.get(kind)
            if ref:
                out.append((kind, str(ref.get(kind) if isinstance(ref, dict) else ref)))
    return out


# -- potential duplicates --------------------------------------------------------------
def add_potential_duplicate(tx: Tx, original: str, duplicate: str, reasons: list[str], *,
                            username: str, provenance: Provenance = LOCAL_EDIT,
                            client: str | None = None, via: str = "api") -> str:
    """Flag ``duplicate`` as a possible duplicate of ``original``; returns the new uid. The
    entity's ``potentialDuplicate`` flag is set without making it pending: the
    potential_duplicate row syncs on its own."""
    if tx.execute("SELECT 1 FROM potential_duplicate WHERE status='OPEN' AND ((original=? AND "
                  "duplicate=?) OR (original=? AND duplicate=?))",
                  (original, duplicate, duplicate, original)).fetchone():
        raise Conflict(f"'{original}' and '{duplicate}' is already marked as a potential "
                       "duplicate")
    uid = generate_uid()
    stamp = tx.stamp()
    now = to_iso(stamp)
    tx.execute("INSERT INTO potential_duplicate(uid, original, duplicate, status, reasons, "
               "created_at, updated_at, created_by, sync_state, hlc, origin) "
               "VALUES (?,?,?,'OPEN',?,?,?,?,?,?,?)",
               (uid, original, duplicate, _dumps(reasons), now, now, username,
                provenance.state, stamp, provenance.origin))
    tx.execute("UPDATE tracked_entity SET potential_duplicate=1 WHERE uid=?", (duplicate,))
    audit.record(tx, entity="potential_duplicate", key=uid, audit_type="CREATE", old=None,
                 new=_dumps({"original": original, "duplicate": duplicate, "reasons": reasons}),
                 username=username, client=client, via=via)
    return uid


def _duplicate_json(r: sqlite3.Row) -> dict[str, Any]:
    return {"id": r["uid"], "original": r["original"], "duplicate": r["duplicate"],
            "status": r["status"], "created": r["created_at"], "lastUpdated": r["updated_at"],
            "createdByUserName": r["created_by"], "reasons": json.loads(r["reasons"] or "[]")}


def list_potential_duplicates(conn: sqlite3.Connection, *, te: str | None = None,
                              status: str | None = None) -> list[dict[str, Any]]:
    """Potential duplicates (``te`` on either side), oldest first."""
    sql, params = "SELECT * FROM potential_duplicate WHERE 1", []
    if te is not None:
        sql += " AND (original = ? OR duplicate = ?)"
        params += [te, te]
    if status is not None:
        sql += " AND status = ?"
        params.append(status)
    return [_duplicate_json(r) for r in conn.execute(sql + " ORDER BY created_at, uid", params)]


def set_duplicate_status(tx: Tx, uid: str, status: str, *, username: str,
                         provenance: Provenance = LOCAL_EDIT, client: str | None = None,
                         via: str = "api") -> None:
    if status not in DUPLICATE_STATUSES:
        raise BadRequest(f"status must be one of {', '.join(DUPLICATE_STATUSES)}")
    old = tx.execute("SELECT status FROM potential_duplicate WHERE uid=?", (uid,)).fetchone()
    if old is None:
        raise NotFound(f"PotentialDuplicate {uid} not found")
    if old[0] == status:
        return
    stamp = tx.stamp()
    tx.execute("UPDATE potential_duplicate SET status=?, updated_at=?, sync_state=?, hlc=?, "
               "origin=? WHERE uid=?",
               (status, to_iso(stamp), provenance.state, stamp, provenance.origin, uid))
    audit.record(tx, entity="potential_duplicate", key=uid, audit_type="UPDATE", old=old[0],
                 new=status, username=username, client=client, via=via)


# -- reserved values (TextPattern) --------------------------------------------------------
_SEGMENT = re.compile(r'\s*(?:"((?:[^"\\]|\\.)*)"|(SEQUENTIAL|RANDOM)\(([^)]*)\))\s*')
_RANDOM_CHARS = {"#": string.digits, "X": string.ascii_uppercase, "x": string.ascii_lowercase,
                 "*": string.digits + string.ascii_letters}
_DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class _Pattern:
    prefix: str
    kind: str   # SEQUENTIAL | RANDOM
    param: str  # ### or e.g. X##x
    suffix: str

    @property
    def key(self) -> str:
        return f"{self.prefix}{self.kind}({self.param}){self.suffix}"


def _parse_pattern(pattern: str) -> _Pattern:
    """``"literal" + SEQUENTIAL(###) + "literal"`` (or RANDOM(X#x*)): one generated segment
    between optional literals, the TextPattern subset the hub generates."""
    parts: list[tuple[str, str, str]] = []
    pos = 0
    while True:
        m = _SEGMENT.match(pattern, pos)
        if m is None:
            raise BadRequest(f"unsupported TextPattern {pattern!r}")
        parts.append((re.sub(r"\\(.)", r"\1", m[1]), "", "") if m[1] is not None
                     else ("", m[2], m[3]))
        pos = m.end()
        if pos == len(pattern):
            break
        if pattern[pos] != "+":
            raise BadRequest(f"unsupported TextPattern {pattern!r}")
        pos += 1
    generated = [i for i, p in enumerate(parts) if p[1]]
    if len(generated) != 1:
        raise BadRequest("a TextPattern to reserve needs exactly one SEQUENTIAL or RANDOM")
    i = generated[0]
    _, kind, param = parts[i]
    allowed = "#" if kind == "SEQUENTIAL" else "".join(_RANDOM_CHARS)
    if not param or any(c not in allowed for c in param):
        raise BadRequest(f"bad {kind} segment {kind}({param})")
    return _Pattern("".join(p[0] for p in parts[:i]), kind, param,
                    "".join(p[0] for p in parts[i + 1:]))


def _epoch_ms(now: int | str) -> int:
    if isinstance(now, int):
        return now
    ms = parse_ts(now)
    if ms is None:
        raise BadRequest(f"not a time: {now!r}")
    return ms


def reserve_values(tx: Tx, attribute: str, pattern: str, n: int, *, owner_user: str | None,
                   now: int | str, days: int = 60) -> list[dict[str, Any]]:
    """Generate and reserve ``n`` values of ``attribute``'s TextPattern, none of them ever
    reserved before or held by a tracked entity; ``now`` is epoch ms or DHIS2 text.
    Returns generateAndReserve's JSON. Raises Conflict when the pattern runs out."""
    p = _parse_pattern(pattern)
    taken = {r[0] for r in tx.execute(
        "SELECT value FROM reserved_value WHERE attribute=? UNION "
        "SELECT value FROM te_attribute WHERE attribute=? AND value IS NOT NULL",
        (attribute, attribute))}
    values = _sequential(p, taken, n) if p.kind == "SEQUENTIAL" else _random(p, taken, n)
    ms = _epoch_ms(now)
    created, expiry = format_ts(ms), format_ts(ms + days * _DAY_MS)
    tx.executemany("INSERT INTO reserved_value(attribute, value, owner_user, created, expiry) "
                   "VALUES (?,?,?,?,?)",
                   [(attribute, v, owner_user, created, expiry) for v in values])
    return [{"ownerObject": "TRACKEDENTITYATTRIBUTE", "ownerUid": attribute, "key": p.key,
             "value": v, "created": created, "expiryDate": expiry} for v in values]


def _sequential(p: _Pattern, taken: set[str], n: int) -> list[str]:
    """The next ``n`` numbers after the highest one ever handed out or typed in."""
    width = len(p.param)
    shape = re.compile(re.escape(p.prefix) + rf"(\d{{{width}}})" + re.escape(p.suffix))
    nums = [int(m[1]) for v in taken if (m := shape.fullmatch(v))]
    start = max(nums, default=0) + 1
    if start + n - 1 > 10 ** width - 1:
        raise Conflict(f"not enough values left to reserve {n} for {p.key}")
    return [f"{p.prefix}{i:0{width}d}{p.suffix}" for i in range(start, start + n)]


def _random(p: _Pattern, taken: set[str], n: int) -> list[str]:
    """``n`` random values; a small pattern space is enumerated so its last free values
    are still found."""
    pools = [_RANDOM_CHARS[c] for c in p.param]
    space = 1
    for pool in pools:
        space *= len(pool)
    if space <= 100_000:
        free = [v for v in (p.prefix + "".join(t) + p.suffix for t in itertools.product(*pools))
                if v not in taken]
        if len(free) < n:
            raise Conflict(f"not enough values left to reserve {n} for {p.key}")
        return secrets.SystemRandom().sample(free, n)
    out: list[str] = []
    seen = set(taken)
    while len(out) < n:  # a space this large is never nearly used up
        v = p.prefix + "".join(secrets.choice(pool) for pool in pools) + p.suffix
        if v not in seen:
            seen.add(v)
            out.append(v)
    return out


def use_reserved(tx: Tx, attribute: str, value: str) -> bool:
    """Mark a reserved value used; False if it was never reserved."""
    return tx.execute("UPDATE reserved_value SET used=1 WHERE attribute=? AND value=?",
                      (attribute, value)).rowcount > 0


# -- for the sync worker ------------------------------------------------------------------
def pending_counts(conn: sqlite3.Connection) -> dict[str, int]:
    """Pending rows per tracker table (the push backlog)."""
    sql = " UNION ALL ".join(f"SELECT '{t}', count(*) FROM {t} WHERE sync_state='pending'"
                             for t in SYNC_TABLES)
    return {r[0]: int(r[1]) for r in conn.execute(sql)}
