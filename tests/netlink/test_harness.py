"""The link harness is real: tbf caps both directions, cuts stall/reset TCP, nothing leaks."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from .conftest import ProxyFactory
from .harness import (
    DEV_PREFIX,
    NS_PREFIX,
    SAFETY_METRIC,
    FlappingProxy,
    NetnsLink,
    _b36,
    cleanup_stale,
)

pytestmark = pytest.mark.timeout(60)

KB = 1024

# Peer run inside the namespace (the "hub"). One line of command per connection:
#   sink      -> read to EOF, answer the byte count
#   source N  -> send N bytes, close
#   echo      -> echo to EOF
PEER = r"""
import socket, sys, threading
def handle(c):
    with c:
        f = c.makefile("rb")
        cmd = f.readline().split()
        if cmd[0] == b"sink":
            n = 0
            while d := f.read1(65536):
                n += len(d)
            c.sendall(b"%d\n" % n)
        elif cmd[0] == b"source":
            c.sendall(b"x" * int(cmd[1]))
        else:
            while d := f.read1(65536):
                c.sendall(d)
s = socket.create_server(("0.0.0.0", 0))
print(s.getsockname()[1], flush=True)
while True:
    c, _ = s.accept()
    threading.Thread(target=handle, args=(c,), daemon=True).start()
