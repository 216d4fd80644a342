"""Issue 13: the SD image's own figures, from one build and one boot under QEMU.

- **Image size**: the amd64 ``.img.xz`` (``xz -T0 -6``, as ``image/build.sh`` compresses
  it); the arm64 one too with ``IMAGE_BENCH_ARM64=1`` (built through qemu-user: slow).
  Target: under 1 GB compressed.
- **Power-on to serving** under QEMU (TCG on this machine), and a projection to a
  Raspberry Pi 4: the time from the kernel's start to serving is scaled by a CPU-bound
  reference run in the guest against the same program's published time on a Pi 4
  (``PI4_NBODY_S``), and the firmware's time before the kernel is replaced by the Pi's
  (``PI4_FIRMWARE_S``). Uncertain: read the note printed with it.
- **Idle memory** of all the hub's services together: the PSS (and RSS) of every process in
  ``upazila-hub.service``'s cgroup (supervisord, hub, sync, health, litestream, the watchdog
  listener) once the hub has settled after its first sync. Target: under 250 MB.
- **SD writes per day at idle**: what the guest wrote to its card (QEMU's own count at the
  virtual disk, so no login in the guest is counted) over ``IMAGE_BENCH_IDLE_S`` (600) of
  idle after first boot settled, times a day. Target: under 50 MB/day. Which programs
  wrote it comes from the guest's /proc/<pid>/io and /proc/diskstats, read just before
  and after the window.

National's side runs on the host as in the boot test (``tests/image/national.py``: the
DHIS2 stand-in, the fleet, the SFTP backup server), and the hub is provisioned with the
defaults a real hub gets (a sample a minute, a heartbeat every five, sync every 15 minutes,
litestream on). ``IMAGE_BENCH_IMAGE`` reuses an amd64 ``.img`` or ``.img.xz`` built before,
with ``IMAGE_BENCH_KEY`` the private half of the ``ADMIN_SSH_PUBKEY`` it was built with.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
IMAGE_TARGET_MB = 1024
MEMORY_TARGET_MB = 250
WRITES_TARGET_MB_DAY = 50
# The reference program: the Computer Language Benchmarks Game's n-body in plain Python
# (as below), 5,000,000 steps in 158.3 s on a Raspberry Pi 4 Model B at 1.5 GHz with the
# performance governor (Chaitanya Mehta, "Performance Analysis of Languages on Raspberry
# Pi", chaitanyamehta.github.io). That page names neither the Python version nor the OS's
# word size; a 32-bit Raspbian and Python 3.7 are likely, so a Pi 4 running this image
# (64-bit, Python 3.11) is probably faster than this projection says.
PI4_NBODY_STEPS = 5_000_000
PI4_NBODY_S = 158.3
# Pi 4 boot ROM, EEPROM bootloader and start4.elf up to the kernel, with the kernel and
# initramfs read from the card: a few seconds; not measured here
PI4_FIRMWARE_S = 5.0
NBODY_STEPS = 100_000

NBODY = r"""
import sys, time
PI = 3.14159265358979323
SOLAR_MASS = 4 * PI * PI
DAYS_PER_YEAR = 365.24
BODIES = {
    'sun': ([0.0, 0.0, 0.0], [0.0, 0.0, 0.0], SOLAR_MASS),
    'jupiter': ([4.84143144246472090e+00, -1.16032004402742839e+00, -1.03622044471123109e-01],
                [1.66007664274403694e-03 * DAYS_PER_YEAR, 7.69901118419740425e-03 * DAYS_PER_YEAR,
                 -6.90460016972063023e-05 * DAYS_PER_YEAR], 9.54791938424326609e-04 * SOLAR_MASS),
    'saturn': ([8.34336671824457987e+00, 4.12479856412430479e+00, -4.03523417114321381e-01],
               [-2.76742510726862411e-03 * DAYS_PER_YEAR, 4.99852801234917238e-03 * DAYS_PER_YEAR,
                2.30417297573763929e-05 * DAYS_PER_YEAR], 2.85885980666130812e-04 * SOLAR_MASS),
    'uranus': ([1.28943695621391310e+01, -1.51111514016986312e+01, -2.23307578892655734e-01],
               [2.96460137564761618e-03 * DAYS_PER_YEAR, 2.37847173959480950e-03 * DAYS_PER_YEAR,
                -2.96589568540237556e-05 * DAYS_PER_YEAR], 4.36624404335156298e-05 * SOLAR_MASS),
    'neptune': ([1.53796971148509165e+01, -2.59193146099879641e+01, 1.79258772950371181e-01],
                [2.68067772490389322e-03 * DAYS_PER_YEAR, 1.62824170038242295e-03 * DAYS_PER_YEAR,
                 -9.51592254519715870e-05 * DAYS_PER_YEAR], 5.15138902046611451e-05 * SOLAR_MASS)}
