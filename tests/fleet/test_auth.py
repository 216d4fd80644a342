"""Fleet logins over real HTTP: every route refuses strangers, roles, throttling per
(user, address), equal-time refusals, CSRF, the /metrics token, the admin API and its
audit, the add-user CLI, and heartbeats with numbers beyond 64 bits."""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import re
import statistics
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import orjson
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from appliance.config import Config
from appliance.fleet import auth
from appliance.fleet.db import SCHEMA, FleetDB
from appliance.fleet.web import FLEET, ROUTES, create_app, start
from appliance.store import Store

from .conftest import (
    ADMIN,
    VIEWER,
    FleetServer,
    add_user,
    client_session,
    heartbeat,
    login,
    make_config,
    sample,
    signed,
)
from .test_command import fleet_cli
from .test_ingest import assert_web_message

EVIL = "http://evil.example"


@asynccontextmanager
async def serving(config: Config) -> AsyncIterator[tuple[str, FleetDB, web.Application]]:
    db = FleetDB(config.data_dir / "fleet.db")
    app = create_app(config, db)
    runner, url = await start(app)
    try:
        yield url, db, app
    finally:
        await runner.cleanup()
        db.close()


async def viewer(server: FleetServer, **kw: Any) -> aiohttp.ClientSession:
    add_user(server.db, VIEWER[0], "viewer", VIEWER[1])
    s = client_session(**kw)
    assert (await login(s, server.url, *VIEWER)).status == 303
    return s


def rows(db: FleetDB, sql: str) -> list[tuple[Any, ...]]:
    return db.read_sync(lambda c: [tuple(r) for r in c.execute(sql)])


def error_text(html: str) -> str:
    m = re.search(r'<p class="error" role="alert">(.*?)</p>', html)
    assert m, html[:500]
    return m.group(1)


# ----------------------------------------------------------------- nobody gets in unasked
OPEN = {"/login", "/api/heartbeats"}


async def test_every_route_refuses_anonymous_access(server: FleetServer) -> None:
    """Walks the router, so a route added later is covered without touching this test."""
    server.enroll("ramu")
    tried = 0
    async with client_session() as anon:
        for route in server.app.router.routes():
            resource = route.resource
            if resource is None or isinstance(resource, web.StaticResource):
                continue
            path = re.sub(r"\{[^}]+\}", "ramu", resource.canonical)
            if path in OPEN:
                continue
            tried += 1
            async with anon.request(route.method, server.url + path, json={},
                                    allow_redirects=False) as r:
                body = await r.read()
                where = f"{route.method} {path}"
                if path.startswith("/api/") or path == "/metrics":
                    assert r.status == 401, where
                    if route.method != "HEAD":
                        assert_web_message(orjson.loads(body), 401)
                else:  # pages send the browser to the login form, and back afterwards
                    assert r.status == 303, where
                    location = r.headers["Location"]
                    assert location.startswith("/login"), where
                    if route.method == "GET":
                        target = urlsplit(location)
                        assert target.path == "/login", where
                        assert parse_qs(target.query) == {"next": [path]}, where
    assert tried >= 19  # GET and HEAD of every page and API, the admin writes, /logout
    # paths nobody declared are closed as well
    async with client_session() as anon:
        async with anon.get(server.url + "/api/nothing-here") as r:
            assert r.status == 401
        async with anon.get(server.url + "/nothing-here", allow_redirects=False) as r:
            assert r.status == 303


def test_routes_table_names_every_access_level() -> None:
    assert {access for *_, access in ROUTES} == {"hub", "public", "viewer", "admin", "metrics"}
    assert {(m, p) for m, p, _h, a in ROUTES if a in ("public", "hub")} == \
        {("GET", "/login"), ("POST", "/login"), ("POST", "/api/heartbeats"),
         ("POST", "/api/certificates"), ("POST", "/api/updates/check"),
         ("GET", "/api/updates/bundles/{sha256}")}
    assert {(m, p) for m, p, _h, a in ROUTES if a == "admin"} == \
        {("POST", "/api/hubs"), ("PUT", "/api/alert-rules"), ("POST", "/api/rollouts"),
         ("POST", "/api/rollouts/{rollout_id}/cancel")}


