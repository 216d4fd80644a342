"""The boot test (issue 13): the amd64 image, built by ``image/build.sh`` from Debian's
archive, flashed to a blank card with the hub's provisioning file on its boot partition,
booted under QEMU with nobody at the keyboard. National's DHIS2 stand-in, fleet service and
backup server (a real sshd serving SFTP) run on the host. Then the IT focal point's
checklist: the hub serves, has synced, has sent a heartbeat, has written its replica, has
its own SSH host keys and machine-id, no account has a password, the root is read-only, and
the provisioning file is gone from the boot partition but for a redacted copy.

Then the card dies (the plug pulled) holding a month national has not had yet, and a
second card flashed from the same image with the same provisioning file replaces it: its
first boot restores the database from the replica, it serves the same values under a new
sync identity, syncs the month national lacked without writing anything twice, and has
SSH keys and a machine-id of its own. One boot serves both checks: each costs a minute or
more under TCG."""

from __future__ import annotations

import base64
import contextlib
import json
import sqlite3
import subprocess
import tomllib
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from appliance import demo, litestream
from appliance.demo import values as dvals
from tests.backup.harness import copy_replica, l0_files, restore

from .national import National
from .vm import ACCEL, VM, Built, boot_files, new_card, put_on_boot

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]

ADMIN = "Basic " + base64.b64encode(b"admin:district").decode()
PERIOD = "202401"
PERIOD2 = "202402"  # entered on the card that dies, before national has it
FORM1 = "NwLMuiBAxSb"
HUB = "coxs-bazar-ramu"
SUPERVISORCTL = ("sudo /opt/upazila-hub/venv/bin/supervisorctl "
                 "-c /etc/upazila-hub/supervisord.conf")
Values = dict[tuple[str, ...], str]
HUB_PYTHON = "/opt/upazila-hub/venv/bin/python"
BUTTON_HELD = ("from appliance import config; from appliance.health import agent, button; "
               "button.poweroff(agent.Settings.from_config("
               "config.load(\"/etc/upazila-hub/hub.toml\")).poweroff_command)")


def _status(vm: VM) -> dict[str, object]:
    doc: dict[str, object] = json.loads(vm.get("/api/hub/status", ADMIN))
    return doc


