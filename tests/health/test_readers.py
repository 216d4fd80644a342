"""Each reader on fixture files written into tmp_path, plus the store-backed readers."""

from __future__ import annotations

import functools
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from appliance.health import clock, storage, system
from appliance.health.integrity import QuickCheck
from appliance.health.sample import HostPaths, Sample, Sampler, store_sample
from appliance.health.syncstatus import read_flags, read_sync_status
from appliance.store import Store
from appliance.store.health import latest_sample


@pytest.fixture
def store() -> Iterator[Store]:
    s = Store.memory()
    yield s
    s.close()


# -- temperature ---------------------------------------------------------------------------------
def _zone(root: Path, n: int, millideg: str) -> None:
    (root / f"thermal_zone{n}").mkdir(parents=True)
    (root / f"thermal_zone{n}" / "temp").write_text(millideg + "\n")


def test_temperature_from_thermal_zones_when_psutil_has_none(tmp_path: Path) -> None:
    _zone(tmp_path, 0, "61234")
    _zone(tmp_path, 1, "48000")
    _zone(tmp_path, 2, "garbage")
    assert system.read_temperature(tmp_path, sensors=lambda: {}) == 61.2


def test_temperature_prefers_psutil_cpu_sensor(tmp_path: Path) -> None:
    _zone(tmp_path, 0, "99000")
    t = SimpleNamespace
    sensors = {"nvme": [t(current=70.0)], "cpu_thermal": [t(current=55.5)]}
    assert system.read_temperature(tmp_path, sensors=lambda: sensors) == 55.5


def test_temperature_unknown(tmp_path: Path) -> None:
    assert system.read_temperature(tmp_path, sensors=lambda: {}) is None


# -- boot id, uptime, disk -----------------------------------------------------------------------------
def test_boot_id_and_uptime(tmp_path: Path) -> None:
    (tmp_path / "boot_id").write_text("e8a47f6d-630d-422b-9f16-dcdf0a3fe56b\n")
    (tmp_path / "uptime").write_text("1234.56 4000.00\n")
    assert system.read_boot_id(tmp_path / "boot_id") == "e8a47f6d-630d-422b-9f16-dcdf0a3fe56b"
    assert system.read_boot_id(tmp_path / "missing") is None
    assert system.read_uptime(tmp_path / "uptime") == 1234


def test_disk_usage_of_data_dir(tmp_path: Path) -> None:
    pct, free_mb = system.read_disk(tmp_path)
    assert pct is not None and 0 <= pct <= 100 and free_mb is not None and free_mb >= 0
    assert system.read_disk(tmp_path / "no-such-dir") == (None, None)


# -- SD card: diskstats, mounts, device detection ---------------------------------------------------------
DISKSTATS = """\
   1       0 ram0 0 0 0 0 0 0 0 0 0 0 0
 179       0 mmcblk0 51230 12004 2901234 40120 88123 90211 2528560 901234 0 412000 941354 0 0 0 0
 179       1 mmcblk0p1 310 2040 14242 212 2 0 4 1 0 300 213 0 0 0 0
 179       2 mmcblk0p2 50800 9964 2884648 39880 88121 90211 2528556 901233 0 411700 941113 0 0 0 0
"""


def test_sd_written_from_diskstats(tmp_path: Path) -> None:
    f = tmp_path / "diskstats"
    f.write_text(DISKSTATS)
    assert storage.read_sectors_written("mmcblk0", f) == 2528560
    # sectors are 512 bytes whatever the device: 2528560 * 512 B = 1234.6 MiB
    assert storage.read_written_mb("mmcblk0", f) == pytest.approx(1234.6, abs=0.05)
    assert storage.read_written_mb("sda", f) is None
    assert storage.read_written_mb(None, f) is None


