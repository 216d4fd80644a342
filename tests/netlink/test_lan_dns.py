"""The hub's LAN resolver, for real: ``appliance dns`` (dnsmasq) in a hub namespace, clients
in their own namespaces, a real upstream DNS server behind a link the test cuts.

Issue 12: a tablet resolves ``https://<upazila>.hub.<domain>`` to the hub's LAN address
with the national link up and with it down; other names go upstream.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from .harness import netns_available
from .lan import HUB_ADDR, REPO, Lan, cleanup_stale_lans, start_hub_dns, wait_dns

NAME = "ramu.hub.dghs.gov.bd"
UPSTREAM_RECORDS = {
    "www.example.org": "198.18.0.10",  # an ordinary internet name
    "teknaf.hub.dghs.gov.bd": "10.44.0.1",  # another hub: private by design, allowed
    "evil.example.org": "10.1.2.3",  # a public name pointing into the LAN: DNS rebinding
    NAME: "10.200.0.9",  # national's public A record, stale: the hub must not ask
}
pytestmark = [pytest.mark.netns, pytest.mark.slow, pytest.mark.timeout(120)]


@pytest.fixture(scope="module", autouse=True)
def _netns() -> None:
    ok, why = netns_available()
    if not ok:
        pytest.fail(f"network namespaces unavailable: {why}")  # CI runs as root
    cleanup_stale_lans()


def hub_toml(path: Path, **dns: object) -> Path:
    lines = ["[tls]", f'name = "{NAME}"', "[dns]", "enabled = true"]
    for k, v in {"interface": "br0", "upstream": ["10.99.0.2"], **dns}.items():
        if isinstance(v, list):
            lines.append(f"{k} = [{', '.join(repr(str(x)).replace(chr(39), chr(34)) for x in v)}]")
        elif isinstance(v, int):
            lines.append(f"{k} = {v}")
        else:
            lines.append(f'{k} = "{v}"')
    path.write_text("\n".join(lines) + "\n")
    return path


def query(lan: Lan, client: str, name: str, rdtype: str = "A",
          timeout: float = 2.0) -> tuple[dns.message.Message, float]:
    """One UDP query from the client's namespace to the hub: (answer, seconds it took)."""
    t0 = time.monotonic()
    with lan.enter(lan.ns(client)):
        ans = dns.query.udp(dns.message.make_query(name, rdtype), lan.hub_addr, timeout=timeout)
    return ans, time.monotonic() - t0


def addrs(msg: dns.message.Message) -> list[str]:
    return sorted(r.address for rrset in msg.answer if rrset.rdtype == dns.rdatatype.A
                  for r in rrset)


@pytest.fixture
def lan(tmp_path: Path) -> Iterator[Lan]:
    with Lan({"tablet": "10.77.0.10", "laptop": "10.77.0.11"}) as lan:
        lan.start_upstream_dns(UPSTREAM_RECORDS, tmp_path / "upstream.log")
        yield lan


def _dirs(tmp_path: Path) -> tuple[Path, Path]:
    data, run = tmp_path / "data", tmp_path / "run"
    data.mkdir()
    return data, run


