"""The tracker family (store/tracker.py): writes field by field with sync columns and
audit, soft deletes that cascade, ownership, reserved values, duplicates, and reads in
DHIS2 2.41's tracker JSON (checked against the Android SDK's fixtures)."""

from __future__ import annotations

import json
import os
import re
import sqlite3
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from appliance.errors import BadRequest, Conflict, NotFound
from appliance.store import Store, Tx
from appliance.store import tracker as tr
from appliance.store.datavalues import NATIONAL
from appliance.store.hlc import to_iso

REPO = Path(__file__).resolve().parents[2]
REFERENCE = Path(os.environ.get("HUB_REFERENCE") or REPO.parent / "shared" / "reference")
SDK = REFERENCE / "dhis2-android-sdk-responses"

TYPE = "tetPerson01"
PROGRAM = "progMCH0001"
STAGE = "stageANC001"
NAME = "attrName001"
NID = "attrNatId01"
WEIGHT = "deWeight001"
HEIGHT = "deHeight001"
OU_A, OU_B, OU_C = "ouUpazilaA1", "ouUpazilaB1", "ouUpazilaC1"
TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}$")


class Clock:
    """A wall clock the test moves, one second per write, so times never tie."""

    def __init__(self) -> None:
        self.t = 1_700_000_000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(clock: Clock) -> Iterator[Store]:
    with Store.memory(wall=clock) as s:
        yield s


def person(uid: str, ou: str = OU_A, **attrs: str | None) -> tr.TrackedEntityIn:
    return tr.TrackedEntityIn(uid=uid, type=TYPE, org_unit=ou,
                              attributes=[(NAME if k == "name" else NID, v)
                                          for k, v in attrs.items()],
                              created_at_client="2024-01-01T08:00:00.000",
                              updated_at_client="2024-01-01T08:00:00.000")


def enrol(uid: str, te: str, ou: str = OU_A, **kw: Any) -> tr.EnrollmentIn:
    return tr.EnrollmentIn(uid=uid, te=te, program=PROGRAM, org_unit=ou,
                           enrolled_at="2024-01-02T00:00:00.000",
                           occurred_at="2024-01-02T00:00:00.000", **kw)


def visit(uid: str, enrollment: str | None, ou: str = OU_A, *,
          values: list[tuple[str, str | None, bool]] | None = None, **kw: Any) -> tr.EventIn:
    kw.setdefault("occurred_at", "2024-01-05T00:00:00.000")
    return tr.EventIn(uid=uid, enrollment=enrollment, program=PROGRAM, program_stage=STAGE,
                      org_unit=ou, data_values=values or [], aoc="HllvX50cXC0", **kw)


def link(uid: str, a: str, b: str) -> tr.RelationshipIn:
    return tr.RelationshipIn(uid=uid, type="relMother01",
                             from_doc={"trackedEntity": {"trackedEntity": a}},
                             to_doc={"trackedEntity": b}, bidirectional=True)


def apply(store: Store, clock: Clock, bundle: tr.Bundle, **kw: Any) -> tr.BundleResult:
    clock.t += 1
    kw.setdefault("username", "nurse")
    return store.write_sync(lambda tx: tr.apply_bundle(tx, bundle, **kw))


def full_bundle() -> tr.Bundle:
    return tr.Bundle(
        tracked_entities=[person("teMother001", name="Rahima", nid="1990123456789"),
                          person("teChild0001", name="Baby")],
        enrollments=[enrol("enMother001", "teMother001")],
        events=[visit("evANC000001", "enMother001",
                      values=[(WEIGHT, "55", False), (HEIGHT, "150", False)])],
        relationships=[link("reMother001", "teMother001", "teChild0001")])


def row(store: Store, sql: str, *args: Any) -> sqlite3.Row:
    r = store.read_sync(lambda c: c.execute(sql, args).fetchone())
    assert r is not None, sql
    return r  # type: ignore[no-any-return]


def rows(store: Store, sql: str, *args: Any) -> list[sqlite3.Row]:
    return store.read_sync(lambda c: c.execute(sql, args).fetchall())  # type: ignore[no-any-return]


def mark_all_synced(store: Store) -> None:
    def go(tx: Tx) -> None:
        for t in tr.SYNC_TABLES:
            tx.execute(f"UPDATE {t} SET sync_state='synced'")
    store.write_sync(go)


