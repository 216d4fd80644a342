"""The sync client's view of a real link cut: the route check, the cut counter, and TCP's
retransmission timeout kept short while the route is gone (tested on a real veth)."""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
import time

import pytest

from appliance.sync.client import ROUTE_DOWN_RTO_MS, TCP_RTO_MAX_MS, NationalClient

from .harness import NetnsLink, image_sysctls


def test_route_loss_shortens_the_retransmission_timeout(netns_link: NetnsLink) -> None:
    srv = socket.socket()
    srv.bind((netns_link.national_addr, 0))
    srv.listen()
    port = srv.getsockname()[1]
    url = f"http://{netns_link.national_addr}:{port}"
    with netns_link.enter():
        client = NationalClient(url, token="t", rto_max_ms=1500)
        info = socket.getaddrinfo(netns_link.national_addr, port, type=socket.SOCK_STREAM)[0]
        sock = client._socket(info)
        if not client.rto_capped:
            sock.close()
            srv.close()
            pytest.skip("kernel before 6.15: no TCP_RTO_MAX_MS")
        sock.connect(info[4])

        def rto() -> int:
            return int(sock.getsockopt(socket.IPPROTO_TCP, TCP_RTO_MAX_MS))
        try:
            assert client.route_ok() is True and client.cut_epoch == 0 and rto() == 1500
            netns_link.down()
            assert client.route_ok() is False and client.cut_epoch == 1
            assert rto() == ROUTE_DOWN_RTO_MS  # retransmissions die here: retry often
            assert client.route_ok() is False and client.cut_epoch == 1  # one cut, once
            netns_link.up()
            assert client.route_ok() is True and rto() == 1500
            netns_link.down()
            assert client.route_ok() is False and client.cut_epoch == 2
        finally:
            netns_link.up()
            sock.close()
            srv.close()


def _snd_mss(sock: socket.socket) -> int:
    # struct tcp_info: eight u8 fields, then u32 rto, ato, snd_mss
    return int(struct.unpack_from("I", sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO,
                                                       104), 16)[0])


class _Sink:
    """National's end: accepts one connection and counts what arrives."""

    def __init__(self, addr: str) -> None:
        self.srv = socket.socket()
        self.srv.bind((addr, 0))
        self.srv.listen()
        self.port = self.srv.getsockname()[1]
        self.got = 0
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        conn, _ = self.srv.accept()
        with conn:
            while data := conn.recv(65536):
                self.got += len(data)

    def wait_for(self, n: int, timeout_s: float = 20.0) -> bool:
        deadline = time.monotonic() + timeout_s
        while self.got < n and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.got >= n


def _cut_and_write(link: NetnsLink, sink: _Sink, client: NationalClient | None,
                   seen_by_client: bool) -> tuple[int, socket.socket]:
    """Connect from the hub, send, cut, write more while cut; returns (MSS, socket)."""
    with link.enter():
        info = socket.getaddrinfo(link.national_addr, sink.port, type=socket.SOCK_STREAM)[0]
        sock = client._socket(info) if client else socket.socket()
        sock.connect(info[4])
    sock.sendall(b"x" * 20_000)
    assert sink.wait_for(20_000)
    link.down()
    if client is not None and seen_by_client:
        with link.enter():
            assert client.route_ok() is False
    time.sleep(0.5)  # the kernel moves the vanished route to its blackhole device lazily
    sock.setblocking(False)
    sock.send(b"y" * 8000)  # what the request writes next, while the link is cut
    time.sleep(0.2)
    return _snd_mss(sock), sock


def test_writes_after_a_cut_wait_in_full_size_segments(netns_link: NetnsLink) -> None:
    """The kernel re-points a vanished route at its blackhole device (MTU 68): a write
    then leaves as 36-byte segments that crawl through retransmission once the link is
    back. The client drops the stale route as soon as it sees the cut, so the write waits
    unsent at full size and arrives promptly after the link returns."""
    sink = _Sink(netns_link.national_addr)
    client = NationalClient(f"http://{netns_link.national_addr}:{sink.port}", token="t")
    mss, sock = _cut_and_write(netns_link, sink, client, seen_by_client=True)
    try:
        assert mss >= 1000, f"MSS fell to {mss} after the cut"
        time.sleep(1.0)
        netns_link.up()
        assert sink.wait_for(28_000, timeout_s=8.0), f"only {sink.got} bytes after the cut"
    finally:
        netns_link.up()
        sock.close()
        sink.srv.close()


