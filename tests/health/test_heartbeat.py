"""Heartbeats against a real aiohttp fleet stand-in on a loopback port: the wire
contract, queueing across a link cut, the bounded queue, and every outcome."""

from __future__ import annotations

import gzip
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from appliance import __version__
from appliance.health import heartbeat as hb_mod
from appliance.health import state
from appliance.health.heartbeat import HeartbeatClient, HubIdentity
from appliance.health.sample import Sample
from appliance.signing import sign as signature
from appliance.store import Store

from .sink import FleetSink

TOKEN = "s3cret-token"
IDENTITY = HubIdentity("ramu", "Ramu UHC hub", "ouRamu00001", __version__)


@pytest.fixture
def sink() -> Iterator[FleetSink]:
    s = FleetSink(token=TOKEN).start()
    yield s
    s.close()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "hub.db")
    yield s
    s.close()


@pytest.fixture
async def client(store: Store, sink: FleetSink, tmp_path: Path) -> AsyncIterator[HeartbeatClient]:
    (tmp_path / "boot_id").write_text("e8a47f6d-630d-422b-9f16-dcdf0a3fe56b\n")
    c = HeartbeatClient(store, url=sink.url, token=TOKEN, identity=IDENTITY, queue_max=500,
                        boot_id_path=str(tmp_path / "boot_id"), timeout_s=5)
    yield c
    await c.close()


def sample(i: int, **over: Any) -> dict[str, Any]:
    d = Sample(at=f"2026-11-24T09:{i:02d}:00Z", cpu_pct=10.0 + i, temp_c=60.0, disk_free_mb=9000,
               undervoltage_now=False, undervoltage_seen=False).to_dict()
    d.update(over)
    return d


async def queued(store: Store) -> int:
    return await store.read(hb_mod.queued_count)


async def test_wire_contract(client: HeartbeatClient, sink: FleetSink, store: Store) -> None:
    await client.enqueue(sample(0))
    res = await client.flush()
    assert res.delivered and res.status == 200 and res.count == 1 and res.seq == 1
    [got] = sink.received
    h = got.headers
    assert h["Content-Type"] == "application/json" and h["Content-Encoding"] == "gzip"
    assert h["X-Hub-Id"] == "ramu" and h["Authorization"] == f"Bearer {TOKEN}"
    assert h["X-Hub-Signature"] == signature(TOKEN, got.raw) and got.signature_ok
    assert got.raw[:2] == b"\x1f\x8b"  # the body really is gzip
    b = json.loads(gzip.decompress(got.raw))
    assert set(b) == {"hub_id", "seq", "sent_at", "version", "name", "org_unit", "boot_id",
                      "uptime_s", "samples", "summary"}
    assert (b["hub_id"], b["seq"], b["version"], b["name"]) == ("ramu", 1, __version__, "Ramu UHC hub")
    assert b["boot_id"] == "e8a47f6d-630d-422b-9f16-dcdf0a3fe56b" and b["summary"] is None
    assert b["sent_at"].endswith("Z") and isinstance(b["uptime_s"], int)
    assert b["org_unit"] == {"id": "ouRamu00001", "name": None, "district": None, "division": None}
    assert b["samples"] == [sample(0)]
    assert set(b["samples"][0]["sync"]) == {"pending", "conflicts", "rejected", "last_success", "lag_s"}
    assert await queued(store) == 0


async def test_link_cut_queues_then_one_batch(client: HeartbeatClient, sink: FleetSink,
                                              store: Store) -> None:
    await client.enqueue(sample(0))
    assert (await client.flush()).delivered
    sink.stop()  # the link goes down
    for i in range(1, 4):
        await client.enqueue(sample(i))
        res = await client.flush()
        assert not res.delivered and res.status is None and "unreachable" in (res.error or "")
        assert res.queued == i
    assert len(sink.received) == 1
    sink.start()  # the link is back
    await client.enqueue(sample(4))
    res = await client.flush()
    assert res.delivered and res.count == 4 and res.queued == 0
    assert len(sink.received) == 2  # ONE POST carried the whole backlog
    last = sink.received[-1]
    assert last.signature_ok
    assert [s["at"] for s in last.body["samples"]] == [sample(i)["at"] for i in range(1, 5)]
    seqs = [r.body["seq"] for r in sink.received]
    assert seqs == sorted(seqs) and len(set(seqs)) == 2
    assert await queued(store) == 0


async def test_seq_strictly_increases_across_restarts(tmp_path: Path, sink: FleetSink) -> None:
    seqs: list[int] = []
    for _ in range(3):  # three agent lifetimes on one database file
        with Store(tmp_path / "hub.db") as st:
            c = HeartbeatClient(st, url=sink.url, token=TOKEN, identity=IDENTITY, queue_max=10)
            await c.enqueue(sample(0))
            res = await c.flush()
            await c.close()
            assert res.delivered and res.seq is not None
            seqs.append(res.seq)
    assert seqs == sorted(seqs) and len(set(seqs)) == 3
    assert [r.body["seq"] for r in sink.received] == seqs