# -- writes ------------------------------------------------------------------------------
def test_create_writes_every_object_pending_and_audited(store: Store, clock: Clock) -> None:
    res = apply(store, clock, full_bundle(), client="10.0.0.5")
    assert res.stats[tr.TRACKED_ENTITY] == {"created": 2, "updated": 0, "deleted": 0,
                                            "ignored": 0, "total": 2}
    for t in (tr.ENROLLMENT, tr.EVENT, tr.RELATIONSHIP):
        assert res.stats[t]["created"] == 1 and res.stats[t]["total"] == 1
    assert res.totals["created"] == 5
    assert res.objects[0] == ("teMother001", "TRACKED_ENTITY", "created")
    assert [o[1] for o in res.objects] == ["TRACKED_ENTITY", "TRACKED_ENTITY", "ENROLLMENT",
                                           "EVENT", "RELATIONSHIP"]

    te = row(store, "SELECT * FROM tracked_entity WHERE uid='teMother001'")
    assert te["sync_state"] == "pending" and te["origin"] == "local" and te["base"] is None
    assert te["created_at"] == te["updated_at"] == to_iso(te["hlc"])
    assert te["stored_by"] == "nurse" and te["created_at_client"] == "2024-01-01T08:00:00.000"
    attrs = rows(store, "SELECT attribute, value, sync_state, hlc FROM te_attribute "
                        "WHERE te='teMother001' ORDER BY attribute")
    assert [(a[0], a[1], a[2], a[3]) for a in attrs] == [
        (NAME, "Rahima", "pending", te["hlc"]), (NID, "1990123456789", "pending", te["hlc"])]
    ev = row(store, "SELECT * FROM event WHERE uid='evANC000001'")
    assert ev["te"] == "teMother001"  # taken from the enrollment
    assert row(store, "SELECT count(*) FROM event_value WHERE event='evANC000001'")[0] == 2
    rel = row(store, "SELECT * FROM relationship WHERE uid='reMother001'")
    assert json.loads(rel["to_doc"]) == {"trackedEntity": {"trackedEntity": "teChild0001"}}

    audit = {(a["entity"], a["key"], a["audit_type"]): a for a in rows(
        store, "SELECT * FROM audit WHERE entity IN ('tracked_entity','te_attribute',"
               "'enrollment','event','event_value','relationship','program_owner')")}
    assert set(audit) == {
        ("tracked_entity", "teMother001", "CREATE"), ("tracked_entity", "teChild0001", "CREATE"),
        ("te_attribute", f"teMother001|{NAME}", "CREATE"),
        ("te_attribute", f"teMother001|{NID}", "CREATE"),
        ("te_attribute", f"teChild0001|{NAME}", "CREATE"),
        ("enrollment", "enMother001", "CREATE"),
        ("program_owner", f"teMother001|{PROGRAM}", "CREATE"),
        ("event", "evANC000001", "CREATE"),
        ("event_value", f"evANC000001|{WEIGHT}", "CREATE"),
        ("event_value", f"evANC000001|{HEIGHT}", "CREATE"),
        ("relationship", "reMother001", "CREATE")}
    a = audit[("te_attribute", f"teMother001|{NAME}", "CREATE")]
    assert (a["username"], a["client"], a["via"], a["new_value"]) == (
        "nurse", "10.0.0.5", "api", "Rahima")


def test_update_rewrites_only_changed_fields(store: Store, clock: Clock) -> None:
    apply(store, clock, full_bundle())
    mark_all_synced(store)
    before = {r[0]: r[1] for r in rows(store, "SELECT attribute, hlc FROM te_attribute "
                                              "WHERE te='teMother001'")}
    en_before = row(store, "SELECT hlc, updated_at FROM enrollment WHERE uid='enMother001'")

    b = full_bundle()
    b.tracked_entities[0].attributes = [(NAME, "Rahima Begum"), (NID, "1990123456789")]
    b.events[0].data_values = [(WEIGHT, "56", False), (HEIGHT, "150", False)]
    res = apply(store, clock, b)

    # DHIS2 counts every stored object in the payload as updated
    assert res.stats[tr.TRACKED_ENTITY]["updated"] == 2
    assert res.stats[tr.ENROLLMENT]["updated"] == 1
    assert res.stats[tr.RELATIONSHIP]["ignored"] == 1  # relationships are never updated
    name = row(store, f"SELECT * FROM te_attribute WHERE te='teMother001' AND attribute='{NAME}'")
    nid = row(store, f"SELECT * FROM te_attribute WHERE te='teMother001' AND attribute='{NID}'")
    assert name["value"] == "Rahima Begum" and name["sync_state"] == "pending"
    assert name["hlc"] > before[NAME] and name["updated_at"] == to_iso(name["hlc"])
    assert name["created_at"] != name["updated_at"]  # created kept
    assert nid["sync_state"] == "synced" and nid["hlc"] == before[NID]  # unchanged: untouched
    te = row(store, "SELECT * FROM tracked_entity WHERE uid='teMother001'")
    assert te["sync_state"] == "pending" and te["hlc"] == name["hlc"]  # its updatedAt moved
    child = row(store, "SELECT sync_state FROM tracked_entity WHERE uid='teChild0001'")
    assert child["sync_state"] == "synced"  # nothing of it changed
    en = row(store, "SELECT hlc, updated_at, sync_state FROM enrollment WHERE uid='enMother001'")
    assert (en["hlc"], en["updated_at"], en["sync_state"]) == (*en_before, "synced")
    vals = {r["data_element"]: r for r in rows(store, "SELECT * FROM event_value")}
    assert vals[WEIGHT]["value"] == "56" and vals[WEIGHT]["sync_state"] == "pending"
    assert vals[HEIGHT]["sync_state"] == "synced"
    upd = rows(store, "SELECT key, old_value, new_value FROM audit WHERE audit_type='UPDATE'")
    assert {(r[0], r[1], r[2]) for r in upd} == {
        (f"teMother001|{NAME}", "Rahima", "Rahima Begum"),
        (f"evANC000001|{WEIGHT}", "55", "56")}


