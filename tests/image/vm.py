"""The SD image as an IT focal point uses it, under QEMU: build it with the project's own
recipe, "flash" a card (a sparse copy, grown to a card's size), drop a provisioning file
on its boot partition with mtools (no mount), boot it, and reach it through QEMU's user
networking: the guest sees the host's loopback services at 10.0.2.2, and the host reaches
the hub's port 80 and sshd through forwarded ports."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import free_port

REPO = Path(__file__).resolve().parents[2]
HOST_FROM_GUEST = "10.0.2.2"  # QEMU user networking: the host's 127.0.0.1
BOOT_OFFSET = 4 * 1024 * 1024  # the boot partition's first byte (image/build.sh)
OVMF_CODE = Path("/usr/share/OVMF/OVMF_CODE.fd")
OVMF_VARS = Path("/usr/share/OVMF/OVMF_VARS.fd")
# KVM where it works; this machine's nested KVM stops OVMF at its first FPU instruction,
# so the default is software emulation (UPAZILA_QEMU_ACCEL=kvm to try it)
ACCEL = os.environ.get("UPAZILA_QEMU_ACCEL", "tcg")


@dataclass
class Built:
    image: Path
    rootfs: Path
    manifest: Path
    admin_key: Path
    seconds: float
    arch: str = "amd64"

    @property
    def boot_vfat(self) -> Path:
        """arm64: the slot's boot partition, for update bundles."""
        return self.rootfs.with_name(self.rootfs.name.replace(".rootfs.ext4", ".boot.vfat"))


def admin_key(folder: Path) -> Path:
    """National's SSH key for ``hubadmin`` (the image takes its ``.pub``)."""
    key = folder / "admin"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "national-test",
                    "-f", str(key)], check=True)
    return key


# -- reading a card without mounting it (no loop devices, no vfat or MBR in the kernel) -------
@dataclass(frozen=True)
class Partition:
    number: int
    start: int  # bytes
    size: int   # bytes
    type: str   # MBR type, e.g. "c", "83", "5"


def partitions(card: Path) -> dict[int, Partition]:
    table = json.loads(subprocess.run(["sfdisk", "--json", str(card)], check=True,
                                      capture_output=True, text=True).stdout)["partitiontable"]
    assert table["label"] == "dos" and table.get("sectorsize", 512) == 512, table
    out = {}
    for p in table["partitions"]:
        n = int(p["node"].rsplit(str(card.name), 1)[-1].lstrip("p"))
        out[n] = Partition(n, p["start"] * 512, p["size"] * 512, p["type"])
    return out


def fat_files(spec: str) -> dict[str, bytes]:
    """Every file on a FAT (mtools' ``image@@offset``), by path, read with mtools."""
    env = {**os.environ, "MTOOLS_SKIP_CHECK": "1"}
    listing = subprocess.run(["mdir", "-/", "-b", "-i", spec, "::"], check=True,
                             capture_output=True, text=True, env=env).stdout.split("\n")
    out = {}
    for line in listing:
        name = line.strip().removeprefix("::/")
        if not name or name.endswith("/"):
            continue
        res = subprocess.run(["mtype", "-i", spec, f"::{name}"], capture_output=True, env=env)
        if res.returncode == 0:
            out[name] = res.stdout
    return out


def extract(card: Path, part: Partition, dest: Path) -> Path:
    """One partition's bytes as a file (sparse), for debugfs or a comparison."""
    subprocess.run(["dd", f"if={card}", f"of={dest}", "bs=4M", f"skip={part.start}",
                    f"count={part.size}", "iflag=skip_bytes,count_bytes", "conv=sparse",
                    "status=none"], check=True)
    return dest


def debugfs(fs: Path, request: str) -> str:
    res = subprocess.run(["debugfs", "-R", request, str(fs)], capture_output=True,
                         text=True, errors="replace", check=True)
    return res.stdout


def ext4_read(fs: Path, path: str) -> bytes:
    res = subprocess.run(["debugfs", "-R", f"cat {path}", str(fs)], capture_output=True,
                         check=True)
    return res.stdout


def ext4_ls(fs: Path, path: str) -> dict[str, int]:
    """A directory's entries and their modes (``debugfs ls -p``); {} when it is missing."""
    out = {}
    for line in debugfs(fs, f"ls -p {path}").splitlines():
        f = line.split("/")  # /inode/mode/uid/gid/name/size/
        if len(f) >= 7 and f[5] not in (".", ".."):
            out[f[5]] = int(f[2], 8)
    return out


