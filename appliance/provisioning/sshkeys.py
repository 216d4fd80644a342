"""SSH keys for the SFTP backup: each hub's own key pair, and the backup server's host key.

litestream's SFTP client (Go's x/crypto/ssh) pins one host key (``host-key`` in
litestream.yml) but does not restrict the host key *algorithm* it negotiates, and
x/crypto proposes ECDSA first, then RSA, and Ed25519 last. A server with several host
keys (stock Debian has RSA, ECDSA and Ed25519) therefore shows litestream its ECDSA key,
whatever ``ssh`` shows people. :func:`pick_host_key` takes the key litestream will be
shown, so a file with all the server's keys (``ssh-keyscan`` output, or its
``/etc/ssh/ssh_host_*_key.pub``) pins the right one.
"""

from __future__ import annotations

import base64
import binascii
import struct

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from ..errors import ConfigError

# x/crypto/ssh's defaultHostKeyAlgos order (plain keys), by the key type each presents
GO_HOST_KEY_ORDER = ("ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
                     "ssh-rsa", "ssh-ed25519")
PRIVATE_HEADER = "-----BEGIN OPENSSH PRIVATE KEY-----"


def new_keypair() -> tuple[str, str]:
    """(OpenSSH private key, ``ssh-ed25519 AAAA...`` public key) of a new Ed25519 pair."""
    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption()).decode("ascii")
    return private, public_of(private)


def public_of(private: str) -> str:
    """The public half of an unencrypted OpenSSH private key, as one authorized_keys field."""
    try:
        key = serialization.load_ssh_private_key(private.strip().encode() + b"\n", None)
    except (ValueError, TypeError) as e:
        # never echo the text: it is (meant to be) a secret
        raise ConfigError(f"is not an unencrypted OpenSSH private key ({type(e).__name__})") \
            from None
    pub = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                        serialization.PublicFormat.OpenSSH)
    return pub.decode("ascii")


def authorized_line(public: str, hub_id: str) -> str:
    """One ``authorized_keys`` line for a hub: SFTP only, nothing forwarded; the comment names
    the hub so the backup server's admin can remove one hub's key."""
    return f'restrict,command="internal-sftp" {public} hub:{hub_id}'


def parse_key(text: str) -> tuple[str, str]:
    """(type, base64) of a public key given as ``type base64 [comment]`` or a known_hosts /
    ssh-keyscan line (``host type base64``); ``ConfigError`` when it is neither."""
    fields = text.split()
    for i, f in enumerate(fields[:-1]):
        if f in GO_HOST_KEY_ORDER or f == "ssh-dss" or f.startswith(("ecdsa-", "ssh-", "sk-")):
            blob = fields[i + 1]
            _check_blob(f, blob)
            return f, blob
    raise ConfigError(f"{text.strip()[:80]!r} is not an SSH public key line "
                      "(expected e.g. 'ssh-ed25519 AAAA...' or ssh-keyscan output)")


def _check_blob(kind: str, blob: str) -> None:
    try:
        raw = base64.b64decode(blob, validate=True)
        (n,) = struct.unpack(">I", raw[:4])
        inner = raw[4:4 + n].decode("ascii")
    except (binascii.Error, struct.error, UnicodeDecodeError):
        raise ConfigError(f"the {kind} key's base64 part is damaged") from None
    if inner != kind:
        raise ConfigError(f"the key says {kind} but holds a {inner[:40]!r} key")


def pick_host_key(text: str) -> str:
    """The one host key litestream will be shown, from all the server's keys in ``text``."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("@"):
            raise ConfigError(f"{line[:40]!r}: certificate authorities and revoked keys "
                              "cannot be pinned; give the server's own host keys")
        kind, blob = parse_key(line)
        found.setdefault(kind, blob)
    for kind in GO_HOST_KEY_ORDER:
        if kind in found:
            return f"{kind} {found[kind]}"
    if found:
        raise ConfigError(f"no host key litestream can check ({', '.join(found)}): give the "
                          "server's ECDSA, RSA or Ed25519 host key")
    raise ConfigError("no SSH host key found (expected lines like 'ssh-ed25519 AAAA...')")
