"""Is the system clock NTP-synchronised? The Pi has no RTC: after a power cut the
clock is wrong until NTP answers, which matters for sync ordering and the fleet view.

Sources, best first: the kernel's own view via adjtimex(2) (a read-only call), judged
as systemd-timedated judges ``NTPSynchronized``: a maximum error under 16 s; the flag file
systemd-timesyncd creates once synchronised; ``timedatectl show -p NTPSynchronized``.
The kernel is asked first because it costs nothing: ``timedatectl`` D-Bus-activates
systemd-timedated for every question, which on the image wrote five journal lines a
minute (about half the SD card's idle writes went to the journal). ``None`` = unknown.
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
MAX_ERROR_US = 16_000_000  # systemd's ntp_synced(): below this, the clock counts as synced
# A failing timedatectl (no systemd, no D-Bus yet) is retried this rarely, so a
# fast sampling loop does not spawn a doomed process every time.
RETRY_FAILED_S = 300.0


class _Timex(ctypes.Structure):
    """The head of struct timex (linux/timex.h); C's own alignment, 32- or 64-bit."""

    _fields_ = [("modes", ctypes.c_uint), ("offset", ctypes.c_long),
                ("freq", ctypes.c_long), ("maxerror", ctypes.c_long),
                ("esterror", ctypes.c_long), ("status", ctypes.c_int),
                ("rest", ctypes.c_char * 256)]  # the remaining fields, and then some


def adjtimex_synchronized() -> bool | None:
    """Kernel clock state via adjtimex with modes=0 (reads only; needs no privilege)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)  # the process's own libc; no ldconfig run
        tx = _Timex()
        rc = libc.adjtimex(ctypes.byref(tx))
    except (OSError, AttributeError):
        return None
    if rc < 0:
        return None
    return bool(tx.maxerror < MAX_ERROR_US)


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
        value = self.adjtimex() if self.adjtimex is not None else None
        if value is not None:
            return value
        if self.timesync_flag.exists():
            return True
        if self.timesync_flag.parent.is_dir():
            return False  # timesyncd runs but has not synchronised yet
        return self._from_timedatectl()
