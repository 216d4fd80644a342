"""LED state per situation, the patterns on (mock) GPIO pins, and the button."""

from __future__ import annotations

import shutil
import socket
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory

from appliance.health.agent import HealthAgent, Settings
from appliance.health.leds import (
    FAST_BLINK,
    OFF,
    ON,
    SLOW_BLINK,
    Fault,
    LedContext,
    LedDriver,
    Status,
    fault_code,
    led_state,
)
from appliance.health.sample import Sample
from appliance.store import Store

GREEN, RED, BUTTON = 17, 27, 22


def healthy(**over: Any) -> dict[str, Any]:
    s = Sample(at="2026-11-24T09:00:00Z", disk_pct=37.2, temp_c=61.2, undervoltage_now=False,
               ro_remount=False, integrity_ok=True, ntp_synced=True, clock_offset_s=0.8,
               link_up=True, sync={"pending": 0, "conflicts": 0, "rejected": 0,
                                   "last_success": None, "lag_s": 0}).to_dict()
    for k, v in over.items():
        if k == "pending":
            s["sync"]["pending"] = v
        else:
            s[k] = v
    return s


# -- which state ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("sample,ctx,status,green", [
    (None, LedContext(), Status.BOOTING, ON),
    (healthy(), LedContext(booting=True), Status.BOOTING, ON),
    (healthy(), LedContext(hub_serving=False), Status.BOOTING, ON),
    (healthy(), LedContext(), Status.SYNCED, ON),
    (healthy(), LedContext(hub_serving=True, syncing=False, link_up=True), Status.SYNCED, ON),
    (healthy(link_up=False, pending=120), LedContext(), Status.WAITING, SLOW_BLINK),
    (healthy(link_up=False, pending=0), LedContext(), Status.WAITING, SLOW_BLINK),
    (healthy(pending=5), LedContext(), Status.WAITING, SLOW_BLINK),
    (healthy(link_up=None), LedContext(), Status.WAITING, SLOW_BLINK),
    # the LED loop reads link/syncing more often than samples are taken: context wins
    (healthy(), LedContext(link_up=False), Status.WAITING, SLOW_BLINK),
    (healthy(pending=5), LedContext(syncing=True), Status.SYNCING, FAST_BLINK),
    (healthy(), LedContext(shutting_down=True), Status.SHUTDOWN, OFF),
])
def test_status_state(sample: Any, ctx: LedContext, status: Status, green: Any) -> None:
    st = led_state(sample, ctx)
    assert st.status == status and st.green == green
    assert st.red == (ON if status == Status.BOOTING else OFF)
    assert st.faults == ()


@pytest.mark.parametrize("over,fault", [
    ({"integrity_ok": False}, Fault.INTEGRITY),
    ({"ro_remount": True}, Fault.READ_ONLY),
    ({"disk_pct": 90.5}, Fault.DISK_FULL),
    ({"undervoltage_now": True}, Fault.UNDERVOLTAGE),
    ({"temp_c": 80.5}, Fault.OVERHEAT),
    ({"ntp_synced": False, "clock_offset_s": None}, Fault.CLOCK),
    ({"clock_offset_s": -900.0}, Fault.CLOCK),
])
def test_each_fault_blinks_its_code(over: dict[str, Any], fault: Fault) -> None:
    st = led_state(healthy(**over), LedContext())
    assert st.faults == (fault,) and st.code == int(fault)
    assert st.red == fault_code(int(fault)) and st.red.count == int(fault)
    assert st.status == Status.SYNCED and st.green == ON  # green still says "serving, synced"


@pytest.mark.parametrize("over", [
    {"disk_pct": 90.0}, {"temp_c": 80.0}, {"undervoltage_seen": True, "throttled": 0x50000},
    {"ntp_synced": False, "clock_offset_s": 2.0},  # no NTP, but national says we are right
    {"ntp_synced": None, "clock_offset_s": None}, {"integrity_ok": None}, {"temp_c": None},
])
def test_not_faults(over: dict[str, Any]) -> None:
    assert led_state(healthy(**over), LedContext()).faults == ()


