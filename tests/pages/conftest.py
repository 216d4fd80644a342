"""Fixtures for the hub's pages: a real hub on a loopback port served from a background
thread (Selenium calls block, so the hub cannot share the test's event loop), and headless
Chromium driven through /usr/bin/chromedriver.

Needs the Debian packages ``chromium`` and ``chromium-driver`` (scripts/system-deps.d;
``make test`` installs them). Without them the browser tests fail, on purpose.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from appliance.store import Store
from tests.conftest import REPO, copy_db, running_hub

ARTIFACTS = REPO / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run")
WINDOW = (1366, 768)  # the cheap laptop the CHCPs bring


class ThreadedHub:
    """A demo hub (Ramu) over a copy of the seeded demo database, on its own event loop."""

    def __init__(self, template: Path, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.store = Store(copy_db(template, data_dir))
        self.url = ""
        self.app: web.Application | None = None
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="pages-hub", daemon=True)
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("hub did not start within 30 s")
        if self._error is not None:
            raise RuntimeError("hub failed to start") from self._error

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._serve())
        except BaseException as e:  # noqa: BLE001 - reported to the test thread
            self._error = e
            self._ready.set()
        finally:
            self._loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        async with running_hub(self.store, self.data_dir) as h:
            self.url, self.app = h.url, h.app
            self._ready.set()
            await self._stop.wait()

    def close(self) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=30)
        self.store.close()


@pytest.fixture(scope="module")
def live_hub(demo_template: dict[str, Path],
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedHub]:
    hub = ThreadedHub(demo_template["hub"], tmp_path_factory.mktemp("pages-hub"))
    try:
        yield hub
    finally:
        hub.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not (os.path.exists(p) or shutil.which(p))]
    if missing:
        pytest.fail(f"{', '.join(missing)} not found: the hub's pages are tested in a real "
                    "browser. Install the Debian packages chromium and chromium-driver "
                    "(`make system-deps`, from scripts/system-deps.d/*.txt)", pytrace=False)
    profile = tempfile.mkdtemp(prefix="hub-pages-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in FLAGS:
        opts.add_argument(flag)
    opts.add_argument(f"--user-data-dir={profile}")
    opts.add_argument(f"--window-size={WINDOW[0]},{WINDOW[1]}")
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