def combinations(l):
    result = []
    for x in range(len(l) - 1):
        ls = l[x + 1:]
        for y in ls:
            result.append((l[x], y))
    return result
SYSTEM = list(BODIES.values())
PAIRS = combinations(SYSTEM)
def advance(dt, n, bodies=SYSTEM, pairs=PAIRS):
    for i in range(n):
        for (([x1, y1, z1], v1, m1), ([x2, y2, z2], v2, m2)) in pairs:
            dx = x1 - x2
            dy = y1 - y2
            dz = z1 - z2
            mag = dt * ((dx * dx + dy * dy + dz * dz) ** (-1.5))
            b1m = m1 * mag
            b2m = m2 * mag
            v1[0] -= dx * b2m
            v1[1] -= dy * b2m
            v1[2] -= dz * b2m
            v2[0] += dx * b1m
            v2[1] += dy * b1m
            v2[2] += dz * b1m
        for (r, [vx, vy, vz], m) in bodies:
            r[0] += dt * vx
            r[1] += dt * vy
            r[2] += dt * vz
def offset_momentum(ref, bodies=SYSTEM, px=0.0, py=0.0, pz=0.0):
    for (r, [vx, vy, vz], m) in bodies:
        px -= vx * m
        py -= vy * m
        pz -= vz * m
    (r, v, m) = ref
    v[0] = px / m
    v[1] = py / m
    v[2] = pz / m
offset_momentum(BODIES['sun'])
t0 = time.perf_counter()
advance(0.01, int(sys.argv[1]))
print(time.perf_counter() - t0)
"""

# run in the guest as root: every process of the hub's unit with its PSS and RSS
MEMORY = r"""
import json
cg = "/sys/fs/cgroup/system.slice/upazila-hub.service"
out = []
for pid in open(cg + "/cgroup.procs").read().split():
    try:
        roll = open(f"/proc/{pid}/smaps_rollup").read().splitlines()[1:]
        cmd = open(f"/proc/{pid}/cmdline").read().replace("\0", " ").strip()
    except OSError:
        continue
    f = {ln.split(":")[0]: int(ln.split()[1]) for ln in roll}
    out.append({"pid": int(pid), "cmd": cmd[:100], "pss_kb": f["Pss"], "rss_kb": f["Rss"]})
stat = dict(ln.split() for ln in open(cg + "/memory.stat"))
print(json.dumps({"procs": out, "current": int(open(cg + "/memory.current").read()),
                  "anon": int(stat["anon"]), "file": int(stat["file"])}))
"""

# run in the guest as root: bytes each process has caused to be written, and the card's
# partitions' sectors written (/proc/diskstats), and the data file system's own count
WRITERS = r"""
import json, os
procs = {}
for pid in os.listdir("/proc"):
    if not pid.isdigit():
        continue
    try:
        io = dict(ln.split(": ") for ln in open(f"/proc/{pid}/io").read().splitlines())
        cmd = open(f"/proc/{pid}/cmdline").read().replace("\0", " ").strip()
        comm = open(f"/proc/{pid}/comm").read().strip()
    except OSError:
        continue
    procs[pid] = {"name": (cmd or f"[{comm}]")[:90], "w": int(io["write_bytes"])}
