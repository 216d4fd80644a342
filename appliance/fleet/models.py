"""The heartbeat contract: decoding and validating what a hub POSTs to ``/api/heartbeats``.

Pure functions, no I/O: ``decode_body`` turns the raw (gzip) bytes into JSON and
``parse_heartbeat`` turns that JSON into typed objects, raising ``BadRequest`` with the
offending field named (``samples[3].temp_c must be a number or null``) so that whoever
debugs a hub in the field can act on the message.

Forward compatibility: unknown fields are ignored, and a metric missing from a sample is
treated like ``null`` (an older hub may not know it yet). Only the fields needed to
authenticate, order and place a heartbeat are required.
"""

from __future__ import annotations

import ipaddress
import math
import re
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from ..errors import BadRequest, PayloadTooLarge, UnsupportedMediaType

# Compressed bodies are capped by the HTTP layer (1 MiB); this caps what they inflate to,
# so that a small gzip bomb cannot take the service's memory.
MAX_INFLATED = 16 * 1024 * 1024
MAX_SAMPLES = 5000

# Sample fields: name -> kind. Kinds: "num" (int or float), "int", "bool". All nullable.
SAMPLE_FIELDS: dict[str, str] = {
    "cpu_pct": "num", "load1": "num", "mem_pct": "num", "disk_pct": "num",
    "disk_free_mb": "num", "temp_c": "num", "throttled": "int",
    "undervoltage_now": "bool", "undervoltage_seen": "bool", "throttled_now": "bool",
    "freq_capped_seen": "bool", "sd_written_mb": "num", "ro_remount": "bool",
    "power_cuts": "int", "ntp_synced": "bool", "clock_offset_s": "num",
    "integrity_ok": "bool", "modem_present": "bool", "link_up": "bool",
}
SYNC_FIELDS: dict[str, str] = {"pending": "int", "conflicts": "int", "rejected": "int",
                               "lag_s": "num"}

# SQLite stores integers as signed 64-bit: anything wider (orjson hands over up to
# unsigned 64-bit ints, and whole floats such as 1e21 would become Python ints) must be a
# 400 here, not an OverflowError when the row is bound.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_TIME = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp()

# Raspberry Pi firmware ``get_throttled`` bits (vcgencmd), used when a hub sends the raw
# mask but not the decoded flags.
UV_NOW, THROTTLED_NOW, UV_SEEN, FREQ_CAPPED_SEEN = 1 << 0, 1 << 2, 1 << 16, 1 << 17


@dataclass(frozen=True)
class OrgUnit:
    id: str | None = None
    name: str | None = None
    district: str | None = None
    division: str | None = None


@dataclass(frozen=True)
class Sample:
    at: float  # epoch seconds on the *hub's* clock
    values: dict[str, Any]  # every SAMPLE_FIELDS key, None when unknown
    pending: int | None = None
    conflicts: int | None = None
    rejected: int | None = None
    lag_s: float | None = None
    last_success: float | None = None  # hub clock

    def get(self, name: str) -> Any:
        return self.values.get(name)


@dataclass(frozen=True)
class Summary:
    """What a hub says about queued samples it had to drop while offline."""

    dropped: int | None = None
    start: float | None = None  # hub clock
    end: float | None = None
    max_temp_c: float | None = None
    undervoltage_seen: bool | None = None
    min_disk_free_mb: float | None = None
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TlsInfo:
    """The certificate a hub serves now, as its heartbeat reports it (#12)."""

    name: str
    not_after: float  # epoch seconds
    issuer: str
    fingerprint: str  # SHA-256 of the leaf's DER, lower-case hex


@dataclass(frozen=True)
class BackupInfo:
    """The hub's litestream replica, as its heartbeat reports it (#13)."""

    last_replicated_at: float | None  # hub clock; None: not since the hub has been watching
    lag_s: float | None  # how far the replica is behind (what a dead SD card would lose)
    error: str | None  # why litestream cannot reach the backup server


