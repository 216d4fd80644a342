"""Tracker sync against the national stand-in on a real port: records made at the hub go
up (deletions first, then creates and updates, then ownership transfers), national's
changes come down, concurrent edits merge field by field in both orders with every loser
in the conflict log, and what national refuses is shown with DHIS2's code and reason.
After each, national holds what the hub holds."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from typing import Any

import aiohttp

from appliance import demo
from appliance.demo.history import community_clinics
from appliance.dhis2.uid import generate_uid
from appliance.store import Store, synclog
from appliance.store import tracker as tstore
from appliance.store.datavalues import LOCAL_EDIT, NATIONAL

from .conftest import Pair, basic

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
                                      if n})


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
    # national refused nothing: its job notification said so, the report stayed there
    assert r.tracker_push.reports_skipped == r.tracker_push.chunks >= 1
    assert pending(pair.hub) == {}
    assert_equal(pair.hub, pair.national.store)
    # nothing more to send: a second cycle pushes nothing
    r = await pair.cycle()
    assert r.ok and r.tracker_push.chunks == 0


def history_person(store: Store) -> dict[str, Any]:
    """A demo person with an ANC visit holding a weight, synced on both sides."""
    def read(c: Any) -> dict[str, Any]:
        r = c.execute(
            "SELECT e.uid AS event, e.te, e.enrollment, e.org_unit FROM event e JOIN "
            "event_value v ON v.event=e.uid WHERE e.program_stage=? AND v.data_element=? AND "
            "e.deleted=0 AND e.status='COMPLETED' ORDER BY e.uid LIMIT 1",
            (M["stage"], M["des"]["BD_MAT_WEIGHT"])).fetchone()
        return dict(r)
    return store.read_sync(read)


def te_in(p: dict[str, Any], attrs: list[tuple[str, str | None]]) -> tstore.TrackedEntityIn:
    return tstore.TrackedEntityIn(uid=p["te"], type=PERSON, org_unit=p["org_unit"],
                                  attributes=attrs)


def event_in(store: Store, p: dict[str, Any], values: list[tuple[str, str | None]]
             ) -> tstore.EventIn:
    r = store.read_sync(lambda c: dict(c.execute("SELECT * FROM event WHERE uid=?",
                                                 (p["event"],)).fetchone()))
    return tstore.EventIn(uid=r["uid"], program=r["program"], program_stage=r["program_stage"],
                          org_unit=r["org_unit"], enrollment=r["enrollment"], te=r["te"],
                          status=r["status"], occurred_at=r["occurred_at"],
                          scheduled_at=r["scheduled_at"], completed_at=r["completed_at"],
                          data_values=[(d, v, False) for d, v in values])


async def test_merge_hub_edit_first_then_national_field_by_field(pair: Pair) -> None:
    import asyncio
    p = history_person(pair.hub)
    a, d = M["attrs"], M["des"]
    # the hub edits the phone and the visit's weight; then national edits the phone (later),
    # the village and the visit's blood pressure: different fields merge, the phone is
    # the later edit's (national's), the hub's phone goes to the log
    await hub_write(pair.hub, tstore.Bundle(
        tracked_entities=[te_in(p, [(a["BD_PHONE"], "01811111111")])],
        events=[event_in(pair.hub, p, [(d["BD_MAT_WEIGHT"], "61.5")])]))
    await asyncio.sleep(0.3)
    await national_write(pair.national.store, tstore.Bundle(
        tracked_entities=[te_in(p, [(a["BD_PHONE"], "01922222222"),
                                    (a["BD_VILLAGE"], "Khuniapalong")])],
        events=[event_in(pair.national.store, p, [(d["BD_MAT_BP_SYS"], "131")])]))
    r = await pair.cycle()
    assert r.ok, r.error
    assert r.tracker_pull.conflicts == 1 and r.tracker_pull.national_won == 1
    h = snapshot(pair.hub)
    assert h["attr"][(p["te"], a["BD_PHONE"])] == "01922222222"
    assert h["attr"][(p["te"], a["BD_VILLAGE"])] == "Khuniapalong"
    assert h["dv"][(p["event"], d["BD_MAT_WEIGHT"])] == "61.5"
    assert h["dv"][(p["event"], d["BD_MAT_BP_SYS"])] == "131"
    assert pending(pair.hub) == {}
    assert_equal(pair.hub, pair.national.store)
    [c] = tracker_conflicts(pair.hub)
    assert (c["entity"], c["te"], c["attribute"]) == ("te_attribute", p["te"], a["BD_PHONE"])
    assert (c["hub_value"], c["national_value"], c["winner"]) == \
        ("01811111111", "01922222222", "national")
    assert c["hub_user"] == "chcp" and c["national_user"] == "district"
    assert c["hub_at"] < c["national_at"]


async def test_merge_national_edit_first_then_hub_field_by_field(pair: Pair) -> None:
    import asyncio
    p = history_person(pair.hub)
    a, d = M["attrs"], M["des"]
    await national_write(pair.national.store, tstore.Bundle(
        tracked_entities=[te_in(p, [(a["BD_PHONE"], "01922222222")])],
        events=[event_in(pair.national.store, p, [(d["BD_MAT_WEIGHT"], "48.0"),
                                                   (d["BD_MAT_BP_DIA"], "88")])]))
    await asyncio.sleep(0.3)
    # the hub's later edits: the same phone and weight (it wins both), and the name
    await hub_write(pair.hub, tstore.Bundle(
        tracked_entities=[te_in(p, [(a["BD_PHONE"], "01811111111"),
                                    (a["BD_NAME_EN"], "Rokeya Akter")])],
        events=[event_in(pair.hub, p, [(d["BD_MAT_WEIGHT"], "49.5")])]))
    r = await pair.cycle()
    assert r.ok, r.error
    assert r.tracker_pull.conflicts == 2 and r.tracker_pull.hub_won == 2
    n = snapshot(pair.national.store)
    assert n["attr"][(p["te"], a["BD_PHONE"])] == "01811111111"
    assert n["attr"][(p["te"], a["BD_NAME_EN"])] == "Rokeya Akter"
    assert n["dv"][(p["event"], d["BD_MAT_WEIGHT"])] == "49.5"
    assert n["dv"][(p["event"], d["BD_MAT_BP_DIA"])] == "88"  # national's other field stays
    assert pending(pair.hub) == {}
    assert_equal(pair.hub, pair.national.store)
    losers = {(c["entity"], c.get("attribute") or c.get("dataElement")):
              (c["national_value"], c["hub_value"], c["winner"])
              for c in tracker_conflicts(pair.hub)}
    assert losers == {("te_attribute", a["BD_PHONE"]): ("01922222222", "01811111111", "hub"),
                      ("event_value", d["BD_MAT_WEIGHT"]): ("48.0", "49.5", "hub")}
    # the next cycle finds nothing new to log: the hub's values are national's now
    r = await pair.cycle()
    assert r.ok and r.tracker_pull.conflicts == 0 and len(tracker_conflicts(pair.hub)) == 2


async def test_deletions_both_ways_and_a_person_enrolled_elsewhere_comes_down(pair: Pair
                                                                              ) -> None:
    people = pair.hub.read_sync(lambda c: [r[0] for r in c.execute(
        "SELECT uid FROM event WHERE deleted=0 AND program_stage=? ORDER BY uid LIMIT 2",
        (M["stage"],))])
    await hub_write(pair.hub, tstore.Bundle(events=[tstore.EventIn(
        uid=people[0], program="", program_stage="", org_unit="")]), strategy="DELETE")
    await national_write(pair.national.store, tstore.Bundle(events=[tstore.EventIn(
        uid=people[1], program="", program_stage="", org_unit="")]), strategy="DELETE")
    # registered and enrolled at national (the upazila health complex's records officer)
    elsewhere = person_bundle(1, visits=1, ou=M["clinics"][-1])
    await national_write(pair.national.store, elsewhere)
    r = await pair.cycle()
    assert r.ok, r.error
    h = snapshot(pair.hub)
    assert h["ev"][people[0]][-1] == 1 and h["ev"][people[1]][-1] == 1
    assert elsewhere.tracked_entities[0].uid in h["te"]
    assert elsewhere.events[0].uid in h["ev"]
    assert pending(pair.hub) == {} and tracker_conflicts(pair.hub) == []
    assert_equal(pair.hub, pair.national.store)
    # found by the hub's search, as any record of the clinic
    hits = pair.hub.read_sync(lambda c: c.execute(
        "SELECT count(*) FROM person_search WHERE te=?",
        (elsewhere.tracked_entities[0].uid,)).fetchone()[0])
    assert hits == 1


async def test_an_ownership_transfer_at_the_hub_reaches_national(pair: Pair) -> None:
    p = history_person(pair.hub)
    program = M["program"]
    target = next(o["id"] for o in next(x for x in demo.hub()["programs"]
                                        if x["id"] == program)["organisationUnits"]
                  if o["id"] != p["org_unit"] and o["id"] in M["clinics"])
    await pair.hub.write(lambda tx: tstore.transfer_ownership(
        tx, p["te"], program, target, username="chcp"))
    assert pending(pair.hub) == {"program_owner": 1}
    r = await pair.cycle()
    assert r.ok, r.error
    assert r.tracker_push.transfers == 1
    assert pending(pair.hub) == {}
    assert pair.national.store.read_sync(lambda c: tstore.owner(c, p["te"], program)) == target
    assert_equal(pair.hub, pair.national.store)


async def test_a_possible_duplicate_flagged_at_registration_reaches_national(pair: Pair
                                                                            ) -> None:
    """The CHCP confirmed "a new person" on a likely duplicate: the pair goes to national's
    review list once national holds both people; a pair national already has is done."""
    known = history_person(pair.hub)["te"]
    b = person_bundle(2, visits=0)
    new, other = (t.uid for t in b.tracked_entities)
    await hub_write(pair.hub, b)
    for original, duplicate in ((known, new), (known, other)):
        await pair.hub.write(lambda tx, o=original, d=duplicate: tstore.add_potential_duplicate(
            tx, o, d, ["same phone 01711000001"], username="chcp"))
    # national's reviewer had already flagged the second pair (from a tablet, say)
    await pair.national.store.write(lambda tx: tstore.add_potential_duplicate(
        tx, known, other, ["same name"], username="district", provenance=NATIONAL))
    r = await pair.cycle()
    assert r.ok, r.error
    assert r.tracker_push.duplicates == 2 and r.tracker_push.rejected == 0
    assert pending(pair.hub) == {}
    pairs = pair.national.store.read_sync(lambda c: sorted(
        (d["original"], d["duplicate"], d["status"]) for d in
        tstore.list_potential_duplicates(c, te=known)))
    assert pairs == sorted([(known, new, "OPEN"), (known, other, "OPEN")])  # not twice
    reasons = pair.national.store.read_sync(lambda c: [
        d["reasons"] for d in tstore.list_potential_duplicates(c, te=new)])
    assert reasons == [["same phone 01711000001"]]


async def test_a_refused_event_is_shown_with_dhis2s_reason(pair: Pair, http: aiohttp.ClientSession
                                                           ) -> None:
    b = person_bundle(2, visits=1)
    bad = b.events[1]
    bad.data_values = [v for v in bad.data_values if v[0] != M["des"]["BD_MAT_WEIGHT"]]
    await hub_write(pair.hub, b)
    r = await pair.cycle()
    assert r.ok, r.error
    assert r.tracker_push.rejected == 1 and r.tracker_push.accepted == 5
    assert r.tracker_push.reports_skipped == 0  # the report says which one and why
    rej = pair.hub.read_sync(lambda c: synclog.tracker_rejections(c, [bad.uid, b.events[0].uid]))
    assert list(rej) == [bad.uid]
    assert rej[bad.uid]["errorCode"] == "E1303"
    assert M["des"]["BD_MAT_WEIGHT"] in rej[bad.uid]["message"]
    assert rej[bad.uid]["username"] == "chcp" and rej[bad.uid]["orgUnit"] == M["clinic"]
    state = pair.hub.read_sync(lambda c: c.execute("SELECT sync_state FROM event WHERE uid=?",
                                                   (bad.uid,)).fetchone()[0])
    assert state == "rejected"
    n = snapshot(pair.national.store)
    assert bad.uid not in n["ev"] and b.events[0].uid in n["ev"]
    # not sent again by the next cycle; shown in the rejection list and the status counts
    r = await pair.cycle()
    assert r.ok and r.tracker_push.chunks == 0
    from .conftest import hub_app
    async with hub_app(pair.hub, pair.data_dir) as hub:
        async with http.get(hub.api("hub/rejections"), headers=basic("chcp")) as resp:
            body = await resp.json()
        assert resp.status == 200, body
        [item] = [i for i in body["rejections"] if i.get("uid") == bad.uid]
        assert item["errorCode"] == "E1303" and item["entity"] == "event"
        assert item["state"] == "rejected"
        async with http.get(hub.api("hub/status"), headers=basic("chcp")) as resp:
            st = (await resp.json())["sync"]
        assert st["rejectedTracker"] >= 1 and st["pendingTracker"] == 0


async def test_a_cut_after_the_upload_costs_a_get_not_the_upload(pair: Pair) -> None:
    """The job id is kept with the chunk: when the report is lost (a cut, a kill), the
    next push asks national for that job's report instead of sending the records again."""
    from appliance.errors import LinkDown
    from appliance.sync.tracker_push import TrackerPusher
    b = person_bundle(4, visits=2)
    await hub_write(pair.hub, b)
    await pair.engine.do_probe()
    assert pair.engine.clock is not None
    posts: list[str] = []
    real = pair.engine.client.request

    async def counting(method: str, path: str, **kw: Any) -> Any:
        if method == "POST":
            posts.append(path)
        return await real(method, path, **kw)
    pair.engine.client.request = counting  # type: ignore[method-assign]
    pusher = TrackerPusher(pair.hub, pair.engine.client, pair.engine.clock)

    async def lost(job: str) -> dict[str, Any] | None:
        raise LinkDown("cut while the report came down", error_code="cut")
    pusher._report = lost  # type: ignore[method-assign]
    with contextlib.suppress(LinkDown):
        await pusher.push_all(max_failures=1, sleep=lambda s: _nothing())
    assert posts == ["/api/tracker"]
    # national has the records, the hub does not know yet: the chunk is open with its job
    assert all(t.uid in snapshot(pair.national.store)["te"] for t in b.tracked_entities)
    assert pending(pair.hub)
    job = pair.hub.read_sync(lambda c: json.loads(c.execute(
        "SELECT sent FROM sync_push_chunk WHERE state='open'").fetchone()[0])["job"])
    assert job
    again = TrackerPusher(pair.hub, pair.engine.client, pair.engine.clock)
    st = await again.push_all()
    assert posts == ["/api/tracker"] and st.accepted == 4 + 4 + 8
    assert pending(pair.hub) == {}
    assert_equal(pair.hub, pair.national.store)


