"""The hub's certificate renewal (issue 12) against a real aiohttp server implementing the
fleet's ``POST /api/certificates`` (signing with a throwaway CA): pending then issued, a
refused certificate not installed, errors recorded, the CLI, the heartbeat's ``tls`` and
``lan_ip``, and that no request ever carries the private key."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import stat
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from appliance import config as config_mod
from appliance import tlscert
from appliance.health import certrenew
from appliance.health.agent import HealthAgent, Settings
from appliance.health.certrenew import CertRenewer, LanAddress, RenewSettings
from appliance.health.sample import Sample
from appliance.signing import verify
from appliance.store import Store

from ..conftest import REPO, free_port
from ..tlsca import HUB_NAME, TestCA
from .sink import FleetSink

TOKEN = "fleet-token-for-ramu"
HUB_ID = "ramu"


@dataclass
class CertFleet:
    """``POST /api/certificates`` as the contract states it, issuing from a test CA."""

    ca: TestCA
    pending: int = 0                  # answer 202 this many times first
    retry_after: str = "0"
    names: list[str] | None = None    # issue for these names instead of the CSR's (a bad fleet)
    status: int | None = None         # answer this error instead
    bodies: list[bytes] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    port: int = field(default_factory=free_port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/certificates"

    def reply(self, status: int, message: str, response: Any = None,
              headers: dict[str, str] | None = None) -> web.Response:
        return web.json_response({"httpStatus": "x", "httpStatusCode": status, "status": "OK"
                                  if status < 300 else "ERROR", "message": message,
                                  "response": response}, status=status, headers=headers)

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        self.bodies.append(raw)
        self.headers.append(dict(request.headers))
        if request.headers.get("Authorization") != f"Bearer {TOKEN}" or not verify(
                TOKEN, raw, request.headers.get("X-Hub-Signature")):
            return self.reply(401, "bad token or signature")
        assert "Content-Encoding" not in request.headers
        body = json.loads(raw)
        assert set(body) == {"hub_id", "csr", "sent_at"} and body["hub_id"] == HUB_ID
        if self.status is not None:
            return self.reply(self.status, "configured refusal")
        csr = x509.load_pem_x509_csr(body["csr"].encode())
        assert csr.is_signature_valid
        if self.pending > 0:
            self.pending -= 1
            return self.reply(202, "issuing", {"state": "pending", "retry_after_s":
                                               float(self.retry_after),
                                               "last_error": "DNS not answering yet"},
                              headers={"Retry-After": self.retry_after})
        cert = self.ca.issue_csr(body["csr"].encode(), self.names)
        return self.reply(200, "issued", {"state": "issued", "name": HUB_NAME,
                                          "certificate": cert.decode(), "not_after": "x"})


@pytest.fixture(scope="module")
def ca() -> TestCA:
    return TestCA()


@pytest.fixture
async def fleet(ca: TestCA) -> AsyncIterator[CertFleet]:
    f = CertFleet(ca)
    app = web.Application()
    app.router.add_post("/api/certificates", f.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", f.port).start()
    yield f
    await runner.cleanup()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "hub.db")
    yield s
    s.close()


def renew_settings(tmp_path: Path, url: str) -> RenewSettings:
    return RenewSettings(name=HUB_NAME, directory=tmp_path / "tls", url=url, hub_id=HUB_ID,
                         token=TOKEN, renew_days=30, wait_s=10)


def csr_keys(bodies: list[bytes]) -> set[bytes]:
    """The public keys the CSRs in ``bodies`` were made for."""
    return {x509.load_pem_x509_csr(json.loads(b)["csr"].encode()).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        for b in bodies}


def assert_no_private_key(bodies: list[bytes], key_pem: bytes) -> None:
    """The key as PEM text, its base64 lines, its DER and its private scalar: in no body."""
    key = serialization.load_pem_private_key(key_pem, None)
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    b64 = base64.b64encode(der)
    scalar = key.private_numbers().private_value.to_bytes(32, "big")  # type: ignore[union-attr]
    lines = [ln for ln in key_pem.splitlines() if ln and not ln.startswith(b"-----")]
    assert bodies
    for body in bodies:
        text = json.loads(body)["csr"].encode()
        for needle in (key_pem, der, b64, scalar, scalar.hex().encode(), b"PRIVATE KEY",
                       *lines):
            assert needle not in body and needle not in text


async def _renewal(store: Store) -> dict[str, Any]:
    """The renewer's record in the store (it writes one at every check)."""
    rec = await store.read(certrenew.renewal_state)
    assert rec is not None, "no renewal state in the store"
    return rec