@dataclass(frozen=True)
class UpdateReport:
    """Where a hub is with software updates (#13), as its update checks and heartbeats
    report it. ``seq`` grows with every change on the hub, so an older report (a queued
    heartbeat) never overwrites a newer one."""

    seq: int
    state: str
    version: str | None = None  # the release the hub runs (its booted slot's bundle)
    compatible: str | None = None  # its hardware, as RAUC's system.conf names it
    booted_slot: str | None = None
    rollout_id: int | None = None  # the rollout it is working on, or last worked on
    target_version: str | None = None
    sha256: str | None = None
    bytes: int | None = None  # downloaded so far
    size: int | None = None
    reason: str | None = None  # why the last attempt failed (refused, failed, rolled back)


@dataclass(frozen=True)
class ReportingCount:
    """A hub's completeness for one data set and month (#14), DHIS2's counts: org units
    expected to report, complete registrations of those, complete on time, and complete
    ones national has received."""

    data_set: str
    period: str
    expected: int
    complete: int
    on_time: int
    received: int


WIRE_CATEGORIES = ("metadata", "pull", "push", "other", "total")
MAX_WIRE_BYTES = 2**53  # a counter JSON carries exactly


@dataclass(frozen=True)
class WireInfo:
    """A hub's bytes on its modem (#15), as its heartbeat reports them: today and this
    calendar month in the hub's zone, sent and received per category (``detail``, as the
    hub's ``/api/hub/status`` shapes them), and its monthly budget."""

    day: str  # YYYY-MM-DD, the hub's
    today_bytes: int  # sent + received
    period: str  # YYYYMM
    ends_at: float  # hub clock: when the hub's month ends
    month_bytes: int
    budget_mb: int | None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Heartbeat:
    hub_id: str
    seq: int
    sent_at: float  # hub clock
    version: str
    boot_id: str
    samples: list[Sample]
    name: str | None = None
    org_unit: OrgUnit = OrgUnit()
    uptime_s: float | None = None
    summary: Summary | None = None
    # optional (#12): "reported" tells an older hub that omits them from one sending null
    tls_reported: bool = False
    tls: TlsInfo | None = None
    lan_ip_reported: bool = False
    lan_ip: str | None = None
    # optional (#13): null when the hub has no [backup] replica
    backup_reported: bool = False
    backup: BackupInfo | None = None
    update: UpdateReport | None = None  # optional (#13)
    # optional (#14): the hub's reporting completeness for the last months
    reporting_reported: bool = False
    reporting: tuple[ReportingCount, ...] = ()
    # optional (#15): bytes on the modem, today and this month, and the monthly budget
    wire_reported: bool = False
    wire: WireInfo | None = None


# ------------------------------------------------------------------------- decoding
def decode_body(raw: bytes, content_encoding: str) -> Any:
    """Inflate (gzip, or identity when no encoding is declared) and parse JSON."""
    enc = content_encoding.strip().lower()
    if enc in ("gzip", "x-gzip"):
        raw = _gunzip(raw)
    elif enc not in ("", "identity"):
        raise UnsupportedMediaType(
            f"Content-Encoding {content_encoding!r} is not supported; send gzip")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise BadRequest(f"body is not valid JSON: {e}") from None


def _gunzip(raw: bytes) -> bytes:
    d = zlib.decompressobj(wbits=31)  # 31: gzip header and trailer required
    try:
        out = d.decompress(raw, MAX_INFLATED)
        if d.unconsumed_tail:
            raise PayloadTooLarge(f"body inflates to more than {MAX_INFLATED // 2**20} MiB")
        out += d.flush()
    except zlib.error as e:
        raise BadRequest(f"body is not valid gzip: {e}") from None
    if not d.eof:
        raise BadRequest("body is not valid gzip: truncated stream")
    return out


