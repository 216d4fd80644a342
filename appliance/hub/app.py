"""The LAN server: one aiohttp application emulating DHIS2 2.41 over the store.

``dhis2_app`` composes the DHIS2 route modules; ``create_app`` is the hub built on it
(the national stand-in, ``appliance.national``, is the other)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Callable, Sequence

from aiohttp import web

from ..config import Config
from ..memory import trim
from ..store import Store
from ..store.datavalues import LOCAL_EDIT, Provenance
from ..sync.upstream import Upstream
from ..trigger import request_sync
from . import (
    board,
    middleware,
    openapi,
    pages,
    routes_data,
    routes_datastore,
    routes_hub,
    routes_metadata,
    routes_people,
    routes_sync,
    routes_system,
    routes_tracker,
    tls,
)
from .auth import Authenticator, UpstreamVerify
from .discovery import advertiser
from .web import (
    AUTH,
    CONFIG,
    ROLE,
    STATE,
    STORE,
    SYSTEM_NAME,
    WRITES,
    Handler,
    HubState,
    Middleware,
)

log = logging.getLogger(__name__)

METADATA_POLL_S = 2.0
TRIM_EVERY = 30  # metadata polls: give freed heap back to the kernel once a minute


def dhis2_app(config: Config, store: Store, *, state: HubState, writes: Provenance,
              label: str, system_name: str, extra_middlewares: Sequence[Middleware] = (),
              before_catch_all: Callable[[web.Application], None] | None = None,
              metadata_import: Handler = routes_metadata.refuse_metadata_import
              ) -> web.Application:
    """The DHIS2 Web API and pages over ``store``, as both the hub and the national
    stand-in serve them. ``writes`` is what an edit made here is to sync (the hub's are
    queued for national); ``before_catch_all`` adds an app's own routes ahead of the
    metadata collections' ``/api/{collection}`` pattern."""
    max_body = int(config.get("hub", "max_body_mb")) * 1024 * 1024
    chain: list[Middleware] = [*extra_middlewares, middleware.errors, middleware.fresh_metadata,
                               middleware.authenticate]
    app = web.Application(client_max_size=max_body, middlewares=chain)
    state.on_reload.append(routes_metadata.decorate)
    app[CONFIG] = config
    app[STORE] = store
    app[STATE] = state
    app[WRITES] = writes
    app[ROLE] = label
    app[SYSTEM_NAME] = system_name
    app[AUTH] = Authenticator(store, lambda: state.index, state.upstream)
    routes_system.setup(app)
    routes_datastore.setup(app)
    routes_data.setup(app)
    routes_hub.setup(app)
    routes_tracker.setup(app)  # individual records (before the metadata catch-all)
    routes_people.setup(app)  # rules, sync states and weekly lists for the register pages
    board.setup(app)  # the reporting board's data and its live stream
    if before_catch_all is not None:
        before_catch_all(app)
    pages.setup(app)  # /hub (data entry) and /hub/status
    openapi.setup(app)  # /api/openapi.json, before the catch-all below
    routes_metadata.setup(app, metadata_import=metadata_import)  # last: the catch-all
    app.cleanup_ctx.append(_metadata_watch)
    return app


def create_app(config: Config, store: Store, *, upstream: UpstreamVerify | None = None,
               zeroconf: bool = False, port: int = 0, host: str | None = None,
               https: tls.HttpsListener | None = None) -> web.Application:
    """The upazila hub's LAN server: the DHIS2 API, its sync endpoints, its pages.
    ``https`` is the HTTPS listener serving this app too (its certificate is shown on the
    status page and offered to laptops); without one, the certificate is read from disk."""
    if upstream is None and config.get("national", "url"):
        upstream = Upstream(config, store)  # first logins are checked against national
    state = HubState(upstream=upstream, request_sync=functools.partial(
        request_sync, config.data_dir, configured=config.get("sync", "socket")))
    app = dhis2_app(config, store, state=state, writes=LOCAL_EDIT, label="hub",
                    system_name=config.get("hub", "name"),
                    before_catch_all=routes_sync.setup)  # conflicts, rejections, sync now
    tls.setup(app, https.s if https is not None else tls.TlsSettings.from_config(config), https)
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
    state.on_reload.append(lambda _index: app[AUTH].forget())  # users' roles come from it

    async def loop() -> None:
        n = 0
        while True:
            await asyncio.sleep(METADATA_POLL_S)
            try:
                if await state.refresh(store) or (n := n + 1) % TRIM_EVERY == 0:
                    trim()  # an old index, an import's parsed body: back to the kernel
            except Exception:  # keep serving with the old index
                log.exception("metadata reload failed")
    task = asyncio.create_task(loop())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
