"""The national stand-in's aiohttp application."""

from __future__ import annotations

from aiohttp import web

from ..config import Config
from ..hub.app import dhis2_app
from ..hub.web import Handler, HubState
from ..store import Store
from ..store.datavalues import NATIONAL
from . import routes


@web.middleware
async def compress(request: web.Request, handler: Handler) -> web.StreamResponse:
    """National stand-in: gzip replies the client accepts, as a real DHIS2 behind nginx
    does; the hub's sync counts bytes on a 32-256 kbit/s uplink. Not used on the LAN."""
    response = await handler(request)
    if isinstance(response, web.Response) and response.body is not None and \
            "gzip" in request.headers.get("Accept-Encoding", "") and \
            len(response.body) > 512:  # type: ignore[arg-type]
        response.enable_compression()
    return response


def create_app(config: Config, store: Store) -> web.Application:
    return dhis2_app(
        config, store, state=HubState(), writes=NATIONAL, label="national",
        system_name=config.get("hub", "name") + " (national stand-in)",
        extra_middlewares=[compress],
        before_catch_all=routes.setup, metadata_import=routes.import_metadata)
