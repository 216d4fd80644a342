"""The package layers hold (import-linter's contracts in pyproject.toml), and a new
upward import breaks them: a copy of the package with one planted import is refused."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root)}  # the copy's package, not the installed one
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=root, env=env, text=True,
                          capture_output=True, timeout=120)


def test_the_layers_hold() -> None:
    r = lint_imports(REPO)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "0 broken" in r.stdout


def test_a_new_cycle_breaks_the_layers(tmp_path: Path) -> None:
    shutil.copytree(REPO / "appliance", tmp_path / "appliance",
                    ignore=shutil.ignore_patterns("__pycache__", "static", "migrations"))
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    keys = tmp_path / "appliance" / "store" / "keys.py"
    keys.write_text(keys.read_text() + "\nfrom ..hub import web  # the store reaching up\n")
    r = lint_imports(tmp_path)
    assert r.returncode != 0
    assert "appliance.store is not allowed to import appliance.hub" in r.stdout