def parse_time(value: Any, name: str) -> float:
    """ISO 8601 -> epoch seconds; naive times are taken as UTC."""
    if not isinstance(value, str):
        raise BadRequest(f"{name} must be an ISO 8601 date-time string")
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise BadRequest(f"{name} is not an ISO 8601 date-time: {value[:40]!r}") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    ts = dt.timestamp()
    # pages and the API print every stored time: keep them in what a date can show
    if not 0.0 <= ts <= MAX_TIME:
        raise BadRequest(f"{name} is out of range: {value[:40]!r} is not between 1970 and 9999")
    return ts


# ------------------------------------------------------------------------- validation
def _check(value: Any, kind: str, name: str) -> Any:
    if value is None:
        return None
    if kind == "bool":
        if isinstance(value, bool):
            return value
        raise BadRequest(f"{name} must be true, false or null")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadRequest(f"{name} must be {'an integer' if kind == 'int' else 'a number'} "
                         "or null")
    if isinstance(value, float) and not math.isfinite(value):
        raise BadRequest(f"{name} must be a finite number or null")
    if kind == "int":
        if isinstance(value, float):
            if not value.is_integer():
                raise BadRequest(f"{name} must be an integer or null")
            value = int(value)
        return _int64(value, name)
    return _int64(value, name) if isinstance(value, int) else value


def _int64(value: int, name: str) -> int:
    if not INT64_MIN <= value <= INT64_MAX:
        raise BadRequest(f"{name} is out of range: integers must fit in 64 bits "
                         f"(-2^63 to 2^63-1), got {str(value)[:30]}")
    return value


def _str(obj: dict[str, Any], key: str, name: str, *, required: bool,
         max_len: int = 200) -> str | None:
    if key not in obj or obj[key] is None:
        if required:
            raise BadRequest(f"{name} is required")
        return None
    v = obj[key]
    if not isinstance(v, str):
        raise BadRequest(f"{name} must be a string")
    if required and not v.strip():
        raise BadRequest(f"{name} must not be empty")
    if len(v) > max_len:
        raise BadRequest(f"{name} is longer than {max_len} characters")
    return v


def _obj(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadRequest(f"{name} must be an object")
    return value


def parse_sample(obj: Any, name: str) -> Sample:
    obj = _obj(obj, name)
    if "at" not in obj:
        raise BadRequest(f"{name}.at is required")
    at = parse_time(obj["at"], f"{name}.at")
    values = {k: _check(obj.get(k), kind, f"{name}.{k}") for k, kind in SAMPLE_FIELDS.items()}
    mask = values["throttled"]
    if mask is not None and mask >= 0:
        # fill decoded flags from the firmware mask when the hub sent only the mask
        for key, bit in (("undervoltage_now", UV_NOW), ("undervoltage_seen", UV_SEEN),
                         ("throttled_now", THROTTLED_NOW), ("freq_capped_seen", FREQ_CAPPED_SEEN)):
            if values[key] is None:
                values[key] = bool(mask & bit)
    sync_raw = obj.get("sync")
    sync: dict[str, Any] = {}
    last_success = None
    if sync_raw is not None:
        s = _obj(sync_raw, f"{name}.sync")
        sync = {k: _check(s.get(k), kind, f"{name}.sync.{k}") for k, kind in SYNC_FIELDS.items()}
        if s.get("last_success") is not None:
            last_success = parse_time(s["last_success"], f"{name}.sync.last_success")
    return Sample(at=at, values=values, last_success=last_success, **sync)


def parse_summary(obj: Any) -> Summary | None:
    if obj is None:
        return None
    obj = _obj(obj, "summary")
    return Summary(
        dropped=_check(obj.get("dropped"), "int", "summary.dropped"),
        start=parse_time(obj["from"], "summary.from") if obj.get("from") is not None else None,
        end=parse_time(obj["to"], "summary.to") if obj.get("to") is not None else None,
        max_temp_c=_check(obj.get("max_temp_c"), "num", "summary.max_temp_c"),
        undervoltage_seen=_check(obj.get("undervoltage_seen"), "bool",
                                 "summary.undervoltage_seen"),
        min_disk_free_mb=_check(obj.get("min_disk_free_mb"), "num", "summary.min_disk_free_mb"),
        raw=obj,
    )


_HOSTNAME = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\.)*"
                       r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.?$")