disk = {}
for ln in open("/proc/diskstats"):
    f = ln.split()
    if f[2].startswith("vda"):
        disk[f[2]] = int(f[9]) * 512
try:
    fs_kb = int(open("/sys/fs/ext4/vda4/lifetime_write_kbytes").read())
except OSError:
    fs_kb = None
print(json.dumps({"procs": procs, "disk": disk, "data_fs_kb": fs_kb}))
"""


def _mb(n: float) -> float:
    return round(n / 1e6, 1)


def _guest_python(vm: Any, code: str, *args: str, timeout: float = 600) -> str:
    cmd = " ".join(["sudo", "/opt/upazila-hub/venv/bin/python", "-c", shlex.quote(code),
                    *args])
    return str(vm.ssh(cmd, timeout=timeout).stdout)


def _build(arch: str, out: Path, key: Path) -> tuple[Path, float]:
    """image/build.sh as national runs it (compressed); the .img.xz and the build's time."""
    env = {**os.environ, "ADMIN_SSH_PUBKEY": str(key.with_suffix(".pub"))}
    t0 = time.monotonic()
    res = subprocess.run([str(REPO / "image" / "build.sh"), "--arch", arch, "--out", str(out)],
                         env=env, capture_output=True, text=True, timeout=4 * 3600, cwd=REPO)
    if res.returncode != 0:
        raise RuntimeError(f"image/build.sh --arch {arch} failed:\n{res.stderr[-3000:]}")
    (xz,) = out.glob(f"upazila-hub-*-{arch}.img.xz")
    return xz, time.monotonic() - t0


def _unxz(xz: Path, dest: Path) -> Path:
    """The .img out of an .img.xz (xz writes it sparse), keeping the .img.xz."""
    copy = dest / xz.name
    if copy != xz:
        shutil.copy(xz, copy)
    subprocess.run(["xz", "-d", "-T0", "-f", str(copy)], check=True, timeout=3600)
    return copy.with_suffix("")


def _image(tmp: Path, key: Path, res: dict[str, Any]) -> Path:
    """The amd64 .img to boot; its .img.xz's size in ``res``."""
    given = os.environ.get("IMAGE_BENCH_IMAGE")
    if given:
        src = Path(given)
        if src.suffix == ".xz":
            xz = src
        else:  # compress it as build.sh would, to weigh it
            xz = tmp / (src.name + ".xz")
            t0 = time.monotonic()
            with xz.open("wb") as out:
                subprocess.run(["xz", "-T0", "-6", "-c", str(src)], stdout=out, check=True,
                               timeout=3600)
            res["xz_s"] = round(time.monotonic() - t0)
        res["amd64_source"] = str(src)
    else:
        xz, seconds = _build("amd64", tmp / "amd64", key)
        res["amd64_build_s"] = round(seconds)
    res["amd64_img_xz_mb"] = _mb(xz.stat().st_size)
    print(f"   amd64 image: {xz.name} {res['amd64_img_xz_mb']} MB compressed", flush=True)
    if given and Path(given).suffix != ".xz":
        return Path(given)
    return _unxz(xz, tmp)


def _settled(vm: Any) -> bool:
    st = json.loads(vm.get("/api/hub/status", _admin()))
    b = st["backup"]
    return bool(st["sync"]["lastSuccess"] and b["lastReplicatedAt"] and b["error"] is None)


def _admin() -> str:
    import base64
    return "Basic " + base64.b64encode(b"admin:district").decode()


