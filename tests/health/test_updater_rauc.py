"""The update agent with the real RAUC (#13): ``rauc install`` writes slot B, ``rauc status
mark-active/mark-good/mark-bad`` move GRUB's variables in a real grubenv, and the reboot
is ``RaucRig.power_cycle`` (the slot RAUC's GRUB script would pick, a new boot id), with
a real fleet service and the real hub answering ``/api/hub/status``. Booting the slots
themselves is the QEMU test's part."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from appliance.store import Store

from ..conftest import copy_db, free_port, running_hub
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
async def rig_hub(tmp_path: Path, ca: CA, demo_template: dict[str, Path], bundle: Path,
                  version: str, *, serve_hub: bool = True
                  ) -> AsyncIterator[tuple[Hub, RaucRig, FleetServer]]:
    """Ramu's store (the demo), its hub serving it, RAUC's slots, the fleet with a rollout."""
    async with fleet_with(tmp_path, ca.cert, {version: bundle}, version) as server:
        with rauc_rig(tmp_path / "rauc", ca.cert) as rig:
            data = tmp_path / "hub"
            store = Store(copy_db(demo_template["hub"], data))
            try:
                async with contextlib.AsyncExitStack() as stack:
                    url = f"http://127.0.0.1:{free_port()}"  # nothing listens: not serving
                    if serve_hub:
                        url = (await stack.enter_async_context(running_hub(store, data))).url
                    hub = Hub(store, rig, Clocks(), settings(
                        data / "updates", server.url, server.tokens[HUB],
                        hub_status_url=url + "/api/hub/status"),
                        boot_id=lambda: rig.boot_id, hub_answers=None)
                    yield hub, rig, server
            finally:
                store.close()


def image_of(bundle: Path) -> bytes:
    return (bundle.parent / f"{bundle.stem}-content" / "rootfs.img").read_bytes()


async def test_install_reboot_and_commit_with_real_rauc(tmp_path: Path, ca: CA,
                                                        demo_template: dict[str, Path]) -> None:
    bundle = build_bundle(tmp_path / "b.raucb", ca.signer("release"), version="2.0.0")
    async with rig_hub(tmp_path, ca, demo_template, bundle, "2.0.0") as (hub, rig, server):
        agent = hub.agent()
        await agent.start()
        assert rig.env_vars()["A_TRY"] == "0"  # the running slot marked good at start
        await drive(agent, lambda: agent.state == "installed")
        image = image_of(bundle)
        assert rig.slot("B").read_bytes()[:len(image)] == image  # RAUC wrote slot B
        env = rig.env_vars()
        assert (env["ORDER"], env["B_OK"]) == ("A B", "1")  # but A boots until 02:00
        hub.clocks.wall = dhaka(2, 15)
        await drive(agent, lambda: bool(hub.reboots))
        assert rig.env_vars()["ORDER"] == "B A"
        assert rig.power_cycle() == "B"
        agent = hub.agent()
        await agent.start()
        assert agent.state == "trial" and agent.report()["version"] == "2.0.0"
        await agent.step()
        assert agent.rec["unhealthy"] == "sync finished no cycle"  # the real hub answered
        await hub.sync_cycle()
        await agent.step()
        hub.clocks.up += 121
        await drive(agent, lambda: agent.state == "committed")
        env = rig.env_vars()
        assert (env["ORDER"], env["B_OK"], env["B_TRY"]) == ("B A", "1", "0")
        await drive(agent, lambda: fleet_hub(server)["update_state"] == "committed")
        h = fleet_hub(server)
        assert (h["update_version"], h["update_slot"], h["update_compatible"]) == \
            ("2.0.0", "B", rig.compatible)
        # the hub's status API (public on the LAN) shows it
        async with aiohttp.ClientSession() as http, http.get(hub.settings.hub_status_url) as r:
            upd = (await r.json())["update"]
        assert (upd["state"], upd["version"], upd["booted_slot"], upd["last_failure"]) == \
            ("committed", "2.0.0", "B", None)
        # later boots stay on B: each start marks it good again
        for _ in range(2):
            assert rig.power_cycle() == "B"
            agent = hub.agent()
            await agent.start()
            assert agent.state == "committed"
        assert rig.boots == ["A", "B", "B", "B"]


async def test_unhealthy_release_is_marked_bad_and_rauc_falls_back(
        tmp_path: Path, ca: CA, demo_template: dict[str, Path]) -> None:
    bundle = build_bundle(tmp_path / "b.raucb", ca.signer("release"), version="2.0.1")
    async with rig_hub(tmp_path, ca, demo_template, bundle, "2.0.1",
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
        assert rig.env_vars()["B_OK"] == "0"  # rauc status mark-bad booted
        assert rig.power_cycle() == "A"
        agent = hub.agent()
        await agent.start()
        why = "2.0.1 was not healthy within 900 s: the hub did not answer /api/hub/status"
        assert agent.state == "rolled_back" and agent.rec["reason"] == why
        assert rig.env_vars()["A_TRY"] == "0"
        await drive(agent, lambda: fleet_hub(server)["update_state"] == "rolled_back")
        assert [c for c, _ in open_alerts(server)] == ["update_rollback"]
        assert fleet_hub(server)["update_slot"] == "A"


async def test_real_rauc_refuses_a_strangers_bundle_before_install(
        tmp_path: Path, ca: CA, demo_template: dict[str, Path]) -> None:
    stranger = CA.make(tmp_path / "stranger", "stranger")
    bundle = build_bundle(tmp_path / "evil.raucb", stranger.signer("release"), version="6.6.6")
    # a fleet misconfigured to trust the stranger; the hub's RAUC keyring is national's
    async with fleet_with(tmp_path, stranger.cert, {"evil": bundle}, "6.6.6") as server:
        with rauc_rig(tmp_path / "rauc", ca.cert) as rig:
            (tmp_path / "hub").mkdir()
            store = Store(tmp_path / "hub" / "hub.db")
            try:
                hub = Hub(store, rig, Clocks(), settings(tmp_path / "hub" / "updates",
                                                         server.url, server.tokens[HUB]),
                          boot_id=lambda: rig.boot_id)
                agent = hub.agent()
                await agent.start()
                await drive(agent, lambda: agent.state == "refused")
                await drive(agent, lambda: fleet_hub(server)["update_state"] == "refused")
            finally:
                store.close()
            assert "signature verification failed" in agent.rec["reason"]
            assert rig.slot("B").read_bytes() == bytes(rig.slot_size)  # never written
            assert rig.env_vars()["ORDER"] == "A B"