async def test_pending_then_issued_installs_the_pair(fleet: CertFleet, store: Store,
                                                     tmp_path: Path) -> None:
    fleet.pending = 2
    renewer = CertRenewer(renew_settings(tmp_path, fleet.url), store)
    res = await renewer.check()
    assert res.state == "installed" and res.valid, res.message
    assert len(fleet.bodies) == 3
    csrs = {json.loads(b)["csr"] for b in fleet.bodies}
    assert len(csrs) == 1  # the same CSR (same key) re-sent until issued
    pair = tlscert.load(tmp_path / "tls")
    assert pair is not None and pair.info.names == (HUB_NAME,)
    csr = x509.load_pem_x509_csr(csrs.pop().encode())
    assert csr.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) == \
        tlscert.public_key_der(pair.key_pem)
    assert stat.S_IMODE((pair.generation / "key.pem").stat().st_mode) == 0o600
    assert not tlscert.next_key_path(tmp_path / "tls").exists()
    assert_no_private_key(fleet.bodies, pair.key_pem)
    rec = await _renewal(store)
    assert rec["state"] == "installed" and rec["last_error"] is None and rec["last_success"]
    st = certrenew.status(HUB_NAME, pair.info, rec, 30)
    assert st is not None and st["state"] == "ok" and st["url"] == f"https://{HUB_NAME}"
    # the next check has nothing to do and sends nothing
    assert (await renewer.check()).state == "ok" and len(fleet.bodies) == 3


async def test_pending_past_the_wait_keeps_the_key_for_the_next_check(
        fleet: CertFleet, store: Store, tmp_path: Path) -> None:
    fleet.pending, fleet.retry_after = 2, "30"
    renewer = CertRenewer(renew_settings(tmp_path, fleet.url), store)
    res = await renewer.check(wait_s=1)
    assert res.state == "pending" and res.retry_after_s == 30 and not res.valid
    key = tlscert.read_next_key(tmp_path / "tls")
    assert key is not None and stat.S_IMODE(
        tlscert.next_key_path(tmp_path / "tls").stat().st_mode) == 0o600
    rec = await _renewal(store)
    assert rec["state"] == "pending" and rec["last_error"] == "DNS not answering yet"
    st = certrenew.status(HUB_NAME, None, rec, 30)
    assert st is not None and st["state"] == "none" and st["last_error"] == "DNS not answering yet"
    assert (await renewer.check(wait_s=0)).state == "pending"
    fleet.retry_after = "0"
    assert (await renewer.check()).state == "installed"
    assert len(csr_keys(fleet.bodies)) == 1  # each check signs anew, with the same key
    pair = tlscert.load(tmp_path / "tls")
    assert pair is not None and pair.key_pem == key
    assert_no_private_key(fleet.bodies, key)


async def test_a_refused_certificate_is_not_installed(ca: TestCA, fleet: CertFleet,
                                                      store: Store, tmp_path: Path) -> None:
    # the installed 90-day certificate is due: 10 days left
    now = datetime.now(UTC)
    old_cert, old_key = ca.pair(not_before=now - timedelta(days=80),
                                not_after=now + timedelta(days=10))
    tlscert.install(tmp_path / "tls", old_cert, old_key, HUB_NAME)
    fleet.names = ["dhaka.hub.example.test"]
    renewer = CertRenewer(renew_settings(tmp_path, fleet.url), store)
    res = await renewer.check()
    assert res.state == "error" and not res.valid
    assert f"the certificate is for dhaka.hub.example.test, not this hub's name {HUB_NAME}" \
        in res.message
    pair = tlscert.load(tmp_path / "tls")
    assert pair is not None and pair.cert_pem == old_cert and pair.key_pem == old_key
    assert not tlscert.next_key_path(tmp_path / "tls").exists()  # a new key next time
    rec = await _renewal(store)
    assert "not this hub's name" in rec["last_error"]
    st = certrenew.status(HUB_NAME, pair.info, rec, 30)
    assert st is not None and st["state"] == "renewing" and "dhaka" in st["last_error"]
    # the fleet mends its ways: the next check installs a good one, with a new key
    fleet.names = None
    assert (await renewer.check()).state == "installed"
    assert len(csr_keys(fleet.bodies)) == 2
    new = tlscert.load(tmp_path / "tls")
    assert new is not None and new.cert_pem != old_cert
    assert (await _renewal(store))["last_error"] is None
    assert_no_private_key(fleet.bodies, new.key_pem)
    assert_no_private_key(fleet.bodies, old_key)


async def test_due_only_when_due_or_forced(ca: TestCA, fleet: CertFleet, store: Store,
                                           tmp_path: Path) -> None:
    cert, key = ca.pair(days=90)
    tlscert.install(tmp_path / "tls", cert, key, HUB_NAME)
    renewer = CertRenewer(renew_settings(tmp_path, fleet.url), store)
    assert (await renewer.check()).state == "ok" and fleet.bodies == []
    assert (await renewer.check(force=True)).state == "installed" and len(fleet.bodies) == 1


