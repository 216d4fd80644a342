"""A user's first login at the hub is checked against national with their own password;
later logins work offline; failed logins lock the account before national is asked."""

from __future__ import annotations

import json

import aiohttp

from appliance.hub.routes_system import server_date
from appliance.store.users import LOCKOUT_AFTER, upsert_user
from appliance.sync.upstream import Upstream
from tests.conftest import free_port

from .conftest import Pair, basic, hub_app, make_config


def _new_national_user(pair: Pair, username: str, password: str = "s3cret-pass") -> str:
    base = json.loads(pair.national.store.read_sync(lambda c: c.execute(
        "SELECT doc FROM users WHERE username='chcp'").fetchone()[0]))
    uid = "U" + username.ljust(10, "x")[:10]
    doc = dict(base, id=uid, username=username, code=username, lastUpdated=server_date())
    doc["userCredentials"] = dict(base["userCredentials"], username=username, id="C" + uid[1:])
    pair.national.store.write_sync(lambda tx: upsert_user(tx, doc, password=password))
    return uid


async def test_first_login_checked_at_national_then_works_offline(
        pair: Pair, http: aiohttp.ClientSession) -> None:
    _new_national_user(pair, "rahima")
    assert (await pair.cycle()).ok  # the user came down, without a password
    up = Upstream(make_config(pair.data_dir, "hub", national__url=pair.national.url,
                              hub__org_unit="iAnkU6x2dwu"), pair.hub)
    async with hub_app(pair.hub, pair.data_dir, upstream=up) as hub, http.get(hub.api("me"), headers=basic("rahima", "s3cret-pass")) as r:
        assert r.status == 200, await r.text()
        assert (await r.json())["username"] == "rahima"
    assert up.calls == 1
    verifier = pair.hub.read_sync(lambda c: c.execute(
        "SELECT verifier FROM users WHERE username='rahima'").fetchone()[0])
    assert verifier and verifier.startswith("scrypt$")
    # national gone: the verifier alone lets the user in, and national is not asked
    dead = Upstream(make_config(pair.data_dir, "hub",
                                national__url=f"http://127.0.0.1:{free_port()}"), pair.hub)
    async with hub_app(pair.hub, pair.data_dir, upstream=dead) as hub:
        async with http.get(hub.api("me"), headers=basic("rahima", "s3cret-pass")) as r:
            assert r.status == 200
        async with http.get(hub.api("me"), headers=basic("rahima", "wrong")) as r:
            assert r.status == 401
    assert dead.calls == 0


async def test_first_login_needs_the_link_and_says_so(
        pair: Pair, http: aiohttp.ClientSession) -> None:
    _new_national_user(pair, "karim")
    assert (await pair.cycle()).ok
    dead = Upstream(make_config(pair.data_dir, "hub",
                                national__url=f"http://127.0.0.1:{free_port()}"), pair.hub)
    async with hub_app(pair.hub, pair.data_dir, upstream=dead) as hub, http.get(hub.api("me"), headers=basic("karim", "s3cret-pass")) as r:
        assert r.status == 401
        assert "cannot be reached" in (await r.json())["message"]
    failed = pair.hub.read_sync(lambda c: c.execute(
        "SELECT failed FROM users WHERE username='karim'").fetchone()[0])
    assert failed == 0  # an unreachable national is not a wrong password


async def test_lockout_holds_for_upstream_verified_logins(
        pair: Pair, http: aiohttp.ClientSession) -> None:
    _new_national_user(pair, "salma")
    assert (await pair.cycle()).ok
    up = Upstream(make_config(pair.data_dir, "hub", national__url=pair.national.url,
                              hub__org_unit="iAnkU6x2dwu"), pair.hub)
    async with hub_app(pair.hub, pair.data_dir, upstream=up) as hub:
        for _ in range(LOCKOUT_AFTER):
            async with http.get(hub.api("me"), headers=basic("salma", "guess")) as r:
                assert r.status == 401
        assert up.calls == LOCKOUT_AFTER
        # locked: even the right password is refused, and national is not asked
        async with http.get(hub.api("me"), headers=basic("salma", "s3cret-pass")) as r:
            assert r.status == 401
            assert "locked" in (await r.json())["message"]
        assert up.calls == LOCKOUT_AFTER
    row = pair.hub.read_sync(lambda c: c.execute(
        "SELECT verifier, failed FROM users WHERE username='salma'").fetchone())
    assert row["verifier"] is None and row["failed"] >= LOCKOUT_AFTER
    # the lock is on this (user, address) pair, not on the account (tests/hub/test_security.py)
    lock = pair.hub.read_sync(lambda c: c.execute(
        "SELECT locked_until FROM login_throttle WHERE username='salma'").fetchone())
    assert lock["locked_until"] > 0
    audit = pair.hub.read_sync(lambda c: c.execute(
        "SELECT count(*) FROM login_audit WHERE username='salma' AND success=0").fetchone()[0])
    assert audit == LOCKOUT_AFTER + 1


async def test_users_outside_the_upazila_are_not_let_in(
        pair: Pair, http: aiohttp.ClientSession) -> None:
    up = Upstream(make_config(pair.data_dir, "hub", national__url=pair.national.url,
                              hub__org_unit="iAnkU6x2dwu"), pair.hub)
    # statistician: a real national account, but for the whole district
    async with hub_app(pair.hub, pair.data_dir, upstream=up) as hub, http.get(hub.api("me"), headers=basic("statistician")) as r:
        assert r.status == 401
        assert "not assigned to this hub" in (await r.json())["message"]

