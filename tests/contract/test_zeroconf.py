"""A real ``appliance hub`` process advertises itself over mDNS, and python-zeroconf finds it.

The hub is bound to 127.0.0.1, so it must advertise on the loopback interface only (and
resolve to 127.0.0.1): nothing may leave the machine. The browser here is bound to 127.0.0.1 too.

Multicast on loopback: in this sandbox ``lo`` has no MULTICAST flag
(``<LOOPBACK,UP,LOWER_UP>``), and mDNS over it works all the same. mDNS uses 224.0.0.251, a
link-local group (224.0.0.0/24); Linux routes such a packet to the socket's
``IP_MULTICAST_IF`` device without checking the device's MULTICAST flag, and ``lo`` loops it
back to every socket that joined the group on 127.0.0.1 (joining does not check the flag
either). The ``loopback_mdns`` fixture checks that with an in-process probe first and, only if
the probe fails while ``lo`` lacks MULTICAST and we are root, sets the flag for the module and
restores it afterwards; otherwise it skips with the reason. (A network namespace, the last
resort, has not been needed.)
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from zeroconf import IPVersion, ServiceBrowser, ServiceListener, Zeroconf

from tests.conftest import REPO, free_port

SERVICE_TYPES = ("_http._tcp.local.", "_dhis2._tcp.local.")
IFF_MULTICAST = 0x1000
MDNS_GROUP = "224.0.0.251"
FOUND_WITHIN_S = 5.0


class Seen(ServiceListener):
    """Collects (type, name) events from a ServiceBrowser thread."""

    def __init__(self) -> None:
        self.added: set[tuple[str, str]] = set()
        self.removed: set[tuple[str, str]] = set()
        self.changed = threading.Condition()

    def add_service(self, zc: Zeroconf, type_: str, name: str) -> None:
        with self.changed:
            self.added.add((type_, name))
            self.changed.notify_all()

    def remove_service(self, zc: Zeroconf, type_: str, name: str) -> None:
        with self.changed:
            self.removed.add((type_, name))
            self.changed.notify_all()

    def update_service(self, zc: Zeroconf, type_: str, name: str) -> None:
        pass

    def wait(self, wanted: set[tuple[str, str]], which: str, timeout: float) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: wanted <= getattr(self, which), timeout)


def loopback_zeroconf() -> Zeroconf:
    return Zeroconf(interfaces=["127.0.0.1"], ip_version=IPVersion.V4Only)


def lo_has_multicast() -> bool:
    flags = Path("/sys/class/net/lo/flags").read_text().strip()
    return bool(int(flags, 16) & IFF_MULTICAST)


def probe_loopback_mdns(timeout: float = 1.0) -> bool:
    """Can a datagram to the mDNS group, sent out of 127.0.0.1, reach a socket that joined the
    group on 127.0.0.1? The kernel path python-zeroconf takes, without its probing delays. The
    probe uses its own port, so no mDNS responder sees it, and it never leaves ``lo``."""
    token = secrets.token_bytes(16)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
        try:
            rx.bind(("", 0))
            rx.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                          socket.inet_aton(MDNS_GROUP) + socket.inet_aton("127.0.0.1"))
            tx.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("127.0.0.1"))
            tx.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
            tx.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
            tx.sendto(token, (MDNS_GROUP, rx.getsockname()[1]))
            rx.settimeout(timeout)
            while True:
                data, _ = rx.recvfrom(64)
                if data == token:
                    return True
        except OSError:  # includes the timeout
            return False


@pytest.fixture(scope="module")
def loopback_mdns() -> Iterator[None]:
    if probe_loopback_mdns():
        yield
        return
    if lo_has_multicast():
        pytest.skip("mDNS on 127.0.0.1 does not work here although lo has MULTICAST")
    if os.geteuid() != 0:
        pytest.skip("lo lacks MULTICAST and only root could set it (ip link set lo multicast on)")
    subprocess.run(["ip", "link", "set", "lo", "multicast", "on"], check=True)
    try:
        if not probe_loopback_mdns():
            pytest.skip("mDNS on 127.0.0.1 fails even with lo MULTICAST on")
        yield
    finally:
        subprocess.run(["ip", "link", "set", "lo", "multicast", "off"], check=True)


@pytest.fixture
def zeroconf_hub(tmp_path: Path, loopback_mdns: None) -> Iterator[tuple[str, str, int, Path,
                                                                       subprocess.Popen[bytes]]]:
    """``appliance hub --demo --host 127.0.0.1 --port P``, *with* zeroconf, under a unique id."""
    tag = secrets.token_hex(3)
    hub_id, name = f"hub-zc-{tag}", f"Zeroconf test {tag}"
    cfg = tmp_path / "hub.toml"
    cfg.write_text(f'[hub]\nid = "{hub_id}"\nname = "{name}"\n')
    port = free_port()
    log = tmp_path / "hub.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "appliance.cli", "hub", "--demo", "--host", "127.0.0.1",
             "--port", str(port), "--config", str(cfg), "--data-dir", str(tmp_path / "data")],
            stdout=out, stderr=subprocess.STDOUT, cwd=REPO,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                assert time.monotonic() < deadline, "hub did not start"
                time.sleep(0.05)
        yield hub_id, name, port, log, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


def test_hub_is_found_over_mdns(
        zeroconf_hub: tuple[str, str, int, Path, subprocess.Popen[bytes]]) -> None:
    hub_id, name, port, log, proc = zeroconf_hub
    wanted = {(t, f"{name}.{t}") for t in SERVICE_TYPES}
    zc = loopback_zeroconf()
    seen = Seen()
    browser = ServiceBrowser(zc, list(SERVICE_TYPES), seen)
    try:
        t0 = time.monotonic()
        assert seen.wait(wanted, "added", FOUND_WITHIN_S), (
            f"not found within {FOUND_WITHIN_S}s; saw {sorted(seen.added)}\n{log.read_text()}")
        found_after = time.monotonic() - t0
        addrs: set[tuple[str, int | None]] = set()
        for type_, full in sorted(wanted):
            info = zc.get_service_info(type_, full, timeout=3000)
            assert info is not None, full
            addrs |= {(a, info.port) for a in info.parsed_addresses()}
            assert info.port == port
            assert info.properties[b"hub_id"] == hub_id.encode()
            assert info.properties[b"api"] == b"/api" and info.properties[b"dhis2"] == b"2.41"
            # bound to 127.0.0.1: it must advertise that address and nothing else
            assert info.parsed_addresses() == ["127.0.0.1"]
            assert info.server == "hub.local."
        assert "advertised" in log.read_text() and "['127.0.0.1']" in log.read_text()

        # what the browser found is the hub: its unauthenticated ping answers
        assert addrs == {("127.0.0.1", port)}
        direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with direct.open(f"http://127.0.0.1:{port}/api/ping", timeout=5) as r:
            assert r.status == 200 and r.read() == b"pong"

        # a clean stop says goodbye, so browsers drop the hub at once
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        assert seen.wait(wanted, "removed", FOUND_WITHIN_S), sorted(seen.removed)
        assert found_after < FOUND_WITHIN_S
    finally:
        browser.cancel()
        zc.close()
