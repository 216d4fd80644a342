"""Alert rules: pure functions over a hub's latest state, thresholds from ``[fleet]``.

Every comparison is strict ("over the threshold"): a value exactly at the threshold does
not alert. Unknown values (``None``: not reported, or not measurable on that hardware)
never alert; a hub that stops reporting is caught by the ``silent`` rule instead.

States, worst first:

* **red**: the hub is (or may soon be) losing data or service and someone should act
  today: ``silent``, ``integrity`` (SQLite quick_check failed or the data filesystem was
  remounted read-only), ``disk`` over ``disk_pct``, ``temp`` over ``temp_c``;
* **amber**: degraded, act this week: ``undervoltage`` (seen in the last day),
  ``sync_lag`` over ``sync_lag_h``, ``conflicts`` (unresolved > 0), ``clock`` offset
  over ``clock_offset_s``, ``cert_expiry`` (the HTTPS certificate the hub serves has
  fewer than ``cert_expiry_days`` left: its renewal keeps failing);
* amber too: ``backup_lag`` (the hub's litestream replica is further behind than
  ``backup_lag_h``: a dead SD card would lose that much; the message carries the hub's
  reason, e.g. the backup server's host key changed);
* ``update_rollback`` (amber): the hub installed a new release and went back to the old one
  (it was not healthy, or did not boot); ``update_failed`` (amber): it refused an offered
  release (bad signature or checksum, wrong hardware) or could not install it;
* ``modem_budget`` (amber): the hub's bytes on its modem this month (sync and fleet traffic,
  up and down, as its heartbeats count them) are over its ``[sync] modem_budget_mb``; it
  resolves when the hub's month ends or the budget is raised;
* ``cert_expiry`` turns **red** once that certificate has expired (tablets cannot connect);
* **green**: no alert.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..config import Config
from ..errors import BadRequest
from ..i18n import N_, Tr, translator

RED, AMBER, GREEN = "red", "amber", "green"
STATE_RANK = {RED: 0, AMBER: 1, GREEN: 2}
RED_CODES = frozenset({"silent", "integrity", "disk", "temp"})
AMBER_CODES = frozenset({"undervoltage", "sync_lag", "conflicts", "clock", "backup_lag",
                         "update_rollback", "update_failed", "modem_budget"})
AMBER_OR_RED_CODES = frozenset({"cert_expiry"})  # amber before expiry, red after
ALL_CODES = ("silent", "integrity", "disk", "temp", "undervoltage", "sync_lag",
             "conflicts", "clock", "cert_expiry", "backup_lag", "update_rollback",
             "update_failed", "modem_budget")
UNDERVOLTAGE_WINDOW_S = 86400.0
MB = 1024 * 1024  # a modem budget's MB, as the hub counts it (store/wirebytes.py)


@dataclass(frozen=True)
class Thresholds:
    silent_after_s: float = 1800
    disk_pct: float = 90.0
    temp_c: float = 80.0
    sync_lag_h: float = 48.0
    clock_offset_s: float = 300.0
    cert_expiry_days: float = 14.0
    backup_lag_h: float = 12.0

    @classmethod
    def from_config(cls, config: Config) -> Thresholds:
        f = config.section("fleet")
        return cls(silent_after_s=float(f["silent_after_s"]), disk_pct=float(f["disk_pct"]),
                   temp_c=float(f["temp_c"]), sync_lag_h=float(f["sync_lag_h"]),
                   clock_offset_s=float(f["clock_offset_s"]),
                   cert_expiry_days=float(f["cert_expiry_days"]),
                   backup_lag_h=float(f.get("backup_lag_h", cls.backup_lag_h)))

    def overlay(self, overrides: Mapping[str, float]) -> Thresholds:
        """These thresholds with the admins' changes (``alert_rules`` in the fleet DB)."""
        return dataclasses.replace(
            self, **{k: float(v) for k, v in overrides.items() if k in RULE_LIMITS})

    def as_dict(self) -> dict[str, float]:
        return {k: float(getattr(self, k)) for k in RULE_LIMITS}


