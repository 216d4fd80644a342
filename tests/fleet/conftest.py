"""Fixtures for the fleet service: a real aiohttp server on a loopback port over a real
SQLite file in a temporary directory, and helpers to build signed heartbeats.

``server.session`` is logged in as the fleet admin ``ADMIN`` through the real login form;
test users get cheap scrypt verifiers (``FAST_N``) so that each test does not pay a
full-cost KDF, except where a test measures login timing."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from appliance import config as config_mod
from appliance.config import Config
from appliance.dhis2.timefmt import iso_z as iso
from appliance.fleet.auth import put_user_tx
from appliance.fleet.db import FleetDB, NewHub
from appliance.fleet.web import FLEET, Fleet, create_app, start
from appliance.signing import sign
from appliance.store.users import make_verifier
from tests import tlsinfra
from tests.tlsinfra import ZONE, Bind, Pebble

ADMIN = ("national", "national-admin-pw")
VIEWER = ("dghs", "dghs-viewer-pw")
FAST_N = 2**10  # scrypt cost for test users: the verifier records it, check_verifier follows

# real BIND and pebble (tests/tlsinfra.py), as fixtures of this directory
national_dns = tlsinfra.national_dns
pebble = tlsinfra.pebble


@dataclass
class Clock:
    """Fleet time: real time plus an adjustable offset, so tests can let hours pass."""

    offset: float = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@dataclass
class FleetServer:
    url: str
    db: FleetDB
    app: web.Application
    clock: Clock
    config: Config
    session: aiohttp.ClientSession
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def fleet(self) -> Fleet:
        return self.app[FLEET]

    def enroll(self, hub_id: str = "ramu", **kw: Any) -> str:
        kw.setdefault("name", f"{hub_id.title()} UHC hub")
        token = self.db.add_hubs([NewHub(hub_id, **kw)])[hub_id]
        self.tokens[hub_id] = token
        return token

    async def post(self, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        async with self.session.post(self.url + "/api/heartbeats", data=body,
                                     headers=headers) as r:
            raw = await r.read()
            return r.status, orjson.loads(raw)

    async def send(self, payload: dict[str, Any], hub_id: str | None = None,
                   token: str | None = None) -> tuple[int, dict[str, Any]]:
        hub_id = hub_id or payload["hub_id"]
        token = token or self.tokens[hub_id]
        body, headers = signed(payload, hub_id, token)
        return await self.post(body, headers)

    async def get_json(self, path: str) -> tuple[int, Any]:
        async with self.session.get(self.url + path) as r:
            return r.status, orjson.loads(await r.read())

    async def get_text(self, path: str, **kw: Any) -> tuple[int, str, Any]:
        async with self.session.get(self.url + path, **kw) as r:
            return r.status, await r.text(), r.headers

    def snapshot(self) -> dict[str, Any]:
        """Everything a heartbeat can change, to prove a rejected one changed nothing."""
        def read(c: Any) -> dict[str, Any]:
            return {
                "hubs": [tuple(r) for r in c.execute("SELECT * FROM hubs ORDER BY id")],
                "samples": c.execute("SELECT count(*) FROM samples").fetchone()[0],
                "heartbeats": [tuple(r) for r in c.execute("SELECT * FROM heartbeats")],
                "alerts": [tuple(r) for r in c.execute("SELECT * FROM alerts ORDER BY id")],
            }
        return self.db.read_sync(read)


def sample(at: float, **over: Any) -> dict[str, Any]:
    s: dict[str, Any] = {
        "at": iso(at), "cpu_pct": 12.5, "load1": 0.4, "mem_pct": 41.0, "disk_pct": 37.2,
        "disk_free_mb": 9000, "temp_c": 61.2, "throttled": 0, "undervoltage_now": False,
        "undervoltage_seen": False, "throttled_now": False, "freq_capped_seen": False,
        "sd_written_mb": 1234.5, "ro_remount": False, "power_cuts": 3, "ntp_synced": True,
        "clock_offset_s": 0.8, "integrity_ok": True, "modem_present": True, "link_up": True,
        "sync": {"pending": 120, "conflicts": 0, "rejected": 0,
                 "last_success": iso(at - 900), "lag_s": 900}}
    sync_over = over.pop("sync", None)
    s.update(over)
    if sync_over:
        s["sync"].update(sync_over)
    return s


def heartbeat(hub_id: str = "ramu", seq: int = 1, *, sent_at: float | None = None,
              boot_id: str = "boot-1", samples: list[dict[str, Any]] | None = None,
              summary: dict[str, Any] | None = None, **over: Any) -> dict[str, Any]:
    """A heartbeat exactly as in the contract; ``sent_at`` defaults to now."""
    now = time.time() if sent_at is None else sent_at
    hb: dict[str, Any] = {
        "hub_id": hub_id, "seq": seq, "sent_at": iso(now), "version": "0.1.0",
        "name": f"{hub_id.title()} UHC hub",
        "org_unit": {"id": "abcdefghijk", "name": "Ramu", "district": "Cox's Bazar",
                     "division": "Chattogram"},
        "boot_id": boot_id, "uptime_s": 1234,
        "samples": samples if samples is not None else [sample(now - 60)],
        "summary": summary}
    hb.update(over)
    return hb


def signed(payload: Any, hub_id: str, token: str, *, raw: bytes | None = None,
           ) -> tuple[bytes, dict[str, str]]:
    body = raw if raw is not None else gzip.compress(orjson.dumps(payload))
    return body, {"Content-Type": "application/json", "Content-Encoding": "gzip",
                  "X-Hub-Id": hub_id, "X-Hub-Signature": sign(token, body),
                  "Authorization": f"Bearer {token}"}


def add_user(db: FleetDB, username: str, role: str, password: str, *,
             n: int = FAST_N) -> None:
    verifier = make_verifier(password, n=n)
    db.write_sync(lambda c: put_user_tx(c, username, role, verifier, time.time()))


def client_session(**kw: Any) -> aiohttp.ClientSession:
    """A client that keeps cookies from 127.0.0.1 (aiohttp's default jar ignores IP hosts)."""
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True), **kw)