def test_object_fields_update_and_notes_append(store: Store, clock: Clock) -> None:
    apply(store, clock, full_bundle())
    b = full_bundle()
    b.enrollments[0].status = "COMPLETED"
    b.enrollments[0].notes = [{"note": "noteAAAAAA1", "value": "referred"}]
    apply(store, clock, b)
    en = row(store, "SELECT * FROM enrollment WHERE uid='enMother001'")
    assert en["status"] == "COMPLETED" and en["completed_at"] == to_iso(en["hlc"])
    notes = json.loads(en["notes"])
    assert [(n["note"], n["value"], n["storedBy"]) for n in notes] == [
        ("noteAAAAAA1", "referred", "nurse")]
    hlc = en["hlc"]
    # the same note again is not a change; a new one is appended
    apply(store, clock, b)
    assert row(store, "SELECT hlc FROM enrollment WHERE uid='enMother001'")[0] == hlc
    b.enrollments[0].notes = [{"value": "delivered"}]
    apply(store, clock, b)
    en = row(store, "SELECT * FROM enrollment WHERE uid='enMother001'")
    assert [n["value"] for n in json.loads(en["notes"])] == ["referred", "delivered"]
    assert en["completed_at"] == to_iso(hlc)  # completedAt kept while still COMPLETED


def test_null_or_empty_value_deletes_the_field_and_keeps_a_row(store: Store,
                                                               clock: Clock) -> None:
    apply(store, clock, full_bundle())
    mark_all_synced(store)
    b = tr.Bundle(tracked_entities=[person("teMother001", nid="")],
                  events=[visit("evANC000001", "enMother001", values=[(WEIGHT, None, False)])])
    res = apply(store, clock, b)
    assert res.stats[tr.TRACKED_ENTITY]["updated"] == 1
    nid = row(store, f"SELECT * FROM te_attribute WHERE te='teMother001' AND attribute='{NID}'")
    assert nid["value"] is None and nid["sync_state"] == "pending"
    name = row(store, f"SELECT * FROM te_attribute WHERE te='teMother001' AND attribute='{NAME}'")
    assert name["value"] == "Rahima" and name["sync_state"] == "synced"  # not in the payload
    weight = row(store, f"SELECT * FROM event_value WHERE data_element='{WEIGHT}'")
    assert weight["value"] is None and weight["sync_state"] == "pending"
    assert row(store, "SELECT count(*) FROM audit WHERE audit_type='DELETE' AND key IN (?, ?)",
               f"teMother001|{NID}", f"evANC000001|{WEIGHT}")[0] == 2

    te = store.read_sync(lambda c: tr.query_tracked_entities(
        c, org_units=[OU_A], program=None, te_type=None, uids=["teMother001"]))[0]
    assert [a["attribute"] for a in te["attributes"]] == [NAME]
    ev = te["enrollments"][0]["events"][0]
    assert [d["dataElement"] for d in ev["dataValues"]] == [HEIGHT]
    # deleting what is already deleted changes nothing; writing it again revives the row
    hlc = nid["hlc"]
    apply(store, clock, tr.Bundle(tracked_entities=[person("teMother001", nid=None)]))
    assert row(store, f"SELECT hlc FROM te_attribute WHERE attribute='{NID}'")[0] == hlc
    apply(store, clock, tr.Bundle(tracked_entities=[person("teMother001", nid="2000")]))
    again = row(store, f"SELECT * FROM te_attribute WHERE attribute='{NID}'")
    assert again["value"] == "2000" and again["created_at"] == again["updated_at"]


def test_strategies_create_and_update_only(store: Store, clock: Clock) -> None:
    res = apply(store, clock, tr.Bundle(tracked_entities=[person("teMother001", name="A")]),
                strategy="UPDATE")
    assert res.stats[tr.TRACKED_ENTITY]["ignored"] == 1
    assert rows(store, "SELECT uid FROM tracked_entity") == []
    apply(store, clock, tr.Bundle(tracked_entities=[person("teMother001", name="A")]),
          strategy="CREATE")
    res = apply(store, clock, tr.Bundle(tracked_entities=[person("teMother001", name="B")]),
                strategy="CREATE")
    assert res.stats[tr.TRACKED_ENTITY]["ignored"] == 1
    assert row(store, "SELECT value FROM te_attribute")[0] == "A"
    with pytest.raises(BadRequest):
        apply(store, clock, tr.Bundle(), strategy="MERGE")


