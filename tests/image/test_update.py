"""The field update of a hub (issue 13), end to end on the amd64 image under QEMU: "Publish
a bundle. The hub installs it and reboots into slot B. A bundle whose hub fails its health
check rolls back to A on its own. A bundle with a bad signature is refused."

National's fleet and DHIS2 stand-in run on the host; releases are made from the image's own
root slot with ``image/bundle.sh`` (the development key the image's keyring trusts) and
published with ``appliance fleet add-release`` and ``rollout``, as national does.

One card, four boots (each ~1 min or more under TCG), in this order:

1. slot A as flashed: a bundle signed under another CA is refused by the fleet's
   add-release and by the hub's own ``rauc install``; only root and the hub's user may
   call RAUC over D-Bus;
2. a good release (version +1): downloaded, installed into B, rebooted into B in the quiet
   hours, committed once healthy; the hub serves and syncs on B;
3. a broken release (+2, its hub program exits at start): installed into A (the slot not
   running), booted, never healthy, marked bad past the commit deadline, and GRUB goes
   back to B by itself; the hub reports rolled_back, the fleet raises update_rollback,
   and the hub never tries that rollout again;
4. a release whose health agent never starts (+3), so nothing on it can commit or mark
   it bad: installed into A and booted; the image's root guard (upazila-update-guard)
   marks A bad at its deadline and reboots; back on B the agent reports rolled_back with
   the guard's reason.

Going B -> A for the broken release, rather than flashing a second card to do A -> B,
saves a first boot and proves the same thing: whichever slot a bad release lands in, the
bootloader returns to the one that was committed.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import os
import shutil
import sqlite3
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from appliance import demo
from appliance.demo import values as dvals
from appliance.fleet import rollouts
from tests.tls.rig import APPLIANCE

from .conftest import National
from .vm import ACCEL, REPO, VM, Built, new_card, put_on_boot

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3000)]

HUB = "coxs-bazar-ramu"
ADMIN = "Basic " + base64.b64encode(b"admin:district").decode()
FORM1 = "NwLMuiBAxSb"
CHECK_EVERY_S = 10
HEALTHY_FOR_S = 20
COMMIT_DEADLINE_S = 150
# the hub program of the broken release: it exits at start, the rest of the hub runs
HUB_COMMAND = "/opt/upazila-hub/venv/lib/python3.11/site-packages/appliance/hub/command.py"
BROKEN = ('\n\ndef run(args, config):  # noqa  (the QEMU update test\'s broken release)\n'
          '    raise SystemExit("this release\'s hub is broken on purpose")\n')
# the health agent (and its update agent) of the release that never resolves its trial
AGENT_COMMAND = ("/opt/upazila-hub/venv/lib/python3.11/site-packages/appliance/health/"
                 "command.py")
DEAD_AGENT = ('\n\ndef run(args, config):  # noqa  (the QEMU update test\'s dead agent)\n'
              '    raise SystemExit("this release\'s health agent is broken on purpose")\n')


# ------------------------------------------------------------------------------ releases
def _debugfs(image: Path, *requests: str, write: bool = False) -> str:
    """debugfs on an ext4 image file (no mount): what one request prints (``-R``: without
    the echo of the request that ``-f`` adds), or several requests changing it."""
    if write:
        script = image.with_name(image.name + ".debugfs")
        script.write_text("\n".join(requests) + "\n")
        args = ["-w", "-f", str(script)]
    else:
        (request,) = requests
        args = ["-R", request]
    res = subprocess.run(["debugfs", *args, str(image)], capture_output=True, text=True,
                         timeout=120)
    if write:
        script.unlink()
    assert res.returncode == 0, res.stderr
    return res.stdout


def _bundle(rootfs: Path, out: Path, version: str, **env: str) -> Path:
    res = subprocess.run([str(REPO / "image" / "bundle.sh"), "--arch", "amd64", "--rootfs",
                          str(rootfs), "--out", str(out)], capture_output=True, text=True,
                         timeout=1200, env={**os.environ, "BUNDLE_VERSION": version,
                                            # fast; the hub's kernel reads zstd at any level
                                            "BUNDLE_SQUASHFS": "-comp zstd -Xcompression-level 3",
                                            **env})
    assert res.returncode == 0, res.stderr[-3000:]
    return Path(res.stdout.strip().splitlines()[-1])


def _broken_root(rootfs: Path, dst: Path, command: str = HUB_COMMAND,
                 broken: str = BROKEN) -> Path:
    """The image's root with one program that exits at start (by default the hub's;
    edited with debugfs: no mount). Supervisord and the other programs still run."""
    subprocess.run(["cp", "--sparse=always", str(rootfs), str(dst)], check=True)
    source = _debugfs(dst, f"cat {command}")
    assert "def run(" in source, source[:500]
    edited = dst.with_name("command.py")
    edited.write_text(source + broken)
    folder, name = command.rsplit("/", 1)
    _debugfs(dst, f"cd {folder}", f"rm {name}", f"write {edited} {name}",
             f"set_inode_field {name} uid 0", f"set_inode_field {name} gid 0", write=True)
    assert _debugfs(dst, f"cat {command}") == source + broken
    return dst


def _stranger_root(tmp: Path) -> Path:
    root = tmp / "stranger-root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "upazila-hub-release").write_text("VERSION=stranger\n")
    (root / "etc" / "noise").write_bytes(os.urandom(64 * 1024))  # RAUC: a squashfs > 4 KiB
    slot = tmp / "stranger.ext4"
    subprocess.run(["mkfs.ext4", "-q", "-F", "-d", str(root), str(slot), "8M"], check=True)
    return slot


def _next_versions(built: Built) -> tuple[str, str, str, str]:
    """The running release and three higher ones (its patch number + 1, + 2 and + 3)."""
    version = next(line.split(": ", 1)[1] for line in built.manifest.read_text().splitlines()
                   if line.startswith("version: "))
    head, _, patch = version.rpartition(".")
    n = int(patch) if patch.isdigit() else 0
    return version, f"{head}.{n + 1}", f"{head}.{n + 2}", f"{head}.{n + 3}"


@dataclass
class Releases:
    running: str
    good_version: str
    broken_version: str
    dead_agent_version: str
    keyring: Path
    fleet_conf: Path
    stranger: Path
    good: Path | None = None
    broken: Path | None = None
    dead_agent: Path | None = None
    error: BaseException | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    ready: threading.Event = field(default_factory=threading.Event)

    def make(self, rootfs: Path, tmp: Path) -> None:
        """Runs in a thread while the first boot goes on (mksquashfs of 1.5 GB takes a
        while)."""
        try:
            t0 = time.monotonic()
            self.good = _bundle(rootfs, tmp / "good", self.good_version)
            self.seconds["good bundle"] = time.monotonic() - t0
            t0 = time.monotonic()
            self.broken = _bundle(_broken_root(rootfs, tmp / "broken.ext4"), tmp / "broken",
                                  self.broken_version)
            (tmp / "broken.ext4").unlink()
            self.seconds["broken bundle"] = time.monotonic() - t0
            t0 = time.monotonic()
            self.dead_agent = _bundle(
                _broken_root(rootfs, tmp / "dead-agent.ext4", AGENT_COMMAND, DEAD_AGENT),
                tmp / "dead-agent", self.dead_agent_version)
            (tmp / "dead-agent.ext4").unlink()
            self.seconds["dead-agent bundle"] = time.monotonic() - t0
        except BaseException as e:  # noqa: BLE001 - reported by the test that waits
            self.error = e
        finally:
            self.ready.set()

    def wait(self) -> None:
        assert self.ready.wait(1800), "the release bundles were not made in 30 min"
        if self.error is not None:
            raise AssertionError(f"making the release bundles failed: {self.error}")


# --------------------------------------------------------------------------- the hub
@dataclass
class Watch:
    """The hub's update state as /api/hub/status shows it, with the host time each state
    was first seen (the test's timings)."""
    seen: dict[str, float] = field(default_factory=dict)
    last: dict[str, Any] = field(default_factory=dict)

    def poll(self, vm: VM) -> dict[str, Any]:
        doc = json.loads(vm.get("/api/hub/status", ADMIN, timeout=5))
        upd: dict[str, Any] = doc.get("update") or {}
        key = f"{upd.get('state')} {upd.get('target_version') or ''}".strip()
        self.seen.setdefault(key, time.monotonic())
        self.last = upd
        return upd


@dataclass
class Rig:
    vm: VM
    national: National
    rel: Releases
    watch: Watch
    tmp: Path
    passed: set[str] = field(default_factory=set)
    timings: dict[str, float] = field(default_factory=dict)


def _quiet_hours_now() -> str:
    """[update] quiet_hours around now in Asia/Dhaka (the hub's zone): reboot at once."""
    now = datetime.now(ZoneInfo("Asia/Dhaka"))
    return f"{now - timedelta(hours=1):%H:%M}-{now + timedelta(hours=3):%H:%M}"


@pytest.fixture(scope="module")
def rig(built: Built, national: National, tmp_path_factory: pytest.TempPathFactory
        ) -> Iterator[Rig]:
    tmp = tmp_path_factory.mktemp("update")
    assert shutil.which("debugfs"), "debugfs (e2fsprogs) is not installed"
    running, good, broken, dead_agent = _next_versions(built)
    # the fleet trusts what the image trusts: the keyring baked into the root slot
    keyring = tmp / "keyring.pem"
    keyring.write_text(_debugfs(built.rootfs, "cat /etc/rauc/keyring.pem"))
    assert "BEGIN CERTIFICATE" in keyring.read_text()
    conf = tmp / "fleet.toml"
    conf.write_text(f'[update]\nfleet_keyring = "{keyring}"\n')
    other = subprocess.run([str(REPO / "image" / "sign-dev.sh"), str(tmp / "other-ca")],
                           capture_output=True, text=True, check=True).stdout.strip()
    stranger = _bundle(_stranger_root(tmp), tmp / "stranger", f"{good}.stranger",
                       UPDATE_SIGNING_CERT=f"{other}/signing.cert.pem",
                       UPDATE_SIGNING_KEY=f"{other}/signing.key.pem")
    rel = Releases(running, good, broken, dead_agent, keyring, conf, stranger)
    maker = threading.Thread(target=rel.make, args=(built.rootfs, tmp), daemon=True)
    maker.start()

    prov = national.provisioning(
        tmp / "prov", interval_s=5, heartbeat_every=1,
        update={"check_every_s": CHECK_EVERY_S, "quiet_hours": _quiet_hours_now(),
                "healthy_for_s": HEALTHY_FOR_S, "commit_deadline_s": COMMIT_DEADLINE_S})
    card = new_card(built.image, tmp / "card.img", size_gb=6)  # room for a 1.5 GB release
    put_on_boot(card, prov, "upazila-hub.toml")
    vm = VM(card, tmp, built.admin_key, power_cycle=True).start()
    r = Rig(vm, national, rel, Watch(), tmp)
    try:
        r.timings["power-on to serving (A)"] = vm.wait(
            "the hub answering on the LAN", lambda: vm.get("/api/system/ping"), 900)
        vm.wait("the first sync", lambda: json.loads(vm.get("/api/hub/status", ADMIN))
                ["sync"]["lastSuccess"], 600)
        vm.wait("the update agent's first report", lambda: r.watch.poll(vm).get("booted_slot")
                == "A", 300)
        yield r
    finally:
        vm.poweroff()
        print("\ntimings under QEMU (" + ACCEL + "): " + ", ".join(
            f"{k} {v:.0f} s" for k, v in {**rel.seconds, **r.timings}.items()))


def _fleet(national: National, sql: str, *args: object) -> list[sqlite3.Row]:
    db = national.fleet_dir / "fleet.db"
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as c:
        c.row_factory = sqlite3.Row
        return list(c.execute(sql, args).fetchall())


def _progress(national: National, rollout_id: int) -> dict[str, Any]:
    db = national.fleet_dir / "fleet.db"
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as c:
        c.row_factory = sqlite3.Row
        (item,) = rollouts.progress(c, rollout_id, with_hubs=True)
    return item


def _fleet_cli(r: Rig, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*APPLIANCE, "fleet", *args, "--data-dir", str(r.national.fleet_dir),
                           "--config", str(r.rel.fleet_conf)], capture_output=True, text=True,
                          timeout=600, cwd=REPO)


