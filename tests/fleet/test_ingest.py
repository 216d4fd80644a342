"""The heartbeat endpoint over real HTTP: acceptance, every rejection, replay rules."""

from __future__ import annotations

import gzip
import os
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
import pytest

from appliance.dhis2.timefmt import iso_z as iso
from appliance.fleet.tokens import new_token
from appliance.signing import sign

from .conftest import FleetServer, heartbeat, sample, signed


def assert_web_message(body: dict[str, Any], status: int) -> None:
    assert body["httpStatusCode"] == status
    assert body["status"] == ("OK" if status < 400 else "ERROR")
    assert isinstance(body["httpStatus"], str) and body["httpStatus"]
    assert isinstance(body["message"], str) and body["message"]


async def test_heartbeat_is_accepted_and_stored(server: FleetServer) -> None:
    server.enroll("ramu")
    status, body = await server.send(heartbeat("ramu", seq=42))
    assert status == 200, body
    assert_web_message(body, 200)
    assert body["response"]["seq"] == 42
    assert body["response"]["state"] == "green"
    assert abs(body["response"]["clock_offset_s"]) < 5

    code, hub = await server.get_json("/api/hubs/ramu")
    assert code == 200
    assert hub["last_seq"] == 42
    assert hub["latest"]["temp_c"] == 61.2
    assert hub["latest"]["sync"]["pending"] == 120
    assert hub["latest"]["undervoltage_seen"] is False
    # enrolled without a place: filled in from the heartbeat's org unit
    assert (hub["upazila"], hub["district"], hub["division"]) == \
        ("Ramu", "Cox's Bazar", "Chattogram")
    assert len(hub["history"]) == 1
    assert server.fleet.stats.accepted == 1