def test_delete_cascades_and_counts(store: Store, clock: Clock) -> None:
    apply(store, clock, full_bundle())
    res = apply(store, clock, tr.Bundle(tracked_entities=[person("teMother001")]),
                strategy="DELETE")
    assert res.stats[tr.TRACKED_ENTITY] == {"created": 0, "updated": 0, "deleted": 1,
                                            "ignored": 0, "total": 1}
    assert res.stats[tr.EVENT]["total"] == 0  # the cascade is not in the report
    for table, uid in (("tracked_entity", "teMother001"), ("enrollment", "enMother001"),
                       ("event", "evANC000001"), ("relationship", "reMother001")):
        r = row(store, f"SELECT deleted, sync_state FROM {table} WHERE uid=?", uid)
        assert (r[0], r[1]) == (1, "pending"), table
        assert row(store, "SELECT count(*) FROM audit WHERE entity=? AND key=? AND "
                          "audit_type='DELETE'", table, uid)[0] == 1
    assert row(store, "SELECT deleted FROM tracked_entity WHERE uid='teChild0001'")[0] == 0

    def live(c: sqlite3.Connection, **kw: Any) -> list[str]:
        return [t["trackedEntity"] for t in tr.query_tracked_entities(
            c, org_units=[OU_A], program=None, te_type=TYPE, **kw)]
    assert store.read_sync(live) == ["teChild0001"]
    assert sorted(store.read_sync(lambda c: live(c, include_deleted=True))) == [
        "teChild0001", "teMother001"]
    gone = store.read_sync(lambda c: tr.query_tracked_entities(
        c, org_units=None, program=None, te_type=None, uids=["teMother001"],
        include_deleted=True))[0]
    assert gone["deleted"] is True and gone["enrollments"][0]["deleted"] is True
    assert gone["enrollments"][0]["events"][0]["deleted"] is True
    assert store.read_sync(lambda c: tr.query_events(c, program=PROGRAM)) == []
    res = apply(store, clock, tr.Bundle(tracked_entities=[person("teMother001")]),
                strategy="DELETE")
    assert res.stats[tr.TRACKED_ENTITY]["ignored"] == 1
    # a deleted uid is not revived by a create
    res = apply(store, clock, tr.Bundle(tracked_entities=[person("teMother001", name="X")]))
    assert res.stats[tr.TRACKED_ENTITY]["ignored"] == 1


def test_deleted_flag_deletes_in_reverse_order(store: Store, clock: Clock) -> None:
    apply(store, clock, full_bundle())
    ev = visit("evANC000001", "enMother001")
    ev.deleted = True
    res = apply(store, clock, tr.Bundle(
        events=[ev, visit("evANC000002", "enMother001")]))
    assert sorted(res.objects) == [("evANC000001", "EVENT", "deleted"),
                                   ("evANC000002", "EVENT", "created")]
    assert res.objects[-1] == ("evANC000001", "EVENT", "deleted")  # deletions come last
    assert row(store, "SELECT deleted FROM enrollment WHERE uid='enMother001'")[0] == 0


def test_provenance_national_writes_synced_rows(store: Store, clock: Clock) -> None:
    apply(store, clock, full_bundle(), provenance=NATIONAL, via="sync")
    assert {r[0] for r in rows(store, "SELECT DISTINCT sync_state FROM te_attribute")} == {
        "synced"}
    assert row(store, "SELECT origin FROM event WHERE uid='evANC000001'")[0] == "national"
    assert store.read_sync(tr.pending_counts) == {t: 0 for t in tr.SYNC_TABLES}


def test_pending_counts(store: Store, clock: Clock) -> None:
    apply(store, clock, full_bundle())
    assert store.read_sync(tr.pending_counts) == {
        "tracked_entity": 2, "te_attribute": 3, "enrollment": 1, "event": 1, "event_value": 2,
        "relationship": 1, "program_owner": 1, "potential_duplicate": 0}