def _publish(r: Rig, bundle: Path, version: str) -> int:
    """add-release and rollout to this hub, as national does; the rollout's id."""
    added = _fleet_cli(r, "add-release", str(bundle))
    assert added.returncode == 0, added.stderr[-2000:]
    out = _fleet_cli(r, "rollout", "--release", version, "--hub", HUB)
    assert out.returncode == 0, out.stderr[-2000:]
    return int(out.stdout.split()[1].rstrip(":"))  # "rollout N: ..."


def _rauc_status(vm: VM) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(vm.ssh(
        "sudo rauc status --detailed --output-format=json").stdout)
    return doc


def _slot(doc: dict[str, Any], bootname: str) -> dict[str, Any]:
    return next(s for item in doc["slots"] for s in item.values()
                if s.get("bootname") == bootname)


def _post_form(vm: VM, period: str) -> dict[tuple[str, ...], str]:
    form = dvals.forms(demo.hub(), period, data_sets=[FORM1])[0]
    req = urllib.request.Request(vm.url + "/api/dataValueSets", method="POST",
                                 data=json.dumps(form).encode(),
                                 headers={"Authorization": ADMIN,
                                          "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as resp:
        assert resp.status == 200
    return {(v["dataElement"], v["period"], v["orgUnit"], v["categoryOptionCombo"]):
            v["value"] for v in form["dataValues"]}


def _national_has(national: National, sent: dict[tuple[str, ...], str]) -> bool:
    db = national.dhis2.data_dir / "hub.db"
    periods = {k[1] for k in sent}
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as c:
        rows = [r for p in periods for r in c.execute(
            "SELECT de, pe, ou, coc, value FROM datavalue WHERE pe = ? AND deleted = 0", (p,))]
    there = {tuple(r[:4]): r[4] for r in rows}
    return all(there.get(k) == v for k, v in sent.items())


def _serves_and_syncs(r: Rig, period: str) -> float:
    """A CHCP's form entered at the hub reaches national; seconds it took."""
    vm = r.vm
    vm.wait("the hub answering", lambda: vm.get("/api/system/ping"), 300)
    t0 = time.monotonic()
    sent = _post_form(vm, period)
    vm.wait(f"the {period} form at national", lambda: _national_has(r.national, sent), 300)
    return time.monotonic() - t0


def _cmdline_slot(vm: VM) -> str:
    args = vm.ssh("cat /proc/cmdline", timeout=20).stdout.split()
    return next(a.split("=", 1)[1] for a in args if a.startswith("rauc.slot="))


def _require(r: Rig, step: str) -> None:
    if step not in r.passed:
        pytest.skip(f"needs the step before ({step}) to have passed")


# ------------------------------------------------------------------------------ the tests
def test_a_bundle_signed_by_a_stranger_is_refused(rig: Rig) -> None:
    r, vm = rig, rig.vm
    # national's fleet refuses it already: it checks against [update] fleet_keyring
    added = _fleet_cli(r, "add-release", str(r.rel.stranger))
    assert added.returncode != 0, added.stdout
    assert "signature" in added.stderr.lower(), added.stderr[-2000:]
    assert not _fleet(r.national, "SELECT * FROM releases WHERE version = ?",
                      f"{r.rel.good_version}.stranger")

    # and the hub's own RAUC refuses it, whoever hands it over
    vm.put(r.rel.stranger, "/tmp/stranger.raucb")
    res = vm.ssh("sudo rauc install /tmp/stranger.raucb", check=False, timeout=300)
    out = res.stdout + res.stderr
    assert res.returncode != 0, out
    assert "signature" in out.lower(), out
    st = _rauc_status(vm)
    assert st["booted"] == "A" and _slot(st, "B").get("state") == "inactive", st
    assert not ((_slot(st, "B").get("slot_status") or {}).get("bundle") or {}).get("version"), st

    # only root and the update agent (user hub) may call RAUC over D-Bus: Debian's
    # rauc-service would let any local user install or mark slots
    nobody = vm.ssh("sudo -u nobody rauc status --output-format=json", check=False)
    assert nobody.returncode != 0, nobody.stdout
    assert "Rejected send message" in nobody.stderr, nobody.stderr  # dbus-daemon: policy
    hub = vm.ssh("sudo -u hub rauc status --output-format=json", check=False)
    assert hub.returncode == 0 and json.loads(hub.stdout)["booted"] == "A", hub.stderr
    r.passed.add("stranger")


def test_a_release_is_installed_booted_on_b_and_committed(rig: Rig) -> None:
    r, vm, w = rig, rig.vm, rig.watch
    r.rel.wait()
    assert r.rel.good is not None
    boot_a = vm.ssh("cat /proc/sys/kernel/random/boot_id").stdout.strip()
    t0 = time.monotonic()
    rid = _publish(r, r.rel.good, r.rel.good_version)
    target = r.rel.good_version

    def committed() -> bool:
        upd = w.poll(vm)
        return upd.get("state") == "committed" and upd.get("version") == target

    vm.wait(f"the hub committing {target}", committed, 1800)
    def first(*states: str) -> float:
        return min(w.seen[f"{s} {target}"] for s in states if f"{s} {target}" in w.seen)

    # the states last seconds or minutes; a poll a second may miss the shortest ones
    downloading = first("downloading", "installing", "installed", "rebooting", "trial")
    installing = first("installing", "installed", "rebooting", "trial")
    installed = first("installed", "rebooting", "trial")
    rebooting = first("rebooting", "trial")
    trial = first("trial", "committed")
    r.timings["offer to downloading"] = downloading - t0
    r.timings["download"] = installing - downloading
    r.timings["install"] = installed - installing
    r.timings["reboot to serving on B"] = trial - rebooting
    r.timings["trial to committed"] = w.seen[f"committed {target}"] - trial
    print(f"\n{target}: " + ", ".join(f"{k} {v:.0f} s" for k, v in r.timings.items()))

    # the hub runs B, which GRUB booted and RAUC has marked good
    assert _cmdline_slot(vm) == "B"
    st = _rauc_status(vm)
    assert st["booted"] == "B", st
    b = _slot(st, "B")
    assert b.get("boot_status") == "good", st
    assert b["slot_status"]["bundle"]["version"] == target, b
    assert st["boot_primary"] == "rootfs.1", st
    boot_b = vm.ssh("cat /proc/sys/kernel/random/boot_id").stdout.strip()
    assert boot_b != boot_a

    # the fleet: the hub's report, its update events and the rollout done
    vm.wait("the fleet hearing of the commit", lambda: _fleet(
        r.national, "SELECT update_state FROM hubs WHERE id = ?", HUB)[0][0] == "committed", 120)
    (hub,) = _fleet(r.national, "SELECT * FROM hubs WHERE id = ?", HUB)
    assert (hub["update_version"], hub["update_slot"]) == (target, "B"), dict(hub)
    states = [e["state"] for e in _fleet(r.national, "SELECT state FROM update_events WHERE "
                                         "hub_id = ? AND target = ? ORDER BY id", HUB, target)]
    assert "trial" in states and states[-1] == "committed", states
    prog = _progress(r.national, rid)
    assert prog["done"] == 1 and prog["hubs"][0]["progress"] == "committed", prog
    vm.wait("a heartbeat from the boot on B", lambda: _fleet(
        r.national, "SELECT 1 FROM heartbeats WHERE hub_id = ? AND boot_id = ?", HUB, boot_b),
        120)

    # and it still does its job
    r.timings["form to national on B"] = _serves_and_syncs(r, "202402")
    r.passed.add("good")


def test_a_release_whose_hub_fails_rolls_back_by_itself(rig: Rig) -> None:
    _require(rig, "good")
    r, vm, w = rig, rig.vm, rig.watch
    assert r.rel.broken is not None
    target, good = r.rel.broken_version, r.rel.good_version
    t0 = time.monotonic()
    rid = _publish(r, r.rel.broken, target)

    on_a: dict[str, float] = {}

    def rolled_back() -> bool:
        try:
            upd = w.poll(vm)
        except OSError:  # on A its hub program never serves: ssh says which slot runs
            if _cmdline_slot(vm) == "A":
                on_a.setdefault("first", time.monotonic())
                on_a["last"] = time.monotonic()
            return False
        return upd.get("state") == "rolled_back" and upd.get("target_version") == target

    vm.wait("the hub trying the broken release on A and back on B, reporting rolled_back",
            rolled_back, 1200 + COMMIT_DEADLINE_S)
    back = time.monotonic()
    assert on_a, "the hub was never seen running slot A with the LAN API down"

    def first(*states: str) -> float:
        return min([w.seen[f"{s} {target}"] for s in states if f"{s} {target}" in w.seen]
                   + [on_a["first"]])

    rebooting = first("rebooting")
    r.timings["broken: offer to reboot"] = rebooting - t0
    r.timings["broken: reboot to slot A seen"] = on_a["first"] - rebooting
    r.timings["broken: reboot into A to serving again on B"] = back - rebooting

    assert _cmdline_slot(vm) == "B"
    st = _rauc_status(vm)
    assert st["booted"] == "B" and _slot(st, "A").get("boot_status") == "bad", st
    assert _slot(st, "B")["slot_status"]["bundle"]["version"] == good
    reason = str((w.last.get("last_failure") or {}).get("reason") or "")
    assert "not healthy" in reason and "/api/hub/status" in reason, w.last

    # at the fleet: the report with its reason, and the rollback alert
    vm.wait("the fleet hearing of the rollback", lambda: _fleet(
        r.national, "SELECT update_state FROM hubs WHERE id = ?", HUB)[0][0] == "rolled_back",
        120)
    (hub,) = _fleet(r.national, "SELECT * FROM hubs WHERE id = ?", HUB)
    assert hub["update_version"] == good and hub["update_slot"] == "B", dict(hub)
    assert "not healthy" in (hub["update_reason"] or ""), dict(hub)
    alerts = _fleet(r.national, "SELECT * FROM alerts WHERE hub_id = ? AND code = "
                    "'update_rollback' AND resolved_at IS NULL", HUB)
    assert alerts and target in alerts[0]["message"], [dict(a) for a in alerts]
    prog = _progress(r.national, rid)
    assert prog["trouble"] == 1 and prog["hubs"][0]["progress"] == "rolled_back", prog

    # it serves and syncs on B again
    r.timings["broken: form to national after rollback"] = _serves_and_syncs(r, "202403")

    # and it never tries that rollout again: checks go on, the state stays put
    def reported() -> float:
        return float(_fleet(r.national, "SELECT update_at FROM hubs WHERE id = ?",
                            HUB)[0][0])

    changed = w.last.get("changed_at")
    for n in range(3):
        since = reported()
        vm.wait(f"update check {n + 1} after the rollback",
                functools.partial(lambda t: reported() > t, since), 120)
    upd = w.poll(vm)
    assert (upd["state"], upd["changed_at"]) == ("rolled_back", changed), upd
    downloads = _fleet(r.national, "SELECT at FROM update_events WHERE hub_id = ? AND target "
                       "= ? AND state = 'downloading' ORDER BY id", HUB, target)
    assert len(downloads) <= 1, downloads
    assert vm.ssh("sudo ls /var/lib/upazila-hub/updates").stdout.strip() == ""
    r.passed.add("broken")


def test_a_release_whose_agent_never_runs_is_rolled_back_by_the_guard(rig: Rig) -> None:
    _require(rig, "broken")
    r, vm, w = rig, rig.vm, rig.watch
    assert r.rel.dead_agent is not None
    target, good = r.rel.dead_agent_version, r.rel.good_version
    t0 = time.monotonic()
    rid = _publish(r, r.rel.dead_agent, target)
    on_a: dict[str, float] = {}

    def rolled_back() -> bool:
        with contextlib.suppress(Exception):
            if _cmdline_slot(vm) == "A":
                on_a.setdefault("first", time.monotonic())
        upd = w.poll(vm)  # on A the hub serves, but nothing updates its update state
        return upd.get("state") == "rolled_back" and upd.get("target_version") == target

    # the guard's deadline: commit deadline + healthy time + its margin, in uptime
    vm.wait("the hub booting the release with a dead agent, the guard taking it back",
            rolled_back, 1500 + COMMIT_DEADLINE_S)
    back = time.monotonic()
    assert on_a, "the hub was never seen running slot A"
    r.timings["dead agent: offer to back on B"] = back - t0
    assert _cmdline_slot(vm) == "B"
    st = _rauc_status(vm)
    assert st["booted"] == "B" and _slot(st, "A").get("boot_status") == "bad", st
    assert _slot(st, "B")["slot_status"]["bundle"]["version"] == good
    reason = str((w.last.get("last_failure") or {}).get("reason") or "")
    assert f"{target} was not confirmed healthy" in reason and "guard" in reason, w.last
    # the guard's own account, in the journal of the boot on A (kept on the data partition)
    guard_log = vm.ssh("sudo journalctl -b -1 -u upazila-update-guard --no-pager -o cat",
                       check=False).stdout
    assert "rebooting into the previous release" in guard_log, guard_log
    # and the fleet hears of it
    vm.wait("the fleet hearing of the rollback", lambda: _fleet(
        r.national, "SELECT update_state, update_reason FROM hubs WHERE id = ?", HUB)[0][1]
        == reason, 120)
    prog = _progress(r.national, rid)
    assert prog["trouble"] == 1 and prog["hubs"][0]["progress"] == "rolled_back", prog
    assert vm.ssh("sudo ls /var/lib/upazila-hub/updates").stdout.strip() == ""
    r.timings["dead agent: form to national after rollback"] = _serves_and_syncs(r, "202404")