def test_data_device_resolves_partition_to_whole_disk(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    st = os.stat(data)
    sysfs = tmp_path / "sys"
    part = sysfs / "devices" / "platform" / "mmc" / "block" / "mmcblk0" / "mmcblk0p2"
    part.mkdir(parents=True)
    (part / "partition").write_text("2\n")
    links = sysfs / "dev" / "block"
    links.mkdir(parents=True)
    (links / f"{os.major(st.st_dev)}:{os.minor(st.st_dev)}").symlink_to(part)
    assert storage.data_device(data, links) == "mmcblk0"
    (part / "partition").unlink()  # a whole-disk filesystem: the device itself
    assert storage.data_device(data, links) == "mmcblk0p2"
    assert storage.data_device(data, tmp_path / "empty") is None


def test_read_only_remount_detected_from_mounts(tmp_path: Path) -> None:
    data = tmp_path / "data" / "hub"
    data.mkdir(parents=True)
    mounts = tmp_path / "mounts"
    base = ("/dev/mmcblk0p2 / ext4 rw,noatime 0 0\n"
            "tmpfs /run tmpfs rw,nosuid 0 0\n")
    mounts.write_text(base + f"/dev/mmcblk0p3 {tmp_path}/data ext4 rw,noatime,commit=60 0 0\n")
    assert storage.is_read_only(data, mounts) is False
    # ext4 with errors=remount-ro after I/O errors on a failing card
    mounts.write_text(base + f"/dev/mmcblk0p3 {tmp_path}/data ext4 ro,noatime 0 0\n")
    assert storage.is_read_only(data, mounts) is True
    m = storage.mount_of(data, mounts)
    assert m is not None and m.device == "/dev/mmcblk0p3" and m.mountpoint == f"{tmp_path}/data"
    # the root fs read-only (overlay root) does not matter when data is its own rw mount
    mounts.write_text(f"/dev/mmcblk0p2 / ext4 ro 0 0\n/dev/mmcblk0p3 {tmp_path}/data ext4 rw 0 0\n")
    assert storage.is_read_only(data, mounts) is False
    assert storage.is_read_only(data, tmp_path / "missing") is None


def test_mount_points_with_escaped_spaces(tmp_path: Path) -> None:
    data = tmp_path / "my data"
    data.mkdir()
    mounts = tmp_path / "mounts"
    escaped = str(data).replace(" ", "\\040")
    mounts.write_text(f"/dev/sda1 / ext4 rw 0 0\n/dev/sdb1 {escaped} vfat ro 0 0\n")
    assert storage.is_read_only(data, mounts) is True


# -- NTP ----------------------------------------------------------------------------------------------------
def _script(path: Path, body: str) -> str:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


def test_ntp_from_timedatectl_when_nothing_cheaper_knows(tmp_path: Path) -> None:
    yes = _script(tmp_path / "tdc-yes", 'echo yes\n')
    no = _script(tmp_path / "tdc-no", 'echo no\n')
    flag = tmp_path / "timesync" / "synchronized"
    assert clock.ClockReader(timedatectl=yes, timesync_flag=flag, adjtimex=None).read() is True
    assert clock.ClockReader(timedatectl=no, timesync_flag=flag, adjtimex=None).read() is False


def test_ntp_asks_the_kernel_first_then_timesyncd_then_timedatectl(tmp_path: Path) -> None:
    """timedatectl D-Bus-activates timedated (journal lines on the SD card each time): it
    is run only when neither the kernel nor timesyncd's flag can say."""
    calls = tmp_path / "calls"
    counting = _script(tmp_path / "tdc", f'echo x >>"{calls}"; echo no\n')
    flag = tmp_path / "timesync" / "synchronized"
    r = clock.ClockReader(timedatectl=counting, timesync_flag=flag, adjtimex=lambda: True)
    assert r.read() is True and not calls.exists()
    r = clock.ClockReader(timedatectl=counting, timesync_flag=flag, adjtimex=lambda: None)
    flag.parent.mkdir()
    assert r.read() is False and not calls.exists()  # timesyncd runs, not yet synchronised
    flag.write_text("")
    assert r.read() is True and not calls.exists()
    flag.unlink()
    flag.parent.rmdir()
    assert r.read() is False and calls.read_text() == "x\n"  # nothing else knew
    failing = _script(tmp_path / "tdc-bad", 'echo "System has not been booted with systemd" >&2; exit 1\n')
    assert clock.ClockReader(timedatectl=failing, timesync_flag=flag,
                             adjtimex=lambda: None).read() is None  # nothing knows


def test_adjtimex_reads_the_kernel_as_timedated_does() -> None:
    """This machine's kernel: a clock within 16 s of maximum error counts as synchronised,
    as systemd-timedated's NTPSynchronized."""
    tx = clock._Timex()
    import ctypes
    assert ctypes.CDLL(None).adjtimex(ctypes.byref(tx)) >= 0
    assert clock.adjtimex_synchronized() is (tx.maxerror < clock.MAX_ERROR_US)
    assert tx.maxerror >= 0  # the field read is the one the kernel fills (µs, never negative)


# -- sync status from the store ----------------------------------------------------------------------------
def _seed_sync(store: Store, *, last_success: str | None, link: str = "down") -> None:
    def fill(tx: object) -> None:
        ex = tx.execute  # type: ignore[attr-defined]
        for i, st in enumerate(["pending", "pending", "synced", "rejected", "conflict"]):
            ex("INSERT INTO datavalue(de, pe, ou, coc, aoc, value, created, last_updated, "
               "sync_state, hlc, origin) VALUES (?, '202611', 'ou', 'c', 'a', '1', 'x', 'x', ?, 1, "
               "'local')", (f"de{i}", st))
        ex("INSERT INTO complete_registration(ds, pe, ou, aoc, date, last_updated, sync_state, "
           "hlc, origin) VALUES ('ds', '202611', 'ou', 'a', 'x', 'x', 'pending', 1, 'local')")
        for resolved in (None, None, "2026-11-01T00:00:00Z"):
            ex("INSERT INTO sync_conflict(entity, key, winner, policy, reason, detected_at, "
               "resolved_at) VALUES ('datavalue', 'k', 'hub', 'latest-wins', 'r', 'x', ?)",
               (resolved,))
        kv = {"link": link, "clock_offset_s": "0.8", "syncing": "0", "last_error": ""}
        if last_success:
            kv["last_success"] = last_success
        for k, v in kv.items():
            ex("INSERT INTO sync_state(key, value) VALUES (?, ?)", (k, v))
    store.write_sync(fill)


def test_sync_status_counts_backlog_conflicts_and_lag(store: Store) -> None:
    _seed_sync(store, last_success="2026-11-24T08:45:00Z", link="up")
    now = 1795510800.0  # 2026-11-24T09:00:00Z
    s = store.read_sync(lambda c: read_sync_status(c, now))
    assert (s.pending, s.conflicts, s.rejected) == (3, 2, 1)
    assert s.last_success == "2026-11-24T08:45:00Z" and s.lag_s == 900
    assert s.link_up is True and s.clock_offset_s == 0.8 and s.syncing is False
    assert s.to_sample() == {"pending": 3, "conflicts": 2, "rejected": 1,
                             "last_success": "2026-11-24T08:45:00Z", "lag_s": 900}
    assert store.read_sync(read_flags) == (False, True)


def test_sync_status_never_synced_and_dhis2_style_timestamps(store: Store) -> None:
    s = store.read_sync(read_sync_status)
    assert s.pending == 0 and s.last_success is None and s.lag_s is None and s.link_up is None
    store.write_sync(lambda tx: tx.execute(
        "INSERT INTO sync_state(key, value) VALUES ('last_success', '2026-11-24T08:45:00.123')"))
    s = store.read_sync(lambda c: read_sync_status(c, 1795510800.0))
    assert s.lag_s == 899 and s.last_success == "2026-11-24T08:45:00Z"


# -- quick_check ------------------------------------------------------------------------------------------------
def test_quick_check_runs_when_due_and_keeps_the_result(store: Store) -> None:
    now = [1_800_000_000.0]
    qc = QuickCheck(store, 3600, wall=lambda: now[0])
    assert qc.due()
    assert qc.integrity_ok() is True
    assert not qc.due()
    now[0] += 3601
    assert qc.due()
    qc.integrity_ok()
    # the result survives a restart (kept in the store), so a restart does not re-run it
    qc2 = QuickCheck(store, 3600, wall=lambda: now[0])
    assert qc2.last is not None and qc2.last.ok and not qc2.due()
    now[0] -= 86400  # clock set back after a power cut: check again rather than never
    assert qc2.due()


def test_quick_check_reports_a_corrupt_database(tmp_path: Path) -> None:
    path = tmp_path / "hub.db"
    with Store(path) as s:
        s.write_sync(lambda tx: tx.executemany(
            "INSERT INTO audit(hlc, at, via, entity, key, audit_type, new_value) "
            "VALUES (?, 'x', 'api', 'datavalue', ?, 'CREATE', ?)",
            [(i, f"k{i}", "v" * 200) for i in range(3000)]))
    # closing the last connection checkpointed the WAL into the main file
    size = path.stat().st_size
    with open(path, "r+b") as f:  # scribble over pages near the end (the audit table)
        f.seek(size - 40 * 4096)
        f.write(os.urandom(8 * 4096))
    with Store(path) as s:
        res = QuickCheck(s, 3600).run()
        assert res.ok is False and res.detail


# -- samples --------------------------------------------------------------------------------------------------------
def test_sample_on_fixture_host(tmp_path: Path, store: Store) -> None:
    host = tmp_path / "host"
    _zone(host / "thermal", 0, "83500")
    (host / "diskstats").write_text(DISKSTATS)
    (host / "mounts").write_text("/dev/mmcblk0p2 / ext4 ro 0 0\n")
    (host / "get_throttled").write_text("50005\n")
    paths = HostPaths(diskstats=str(host / "diskstats"), mounts=str(host / "mounts"),
                      thermal_root=str(host / "thermal"), firmware_throttled=str(host / "get_throttled"),
                      hwmon_root=str(host), vcgencmd=None, timedatectl=None,
                      timesync_flag=str(host / "ts" / "synchronized"))
    (host / "ts").mkdir()
    _seed_sync(store, last_success="2026-11-24T08:45:00Z", link="up")
    sampler = Sampler(store, tmp_path, paths=paths, disk_device="mmcblk0",
                      modem_present=lambda: True, sensors=lambda: {})
    s = sampler.take().to_dict()
    assert s["temp_c"] == 83.5 and s["throttled"] == 0x50005
    assert s["undervoltage_now"] is True and s["undervoltage_seen"] is True
    assert s["throttled_now"] is True and s["freq_capped_seen"] is False
    assert s["sd_written_mb"] == pytest.approx(1234.6, abs=0.05)
    assert s["ro_remount"] is True and s["ntp_synced"] is False and s["integrity_ok"] is True
    assert s["modem_present"] is True and s["link_up"] is True and s["clock_offset_s"] == 0.8
    assert s["sync"]["pending"] == 3 and s["power_cuts"] == 0
    assert s["at"].endswith("Z") and s["disk_pct"] is not None
    assert set(s) >= {"cpu_pct", "load1", "mem_pct", "disk_free_mb"}


def test_samples_are_stored_with_bounded_retention(store: Store) -> None:
    for i in range(10):
        smp = Sample(at=f"2026-11-24T09:00:{i:02d}Z", cpu_pct=float(i))
        store.write_sync(functools.partial(store_sample, sample=smp, retention_days=14, max_rows=4))
    rows = store.read_sync(lambda c: c.execute("SELECT count(*) FROM health_sample").fetchone()[0])
    assert rows == 4
    latest = store.read_sync(latest_sample)
    assert latest is not None and latest["cpu_pct"] == 9.0


def test_retention_by_age_uses_the_monotonic_store_clock() -> None:
    t = [1_800_000_000.0]
    with Store.memory(wall=lambda: t[0]) as store:
        store.write_sync(lambda tx: store_sample(tx, Sample(at="old"), retention_days=1, max_rows=1000))
        t[0] += 2 * 86400
        store.write_sync(lambda tx: store_sample(tx, Sample(at="new"), retention_days=1, max_rows=1000))
        ats = store.read_sync(lambda c: [r[0] for r in c.execute("SELECT at FROM health_sample")])
        assert ats == ["new"]
        t[0] -= 30 * 86400  # the clock jumps back a month after a power cut: nothing resurrects
        store.write_sync(lambda tx: store_sample(tx, Sample(at="after-cut"), retention_days=1, max_rows=1000))
        ats = store.read_sync(lambda c: [r[0] for r in c.execute("SELECT at FROM health_sample")])
        assert ats == ["new", "after-cut"]


def test_real_host_sample_does_not_crash(tmp_path: Path, store: Store) -> None:
    t0 = time.monotonic()
    s = Sampler(store, tmp_path).take()
    assert s.at.endswith("Z") and time.monotonic() - t0 < 10
