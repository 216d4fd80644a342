"""Provisioning makes each hub's SFTP key and pins the backup server's host key."""

from __future__ import annotations

import base64
import csv
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from appliance import config, demo
from appliance.errors import ConfigError
from appliance.provisioning import sshkeys
from appliance.provisioning.generate import AUTHORIZED_KEYS, generate

from .conftest import appliance, host_key_lines

TEMPLATE = "sftp://backup@backup.example.org/hubs/{hub_id}"


def _generate(out: Path, keys: Path) -> int:
    return appliance("provision", "generate", "--demo", "--out", str(out),
                     "--replica-template", TEMPLATE, "--backup-host-key", str(keys))


@pytest.fixture
def generated(tmp_path: Path) -> tuple[Path, str, str]:
    text, ed, ecdsa = host_key_lines()
    keys = tmp_path / "keyscan.txt"
    keys.write_text(text)
    out = tmp_path / "hubs"
    assert _generate(out, keys) == 0
    return out, ed, ecdsa


def test_each_hub_gets_its_own_key_and_the_server_its_public_half(
        generated: tuple[Path, str, str]) -> None:
    out, _, ecdsa = generated
    files = sorted(out.glob("*.toml"))
    lines = [ln for ln in (out / AUTHORIZED_KEYS).read_text().splitlines()
             if ln and not ln.startswith("#")]
    assert len(lines) == len(files) >= 10
    by_hub = {ln.rsplit(" ", 1)[1]: ln for ln in lines}
    publics = set()
    for f in files:
        assert stat.S_IMODE(f.stat().st_mode) == 0o600  # holds the private key
        cfg = config.load(f)
        hub_id = cfg.get("hub", "id")
        key = cfg.get("backup", "sftp_key")
        assert key.startswith(sshkeys.PRIVATE_HEADER)
        loaded = serialization.load_ssh_private_key(key.encode(), None)
        public = loaded.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                                  serialization.PublicFormat.OpenSSH).decode()
        assert public.startswith("ssh-ed25519 ")
        # the server's line for this hub: its public key, SFTP only, commented with its id
        assert by_hub[f"hub:{hub_id}"] == f'restrict,command="internal-sftp" {public} hub:{hub_id}'
        publics.add(public)
        # the key litestream's Go client will be shown: ECDSA, though keyscan listed
        # Ed25519 first
        assert cfg.get("backup", "host_key") == ecdsa
        assert cfg.get("backup", "replica") == TEMPLATE.format(hub_id=hub_id)
    assert len(publics) == len(files)  # never shared: one stolen hub opens no other
    text = (out / AUTHORIZED_KEYS).read_text() + (out / "index.csv").read_text()
    assert "PRIVATE KEY" not in text
    with (out / "index.csv").open(newline="") as f:
        assert {r["backup"] for r in csv.DictReader(f)} == {"yes"}


def test_generating_again_keeps_the_keys(generated: tuple[Path, str, str],
                                         tmp_path: Path) -> None:
    """A dead card's file made again must still match the backup server's authorized_keys."""
    out, _, _ = generated
    before = (out / AUTHORIZED_KEYS).read_text()
    ramu = config.load(out / "coxs-bazar-ramu.toml").get("backup", "sftp_key")
    keys = tmp_path / "keyscan.txt"
    assert _generate(out, keys) == 0
    assert (out / AUTHORIZED_KEYS).read_text() == before
    assert config.load(out / "coxs-bazar-ramu.toml").get("backup", "sftp_key") == ramu


def test_sftp_needs_the_host_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert appliance("provision", "generate", "--demo", "--out", str(tmp_path / "o"),
                     "--replica-template", TEMPLATE) == 1
    assert "needs --backup-host-key" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()  # refused before any file is written


@pytest.mark.parametrize(("template", "message"), [
    ("sftp://backup.example.org/hubs/{hub_id}", "names no user"),
    ("sftp://backup@backup.example.org/", "names no directory"),
    ("sftp://backup@backup.example.org/hubs", "must contain {hub_id}"),
])
def test_bad_templates_are_refused(tmp_path: Path, template: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        generate(demo.national(), tmp_path / "o", national_url="http://n",
                 replica_template=template, backup_host_key=host_key_lines()[2])


@pytest.mark.parametrize(("text", "message"), [
    ("", "no SSH host key found"),
    ("backup.example.org ssh-ed25519 !!!notbase64", "damaged"),
    ("hello world", "not an SSH public key line"),
    ("@cert-authority *.example.org ssh-ed25519 AAAA", "certificate authorities"),
])
def test_bad_host_key_files_are_refused(tmp_path: Path, text: str, message: str,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    keys = tmp_path / "keys"
    keys.write_text(text)
    assert _generate(tmp_path / "o", keys) == 1
    err = capsys.readouterr().err
    assert message in err and str(keys) in err, err


def test_a_key_whose_type_lies_is_refused() -> None:
    _, ed, ecdsa = host_key_lines()
    blob = ed.split()[1]
    with pytest.raises(ConfigError, match="holds a 'ssh-ed25519' key"):
        sshkeys.pick_host_key(f"ecdsa-sha2-nistp256 {blob}")
    # with only Ed25519 and RSA on the server, RSA is what the Go client is shown
    rsa_blob = base64.b64encode(b"\0\0\0\x07ssh-rsa" + b"\0" * 8).decode()
    assert sshkeys.pick_host_key(f"{ed}\nssh-rsa {rsa_blob}") == f"ssh-rsa {rsa_blob}"
    assert sshkeys.pick_host_key(ed + " root@backup") == ed
    assert sshkeys.pick_host_key(f"{ed}\n{ecdsa}") == ecdsa
