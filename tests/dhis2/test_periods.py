"""DHIS2 ISO periods: parsing, generation, shifting and the data-entry time rules."""

from __future__ import annotations

import random
import string
from datetime import date, datetime, timedelta
from typing import Any

import pytest

from appliance.dhis2.periods import (
    PERIOD_TYPES,
    Period,
    beyond_open_future,
    in_input_periods,
    is_expired,
    last_periods,
    parse_period,
    period_containing,
    period_type_of,
    shift,
)

D = date

# id -> (type, start, end); start dates checked against dhis2-core DateUnitPeriodTypeParser.
CASES: dict[str, tuple[str, date, date]] = {
    "20240101": ("Daily", D(2024, 1, 1), D(2024, 1, 1)),
    "20240229": ("Daily", D(2024, 2, 29), D(2024, 2, 29)),
    "2024W1": ("Weekly", D(2024, 1, 1), D(2024, 1, 7)),
    "2024W52": ("Weekly", D(2024, 12, 23), D(2024, 12, 29)),
    "2025W1": ("Weekly", D(2024, 12, 30), D(2025, 1, 5)),
    "2020W53": ("Weekly", D(2020, 12, 28), D(2021, 1, 3)),
    "2021W1": ("Weekly", D(2021, 1, 4), D(2021, 1, 10)),
    "2024WedW1": ("WeeklyWednesday", D(2024, 1, 3), D(2024, 1, 9)),
    "2024ThuW1": ("WeeklyThursday", D(2024, 1, 4), D(2024, 1, 10)),
    "2024SatW1": ("WeeklySaturday", D(2023, 12, 30), D(2024, 1, 5)),
    "2024SunW1": ("WeeklySunday", D(2023, 12, 31), D(2024, 1, 6)),
    "2024BiW1": ("BiWeekly", D(2024, 1, 1), D(2024, 1, 14)),
    "2024BiW26": ("BiWeekly", D(2024, 12, 16), D(2024, 12, 29)),
    "2020BiW27": ("BiWeekly", D(2020, 12, 28), D(2021, 1, 10)),
    "202401": ("Monthly", D(2024, 1, 1), D(2024, 1, 31)),
    "202402": ("Monthly", D(2024, 2, 1), D(2024, 2, 29)),
    "202302": ("Monthly", D(2023, 2, 1), D(2023, 2, 28)),
    "202412": ("Monthly", D(2024, 12, 1), D(2024, 12, 31)),
    "202401B": ("BiMonthly", D(2024, 1, 1), D(2024, 2, 29)),
    "202406B": ("BiMonthly", D(2024, 11, 1), D(2024, 12, 31)),
    "2024Q1": ("Quarterly", D(2024, 1, 1), D(2024, 3, 31)),
    "2024Q4": ("Quarterly", D(2024, 10, 1), D(2024, 12, 31)),
    "2024NovQ1": ("QuarterlyNov", D(2023, 11, 1), D(2024, 1, 31)),
    "2024NovQ2": ("QuarterlyNov", D(2024, 2, 1), D(2024, 4, 30)),
    "2024NovQ3": ("QuarterlyNov", D(2024, 5, 1), D(2024, 7, 31)),
    "2024NovQ4": ("QuarterlyNov", D(2024, 8, 1), D(2024, 10, 31)),
    "2024S1": ("SixMonthly", D(2024, 1, 1), D(2024, 6, 30)),
    "2024S2": ("SixMonthly", D(2024, 7, 1), D(2024, 12, 31)),
    "2024AprilS1": ("SixMonthlyApril", D(2024, 4, 1), D(2024, 9, 30)),
    "2024AprilS2": ("SixMonthlyApril", D(2024, 10, 1), D(2025, 3, 31)),
    "2024NovS1": ("SixMonthlyNov", D(2023, 11, 1), D(2024, 4, 30)),
    "2024NovS2": ("SixMonthlyNov", D(2024, 5, 1), D(2024, 10, 31)),
    "2024": ("Yearly", D(2024, 1, 1), D(2024, 12, 31)),
    "2024April": ("FinancialApril", D(2024, 4, 1), D(2025, 3, 31)),
    "2024July": ("FinancialJuly", D(2024, 7, 1), D(2025, 6, 30)),
    "2024Oct": ("FinancialOct", D(2024, 10, 1), D(2025, 9, 30)),
    "2024Nov": ("FinancialNov", D(2023, 11, 1), D(2024, 10, 31)),
    "2024Sep": ("FinancialSep", D(2024, 9, 1), D(2025, 8, 31)),
}


