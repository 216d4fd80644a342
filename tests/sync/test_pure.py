"""Pure sync logic: clock offset, edit placement, conflicts, import summaries (2.41 and
2.43), chunk sizing, watermarks, backoff, timestamps, metadata subset helpers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from appliance.dhis2.timefmt import format_ts, parse_http_date, parse_ts
from appliance.errors import NationalRejected, SyncError
from appliance.store.hlc import pack
from appliance.sync import conflict as cf
from appliance.sync.backoff import backoff_delay
from appliance.sync.chunking import ChunkSizer
from appliance.sync.clock import (
    Anchor,
    Interval,
    NationalClock,
    OffsetTracker,
    estimate_offset,
    place_edit,
)
from appliance.sync.metadata import diff, missing_refs, strip_user
from appliance.sync.summary import is_lock, parse_import_summary
from appliance.sync.watermark import INITIAL_LOOKBACK_MS, OVERLAP_MS, advance, pull_since

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "reference" / \
    "dhis2-android-sdk-responses"


# -- time ------------------------------------------------------------------------------------------
def test_timestamps() -> None:
    ms = parse_ts("2024-01-15T10:00:00.123")
    assert ms is not None and format_ts(ms) == "2024-01-15T10:00:00.123"
    assert parse_ts("2024-01-15T10:00:00") == parse_ts("2024-01-15T10:00:00.000")
    assert parse_ts("2024-01-15T16:00:00.000+06:00") == parse_ts("2024-01-15T10:00:00.000Z")
    assert parse_ts("2024-01-15T16:00:00.000", "Asia/Dhaka") == parse_ts("2024-01-15T10:00:00")
    assert parse_ts("2024-01-15") == parse_ts("2024-01-15T00:00:00.000")
    assert parse_ts("yesterday") is None and parse_ts(None) is None
    assert parse_http_date("Mon, 15 Jan 2024 10:00:00 GMT") == parse_ts("2024-01-15T10:00:00")
    assert parse_http_date("garbage") is None


# -- clock offset ------------------------------------------------------------------------------------
def test_offset_from_server_date_and_date_header() -> None:
    # local clock 2 h behind; 200 ms round trip; national read its clock mid-way
    local_sent, local_recv = 1_000_000.0, 1_000_200.0
    true_offset = 7_200_000
    server = local_sent + 100 + true_offset
    iv = estimate_offset(local_sent, local_recv, server, None)
    assert iv is not None and iv.lo <= true_offset <= iv.hi and iv.width == 200
    # the Date header alone: second resolution, still an honest interval
    date = (server // 1000) * 1000
    iv2 = estimate_offset(local_sent, local_recv, None, date)
    assert iv2 is not None and iv2.lo <= true_offset <= iv2.hi and iv2.width <= 1200
    both = estimate_offset(local_sent, local_recv, server, date)
    assert both is not None and both.width <= 200
    assert estimate_offset(1, 2, None, None) is None


def test_offset_tracker_tightens_then_resets_on_a_step() -> None:
    t = OffsetTracker()
    t.add(Interval(-100, 300), 0)
    t.add(Interval(0, 500), 1)
    assert t.interval == Interval(0, 300) and t.offset_ms == 150
    t.add(Interval(7_200_000, 7_200_100), 2)   # the hub's clock was stepped
    assert t.interval == Interval(7_200_000, 7_200_100)


def test_national_clock_follows_monotonic_time() -> None:
    c = NationalClock(server_ms=10_000, mono_sent=100.0, mono_recv=100.2)
    assert c.now_ms(100.1) == 10_000
    assert c.now_ms(101.1) == 11_000
    assert c.upper_ms(100.2) >= 10_000 + 200  # certainly not passed yet
    assert c.at_mono_ms(100_100 + 5_000) == 15_000


def test_place_edit_uses_anchors_and_clamps() -> None:
    a = Anchor(pack(1_000_000), 5_000_000)       # HLC said 1e6 when national said 5e6
    b = Anchor(pack(1_060_000), 5_060_000)
    # an edit 30 s after a on the HLC: 30 s after a on national's time line
    assert place_edit(pack(1_030_000), a, b, 9_999_999, 0) == 5_030_000
    # a pinned HLC (clock stepped back): the edit is somewhere between the anchors
    pinned = Anchor(pack(1_000_000, 5), 5_060_000)
    assert place_edit(pack(1_000_000, 7), a, None, 5_090_000, 0) == 5_000_000
    assert place_edit(pack(1_000_000, 7), pinned, None, 5_090_000, 0) == 5_060_000
    # a clock stepped forwards: never later than the next anchor
    assert place_edit(pack(9_000_000), a, b, 9_999_999, 0) == 5_060_000
    # no anchor below (edits before the first sync): the current offset
    assert place_edit(pack(2_000), None, None, 10_000_000, 3_000) == 5_000
    assert place_edit(pack(20_000_000), None, None, 10_000_000, 0) == 10_000_000


# -- conflicts -------------------------------------------------------------------------------------------
def test_conflict_rules() -> None:
    hub = cf.Side("5", at_ms=2000, user="chcp")
    nat = cf.Side("6", at_ms=1000, user="stat")
    assert cf.decide("latest-wins", hub, nat).winner == "hub"
    assert cf.decide("latest-wins", cf.Side("5", at_ms=500), nat).winner == "national"
    assert cf.decide("latest-wins", cf.Side("5", at_ms=1000), nat).winner == "national"  # tie
    assert cf.decide("national-wins", hub, nat).winner == "national"
    assert cf.decide("hub-wins", cf.Side("5", at_ms=1), nat).winner == "hub"
    locked = cf.decide("hub-wins", hub, nat, locked="E7640: expired")
    assert locked.winner == "national" and "E7640" in locked.reason
    assert cf.decide("no-such-policy", hub, nat).policy == "latest-wins"
    assert cf.same(cf.Side("5"), cf.Side("5")) and not cf.same(cf.Side("5"), cf.Side("6"))
    assert cf.same(cf.Side("5", deleted=True), cf.Side("7", deleted=True))
    assert not cf.same(cf.Side("5", comment="a"), cf.Side("5", comment="b"))
    assert cf.changed_since(2, 1) and not cf.changed_since(1, 1) and cf.changed_since(1, None)


# -- import summaries --------------------------------------------------------------------------------------
def _fixture(name: str) -> dict:  # type: ignore[type-arg]
    return json.loads((FIXTURES / name).read_text())


def test_summary_241_success_fixture() -> None:
    body = _fixture("imports/data_value_import_summary_web_response.json")
    r = parse_import_summary(200, body, 10)
    assert r.accepted() == list(range(10)) and not r.rejected and r.style == "2.41"


def test_summary_241_conflicts_by_index() -> None:
    body = {"httpStatus": "Conflict", "httpStatusCode": 409, "status": "WARNING",
            "response": {"responseType": "ImportSummary", "status": "WARNING",
                         "importCount": {"imported": 2, "updated": 0, "ignored": 2, "deleted": 0},
                         "conflicts": [
                             {"object": "202401", "value": "Current date is past expiry days",
                              "errorCode": "E7640", "indexes": [1, 3]}],
                         "rejectedIndexes": [1, 3]}}
    r = parse_import_summary(409, body, 4)
    assert r.accepted() == [0, 2]
    assert r.rejected[1].code == "E7640" and r.rejected[1].locked


def test_summary_243_shape() -> None:
    """2.43: values go in through SQL; codes are E80xx/E81xx; imported is always 0 and
    updated counts every success."""
    body = {"httpStatus": "Conflict", "httpStatusCode": 409, "status": "WARNING",
            "response": {"responseType": "ImportSummary", "status": "WARNING",
                         "importCount": {"imported": 0, "updated": 3, "ignored": 1, "deleted": 0},
                         "conflicts": [{"object": "x", "value": "Value must be a number",
                                        "errorCode": "E8122", "indexes": [2]},
                                       {"object": "y", "value": "Period is closed",
                                        "errorCode": "E8032", "indexes": []}]}}
    r = parse_import_summary(409, body, 4, [{"dataElement": "a"}, {"dataElement": "b"},
                                            {"dataElement": "c"}, {"dataElement": "y"}])
    assert r.style == "2.43" and r.accepted() == [0, 1]
    assert r.rejected[2].code == "E8122" and not r.rejected[2].locked
    assert r.rejected[3].code == "E8032" and r.rejected[3].locked  # matched by object
    assert is_lock("E8030") and is_lock(None, "Data already approved")


def test_summary_legacy_conflict_without_index() -> None:
    body = _fixture("datavalueset/data_value_set_warning.json")
    sent = [{"dataElement": "a", "value": "12"}, {"dataElement": "b", "value": "40L"}]
    r = parse_import_summary(409, body, 2, sent)
    assert r.accepted() == [0] and "positive integer" in r.rejected[1].message
    # an object naming several values (or none): unplaceable, so nothing is accepted
    r = parse_import_summary(409, body, 2, [{"value": "1"}, {"value": "2"}])
    assert r.ambiguous and r.accepted() == []
    assert parse_import_summary(409, body, 1, [{"value": "1"}]).rejected[0]


def test_summary_whole_import_refused() -> None:
    body = {"httpStatus": "Conflict", "httpStatusCode": 409, "status": "ERROR",
            "response": {"responseType": "ImportSummary", "status": "ERROR",
                         "importCount": {"imported": 0, "updated": 0, "ignored": 3, "deleted": 0},
                         "conflicts": [{"object": "u", "value": "User has no write access",
                                        "errorCode": "E7601", "indexes": []}]}}
    r = parse_import_summary(409, body, 3)
    assert r.aborted is not None and r.aborted.code == "E7601" and r.accepted() == []
    bare = {"responseType": "ImportSummary", "status": "SUCCESS",
            "importCount": {"imported": 1, "updated": 0, "ignored": 0, "deleted": 0}}
    assert parse_import_summary(200, bare, 1).accepted() == [0]  # pre-2.38: no envelope


def test_summary_of_an_import_that_failed_to_read_its_body_accepts_nothing() -> None:
    """DHIS2 2.41's answer to a body it cannot parse (a CSV it misreads, a stream error):
    ERROR, no conflicts, every count 0. Nothing was imported."""
    body = {"httpStatus": "Conflict", "httpStatusCode": 409, "status": "ERROR",
            "response": {"responseType": "ImportSummary", "status": "ERROR",
                         "description": "The import process failed: Failed to read record",
                         "importCount": {"imported": 0, "updated": 0, "ignored": 0,
                                         "deleted": 0}, "conflicts": []}}
    r = parse_import_summary(409, body, 3)
    assert r.aborted is not None and "Failed to read" in r.aborted.message
    assert r.accepted() == []


def test_not_a_summary_is_refused() -> None:
    with pytest.raises(NationalRejected):
        parse_import_summary(500, {"httpStatusCode": 500, "message": "boom"}, 3)
    with pytest.raises(NationalRejected):
        parse_import_summary(200, "<html>", 3)


# -- chunk sizing ------------------------------------------------------------------------------------------
def test_chunk_size_grows_with_the_link_and_halves_on_cuts() -> None:
    s = ChunkSizer(size=500, target_s=4.0)
    assert s.success(500, 3000, 0.1) == 2000          # at most 4x per step
    assert s.success(2000, 12000, 0.4) == 8000
    s.success(8000, 48000, 1.6)
    assert s.next_size() == 10000                      # capped
    assert s.failure() == 5000 and s.failure() == 2500
    assert s.error_rate > 0.4
    slow = ChunkSizer(size=2000, target_s=4.0)
    slow.success(2000, 12000, 3.0)                     # 4 KB/s: 32 kbit/s
    assert slow.next_size() < 3000
    assert ChunkSizer(size=5).next_size() == 25        # a floor
    assert slow.timeout_s(2000, floor=20) >= 20


def test_watermarks_and_backoff() -> None:
    now = parse_ts("2024-03-01T00:00:00.000") or 0
    assert parse_ts(pull_since(None, now)) == now - INITIAL_LOOKBACK_MS
    assert parse_ts(pull_since("2024-02-01T00:00:00.000", now)) == \
        (parse_ts("2024-02-01T00:00:00.000") or 0) - OVERLAP_MS
    assert advance("2024-02-01T00:00:00.000", "2024-01-01T00:00:00.000") == \
        "2024-01-01T00:00:00.000"  # follows national's clock, even backwards
    assert advance("2024-02-01T00:00:00.000", "junk") == "2024-02-01T00:00:00.000"
    delays = [backoff_delay(i, base=1, cap=30, rand=lambda: 0.999) for i in range(8)]
    assert delays[0] < 1 and delays[3] < 8 and max(delays) < 30
    assert backoff_delay(3, base=1, cap=30, rand=lambda: 0.0) == 4.0


# -- metadata helpers --------------------------------------------------------------------------------------
def test_metadata_subset_helpers() -> None:
    from appliance import demo
    nat = demo.national()
    hub = demo.hub()
    assert missing_refs(hub, demo.RAMU_UID) == {}
    partial = dict(hub, dataElements=hub["dataElements"][5:])
    missing = missing_refs(partial, demo.RAMU_UID)
    assert missing["dataElements"] == {d["id"] for d in hub["dataElements"][:5]}
    changes = diff({t: v for t, v in hub.items() if t != "users"}, {}, hub)
    assert not changes.put and not changes.removed
    assert {u["username"] for u in changes.users} == {"admin", "chcp", "hub-ramu"}
    user = dict(nat["users"][0], password="x", userCredentials={"password": "y", "id": "z"})
    assert "password" not in strip_user(user) and "password" not in strip_user(user)[
        "userCredentials"]


# -- approvals ---------------------------------------------------------------------------------------
def test_approval_requests_ask_only_what_matters() -> None:
    from datetime import date

    from appliance import demo
    from appliance.store.metadata import MetadataIndex
    from appliance.sync import approvals as ap
    doc = demo.hub()
    form1 = next(d for d in doc["dataSets"] if d["id"] == "NwLMuiBAxSb")
    assert (form1["expiryDays"], form1["openFuturePeriods"]) == (15, 1)
    # the 10th: last month still open (15 expiry days), this one open; the 20th: this one
    assert ap.open_periods(form1, date(2024, 3, 10)) == ["202403", "202402"]
    assert ap.open_periods(form1, date(2024, 3, 20)) == ["202403"]
    assert ap.open_periods({**form1, "openFuturePeriods": 3}, date(2024, 3, 20)) == [
        "202405", "202404", "202403"]
    assert ap.open_periods({**form1, "expiryDays": 0}, date(2024, 3, 20)) == [
        "202403", "202402", "202401"]
    # no workflow, no request
    idx = MetadataIndex(by_type={k: v for k, v in doc.items() if isinstance(v, list)})
    assert ap.plan(idx, demo.RAMU_UID, date(2024, 3, 20)) == []
    sets = [dict(d, workflow={"id": "WfA"}) if d["name"].startswith("CC Form") else d
            for d in doc["dataSets"]]
    idx = MetadataIndex(by_type={**{k: v for k, v in doc.items() if isinstance(v, list)},
                                 "dataSets": sets})
    (ask,) = ap.plan(idx, demo.RAMU_UID, date(2024, 3, 20), pending=["202401", "2024W3"])
    assert ask.wfs == ("WfA",) and ask.periods == ("202401", "202403") and ask.aocs == ()
    assert len(ask.org_units) == 27 and ask.size == 54
    assert ask.params()["fields"] == "ou,pe,state" and "aoc" not in ask.params()
    # the sweep: the periods held (13 months back at most) and those held approved
    (ask,) = ap.plan(idx, demo.RAMU_UID, date(2024, 3, 20), held=["202212", "202302", "202310"],
                     national=[("NwLMuiBAxSb", "202211", demo.CHCP_CLINIC_UID, "x")])
    assert ask.periods == ("202211", "202302", "202310", "202403")
    # national's answer, over the workflow's four forms; unknown states and keys not asked
    # change nothing
    ou = ask.org_units[0]
    flows = {"WfA": sorted(d["id"] for d in sets if d.get("workflow"))}
    approved, open_ = ap.read_reply(ask, [
        {"ou": ou, "pe": "202403", "state": "APPROVED_ABOVE", "permissions": {}},
        {"ou": ou, "pe": "202310", "state": "UNAPPROVED_READY"},
        {"ou": ou, "pe": "202302"},                                   # no state
        {"ou": ou, "pe": "202302", "state": "SOMETHING_NEW"},
        {"ou": "NotAskedOu1", "pe": "202403", "state": "APPROVED_HERE"},
        {"ou": ou, "pe": "202404", "state": "APPROVED_HERE"}], flows, idx.default_coc or "")
    aoc = idx.default_coc
    assert approved == {(ds, "202403", ou, aoc): "APPROVED_ABOVE" for ds in flows["WfA"]}
    assert open_ == {(ds, "202310", ou, aoc) for ds in flows["WfA"]}
    with pytest.raises(SyncError):
        ap.read_reply(ask, {"httpStatusCode": 409}, flows, aoc or "")


def test_cell_groups_read_only_the_cells_named() -> None:
    from appliance.sync.cycle import cell_groups
    # a chunk holding clinic A's last form (Y) and clinic B's first (X), and C's X and Y
    groups = cell_groups([("Y", "202611", "A"), ("X", "202611", "B"),
                          ("X", "202611", "C"), ("Y", "202611", "C"),
                          ("X", "202611", "B")])
    assert groups == [(["X"], ["202611"], ["B"]), (["X", "Y"], ["202611"], ["C"]),
                      (["Y"], ["202611"], ["A"])]
    covered = {(ds, pe, ou) for sets, pes, ous in groups
               for ds in sets for pe in pes for ou in ous}
    assert covered == {("Y", "202611", "A"), ("X", "202611", "B"), ("X", "202611", "C"),
                       ("Y", "202611", "C")}  # A's form X, pushed earlier, is not read
    # org units needing the same forms and months share one read
    assert cell_groups([("X", "202610", ou) for ou in "DCE"]) == [
        (["X"], ["202610"], ["C", "D", "E"])]
    assert cell_groups([]) == []
