"""A real cycle against the national stand-in counts its bytes on the modem by category
(metadata, pull, push, other), consistent with the client's totals, and writes them in the
commit the cycle already makes: no SQLite commit per request (issue 15)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from appliance.errors import LinkDown
from appliance.store import Store, synclog, wirebytes
from appliance.store.wirebytes import METADATA, OTHER, PULL, PUSH

from .conftest import Pair, first_values, hub_app, hub_edit


def today(store: Store) -> dict[str, tuple[int, int]]:
    day = wirebytes.local_day(time.time())
    return store.read_sync(lambda c: wirebytes.days(c, day)).get(day, {})


def counters(store: Store) -> tuple[int, int]:
    st = store.read_sync(synclog.read_state)
    return int(st.get("bytes_sent") or 0), int(st.get("bytes_received") or 0)


class Commits:
    """Counts the transactions the store commits (group commit: one for many writes) and
    which of them ran a given write function."""

    def __init__(self, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
        self.n = 0
        self.ran: dict[str, set[int]] = {}
        self.monkeypatch = monkeypatch
        real = store._run_batch

        def counting(conn: Any, batch: list[Any]) -> None:
            self.n += 1  # the writer thread runs one batch at a time
            real(conn, batch)
        monkeypatch.setattr(store, "_run_batch", counting)

    def watch(self, owner: Any, name: str) -> None:
        real: Callable[..., Any] = getattr(owner, name)

        def watched(*a: Any, **kw: Any) -> Any:
            self.ran.setdefault(name, set()).add(self.n)
            return real(*a, **kw)
        self.monkeypatch.setattr(owner, name, watched)


async def test_a_cycle_counts_metadata_pull_push_and_other(
        pair: Pair, http: aiohttp.ClientSession) -> None:
    await hub_edit(pair.hub, first_values(60))
    before, sent0 = today(pair.hub), counters(pair.hub)
    client = pair.engine.client
    c_sent, c_recv, requests = client.bytes_sent, client.bytes_received, client.requests

    r = await pair.cycle("cli")  # a full cycle: probe, metadata deltas, data pull, push
    assert r.ok, r.error
    assert r.push.accepted == 60

    # every category saw traffic both ways
    assert set(r.wire) == {METADATA, PULL, PUSH, OTHER}
    assert all(s > 0 and rcv > 0 for s, rcv in r.wire.values()), r.wire
    # the categories add up to what the client counted in this cycle
    assert wirebytes.total(r.wire) == (r.bytes_sent, r.bytes_received)
    assert (r.bytes_sent, r.bytes_received) == (client.bytes_sent - c_sent,
                                                client.bytes_received - c_recv)
    assert client.requests - requests >= 6  # probe, metadata check (2), 3 pulls, push
    # the push's upload is the bulk of what went up; the probe is small
    assert r.wire[PUSH][0] > r.wire[OTHER][0]
    # the table has them under today, and the cumulative counters moved by the same
    after = today(pair.hub)
    assert {k: (after[k][0] - before.get(k, (0, 0))[0], after[k][1] - before.get(k, (0, 0))[1])
            for k in after} == r.wire
    sent1 = counters(pair.hub)
    assert (sent1[0] - sent0[0], sent1[1] - sent0[1]) == (r.bytes_sent, r.bytes_received)
    assert client.wire.take() == {}  # nothing left over in memory

    # the status API shows what the table holds
    async with hub_app(pair.hub, pair.data_dir) as hub, http.get(hub.api("hub/status")) as resp:
        wire = (await resp.json())["wire"]
    for k in (METADATA, PULL, PUSH, OTHER):
        assert (wire["today"][k]["sent"], wire["today"][k]["received"]) == after[k]
    assert wire["today"]["total"]["sent"] == sum(s for s, _ in after.values())


async def test_a_cut_cycle_still_writes_what_crossed_the_wire(pair: Pair) -> None:
    """National gone mid-way: the bytes the probe cost are still counted, in the failed
    cycle's own commit."""
    engine = pair.new_engine()
    before = today(pair.hub)
    async def cut(path: str, *a: Any, **kw: Any) -> Any:  # after the probe, nothing answers
        raise LinkDown("cut for the test", error_code="cut")
    engine.client.get_json = cut  # type: ignore[method-assign]
    try:
        r = await engine.cycle("cli")  # a full cycle: its metadata check is cut
    finally:
        await engine.close()
    assert not r.ok
    assert r.wire.get(OTHER, (0, 0))[0] > 0  # the probe
    after = today(pair.hub)
    assert after[OTHER][0] - before.get(OTHER, (0, 0))[0] == r.wire[OTHER][0]


async def test_no_commit_per_request(pair: Pair, monkeypatch: pytest.MonkeyPatch) -> None:
    """A cycle of many requests writes the day's accounting in one transaction: the one
    that adds to the cumulative counters, which the cycle committed before this table
    existed. So not one commit more, let alone one per request."""
    from appliance.sync import state
    await hub_edit(pair.hub, first_values(30))
    commits = Commits(pair.hub, monkeypatch)
    commits.watch(wirebytes, "record")
    commits.watch(state, "add_bytes")
    requests = pair.engine.client.requests
    r = await pair.cycle("cli")
    assert r.ok and r.push.accepted == 30
    assert pair.engine.client.requests - requests >= 6
    assert len(commits.ran["record"]) == 1  # one transaction wrote wire_bytes
    assert commits.ran["record"] == commits.ran["add_bytes"]  # the counters' own
    assert commits.n > 1  # the watch saw the cycle's other commits too


async def test_the_estimate_is_close_to_what_crossed_the_wire(pair: Pair) -> None:
    """The client estimates each request's bytes (line, headers, body; reply headers and
    body); a proxy in the way counts what really crossed (TLS would come on top)."""
    from tests.netlink.harness import FlappingProxy
    await hub_edit(pair.hub, first_values(200))
    host, port = pair.national.url.rsplit("/", 1)[1].split(":")
    async with FlappingProxy(host, int(port)) as proxy:
        engine = pair.new_engine(national__url=f"http://127.0.0.1:{proxy.port}")
        try:
            r = await engine.cycle("cli")
        finally:
            await engine.close()
        stats = proxy.stats()
    assert r.ok, r.error
    assert abs(r.bytes_sent - stats.bytes_up) < 0.15 * stats.bytes_up, (r.wire, stats)
    assert abs(r.bytes_received - stats.bytes_down) < 0.15 * stats.bytes_down, (r.wire, stats)


async def test_a_first_login_at_national_counts_as_other(pair: Pair) -> None:
    """The hub's first-login check asks national over the same modem: ``other`` bytes."""
    from appliance.sync.upstream import Upstream
    from tests.conftest import free_port

    from .conftest import make_config
    before = today(pair.hub).get(OTHER, (0, 0))
    up = Upstream(make_config(pair.data_dir, "hub", national__url=pair.national.url,
                              hub__org_unit="iAnkU6x2dwu"), pair.hub)
    assert await up("chcp", "district") is not None
    after = today(pair.hub)[OTHER]
    sent, received = after[0] - before[0], after[1] - before[1]
    assert 300 < sent < 1500 and received > 500  # the GET /api/me and the user's document
    dead = Upstream(make_config(pair.data_dir, "hub",
                                national__url=f"http://127.0.0.1:{free_port()}"), pair.hub)
    from appliance.errors import Unauthorized
    with pytest.raises(Unauthorized):
        await dead("chcp", "district")
    assert today(pair.hub)[OTHER] == after  # refused connection: nothing went out
