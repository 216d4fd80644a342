"""Pulling national's tracker changes for the upazila and merging them field by field.

``GET /api/tracker/trackedEntities`` with ``orgUnits=<upazila>&orgUnitMode=DESCENDANTS``,
``updatedAfter`` the watermark (national's serverDate before the last complete pull,
less the overlap, as for aggregate), ``includeDeleted=true``, paged, each tracked entity
with its attributes, enrollments (wherever they were made: a person enrolled elsewhere
comes down), events, relationships and program owners. DHIS2 moves a tracked entity's
``updatedAt`` when anything under it changes, so this one walk sees every change.

The merge, per attribute value and per event data value (and per object header):

* a field the hub has not changed locally (not pending) takes national's;
* equal on both sides: synced, nothing logged;
* a pending hub edit national has not changed since the edit's base stays to be pushed;
  so does one national holds only because the hub sent it before a cut (its own echo);
* both changed: the latest edit wins (the hub edit placed on national's time line, as
  for aggregate values) and the loser goes to ``sync_conflict`` with both values, users
  and times;
* a deletion at national applies; a hub edit of a record national deleted loses (DHIS2
  cannot bring it back) and is logged.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..dhis2.timefmt import format_ts, parse_ts
from ..store import synclog
from ..store import tracker_sync as ts
from ..store.db import Tx
from ..store.hlc import to_iso
from . import conflict as cf
from .apply import Context, hub_edit_ms
from .tracker_push import DELETE, LIVE, header_text

PAGE_SIZE = 100
FIELDS = ("trackedEntity,trackedEntityType,orgUnit,createdAt,updatedAt,inactive,deleted,"
          "geometry,storedBy,attributes,enrollments,relationships,programOwners")

Echoes = Mapping[tuple[str, str], set[Any]]  # (table, '|'-key) -> what open chunks sent


def echoes(conn: sqlite3.Connection) -> dict[tuple[str, str], set[Any]]:
    """What the open tracker chunks sent, by row: a pulled value found here arrived at
    national from this hub in a chunk whose report was lost (a cut or a kill)."""
    out: dict[tuple[str, str], set[Any]] = {}
    for entity, sent in synclog.sent_records(conn):
        if entity not in (DELETE, LIVE):
            continue
        for r in json.loads(sent).get("rows") or []:
            out.setdefault((r[2], "|".join(r[3])), set()).add(r[5])
    return out


@dataclass
class TrackerPullStats:
    tracked_entities: int = 0
    applied: int = 0
    unchanged: int = 0
    kept_local: int = 0
    conflicts: int = 0
    hub_won: int = 0
    national_won: int = 0
    touched: set[str] = field(default_factory=set)

    def add(self, o: TrackerPullStats) -> None:
        for k in ("tracked_entities", "applied", "unchanged", "kept_local", "conflicts",
                  "hub_won", "national_won"):
            setattr(self, k, getattr(self, k) + getattr(o, k))


def _b(v: Any) -> int:
    return 1 if v else 0


def _geo(v: Any) -> str | None:
    return json.dumps(v, separators=(",", ":")) if isinstance(v, dict) else None


def _notes(v: Any) -> str | None:
    return json.dumps(v, separators=(",", ":"), ensure_ascii=False) if v else None


def _ref(doc: Any) -> str:
    """A relationship item in its stored form, ``{kind: {kind: uid}}``."""
    if isinstance(doc, dict):
        for kind in ("trackedEntity", "enrollment", "event"):
            v = doc.get(kind)
            uid = v.get(kind) if isinstance(v, dict) else v
            if isinstance(uid, str) and uid:
                return json.dumps({kind: {kind: uid}}, separators=(",", ":"))
    return json.dumps(doc, separators=(",", ":"))


class _Merge:
    """One page's merge, in one transaction."""

    def __init__(self, tx: Tx, ctx: Context, sent: Echoes) -> None:
        self.tx, self.ctx, self.sent = tx, ctx, sent
        self.stats = TrackerPullStats()
        self.detected = to_iso(tx.stamp())

    # -- logging ---------------------------------------------------------------------
    def conflict(self, table: str, key: dict[str, str], org_unit: str, hub: cf.Side,
                 hub_hlc: int | None, national: cf.Side, national_updated: str | None,
                 d: cf.Decision) -> None:
        synclog.add_conflict(
            self.tx, entity=table, key=json.dumps(key, separators=(",", ":")), data_set=None,
            hub_value=hub.value, hub_deleted=hub.deleted, hub_user=hub.user,
            hub_at=format_ts(hub.at_ms) if hub.at_ms is not None else None, hub_hlc=hub_hlc,
            national_value=national.value, national_deleted=national.deleted,
            national_user=national.user,
            national_at=format_ts(national.at_ms) if national.at_ms is not None else None,
            winner=d.winner, policy=d.policy, reason=d.reason, detected_at=self.detected,
            org_unit=org_unit, hub_comment=None, national_comment=None,
            national_last_updated=national_updated)
        self.stats.conflicts += 1
        if d.winner == "hub":
            self.stats.hub_won += 1
        else:
            self.stats.national_won += 1

    def _ms(self, text: str | None) -> int | None:
        return parse_ts(text, self.ctx.tz) if text else None

    def _hub_ms(self, hlc: int) -> int:
        return hub_edit_ms(self.tx.conn, hlc, self.ctx)

    # -- headers -------------------------------------------------------------------------
    def header(self, table: str, uid: str, nat: dict[str, Any], doc: Mapping[str, Any],
               local: sqlite3.Row | None, org_unit: str) -> bool:
        """Merge an object's header; True if national's record now stands at the hub
        (False: the hub's pending edit is kept, or the object is unknown and deleted)."""
        updated = doc.get("updatedAt")
        created, stored_by = doc.get("createdAt"), doc.get("storedBy")
        notes = _notes(doc.get("notes")) if table in ("enrollment", "event") else None
        if local is None:
            if nat["deleted"]:
                self.stats.unchanged += 1
                return False
            ts.write_header(self.tx, table, uid, nat, national_updated=updated,
                            created=created, stored_by=stored_by, notes=notes, exists=False)
            self.stats.applied += 1
            return True
        mine = ts.header(table, dict(local))
        same = mine == nat
        if local["sync_state"] != "pending":
            if same:
                if local["base"] != updated:
                    ts.set_base(self.tx, table, (uid,), updated)
                self.stats.unchanged += 1
            else:
                ts.write_header(self.tx, table, uid, nat, national_updated=updated,
                                created=created, stored_by=stored_by, notes=notes, exists=True)
                self.stats.applied += 1
            return True
        if same:
            self.stats.unchanged += 1
            return True
        nat_text = json.dumps(nat, sort_keys=True, separators=(",", ":"), default=str)
        if nat_text in self.sent.get((table, uid), ()):
            ts.set_base(self.tx, table, (uid,), updated)  # our own echo
            self.stats.kept_local += 1
            return False
        nat_ms = self._ms(updated)
        base_ms = self._ms(local["base"])
        if not nat["deleted"] and not cf.changed_since(nat_ms, base_ms):
            self.stats.kept_local += 1
            return False
        hub = cf.Side(header_text(table, local), bool(local["deleted"]), None,
                      local["stored_by"] if table != "relationship" else None,
                      self._hub_ms(local["hlc"]))
        national = cf.Side(nat_text, bool(nat["deleted"]), None, stored_by, nat_ms)
        if nat["deleted"]:
            d = cf.Decision("national", cf.LATEST, "deleted at national; a deleted record "
                            "cannot be brought back, the hub's edit is kept here")
        else:
            d = cf.decide(cf.LATEST, hub, national)
        self.conflict(table, {"uid": uid}, org_unit, hub, local["hlc"], national, updated, d)
        if d.winner == "hub":
            ts.set_base(self.tx, table, (uid,), updated)
            return False
        ts.write_header(self.tx, table, uid, nat, national_updated=updated, created=created,
                        stored_by=stored_by, notes=notes, exists=True)
        if nat["deleted"]:
            self._drop_cells(table, uid, org_unit)
        return True

    def _drop_cells(self, table: str, uid: str, org_unit: str) -> None:
        """Pending values of a record national deleted: each goes to the log, and stops
        waiting for a push that cannot happen."""
        cell_table = {"tracked_entity": "te_attribute", "event": "event_value"}.get(table)
        if cell_table is None:
            return
        for (parent, name), r in ts.cells_of(self.tx.conn, cell_table, [uid]).items():
            if r["sync_state"] != "pending":
                continue
            hub = cf.Side(r["value"], r["value"] is None, None, r["stored_by"],
                          self._hub_ms(r["hlc"]))
            self.conflict(cell_table, _cell_key(cell_table, parent, name), org_unit, hub,
                          r["hlc"], cf.Side(None, True), None,
                          cf.Decision("national", cf.LATEST, "the record was deleted at "
                                      "national"))
            ts.mark(self.tx, [(cell_table, (parent, name), r["hlc"])], "synced", None)

    # -- values ------------------------------------------------------------------------------
    def cells(self, table: str, parent: str, pulled: list[Mapping[str, Any]],
              stored: Mapping[tuple[str, str], sqlite3.Row], org_unit: str) -> None:
        """Merge a record's attribute or data values; one national no longer lists is
        deleted there."""
        name_key = "attribute" if table == "te_attribute" else "dataElement"
        seen: set[str] = set()
        for v in pulled:
            name = v.get(name_key)
            if not isinstance(name, str):
                continue
            seen.add(name)
            raw = v.get("value")
            value = None if raw is None or raw == "" else str(raw)
            self.cell(table, (parent, name), value, v.get("updatedAt"), v.get("createdAt"),
                      v.get("storedBy"), stored.get((parent, name)), org_unit,
                      bool(v.get("providedElsewhere")))
        for (p, name), r in stored.items():
            if p == parent and name not in seen and r["value"] is not None and \
                    r["sync_state"] != "pending":
                self.cell(table, (parent, name), None, None, None, None, r, org_unit, False)

    def cell(self, table: str, key: tuple[str, str], value: str | None, updated: str | None,
             created: str | None, stored_by: str | None, local: sqlite3.Row | None,
             org_unit: str, elsewhere: bool) -> None:
        def write() -> None:
            ts.write_cell(self.tx, table, key, value, national_updated=updated,
                          created=created, stored_by=stored_by, old=local,
                          provided_elsewhere=elsewhere)
            self.stats.applied += 1
        if local is None:
            if value is not None:
                write()
            return
        same = local["value"] == value
        if local["sync_state"] != "pending":
            if same:
                if updated and local["base"] != updated:
                    ts.set_base(self.tx, table, key, updated)
                self.stats.unchanged += 1
            else:
                write()
            return
        if same:
            ts.mark(self.tx, [(table, key, local["hlc"])], "synced", updated)
            self.stats.unchanged += 1
            return
        if value in self.sent.get((table, "|".join(key)), ()):
            ts.set_base(self.tx, table, key, updated)  # national holds what we sent
            self.stats.kept_local += 1
            return
        nat_ms = self._ms(updated)
        if not cf.changed_since(nat_ms, self._ms(local["base"])):
            self.stats.kept_local += 1
            return
        hub = cf.Side(local["value"], local["value"] is None, None, local["stored_by"],
                      self._hub_ms(local["hlc"]))
        national = cf.Side(value, value is None, None, stored_by, nat_ms)
        d = cf.decide(cf.LATEST, hub, national)
        self.conflict(table, _cell_key(table, *key), org_unit, hub, local["hlc"], national,
                      updated, d)
        if d.winner == "national":
            write()
        else:
            ts.set_base(self.tx, table, key, updated)

    # -- a tracked entity and what it holds ---------------------------------------------
    def tracked_entity(self, t: Mapping[str, Any], rows: dict[str, dict[str, sqlite3.Row]],
                       cells: Mapping[str, Mapping[tuple[str, str], sqlite3.Row]],
                       owners: Mapping[tuple[str, str], sqlite3.Row]) -> None:
        uid = str(t["trackedEntity"])
        ou = str(t.get("orgUnit") or "")
        self.stats.tracked_entities += 1
        nat = {"type": t.get("trackedEntityType"), "org_unit": ou,
               "inactive": _b(t.get("inactive")), "geometry": _geo(t.get("geometry")),
               "deleted": _b(t.get("deleted"))}
        self.header("tracked_entity", uid, nat, t, rows["tracked_entity"].get(uid), ou)
        self.stats.touched.add(uid)
        if not nat["deleted"]:
            # DHIS2 lists the type's attributes on the entity and a program's own ones on
            # its enrollments: together they are all the person's values
            attrs = {a.get("attribute"): a for en in t.get("enrollments") or []
                     if isinstance(en, dict) for a in en.get("attributes") or []
                     if isinstance(a, dict)}
            attrs.update({a.get("attribute"): a for a in t.get("attributes") or []
                          if isinstance(a, dict)})
            self.cells("te_attribute", uid, list(attrs.values()), cells["te_attribute"], ou)
        for en in t.get("enrollments") or []:
            if not isinstance(en, dict) or not en.get("enrollment"):
                continue
            eid = str(en["enrollment"])
            nat_en = {"te": uid, "program": en.get("program"), "org_unit": en.get("orgUnit"),
                      "status": en.get("status") or "ACTIVE",
                      "enrolled_at": en.get("enrolledAt"), "occurred_at": en.get("occurredAt"),
                      "completed_at": en.get("completedAt"), "follow_up": _b(en.get("followUp")),
                      "geometry": _geo(en.get("geometry")), "deleted": _b(en.get("deleted"))}
            self.header("enrollment", eid, nat_en, en, rows["enrollment"].get(eid),
                        str(en.get("orgUnit") or ou))
            for ev in en.get("events") or []:
                if isinstance(ev, dict) and ev.get("event"):
                    self.event(ev, uid, eid, rows, cells)
        for rel in t.get("relationships") or []:
            if not isinstance(rel, dict) or not rel.get("relationship"):
                continue
            rid = str(rel["relationship"])
            nat_rel = {"type": rel.get("relationshipType"), "from_doc": _ref(rel.get("from")),
                       "to_doc": _ref(rel.get("to")), "bidirectional": _b(rel.get("bidirectional")),
                       "deleted": _b(rel.get("deleted"))}
            local = rows["relationship"].get(rid)
            if local is None or local["deleted"] != nat_rel["deleted"]:
                if local is not None:  # relationships only come and go: keep the stored ends
                    nat_rel.update(from_doc=local["from_doc"], to_doc=local["to_doc"])
                self.header("relationship", rid, nat_rel, rel, local, ou)
                fresh = ts.row(self.tx.conn, "relationship", (rid,))
                if fresh is not None:  # it is listed under both of its ends
                    rows["relationship"][rid] = fresh
        for o in t.get("programOwners") or []:
            if not isinstance(o, dict) or not o.get("program") or not o.get("orgUnit"):
                continue
            key = (uid, str(o["program"]))
            local_o = owners.get(key)
            if local_o is None or (local_o["sync_state"] != "pending" and
                                   local_o["org_unit"] != o["orgUnit"]):
                ts.write_owner(self.tx, uid, key[1], str(o["orgUnit"]), t.get("updatedAt"),
                               None if local_o is None else local_o["org_unit"])

    def event(self, ev: Mapping[str, Any], te: str | None, enrollment: str | None,
              rows: dict[str, dict[str, sqlite3.Row]],
              cells: Mapping[str, Mapping[tuple[str, str], sqlite3.Row]]) -> None:
        vid = str(ev["event"])
        ou = str(ev.get("orgUnit") or "")
        nat = {"enrollment": ev.get("enrollment") or enrollment,
               "te": ev.get("trackedEntity") or te, "program": ev.get("program"),
               "program_stage": ev.get("programStage"), "org_unit": ou,
               "status": ev.get("status") or "ACTIVE", "occurred_at": ev.get("occurredAt"),
               "scheduled_at": ev.get("scheduledAt"), "completed_at": ev.get("completedAt"),
               "aoc": ev.get("attributeOptionCombo"),
               "follow_up": _b(ev.get("followup") or ev.get("followUp")),
               "geometry": _geo(ev.get("geometry")), "deleted": _b(ev.get("deleted"))}
        local = rows["event"].get(vid)
        if local is not None and nat["aoc"] is None:
            nat["aoc"] = local["aoc"]  # DHIS2 may leave the default combo out
        self.header("event", vid, nat, ev, local, ou)
        if not nat["deleted"]:
            self.cells("event_value", vid, [d for d in ev.get("dataValues") or []
                                            if isinstance(d, dict)], cells["event_value"], ou)