_SHA256_HEX = re.compile(r"^[0-9a-fA-F]{64}$")


def parse_tls(obj: Any) -> TlsInfo | None:
    """``tls``: null (no certificate installed) or name, not_after, issuer, fingerprint."""
    if obj is None:
        return None
    obj = _obj(obj, "tls")
    name = _str(obj, "name", "tls.name", required=True, max_len=253) or ""
    if not _HOSTNAME.match(name):
        raise BadRequest(f"tls.name must be a DNS name like ramu.hub.example.org; got "
                         f"{name[:60]!r}")
    if "not_after" not in obj:
        raise BadRequest("tls.not_after is required")
    not_after = parse_time(obj["not_after"], "tls.not_after")
    issuer = _str(obj, "issuer", "tls.issuer", required=True, max_len=1000) or ""
    fp = _str(obj, "fingerprint", "tls.fingerprint", required=True, max_len=64) or ""
    if not _SHA256_HEX.match(fp):
        raise BadRequest("tls.fingerprint must be the SHA-256 of the certificate, 64 hex "
                         "digits")
    return TlsInfo(name.rstrip(".").lower(), not_after, issuer, fp.lower())


def parse_lan_ip(value: Any) -> str | None:
    """``lan_ip``: null or the IPv4 address the hub answers its name with on the LAN."""
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 15:
        raise BadRequest("lan_ip must be an IPv4 address string like \"10.77.0.1\", or null")
    try:
        ip = ipaddress.IPv4Address(value)
    except ValueError:
        raise BadRequest(f"lan_ip must be an IPv4 address like \"10.77.0.1\"; got "
                         f"{value[:20]!r}") from None
    if ip.is_unspecified or ip.is_multicast or ip.is_loopback:
        raise BadRequest(f"lan_ip {value} cannot be a hub's LAN address (unspecified, "
                         "loopback or multicast)")
    return str(ip)


MAX_BACKUP_LAG_S = 100 * 365 * 86400.0


def parse_backup(obj: Any) -> BackupInfo | None:
    """``backup``: null (no replica configured) or last_replicated_at, lag_s, error."""
    if obj is None:
        return None
    obj = _obj(obj, "backup")
    last = obj.get("last_replicated_at")
    lag = _check(obj.get("lag_s"), "num", "backup.lag_s")
    if lag is not None and not 0 <= lag <= MAX_BACKUP_LAG_S:
        raise BadRequest(f"backup.lag_s must be between 0 and {MAX_BACKUP_LAG_S:.0f} seconds")
    return BackupInfo(
        last_replicated_at=None if last is None else parse_time(last,
                                                                "backup.last_replicated_at"),
        lag_s=None if lag is None else float(lag),
        error=_str(obj, "error", "backup.error", required=False, max_len=500))


# what a hub's update agent may report (appliance.health.updater)
UPDATE_STATES = ("idle", "offered", "downloading", "installing", "installed", "rebooting",
                 "trial", "committed", "rolling_back", "rolled_back", "refused", "failed")


