"""The store: migrations, the single write path with group commit, the HLC."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from appliance.errors import StoreError
from appliance.store import HLC, Store, db
from appliance.store.hlc import pack, physical_ms


def test_wal_and_full_sync(tmp_path: Path) -> None:
    with Store(tmp_path / "h.db") as s:
        mode = s.read_sync(lambda c: c.execute("PRAGMA journal_mode").fetchone()[0])
        sync = s.read_sync(lambda c: c.execute("PRAGMA synchronous").fetchone()[0])
    assert mode == "wal"
    assert sync == 2  # FULL


def test_migrations_apply_once(tmp_path: Path) -> None:
    with Store(tmp_path / "h.db") as s:
        first = s.read_sync(lambda c: [r[0] for r in c.execute("SELECT name FROM _migrations")])
    with Store(tmp_path / "h.db") as s:
        second = s.read_sync(lambda c: [r[0] for r in c.execute("SELECT name FROM _migrations")])
    assert first == second
    assert first[0] == "0001_core.sql" and first == sorted(first)


def test_write_is_visible_after_reopen(tmp_path: Path) -> None:
    with Store(tmp_path / "h.db") as s:
        s.write_sync(lambda tx: tx.execute("INSERT INTO meta VALUES ('k', 'v')"))
    conn = sqlite3.connect(tmp_path / "h.db")
    assert conn.execute("SELECT value FROM meta WHERE key='k'").fetchone() == ("v",)


def test_wal_is_checkpointed_beside_the_writer_not_in_its_commits(tmp_path: Path) -> None:
    """A commit never copies the WAL back itself (below the cap): the checkpoint thread
    does, soon after. The main file alone (copied without its WAL) shows the write."""
    with Store(tmp_path / "h.db") as s:
        cap = s._writer_conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
        assert cap == db.WAL_CAP_PAGES
        s.write_sync(lambda tx: tx.execute("INSERT INTO meta VALUES ('k', 'v')"))
        deadline = time.monotonic() + 10
        while True:
            shutil.copyfile(tmp_path / "h.db", tmp_path / "main-only.db")
            conn = sqlite3.connect(tmp_path / "main-only.db")
            try:
                row = conn.execute("SELECT value FROM meta WHERE key='k'").fetchone()
            except sqlite3.OperationalError:  # not even the schema copied back yet
                row = None
            finally:
                conn.close()
            if row == ("v",):
                break
            assert time.monotonic() < deadline, "the WAL was not checkpointed"
            time.sleep(0.1)
        t0 = time.monotonic()
    assert time.monotonic() - t0 < 1  # closing does not wait out the checkpoint delay


def test_failed_write_rolls_back_only_itself() -> None:
    with Store.memory() as s:
        def bad(tx):  # type: ignore[no-untyped-def]
            tx.execute("INSERT INTO meta VALUES ('bad', '1')")
            raise ValueError("nope")

        async def go() -> list[object]:
            return await asyncio.gather(
                s.write(lambda tx: tx.execute("INSERT INTO meta VALUES ('a', '1')").rowcount),
                s.write(bad),
                s.write(lambda tx: tx.execute("INSERT INTO meta VALUES ('b', '1')").rowcount),
                return_exceptions=True)
        results = asyncio.run(go())
        keys = s.read_sync(lambda c: {r[0] for r in c.execute("SELECT key FROM meta")})
    assert results[0] == 1 and results[2] == 1
    assert isinstance(results[1], ValueError)
    assert {"a", "b"} <= keys and "bad" not in keys


def test_concurrent_writes_are_grouped_and_all_land(tmp_path: Path) -> None:
    with Store(tmp_path / "h.db") as s:
        async def go() -> None:
            await asyncio.gather(*(s.write(
                lambda tx, i=i: tx.execute("INSERT INTO meta VALUES (?, ?)", (f"k{i}", str(i))))
                for i in range(500)))
        asyncio.run(go())
        n = s.read_sync(lambda c: c.execute("SELECT count(*) FROM meta WHERE key LIKE 'k%'")
                        .fetchone()[0])
    assert n == 500


def test_closed_store_refuses_writes() -> None:
    s = Store.memory()
    s.close()
    with pytest.raises(StoreError):
        s.write_sync(lambda tx: None)


def test_hlc_monotonic_when_wall_clock_goes_back() -> None:
    wall = [1_700_000_000.0]
    clock = HLC(wall=lambda: wall[0])
    a = clock.now()
    wall[0] -= 7200  # NTP not yet answered after a power cut: clock 2 h behind
    b = clock.now()
    wall[0] += 3 * 3600
    c = clock.now()
    assert a < b < c
    assert physical_ms(b) == physical_ms(a)  # held at the high-water mark, counter advanced


def test_hlc_persists_across_restart_with_clock_set_back(tmp_path: Path) -> None:
    wall = [1_800_000_000.0]
    with Store(tmp_path / "h.db", wall=lambda: wall[0]) as s:
        stamps = [s.write_sync(lambda tx: tx.stamp()) for _ in range(3)]
    wall[0] = 1_500_000_000.0  # rebooted with no RTC: years behind
    with Store(tmp_path / "h.db", wall=lambda: wall[0]) as s:
        after = s.write_sync(lambda tx: tx.stamp())
    assert after > max(stamps)


def test_hlc_observe_moves_past_remote() -> None:
    clock = HLC(wall=lambda: 1_000.0)
    remote = pack(5_000_000)
    assert clock.observe(remote) > remote


def test_hlc_thread_safety() -> None:
    clock = HLC()
    out: list[int] = []
    lock = threading.Lock()

    def work() -> None:
        mine = [clock.now() for _ in range(2000)]
        with lock:
            out.extend(mine)
    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(out)) == len(out)


def test_concurrent_first_opens_migrate_once(tmp_path: Path) -> None:
    # hub, sync and health start together on a fresh card (and parallel `fleet add-hub`
    # open a fresh fleet.db): several rounds, since the race to turn the file to WAL is
    # lost only now and then
    import subprocess
    import sys
    # each process imports first, then all open at once (when the `go` file appears)
    code = ("import os, sys, time; from appliance.store import Store\n"
            "while not os.path.exists(sys.argv[2]): time.sleep(0.001)\n"
            "Store(sys.argv[1]).close()")
    for n in range(8):
        db, go = tmp_path / f"h{n}.db", tmp_path / f"go{n}"
        procs = [subprocess.Popen([sys.executable, "-c", code, str(db), str(go)],
                                  stderr=subprocess.PIPE) for _ in range(8)]
        time.sleep(0.5)
        go.touch()
        errors = [p.communicate()[1].decode() for p in procs]
        assert all(p.returncode == 0 for p in procs), errors
        with Store(db) as s:
            names = s.read_sync(lambda c: [r[0] for r in c.execute(
                "SELECT name FROM _migrations")])
        assert len(names) == len(set(names))


def test_a_completion_is_dated_by_the_hub_s_day_not_utc(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Completed at 01:30 in Ramu on 6 December (19:30 UTC on the 5th), a form is dated the
    6th, as national's DHIS2 in Dhaka dates it."""
    import time as time_mod
    from datetime import UTC, datetime

    from appliance.store.datavalues import register_complete
    monkeypatch.setenv("TZ", "Asia/Dhaka")
    time_mod.tzset()
    try:
        at = datetime(2026, 12, 5, 19, 30, tzinfo=UTC).timestamp()
        with Store(tmp_path / "h.db", wall=lambda: at) as s:
            s.write_sync(lambda tx: register_complete(
                tx, [{"ds": "ds1", "pe": "202611", "ou": "ou1", "aoc": "aoc1"}],
                username="chcp"))
            day = s.read_sync(lambda c: c.execute(
                "SELECT date FROM complete_registration").fetchone()[0])
    finally:
        monkeypatch.delenv("TZ")
        time_mod.tzset()
    assert day == "2026-12-06"
