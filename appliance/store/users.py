"""Users, password verifiers, API tokens and sessions.

The hub never holds national password hashes: a verifier is made here from a
password the hub itself checked (first login against national, or a hub-local
account), with a per-user salt and scrypt.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import sqlite3
import time
from dataclasses import dataclass, field
from typing import Any

from .db import Tx
from .hlc import to_iso
from .metadata import MetadataIndex

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
LOCKOUT_AFTER = 5          # failed attempts from one address before that address waits
LOCKOUT_BASE_S = 60.0      # the first wait; each further failure doubles it...
LOCKOUT_MAX_S = 15 * 60.0  # ...up to this
LOCKOUT_FORGET_S = 3600.0  # failures older than this (since the last one) start afresh
SESSION_S = 12 * 3600      # a reporting day


def make_verifier(password: str, *, n: int = SCRYPT_N) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=SCRYPT_R, p=SCRYPT_P,
                            maxmem=64 * 1024 * 1024, dklen=32)
    return f"scrypt${n}${SCRYPT_R}${SCRYPT_P}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def check_verifier(verifier: str | None, password: str) -> bool:
    if not verifier:
        return False
    try:
        algo, n, r, p, salt_b64, hash_b64 = verifier.split("$")
        if algo != "scrypt":
            return False
        salt, expected = base64.b64decode(salt_b64), base64.b64decode(hash_b64)
        digest = hashlib.scrypt(password.encode(), salt=salt, n=int(n), r=int(r), p=int(p),
                                maxmem=64 * 1024 * 1024, dklen=len(expected))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(digest, expected)


def token_hash(token: str) -> str:
    # surrogatepass: a header with stray bytes hashes to a token nobody holds, not a 500
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass
class User:
    uid: str
    username: str
    doc: dict[str, Any]
    authorities: frozenset[str]
    org_units: tuple[str, ...]          # capture (write) scope roots
    view_org_units: tuple[str, ...]     # read scope roots
    search_org_units: tuple[str, ...] = ()  # tracker search scope roots (teiSearchOrganisationUnits)
    disabled: bool = False
    verifier: str | None = None
    failed: int = 0
    locked_until: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_superuser(self) -> bool:
        return "ALL" in self.authorities

    def has(self, authority: str) -> bool:
        return self.is_superuser or authority in self.authorities

    def can_view(self, index: MetadataIndex, ou: str) -> bool:
        """Read scope: the data view org units (capture ones if none), as in DHIS2."""
        if not self.view_org_units:
            return self.is_superuser
        return index.in_subtree(ou, self.view_org_units)

    def can_search(self, index: MetadataIndex, ou: str) -> bool:
        """Tracker search scope: ``teiSearchOrganisationUnits``, else the view scope, as in
        DHIS2: a CHCP may find a person anywhere in the upazila but write only at home."""
        roots = self.search_org_units or self.view_org_units
        if not roots:
            return self.is_superuser
        return index.in_subtree(ou, roots)

    def can_write(self, index: MetadataIndex, ou: str) -> bool:
        """Write scope: only inside the user's own (capture) org units."""
        if not self.org_units:
            return self.is_superuser
        return index.in_subtree(ou, self.org_units)


def _refs(doc: dict[str, Any], key: str) -> tuple[str, ...]:
    return tuple(r["id"] for r in doc.get(key) or [] if isinstance(r, dict) and "id" in r)


def user_from_row(row: sqlite3.Row, roles: dict[str, dict[str, Any]]) -> User:
    doc = json.loads(row["doc"])
    auths: set[str] = set()
    role_refs = doc.get("userRoles") or (doc.get("userCredentials") or {}).get("userRoles") or []
    for ref in role_refs:
        role = roles.get(ref.get("id", ""))
        if role:
            auths.update(role.get("authorities") or [])
    ous = _refs(doc, "organisationUnits")
    view = _refs(doc, "dataViewOrganisationUnits") or ous
    return User(uid=row["uid"], username=row["username"], doc=doc, authorities=frozenset(auths),
                org_units=ous, view_org_units=view,
                search_org_units=_refs(doc, "teiSearchOrganisationUnits"), disabled=bool(row["disabled"]),
                verifier=row["verifier"], failed=row["failed"], locked_until=row["locked_until"])


# -- reads ------------------------------------------------------------------------------
def find_user(conn: sqlite3.Connection, roles: dict[str, dict[str, Any]], *,
              uid: str | None = None, username: str | None = None) -> User | None:
    if uid is not None:
        row = conn.execute("SELECT * FROM users WHERE uid=?", (uid,)).fetchone()
    else:
        row = conn.execute("SELECT * FROM users WHERE username=?", (username,)).fetchone()
    return user_from_row(row, roles) if row else None


def token_owner(conn: sqlite3.Connection, token: str) -> tuple[str, float | None] | None:
    """(user uid, expiry) of a personal access token, looked up by its hash."""
    row = conn.execute("SELECT user_uid, expires FROM api_tokens WHERE token_hash=?",
                       (token_hash(token),)).fetchone()
    return (row[0], row[1]) if row else None


def session_owner(conn: sqlite3.Connection, sid: str) -> tuple[str, float] | None:
    """(user uid, expiry) of a session id."""
    row = conn.execute("SELECT user_uid, expires FROM sessions WHERE id=?", (sid,)).fetchone()
    return (row[0], row[1]) if row else None