def test_without_the_route_reset_the_kernel_cuts_segments_small(netns_link: NetnsLink) -> None:
    """The control for the test above: the same write with nobody dropping the route."""
    sink = _Sink(netns_link.national_addr)
    mss, sock = _cut_and_write(netns_link, sink, None, seen_by_client=False)
    try:
        assert mss < 100  # 36 on a stock kernel: the blackhole device's MTU 68, floored at 48
    finally:
        netns_link.up()
        sock.close()
        sink.srv.close()


def test_the_image_keeps_tcp_segments_usable_through_a_cut(netns_link: NetnsLink) -> None:
    """With the image's sysctls (tcp_min_snd_mss), even a write nobody protected keeps
    segments of at least the IPv4 default MSS through a cut."""
    settings = image_sysctls()
    assert ("net.ipv4.tcp_min_snd_mss", "536") in settings
    netns_link.sysctl(settings)
    sink = _Sink(netns_link.national_addr)
    mss, sock = _cut_and_write(netns_link, sink, None, seen_by_client=False)
    try:
        assert mss >= 500, f"MSS fell to {mss} after the cut"
    finally:
        netns_link.up()
        sock.close()
        sink.srv.close()


def test_the_client_hears_a_cut_from_netlink(netns_link: NetnsLink) -> None:
    """Nobody polls: the rtnetlink notification of the link going down reaches the client
    (which then drops its sockets' stale routes) within the event loop's next turn."""
    url = f"http://{netns_link.national_addr}:9"

    async def main() -> tuple[int, bool | None]:
        client = NationalClient(url, token="t")
        try:
            client.session()
            assert client.route_ok() is True
            await asyncio.to_thread(netns_link.down)
            for _ in range(40):
                if client.cut_epoch:
                    break
                await asyncio.sleep(0.025)
            seen = client.cut_epoch, client._route_was
            await asyncio.to_thread(netns_link.up)
            return seen
        finally:
            await client.close()

    with netns_link.enter():
        epoch, route = asyncio.run(main())
    assert (epoch, route) == (1, False)


def test_a_connection_cut_in_flight_resumes_as_the_route_returns(netns_link: NetnsLink) -> None:
    """What the request wrote while the link was cut goes out as soon as the client sees
    the route back, drawing the SACKs that recover the lost segments, instead of waiting
    for TCP's backed-off retransmission timer (seconds, on a kernel without the cap)."""
    sink = _Sink(netns_link.national_addr)
    client = NationalClient(f"http://{netns_link.national_addr}:{sink.port}", token="t",
                            rto_max_ms=0)  # the timer as kernels before 6.15 back it off
    with netns_link.enter():
        info = socket.getaddrinfo(netns_link.national_addr, sink.port,
                                  type=socket.SOCK_STREAM)[0]
        sock = client._socket(info)
        sock.connect(info[4])
    try:
        sock.sendall(b"x" * 20_000)
        assert sink.wait_for(20_000)
        sock.setblocking(False)
        sock.send(b"y" * 6000)  # in flight when the link drops: lost
        netns_link.down()
        with netns_link.enter():
            assert client.route_ok() is False
        sock.send(b"z" * 6000)  # written while cut: waits unsent
        time.sleep(3.0)
        netns_link.up()
        with netns_link.enter():
            assert client.route_ok() is True
        t_up = time.monotonic()
        assert sink.wait_for(32_000, timeout_s=10.0), f"only {sink.got} bytes arrived"
        assert time.monotonic() - t_up < 1.0, \
            f"the cut connection took {time.monotonic() - t_up:.1f}s to resume"
    finally:
        netns_link.up()
        sock.close()
        sink.srv.close()
