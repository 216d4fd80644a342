"""National misbehaving: HTML error pages, truncated JSON, 500s, 401s, an expired token,
a reply that never ends, a connection cut mid-reply. Each is retried or reported with a
clear reason; none crashes the worker or marks as synced what national did not accept.

A small fault-injecting aiohttp server sits in front of the real stand-in and breaks
one endpoint at a time; everything else passes through unchanged."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from appliance.store import Store
from appliance.sync.cycle import SyncEngine
from appliance.sync.daemon import Daemon
from appliance.trigger import request_sync
from tests.conftest import RunningHub, copy_db, free_port

from .conftest import first_values, hub_edit, sync_config

HTML = b"<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1>nginx</body></html>"


@dataclass
class Faults:
    rules: dict[tuple[str, str], str] = field(default_factory=dict)   # (method, path) -> mode
    hits: dict[str, int] = field(default_factory=dict)


@pytest.fixture
async def faulty(national: RunningHub) -> AsyncIterator[tuple[str, Faults]]:
    faults = Faults()
    session = aiohttp.ClientSession()  # plain bodies, so faults can cut JSON

    async def handler(request: web.Request) -> web.StreamResponse:
        # the CSV pull asks for /api/dataValueSets.csv: the same endpoint
        mode = faults.rules.get((request.method, request.path.removesuffix(".csv")))
        if mode:
            faults.hits[mode] = faults.hits.get(mode, 0) + 1
        if mode == "html":
            return web.Response(status=502, body=HTML, content_type="text/html")
        if mode == "login-page":
            return web.Response(status=200, body=HTML, content_type="text/html")
        if mode == "500":
            return web.json_response({"httpStatus": "Internal Server Error",
                                      "httpStatusCode": 500, "status": "ERROR",
                                      "message": "Connection pool exhausted"}, status=500)
        if mode == "401":
            return web.json_response({"httpStatus": "Unauthorized", "httpStatusCode": 401,
                                      "status": "ERROR", "message": "Unauthorized"}, status=401)
        if mode == "expired":
            return web.json_response({"httpStatus": "Unauthorized", "httpStatusCode": 401,
                                      "status": "ERROR", "message": "Token expired"},
                                     status=401)
        if mode == "hang":  # headers, half a body, then nothing, for ever
            resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
            await resp.prepare(request)
            await resp.write(b'{"httpStatus":"OK","response":{"importCount":')
            await asyncio.sleep(3600)
            return resp
        body = await request.read()  # aiohttp already inflated a gzip request body
        headers = {k: v for k, v in request.headers.items()
                   if k.lower() in ("authorization", "content-type")}
        async with session.request(request.method, national.url + request.path_qs, data=body,
                                   headers=headers) as up:
            data = await up.read()
            status, ctype = up.status, up.headers.get("Content-Type", "application/json")
        if mode == "truncated":  # a complete HTTP reply whose JSON stops half-way
            return web.Response(status=status, body=data[: len(data) // 2],
                                headers={"Content-Type": ctype})
        if mode == "cut":  # the connection dies mid-body
            resp = web.StreamResponse(status=status, headers={
                "Content-Type": ctype, "Content-Length": str(len(data))})
            await resp.prepare(request)
            await resp.write(data[: len(data) // 2])
            request.transport.close()  # type: ignore[union-attr]
            return resp
        return web.Response(status=status, body=data, headers={"Content-Type": ctype})

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.2)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}", faults
    finally:
        await session.close()
        await runner.cleanup()


@pytest.fixture
async def hub_store(demo_template: dict[str, Path], tmp_path: Path) -> AsyncIterator[Store]:
    store = Store(copy_db(demo_template["hub"], tmp_path / "hub"))
    yield store
    store.close()


def _engine(store: Store, url: str, tmp_path: Path) -> SyncEngine:
    eng = SyncEngine(store, sync_config(tmp_path / "hub", url, national__timeout_s=1.5))
    eng.client.retries = 1
    eng.client.backoff_base = 0.01
    eng.push_retries, eng.push_backoff_s = 2, 0.01
    return eng


def _states(store: Store) -> dict[str, int]:
    return dict(store.read_sync(lambda c: c.execute(
        "SELECT sync_state, count(*) FROM datavalue GROUP BY 1").fetchall()))


PROBE = ("GET", "/api/system/info")
PUSH = ("POST", "/api/dataValueSets")
PULL = ("GET", "/api/dataValueSets")

CASES = [
    (PROBE, "html", "HTML"),
    (PROBE, "login-page", "HTML page"),
    (PROBE, "truncated", "not valid JSON"),
    (PROBE, "500", "HTTP 500"),
    (PROBE, "401", "refused our credentials"),
    (PROBE, "expired", "Token expired"),
    (PROBE, "hang", "within"),
    (PULL, "cut", "cut off"),
    (PULL, "truncated", "not valid JSON"),
    (PUSH, "html", "HTML"),
    (PUSH, "truncated", "not valid JSON"),
    (PUSH, "500", "HTTP 500"),
    (PUSH, "hang", "within"),
    (PUSH, "cut", "cut off"),
    (PUSH, "expired", "may have expired"),
]


@pytest.mark.parametrize(("where", "mode", "reason"), CASES,
                         ids=[f"{w[0]}{w[1].replace('/', '_')}-{m}" for w, m, _ in CASES])
async def test_bad_reply_is_reported_and_nothing_is_marked_synced(
        faulty: tuple[str, Faults], hub_store: Store, tmp_path: Path,
        where: tuple[str, str], mode: str, reason: str) -> None:
    url, faults = faulty
    await hub_edit(hub_store, first_values(30))
    faults.rules[where] = mode
    eng = _engine(hub_store, url, tmp_path)
    try:
        r = await eng.cycle("cli")
        assert not r.ok and r.error and reason in r.error, r.error
        assert _states(hub_store) == {"pending": 30}
        st = dict(hub_store.read_sync(lambda c: c.execute(
            "SELECT key, value FROM sync_state").fetchall()))
        assert reason in st["last_error"] and st["syncing"] == "0"
        if mode in ("401", "expired", "html", "login-page", "truncated", "500"):
            assert faults.hits[mode] >= 1
        # national healthy again: everything goes, exactly once
        faults.rules.clear()
        r = await eng.cycle("cli")
        assert r.ok, r.error
        assert _states(hub_store) == {"synced": 30}
    finally:
        await eng.close()


async def test_worker_survives_a_failing_national(
        faulty: tuple[str, Faults], hub_store: Store, tmp_path: Path) -> None:
    url, faults = faulty
    await hub_edit(hub_store, first_values(10))
    faults.rules[PROBE] = "500"
    cfg = sync_config(tmp_path / "hub", url, national__timeout_s=1.0, sync__debounce_s=0,
                      sync__interval_s=3600)
    daemon = Daemon(hub_store, cfg)
    daemon.engine.client.retries = 0
    daemon.retry_base_s = 0.2
    stop = asyncio.Event()
    task = asyncio.create_task(daemon.run(stop))
    try:
        for _ in range(100):
            await asyncio.sleep(0.05)
            if len(daemon.cycles) >= 3:
                break
        assert len(daemon.cycles) >= 3 and not any(c.ok for c in daemon.cycles)
        faults.rules.clear()
        assert request_sync(tmp_path / "hub", "api")
        for _ in range(400):  # a loaded CI machine: up to 20 s (it breaks out at once)
            await asyncio.sleep(0.05)
            if daemon.cycles[-1].ok:
                break
        assert daemon.cycles[-1].ok and _states(hub_store) == {"synced": 10}
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
    assert not task.exception()