def ext4_link(fs: Path, path: str) -> str | None:
    """Where a symbolic link points (None: not a link)."""
    text = debugfs(fs, f"stat {path}")
    for line in text.splitlines():
        if line.startswith("Fast link dest:"):
            return line.split(":", 1)[1].strip().strip('"')
    return None


ELF_MACHINE = {62: "x86-64", 183: "aarch64"}


def elf_machine(data: bytes) -> str:
    assert data[:4] == b"\x7fELF", data[:16]
    return ELF_MACHINE.get(int.from_bytes(data[18:20], "little"), str(data[18:20]))


def existing_image(out: Path, arch: str = "amd64", admin_key: Path | None = None,
                   seconds: float = 0.0) -> Built:
    """The card ``image/build.sh --no-compress --out OUT`` left in ``out`` (the admin key
    national's ``.pub`` came from: ``out/admin`` unless given)."""
    (img,) = out.glob(f"upazila-hub-*-{arch}.img")
    stem = img.name.removesuffix(".img")
    return Built(img, out / f"{stem}.rootfs.ext4", out / f"{stem}.manifest",
                 admin_key or out / "admin", seconds, arch)


def new_card(image: Path, card: Path, size_gb: int = 4) -> Path:
    """Flash ``image`` onto a blank card of ``size_gb`` (sparse: only written blocks cost)."""
    subprocess.run(["cp", "--sparse=always", str(image), str(card)], check=True)
    os.truncate(card, size_gb * 1024**3)
    return card


def boot_partition(card: Path) -> str:
    return f"{card}@@{BOOT_OFFSET}"


def put_on_boot(card: Path, src: Path, name: str) -> None:
    subprocess.run(["mcopy", "-o", "-i", boot_partition(card), str(src), f"::{name}"],
                   check=True, env={**os.environ, "MTOOLS_SKIP_CHECK": "1"})


def boot_files(card: Path) -> dict[str, bytes]:
    """The boot partition's top-level files as a laptop would see them."""
    env = {**os.environ, "MTOOLS_SKIP_CHECK": "1"}
    names = subprocess.run(["mdir", "-b", "-i", boot_partition(card), "::"], check=True,
                           capture_output=True, text=True, env=env).stdout.split()
    out = {}
    for n in names:
        name = n.removeprefix("::/")
        if not name or name.endswith("/"):
            continue
        res = subprocess.run(["mtype", "-i", boot_partition(card), f"::{name}"],
                             capture_output=True, env=env)
        if res.returncode == 0:
            out[name] = res.stdout
    return out


