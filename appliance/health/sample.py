"""One health sample: every reading the agent takes, stored in ``health_sample`` and
sent as-is in heartbeats. Any value is ``None`` when it could not be read."""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..dhis2.timefmt import iso_z
from ..store import Store
from ..store import health as hstore
from ..store.db import Tx
from . import clock, state, storage, system, throttle
from .integrity import QuickCheck
from .syncstatus import read_sync_status


@dataclass(frozen=True)
class HostPaths:
    """Every procfs/sysfs path and tool the readers use; tests point them at fixtures."""

    diskstats: str = storage.DISKSTATS_PATH
    mounts: str = storage.MOUNTS_PATH
    sys_dev_block: str = storage.SYS_DEV_BLOCK
    thermal_root: str = system.THERMAL_ROOT
    firmware_throttled: str = throttle.FIRMWARE_PATH
    hwmon_root: str = throttle.HWMON_ROOT
    boot_id: str = system.BOOT_ID_PATH
    uptime: str = system.UPTIME_PATH
    timesync_flag: str = clock.TIMESYNC_FLAG
    vcgencmd: str | None = "vcgencmd"
    timedatectl: str | None = "timedatectl"


@dataclass
class Sample:
    at: str
    cpu_pct: float | None = None
    load1: float | None = None
    mem_pct: float | None = None
    disk_pct: float | None = None
    disk_free_mb: int | None = None
    temp_c: float | None = None
    throttled: int | None = None
    undervoltage_now: bool | None = None
    undervoltage_seen: bool | None = None
    throttled_now: bool | None = None
    freq_capped_seen: bool | None = None
    sd_written_mb: float | None = None
    ro_remount: bool | None = None
    power_cuts: int | None = None
    ntp_synced: bool | None = None
    clock_offset_s: float | None = None
    integrity_ok: bool | None = None
    modem_present: bool | None = None
    link_up: bool | None = None
    sync: dict[str, Any] = field(default_factory=lambda: {
        "pending": None, "conflicts": None, "rejected": None, "last_success": None,
        "lag_s": None})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Sample:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**known)


class Sampler:
    """Takes samples. Blocking (subprocesses, sysfs, SQLite): call it from a thread."""

    def __init__(self, store: Store, data_dir: str | os.PathLike[str], *,
                 paths: HostPaths | None = None, quick_check_every_s: float = 21600,
                 disk_device: str | None = None,
                 modem_present: Callable[[], bool | None] = lambda: None,
                 sensors: Callable[[], dict[str, Any]] | None = None,
                 wall: Callable[[], float] = time.time) -> None:
        self.store = store
        self.data_dir = Path(data_dir)
        self.paths = paths or HostPaths()
        p = self.paths
        # auto-detect the SD card (mmcblk0) from the data dir unless configured
        self.disk_device = disk_device or storage.data_device(self.data_dir, p.sys_dev_block)
        self.modem_present = modem_present
        self.sensors = sensors
        self.wall = wall
        self.cpu = system.CpuMeter()
        self.throttle = throttle.ThrottleReader(vcgencmd=p.vcgencmd,
                                                firmware_path=p.firmware_throttled,
                                                hwmon_root=p.hwmon_root)
        self.clock = clock.ClockReader(timedatectl=p.timedatectl, timesync_flag=p.timesync_flag)
        self.quick_check = QuickCheck(store, quick_check_every_s, wall=wall)
        self.force_quick_check = False  # set after a power cut: check once at start

    def take(self, cpu_interval: float | None = None) -> Sample:
        p = self.paths
        now = self.wall()
        disk_pct, disk_free = system.read_disk(self.data_dir)
        thr = self.throttle.read()
        integrity = self.quick_check.integrity_ok(force=self.force_quick_check)
        self.force_quick_check = False

        def db(conn: sqlite3.Connection) -> tuple[Any, int]:
            return read_sync_status(conn, now), state.get_int(conn, "power_cuts")

        sync, power_cuts = self.store.read_sync(db)
        return Sample(
            at=iso_z(now),
            cpu_pct=self.cpu.read(cpu_interval),
            load1=system.read_load1(),
            mem_pct=system.read_memory_pct(),
            disk_pct=disk_pct,
            disk_free_mb=disk_free,
            temp_c=system.read_temperature(p.thermal_root, self.sensors),
            throttled=thr.mask,
            undervoltage_now=thr.undervoltage_now,
            undervoltage_seen=thr.undervoltage_seen,
            throttled_now=thr.throttled_now,
            freq_capped_seen=thr.freq_capped_seen,
            sd_written_mb=storage.read_written_mb(self.disk_device, p.diskstats),
            ro_remount=storage.is_read_only(self.data_dir, p.mounts),
            power_cuts=power_cuts,
            ntp_synced=self.clock.read(),
            clock_offset_s=sync.clock_offset_s,
            integrity_ok=integrity,
            modem_present=self.modem_present(),
            link_up=sync.link_up,
            sync=sync.to_sample(),
        )


def store_sample(tx: Tx, sample: Sample, *, retention_days: float, max_rows: int) -> int:
    """Insert a sample and apply retention. Returns the row id."""
    return hstore.add_sample(tx, sample.at, sample.to_dict(), retention_days=retention_days,
                             max_rows=max_rows)


def max_rows_for(retention_days: float, interval_s: float) -> int:
    return int(retention_days * 86400 / max(interval_s, 1.0)) + 100