def test_most_serious_fault_is_blinked_all_are_listed() -> None:
    st = led_state(healthy(temp_c=85.0, disk_pct=97.0, undervoltage_now=True),
                   LedContext(link_up=False))
    assert st.faults == (Fault.DISK_FULL, Fault.UNDERVOLTAGE, Fault.OVERHEAT)
    assert st.code == 3 and st.status == Status.WAITING
    d = st.to_dict()
    assert d["code"] == 3 and [f["name"] for f in d["faults"]] == ["disk_full", "undervoltage",
                                                                    "overheat"]


def test_clock_never_set() -> None:
    st = led_state(healthy(ntp_synced=None, clock_offset_s=None), LedContext(wall=86400.0))
    assert st.faults == (Fault.CLOCK,)


def test_sample_object_accepted() -> None:
    assert led_state(Sample.from_dict(healthy()), LedContext()).status == Status.SYNCED


# -- on the pins ---------------------------------------------------------------------------------------------
@pytest.fixture
def mock_pins() -> Iterator[MockFactory]:
    old = Device.pin_factory
    Device.pin_factory = MockFactory()
    yield Device.pin_factory
    Device.pin_factory.reset()
    Device.pin_factory = old


def _durations(pin: Any) -> list[tuple[bool, float]]:
    """(level, seconds held) per change; MockPin records each state with the time since
    the previous change, so shift by one."""
    st = pin.states
    return [(bool(a.state), b.timestamp) for a, b in zip(st, st[1:], strict=False)]


SCALE = 0.05  # run patterns 20x faster than real


def _watch(pin: Any, seconds: float) -> list[tuple[bool, float]]:
    pin.clear_states()
    time.sleep(seconds)
    return _durations(pin)[1:]  # the first interval may be partial


def test_driver_steady_states(mock_pins: MockFactory) -> None:
    d = LedDriver(GREEN, RED, time_scale=SCALE)
    g, r = mock_pins.pin(GREEN), mock_pins.pin(RED)
    d.apply(led_state(None, LedContext()))  # booting: lamp test
    assert (g.state, r.state) == (True, True)
    d.apply(led_state(healthy(), LedContext()))
    assert (g.state, r.state) == (True, False)
    d.apply(led_state(healthy(), LedContext(shutting_down=True)))
    assert (g.state, r.state) == (False, False)
    d.close()


@pytest.mark.parametrize("ctx,on_s,off_s", [
    (LedContext(link_up=False), 1.0, 1.0),   # offline / data waiting: slow blink
    (LedContext(syncing=True), 0.15, 0.15),  # syncing: fast blink
])
def test_driver_green_blinks(mock_pins: MockFactory, ctx: LedContext, on_s: float, off_s: float) -> None:
    d = LedDriver(GREEN, RED, time_scale=SCALE)
    d.apply(led_state(healthy(), ctx))
    seen = _watch(mock_pins.pin(GREEN), 12 * (on_s + off_s) * SCALE)
    d.close()
    ons = [t for lvl, t in seen if lvl]
    offs = [t for lvl, t in seen if not lvl]
    assert len(ons) >= 3 and len(offs) >= 3
    # medians: robust to one late wake-up of the blink thread on a loaded machine
    assert statistics.median(ons) == pytest.approx(on_s * SCALE, abs=0.01)
    assert statistics.median(offs) == pytest.approx(off_s * SCALE, abs=0.01)
    assert mock_pins.pin(RED).state is False


@pytest.mark.parametrize("over,code", [({"disk_pct": 95.0}, 3), ({"undervoltage_now": True}, 4)])
def test_driver_red_blinks_the_fault_code(mock_pins: MockFactory, over: dict[str, Any],
                                          code: int) -> None:
    d = LedDriver(GREEN, RED, time_scale=SCALE)
    d.apply(led_state(healthy(**over), LedContext()))
    cycle = (code * 0.6 + 1.8) * SCALE
    seen = _watch(mock_pins.pin(RED), 3.5 * cycle)
    d.close()
    # count the blinks between the long pauses
    groups, n = [], 0
    for lvl, t in seen:
        if lvl:
            n += 1
        elif t > 1.0 * SCALE:  # the pause
            groups.append(n)
            n = 0
    assert groups[1:] and all(g == code for g in groups[1:]), groups
    assert mock_pins.pin(GREEN).state is True


