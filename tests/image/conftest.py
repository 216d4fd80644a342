"""Fixtures of the image tests: the amd64 image built once per session by the project's own
recipe, and national's side on the host (the DHIS2 stand-in, the fleet service and the
backup server: Debian's real sshd serving SFTP, as in tests/backup; ``national.py``)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator

import pytest

from .national import National, national_side
from .vm import Built, build_image

NEEDS = ("mmdebstrap", "qemu-system-x86_64", "mcopy", "mkfs.fat", "sfdisk", "rauc")


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    missing = [t for t in NEEDS if shutil.which(t) is None]
    assert not missing, f"{missing} not installed: scripts/install-system-deps (image.txt)"
    keys = tmp_path_factory.mktemp("admin-key")
    key = keys / "admin"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "national-test",
                    "-f", str(key)], check=True)
    b = build_image(tmp_path_factory.mktemp("image"), key)
    print(f"\nimage build (amd64, base tarball cached or not): {b.seconds:.0f} s")
    return b


@pytest.fixture(scope="module")
def national(tmp_path_factory: pytest.TempPathFactory) -> Iterator[National]:
    with national_side(tmp_path_factory.mktemp("national")) as n:
        yield n
