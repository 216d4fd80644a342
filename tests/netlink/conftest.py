"""Fixtures for link-emulation tests and benches (see harness.py)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest

from .harness import FlappingProxy, NetnsLink, NetnsUnavailable, cleanup_stale

ProxyFactory = Callable[..., Awaitable[FlappingProxy]]


@pytest.fixture(scope="session", autouse=True)
def _netlink_stale_cleanup() -> None:
    # Leftovers from a crashed run would eat 10.213.x subnets; only dead pids' links go.
    if os.geteuid() == 0:
        cleanup_stale()


@pytest.fixture
def netns_link() -> Iterator[NetnsLink]:
    """A fresh hub namespace behind a 256 kbit/s link (both directions), removed after."""
    link = NetnsLink(256)
    try:
        link.__enter__()
    except NetnsUnavailable as exc:
        # Fail, never skip: CI runs as root, so this is a broken environment.
        pytest.fail(f"NetnsLink unavailable: {exc}")
    try:
        yield link
    finally:
        link.close()


@pytest.fixture
async def flapping_proxy() -> AsyncIterator[ProxyFactory]:
    """Factory: ``p = await flapping_proxy(host, port, every_s=..., rate=...)``; stopped after."""
    started: list[FlappingProxy] = []

    async def make(target_host: str, target_port: int, **kw: Any) -> FlappingProxy:
        proxy = await FlappingProxy(target_host, target_port, **kw).start()
        started.append(proxy)
        return proxy

    yield make
    for proxy in started:
        await proxy.stop()
