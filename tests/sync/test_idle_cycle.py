"""What an idle timer cycle costs the SD card: each SQLite transaction that changes a page
is a WAL write with its fsync, a litestream file and ext4 journal blocks. Nothing changed
on either side: it writes that it started and how it ended (no clock anchor: nothing
is pending to place on national's time line)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from typing import Any

import pytest

from .conftest import Pair

pytestmark = pytest.mark.slow  # a minute's wait: national's seed is "now" to the first pulls


async def test_an_idle_cycle_commits_twice(pair: Pair, monkeypatch: pytest.MonkeyPatch,
                                           caplog: pytest.LogCaptureFixture) -> None:
    await asyncio.sleep(61)  # past the pulls' one-minute overlap after national's seeding
    assert (await pair.engine.cycle("timer")).ok
    changed: list[str] = []
    with contextlib.closing(sqlite3.connect(pair.hub.path)) as watch:
        def version() -> int:
            return int(watch.execute("PRAGMA data_version").fetchone()[0])
        write = pair.hub.write

        async def counted(fn: Any) -> Any:
            before = version()
            out = await write(fn)
            if version() != before:  # pages changed: this one reached the card
                changed.append(getattr(fn, "__qualname__", "?"))
            return out
        monkeypatch.setattr(pair.hub, "write", counted)
        caplog.clear()
        with caplog.at_level(logging.DEBUG, logger="appliance.sync"):
            r = await pair.engine.cycle("timer")
    assert r.ok and r.pulled_values == 0 and r.push.accepted == 0, r
    assert len(changed) <= 2, changed
    # the journal is on the card too: an idle cycle's line is DEBUG, four an hour saved
    lines = [(rec.levelno, rec.getMessage()) for rec in caplog.records
             if rec.getMessage().startswith("cycle: timer")]
    assert [lvl for lvl, _m in lines] == [logging.DEBUG], lines
    st = pair.hub.read_sync(lambda c: dict(c.execute("SELECT key, value FROM sync_state")))
    assert st["syncing"] == "0" and st["link"] == "up" and st["last_success"]
    assert st["tracker_watermark"] and st["data_watermark"]  # moved, in the last one