# -- ownership ---------------------------------------------------------------------------
def test_enrollment_sets_owner_once_and_transfer_moves_it(store: Store, clock: Clock) -> None:
    apply(store, clock, full_bundle())
    assert store.read_sync(lambda c: tr.owner(c, "teMother001", PROGRAM)) == OU_A
    # a later enrollment elsewhere does not take the ownership
    apply(store, clock, tr.Bundle(enrollments=[enrol("enMother002", "teMother001", OU_B)]))
    assert store.read_sync(lambda c: tr.owner(c, "teMother001", PROGRAM)) == OU_A
    mark_all_synced(store)
    clock.t += 1
    store.write_sync(lambda tx: tr.transfer_ownership(tx, "teMother001", PROGRAM, OU_B,
                                                      username="doctor"))
    o = row(store, "SELECT * FROM program_owner WHERE te='teMother001'")
    assert (o["org_unit"], o["sync_state"]) == (OU_B, "pending")
    a = row(store, "SELECT * FROM audit WHERE entity='program_owner' AND audit_type='UPDATE'")
    assert (a["key"], a["old_value"], a["new_value"], a["username"]) == (
        f"teMother001|{PROGRAM}", OU_A, OU_B, "doctor")
    with pytest.raises(NotFound):
        store.write_sync(lambda tx: tr.transfer_ownership(tx, "teNobody001", PROGRAM, OU_B,
                                                          username="doctor"))

    def found(ous: list[str], program: str | None) -> list[str]:
        return [t["trackedEntity"] for t in store.read_sync(lambda c: tr.query_tracked_entities(
            c, org_units=ous, program=program, te_type=None))]
    # with a program, scope is the owner; without one, the registering org unit
    assert found([OU_B], PROGRAM) == ["teMother001"]
    assert found([OU_A], PROGRAM) == []
    assert sorted(found([OU_A], None)) == ["teChild0001", "teMother001"]
    assert found([OU_B], None) == []
    te = store.read_sync(lambda c: tr.query_tracked_entities(
        c, org_units=[OU_B], program=PROGRAM, te_type=None))[0]
    assert te["programOwners"] == [{"orgUnit": OU_B, "trackedEntity": "teMother001",
                                    "program": PROGRAM}]
    # no owner row (as DHIS2 falls back): the registering org unit owns
    store.write_sync(lambda tx: tx.execute("DELETE FROM program_owner"))
    assert found([OU_A], PROGRAM) == ["teMother001"]
    assert found([OU_B], PROGRAM) == []


def test_existing_and_unique_value_owner(store: Store, clock: Clock) -> None:
    apply(store, clock, full_bundle())
    ex = store.read_sync(lambda c: tr.existing(
        c, te_uids=["teMother001", "teNobody001"], enrollment_uids=["enMother001"],
        event_uids=["evANC000001"], relationship_uids=["reMother001", "reNobody001"]))
    assert set(ex.tracked_entities) == {"teMother001"}
    te = ex.tracked_entities["teMother001"]
    assert (te.org_unit, te.type, te.deleted, te.owners) == (OU_A, TYPE, False, {PROGRAM: OU_A})
    en = ex.enrollments["enMother001"]
    assert (en.te, en.program, en.org_unit, en.status) == ("teMother001", PROGRAM, OU_A, "ACTIVE")
    ev = ex.events["evANC000001"]
    assert (ev.te, ev.enrollment, ev.program_stage) == ("teMother001", "enMother001", STAGE)
    assert set(ex.relationships) == {"reMother001"}

    assert store.read_sync(lambda c: tr.unique_value_owner(c, NID, "1990123456789")) == (
        "teMother001")
    assert store.read_sync(lambda c: tr.unique_value_owner(c, NID, "0000")) is None
    apply(store, clock, tr.Bundle(tracked_entities=[person("teMother001")]), strategy="DELETE")
    assert store.read_sync(lambda c: tr.unique_value_owner(c, NID, "1990123456789")) is None


# -- reserved values -------------------------------------------------------------------
def test_sequential_reserved_values(store: Store, clock: Clock) -> None:
    now = "2024-03-01T10:00:00.000"

    def reserve(n: int, pattern: str = '"BD-" + SEQUENTIAL(###)') -> list[dict[str, Any]]:
        return store.write_sync(lambda tx: tr.reserve_values(
            tx, NID, pattern, n, owner_user="nurse", now=now))
    first = reserve(3)
    assert [v["value"] for v in first] == ["BD-001", "BD-002", "BD-003"]
    assert first[0] == {"ownerObject": "TRACKEDENTITYATTRIBUTE", "ownerUid": NID,
                        "key": "BD-SEQUENTIAL(###)", "value": "BD-001", "created": now,
                        "expiryDate": "2024-04-30T10:00:00.000"}
    assert [v["value"] for v in reserve(2)] == ["BD-004", "BD-005"]
    # a value typed in by hand moves the sequence past it
    apply(store, clock, tr.Bundle(tracked_entities=[person("teMother001", nid="BD-010")]))
    assert [v["value"] for v in reserve(1)] == ["BD-011"]
    with pytest.raises(Conflict):
        reserve(989)  # 012..999 is 988 values
    assert [v["value"] for v in reserve(2, '"X" + SEQUENTIAL(##) + "-Z"')] == ["X01-Z", "X02-Z"]
    for bad in ('"BD-"', 'SEQUENTIAL(###) + RANDOM(#)', '"BD-" + SEQUENTIAL(#A#)',
                'ORG_UNIT_CODE() + SEQUENTIAL(#)'):
        with pytest.raises(BadRequest):
            reserve(1, bad)


