"""dnsmasq.conf from hub.toml: what is rendered, what real dnsmasq says of it (``--test``),
and the refusals, each naming the key. The namespace tests (the resolver answering for
real) are in tests/netlink/test_lan_dns.py."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from appliance import config as config_mod
from appliance.errors import ConfigError
from appliance.provisioning import dnsmasq
from appliance.provisioning.supervisord import Layout, programs, render

from .conftest import appliance

pytestmark = pytest.mark.skipif(shutil.which("dnsmasq") is None and
                                not dnsmasq.SYSTEM_DNSMASQ.exists(),
                                reason="dnsmasq-base not installed (scripts/install-system-deps)")


def cfg(tmp_path: Path, name: str = "ramu.hub.dghs.gov.bd", **dns: object) -> config_mod.Config:
    c = config_mod.load(None, tmp_path / "data")
    c.set("tls", "name", name)
    c.set("dns", "enabled", True)
    for k, v in {"interface": "wlan0", **dns}.items():
        c.set("dns", k, v)
    return c


def lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln and not ln.startswith("#")]


def dnsmasq_test(tmp_path: Path, text: str) -> subprocess.CompletedProcess[str]:
    conf = tmp_path / "dnsmasq.conf"
    conf.write_text(text)
    return subprocess.run([str(dnsmasq.SYSTEM_DNSMASQ), "--test", f"--conf-file={conf}"],
                          capture_output=True, text=True, timeout=30)


def test_interface_mode_with_upstream_servers(tmp_path: Path) -> None:
    text = dnsmasq.render(cfg(tmp_path, name="Ramu.Hub.DGHS.gov.bd.",
                              upstream=["192.168.1.1", "10.0.0.53#5353"]), user="dnsmasq")
    got = lines(text)
    for want in ("no-hosts", "bind-dynamic", "interface=wlan0", "port=53", "user=dnsmasq",
                 "log-facility=-", "pid-file=",
                 # the name follows wlan0's address; never forwarded upstream
                 "interface-name=ramu.hub.dghs.gov.bd,wlan0/4", "local=/ramu.hub.dghs.gov.bd/",
                 "domain-needed", "bogus-priv", "stop-dns-rebind",
                 "rebind-domain-ok=/hub.dghs.gov.bd/", "no-resolv", "server=192.168.1.1",
                 "server=10.0.0.53#5353", "cache-size=1000", "local-ttl=10"):
        assert want in got, f"{want!r} missing from\n{text}"
    assert not any(x.startswith(("dhcp", "resolv-file", "listen-address", "host-record"))
                   for x in got)
    res = dnsmasq_test(tmp_path, text)
    assert res.returncode == 0 and "syntax check OK" in res.stderr, res.stderr


def test_fixed_address_dhcp_and_the_systems_resolvers(tmp_path: Path) -> None:
    c = cfg(tmp_path, interface="", address="10.77.0.1")
    text = dnsmasq.render(c)
    got = lines(text)
    assert "listen-address=10.77.0.1" in got and "host-record=ramu.hub.dghs.gov.bd,10.77.0.1" \
        in got
    # no [dns] upstream: /etc/resolv.conf's servers, re-read when they change
    assert "resolv-file=/etc/resolv.conf" in got and "no-resolv" not in got
    assert not any(x.startswith("user=") for x in got)

    c = cfg(tmp_path, address="192.168.50.1", dhcp_range="192.168.50.20,192.168.50.250,12h",
            dhcp_router="192.168.50.254")
    got = lines(dnsmasq.render(c))
    assert "dhcp-range=192.168.50.20,192.168.50.250,12h" in got
    assert "dhcp-option=option:router,192.168.50.254" in got
    assert "dhcp-option=option:dns-server,192.168.50.1" in got
    assert "dhcp-authoritative" in got
    assert f"dhcp-leasefile={(tmp_path / 'data' / 'dnsmasq.leases').resolve()}" in got
    assert dnsmasq_test(tmp_path, "\n".join(got)).returncode == 0

    # interface mode, no router: an empty router option (dnsmasq would offer itself),
    # the DNS server "0.0.0.0" = dnsmasq's own address on the interface
    c = cfg(tmp_path, dhcp_range="192.168.50.20,192.168.50.250,255.255.255.0,1d")
    got = lines(dnsmasq.render(c))
    assert "dhcp-range=192.168.50.20,192.168.50.250,255.255.255.0,1d" in got
    assert "dhcp-option=option:router" in got
    assert "dhcp-option=option:dns-server,0.0.0.0" in got
    assert dnsmasq_test(tmp_path, "\n".join(got)).returncode == 0


REFUSALS = [
    ({"name": ""}, "[tls] name is empty"),
    ({"name": "ramu"}, "is not a DNS name"),
    ({"name": "ramu..hub.bd"}, "is not a DNS name"),
    ({"name": "-ramu.hub.bd"}, "is not a DNS name"),
    ({"name": "ramu.hub.bd\nserver=6.6.6.6"}, "is not a DNS name"),
    ({"name": "ramu_x.hub.bd"}, "is not a DNS name"),
    ({"name": "hub.local"}, ".local names belong to mDNS"),
    ({"name": "10.77.0.1"}, "looks like an address"),
    ({"interface": "", "address": ""}, "[dns] interface is empty and so is [dns] address"),
    ({"interface": "wlan0 eth0"}, "is not a network interface name"),
    ({"interface": "averyveryverylongname"}, "is not a network interface name"),
    ({"interface": "lo"}, "'lo' is the loopback interface"),
    ({"address": "10.77.0.300"}, "[dns] address = '10.77.0.300' is not an IPv4 address"),
    ({"address": "fd00::1"}, "is not an IPv4 address"),
    ({"address": "127.0.0.1"}, "cannot be a LAN device's address"),
    ({"address": "0.0.0.0"}, "cannot be a LAN device's address"),
    ({"port": 0}, "[dns] port = 0 is not a port"),
    ({"port": 70000}, "is not a port"),
    ({"upstream": ["dns.google"]}, "upstream servers are given by address, not by name"),
    ({"upstream": ["8.8.8.8:53"]}, "write ip#port"),
    ({"upstream": ["8.8.8.8#0"]}, "has a bad port"),
    ({"upstream": ["127.0.0.1"]}, "is this dnsmasq itself"),
    ({"upstream": [53]}, "is not a string"),
    ({"dhcp_range": "10.77.0.50,10.77.0.20,12h"}, "ends (10.77.0.20) before it starts"),
    ({"dhcp_range": "10.77.0.20"}, "write start,end,lease"),
    ({"dhcp_range": "10.77.0.20,10.77.0.50,12x"}, "is not a duration"),
    ({"dhcp_range": "10.77.0.20,10.77.0.50,30s"}, "is too short"),
    ({"dhcp_range": "10.77.0.20,10.78.0.50,255.255.255.0,12h"}, "are not in one"),
    ({"dhcp_range": "10.77.0.20,10.77.0.50,12h", "interface": "", "address": "10.77.0.1"},
     "[dns] interface is empty: name the interface DHCP serves"),
    ({"dhcp_range": "10.77.0.1,10.77.0.50,12h", "address": "10.77.0.10"},
     "contains the hub's own [dns] address 10.77.0.10"),
    ({"dhcp_range": "10.78.0.20,10.78.0.50,255.255.255.0,12h", "address": "10.77.0.1"},
     "is not in the network of the hub's [dns] address"),
    ({"dhcp_range": "10.77.0.20,10.77.0.50,12h", "dhcp_router": "10.77.0.30"},
     "is inside [dns] dhcp_range"),
    ({"dhcp_range": "10.77.0.20,10.77.0.50,12h", "dhcp_router": "router"},
     "[dns] dhcp_router = 'router' is not an IPv4 address"),
    ({"dhcp_router": "10.77.0.254"}, "[dns] dhcp_router is set but [dns] dhcp_range is empty"),
]


@pytest.mark.parametrize(("values", "message"), REFUSALS,
                         ids=[f"{i}-{next(iter(v))}" for i, (v, _) in enumerate(REFUSALS)])
def test_bad_values_are_refused_naming_the_key(tmp_path: Path, values: dict[str, object],
                                               message: str) -> None:
    values = dict(values)
    name = values.pop("name", "ramu.hub.dghs.gov.bd")
    with pytest.raises(ConfigError) as e:
        dnsmasq.render(cfg(tmp_path, name=str(name), **values))
    assert message in e.value.message


def test_dnsmasq_own_check_is_reported(tmp_path: Path) -> None:
    conf = tmp_path / "bad.conf"
    conf.write_text("no-such-option\n")
    with pytest.raises(ConfigError, match=r"dnsmasq refused .*bad.conf: dnsmasq: bad option at line 1"):
        dnsmasq.check(conf)
    with pytest.raises(ConfigError, match="not installed"):
        dnsmasq.check(conf, tmp_path / "no-dnsmasq")


def write_toml(path: Path, *body: str) -> Path:
    path.write_text("\n".join(body) + "\n")
    return path


def test_the_command_checks_and_refuses(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = write_toml(tmp_path / "hub.toml", "[tls]", 'name = "ramu.hub.dghs.gov.bd"', "[dns]",
                      "enabled = true", 'address = "10.77.0.1"', 'upstream = ["10.77.0.254"]')
    conf = tmp_path / "out" / "dnsmasq.conf"
    assert appliance("dns", "--config", str(good), "--data-dir", str(tmp_path),
                     "--conf", str(conf), "--check") == 0
    out = capsys.readouterr()
    assert "host-record=ramu.hub.dghs.gov.bd,10.77.0.1" in out.out and conf.read_text() == out.out
    assert "syntax check OK" in out.err
    # by hand, without --conf: the running dnsmasq's file is left alone
    assert appliance("dns", "--config", str(good), "--run-dir", str(tmp_path / "run"),
                     "--check") == 0
    assert "host-record=" in capsys.readouterr().out and not (tmp_path / "run").exists()

    bad = write_toml(tmp_path / "bad.toml", "[tls]", 'name = "ramu.hub.dghs.gov.bd"', "[dns]",
                     "enabled = true", 'interface = "eth0; rm -rf /"')
    assert appliance("dns", "--config", str(bad), "--conf", str(conf)) == 1
    assert "[dns] interface = 'eth0; rm -rf /' is not a network interface name" \
        in capsys.readouterr().err

    off = write_toml(tmp_path / "off.toml", "[tls]", 'name = "ramu.hub.dghs.gov.bd"')
    assert appliance("dns", "--config", str(off), "--conf", str(conf)) == 1
    assert "[dns] enabled is false" in capsys.readouterr().err


def test_supervisord_runs_dns_only_when_enabled(tmp_path: Path) -> None:
    layout = Layout(run_dir=tmp_path / "run", data_dir=tmp_path / "data",
                    config=tmp_path / "hub.toml", appliance=["/venv/bin/appliance"])
    c = cfg(tmp_path)
    progs = programs(c, layout, {"dns": True})
    assert progs["dns"] == ["/venv/bin/appliance", "dns", "--config", str(tmp_path / "hub.toml"),
                            "--data-dir", str(tmp_path / "data"),
                            "--run-dir", str(tmp_path / "run")]
    assert list(progs)[0] == "dns"  # before the hub: tablets look the name up first
    text = render(c, layout, {"dns": True})
    section = text.split("[program:dns]")[1].split("\n\n")[0]
    assert "priority=3" in section and "stopsignal=TERM" in section
    assert "[program:dns]" not in render(c, layout, {"dns": False})
    c.set("dns", "enabled", False)
    assert "dns" not in programs(c, layout, {"dns": True})


def test_provision_supervisord_conf_covers_dns(tmp_path: Path) -> None:
    toml = write_toml(tmp_path / "hub.toml", "[tls]", 'name = "ramu.hub.dghs.gov.bd"', "[dns]",
                      "enabled = true", 'interface = "wlan0"')
    out = tmp_path / "supervisord.conf"
    assert appliance("provision", "supervisord-conf", "--config", str(toml), "--data-dir",
                     str(tmp_path / "d"), "--run-dir", str(tmp_path / "r"),
                     "--out", str(out)) == 0
    assert "[program:dns]" in out.read_text()
    assert f"dns --config {toml} --data-dir {tmp_path / 'd'} --run-dir {tmp_path / 'r'}" \
        in out.read_text()
    assert appliance("provision", "supervisord-conf", "--config", str(toml),
                     "--without", "dns", "--out", str(out)) == 0
    assert "[program:dns]" not in out.read_text()


def test_lan_address(tmp_path: Path) -> None:
    assert dnsmasq.lan_address(cfg(tmp_path, interface="", address="10.77.0.1")) == "10.77.0.1"
    assert dnsmasq.lan_address(cfg(tmp_path, interface="no-such-if0")) is None
    assert dnsmasq.lan_address(cfg(tmp_path, interface="lo")) == "127.0.0.1"  # read, not checked


def test_provisioning_refuses_a_bad_dns_section(tmp_path: Path, demo_files: Path) -> None:
    import tomllib

    from appliance.provisioning import tomlout
    from appliance.provisioning.apply import validate

    doc = tomllib.loads(next(demo_files.glob("*ramu*.toml")).read_text())
    doc.setdefault("tls", {})["name"] = "ramu.hub.dghs.gov.bd"
    doc["dns"] = {"enabled": True, "interface": "wlan0"}
    good = tmp_path / "upazila-hub.toml"
    good.write_text(tomlout.dumps(doc))
    good.chmod(0o600)
    validate(good)
    doc["dns"]["interface"] = "wlan 0"
    bad = tmp_path / "bad.toml"
    bad.write_text(tomlout.dumps(doc))
    bad.chmod(0o600)
    with pytest.raises(ConfigError, match=r"bad.toml: \[dns\] interface = 'wlan 0' is not"):
        validate(bad)
