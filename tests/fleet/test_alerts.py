"""Each alert rule fires just over its threshold and not at it; states follow the rules."""

from __future__ import annotations

import pytest

from appliance.fleet.alerts import (
    AMBER,
    GREEN,
    RED,
    UNDERVOLTAGE_WINDOW_S,
    Alert,
    HubStatus,
    Thresholds,
    effective_offset,
    evaluate,
    state_of,
)

NOW = 1_800_000_000.0
TH = Thresholds(silent_after_s=1800, disk_pct=90.0, temp_c=80.0, sync_lag_h=48.0,
                clock_offset_s=300.0)


def status(**kw: object) -> HubStatus:
    base: dict[str, object] = {"created_at": NOW - 86400, "last_seen": NOW - 10}
    base.update(kw)
    return HubStatus(**base)  # type: ignore[arg-type]


def codes(h: HubStatus, now: float = NOW) -> set[str]:
    return {a.code for a in evaluate(h, now, TH)}


def test_healthy_hub_has_no_alert_and_is_green() -> None:
    h = status(disk_pct=50.0, temp_c=60.0, integrity_ok=True, ro_remount=False, lag_s=600.0,
               conflicts=0, clock_offset_s=1.5)
    assert evaluate(h, NOW, TH) == []
    assert state_of([]) == GREEN


@pytest.mark.parametrize("field,at,over,code", [
    ("disk_pct", 90.0, 90.01, "disk"),
    ("temp_c", 80.0, 80.1, "temp"),
    ("lag_s", 48 * 3600.0, 48 * 3600.0 + 1, "sync_lag"),
    ("conflicts", 0, 1, "conflicts"),
    ("clock_offset_s", 300.0, 300.5, "clock"),
    ("clock_offset_s", -300.0, -300.5, "clock"),  # a clock ahead counts too
])
def test_threshold_rules_fire_only_over_the_threshold(field: str, at: float, over: float,
                                                       code: str) -> None:
    assert code not in codes(status(**{field: at}))
    assert code in codes(status(**{field: over}))


def test_clock_error_is_the_worst_estimate() -> None:
    """A hub that stamps sent_at in corrected time still reports its wall-clock error."""
    assert effective_offset(0.4, 300.0) == 300.0
    assert effective_offset(0.4, -3 * 3600.0, None) == -3 * 3600.0
    assert effective_offset(None, None) is None
    fired = evaluate(status(clock_offset_s=effective_offset(0.4, -3 * 3600.0)), NOW, TH)
    assert [a.message for a in fired] == ["clock 3 h ahead (over 300 s)"]


def test_silent_boundary() -> None:
    assert "silent" not in codes(status(last_seen=NOW - 1800))
    assert "silent" in codes(status(last_seen=NOW - 1800.5))


def test_never_reported_hub_goes_silent_after_enrolment_grace() -> None:
    assert "silent" not in codes(status(last_seen=None, created_at=NOW - 1800))
    fired = evaluate(status(last_seen=None, created_at=NOW - 1801), NOW, TH)
    assert [a.code for a in fired] == ["silent"]
    assert "never reported" in fired[0].message


def test_undervoltage_within_the_last_day() -> None:
    assert "undervoltage" in codes(status(undervoltage_at=NOW - UNDERVOLTAGE_WINDOW_S + 1))
    assert "undervoltage" not in codes(status(undervoltage_at=NOW - UNDERVOLTAGE_WINDOW_S))
    assert "undervoltage" not in codes(status(undervoltage_at=None))


def test_integrity_failure_and_read_only_remount() -> None:
    assert "integrity" in codes(status(integrity_ok=False))
    assert "integrity" in codes(status(ro_remount=True))
    assert "integrity" not in codes(status(integrity_ok=True, ro_remount=False))
    assert "integrity" not in codes(status(integrity_ok=None))  # unknown is not a failure


def test_unknown_values_never_alert() -> None:
    h = status(disk_pct=None, temp_c=None, lag_s=None, conflicts=None, clock_offset_s=None,
               integrity_ok=None, ro_remount=None, undervoltage_at=None)
    assert evaluate(h, NOW, TH) == []


@pytest.mark.parametrize("kw,state", [
    ({"last_seen": NOW - 4000}, RED),
    ({"integrity_ok": False}, RED),
    ({"disk_pct": 95.0}, RED),
    ({"temp_c": 85.0}, RED),
    ({"undervoltage_at": NOW - 60}, AMBER),
    ({"lag_s": 72 * 3600.0}, AMBER),
    ({"conflicts": 2}, AMBER),
    ({"clock_offset_s": 4000.0}, AMBER),
    ({"conflicts": 2, "temp_c": 85.0}, RED),  # red wins over amber
    ({}, GREEN),
])
def test_state_of_each_rule(kw: dict[str, object], state: str) -> None:
    assert state_of(evaluate(status(**kw), NOW, TH)) == state


def test_state_of_mixed_levels() -> None:
    assert state_of([Alert("clock", AMBER, ""), Alert("disk", RED, "")]) == RED
    assert state_of([Alert("clock", AMBER, "")]) == AMBER


def test_thresholds_come_from_config(fleet_config) -> None:  # type: ignore[no-untyped-def]
    fleet_config.set("fleet", "temp_c", 70.0)
    th = Thresholds.from_config(fleet_config)
    assert th.temp_c == 70.0
    assert th.disk_pct == 90.0


@pytest.mark.parametrize(("state", "code", "bangla"), [
    ("rolled_back", "update_rollback", "নতুন সংস্করণ থেকে আগের সংস্করণে ফিরে গেছে"),
    ("refused", "update_failed", "নতুন সংস্করণ গ্রহণ করেনি"),
    ("failed", "update_failed", "নতুন সংস্করণ ইনস্টল করা যায়নি"),
])
def test_update_alert_without_a_release_name_reads_whole_in_bangla(
        state: str, code: str, bangla: str) -> None:
    """A hub that never said which release it was offered: the Bangla reader gets a Bangla
    sentence, not an English "the new release" inside one."""
    from appliance.fleet.alerts import alert_words
    from appliance.i18n import translator

    (a,) = [a for a in evaluate(status(update_state=state), NOW, TH) if a.code == code]
    assert "{target}" not in a.words and "new release" in a.message
    assert alert_words(a.words, a.params, translator("bn")) == bangla
    (b,) = [a for a in evaluate(status(update_state=state, update_target="1.3.0",
                                       update_reason="disk full"), NOW, TH) if a.code == code]
    text = alert_words(b.words, b.params, translator("bn"))
    assert "1.3.0" in text and text.endswith(": disk full") and "new release" not in text
