"""Fixtures of the image tests: the amd64 image built once per session by the project's own
recipe, and national's side on the host (the DHIS2 stand-in, the fleet service and the
backup server: Debian's real sshd serving SFTP, as in tests/backup; ``national.py``)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from .national import National, national_side
from .vm import Built, admin_key, build_image, existing_image

NEEDS = ("mmdebstrap", "qemu-system-x86_64", "mcopy", "mkfs.fat", "sfdisk", "rauc")


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    missing = [t for t in NEEDS if shutil.which(t) is None]
    assert not missing, f"{missing} not installed: scripts/install-system-deps (image.txt)"
    reuse = os.environ.get("UPAZILA_TEST_IMAGE")
    if reuse:  # iterating on a VM test: build.sh --out DIR --no-compress ran before, with
        # ADMIN_SSH_PUBKEY=DIR/admin.pub; never set in CI (make test builds afresh)
        b = existing_image(Path(reuse))
        print(f"\nimage reused from {reuse} (UPAZILA_TEST_IMAGE): "
              f"{b.manifest.read_text().splitlines()[2]}")
        return b
    key = admin_key(tmp_path_factory.mktemp("admin-key"))
    b = build_image(tmp_path_factory.mktemp("image"), key)
    print(f"\nimage build (amd64, base tarball cached or not): {b.seconds:.0f} s")
    return b


@pytest.fixture(scope="session")
def built_arm64(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """The Pi's image, built on this (x86-64) machine through qemu-user-static (25 to 50
    minutes from scratch). UPAZILA_ARM64_BUILT=DIR uses a build already there instead
    (image/build.sh --arch arm64 --no-compress --out DIR, with ADMIN_SSH_PUBKEY=DIR/admin.pub
    and its private key DIR/admin)."""
    missing = [t for t in (*NEEDS[:1], "mcopy", "mkfs.fat", "sfdisk", "debugfs")
               if shutil.which(t) is None]
    assert not missing, f"{missing} not installed: scripts/install-system-deps (image.txt)"
    if os.environ.get("UPAZILA_ARM64_BUILT"):
        out = Path(os.environ["UPAZILA_ARM64_BUILT"])
        (img,) = out.glob("upazila-hub-*-arm64.img")
        stem = img.name.removesuffix(".img")
        return Built(img, out / f"{stem}.rootfs.ext4", out / f"{stem}.manifest",
                     out / "admin", 0.0, "arm64")
    key = admin_key(tmp_path_factory.mktemp("admin-key-arm64"))
    b = build_image(tmp_path_factory.mktemp("image-arm64"), key, arch="arm64")
    print(f"\nimage build (arm64, base tarball cached or not): {b.seconds:.0f} s")
    return b


@pytest.fixture(scope="module")
def national(tmp_path_factory: pytest.TempPathFactory) -> Iterator[National]:
    with national_side(tmp_path_factory.mktemp("national")) as n:
        yield n
