"""The update agent on the Raspberry Pi's A/B boot (#13), with the real RAUC service:
``bootloader=custom`` and image/rootfs/usr/local/sbin/upazila-rauc-tryboot over autoboot.txt,
the slots as files. The reboot is ``PiFirmware.reboot`` (the fake of the hardware: the
kernel hands systemd's reboot argument to the firmware, which boots autoboot.txt's
``[tryboot]`` partition once with the flag, ``[all]``'s otherwise)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from appliance.store import Store

from ..conftest import copy_db, running_hub
from ..fleet.conftest import FleetServer
from ..rauckit import CA, RaucRig, build_bundle, missing_tools, rauc_rig
from .updatekit import HUB, Clocks, Hub, dhaka, drive, fleet_hub, fleet_with, open_alerts, settings

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(bool(missing_tools()), reason=f"needs {missing_tools()}"),
    pytest.mark.skipif(not os.path.exists("/dev/loop-control"),
                       reason="rauc install loop-mounts the bundle: no loop devices here"),
]


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> CA:
    return CA.make(tmp_path_factory.mktemp("pki"), "national")


@contextlib.asynccontextmanager
async def pi_hub(tmp_path: Path, ca: CA, demo_template: dict[str, Path], bundle: Path,
                 version: str, *, serve_hub: bool = True, kernel_tryboot: bool = True
                 ) -> AsyncIterator[tuple[Hub, RaucRig, FleetServer]]:
    async with fleet_with(tmp_path, ca.cert, {version: bundle}, version) as server:
        with rauc_rig(tmp_path / "rauc", ca.cert, bootloader="tryboot",
                      kernel_tryboot=kernel_tryboot) as rig:
            data = tmp_path / "hub"
            store = Store(copy_db(demo_template["hub"], data))
            try:
                async with contextlib.AsyncExitStack() as stack:
                    url = "http://127.0.0.1:9/api/hub/status"  # nothing listens
                    if serve_hub:
                        hub_url = (await stack.enter_async_context(running_hub(store, data))).url
                        url = hub_url + "/api/hub/status"
                    hub = Hub(store, rig, Clocks(), settings(
                        data / "updates", server.url, server.tokens[HUB], hub_status_url=url),
                        boot_id=lambda: rig.boot_id, hub_answers=None)
                    yield hub, rig, server
            finally:
                store.close()


async def test_trial_by_tryboot_then_commit(tmp_path: Path, ca: CA,
                                            demo_template: dict[str, Path]) -> None:
    bundle = build_bundle(tmp_path / "b.raucb", ca.signer("release"), version="2.0.0")
    async with pi_hub(tmp_path, ca, demo_template, bundle, "2.0.0") as (hub, rig, server):
        pi = rig.firmware
        agent = hub.agent()
        await agent.start()
        await drive(agent, lambda: agent.state == "installed")
        # RAUC wrote B; the agent made A primary again: nothing armed, a power cut boots A
        assert pi.autoboot() == {"all": 2, "tryboot": 2} and not pi.reboot_param.exists()
        hub.clocks.wall = dhaka(2, 15)
        await drive(agent, lambda: bool(hub.reboots))
        assert pi.autoboot() == {"all": 2, "tryboot": 3}
        assert pi.reboot_param.read_text() == "0 tryboot\n"
        assert rig.power_cycle() == "B"
        agent = hub.agent()
        await agent.start()
        assert agent.state == "trial" and agent.report()["version"] == "2.0.0"
        assert pi.autoboot() == {"all": 2, "tryboot": 3}  # not committed yet
        await hub.sync_cycle()
        await agent.step()
        hub.clocks.up += 121
        await drive(agent, lambda: agent.state == "committed")
        assert pi.autoboot() == {"all": 3, "tryboot": 3}  # rauc mark-good: the commit
        await drive(agent, lambda: fleet_hub(server)["update_state"] == "committed")
        assert fleet_hub(server)["update_slot"] == "B"
        for _ in range(2):  # plain reboots stay on B
            assert rig.power_cycle() == "B"
            agent = hub.agent()
            await agent.start()
            assert agent.state == "committed"
        assert rig.boots == ["A", "B", "B", "B"]


async def test_unhealthy_trial_goes_back_to_the_committed_slot(
        tmp_path: Path, ca: CA, demo_template: dict[str, Path]) -> None:
    bundle = build_bundle(tmp_path / "b.raucb", ca.signer("release"), version="2.0.1")
    async with pi_hub(tmp_path, ca, demo_template, bundle, "2.0.1",
                      serve_hub=False) as (hub, rig, server):
        agent = hub.agent()
        await agent.start()
        hub.clocks.wall = dhaka(3)
        await drive(agent, lambda: bool(hub.reboots))
        assert rig.power_cycle() == "B"
        agent = hub.agent()
        await agent.start()
        await hub.sync_cycle()
        hub.clocks.up += 901
        await drive(agent, lambda: len(hub.reboots) == 2)
        assert rig.firmware.autoboot() == {"all": 2, "tryboot": 2}  # mark-bad
        assert rig.power_cycle() == "A"
        agent = hub.agent()
        await agent.start()
        why = "2.0.1 was not healthy within 900 s: the hub did not answer /api/hub/status"
        assert agent.state == "rolled_back" and agent.rec["reason"] == why
        await drive(agent, lambda: fleet_hub(server)["update_state"] == "rolled_back")
        assert [c for c, _ in open_alerts(server)] == ["update_rollback"]


async def test_trial_that_hangs_is_left_by_the_watchdog(
        tmp_path: Path, ca: CA, demo_template: dict[str, Path]) -> None:
    """B never gets as far as the agent (a kernel hang: the watchdog resets the Pi): the
    firmware cleared its one-shot flag on the way in, so the reset boots A."""
    bundle = build_bundle(tmp_path / "b.raucb", ca.signer("release"), version="2.0.2")
    async with pi_hub(tmp_path, ca, demo_template, bundle, "2.0.2") as (hub, rig, server):
        agent = hub.agent()
        await agent.start()
        hub.clocks.wall = dhaka(3)
        await drive(agent, lambda: bool(hub.reboots))
        assert rig.power_cycle() == "B"
        assert rig.power_cycle() == "A"  # the watchdog's reset, no agent ran on B
        agent = hub.agent()
        await agent.start()
        assert agent.state == "rolled_back"
        assert agent.rec["reason"] == "2.0.2 did not start: the bootloader went back to slot A"
        assert rig.firmware.autoboot() == {"all": 2, "tryboot": 2}  # A's mark-good tidied


async def test_debian_kernel_never_starts_the_trial(tmp_path: Path, ca: CA,
                                                    demo_template: dict[str, Path]) -> None:
    """Debian's mainline kernel drops the reboot argument: the trial reboot boots A again,
    and the agent says so rather than waiting for a release that never ran."""
    bundle = build_bundle(tmp_path / "b.raucb", ca.signer("release"), version="2.0.3")
    async with pi_hub(tmp_path, ca, demo_template, bundle, "2.0.3",
                      kernel_tryboot=False) as (hub, rig, server):
        agent = hub.agent()
        await agent.start()
        hub.clocks.wall = dhaka(3)
        await drive(agent, lambda: bool(hub.reboots))
        assert rig.power_cycle() == "A"
        agent = hub.agent()
        await agent.start()
        assert agent.state == "rolled_back"
        assert "did not start" in agent.rec["reason"]
