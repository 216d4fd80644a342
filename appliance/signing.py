"""The heartbeat signature: ``X-Hub-Signature: sha256=<hex HMAC-SHA256(key=token, msg=body)>``.

The health agent signs every heartbeat body with its hub token; the fleet service verifies
it with the token it holds for that hub. ``body`` is the gzip bytes as sent, not the JSON
inside. A request without a body (the update download, ``GET``) signs its target
instead: ``target_message(path)``. One definition for both sides, so they cannot drift
apart. Pure functions, stdlib only, importing nothing of the appliance.
"""

from __future__ import annotations

import hashlib
import hmac


def sign(token: str, body: bytes) -> str:
    """The ``X-Hub-Signature`` value for ``body``."""
    return "sha256=" + hmac.new(token.encode(), body, hashlib.sha256).hexdigest()


def verify(token: str, body: bytes, header: str | None) -> bool:
    """True if ``header`` is the signature of ``body``. Constant-time; surrounding blanks and
    upper-case hex in the header are accepted, as the fleet always did."""
    if header is None:
        return False
    return hmac.compare_digest(sign(token, body).encode(), header.strip().lower().encode())


def target_message(path_qs: str) -> bytes:
    """What a bodiless read (``GET``/``HEAD``) signs: its path and query as sent, so a
    signature for one release's download opens no other."""
    return b"GET " + path_qs.encode()
