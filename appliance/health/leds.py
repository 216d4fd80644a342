"""The two front LEDs: what each state looks like, and the driver that shows it.

Green ("status", ``[gpio] led_status``) says whether the hub serves the LAN and
whether its data has reached national. Red ("fault", ``[gpio] led_fault``) is off
unless a person must act; it then blink-codes the most serious fault.

====================================  ====================================  =====================
State                                 Green (status)                        Red (fault)
====================================  ====================================  =====================
booting / LAN server not answering    on                                    on  (lamp test)
serving, link up, all synced          on                                    off
serving, offline or data waiting      slow blink: 1 s on, 1 s off           off
syncing now                           fast blink: 0.15 s on, 0.15 s off     off
fault needing a person                (green keeps showing the above)       N blinks, pause
shutting down (button held)           off                                   off
====================================  ====================================  =====================

Fault codes: red blinks N times (0.3 s on, 0.3 s off), stays off 1.8 s, repeats. Only the
most serious fault is shown; ``/api/hub/health`` lists all of them.

1. database integrity check failed (``PRAGMA quick_check``)
2. data partition remounted read-only (the SD card is failing)
3. data disk more than 90 % full
4. under-voltage now (weak power supply or cable)
5. overheating: more than 80 deg C
6. clock not set: NTP not synchronised and no good offset from national, or the clock is
   more than 5 minutes off national

``led_state`` is pure; ``LedDriver`` applies a state to two gpiozero ``LED``s.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Any

from ..i18n import N_, Tr, translator

log = logging.getLogger(__name__)

DISK_FULL_PCT = 90.0
OVERHEAT_C = 80.0
CLOCK_OFFSET_MAX_S = 300.0
# a wall clock before this is certainly unset (Pi without RTC booting with no saved time)
CLOCK_SANE_AFTER = 1_735_689_600  # 2025-01-01T00:00:00Z


class Status(StrEnum):
    BOOTING = "booting"
    SYNCED = "synced"        # serving, link up, all synced
    WAITING = "waiting"      # serving, offline or data waiting to go up
    SYNCING = "syncing"
    SHUTDOWN = "shutdown"


class Fault(IntEnum):
    INTEGRITY = 1
    READ_ONLY = 2
    DISK_FULL = 3
    UNDERVOLTAGE = 4
    OVERHEAT = 5
    CLOCK = 6


# What each fault means, as the status page and the fleet say it (marked for translation;
# FAULT_TEXT is the English the health API and heartbeats carry)
FAULT_WORDS = {
    Fault.INTEGRITY: N_("database integrity check failed"),
    Fault.READ_ONLY: N_("data partition is read-only (SD card failing)"),
    Fault.DISK_FULL: N_("data disk more than {pct}% full"),
    Fault.UNDERVOLTAGE: N_("under-voltage now (power supply)"),
    Fault.OVERHEAT: N_("overheating (more than {celsius} C)"),
    Fault.CLOCK: N_("clock not set or not synchronised"),
}


def fault_text(f: Fault, tr: Tr | None = None) -> str:
    return (tr or translator("en"))(FAULT_WORDS[f], pct=int(DISK_FULL_PCT),
                                    celsius=int(OVERHEAT_C))


FAULT_TEXT = {f: fault_text(f) for f in Fault}


@dataclass(frozen=True)
class Pattern:
    """``on``/``off``; ``blink`` forever; ``code``: ``count`` blinks then ``pause_s`` off."""

    mode: str
    on_s: float = 0.0
    off_s: float = 0.0
    count: int = 0
    pause_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "on_s": self.on_s, "off_s": self.off_s,
                "count": self.count, "pause_s": self.pause_s}


ON = Pattern("on")
OFF = Pattern("off")
SLOW_BLINK = Pattern("blink", 1.0, 1.0)
FAST_BLINK = Pattern("blink", 0.15, 0.15)
CODE_ON_S, CODE_OFF_S, CODE_PAUSE_S = 0.3, 0.3, 1.8


def fault_code(code: int) -> Pattern:
    return Pattern("code", CODE_ON_S, CODE_OFF_S, code, CODE_PAUSE_S)


GREEN = {Status.BOOTING: ON, Status.SYNCED: ON, Status.WAITING: SLOW_BLINK,
         Status.SYNCING: FAST_BLINK, Status.SHUTDOWN: OFF}


@dataclass(frozen=True)
class LedContext:
    """What is known besides the sample. ``None`` = take it from the sample."""

    booting: bool = False
    shutting_down: bool = False
    hub_serving: bool | None = None   # LAN server answered its ping (None: not checked)
    syncing: bool | None = None       # sync_state 'syncing' (read more often than samples)
    link_up: bool | None = None
    pending: int | None = None
    wall: float | None = None         # current wall time, for the "clock never set" check


@dataclass(frozen=True)
class LedState:
    status: Status
    faults: tuple[Fault, ...] = ()
    green: Pattern = ON
    red: Pattern = OFF

    @property
    def code(self) -> int | None:
        return int(self.faults[0]) if self.faults else None

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status.value, "code": self.code,
                "faults": [{"code": int(f), "name": f.name.lower(), "text": FAULT_TEXT[f]}
                           for f in self.faults],
                "green": self.green.to_dict(), "red": self.red.to_dict()}


def faults_of(sample: Mapping[str, Any], wall: float | None = None) -> tuple[Fault, ...]:
    """Every fault the sample shows, most serious first (pure)."""
    out = []
    if sample.get("integrity_ok") is False:
        out.append(Fault.INTEGRITY)
    if sample.get("ro_remount") is True:
        out.append(Fault.READ_ONLY)
    disk = sample.get("disk_pct")
    if disk is not None and disk > DISK_FULL_PCT:
        out.append(Fault.DISK_FULL)
    if sample.get("undervoltage_now") is True:
        out.append(Fault.UNDERVOLTAGE)
    temp = sample.get("temp_c")
    if temp is not None and temp > OVERHEAT_C:
        out.append(Fault.OVERHEAT)
    offset = sample.get("clock_offset_s")
    ntp = sample.get("ntp_synced")
    clock_bad = (
        (offset is not None and abs(offset) > CLOCK_OFFSET_MAX_S)
        # NTP unsynchronised is only a fault when national gave no good offset either
        or (ntp is False and offset is None)
        or (wall is not None and wall < CLOCK_SANE_AFTER))
    if clock_bad:
        out.append(Fault.CLOCK)
    return tuple(out)


def led_state(sample: Any, context: LedContext | None = None) -> LedState:
    """Pick the LED state from the latest sample (a ``Sample``, its dict, or None)."""
    ctx = context or LedContext()
    if ctx.shutting_down:
        return LedState(Status.SHUTDOWN, (), OFF, OFF)
    if sample is not None and not isinstance(sample, Mapping):
        sample = sample.to_dict()
    if ctx.booting or sample is None or ctx.hub_serving is False:
        return LedState(Status.BOOTING, (), ON, ON)  # both lit: a lamp test while starting
    faults = faults_of(sample, ctx.wall)
    syncing = ctx.syncing
    link_up = ctx.link_up if ctx.link_up is not None else sample.get("link_up")
    pending = ctx.pending if ctx.pending is not None else (sample.get("sync") or {}).get("pending")
    if syncing:
        status = Status.SYNCING
    elif link_up is True and pending == 0:
        status = Status.SYNCED
    else:
        status = Status.WAITING
    red = fault_code(int(faults[0])) if faults else OFF
    return LedState(status, faults, GREEN[status], red)


# -- the driver ------------------------------------------------------------------------------
def code_unit(p: Pattern) -> float:
    """Largest step that hits every edge of a blink code (fewest wake-ups of the thread)."""
    return math.gcd(*(max(1, round(x * 1000)) for x in (p.on_s, p.off_s, p.pause_s))) / 1000


def _code_values(p: Pattern, unit: float) -> Iterator[int]:
    """0/1 values, one per ``unit`` seconds, for a blink code (repeats forever)."""
    on = max(1, round(p.on_s / unit))
    off = max(1, round(p.off_s / unit))
    pause = max(1, round(p.pause_s / unit))
    cycle = ([1] * on + [0] * off) * p.count + [0] * max(0, pause - off)
    return itertools.cycle(cycle)


class LedDriver:
    """Shows ``LedState``s on two gpiozero LEDs. ``time_scale`` speeds patterns up in tests."""

    def __init__(self, status_pin: int | str, fault_pin: int | str, *,
                 pin_factory: Any = None, time_scale: float = 1.0) -> None:
        from gpiozero import LED

        self.green = LED(status_pin, pin_factory=pin_factory)
        self.red = LED(fault_pin, pin_factory=pin_factory)
        self.time_scale = time_scale
        self.current: LedState | None = None

    def apply(self, st: LedState) -> bool:
        """Show ``st``; a no-op if it is already shown (restarting a blink would stutter)."""
        if st == self.current:
            return False
        if self.current is None or st.green != self.current.green:
            self._show(self.green, st.green)
        if self.current is None or st.red != self.current.red:
            self._show(self.red, st.red)
        self.current = st
        return True

    def _show(self, led: Any, p: Pattern) -> None:
        led.source = None  # stop a running blink code before anything else drives the pin
        s = self.time_scale
        if p.mode == "on":
            led.on()
        elif p.mode == "blink":
            led.blink(on_time=p.on_s * s, off_time=p.off_s * s)
        elif p.mode == "code":
            led.off()
            unit = code_unit(p)
            led.source_delay = unit * s
            led.source = _code_values(p, unit)
        else:
            led.off()

    def close(self) -> None:
        for led in (self.green, self.red):
            try:
                led.source = None
                led.close()
            except Exception:  # noqa: BLE001 - closing on the way out must not raise
                log.debug("closing LED failed", exc_info=True)