async def _nothing() -> None:
    return None


async def test_a_person_deleted_at_national_wins_over_a_hub_edit_and_is_logged(pair: Pair
                                                                              ) -> None:
    import asyncio
    p = history_person(pair.hub)
    a = M["attrs"]
    await hub_write(pair.hub, tstore.Bundle(
        tracked_entities=[te_in(p, [(a["BD_PHONE"], "01333333333")])]))
    await asyncio.sleep(0.1)
    await national_write(pair.national.store, tstore.Bundle(tracked_entities=[
        tstore.TrackedEntityIn(uid=p["te"], type=PERSON, org_unit=p["org_unit"])]),
        strategy="DELETE")
    r = await pair.cycle()
    assert r.ok, r.error
    assert snapshot(pair.hub)["te"][p["te"]][-1] == 1
    assert pending(pair.hub) == {}
    losers = tracker_conflicts(pair.hub)
    # the hub's live record and its new phone both lost to the deletion, both logged
    assert [(c["entity"], c["winner"], c["national_deleted"]) for c in losers] == \
        [("tracked_entity", "national", 1), ("te_attribute", "national", 1)]
    assert losers[1]["hub_value"] == "01333333333" and losers[0]["uid"] == p["te"]
    assert_equal(pair.hub, pair.national.store)


async def test_a_record_made_and_deleted_at_the_hub_before_it_went_up(pair: Pair) -> None:
    b = person_bundle(1, visits=1)
    await hub_write(pair.hub, b)
    await hub_write(pair.hub, tstore.Bundle(tracked_entities=[b.tracked_entities[0]]),
                    strategy="DELETE")
    r = await pair.cycle()
    assert r.ok, r.error
    # national never had it: its "does not exist" (E1063 and kin) counts as done
    assert r.tracker_push.rejected == 0 and pending(pair.hub) == {}
    assert b.tracked_entities[0].uid not in snapshot(pair.national.store)["te"]
