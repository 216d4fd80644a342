"""Tracker sync against the national stand-in on a real port: records made at the hub go
up (deletions first, then creates and updates, then ownership transfers), national's
changes come down, concurrent edits merge field by field in both orders with every loser
in the conflict log, and what national refuses is shown with DHIS2's code and reason.
After each, national holds what the hub holds."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from appliance import demo
from appliance.demo.history import community_clinics
from appliance.dhis2.uid import generate_uid
from appliance.store import Store
from appliance.store import tracker as tstore
from appliance.store.datavalues import LOCAL_EDIT, NATIONAL

from .conftest import Pair

PERSON = "Psmnq2BtsuW"


def _meta() -> dict[str, Any]:
    """Uids of the demo's maternal register, its ANC stage and a few attributes."""
    doc = demo.hub()
    attrs = {a["code"]: a["id"] for a in doc["trackedEntityAttributes"] if a.get("code")}
    progs = {p["code"]: p for p in doc["programs"] if p.get("code")}
    mat = progs["BD_MATERNAL"]
    stages = {s["id"]: s for s in doc["programStages"]}
    anc = next(stages[s["id"]] for s in mat["programStages"]
               if "ANC" in (stages[s["id"]].get("code") or stages[s["id"]]["name"]))
    des = {d["id"]: d for d in doc["dataElements"]}
    anc_des = {des[e["dataElement"]["id"]].get("code"): e["dataElement"]["id"]
               for e in anc["programStageDataElements"]}
    clinics = community_clinics(doc, demo.RAMU_UID)
    return {"attrs": attrs, "program": mat["id"], "stage": anc["id"], "des": anc_des,
            "clinic": demo.CHCP_CLINIC_UID if demo.CHCP_CLINIC_UID in clinics else clinics[0],
            "clinics": clinics}


M = _meta()


def person_bundle(n: int = 1, *, visits: int = 1, ou: str | None = None) -> tstore.Bundle:
    ou = ou or M["clinic"]
    a, d = M["attrs"], M["des"]
    b = tstore.Bundle()
    for i in range(n):
        te, en = generate_uid(), generate_uid()
        b.tracked_entities.append(tstore.TrackedEntityIn(
            uid=te, type=PERSON, org_unit=ou, attributes=[
                (a["BD_NAME_EN"], f"Rahima Begum {i}"), (a["BD_NAME_BN"], f"রহিমা বেগম {i}"),
                (a["BD_RELATION_NAME"], f"Karim Uddin {i}"), (a["BD_PHONE"], f"0171{i:07d}"),
                (a["BD_DOB"], "1998-03-01"), (a["BD_VILLAGE"], "Merongloa Sikderpara")]))
        b.enrollments.append(tstore.EnrollmentIn(
            uid=en, te=te, program=M["program"], org_unit=ou,
            enrolled_at="2026-10-01T00:00:00.000", occurred_at="2026-08-20T00:00:00.000"))
        for j in range(visits):
            b.events.append(tstore.EventIn(
                uid=generate_uid(), program=M["program"], program_stage=M["stage"],
                org_unit=ou, enrollment=en, te=te, status="COMPLETED",
                occurred_at=f"2026-10-{j + 2:02d}T00:00:00.000",
                data_values=[(d["BD_MAT_GEST_WEEKS"], str(10 + j), False),
                             (d["BD_MAT_BP_SYS"], "110", False),
                             (d["BD_MAT_BP_DIA"], "70", False),
                             (d["BD_MAT_WEIGHT"], "52.5", False),
                             (d["BD_MAT_DANGER"], "NONE", False)]))
    return b


async def hub_write(store: Store, bundle: tstore.Bundle, user: str = "chcp",
                    strategy: str = "CREATE_AND_UPDATE") -> None:
    await store.write(lambda tx: tstore.apply_bundle(tx, bundle, username=user,
                                                     strategy=strategy, provenance=LOCAL_EDIT))


async def national_write(store: Store, bundle: tstore.Bundle, user: str = "district",
                         strategy: str = "CREATE_AND_UPDATE") -> None:
    await store.write(lambda tx: tstore.apply_bundle(tx, bundle, username=user,
                                                     strategy=strategy, provenance=NATIONAL))


# -- comparing both sides ---------------------------------------------------------------------
def snapshot(db: Any) -> dict[str, dict[Any, Any]]:
    """Tracked entities, attribute values, enrollments, events and data values by uid
    (the fields both sides must agree on)."""
    if isinstance(db, Store):
        return db.read_sync(_snap)
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as c:
        c.row_factory = sqlite3.Row
        return _snap(c)


def _snap(c: Any) -> dict[str, dict[Any, Any]]:
    return {
        "te": {r[0]: tuple(r[1:]) for r in c.execute(
            "SELECT uid, type, org_unit, inactive, deleted FROM tracked_entity")},
        "attr": {(r[0], r[1]): r[2] for r in c.execute(
            "SELECT a.te, a.attribute, a.value FROM te_attribute a JOIN tracked_entity t ON "
            "t.uid=a.te WHERE a.value IS NOT NULL AND t.deleted=0")},
        "en": {r[0]: tuple(r[1:]) for r in c.execute(
            "SELECT uid, te, program, org_unit, status, enrolled_at, occurred_at, deleted "
            "FROM enrollment")},
        "ev": {r[0]: tuple(r[1:]) for r in c.execute(
            "SELECT uid, enrollment, program_stage, org_unit, status, occurred_at, "
            "scheduled_at, deleted FROM event")},
        "dv": {(r[0], r[1]): r[2] for r in c.execute(
            "SELECT v.event, v.data_element, v.value FROM event_value v JOIN event e ON "
            "e.uid=v.event WHERE v.value IS NOT NULL AND e.deleted=0")},
        "owner": {(r[0], r[1]): r[2] for r in c.execute(
            "SELECT te, program, org_unit FROM program_owner")},
    }


def assert_equal(hub: Any, national: Any) -> None:
    h, n = snapshot(hub), snapshot(national)
    for k in h:
        assert h[k] == n[k], (k, {x: (h[k].get(x), n[k].get(x)) for x in set(h[k]) ^ set(n[k])
                                  or [x for x in h[k] if h[k][x] != n[k].get(x)]})


def pending(store: Store) -> dict[str, int]:
    return store.read_sync(lambda c: {t: n for t, n in tstore.pending_counts(c).items()
                                      if n and t != "potential_duplicate"})


def tracker_conflicts(store: Store) -> list[dict[str, Any]]:
    return [dict(r) | json.loads(r["key"]) for r in store.read_sync(lambda c: c.execute(
        "SELECT * FROM sync_conflict WHERE entity NOT IN ('datavalue', "
        "'complete_registration') ORDER BY id").fetchall())]


# -- tests ------------------------------------------------------------------------------------
async def test_records_made_at_the_hub_reach_national(pair: Pair) -> None:
    assert pending(pair.hub) == {}
    assert_equal(pair.hub, pair.national.store)  # the demo history, both sides
    b = person_bundle(3, visits=2)
    await hub_write(pair.hub, b)
    assert pending(pair.hub)
    r = await pair.cycle()
    assert r.ok, r.error
    assert r.tracker_push.accepted == 3 + 3 + 6 and r.tracker_push.rejected == 0
    assert pending(pair.hub) == {}
    assert_equal(pair.hub, pair.national.store)
    # nothing more to send: a second cycle pushes nothing
    r = await pair.cycle()
    assert r.ok and r.tracker_push.chunks == 0