@pytest.mark.parametrize("pid", sorted(CASES))
def test_parse_every_format(pid: str) -> None:
    ptype, start, end = CASES[pid]
    p = parse_period(pid)
    assert p == Period(pid, ptype, start, end)
    assert period_type_of(pid) == ptype
    # round trip: the period holding its own first and last day is itself
    assert period_containing(ptype, start) == p
    assert period_containing(ptype, end) == p or ptype == "BiWeekly"


def test_every_type_is_covered() -> None:
    assert {t for t, _, _ in CASES.values()} == set(PERIOD_TYPES)


@pytest.mark.parametrize(
    ("alias", "canonical"),
    [("2024-01-05", "20240105"), ("2024-03", "202403"), ("2024W01", "2024W1"),
     ("2024BiW01", "2024BiW1"), ("2024SunW09", "2024SunW9")],
)
def test_aliases_dhis2_accepts_are_canonicalised(alias: str, canonical: str) -> None:
    assert parse_period(alias).id == canonical


@pytest.mark.parametrize(
    "bad",
    [
        "20240230", "20230229", "20241301", "20240100", "2024W54", "2024W53", "2021W53",
        "2024W0", "2023ThuW54", "2024SatW54", "2021BiW27", "2024BiW0", "202413", "202400",
        "2024Q5", "2024Q0",
        "202407B", "202400B", "2024S3", "2024NovS0", "2024AprilS3", "2024NovQ5", "0000",
        "00000101", "", " 2024", "2024 ", "2024\n", "24", "2024W", "2024w1", "2024q1",
        "2024Jan", "2024-1", "2024-01-1", "202401-01", "２０２４", "2024W١", "2024WedW54",
        "2024Nov1", "2024BiW100", "2024W123", "abcd", "2024.0",
    ],
)
def test_invalid_periods_raise_value_error(bad: str) -> None:
    with pytest.raises(ValueError, match="Period not valid"):
        parse_period(bad)
    assert period_type_of(bad) is None


def test_non_string_is_a_value_error() -> None:
    for bad in (None, 202401, b"202401", ["202401"]):
        with pytest.raises(ValueError):
            parse_period(bad)  # type: ignore[arg-type]


# Weeks per year, taken from java.time WeekFields.of(startDay, 4) (what DHIS2 uses).
@pytest.mark.parametrize(
    ("ptype", "last_week"),
    [("Weekly", {2015: 53, 2020: 53, 2021: 52, 2024: 52, 2026: 53}),
     ("WeeklyWednesday", {2022: 53, 2023: 52}),
     ("WeeklyThursday", {2023: 53, 2024: 52}),
     ("WeeklySaturday", {2019: 53, 2023: 52, 2024: 53}),
     ("WeeklySunday", {2020: 53, 2024: 52, 2025: 53})],
)
def test_week_year_edges(ptype: str, last_week: dict[int, int]) -> None:
    infix = {"Weekly": "W", "WeeklyWednesday": "WedW", "WeeklyThursday": "ThuW",
             "WeeklySunday": "SunW", "WeeklySaturday": "SatW"}[ptype]
    for year, weeks in last_week.items():
        assert parse_period(f"{year}{infix}{weeks}").period_type == ptype
        with pytest.raises(ValueError):
            parse_period(f"{year}{infix}{weeks + 1}")


def test_weekly_ids_carry_the_week_based_year() -> None:
    assert period_containing("Weekly", D(2021, 1, 1)).id == "2020W53"
    assert period_containing("Weekly", D(2024, 12, 31)).id == "2025W1"
    assert period_containing("WeeklyWednesday", D(2024, 1, 2)).id == "2023WedW52"


def test_every_day_of_several_years_round_trips() -> None:
    day = D(2019, 12, 1)
    while day < D(2026, 2, 1):
        for ptype in PERIOD_TYPES:
            p = period_containing(ptype, day)
            assert p.start <= day <= p.end, (ptype, day)
            assert parse_period(p.id) == p, (ptype, day)
        day += timedelta(days=1)


