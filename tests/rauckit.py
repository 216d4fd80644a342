"""Real RAUC for the update tests (#13): an openssl CA, bundles signed with ``rauc bundle``,
and a real RAUC service with two slots.

``RaucRig`` runs ``rauc service`` (Debian's rauc 1.8) on a private D-Bus bus, with GRUB's
A/B boot counting kept in a real grubenv file (``grub-editenv``) and the slots as image
files, so ``rauc install``, ``rauc status`` and ``mark-good``/``mark-bad``/``mark-active``
are RAUC's own. What no test can do is boot: ``power_cycle`` restarts the service as the
next boot would find it, choosing the slot the way RAUC's documented GRUB script does
(each slot in ``ORDER``: its ``_TRY`` is set, and it boots if ``_OK`` and not tried), and
gives the hub a new boot id. The lead's QEMU test boots real slots.

With ``bootloader="tryboot"`` the rig is the Raspberry Pi's instead (image/README.md): RAUC's
custom backend, ``image/rootfs/usr/local/sbin/upazila-rauc-tryboot``, over ``autoboot.txt``
in a directory standing in for the card's first partition, and ``PiFirmware`` (the fake of
the hardware: the firmware's documented choice, autoboot.txt's ``[all]`` or, on a reboot
with the one-shot tryboot flag, ``[tryboot]``) picks the slot at ``power_cycle``.

Bundles are ``format=plain`` (a squashfs RAUC loop-mounts): ``verity`` bundles need
device-mapper, which test containers lack; the signature check is the same CMS either way.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from appliance.health.rauc import RaucInstaller

COMPATIBLE = "upazila-hub-test"
REPO = Path(__file__).resolve().parents[1]
TRYBOOT_BACKEND = REPO / "image" / "rootfs" / "usr" / "local" / "sbin" / "upazila-rauc-tryboot"
TOOLS = ("rauc", "mksquashfs", "openssl", "grub-editenv", "dbus-daemon")


def missing_tools() -> list[str]:
    return [t for t in TOOLS if shutil.which(t) is None]


def _run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120, **kw)  # type: ignore[call-overload]
    assert res.returncode == 0, (cmd, res.stdout[-2000:], res.stderr[-2000:])
    return res  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Signer:
    cert: Path
    key: Path


@dataclass(frozen=True)
class CA:
    cert: Path
    key: Path
    folder: Path

    @classmethod
    def make(cls, folder: Path, name: str) -> CA:
        folder.mkdir(parents=True, exist_ok=True)
        cert, key = folder / f"{name}-ca.pem", folder / f"{name}-ca.key"
        _run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
              "-out", str(cert), "-subj", f"/O=Test/CN={name} CA", "-days", "30",
              "-addext", "basicConstraints=critical,CA:TRUE",
              "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
        return cls(cert, key, folder)

    def signer(self, name: str) -> Signer:
        base = f"{self.cert.stem}-{name}"  # two CAs may share a folder
        key, csr = self.folder / f"{base}.key", self.folder / f"{base}.csr"
        cert, ext = self.folder / f"{base}.pem", self.folder / f"{base}.ext"
        ext.write_text("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n")
        _run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
              "-out", str(csr), "-subj", f"/O=Test/CN={name}"])
        _run(["openssl", "x509", "-req", "-in", str(csr), "-CA", str(self.cert), "-CAkey",
              str(self.key), "-CAcreateserial", "-out", str(cert), "-days", "30",
              "-extfile", str(ext)])
        return Signer(cert, key)


def build_bundle(out: Path, signer: Signer, *, version: str, compatible: str = COMPATIBLE,
                 payload: int = 256 * 1024, seed: bytes | None = None) -> Path:
    """A signed bundle whose one image (``rootfs.img``, ``payload`` random bytes) goes to
    the rootfs slot class."""
    content = out.parent / f"{out.stem}-content"
    shutil.rmtree(content, ignore_errors=True)
    content.mkdir(parents=True)
    (content / "rootfs.img").write_bytes(seed * (payload // len(seed)) if seed
                                         else os.urandom(payload))
    (content / "manifest.raucm").write_text(
        f"[update]\ncompatible={compatible}\nversion={version}\n\n[bundle]\nformat=plain\n\n"
        "[image.rootfs]\nfilename=rootfs.img\n")
    out.unlink(missing_ok=True)
    _run(["rauc", "bundle", f"--cert={signer.cert}", f"--key={signer.key}", str(content),
          str(out)])
    return out


@dataclass
class PiFirmware:
    """The Raspberry Pi 4/5 firmware and the kernel's part in a reboot, for the tryboot
    backend: ``bootsel`` stands in for the card's partition 1 (autoboot.txt), ``dt`` for
    ``/proc/device-tree/chosen/bootloader``, ``run`` for the tmpfs ``/run``.
    ``kernel_tryboot``: the kernel hands a reboot argument with "tryboot" to the firmware
    (Raspberry Pi's kernels); Debian's mainline kernel does not."""

    folder: Path
    kernel_tryboot: bool = True

    @property
    def bootsel(self) -> Path:
        return self.folder / "bootsel"

    @property
    def dt(self) -> Path:
        return self.folder / "dt-bootloader"

    @property
    def reboot_param(self) -> Path:
        return self.folder / "run" / "systemd" / "reboot-param"

    @property
    def cmdline(self) -> Path:
        return self.folder / "cmdline"

    @property
    def env(self) -> dict[str, str]:
        return {"UPAZILA_BOOTSEL": str(self.bootsel), "UPAZILA_DT_BOOTLOADER": str(self.dt),
                "UPAZILA_REBOOT_PARAM": str(self.reboot_param),
                "UPAZILA_CMDLINE": str(self.cmdline)}

    def flash(self) -> None:
        """A new card, as image/build.sh writes partition 1, booted on slot A."""
        self.bootsel.mkdir(parents=True, exist_ok=True)
        (self.bootsel / "autoboot.txt").write_text(
            "[all]\ntryboot_a_b=1\nboot_partition=2\n[tryboot]\nboot_partition=2\n")
        self.boot(2, tryboot=False)

    def autoboot(self) -> dict[str, int]:
        """autoboot.txt's boot_partition per section, as the firmware reads it."""
        out, section = {}, ""
        path = self.bootsel / "autoboot.txt"
        for line in path.read_text().splitlines() if path.exists() else []:
            if line.startswith("["):
                section = line.strip("[]")
            elif line.startswith("boot_partition="):
                out[section] = int(line.split("=", 1)[1])
        return out

    def boot(self, partition: int, tryboot: bool) -> None:
        self.dt.mkdir(parents=True, exist_ok=True)
        (self.dt / "partition").write_bytes(partition.to_bytes(4, "big"))
        (self.dt / "tryboot").write_bytes(int(tryboot).to_bytes(4, "big"))
        slot = {2: "A", 3: "B"}[partition]
        self.cmdline.write_text(f"root=PARTUUID=7570617a-0{partition + 3} ro rauc.slot={slot}\n")

    def reboot(self) -> str:
        """The kernel's reboot (with systemd's reboot argument, if any), then the firmware's
        choice. The flag is one-shot; /run does not survive. Returns the booted bootname."""
        param = self.reboot_param.read_text() if self.reboot_param.exists() else ""
        self.reboot_param.unlink(missing_ok=True)
        tryboot = self.kernel_tryboot and "tryboot" in param.split()
        return self._choose(tryboot)

    def power_cut(self) -> str:
        self.reboot_param.unlink(missing_ok=True)
        return self._choose(False)

    def _choose(self, tryboot: bool) -> str:
        ab = self.autoboot()
        part = ab.get("tryboot", ab.get("all", 2)) if tryboot else ab.get("all", 2)
        self.boot(part, tryboot)
        return {2: "A", 3: "B"}[part]

    def backend(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        res = subprocess.run([str(TRYBOOT_BACKEND), *args], capture_output=True, text=True,
                             timeout=30, env={**os.environ, **self.env})
        if check:
            assert res.returncode == 0, (args, res.stdout, res.stderr)
        return res


@dataclass
class RaucRig:
    """A RAUC service with slots A and B as files and GRUB's variables in a grubenv (or,
    ``bootloader="tryboot"``, the Pi's autoboot.txt and tryboot: ``PiFirmware``)."""

    folder: Path
    keyring: Path
    compatible: str = COMPATIBLE
    bootloader: str = "grub"
    kernel_tryboot: bool = True
    slot_size: int = 4 * 1024 * 1024
    boot_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    booted: str = "A"
    boots: list[str] = field(default_factory=list)
    _dbus: subprocess.Popen[bytes] | None = None
    _service: subprocess.Popen[bytes] | None = None

    @property
    def conf(self) -> Path:
        return self.folder / "system.conf"

    @property
    def grubenv(self) -> Path:
        return self.folder / "grubenv"

    @property
    def bus(self) -> str:
        return f"unix:path={self.folder / 'bus'}"

    @property
    def firmware(self) -> PiFirmware:
        return PiFirmware(self.folder / "pi", self.kernel_tryboot)

    @property
    def env(self) -> dict[str, str]:
        pi = self.firmware.env if self.bootloader == "tryboot" else {}
        return {"DBUS_SYSTEM_BUS_ADDRESS": self.bus, **pi}

    def slot(self, name: str) -> Path:
        return self.folder / f"slot{name}.img"

    def installer(self, keyring: Path | None = None) -> RaucInstaller:
        return RaucInstaller("rauc", str(keyring or self.keyring), str(self.conf), self.env)

    def start(self) -> RaucRig:
        self.folder.mkdir(parents=True, exist_ok=True)
        for name in ("A", "B"):
            with open(self.slot(name), "wb") as f:
                f.truncate(self.slot_size)
        (self.folder / "data").mkdir(exist_ok=True)
        (self.folder / "mnt").mkdir(exist_ok=True)
        if self.bootloader == "tryboot":
            boot = (f"bootloader=custom\n"
                    f"[handlers]\nbootloader-custom-backend={TRYBOOT_BACKEND}\n")
            self.firmware.flash()
        else:
            boot = f"bootloader=grub\ngrubenv={self.grubenv}\n"
            _run(["grub-editenv", str(self.grubenv), "create"])
            self.set_env(ORDER="A B", A_OK="1", A_TRY="0", B_OK="0", B_TRY="0")
        system, handlers = (boot.split("[handlers]\n") + [""])[:2]
        self.conf.write_text(
            f"[system]\ncompatible={self.compatible}\n{system}"
            f"data-directory={self.folder / 'data'}\n"
            f"mountprefix={self.folder / 'mnt'}\n\n[keyring]\npath={self.keyring}\n\n"
            + (f"[handlers]\n{handlers}\n" if handlers else "")
            + f"[slot.rootfs.0]\ndevice={self.slot('A')}\ntype=raw\nbootname=A\n\n"
            f"[slot.rootfs.1]\ndevice={self.slot('B')}\ntype=raw\nbootname=B\n")
        self._dbus = subprocess.Popen(["dbus-daemon", "--session", "--nofork",
                                       f"--address={self.bus}"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._wait(lambda: (self.folder / "bus").exists(), "D-Bus")
        self._start_service()
        return self

    def _start_service(self) -> None:
        log = open(self.folder / "rauc-service.log", "ab")  # noqa: SIM115 - the process's
        self._service = subprocess.Popen(
            ["rauc", f"--conf={self.conf}", "service", f"--override-boot-slot={self.booted}"],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **self.env})
        self.boots.append(self.booted)
        self._wait(self._answers, "rauc service")

    def _answers(self) -> bool:
        res = subprocess.run(["rauc", f"--conf={self.conf}", "status", "--output-format=json"],
                             capture_output=True, text=True, timeout=10,
                             env={**os.environ, **self.env})
        return res.returncode == 0

    def _wait(self, ok: object, what: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while not ok():  # type: ignore[operator]
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} did not start: "
                                     + (self.folder / "rauc-service.log").read_text()[-2000:]
                                     if (self.folder / "rauc-service.log").exists() else what)
            time.sleep(0.05)

    def env_vars(self) -> dict[str, str]:
        out = _run(["grub-editenv", str(self.grubenv), "list"]).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def set_env(self, **values: str) -> None:
        _run(["grub-editenv", str(self.grubenv), "set",
              *(f"{k}={v}" for k, v in values.items())])

    def grub_choice(self) -> str:
        """What RAUC's GRUB script boots next, with its side effect on ``<slot>_TRY``."""
        env = self.env_vars()
        chosen = None
        for slot in env.get("ORDER", "A B").split():
            ok, tried = env.get(f"{slot}_OK") == "1", env.get(f"{slot}_TRY") == "1"
            env[f"{slot}_TRY"] = "1"
            if ok and not tried:
                chosen = slot
                break
        if chosen is None:
            raise AssertionError(f"no bootable slot: {env}")
        self.set_env(**{k: v for k, v in env.items() if k.endswith("_TRY")})
        return chosen

    def power_cycle(self) -> str:
        """The machine restarts: RAUC's service comes back on the slot GRUB picks."""
        self._stop_service()
        self.booted = self.firmware.reboot() if self.bootloader == "tryboot" \
            else self.grub_choice()
        self.boot_id = str(uuid.uuid4())
        self._start_service()
        return self.booted

    def _stop_service(self) -> None:
        if self._service is not None and self._service.poll() is None:
            self._service.terminate()
            try:
                self._service.wait(10)
            except subprocess.TimeoutExpired:
                self._service.kill()
                self._service.wait()
        self._service = None

    def close(self) -> None:
        self._stop_service()
        if self._dbus is not None:
            self._dbus.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._dbus.wait(10)


@contextlib.contextmanager
def rauc_rig(folder: Path, keyring: Path, **kw: object) -> Iterator[RaucRig]:
    rig = RaucRig(folder, keyring, **kw)  # type: ignore[arg-type]
    try:
        yield rig.start()
    finally:
        rig.close()
