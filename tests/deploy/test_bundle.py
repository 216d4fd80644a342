"""``make bundle`` (image/bundle.sh): a root slot becomes a signed RAUC bundle (verity) that
the image's keyring accepts and whose compatible and version are what hubs check; a
bundle signed under another CA is refused by that keyring. Real ``rauc`` and openssl."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import REPO

pytestmark = pytest.mark.skipif(shutil.which("rauc") is None or shutil.which("mksquashfs")
                                is None, reason="rauc and squashfs-tools are not installed")
VERSION = next(line.split('"')[1] for line in (REPO / "pyproject.toml").read_text().splitlines()
               if line.startswith("version = "))


def _root_slot(tmp: Path) -> Path:
    root = tmp / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "upazila-hub-release").write_text(f"VERSION={VERSION}\n")
    (root / "etc" / "noise").write_bytes(os.urandom(64 * 1024))  # a squashfs over 4 KiB
    slot = tmp / "root.ext4"
    subprocess.run(["mkfs.ext4", "-q", "-F", "-d", str(root), str(slot), "8M"], check=True)
    return slot


def _bundle(tmp: Path, slot: Path, cache: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(REPO / "image" / "bundle.sh"), "--arch", "amd64", "--rootfs",
                           str(slot), "--out", str(tmp / "out")], capture_output=True,
                          text=True, timeout=120, env={**os.environ, "IMAGE_CACHE": str(cache),
                                                       **env})


def _info(bundle: Path, keyring: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["rauc", "info", f"--keyring={keyring}", "--output-format=shell",
                           str(bundle)], capture_output=True, text=True, timeout=60)


def test_bundle_is_signed_and_checked(tmp_path: Path) -> None:
    slot = _root_slot(tmp_path)
    res = _bundle(tmp_path, slot, tmp_path / "cache")
    assert res.returncode == 0, res.stderr
    assert "development key" in res.stderr  # nobody ships the dev key by accident unwarned
    bundle = Path(res.stdout.strip().splitlines()[-1])
    assert bundle.name == f"upazila-hub-{VERSION}-amd64.raucb"
    assert (bundle.parent / f"{bundle.name}.sha256").read_text().split()[0] == \
        subprocess.run(["sha256sum", str(bundle)], capture_output=True, text=True
                       ).stdout.split()[0]
    # the key never goes into the bundle's folder
    assert not any(p.name.endswith("key.pem") for p in bundle.parent.iterdir())

    keyring = tmp_path / "cache" / "dev-signing" / "ca.cert.pem"  # what build.sh bakes in
    info = _info(bundle, keyring)
    assert info.returncode == 0, info.stderr
    assert "RAUC_MF_COMPATIBLE='upazila-hub-amd64'" in info.stdout
    assert f"RAUC_MF_VERSION='{VERSION}'" in info.stdout
    plain = subprocess.run(["rauc", "info", f"--keyring={keyring}", str(bundle)],
                           capture_output=True, text=True, timeout=60).stdout
    assert "Bundle Format: \tverity" in plain  # every block checked as the hub installs it

    # national's real CA: a bundle signed by anyone else (here another CA) is refused
    other = subprocess.run([str(REPO / "image" / "sign-dev.sh"), str(tmp_path / "other")],
                           capture_output=True, text=True, check=True).stdout.strip()
    res2 = _bundle(tmp_path / "x", slot, tmp_path / "cache",
                   UPDATE_SIGNING_CERT=f"{other}/signing.cert.pem",
                   UPDATE_SIGNING_KEY=f"{other}/signing.key.pem")
    assert res2.returncode == 0 and "development key" not in res2.stderr, res2.stderr
    refused = _info(Path(res2.stdout.strip().splitlines()[-1]), keyring)
    assert refused.returncode != 0
    assert "signature" in (refused.stdout + refused.stderr).lower()


def test_no_root_slot_says_what_to_run(tmp_path: Path) -> None:
    res = _bundle(tmp_path, tmp_path / "missing.ext4", tmp_path / "cache")
    assert res.returncode == 1 and "make image ARCH=amd64" in res.stderr


def test_arm64_bundle_carries_the_slots_boot_partition(tmp_path: Path) -> None:
    """The Pi's slot is a root and its boot partition (autoboot.txt picks 2 or 3): RAUC
    writes both from one bundle, so the firmware and kernel go with the root they boot."""
    slot = _root_slot(tmp_path)
    arm = tmp_path / f"upazila-hub-{VERSION}-arm64.rootfs.ext4"
    slot.rename(arm)
    res = subprocess.run([str(REPO / "image" / "bundle.sh"), "--arch", "arm64", "--rootfs",
                          str(arm), "--out", str(tmp_path / "out")], capture_output=True,
                         text=True, timeout=120,
                         env={**os.environ, "IMAGE_CACHE": str(tmp_path / "cache")})
    assert res.returncode == 1 and "no boot partition" in res.stderr
    boot = arm.with_name(arm.name.replace(".rootfs.ext4", ".boot.vfat"))
    subprocess.run(["mkfs.fat", "-C", "-F", "32", str(boot), str(40 * 1024)], check=True,
                   capture_output=True)
    res = subprocess.run([str(REPO / "image" / "bundle.sh"), "--arch", "arm64", "--rootfs",
                          str(arm), "--out", str(tmp_path / "out")], capture_output=True,
                         text=True, timeout=120,
                         env={**os.environ, "IMAGE_CACHE": str(tmp_path / "cache")})
    assert res.returncode == 0, res.stderr
    bundle = Path(res.stdout.strip().splitlines()[-1])
    info = _info(bundle, tmp_path / "cache" / "dev-signing" / "ca.cert.pem")
    assert info.returncode == 0, info.stderr
    assert "RAUC_MF_COMPATIBLE='upazila-hub-arm64'" in info.stdout
    assert "RAUC_MF_IMAGES=2" in info.stdout
    assert "RAUC_IMAGE_CLASS_0='rootfs'" in info.stdout
    assert "RAUC_IMAGE_CLASS_1='boot'" in info.stdout


def test_bundle_version_names_the_release(tmp_path: Path) -> None:
    """BUNDLE_VERSION: the same root as another release (the QEMU update test's)."""
    slot = _root_slot(tmp_path)
    res = _bundle(tmp_path, slot, tmp_path / "cache", BUNDLE_VERSION=f"{VERSION}.1")
    assert res.returncode == 0, res.stderr
    bundle = Path(res.stdout.strip().splitlines()[-1])
    assert bundle.name == f"upazila-hub-{VERSION}.1-amd64.raucb"
    info = _info(bundle, tmp_path / "cache" / "dev-signing" / "ca.cert.pem")
    assert f"RAUC_MF_VERSION='{VERSION}.1'" in info.stdout, info.stderr
    bad = _bundle(tmp_path / "y", slot, tmp_path / "cache", BUNDLE_VERSION="1.0 beta")
    assert bad.returncode == 2 and "1.0 beta" in bad.stderr
