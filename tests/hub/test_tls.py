"""HTTPS on the hub (issue 12): the certificate files, the HTTPS listener beside HTTP, its
hot swap with requests in flight, refusals that keep the old pair, and what the status API
and pages show. Real aiohttp servers on real ports; a client trusting only a throwaway CA
(tests/tlsca.py), as a tablet trusts only the system's CAs."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import shutil
import ssl
import stat
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from appliance import tlscert
from appliance.errors import CertificateError
from appliance.httpserver import make_runner
from appliance.hub.app import create_app
from appliance.hub.tls import HttpsListener, TlsSettings
from appliance.store import Store

from ..conftest import ADMIN, copy_db, free_port, make_config, start_hub_process
from ..tlsca import HUB_NAME, TestCA


@pytest.fixture(scope="module")
def ca() -> TestCA:
    return TestCA()


def fingerprint_of(cert_pem: bytes) -> str:
    return tlscert.cert_info(cert_pem).fingerprint


# -- the files ----------------------------------------------------------------------------------
def test_install_load_and_key_modes(ca: TestCA, tmp_path: Path) -> None:
    d = tmp_path / "tls"
    cert, key = ca.pair()
    os.umask(0o022)
    info = tlscert.install(d, cert, key, HUB_NAME)
    pair = tlscert.load(d)
    assert pair is not None and pair.cert_pem == cert and pair.key_pem == key
    assert pair.info == info and info.names == (HUB_NAME,) and info.issuer == ca.cn
    assert info.fingerprint == hashlib.sha256(
        ssl.PEM_cert_to_DER_cert(cert.decode().split("-----END CERTIFICATE-----")[0] +
                                 "-----END CERTIFICATE-----\n")).hexdigest()
    live = d / "live"
    assert live.is_symlink() and os.readlink(live) == "gen-1"
    assert stat.S_IMODE((live / "key.pem").stat().st_mode) == 0o600
    assert stat.S_IMODE((live / "cert.pem").stat().st_mode) == 0o644
    # three more installs: live moves on, only the two newest generations stay
    for _ in range(3):
        c, k = ca.pair()
        tlscert.install(d, c, k, HUB_NAME)
    assert os.readlink(live) == "gen-4"
    assert sorted(p.name for p in d.iterdir() if p.name.startswith("gen-")) == ["gen-3", "gen-4"]
    # the renewal key: 0600, kept across calls until dropped
    nk = tlscert.next_key(d)
    assert stat.S_IMODE(tlscert.next_key_path(d).stat().st_mode) == 0o600
    assert tlscert.next_key(d) == nk
    csr = tlscert.make_csr(nk, HUB_NAME)
    assert b"BEGIN CERTIFICATE REQUEST" in csr and b"PRIVATE" not in csr
    tlscert.drop_next_key(d)
    assert not tlscert.next_key_path(d).exists() and tlscert.next_key(d) != nk


def test_refusals_keep_the_installed_pair(ca: TestCA, tmp_path: Path) -> None:
    d = tmp_path / "tls"
    good, good_key = ca.pair()
    tlscert.install(d, good, good_key, HUB_NAME)
    other_cert, other_key = ca.pair()
    now = datetime.now(UTC)
    cases = [
        (other_cert, good_key, "does not match this hub's private key"),
        (ca.issue(good_key, "dhaka.hub.example.test"), good_key,
         f"the certificate is for dhaka.hub.example.test, not this hub's name {HUB_NAME}"),
        (ca.issue(good_key, not_before=now - timedelta(days=100),
                  not_after=now - timedelta(days=10)), good_key, "the certificate expired on"),
        (ca.issue(good_key, not_before=now + timedelta(days=2)), good_key,
         "not valid before"),
        (b"hello, not a certificate", good_key, "not a PEM certificate"),
        (b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", good_key,
         "not a PEM certificate"),
    ]
    for cert, key, words in cases:
        with pytest.raises(CertificateError) as e:
            tlscert.install(d, cert, key, HUB_NAME)
        assert words in e.value.message, e.value.message
        assert e.value.http_status == 400
        pair = tlscert.load(d)
        assert pair is not None and pair.cert_pem == good and pair.key_pem == good_key
    assert os.readlink(d / "live") == "gen-1" and not (d / "gen-2").exists()
    # the messages never carry key material
    with pytest.raises(CertificateError) as e:
        tlscert.check_pair(good, b"-----BEGIN PRIVATE KEY-----\nbroken\n", HUB_NAME)
    assert "broken" not in e.value.message


def test_renewal_due() -> None:
    def info(days_total: float, days_left: float) -> tlscert.CertInfo:
        now = datetime.now(UTC)
        return tlscert.CertInfo((HUB_NAME,), now - timedelta(days=days_total - days_left),
                                now + timedelta(days=days_left), "CA", "f", "1")
    assert tlscert.renewal_due(None, 30)
    assert not tlscert.renewal_due(info(90, 60), 30)
    assert tlscert.renewal_due(info(90, 29), 30)          # fewer than renew_days left
    assert not tlscert.renewal_due(info(90, 31), 30)
    # Let's Encrypt's 45-day certificates: at half their life, not the day they arrive
    assert not tlscert.renewal_due(info(45, 44), 30)
    assert not tlscert.renewal_due(info(45, 23), 30)
    assert tlscert.renewal_due(info(45, 22), 30)
    # a test CA's minutes: a fresh one is never already due (no order after order)
    assert not tlscert.renewal_due(info(60 / 86400, 59 / 86400), 30)
    assert tlscert.renewal_due(info(60 / 86400, 29 / 86400), 30)
    assert tlscert.renewal_due(info(90, -1), 0)           # expired


# -- a hub serving HTTPS ------------------------------------------------------------------------
@dataclass
class HttpsHub:
    http_url: str
    https_port: int
    tls_dir: Path
    listener: HttpsListener
    lines: list[str]
    store: Store

    def https(self, path: str) -> str:
        return f"https://127.0.0.1:{self.https_port}{path}"


@contextlib.asynccontextmanager
async def https_hub(store: Store, data_dir: Path, *, offer: bool = True,
                    poll_s: float = 0.1) -> AsyncIterator[HttpsHub]:
    https_port = free_port()
    tls_dir = data_dir / "tls"
    config = make_config(data_dir, tls__name=HUB_NAME, tls__listen=f"127.0.0.1:{https_port}",
                         tls__dir=str(tls_dir), tls__offer_https=offer)
    settings = TlsSettings.from_config(config)
    assert settings is not None
    lines: list[str] = []
    listener = HttpsListener(settings, poll_s=poll_s, announce=lines.append)
    runner = make_runner(create_app(config, store, https=listener))
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await listener.start(runner)
    try:
        yield HttpsHub(f"http://127.0.0.1:{port}", https_port, tls_dir, listener, lines, store)
    finally:
        await listener.stop()
        await runner.cleanup()


@pytest.fixture
async def store(demo_template: dict[str, Path], tmp_path: Path) -> AsyncIterator[Store]:
    s = Store(copy_db(demo_template["hub"], tmp_path / "hub"))
    yield s
    s.close()


async def served_fingerprint(ca: TestCA, port: int) -> str:
    """A new handshake, trusting only the test CA, verifying the hub's name."""
    _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ca.client_context(),
                                              server_hostname=HUB_NAME)
    try:
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
    return hashlib.sha256(der).hexdigest()