def test_hub_answers_its_name_offline_and_forwards_the_rest(lan: Lan, tmp_path: Path) -> None:
    data, run = _dirs(tmp_path)
    log = tmp_path / "dns.log"
    proc = start_hub_dns(lan, hub_toml(tmp_path / "hub.toml"), data, run, log, name=NAME)
    assert (run / "dnsmasq.conf").exists()
    # `appliance dns` became dnsmasq (exec): supervisord's signals reach it directly
    assert os.readlink(f"/proc/{proc.pid}/exe") == "/usr/sbin/dnsmasq", log.read_text()

    # the hub's own name: its LAN address, from the hub itself (not national's stale record)
    ans, _ = query(lan, "tablet", NAME)
    assert addrs(ans) == [HUB_ADDR]
    assert ans.answer[0].ttl <= 10  # short: an address change reaches tablets soon
    # other names go upstream
    assert addrs(query(lan, "laptop", "www.example.org")[0]) == ["198.18.0.10"]
    # another hub's name may be private (by design); a random public name may not
    assert addrs(query(lan, "tablet", "teknaf.hub.dghs.gov.bd")[0]) == ["10.44.0.1"]
    assert addrs(query(lan, "tablet", "evil.example.org")[0]) == []
    # AAAA for the hub's name: empty, at once (Android asks A and AAAA together)
    ans, took = query(lan, "tablet", NAME, "AAAA")
    assert ans.rcode() == dns.rcode.NOERROR and not ans.answer and took < 0.5

    # the internet side goes down: the hub's name still resolves, without a timeout
    lan.cut_upstream()
    for rdtype in ("A", "AAAA"):
        ans, took = query(lan, "tablet", NAME, rdtype)
        assert took < 0.5, f"{rdtype} took {took:.2f}s with the upstream cut"
        assert addrs(ans) == ([HUB_ADDR] if rdtype == "A" else [])
    # a name never asked before cannot be answered now (it is not made up)
    with pytest.raises(dns.exception.Timeout):
        ans, _ = query(lan, "tablet", "new.example.org", timeout=1.5)
        if ans.rcode() != dns.rcode.NOERROR or not ans.answer:
            raise dns.exception.Timeout  # a SERVFAIL is as good as a timeout here
    lan.restore_upstream()
    assert addrs(query(lan, "laptop", "www.example.org")[0]) == ["198.18.0.10"]

    # the hub's LAN address changes (a new lease from the UHC router): the answer follows
    lan.set_hub_address("10.77.0.2")
    deadline = time.monotonic() + 10
    while True:
        got = addrs(query(lan, "tablet", NAME)[0])
        if got == ["10.77.0.2"] or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert got == ["10.77.0.2"], log.read_text()


def test_lan_interface_that_appears_after_the_start(lan: Lan, tmp_path: Path) -> None:
    """wlan0 exists only once the Wi-Fi driver and hostapd are up, maybe after us:
    dnsmasq waits for it (bind-dynamic) instead of exiting."""
    hub = ["ip", "-n", lan.hub_ns, "link", "set"]
    subprocess.run([*hub, "br0", "down"], check=True)
    subprocess.run([*hub, "br0", "name", "brlater"], check=True)
    data, run = _dirs(tmp_path)
    log = tmp_path / "dns.log"
    cmd = [sys.executable, "-m", "appliance.cli", "dns", "--config",
           str(hub_toml(tmp_path / "hub.toml")), "--data-dir", str(data), "--run-dir", str(run)]
    proc = lan.run(lan.hub_ns, cmd, cwd=REPO, stdout=log.open("ab"), stderr=subprocess.STDOUT)
    time.sleep(2)
    assert proc.poll() is None, log.read_text()
    assert "br0 has no IPv4 address yet" in log.read_text()
    subprocess.run([*hub, "brlater", "name", "br0"], check=True)
    subprocess.run([*hub, "br0", "up"], check=True)
    wait_dns(lan, lan.hub_ns, lan.hub_addr, NAME, proc=proc, log=log)
    assert addrs(query(lan, "tablet", NAME)[0]) == [HUB_ADDR]


def test_fixed_address_mode(lan: Lan, tmp_path: Path) -> None:
    data, run = _dirs(tmp_path)
    toml = hub_toml(tmp_path / "hub.toml", address="10.77.0.1")
    start_hub_dns(lan, toml, data, run, tmp_path / "dns.log", name=NAME)
    assert addrs(query(lan, "tablet", NAME)[0]) == ["10.77.0.1"]
    assert "host-record=ramu.hub.dghs.gov.bd,10.77.0.1" in (run / "dnsmasq.conf").read_text()


def test_the_system_resolver_of_a_client_uses_the_hub(lan: Lan, tmp_path: Path) -> None:
    """glibc in a client namespace whose resolv.conf names the hub: what the tablet
    end-to-end test relies on (getaddrinfo, not dnspython)."""
    data, run = _dirs(tmp_path)
    start_hub_dns(lan, hub_toml(tmp_path / "hub.toml"), data, run, tmp_path / "dns.log",
                  name=NAME)
    assert lan.getent("tablet", NAME) == [HUB_ADDR]
    assert lan.getent("laptop", "www.example.org") == ["198.18.0.10"]
    lan.cut_upstream()
    t0 = time.monotonic()
    assert lan.getent("tablet", NAME) == [HUB_ADDR]
    assert time.monotonic() - t0 < 1.5