@dataclass
class VM:
    card: Path
    workdir: Path
    admin_key: Path
    http_port: int = field(default_factory=free_port)
    ssh_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    qmp: Path | None = None  # QEMU's monitor socket (QMP), for the disk's counters
    # every guest reboot a power cycle: QEMU stops at the reset (-no-reboot) and starts
    # again. OVMF under TCG was seen to hang at a warm reset after two (the update test
    # reboots three times); a Pi's watchdog reset is closer to a power cycle anyway
    power_cycle: bool = False
    stopping: bool = False

    @property
    def console(self) -> Path:
        return self.workdir / f"{self.card.stem}-console.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self) -> VM:
        assert shutil.which("qemu-system-x86_64"), "qemu-system-x86 is not installed"
        vars_fd = self.workdir / f"{self.card.stem}-ovmf-vars.fd"
        shutil.copy(OVMF_VARS, vars_fd)
        cmd = ["qemu-system-x86_64", "-accel", ACCEL, "-m", "1024", "-smp", "2",
               "-nographic", "-monitor", "none", "-display", "none",
               "-drive", f"if=pflash,format=raw,readonly=on,file={OVMF_CODE}",
               "-drive", f"if=pflash,format=raw,file={vars_fd}",
               "-drive", f"file={self.card},if=virtio,format=raw",
               "-netdev", f"user,id=n0,hostfwd=tcp:127.0.0.1:{self.http_port}-:80,"
                          f"hostfwd=tcp:127.0.0.1:{self.ssh_port}-:22",
               "-device", "virtio-net-pci,netdev=n0",
               "-chardev", f"file,id=console,path={self.console},append=on",
               "-serial", "chardev:console"]
        if self.qmp is not None:
            cmd += ["-qmp", f"unix:{self.qmp},server=on,wait=off"]
        if self.power_cycle:
            cmd.append("-no-reboot")
        self.started = time.monotonic()
        self.stopping = False
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL)
        if self.power_cycle:
            proc = self.proc
            threading.Thread(target=self._power_again, args=(proc,), daemon=True).start()
        return self

    def _power_again(self, proc: subprocess.Popen[bytes]) -> None:
        """The guest reset (QEMU exited 0 under -no-reboot): power the card on again."""
        if proc.wait() == 0 and not self.stopping and self.proc is proc:
            self.start()

    def disk_written(self) -> int:
        """Bytes the guest has written to its card since power-on, as QEMU counted them at
        the virtual disk (QMP ``query-blockstats``): what the SD card would be sent, with
        no login or program in the guest involved."""
        assert self.qmp is not None, "VM(qmp=...) to read the disk's counters"
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(30)
            s.connect(str(self.qmp))
            f = s.makefile("rw")
            json.loads(f.readline())  # the greeting
            for cmd in ("qmp_capabilities", "query-blockstats"):
                f.write(json.dumps({"execute": cmd}) + "\n")
                f.flush()
                while "return" not in (msg := json.loads(f.readline())):
                    assert "error" not in msg, msg  # events may come before the answer
            # the card only: not OVMF's variable store (pflash)
            return sum(int(d["stats"]["wr_bytes"]) for d in msg["return"]
                       if not str(d.get("device", "")).startswith("pflash"))

    def tail(self, n: int = 4000) -> str:
        text = self.console.read_text(errors="replace") if self.console.exists() else ""
        return text[-n:]

    def wait(self, what: str, check: Callable[[], object], timeout: float) -> float:
        """Seconds since power-on when ``check`` first held."""
        deadline = time.monotonic() + timeout
        while True:
            assert self.proc is not None
            if self.proc.poll() is not None and not (
                    self.power_cycle and not self.stopping and self.proc.returncode == 0):
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise AssertionError(f"QEMU exited ({self.proc.returncode}) waiting for "
                                     f"{what}: {err}\n{self.tail()}")
            with contextlib.suppress(Exception):
                if check():
                    return time.monotonic() - self.started
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: not within {timeout} s\n--- console\n"
                                     f"{self.tail()}\n--- journal\n{self.journal()}")
            time.sleep(1)

    def get(self, path: str, auth: str | None = None, timeout: float = 10) -> bytes:
        req = urllib.request.Request(self.url + path)
        if auth:
            req.add_header("Authorization", auth)
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return bytes(r.read())

    def _ssh_opts(self) -> list[str]:
        return ["-i", str(self.admin_key), "-o", "StrictHostKeyChecking=no",
                "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
                "-o", "ConnectTimeout=10", "-o", "BatchMode=yes"]

    def ssh(self, command: str, timeout: float = 60, check: bool = True
            ) -> subprocess.CompletedProcess[str]:
        res = subprocess.run(
            ["ssh", *self._ssh_opts(), "-p", str(self.ssh_port), "hubadmin@127.0.0.1", command],
            capture_output=True, text=True, timeout=timeout)
        if check:
            assert res.returncode == 0, f"{command}: {res.returncode}\n{res.stdout}\n{res.stderr}"
        return res

    def put(self, src: Path, dest: str, timeout: float = 300) -> None:
        """Copy a host file into the guest (scp as hubadmin)."""
        res = subprocess.run(["scp", *self._ssh_opts(), "-P", str(self.ssh_port), str(src),
                              f"hubadmin@127.0.0.1:{dest}"], capture_output=True, text=True,
                             timeout=timeout)
        assert res.returncode == 0, f"scp {src.name}: {res.returncode}\n{res.stderr}"

    def host_key(self) -> str:
        res = subprocess.run(["ssh-keyscan", "-t", "ed25519", "-p", str(self.ssh_port),
                              "127.0.0.1"], capture_output=True, text=True, timeout=30)
        return res.stdout.split()[-1]

    def journal(self) -> str:
        with contextlib.suppress(Exception):
            return self.ssh("sudo journalctl -b --no-pager -n 150 -p info", check=False,
                            timeout=20).stdout
        return "(no ssh)"

    def poweroff(self, timeout: float = 180) -> None:
        """A clean shutdown (the button), then the card can be read."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.stopping = True
        with contextlib.suppress(Exception):
            self.ssh("sudo systemctl poweroff", check=False, timeout=20)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """Pull the plug."""
        self.stopping = True
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)


@dataclass
class Arm64VM(VM):
    """The Pi's card under ``qemu-system-aarch64 -M virt`` (TCG): no Pi firmware exists
    under QEMU, so QEMU loads the kernel and initramfs the firmware would (slot A's boot
    partition, read with mtools) and passes cmdline-a.txt's root, on virtio."""

    def slot_a_boot(self, *extra: str) -> tuple[Path, Path, list[str]]:
        """What the firmware would load from slot A's boot partition (read with mtools),
        copied into the work folder: the kernel, the initramfs (and ``extra`` files), and
        cmdline-a.txt's arguments without its consoles."""
        parts = partitions(self.card)
        boot = fat_files(f"{self.card}@@{parts[2].start}")
        (kernel,) = [n for n in boot if n.startswith("vmlinuz-")]
        (initrd,) = [n for n in boot if n.startswith("initrd.img-")]
        for name in (kernel, initrd, *extra):
            (self.workdir / name).write_bytes(boot[name])
        args = [a for a in boot["cmdline-a.txt"].decode().split()
                if not a.startswith("console=") and a != "quiet"]
        return self.workdir / kernel, self.workdir / initrd, args

    def start(self) -> VM:
        assert shutil.which("qemu-system-aarch64"), "qemu-system-arm is not installed"
        kernel, initrd, args = self.slot_a_boot()
        cmd = ["qemu-system-aarch64", "-M", "virt", "-cpu", "cortex-a72", "-accel", "tcg",
               "-m", "1024", "-smp", "2", "-nographic", "-monitor", "none",
               "-display", "none",
               "-kernel", str(kernel), "-initrd", str(initrd),
               "-append", " ".join([*args, "console=ttyAMA0"]),
               "-drive", f"file={self.card},if=none,format=raw,id=card",
               "-device", "virtio-blk-pci,drive=card",
               "-netdev", f"user,id=n0,hostfwd=tcp:127.0.0.1:{self.http_port}-:80,"
                          f"hostfwd=tcp:127.0.0.1:{self.ssh_port}-:22",
               "-device", "virtio-net-pci,netdev=n0",
               "-serial", f"file:{self.console}"]
        self.started = time.monotonic()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL)
        return self