def test_random_reserved_values_never_repeat(store: Store, clock: Clock) -> None:
    apply(store, clock, tr.Bundle(tracked_entities=[person("teMother001", nid="R07")]))

    def reserve(n: int) -> list[str]:
        return [v["value"] for v in store.write_sync(lambda tx: tr.reserve_values(
            tx, NID, '"R" + RANDOM(##)', n, owner_user=None, now=1_700_000_000_000))]
    got = reserve(60) + reserve(39)  # 100 values, one held by a tracked entity
    assert len(set(got)) == 99 and "R07" not in got
    assert all(re.fullmatch(r"R\d\d", v) for v in got)
    with pytest.raises(Conflict):
        reserve(1)
    letters = store.write_sync(lambda tx: tr.reserve_values(
        tx, NAME, "RANDOM(Xx*#)", 5, owner_user=None, now=1_700_000_000_000))
    assert all(re.fullmatch(r"[A-Z][a-z][A-Za-z0-9]\d", v["value"]) for v in letters)
    assert letters[0]["key"] == "RANDOM(Xx*#)"


def test_use_reserved_and_writing_a_reserved_value_marks_it_used(store: Store,
                                                                 clock: Clock) -> None:
    vals = store.write_sync(lambda tx: tr.reserve_values(
        tx, NID, '"BD-" + SEQUENTIAL(###)', 2, owner_user="nurse", now=1_700_000_000_000))
    assert store.write_sync(lambda tx: tr.use_reserved(tx, NID, vals[0]["value"])) is True
    assert store.write_sync(lambda tx: tr.use_reserved(tx, NID, "nope")) is False
    apply(store, clock, tr.Bundle(tracked_entities=[person("teMother001",
                                                           nid=vals[1]["value"])]))
    assert [tuple(r) for r in rows(store, "SELECT value, used FROM reserved_value "
                                          "ORDER BY value")] == [("BD-001", 1), ("BD-002", 1)]


# -- potential duplicates ------------------------------------------------------------------
def test_potential_duplicates(store: Store, clock: Clock) -> None:
    apply(store, clock, full_bundle())
    uid = store.write_sync(lambda tx: tr.add_potential_duplicate(
        tx, "teMother001", "teChild0001", ["same NID"], username="nurse"))
    assert row(store, "SELECT potential_duplicate FROM tracked_entity "
                      "WHERE uid='teChild0001'")[0] == 1
    listed = store.read_sync(lambda c: tr.list_potential_duplicates(c, te="teChild0001"))
    assert [(d["id"], d["original"], d["duplicate"], d["status"], d["reasons"])
            for d in listed] == [(uid, "teMother001", "teChild0001", "OPEN", ["same NID"])]
    store.write_sync(lambda tx: tr.set_duplicate_status(tx, uid, "INVALID", username="doc"))
    assert store.read_sync(lambda c: tr.list_potential_duplicates(c, status="OPEN")) == []
    assert store.read_sync(lambda c: tr.list_potential_duplicates(
        c, status="INVALID"))[0]["id"] == uid
    assert row(store, "SELECT sync_state FROM potential_duplicate")[0] == "pending"
    assert [r[0] for r in rows(store, "SELECT audit_type FROM audit WHERE "
                                      "entity='potential_duplicate' ORDER BY id")] == [
        "CREATE", "UPDATE"]
    with pytest.raises(BadRequest):
        store.write_sync(lambda tx: tr.set_duplicate_status(tx, uid, "DONE", username="doc"))
    with pytest.raises(NotFound):
        store.write_sync(lambda tx: tr.set_duplicate_status(tx, "pdNobody001", "MERGED",
                                                            username="doc"))


# -- queries -------------------------------------------------------------------------------
@pytest.fixture
def people(store: Store, clock: Clock) -> Store:
    """Five people written one second apart: te1..te5, names and OUs as listed."""
    for i, (name, ou) in enumerate([("Amina", OU_A), ("Babul", OU_A), ("Chameli", OU_B),
                                    ("Dipu", OU_B), ("Amir", OU_C)], start=1):
        apply(store, clock, tr.Bundle(
            tracked_entities=[person(f"te{i}AAAAAAAA", ou, name=name, nid=f"N{i}")],
            enrollments=[enrol(f"en{i}AAAAAAAA", f"te{i}AAAAAAAA", ou)] if i != 5 else []))
    return store


def names(store: Store, **kw: Any) -> list[str]:
    kw.setdefault("org_units", None)
    kw.setdefault("program", None)
    kw.setdefault("te_type", None)
    tes = store.read_sync(lambda c: tr.query_tracked_entities(c, **kw))
    return [next(a["value"] for a in t["attributes"] if a["attribute"] == NAME) for t in tes]


def count(store: Store, **kw: Any) -> int:
    kw.setdefault("org_units", None)
    kw.setdefault("program", None)
    kw.setdefault("te_type", None)
    return store.read_sync(lambda c: tr.count_tracked_entities(c, **kw))  # type: ignore[no-any-return]


