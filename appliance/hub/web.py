"""Shared plumbing for the LAN API: typed app keys, JSON replies, route registration."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import typedefs, web

from ..config import Config
from ..dhis2 import query
from ..dhis2.webmessage import web_message
from ..store import Store
from ..store.approvals import all_approved, approvals_version
from ..store.datavalues import Provenance
from ..store.metadata import MetadataIndex, load_index, metadata_version
from ..store.users import User
from .auth import Authenticator, UpstreamVerify

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Middleware = typedefs.Middleware


@dataclass
class HubState:
    """Mutable per-app state; the metadata index is swapped whole on reload."""

    upstream: UpstreamVerify | None = None  # checks first logins against national
    # asks the sync daemon for a cycle (the hub's: ``trigger.request_sync``); None where
    # no sync daemon follows this store (the national stand-in)
    request_sync: Callable[[str], bool] | None = None
    index: MetadataIndex = field(default_factory=MetadataIndex)
    approvals: set[tuple[str, str, str, str]] = field(default_factory=set)
    approvals_version: int = 0
    started: float = field(default_factory=time.time)
    last_signal: float = 0.0
    on_reload: list[Callable[[MetadataIndex], None]] = field(default_factory=list)
    import_slots: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(24))
    _reloading: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def reload(self, store: Store) -> None:
        def read(conn: Any) -> tuple[MetadataIndex, set[tuple[str, str, str, str]], int]:
            return load_index(conn), all_approved(conn), approvals_version(conn)
        index, approvals, version = await store.read(read)
        for hook in self.on_reload:
            hook(index)
        self.index, self.approvals, self.approvals_version = index, approvals, version

    async def refresh(self, store: Store) -> bool:
        """Reload if another process (sync) changed metadata since the index was loaded
        (or only the approvals, if just they changed); True if anything was reloaded. One
        reload at a time: callers that arrive during one wait for it."""
        async with self._reloading:
            meta, appr = await store.read(lambda c: (metadata_version(c), approvals_version(c)))
            if meta != self.index.version:
                await self.reload(store)
                return True
            if appr != self.approvals_version:
                def read(conn: Any) -> tuple[set[tuple[str, str, str, str]], int]:
                    return all_approved(conn), approvals_version(conn)
                self.approvals, self.approvals_version = await store.read(read)
                return True
            return False

    def signal_sync(self, reason: str, *, now: bool = False) -> bool:
        """Tell the sync daemon there is new local data: at most once a second, unless
        ``now`` (a person asked). True if the daemon got the signal."""
        t = time.monotonic()
        if self.request_sync is None or (not now and t - self.last_signal < 1.0):
            return False
        self.last_signal = t
        return self.request_sync(reason)


CONFIG = web.AppKey("config", Config)
STORE = web.AppKey("store", Store)
STATE = web.AppKey("state", HubState)
AUTH = web.AppKey("auth", Authenticator)
ROLE = web.AppKey("role", str)  # what this server is, as shown: "hub" or "national"
SYSTEM_NAME = web.AppKey("system_name", str)
WRITES = web.AppKey("writes", Provenance)  # the sync state and origin of edits made here
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


def paged(request: web.Request, collection: str, items: list[Any], *,
          shape: Callable[[list[Any]], list[Any]] | None = None,
          links: bool = False) -> dict[str, Any]:
    """A collection reply: the page the query's ``paging``/``page``/``pageSize`` ask for
    (``shape``d, e.g. projected to ``fields``) and its pager, with ``nextPage`` and
    ``prevPage`` URLs when ``links``, as DHIS2's metadata endpoints give them."""
    q = request.query
    page_items, pager = query.paginate(items, paging=q.get("paging", "true"),
                                       page=q.get("page", 1), page_size=q.get("pageSize", 50))
    body: dict[str, Any] = {}
    if pager is not None:
        body["pager"] = dict(pager)
        if links:
            url = request.url  # keeps fields/filter/order, as DHIS2's links do
            if pager["page"] < pager["pageCount"]:
                body["pager"]["nextPage"] = str(url.update_query(page=pager["page"] + 1))
            if pager["page"] > 1:
                body["pager"]["prevPage"] = str(url.update_query(page=pager["page"] - 1))
    body[collection] = shape(page_items) if shape else page_items
    return body
