"""LAN auth: Basic, ApiToken, session cookies (API and legacy form), lockout, audit."""

from __future__ import annotations

import base64

import aiohttp

from appliance import demo
from tests.conftest import ADMIN, CHCP, RunningHub, basic


async def test_basic_and_wrong_password(hub: RunningHub, http: aiohttp.ClientSession) -> None:
    async with http.get(hub.api("me"), headers=ADMIN) as r:
        assert r.status == 200
        me = await r.json()
        assert me["username"] == "admin"
    async with http.get(hub.api("me"), headers=basic("admin", "wrong")) as r:
        assert r.status == 401
        body = await r.json()
        assert body["httpStatusCode"] == 401 and body["status"] == "ERROR"


async def test_no_credentials_is_a_json_webmessage(hub: RunningHub,
                                                   http: aiohttp.ClientSession) -> None:
    # The Android SDK reports "not a DHIS2 server" unless a 401 on /api/me is JSON
    async with http.get(hub.api("me")) as r:
        assert r.status == 401
        assert r.content_type == "application/json"
        assert (await r.json())["httpStatus"] == "Unauthorized"


async def test_ping_and_login_config_are_public(hub: RunningHub,
                                                http: aiohttp.ClientSession) -> None:
    async with http.get(hub.api("ping")) as r:
        assert r.status == 200 and await r.text() == "pong"
    async with http.get(hub.api("loginConfig")) as r:
        assert r.status == 200 and "apiVersion" in await r.json()


async def test_api_token(hub: RunningHub, http: aiohttp.ClientSession) -> None:
    token = demo.DEMO_TOKENS["hub-ramu"]
    async with http.get(hub.api("me"), headers={"Authorization": f"ApiToken {token}"}) as r:
        assert r.status == 200
        assert (await r.json())["username"] == "hub-ramu"
    async with http.get(hub.api("me"), headers={"Authorization": "apitoken d2pat_bogus"}) as r:
        assert r.status == 401


async def test_session_cookie_via_api_login(hub: RunningHub) -> None:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        async with s.post(hub.api("auth/login"),
                          json={"username": "chcp", "password": "district"}) as r:
            assert r.status == 200
            assert (await r.json())["loginStatus"] == "SUCCESS"
        async with s.get(hub.api("me")) as r:  # cookie only, no Authorization
            assert r.status == 200
            assert (await r.json())["username"] == "chcp"
        async with s.post(hub.api("auth/logout")) as r:
            assert r.status == 200
        async with s.get(hub.api("me")) as r:
            assert r.status == 401


async def test_legacy_login_form(hub: RunningHub) -> None:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        async with s.post(f"{hub.url}/dhis-web-commons-security/login.action",
                          data={"j_username": "admin", "j_password": "district"},
                          allow_redirects=False) as r:
            assert r.status == 302
        async with s.get(hub.api("me")) as r:
            assert r.status == 200


async def test_lockout_after_repeated_failures(hub: RunningHub,
                                               http: aiohttp.ClientSession) -> None:
    for _ in range(5):
        async with http.get(hub.api("me"), headers=basic("chcp", "nope")) as r:
            assert r.status == 401
    # now even the right password is refused until the lock expires
    async with http.get(hub.api("me"), headers=basic("chcp", "district")) as r:
        assert r.status == 401
        assert "locked" in (await r.json())["message"]
    rows = hub.store.read_sync(lambda c: c.execute(
        "SELECT success, reason FROM login_audit WHERE username='chcp' ORDER BY id").fetchall())
    assert [r[0] for r in rows] == [0] * 6 and rows[-1][1] == "locked"


async def test_malformed_basic_header(hub: RunningHub, http: aiohttp.ClientSession) -> None:
    for header in ("Basic !!!", "Basic " + base64.b64encode(b"nocolon").decode(), "Bearer x"):
        async with http.get(hub.api("me"), headers={"Authorization": header}) as r:
            assert r.status == 401
            assert (await r.json())["status"] == "ERROR"


async def test_hub_status_and_health_endpoints(hub: RunningHub,
                                               http: aiohttp.ClientSession) -> None:
    async with http.get(f"{hub.url}/api/hub/status") as r:
        status = await r.json()
    assert r.status == 200
    assert status["hub"]["role"] == "hub" and status["sync"]["pending"] == 0
    async with http.get(f"{hub.url}/api/hub/health", headers=ADMIN) as r:
        health = await r.json()
    assert r.status == 200
    assert health["sample"] is None and health["sample_age_s"] is None  # no agent running


async def test_basic_login_sets_a_session_cookie_like_dhis2(hub: RunningHub) -> None:
    # the Android SDK logs in with Basic and, if the server sets a cookie, sends only that
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        async with s.get(hub.api("me"), headers=CHCP) as r:
            assert r.status == 200
            assert "JSESSIONID" in r.cookies
        async with s.get(hub.api("me")) as r:
            assert r.status == 200 and (await r.json())["username"] == "chcp"


async def test_no_browser_password_popup_for_web_apps(hub: RunningHub,
                                                      http: aiohttp.ClientSession) -> None:
    async with http.get(hub.api("me")) as r:
        assert r.status == 401 and "WWW-Authenticate" in r.headers
    async with http.get(hub.api("me"), headers={"X-Requested-With": "XMLHttpRequest"}) as r:
        assert r.status == 401 and "WWW-Authenticate" not in r.headers


async def test_national_gzips_metadata_but_the_lan_hub_does_not(
        national: RunningHub, hub: RunningHub, http: aiohttp.ClientSession) -> None:
    from tests.conftest import basic
    gz = {"Accept-Encoding": "gzip"}
    async with http.get(national.api("organisationUnits"), params={"paging": "false"},
                        headers={**basic("dghs", "district"), **gz}) as r:
        assert r.status == 200 and r.headers.get("Content-Encoding") == "gzip"
        assert len((await r.json())["organisationUnits"]) > 100
    async with http.get(hub.api("organisationUnits"), params={"paging": "false"},
                        headers={**ADMIN, **gz}) as r:
        assert r.status == 200 and "Content-Encoding" not in r.headers