async def test_bounded_queue_folds_oldest_into_summary(store: Store, sink: FleetSink) -> None:
    c = HeartbeatClient(store, url=sink.url, token=TOKEN, identity=IDENTITY, queue_max=3,
                        timeout_s=5)
    sink.stop()
    temps = [70.0, 84.5, 66.0, 61.0, 62.0, 63.0, 64.0]
    for i, t in enumerate(temps):
        await c.enqueue(sample(i, temp_c=t, disk_free_mb=9000 - i * 100,
                               undervoltage_now=(i == 2)))
        await c.flush()
        assert await queued(store) == min(i + 1, 3)
    sink.start()
    res = await c.flush()
    await c.close()
    assert res.delivered
    body = sink.received[-1].body
    assert [s["at"] for s in body["samples"]] == [sample(i)["at"] for i in (4, 5, 6)]
    assert body["summary"] == {"dropped": 4, "from": sample(0)["at"], "to": sample(3)["at"],
                               "max_temp_c": 84.5, "undervoltage_seen": True,
                               "min_disk_free_mb": 8700}
    # delivered: the summary is not sent again
    await c.enqueue(sample(7))
    assert (await c.flush()).delivered
    assert sink.received[-1].body["summary"] is None


async def test_auth_refused_keeps_queue_and_records_error(client: HeartbeatClient,
                                                          sink: FleetSink, store: Store) -> None:
    sink.status = 401
    await client.enqueue(sample(0))
    res = await client.flush()
    assert not res.delivered and res.status == 401 and "token" in (res.error or "")
    assert await queued(store) == 1
    rec = await store.read(lambda c: state.get_json(c, "heartbeat"))
    assert rec["delivered"] is False and rec["status"] == 401 and "401" in rec["error"]
    sink.status = 403
    await client.enqueue(sample(1))
    assert (await client.flush()).status == 403
    sink.status = 200
    res = await client.flush()
    assert res.delivered and res.count == 2
    assert [s["at"] for s in sink.received[-1].body["samples"]] == [sample(0)["at"], sample(1)["at"]]
    seqs = [r.body["seq"] for r in sink.received]
    assert seqs == sorted(set(seqs))  # refused batches were not stored: new seqs are fine


async def test_server_error_retries_the_same_seq_then_409_is_delivered(
        client: HeartbeatClient, sink: FleetSink, store: Store) -> None:
    await client.enqueue(sample(0))
    sink.status = 500  # outcome unknown: the fleet may or may not have stored it
    res = await client.flush()
    assert not res.delivered and res.status == 500 and await queued(store) == 1
    await client.enqueue(sample(1))  # a new sample while the batch is frozen
    sink.status = 200
    sink.stored_seqs.add(res.seq or -1)  # pretend the 500 happened after storing it
    res2 = await client.flush()
    # the frozen batch is resent with the same seq, the fleet says 409 (seen it), and the
    # new sample follows in the next batch
    assert res2.delivered and await queued(store) == 0
    assert [r.body["seq"] for r in sink.received] == [res.seq, res.seq, (res.seq or 0) + 1]
    assert [len(r.body["samples"]) for r in sink.received] == [1, 1, 1]


async def test_replay_409_counts_as_delivered(client: HeartbeatClient, sink: FleetSink,
                                              store: Store) -> None:
    sink.status = 409
    await client.enqueue(sample(0))
    res = await client.flush()
    assert res.delivered and res.status == 409 and await queued(store) == 0


async def test_wrong_clock_409_is_resent_in_fleet_time(client: HeartbeatClient, sink: FleetSink,
                                                       store: Store,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import time as real_time

    class SkewedTime:  # the Pi booted without RTC and NTP: two hours behind
        @staticmethod
        def time() -> float:
            return real_time.time() - 7200

    monkeypatch.setattr(hb_mod, "time", SkewedTime)
    sink.max_skew_s = 900
    await client.enqueue(sample(0))
    res = await client.flush()
    assert res.delivered and res.status == 200
    assert [r.body["seq"] for r in sink.received] == [1, 1]  # refused for skew, then accepted
    first, second = (r.body["sent_at"] for r in sink.received)
    assert first < second  # the resend was stamped in the fleet's time
    assert 1 in sink.stored_seqs


async def test_org_unit_names_from_metadata(client: HeartbeatClient, sink: FleetSink,
                                            store: Store) -> None:
    tree = [("ouBangladesh", "Bangladesh", 1, "/ouBangladesh"),
            ("ouChattogram", "Chattogram", 2, "/ouBangladesh/ouChattogram"),
            ("ouCoxsBazar1", "Cox's Bazar", 3, "/ouBangladesh/ouChattogram/ouCoxsBazar1"),
            ("ouRamu00001", "Ramu Upazila", 4, "/ouBangladesh/ouChattogram/ouCoxsBazar1/ouRamu00001")]

    def fill(tx: Any) -> None:
        for uid, name, level, path in tree:
            doc = {"id": uid, "name": name, "level": level, "path": path}
            tx.execute("INSERT INTO metadata(type, uid, name, path, doc) VALUES "
                       "('organisationUnits', ?, ?, ?, ?)", (uid, name, path, json.dumps(doc)))
    await store.write(fill)
    await client.enqueue(sample(0))
    assert (await client.flush()).delivered
    assert sink.received[-1].body["org_unit"] == {
        "id": "ouRamu00001", "name": "Ramu Upazila", "district": "Cox's Bazar",
        "division": "Chattogram"}


async def test_nothing_queued_sends_nothing(client: HeartbeatClient, sink: FleetSink) -> None:
    res = await client.flush()
    assert res.delivered and res.count == 0 and sink.received == []