# -- write functions (run on the writer thread via Store.write) ----------------------
def upsert_user(tx: Tx, doc: dict[str, Any], *, password: str | None = None,
                local: bool = False, disabled: bool | None = None) -> None:
    username = doc.get("username") or (doc.get("userCredentials") or {}).get("username")
    if not username:
        raise ValueError(f"user {doc.get('id')} has no username")
    if disabled is None:
        disabled = bool(doc.get("disabled") or (doc.get("userCredentials") or {}).get("disabled"))
    verifier = make_verifier(password) if password is not None else None
    tx.execute(
        "INSERT INTO users(uid, username, doc, verifier, disabled, local, last_updated) "
        "VALUES (?,?,?,?,?,?,?) ON CONFLICT(uid) DO UPDATE SET username=excluded.username, "
        "doc=excluded.doc, disabled=excluded.disabled, last_updated=excluded.last_updated, "
        "verifier=COALESCE(excluded.verifier, users.verifier)",
        (doc["id"], username, json.dumps(doc), verifier, int(disabled), int(local),
         doc.get("lastUpdated")))


def set_verifier(tx: Tx, uid: str, password: str) -> None:
    tx.execute("UPDATE users SET verifier=?, failed=0, locked_until=0 WHERE uid=?",
               (make_verifier(password), uid))


def lockout_delay(failures: int) -> float:
    """Seconds one (username, address) pair waits after its ``failures``-th failure."""
    if failures < LOCKOUT_AFTER:
        return 0.0
    return min(LOCKOUT_MAX_S, LOCKOUT_BASE_S * 2 ** (failures - LOCKOUT_AFTER))


def record_login(tx: Tx, username: str, client: str | None, method: str, success: bool,
                 reason: str = "", now: float | None = None) -> float:
    """Audit the attempt and keep the per-address throttle; returns until when this
    (username, address) pair is now locked (0: not locked)."""
    now = time.time() if now is None else now
    tx.execute("INSERT INTO login_audit(at, username, client, method, success, reason) "
               "VALUES (?,?,?,?,?,?)",
               (to_iso(tx.stamp()), username, client, method, int(success), reason))
    if success:
        tx.execute("DELETE FROM login_throttle WHERE username=? AND client=?",
                   (username, client or ""))
        tx.execute("UPDATE users SET failed=0 WHERE username=?", (username,))
        return 0.0
    row = tx.execute("SELECT failures, last_failure FROM login_throttle WHERE username=? AND "
                     "client=?", (username, client or "")).fetchone()
    failures = 1 + (row[0] if row is not None and row[1] > now - LOCKOUT_FORGET_S else 0)
    delay = lockout_delay(failures)
    locked_until = now + delay if delay else 0.0
    tx.execute("INSERT OR REPLACE INTO login_throttle(username, client, failures, last_failure, "
               "locked_until) VALUES (?,?,?,?,?)",
               (username, client or "", failures, now, locked_until))
    tx.execute("UPDATE users SET failed=failed+1 WHERE username=?", (username,))
    return locked_until


def active_lockouts(conn: sqlite3.Connection, now: float | None = None
                    ) -> dict[tuple[str, str], float]:
    """(username, address) -> locked until, for the pairs locked now."""
    now = time.time() if now is None else now
    return {(u, c): t for u, c, t in conn.execute(
        "SELECT username, client, locked_until FROM login_throttle WHERE locked_until > ?",
        (now,))}


def add_token(tx: Tx, user_uid: str, token: str, name: str = "", expires: float | None = None) -> None:
    tx.execute("INSERT OR REPLACE INTO api_tokens(token_hash, user_uid, name, expires) "
               "VALUES (?,?,?,?)", (token_hash(token), user_uid, name, expires))


def new_session(tx: Tx, user_uid: str, now: float | None = None) -> str:
    sid = secrets.token_urlsafe(32)
    now = time.time() if now is None else now
    tx.execute("DELETE FROM sessions WHERE expires < ?", (now,))
    tx.execute("INSERT INTO sessions(id, user_uid, expires) VALUES (?,?,?)",
               (sid, user_uid, now + SESSION_S))
    return sid


def end_session(tx: Tx, sid: str) -> None:
    tx.execute("DELETE FROM sessions WHERE id=?", (sid,))


def user_docs(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Every user's DHIS2 document with ``disabled`` and ``lastUpdated`` as stored (for
    the national stand-in's ``/api/users``); never a password or verifier."""
    out = []
    for row in conn.execute("SELECT doc, disabled, last_updated FROM users ORDER BY uid"):
        doc = json.loads(row[0])
        doc["disabled"] = bool(row[1])
        if isinstance(doc.get("userCredentials"), dict):
            doc["userCredentials"]["disabled"] = bool(row[1])
        if row[2]:
            doc["lastUpdated"] = row[2]
        out.append(doc)
    return out


def read_user_documents(conn: sqlite3.Connection) -> tuple[dict[str, dict[str, Any]], set[str]]:
    """Every user's document by uid, and the uids of hub-local accounts."""
    users: dict[str, dict[str, Any]] = {}
    local_only: set[str] = set()
    for uid, d, is_local in conn.execute("SELECT uid, doc, local FROM users"):
        users[uid] = json.loads(d)
        if is_local:
            local_only.add(uid)
    return users, local_only


def disable_national_user(tx: Tx, uid: str) -> None:
    """Disable a user that came from national (hub-local accounts are left alone)."""
    tx.execute("UPDATE users SET disabled=1 WHERE uid=? AND local=0", (uid,))
