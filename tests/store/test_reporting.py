"""Reporting rates against DHIS2's definition, on crafted months: expected = org units
assigned the data set; actual = complete registrations of those; on time = registered at
most ``timelyDays`` (15 when unset) after the period's last day."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from appliance.dhis2.periods import parse_period
from appliance.store import Store, reporting
from appliance.store.reporting import Form, is_on_time, month_status, rates
from tests.hub.cells import cells

A = Form("dsA", "Form A", "Monthly", 10, {"de1": 2, "de2": 1, "de3": 3},
         frozenset({"o1", "o2", "o3"}))
B = Form("dsB", "Form B", "Monthly", reporting.DEFAULT_TIMELY_DAYS, {"de4": 1},
         frozenset({"o1", "o2"}))
Q = Form("dsQ", "Quarterly", "Quarterly", 15, {"de5": 1}, frozenset({"o1"}))
FORMS = [A, B, Q]
OUS = ["o1", "o2", "o3", "o4"]


@pytest.fixture
def store() -> Iterator[Store]:
    with Store.memory() as s:
        yield s


def plant(store: Store, values: list[tuple[str, ...]], regs: list[tuple[Any, ...]],
          rejections: list[tuple[str, str, str]] = ()) -> None:  # type: ignore[assignment]
    def write(tx: Any) -> None:
        for de, pe, ou, coc, *deleted in values:
            tx.execute("INSERT INTO datavalue(de, pe, ou, coc, aoc, value, created, "
                       "last_updated, deleted, sync_state, hlc, origin) VALUES "
                       "(?,?,?,?,'aoc','1','t','t',?,'pending',1,'local')",
                       (de, pe, ou, coc, int(bool(deleted and deleted[0]))))
        for i, (ds, pe, ou, day, completed, deleted, state) in enumerate(regs):
            tx.execute("INSERT INTO complete_registration(ds, pe, ou, aoc, date, stored_by, "
                       "completed, last_updated, deleted, sync_state, hlc, origin) VALUES "
                       "(?,?,?,'aoc',?,'chcp',?,?,?,?,1,'local')",
                       (ds, pe, ou, day, completed, f"2024-01-01T00:00:{i:02d}", deleted, state))
        for key, code, msg in rejections:
            tx.execute("INSERT INTO sync_rejection(entity, key, error_code, message, at) "
                       "VALUES ('complete_registration', ?, ?, ?, 't')", (key, code, msg))
    store.write_sync(write)


def by_key(statuses: list[reporting.FormStatus]) -> dict[tuple[str, str], reporting.FormStatus]:
    return {(s.ou, s.ds): s for s in statuses}


def test_a_crafted_month(store: Store) -> None:
    plant(store, values=[
        ("de1", "202401", "o1", "c1"), ("de1", "202401", "o1", "c2"),
        ("de3", "202401", "o1", "c1"),
        ("de2", "202401", "o1", "c1", "deleted"),    # a deleted value is no cell filled
        ("de1", "202402", "o1", "c3"),               # another month
        ("de9", "202401", "o1", "c1"),               # not in any form
        ("de4", "202401", "o2", "c1"),
    ], regs=[
        ("dsA", "202401", "o1", "2024-02-10", 1, 0, "synced"),   # 10 days after: on time
        ("dsA", "202401", "o2", "2024-02-11", 1, 0, "pending"),  # 11 days: late
        ("dsA", "202401", "o3", "2024-02-01", 1, 1, "pending"),  # un-completed (deleted)
        ("dsA", "202401", "o4", "2024-02-01", 1, 0, "pending"),  # o4 is not assigned dsA
        ("dsB", "202401", "o1", "2024-02-15", 1, 0, "rejected"), # 15 days, the default
        ("dsB", "202401", "o2", "2024-02-16", 0, 0, "pending"),  # completed=false
    ], rejections=[("dsB|202401|o1|aoc", "E2020", "Period is locked")])
    got = store.read_sync(lambda c: month_status(c, FORMS, "202401", OUS))
    assert {s.ds for s in got} == {"dsA", "dsB"}  # the quarterly form is not in a month
    s = by_key(got)
    assert (s["o1", "dsA"].filled, s["o1", "dsA"].cells) == (3, 6)
    assert s["o1", "dsA"].state == "received" and s["o1", "dsA"].on_time is True
    assert s["o2", "dsA"].state == "complete" and s["o2", "dsA"].on_time is False
    assert s["o3", "dsA"].state == "not_started" and not s["o3", "dsA"].complete
    assert s["o4", "dsA"].complete and not s["o4", "dsA"].expected
    assert s["o4", "dsB"].state == "not_expected"
    assert s["o1", "dsB"].state == "refused" and s["o1", "dsB"].on_time is True
    assert (s["o1", "dsB"].error_code, s["o1", "dsB"].reason) == ("E2020", "Period is locked")
    assert s["o2", "dsB"].state == "in_progress" and (s["o2", "dsB"].filled, s["o2", "dsB"].cells) == (1, 1)

    r = rates(got)
    # expected: dsA at o1 o2 o3, dsB at o1 o2; complete: o1 A, o2 A, o1 B (o4 not counted)
    assert (r.expected, r.complete, r.on_time, r.received) == (5, 3, 2, 1)
    assert (r.reporting_rate, r.on_time_rate) == (60.0, 40.0)
    ra = rates(x for x in got if x.ds == "dsA")
    assert (ra.expected, ra.complete, ra.on_time, ra.reporting_rate) == (3, 2, 1, 66.7)


def test_a_month_with_no_data(store: Store) -> None:
    got = store.read_sync(lambda c: month_status(c, FORMS, "202403", OUS))
    assert {x.state for x in got} == {"not_started", "not_expected"}
    r = rates(got)
    assert (r.expected, r.complete, r.reporting_rate, r.on_time_rate) == (5, 0, 0.0, 0.0)
    assert rates([]).reporting_rate is None  # nothing expected: no rate, not 0 %


def test_on_time_is_days_after_the_period_end() -> None:
    jan = parse_period("202401")
    assert is_on_time(jan, "2024-01-31", 0) is True   # timelyDays 0: by the period's end
    assert is_on_time(jan, "2024-02-01", 0) is False
    assert is_on_time(jan, "2024-02-15", 15) is True
    assert is_on_time(jan, "2024-02-16", 15) is False
    assert is_on_time(parse_period("202402"), "2024-03-10", 10) is True  # a leap February
    assert is_on_time(jan, None, 15) is None
    assert reporting.timely_days({}) == 15 and reporting.timely_days({"timelyDays": 0}) == 0
    assert reporting.timely_days({"timelyDays": 7}) == 7


def test_completeness_counts_for_heartbeats(store: Store) -> None:
    plant(store, values=[], regs=[
        ("dsA", "202401", "o1", "2024-02-10", 1, 0, "synced"),
        ("dsA", "202401", "o4", "2024-02-10", 1, 0, "synced"),
        ("dsB", "202402", "o2", "2024-03-30", 1, 0, "pending")])
    got = store.read_sync(lambda c: reporting.completeness(c, FORMS, ["202401", "202402"]))
    rows = {(x["dataSet"], x["period"]): x for x in got}
    assert rows["dsA", "202401"] == {"dataSet": "dsA", "period": "202401", "expected": 3,
                                     "complete": 1, "onTime": 1, "received": 1}
    assert rows["dsB", "202402"]["complete"] == 1 and rows["dsB", "202402"]["onTime"] == 0
    assert ("dsQ", "202401") not in rows


def test_forms_from_the_demo_metadata_count_the_entry_forms_cells(store: Store) -> None:
    from appliance.store.metadata import MetadataIndex
    c = cells()
    index = MetadataIndex(by_type={k: v for k, v in c.doc.items() if isinstance(v, list)})
    forms = {f.uid: f for f in reporting.forms_of_index(index)}
    form1 = forms[c.form1["id"]]
    assert form1.size == sum(len(c.cocs(de)) for de in c.elements(c.form1))
    assert form1.timely_days == c.form1["timelyDays"]
    assert c.chcp_clinic in form1.org_units and c.uhc not in form1.org_units
    assert c.uhc in forms[c.uhc_form["id"]].org_units


def test_data_version_moves_when_another_connection_commits(store: Store,
                                                             tmp_path: Any) -> None:
    with Store(tmp_path / "hub.db") as s:
        conn = s.own_reader()
        try:
            v0 = reporting.data_version(conn)
            assert reporting.data_version(conn) == v0
            plant(s, values=[("de1", "202401", "o1", "c1")], regs=[])
            assert reporting.data_version(conn) != v0
        finally:
            conn.close()
