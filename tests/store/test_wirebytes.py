"""Bytes on the modem per local day and category (issue 15): the hub's days and months,
rollover at local midnight, pruning, the budget and the report's shape."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from appliance.store import Store, wirebytes
from appliance.store.wirebytes import FLEET, METADATA, OTHER, PULL, PUSH, Tally


@pytest.fixture
def dhaka(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The image's zone, UTC+6 (no daylight saving)."""
    monkeypatch.setenv("TZ", "Asia/Dhaka")
    time.tzset()
    yield
    monkeypatch.delenv("TZ")
    time.tzset()


def utc(*args: int) -> float:
    return datetime(*args, tzinfo=UTC).timestamp()  # type: ignore[misc]


def test_a_tally_counts_by_category_and_starts_again_when_taken() -> None:
    t = Tally()
    t.add(PULL, 100, 2000)
    t.add(PULL, 10, 20)
    t.add(PUSH, 500)
    t.add(OTHER, 0, 0)  # nothing: no entry
    assert t.peek() == {PULL: (110, 2020), PUSH: (500, 0)}
    assert t.total() == (610, 2020)
    taken = t.take()
    assert taken == {PULL: (110, 2020), PUSH: (500, 0)} and t.take() == {}
    t.put_back(taken)  # a write that failed: the next one carries them
    assert t.take() == taken


def test_days_roll_over_at_local_midnight_not_utc(tmp_path: Path, dhaka: None) -> None:
    """17:59 UTC is 23:59 in Ramu; 18:01 UTC is the next day there."""
    with Store(tmp_path / "h.db") as s:
        s.write_sync(lambda tx: wirebytes.record(tx, {PULL: (100, 1000)},
                                                utc(2026, 12, 5, 17, 59)))
        s.write_sync(lambda tx: wirebytes.record(tx, {PULL: (1, 10), FLEET: (7, 3)},
                                                utc(2026, 12, 5, 18, 1)))
        s.write_sync(lambda tx: wirebytes.record(tx, {PULL: (2, 20)},
                                                utc(2026, 12, 5, 20, 0)))
        got = s.read_sync(wirebytes.days)
    assert got == {"2026-12-05": {PULL: (100, 1000)},
                   "2026-12-06": {PULL: (3, 30), FLEET: (7, 3)}}


def test_the_month_rolls_over_in_the_hub_s_zone(tmp_path: Path, dhaka: None) -> None:
    """30 November 23:30 in Ramu counts for November; the report at 1 December 00:30 there
    (18:30 UTC on 30 November) shows a new month, empty but for today."""
    nov_last = utc(2026, 11, 30, 17, 30)  # 23:30 local
    dec_first = utc(2026, 11, 30, 18, 30)  # 00:30 local, 1 December
    with Store(tmp_path / "h.db") as s:
        s.write_sync(lambda tx: wirebytes.record(tx, {METADATA: (1000, 50_000)},
                                                utc(2026, 11, 2, 6, 0)))
        s.write_sync(lambda tx: wirebytes.record(tx, {PUSH: (30_000, 2000)}, nov_last))
        nov = s.read_sync(lambda c: wirebytes.report(c, nov_last, 1))
        s.write_sync(lambda tx: wirebytes.record(tx, {OTHER: (600, 700)}, dec_first))
        dec = s.read_sync(lambda c: wirebytes.report(c, dec_first, 1))
    assert nov["today"]["date"] == "2026-11-30" and nov["month"]["period"] == "202611"
    assert nov["today"]["push"] == {"sent": 30_000, "received": 2000}
    assert nov["today"]["metadata"] == {"sent": 0, "received": 0}
    assert nov["month"]["metadata"] == {"sent": 1000, "received": 50_000}
    assert nov["month"]["total"] == {"sent": 31_000, "received": 52_000}
    assert nov["month"]["startDate"] == "2026-11-01"
    assert nov["month"]["endsAt"] == "2026-11-30T18:00:00Z"  # local midnight, in UTC
    assert nov["monthUsedPct"] == round(100 * 83_000 / 2**20, 1)

    assert dec["today"]["date"] == "2026-12-01" and dec["month"]["period"] == "202612"
    assert dec["month"]["total"] == {"sent": 600, "received": 700}
    assert dec["month"]["other"] == {"sent": 600, "received": 700,
                                     "fleet": {"sent": 0, "received": 0}}
    assert dec["month"]["endsAt"] == "2026-12-31T18:00:00Z"


def test_the_report_sums_categories_and_counts_fleet_inside_other(tmp_path: Path) -> None:
    now = time.time()
    counts = {METADATA: (1, 2), PULL: (10, 20), PUSH: (100, 200), OTHER: (1000, 2000),
              FLEET: (5000, 6000)}
    with Store(tmp_path / "h.db") as s:
        s.write_sync(lambda tx: wirebytes.record(tx, counts, now))
        rep = s.read_sync(lambda c: wirebytes.report(c, now, 0, {FLEET: (4, 6)}))
    for part in (rep["today"], rep["month"]):
        assert part["other"] == {"sent": 6004, "received": 8006,
                                 "fleet": {"sent": 5004, "received": 6006}}
        assert part["total"] == {"sent": 6115, "received": 8228}
        assert sum(part[k]["sent"] for k in wirebytes.REPORTED) == part["total"]["sent"]
        assert sum(part[k]["received"] for k in wirebytes.REPORTED) == part["total"]["received"]
    assert rep["budgetMb"] is None and rep["monthUsedPct"] is None  # 0: no budget


def test_a_budget_s_use_in_percent(tmp_path: Path) -> None:
    now = time.time()
    with Store(tmp_path / "h.db") as s:
        s.write_sync(lambda tx: wirebytes.record(tx, {PULL: (0, 3 * 2**20)}, now))
        two = s.read_sync(lambda c: wirebytes.report(c, now, 2))
        big = s.read_sync(lambda c: wirebytes.report(c, now, 1024))
    assert two["budgetMb"] == 2 and two["monthUsedPct"] == 150.0
    assert big["monthUsedPct"] == round(300 / 1024, 1)


def test_days_older_than_kept_are_pruned_when_a_day_is_added(tmp_path: Path,
                                                            dhaka: None) -> None:
    now = utc(2026, 12, 6, 6, 0)
    old = now - (wirebytes.DAYS_KEPT + 1) * 86400
    kept = now - (wirebytes.DAYS_KEPT - 1) * 86400
    with Store(tmp_path / "h.db") as s:
        s.write_sync(lambda tx: wirebytes.record(tx, {PULL: (1, 1)}, old))
        s.write_sync(lambda tx: wirebytes.record(tx, {PULL: (2, 2)}, kept))
        assert len(s.read_sync(wirebytes.days)) == 2
        s.write_sync(lambda tx: wirebytes.record(tx, {PUSH: (3, 3)}, now))
        left = s.read_sync(wirebytes.days)
    assert sorted(left) == [wirebytes.local_day(kept), "2026-12-06"]


def test_nothing_counted_writes_nothing(tmp_path: Path) -> None:
    with Store(tmp_path / "h.db") as s:
        s.write_sync(lambda tx: wirebytes.record(tx, {PULL: (0, 0)}, time.time()))
        assert s.read_sync(wirebytes.days) == {}
