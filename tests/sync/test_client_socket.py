"""Sockets to national: TCP's retransmission timeout is capped where the kernel allows."""

from __future__ import annotations

import socket

import pytest
from aiohttp import web

from appliance import config as cfg
from appliance.sync.client import TCP_RTO_MAX_MS, NationalClient
from appliance.sync.cycle import make_client


async def _serve_ping() -> tuple[web.AppRunner, int]:
    app = web.Application()

    async def ping(_: web.Request) -> web.Response:
        return web.Response(text="pong")
    app.router.add_get("/api/system/ping", ping)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]


def _kernel_caps_rto() -> bool:
    with socket.socket() as s:
        try:
            s.setsockopt(socket.IPPROTO_TCP, TCP_RTO_MAX_MS, 1500)
        except OSError:
            return False
    return True


async def test_connections_to_national_carry_the_cap() -> None:
    runner, port = await _serve_ping()
    try:
        client = NationalClient(f"http://127.0.0.1:{port}", token="t", rto_max_ms=1500)
        async with client.session().get(f"http://127.0.0.1:{port}/api/system/ping") as r:
            assert await r.text() == "pong"
        await client.close()
        # the session's connections come from the client's socket factory
        if not _kernel_caps_rto():
            assert client.rto_capped is False  # the push then falls back to re-sending
            pytest.skip("kernel before 6.15: no TCP_RTO_MAX_MS")
        assert client.rto_capped is True
        info = socket.getaddrinfo("127.0.0.1", port, type=socket.SOCK_STREAM)[0]
        with client._socket(info) as sock:
            assert sock.getsockopt(socket.IPPROTO_TCP, TCP_RTO_MAX_MS) == 1500
        off = NationalClient(f"http://127.0.0.1:{port}", token="t", rto_max_ms=0)
        async with off.session().get(f"http://127.0.0.1:{port}/api/system/ping") as r:
            await r.read()
        await off.close()
        assert off.rto_capped is None  # 0: the kernel's own timeout, untouched
        with off._socket(info) as sock:
            assert sock.getsockopt(socket.IPPROTO_TCP, TCP_RTO_MAX_MS) != 1500
    finally:
        await runner.cleanup()


def test_cap_comes_from_config() -> None:
    c = cfg.Config(values=cfg.defaults())
    c.set("national", "url", "http://127.0.0.1:9")
    c.set("national", "token", "t")
    assert make_client(c).rto_max_ms == 1500  # the documented default
    c.set("national", "tcp_rto_max_ms", 0)
    assert make_client(c).rto_max_ms == 0


def _congestion(sock: socket.socket) -> str:
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, 16).rstrip(b"\0").decode()


def test_congestion_control_from_config(caplog: pytest.LogCaptureFixture) -> None:
    c = cfg.Config(values=cfg.defaults())
    c.set("national", "url", "http://127.0.0.1:9")
    c.set("national", "token", "t")
    info = socket.getaddrinfo("127.0.0.1", 9, type=socket.SOCK_STREAM)[0]
    with make_client(c)._socket(info) as sock, socket.socket() as plain:
        assert _congestion(sock) == _congestion(plain)  # empty: the kernel's default
    c.set("national", "tcp_congestion", "reno")  # always built in
    with make_client(c)._socket(info) as sock:
        assert _congestion(sock) == "reno"
    c.set("national", "tcp_congestion", "no-such-algorithm")
    client = make_client(c)
    with client._socket(info) as sock, socket.socket() as plain:
        assert _congestion(sock) == _congestion(plain)  # refused: kept the default
    assert "no-such-algorithm" in caplog.text and client.congestion == ""
