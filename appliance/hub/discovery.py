"""Zeroconf advertisement so laptops find the hub as ``hub.local`` and mDNS browsers list it."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator

import psutil
from aiohttp import web
from zeroconf import IPVersion, ServiceInfo
from zeroconf.asyncio import AsyncZeroconf

from .. import __version__

log = logging.getLogger(__name__)

SERVICE_TYPES = ("_http._tcp.local.", "_dhis2._tcp.local.")


def lan_addresses(host: str) -> list[str]:
    """IPv4 addresses to advertise: the bound one, or every non-loopback one when bound to all."""
    if host not in ("0.0.0.0", "", "::"):
        return [host]
    out = []
    for addrs in psutil.net_if_addrs().values():
        for a in addrs:
            if a.family == socket.AF_INET and not a.address.startswith("127."):
                out.append(a.address)
    return out or ["127.0.0.1"]


def service_infos(name: str, hub_id: str, host: str, port: int,
                  hostname: str = "hub.local.") -> list[ServiceInfo]:
    addrs = [socket.inet_aton(a) for a in lan_addresses(host)]
    props = {"path": "/", "api": "/api", "version": __version__, "hub_id": hub_id,
             "dhis2": "2.41"}
    return [ServiceInfo(t, f"{name}.{t}", addresses=addrs, port=port, properties=props,
                        server=hostname) for t in SERVICE_TYPES]


def advertiser(name: str, hub_id: str, host: str, port: int, interfaces: list[str] | None = None):
    """A cleanup_ctx that registers the services for the app's lifetime."""
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        azc: AsyncZeroconf | None = None
        infos = service_infos(name, hub_id, host, port)
        try:
            azc = AsyncZeroconf(ip_version=IPVersion.V4Only,
                                interfaces=interfaces or lan_addresses(host))
            for info in infos:
                await azc.async_register_service(info, allow_name_change=True)
            log.info("advertised %s on mDNS at %s:%s", name, lan_addresses(host), port)
        except OSError as e:  # no multicast on this network: serve anyway
            log.warning("zeroconf advertisement failed: %s", e)
        yield
        if azc is not None:
            try:
                # each call returns the goodbye broadcast as a task: await it, or async_close()
                # cancels it and browsers keep listing a hub that is gone until the TTL ends
                await asyncio.gather(*[await azc.async_unregister_service(info)
                                       for info in infos])
            finally:
                await azc.async_close()
    return ctx