class Raspi3bVM(Arm64VM):
    """The Pi's card on QEMU's ``raspi3b`` machine (TCG): the Pi 3's SoC with its VideoCore
    mailbox, whose property channel is the firmware's interface, but no firmware: QEMU loads
    slot A's kernel, initramfs and the Pi 3 B's device tree itself, and answers the mailbox
    in the firmware's place. What the kernel asks of the firmware shows in QEMU's log
    (``-d unimp``: tags QEMU does not implement, ``qemu.log``). No network: the console is
    the only way out. QEMU exits when the guest resets (``-no-reboot``). The card's size
    must be a power of two (QEMU's SD card)."""

    @property
    def qemu_log(self) -> Path:
        return self.workdir / "qemu.log"

    def start(self) -> VM:
        assert shutil.which("qemu-system-aarch64"), "qemu-system-arm is not installed"
        kernel, initrd, args = self.slot_a_boot("bcm2837-rpi-3-b.dtb")
        cmd = ["qemu-system-aarch64", "-M", "raspi3b", "-accel", "tcg", "-no-reboot",
               "-display", "none", "-monitor", "none",
               "-kernel", str(kernel), "-initrd", str(initrd),
               "-dtb", str(self.workdir / "bcm2837-rpi-3-b.dtb"),
               # QEMU's model of the Pi's watchdog resets the machine the moment it is
               # armed, not when it runs out: systemd must not arm it (the image's
               # RuntimeWatchdogSec=15s). Its restart handler still resets at the reboot
               "-append", " ".join([*args, "console=ttyAMA0,115200",
                                    "systemd.watchdog_device=/dev/no-watchdog-under-qemu"]),
               "-drive", f"file={self.card},if=sd,format=raw",
               "-d", "unimp", "-D", str(self.qemu_log),
               "-serial", f"file:{self.console}"]
        self.started = time.monotonic()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL)
        return self


def ext4_put(card: Path, part: Partition, files: dict[str, bytes],
             links: dict[str, str], workdir: Path) -> None:
    """Write ``files`` ({path: bytes}) and symbolic ``links`` ({path: target}) into one
    ext4 partition of ``card`` without mounting it: the partition is copied out, changed
    with ``debugfs -w`` and copied back."""
    fs = extract(card, part, workdir / "part.ext4")
    script = []
    for i, (path, data) in enumerate(files.items()):
        src = workdir / f"put-{i}"
        src.write_bytes(data)
        script += [f"rm {path}", f"write {src} {path}", f"sif {path} mode 0100644"]
    for path, target in links.items():
        script += [f"rm {path}", f"symlink {path} {target}"]
    (workdir / "debugfs.cmd").write_text("\n".join(script) + "\n")
    subprocess.run(["debugfs", "-w", "-f", str(workdir / "debugfs.cmd"), str(fs)],
                   capture_output=True, check=True)
    subprocess.run(["dd", f"if={fs}", f"of={card}", "bs=4M", f"seek={part.start}",
                    "oflag=seek_bytes", "conv=notrunc", "status=none"], check=True)
    fs.unlink()
