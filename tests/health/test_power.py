"""Power cuts counted by the run marker, across real agent starts on one store file."""

from __future__ import annotations

from pathlib import Path

from appliance.health.agent import HealthAgent, Settings
from appliance.health.power import MARKER_NAME
from appliance.health.sample import HostPaths
from appliance.store import Store


def _agent(data: Path, store: Store, boot_id: Path) -> HealthAgent:
    return HealthAgent(Settings(data_dir=data, gpio_enabled=False), store,
                       paths=HostPaths(boot_id=str(boot_id)), udev_source=None)


async def test_power_cuts_counted_across_agent_starts(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    boot_id = tmp_path / "boot_id"
    boot_id.write_text("11111111-aaaa-4bbb-8ccc-000000000001\n")

    # first start ever: nothing to count
    store = Store(data / "hub.db")
    first = _agent(data, store, boot_id)
    rep = first.start()
    assert (rep.power_cut, rep.power_cuts) == (False, 0)
    assert (data / MARKER_NAME).exists()
    # ... the power goes: no clean stop, the process just vanishes
    store.close()

    # the Pi boots again (new boot id) and the agent starts
    boot_id.write_text("22222222-aaaa-4bbb-8ccc-000000000002\n")
    store = Store(data / "hub.db")
    second = _agent(data, store, boot_id)
    rep = second.start()
    assert rep.power_cut and rep.power_cuts == 1
    assert rep.previous_boot_id == "11111111-aaaa-4bbb-8ccc-000000000001"
    sample = await second.take_sample()
    assert sample.power_cuts == 1  # persisted and reported in samples
    await second.aclose()
    second.stop()  # clean stop (SIGTERM at shutdown): marker removed
    assert not (data / MARKER_NAME).exists()
    store.close()

    # clean reboot: not counted
    boot_id.write_text("33333333-aaaa-4bbb-8ccc-000000000003\n")
    store = Store(data / "hub.db")
    third = _agent(data, store, boot_id)
    rep = third.start()
    assert (rep.power_cut, rep.power_cuts) == (False, 1)
    store.close()  # the agent is killed -9 (marker left), but the machine stays up

    # same boot: the agent died, the machine did not; a restart, not a power cut
    store = Store(data / "hub.db")
    fourth = _agent(data, store, boot_id)
    rep = fourth.start()
    assert (rep.power_cut, rep.agent_restart, rep.power_cuts) == (False, True, 1)
    fourth.stop()
    store.close()


def test_torn_marker_counts_as_a_power_cut(tmp_path: Path) -> None:
    (tmp_path / MARKER_NAME).write_bytes(b'{"boot_id": "1111')  # cut mid-write
    boot_id = tmp_path / "boot_id"
    boot_id.write_text("22222222-aaaa-4bbb-8ccc-000000000002\n")
    with Store.memory() as store:
        agent = _agent(tmp_path, store, boot_id)
        assert agent.start().power_cuts == 1
        # a power cut forces a quick_check on the first sample
        assert agent.sampler.force_quick_check is True
        agent.stop()
