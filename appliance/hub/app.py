"""The LAN server: one aiohttp application emulating DHIS2 2.41 over the store."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from ..config import Config
from ..store import Store
from ..store.metadata import metadata_version
from . import (
    middleware,
    openapi,
    pages,
    routes_data,
    routes_datastore,
    routes_hub,
    routes_metadata,
    routes_system,
)
from .auth import Authenticator, UpstreamVerify
from .discovery import advertiser
from .web import AUTH, CONFIG, ROLE, STATE, STORE, HubState

log = logging.getLogger(__name__)

METADATA_POLL_S = 2.0


def create_app(config: Config, store: Store, *, role: str | None = None,
               upstream: UpstreamVerify | None = None, zeroconf: bool = False,
               port: int = 0, host: str | None = None) -> web.Application:
    role = role or config.get("hub", "role")
    if role == "hub" and upstream is None and config.get("national", "url"):
        from ..sync.upstream import Upstream  # first logins are checked against national
        upstream = Upstream(config, store)
    max_body = int(config.get("hub", "max_body_mb")) * 1024 * 1024
    middlewares = [middleware.errors, middleware.authenticate]
    if role == "national":
        middlewares.insert(0, middleware.compress)
    app = web.Application(client_max_size=max_body, middlewares=middlewares)
    state = HubState(data_dir=Path(config.data_dir), sync_socket=config.get("sync", "socket"))
    state.on_reload.append(routes_metadata.decorate)
    app[CONFIG] = config
    app[STORE] = store
    app[ROLE] = role
    app[STATE] = state
    app[AUTH] = Authenticator(store, lambda: state.index, upstream)
    routes_system.setup(app)
    routes_datastore.setup(app)
    routes_data.setup(app)
    routes_hub.setup(app)
    if role == "hub":
        from ..sync import api as sync_api  # conflicts, rejections, "sync now"
        sync_api.setup(app)
    pages.setup(app)  # /hub (data entry) and /hub/status
    openapi.setup(app)  # /api/openapi.json, before the catch-all below
    routes_metadata.setup(app)  # last: its /{collection} pattern is the catch-all
    extra = getattr(config, "extra_routes", None)
    if extra:
        extra(app)
    app.cleanup_ctx.append(_metadata_watch)
    if zeroconf:
        # advertise on the interfaces of the address actually bound (--host), not [hub] listen
        host = host or config.get("hub", "listen").rsplit(":", 1)[0]
        app.cleanup_ctx.append(advertiser(config.get("hub", "name").replace(".", " "),
                                          config.get("hub", "id"), host, port))
    return app


async def _metadata_watch(app: web.Application) -> AsyncIterator[None]:
    """Load the index, then reload it whenever another process (sync) changed metadata."""
    store, state = app[STORE], app[STATE]
    await state.reload(store)

    async def loop() -> None:
        while True:
            await asyncio.sleep(METADATA_POLL_S)
            try:
                version = await store.read(metadata_version)
                if version != state.index.version:
                    await state.reload(store)
                    app[AUTH].forget()
            except Exception:  # keep serving with the old index
                log.exception("metadata reload failed")
    task = asyncio.create_task(loop())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
