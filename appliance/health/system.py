"""Host readings through psutil and procfs/sysfs: CPU, load, memory, disk, temperature,
boot id and uptime. Each returns ``None`` when the value cannot be read: a missing
reading must never stop the sample."""

from __future__ import annotations

import glob
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

THERMAL_ROOT = "/sys/class/thermal"
BOOT_ID_PATH = "/proc/sys/kernel/random/boot_id"
UPTIME_PATH = "/proc/uptime"

# Sensor names that measure the SoC itself, preferred over board/peripheral sensors.
_CPU_SENSORS = ("cpu_thermal", "coretemp", "k10temp", "soc_thermal", "cpu-thermal")


class CpuMeter:
    """CPU % of all cores since the previous reading (psutil keeps the last times)."""

    def __init__(self) -> None:
        # psutil's first non-blocking call has no baseline; prime it now
        psutil.cpu_percent(interval=None)

    def read(self, interval: float | None = None) -> float | None:
        try:
            return round(float(psutil.cpu_percent(interval=interval)), 1)
        except (OSError, RuntimeError):
            return None


def read_load1() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def read_memory_pct() -> float | None:
    try:
        return round(float(psutil.virtual_memory().percent), 1)
    except (OSError, RuntimeError):
        return None


def read_disk(path: str | os.PathLike[str]) -> tuple[float | None, int | None]:
    """(percent used, free MiB) of the filesystem holding ``path`` (the data dir)."""
    try:
        du = psutil.disk_usage(os.fspath(path))
    except OSError:
        return None, None
    return round(float(du.percent), 1), int(du.free // (1024 * 1024))


def read_temperature(thermal_root: str | os.PathLike[str] = THERMAL_ROOT,
                     sensors: Callable[[], dict[str, Any]] | None = None) -> float | None:
    """SoC temperature in deg C: psutil's sensors first, else the hottest thermal zone."""
    get = sensors if sensors is not None else getattr(psutil, "sensors_temperatures", None)
    if get is not None:
        try:
            found = get() or {}
        except (OSError, RuntimeError):
            found = {}
        for name in _CPU_SENSORS:
            vals = [t.current for t in found.get(name, []) if _plausible(t.current)]
            if vals:
                return round(max(vals), 1)
        vals = [t.current for entries in found.values() for t in entries if _plausible(t.current)]
        if vals:
            return round(max(vals), 1)
    zones = []
    for f in glob.glob(os.path.join(os.fspath(thermal_root), "thermal_zone*", "temp")):
        try:
            c = int(Path(f).read_text().strip()) / 1000.0  # millidegrees
        except (OSError, ValueError):
            continue
        if _plausible(c):
            zones.append(c)
    return round(max(zones), 1) if zones else None


def _plausible(c: float | None) -> bool:
    # some drivers report 0 or -273 for "no reading"; ignore those
    return c is not None and -40.0 < c < 150.0 and c != 0.0


def read_boot_id(path: str | os.PathLike[str] = BOOT_ID_PATH) -> str | None:
    try:
        return Path(path).read_text().strip() or None
    except OSError:
        return None


def read_uptime(path: str | os.PathLike[str] = UPTIME_PATH) -> int | None:
    try:
        return int(float(Path(path).read_text().split()[0]))
    except (OSError, ValueError, IndexError):
        try:
            return int(time.time() - psutil.boot_time())
        except (OSError, RuntimeError):
            return None
