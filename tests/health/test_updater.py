"""The hub's update agent (#13) against a real fleet service with real signed releases,
over a real hub store; the boot hardware is ``FakeSlots`` (see ``updatekit``), but every
decision is the agent's own: when to download and install, the quiet hours, the health
deadline, mark good or bad, the rollback and its reason, what is refused and never
installed, and the download resumed across cuts through a proxy that resets the link."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from appliance import __version__
from appliance import config as config_mod
from appliance.errors import ConfigError
from appliance.health.agent import HealthAgent, Settings
from appliance.health.quiet import QuietHours
from appliance.health.updater import Updater, UpdateSettings, update_status
from appliance.store import Store

from ..fleet.conftest import FleetServer
from ..netlink.harness import FlappingProxy
from ..rauckit import CA, build_bundle, missing_tools
from .updatekit import (
    HUB,
    Clocks,
    FakeSlots,
    Hub,
    dhaka,
    drive,
    fleet_hub,
    fleet_with,
    open_alerts,
    roll_out,
    settings,
)

pytestmark = pytest.mark.skipif(bool(missing_tools()), reason=f"needs {missing_tools()}")


@dataclass(frozen=True)
class Pki:
    national: CA
    stranger: CA
    bundles: dict[str, Path]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    d = tmp_path_factory.mktemp("pki")
    national, stranger = CA.make(d, "national"), CA.make(d, "stranger")
    good = national.signer("release")
    return Pki(national, stranger, {
        "1.2.0": build_bundle(d / "b120.raucb", good, version="1.2.0", payload=300_000),
        "1.3.0": build_bundle(d / "b130.raucb", good, version="1.3.0", payload=2_000_000),
        "evil": build_bundle(d / "evil.raucb", stranger.signer("release"), version="1.2.1")})


@contextlib.asynccontextmanager
async def hub_and_fleet(tmp_path: Path, pki: Pki, *names: str, rollout: str | None,
                        keyring: Path | None = None, url: str | None = None,
                        **over: object) -> AsyncIterator[tuple[Hub, FleetServer]]:
    bundles = {n: pki.bundles[n] for n in names}
    async with fleet_with(tmp_path, keyring or pki.national.cert, bundles, rollout) as server:
        (tmp_path / "hub").mkdir()
        store = Store(tmp_path / "hub" / "hub.db")
        slots = FakeSlots(pki.national.cert)
        hub = Hub(store, slots, Clocks(), settings(tmp_path / "hub" / "updates",
                                                   url or server.url, server.tokens[HUB],
                                                   **over), boot_id=lambda: slots.boot_id)
        try:
            yield hub, server
        finally:
            store.close()


async def to_installed(hub: Hub) -> Updater:
    agent = hub.agent()
    await agent.start()
    await drive(agent, lambda: agent.state == "installed")
    await drive(agent, lambda: agent.next_check > 0 and agent.checks >= 1)
    return agent


# ------------------------------------------------------------------ install, quiet hours
async def test_offer_is_installed_then_rebooted_only_in_the_quiet_hours(
        tmp_path: Path, pki: Pki) -> None:
    async with hub_and_fleet(tmp_path, pki, "1.2.0", rollout="1.2.0") as (hub, server):
        slots: FakeSlots = hub.slots
        agent = hub.agent()
        await agent.start()
        assert slots.did("mark-good") == ["A"]  # every start outside a trial: keep this slot
        await drive(agent, lambda: agent.state == "installed")
        # written to B, but A stays the slot to boot until the quiet hours
        assert slots.did("install") == [f"{fleet_hub(server)['update_sha256']}.raucb"]
        assert slots.versions["B"] == "1.2.0" and slots.primary == "A"
        assert not list(hub.settings.directory.iterdir())  # the bundle is gone: room kept
        for _ in range(20):  # 14:00 in Dhaka: nothing happens however often it looks
            await agent.step()
        assert hub.reboots == [] and agent.state == "installed"
        assert fleet_hub(server)["update_state"] == "installed"
        hub.clocks.wall = dhaka(1, 59)
        await agent.step()
        assert hub.reboots == []
        hub.clocks.wall = dhaka(2, 30)
        await drive(agent, lambda: bool(hub.reboots))
        assert hub.reboots == [slots.boot_id] and slots.primary == "B"
        assert agent.state == "rebooting"
        assert fleet_hub(server)["update_state"] == "rebooting"


async def test_quiet_hours_wait_for_a_sync_push_and_use_the_fleets_clock(
        tmp_path: Path, pki: Pki) -> None:
    async with hub_and_fleet(tmp_path, pki, "1.2.0", rollout="1.2.0") as (hub, server):
        agent = await to_installed(hub)
        await hub.store.write(lambda tx: tx.execute(
            "INSERT INTO sync_state(key, value) VALUES ('syncing', '1')"))
        hub.clocks.wall = dhaka(3)
        for _ in range(5):
            await agent.step()
        assert hub.reboots == []  # a push is under way
        await hub.store.write(lambda tx: tx.execute(
            "UPDATE sync_state SET value='0' WHERE key='syncing'"))
        # after a power cut the Pi thinks it is 03:00, but the fleet's Date says 10:00
        agent.fleet_offset = lambda: 7 * 3600.0
        for _ in range(5):
            await agent.step()
        assert hub.reboots == []
        agent.fleet_offset = lambda: 0.0
        await drive(agent, lambda: bool(hub.reboots))


def test_quiet_hours_parse_and_pass_midnight() -> None:
    q = QuietHours.parse("23:30-04:00", "Asia/Dhaka")
    assert q is not None and q.describe() == "23:30-04:00 Asia/Dhaka"
    assert [q.contains(dhaka(h, m)) for h, m in ((23, 29), (23, 30), (2, 0), (3, 59), (4, 0),
                                                  (12, 0))] == [False, True, True, True,
                                                                False, False]
    assert QuietHours.parse("", "Asia/Dhaka") is None
    for text, words in (("2am-5am", "must look like"), ("02:00-02:00", "same minute"),
                        ("25:00-03:00", "must look like")):
        with pytest.raises(ConfigError, match=words):
            QuietHours.parse(text, "Asia/Dhaka")
    with pytest.raises(ConfigError, match="timezone"):
        QuietHours.parse("02:00-05:00", "Asia/Nowhere")


async def test_no_check_while_sync_finds_the_link_down(tmp_path: Path, pki: Pki) -> None:
    async with hub_and_fleet(tmp_path, pki, "1.2.0", rollout="1.2.0") as (hub, server):
        await hub.store.write(lambda tx: tx.execute(
            "INSERT INTO sync_state(key, value) VALUES ('link', 'down')"))
        agent = hub.agent()
        await agent.start()
        assert 299 < await agent.step() <= 300 and agent.checks == 0
        await hub.store.write(lambda tx: tx.execute(
            "UPDATE sync_state SET value='up' WHERE key='link'"))
        agent.next_check = 0.0
        await drive(agent, lambda: agent.state == "installed")
        assert agent.checks >= 1


async def test_withdrawn_before_the_reboot_is_forgotten(tmp_path: Path, pki: Pki) -> None:
    async with hub_and_fleet(tmp_path, pki, "1.2.0", rollout="1.2.0") as (hub, server):
        agent = await to_installed(hub)
        rid = fleet_hub(server)["update_rollout"]
        server.db.write_sync(lambda c: c.execute("UPDATE rollouts SET cancelled_at=1, "
                                                 "cancelled_by='test' WHERE id=?", (rid,)))
        agent.next_check = 0.0
        hub.clocks.wall = dhaka(3)
        await drive(agent, lambda: agent.state == "idle")
        for _ in range(5):
            await agent.step()
        assert hub.reboots == [] and hub.slots.primary == "A"


async def test_a_power_cut_after_install_stays_on_the_old_slot(tmp_path: Path,
                                                               pki: Pki) -> None:
    async with hub_and_fleet(tmp_path, pki, "1.2.0", rollout="1.2.0") as (hub, server):
        await to_installed(hub)
        assert hub.slots.power_cycle() == "A"  # at noon, before the quiet hours
        agent = hub.agent()
        await agent.start()
        assert agent.state == "installed" and hub.reboots == []
        hub.clocks.wall = dhaka(2, 10)
        await drive(agent, lambda: bool(hub.reboots))


# --------------------------------------------------------------------- trial and commit
async def reboot_into_new(hub: Hub) -> Updater:
    """Install, reboot in the quiet hours, boot the new slot, start the agent there."""
    agent = await to_installed(hub)
    hub.clocks.wall = dhaka(2, 30)
    await drive(agent, lambda: bool(hub.reboots))
    assert hub.slots.power_cycle() == "B"
    hub.clocks.up = 25.0
    agent = hub.agent()
    await agent.start()
    return agent


async def test_the_new_release_is_committed_once_healthy_for_long_enough(
        tmp_path: Path, pki: Pki) -> None:
    async with hub_and_fleet(tmp_path, pki, "1.2.0", rollout="1.2.0") as (hub, server):
        slots: FakeSlots = hub.slots
        agent = await reboot_into_new(hub)
        assert agent.state == "trial" and hub.sync_requests == ["update"]
        assert slots.did("mark-good") == ["A"]  # not B: not yet
        marker = agent.s.directory / "trial"  # for root's guard, should this agent not run
        assert marker.read_text() == "slot=B\nversion=1.2.0\ndeadline_s=1320\n"
        await agent.step()
        assert agent.rec["unhealthy"] == "sync finished no cycle"  # nothing yet this boot
        await hub.sync_cycle()
        await agent.step()
        assert agent.rec["healthy_since"] == 25.0
        hub.clocks.up = 25.0 + 119
        await agent.step()
        assert agent.state == "trial"
        hub.hub_answers = False  # a hiccup restarts the count
        hub.clocks.up = 25.0 + 130
        await agent.step()
        assert agent.rec["healthy_since"] is None
        assert agent.rec["unhealthy"] == "the hub did not answer /api/hub/status"
        hub.hub_answers = True
        await agent.step()
        hub.clocks.up += 120
        await drive(agent, lambda: agent.state == "committed")
        assert slots.did("mark-good") == ["A", "B"]
        assert not marker.exists()
        await drive(agent, lambda: fleet_hub(server)["update_state"] == "committed")
        h = fleet_hub(server)
        assert (h["update_version"], h["update_slot"]) == ("1.2.0", "B")
        assert agent.report()["version"] == "1.2.0"
        for _ in range(3):  # the same release offered again: nothing to do
            agent.next_check = 0.0
            await agent.step()
        assert len(slots.did("install")) == 1
        # the next boot of B keeps it: the agent marks it good again at start
        assert slots.power_cycle() == "B"
        agent = hub.agent()
        await agent.start()
        assert agent.state == "committed" and slots.did("mark-good")[-1] == "B"
        assert slots.power_cycle() == "B"


async def test_unhealthy_past_the_deadline_is_marked_bad_and_rolled_back(
        tmp_path: Path, pki: Pki) -> None:
    async with hub_and_fleet(tmp_path, pki, "1.2.0", rollout="1.2.0") as (hub, server):
        slots: FakeSlots = hub.slots
        agent = await reboot_into_new(hub)
        hub.hub_answers = False
        await hub.sync_cycle()
        hub.clocks.up = 25.0 + 899
        await agent.step()
        assert len(hub.reboots) == 1  # the one into B; 899 s is within the deadline
        assert slots.did("mark-bad") == []
        hub.clocks.up = 25.0 + 901
        n = len(hub.reboots)
        await drive(agent, lambda: len(hub.reboots) > n)
        assert slots.did("mark-bad") == ["B"] and agent.state == "rolling_back"
        assert slots.power_cycle() == "A"  # B is bad: the bootloader goes back
        agent = hub.agent()
        await agent.start()
        assert agent.state == "rolled_back"
        assert not (agent.s.directory / "trial").exists()
        why = ("1.2.0 was not healthy within 900 s: the hub did not answer "
               "/api/hub/status")
        assert agent.rec["reason"] == why and agent.rec["last_failure"]["reason"] == why
        assert slots.did("mark-good")[-1] == "A"
        await drive(agent, lambda: fleet_hub(server)["update_state"] == "rolled_back")
        h = fleet_hub(server)
        assert (h["update_reason"], h["update_version"], h["update_slot"]) == \
            (why, "1.0.0", "A")
        assert open_alerts(server) == [
            ("update_rollback", f"rolled back from 1.2.0 to the previous release: {why}")]
        # the same rollout is not tried again; a new one is
        installs = len(slots.did("install"))
        for _ in range(3):
            agent.next_check = 0.0
            await agent.step()
        assert len(slots.did("install")) == installs and agent.state == "rolled_back"
        roll_out(server, "1.2.0")
        agent.next_check = 0.0
        await drive(agent, lambda: agent.state == "installed")


async def test_a_slot_that_never_comes_up_falls_back_and_says_so(tmp_path: Path,
                                                                 pki: Pki) -> None:
    async with hub_and_fleet(tmp_path, pki, "1.2.0", rollout="1.2.0") as (hub, server):
        agent = await to_installed(hub)
        hub.clocks.wall = dhaka(2, 30)
        await drive(agent, lambda: bool(hub.reboots))
        assert hub.slots.power_cycle() == "B"  # B hangs before the agent starts: watchdog
        assert hub.slots.power_cycle() == "A"  # tried and never marked good: back to A
        agent = hub.agent()
        await agent.start()
        assert agent.state == "rolled_back"
        assert agent.rec["reason"] == "1.2.0 did not start: the bootloader went back to slot A"

        # and one that started but lost power during its trial (under a new rollout:
        # the failed one is not tried again)
        roll_out(server, "1.2.0")
        agent.next_check = 0.0
        agent = await reboot_into_new(hub)
        await agent.step()
        assert hub.slots.power_cycle() == "A"
        agent = hub.agent()
        await agent.start()
        assert agent.state == "rolled_back" and agent.rec["reason"] == (
            "1.2.0 started but the hub restarted before it was confirmed healthy (sync "
            "finished no cycle)")
        await drive(agent, lambda: fleet_hub(server)["update_state"] == "rolled_back")


GUARD = Path(__file__).parents[2] / "image/rootfs/usr/local/sbin/upazila-update-guard"


class GuardHost:
    """The root guard's world: /proc's cmdline and uptime, and ``rauc`` and ``systemctl``
    on its PATH recording what they were asked."""

    def __init__(self, tmp: Path, booted: str) -> None:
        self.proc, self.bin, self.calls = tmp / "proc", tmp / "bin", tmp / "calls"
        self.proc.mkdir()
        self.bin.mkdir()
        (self.proc / "cmdline").write_text(
            f"BOOT_IMAGE=/vmlinuz root=PARTUUID=7570617a-06 ro rauc.slot={booted} quiet\n")
        self.uptime(60)
        for tool in ("rauc", "systemctl"):
            (self.bin / tool).write_text(f'#!/bin/sh\necho "{tool} $*" >>"{self.calls}"\n')
            (self.bin / tool).chmod(0o755)

    def uptime(self, s: float) -> None:
        (self.proc / "uptime").write_text(f"{s:.2f} {s * 1.7:.2f}\n")

    async def start(self, marker: Path) -> asyncio.subprocess.Process:
        env = {**os.environ, "PATH": f"{self.bin}:{os.environ['PATH']}",
               "UPAZILA_GUARD_PROC": str(self.proc), "UPAZILA_GUARD_POLL_S": "0.05"}
        return await asyncio.create_subprocess_exec(
            str(GUARD), str(marker), env=env, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT)

    def asked(self) -> list[str]:
        return self.calls.read_text().splitlines() if self.calls.exists() else []


async def test_a_release_whose_agent_never_runs_is_rolled_back_by_the_guard(
        tmp_path: Path, pki: Pki) -> None:
    async with hub_and_fleet(tmp_path, pki, "1.2.0", rollout="1.2.0") as (hub, server):
        agent = await to_installed(hub)
        hub.clocks.wall = dhaka(2, 30)
        await drive(agent, lambda: bool(hub.reboots))
        marker = agent.s.directory / "trial"
        assert hub.slots.power_cycle() == "B"
        # on B the health agent never starts; at boot, root's guard waits for its deadline
        host = GuardHost(tmp_path, booted="B")
        guard = await host.start(marker)
        await asyncio.sleep(0.5)
        assert guard.returncode is None and host.asked() == []  # 60 s up: not yet
        host.uptime(1319)
        await asyncio.sleep(0.3)
        assert guard.returncode is None and host.asked() == []
        host.uptime(1320.4)
        out, _ = await asyncio.wait_for(guard.communicate(), 10)
        assert guard.returncode == 0, out
        assert host.asked() == ["rauc status mark-bad booted", "systemctl reboot"], out
        hub.slots.mark_bad()  # what rauc did, as asked
        assert hub.slots.power_cycle() == "A"

        # back on A, the guard (it starts wherever the marker is) leaves it to the agent,
        # which reports the guard's reason and resolves the trial
        host.calls.unlink()
        (host.proc / "cmdline").write_text("root=PARTUUID=7570617a-05 rauc.slot=A\n")
        guard = await host.start(marker)
        out, _ = await asyncio.wait_for(guard.communicate(), 10)
        assert guard.returncode == 0 and host.asked() == [], out
        agent = hub.agent()
        await agent.start()
        assert agent.state == "rolled_back"
        why = ("1.2.0 was not confirmed healthy within 1320 s of booting (the hub's update "
               "agent never resolved its trial): the image's guard marked slot B bad")
        assert agent.rec["reason"] == why, agent.rec
        assert not marker.exists()
        await drive(agent, lambda: fleet_hub(server)["update_state"] == "rolled_back")
        assert fleet_hub(server)["update_reason"] == why

        # no marker: the guard has nothing to do (systemd does not even start it)
        guard = await host.start(marker)
        await asyncio.wait_for(guard.communicate(), 10)
        assert guard.returncode == 0 and host.asked() == []


# ------------------------------------------------------------------------- refusals
async def test_a_bundle_not_signed_by_national_is_refused_before_install(
        tmp_path: Path, pki: Pki) -> None:
    # a fleet that (wrongly) trusts a stranger's CA offers the stranger's bundle
    async with hub_and_fleet(tmp_path, pki, "evil", rollout="1.2.1",
                             keyring=pki.stranger.cert) as (hub, server):
        agent = hub.agent()
        await agent.start()
        await drive(agent, lambda: agent.state == "refused")
        assert hub.slots.did("install") == [] and hub.slots.versions["B"] is None
        assert "RAUC refused the bundle" in agent.rec["reason"]
        assert "signature verification failed" in agent.rec["reason"]
        assert not list(hub.settings.directory.iterdir())
        await drive(agent, lambda: fleet_hub(server)["update_state"] == "refused")
        assert [c for c, _ in open_alerts(server)] == ["update_failed"]
        for _ in range(3):  # not fetched again under this rollout
            agent.next_check = 0.0
            await agent.step()
        assert agent.state == "refused" and hub.slots.did("install") == []


async def test_a_tampered_download_is_refused(tmp_path: Path, pki: Pki) -> None:
    async with hub_and_fleet(tmp_path, pki, "1.2.0", rollout="1.2.0") as (hub, server):
        sha = fleet_hub_sha(server)
        stored = server.config.data_dir / "releases" / f"{sha}.raucb"
        raw = bytearray(stored.read_bytes())
        raw[len(raw) // 2] ^= 0xFF  # the payload: rauc info would not notice (verity does)
        stored.write_bytes(bytes(raw))
        agent = hub.agent()
        await agent.start()
        await drive(agent, lambda: agent.state == "refused")
        assert "SHA-256" in agent.rec["reason"] and hub.slots.did("install") == []


def fleet_hub_sha(server: FleetServer) -> str:
    return str(server.db.read_sync(lambda c: c.execute(
        "SELECT sha256 FROM releases").fetchone()[0]))


async def test_a_failed_install_is_reported(tmp_path: Path, pki: Pki) -> None:
    async with hub_and_fleet(tmp_path, pki, "1.3.0", rollout="1.3.0") as (hub, server):
        hub.slots.fail_install = "rauc install failed: LastError: Failed writing slot"
        agent = hub.agent()
        await agent.start()
        await drive(agent, lambda: agent.state == "failed")
        assert agent.rec["reason"] == "rauc install failed: LastError: Failed writing slot"
        await drive(agent, lambda: fleet_hub(server)["update_state"] == "failed")
        assert open_alerts(server) == [("update_failed", "could not install 1.3.0: rauc "
                                        "install failed: LastError: Failed writing slot")]


# --------------------------------------------------------------------- resumed download
async def test_the_download_resumes_after_the_link_is_cut(tmp_path: Path, pki: Pki) -> None:
    size = pki.bundles["1.3.0"].stat().st_size
    async with fleet_with(tmp_path, pki.national.cert, {"1.3.0": pki.bundles["1.3.0"]},
                          "1.3.0") as server:
        host, port = server.url.rsplit("/", 1)[1].split(":")
        async with FlappingProxy(host, int(port), rate=600_000) as proxy:
            (tmp_path / "hub").mkdir()
            store = Store(tmp_path / "hub" / "hub.db")
            slots = FakeSlots(pki.national.cert)
            hub = Hub(store, slots, Clocks(), settings(
                tmp_path / "hub" / "updates", f"http://127.0.0.1:{proxy.port}",
                server.tokens[HUB], slice_s=30.0), boot_id=lambda: slots.boot_id)
            cuts = [size // 5, size // 2]
            sizes_seen: list[int] = []

            async def cutter() -> None:
                while cuts:
                    if proxy.stats().bytes_down >= cuts[0]:
                        cuts.pop(0)
                        await proxy.cut()
                    await asyncio.sleep(0.005)
            task = asyncio.create_task(cutter())
            try:
                agent = hub.agent()
                await agent.start()

                async def watch() -> None:
                    sizes_seen.append(int(agent.rec.get("bytes") or 0))
                await drive(agent, lambda: agent.state == "installed", between=watch)
            finally:
                task.cancel()
                store.close()
            stats = proxy.stats()
    assert stats.cuts == 2 and stats.connections_reset >= 2
    # every byte came once (plus small check replies): nothing was fetched twice
    assert size <= stats.bytes_down < size + 60_000, (stats, size)
    paused = [b for b in sizes_seen if 0 < b < size]
    assert paused, sizes_seen  # the agent stopped part-way and went on from there
    assert slots.versions["B"] == "1.3.0"


async def test_checks_and_the_download_count_as_fleet_bytes(tmp_path: Path, pki: Pki) -> None:
    """Update checks and the bundle's download are counted on the modem (issue 15), as
    ``fleet`` bytes; the estimate is measured against what a proxy in the way carried."""
    from appliance.store.wirebytes import FLEET, Tally
    size = pki.bundles["1.2.0"].stat().st_size
    async with fleet_with(tmp_path, pki.national.cert, {"1.2.0": pki.bundles["1.2.0"]},
                          "1.2.0") as server:
        host, port = server.url.rsplit("/", 1)[1].split(":")
        async with FlappingProxy(host, int(port)) as proxy:
            (tmp_path / "hub").mkdir()
            store = Store(tmp_path / "hub" / "hub.db")
            slots = FakeSlots(pki.national.cert)
            hub = Hub(store, slots, Clocks(), settings(
                tmp_path / "hub" / "updates", f"http://127.0.0.1:{proxy.port}",
                server.tokens[HUB]), boot_id=lambda: slots.boot_id)
            try:
                agent = hub.agent()
                agent.wire = Tally()
                await agent.start()
                await drive(agent, lambda: agent.state == "installed")
            finally:
                store.close()
            stats = proxy.stats()
    counted = agent.wire.peek()
    assert set(counted) == {FLEET}
    sent, received = counted[FLEET]
    assert received > size
    # the estimate is within a few percent of the bytes that crossed (and a few hundred
    # bytes a request: HTTP/1.1 headers are estimated, TLS would come on top)
    assert abs(received - stats.bytes_down) < 0.02 * stats.bytes_down + 300, (counted, stats)
    assert abs(sent - stats.bytes_up) < 0.1 * stats.bytes_up + 300, (counted, stats)


# ---------------------------------------------------------------- status and heartbeats
async def test_status_api_and_heartbeat_carry_the_update_state(tmp_path: Path,
                                                               pki: Pki) -> None:
    async with hub_and_fleet(tmp_path, pki, "1.2.0", rollout="1.2.0") as (hub, server):
        assert await hub.store.read(update_status) is None  # no agent yet: null
        agent = await to_installed(hub)
        got = await hub.store.read(update_status)
        assert got is not None
        assert (got["state"], got["version"], got["booted_slot"], got["target_version"]) == \
            ("installed", "1.0.0", "A", "1.2.0")
        assert got["last_failure"] is None and got["checked_at"]
        # the health agent puts the same report in its heartbeats
        cfg = config_mod.load(None, tmp_path / "hub")
        cfg.set("gpio", "enabled", False)
        s = Settings.from_config(cfg)
        s.update = hub.settings
        ha = HealthAgent(s, hub.store, udev_source=None, installer=hub.slots)
        assert ha.updater is not None
        await ha.updater.start()
        extra = ha._heartbeat_extra()
        # (the health agent's fallback version is the package's: slot A was flashed)
        assert extra["update"] == agent.report() | {"version": __version__}
        assert extra["update"]["state"] == "installed"


def test_updates_are_off_without_rauc(tmp_path: Path) -> None:
    cfg = config_mod.load(None, tmp_path)
    cfg.set("update", "rauc", "/nonexistent/rauc")
    assert UpdateSettings.from_config(cfg) is None
    cfg.set("update", "rauc", "rauc")
    cfg.set("update", "enabled", False)
    assert UpdateSettings.from_config(cfg) is None
    cfg.set("update", "enabled", True)
    cfg.set("health", "heartbeat_url", "https://fleet.example/api/heartbeats")
    s = UpdateSettings.from_config(cfg)
    assert s is not None and s.url == "https://fleet.example/api/updates/check"
    assert s.directory == tmp_path / "updates" and s.hub_status_url.endswith("/api/hub/status")
    cfg.set("update", "quiet_hours", "soon")
    with pytest.raises(ConfigError, match="quiet_hours"):
        UpdateSettings.from_config(cfg)


async def test_the_loop_installs_and_stops_promptly_mid_download(tmp_path: Path,
                                                                pki: Pki) -> None:
    """``run`` as the health agent runs it; a stop during a slow download ends it at once
    (the slice's thread stops at its next chunk), and the next run resumes the file."""
    async with fleet_with(tmp_path, pki.national.cert, {"1.2.0": pki.bundles["1.2.0"]},
                          "1.2.0") as server:
        host, port = server.url.rsplit("/", 1)[1].split(":")
        async with FlappingProxy(host, int(port), rate=120_000) as proxy:
            (tmp_path / "hub").mkdir()
            store = Store(tmp_path / "hub" / "hub.db")
            slots = FakeSlots(pki.national.cert)
            hub = Hub(store, slots, Clocks(), settings(
                tmp_path / "hub" / "updates", f"http://127.0.0.1:{proxy.port}",
                server.tokens[HUB], slice_s=60.0), boot_id=lambda: slots.boot_id)
            try:
                agent = hub.agent()
                stop = asyncio.Event()
                task = asyncio.create_task(agent.run(stop))
                while int(agent.rec.get("bytes") or 0) == 0 and \
                        proxy.stats().bytes_down < 60_000:
                    await asyncio.sleep(0.02)
                stop.set()
                await asyncio.wait_for(task, 3)
                await asyncio.sleep(0.3)  # the slice's thread notices the stop
                parts = list(hub.settings.directory.glob("*.part"))
                assert len(parts) == 1 and 0 < parts[0].stat().st_size < 300_000, parts
                got = parts[0].stat().st_size
                stop = asyncio.Event()
                agent = hub.agent()
                task = asyncio.create_task(agent.run(stop))
                for _ in range(1000):
                    if agent.state == "installed":
                        break
                    await asyncio.sleep(0.02)
                stop.set()
                await asyncio.wait_for(task, 3)
            finally:
                store.close()
            assert agent.state == "installed" and slots.versions["B"] == "1.2.0"
            size = pki.bundles["1.2.0"].stat().st_size
            assert proxy.stats().bytes_down < size + got // 2 + 60_000  # resumed, not restarted