async def test_login_form_and_redirect_back(server: FleetServer) -> None:
    server.enroll("ramu")
    async with client_session() as s:
        async with s.get(server.url + "/hubs/ramu?hours=6") as r:  # follows to the form
            html = await r.text()
            assert r.status == 200 and r.url.path == "/login"
        assert '<form class="login" method="post" action="/login">' in html
        assert 'name="next" value="/hubs/ramu?hours=6"' in html
        assert 'type="password"' in html and "<style>" in html
        r = await login(s, server.url, *ADMIN, next_url="/hubs/ramu?hours=6")
        assert r.status == 303 and r.headers["Location"] == "/hubs/ramu?hours=6"
        async with s.get(server.url + "/hubs/ramu?hours=6") as r:
            page = await r.text()
            assert r.status == 200
        assert "national (admin)" in page and 'action="/logout"' in page


@pytest.mark.parametrize("raw,expect", [
    ("/hubs/ramu?hours=6", "/hubs/ramu?hours=6"), ("/alerts", "/alerts"), (None, "/"),
    ("//evil.example/x", "/"), ("/\\evil.example", "/"), ("https://evil.example/", "/"),
    ("http:/evil", "/"), ("javascript:alert(1)", "/"), ("hubs", "/"), ("/login", "/"),
    ("/logout", "/"), ("/x\r\nSet-Cookie: a=b", "/"), ("/\tevil", "/"), ("/" + "a" * 3000, "/"),
])
def test_next_is_a_path_on_this_site(raw: str | None, expect: str) -> None:
    assert auth.safe_next(raw) == expect


async def test_login_never_redirects_off_site(server: FleetServer) -> None:
    for nxt in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        async with client_session() as s:
            r = await login(s, server.url, *ADMIN, next_url=nxt)
            assert (r.status, r.headers["Location"]) == (303, "/"), nxt


# -------------------------------------------------------------------------------- roles
async def test_viewer_reads_but_cannot_change(server: FleetServer) -> None:
    server.enroll("ramu")
    before = server.snapshot()
    async with await viewer(server) as s:
        for path in ("/", "/hubs/ramu", "/alerts", "/api/hubs", "/api/hubs/ramu",
                     "/api/alerts", "/api/alert-rules", "/metrics"):
            async with s.get(server.url + path) as r:
                assert r.status == 200, path
        async with s.post(server.url + "/api/hubs", json={"hub_id": "cox"}) as r:
            assert r.status == 403
            reply = await r.json()
        assert_web_message(reply, 403)
        assert "viewer" in reply["message"]
        async with s.put(server.url + "/api/alert-rules", json={"temp_c": 50}) as r:
            assert r.status == 403
    assert server.snapshot() == before
    assert rows(server.db, "SELECT * FROM alert_rules") == []
    assert rows(server.db, "SELECT * FROM admin_audit") == []
    assert server.fleet.thresholds.temp_c == 80.0


async def test_admin_enrols_a_hub_once_and_it_is_audited(server: FleetServer) -> None:
    new = {"hub_id": "ukhia", "name": "Ukhia UHC hub", "district": "Cox's Bazar",
           "division": "Chattogram", "upazila": "Ukhia", "org_unit": "abcdefghijk"}
    async with server.session.post(server.url + "/api/hubs", json=new) as r:
        assert r.status == 201
        assert r.headers["Cache-Control"] == "no-store"
        reply = await r.json()
    assert_web_message(reply, 201)
    token = reply["response"]["token"]
    assert reply["response"]["hub_id"] == "ukhia" and len(token) >= 40
    # the token works for heartbeats at once
    status, body = await server.send(heartbeat("ukhia", seq=1), token=token)
    assert status == 200, body
    _, hub = await server.get_json("/api/hubs/ukhia")
    assert (hub["name"], hub["upazila"], hub["org_unit_id"]) == ("Ukhia UHC hub", "Ukhia",
                                                              "abcdefghijk")

    async with server.session.post(server.url + "/api/hubs", json={"hub_id": "ukhia"}) as r:
        assert r.status == 409
        reply = await r.json()
    assert_web_message(reply, 409)
    assert "already enrolled" in reply["message"] and "--rotate" in reply["message"]

    audit = rows(server.db, "SELECT username, action, detail, at FROM admin_audit")
    assert len(audit) == 1  # the refused duplicate changed nothing
    who, action, detail, at = audit[0]
    assert (who, action) == ("national", "enrol-hub")
    assert orjson.loads(detail) == new
    assert token not in detail and abs(at - time.time()) < 60


