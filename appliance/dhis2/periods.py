"""DHIS2 ISO periods (ISO 8601 calendar only), as DHIS2 2.41 parses and generates them.

Semantics follow dhis2-core 2.41 (``DateUnitType``, ``DateUnitPeriodTypeParser``, the
``*PeriodType`` classes, ``DataSet.isLocked``, ``DataInputPeriod``, ``PeriodType.getFuturePeriod``)
and the Android SDK's ``AbstractPeriodGenerator``. Notable DHIS2 facts encoded here:

* Period ids are matched against whole-string, ASCII-only patterns; DHIS2 also accepts
  ``yyyy-MM-dd`` (Daily), ``yyyy-MM`` (Monthly) and zero-padded week numbers (``2024W01``).
  :func:`parse_period` accepts those and returns the canonical id.
* Weeks use ``WeekFields(startDay, 4)``: week 1 is the week holding 4 January, so
  ``2020W53`` exists and ``2021W53`` does not. Weekly ids carry the week-based year.
* BiWeekly n starts on the Monday of ISO week 2n-1; in a 53-week year the last bi-week
  (e.g. ``2020BiW27``) runs into ISO week 1 of the next year and overlaps ``2021BiW1``.
* ``yyyyNovQ1``, ``yyyyNovS1`` and ``yyyyNov`` (FinancialNov) start in November of the
  PREVIOUS year; FinancialApril/July/Oct/Sep start in the named month of ``yyyy``.
* FinancialSep exists from DHIS2 2.42; a 2.41 server rejects ``yyyySep``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

__all__ = [
    "PERIOD_TYPES",
    "Period",
    "parse_period",
    "period_type_of",
    "period_containing",
    "shift",
    "last_periods",
    "is_expired",
    "beyond_open_future",
    "in_input_periods",
]


@dataclass(frozen=True)
class Period:
    id: str
    period_type: str
    start: date
    end: date  # inclusive

    def contains(self, day: date) -> bool:
        return self.start <= day <= self.end


# DHIS2 period type name -> (months per period, first month of the cycle).
_MONTHLY_TYPES: dict[str, tuple[int, int]] = {
    "Monthly": (1, 1),
    "BiMonthly": (2, 1),
    "Quarterly": (3, 1),
    "QuarterlyNov": (3, 11),
    "SixMonthly": (6, 1),
    "SixMonthlyApril": (6, 4),
    "SixMonthlyNov": (6, 11),
    "Yearly": (12, 1),
    "FinancialApril": (12, 4),
    "FinancialJuly": (12, 7),
    "FinancialOct": (12, 10),
    "FinancialNov": (12, 11),
    "FinancialSep": (12, 9),
}

# Weekly type name -> (ISO weekday the week starts on, id infix).
_WEEKLY_TYPES: dict[str, tuple[int, str]] = {
    "Weekly": (1, "W"),
    "WeeklyWednesday": (3, "WedW"),
    "WeeklyThursday": (4, "ThuW"),
    "WeeklySaturday": (6, "SatW"),
    "WeeklySunday": (7, "SunW"),
}

# Same order as DHIS2's PeriodType.PERIOD_TYPES (FinancialSep appended: 2.42+).
PERIOD_TYPES: tuple[str, ...] = (
    "Daily",
    "Weekly",
    "WeeklyWednesday",
    "WeeklyThursday",
    "WeeklySaturday",
    "WeeklySunday",
    "BiWeekly",
    "Monthly",
    "BiMonthly",
    "Quarterly",
    "QuarterlyNov",
    "SixMonthly",
    "SixMonthlyApril",
    "SixMonthlyNov",
    "Yearly",
    "FinancialApril",
    "FinancialJuly",
    "FinancialOct",
    "FinancialNov",
    "FinancialSep",
)

_FINANCIAL_SUFFIX = {
    "FinancialApril": "April",
    "FinancialJuly": "July",
    "FinancialOct": "Oct",
    "FinancialNov": "Nov",
    "FinancialSep": "Sep",
}


def _rx(pattern: str) -> re.Pattern[str]:
    # ASCII: Java's \d only matches 0-9; Python's would accept any Unicode digit.
    return re.compile(pattern, re.ASCII)


# (pattern, period type). Patterns are disjoint, so order only matters for readability.
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (_rx(r"(\d{4})(\d{2})(\d{2})"), "Daily"),
    (_rx(r"(\d{4})-(\d{2})-(\d{2})"), "Daily"),
    (_rx(r"(\d{4})W(\d\d?)"), "Weekly"),
    (_rx(r"(\d{4})WedW(\d\d?)"), "WeeklyWednesday"),
    (_rx(r"(\d{4})ThuW(\d\d?)"), "WeeklyThursday"),
    (_rx(r"(\d{4})SatW(\d\d?)"), "WeeklySaturday"),
    (_rx(r"(\d{4})SunW(\d\d?)"), "WeeklySunday"),
    (_rx(r"(\d{4})BiW(\d\d?)"), "BiWeekly"),
    (_rx(r"(\d{4})-?(\d{2})"), "Monthly"),
    (_rx(r"(\d{4})(\d{2})B"), "BiMonthly"),
    (_rx(r"(\d{4})Q(\d)"), "Quarterly"),
    (_rx(r"(\d{4})NovQ(\d)"), "QuarterlyNov"),
    (_rx(r"(\d{4})S(\d)"), "SixMonthly"),
    (_rx(r"(\d{4})AprilS(\d)"), "SixMonthlyApril"),
    (_rx(r"(\d{4})NovS(\d)"), "SixMonthlyNov"),
    (_rx(r"(\d{4})"), "Yearly"),
    (_rx(r"(\d{4})April"), "FinancialApril"),
    (_rx(r"(\d{4})July"), "FinancialJuly"),
    (_rx(r"(\d{4})Oct"), "FinancialOct"),
    (_rx(r"(\d{4})Nov"), "FinancialNov"),
    (_rx(r"(\d{4})Sep"), "FinancialSep"),
)

_DAY = timedelta(days=1)
_T = TypeVar("_T")


# --------------------------------------------------------------------------- month based


def _month_index(day: date) -> int:
    return day.year * 12 + day.month - 1


def _monthly_id(ptype: str, y: int, m: int) -> str:
    if ptype == "Monthly":
        return f"{y:04d}{m:02d}"
    if ptype == "BiMonthly":
        return f"{y:04d}{(m + 1) // 2:02d}B"
    if ptype == "Quarterly":
        return f"{y:04d}Q{(m - 1) // 3 + 1}"
    if ptype == "QuarterlyNov":  # Nov(y-1)=Q1, Feb=Q2, May=Q3, Aug=Q4
        return f"{y + 1:04d}NovQ1" if m == 11 else f"{y:04d}NovQ{(m + 1) // 3 + 1}"
    if ptype == "SixMonthly":
        return f"{y:04d}S{1 if m == 1 else 2}"
    if ptype == "SixMonthlyApril":
        return f"{y:04d}AprilS{1 if m == 4 else 2}"
    if ptype == "SixMonthlyNov":  # Nov(y-1)..Apr = S1, May..Oct = S2
        return f"{y + 1:04d}NovS1" if m == 11 else f"{y:04d}NovS2"
    if ptype == "Yearly":
        return f"{y:04d}"
    if ptype == "FinancialNov":  # labelled by the year it ends in
        return f"{y + 1:04d}Nov"
    return f"{y:04d}{_FINANCIAL_SUFFIX[ptype]}"


def _monthly_period(ptype: str, month_index: int) -> Period:
    length, _ = _MONTHLY_TYPES[ptype]
    y, m0 = divmod(month_index, 12)
    ny, nm0 = divmod(month_index + length, 12)
    start = date(y, m0 + 1, 1)
    end = date(ny, nm0 + 1, 1) - _DAY
    return Period(_monthly_id(ptype, y, m0 + 1), ptype, start, end)


def _monthly_containing(ptype: str, day: date) -> Period:
    length, first = _MONTHLY_TYPES[ptype]
    mi = _month_index(day)
    return _monthly_period(ptype, mi - (mi - (first - 1)) % length)


def _monthly_start(ptype: str, year: int, n: int) -> tuple[int, int]:
    """(start year, start month) of period number ``n`` of ``year`` (n ignored for yearly)."""
    limits = {
        "Monthly": ("month", 12),
        "BiMonthly": ("bi-month", 6),
        "Quarterly": ("quarter", 4),
        "QuarterlyNov": ("quarter", 4),
        "SixMonthly": ("half-year", 2),
        "SixMonthlyApril": ("half-year", 2),
        "SixMonthlyNov": ("half-year", 2),
    }
    if ptype in limits:
        unit, hi = limits[ptype]
        if not 1 <= n <= hi:
            raise ValueError(f"{unit} must be between 1 and {hi}")
    if ptype == "Monthly":
        return year, n
    if ptype == "BiMonthly":
        return year, 2 * n - 1
    if ptype == "Quarterly":
        return year, 3 * n - 2
    if ptype == "QuarterlyNov":
        return (year - 1, 11) if n == 1 else (year, 3 * n - 4)
    if ptype == "SixMonthly":
        return year, 1 if n == 1 else 7
    if ptype == "SixMonthlyApril":
        return year, 4 if n == 1 else 10
    if ptype == "SixMonthlyNov":
        return (year - 1, 11) if n == 1 else (year, 5)
    if ptype == "FinancialNov":
        return year - 1, 11
    return year, _MONTHLY_TYPES[ptype][1]


# --------------------------------------------------------------------------- week based


def _week1_start(year: int, start_dow: int) -> date:
    # Week 1 is the week (starting on start_dow) that contains 4 January.
    jan4 = date(year, 1, 4)
    return jan4 - timedelta(days=(jan4.isoweekday() - start_dow) % 7)


def _weekly_period(ptype: str, start: date) -> Period:
    _, infix = _WEEKLY_TYPES[ptype]
    week_year = (start + timedelta(days=3)).year  # the year holding 4+ days of the week
    week = (start - _week1_start(week_year, _WEEKLY_TYPES[ptype][0])).days // 7 + 1
    return Period(f"{week_year:04d}{infix}{week}", ptype, start, start + timedelta(days=6))


def _weekly_containing(ptype: str, day: date) -> Period:
    start_dow, _ = _WEEKLY_TYPES[ptype]
    return _weekly_period(ptype, day - timedelta(days=(day.isoweekday() - start_dow) % 7))


def _weeks_in_year(year: int, start_dow: int) -> int:
    return (_week1_start(year + 1, start_dow) - _week1_start(year, start_dow)).days // 7


def _biweekly_period(start: date) -> Period:
    iso_year, iso_week, _ = start.isocalendar()
    pid = f"{iso_year:04d}BiW{iso_week // 2 + 1}"
    return Period(pid, "BiWeekly", start, start + timedelta(days=13))


def _biweekly_containing(day: date) -> Period:
    # DHIS2 adjustToStartOfBiWeek: Monday of the odd ISO week at or before the day.
    _, iso_week, iso_dow = day.isocalendar()
    monday = day - timedelta(days=iso_dow - 1)
    if iso_week % 2 == 0:
        monday -= timedelta(days=7)
    return _biweekly_period(monday)


# --------------------------------------------------------------------------- public API


def _check_type(period_type: str) -> None:
    if period_type not in PERIOD_TYPES:
        raise ValueError(f"Unknown period type: {period_type!r}")


def _parse(s: str) -> Period:
    for pattern, ptype in _PATTERNS:
        m = pattern.fullmatch(s)
        if m is None:
            continue
        year = int(m.group(1))
        if ptype == "Daily":
            return _daily(date(year, int(m.group(2)), int(m.group(3))))
        if ptype in _WEEKLY_TYPES:
            week, start_dow = int(m.group(2)), _WEEKLY_TYPES[ptype][0]
            weeks = _weeks_in_year(year, start_dow)
            if not 1 <= week <= weeks:
                raise ValueError(f"week must be between 1 and {weeks} in {year}")
            return _weekly_period(ptype, _week1_start(year, start_dow) + timedelta(weeks=week - 1))
        if ptype == "BiWeekly":
            n = int(m.group(2))
            iso_weeks = date(year, 12, 28).isocalendar()[1]
            if not 1 <= 2 * n - 1 <= iso_weeks:
                raise ValueError(f"bi-week must be between 1 and {(iso_weeks + 1) // 2} in {year}")
            return _biweekly_period(date.fromisocalendar(year, 2 * n - 1, 1))
        n = int(m.group(2)) if m.lastindex and m.lastindex >= 2 else 0
        y, mo = _monthly_start(ptype, year, n)
        return _monthly_period(ptype, y * 12 + mo - 1)
    raise ValueError("not a DHIS2 ISO period")


def _daily(day: date) -> Period:
    return Period(f"{day.year:04d}{day.month:02d}{day.day:02d}", "Daily", day, day)


def parse_period(s: str) -> Period:
    """Parse a DHIS2 ISO period id; ``ValueError`` (with the reason) if it is not valid."""
    if not isinstance(s, str):
        raise ValueError(f"Period not valid: {s!r} (not a string)")
    try:
        return _parse(s)
    except (ValueError, OverflowError) as exc:
        # date() errors (month 13, 30 February, year 0) arrive here as ValueError too.
        raise ValueError(f"Period not valid: `{s[:64]}` ({exc})") from None


def period_type_of(s: str) -> str | None:
    """The DHIS2 period type name of a valid period id, else None."""
    try:
        return parse_period(s).period_type
    except ValueError:
        return None


def _containing(period_type: str, day: date) -> Period:
    if period_type == "Daily":
        return _daily(day)
    if period_type in _WEEKLY_TYPES:
        return _weekly_containing(period_type, day)
    if period_type == "BiWeekly":
        return _biweekly_containing(day)
    return _monthly_containing(period_type, day)


def period_containing(period_type: str, day: date | datetime) -> Period:
    """The period of ``period_type`` that contains ``day`` (DHIS2 ``PeriodType.createPeriod``)."""
    _check_type(period_type)
    if isinstance(day, datetime):
        day = day.date()
    return _guard(lambda: _containing(period_type, day))


def _step(p: Period, n: int) -> Period:
    ptype = p.period_type
    if ptype == "Daily":
        return _daily(p.start + timedelta(days=n))
    if ptype in _WEEKLY_TYPES:
        return _weekly_period(ptype, p.start + timedelta(weeks=n))
    if ptype == "BiWeekly":
        # DHIS2 moves one bi-week at a time (start +/- 14 days, then re-align), which makes
        # the overlapping week-53 bi-week reachable going forward but skipped going back.
        out = p
        for _ in range(abs(n)):
            out = _biweekly_containing(out.start + timedelta(weeks=2 if n > 0 else -2))
        return out
    length, _ = _MONTHLY_TYPES[ptype]
    aligned = _monthly_containing(ptype, p.start)
    return _monthly_period(ptype, _month_index(aligned.start) + n * length)


def shift(p: Period, n: int) -> Period:
    """The period ``n`` periods after (n > 0) or before (n < 0) ``p``, same type."""
    _check_type(p.period_type)
    return _guard(lambda: _step(p, n))


def last_periods(period_type: str, n: int, today: date, future: int = 0) -> list[Period]:
    """Periods the Android SDK downloads data for, oldest first.

    SDK ``getPeriodsInRange(type, -n, future)``: from ``n`` periods before the current one up
    to ``future - 1`` periods after it. ``future`` is the data set's ``openFuturePeriods``, so
    the current period is included only when ``future >= 1`` (the SDK uses 1 when the data set
    does not say). E.g. Monthly, n=11, future=1: the last 11 months plus the current one.
    """
    _check_type(period_type)
    if -n >= future:
        return []
    current = period_containing(period_type, today)
    first = shift(current, -n)
    return [first] + [shift(first, i) for i in range(1, future + n)]


def _as_date(now: date | datetime) -> date:
    return now.date() if isinstance(now, datetime) else now


def is_expired(p: Period, expiry_days: int, now: datetime | date) -> bool:
    """DHIS2 2.41 ``DataSet.isLocked`` (before lock exceptions and ``F_EDIT_EXPIRED``).

    ``expiryDays`` 0 means never. Otherwise the comparison ignores the time of day: data can be
    entered through the whole day ``end + expiryDays`` and is locked from the next midnight
    (server-local ``now``). A monthly January period with expiryDays=10 is open until
    10 February 23:59:59.
    """
    if expiry_days == 0:
        return False
    return _guard(lambda: _as_date(now) > p.end + timedelta(days=expiry_days))


def beyond_open_future(
    p: Period, period_type: str, open_future_periods: int, today: date
) -> bool:
    """E7641: ``p`` ends after the latest open future period of the data set.

    DHIS2 ``PeriodType.getFuturePeriod(openFuturePeriods)`` takes the period BEFORE the current
    one and moves ``openFuturePeriods`` forward. So 0 closes the current (unfinished) period,
    1 opens the current period, 2 also the next one, and so on. The comparison is on end dates
    (``Period.isAfter``), so ``p`` may be of another type than the data set's.
    """
    _check_type(period_type)
    latest = shift(period_containing(period_type, today), -1)
    if open_future_periods > 0:
        latest = shift(latest, open_future_periods)
    return p.end > latest.end


def _parse_iso_day(value: Any, field: str) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            # DHIS2 compares only the calendar day of openingDate/closingDate.
            return date.fromisoformat(value[:10])
        except ValueError:
            pass
    raise ValueError(f"dataInputPeriods {field} is not a yyyy-MM-dd date: {value!r}")


def _input_period_id(entry: Mapping[str, Any]) -> str:
    raw = entry.get("period")
    pid = raw.get("id") if isinstance(raw, Mapping) else raw
    if not isinstance(pid, str):
        raise ValueError(f"dataInputPeriods entry without a period id: {raw!r}")
    return parse_period(pid).id


def in_input_periods(
    p: Period, data_input_periods: Sequence[Mapping[str, Any]], now: datetime | date
) -> bool | None:
    """E7643 check (``DataSet.isDataInputPeriodAndDateAllowed``).

    None when the data set has no data input periods (no restriction). Otherwise True only if
    an entry is for ``p`` and today lies within its openingDate..closingDate, both inclusive
    and compared by day; a missing date leaves that side open.
    """
    if not data_input_periods:
        return None
    today = _as_date(now)
    for entry in data_input_periods:
        if _input_period_id(entry) != p.id:
            continue
        opening = _parse_iso_day(entry.get("openingDate"), "openingDate")
        closing = _parse_iso_day(entry.get("closingDate"), "closingDate")
        if (opening is None or today >= opening) and (closing is None or today <= closing):
            return True
    return False


def _guard(fn: Callable[[], _T]) -> _T:
    """Run ``fn``, turning date-range overflow (before year 1 / after 9999) into ValueError."""
    try:
        return fn()
    except OverflowError as exc:
        raise ValueError(f"date out of range: {exc}") from None
