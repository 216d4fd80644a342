"""The backlog counts the status page and the health agent read every few seconds: right,
and from partial indexes only (at 200,000 people a table scan costs seconds)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from appliance.store import Store, backlog
from tests.conftest import REPO


@pytest.fixture
def store() -> Iterator[Store]:
    with Store.memory() as s:
        yield s


def test_counts_by_state(store: Store) -> None:
    def plant(tx: object) -> None:
        ex = tx.execute  # type: ignore[attr-defined]
        for i, state in enumerate(("pending", "synced", "rejected", "conflict", "synced")):
            ex("INSERT INTO tracked_entity(uid, type, org_unit, sync_state, hlc) "
               "VALUES (?, 't', 'ou', ?, 1)", (f"te{i}", state))
            ex("INSERT INTO te_attribute(te, attribute, value, sync_state, hlc) "
               "VALUES (?, 'a', 'v', ?, 1)", (f"te{i}", state))
    store.write_sync(plant)
    assert store.read_sync(backlog.tracker_counts) == {"pending": 2, "rejected": 2,
                                                       "conflict": 2}
    pending, rejected, _ = store.read_sync(backlog.backlog)
    assert (pending, rejected) == (2, 2)


def test_every_count_reads_an_index_never_a_table(store: Store) -> None:
    for t in backlog.TRACKER_TABLES:
        for where in ("sync_state = 'pending'", "sync_state IN ('rejected', 'conflict')"):
            plan = " ".join(str(r[3]) for r in store.read_sync(lambda c, t=t, w=where: c.execute(
                f"EXPLAIN QUERY PLAN SELECT sync_state, count(*) FROM {t} WHERE {w} "
                "GROUP BY sync_state").fetchall()))
            # a partial index holds only the rows it counts
            assert f"INDEX {t}_pending" in plan or f"INDEX {t}_unsynced" in plan, (t, plan)


def test_the_health_agent_does_not_load_the_tracker_or_search() -> None:
    """The agent counts the backlog; the search code and rapidfuzz are ~5 MB of its 40."""
    out = subprocess.run(
        [sys.executable, "-c", "import sys, appliance.health.agent, appliance.health.command; "
         "print(sorted(m for m in ('rapidfuzz', 'appliance.store.search', "
         "'appliance.store.tracker') if m in sys.modules))"],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"
