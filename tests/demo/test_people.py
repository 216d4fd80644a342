"""The demo's persons and register history: deterministic, bilingual names that agree,
valid phones and values, unique BRNs, and a seeded store with due and overdue visits."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from appliance import demo
from appliance.demo.history import community_clinics, history
from appliance.demo.people import REFERENCE_DATE, SPELLINGS, people
from appliance.dhis2.valuetypes import check_value
from appliance.store import Store
from appliance.store.tracker import Bundle

BRN_RE = re.compile(r"BRN-\d{9}")
PHONE_RE = re.compile(r"01[3-9]\d{8}")
REF = REFERENCE_DATE.isoformat()


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return demo.hub()


@pytest.fixture(scope="module")
def bundle(doc: dict[str, Any]) -> Bundle:
    return history(doc, community_clinics(doc, demo.RAMU_UID), seed=0)


def test_people_are_deterministic() -> None:
    assert people(demo.CHCP_CLINIC_UID, 30, 7) == people(demo.CHCP_CLINIC_UID, 30, 7)
    assert people(demo.CHCP_CLINIC_UID, 30, 7) != people(demo.CHCP_CLINIC_UID, 30, 8)
    kids = people(demo.CHCP_CLINIC_UID, 30, 7, kind="child")
    assert all(0 <= int(k["BD_AGE_YEARS"]) < 5 and k["BD_SEX"] in ("FEMALE", "MALE") for k in kids)


def test_history_is_deterministic(doc: dict[str, Any], bundle: Bundle) -> None:
    again = history(doc, community_clinics(doc, demo.RAMU_UID), seed=0)
    assert again == bundle
    assert history(doc, community_clinics(doc, demo.RAMU_UID), seed=1) != bundle


def _pairs(p: dict[str, str]) -> list[tuple[str, str]]:
    bn, en = p["BD_NAME_BN"].split(" "), p["BD_NAME_EN"].split(" ")
    assert len(bn) == len(en), p
    return list(zip(bn, en, strict=True))


def test_bangla_and_english_names_agree() -> None:
    persons = [*people(demo.CHCP_CLINIC_UID, 400, 1),
               *people(demo.CHCP_CLINIC_UID, 400, 1, kind="child")]
    spellings: Counter[str] = Counter()
    for p in persons:
        for bn, en in _pairs(p):
            assert en in SPELLINGS[bn], (bn, en)
            spellings[en] += 1
        assert p["BD_RELATION_NAME"]
    # the variation search has to cope with is there
    assert {"Fatema", "Fatima"} <= set(spellings) or {"Md.", "Mohammad"} <= set(spellings)
    assert len({p["BD_NAME_EN"].split(" ")[-1] for p in persons}) > 10
    assert any(p["BD_NAME_EN"].startswith("Md. ") for p in persons if p["BD_SEX"] == "MALE")
    assert any(p["BD_NAME_EN"].startswith(("Mst.", "Most.", "Mosammat")) for p in persons)
    women = people(demo.CHCP_CLINIC_UID, 200, 1)
    assert all(16 <= int(w["BD_AGE_YEARS"]) <= 42 and w["BD_SEX"] == "FEMALE" for w in women)


def test_phones_and_dates_are_valid_values() -> None:
    persons = people(demo.CHCP_CLINIC_UID, 300, 2) + people("x", 300, 2, kind="child")
    phones = [p["BD_PHONE"] for p in persons if "BD_PHONE" in p]
    assert len(phones) > 400
    for number in phones:
        assert PHONE_RE.fullmatch(number) and check_value("PHONE_NUMBER", number)[1] is None
    for p in persons:
        if "BD_DOB" in p:
            assert check_value("DATE", p["BD_DOB"])[1] is None and p["BD_DOB"] <= REF


def test_every_value_is_valid_for_its_element(doc: dict[str, Any], bundle: Bundle) -> None:
    des = {d["id"]: d for d in doc["dataElements"]}
    attrs = {a["id"]: a for a in doc["trackedEntityAttributes"]}
    options: dict[str, set[str]] = {}
    for o in doc["options"]:
        options.setdefault(o["optionSet"]["id"], set()).add(o["code"])
    stage_des = {s["id"]: {p["dataElement"]["id"] for p in s["programStageDataElements"]}
                 for s in doc["programStages"]}

    def ok(meta: dict[str, Any], value: str) -> None:
        opts = options[meta["optionSet"]["id"]] if meta.get("optionSet") else None
        assert check_value(meta["valueType"], value, opts)[1] is None, (meta["code"], value)

    n = 0
    for ev in bundle.events:
        assert ev.status in ("COMPLETED", "SCHEDULE", "SKIPPED")
        assert (ev.occurred_at is None) == (ev.status != "COMPLETED")
        for de, value, _ in ev.data_values:
            assert de in stage_des[ev.program_stage] and value is not None
            ok(des[de], value)
            n += 1
    assert n > 5000
    for te in bundle.tracked_entities:
        for attr, value in te.attributes:
            assert value is not None
            ok(attrs[attr], value)


def test_brns_are_unique_and_follow_the_pattern(doc: dict[str, Any], bundle: Bundle) -> None:
    brn = next(a for a in doc["trackedEntityAttributes"] if a["code"] == "BD_BRN")
    assert brn["pattern"] == '"BRN-" + SEQUENTIAL(#########)'
    values = [v for te in bundle.tracked_entities for a, v in te.attributes if a == brn["id"]]
    assert len(values) > len(bundle.tracked_entities) // 2
    assert len(set(values)) == len(values)
    assert all(v is not None and BRN_RE.fullmatch(v) for v in values)


def test_register_volumes_and_schedules(doc: dict[str, Any], bundle: Bundle) -> None:
    programs = {p["id"]: p["code"] for p in doc["programs"]}
    stages = {s["id"]: s["code"] for s in doc["programStages"]}
    clinics = community_clinics(doc, demo.RAMU_UID)
    mat = Counter(e.org_unit for e in bundle.enrollments if programs[e.program] == "BD_MATERNAL")
    assert set(mat) == set(clinics) and all(15 <= n <= 25 for n in mat.values())
    by_stage = Counter((stages[e.program_stage], e.status) for e in bundle.events)
    assert by_stage["BD_MAT_ANC", "COMPLETED"] > 2 * len(clinics) * 15
    assert by_stage["BD_MAT_DELIVERY", "COMPLETED"] > len(clinics)
    assert by_stage["BD_MAT_PNC", "COMPLETED"] > len(clinics)
    assert by_stage["BD_EPI_BIRTH", "COMPLETED"] > len(clinics)
    assert by_stage["BD_U5_VISIT", "COMPLETED"] > 3 * len(clinics)
    # ANC events follow the schedule: gestational age in weeks at each contact
    gest = next(d["id"] for d in doc["dataElements"] if d["code"] == "BD_MAT_GEST_WEEKS")
    weeks = [int(v) for e in bundle.events for d, v, _ in e.data_values if d == gest and v]
    assert min(weeks) >= 5 and max(weeks) <= 41
    # nothing happened after the reference date; children are linked to their mothers
    assert all((e.occurred_at or "")[:10] <= REF for e in bundle.events)
    assert bundle.relationships and all(r.bidirectional for r in bundle.relationships)


def _count(store: Store, sql: str, *args: Any) -> int:
    return int(store.read_sync(lambda c: c.execute(sql, args).fetchone()[0]))


@pytest.mark.parametrize("role", ["hub", "national"])
def test_seeded_store_holds_the_history(role: str, demo_template: dict[str, Path]) -> None:
    with Store(demo_template[role]) as store:
        tes = _count(store, "SELECT count(*) FROM tracked_entity")
        assert 800 <= tes <= 1600
        assert 4000 <= _count(store, "SELECT count(*) FROM event") <= 9000
        assert _count(store, "SELECT count(*) FROM datavalue") == 0  # aggregate untouched
        # national's records: synced, nothing queued for push
        assert _count(store, "SELECT count(*) FROM event WHERE sync_state != 'synced' "
                             "OR origin != 'national' OR stored_by != 'demo'") == 0
        assert _count(store, "SELECT count(*) FROM te_attribute WHERE sync_state='pending'") == 0
        overdue = store.read_sync(lambda c: {r[0]: r[1] for r in c.execute(
            "SELECT s.code, count(*) FROM event e JOIN metadata s ON s.type='programStages' "
            "AND s.uid = e.program_stage WHERE e.status='SCHEDULE' AND e.scheduled_at < ? "
            "GROUP BY 1", (REF,))})
        assert overdue.get("BD_MAT_ANC", 0) > 10
        assert sum(v for k, v in overdue.items() if k.startswith("BD_EPI_")) > 10
        due = _count(store, "SELECT count(*) FROM event WHERE status='SCHEDULE' "
                            "AND scheduled_at >= ?", REF)
        assert due > 100
        # the CHCP's own clinic has a due list
        assert _count(store, "SELECT count(*) FROM event WHERE status='SCHEDULE' AND "
                             "org_unit=? AND scheduled_at < ?", demo.CHCP_CLINIC_UID, REF) > 0
