"""Raspberry Pi throttle and under-voltage state.

The firmware keeps one bitmask (``vcgencmd get_throttled``)::

    bit  0  under-voltage now          bit 16  under-voltage has occurred
    bit  1  ARM frequency capped now   bit 17  frequency capping has occurred
    bit  2  throttled now              bit 18  throttling has occurred
    bit  3  soft temperature limit now bit 19  soft temperature limit has occurred

Sources, best first: the ``vcgencmd`` binary; the firmware's sysfs file (same mask as
hex text, readable without /dev/vchiq); the ``rpi_volt`` hwmon alarm, which only knows
"under-voltage now". "Has occurred" bits are sticky since boot, so a brown-out between
two samples is still seen.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FIRMWARE_PATH = "/sys/devices/platform/soc/soc:firmware/get_throttled"
HWMON_ROOT = "/sys/class/hwmon"

UNDERVOLTAGE_NOW = 1 << 0
FREQ_CAPPED_NOW = 1 << 1
THROTTLED_NOW = 1 << 2
SOFT_TEMP_NOW = 1 << 3
UNDERVOLTAGE_SEEN = 1 << 16
FREQ_CAPPED_SEEN = 1 << 17
THROTTLED_SEEN = 1 << 18
SOFT_TEMP_SEEN = 1 << 19

_VCGENCMD_RE = re.compile(r"throttled=(0x[0-9a-fA-F]+|[0-9]+)")


@dataclass(frozen=True)
class ThrottleState:
    """Decoded throttle state; ``None`` fields are unknown for the source used."""

    mask: int | None
    undervoltage_now: bool | None
    freq_capped_now: bool | None
    throttled_now: bool | None
    soft_temp_limit_now: bool | None
    undervoltage_seen: bool | None
    freq_capped_seen: bool | None
    throttled_seen: bool | None
    soft_temp_limit_seen: bool | None
    source: str = "mask"  # vcgencmd | firmware | hwmon | none | mask (decoded directly)


UNKNOWN = ThrottleState(None, None, None, None, None, None, None, None, None, source="none")


def decode_throttled(mask: int) -> ThrottleState:
    """Decode the firmware's get_throttled bitmask (pure)."""
    return ThrottleState(
        mask=mask,
        undervoltage_now=bool(mask & UNDERVOLTAGE_NOW),
        freq_capped_now=bool(mask & FREQ_CAPPED_NOW),
        throttled_now=bool(mask & THROTTLED_NOW),
        soft_temp_limit_now=bool(mask & SOFT_TEMP_NOW),
        undervoltage_seen=bool(mask & UNDERVOLTAGE_SEEN),
        freq_capped_seen=bool(mask & FREQ_CAPPED_SEEN),
        throttled_seen=bool(mask & THROTTLED_SEEN),
        soft_temp_limit_seen=bool(mask & SOFT_TEMP_SEEN),
    )


def parse_vcgencmd(output: str) -> int | None:
    """``throttled=0x50005`` -> 0x50005; anything else -> None."""
    m = _VCGENCMD_RE.search(output)
    if not m:
        return None
    return int(m.group(1), 0)


def read_firmware_mask(path: str | os.PathLike[str] = FIRMWARE_PATH) -> int | None:
    """The firmware sysfs file holds the same mask as hex text without ``0x``."""
    try:
        text = Path(path).read_text().strip()
        return int(text, 16)
    except (OSError, ValueError):
        return None


def read_hwmon_undervoltage(root: str | os.PathLike[str] = HWMON_ROOT) -> bool | None:
    """``in0_lcrit_alarm`` of the hwmon device named ``rpi_volt``; None if absent."""
    for d in sorted(glob.glob(os.path.join(os.fspath(root), "hwmon*"))):
        try:
            if Path(d, "name").read_text().strip() != "rpi_volt":
                continue
            return Path(d, "in0_lcrit_alarm").read_text().strip() == "1"
        except OSError:
            continue
    return None


class ThrottleReader:
    """Reads the mask from the best available source (all paths injectable for tests)."""

    def __init__(self, *, vcgencmd: str | None = "vcgencmd",
                 firmware_path: str | os.PathLike[str] = FIRMWARE_PATH,
                 hwmon_root: str | os.PathLike[str] = HWMON_ROOT,
                 run: Callable[..., Any] = subprocess.run, timeout_s: float = 3.0) -> None:
        self.vcgencmd = vcgencmd
        self.firmware_path = firmware_path
        self.hwmon_root = hwmon_root
        self._run = run
        self._timeout = timeout_s
        self._hwmon_seen = False  # hwmon has no sticky bit; remember it ourselves

    def _vcgencmd_mask(self) -> int | None:
        if not self.vcgencmd:
            return None
        binary = shutil.which(self.vcgencmd)
        if binary is None:
            return None
        try:
            res = self._run([binary, "get_throttled"], capture_output=True, text=True,
                            timeout=self._timeout, check=False)
        except (OSError, subprocess.SubprocessError):
            return None
        return parse_vcgencmd(res.stdout or "") if res.returncode == 0 else None

    def read(self) -> ThrottleState:
        mask = self._vcgencmd_mask()
        if mask is not None:
            return _with_source(decode_throttled(mask), "vcgencmd")
        mask = read_firmware_mask(self.firmware_path)
        if mask is not None:
            return _with_source(decode_throttled(mask), "firmware")
        alarm = read_hwmon_undervoltage(self.hwmon_root)
        if alarm is None:
            return UNKNOWN
        self._hwmon_seen = self._hwmon_seen or alarm
        # only bits 0 and 16 are known from this source; the rest stay unknown
        synthetic = (UNDERVOLTAGE_NOW if alarm else 0) | (UNDERVOLTAGE_SEEN if self._hwmon_seen else 0)
        return ThrottleState(synthetic, alarm, None, None, None, self._hwmon_seen or None,
                             None, None, None, source="hwmon")


def _with_source(state: ThrottleState, source: str) -> ThrottleState:
    return ThrottleState(**{**state.__dict__, "source": source})