def test_consecutive_periods_tile_time_except_biweekly_overlap() -> None:
    for ptype in PERIOD_TYPES:
        p = parse_period(next(k for k, v in CASES.items() if v[0] == ptype))
        for _ in range(60):
            q = shift(p, 1)
            if ptype == "BiWeekly" and p.id.endswith("BiW27"):
                assert q.start == p.start + timedelta(days=7)  # DHIS2's week-53 overlap
            else:
                assert q.start == p.end + timedelta(days=1), (ptype, p, q)
            p = q


@pytest.mark.parametrize(
    ("pid", "n", "expected"),
    [
        ("202401", -1, "202312"), ("202312", 1, "202401"), ("202401", -13, "202212"),
        ("202401", 0, "202401"), ("20231231", 1, "20240101"), ("20240301", -1, "20240229"),
        ("2020W53", 1, "2021W1"), ("2021W1", -1, "2020W53"), ("2024W52", 1, "2025W1"),
        ("2024Q1", -1, "2023Q4"), ("2024NovQ1", -1, "2023NovQ4"), ("2024NovQ4", 1, "2025NovQ1"),
        ("2024S1", -1, "2023S2"), ("2024NovS1", -1, "2023NovS2"), ("2024NovS2", 1, "2025NovS1"),
        ("2024AprilS2", 1, "2025AprilS1"), ("202406B", 1, "202501B"), ("2024", -5, "2019"),
        ("2024April", 1, "2025April"), ("2024Nov", -1, "2023Nov"), ("2024SunW1", -1, "2023SunW52"),
        ("2020BiW26", 1, "2020BiW27"), ("2020BiW27", 1, "2021BiW1"),
        ("2021BiW1", -1, "2020BiW26"),  # DHIS2 steps back over the overlapping bi-week
    ],
)
def test_shift(pid: str, n: int, expected: str) -> None:
    assert shift(parse_period(pid), n).id == expected


def test_shift_out_of_range_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        shift(parse_period("9999"), 1)
    with pytest.raises(ValueError):
        shift(parse_period("00010101"), -1)


def test_unknown_period_type() -> None:
    with pytest.raises(ValueError, match="Unknown period type"):
        period_containing("Fortnightly", D(2024, 1, 1))
    with pytest.raises(ValueError):
        shift(Period("x", "Hourly", D(2024, 1, 1), D(2024, 1, 1)), 1)


def test_period_containing_accepts_datetime() -> None:
    assert period_containing("Monthly", datetime(2024, 5, 31, 23, 59)).id == "202405"


def test_last_periods_like_the_android_sdk() -> None:
    today = D(2024, 3, 15)
    monthly = last_periods("Monthly", 11, today, future=1)
    assert [p.id for p in monthly] == [f"2023{m:02d}" for m in range(4, 13)] + [
        "202401", "202402", "202403"]
    assert [p.id for p in last_periods("Monthly", 11, today)][-1] == "202402"  # no open period
    assert [p.id for p in last_periods("Monthly", 1, today, future=3)] == [
        "202402", "202403", "202404", "202405"]
    assert len(last_periods("Daily", 59, today, future=1)) == 60
    assert last_periods("Daily", 59, today, future=1)[-1].id == "20240315"
    weekly = last_periods("Weekly", 12, D(2021, 1, 2), future=1)
    assert weekly[-1].id == "2020W53" and len(weekly) == 13
    assert last_periods("Yearly", 0, today, future=0) == []


def test_is_expired_boundary_day() -> None:
    jan = parse_period("202401")
    assert not is_expired(jan, 10, datetime(2024, 2, 10, 0, 0))
    assert not is_expired(jan, 10, datetime(2024, 2, 10, 23, 59, 59))
    assert is_expired(jan, 10, datetime(2024, 2, 11, 0, 0))
    assert not is_expired(jan, 0, datetime(2099, 1, 1))  # 0 = never expires
    assert not is_expired(jan, 1, datetime(2024, 2, 1, 12))
    assert is_expired(jan, 1, datetime(2024, 2, 2))
    assert not is_expired(jan, 10, D(2024, 2, 10))  # a plain date works too
    assert not is_expired(jan, 10, datetime(2023, 12, 1))  # clock far behind