def _post_form(vm: VM, period: str = PERIOD) -> Values:
    """A CHCP's Form-1 for a month (January by default), entered at the hub's LAN API."""
    form = dvals.forms(demo.hub(), period, data_sets=[FORM1])[0]
    req = urllib.request.Request(vm.url + "/api/dataValueSets", method="POST",
                                 data=json.dumps(form).encode(),
                                 headers={"Authorization": ADMIN,
                                          "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            assert r.status == 200
    except urllib.error.HTTPError as e:  # the hub's WebMessage says why
        raise AssertionError(f"the form for {period} was refused: {e.code} {e.read()!r}") from e
    return {(v["dataElement"], v["period"], v["orgUnit"], v["categoryOptionCombo"]):
            v["value"] for v in form["dataValues"]}


def _values_in(db: Path, periods: set[str]) -> Values:
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as c:
        rows = c.execute("SELECT de, pe, ou, coc, value FROM datavalue WHERE deleted = 0"
                         ).fetchall()
    return {tuple(r[:4]): r[4] for r in rows if r[1] in periods}


def _holds(db: Path, sent: Values) -> bool:
    there = _values_in(db, {k[1] for k in sent})
    return all(there.get(k) == v for k, v in sent.items())


def _national_has(national: National, sent: Values) -> bool:
    return _holds(national.dhis2.data_dir / "hub.db", sent)


def _national_writes(national: National, keys: Values) -> dict[tuple[str, ...], int]:
    """How many times national's audit log saw each key written (1: created, never again)."""
    db = national.dhis2.data_dir / "hub.db"
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as c:
        rows = c.execute("SELECT key FROM audit WHERE entity = 'datavalue'").fetchall()
    counts: dict[tuple[str, ...], int] = {}
    for (key,) in rows:
        de, pe, ou, coc = key.split("|")[:4]
        if (de, pe, ou, coc) in keys:
            counts[(de, pe, ou, coc)] = counts.get((de, pe, ou, coc), 0) + 1
    return counts


def _replica_holds(replica: Path, sent: Values, work: Path) -> bool:
    """Whether the replica on the backup server restores to a database holding ``sent``
    (a copy of it, read as the server holds it, restored by the host's litestream)."""
    snap, db = work / "replica-copy", work / "restored.db"
    if not copy_replica(replica, snap):
        return False
    try:
        restore(snap, db, litestream.binary())
    except subprocess.CalledProcessError:
        return False  # caught mid-upload: look again
    return _holds(db, sent)


def _served(vm: VM, sent: Values) -> Values:
    """The values the hub serves on the LAN API for ``sent``'s form, months and clinic."""
    query = urllib.parse.urlencode([("dataSet", FORM1), ("orgUnit", next(iter(sent))[2]),
                                    *(("period", p) for p in sorted({k[1] for k in sent}))])
    doc = json.loads(vm.get(f"/api/dataValueSets?{query}", ADMIN, timeout=60))
    return {(v["dataElement"], v["period"], v["orgUnit"], v["categoryOptionCombo"]):
            v["value"] for v in doc.get("dataValues", [])}


def _backup_current(vm: VM) -> dict[str, object]:
    """The hub's own word on its replica: recent, small lag, no error (else falsy)."""
    b: dict[str, object] = _status(vm)["backup"]  # type: ignore[assignment]
    ok = b["configured"] and b["lastReplicatedAt"] and b["error"] is None \
        and float(b["lagSeconds"]) < 15  # type: ignore[arg-type]
    return b if ok else {}


def _fleet_backup(national: National, hub: str) -> tuple[object, ...]:
    """What the fleet took from the hub's latest heartbeat about its replica."""
    db = national.fleet_dir / "fleet.db"
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as c:
        return tuple(c.execute("SELECT backup_configured, backup_lag_s, backup_error FROM hubs "
                               "WHERE id = ?", (hub,)).fetchone())


def _heartbeat_seqs(national: National, hub: str, boot_id: str) -> list[int]:
    db = national.fleet_dir / "fleet.db"
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as c:
        return [r[0] for r in c.execute("SELECT seq FROM heartbeats WHERE hub_id = ? AND "
                                        "boot_id = ?", (hub, boot_id))]


def _heartbeats(national: National, hub: str) -> list[tuple[str, str]]:
    db = national.fleet_dir / "fleet.db"
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as c:
        return list(c.execute("SELECT boot_id, version FROM heartbeats WHERE hub_id = ?",
                              (hub,)).fetchall())


def test_blank_card_to_a_serving_syncing_hub(built: Built, national: National,
                                             tmp_path: Path) -> None:
    prov = national.provisioning(tmp_path / "prov", interval_s=5, heartbeat_every=1)
    secret = tomllib.loads(prov.read_text())["national"]["token"]
    replica = national.backup.replica(HUB)
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
        vm.wait("a heartbeat", lambda: _heartbeats(national, HUB), 300)
        beats = _heartbeats(national, HUB)
        boot_id = vm.ssh("cat /proc/sys/kernel/random/boot_id").stdout.strip()
        assert any(b == boot_id for b, _v in beats), (beats, boot_id)

        # the hub has written its replica: litestream's files on national's backup server,
        # and the hub's status and heartbeats say it is current
        vm.wait("the replica on the backup server", lambda: l0_files(replica), 300)
        vm.wait("the form in the replica", lambda: _replica_holds(replica, sent, tmp_path),
                120)
        backup = vm.wait("the hub reporting a current backup", lambda: _backup_current(vm),
                         300)
        print(f"backup current by the hub's status: {backup:.0f} s after power-on; "
              f"{len(l0_files(replica))} L0 files on the server")
        vm.wait("the fleet told of the backup", lambda: _fleet_backup(national, HUB)[0] == 1
                and _fleet_backup(national, HUB)[2] is None
                and float(_fleet_backup(national, HUB)[1]) < 30, 300)  # type: ignore[arg-type]

        # nobody can log in with a password; the root is read-only; the units are healthy
        shadow = vm.ssh("sudo cut -d: -f1,2 /etc/shadow").stdout.split()
        usable = [line for line in shadow if not line.split(":", 1)[1].startswith(("!", "*"))]
        assert not usable, usable
        assert vm.ssh("findmnt -no OPTIONS /").stdout.split(",")[0] == "ro"
        assert vm.ssh("touch /usr/x 2>&1; echo $?", check=False).stdout.strip().endswith("1")
        failed = vm.ssh("systemctl --failed --no-legend --plain").stdout.strip()
        assert not failed, failed
        # daily jobs that would fail on the read-only root (or write to the card) are off
        masked = vm.ssh("systemctl is-enabled dpkg-db-backup.timer apt-daily.timer "
                        "fstrim.timer", check=False).stdout.split()
        assert masked == ["masked"] * 3, masked
        assert vm.ssh("systemctl is-active upazila-hub").stdout.strip() == "active"
        key_a = vm.host_key()
        mid_a = vm.ssh("cat /etc/machine-id").stdout.strip()
        # the data partition (made 256 MiB, after the two 1.5 GiB slots) filled the card
        # at first boot, and its file system with it (df leaves out ext4's own tables)
        size = int(vm.ssh("lsblk -bno SIZE /dev/vda4").stdout)
        start = int(vm.ssh("cat /sys/class/block/vda4/start").stdout) * 512
        assert start + size > cards[0].stat().st_size - 4 * 1024**2, (start, size)
        assert size > 512 * 1024**2, size
        assert int(vm.ssh("df -B1 --output=size /var/lib/upazila-hub | tail -1").stdout) > (
            size * 3 // 4)

        # the link to national goes quiet (sync stopped) and a second month is entered: it
        # reaches the backup but not national; then the card dies
        vm.ssh(f"{SUPERVISORCTL} stop sync")
        later = _post_form(vm, PERIOD2)
        vm.wait("the second month in the replica",
                lambda: _replica_holds(replica, later, tmp_path), 120)
        assert not _national_has(national, later)
    finally:
        vm.kill()  # the plug pulled: nothing flushed, nothing said

    # the provisioning file is gone from the boot partition but for a redacted copy
    files = boot_files(cards[0])
    assert "upazila-hub.toml" not in files, sorted(files)
    applied = [n for n in files if n.startswith("upazila-hub.toml.applied")]
    assert applied, sorted(files)
    assert secret.encode() not in files[applied[0]]
    assert not any(secret.encode() in body for body in files.values())

    # a new card from the same image, with the same provisioning file: it restores the dead
    # card's database from the replica and serves both months
    vm_b = VM(cards[1], tmp_path, built.admin_key).start()
    try:
        serving_b = vm_b.wait("the new card serving", lambda: vm_b.get("/api/system/ping"),
                              900)
        print(f"new card: power-on to serving, restore included: {serving_b:.0f} s")
        firstboot = vm_b.ssh("sudo journalctl -b -u upazila-firstboot --no-pager -o cat").stdout
        assert "restored; new sync identity 1" in firstboot, firstboot
        both = sent | later
        assert _served(vm_b, both) == both

        # then it syncs with national: the month national lacked goes up, nothing twice
        vm_b.wait("the second month at national", lambda: _national_has(national, later),
                  600)
        vm_b.wait("nothing left to push", lambda: _status(vm_b)["sync"]["pending"] == 0,  # type: ignore[index]
                  300)
        sync = _status(vm_b)["sync"]
        assert (sync["conflicts"], sync["rejected"]) == (0, 0), sync  # type: ignore[index]
        assert _national_has(national, both)
        assert _national_writes(national, both) == {k: 1 for k in both}

        # the fleet takes it as the same hub under its new identity (heartbeats numbered
        # from generation 1), and the new card replicates on
        boot_b = vm_b.ssh("cat /proc/sys/kernel/random/boot_id").stdout.strip()
        vm_b.wait("a heartbeat from the new card",
                  lambda: _heartbeat_seqs(national, HUB, boot_b), 300)
        assert min(_heartbeat_seqs(national, HUB, boot_b)) >= 1 << 32
        vm_b.wait("the new card's backup current", lambda: _backup_current(vm_b), 300)

        # keys and identity of its own
        assert vm_b.host_key() != key_a
        assert vm_b.ssh("cat /etc/machine-id").stdout.strip() != mid_a

        # the button held: the health agent, as user hub, runs its shutdown (logind would
        # refuse it `systemctl poweroff`) and the card powers off cleanly
        vm_b.stopping = True
        asked = vm_b.ssh(f"sudo -u hub {HUB_PYTHON} -c '{BUTTON_HELD}'", check=False)
        assert vm_b.proc is not None
        try:
            vm_b.proc.wait(timeout=180)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the button's shutdown did not power off: {asked}\n"
                                 f"{vm_b.journal()}") from None
    finally:
        vm_b.poweroff()

    # and the first card keeps its identity across the pulled plug
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
