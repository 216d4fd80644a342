"""The hub's doors, tried as an attacker on the clinic LAN would, over real HTTP against a
real hub process: public paths, cross-site requests, lockout abuse, login timing."""

from __future__ import annotations

import base64
import statistics
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from appliance.store import Store
from appliance.store.users import LOCKOUT_AFTER, add_token, lockout_delay
from tests.conftest import ADMIN, CHCP, HubProcess, RunningHub, basic, start_hub_process
from tests.hub.cells import cells, month

C = cells()

EVIL = "http://evil.example"


@pytest.fixture(scope="module")
def hub_proc(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[HubProcess]:
    hp = start_hub_process(tmp_path_factory.mktemp("sec") / "hub")
    time.sleep(1.0)  # the demo seed and the first metadata load
    yield hp  # type: ignore[misc]
    hp.kill()


def _session(addr: str = "127.0.0.1") -> aiohttp.ClientSession:
    """A client bound to one loopback address: one 'laptop' on the LAN."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(addr, 0)),
                                 cookie_jar=aiohttp.CookieJar(unsafe=True))


def _stored(hp: HubProcess) -> list[Any]:
    with Store(hp.data_dir / "hub.db") as s:
        return s.read_sync(lambda c: [tuple(r) for r in c.execute(
            "SELECT ou, pe, de, coc, value, deleted FROM datavalue ORDER BY 1,2,3,4")] +
            [tuple(r) for r in c.execute("SELECT * FROM datastore ORDER BY 1,2")])


async def _login(s: aiohttp.ClientSession, hp: HubProcess, user: str = "chcp") -> None:
    async with s.post(hp.api("auth/login"), json={"username": user, "password": "district"},
                      headers={"Origin": hp.url}) as r:
        assert r.status == 200, await r.text()


# -- public paths --------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE"])
async def test_ping_suffix_is_not_public(hub: RunningHub, http: aiohttp.ClientSession,
                                         method: str) -> None:
    async with http.request(method, hub.api("dataStore/anything/ping"), json={"a": 1}) as r:
        assert r.status == 401, await r.text()
        assert (await r.json())["httpStatusCode"] == 401
    async with http.get(hub.api("me/authorization/ping")) as r:
        assert r.status == 401


@pytest.mark.parametrize("path", ["/api/system/ping", "/api/ping", "/api/41/system/ping",
                                  "/api/loginConfig", "/api/41/loginConfig.json",
                                  "/api/hub/status", "/hub", "/hub/status"])
async def test_what_dhis2_makes_public_stays_public(hub: RunningHub,
                                                    http: aiohttp.ClientSession,
                                                    path: str) -> None:
    async with http.get(hub.url + path) as r:
        assert r.status == 200, path


async def test_everything_else_needs_a_login(hub: RunningHub, http: aiohttp.ClientSession) -> None:
    for path in ("/api/me", "/api/41/me", "/api/dataStore", "/api/dataSets",
                 "/api/hub/health", "/api/hub/conflicts", "/api/system/pingx",
                 "/api/loginConfig/x", "/api/hub/status/x"):
        async with http.get(hub.url + path) as r:
            assert r.status in (401, 404), path
            if r.status == 404:  # unknown paths may 404, but never serve anything
                assert (await r.json())["httpStatusCode"] == 404


# -- cross-site requests -------------------------------------------------------------------------
async def test_foreign_origin_cookie_writes_are_refused(hub_proc: HubProcess) -> None:
    de = C.element("INTEGER_ZERO_OR_POSITIVE", C.form1)
    form = {"de": de["id"], "pe": month(), "ou": C.chcp_clinic, "co": C.cocs(de)[0],
            "value": "7"}
    before = _stored(hub_proc)
    async with _session() as s:
        await _login(s, hub_proc)
        # a form on another site, posted by the CHCP's browser with the CHCP's cookie
        async with s.post(hub_proc.api("dataValues"), data=form,
                          headers={"Origin": EVIL}) as r:
            assert r.status == 403, await r.text()
            body = await r.json()
            assert body["httpStatusCode"] == 403 and "Cross-site" in body["message"]
        async with s.post(hub_proc.api("dataStore/ns/k"), data=b'{"a":1}',
                          headers={"Origin": EVIL, "Content-Type": "text/plain"}) as r:
            assert r.status == 403
        async with s.post(hub_proc.api("dataValues"), data=form,
                          headers={"Referer": EVIL + "/page"}) as r:
            assert r.status == 403  # no Origin: the Referer decides
        async with s.post(hub_proc.api("dataValues"), data=form,
                          headers={"Origin": "null"}) as r:
            assert r.status == 403
        assert _stored(hub_proc) == before
        # the hub's own page (same origin), and the Android app (no Origin at all), work
        async with s.post(hub_proc.api("dataValues"), data=form,
                          headers={"Origin": hub_proc.url}) as r:
            assert r.status == 201, await r.text()
        async with s.post(hub_proc.api("dataValues"), data={**form, "value": "8"}) as r:
            assert r.status == 201, await r.text()
    assert _stored(hub_proc) != before


async def test_login_takes_json_or_a_form_only(hub_proc: HubProcess) -> None:
    async with _session() as s:
        async with s.post(hub_proc.api("auth/login"),
                          data=b'{"username":"chcp","password":"district"}',
                          headers={"Content-Type": "text/plain"}) as r:
            assert r.status == 415
            assert "SESSION" not in str(r.cookies).upper()
        async with s.post(hub_proc.api("auth/login"),
                          json={"username": "chcp", "password": "district"},
                          headers={"Origin": EVIL}) as r:
            assert r.status == 403  # login CSRF
        async with s.post(hub_proc.api("auth/login"),
                          data={"username": "chcp", "password": "district"}) as r:
            assert r.status == 200


# -- lockout -------------------------------------------------------------------------------------
def test_lockout_delays_grow_and_are_capped() -> None:
    assert [lockout_delay(n) for n in range(1, LOCKOUT_AFTER)] == [0.0] * (LOCKOUT_AFTER - 1)
    waits = [lockout_delay(n) for n in range(LOCKOUT_AFTER, LOCKOUT_AFTER + 8)]
    assert waits[0] > 0 and all(b >= a for a, b in zip(waits, waits[1:], strict=False))
    assert waits[1] == 2 * waits[0] and waits[-1] == 15 * 60


async def test_an_attacker_cannot_lock_a_user_out_from_elsewhere(hub_proc: HubProcess) -> None:
    token = "d2pat_" + "x" * 40
    with Store(hub_proc.data_dir / "hub.db") as st:
        uid = st.read_sync(lambda c: c.execute(
            "SELECT uid FROM users WHERE username='chcp'").fetchone()[0])
        st.write_sync(lambda tx: add_token(tx, uid, token, "tablet"))
    tok = {"Authorization": f"ApiToken {token}"}
    # the CHCP's own laptop (127.0.0.3) and the attacker's (127.0.0.4) were both logged in
    async with _session("127.0.0.3") as laptop, _session("127.0.0.4") as attacker:
        await _login(laptop, hub_proc)
        await _login(attacker, hub_proc)
        for s in (laptop, attacker):
            async with s.get(hub_proc.api("me"), headers=CHCP) as r:
                assert r.status == 200  # the Basic header is now verified and cached
        for _ in range(LOCKOUT_AFTER):
            async with attacker.get(hub_proc.api("me"), headers=basic("chcp", "guess")) as r:
                assert r.status == 401
        # at the attacker's address every way in is shut: password, cached Basic, session,
        # token
        async with attacker.post(hub_proc.api("auth/login"),
                                 json={"username": "chcp", "password": "district"}) as r:
            assert r.status == 401 and "locked" in (await r.json())["message"]
        for headers in (CHCP, {}, tok):
            async with attacker.get(hub_proc.api("me"), headers=headers) as r:
                assert r.status == 401, headers
        # ... and the CHCP at their own laptop is not locked out
        for headers in (CHCP, {}, tok):
            async with laptop.get(hub_proc.api("me"), headers=headers) as r:
                assert r.status == 200, headers
                assert (await r.json())["username"] == "chcp"
    with Store(hub_proc.data_dir / "hub.db") as st:
        rows = st.read_sync(lambda c: c.execute(
            "SELECT client, success, reason FROM login_audit WHERE username='chcp' AND "
            "client IN ('127.0.0.3','127.0.0.4') ORDER BY id").fetchall())
        throttle = st.read_sync(lambda c: c.execute(
            "SELECT client, failures, locked_until FROM login_throttle WHERE "
            "username='chcp'").fetchall())
    # every attempt audited: 2 logins, 5 failures, 1 refusal while locked
    assert [(r[0], r[1]) for r in rows].count(("127.0.0.4", 0)) == LOCKOUT_AFTER + 1
    assert sum(1 for r in rows if r[1] == 1) >= 2
    assert [(c, n) for c, n, _ in throttle] == [("127.0.0.4", LOCKOUT_AFTER + 1)]
    assert throttle[0][2] > time.time() + lockout_delay(LOCKOUT_AFTER)  # grew after the 6th


async def test_unknown_and_known_usernames_take_the_same_time(hub_proc: HubProcess) -> None:
    async def refusal(s: aiohttp.ClientSession, user: str) -> float:
        t0 = time.perf_counter()
        async with s.post(hub_proc.api("auth/login"),
                          json={"username": user, "password": "wrong"}) as r:
            assert r.status == 401
            assert (await r.json())["message"] == "Invalid username or password"
        return time.perf_counter() - t0
    known, unknown = [], []
    for i in range(4):  # under the per-address lockout: each refusal runs scrypt
        async with _session(f"127.0.1.{i + 1}") as s:
            known.append(await refusal(s, "admin"))
            unknown.append(await refusal(s, f"nobody{i}"))
    ratio = statistics.median(unknown) / statistics.median(known)
    assert 0.5 < ratio < 2.0, (known, unknown)


# -- bad input that used to give 500s ------------------------------------------------------------
async def test_numbers_beyond_64_bits_are_400s(hub: RunningHub, http: aiohttp.ClientSession
                                               ) -> None:
    huge = "9" * 25
    async with http.get(hub.api("dataValueSets"), headers=ADMIN, params={
            "dataSet": "x", "period": "202401", "orgUnit": "y", "limit": huge}) as r:
        assert r.status in (400, 409)
    async with http.get(hub.api("system/id"), headers=ADMIN, params={"limit": huge}) as r:
        assert r.status == 400
    async with http.post(f"{hub.url}/api/hub/conflicts/{huge}/resolve", headers=ADMIN,
                         json={"choose": "hub"}) as r:
        assert r.status == 404
        assert (await r.json())["httpStatusCode"] == 404


async def test_corrupt_gzip_and_deep_json_are_400s(hub_proc: HubProcess) -> None:
    async with _session() as s:
        async with s.post(hub_proc.api("dataValueSets"), data=b"not gzip at all", headers={
                **ADMIN, "Content-Type": "application/json", "Content-Encoding": "gzip"}) as r:
            assert r.status == 400
            assert (await r.json())["httpStatusCode"] == 400
        deep = b"[" * 10_000 + b"]" * 10_000
        for path in ("auth/login", "dataStore/ns/deep"):
            async with s.post(hub_proc.api(path), data=deep, headers={
                    **ADMIN, "Content-Type": "application/json"}) as r:
                assert r.status == 400, path
                assert "deep" in (await r.json())["message"]
    log = next(Path(hub_proc.data_dir).glob("hub-*.log")).read_text()
    assert "Traceback" not in log


async def test_unreadable_requests_get_webmessages(hub_proc: HubProcess) -> None:
    import asyncio
    host, port = "127.0.0.1", int(hub_proc.url.rsplit(":", 1)[1])
    auth = b"Authorization: Basic " + base64.b64encode(b"admin:district") + b"\r\n"
    for raw in (b"GET /api/me?x=" + b"a" * 9000 + b" HTTP/1.1\r\nHost: h\r\n\r\n",
                b"GET /api/me HTTP/1.1\r\nHost: h\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n",
                b"FO(O /api/me HTTP/1.1\r\nHost: h\r\n\r\n",
                b"POST /api/dataValueSets HTTP/1.1\r\nHost: h\r\n" + auth +
                b"Transfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\nzz\r\n"):
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(raw)
        await writer.drain()
        reply = await asyncio.wait_for(reader.read(), 10)
        writer.close()
        head, _, body = reply.partition(b"\r\n\r\n")
        assert head.split(b" ")[1] == b"400", reply[:200]
        assert b"application/json" in head
        assert b'"httpStatusCode":400' in body
    log = next(Path(hub_proc.data_dir).glob("hub-*.log")).read_text()
    assert "Traceback" not in log and "refused an unreadable request" in log


async def test_validation_does_not_show_another_clinics_numbers(
        hub: RunningHub, http: aiohttp.ClientSession) -> None:
    ds = C.form1["id"]
    async with http.get(hub.api(f"validation/dataSet/{ds}"), headers=CHCP,
                        params={"pe": month(-1), "ou": C.other_clinic}) as r:
        assert r.status == 403
        assert "not allowed" in (await r.json())["message"]
    async with http.get(hub.api(f"validation/dataSet/{ds}"), headers=CHCP,
                        params={"pe": month(-1), "ou": C.chcp_clinic}) as r:
        assert r.status == 200
    async with http.get(hub.api("dataApprovals"), headers=CHCP, params={
            "ds": ds, "pe": month(-1), "ou": C.other_clinic}) as r:
        assert r.status == 403


async def test_approvals_are_audited(hub: RunningHub, http: aiohttp.ClientSession) -> None:
    params = {"ds": C.form1["id"], "pe": month(-1), "ou": C.chcp_clinic}
    for method in ("POST", "DELETE"):
        async with http.request(method, hub.api("dataApprovals"), params=params,
                                headers=ADMIN) as r:
            assert r.status == 204
    rows = hub.store.read_sync(lambda c: c.execute(
        "SELECT audit_type, username, key FROM audit WHERE entity='data_approval' "
        "ORDER BY id").fetchall())
    assert [(r[0], r[1]) for r in rows] == [("CREATE", "admin"), ("DELETE", "admin")]
    assert rows[0][2].startswith(f"{C.form1['id']}|{month(-1)}|{C.chcp_clinic}|")
