"""Unclean-shutdown (power-cut) counting with a marker file in the data dir.

The agent writes the marker at start and removes it on a clean stop. A marker found at
start means the last run did not stop cleanly. The marker holds the kernel boot id:
a different boot id means the whole machine went down uncleanly (power cut, brown-out,
hard reset) and counts as a power cut; the same boot id means only the agent died
(kill -9, crash) and counts as an agent restart instead.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from ..fsutil import fsync_dir
from ..store import Store
from ..store.db import Tx
from . import state
from .system import BOOT_ID_PATH, read_boot_id

log = logging.getLogger(__name__)

MARKER_NAME = ".health-running"


@dataclass(frozen=True)
class StartReport:
    power_cut: bool          # the machine went down uncleanly since the last run
    agent_restart: bool      # only the agent died, same boot
    power_cuts: int          # total persisted count
    previous_boot_id: str | None


class RunMarker:
    def __init__(self, data_dir: str | os.PathLike[str], *,
                 boot_id_path: str | os.PathLike[str] = BOOT_ID_PATH) -> None:
        self.path = Path(data_dir) / MARKER_NAME
        self.boot_id_path = boot_id_path

    def start(self, store: Store) -> StartReport:
        """Check for a leftover marker, count it, and write a fresh one (durably)."""
        boot_id = read_boot_id(self.boot_id_path)
        previous = self._read()
        found = previous is not None
        raw_prev = previous.get("boot_id") if previous else None
        prev_boot = str(raw_prev) if raw_prev else None
        # unknown boot ids on either side: assume the worst (a power cut)
        same_boot = found and boot_id is not None and prev_boot == boot_id
        power_cut = found and not same_boot

        def count(tx: Tx) -> int:
            if power_cut:
                state.increment(tx, "power_cuts")
            elif same_boot:
                state.increment(tx, "agent_restarts")
            return state.get_int(tx.conn, "power_cuts")

        total = store.write_sync(count)
        if power_cut:
            log.warning("unclean shutdown detected (power cut #%d)", total)
        elif same_boot:
            log.warning("health agent did not stop cleanly last time (same boot)")
        self._write({"boot_id": boot_id, "pid": os.getpid(), "started": time.time()})
        return StartReport(power_cut, bool(same_boot), total, prev_boot)

    def stop(self) -> None:
        """Clean stop: remove the marker (and make the removal durable)."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        fsync_dir(self.path.parent)

    def _read(self) -> dict[str, object] | None:
        try:
            raw = self.path.read_text()
        except FileNotFoundError:
            return None
        except OSError:
            return {}
        try:
            data = json.loads(raw)
            return data if isinstance(data, dict) else {}
        except ValueError:
            return {}  # torn write during the cut: still a marker

    def _write(self, data: dict[str, object]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "w") as f:
            json.dump(data, f)
            f.flush()
            os.fsync(f.fileno())  # the marker must survive the very power cut it detects
        os.replace(tmp, self.path)
        fsync_dir(self.path.parent)


def power_cuts(conn: object) -> int:
    """Persisted count (for readers that only have a connection)."""
    return state.get_int(conn, "power_cuts")  # type: ignore[arg-type]
