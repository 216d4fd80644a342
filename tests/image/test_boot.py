"""The boot test (issue 13): the amd64 image, built by ``image/build.sh`` from Debian's
archive, flashed to a blank card with the hub's provisioning file on its boot partition,
booted under QEMU with nobody at the keyboard. National's DHIS2 stand-in and fleet service
run on the host. Then the IT focal point's checklist: the hub serves, has synced, has sent
a heartbeat, has its own SSH host keys and machine-id, no account has a password, the root
is read-only, and the provisioning file is gone from the boot partition but for a redacted
copy. A second card flashed from the same image has keys and a machine-id of its own."""

from __future__ import annotations

import base64
import contextlib
import json
import sqlite3
import tomllib
import urllib.request
from pathlib import Path

import pytest

from appliance import demo
from appliance.demo import values as dvals

from .conftest import National
from .vm import ACCEL, VM, Built, boot_files, new_card, put_on_boot

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]

ADMIN = "Basic " + base64.b64encode(b"admin:district").decode()
PERIOD = "202401"
FORM1 = "NwLMuiBAxSb"


def _status(vm: VM) -> dict[str, object]:
    doc: dict[str, object] = json.loads(vm.get("/api/hub/status", ADMIN))
    return doc


def _post_form(vm: VM) -> dict[tuple[str, ...], str]:
    """A CHCP's Form-1 for January, entered at the hub's LAN API."""
    form = dvals.forms(demo.hub(), PERIOD, data_sets=[FORM1])[0]
    req = urllib.request.Request(vm.url + "/api/dataValueSets", method="POST",
                                 data=json.dumps(form).encode(),
                                 headers={"Authorization": ADMIN,
                                          "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        assert r.status == 200
    return {(v["dataElement"], v["period"], v["orgUnit"], v["categoryOptionCombo"]):
            v["value"] for v in form["dataValues"]}


def _national_has(national: National, sent: dict[tuple[str, ...], str]) -> bool:
    db = national.dhis2.data_dir / "hub.db"
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as c:
        rows = c.execute("SELECT de, pe, ou, coc, value FROM datavalue WHERE pe = ? AND "
                         "deleted = 0", (PERIOD,)).fetchall()
    there = {tuple(r[:4]): r[4] for r in rows}
    return all(there.get(k) == v for k, v in sent.items())


def _heartbeats(national: National, hub: str) -> list[tuple[str, str]]:
    db = national.fleet_dir / "fleet.db"
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as c:
        return list(c.execute("SELECT boot_id, version FROM heartbeats WHERE hub_id = ?",
                              (hub,)).fetchall())


def test_blank_card_to_a_serving_syncing_hub(built: Built, national: National,
                                             tmp_path: Path) -> None:
    prov = national.provisioning(tmp_path / "prov", interval_s=5, heartbeat_every=1)
    secret = tomllib.loads(prov.read_text())["national"]["token"]
    cards = []
    for name in ("card-a", "card-b"):
        card = new_card(built.image, tmp_path / f"{name}.img")
        put_on_boot(card, prov, "upazila-hub.toml")
        cards.append(card)

    vm = VM(cards[0], tmp_path, built.admin_key).start()
    try:
        serving = vm.wait("the hub answering on the LAN",
                          lambda: vm.get("/api/system/ping"), 900)
        print(f"\npower-on to serving under QEMU ({ACCEL}): {serving:.0f} s")

        # the first sync: metadata and users from national; then a CHCP's form goes up
        vm.wait("the first sync", lambda: _status(vm)["sync"]["lastSuccess"], 600)  # type: ignore[index]
        sent = _post_form(vm)
        synced = vm.wait("the form at national", lambda: _national_has(national, sent), 300)
        print(f"form entered to national: {synced - serving:.0f} s after serving")
        vm.wait("the LEDs saying serving", lambda: json.loads(vm.get(
            "/api/hub/health", ADMIN))["led"]["status"] in ("synced", "waiting", "syncing"),
            300)
        vm.wait("a heartbeat", lambda: _heartbeats(national, "coxs-bazar-ramu"), 300)
        beats = _heartbeats(national, "coxs-bazar-ramu")
        boot_id = vm.ssh("cat /proc/sys/kernel/random/boot_id").stdout.strip()
        assert any(b == boot_id for b, _v in beats), (beats, boot_id)

        # nobody can log in with a password; the root is read-only; the units are healthy
        shadow = vm.ssh("sudo cut -d: -f1,2 /etc/shadow").stdout.split()
        usable = [line for line in shadow if not line.split(":", 1)[1].startswith(("!", "*"))]
        assert not usable, usable
        assert vm.ssh("findmnt -no OPTIONS /").stdout.split(",")[0] == "ro"
        assert vm.ssh("touch /usr/x 2>&1; echo $?", check=False).stdout.strip().endswith("1")
        failed = vm.ssh("systemctl --failed --no-legend --plain").stdout.strip()
        assert not failed, failed
        assert vm.ssh("systemctl is-active upazila-hub").stdout.strip() == "active"
        key_a = vm.host_key()
        mid_a = vm.ssh("cat /etc/machine-id").stdout.strip()
        # the data partition filled the card at first boot
        disk = int(vm.ssh("cat /sys/class/block/vda/size").stdout) * 512
        start = int(vm.ssh("cat /sys/class/block/vda4/start").stdout) * 512
        size = int(vm.ssh("cat /sys/class/block/vda4/size").stdout) * 512
        assert size > 256 * 1024**2 and start + size > disk - 2 * 1024**2, (start, size, disk)
        # and its file system with it (df leaves out ext4's own tables: ~10% here)
        assert int(vm.ssh("df -B1 --output=size /var/lib/upazila-hub | tail -1").stdout) > (
            size * 3 // 4)
    finally:
        vm.poweroff()

    # the provisioning file is gone from the boot partition but for a redacted copy
    files = boot_files(cards[0])
    assert "upazila-hub.toml" not in files, sorted(files)
    applied = [n for n in files if n.startswith("upazila-hub.toml.applied")]
    assert applied, sorted(files)
    assert secret.encode() not in files[applied[0]]
    assert not any(secret.encode() in body for body in files.values())

    # a second card from the same image: keys and identity of its own
    vm_b = VM(cards[1], tmp_path, built.admin_key).start()
    try:
        vm_b.wait("the second card serving", lambda: vm_b.get("/api/system/ping"), 900)
        assert vm_b.host_key() != key_a
        assert vm_b.ssh("cat /etc/machine-id").stdout.strip() != mid_a
    finally:
        vm_b.poweroff()

    # and the same card keeps its identity across a reboot (power cut: pull the plug)
    vm_a2 = VM(cards[0], tmp_path, built.admin_key)
    vm_a2.console.unlink(missing_ok=True)
    vm_a2.start()
    try:
        vm_a2.wait("the first card serving again", lambda: vm_a2.get("/api/system/ping"), 900)
        assert vm_a2.host_key() == key_a
        assert vm_a2.ssh("cat /etc/machine-id").stdout.strip() == mid_a
        # the journal of the boot before is there to read
        boots = vm_a2.ssh("sudo journalctl --list-boots --no-pager | wc -l").stdout.strip()
        assert int(boots) >= 2, boots
    finally:
        vm_a2.kill()
