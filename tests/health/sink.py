"""A stand-in fleet endpoint on a real loopback port, run in its own thread so both sync
and async tests can use it, and stopped/started on the same port to cut the link."""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from appliance.signing import verify


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Received:
    headers: dict[str, str]
    raw: bytes
    body: dict[str, Any]
    signature_ok: bool


@dataclass
class FleetSink:
    token: str = "s3cret-token"
    port: int = field(default_factory=free_port)
    status: int = 200                 # what to answer (401, 409, 500...)
    replay_409: bool = True           # answer 409 to a seq already stored, like the fleet
    max_skew_s: float | None = None   # answer 409 to a sent_at further than this from now
    received: list[Received] = field(default_factory=list)
    stored_seqs: set[int] = field(default_factory=set)

    def __post_init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/heartbeats"

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        headers = dict(request.headers)
        ok = verify(self.token, raw, headers.get("X-Hub-Signature"))
        body = json.loads(gzip.decompress(raw))
        self.received.append(Received(headers, raw, body, ok))
        if not ok or headers.get("Authorization") != f"Bearer {self.token}":
            return web.json_response({"error": "bad signature"}, status=401)
        if self.status != 200:
            return web.json_response({"error": "configured"}, status=self.status)
        if self.max_skew_s is not None:
            sent = datetime.strptime(body["sent_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
            if abs(sent.timestamp() - time.time()) > self.max_skew_s:
                return web.json_response({"error": "stale"}, status=409)
        if self.replay_409 and body["seq"] in self.stored_seqs:
            return web.json_response({"error": "replay"}, status=409)
        self.stored_seqs.add(body["seq"])
        return web.json_response({"ok": True})

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/api/heartbeats", self._handle)
        # the HMAC covers the gzip bytes as sent: aiohttp must not inflate them for us
        self._runner = web.AppRunner(app, access_log=None, auto_decompress=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True).start()

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def start(self) -> FleetSink:
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)

    def close(self) -> None:
        self.stop()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def samples(self) -> list[dict[str, Any]]:
        return [s for r in self.received for s in r.body["samples"]]