@pytest.mark.parametrize("body,status,text", [
    ({"hub_id": "../etc"}, 400, "hub_id must be"),
    ({"name": "no id"}, 400, "hub_id must be"),
    ({"hub_id": "x", "orgUnit": "abc"}, 400, "Unknown field(s) orgUnit"),
    ({"hub_id": "x", "name": 5}, 400, "name must be text"),
    ([1, 2], 400, "JSON object"),
])
async def test_enrol_validation(server: FleetServer, body: Any, status: int, text: str) -> None:
    async with server.session.post(server.url + "/api/hubs", json=body) as r:
        reply = await r.json()
        assert r.status == status, reply
    assert text in reply["message"]
    assert rows(server.db, "SELECT id FROM hubs") == []
    async with server.session.post(server.url + "/api/hubs", data=b'{"hub_id": "x"}',
                                   headers={"Content-Type": "text/plain"}) as r:
        assert r.status == 415


async def test_admin_changes_alert_rules(server: FleetServer, fleet_config: Config) -> None:
    server.enroll("ramu")
    assert (await server.send(heartbeat("ramu", seq=1)))[0] == 200  # 61.2 °C: green
    status, rules = await server.get_json("/api/alert-rules")
    assert status == 200 and rules["thresholds"]["temp_c"] == 80.0
    assert {r["name"] for r in rules["rules"]} == set(rules["thresholds"])

    async with server.session.put(server.url + "/api/alert-rules",
                                  json={"temp_c": 60, "sync_lag_h": 12.5}) as r:
        reply = await r.json()
        assert r.status == 200, reply
    assert "1 hub re-evaluated" in reply["message"]
    assert reply["response"]["thresholds"]["temp_c"] == 60.0
    assert server.fleet.thresholds.temp_c == 60.0 and server.fleet.thresholds.sync_lag_h == 12.5
    _, hub = await server.get_json("/api/hubs/ramu")
    assert hub["state"] == "red" and "temp" in hub["alerts"]  # re-evaluated at once
    temp = next(r for r in reply["response"]["rules"] if r["name"] == "temp_c")
    assert (temp["value"], temp["default"], temp["changed"]) == (60.0, 80.0, True)

    audit = rows(server.db, "SELECT username, action, detail FROM admin_audit")
    assert [(a[0], a[1]) for a in audit] == [("national", "alert-rules")]
    assert orjson.loads(audit[0][2]) == {"temp_c": [80.0, 60.0], "sync_lag_h": [48.0, 12.5]}

    # the rules outlive a restart: a second service on the same database uses them
    async with serving(fleet_config) as (_url, _db, app):
        assert app[FLEET].thresholds.temp_c == 60.0

    # null puts a rule back to the configured default
    async with server.session.put(server.url + "/api/alert-rules", json={"temp_c": None}) as r:
        assert r.status == 200
    _, hub = await server.get_json("/api/hubs/ramu")
    assert hub["state"] == "green"
    assert rows(server.db, "SELECT name, value FROM alert_rules") == [("sync_lag_h", 12.5)]
    assert len(rows(server.db, "SELECT * FROM admin_audit")) == 2


@pytest.mark.parametrize("body,text", [
    ({"temp_c": "hot"}, "temp_c must be a number"),
    ({"temp_c": True}, "temp_c must be a number"),
    ({"temp_c": 5000}, "between 30 and 120"),
    ({"silent_after_s": 0}, "between 60 and"),
    ({"disk_pct": -1}, "between 1 and 100"),
    ({"temp_c": 85, "nonsense": 1}, "no alert rule called 'nonsense'"),
    ({}, "JSON object of thresholds"),
    ([85], "JSON object of thresholds"),
    ({"temp_c": 2**64 - 1}, "64 bits"),
])
async def test_alert_rule_validation(server: FleetServer, body: Any, text: str) -> None:
    async with server.session.put(server.url + "/api/alert-rules", json=body) as r:
        reply = await r.json()
        assert r.status == 400, reply
    assert_web_message(reply, 400)
    assert text in reply["message"]
    assert server.fleet.thresholds.temp_c == 80.0
    assert rows(server.db, "SELECT * FROM alert_rules") == []
    async with server.session.put(server.url + "/api/alert-rules", data=b"{NaN}",
                                  headers={"Content-Type": "application/json"}) as r:
        assert r.status == 400


