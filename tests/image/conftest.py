"""Fixtures of the image tests: the cards built by the project's own recipe, in the
background from the session's first test (builds.py), and national's side on the host
(the DHIS2 stand-in, the fleet service and the backup server: Debian's real sshd serving
SFTP, as in tests/backup; ``national.py``)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from .builds import BuildQueue
from .national import National, national_side
from .vm import Built, existing_image

NEEDS = ("mmdebstrap", "qemu-system-x86_64", "mcopy", "mkfs.fat", "sfdisk", "rauc")


def _missing(tools: tuple[str, ...]) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    assert not missing, f"{missing} not installed: scripts/install-system-deps (image.txt)"


def _from_queue(image_builds: BuildQueue | None, name: str, what: str) -> Built:
    assert image_builds is not None and name in image_builds.builds, name
    b, waited = image_builds.get(name)
    print(f"\nimage build ({what}): {b.seconds:.0f} s in the background "
          f"(base tarball cached or not); waited {waited:.0f} s for it")
    return b


@pytest.fixture(scope="session")
def built(image_builds: BuildQueue | None) -> Built:
    """The amd64 card, as image/build.sh makes it (tests/image/builds.py)."""
    _missing(NEEDS)
    reuse = os.environ.get("UPAZILA_TEST_IMAGE")
    if reuse:  # iterating on a VM test: build.sh --out DIR --no-compress ran before, with
        # ADMIN_SSH_PUBKEY=DIR/admin.pub; never set in CI (make test builds afresh)
        b = existing_image(Path(reuse))
        print(f"\nimage reused from {reuse} (UPAZILA_TEST_IMAGE): "
              f"{b.manifest.read_text().splitlines()[2]}")
        return b
    return _from_queue(image_builds, "built", "amd64")


@pytest.fixture(scope="session")
def built_again(image_builds: BuildQueue | None) -> Built:
    """A second amd64 card from the same checkout and cached base (test_reproducible)."""
    _missing(NEEDS)
    return _from_queue(image_builds, "built_again", "amd64, again")


@pytest.fixture(scope="session")
def built_arm64(image_builds: BuildQueue | None) -> Built:
    """The Pi's card, built on this (x86-64) machine through qemu-user-static: about 20
    minutes of a core from scratch. UPAZILA_ARM64_BUILT=DIR uses a build already there
    instead (image/build.sh --arch arm64 --no-compress --out DIR, with
    ADMIN_SSH_PUBKEY=DIR/admin.pub and its private key DIR/admin)."""
    _missing((*NEEDS[:1], "mcopy", "mkfs.fat", "sfdisk", "debugfs"))
    if os.environ.get("UPAZILA_ARM64_BUILT"):
        return existing_image(Path(os.environ["UPAZILA_ARM64_BUILT"]), "arm64")
    return _from_queue(image_builds, "built_arm64", "arm64")


@pytest.fixture(scope="module")
def national(tmp_path_factory: pytest.TempPathFactory) -> Iterator[National]:
    with national_side(tmp_path_factory.mktemp("national")) as n:
        yield n
