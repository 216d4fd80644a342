"""``appliance sync``: the sync worker's schedule.

A cycle runs:
* at start, then every ``[sync] interval_s`` after the last one ended;
* on "sync now" datagrams (``trigger.py``): reasons ``api``, ``cli``, ``button``,
  ``modem`` (the health agent saw a modem appear), ``usb`` run at once; ``local-data``
  (the hub stored new data) is debounced by ``[sync] debounce_s`` so a form being
  entered does not start a cycle per value, and after a cycle that pushed data it waits
  for ``[sync] batch_s`` to pass (``batching.py``);
* after a failed cycle, again after a jittered backoff (30 s doubling, up to the
  interval), so a link that comes back is used soon; after a cycle that moved data
  before the link dropped, within a few seconds (the link works, in short bursts).
Only one worker runs per data directory (an flock), and one cycle at a time; requests
that arrive during a cycle are merged into one follow-up cycle.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

from ..config import Config
from ..dhis2.timefmt import iso_z
from ..errors import SyncError
from ..memory import trim
from ..store import Store
from ..trigger import REASONS, socket_path
from . import state
from .backoff import backoff_delay
from .batching import DataTrigger
from .cycle import CycleResult, SyncEngine

log = logging.getLogger(__name__)

ANCHOR_EVERY_S = 60.0
RETRY_BASE_S = 30.0
QUICK_RETRY_S = 3.0  # after a cycle that moved data before the link dropped


class WorkerLock:
    """One sync worker per data directory (flock is released by the kernel on SIGKILL)."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / "sync.lock"
        self._fh: IO[str] | None = None

    def acquire(self, wait_s: float = 0.0) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+")  # noqa: SIM115 - held for the worker's lifetime
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self._fh = fh
                return True
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    fh.close()
                    return False
                time.sleep(0.2)

    def release(self) -> None:
        if self._fh is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fh, fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None


class Daemon:
    def __init__(self, store: Store, config: Config, *, engine: SyncEngine | None = None,
                 wall: Callable[[], float] = time.time) -> None:
        self.store = store
        self.config = config
        self.engine = engine or SyncEngine(store, config, wall=wall)
        self.interval = float(config.get("sync", "interval_s"))
        self.data = DataTrigger(float(config.get("sync", "debounce_s")),
                                float(config.get("sync", "batch_s")))
        self.sock_path = socket_path(config.data_dir, config.get("sync", "socket"))
        self._wake = asyncio.Event()
        self._now_reason: str | None = None
        self._next_at = 0.0  # first cycle at once
        self.wall = wall
        # the "next_push" the status page was last told (unknown at start: the first
        # cycle clears what a worker before this one left)
        self._shown_hold = "unknown"
        self._failures = 0
        self.retry_base_s = RETRY_BASE_S
        self.cycles: list[CycleResult] = []
        self._sock: socket.socket | None = None

    # -- triggers ------------------------------------------------------------------------------
    def request(self, reason: str) -> None:
        now = time.monotonic()
        if reason == "local-data":
            self.data.saved(now)
        else:
            self._now_reason = self._now_reason or reason
        self._wake.set()

    async def _show_hold(self) -> None:
        """Data held for the batch window: the status page says when it goes (national
        gets it then, or at once on "Sync now"). Written when it changes, not per save."""
        due = self.data.due_at
        at = iso_z(self.wall() + due - time.monotonic()) \
            if self.data.held and due is not None else ""
        if at[:16] == self._shown_hold[:16]:  # the same minute: the page shows no seconds
            return
        self._shown_hold = at
        await self.store.write(lambda tx: state.set_state(tx, {"next_push": at}))

    def _bind(self) -> None:
        path = self.sock_path
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # a stale socket from a killed worker
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.setblocking(False)
        s.bind(str(path))
        os.chmod(path, 0o660)
        self._sock = s
        asyncio.get_running_loop().add_reader(s.fileno(), self._on_datagram)

    def _on_datagram(self) -> None:
        assert self._sock is not None
        while True:
            try:
                data = self._sock.recv(256)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            reason = data.decode("utf-8", "replace").strip()
            if reason in REASONS:
                self.request(reason)
            else:
                log.warning("ignored sync request with unknown reason %r", reason[:40])

    def _unbind(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None
            with contextlib.suppress(FileNotFoundError):
                self.sock_path.unlink()

    # -- the loop ---------------------------------------------------------------------------------
    def _due(self) -> tuple[str | None, float]:
        """(reason to run now, or None and seconds to wait)."""
        now = time.monotonic()
        if self._now_reason:
            return self._now_reason, 0.0
        waits = [self._next_at - now]
        data_wait = self.data.wait(now)
        if data_wait is not None:
            waits.append(data_wait)
        wait = min(waits)
        if wait <= 0:
            if data_wait is not None and data_wait <= 0:
                return "local-data", 0.0
            return ("retry" if self._failures else "timer"), 0.0
        return None, wait

    async def run(self, stop: asyncio.Event, first_reason: str = "start") -> None:
        self._bind()
        anchors = asyncio.create_task(self._anchor_loop(stop))
        self._now_reason = first_reason
        try:
            while not stop.is_set():
                reason, wait = self._due()
                if reason is None:
                    self._wake.clear()
                    await self._show_hold()  # a request during the write sets _wake again
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(_first(self._wake, stop), timeout=min(wait, 3600))
                    continue
                self._now_reason = None
                self.data.started()  # whatever the reason, the cycle takes what is pending
                await self._show_hold()
                await self._run_cycle(reason)
        finally:
            anchors.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await anchors
            self._unbind()
            await self.engine.close()

    async def _run_cycle(self, reason: str) -> None:
        started = time.monotonic()
        try:
            result = await self.engine.cycle(reason)
        except Exception:  # a bug must not kill the worker: log, back off, go on
            log.exception("sync cycle crashed")
            result = CycleResult(reason=reason, error="internal error (see the sync log)")
        trim()  # the pull's parsed pages are garbage now: back to the kernel with them
        self.cycles.append(result)
        del self.cycles[:-20]
        now = time.monotonic()
        self.data.ran(started, pushed=bool(result.push.chunks or result.tracker_push.chunks))
        if result.ok:
            self._failures = 0
            self._next_at = now + self.interval
            if result.pending:
                # new edits arrived during the cycle: they are signalled, but be sure
                self.data.left_pending(now)
        elif result.push.chunks or result.pulled_values:
            # the link works, just not for long (a flapping modem): come back quickly
            self._failures = 1
            delay = backoff_delay(0, base=QUICK_RETRY_S)
            self._next_at = now + delay
        else:
            self._failures += 1
            delay = backoff_delay(self._failures - 1, base=self.retry_base_s,
                                  cap=max(self.retry_base_s, self.interval))
        if not result.ok:
            self._next_at = now + delay
            log.info("sync failed (%s); retrying in %.0fs", result.error, delay)

    async def _anchor_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await asyncio.sleep(ANCHOR_EVERY_S)
            try:
                await self.engine.tick_anchor()
            except (SyncError, OSError):
                pass
            except Exception:
                log.exception("clock anchor failed")


async def _first(*events: asyncio.Event) -> None:
    waits = [asyncio.create_task(e.wait()) for e in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()