def parse_update(obj: Any, name: str = "update") -> UpdateReport | None:
    """``update``: null (the hub has no update agent) or its report; see ``UpdateReport``."""
    if obj is None:
        return None
    obj = _obj(obj, name)
    seq = obj.get("seq")
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
        raise BadRequest(f"{name}.seq must be a non-negative integer")
    _int64(seq, f"{name}.seq")
    state = obj.get("state")
    if state not in UPDATE_STATES:
        raise BadRequest(f"{name}.state must be one of {', '.join(UPDATE_STATES)}; got "
                         f"{str(state)[:30]!r}")
    version = _str(obj, "version", f"{name}.version", required=False, max_len=64)
    target = _str(obj, "target_version", f"{name}.target_version", required=False, max_len=64)
    sha = _str(obj, "sha256", f"{name}.sha256", required=False, max_len=64)
    if sha is not None and not _SHA256_HEX.match(sha):
        raise BadRequest(f"{name}.sha256 must be 64 hex digits")
    counts = {k: _check(obj.get(k), "int", f"{name}.{k}") for k in ("rollout_id", "bytes", "size")}
    for k, v in counts.items():
        if v is not None and v < 0:
            raise BadRequest(f"{name}.{k} must not be negative")
    reason = _str(obj, "reason", f"{name}.reason", required=False, max_len=4000)
    return UpdateReport(
        seq=seq, state=state, version=version,
        compatible=_str(obj, "compatible", f"{name}.compatible", required=False, max_len=200),
        booted_slot=_str(obj, "booted_slot", f"{name}.booted_slot", required=False, max_len=64),
        rollout_id=counts["rollout_id"], target_version=target,
        sha256=sha.lower() if sha else None, bytes=counts["bytes"], size=counts["size"],
        reason=reason[:1000] if reason else None)


MAX_REPORTING = 500  # data sets × months a heartbeat may carry
_MONTH = re.compile(r"^[0-9]{4}(0[1-9]|1[0-2])$")
_UID = re.compile(r"^[A-Za-z][A-Za-z0-9]{10}$")


def parse_reporting(obj: Any) -> tuple[ReportingCount, ...]:
    """``reporting``: a list of {dataSet, period (YYYYMM), expected, complete, onTime,
    received}, each count at most the one before it allows."""
    if obj is None:
        return ()
    if not isinstance(obj, list):
        raise BadRequest("reporting must be a list")
    if len(obj) > MAX_REPORTING:
        raise BadRequest(f"reporting holds more than {MAX_REPORTING} items")
    out = []
    for i, item in enumerate(obj):
        name = f"reporting[{i}]"
        item = _obj(item, name)
        ds = _str(item, "dataSet", f"{name}.dataSet", required=True, max_len=11)
        pe = _str(item, "period", f"{name}.period", required=True, max_len=6)
        if not _UID.match(ds or ""):
            raise BadRequest(f"{name}.dataSet must be a DHIS2 UID")
        if not _MONTH.match(pe or ""):
            raise BadRequest(f"{name}.period must be a month, YYYYMM")
        n = {}
        for k in ("expected", "complete", "onTime", "received"):
            v = _check(item.get(k), "int", f"{name}.{k}")
            if v is None or not 0 <= v <= 1_000_000:
                raise BadRequest(f"{name}.{k} must be an integer from 0 to 1000000")
            n[k] = int(v)
        if not (n["onTime"] <= n["complete"] <= n["expected"] and
                n["received"] <= n["complete"]):
            raise BadRequest(f"{name}: onTime and received cannot exceed complete, nor "
                             "complete expected")
        out.append(ReportingCount(ds or "", pe or "", n["expected"], n["complete"],
                                  n["onTime"], n["received"]))
    return tuple(out)


