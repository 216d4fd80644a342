"""A tablet on the UHC's LAN reaches the hub over HTTPS, with the internet up and down.

Everything is real and in network namespaces (``tests/tls/uhc.py``): national's BIND
(taking RFC 2136 updates), pebble as the public CA and the fleet service run in the root
namespace ("the internet"); the hub, its dnsmasq and its health agent in the hub's; the
tablet in its own, with the hub as its only resolver and pebble's root as its only CA.

1. National provisions the hub (``provision generate --hub-domain``), which names it and
   registers the name with the fleet; ``provision apply`` on the hub makes its key and
   CSR, and national obtains the certificate from pebble over DNS-01.
2. The hub serves HTTPS; its heartbeats report its LAN address, which national publishes
   as the name's public A record (the plex.direct pattern).
3. The tablet resolves the name through the hub and replays the Android SDK's login and
   metadata download over HTTPS; then the uplink is cut, and it does it again.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import tomllib
from pathlib import Path

import pytest

from appliance import tlscert
from appliance.provisioning import tomlout
from tests.tls.rig import APPLIANCE, REPO, fleet_service, process, run, wait
from tests.tls.uhc import HUB_LAN, INTERNET, Uhc, uhc
from tests.tlsinfra import Bind, free_port, run_bind, run_pebble

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

DOMAIN = "hub.dghs.test"
NAME = f"ramu.{DOMAIN}"


def _tablet(net: Uhc, root_pem: Path) -> dict[str, object]:
    res = run(net.in_tablet([*APPLIANCE[:2], "tests.tls.tablet", "--url", f"https://{NAME}",
                              "--ca", str(root_pem)]), timeout=180)
    out: dict[str, object] = json.loads(res.stdout.strip().splitlines()[-1])
    return out


def _hub_toml(path: Path, bind: Bind) -> None:
    """The generated file, as a test rig needs it: no GPIO, quick heartbeats and renewal
    checks, national's DNS (BIND on a test port) as the hub's upstream."""
    doc = tomllib.loads(path.read_text())
    doc["gpio"]["enabled"] = False
    doc["health"].update(interval_s=1, heartbeat_every=1)
    doc.setdefault("tls", {})["check_every_s"] = 5
    doc["dns"]["upstream"] = [f"{bind.listen}#{bind.port}"]
    path.write_text(tomlout.dumps(doc))
    path.chmod(0o600)


def test_tablet_logs_in_over_https_with_the_internet_up_and_down(tmp_path: Path) -> None:
    with contextlib.ExitStack() as stack:
        net = stack.enter_context(uhc())
        bind = stack.enter_context(run_bind(tmp_path, zone=DOMAIN, listen=INTERNET,
                                            port=free_port(INTERNET)))
        peb = stack.enter_context(run_pebble(tmp_path, dns_server=bind.server,
                                             listen=INTERNET))
        # national's fleet service, ordering certificates from pebble with DNS-01 via BIND
        fleet = stack.enter_context(fleet_service(tmp_path, listen=INTERNET, domain=DOMAIN,
                                                  bind=bind, peb=peb))
        fleet_url, fleet_dir, fleet_log = fleet.url, fleet.data_dir, fleet.log

        # 1. national provisions Ramu's hub; the hub applies it, makes its key and CSR
        prov = tmp_path / "provisioning"
        run([*APPLIANCE, "provision", "generate", "--demo", "--out", str(prov),
              "--fleet-url", fleet_url, "--fleet-data-dir", str(fleet_dir),
              "--hub-domain", DOMAIN])
        source = prov / "coxs-bazar-ramu.toml"
        assert tomllib.loads(source.read_text())["tls"]["name"] == NAME
        _hub_toml(source, bind)
        etc, data, run_dir = tmp_path / "etc", tmp_path / "data", tmp_path / "run"
        applied = run(net.in_hub([*APPLIANCE, "provision", "apply", str(source),
                                   "--etc", str(etc), "--data-dir", str(data),
                                   "--user", "root", "--run-dir", str(run_dir),
                                   "--log-dir", str(tmp_path / "logs"),
                                   "--certificate-wait", "120"]))
        assert "HTTPS:" in applied.stdout and "no certificate" not in applied.stdout, \
            applied.stdout + fleet_log.read_text()[-3000:]
        pair = tlscert.load(data / "tls")
        assert pair is not None and pair.info.names == (NAME,)
        key_file = data / "tls" / "live" / "key.pem"
        assert os.stat(key_file).st_mode & 0o777 == 0o600
        # the CA's TXT record for the challenge is gone again
        assert bind.query(f"_acme-challenge.{NAME}", "TXT") == []

        # 2. the hub's processes, as supervisord would run them
        hub_toml = etc / "hub.toml"
        common = ["--config", str(hub_toml), "--data-dir", str(data)]
        hub_log, dns_log, health_log = (tmp_path / f"{n}.log" for n in ("hub", "dns", "health"))
        hub = stack.enter_context(process(
            net.in_hub([*APPLIANCE, "hub", *common, "--demo", "--no-zeroconf"]), hub_log))
        stack.enter_context(process(
            net.in_hub([*APPLIANCE, "dns", *common, "--run-dir", str(run_dir)]), dns_log))
        stack.enter_context(process(net.in_hub([*APPLIANCE, "health", *common]), health_log))
        wait("the hub serves HTTPS", lambda: hub.poll() is None
              and "https://" in hub_log.read_text(), 120, hub_log)
        # national publishes the name's public A record from the hub's heartbeats
        wait("the A record follows the hub's heartbeats",
              lambda: bind.query(NAME, "A") == [HUB_LAN], 60, health_log)

        # 3. the tablet: resolves through the hub, trusts only pebble's root, logs in
        up = _tablet(net, peb.root_pem)
        assert up["resolved"] == [HUB_LAN]
        assert up["certificate"]["fingerprint"] == pair.info.fingerprint  # type: ignore[index]
        sdk = up["sdk"]
        # every call got the status the SDK expects (it asserts each one); 404 is the
        # Android Settings App's dataStore, absent here as on most servers
        assert set(sdk["statuses"]) <= {200, 404} and sdk["org_units"] >= 1  # type: ignore[index]
        assert sdk["data_sets"] >= 4  # type: ignore[index]

        # ... and with the internet cut: the hub still answers its name and serves
        net.cut_internet()
        down = _tablet(net, peb.root_pem)
        assert down["resolved"] == [HUB_LAN]
        assert down["sdk"] == sdk
        # the status page tells the IT focal point what the tablets use
        status = subprocess.run(net.in_hub([*APPLIANCE, "tls", *common, "status"]),
                                capture_output=True, text=True, cwd=REPO, timeout=60)
        assert NAME in status.stdout, status.stdout + status.stderr
