"""Hub tokens: issuing, checking, wrapping (the signature itself is ``appliance.signing``).

Why the fleet keeps *two* things per token (the trade-off):

* ``token_hash`` (SHA-256) is what ``Authorization: Bearer`` is checked against. A hash
  alone would be the textbook choice: a leaked database would not reveal any token.
* But the contract also signs every body with HMAC-SHA256 keyed by the token itself, and
  checking an HMAC needs the key. So the fleet must be able to recover the token. We store
  it *wrapped* (``token_secret``): XOR-encrypted with an HMAC-SHA256 keystream derived from
  a service key kept in a separate file (``fleet.key``, mode 0600, beside the database)
  and authenticated with a tag, so a copy of the database alone (a backup, a replica, a
  dump attached to a ticket) reveals no token. Whoever has both the database and the key
  file can impersonate every hub: keep the key out of database backups, and rotate a hub's
  token (``appliance fleet add-hub --rotate``) if it may have leaked. The hash stays so the
  cheap first check needs no key and no unwrapping.

Tokens are 256-bit random (``secrets.token_urlsafe(32)``): no salt/stretching is needed
for the hash, unlike for human passwords.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from ..errors import FleetError
from ..fsutil import fsync_dir

KEY_BYTES = 32
_NONCE = 16
_TAG = 16


def new_token() -> str:
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_matches(token: str, token_hash: str) -> bool:
    return hmac.compare_digest(hash_token(token), token_hash)


def load_key(path: Path) -> bytes:
    """The service key; created (0600) on first use."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        key = secrets.token_bytes(KEY_BYTES)
        # written whole under a private name, then linked into place: several `add-hub`
        # processes start at once, and one must never read a key another is still writing
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(key)
                f.flush()
                os.fsync(f.fileno())
            try:
                os.link(tmp, path)
            except FileExistsError:  # another process won the race: its key is the key
                return load_key(path)
            fsync_dir(path.parent)
        finally:
            tmp.unlink(missing_ok=True)
        return key
    if len(data) != KEY_BYTES:
        raise FleetError(f"fleet key {path} is damaged ({len(data)} bytes, want {KEY_BYTES})")
    return data


def _stream(key: bytes, hub_id: str, nonce: bytes, n: int) -> bytes:
    out = b""
    counter = 0
    while len(out) < n:
        msg = b"fleet-token-wrap\0" + hub_id.encode() + b"\0" + nonce + counter.to_bytes(4, "big")
        out += hmac.new(key, msg, hashlib.sha256).digest()
        counter += 1
    return out[:n]


def _tag(key: bytes, hub_id: str, nonce: bytes, ct: bytes) -> bytes:
    msg = b"fleet-token-tag\0" + hub_id.encode() + b"\0" + nonce + ct
    return hmac.new(key, msg, hashlib.sha256).digest()[:_TAG]


def wrap(key: bytes, hub_id: str, token: str) -> str:
    nonce = secrets.token_bytes(_NONCE)
    pt = token.encode()
    ct = bytes(a ^ b for a, b in zip(pt, _stream(key, hub_id, nonce, len(pt)), strict=True))
    return base64.b64encode(nonce + ct + _tag(key, hub_id, nonce, ct)).decode()


def unwrap(key: bytes, hub_id: str, wrapped: str) -> str:
    raw = base64.b64decode(wrapped)
    nonce, ct, tag = raw[:_NONCE], raw[_NONCE:-_TAG], raw[-_TAG:]
    if not hmac.compare_digest(tag, _tag(key, hub_id, nonce, ct)):
        raise FleetError(f"token of hub {hub_id} cannot be unwrapped: wrong fleet.key?")
    return bytes(a ^ b for a, b in zip(ct, _stream(key, hub_id, nonce, len(ct)),
                                       strict=True)).decode()
