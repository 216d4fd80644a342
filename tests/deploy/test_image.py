"""The SD image recipe cannot run here (no base image, no loop devices to spare): lint it,
and check that every file it copies from the repository exists."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import REPO

SCRIPTS = [REPO / "image" / "build.sh", REPO / "image" / "chroot-setup.sh",
           REPO / "image" / "rootfs" / "usr" / "local" / "sbin" / "upazila-grow-data",
           REPO / "provisioning" / "prepare-card.sh"]


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_bash_syntax_and_mode(script: Path) -> None:
    assert script.read_text().startswith("#!/bin/bash\n")
    assert script.stat().st_mode & 0o111, f"{script} is not executable"
    res = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


@pytest.mark.skipif(shutil.which("shellcheck") is None,
                    reason="shellcheck (Debian package shellcheck) is not installed")
def test_shellcheck() -> None:
    res = subprocess.run(["shellcheck", "--severity=style", *map(str, SCRIPTS)],
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


def test_recipe_and_units_agree() -> None:
    build = (REPO / "image" / "build.sh").read_text()
    setup = (REPO / "image" / "chroot-setup.sh").read_text()
    mount = (REPO / "systemd" / "var-lib-upazila\\x2dhub.mount").read_text()
    label = re.search(r"^DATA_LABEL=(\S+)", build, re.M)
    assert label and f"What=/dev/disk/by-label/{label.group(1)}" in mount
    assert "overlayroot=tmpfs:recurse=0" in build  # read-only root, data partition left alone
    for unit in ("upazila-hub.service", "upazila-firstboot.service",
                 "upazila-growdata.service", "var-lib-upazila\\x2dhub.mount"):
        assert unit in setup, f"chroot-setup.sh does not enable {unit}"
        assert (REPO / "systemd" / unit.replace("\\\\", "\\")).exists()
    assert "avahi-daemon" in setup and "echo hub >/etc/hostname" in setup
    assert "useradd --system" in setup and "/opt/upazila-hub/venv" in setup
    assert 'ln -s "$DATA_DIR/etc" /etc/upazila-hub' in setup