# ------------------------------------------------------------------------ logging in
async def test_wrong_password_and_unknown_user_look_the_same(server: FleetServer) -> None:
    add_user(server.db, VIEWER[0], "viewer", VIEWER[1])
    async with client_session() as s:
        r1 = await login(s, server.url, VIEWER[0], "not-the-password")
        async with s.post(server.url + "/login", allow_redirects=False,
                          data={"username": VIEWER[0], "password": "not-it"}) as r:
            known = await r.text()
        async with s.post(server.url + "/login", allow_redirects=False,
                          data={"username": "nobody", "password": "not-it"}) as r:
            unknown = await r.text()
            assert r.status == 401 and "Set-Cookie" not in r.headers
    assert r1.status == 401
    assert error_text(known) == error_text(unknown) == auth.BAD_LOGIN
    assert 'value="nobody"' in unknown  # the form is shown again, username kept
    audit = rows(server.db, "SELECT username, success, reason FROM login_audit ORDER BY id")
    assert audit[-3:] == [("dghs", 0, "wrong password"), ("dghs", 0, "wrong password"),
                          ("nobody", 0, "unknown user")]
    assert audit[0] == ("national", 1, "")  # the fixture's login


async def test_session_cookie_and_logout(server: FleetServer) -> None:
    add_user(server.db, VIEWER[0], "viewer", VIEWER[1])
    async with client_session() as s:
        async with s.post(server.url + "/login", allow_redirects=False,
                          data={"username": " DGHS ", "password": VIEWER[1]}) as r:
            assert r.status == 303  # usernames are case-insensitive
            cookie = r.headers["Set-Cookie"]
        attrs = {a.strip().split("=")[0].lower(): a for a in cookie.split(";")}
        assert "httponly" in attrs and "secure" not in attrs  # plain HTTP here
        assert attrs["samesite"].strip() == "SameSite=Strict"
        assert attrs["path"].strip() == "Path=/" and attrs["max-age"].strip() == "Max-Age=43200"
        sid = cookie.split(";")[0].split("=", 1)[1]
        assert len(sid) >= 43  # 256 bits
        stored = rows(server.db, "SELECT id_hash, username FROM sessions WHERE username='dghs'")
        assert stored == [(auth.session_hash(sid), "dghs")]  # only its hash

        # a foreign page cannot log the user out, this one can
        async with s.post(server.url + "/logout", headers={"Origin": EVIL},
                          allow_redirects=False) as r:
            assert r.status == 403
        async with s.post(server.url + "/logout", headers={"Origin": server.url},
                          allow_redirects=False) as r:
            assert (r.status, r.headers["Location"]) == (303, "/login")
        assert rows(server.db, "SELECT * FROM sessions WHERE username='dghs'") == []
        async with s.get(server.url + "/api/hubs") as r:
            assert r.status == 401
        # the old cookie, replayed, opens nothing
        async with client_session(cookies={auth.COOKIE: sid}) as replay, \
                replay.get(server.url + "/api/hubs") as r:
            assert r.status == 401


async def test_sessions_expire_after_12_hours(server: FleetServer) -> None:
    async with server.session.get(server.url + "/api/hubs") as r:
        assert r.status == 200
    server.clock.offset = 12 * 3600 + 1
    async with server.session.get(server.url + "/api/hubs") as r:
        assert r.status == 401
    async with server.session.get(server.url + "/", allow_redirects=False) as r:
        assert r.status == 303 and r.headers["Location"] == "/login?next=/"


async def test_new_password_or_role_applies_at_once(server: FleetServer) -> None:
    async with await viewer(server) as s:
        server.db.write_sync(lambda c: c.execute(  # promoted: the same session may write
            "UPDATE users SET role='admin' WHERE username=?", (VIEWER[0],)))
        async with s.put(server.url + "/api/alert-rules", json={"temp_c": 70}) as r:
            assert r.status == 200
        auth.set_user(server.db, VIEWER[0], "viewer", "a-new-password", by="test")
        async with s.get(server.url + "/api/hubs") as r:
            assert r.status == 401  # a new password logs the user out everywhere
        assert (await login(s, server.url, *VIEWER)).status == 401
        assert (await login(s, server.url, VIEWER[0], "a-new-password")).status == 303


