"""SQLite ``PRAGMA quick_check`` on a slow schedule; the last result is kept in the store.

quick_check reads every page (seconds on a big database on an SD card), so it runs at
most every ``quick_check_every_s``, and once at start after a power cut.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..dhis2.timefmt import iso_z
from ..errors import StoreError
from ..store import Store
from ..store import health as hstore
from . import state

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IntegrityResult:
    ok: bool
    detail: str
    at: float

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "detail": self.detail, "at": self.at,
                "at_iso": iso_z(self.at, millis=True)}


def quick_check(store: Store, wall: Callable[[], float] = time.time) -> IntegrityResult:
    try:
        rows = store.read_sync(hstore.quick_check)
    except (sqlite3.DatabaseError, StoreError) as e:  # "database disk image is malformed"
        return IntegrityResult(False, str(e), wall())
    ok = rows == ["ok"]
    return IntegrityResult(ok, "ok" if ok else "; ".join(rows), wall())


class QuickCheck:
    def __init__(self, store: Store, every_s: float, *,
                 wall: Callable[[], float] = time.time) -> None:
        self.store = store
        self.every_s = every_s
        self._wall = wall
        saved = store.read_sync(lambda c: state.get_json(c, "quick_check"))
        self.last: IntegrityResult | None = None
        if isinstance(saved, dict) and "ok" in saved:
            self.last = IntegrityResult(bool(saved["ok"]), str(saved.get("detail", "")),
                                        float(saved.get("at", 0)))

    def due(self) -> bool:
        if self.last is None:
            return True
        age = self._wall() - self.last.at
        # a negative age means the clock went back (power cut, no RTC): check again
        return age >= self.every_s or age < 0

    def run(self) -> IntegrityResult:
        res = quick_check(self.store, self._wall)
        self.last = res
        if not res.ok:
            log.error("database quick_check failed: %s", res.detail)
        self.store.write_sync(lambda tx: state.put_json(tx, "quick_check", res.to_dict()))
        return res

    def integrity_ok(self, *, force: bool = False) -> bool | None:
        """Run the check if due (or forced); return the latest known result."""
        if force or self.due():
            self.run()
        return None if self.last is None else self.last.ok