_DAY = re.compile(r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$")


def _sent_received(obj: Any, name: str) -> dict[str, int]:
    obj = _obj(obj, name)
    out = {}
    for k in ("sent", "received"):
        v = _check(obj.get(k), "int", f"{name}.{k}")
        if v is None or not 0 <= v <= MAX_WIRE_BYTES:
            raise BadRequest(f"{name}.{k} must be an integer from 0 to 2^53")
        out[k] = int(v)
    return out


def _wire_part(obj: Any, name: str) -> dict[str, Any]:
    obj = _obj(obj, name)
    out: dict[str, Any] = {c: _sent_received(obj.get(c), f"{name}.{c}")
                           for c in WIRE_CATEGORIES}
    fleet = _obj(obj["other"], f"{name}.other").get("fleet")
    if fleet is not None:
        out["other"]["fleet"] = _sent_received(fleet, f"{name}.other.fleet")
    return out


def parse_wire(obj: Any) -> WireInfo | None:
    """``wire``: null, or {today: {date, metadata, pull, push, other (its fleet part),
    total}, month: {period, endsAt, the same}, budgetMb}, each part {sent, received}."""
    if obj is None:
        return None
    obj = _obj(obj, "wire")
    today_raw = _obj(obj.get("today"), "wire.today")
    month_raw = _obj(obj.get("month"), "wire.month")
    day = _str(today_raw, "date", "wire.today.date", required=True, max_len=10) or ""
    if not _DAY.match(day):
        raise BadRequest("wire.today.date must be a date, YYYY-MM-DD")
    period = _str(month_raw, "period", "wire.month.period", required=True, max_len=6) or ""
    if not _MONTH.match(period):
        raise BadRequest("wire.month.period must be a month, YYYYMM")
    if "endsAt" not in month_raw:
        raise BadRequest("wire.month.endsAt is required")
    ends_at = parse_time(month_raw["endsAt"], "wire.month.endsAt")
    today, month = _wire_part(today_raw, "wire.today"), _wire_part(month_raw, "wire.month")
    budget = _check(obj.get("budgetMb"), "int", "wire.budgetMb")
    if budget is not None and not 1 <= budget <= 10**9:
        raise BadRequest("wire.budgetMb must be an integer from 1 to 10^9, or null")
    return WireInfo(
        day=day, today_bytes=today["total"]["sent"] + today["total"]["received"],
        period=period, ends_at=ends_at,
        month_bytes=month["total"]["sent"] + month["total"]["received"], budget_mb=budget,
        detail={"today": {"date": day, **today},
                "month": {"period": period, **month}})


def parse_heartbeat(obj: Any) -> Heartbeat:
    obj = _obj(obj, "body")
    hub_id = _str(obj, "hub_id", "hub_id", required=True, max_len=100)
    if "seq" not in obj or obj["seq"] is None:
        raise BadRequest("seq is required")
    seq = obj["seq"]
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
        raise BadRequest("seq must be a non-negative integer")
    _int64(seq, "seq")
    if "sent_at" not in obj:
        raise BadRequest("sent_at is required")
    sent_at = parse_time(obj["sent_at"], "sent_at")
    version = _str(obj, "version", "version", required=True, max_len=50)
    boot_id = _str(obj, "boot_id", "boot_id", required=True, max_len=100)
    name = _str(obj, "name", "name", required=False)
    ou_raw = obj.get("org_unit")
    org_unit = OrgUnit()
    if ou_raw is not None:
        ou = _obj(ou_raw, "org_unit")
        org_unit = OrgUnit(*(_str(ou, k, f"org_unit.{k}", required=False)
                             for k in ("id", "name", "district", "division")))
    if "samples" not in obj:
        raise BadRequest("samples is required")
    raw_samples = obj["samples"]
    if not isinstance(raw_samples, list):
        raise BadRequest("samples must be a list")
    if not raw_samples:
        raise BadRequest("samples must hold at least one sample")
    if len(raw_samples) > MAX_SAMPLES:
        raise BadRequest(f"samples holds more than {MAX_SAMPLES} samples; summarise older ones")
    samples = [parse_sample(s, f"samples[{i}]") for i, s in enumerate(raw_samples)]
    samples.sort(key=lambda s: s.at)  # a hub's queue is in order, but do not rely on it
    return Heartbeat(
        hub_id=hub_id or "", seq=seq, sent_at=sent_at, version=version or "",
        boot_id=boot_id or "", samples=samples, name=name, org_unit=org_unit,
        uptime_s=_check(obj.get("uptime_s"), "num", "uptime_s"),
        summary=parse_summary(obj.get("summary")),
        tls_reported="tls" in obj, tls=parse_tls(obj.get("tls")),
        lan_ip_reported="lan_ip" in obj, lan_ip=parse_lan_ip(obj.get("lan_ip")),
        backup_reported="backup" in obj, backup=parse_backup(obj.get("backup")),
        update=parse_update(obj.get("update")),
        reporting_reported="reporting" in obj, reporting=parse_reporting(obj.get("reporting")),
        wire_reported="wire" in obj, wire=parse_wire(obj.get("wire")),
    )
