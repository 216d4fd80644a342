"""'Sync now' signals from other processes (hub, health agent, button) to the sync daemon.

The daemon binds a Unix datagram socket; a signal is one datagram naming the reason.
Sending never blocks and never fails loudly: if the daemon is not running the next
timer cycle picks the work up anyway.

A top-level module, outside the store/sync/health/hub layers and importing none of them:
the hub and the health agent send, the sync daemon listens, and none of them need the
others for that.
"""

from __future__ import annotations

import socket
from pathlib import Path

# "update": the update agent on a newly booted release, which is committed only after
# sync finishes a cycle there (health/updater.py)
REASONS = {"timer", "local-data", "api", "cli", "button", "modem", "usb", "update"}


def socket_path(data_dir: str | Path, configured: str = "") -> Path:
    return Path(configured) if configured else Path(data_dir) / "sync.sock"


def request_sync(data_dir: str | Path, reason: str, configured: str = "") -> bool:
    """Ask the sync daemon for a cycle. True if the datagram was delivered."""
    path = socket_path(data_dir, configured)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.setblocking(False)
            s.sendto(reason.encode()[:64], str(path))
        return True
    except OSError:
        return False