async def test_throttle_is_per_user_and_address(server: FleetServer) -> None:
    """Five failures lock (dghs, 127.0.0.1) for a minute, then two, ...; the real user at
    127.0.0.2 and other users at 127.0.0.1 are not locked out."""
    add_user(server.db, VIEWER[0], "viewer", VIEWER[1])
    add_user(server.db, "clerk", "viewer", "clerk-password")
    here = client_session()
    there = client_session(connector=aiohttp.TCPConnector(local_addr=("127.0.0.2", 0)))
    async with here, there:
        for i in range(5):
            async with here.post(server.url + "/login", allow_redirects=False,
                                 data={"username": "dghs", "password": f"guess-{i}"}) as r:
                assert r.status == 401
                html = await r.text()
        assert "paused for 1 minute" in error_text(html)
        # locked: even the right password is refused here, without being checked
        r = await login(here, server.url, *VIEWER)
        assert r.status == 429
        async with here.post(server.url + "/login",
                             data={"username": "dghs", "password": VIEWER[1]}) as r:
            assert "Wait 1 minute" in error_text(await r.text())
        # ... but not from another address, and not for another user
        r = await login(there, server.url, *VIEWER)
        assert r.status == 303
        assert (await login(here, server.url, "clerk", "clerk-password")).status == 303

        server.clock.offset = 61  # the lock is over; the next failure locks for 2 minutes
        r = await login(here, server.url, "dghs", "guess-again")
        assert r.status == 401
        assert (await login(here, server.url, *VIEWER)).status == 429
        server.clock.offset = 61 + 121
        assert (await login(here, server.url, *VIEWER)).status == 303
        # a success forgets the failures of that pair
        assert rows(server.db, "SELECT * FROM login_throttle WHERE client='127.0.0.1'") == []
    clients = {c for (c,) in rows(server.db, "SELECT DISTINCT client FROM login_audit")}
    assert clients == {"127.0.0.1", "127.0.0.2"}  # X-Forwarded-For is never trusted
    reasons = [r for (r,) in rows(server.db, "SELECT reason FROM login_audit "
                                             "WHERE username='dghs' ORDER BY id")]
    assert reasons.count("locked") == 3 and reasons.count("wrong password") == 6


async def test_guesses_sent_at_once_are_throttled_too(server: FleetServer) -> None:
    add_user(server.db, VIEWER[0], "viewer", VIEWER[1])
    async with client_session() as s:
        replies = await asyncio.gather(*(login(s, server.url, "dghs", f"guess-{i}")
                                         for i in range(12)))
    assert sorted(r.status for r in replies) == [401] * 5 + [429] * 7
    checked = rows(server.db, "SELECT count(*) FROM login_audit WHERE reason='wrong password'")
    assert checked == [(5,)]


def test_lock_grows_to_fifteen_minutes() -> None:
    assert [auth.lock_seconds(n) for n in range(1, 11)] == \
        [0, 0, 0, 0, 60, 120, 240, 480, 900, 900]
    assert auth.lock_seconds(10_000) == 900


async def test_forwarded_for_is_ignored(server: FleetServer) -> None:
    add_user(server.db, VIEWER[0], "viewer", VIEWER[1])
    async with client_session() as s:
        for i in range(5):
            await login(s, server.url, "dghs", "wrong-password",
                        **{"X-Forwarded-For": f"10.0.0.{i}"})
        assert (await login(s, server.url, *VIEWER, **{"X-Forwarded-For": "10.9.9.9"})).status \
            == 429


async def test_unknown_and_known_users_are_refused_in_the_same_time(
        server: FleetServer) -> None:
    """scrypt for a known user, a dummy scrypt of the same cost for an unknown one."""
    add_user(server.db, "slow", "viewer", "the-right-password", n=2**14)  # full cost
    known: list[float] = []
    unknown: list[float] = []
    async with client_session() as s:
        async def attempt(name: str) -> float:
            t0 = time.perf_counter()
            assert (await login(s, server.url, name, "a-wrong-password")).status == 401
            return time.perf_counter() - t0
        await attempt("slow")  # warm-up: connections, caches
        await attempt("nobody-0")
        for i in range(4):  # 5 failures in all for (slow, here): every one fully checked
            known.append(await attempt("slow"))
            unknown.append(await attempt(f"nobody-{i + 1}"))
    ratio = statistics.median(unknown) / statistics.median(known)
    assert 0.5 < ratio < 2.0, (known, unknown)
    assert statistics.median(known) > 0.01  # scrypt really ran