def test_open_future_periods_rule() -> None:
    today = D(2024, 3, 15)
    cur, nxt, prev = (parse_period(x) for x in ("202403", "202404", "202402"))
    # openFuturePeriods=0: DHIS2 locks the current, unfinished period too.
    assert beyond_open_future(cur, "Monthly", 0, today)
    assert not beyond_open_future(prev, "Monthly", 0, today)
    # 1: the current period is open, the next one is not.
    assert not beyond_open_future(cur, "Monthly", 1, today)
    assert beyond_open_future(nxt, "Monthly", 1, today)
    assert not beyond_open_future(nxt, "Monthly", 2, today)
    assert beyond_open_future(parse_period("202405"), "Monthly", 2, today)
    # boundary days: the last day of the month is still "current"
    assert not beyond_open_future(cur, "Monthly", 1, D(2024, 3, 1))
    assert beyond_open_future(cur, "Monthly", 1, D(2024, 2, 29))
    # a period of another type is compared by end date (Period.isAfter)
    assert beyond_open_future(parse_period("20240401"), "Monthly", 1, today)
    assert not beyond_open_future(parse_period("20240331"), "Monthly", 1, today)
    assert not beyond_open_future(parse_period("2024Q1"), "Monthly", 1, today)  # ends 31 Mar
    assert beyond_open_future(parse_period("2024Q2"), "Monthly", 1, today)
    assert not beyond_open_future(parse_period("2024W10"), "Weekly", 1, D(2024, 3, 10))


def test_data_input_periods() -> None:
    jan = parse_period("202401")
    assert in_input_periods(jan, [], datetime(2024, 2, 1)) is None
    dips = [
        {"period": {"id": "202312"}, "openingDate": "2024-01-01", "closingDate": "2024-01-15"},
        {"period": {"id": "202401"}, "openingDate": "2024-02-01T00:00:00.000",
         "closingDate": "2024-02-10T00:00:00.000"},
    ]
    assert in_input_periods(jan, dips, datetime(2024, 2, 1, 0, 0)) is True
    assert in_input_periods(jan, dips, datetime(2024, 2, 10, 23, 59)) is True  # closing day open
    assert in_input_periods(jan, dips, datetime(2024, 2, 11)) is False
    assert in_input_periods(jan, dips, datetime(2024, 1, 31, 23, 59)) is False
    assert in_input_periods(parse_period("202402"), dips, datetime(2024, 2, 5)) is False
    open_ended: list[dict[str, Any]] = [
        {"period": "202401"},
        {"period": {"id": "202402"}, "closingDate": None},
    ]
    assert in_input_periods(jan, open_ended, datetime(1999, 1, 1)) is True
    assert in_input_periods(parse_period("202402"), open_ended, datetime(2999, 1, 1)) is True
    only_opening = [{"period": {"id": "202401"}, "openingDate": "2024-02-05"}]
    assert in_input_periods(jan, only_opening, datetime(2024, 2, 4)) is False
    assert in_input_periods(jan, only_opening, datetime(2030, 1, 1)) is True


def test_data_input_periods_with_bad_metadata() -> None:
    jan = parse_period("202401")
    bads: list[list[dict[str, Any]]] = [
        [{"period": {"id": "2024-13"}}],
        [{"openingDate": "2024-01-01"}],
        [{"period": "202401", "openingDate": "01/02/2024"}],
    ]
    for bad in bads:
        with pytest.raises(ValueError):
            in_input_periods(jan, bad, datetime(2024, 2, 1))


def test_fuzz_parse_period_only_value_errors() -> None:
    rng = random.Random(1234)
    alphabet = string.digits * 4 + "WBQSNovAprilJulyOctSepedThuatun-_ \n١"
    accepted = 0
    for _ in range(600):
        s = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        if rng.random() < 0.5:
            s = str(rng.randint(1, 9999)).zfill(4) + s[: rng.randint(0, 4)]
        try:
            p = parse_period(s)
        except ValueError:
            continue
        accepted += 1
        assert p.start <= p.end
        assert parse_period(p.id) == p
        assert period_containing(p.period_type, p.start) == p
    assert accepted > 20