async def test_errors_are_recorded_and_retried(fleet: CertFleet, store: Store,
                                               tmp_path: Path) -> None:
    renewer = CertRenewer(renew_settings(tmp_path, fleet.url), store)
    for status, words in ((503, "does not issue certificates"), (403, "not this hub's name"),
                          (401, "check [health] token"), (400, "refused the certificate "
                                                                "request")):
        fleet.status = status
        res = await renewer.check()
        assert res.state == "error" and words in res.message, res.message
        assert (await _renewal(store))["last_error"] == res.message
    renewer.s.token = "wrong"
    fleet.status = None
    assert "HTTP 401" in (await renewer.check()).message
    down = CertRenewer(renew_settings(tmp_path, f"http://127.0.0.1:{free_port()}/api/"
                                                "certificates"), store)
    res = await down.check()
    assert res.state == "error" and "fleet unreachable" in res.message
    assert tlscert.load(tmp_path / "tls") is None


def test_default_url_and_settings(tmp_path: Path) -> None:
    assert certrenew.default_url("https://fleet.example.test:8443/api/heartbeats?x=1") == \
        "https://fleet.example.test:8443/api/certificates"
    cfg = config_mod.load(None, tmp_path)
    cfg.set("tls", "name", HUB_NAME)
    cfg.set("health", "heartbeat_url", "http://10.0.0.1:8090/api/heartbeats")
    s = RenewSettings.from_config(cfg)
    assert s.url == "http://10.0.0.1:8090/api/certificates" and s.directory == tmp_path / "tls"
    cfg.set("tls", "certificate_url", "http://other/api/certificates")
    assert RenewSettings.from_config(cfg).url == "http://other/api/certificates"


async def test_cli_renew_and_status(fleet: CertFleet, tmp_path: Path) -> None:
    fleet.pending = 1
    conf = tmp_path / "hub.toml"
    fd = os.open(conf, os.O_WRONLY | os.O_CREAT, 0o600)  # holds the token
    os.write(fd, (f'[hub]\nid = "{HUB_ID}"\n[tls]\nname = "{HUB_NAME}"\n'
                  f'[health]\nheartbeat_url = "http://127.0.0.1:{fleet.port}/api/heartbeats"\n'
                  f'token = "{TOKEN}"\n').encode())
    os.close(fd)

    async def appliance(*argv: str) -> tuple[int, str]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "appliance.cli", "tls", "--config", str(conf),
            "--data-dir", str(tmp_path / "data"), *argv, cwd=REPO,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        out, _ = await proc.communicate()
        return proc.returncode or 0, out.decode()

    code, out = await appliance("status")
    assert code == 0 and "state:       none" in out and "installed:   none yet" in out
    code, out = await appliance("renew", "--wait", "20")
    assert code == 0, out
    assert "tls renew: installed" in out
    code, out = await appliance("status")
    assert code == 0 and "state:       ok" in out and f"issuer:      {fleet.ca.cn}" in out
    assert f"address:     https://{HUB_NAME}" in out
    pair = tlscert.load(tmp_path / "data" / "tls")
    assert pair is not None
    assert pair.key_pem.decode() not in out
    assert_no_private_key(fleet.bodies, pair.key_pem)
    fleet.status = 503
    code, out = await appliance("renew", "--force", "--wait", "0")
    assert code == 0 and "does not issue certificates" in out  # the old one is still valid


async def test_heartbeat_carries_tls_and_lan_ip(ca: TestCA, store: Store,
                                                tmp_path: Path) -> None:
    sink = FleetSink(token=TOKEN).start()
    try:
        cfg = config_mod.load(None, tmp_path)
        cfg.set("hub", "id", HUB_ID)
        cfg.set("tls", "name", HUB_NAME)
        cfg.set("health", "heartbeat_url", sink.url)
        cfg.set("health", "token", TOKEN)
        settings = Settings.from_config(cfg)
        settings.gpio_enabled = False
        agent = HealthAgent(settings, store, udev_source=None)
        assert agent.renewer is not None
        assert agent.renewer.s.url == f"http://127.0.0.1:{sink.port}/api/certificates"
        sample = Sample(at="2026-12-06T07:00:00Z", cpu_pct=1.0).to_dict()
        await agent.heartbeats.enqueue(sample)
        assert (await agent.heartbeats.flush()).delivered
        body = sink.received[-1].body
        # the route to a fleet on this machine is loopback: no address to publish
        assert body["tls"] is None and body["lan_ip"] is None
        cert, key = ca.pair()
        tlscert.install(tmp_path / "tls", cert, key, HUB_NAME)
        settings.lan = LanAddress(address="10.77.0.1")
        await agent.heartbeats.enqueue(sample)
        assert (await agent.heartbeats.flush()).delivered
        body = sink.received[-1].body
        info = tlscert.cert_info(cert)
        assert body["tls"] == {"name": HUB_NAME, "issuer": ca.cn,
                               "not_after": info.not_after.strftime("%Y-%m-%dT%H:%M:%SZ"),
                               "fingerprint": info.fingerprint}
        assert body["lan_ip"] == "10.77.0.1"
        assert b"PRIVATE" not in json.dumps(body).encode()
        await agent.aclose()
    finally:
        sink.close()
    assert LanAddress(interface="lo").get() is None  # never a loopback address
    assert LanAddress(fleet_url="http://127.0.0.1:1/").get() is None
    assert LanAddress(interface="no-such-if0").get() is None
    assert LanAddress().get() is None
