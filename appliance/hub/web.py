"""Shared plumbing for the LAN API: typed app keys, JSON replies, route registration."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from ..config import Config
from ..dhis2.webmessage import web_message
from ..store import Store
from ..store.approvals import all_approved
from ..store.metadata import MetadataIndex, load_index
from ..store.users import User
from ..trigger import request_sync
from .auth import Authenticator

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class HubState:
    """Mutable per-app state; the metadata index is swapped whole on reload."""

    data_dir: Path = Path("data")
    sync_socket: str = ""
    index: MetadataIndex = field(default_factory=MetadataIndex)
    approvals: set[tuple[str, str, str, str]] = field(default_factory=set)
    started: float = field(default_factory=time.time)
    last_signal: float = 0.0
    on_reload: list[Callable[[MetadataIndex], None]] = field(default_factory=list)
    import_slots: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(24))

    async def reload(self, store: Store) -> None:
        def read(conn: Any) -> tuple[MetadataIndex, set[tuple[str, str, str, str]]]:
            return load_index(conn), all_approved(conn)
        index, approvals = await store.read(read)
        for hook in self.on_reload:
            hook(index)
        self.index, self.approvals = index, approvals

    def signal_sync(self, reason: str) -> None:
        """Tell the sync daemon there is new local data (at most once a second)."""
        now = time.monotonic()
        if now - self.last_signal >= 1.0:
            self.last_signal = now
            request_sync(self.data_dir, reason, self.sync_socket)


CONFIG = web.AppKey("config", Config)
STORE = web.AppKey("store", Store)
STATE = web.AppKey("state", HubState)
AUTH = web.AppKey("auth", Authenticator)
ROLE = web.AppKey("role", str)
USER_KEY = web.RequestKey("user", User | None)  # type: ignore[arg-type]

JSON_TYPE = "application/json"


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS)


def json_response(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=dumps(obj), status=status, content_type=JSON_TYPE,
                        charset="utf-8", headers=headers)


def message(status_code: int, text: str, **kw: Any) -> web.Response:
    return json_response(web_message(status_code, text, **kw), status=status_code)


def user_of(request: web.Request) -> User:
    return request[USER_KEY]  # type: ignore[no-any-return]


def index_of(request: web.Request) -> MetadataIndex:
    return request.app[STATE].index


def api_path(path: str) -> str:
    """``/system/info`` -> a pattern matching ``/api/system/info``, ``/api/41/...`` and ``.json``."""
    return r"/api{_v:(?:/[0-9]{2})?}" + path + r"{_x:(?:\.json)?}"


def add_api(app: web.Application, method: str, path: str, handler: Handler) -> None:
    app.router.add_route(method, api_path(path), handler)
