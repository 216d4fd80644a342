"""Due visits from program stages' schedules (``appliance.dhis2.schedule``), on the demo's
maternal and EPI programs."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from appliance import demo
from appliance.dhis2 import schedule as sc

DOC = demo.national()
STAGES = {s["id"]: s for s in DOC["programStages"]}


def stages(code: str) -> list[sc.Stage]:
    (p,) = [p for p in DOC["programs"] if p["code"] == code]
    return sc.stages_of(p, STAGES)


def by_name(stages_: list[sc.Stage], part: str) -> sc.Stage:
    return next(s for s in stages_ if part.lower() in s.name.lower())


LMP = date(2026, 3, 1)


def test_stages_come_in_schedule_order() -> None:
    mat = stages("BD_MATERNAL")
    assert [s.name for s in mat] == ["ANC visit", "Delivery", "PNC visit"]
    assert [s.min_days for s in stages("BD_EPI")] == [0, 42, 70, 98, 126, 270, 450]
    anc = by_name(mat, "ANC")
    assert anc.repeatable and anc.interval == 28 and anc.auto_generate


def test_a_new_pregnancy_is_due_for_anc1_by_16_weeks() -> None:
    mat = stages("BD_MATERNAL")
    due = sc.due_visits(mat, enrolled=LMP + timedelta(days=40), incident=LMP, events=[])
    # ANC1 by 16 weeks and delivery at 40 weeks, as DHIS2 would generate them; not PNC
    assert [(d.stage, d.due, d.event) for d in due] == [
        (mat[0].uid, LMP + timedelta(days=112), None), (mat[1].uid, LMP + timedelta(days=280), None)]


def test_anc_repeats_every_four_weeks_until_delivery() -> None:
    mat = stages("BD_MATERNAL")
    anc = by_name(mat, "ANC")
    made = sc.Visit("Ev1", anc.uid, "COMPLETED", LMP + timedelta(days=200), None)
    due = sc.due_visits(mat, enrolled=LMP, incident=LMP, events=[made])
    assert [(d.stage, d.due) for d in due][0] == (anc.uid, LMP + timedelta(days=228))
    late = sc.Visit("Ev2", anc.uid, "COMPLETED", LMP + timedelta(days=255), None)
    due = sc.due_visits(mat, enrolled=LMP, incident=LMP, events=[made, late])
    assert anc.uid not in [d.stage for d in due]  # 255 + 28 is past delivery at 280
    scheduled = sc.Visit("Ev3", anc.uid, "SCHEDULE", None, LMP + timedelta(days=230))
    due = sc.due_visits(mat, enrolled=LMP, incident=LMP, events=[made, scheduled])
    assert [(d.stage, d.due, d.event) for d in due if d.stage == anc.uid] == [
        (anc.uid, LMP + timedelta(days=230), "Ev3")]


def test_epi_contacts_are_due_by_age() -> None:
    epi = stages("BD_EPI")
    birth = date(2026, 9, 1)
    given = [sc.Visit("Bcg", epi[0].uid, "COMPLETED", birth, None)]
    due = sc.due_visits(epi, enrolled=birth, incident=birth, events=given)
    assert [d.due for d in due] == [birth + timedelta(days=s.min_days) for s in epi[1:]]
    skipped = [*given, sc.Visit("S6", epi[1].uid, "SKIPPED", None, birth + timedelta(days=42))]
    assert epi[1].uid not in {d.stage for d in sc.due_visits(epi, enrolled=birth,
                                                              incident=birth, events=skipped)}


@pytest.mark.parametrize("due, kind", [
    (date(2026, 11, 14), ("overdue", 1)), (date(2026, 10, 16), ("overdue", 30)),
    (date(2026, 11, 15), ("due", 0)), (date(2026, 11, 21), ("due", 6)),
    (date(2026, 11, 22), None),
])
def test_classify(due: date, kind: tuple[str, int] | None) -> None:
    assert sc.classify(due, date(2026, 11, 15)) == kind