@dataclass(frozen=True)
class RuleLimit:
    low: float
    high: float
    unit: str
    meaning: str


# What an admin may set over HTTP: wide enough for any real policy, narrow enough that a
# typo (a temperature of 8000, a silence of 0 s that turns every hub red) is refused.
RULE_LIMITS: dict[str, RuleLimit] = {
    "silent_after_s": RuleLimit(60, 30 * 86400, "s", "a hub with no heartbeat for this long "
                                                    "is red"),
    "disk_pct": RuleLimit(1, 100, "%", "a hub whose data disk is fuller than this is red"),
    "temp_c": RuleLimit(30, 120, "°C", "a hub hotter than this is red"),
    "sync_lag_h": RuleLimit(1, 90 * 24, "h", "a hub whose last successful sync is older "
                                             "than this is amber"),
    "clock_offset_s": RuleLimit(1, 86400, "s", "a hub whose clock is off by more than this "
                                               "is amber"),
    "cert_expiry_days": RuleLimit(1, 90, "days", "a hub whose HTTPS certificate expires within "
                                                 "this many days is amber (red once expired)"),
    "backup_lag_h": RuleLimit(0.1, 30 * 24, "h", "a hub whose backup replica is further "
                                                 "behind than this is amber"),
}


def check_rule(name: str, value: Any) -> float:
    """A threshold an admin sent, as a float, or ``BadRequest`` saying what is allowed."""
    limit = RULE_LIMITS.get(name)
    if limit is None:
        raise BadRequest(f"There is no alert rule called {name[:40]!r}. The rules are: "
                         + ", ".join(RULE_LIMITS) + ".")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or \
            not math.isfinite(value):
        raise BadRequest(f"{name} must be a number (or null to go back to the configured "
                         "default).")
    if not limit.low <= value <= limit.high:
        raise BadRequest(f"{name} must be between {limit.low:g} and {limit.high:g} "
                         f"{limit.unit}; got {value:g}.")
    return float(value)


@dataclass(frozen=True)
class HubStatus:
    """What the rules look at; the fleet DB keeps these columns on the hub row."""

    created_at: float
    last_seen: float | None = None  # fleet clock
    disk_pct: float | None = None
    temp_c: float | None = None
    integrity_ok: bool | None = None
    ro_remount: bool | None = None
    undervoltage_at: float | None = None  # fleet clock, last undervoltage event
    lag_s: float | None = None
    conflicts: int | None = None
    clock_offset_s: float | None = None  # the hub's clock error, see effective_offset
    cert_not_after: float | None = None  # the served certificate's expiry (None: unknown)
    backup_lag_s: float | None = None  # how far the litestream replica is behind
    backup_error: str | None = None  # the hub's reason, when it has one
    update_state: str | None = None  # the hub's latest update report (#13)
    update_target: str | None = None  # the release it was updating to
    update_reason: str | None = None  # why its last update failed
    wire_period: str | None = None  # the hub's month (YYYYMM) its modem bytes are for (#15)
    wire_month_bytes: int | None = None  # sent + received this month
    wire_month_ends: float | None = None  # fleet clock
    wire_budget_mb: int | None = None  # the hub's monthly budget (None: none)


@dataclass(frozen=True)
class Alert:
    code: str
    level: str
    message: str  # the fleet's record, in English (the API, the logs)
    words: str = ""  # the message's template (N_), for a page in the reader's language
    params: Mapping[str, Any] = dataclasses.field(default_factory=dict)


_DECIMAL = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")


def _alert(code: str, level: str, words: str, **params: Any) -> Alert:
    """An alert whose English message is ``words`` with ``params``; a page says it in its
    reader's language (``alert_words``). Params ending ``_at`` are times, ``_s`` ages,
    other numbers counts or measures, strings the hub's own words."""
    return Alert(code, level, alert_words(words, params, translator("en")), words, params)


