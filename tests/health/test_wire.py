"""The health agent's own bytes to the fleet count on the modem (issue 15): they are kept
in memory and written with the next sample's commit (no commit of their own), and every
heartbeat carries the day's and the month's bytes by category and the modem budget."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from appliance.health.agent import HealthAgent, Settings
from appliance.health.heartbeat import encode, post, request_headers
from appliance.store import Store, wirebytes
from appliance.store.wirebytes import FLEET, PULL

from .sink import FleetSink

TOKEN = "s3cret-token"


@pytest.fixture
def sink() -> Iterator[FleetSink]:
    s = FleetSink(token=TOKEN).start()
    yield s
    s.close()


def today(store: Store) -> dict[str, tuple[int, int]]:
    day = wirebytes.local_day(time.time())
    return store.read_sync(lambda c: wirebytes.days(c, day)).get(day, {})


def test_a_post_s_estimate_covers_what_went_on_the_wire(sink: FleetSink) -> None:
    body = encode({"seq": 1, "sent_at": "2026-12-06T00:00:00Z", "pad": os.urandom(3000).hex()})
    headers = request_headers("ramu", TOKEN, body)
    out = post(sink.url, body, headers, 10.0, read_ok=4096)
    raw = sink.received[-1]
    assert out.status == 200 and len(raw.raw) == len(body) > 3000
    # the body and every header sent, plus the request line and http.client's own headers
    assert len(raw.raw) + sum(len(k) + len(v) for k, v in raw.headers.items()) \
        <= out.sent_bytes <= len(raw.raw) + 1000
    assert out.received_bytes > len(out.text) > 0
    sink.stop()
    refused = post(sink.url, body, headers, 2.0)  # no connection: nothing was sent
    assert refused.status is None and refused.sent_bytes == refused.received_bytes == 0


async def test_fleet_bytes_ride_with_the_sample_and_heartbeats_carry_the_month(
        tmp_path: Path, sink: FleetSink, monkeypatch: pytest.MonkeyPatch) -> None:
    store = Store(tmp_path / "hub.db")
    try:
        await store.write(lambda tx: wirebytes.record(tx, {PULL: (4000, 90_000)}, time.time()))
        agent = HealthAgent(Settings(data_dir=tmp_path, hub_id="ramu", heartbeat_url=sink.url,
                                     token=TOKEN, gpio_enabled=False, modem_budget_mb=50),
                            store, udev_source=None)
        sample = await agent.take_sample(cpu_interval=0)
        res = await agent.heartbeat(sample)
        assert res.delivered
        first = sink.received[-1]
        wire = first.body["wire"]
        assert wire["budgetMb"] == 50
        assert wire["today"]["pull"] == {"sent": 4000, "received": 90_000}
        assert wire["today"]["date"] == wirebytes.local_day(time.time())
        # the heartbeat's own bytes are counted in memory, not written yet
        counted = agent.wire.peek()[FLEET]
        assert len(first.raw) < counted[0] < len(first.raw) + 1500
        assert counted[1] > 0
        assert FLEET not in today(store)

        # the next sample writes them, in its own commit: no commit of their own
        batches: list[set[str]] = []
        real_batch = store._run_batch

        def counting(conn: Any, batch: list[Any]) -> None:
            batches.append(set())
            real_batch(conn, batch)
        monkeypatch.setattr(store, "_run_batch", counting)
        for owner, name in ((wirebytes, "record"),):
            real: Callable[..., Any] = getattr(owner, name)

            def watched(*a: Any, _real: Callable[..., Any] = real, _n: str = name,
                        **kw: Any) -> Any:
                batches[-1].add(_n)
                return _real(*a, **kw)
            monkeypatch.setattr(owner, name, watched)
        await agent.take_sample(cpu_interval=0)
        assert batches == [{"record"}]  # one commit: the sample's, carrying the bytes
        assert today(store)[FLEET] == counted and agent.wire.peek() == {}

        res = await agent.heartbeat()
        assert res.delivered
        second = sink.received[-1].body["wire"]["today"]
        assert second["other"]["fleet"] == {"sent": counted[0], "received": counted[1]}
        assert second["total"]["sent"] == 4000 + counted[0]
        # a stop writes what the last heartbeat cost: no sample follows it
        assert agent.wire.peek()
        await agent.aclose()
        assert agent.wire.peek() == {}
        written = today(store)[FLEET]
        assert written[0] > counted[0] and written[1] > counted[1]
    finally:
        store.close()


async def test_a_hub_without_a_budget_says_so(tmp_path: Path, sink: FleetSink) -> None:
    with Store(tmp_path / "hub.db") as store:
        agent = HealthAgent(Settings(data_dir=tmp_path, hub_id="ramu", heartbeat_url=sink.url,
                                     token=TOKEN, gpio_enabled=False), store, udev_source=None)
        await agent.heartbeat(await agent.take_sample(cpu_interval=0))
        await agent.aclose()
    wire = sink.received[-1].body["wire"]
    assert wire["budgetMb"] is None and wire["monthUsedPct"] is None
    assert wire["month"]["total"] == {"sent": 0, "received": 0}  # the first heartbeat's