def test_dhcp_in_access_point_mode(tmp_path: Path) -> None:
    """The hub as the UHC's access point: a client with no address gets a lease from the
    hub's dnsmasq, with the hub as its DNS server and no default gateway."""
    busybox = shutil.which("busybox")
    if busybox is None:
        pytest.fail("busybox (udhcpc) missing: scripts/install-system-deps test")
    data, run = _dirs(tmp_path)
    toml = hub_toml(tmp_path / "hub.toml", dhcp_range="10.77.0.100,10.77.0.150,1h")
    out = tmp_path / "lease.env"
    script = tmp_path / "udhcpc.sh"
    # udhcpc calls this with "deconfig", then "bound" and the lease in its environment
    script.write_text(f'#!/bin/sh\n[ "$1" = bound ] && env > {out}\nexit 0\n')
    script.chmod(0o755)
    with Lan({"phone": None}) as lan:
        lan.start_upstream_dns(UPSTREAM_RECORDS, tmp_path / "upstream.log")
        start_hub_dns(lan, toml, data, run, tmp_path / "dns.log", name=NAME)
        res = lan.exec(lan.ns("phone"), [busybox, "udhcpc", "-f", "-q", "-n", "-t", "5",
                                         "-T", "1", "-i", "eth0", "-s", str(script)])
        assert res.returncode == 0, res.stdout + res.stderr
        env = dict(line.split("=", 1) for line in out.read_text().splitlines() if "=" in line)
        assert env["dns"].split() == [HUB_ADDR]
        assert 100 <= int(env["ip"].rsplit(".", 1)[1]) <= 150
        assert "router" not in env  # a LAN whose only service is the hub: no gateway
        assert env["lease"] == "3600"
        leases = (data / "dnsmasq.leases").read_text()
        assert env["ip"] in leases
        # with that lease, the phone resolves the hub's name through the hub
        subprocess.run(["ip", "-n", lan.ns("phone"), "addr", "add", f"{env['ip']}/24", "dev",
                        "eth0"], check=True)
        lan.set_resolver("phone", env["dns"])
        assert lan.getent("phone", NAME) == [HUB_ADDR]


def _service_user_dir(tmp_path: Path) -> Path:
    # pytest's tmp dirs are 0700 root: a non-root dnsmasq could not read its conf there
    base = Path(f"/tmp/hubdns-{os.getpid()}-{tmp_path.name}")
    base.mkdir(mode=0o755)
    return base


def test_runs_as_the_service_user_with_only_cap_net_bind_service(lan: Lan,
                                                                 tmp_path: Path) -> None:
    """As upazila-hub.service runs it: not root, CAP_NET_BIND_SERVICE as an ambient
    capability and nothing else. DNS on port 53 works; DHCP is refused with a reason,
    because the system dnsmasq holds no CAP_NET_ADMIN."""
    base = _service_user_dir(tmp_path)
    try:
        for d in ("data", "run"):
            (base / d).mkdir()
            shutil.chown(base / d, "nobody", "nogroup")
        toml = hub_toml(base / "hub.toml")
        toml.chmod(0o644)
        as_hub = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                  "--inh-caps=-all,+net_bind_service", "--ambient-caps=+net_bind_service",
                  "--bounding-set=-all,+net_bind_service", "--"]
        log = tmp_path / "dns.log"
        cmd = [*as_hub, sys.executable, "-m", "appliance.cli", "dns", "--config", str(toml),
               "--data-dir", str(base / "data"), "--run-dir", str(base / "run")]
        proc = lan.run(lan.hub_ns, cmd, cwd=REPO, stdout=log.open("ab"),
                       stderr=subprocess.STDOUT)
        wait_dns(lan, lan.hub_ns, lan.hub_addr, NAME, proc=proc, log=log)
        assert os.stat(f"/proc/{proc.pid}").st_uid == 65534
        assert "user=" not in (base / "run" / "dnsmasq.conf").read_text()
        assert addrs(query(lan, "tablet", NAME)[0]) == [HUB_ADDR]

        # DHCP as the service user with the system dnsmasq: refused before it starts
        toml = hub_toml(base / "dhcp.toml", dhcp_range="10.77.0.100,10.77.0.150,1h")
        toml.chmod(0o644)
        res = lan.exec(lan.hub_ns, [*cmd[: cmd.index("--config") + 1], str(toml),
                                    *cmd[cmd.index("--config") + 2:], "--check"])
        assert res.returncode == 1
        assert "needs /usr/sbin/dnsmasq to hold CAP_NET_ADMIN" in res.stderr, res.stderr
    finally:
        shutil.rmtree(base)


