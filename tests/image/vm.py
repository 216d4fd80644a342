"""The SD image as an IT focal point uses it, under QEMU: build it with the project's own
recipe, "flash" a card (a sparse copy, grown to a card's size), drop a provisioning file
on its boot partition with mtools (no mount), boot it, and reach it through QEMU's user
networking: the guest sees the host's loopback services at 10.0.2.2, and the host reaches
the hub's port 80 and sshd through forwarded ports."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
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


def build_image(out: Path, admin_key: Path, arch: str = "amd64") -> Built:
    """``image/build.sh`` as national runs it (uncompressed here: the test boots it)."""
    env = {**os.environ, "ADMIN_SSH_PUBKEY": str(admin_key.with_suffix(".pub"))}
    t0 = time.monotonic()
    res = subprocess.run([str(REPO / "image" / "build.sh"), "--arch", arch, "--out", str(out),
                          "--no-compress"], env=env, capture_output=True, text=True,
                         timeout=3600, cwd=REPO)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-6000:]
    seconds = time.monotonic() - t0
    (img,) = out.glob(f"upazila-hub-*-{arch}.img")
    stem = img.name.removesuffix(".img")
    return Built(img, out / f"{stem}.rootfs.ext4", out / f"{stem}.manifest", admin_key,
                 seconds)


def existing_image(out: Path, arch: str = "amd64") -> Built:
    """What ``build_image`` returns, for an image built before into ``out`` (its admin key
    as ``out/admin``)."""
    (img,) = out.glob(f"upazila-hub-*-{arch}.img")
    stem = img.name.removesuffix(".img")
    return Built(img, out / f"{stem}.rootfs.ext4", out / f"{stem}.manifest", out / "admin",
                 0.0)


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
               "-serial", f"file:{self.console}"]
        self.started = time.monotonic()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL)
        return self

    def tail(self, n: int = 4000) -> str:
        text = self.console.read_text(errors="replace") if self.console.exists() else ""
        return text[-n:]

    def wait(self, what: str, check: Callable[[], object], timeout: float) -> float:
        """Seconds since power-on when ``check`` first held."""
        deadline = time.monotonic() + timeout
        while True:
            assert self.proc is not None
            if self.proc.poll() is not None:
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
        with contextlib.suppress(Exception):
            self.ssh("sudo systemctl poweroff", check=False, timeout=20)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """Pull the plug."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
