"""Is the system clock NTP-synchronised? The Pi has no RTC: after a power cut the
clock is wrong until NTP answers, which matters for sync ordering and the fleet view.

Sources, best first: ``timedatectl show -p NTPSynchronized --value``; the flag file
systemd-timesyncd creates once synchronised; the kernel's own view via adjtimex(2)
(read-only call; TIME_ERROR means unsynchronised). ``None`` = unknown.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

TIMESYNC_FLAG = "/run/systemd/timesync/synchronized"
TIME_ERROR = 5
# A failing timedatectl (no systemd, no D-Bus yet) is retried this rarely, so a
# fast sampling loop does not spawn a doomed process every time.
RETRY_FAILED_S = 300.0


def adjtimex_synchronized() -> bool | None:
    """Kernel clock state via adjtimex with modes=0 (needs no privilege)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)  # the process's own libc; no ldconfig run
        buf = ctypes.create_string_buffer(512)  # larger than struct timex; modes=0 reads only
        rc = libc.adjtimex(buf)
    except (OSError, AttributeError):
        return None
    if rc < 0:
        return None
    return rc != TIME_ERROR


class ClockReader:
    def __init__(self, *, timedatectl: str | None = "timedatectl",
                 timesync_flag: str | os.PathLike[str] = TIMESYNC_FLAG,
                 adjtimex: Callable[[], bool | None] | None = adjtimex_synchronized,
                 run: Callable[..., Any] = subprocess.run,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.timedatectl = timedatectl
        self.timesync_flag = Path(timesync_flag)
        self.adjtimex = adjtimex
        self._run = run
        self._monotonic = monotonic
        self._timedatectl_failed_at: float | None = None

    def _from_timedatectl(self) -> bool | None:
        if not self.timedatectl:
            return None
        if (self._timedatectl_failed_at is not None
                and self._monotonic() - self._timedatectl_failed_at < RETRY_FAILED_S):
            return None
        binary = shutil.which(self.timedatectl)
        if binary is None:
            return None
        try:
            res = self._run([binary, "show", "-p", "NTPSynchronized", "--value"],
                            capture_output=True, text=True, timeout=5, check=False)
            out = (res.stdout or "").strip().lower()
        except (OSError, subprocess.SubprocessError):
            res, out = None, ""
        if res is not None and res.returncode == 0 and out in ("yes", "no"):
            self._timedatectl_failed_at = None
            return out == "yes"
        self._timedatectl_failed_at = self._monotonic()
        return None

    def read(self) -> bool | None:
        value = self._from_timedatectl()
        if value is not None:
            return value
        if self.timesync_flag.exists():
            return True
        if self.timesync_flag.parent.is_dir():
            return False  # timesyncd runs but has not synchronised yet
        return self.adjtimex() if self.adjtimex is not None else None