def _boot_figures(img: Path, key: Path, tmp: Path, res: dict[str, Any]) -> None:
    from tests.image.national import national_side
    from tests.image.vm import ACCEL, VM, new_card, put_on_boot

    idle_s = float(os.environ.get("IMAGE_BENCH_IDLE_S", "600"))
    settle_s = float(os.environ.get("IMAGE_BENCH_SETTLE_S", "120"))
    (tmp / "national").mkdir()
    with national_side(tmp / "national") as national:
        prov = national.provisioning(tmp / "prov")  # a real hub's defaults
        card = new_card(img, tmp / "card.img", size_gb=8)
        put_on_boot(card, prov, "upazila-hub.toml")
        vm = VM(card, tmp, key, qmp=tmp / "qmp.sock").start()
        try:
            serving = vm.wait("the hub answering on the LAN", lambda: vm.get("/api/system/ping"),
                              1200)
            # OVMF and GRUB, before the kernel: power-on time less the guest's uptime, at the
            # middle of the ssh round trip (seconds under load: its half is the error)
            t_ask = time.monotonic()
            uptime = float(vm.ssh("cat /proc/uptime").stdout.split()[0])
            host_now = (t_ask + time.monotonic()) / 2 - vm.started
            pre_kernel = max(0.0, host_now - uptime)
            res["accel"] = ACCEL
            res["serving_s"] = round(serving, 1)
            res["before_kernel_s"] = round(pre_kernel, 1)
            res["systemd_analyze"] = vm.ssh("systemd-analyze time", check=False).stdout.strip()
            print(f"   power-on to serving under QEMU ({ACCEL}): {serving:.0f} s "
                  f"({pre_kernel:.0f} s of it before the kernel)", flush=True)

            settled = vm.wait("the first sync and backup", lambda: _settled(vm), 1200)
            res["first_sync_and_backup_s"] = round(settled, 1)
            time.sleep(settle_s)

            mem = json.loads(_guest_python(vm, MEMORY))
            pss = sum(p["pss_kb"] for p in mem["procs"]) * 1024
            rss = sum(p["rss_kb"] for p in mem["procs"]) * 1024
            res["memory"] = {"pss_mb": _mb(pss), "rss_mb": _mb(rss),
                             "cgroup_current_mb": _mb(mem["current"]),
                             "cgroup_anon_mb": _mb(mem["anon"]),
                             "cgroup_file_mb": _mb(mem["file"]),
                             "processes": sorted(
                                 ((p["cmd"], round(p["pss_kb"] / 1024, 1)) for p in mem["procs"]),
                                 key=lambda x: -x[1])}
            print(f"   idle memory of upazila-hub.service: PSS {_mb(pss)} MB, RSS {_mb(rss)} MB "
                  f"(cgroup: {_mb(mem['current'])} MB, {_mb(mem['anon'])} MB anonymous)",
                  flush=True)
            for cmd, mb in res["memory"]["processes"]:
                print(f"      {mb:7.1f} MB  {cmd}")

            guest_nbody = float(_guest_python(vm, NBODY, str(NBODY_STEPS)).strip())
            _project(serving, pre_kernel, guest_nbody, res)

            # SD writes at idle: the guest's per-process counters first, then a minute for
            # that login's own writes to reach the disk, then QEMU's count over the window
            before = json.loads(_guest_python(vm, WRITERS))
            # this login's own journal entries and files wait for the image's 10-minute
            # writeback: flush them just after it ends, so the window counts the hub's
            vm.ssh("sudo setsid -f sh -c 'sleep 5; journalctl --sync; sync' "
                   "</dev/null >/dev/null 2>&1")
            t_before = time.monotonic()
            time.sleep(60)
            w0, t0 = vm.disk_written(), time.monotonic()
            time.sleep(idle_s)
            w1, t1 = vm.disk_written(), time.monotonic()
            after = json.loads(_guest_python(vm, WRITERS))
            t_after = time.monotonic()
            _writes(w1 - w0, t1 - t0, before, after, t_after - t_before, res)
            _journal(vm, t1 - t0, res)
        finally:
            vm.kill()


