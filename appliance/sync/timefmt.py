"""Timestamps as DHIS2 and HTTP write them, as integer epoch milliseconds (UTC).

Pure functions; no clock is read here.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from email.utils import parsedate_to_datetime
from zoneinfo import ZoneInfo

from ..store.hlc import ms_to_iso

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


def format_ts(ms: int) -> str:
    """Epoch ms as DHIS2's ``yyyy-MM-ddTHH:mm:ss.SSS`` (UTC)."""
    return ms_to_iso(int(ms))


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