async def test_queued_batch_with_summary_is_accepted_and_stored(server: FleetServer) -> None:
    server.enroll("ramu")
    now = time.time()
    samples = [sample(now - 60 * (50 - i), temp_c=50.0 + i / 10, power_cuts=3 + i // 10)
               for i in range(50)]
    summary = {"dropped": 120, "from": iso(now - 6 * 3600), "to": iso(now - 3600),
               "max_temp_c": 83.0, "undervoltage_seen": True, "min_disk_free_mb": 800}
    status, body = await server.send(heartbeat("ramu", seq=7, samples=samples, summary=summary))
    assert status == 200, body
    assert body["response"]["samples"] == 50

    code, hub = await server.get_json("/api/hubs/ramu?hours=2")
    assert len(hub["history"]) == 50
    assert hub["history"][-1]["temp_c"] == pytest.approx(54.9)
    assert hub["latest"]["power_cuts"] == 7
    assert hub["summary"] == summary
    assert hub["recent_heartbeats"][0]["summary"] == summary
    assert hub["recent_heartbeats"][0]["samples"] == 50
    # the summary's undervoltage (an hour ago) raises the alert
    assert "undervoltage" in hub["alerts"]
    assert hub["state"] == "amber"


async def test_samples_out_of_order_and_nulls(server: FleetServer) -> None:
    server.enroll("ramu")
    now = time.time()
    nulls = {k: None for k in ("cpu_pct", "temp_c", "throttled", "undervoltage_now",
                               "undervoltage_seen", "modem_present", "link_up", "disk_pct")}
    samples = [sample(now - 60, **nulls), sample(now - 600)]
    samples[0]["sync"] = None
    status, body = await server.send(heartbeat("ramu", samples=samples, uptime_s=None))
    assert status == 200, body
    _, hub = await server.get_json("/api/hubs/ramu")
    assert hub["latest"]["temp_c"] is None  # the newest sample is the latest, not the last
    assert hub["latest"]["sync"]["pending"] is None
    assert hub["state"] == "green"


async def test_throttled_mask_fills_missing_flags(server: FleetServer) -> None:
    server.enroll("ramu")
    s = sample(time.time() - 30, throttled=0x50005)
    for k in ("undervoltage_now", "undervoltage_seen", "throttled_now", "freq_capped_seen"):
        del s[k]
    status, _ = await server.send(heartbeat("ramu", samples=[s]))
    assert status == 200
    _, hub = await server.get_json("/api/hubs/ramu")
    assert hub["latest"]["undervoltage_now"] is True
    assert hub["latest"]["throttled_now"] is True
    assert hub["latest"]["freq_capped_seen"] is False
    assert "undervoltage" in hub["alerts"]


# -------------------------------------------------------------------------- rejections
Case = Callable[[FleetServer], tuple[bytes, dict[str, str]]]


def _ok(s: FleetServer, **kw: Any) -> tuple[bytes, dict[str, str]]:
    return signed(heartbeat("ramu", seq=kw.pop("seq", 10), **kw), "ramu", s.tokens["ramu"])


def _mutate(fn: Callable[[dict[str, Any]], None]) -> Case:
    def case(s: FleetServer) -> tuple[bytes, dict[str, str]]:
        hb = heartbeat("ramu", seq=10)
        fn(hb)
        return signed(hb, "ramu", s.tokens["ramu"])
    return case


def _headers(**change: str | None) -> Case:
    def case(s: FleetServer) -> tuple[bytes, dict[str, str]]:
        body, headers = _ok(s)
        for k, v in change.items():
            key = k.replace("_", "-")
            if v is None:
                headers.pop(key, None)
            else:
                headers[key] = v
        return body, headers
    return case


def _raw(raw: bytes) -> Case:
    return lambda s: signed(None, "ramu", s.tokens["ramu"], raw=raw)


def _forged(s: FleetServer) -> tuple[bytes, dict[str, str]]:
    body, headers = _ok(s)
    headers["X-Hub-Signature"] = sign(new_token(), body)  # signed with someone else's key
    return body, headers


def _tampered(s: FleetServer) -> tuple[bytes, dict[str, str]]:
    body, headers = _ok(s)
    other = gzip.compress(orjson.dumps(heartbeat("ramu", seq=11, uptime_s=1)))
    return other, headers  # signature of another body


def _other_hub(s: FleetServer) -> tuple[bytes, dict[str, str]]:
    # cox's valid credentials, but the body speaks for ramu
    return signed(heartbeat("ramu", seq=10), "cox", s.tokens["cox"])


def _unknown_hub(s: FleetServer) -> tuple[bytes, dict[str, str]]:
    token = new_token()
    return signed(heartbeat("nowhere", seq=1), "nowhere", token)


def _oversize(s: FleetServer) -> tuple[bytes, dict[str, str]]:
    return signed(None, "ramu", s.tokens["ramu"], raw=os.urandom(1024 * 1024 + 1))


def _gzip_bomb(s: FleetServer) -> tuple[bytes, dict[str, str]]:
    bomb = gzip.compress(b"[" + b" " * (40 * 1024 * 1024) + b"]", compresslevel=9)
    assert len(bomb) < 1024 * 1024
    return signed(None, "ramu", s.tokens["ramu"], raw=bomb)


def _del(key: str) -> Callable[[dict[str, Any]], None]:
    return lambda hb: hb.pop(key)


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def fn(hb: dict[str, Any]) -> None:
        obj: Any = hb
        keys = path.split(".")
        for k in keys[:-1]:
            obj = obj[int(k)] if isinstance(obj, list) else obj[k]
        last = keys[-1]
        if isinstance(obj, list):
            obj[int(last)] = value
        else:
            obj[last] = value
    return fn


REJECTIONS: list[tuple[str, Case, int, str]] = [
    ("unknown hub", _unknown_hub, 401, "unknown hub or wrong token"),
    ("wrong token", _headers(Authorization=f"Bearer {new_token()}"), 401, "wrong token"),
    ("missing token", _headers(Authorization=None), 401, "Bearer"),
    ("basic auth", _headers(Authorization="Basic cmFtdTp4"), 401, "Bearer"),
    ("missing hub id", _headers(X_Hub_Id=None), 401, "X-Hub-Id"),
    ("forged signature", _forged, 401, "Signature"),
    ("tampered body", _tampered, 401, "Signature"),
    ("missing signature", _headers(X_Hub_Signature=None), 401, "Signature"),
    ("another hub's body", _other_hub, 403, "may not send heartbeats for ramu"),
    ("bad gzip", _raw(b"\x1f\x8b\x08\x00 definitely not gzip"), 400, "gzip"),
    ("truncated gzip", _raw(gzip.compress(orjson.dumps(heartbeat()))[:-12]), 400, "gzip"),
    ("bad JSON", _raw(gzip.compress(b'{"hub_id": "ramu", "seq": ')), 400, "JSON"),
    ("not an object", _raw(gzip.compress(b"[1, 2]")), 400, "body must be an object"),
    ("missing seq", _mutate(_del("seq")), 400, "seq is required"),
    ("missing sent_at", _mutate(_del("sent_at")), 400, "sent_at is required"),
    ("missing boot_id", _mutate(_del("boot_id")), 400, "boot_id is required"),
    ("missing samples", _mutate(_del("samples")), 400, "samples is required"),
    ("missing hub_id", _mutate(_del("hub_id")), 400, "hub_id is required"),
    ("empty samples", _mutate(_set("samples", [])), 400, "samples must hold at least one"),
    ("missing sample time", _mutate(lambda hb: hb["samples"][0].pop("at")), 400,
     "samples[0].at is required"),
    ("seq as string", _mutate(_set("seq", "42")), 400, "seq must be a non-negative integer"),
    ("negative seq", _mutate(_set("seq", -1)), 400, "seq must be"),
    ("sent_at as number", _mutate(_set("sent_at", 1732438800)), 400, "sent_at must be"),
    ("sent_at garbage", _mutate(_set("sent_at", "yesterday")), 400, "sent_at is not"),
    ("samples not a list", _mutate(_set("samples", {"at": "x"})), 400, "samples must be a list"),
    ("temp as string", _mutate(_set("samples.0.temp_c", "hot")), 400, "samples[0].temp_c"),
    ("bool as string", _mutate(_set("samples.0.undervoltage_now", "yes")), 400,
     "samples[0].undervoltage_now must be true, false or null"),
    ("number as bool", _mutate(_set("samples.0.disk_pct", True)), 400, "samples[0].disk_pct"),
    ("fractional count", _mutate(_set("samples.0.sync.pending", 1.5)), 400,
     "samples[0].sync.pending must be an integer"),
    ("sync not an object", _mutate(_set("samples.0.sync", 5)), 400, "samples[0].sync must be"),
    ("summary wrong type", _mutate(_set("summary", {"dropped": "many"})), 400, "summary.dropped"),
    ("org_unit wrong type", _mutate(_set("org_unit", "Ramu")), 400, "org_unit must be"),
    ("oversize body", _oversize, 413, "limit"),
    ("gzip bomb", _gzip_bomb, 413, "inflates"),
    ("wrong content type", _headers(Content_Type="text/plain"), 415, "application/json"),
    ("form content type", _headers(Content_Type="application/x-www-form-urlencoded"), 415,
     "application/json"),
    ("brotli", _headers(Content_Encoding="br"), 415, "gzip"),
]


@pytest.fixture
async def primed(server: FleetServer) -> AsyncIterator[FleetServer]:
    """ramu and cox enrolled, ramu with accepted heartbeats up to seq 9."""
    server.enroll("ramu")
    server.enroll("cox", district="Cox's Bazar", division="Chattogram")
    for seq in (5, 9):
        status, body = await server.send(heartbeat("ramu", seq=seq))
        assert status == 200, body
    yield server


@pytest.mark.parametrize("name,case,status,text", REJECTIONS, ids=[r[0] for r in REJECTIONS])
async def test_rejection(primed: FleetServer, name: str, case: Case, status: int,
                         text: str) -> None:
    before = primed.snapshot()
    body, headers = case(primed)
    code, reply = await primed.post(body, headers)
    assert code == status, reply
    assert_web_message(reply, status)
    assert text in reply["message"], reply["message"]
    assert primed.snapshot() == before, "a rejected heartbeat changed the stored state"
    assert sum(primed.fleet.stats.rejected.values()) == 1


async def test_chunked_oversize_body_is_413(primed: FleetServer) -> None:
    body, headers = _oversize(primed)

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the limit bites on read
        for i in range(0, len(body), 65536):
            yield body[i:i + 65536]
    before = primed.snapshot()
    async with primed.session.post(primed.url + "/api/heartbeats", data=chunks(),
                                   headers=headers) as r:
        assert r.status == 413
        assert_web_message(await r.json(), 413)
    assert primed.snapshot() == before


@pytest.mark.parametrize("seq", [9, 5, 0])
async def test_replayed_seq_is_409(primed: FleetServer, seq: int) -> None:
    before = primed.snapshot()
    code, reply = await primed.send(heartbeat("ramu", seq=seq))
    assert code == 409
    assert_web_message(reply, 409)
    assert f"seq {seq} is not after the last accepted seq 9" in reply["message"]
    assert primed.snapshot() == before


async def test_exact_replay_of_an_accepted_body_is_409(server: FleetServer) -> None:
    server.enroll("ramu")
    body, headers = signed(heartbeat("ramu", seq=3), "ramu", server.tokens["ramu"])
    assert (await server.post(body, headers))[0] == 200
    before = server.snapshot()
    code, reply = await server.post(body, headers)
    assert code == 409
    assert reply["errorCode"] == "replay"
    assert server.snapshot() == before


async def test_wrong_method_and_unknown_path_are_web_messages(server: FleetServer) -> None:
    code, body = await server.get_json("/api/heartbeats")
    assert code == 405
    assert_web_message(body, 405)
    code, body = await server.get_json("/api/hubs/nope")
    assert code == 404
    assert_web_message(body, 404)


# ---------------------------------------------------------------- clocks and replays
async def test_hub_with_a_wrong_clock_still_reports(server: FleetServer) -> None:
    """No RTC: after a power cut the hub's clock is hours behind. It must get through,
    and its offset becomes an alert, not a rejection."""
    server.enroll("ramu")
    hub_now = time.time() - 3 * 3600
    status, body = await server.send(heartbeat("ramu", seq=1, sent_at=hub_now, boot_id="b1"))
    assert status == 200, body
    assert body["response"]["clock_offset_s"] == pytest.approx(3 * 3600, abs=5)
    # same boot, same (wrong) clock: still fine
    status, body = await server.send(heartbeat("ramu", seq=2, sent_at=hub_now + 60,
                                               boot_id="b1"))
    assert status == 200, body
    _, hub = await server.get_json("/api/hubs/ramu")
    assert hub["alerts"] == ["clock"]
    assert hub["state"] == "amber"
    # its samples are placed on the fleet's time line, not three hours back
    assert hub["history"][-1]["t"] >= iso(time.time() - 300)
    # NTP answers: the offset jumps back to ~0 within the same boot; accepted, alert clears
    status, body = await server.send(heartbeat("ramu", seq=3, boot_id="b1"))
    assert status == 200, body
    _, hub = await server.get_json("/api/hubs/ramu")
    assert hub["alerts"] == []


async def test_hub_that_corrects_sent_at_is_still_flagged(server: FleetServer) -> None:
    """The hub learnt the fleet's time from our Date header and stamps sent_at in it, but
    its wall clock (its own estimate in the samples) is still 3 h behind."""
    server.enroll("ramu")
    s = sample(time.time() - 3 * 3600, clock_offset_s=3 * 3600.0, ntp_synced=False)
    status, body = await server.send(heartbeat("ramu", seq=1, samples=[s]))
    assert status == 200, body
    _, hub = await server.get_json("/api/hubs/ramu")
    assert hub["alerts"] == ["clock"]
    assert hub["clock_offset_s"] == pytest.approx(3 * 3600, abs=5)
    assert abs(hub["sent_at_offset_s"]) < 5
    # its sample, stamped on the wrong wall clock, is placed at the right time
    assert hub["history"][-1]["t"] >= iso(time.time() - 60)

    # no estimate of its own (sync never reached national), but it says it is not
    # NTP-synchronised: its newest sample's time gives it away
    s = sample(time.time() - 2 * 3600, clock_offset_s=None, ntp_synced=False)
    assert (await server.send(heartbeat("ramu", seq=2, samples=[s])))[0] == 200
    _, hub = await server.get_json("/api/hubs/ramu")
    assert hub["alerts"] == ["clock"]
    assert hub["clock_offset_s"] == pytest.approx(2 * 3600, abs=5)
    # once synchronised, an old newest sample (a late batch) is not read as a clock error
    s = sample(time.time() - 2 * 3600, clock_offset_s=0.2, ntp_synced=True)
    assert (await server.send(heartbeat("ramu", seq=3, samples=[s])))[0] == 200
    _, hub = await server.get_json("/api/hubs/ramu")
    assert hub["alerts"] == []


async def test_clock_ahead_is_accepted_too(server: FleetServer) -> None:
    server.enroll("ramu")
    status, body = await server.send(heartbeat("ramu", seq=1, sent_at=time.time() + 7200))
    assert status == 200, body
    assert body["response"]["state"] == "amber"


async def test_delayed_heartbeat_within_a_boot_is_refused(server: FleetServer) -> None:
    """seq is new, but sent_at says it was sent two hours ago while this boot's clock was
    right: a held-back or replayed message that would mask a silent hub."""
    server.enroll("ramu")
    now = time.time()
    assert (await server.send(heartbeat("ramu", seq=1, sent_at=now, boot_id="b1")))[0] == 200
    before = server.snapshot()
    code, reply = await server.send(heartbeat("ramu", seq=2, sent_at=now - 7200, boot_id="b1"))
    assert code == 409
    assert reply["errorCode"] == "skew"
    assert "replayed or delayed" in reply["message"]
    assert server.snapshot() == before
    # inside max_skew_s (900 s) it is ordinary latency or drift
    code, reply = await server.send(heartbeat("ramu", seq=2, sent_at=now - 600, boot_id="b1"))
    assert code == 200, reply
    # a new boot may come back with any clock
    code, reply = await server.send(heartbeat("ramu", seq=3, sent_at=now - 7200, boot_id="b2"))
    assert code == 200, reply


async def test_rejections_are_counted_by_reason(primed: FleetServer) -> None:
    await primed.send(heartbeat("ramu", seq=9))
    await primed.post(*_forged(primed))
    await primed.post(*_headers(Content_Type="text/plain")(primed))
    assert primed.fleet.stats.rejected == {"replay": 1, "signature": 1, "content_type": 1}
