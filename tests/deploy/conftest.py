"""Helpers for the deployment tests: provisioning files, the CLI in-process."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from appliance import cli

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = REPO / ".venv" / "bin"


def appliance(*argv: str) -> int:
    """``appliance ...`` in-process (the real parser and dispatcher)."""
    return cli.main(list(argv))


def has_module(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


@pytest.fixture(scope="session")
def demo_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``appliance provision generate --demo`` once; tests copy what they change."""
    out = tmp_path_factory.mktemp("provisioning") / "hubs"
    assert appliance("provision", "generate", "--demo", "--out", str(out)) == 0
    return out