async def wait_for(cond: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.05)


async def test_dhis2_login_over_https(ca: TestCA, store: Store, tmp_path: Path) -> None:
    cert, key = ca.pair()
    tlscert.install(tmp_path / "hub" / "tls", cert, key, HUB_NAME)
    async with https_hub(store, tmp_path / "hub") as hub, aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=ca.client_context())) as http:
        assert hub.lines == [f"hub ready: https://127.0.0.1:{hub.https_port}/api/system/info "
                             f"(tablets: https://{HUB_NAME}:{hub.https_port}, certificate "
                             f"valid until {tlscert.cert_info(cert).not_after:%Y-%m-%d})"]
        async with http.get(hub.https("/api/me"), headers=ADMIN,
                            server_hostname=HUB_NAME) as r:
            assert r.status == 200
            assert (await r.json())["username"] == "admin"
        async with http.get(hub.https("/api/me"), server_hostname=HUB_NAME) as r:
            assert r.status == 401
        # plain HTTP still serves the same app
        async with http.get(hub.http_url + "/api/me", headers=ADMIN) as r:
            assert r.status == 200
        # TLS 1.1 is refused; a client that does not trust the CA fails the handshake
        old = ca.client_context()
        old.set_ciphers("DEFAULT:@SECLEVEL=0")
        old.minimum_version = old.maximum_version = ssl.TLSVersion.TLSv1_1
        with pytest.raises((ssl.SSLError, ConnectionError, ValueError)):  # the server hangs up
            await asyncio.open_connection("127.0.0.1", hub.https_port, ssl=old,
                                          server_hostname=HUB_NAME)
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            async with http.get(hub.https("/api/system/ping"), ssl=ssl.create_default_context(),
                                server_hostname=HUB_NAME):
                pass
        assert await served_fingerprint(ca, hub.https_port) == fingerprint_of(cert)