async def test_passwords_and_verifiers_are_never_logged(
        server: FleetServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    add_user(server.db, VIEWER[0], "viewer", VIEWER[1])
    async with client_session() as s:
        await login(s, server.url, VIEWER[0], "Secret-Typo-123")
        await login(s, server.url, *VIEWER)
    verifier = rows(server.db, "SELECT verifier FROM users WHERE username='dghs'")[0][0]
    assert "refused" in caplog.text and "logged in" in caplog.text
    for secret in ("Secret-Typo-123", VIEWER[1], verifier, verifier.split("$")[-1]):
        assert secret not in caplog.text


# -------------------------------------------------------------------------------- CSRF
async def test_cross_site_writes_are_refused(server: FleetServer) -> None:
    before = server.snapshot()
    for headers in ({"Origin": EVIL}, {"Referer": EVIL + "/page"}, {"Origin": "null"}):
        async with server.session.put(server.url + "/api/alert-rules", json={"temp_c": 50},
                                      headers=headers) as r:
            reply = await r.json()
            assert r.status == 403, headers
        assert reply["errorCode"] == "CSRF"
        async with server.session.post(server.url + "/api/hubs", json={"hub_id": "cox"},
                                       headers=headers) as r:
            assert r.status == 403
    assert server.snapshot() == before and server.fleet.thresholds.temp_c == 80.0
    assert rows(server.db, "SELECT * FROM admin_audit") == []
    # the same request from the dashboard's own origin goes through
    async with server.session.put(server.url + "/api/alert-rules", json={"temp_c": 50},
                                  headers={"Origin": server.url}) as r:
        assert r.status == 200
    # reading is not a cross-site risk: a GET with a foreign Origin is fine
    async with server.session.get(server.url + "/api/hubs", headers={"Origin": EVIL}) as r:
        assert r.status == 200


async def test_login_csrf_is_refused(server: FleetServer) -> None:
    add_user(server.db, VIEWER[0], "viewer", VIEWER[1])
    async with client_session() as s:
        r = await login(s, server.url, *VIEWER, Origin=EVIL)
        assert r.status == 403 and "Set-Cookie" not in r.headers
        r = await login(s, server.url, *VIEWER, Origin=server.url)
        assert r.status == 303
    assert rows(server.db, "SELECT count(*) FROM sessions WHERE username='dghs'") == [(1,)]


# ------------------------------------------------------------------------------ /metrics
async def test_metrics_needs_the_bearer_token(tmp_path: Path) -> None:
    token = "prometheus-scrape-token-0123456789"
    async with serving(make_config(tmp_path, metrics_token=token)) as (url, _db, _app), \
            client_session() as s:
        async with s.get(url + "/metrics", headers={"Authorization": f"Bearer {token}"}) as r:
            assert r.status == 200
            text = await r.text()
        families = {f.name for f in text_string_to_metric_families(text)}
        assert "fleet_hubs" in families
        for headers in ({}, {"Authorization": "Bearer wrong"},
                        {"Authorization": f"Basic {token}"},
                        {"Authorization": f"Bearer {token}x"}):
            async with s.get(url + "/metrics", headers=headers) as r:
                assert r.status == 401, headers
                assert_web_message(await r.json(), 401)
                assert r.headers["WWW-Authenticate"].startswith("Bearer")
        # the token opens /metrics and nothing else
        async with s.get(url + "/api/hubs", headers={"Authorization": f"Bearer {token}"}) as r:
            assert r.status == 401


async def test_metrics_without_a_token_is_for_logged_in_users(server: FleetServer) -> None:
    assert server.fleet.metrics_token == ""
    async with client_session() as anon:
        for headers in ({}, {"Authorization": "Bearer "}, {"Authorization": "Bearer x"}):
            async with anon.get(server.url + "/metrics", headers=headers) as r:
                reply = await r.json()
                assert r.status == 401
            assert "metrics_token" in reply["message"]
    status, text, _ = await server.get_text("/metrics")  # the admin's browser session
    assert status == 200 and "fleet_hubs" in text


# ------------------------------------------------------------------------- heartbeats
@pytest.mark.parametrize("field,value", [
    ("samples.0.power_cuts", 2**70), ("samples.0.sync.pending", 2**70),
    ("samples.0.power_cuts", 2**63), ("samples.0.throttled", -(2**64)),
    ("samples.0.disk_free_mb", 2**64 - 1), ("seq", 2**64 - 1), ("summary.dropped", 2**63),
    ("samples.0.at", "9999-12-31T23:59:59-23:59"), ("sent_at", "0001-01-01T00:00:00+01:00"),
])
async def test_heartbeat_numbers_beyond_64_bits_are_400(server: FleetServer, field: str,
                                                        value: Any) -> None:
    server.enroll("ramu")
    hb = heartbeat("ramu", seq=3, summary={"dropped": 1})
    obj: Any = hb
    keys = field.split(".")
    for k in keys[:-1]:
        obj = obj[int(k)] if k.isdigit() else obj[k]
    obj[keys[-1]] = value
    before = server.snapshot()
    # the stdlib writes any integer (orjson stops at 64 bits), as a misbehaving hub might
    body, headers = signed(None, "ramu", server.tokens["ramu"],
                           raw=gzip.compress(json.dumps(hb).encode()))
    status, reply = await server.post(body, headers)
    assert status == 400, reply
    assert_web_message(reply, 400)
    assert "range" in reply["message"]
    assert server.snapshot() == before


async def test_client_errors_are_one_log_line(server: FleetServer,
                                              caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="appliance.fleet.web")
    server.enroll("ramu")
    hb = heartbeat("ramu", seq=1, samples=[sample(time.time(), power_cuts=2.0**70)])
    assert (await server.send(hb))[0] == 400
    assert (await server.get_json("/api/hubs?page=zero"))[0] == 400
    lines = [r for r in caplog.records if r.name == "appliance.fleet.web"
             and r.getMessage().startswith("fleet: 400")]
    assert len(lines) == 2
    assert all(r.exc_info is None and "\n" not in r.getMessage() for r in lines)
    assert "Traceback" not in caplog.text


# -------------------------------------------------------------------------------- CLI
async def test_add_user_cli_makes_a_user_who_can_log_in(tmp_path: Path) -> None:
    data = tmp_path / "data"
    pw_file = tmp_path / "pw"
    pw_file.write_text("cli-made-password\n")
    out = fleet_cli("--data-dir", str(data), "add-user", "--username", "Rahima",
                    "--role", "admin", "--password-file", str(pw_file))
    assert out.returncode == 0, out.stderr
    assert out.stdout == "created fleet user rahima (admin)\n"
    short = fleet_cli("--data-dir", str(data), "add-user", "--username", "x", "--role",
                      "viewer", stdin="short\n")
    assert short.returncode == 1 and "at least 8 characters" in short.stderr
    bad_role = fleet_cli("--data-dir", str(data), "add-user", "--username", "x", "--role",
                         "root", stdin="long-enough-pw\n")
    assert bad_role.returncode == 2
    for o in (out, short, bad_role):
        assert "cli-made-password" not in o.stdout + o.stderr

    async with serving(make_config(data)) as (url, db, _app), client_session() as s:
        assert (await login(s, url, "rahima", "cli-made-password")).status == 303
        async with s.put(url + "/api/alert-rules", json={"disk_pct": 95}) as r:
            assert r.status == 200  # an admin
        again = fleet_cli("--data-dir", str(data), "add-user", "--username", "rahima",
                          "--role", "viewer", stdin="another-password\n")
        assert again.returncode == 0, again.stderr
        assert again.stdout == ("updated fleet user rahima: role viewer, new password; "
                                "signed out of 1 session\n")
        async with s.get(url + "/api/hubs") as r:
            assert r.status == 401
        audit = rows(db, "SELECT username, action, detail FROM admin_audit ORDER BY id")
    assert [(a[0].split(":")[0], a[1]) for a in audit] == \
        [("cli", "add-user"), ("rahima", "alert-rules"), ("cli", "update-user")]
    assert all("password" not in a[2] or '"password_set": true' in a[2] for a in audit)


def test_existing_fleet_database_gains_the_user_tables(tmp_path: Path) -> None:
    path = tmp_path / "fleet.db"
    Store(path, migrations=[("0001_fleet.sql", SCHEMA)], clock=False).close()  # before logins
    with FleetDB(path) as db:
        tables = {r[0] for r in rows(db, "SELECT name FROM sqlite_master WHERE type='table'")}
        auth.set_user(db, "national", "admin", "a-long-password", by="test")
    assert {"users", "sessions", "login_throttle", "login_audit", "admin_audit",
            "alert_rules"} <= tables
