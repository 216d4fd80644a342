"""The sync client's view of a real link cut: the route check, the cut counter, and TCP's
retransmission timeout kept short while the route is gone (tested on a real veth)."""

from __future__ import annotations

import socket

import pytest

from appliance.sync.client import ROUTE_DOWN_RTO_MS, TCP_RTO_MAX_MS, NationalClient

from .harness import NetnsLink


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