async def test_hot_swap_with_requests_in_flight(ca: TestCA, store: Store,
                                                tmp_path: Path) -> None:
    old_cert, old_key = ca.pair()
    tlscert.install(tmp_path / "hub" / "tls", old_cert, old_key, HUB_NAME)
    new_cert, new_key = ca.pair()
    async with https_hub(store, tmp_path / "hub") as hub:
        stop = asyncio.Event()
        ok: list[int] = []
        failures: list[str] = []
        seen_after: set[str] = set()
        swapped = asyncio.Event()

        async def fresh_request() -> str:
            """One request on a new TLS connection; the served certificate's fingerprint."""
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", hub.https_port, ssl=ca.client_context(), server_hostname=HUB_NAME)
            try:
                der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
                writer.write(f"GET /api/system/info HTTP/1.1\r\nHost: {HUB_NAME}\r\n"
                             f"Authorization: {ADMIN['Authorization']}\r\n"
                             "Connection: close\r\n\r\n".encode())
                raw = await reader.read()
            finally:
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()
            head, _, body = raw.partition(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200") or b'"version"' not in body:
                raise AssertionError(head[:60])
            return hashlib.sha256(der).hexdigest()

        async def client(fresh: bool) -> None:
            # fresh: a new TLS handshake per request; else one kept-alive connection
            conn = aiohttp.TCPConnector(ssl=ca.client_context(), limit=1)
            async with aiohttp.ClientSession(connector=conn) as http:
                while not stop.is_set():
                    after = swapped.is_set()
                    try:
                        if fresh:
                            fp = await fresh_request()
                            if after:  # a handshake begun after the swap
                                seen_after.add(fp)
                            ok.append(1)
                            continue
                        async with http.get(hub.https("/api/system/info"), headers=ADMIN,
                                            server_hostname=HUB_NAME) as r:
                            body = await r.json()
                            if r.status != 200 or "version" not in body:
                                failures.append(f"HTTP {r.status}")
                            ok.append(1)
                    except Exception as e:  # noqa: BLE001 - every failure is counted
                        failures.append(f"{type(e).__name__}: {e}")

        tasks = [asyncio.create_task(client(fresh=i % 2 == 0)) for i in range(20)]
        await wait_for(lambda: len(ok) >= 100, 30)
        before = len(ok)
        tlscert.install(hub.tls_dir, new_cert, new_key, HUB_NAME)
        await wait_for(lambda: hub.listener.swaps == 2)
        swapped.set()
        await wait_for(lambda: len(ok) >= before + 200, 30)
        stop.set()
        await asyncio.gather(*tasks)
        assert failures == []
        assert len(ok) >= 300
        assert await served_fingerprint(ca, hub.https_port) == fingerprint_of(new_cert)
        assert seen_after == {fingerprint_of(new_cert)}


async def test_an_invalid_pair_put_in_place_is_refused_and_the_old_served(
        ca: TestCA, store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    good, good_key = ca.pair()
    tls_dir = tmp_path / "hub" / "tls"
    tlscert.install(tls_dir, good, good_key, HUB_NAME)
    now = datetime.now(UTC)
    other_cert, _ = ca.pair()
    async with https_hub(store, tmp_path / "hub") as hub:
        for n, (cert, key, words) in enumerate([
                (other_cert, good_key, "does not match this hub's private key"),
                (ca.issue(good_key, "x.hub.example.test"), good_key, "not this hub's name"),
                (ca.issue(good_key, not_before=now - timedelta(days=9),
                          not_after=now - timedelta(days=1)), good_key, "expired on"),
                (b"garbage", good_key, "not a PEM certificate")], start=50):
            # copied in by hand, past tlscert.install's checks
            gen = tls_dir / f"gen-{n}"
            gen.mkdir()
            (gen / "cert.pem").write_bytes(cert)
            (gen / "key.pem").write_bytes(key)
            os.symlink(gen.name, tls_dir / "tmp-link")
            os.replace(tls_dir / "tmp-link", tls_dir / "live")
            caplog.clear()
            await wait_for(lambda w=words: (hub.listener.refused or "").find(w) >= 0)
            assert await served_fingerprint(ca, hub.https_port) == fingerprint_of(good)
            refusals = [r for r in caplog.records if "refused the certificate" in r.message]
            assert len(refusals) == 1 and "still serving" in refusals[0].message
            assert "PRIVATE KEY" not in refusals[0].message
        await asyncio.sleep(0.5)  # refused once, not at every poll
        assert len([r for r in caplog.records if "refused the certificate" in r.message]) <= 1
        assert hub.listener.swaps == 1
        # a good pair installed afterwards is taken
        new_cert, new_key = ca.pair()
        shutil.rmtree(tls_dir / "gen-53")
        tlscert.install(tls_dir, new_cert, new_key, HUB_NAME)
        await wait_for(lambda: hub.listener.swaps == 2)
        assert await served_fingerprint(ca, hub.https_port) == fingerprint_of(new_cert)


async def test_https_starts_when_the_first_certificate_appears(
        ca: TestCA, store: Store, tmp_path: Path) -> None:
    async with https_hub(store, tmp_path / "hub") as hub, aiohttp.ClientSession() as http:
        with pytest.raises(OSError):
            await asyncio.open_connection("127.0.0.1", hub.https_port)
        async with http.get(hub.http_url + "/api/hub/status") as r:
            tls = (await r.json())["tls"]
        assert tls["state"] == "none" and tls["not_after"] is None
        assert tls["url"] == f"https://{HUB_NAME}:{hub.https_port}"
        async with http.get(hub.http_url + "/hub") as r:
            html = await r.text()
            assert 'name="hub-https"' not in html and "https.js" not in html  # nothing yet
        assert hub.lines == []
        cert, key = ca.pair()
        tlscert.install(hub.tls_dir, cert, key, HUB_NAME)
        await wait_for(lambda: hub.lines)
        assert hub.lines[0].startswith(f"hub ready: https://127.0.0.1:{hub.https_port}/")
        assert await served_fingerprint(ca, hub.https_port) == fingerprint_of(cert)


async def test_status_api_and_pages_show_the_certificate(ca: TestCA, store: Store,
                                                         tmp_path: Path) -> None:
    cert, key = ca.pair()
    tlscert.install(tmp_path / "hub" / "tls", cert, key, HUB_NAME)
    info = tlscert.cert_info(cert)
    async with https_hub(store, tmp_path / "hub") as hub, aiohttp.ClientSession() as http:
        async with http.get(hub.http_url + "/api/hub/status") as r:
            tls = (await r.json())["tls"]
        assert tls == {"name": HUB_NAME, "url": f"https://{HUB_NAME}:{hub.https_port}",
                       "state": "ok", "not_after": info.not_after.strftime("%Y-%m-%dT%H:%M:%SZ"),
                       "days_left": pytest.approx(90, abs=0.1), "issuer": ca.cn,
                       "fingerprint": info.fingerprint, "last_error": None}
        async with http.get(hub.http_url + "/hub/status") as r:
            page = await r.text()
        assert 'id="https"' in page and info.fingerprint in page
        assert f"https://{HUB_NAME}:{hub.https_port}" in page
        # laptops on http:// are offered the HTTPS address; the CSP lets the probe through
        host = f"{HUB_NAME}:{hub.https_port}"
        for path in ("/hub", "/hub/people", "/hub/status"):
            async with http.get(hub.http_url + path) as r:
                html = await r.text()
                csp = r.headers["Content-Security-Policy"]
            assert f'<meta name="hub-https" content="{host}">' in html
            assert '<script src="/hub/static/https.js?v=' in html
            assert f"connect-src 'self' https://{host};" in csp
            assert "<script>" not in html
            if path != "/hub/status":  # the shells' bodies still name nothing elsewhere
                assert "http" not in html.split("<body")[1]
    # offer_https = false: no offer
    async with https_hub(store, tmp_path / "hub", offer=False) as hub, \
            aiohttp.ClientSession() as http, http.get(hub.http_url + "/hub") as r:
        assert 'name="hub-https"' not in await r.text()
        assert "connect-src 'self';" in r.headers["Content-Security-Policy"]


def test_the_page_script_probes_before_offering() -> None:
    js = (Path(__file__).parents[2] / "appliance/hub/static/https.js").read_text()
    probe = js[js.index("async function offerHttps"):]
    probe = probe[:probe.index("\n}\n")]
    assert "location.protocol !== 'http:'" in probe  # only offered to plain-HTTP pages
    assert "mode: 'no-cors'" in probe and "/api/system/ping" in probe and "abort()" in probe
    assert "location.href =" not in probe and "location.replace" not in probe  # never forced
    assert "t('Secure address available:')" in probe  # in the reader's language


@pytest.mark.slow
def test_hub_process_serves_https(ca: TestCA, demo_template: dict[str, Path],
                                  tmp_path: Path) -> None:
    data = tmp_path / "hub"
    copy_db(demo_template["hub"], data)  # not empty: --demo does not seed
    https_port = free_port()
    cert, key = ca.pair()
    tlscert.install(data / "tls", cert, key, HUB_NAME)
    conf = tmp_path / "hub.toml"
    conf.write_text(f'[hub]\nzeroconf = false\n[tls]\nname = "{HUB_NAME}"\n'
                    f'listen = "127.0.0.1:{https_port}"\n')
    hp = start_hub_process(data, extra=["--config", str(conf)])
    try:
        log = next(data.glob("hub-*.log"))
        deadline = time.monotonic() + 30
        while "ready: https://" not in log.read_text():
            assert time.monotonic() < deadline and hp.proc.poll() is None, log.read_text()
            time.sleep(0.1)
        assert f"hub ready: https://127.0.0.1:{https_port}/api/system/info" in log.read_text()

        async def login() -> dict[str, object]:
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(
                    ssl=ca.client_context())) as http, http.get(
                    f"https://127.0.0.1:{https_port}/api/me", headers=ADMIN,
                    server_hostname=HUB_NAME) as r:
                assert r.status == 200
                return await r.json()  # type: ignore[no-any-return]
        assert asyncio.run(login())["username"] == "admin"
    finally:
        hp.kill()


async def test_tls_connections_hold_one_record_of_read_buffer_and_big_forms_arrive(
        ca: TestCA, store: Store, tmp_path: Path) -> None:
    """asyncio gives each TLS connection a 256 KiB read buffer aiohttp never uses: 300
    tablets held 75 MB of it. The listener caps it at one TLS record, and a body many
    records long (a month of forms in one import) still arrives whole."""
    from asyncio import sslproto

    from appliance import demo
    from appliance.demo import values as dvals
    from appliance.hub import tls

    cert, key = ca.pair()
    tlscert.install(tmp_path / "hub" / "tls", cert, key, HUB_NAME)
    async with https_hub(store, tmp_path / "hub") as hub, aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=ca.client_context())) as http:
        assert sslproto.SSLProtocol.max_size == tls.TLS_READ_BUFFER == 16 * 1024
        values = [v for f in dvals.forms(demo.hub(), "202401") for v in f["dataValues"]][:3000]
        body = {"dataValues": values}
        async with http.post(hub.https("/api/dataValueSets"), json=body, headers=ADMIN,
                             server_hostname=HUB_NAME) as r:
            reply = await r.json()
        assert r.status == 200, reply
        count = reply["response"]["importCount"]
        assert count["imported"] + count["updated"] + count["ignored"] == len(values) == 3000
        assert count["ignored"] == 0
