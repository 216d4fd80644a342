"""The agent end to end: ``--once`` exit codes, the run loop with fake udev events and
a real fleet stand-in, and the hub's /api/hub/health payload."""

from __future__ import annotations

import argparse
import asyncio
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from appliance import config as config_mod
from appliance.health import command
from appliance.health import state as hstate
from appliance.health.agent import HealthAgent, Settings, ping
from appliance.health.api import health_payload
from appliance.health.power import MARKER_NAME
from appliance.store import Store

from .sink import FleetSink, free_port
from .test_udev import HUAWEI_TTY, STICK_PART

TOKEN = "s3cret-token"


@pytest.fixture
def sink() -> Iterator[FleetSink]:
    s = FleetSink(token=TOKEN).start()
    yield s
    s.close()


def _config(data_dir: Path, url: str) -> config_mod.Config:
    cfg = config_mod.load(None, data_dir)
    cfg.set("hub", "id", "ramu")
    cfg.set("health", "heartbeat_url", url)
    cfg.set("health", "token", TOKEN)
    cfg.set("gpio", "enabled", False)
    return cfg


def _once(cfg: config_mod.Config) -> int:
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    return command.run(parser.parse_args(["--once", "--no-udev"]), cfg)


def test_once_exit_codes(tmp_path: Path, sink: FleetSink, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _config(tmp_path, sink.url)
    assert _once(cfg) == 0
    assert len(sink.received) == 1 and len(sink.received[0].body["samples"]) == 1
    s = sink.received[0].body["samples"][0]
    assert s["cpu_pct"] is not None and s["integrity_ok"] is True
    assert "delivered" in capsys.readouterr().out

    sink.stop()
    assert _once(cfg) == 1  # not delivered: queued
    sink.status = 401
    sink.start()
    assert _once(cfg) == 1  # refused
    assert "not delivered" in capsys.readouterr().out
    sink.status = 200
    assert _once(cfg) == 0
    # the samples kept while down or refused went in the same batch
    assert len(sink.received[-1].body["samples"]) == 3
    seqs = [r.body["seq"] for r in sink.received]
    assert seqs == sorted(seqs)
    assert not (tmp_path / MARKER_NAME).exists()  # a one-shot is not the agent


def test_once_without_url_or_fleet(tmp_path: Path) -> None:
    assert _once(_config(tmp_path / "a", "")) == 2
    assert _once(_config(tmp_path / "b", f"http://127.0.0.1:{free_port()}/api/heartbeats")) == 1


@pytest.fixture
def sync_dir() -> Iterator[tuple[Path, socket.socket]]:
    d = Path(tempfile.mkdtemp(prefix="ha"))
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(str(d / "sync.sock"))
    s.settimeout(2)
    yield d, s
    s.close()
    shutil.rmtree(d, ignore_errors=True)


async def test_agent_loop(sync_dir: tuple[Path, socket.socket], sink: FleetSink) -> None:
    data_dir, sock = sync_dir
    settings = Settings(data_dir=data_dir, hub_id="ramu", heartbeat_url=sink.url, token=TOKEN,
                        interval_s=0.05, heartbeat_every=3, gpio_enabled=False)
    store = Store(data_dir / "hub.db")
    agent = HealthAgent(settings, store, udev_source=[HUAWEI_TTY, STICK_PART])
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    deadline = time.monotonic() + 10
    while len(sink.received) < 3 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert (data_dir / MARKER_NAME).exists()
    payload = await health_payload(store)
    stop.set()
    await task
    assert not (data_dir / MARKER_NAME).exists()  # clean stop

    assert sock.recv(100) == b"modem"  # the modem event poked the sync daemon
    assert len(sink.received) >= 3
    seqs = [r.body["seq"] for r in sink.received]
    assert seqs == sorted(set(seqs))
    assert all(r.signature_ok for r in sink.received)
    assert sink.received[-1].body["samples"][-1]["modem_present"] is True

    assert payload["sample"] is not None and payload["sample"]["at"].endswith("Z")
    assert payload["led"]["status"] in ("waiting", "synced", "syncing")
    assert payload["power_cuts"] == 0
    assert {(e["kind"], e["name"]) for e in payload["events"]} == \
        {("modem", "ttyUSB0"), ("usb-storage", "sda1")}
    n = await store.read(lambda c: c.execute("SELECT count(*) FROM health_sample").fetchone()[0])
    assert n >= 7
    store.close()


async def test_payload_of_an_empty_store() -> None:
    with Store.memory() as store:
        p = await health_payload(store)
    assert p["sample"] is None and p["led"] is None and p["heartbeats_queued"] == 0


def test_settings_from_config(tmp_path: Path) -> None:
    cfg = config_mod.load(None, tmp_path)
    cfg.set("hub", "listen", "0.0.0.0:8081")
    s = Settings.from_config(cfg)
    assert s.hub_ping_url == "http://127.0.0.1:8081/api/system/ping"
    assert (s.interval_s, s.heartbeat_every, s.queue_max) == (60.0, 5, 500)
    assert (s.led_status, s.led_fault, s.button, s.hold_s) == (17, 27, 22, 5.0)


async def test_leds_say_booting_until_the_lan_server_answers(tmp_path: Path,
                                                             sink: FleetSink) -> None:
    closed = f"http://127.0.0.1:{free_port()}/api/system/ping"
    assert await ping(closed) is False
    # any HTTP answer (here the stand-in's 405 for GET) shows the server's loop is alive
    assert await ping(f"http://127.0.0.1:{sink.port}/api/system/ping") is True
    with Store.memory() as store:
        settings = Settings(data_dir=tmp_path, gpio_enabled=False, hub_ping_url=closed,
                            interval_s=0.05)
        agent = HealthAgent(settings, store, udev_source=None, led_poll_s=0.05, hub_ping_s=0.05)
        stop = asyncio.Event()
        task = asyncio.create_task(agent.run(stop))
        await asyncio.sleep(0.4)
        assert agent.latest is not None and agent.led is not None
        assert agent.led.status.value == "booting"
        agent.s.hub_ping_url = f"http://127.0.0.1:{sink.port}/api/system/ping"
        await asyncio.sleep(0.4)
        assert agent.led.status.value == "waiting"  # serving; never synced
        p = await health_payload(store)
        assert p["led"]["status"] == "waiting"
        stop.set()
        await task


async def _run_counting_commits(settings: Settings, sink: FleetSink, beats: int,
                                monkeypatch: pytest.MonkeyPatch) -> tuple[Store, list[str]]:
    """Run the agent's loop until the fleet has ``beats`` heartbeats, then stop it cleanly;
    its store and every write it made (by function)."""
    store = Store(settings.data_dir / "hub.db")
    commits: list[str] = []
    write = store.write

    async def counted(fn: Any) -> Any:
        commits.append(getattr(fn, "__qualname__", "?"))
        return await write(fn)
    monkeypatch.setattr(store, "write", counted)
    agent = HealthAgent(settings, store, udev_source=None, led_poll_s=3600)
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    deadline = time.monotonic() + 20
    while len(sink.received) < beats and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    stop.set()
    await task
    return store, commits


async def test_the_loop_commits_once_a_heartbeat_period(tmp_path: Path, sink: FleetSink,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Each SQLite commit costs the SD card a WAL write, its fsync and a litestream file:
    the loop keeps a period's samples and the heartbeat's bookkeeping in memory and commits
    them together, once a heartbeat period; a clean stop writes what is left. Nothing is
    lost: every sample is on disk, every heartbeat reached the fleet once."""
    settings = Settings(data_dir=tmp_path, hub_id="ramu", heartbeat_url=sink.url, token=TOKEN,
                        interval_s=0.05, heartbeat_every=5, commit_every=1,
                        gpio_enabled=False)
    store, commits = await _run_counting_commits(settings, sink, 4, monkeypatch)
    taken = await store.read(lambda c: c.execute("SELECT count(*) FROM health_sample"
                                                 ).fetchone()[0])
    beats = len(sink.received)
    assert beats >= 4 and taken >= 5 * (beats - 1) + 1
    # a commit per period (the first sample's at once), one when the outcome first turned
    # to delivered, one at the stop, and the LEDs' changes of state; before, each sample,
    # each enqueue, batch, delivery and result record was a commit of its own (>= 4 a beat
    # plus one a sample)
    assert len(commits) <= beats + 2 + 3, commits
    assert len(commits) < taken, (len(commits), taken)
    seqs = [r.body["seq"] for r in sink.received]
    assert seqs == sorted(set(seqs))  # each batch once
    rec = await store.read(lambda c: hstate.get_json(c, "heartbeat"))
    assert rec is not None and rec["delivered"] is True
    store.close()


def _queue(store: Store) -> list[int | None]:
    """Each queued heartbeat's batch (None: in none yet)."""
    return store.read_sync(lambda c: [r[0] for r in c.execute(
        "SELECT batch_seq FROM heartbeat_queue ORDER BY rowid")])


async def test_heartbeats_between_commits_go_from_memory(tmp_path: Path, sink: FleetSink,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The loop commits every commit_every-th heartbeat (15 minutes by default) and sends
    the two between straight from memory: a third of the SD card's commits, the same
    heartbeats to the fleet. At a clean stop every sample is on disk."""
    settings = Settings(data_dir=tmp_path, hub_id="ramu", heartbeat_url=sink.url, token=TOKEN,
                        interval_s=0.04, heartbeat_every=2, commit_every=3, gpio_enabled=False)
    store, commits = await _run_counting_commits(settings, sink, 9, monkeypatch)
    beats = len(sink.received)
    assert beats >= 9
    seqs = [r.body["seq"] for r in sink.received]
    assert seqs == sorted(set(seqs))  # each once, in order
    assert all(len(r.body["samples"]) == 1 for r in sink.received)  # nothing piled up
    sample_commits = [c for c in commits if c.startswith("HealthAgent.commit")]
    # one a third beat, and the clean stop's (with commit_every=1 this is one a beat)
    assert len(sample_commits) <= beats // 3 + 2, commits
    assert len(commits) <= beats // 3 + 2 + 4, commits  # + outcome change and LED states
    taken = store.read_sync(lambda c: c.execute("SELECT count(*) FROM health_sample"
                                                ).fetchone()[0])
    assert taken >= 2 * (beats - 1) + 1  # every sample reached the disk
    assert _queue(store) == []
    store.close()


async def test_a_power_cut_never_reuses_a_seq_sent_from_memory(tmp_path: Path,
                                                                sink: FleetSink) -> None:
    """The seqs of the heartbeats sent from memory are reserved on disk by the commit
    before them: the agent that starts after a power cut numbers after them, so the
    fleet (which refuses a seq not above the last) takes its first heartbeat."""
    settings = Settings(data_dir=tmp_path, hub_id="ramu", heartbeat_url=sink.url, token=TOKEN,
                        commit_every=3, gpio_enabled=False)
    store = Store(tmp_path / "hub.db")
    first = HealthAgent(settings, store, udev_source=None)
    await first.take_sample(0, commit=False)
    await first._beat()  # commits, sends, reserves two
    await first.take_sample(0, commit=False)
    await first._beat()  # from memory: nothing written
    assert [r.body["seq"] for r in sink.received] == [1, 2]
    # the plug is pulled: no commit, no clean stop
    second = HealthAgent(settings, store, udev_source=None)
    await second.take_sample(0, commit=False)
    await second._beat()
    assert [r.body["seq"] for r in sink.received] == [1, 2, 4]
    await second.commit()
    rec = await store.read(lambda c: hstate.get_json(c, "heartbeat"))
    assert rec["delivered"] is True and rec["status"] == 200  # not a 409 "replay"
    store.close()


async def test_a_heartbeat_from_memory_that_fails_is_queued_at_once(tmp_path: Path,
                                                                    sink: FleetSink) -> None:
    """A heartbeat sent from memory that did not certainly arrive is on disk before the
    next period: with no connection it waits unbatched for the next commit's batch; with an
    unknown outcome (a 500) it is frozen under its seq, so its resend is a replay."""
    settings = Settings(data_dir=tmp_path, hub_id="ramu", heartbeat_url=sink.url, token=TOKEN,
                        commit_every=3, gpio_enabled=False)
    store = Store(tmp_path / "hub.db")
    agent = HealthAgent(settings, store, udev_source=None)
    await agent.take_sample(0, commit=False)
    await agent._beat()
    assert [r.body["seq"] for r in sink.received] == [1] and _queue(store) == []

    sink.stop()  # the link is down
    await agent.take_sample(0, commit=False)
    lost_at = agent.latest.at if agent.latest else None
    await agent._beat()
    assert _queue(store) == [None]  # on disk, in no batch
    rec = await store.read(lambda c: hstate.get_json(c, "heartbeat"))
    assert rec["delivered"] is False and rec["error"]
    sink.start()
    await agent.take_sample(0, commit=False)
    await agent._beat()  # no seq reserved now: this one commits and sends both
    last = sink.received[-1].body
    assert last["seq"] == 4 and [s["at"] for s in last["samples"]][0] == lost_at
    assert len(last["samples"]) == 2

    # the next from memory gets a 500: it may have been stored, so it keeps its seq
    await agent.take_sample(0, commit=False)
    await agent._beat()  # the commit after the failure reserved two again
    assert sink.received[-1].body["seq"] == 5 and _queue(store) == []
    sink.status = 500
    await agent.take_sample(0, commit=False)
    await agent._beat()
    assert sink.received[-1].body["seq"] == 6
    assert _queue(store) == [6]
    sink.status = 200
    await agent.take_sample(0, commit=False)
    await agent._beat()  # commits: resends 6 as it was, the newest waits in the queue
    assert [r.body["seq"] for r in sink.received][-2:] == [6, 6]
    await agent.take_sample(0, commit=False)
    await agent._beat()
    assert sink.received[-1].body["seq"] == 7 and len(sink.received[-1].body["samples"]) == 2
    await agent.commit()
    assert _queue(store) == []
    store.close()
