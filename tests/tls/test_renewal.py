"""The hub renews its certificate through the fleet on its own, under load, and its private
key never leaves it.

Real processes on loopback: BIND and pebble (issuing 60-second certificates), the fleet
service, and the hub's ``appliance hub`` and ``appliance health`` as supervisord runs them.
The health agent talks to the fleet through a proxy that keeps every byte it sends.
Clients loop over HTTPS the whole time, with fresh handshakes and kept-alive connections;
the certificate is due after two thirds of its life, the agent renews it, the hub swaps it
in, and no request fails.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import re
import socket
import ssl
import time
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import pytest

from appliance import tlscert
from appliance.provisioning import tomlout
from tests.tls.rig import APPLIANCE, RecordingProxy, fleet_service, process, run, wait
from tests.tlsinfra import free_port, run_bind, run_pebble

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

DOMAIN = "hub.example.test"
NAME = f"ramu.{DOMAIN}"
LIFETIME_S = 60


def _served(port: int, ca: Path) -> str:
    """The fingerprint of the certificate a new handshake gets, verified as a tablet would."""
    ctx = ssl.create_default_context(cafile=str(ca))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
            ctx.wrap_socket(raw, server_hostname=NAME) as tls:
        return hashlib.sha256(tls.getpeercert(binary_form=True) or b"").hexdigest()


async def _load(port: int, ca: Path, stop: asyncio.Event, fresh: bool
                ) -> tuple[list[float], list[str]]:
    """One client looping until ``stop``: (when each request succeeded, failures)."""
    ctx = ssl.create_default_context(cafile=str(ca))
    done: list[float] = []
    failures: list[str] = []
    conn = aiohttp.TCPConnector(ssl=ctx, force_close=fresh)
    async with aiohttp.ClientSession(connector=conn) as s:
        while not stop.is_set():
            try:
                # the name is what the tablet verifies; loopback is where the hub listens
                async with s.get(f"https://127.0.0.1:{port}/api/system/ping",
                                 server_hostname=NAME) as r:
                    body = await r.read()
                    if r.status != 200:
                        failures.append(f"{r.status} {body[:100]!r}")
                    else:
                        done.append(time.monotonic())
            except Exception as e:  # noqa: BLE001 - every failure is the finding
                failures.append(repr(e))
            await asyncio.sleep(0.01)
    return done, failures


def _key_forms(key_pem: bytes) -> list[bytes]:
    """The private key as it could travel: PEM, its base64 lines, DER, the raw scalar."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = serialization.load_pem_private_key(key_pem, None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    scalar = key.private_numbers().private_value.to_bytes(32, "big")
    body = [ln for ln in key_pem.splitlines() if ln and not ln.startswith(b"-----")]
    return [key_pem, der, scalar, base64.b64encode(der), scalar.hex().encode(), *body]


async def test_hub_renews_through_the_fleet_under_load(tmp_path: Path) -> None:
    with contextlib.ExitStack() as stack:
        bind = stack.enter_context(run_bind(tmp_path, zone=DOMAIN, port=free_port()))
        peb = stack.enter_context(run_pebble(tmp_path, dns_server=bind.server,
                                             validity_s=LIFETIME_S))
        fleet = stack.enter_context(fleet_service(tmp_path, listen="127.0.0.1",
                                                  domain=DOMAIN, bind=bind, peb=peb))
        token = fleet.add_hub("ramu", NAME)
        fleet_addr = urlsplit(fleet.url)
        proxy = RecordingProxy((fleet_addr.hostname or "", fleet_addr.port or 0)).start()
        stack.callback(proxy.close)

        data = tmp_path / "data"
        https_port = free_port()
        hub_toml = tmp_path / "hub.toml"
        hub_toml.write_text(tomlout.dumps({
            "hub": {"id": "ramu", "listen": f"127.0.0.1:{free_port()}", "zeroconf": False},
            "tls": {"name": NAME, "listen": f"127.0.0.1:{https_port}", "check_every_s": 2},
            "health": {"heartbeat_url": proxy.url + "/api/heartbeats", "token": token,
                       "interval_s": 1, "heartbeat_every": 1},
            "gpio": {"enabled": False}}))
        hub_toml.chmod(0o600)
        common = ["--config", str(hub_toml), "--data-dir", str(data)]

        # the first certificate, as provisioning asks for it
        first = run([*APPLIANCE, "tls", *common, "renew", "--wait", "120"])
        pair = tlscert.load(data / "tls")
        assert pair is not None, first.stdout
        old = pair.info.fingerprint
        keys = [pair.key_pem]
        assert 0 < pair.info.lifetime_days() * 86400 <= LIFETIME_S + 5

        hub_log, health_log = tmp_path / "hub.log", tmp_path / "health.log"
        hub = stack.enter_context(process([*APPLIANCE, "hub", *common, "--demo"], hub_log))
        wait("the hub serves HTTPS", lambda: hub.poll() is None
             and _served(https_port, peb.root_pem) == old, 120, hub_log)

        # clients loop over HTTPS while the health agent renews and the hub swaps
        stop = asyncio.Event()
        clients = [asyncio.create_task(_load(https_port, peb.root_pem, stop, fresh=i % 2 == 0))
                   for i in range(12)]
        stack.enter_context(process([*APPLIANCE, "health", *common], health_log))
        deadline = time.monotonic() + LIFETIME_S + 60
        new = old
        while new == old and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            new = await asyncio.to_thread(_served, https_port, peb.root_pem)
        swapped = time.monotonic()
        await asyncio.sleep(2)  # a little more load on the new certificate
        stop.set()
        results = await asyncio.gather(*clients)

        assert new != old, health_log.read_text()[-3000:]
        renewed = tlscert.load(data / "tls")
        assert renewed is not None and renewed.info.fingerprint == new
        assert renewed.key_pem != pair.key_pem  # a new key for each certificate
        keys.append(renewed.key_pem)
        done = [t for r in results for t in r[0]]
        failures = [f for r in results for f in r[1]]
        assert len(done) > 100 and not failures, (len(done), failures[:5])
        # the load ran across the swap, on every client
        assert all(min(r[0]) < swapped - 1 < swapped + 1 < max(r[0]) for r in results)

    # on the wire: the CSRs went to the fleet, the private keys never did
    wire = bytes(proxy.sent)
    assert len(re.findall(rb"POST /api/certificates ", wire)) >= 2
    # one CSR for the first certificate, one for the renewal: a fresh certificate is not
    # already due, so the hub does not order one after another
    assert len(set(re.findall(rb'"csr": ?"([^"]+)"', wire))) == 2
    for key_pem in keys:
        for form in _key_forms(key_pem):
            assert form not in wire
    assert b"PRIVATE KEY" not in wire
