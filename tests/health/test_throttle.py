"""Throttle bitmask decoding and the three sources of it, on fixture files."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from appliance.health.throttle import ThrottleReader, decode_throttled, parse_vcgencmd


def test_decode_0x50005_undervoltage_and_throttled_now_and_seen() -> None:
    s = decode_throttled(0x50005)
    assert s.mask == 0x50005 == 327685
    assert s.undervoltage_now and s.throttled_now
    assert not s.freq_capped_now and not s.soft_temp_limit_now
    assert s.undervoltage_seen and s.throttled_seen
    assert not s.freq_capped_seen and not s.soft_temp_limit_seen


def test_decode_0x50000_only_history() -> None:
    s = decode_throttled(0x50000)
    assert not any([s.undervoltage_now, s.freq_capped_now, s.throttled_now, s.soft_temp_limit_now])
    assert s.undervoltage_seen and s.throttled_seen
    assert not s.freq_capped_seen and not s.soft_temp_limit_seen


def test_decode_zero_is_all_clear() -> None:
    s = decode_throttled(0)
    assert s.mask == 0
    assert not any([s.undervoltage_now, s.freq_capped_now, s.throttled_now,
                    s.soft_temp_limit_now, s.undervoltage_seen, s.freq_capped_seen,
                    s.throttled_seen, s.soft_temp_limit_seen])


@pytest.mark.parametrize("mask,now,seen", [
    (0x2, "freq_capped_now", None), (0x8, "soft_temp_limit_now", None),
    (0x20000, None, "freq_capped_seen"), (0x80000, None, "soft_temp_limit_seen"),
    (0xF000F, "all", "all"),
])
def test_decode_each_bit(mask: int, now: str | None, seen: str | None) -> None:
    s = decode_throttled(mask)
    flags = {k: v for k, v in s.__dict__.items() if isinstance(v, bool)}
    if now == "all":
        assert all(flags.values())
        return
    on = {k for k, v in flags.items() if v}
    assert on == {x for x in (now, seen) if x}


def test_parse_vcgencmd_output() -> None:
    assert parse_vcgencmd("throttled=0x50005\n") == 0x50005
    assert parse_vcgencmd("throttled=0x0") == 0
    assert parse_vcgencmd("VCHI initialization failed") is None


def _script(path: Path, body: str) -> str:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


def test_reader_prefers_vcgencmd_binary(tmp_path: Path) -> None:
    fw = tmp_path / "get_throttled"
    fw.write_text("0\n")
    vc = _script(tmp_path / "vcgencmd", 'echo "throttled=0x50005"\n')
    s = ThrottleReader(vcgencmd=vc, firmware_path=fw, hwmon_root=tmp_path / "none").read()
    assert (s.source, s.mask, s.undervoltage_now) == ("vcgencmd", 0x50005, True)


def test_reader_falls_back_to_firmware_sysfs(tmp_path: Path) -> None:
    fw = tmp_path / "get_throttled"
    fw.write_text("50000\n")  # hex text without 0x, as the firmware driver writes it
    broken = _script(tmp_path / "vcgencmd", "echo 'VCHI initialization failed' >&2; exit 255\n")
    for vc in (None, str(tmp_path / "missing-vcgencmd"), broken):
        s = ThrottleReader(vcgencmd=vc, firmware_path=fw, hwmon_root=tmp_path).read()
        assert (s.source, s.mask, s.undervoltage_now, s.undervoltage_seen) == \
            ("firmware", 0x50000, False, True)


def _hwmon(root: Path, idx: int, name: str, alarm: str | None) -> None:
    d = root / f"hwmon{idx}"
    d.mkdir(parents=True)
    (d / "name").write_text(name + "\n")
    if alarm is not None:
        (d / "in0_lcrit_alarm").write_text(alarm + "\n")


def test_reader_falls_back_to_hwmon_undervoltage_only(tmp_path: Path) -> None:
    root = tmp_path / "hwmon"
    _hwmon(root, 0, "cpu_thermal", None)
    _hwmon(root, 1, "rpi_volt", "1")
    alarm = root / "hwmon1" / "in0_lcrit_alarm"
    reader = ThrottleReader(vcgencmd=None, firmware_path=tmp_path / "nope", hwmon_root=root)
    s = reader.read()
    assert s.source == "hwmon"
    assert s.undervoltage_now is True and s.undervoltage_seen is True
    assert s.throttled_now is None and s.freq_capped_seen is None  # unknown from this source
    assert s.mask == 0x10001
    alarm.write_text("0\n")
    s = reader.read()
    # the alarm cleared, but it was seen during this run
    assert s.undervoltage_now is False and s.undervoltage_seen is True and s.mask == 0x10000


def test_reader_without_any_source_is_unknown(tmp_path: Path) -> None:
    s = ThrottleReader(vcgencmd=None, firmware_path=tmp_path / "x", hwmon_root=tmp_path).read()
    assert s.source == "none" and s.mask is None and s.undervoltage_now is None