def alert_words(words: str, params: Mapping[str, Any], tr: Tr) -> str:
    vals: dict[str, object] = {}
    for k, v in params.items():
        if k.endswith("_at") and isinstance(v, (int, float)):
            vals[k] = when(v) if tr.locale == "en" else tr.datetime(
                datetime.fromtimestamp(v, UTC), UTC) + " UTC"
        elif k.endswith("_s") and isinstance(v, (int, float)):
            vals[k] = age(v, tr)
        elif isinstance(v, float):
            vals[k] = f"{v:g}" if tr.locale == "en" else tr.num(v)
        elif isinstance(v, str) and _DECIMAL.fullmatch(v):
            vals[k] = tr.digit(v)  # a measure kept as written ("92.3"), in the reader's digits
        else:
            vals[k] = v
    return tr(words, **vals)


def when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


def age(seconds: float, tr: Tr | None = None) -> str:
    """A short human duration: 45 s, 12 min, 5 h, 3 days (in the reader's language)."""
    s = int(seconds)
    tr = tr or translator("en")
    if s < 120:
        return tr("{n} s", n=s)
    if s < 7200:
        return tr("{n} min", n=s // 60)
    if s < 2 * 86400:
        return tr("{n} h", n=s // 3600)
    return tr("{n} days", n=s // 86400)


def evaluate(h: HubStatus, now: float, th: Thresholds) -> list[Alert]:
    """All alerts that hold for this hub at ``now``, red ones first."""
    out: list[Alert] = []
    ref = h.last_seen if h.last_seen is not None else h.created_at
    quiet = now - ref
    if quiet > th.silent_after_s:
        # messages name fixed times, not ages: they are stored and must not go stale
        out.append(_alert("silent", RED, N_("no heartbeat since {since_at}"), since_at=ref)
                   if h.last_seen is not None else
                   _alert("silent", RED, N_("never reported since enrolment on {since_at}"),
                          since_at=ref))
    if h.integrity_ok is False:
        out.append(_alert("integrity", RED, N_("database integrity check failed")))
    elif h.ro_remount:
        out.append(_alert("integrity", RED, N_("data filesystem remounted read-only")))
    if h.disk_pct is not None and h.disk_pct > th.disk_pct:
        out.append(_alert("disk", RED, N_("disk {pct}% full (over {limit}%)"),
                          pct=f"{h.disk_pct:.1f}", limit=float(th.disk_pct)))
    if h.temp_c is not None and h.temp_c > th.temp_c:
        out.append(_alert("temp", RED, N_("temperature {c} °C (over {limit} °C)"),
                          c=f"{h.temp_c:.1f}", limit=float(th.temp_c)))
    if h.undervoltage_at is not None and now - h.undervoltage_at < UNDERVOLTAGE_WINDOW_S:
        out.append(_alert("undervoltage", AMBER, N_("undervoltage at {seen_at}"),
                          seen_at=h.undervoltage_at))
    if h.lag_s is not None and h.lag_s > th.sync_lag_h * 3600:
        out.append(_alert("sync_lag", AMBER,
                          N_("last successful sync {lag_s} ago (over {limit} h)"),
                          lag_s=h.lag_s, limit=float(th.sync_lag_h)))
    if h.conflicts is not None and h.conflicts > 0:
        out.append(_alert("conflicts", AMBER, N_("{n} unresolved sync conflict") if
                          h.conflicts == 1 else N_("{n} unresolved sync conflicts"),
                          n=h.conflicts))
    off = h.clock_offset_s
    if off is not None and abs(off) > th.clock_offset_s:
        out.append(_alert("clock", AMBER, N_("clock {off_s} behind (over {limit} s)") if off > 0
                          else N_("clock {off_s} ahead (over {limit} s)"),
                          off_s=abs(off), limit=float(th.clock_offset_s)))
    exp = h.cert_not_after
    if exp is not None and exp <= now:
        out.append(_alert("cert_expiry", RED, N_("HTTPS certificate expired on {expiry_at}: "
                                                 "tablets cannot connect; its renewal failed"),
                          expiry_at=exp))
    elif exp is not None and exp - now < th.cert_expiry_days * 86400:
        out.append(_alert("cert_expiry", AMBER,
                          N_("HTTPS certificate expires on {expiry_at} (within {days} days): "
                             "its renewal keeps failing"),
                          expiry_at=exp, days=float(th.cert_expiry_days)))
    if h.backup_lag_s is not None and h.backup_lag_s > th.backup_lag_h * 3600:
        a = (_alert("backup_lag", AMBER, N_("backup replica {lag_s} behind (over {limit} h): "
                                            "{why}"), lag_s=h.backup_lag_s,
                    limit=float(th.backup_lag_h), why=h.backup_error[:400])
             if h.backup_error else
             _alert("backup_lag", AMBER, N_("backup replica {lag_s} behind (over {limit} h)"),
                    lag_s=h.backup_lag_s, limit=float(th.backup_lag_h)))
        out.append(dataclasses.replace(a, message=a.message[:500]))
    out.extend(_update_alerts(h))
    out.extend(_modem_budget(h, now))
    out.sort(key=lambda a: STATE_RANK[a.level])  # red ones first, stable otherwise
    return out


def _update_alerts(h: HubStatus) -> list[Alert]:
    """A rolled-back or refused release: the hub still serves, on its old release."""
    target, why = h.update_target or "", h.update_reason or ""
    if h.update_state == "rolled_back":
        kind, words = "update_rollback", _ROLLBACK_WORDS[bool(target), bool(why)]
    elif h.update_state in ("refused", "failed"):
        kind = "update_failed"
        words = (_REFUSED_WORDS if h.update_state == "refused" else _FAILED_WORDS)[
            bool(target), bool(why)]
    else:
        return []
    return [_alert(kind, AMBER, words, target=target, why=why)]


# (release named, reason given) -> words: a hub that did not say which release it was
# offered gets words of their own, never an English stand-in inside a Bangla sentence
_ROLLBACK_WORDS = {
    (True, True): N_("rolled back from {target} to the previous release: {why}"),
    (True, False): N_("rolled back from {target} to the previous release"),
    (False, True): N_("rolled back from a new release to the previous release: {why}"),
    (False, False): N_("rolled back from a new release to the previous release")}
_REFUSED_WORDS = {
    (True, True): N_("refused {target}: {why}"), (True, False): N_("refused {target}"),
    (False, True): N_("refused a new release: {why}"),
    (False, False): N_("refused a new release")}
_FAILED_WORDS = {
    (True, True): N_("could not install {target}: {why}"),
    (True, False): N_("could not install {target}"),
    (False, True): N_("could not install a new release: {why}"),
    (False, False): N_("could not install a new release")}


def _modem_budget(h: HubStatus, now: float) -> list[Alert]:
    """This month's bytes on the hub's modem over its budget, until its month ends."""
    budget, used = h.wire_budget_mb, h.wire_month_bytes
    if not budget or used is None or used <= budget * MB:
        return []
    if h.wire_month_ends is not None and now >= h.wire_month_ends:
        return []  # a new month: nothing used of it yet, as far as the fleet knows
    month = h.wire_period or "this month"
    if len(month) == 6 and month.isdigit():
        month = f"{month[:4]}-{month[4:]}"
    return [Alert("modem_budget", AMBER, f"modem used {used / MB:,.0f} MB in {month}, over "
                                         f"its budget of {budget:,} MB "
                                         f"({100 * used / (budget * MB):.0f}%)")]


def effective_offset(*estimates: float | None) -> float | None:
    """The hub's clock error (fleet minus hub: positive when behind), the worst estimate.

    Estimates, all fleet-minus-hub: receipt time minus ``sent_at`` (the contract's); the
    offset the hub measured itself (sample ``clock_offset_s``, from national's Date during
    sync); and, when the hub says it is not NTP-synchronised, receipt time minus its newest
    sample's ``at``. Why several: a hub that learnt the fleet's time (our ``Date`` header)
    may stamp ``sent_at`` in corrected time while its wall clock, and so its samples and
    its data edits, stay wrong.
    """
    known = [v for v in estimates if v is not None]
    return max(known, key=abs) if known else None


def state_of(alerts: list[Alert]) -> str:
    if any(a.level == RED for a in alerts):
        return RED
    if alerts:
        return AMBER
    return GREEN
