"""Helpers for the deployment tests: provisioning files, the CLI in-process."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from appliance import cli

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = REPO / ".venv" / "bin"


def appliance(*argv: str) -> int:
    """``appliance ...`` in-process (the real parser and dispatcher)."""
    return cli.main(list(argv))


def has_module(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


@pytest.fixture(scope="session")
def demo_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``appliance provision generate --demo`` once; tests copy what they change."""
    out = tmp_path_factory.mktemp("provisioning") / "hubs"
    assert appliance("provision", "generate", "--demo", "--out", str(out)) == 0
    return out


def host_key_lines(host: str = "backup.example.org") -> tuple[str, str, str]:
    """A backup server's host keys as ``ssh-keyscan`` prints them, Ed25519 first (as OpenSSH
    prefers), then ECDSA: (the text, the ed25519 ``type base64``, the ecdsa one)."""
    from cryptography.hazmat.primitives import serialization as ser
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519

    def pub(key: ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey) -> str:
        return key.public_key().public_bytes(ser.Encoding.OpenSSH,
                                             ser.PublicFormat.OpenSSH).decode()
    ed = pub(ed25519.Ed25519PrivateKey.generate())
    ecdsa = pub(ec.generate_private_key(ec.SECP256R1()))
    text = f"# {host}:22 SSH-2.0-OpenSSH_9.2p1\n{host} {ed}\n{host} {ecdsa}\n"
    return text, ed, ecdsa