async def login(session: aiohttp.ClientSession, url: str, username: str, password: str,
                next_url: str = "/", **headers: str) -> aiohttp.ClientResponse:
    """POST the login form as a browser would (no redirect followed)."""
    async with session.post(url + "/login", data={"username": username, "password": password,
                                                  "next": next_url},
                            headers=headers, allow_redirects=False) as r:
        await r.read()
        return r


def make_config(data_dir: Path, **fleet: Any) -> Config:
    cfg = config_mod.load(None, data_dir)
    for k, v in fleet.items():
        cfg.set("fleet", k, v)
    return cfg


@pytest.fixture
def fleet_config(tmp_path: Path) -> Config:
    """English pages (the default is Bangla), so the tests' English words keep their
    meaning; test_pages_bangla.py checks the Bangla default."""
    return make_config(tmp_path / "data", language="en")


@contextlib.asynccontextmanager
async def serve_fleet(config: Config, clock: Clock | None = None
                      ) -> AsyncIterator[FleetServer]:
    """The fleet service on a loopback port, the admin logged in."""
    clock = clock or Clock()
    db = FleetDB(config.data_dir / "fleet.db")
    app = create_app(config, db, clock=clock)
    runner, url = await start(app)
    session = client_session()
    add_user(db, *ADMIN[:1], "admin", ADMIN[1])
    try:
        r = await login(session, url, *ADMIN)
        assert r.status == 303, r.status
        yield FleetServer(url, db, app, clock, config, session)
    finally:
        await session.close()
        await runner.cleanup()
        db.close()


@pytest.fixture
async def server(fleet_config: Config) -> AsyncIterator[FleetServer]:
    async with serve_fleet(fleet_config) as s:
        yield s