def _journal(vm: Any, seconds: float, res: dict[str, Any]) -> None:
    """What wrote to the journal over the idle window, by source: each entry re-dirties
    pages of the journal's files, so an entry a minute costs more than its own bytes."""
    out = vm.ssh(f"sudo journalctl --since=-{int(seconds)}s -o json --no-pager "
                 "--output-fields=SYSLOG_IDENTIFIER,_SYSTEMD_UNIT,PRIORITY,MESSAGE",
                 check=False, timeout=120).stdout
    by: dict[str, int] = {}
    sample: dict[str, str] = {}
    for line in out.splitlines():
        with contextlib.suppress(ValueError):
            e = json.loads(line)
            src = f"{e.get('_SYSTEMD_UNIT', '-')} {e.get('SYSLOG_IDENTIFIER', '-')}"
            by[src] = by.get(src, 0) + 1
            sample.setdefault(src, str(e.get("MESSAGE", ""))[:100])
    per_hour = 3600 / max(seconds, 1)
    top = sorted(by.items(), key=lambda x: -x[1])
    res["journal_entries_per_hour"] = {k: round(n * per_hour) for k, n in top}
    own = sum(n for k, n in by.items() if _bench_login(k))
    res["journal_bench_logins_per_hour"] = round(own * per_hour)
    print(f"   journal entries at idle: {round(sum(by.values()) * per_hour)} an hour, "
          f"{round(own * per_hour)} of them the bench's own ssh logins and sudo")
    for src, n in top[:12]:
        print(f"      {round(n * per_hour):6d}/h  {src}: {sample[src]!r}")


def _bench_login(source: str) -> bool:
    """A journal source (unit, identifier) that is the bench's ssh and sudo, not the hub."""
    unit, _, ident = source.partition(" ")
    return unit in ("ssh.service", "systemd-logind.service") or unit.startswith(
        ("session-", "user@", "user-runtime-dir@")) or ident in ("sudo", "sshd", "(sd-pam)")


def _project(serving: float, pre_kernel: float, guest_nbody: float, res: dict[str, Any]
             ) -> None:
    host = subprocess.run(["python3", "-c", NBODY, str(NBODY_STEPS)], capture_output=True,
                          text=True, check=True, timeout=600)
    host_nbody = float(host.stdout.strip())
    pi4_nbody = PI4_NBODY_S * NBODY_STEPS / PI4_NBODY_STEPS
    ratio = pi4_nbody / guest_nbody  # < 1: the Pi is faster than the emulated guest
    pi4 = PI4_FIRMWARE_S + (serving - pre_kernel) * ratio
    res["nbody"] = {"steps": NBODY_STEPS, "guest_s": round(guest_nbody, 2),
                    "host_native_s": round(host_nbody, 2), "pi4_published_s": round(pi4_nbody, 2),
                    "tcg_slowdown_vs_host": round(guest_nbody / host_nbody, 1),
                    "pi4_over_guest": round(ratio, 3)}
    res["serving_pi4_projected_s"] = round(pi4, 1)
    print(f"   reference (n-body, {NBODY_STEPS} steps): guest {guest_nbody:.2f} s, this host "
          f"natively {host_nbody:.2f} s, Pi 4 (published) {pi4_nbody:.2f} s", flush=True)
    print(f"   Pi 4 projection: {PI4_FIRMWARE_S:.0f} s firmware + ({serving:.0f} - "
          f"{pre_kernel:.0f}) s x {ratio:.2f} = {pi4:.0f} s. Scaled by one CPU-bound Python "
          "program only: the SD card's slower reads, the Pi's firmware and a 32-bit/64-bit "
          "and Python-version difference in the published figure are not measured; take "
          "it as +-50 %.", flush=True)


