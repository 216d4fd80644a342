"""Timestamps as DHIS2, HTTP and ISO-8601 write them, from and to epoch time (UTC).

Pure functions; no clock is read here. ``_format`` is the one formatter: DHIS2's
zone-less ``yyyy-MM-ddTHH:mm:ss.SSS`` (``format_ts``: the store, the API, sync) and
ISO-8601 with a ``Z`` (``iso_z``: the health agent, the sync log, the fleet).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from email.utils import parsedate_to_datetime
from typing import overload
from zoneinfo import ZoneInfo

_TS = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?"
    r"\s*(Z|[+-]\d{2}:?\d{2})?$")


def parse_ts(text: str | None, tz: str = "Etc/UTC") -> int | None:
    """DHIS2 ``yyyy-MM-ddTHH:mm:ss.SSS`` (zone-less, read in ``tz``), or ISO with a zone."""
    if not text:
        return None
    m = _TS.match(text.strip())
    if not m:
        return None
    y, mo, d, h, mi, s, frac, zone = m.groups()
    ms = int((frac or "0")[:3].ljust(3, "0"))
    if zone is None:
        zone_info: tzinfo = UTC if tz in ("Etc/UTC", "UTC", "GMT", "") else ZoneInfo(tz)
    elif zone == "Z":
        zone_info = UTC
    else:
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        zone_info = _fixed(sign * (int(digits[:2]) * 60 + int(digits[2:])))
    dt = datetime(int(y), int(mo), int(d), int(h or 0), int(mi or 0), int(s or 0), tzinfo=zone_info)
    return int(dt.timestamp()) * 1000 + ms


def _fixed(minutes: int) -> tzinfo:
    return timezone(timedelta(minutes=minutes))


def _format(ms: int, *, millis: bool, zone: str) -> str:
    text = datetime.fromtimestamp(ms // 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return (f"{text}.{ms % 1000:03d}" if millis else text) + zone


def format_ts(ms: int) -> str:
    """Epoch ms as DHIS2's ``yyyy-MM-ddTHH:mm:ss.SSS`` (UTC, no zone)."""
    return _format(int(ms), millis=True, zone="")


@overload
def iso_z(seconds: float, *, millis: bool = False) -> str: ...
@overload
def iso_z(seconds: None, *, millis: bool = False) -> None: ...
def iso_z(seconds: float | None, *, millis: bool = False) -> str | None:
    """Epoch seconds as ISO-8601 UTC with ``Z`` (to the second, or the millisecond);
    None stays None (a time not known yet)."""
    if seconds is None:
        return None
    return _format(int(seconds * 1000), millis=millis, zone="Z")


def parse_http_date(text: str | None) -> int | None:
    """RFC 7231 ``Date`` header (one-second resolution) as epoch ms, or None."""
    if not text:
        return None
    try:
        dt = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)
