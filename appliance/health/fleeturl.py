"""The fleet service's endpoints from ``[health] heartbeat_url``.

People give the fleet's address either as its base (``https://fleet.example.gov.bd/``, the
dashboard's address, or under a path prefix behind a proxy) or as the heartbeat endpoint
itself (``.../api/heartbeats``, what provisioning writes). Both mean the same fleet; before
this, a base URL made the agent post heartbeats to the dashboard page, which answered 200.
"""

from __future__ import annotations

import urllib.parse

HEARTBEATS = "/api/heartbeats"


def fleet_base(url: str) -> str:
    """The fleet's base URL (no trailing slash), whichever form ``url`` is in."""
    u = urllib.parse.urlsplit(url.strip())
    path = u.path.rstrip("/")
    if path.endswith(HEARTBEATS):
        path = path[: -len(HEARTBEATS)]
    return urllib.parse.urlunsplit((u.scheme, u.netloc, path, "", ""))


def fleet_endpoint(url: str, path: str) -> str:
    """``path`` (e.g. ``/api/certificates``) on the fleet ``url`` names; empty if unset."""
    return fleet_base(url) + path if url.strip() else ""


def heartbeat_endpoint(url: str) -> str:
    return fleet_endpoint(url, HEARTBEATS)
