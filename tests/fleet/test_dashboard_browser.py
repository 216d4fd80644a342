"""The dashboard in real headless Chromium with the simulator's 500 hubs, reached by
logging in through the real login form.

Needs the Debian packages ``chromium`` and ``chromium-driver``
(scripts/system-deps.d/fleet.txt; ``make test`` installs them). Without them this test
fails, on purpose: a dashboard nobody has rendered is not tested.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from appliance.fleet.alerts import STATE_RANK
from appliance.fleet.db import FleetDB
from appliance.fleet.simulator import SimHub, make_hubs, register_hubs, run_simulation

from .conftest import VIEWER, ThreadedServer, add_user, make_config

REPO = Path(__file__).resolve().parents[2]
ARTIFACT = REPO / "artifacts" / "fleet-dashboard.png"
CHROMIUM = os.environ.get("CHROMIUM_BIN", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER_BIN", "/usr/bin/chromedriver")
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run")


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[tuple[ThreadedServer, list[SimHub], FleetDB]]:
    data = tmp_path_factory.mktemp("fleet-browser")
    cfg = make_config(data, language="en")  # the assertions read the English pages
    db = FleetDB(data / "fleet.db")
    hubs = make_hubs(500)
    register_hubs(db, hubs, history_h=2)
    add_user(db, VIEWER[0], "viewer", VIEWER[1])
    server = ThreadedServer(cfg, db)
    try:
        stats = asyncio.run(run_simulation(server.url, hubs, rounds=1))
        assert stats.accepted == stats.sent, stats.errors
        yield server, hubs, db
    finally:
        server.close()
        db.close()


@pytest.fixture(scope="module")
def browser_holder() -> Iterator[dict[str, Any]]:
    holder: dict[str, Any] = {}
    yield holder
    if "driver" in holder:
        holder["driver"].quit()
        shutil.rmtree(holder["profile"], ignore_errors=True)


@pytest.fixture
def browser(browser_holder: dict[str, Any]) -> webdriver.Chrome:
    """Headless Chromium, started once per module. Missing binaries make the *test* fail
    (not error, not skip), with what to install."""
    if "driver" in browser_holder:
        return browser_holder["driver"]  # type: ignore[no-any-return]
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        return None  # type: ignore[return-value]
    profile = tempfile.mkdtemp(prefix="fleet-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in FLAGS:
        opts.add_argument(flag)
    opts.add_argument(f"--user-data-dir={profile}")
    opts.add_argument("--window-size=1600,1000")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(30)
    browser_holder.update(driver=driver, profile=profile)
    return driver


def require(browser: webdriver.Chrome | None) -> webdriver.Chrome:
    if browser is None:
        missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.path.exists(p)]
        pytest.fail(f"{' and '.join(missing)} not found: install the Debian packages "
                    "chromium and chromium-driver (`make system-deps` reads "
                    "scripts/system-deps.d/fleet.txt), or point CHROMIUM_BIN and "
                    "CHROMEDRIVER_BIN at them", pytrace=False)
    return browser


def log_in(browser: webdriver.Chrome, server: ThreadedServer, path: str) -> None:
    """Open ``path``; when the dashboard asks for a login, use the real form, which must
    bring the browser back to ``path``."""
    browser.get(server.url + path)
    if "/login" not in browser.current_url:
        return  # the module's browser kept its session cookie
    assert browser.title == "Fleet: log in"
    browser.find_element(By.NAME, "username").send_keys(VIEWER[0])
    browser.find_element(By.NAME, "password").send_keys(VIEWER[1])
    browser.find_element(By.CSS_SELECTOR, "form.login button[type=submit]").click()
    WebDriverWait(browser, 10).until(lambda d: "/login" not in d.current_url)
    assert browser.current_url == server.url + path
    cookie = browser.get_cookie("fleet_session")
    assert cookie is not None and cookie["httpOnly"] and cookie["sameSite"] == "Strict"


def rows(driver: webdriver.Chrome) -> list[dict[str, Any]]:
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('#hubs tr.hub')).map(function(r){"
        "return {hub: r.dataset.hub, state: r.dataset.state, district: r.dataset.district,"
        " dot: r.querySelector('.dot').getAttribute('aria-label')};});")


def test_dashboard_in_chromium(fleet: tuple[ThreadedServer, list[SimHub], FleetDB],
                               browser: webdriver.Chrome) -> None:
    browser = require(browser)
    server, hubs, db = fleet
    log_in(browser, server, "/")
    browser.get(server.url + "/")
    assert browser.title == "Fleet: upazila hubs"
    load_ms = browser.execute_script(
        "var t = performance.getEntriesByType('navigation')[0];"
        "return t.domContentLoadedEventEnd - t.startTime;")
    assert load_ms < 1000, f"first page took {load_ms:.0f} ms"

    first = rows(browser)
    assert len(first) == 100  # one page of 500
    ranks = [STATE_RANK[r["state"]] for r in first]
    assert ranks == sorted(ranks), "red hubs must come first, then amber, then green"
    assert first[0]["state"] == "red" and first[0]["dot"] == "red"
    n_red = db.read_sync(lambda c: c.execute(
        "SELECT count(*) FROM hubs WHERE state='red'").fetchone()[0])
    assert 0 < n_red < 100
    assert [r["state"] for r in first[:n_red]] == ["red"] * n_red
    assert first[n_red]["state"] == "amber"
    counts = browser.find_element(By.CSS_SELECTOR, "p.counts").text
    assert "500 hubs" in counts and f"{n_red} red" in counts
    ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(ARTIFACT))

    # filter by a district: the select submits the form on change (JS)
    district = "Cox's Bazar"
    expected = sorted(h.hub_id for h in hubs if h.district == district)
    Select(browser.find_element(By.NAME, "district")).select_by_value(district)
    WebDriverWait(browser, 10).until(lambda d: "district=" in d.current_url)
    shown = rows(browser)
    assert sorted(r["hub"] for r in shown) == expected
    assert {r["district"] for r in shown} == {district}
    ranks = [STATE_RANK[r["state"]] for r in shown]
    assert ranks == sorted(ranks)

    # open a hub's page from the list: charts are inline SVG with data drawn
    link = browser.find_element(By.CSS_SELECTOR, "#hubs tr.hub td a")
    name, hub_id = link.text, link.get_attribute("title")
    link.click()
    WebDriverWait(browser, 10).until(lambda d: "/hubs/" in d.current_url)
    assert browser.find_element(By.CSS_SELECTOR, "main h1").text == name
    charts = browser.find_elements(By.CSS_SELECTOR, "figure svg.chart")
    assert [(c.get_attribute("aria-label") or "").split(" (")[0] for c in charts] == \
        ["Temperature", "Disk used", "Sync backlog", "Power cuts"]
    for c in charts:
        assert c.find_elements(By.CSS_SELECTOR, "polyline.series, circle.pt"), \
            c.get_attribute("aria-label")
        assert c.size["width"] > 200
    sim = next(h for h in hubs if h.hub_id == hub_id)
    alerts = browser.find_element(By.XPATH, "//h2[text()='Alerts']/following-sibling::*[1]")
    if sim.profile != "green":
        assert alerts.tag_name == "ul", f"{hub_id} ({sim.profile}) shows no alert"


def test_filters_work_without_js(fleet: tuple[ThreadedServer, list[SimHub], FleetDB],
                                 browser: webdriver.Chrome) -> None:
    """A plain GET form: the same filter by URL, and the Show button, no script needed."""
    browser = require(browser)
    server, hubs, _ = fleet
    log_in(browser, server, "/?division=Sylhet&state=")
    shown = rows(browser)
    assert shown and all(h.division == "Sylhet" for h in hubs
                         if h.hub_id in {r["hub"] for r in shown})
    # only Sylhet's districts are offered once the division is chosen
    options = [o.get_attribute("value") for o in
               browser.find_elements(By.CSS_SELECTOR, "select[name=district] option")]
    assert set(options) == {"", "Habiganj", "Moulvibazar", "Sunamganj", "Sylhet"}
    browser.execute_script("document.querySelectorAll('script').forEach(s => s.remove());"
                           "document.querySelector('select[name=state]').value='red';")
    browser.find_element(By.CSS_SELECTOR, "form.filters button").click()
    WebDriverWait(browser, 10).until(lambda d: "state=red" in d.current_url)
    assert {r["state"] for r in rows(browser)} == {"red"}


def test_reporting_rates_and_the_state_column_on_a_phone(
        fleet: tuple[ThreadedServer, list[SimHub], FleetDB], browser: webdriver.Chrome) -> None:
    """#14: reporting rates by place, worst first, beside health; on a phone the hubs
    table scrolls sideways and the state column stays on screen."""
    browser = require(browser)
    server, hubs, _ = fleet
    log_in(browser, server, "/reporting")
    assert browser.title == "Fleet: reporting rates"
    rates = browser.execute_script(
        "return Array.from(document.querySelectorAll('#rep-upazila tbody tr')).map(function(r){"
        "var c = r.querySelector('td.rate'); return c.textContent;});")
    assert len(rates) == len(hubs)
    nums = [float(x.rstrip(" %")) for x in rates if x.strip() not in ("–", "")]
    assert nums and nums == sorted(nums), "the worst upazila comes first"
    assert len(browser.find_elements(By.CSS_SELECTOR, "#rep-division tbody tr")) == 8
    try:
        browser.set_window_size(412, 915)
        browser.get(server.url + "/")
        browser.execute_script("document.querySelector('.wrap').scrollLeft = 10000;")
        box = browser.execute_script(
            "var c = document.querySelector('#hubs tr.hub td:nth-child(3)').getBoundingClientRect();"
            "return [c.left, c.right, innerWidth, document.querySelector('.wrap').scrollLeft];")
        left, right, width, scrolled = box
        assert scrolled > 0, "the table scrolls sideways on a phone"
        assert left >= 0 and right <= width, box
        assert browser.save_screenshot(str(ARTIFACT.parent / "fleet-dashboard-412x915.png"))
    finally:
        browser.set_window_size(1600, 1000)
