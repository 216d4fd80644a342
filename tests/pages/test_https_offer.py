"""A laptop on ``http://hub.local`` is offered the hub's HTTPS address in a real browser,
only once that address answers with a certificate the laptop trusts, and never forced.

Headless Chromium resolves the hub's public name to loopback (``--host-resolver-rules``,
as the hub's dnsmasq would on the LAN) and trusts the test CA's hub key
(``--ignore-certificate-errors-spki-list``, as a laptop trusts the public CA). A second
Chromium that does not trust it plays the laptop whose clock or CA store fails TLS.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from appliance import tlscert
from appliance.store import Store
from tests.conftest import copy_db
from tests.hub.test_tls import HttpsHub, https_hub
from tests.pages.conftest import CHROMEDRIVER, CHROMIUM, FLAGS
from tests.tlsca import HUB_NAME, TestCA

pytestmark = pytest.mark.slow


class ThreadedHttpsHub:
    """``https_hub`` on an event loop of its own (Selenium's calls block)."""

    def __init__(self, store: Store, data_dir: Path) -> None:
        self.hub: HttpsHub | None = None
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._loop.run_until_complete,
                                        args=(self._serve(store, data_dir),), daemon=True)
        self._thread.start()
        assert self._ready.wait(30), "the hub did not start"

    async def _serve(self, store: Store, data_dir: Path) -> None:
        self._stop = asyncio.Event()
        async with https_hub(store, data_dir) as hub:
            self.hub = hub
            self._ready.set()
            await self._stop.wait()

    def close(self) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=30)


def _chromium(*extra: str) -> webdriver.Chrome:
    profile = tempfile.mkdtemp(prefix="hub-https-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={profile}", *extra):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(30)
    driver.profile_dir = profile  # type: ignore[attr-defined]
    return driver


def _quit(driver: webdriver.Chrome) -> None:
    driver.quit()
    shutil.rmtree(driver.profile_dir, ignore_errors=True)  # type: ignore[attr-defined]


@pytest.fixture
def hub(demo_template: dict[str, Path], tmp_path: Path) -> Iterator[HttpsHub]:
    cert, key = TestCA().pair()
    tlscert.install(tmp_path / "hub" / "tls", cert, key, HUB_NAME)
    store = Store(copy_db(demo_template["hub"], tmp_path / "hub"))
    threaded = ThreadedHttpsHub(store, tmp_path / "hub")
    try:
        assert threaded.hub is not None
        yield threaded.hub
    finally:
        threaded.close()
        store.close()


def _spki(hub: HttpsHub) -> str:
    pair = tlscert.load(hub.tls_dir)
    assert pair is not None
    der = tlscert.public_key_der(pair.key_pem)
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


def test_the_https_address_is_offered_once_it_answers(hub: HttpsHub) -> None:
    resolve = f"--host-resolver-rules=MAP {HUB_NAME} 127.0.0.1"
    trusting = _chromium(resolve, f"--ignore-certificate-errors-spki-list={_spki(hub)}")
    try:
        trusting.get(hub.http_url + "/hub/status")
        offer = WebDriverWait(trusting, 10).until(
            lambda d: d.find_element(By.ID, "https-offer"))
        https = f"https://{HUB_NAME}:{hub.https_port}"
        assert offer.text.startswith(f"নিরাপদ ঠিকানা আছে: {https}")  # Bangla by default
        links = {a.get_attribute("href") for a in offer.find_elements(By.TAG_NAME, "a")}
        assert links == {f"{https}/hub/status"}  # the same page, on the HTTPS name
        assert trusting.current_url.startswith("http://127.0.0.1")  # offered, not forced
        # following it: the same page over HTTPS, with no offer of itself
        offer.find_element(By.TAG_NAME, "a").click()
        WebDriverWait(trusting, 10).until(lambda d: d.current_url.startswith(https))
        WebDriverWait(trusting, 10).until(lambda d: d.find_element(By.ID, "https"))
        assert not trusting.find_elements(By.ID, "https-offer")
    finally:
        _quit(trusting)

    # a laptop that does not trust the certificate (wrong clock, old CA store) keeps
    # plain HTTP and is offered nothing it could not open
    doubting = _chromium(resolve)
    try:
        doubting.get(hub.http_url + "/hub/status")
        with pytest.raises(TimeoutException):
            WebDriverWait(doubting, 5).until(lambda d: d.find_element(By.ID, "https-offer"))
        assert doubting.find_element(By.ID, "https")  # the page itself works
    finally:
        _quit(doubting)
