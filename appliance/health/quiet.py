"""When the hub may reboot into a new release: ``[update] quiet_hours`` in local time.

"02:00-05:00" in ``[update] timezone`` (Asia/Dhaka: no daylight saving); a window may
pass midnight ("23:00-04:00"). Empty: any time. The clock is the agent's best: the wall
clock corrected by the fleet's ``Date`` when the two disagree (no RTC after a power cut),
so a Pi that booted believing it is 1970 does not reboot in the middle of reporting day.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..errors import ConfigError

_WINDOW = re.compile(r"^\s*([01]?\d|2[0-3]):([0-5]\d)\s*-\s*([01]?\d|2[0-3]):([0-5]\d)\s*$")


@dataclass(frozen=True)
class QuietHours:
    start_min: int  # minutes after local midnight
    end_min: int
    tz: ZoneInfo

    @classmethod
    def parse(cls, text: str, timezone: str) -> QuietHours | None:
        """``None`` for an empty window (reboot any time); ``ConfigError`` naming the key
        for anything else that is not HH:MM-HH:MM in a known time zone."""
        if not text.strip():
            return None
        m = _WINDOW.match(text)
        if m is None:
            raise ConfigError(f"[update] quiet_hours must look like \"02:00-05:00\" (local "
                              f"time, HH:MM-HH:MM); got {text[:40]!r}")
        start = int(m.group(1)) * 60 + int(m.group(2))
        end = int(m.group(3)) * 60 + int(m.group(4))
        if start == end:
            raise ConfigError("[update] quiet_hours starts and ends at the same minute; leave "
                              "it empty to allow reboots at any time")
        try:
            tz = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"[update] timezone {timezone[:60]!r} is not a known time zone "
                              "(e.g. Asia/Dhaka)") from None
        return cls(start, end, tz)

    def contains(self, epoch: float) -> bool:
        t = datetime.fromtimestamp(epoch, self.tz)
        minute = t.hour * 60 + t.minute
        if self.start_min < self.end_min:
            return self.start_min <= minute < self.end_min
        return minute >= self.start_min or minute < self.end_min  # passes midnight

    def describe(self) -> str:
        def hm(m: int) -> str:
            return f"{m // 60:02d}:{m % 60:02d}"
        return f"{hm(self.start_min)}-{hm(self.end_min)} {self.tz.key}"
