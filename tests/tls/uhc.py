"""A UHC in network namespaces: the hub, a tablet on the hub's LAN, and the hub's uplink to
"the internet" (the root namespace, where national's fleet service, ACME CA and DNS run).

::

    tablet ns                 hub ns                         root ns ("internet")
    wlan0 10.219.1.2/24 ---- eth0 10.219.1.1/24
                              wan0 10.219.2.2/24 ---------- <veth> 10.219.2.1/24

The tablet's only resolver is the hub (``/etc/netns/<tablet>/resolv.conf``, which
``ip netns exec`` mounts over ``/etc/resolv.conf``) and it has no route beyond the LAN.
Neither namespace has a default route, so nothing can leave the machine; cutting the
uplink is ``ip link set wan0 down`` in the hub namespace. Everything is removed on exit,
even after a failure.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

HUB_LAN, TABLET_LAN = "10.219.1.1", "10.219.1.2"
HUB_WAN, INTERNET = "10.219.2.2", "10.219.2.1"


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20)
    if check and res.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {res.stderr.strip()}")
    return res


@dataclass
class Uhc:
    hub_ns: str
    tablet_ns: str
    root_dev: str

    def in_hub(self, cmd: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", self.hub_ns, *cmd]

    def in_tablet(self, cmd: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", self.tablet_ns, *cmd]

    def cut_internet(self) -> None:
        _ip("-n", self.hub_ns, "link", "set", "wan0", "down")

    def restore_internet(self) -> None:
        _ip("-n", self.hub_ns, "link", "set", "wan0", "up")


@contextlib.contextmanager
def uhc() -> Iterator[Uhc]:
    tag = f"{os.getpid() % 100000}"
    net = Uhc(f"hubtest-uhc-{tag}", f"hubtest-tab-{tag}", f"htw{tag}")
    resolv = Path("/etc/netns") / net.tablet_ns
    try:
        for ns in (net.hub_ns, net.tablet_ns):
            _ip("netns", "add", ns)
            _ip("-n", ns, "link", "set", "lo", "up")
        # the LAN: hub eth0 <-> tablet wlan0 (made in the hub namespace, one end moved)
        _ip("-n", net.hub_ns, "link", "add", "eth0", "type", "veth", "peer", "name", "wlan0",
            "netns", net.tablet_ns)
        _ip("-n", net.hub_ns, "addr", "add", f"{HUB_LAN}/24", "dev", "eth0")
        _ip("-n", net.tablet_ns, "addr", "add", f"{TABLET_LAN}/24", "dev", "wlan0")
        _ip("-n", net.hub_ns, "link", "set", "eth0", "up")
        _ip("-n", net.tablet_ns, "link", "set", "wlan0", "up")
        # the uplink: hub wan0 <-> root namespace
        _ip("link", "add", net.root_dev, "type", "veth", "peer", "name", "wan0",
            "netns", net.hub_ns)
        _ip("addr", "add", f"{INTERNET}/24", "dev", net.root_dev)
        _ip("link", "set", net.root_dev, "up")
        _ip("-n", net.hub_ns, "addr", "add", f"{HUB_WAN}/24", "dev", "wan0")
        _ip("-n", net.hub_ns, "link", "set", "wan0", "up")
        resolv.mkdir(parents=True, exist_ok=True)
        (resolv / "resolv.conf").write_text(f"nameserver {HUB_LAN}\noptions timeout:2\n")
        yield net
    finally:
        _ip("link", "del", net.root_dev, check=False)
        for ns in (net.hub_ns, net.tablet_ns):
            _ip("netns", "del", ns, check=False)
        shutil.rmtree(resolv, ignore_errors=True)