def test_query_filters_order_and_paging(people: Store, clock: Clock) -> None:
    s = people
    assert names(s) == ["Amir", "Dipu", "Chameli", "Babul", "Amina"]  # createdAt:desc
    assert names(s, order="createdAt:asc") == ["Amina", "Babul", "Chameli", "Dipu", "Amir"]
    assert names(s, order=f"{NAME}:asc") == ["Amina", "Amir", "Babul", "Chameli", "Dipu"]
    assert names(s, org_units=[OU_B]) == ["Dipu", "Chameli"]
    assert names(s, org_units=[]) == []
    assert names(s, program=PROGRAM) == ["Dipu", "Chameli", "Babul", "Amina"]  # te5 not enrolled
    assert names(s, te_type="tetOther001") == []
    assert names(s, uids=["te2AAAAAAAA", "te4AAAAAAAA"]) == ["Dipu", "Babul"]
    assert names(s, attribute_filters=[(NAME, "eq", "amina")]) == ["Amina"]
    assert names(s, attribute_filters=[(NAME, "like", "AMI")]) == ["Amir", "Amina"]
    assert names(s, attribute_filters=[(NAME, "sw", "ch")]) == ["Chameli"]
    assert names(s, attribute_filters=[(NAME, "like", "%")]) == []  # % is a character
    assert names(s, attribute_filters=[(NAME, "in", "Babul;dipu")]) == ["Dipu", "Babul"]
    assert names(s, attribute_filters=[(NAME, "like", "am"), (NID, "eq", "N1")]) == ["Amina"]
    with pytest.raises(BadRequest):
        names(s, attribute_filters=[(NAME, "regex", "x")])
    with pytest.raises(BadRequest):
        names(s, order="name:asc")
    # paging
    assert names(s, order="createdAt:asc", offset=1, limit=2) == ["Babul", "Chameli"]
    assert names(s, order="createdAt:asc", offset=4, limit=2) == ["Amir"]
    assert count(s) == 5 and count(s, org_units=[OU_A], attribute_filters=[(NAME, "like", "a")]) == 2
    assert count(s, program=PROGRAM, org_units=[OU_A, OU_B], offset=3, limit=1) == 4
    # updatedAfter: an attribute change moves the entity
    te3 = row(s, "SELECT updated_at FROM tracked_entity WHERE uid='te3AAAAAAAA'")[0]
    apply(s, clock, tr.Bundle(tracked_entities=[person("te1AAAAAAAA", name="Amina K")]))
    after = (datetime.fromisoformat(te3) + timedelta(milliseconds=1)).isoformat(
        timespec="milliseconds")
    assert names(s, updated_after=after) == ["Amir", "Dipu", "Amina K"]
    assert count(s, updated_after=te3) == 4  # inclusive
    assert names(s, updated_after=after, order="updatedAt:desc")[0] == "Amina K"
    # the program's status
    apply(s, clock, tr.Bundle(enrollments=[enrol("en2AAAAAAAA", "te2AAAAAAAA",
                                                 status="COMPLETED")]))
    assert names(s, program=PROGRAM, program_status="COMPLETED") == ["Babul"]


def test_query_events_filters(store: Store, clock: Clock) -> None:
    apply(store, clock, full_bundle())
    apply(store, clock, tr.Bundle(events=[
        visit("evANC000002", "enMother001", occurred_at="2024-02-10T09:30:00.000",
              status="COMPLETED"),
        visit("evANC000003", "enMother001", OU_B, occurred_at=None,
              scheduled_at="2024-03-01T00:00:00.000", status="SCHEDULE"),
        visit("evSingle001", None, OU_B, occurred_at="2024-01-31T00:00:00.000")]))

    def ids(**kw: Any) -> list[str]:
        return [e["event"] for e in store.read_sync(lambda c: tr.query_events(c, **kw))]
    assert ids(order="occurredAt:asc") == ["evANC000003", "evANC000001", "evSingle001",
                                           "evANC000002"]  # NULL first, as SQLite sorts
    assert ids(enrollment="enMother001", order="occurredAt:desc") == [
        "evANC000002", "evANC000001", "evANC000003"]
    assert ids(org_units=[OU_B], order="event:asc") == ["evANC000003", "evSingle001"]
    assert ids(occurred_after="2024-01-05", occurred_before="2024-01-31",
               order="occurredAt:asc") == ["evANC000001", "evSingle001"]
    assert ids(scheduled_after="2024-02-01") == ["evANC000003"]
    assert ids(status="COMPLETED") == ["evANC000002"]
    assert ids(te="teMother001", program_stage=STAGE, order="event:asc") == [
        "evANC000001", "evANC000002", "evANC000003"]
    assert ids(order="occurredAt:asc", offset=1, limit=1) == ["evANC000001"]
    done = store.read_sync(lambda c: tr.query_events(c, uids=["evANC000002"]))[0]
    assert done["completedAt"] == done["updatedAt"]  # stamped when completed without one
    with pytest.raises(BadRequest):
        ids(occurred_after="last week")

    ens = store.read_sync(lambda c: tr.query_enrollments(
        c, org_units=[OU_A], program=PROGRAM, with_events=True, with_attributes=True))
    assert [e["enrollment"] for e in ens] == ["enMother001"]
    assert len(ens[0]["events"]) == 3
    assert {a["attribute"] for a in ens[0]["attributes"]} == {NAME, NID}
    assert store.read_sync(lambda c: tr.query_enrollments(c, org_units=[OU_B])) == []