"""


async def start_peer(link: NetnsLink) -> int:
    proc = link.run([sys.executable, "-c", PEER], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 10)
    return int(line)


async def push(host: str, port: int, n: int) -> float:
    """Send n bytes to a sink; seconds until the sink confirmed all of them."""
    t = time.monotonic()
    r, w = await asyncio.open_connection(host, port)
    w.write(b"sink\n" + b"x" * n)
    w.write_eof()
    assert int(await r.readline()) == n
    w.close()
    return time.monotonic() - t


async def pull(host: str, port: int, n: int) -> float:
    """Fetch n bytes from a source; seconds until EOF."""
    t = time.monotonic()
    r, w = await asyncio.open_connection(host, port)
    w.write(b"source %d\n" % n)
    assert len(await r.read()) == n
    w.close()
    return time.monotonic() - t


def netns_names() -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


# ---------------------------------------------------------------------------- NetnsLink


@pytest.mark.netns
async def test_tbf_caps_both_directions(netns_link: NetnsLink) -> None:
    link = netns_link
    link.set_rate(64)
    port = await start_peer(link)
    n = 32 * KB
    expected = n * 8 / 64_000  # 4.1 s: payload alone, headers add ~5%
    before = link.bytes_counters()
    # Both directions at once: if either were uncapped it would finish in milliseconds.
    to_hub, from_hub = await asyncio.gather(
        push(link.hub_addr, port, n), pull(link.hub_addr, port, n)
    )
    wire = link.bytes_counters() - before
    for took in (to_hub, from_hub):
        assert 0.85 * expected < took < 1.5 * expected, (to_hub, from_hub, expected)
    # Byte counters see the payload plus headers, and nothing else (IPv6 chatter is off).
    assert n < wire.hub_rx_bytes < 1.25 * n, wire
    assert n < wire.hub_tx_bytes < 1.25 * n, wire


@pytest.mark.netns
async def test_set_rate_changes_the_cap(netns_link: NetnsLink) -> None:
    link = netns_link  # 256 kbit/s
    port = await start_peer(link)
    slow = await push(link.hub_addr, port, 32 * KB)  # ~1.0 s
    link.set_rate(2048)
    fast = await pull(link.hub_addr, port, 32 * KB)  # ~0.13 s
    assert 0.8 < slow < 1.6, slow
    assert fast < slow / 3, (slow, fast)


@pytest.mark.netns
async def test_down_stalls_transfer_and_times_out_connects_up_restores(
    netns_link: NetnsLink,
) -> None:
    link = netns_link
    port = await start_peer(link)
    national = await asyncio.start_server(lambda r, w: w.close(), link.national_addr, 0)
    nat_port = national.sockets[0].getsockname()[1]
    transfer = asyncio.create_task(push(link.hub_addr, port, 48 * KB))  # ~1.5 s when up
    await asyncio.sleep(0.4)

    link.down()
    assert link.is_down
    frozen = link.bytes_counters()
    # national -> hub: the SYN vanishes, like a modem that dropped off the network.
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(asyncio.open_connection(link.hub_addr, port), 0.6)
    # hub -> national: the hub's interface is gone, so it knows at once.
    with link.enter(), socket.socket() as s, pytest.raises(OSError) as err:
        s.settimeout(2)
        s.connect((link.national_addr, nat_port))
    assert err.value.errno == errno.ENETUNREACH
    await asyncio.sleep(0.5)
    assert not transfer.done()  # stalled, not failed
    assert link.bytes_counters() == frozen  # not one byte crossed

    link.up()
    took = await asyncio.wait_for(transfer, 10)  # TCP retransmits and finishes
    assert took > 1.5
    assert link.bytes_counters().hub_rx_bytes > frozen.hub_rx_bytes
    r, w = await asyncio.wait_for(asyncio.open_connection(link.hub_addr, port), 2)
    w.close()
    national.close()


@pytest.mark.netns
async def test_blackhole_down_times_out_both_ways(netns_link: NetnsLink) -> None:
    link = netns_link
    port = await start_peer(link)
    national = await asyncio.start_server(lambda r, w: w.close(), link.national_addr, 0)
    nat_port = national.sockets[0].getsockname()[1]
    link.down(mode="blackhole")
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(asyncio.open_connection(link.hub_addr, port), 0.4)
    with link.enter(), socket.socket() as s, pytest.raises(TimeoutError):
        s.settimeout(0.4)
        s.connect((link.national_addr, nat_port))
    link.up()
    r, w = await asyncio.wait_for(asyncio.open_connection(link.hub_addr, port), 2)
    w.close()
    national.close()


@pytest.mark.netns
async def test_flap_counts_cuts_and_tcp_survives(netns_link: NetnsLink) -> None:
    link = netns_link  # 256 kbit/s
    port = await start_peer(link)
    t0 = time.monotonic()
    # Cuts at 1.0 s and 2.0 s. Periods shorter than TCP's backed-off RTO (~1 s here, the tbf
    # queue inflates RTT) make kernel TCP crawl, so keep the up time >= 0.7 s in tests.
    flapper = link.flap(every_s=1.0, down_s=0.3)
    try:
        took = await asyncio.wait_for(push(link.hub_addr, port, 48 * KB), 20)  # 1.5 s if up
        await asyncio.sleep(max(0.0, 2.4 - (time.monotonic() - t0)))
        elapsed = time.monotonic() - t0
    finally:
        flapper.stop()
    assert took > 1.5 + 0.3  # it went through at least one cut and still completed
    assert flapper.cuts >= 2
    assert abs(flapper.cuts - int(elapsed / 1.0)) <= 1, (flapper.cuts, elapsed)
    assert abs(flapper.dead_time_s - 0.3 * flapper.cuts) < 0.1 * flapper.cuts
    assert not link.is_down  # stop() leaves the link up
    assert await pull(link.hub_addr, port, 1 * KB) < 2


@pytest.mark.netns
def test_enter_makes_hub_side_sockets(netns_link: NetnsLink) -> None:
    link = netns_link
    with socket.create_server((link.national_addr, 0)) as srv:
        with link.enter():
            hub_sock = socket.socket()  # lives in the namespace from now on
        before = link.bytes_counters()
        with hub_sock:
            hub_sock.settimeout(5)
            hub_sock.connect(srv.getsockname())
            conn, peer = srv.accept()
            assert peer[0] == link.hub_addr  # arrived over the veth, from the hub address
            hub_sock.sendall(b"y" * 4000)
            got = 0
            with conn:
                while got < 4000:
                    got += len(conn.recv(65536))
        assert (link.bytes_counters() - before).hub_tx_bytes > 4000
    # The calling thread is back in the root namespace.
    with socket.create_server(("127.0.0.1", 0)) as srv2, socket.socket() as c:
        c.connect(srv2.getsockname())


@pytest.mark.netns
def test_cleanup_on_exception_and_stale_leftovers() -> None:
    with pytest.raises(RuntimeError, match="boom"), NetnsLink(64) as link:
        ns, dev, subnet = link.ns, link.root_dev, str(link.subnet)
        sleeper = link.run(["sleep", "60"])
        raise RuntimeError("boom")
    assert ns not in netns_names()
    assert not Path("/sys/class/net", dev).exists()
    assert sleeper.poll() is not None
    routes = subprocess.run(
        ["ip", "route", "show", "type", "unreachable"], capture_output=True, text=True
    ).stdout
    assert subnet not in routes

    # A crashed run: its pid is dead, its namespace, veth and fallback route remain.
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale_ns, stale_dev = f"{NS_PREFIX}{dead.pid}-0", f"{DEV_PREFIX}{_b36(dead.pid)}-0"
    stale_net = "10.213.255.252/30"
    subprocess.run(["ip", "netns", "add", stale_ns], check=True)
    subprocess.run(
        [
            "ip",
            "link",
            "add",
            stale_dev,
            "type",
            "veth",
            "peer",
            "name",
            "uplink0",
            "netns",
            stale_ns,
        ],
        check=True,
    )
    subprocess.run(
        ["ip", "route", "add", "unreachable", stale_net, "metric", str(SAFETY_METRIC)], check=True
    )
    removed = cleanup_stale()
    assert f"netns {stale_ns}" in removed
    assert f"route unreachable {stale_net}" in removed
    assert stale_ns not in netns_names()
    assert not Path("/sys/class/net", stale_dev).exists()


# ------------------------------------------------------------------------ FlappingProxy


class Target:
    """In-process target speaking the PEER protocol; records resets it sees."""

    def __init__(self) -> None:
        self.resets = 0
        self.server: asyncio.base_events.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def handle(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            cmd = (await r.readline()).split()
            if cmd and cmd[0] == b"sink":
                w.write(b"%d\n" % len(await r.read()))
            elif cmd and cmd[0] == b"source":
                w.write(b"x" * int(cmd[1]))
            else:
                while data := await r.read(65536):
                    w.write(data)
                    await w.drain()
            await w.drain()
            w.close()
        except ConnectionResetError:
            self.resets += 1

    def close(self) -> None:
        if self.server is not None:
            self.server.close()


async def echo_once(r: asyncio.StreamReader, w: asyncio.StreamWriter, msg: bytes) -> None:
    w.write(msg)
    await w.drain()
    assert await r.readexactly(len(msg)) == msg


async def test_proxy_resets_live_connections_and_refuses_while_down(
    flapping_proxy: ProxyFactory,
) -> None:
    target = Target()
    proxy = await flapping_proxy("127.0.0.1", await target.start(), every_s=0.6, down_s=0.3)
    r, w = await asyncio.open_connection("127.0.0.1", proxy.port)
    await w.drain()
    w.write(b"echo\n")
    t0 = time.monotonic()
    with pytest.raises(ConnectionResetError):
        while time.monotonic() - t0 < 3:
            await echo_once(r, w, b"ping")
            await asyncio.sleep(0.05)
    assert time.monotonic() - t0 < 1.0  # the first cut is at 0.6 s
    with pytest.raises(ConnectionRefusedError):  # inside the 0.3 s down window
        await asyncio.open_connection("127.0.0.1", proxy.port)
    await asyncio.sleep(0.35)
    r, w = await asyncio.open_connection("127.0.0.1", proxy.port)
    w.write(b"echo\n")
    await echo_once(r, w, b"back")
    w.close()
    st = proxy.stats()
    assert st.cuts >= 1 and st.connections_reset >= 1
    assert 0.25 < st.dead_time_s < 0.45 * st.cuts
    assert target.resets >= 1  # the national side saw the reset too
    target.close()


async def test_proxy_passes_a_client_reset_on_to_the_target(
    flapping_proxy: ProxyFactory,
) -> None:
    target = Target()
    proxy = await flapping_proxy("127.0.0.1", await target.start())
    r, w = await asyncio.open_connection("127.0.0.1", proxy.port)
    w.write(b"echo\n")
    await echo_once(r, w, b"x")
    sock = w.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    w.transport.abort()  # the client's side drops hard
    for _ in range(100):
        if target.resets and proxy.stats().live == 0:
            break
        await asyncio.sleep(0.01)
    assert target.resets == 1 and proxy.stats().live == 0
    target.close()


async def test_proxy_rate_limits_each_direction(flapping_proxy: ProxyFactory) -> None:
    target = Target()
    proxy = await flapping_proxy("127.0.0.1", await target.start(), rate=16_000)
    n = 32_000  # 2 s each way at 16 kB/s
    up, down = await asyncio.gather(
        push("127.0.0.1", proxy.port, n), pull("127.0.0.1", proxy.port, n)
    )
    for took in (up, down):
        assert 1.7 < took < 3.0, (up, down)
    st = proxy.stats()
    assert st.bytes_up >= n and st.bytes_down >= n
    target.close()


async def test_proxy_stall_mode_holds_bytes_without_reset(flapping_proxy: ProxyFactory) -> None:
    target = Target()
    proxy = await flapping_proxy("127.0.0.1", await target.start(), mode="stall")
    r, w = await asyncio.open_connection("127.0.0.1", proxy.port)
    w.write(b"echo\n")
    await echo_once(r, w, b"a")
    await proxy.cut(down_s=0.5)
    w.write(b"b")
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(r.readexactly(1), 0.3)
    assert await asyncio.wait_for(r.readexactly(1), 2) == b"b"  # resumes on the same socket
    w.close()
    assert proxy.stats().connections_reset == 0
    target.close()


async def test_proxy_delay_adds_round_trip(flapping_proxy: ProxyFactory) -> None:
    target = Target()
    proxy = await flapping_proxy("127.0.0.1", await target.start(), delay_s=0.1)
    r, w = await asyncio.open_connection("127.0.0.1", proxy.port)
    w.write(b"echo\n")
    t = time.monotonic()
    await echo_once(r, w, b"ping")
    assert 0.19 < time.monotonic() - t < 0.5
    w.close()
    target.close()


def test_threaded_proxy_from_sync_code() -> None:
    with socket.create_server(("127.0.0.1", 0)) as srv:

        def echo() -> None:
            conn, _ = srv.accept()
            with conn, contextlib.suppress(OSError):
                while data := conn.recv(65536):
                    conn.sendall(data)

        threading.Thread(target=echo, daemon=True).start()
        with (
            FlappingProxy.thread("127.0.0.1", srv.getsockname()[1]) as p,
            socket.create_connection(("127.0.0.1", p.port), timeout=5) as c,
        ):
            c.sendall(b"hello")
            assert c.recv(5) == b"hello"
            p.cut()
            with pytest.raises(ConnectionResetError):
                c.sendall(b"again")
                c.recv(5)
            assert p.stats().connections_reset == 1


@pytest.mark.netns
def test_no_namespace_left_behind() -> None:
    # Runs last in this file: every link above must have removed its namespace.
    mine = [n for n in netns_names() if n.startswith(f"{NS_PREFIX}{os.getpid()}-")]
    assert mine == []