# ------------------------------------------------------------------ HTTPS for tablets (#12)
def acme_config(data_dir: Path, bind: Bind | None, peb: Pebble | None, **acme: Any) -> Config:
    """A fleet config whose [acme] points at real BIND and pebble (either may be None)."""
    cfg = make_config(data_dir)
    cfg.set("acme", "domain", ZONE)
    for k, v in {**(bind.config() if bind else {}), **(peb.config() if peb else {}),
                 **acme}.items():
        cfg.set("acme", k, v)
    return cfg


@pytest.fixture
async def acme_server(tmp_path: Path, national_dns: Bind, pebble: Pebble
                      ) -> AsyncIterator[FleetServer]:
    """The fleet service issuing certificates from pebble, DNS-01 through BIND."""
    async with serve_fleet(acme_config(tmp_path / "data", national_dns, pebble)) as s:
        yield s


@dataclass
class HubKey:
    """What a hub makes (its key never leaves it) and the CSR it sends."""

    name: str
    key: ec.EllipticCurvePrivateKey
    csr_pem: str

    @classmethod
    def make(cls, name: str) -> HubKey:
        key = ec.generate_private_key(ec.SECP256R1())
        return cls(name, key, make_csr(key, [name]))

    def public_der(self) -> bytes:
        return self.key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def make_csr(key: Any, names: list[str], cn: str | None = None) -> str:
    b = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)] if cn else []))
    if names:
        b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]),
                            critical=False)
    return b.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


def cert_request(hub_id: str, token: str, csr: str, *, sent_at: float | None = None,
                 **over: Any) -> tuple[bytes, dict[str, str]]:
    """A ``POST /api/certificates`` exactly as the contract has it: uncompressed JSON,
    signed like a heartbeat."""
    payload: dict[str, Any] = {"hub_id": hub_id, "csr": csr,
                               "sent_at": iso(time.time() if sent_at is None else sent_at)}
    payload.update(over)
    body = orjson.dumps(payload)
    return body, {"Content-Type": "application/json", "X-Hub-Id": hub_id,
                  "X-Hub-Signature": sign(token, body), "Authorization": f"Bearer {token}"}


async def post_csr(server: FleetServer, hub_id: str, csr: str, *, token: str | None = None,
                   body: bytes | None = None, headers: dict[str, str] | None = None,
                   **kw: Any) -> tuple[int, dict[str, Any], Any]:
    token = token or server.tokens[hub_id]
    b, h = cert_request(hub_id, token, csr, **kw)
    async with server.session.post(server.url + "/api/certificates", data=body or b,
                                   headers=headers or h) as r:
        return r.status, orjson.loads(await r.read()), r.headers


async def fetch_certificate(server: FleetServer, hub_id: str, csr: str, *,
                            timeout: float = 60.0) -> tuple[dict[str, Any], int]:
    """Ask, as a hub does, until the certificate is issued; returns it and the number of
    202 answers on the way."""
    deadline = time.monotonic() + timeout
    pending = 0
    while True:
        status, body, headers = await post_csr(server, hub_id, csr)
        if status == 200:
            return body["response"], pending
        assert status == 202, body
        assert int(headers["Retry-After"]) == body["response"]["retry_after_s"]
        assert body["response"]["last_error"] is None, body
        pending += 1
        assert time.monotonic() < deadline, "no certificate in time"
        await asyncio.sleep(0.2)  # a hub waits Retry-After; the test need not


class ThreadedServer:
    """The fleet app on its own event loop thread, for blocking clients (Selenium)."""

    def __init__(self, config: Config, db: FleetDB) -> None:
        import asyncio
        import threading

        self.loop = asyncio.new_event_loop()
        self.app = create_app(config, db)
        self.runner, self.url = self.loop.run_until_complete(start(self.app))
        self.thread = threading.Thread(target=self.loop.run_forever, name="fleet-server",
                                       daemon=True)
        self.thread.start()

    def close(self) -> None:
        import asyncio

        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(30)
        self.loop.close()