def test_query_relationships(store: Store, clock: Clock) -> None:
    apply(store, clock, full_bundle())
    for kw in ({"te": "teMother001"}, {"te": "teChild0001"}):
        rels = store.read_sync(lambda c, kw=kw: tr.query_relationships(c, **kw))
        assert [r["relationship"] for r in rels] == ["reMother001"]
    assert store.read_sync(lambda c: tr.query_relationships(c, event="evANC000001")) == []
    apply(store, clock, tr.Bundle(relationships=[link("reMother001", "a", "b")]),
          strategy="DELETE")
    assert store.read_sync(lambda c: tr.query_relationships(c, te="teMother001")) == []
    assert len(store.read_sync(lambda c: tr.query_relationships(
        c, te="teMother001", include_deleted=True))) == 1
    with pytest.raises(BadRequest):
        store.read_sync(lambda c: tr.query_relationships(c))
    with pytest.raises(BadRequest):
        apply(store, clock, tr.Bundle(relationships=[tr.RelationshipIn(
            uid="reBad000001", type="t", from_doc={"orgUnit": "x"}, to_doc={"event": "e"})]))


# -- the JSON against the Android SDK's fixtures -----------------------------------------
def _sdk(path: str) -> dict[str, Any]:
    f = SDK / path
    if not f.exists():
        pytest.skip(f"no DHIS2 reference fixtures at {SDK} (set HUB_REFERENCE)")
    return json.loads(f.read_text())  # type: ignore[no-any-return]


# fields that need metadata or users the store does not hold; the API adds them if asked
_NOT_FROM_STORE = {"orgUnitName", "completedBy", "attributeCategoryOptions", "assignedUser",
                   "updatedBy", "createdBy", "relationshipName", "displayName", "valueType",
                   "code"}


def _keys(doc: dict[str, Any]) -> set[str]:
    return set(doc) - _NOT_FROM_STORE


def _same_types(ours: dict[str, Any], theirs: dict[str, Any], where: str,
                without: frozenset[str] = frozenset()) -> None:
    for k in _keys(theirs) - without:
        assert k in ours, f"{where}: {k} missing"
        if isinstance(theirs[k], str) and TS.match(theirs[k]):
            assert isinstance(ours[k], str) and TS.match(ours[k]), f"{where}.{k}: {ours[k]!r}"
        else:
            assert type(ours[k]) is type(theirs[k]), f"{where}.{k}: {ours[k]!r}"


def test_json_has_the_sdk_shapes(store: Store, clock: Clock) -> None:
    te_fix = _sdk("trackedentity/new_tracker_importer_tracked_entity.json")
    en_fix = _sdk("enrollment/new_tracker_importer_enrollment.json")
    ev_fix = _sdk("event/new_tracker_importer_event.json")
    rel_fix = _sdk("relationship/new_relationship.json")
    b = full_bundle()
    b.tracked_entities[0].geometry = '{"type":"Point","coordinates":[90.4,23.8]}'
    b.enrollments[0].status = "COMPLETED"
    b.events[0].geometry = '{"type":"Point","coordinates":[90.4,23.8]}'
    b.events[0].scheduled_at = "2024-01-05T00:00:00.000"
    b.events[0].status = "COMPLETED"
    b.events[0].created_at_client = b.events[0].updated_at_client = "2024-01-05T09:00:00.000"
    b.enrollments[0].created_at_client = "2024-01-02T09:00:00.000"
    b.enrollments[0].updated_at_client = "2024-01-02T09:00:00.000"
    apply(store, clock, b)
    te = store.read_sync(lambda c: tr.query_tracked_entities(
        c, org_units=[OU_A], program=PROGRAM, te_type=TYPE, uids=["teMother001"],
        with_relationships=True))[0]

    _same_types(te, te_fix, "trackedEntity")
    assert te["geometry"] == {"type": "Point", "coordinates": [90.4, 23.8]}
    _same_types(te["attributes"][0], te_fix["attributes"][0], "attribute")
    assert set(te["programOwners"][0]) == set(te_fix["programOwners"][0])
    en = te["enrollments"][0]
    # the design keeps no enrollment attribute option combo (programs here have none)
    no_aoc = frozenset({"attributeOptionCombo"})
    _same_types(en, en_fix, "enrollment", no_aoc)
    _same_types(en, te_fix["enrollments"][0], "enrollment (nested)", no_aoc)
    ev = en["events"][0]
    _same_types(ev, ev_fix, "event")
    _same_types(ev["dataValues"][0], ev_fix["dataValues"][0], "dataValue")
    assert _keys(ev["dataValues"][0]) >= _keys(te_fix["enrollments"][0]["events"][0]
                                               ["dataValues"][0])
    rel = te["relationships"][0]
    assert _keys(rel) == _keys(rel_fix)
    assert rel["from"] == {"trackedEntity": {"trackedEntity": "teMother001"}}
    assert rel["bidirectional"] is True