def test_driver_changing_state_stops_the_old_pattern(mock_pins: MockFactory) -> None:
    d = LedDriver(GREEN, RED, time_scale=SCALE)
    d.apply(led_state(healthy(disk_pct=95.0), LedContext(syncing=True)))
    time.sleep(0.1)
    d.apply(led_state(healthy(), LedContext()))
    g, r = mock_pins.pin(GREEN), mock_pins.pin(RED)
    assert _watch(g, 0.2) == [] and g.state is True
    assert _watch(r, 0.2) == [] and r.state is False
    d.close()


# -- the button, through the agent -------------------------------------------------------------------------
@pytest.fixture
def sync_dir() -> Iterator[tuple[Path, socket.socket]]:
    d = Path(tempfile.mkdtemp(prefix="hb"))
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(str(d / "sync.sock"))
    s.settimeout(2)
    yield d, s
    s.close()
    shutil.rmtree(d, ignore_errors=True)


def test_button_press_syncs_hold_shuts_down(mock_pins: MockFactory,
                                            sync_dir: tuple[Path, socket.socket]) -> None:
    data_dir, sock = sync_dir
    shutdowns: list[float] = []
    with Store.memory() as store:
        agent = HealthAgent(Settings(data_dir=data_dir, hold_s=0.3), store, udev_source=None,
                            shutdown=lambda: shutdowns.append(time.monotonic()))
        agent.start()
        btn, g, r = mock_pins.pin(BUTTON), mock_pins.pin(GREEN), mock_pins.pin(RED)
        assert (g.state, r.state) == (True, True)  # booting

        btn.drive_low()   # short press
        time.sleep(0.1)
        btn.drive_high()
        assert sock.recv(100) == b"button"
        assert shutdowns == []

        time.sleep(0.1)
        t0 = time.monotonic()
        btn.drive_low()   # hold
        deadline = time.monotonic() + 3
        while not shutdowns and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(shutdowns) == 1 and shutdowns[0] - t0 >= 0.29
        assert (g.state, r.state) == (False, False)  # dark: shutting down
        btn.drive_high()
        time.sleep(0.1)
        sock.setblocking(False)
        with pytest.raises(BlockingIOError):  # releasing after a hold is not a press
            sock.recv(100)
        agent.stop()


def test_held_button_runs_the_configured_shutdown(mock_pins: MockFactory, tmp_path: Path,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    """Held, the button runs ``[gpio] poweroff_command`` (in the image: a file that a root
    path unit turns into ``systemctl poweroff``, which logind refuses user hub); a command
    that fails is logged, and the agent goes on."""
    from appliance import config as config_mod
    asked = tmp_path / "run" / "poweroff"
    cfg = config_mod.load(None, tmp_path)
    assert Settings.from_config(cfg).poweroff_command == ("touch", "/run/upazila-hub/poweroff")
    cfg.set("gpio", "poweroff_command", ["touch", str(asked)])
    cfg.set("gpio", "hold_s", 0.2)
    with Store.memory() as store:
        agent = HealthAgent(Settings.from_config(cfg), store, udev_source=None)
        agent.start()
        try:
            btn = mock_pins.pin(BUTTON)
            btn.drive_low()
            deadline = time.monotonic() + 10
            while "the button's shutdown failed" not in caplog.text and \
                    time.monotonic() < deadline:
                time.sleep(0.05)
            assert "the button's shutdown failed" in caplog.text  # no folder to touch in
            asked.parent.mkdir()
            btn.drive_high()
            time.sleep(0.1)
            btn.drive_low()
            deadline = time.monotonic() + 10
            while not asked.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert asked.exists()
        finally:
            agent.stop()