def _cell_key(table: str, parent: str, name: str) -> dict[str, str]:
    if table == "te_attribute":
        return {"te": parent, "attribute": name}
    return {"event": parent, "dataElement": name}


def apply_page(tx: Tx, tes: list[Mapping[str, Any]], ctx: Context, sent: Echoes
               ) -> TrackerPullStats:
    """Merge one page of national's tracked entities (with everything under them)."""
    uids = [str(t["trackedEntity"]) for t in tes if isinstance(t, dict) and t.get("trackedEntity")]
    enr = [str(e["enrollment"]) for t in tes for e in t.get("enrollments") or []
           if isinstance(e, dict) and e.get("enrollment")]
    evs = [str(v["event"]) for t in tes for e in t.get("enrollments") or []
           if isinstance(e, dict) for v in e.get("events") or []
           if isinstance(v, dict) and v.get("event")]
    rels = [str(r["relationship"]) for t in tes for r in t.get("relationships") or []
            if isinstance(r, dict) and r.get("relationship")]
    conn = tx.conn
    rows = {"tracked_entity": ts.rows_by_uid(conn, "tracked_entity", uids),
            "enrollment": ts.rows_by_uid(conn, "enrollment", enr),
            "event": ts.rows_by_uid(conn, "event", evs),
            "relationship": ts.rows_by_uid(conn, "relationship", rels)}
    cells = {"te_attribute": ts.cells_of(conn, "te_attribute", uids),
             "event_value": ts.cells_of(conn, "event_value", evs)}
    owners = ts.owners_of(conn, uids)
    m = _Merge(tx, ctx, sent)
    for t in tes:
        if isinstance(t, dict) and t.get("trackedEntity"):
            m.tracked_entity(t, rows, cells, owners)
    ts.reindex(tx, sorted(m.stats.touched))
    return m.stats
