"""A health assistant's tablet, as a process in its own network namespace.

``python -m tests.tls.tablet --url https://ramu.hub.dghs.test --ca pebble-root.pem``

It resolves the hub's name through the system resolver (``ip netns exec`` gives the
namespace its own ``/etc/resolv.conf``, naming the hub), trusts only the CA file it is
given (as a tablet trusts only its system CAs), and replays the DHIS2 Android SDK's login
and metadata download (``tests/contract``'s ``Sdk``). It prints one JSON line: what it
resolved, the certificate it was served, and what the app would show.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import socket
import ssl
import sys
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp


@dataclass
class Server:
    """What ``Sdk`` needs of a hub: its API addresses."""

    url: str

    def api(self, path: str) -> str:
        return f"{self.url}/api/{path.lstrip('/')}"


def served_certificate(host: str, port: int, ca: str) -> dict[str, Any]:
    """One handshake as the tablet makes it (SNI, verified against ``ca`` only)."""
    ctx = ssl.create_default_context(cafile=ca)
    t0 = time.perf_counter()
    with socket.create_connection((host, port), timeout=10) as raw, \
            ctx.wrap_socket(raw, server_hostname=host) as tls:
        der = tls.getpeercert(binary_form=True) or b""
        peer = tls.getpeercert() or {}
        return {"fingerprint": hashlib.sha256(der).hexdigest(), "version": tls.version(),
                "not_after": peer.get("notAfter"), "handshake_s": time.perf_counter() - t0}


async def replay(url: str, ca: str, user: str, password: str) -> dict[str, Any]:
    from tests.contract.test_android_sdk_sequence import Sdk

    ctx = ssl.create_default_context(cafile=ca)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx),
                                     timeout=aiohttp.ClientTimeout(total=120)) as session:
        tablet = Sdk(session, Server(url), user, password)  # type: ignore[arg-type]
        async with session.get(f"{url}/api/loginConfig") as r:
            assert r.status == 200, r.status
        me = await tablet.login()
        md = await tablet.metadata()
        return {"user": me.get("username") or user, "org_units": len(md.org_units),
                "data_sets": len(md.data_sets), "calls": len(tablet.calls),
                "statuses": sorted({c.status for c in tablet.calls})}


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--ca", required=True)
    p.add_argument("--user", default="chcp")
    p.add_argument("--password", default="district")
    p.add_argument("--handshake-only", action="store_true")
    args = p.parse_args(argv)
    parts = urlsplit(args.url)
    host, port = parts.hostname or "", parts.port or 443
    out: dict[str, Any] = {"resolved": sorted({a[4][0] for a in socket.getaddrinfo(
        host, port, socket.AF_INET, socket.SOCK_STREAM)})}
    out["certificate"] = served_certificate(host, port, args.ca)
    if not args.handshake_only:
        out["sdk"] = asyncio.run(replay(args.url, args.ca, args.user, args.password))
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