def test_dhcp_as_the_service_user_with_the_images_dnsmasq(tmp_path: Path) -> None:
    """The image's way to DHCP without root: a copy of dnsmasq with file capabilities
    (image/chroot-setup.sh), run by the service user whose bounding set allows them."""
    busybox = shutil.which("busybox")
    if busybox is None or shutil.which("setcap") is None:
        pytest.fail("busybox or setcap missing: scripts/install-system-deps test")
    base = _service_user_dir(tmp_path)
    try:
        for d in ("data", "run", "bin"):
            (base / d).mkdir()
            shutil.chown(base / d, "nobody", "nogroup")
        binary = base / "bin" / "dnsmasq"
        shutil.copy("/usr/sbin/dnsmasq", binary)
        binary.chmod(0o755)
        subprocess.run(["setcap", "cap_net_bind_service,cap_net_admin,cap_net_raw+ep",
                        str(binary)], check=True)
        toml = hub_toml(base / "hub.toml", dhcp_range="10.77.0.100,10.77.0.150,1h")
        toml.chmod(0o644)
        # upazila-hub.service: ambient NET_BIND_SERVICE, bounding set with NET_ADMIN/RAW
        as_hub = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                  "--inh-caps=-all,+net_bind_service", "--ambient-caps=+net_bind_service",
                  "--bounding-set=-all,+net_bind_service,+net_admin,+net_raw", "--"]
        cmd = [*as_hub, sys.executable, "-m", "appliance.cli", "dns", "--config", str(toml),
               "--data-dir", str(base / "data"), "--run-dir", str(base / "run"),
               "--dnsmasq", str(binary)]
        out = base / "lease.env"
        script = base / "udhcpc.sh"
        script.write_text(f'#!/bin/sh\n[ "$1" = bound ] && env > {out}\nexit 0\n')
        script.chmod(0o755)
        log = tmp_path / "dns.log"
        with Lan({"phone": None}, upstream=False) as lan:
            proc = lan.run(lan.hub_ns, cmd, cwd=REPO, stdout=log.open("ab"),
                           stderr=subprocess.STDOUT)
            wait_dns(lan, lan.hub_ns, lan.hub_addr, NAME, proc=proc, log=log)
            assert os.stat(f"/proc/{proc.pid}").st_uid == 65534
            res = lan.exec(lan.ns("phone"), [busybox, "udhcpc", "-f", "-q", "-n", "-t", "5",
                                             "-T", "1", "-i", "eth0", "-s", str(script)])
            assert res.returncode == 0, res.stdout + res.stderr + log.read_text()
            assert "dns=10.77.0.1" in out.read_text()
        leases = base / "data" / "dnsmasq.leases"
        assert stat.S_IMODE(leases.stat().st_mode) & 0o002 == 0
    finally:
        shutil.rmtree(base)


def test_lan_on_a_netns_link_hub(tmp_path: Path) -> None:
    """What the end-to-end tests do: the hub namespace is a NetnsLink's (national in the
    root namespace), the LAN and a tablet are added to it, and removed again after."""
    from .harness import NetnsLink

    data, run = _dirs(tmp_path)
    with NetnsLink(10_000) as link:
        with Lan({"tablet": "10.77.0.10"}, hub_ns=link.ns, upstream=False) as lan:
            toml = hub_toml(tmp_path / "hub.toml", upstream=[link.national_addr])
            start_hub_dns(lan, toml, data, run, tmp_path / "dns.log", name=NAME)
            assert lan.getent("tablet", NAME) == [HUB_ADDR]
            tablet = lan.ns("tablet")
        left = subprocess.run(["ip", "-n", link.ns, "-o", "link"], capture_output=True,
                              text=True, check=True).stdout
        assert "br0" not in left and "lan0" not in left  # the link's namespace is as it was
        assert tablet not in subprocess.run(["ip", "netns", "list"], capture_output=True,
                                            text=True).stdout