def _writes(written: int, seconds: float, before: dict[str, Any], after: dict[str, Any],
            span: float, res: dict[str, Any]) -> None:
    per_day = written / seconds * 86400
    res["writes"] = {"window_s": round(seconds), "written_bytes": written,
                     "per_day_mb": _mb(per_day)}
    print(f"   SD writes at idle: {written / 1024:.0f} KiB in {seconds:.0f} s -> "
          f"{_mb(per_day)} MB/day (QEMU's count at the virtual disk)", flush=True)
    day = 86400 / span
    parts = {d: _mb((after["disk"][d] - before["disk"].get(d, 0)) * day)
             for d in after["disk"]}
    res["writes"]["partitions_mb_day"] = parts
    if after["data_fs_kb"] is not None and before["data_fs_kb"] is not None:
        res["writes"]["data_fs_mb_day"] = _mb((after["data_fs_kb"] - before["data_fs_kb"])
                                              * 1024 * day)
    by: dict[str, int] = {}
    for pid, p in after["procs"].items():
        was = before["procs"].get(pid, {"w": 0, "name": p["name"]})
        by[p["name"]] = by.get(p["name"], 0) + p["w"] - was["w"]
    top = sorted(((n, _mb(w * day)) for n, w in by.items() if w > 0), key=lambda x: -x[1])
    res["writes"]["writers_mb_day"] = top[:12]
    print(f"      per partition (guest's diskstats), MB/day: {parts}; the data file system's "
          f"own count: {res['writes'].get('data_fs_mb_day')} MB/day")
    print("      writers (bytes each process dirtied; journalling and metadata come on top):")
    for name, mb in top[:12]:
        print(f"      {mb:7.1f} MB/day  {name}")


def main() -> dict[str, Any]:
    from tests.backup.harness import available

    why = available()
    if why is not None or os.geteuid() != 0 or not shutil.which("qemu-system-x86_64"):
        print(f"   not available: {why or 'needs root and qemu-system-x86'}")
        return {"targets": []}
    res: dict[str, Any] = {}
    tmp = Path(tempfile.mkdtemp(prefix="imagebench-"))
    try:
        if os.environ.get("IMAGE_BENCH_KEY"):
            key = Path(os.environ["IMAGE_BENCH_KEY"])
        else:
            key = tmp / "admin"
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "image-bench",
                            "-f", str(key)], check=True)
        img = _image(tmp, key, res)
        if os.environ.get("IMAGE_BENCH_ARM64"):
            xz, seconds = _build("arm64", tmp / "arm64", key)
            res["arm64_img_xz_mb"], res["arm64_build_s"] = _mb(xz.stat().st_size), round(seconds)
            print(f"   arm64 image: {res['arm64_img_xz_mb']} MB compressed", flush=True)
            xz.unlink()
        _boot_figures(img, key, tmp, res)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    targets: list[tuple[str, object, object, str, bool | None]] = []
    for arch in ("amd64", "arm64"):
        if f"{arch}_img_xz_mb" in res:
            mb = res[f"{arch}_img_xz_mb"]
            targets.append((f"SD image size, {arch} .img.xz", mb, f"< {IMAGE_TARGET_MB}", "MB",
                            mb < IMAGE_TARGET_MB))
    targets += [
        (f"power-on to serving, QEMU {res['accel']}", res["serving_s"], "-", "s", None),
        ("power-on to serving, Raspberry Pi 4 (projected, +-50 %)",
         res["serving_pi4_projected_s"], "-", "s", None),
        ("idle memory of the hub's services (PSS)", res["memory"]["pss_mb"],
         f"< {MEMORY_TARGET_MB}", "MB", res["memory"]["pss_mb"] < MEMORY_TARGET_MB),
        ("SD writes at idle, per day", res["writes"]["per_day_mb"],
         f"< {WRITES_TARGET_MB_DAY}", "MB/day",
         res["writes"]["per_day_mb"] < WRITES_TARGET_MB_DAY)]
    res["targets"] = targets
    return res
