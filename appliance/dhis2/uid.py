"""DHIS2 UIDs: 11 characters, a letter first, then letters or digits.

Same shape as dhis2-core ``CodeGenerator`` (``^[a-zA-Z][a-zA-Z0-9]{10}$``), so UIDs minted on a
hub are accepted unchanged by national. We use ``secrets`` because offline-created UIDs must
never collide with ones minted elsewhere (62^10 * 52 possibilities, unpredictable).
"""

from __future__ import annotations

import re
import secrets
import string

__all__ = ["UID_LENGTH", "is_uid", "generate_uid", "generate_uids"]

UID_LENGTH = 11

_LETTERS = string.ascii_letters
_ALPHANUMERIC = string.digits + string.ascii_letters
# re.ASCII: DHIS2's Java regex is ASCII-only; never accept e.g. Arabic-Indic digits.
_UID_RE = re.compile(r"[a-zA-Z][a-zA-Z0-9]{10}", re.ASCII)


def is_uid(s: object) -> bool:
    """True if ``s`` is a syntactically valid DHIS2 UID (anything else, even non-str: False)."""
    return isinstance(s, str) and _UID_RE.fullmatch(s) is not None


def generate_uid() -> str:
    """A fresh random UID."""
    return secrets.choice(_LETTERS) + "".join(secrets.choice(_ALPHANUMERIC) for _ in range(10))


def generate_uids(n: int) -> list[str]:
    """``n`` distinct fresh UIDs (what ``GET /api/system/id?limit=n`` returns as ``codes``)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"number of UIDs must be a non-negative integer, got {n!r}")
    seen: set[str] = set()
    out: list[str] = []
    while len(out) < n:
        uid = generate_uid()
        if uid not in seen:  # a repeat is astronomically unlikely, but callers may rely on it
            seen.add(uid)
            out.append(uid)
    return out
