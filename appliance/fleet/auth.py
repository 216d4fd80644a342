"""Fleet users, logins and sessions: who may read the dashboard and who may change it.

Roles: ``viewer`` reads the pages, the JSON API and ``/metrics``; ``admin`` may also enrol
hubs (``POST /api/hubs``) and change alert rules (``PUT /api/alert-rules``). Users are
made with ``appliance fleet add-user``.

Rules a login follows, and why:

* Passwords are kept as the hub keeps them: scrypt verifiers from
  ``appliance.store.users`` (one KDF for the whole appliance). scrypt runs on worker
  threads, never on the event loop: heartbeats from 500 hubs must not wait for it.
* An unknown username is checked against a dummy verifier of the same cost, so a refusal
  takes as long whether or not the user exists, and says the same thing.
* Failed logins are counted per (username, client address): after ``LOCK_AFTER`` failures
  that pair is locked for a minute, doubling with each further failure up to 15 min. An
  attacker at one address cannot lock the user out at another. A locked attempt is
  refused without looking at the password and does not extend the lock. The address is
  the TCP peer (``request.remote``): ``X-Forwarded-For`` is not trusted, so behind a
  reverse proxy every client shares the proxy's address.
* Every attempt, accepted or not, is written to ``login_audit``.

Sessions: the cookie holds 256 random bits; the database keeps only their SHA-256, so a
copy of ``fleet.db`` opens no browser session. Sessions last ``SESSION_S`` (12 h); a new
password ends all of that user's sessions, and a changed role applies at once (the role is
read with the session on every request).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import hmac
import re
import secrets
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ..errors import BadRequest, TooManyRequests, Unauthorized
from ..store import users as kdf
from .db import FleetDB, audit_tx

VIEWER, ADMIN = "viewer", "admin"
ROLES = (VIEWER, ADMIN)
COOKIE = "fleet_session"
SESSION_S = 12 * 3600
LOCK_AFTER = 5  # failures of one (username, address) before it is locked
LOCK_BASE_S = 60.0  # first lock; doubles with each further failure
LOCK_MAX_S = 15 * 60.0
FAILURE_MEMORY_S = 86400.0  # a failure older than this no longer counts
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._@-]{0,63}$")
MIN_PASSWORD, MAX_PASSWORD = 8, 1024
BAD_LOGIN = "Wrong username or password."


@dataclass(frozen=True)
class Account:
    """The fleet user behind a request."""

    username: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == ADMIN


# ------------------------------------------------------------------------ validation
def normalise(username: str) -> str:
    """Usernames are case-insensitive; what the login form sent, as it is looked up."""
    return username.strip().lower()[:100]


def check_username(username: str) -> str:
    name = normalise(username)
    if not USERNAME.match(name):
        raise BadRequest("A username is 1-64 letters, digits, '.', '_', '@' or '-', starting "
                         "with a letter or digit.")
    return name


def check_role(role: str) -> str:
    if role not in ROLES:
        raise BadRequest(f"The role must be viewer or admin, not {role[:20]!r}.")
    return role


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise BadRequest(f"The password must be at least {MIN_PASSWORD} characters long.")
    if len(password) > MAX_PASSWORD:
        raise BadRequest(f"The password must be at most {MAX_PASSWORD} characters long.")
    return password


def lock_seconds(failures: int) -> float:
    """How long a (username, address) pair is locked after its n-th failure in a row."""
    if failures < LOCK_AFTER:
        return 0.0
    return min(LOCK_MAX_S, LOCK_BASE_S * 2 ** min(failures - LOCK_AFTER, 16))


def wait_text(seconds: float) -> str:
    minutes = max(1, -(-int(seconds) // 60))
    return f"{minutes} minute" + ("s" if minutes != 1 else "")


def safe_next(raw: Any) -> str:
    """Where to go after logging in: a path on this site only (never ``//evil``, a
    ``\\``-trick or an absolute URL, which would make the login page an open redirect)."""
    if not isinstance(raw, str) or not raw.startswith("/") or len(raw) > 2000:
        return "/"
    if raw.startswith(("//", "/\\")) or any(c in raw for c in "\\\r\n\t") or \
            not raw.isprintable():
        return "/"
    parts = urlsplit(raw)
    if parts.scheme or parts.netloc or parts.path in ("/login", "/logout"):
        return "/"
    return raw


def session_hash(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


def bearer_ok(presented: str, configured: str) -> bool:
    """The /metrics token, compared in constant time; an empty setting matches nothing."""
    return bool(configured) and hmac.compare_digest(presented.encode(), configured.encode())


# ------------------------------------------------------------------ database (writer)
def put_user_tx(conn: sqlite3.Connection, username: str, role: str, verifier: str,
                now: float) -> tuple[bool, int]:
    """Create or update a user; a new password ends their sessions.

    Returns (created, sessions ended).
    """
    exists = conn.execute("SELECT 1 FROM users WHERE username=?", (username,)).fetchone()
    conn.execute("INSERT INTO users (username, role, verifier, created_at, updated_at) "
                 "VALUES (?,?,?,?,?) ON CONFLICT(username) DO UPDATE SET role=excluded.role, "
                 "verifier=excluded.verifier, updated_at=excluded.updated_at",
                 (username, role, verifier, now, now))
    ended = conn.execute("DELETE FROM sessions WHERE username=?", (username,)).rowcount
    return exists is None, ended


def _audit_login(conn: sqlite3.Connection, username: str, client: str, now: float,
                 success: bool, reason: str) -> None:
    conn.execute("INSERT INTO login_audit (at, username, client, success, reason) "
                 "VALUES (?,?,?,?,?)", (now, username, client, int(success), reason))


def failed_tx(conn: sqlite3.Connection, username: str, client: str, now: float,
              reason: str) -> float:
    """Count a failure for (username, client); returns until when the pair is locked."""
    row = conn.execute("SELECT failures, last_failure FROM login_throttle "
                       "WHERE username=? AND client=?", (username, client)).fetchone()
    fresh = row is None or now - row["last_failure"] > FAILURE_MEMORY_S
    failures = 1 if fresh else row["failures"] + 1
    wait = lock_seconds(failures)
    locked_until = now + wait if wait else 0.0
    conn.execute("INSERT INTO login_throttle (username, client, failures, last_failure, "
                 "locked_until) VALUES (?,?,?,?,?) ON CONFLICT(username, client) DO UPDATE "
                 "SET failures=excluded.failures, last_failure=excluded.last_failure, "
                 "locked_until=excluded.locked_until",
                 (username, client, failures, now, locked_until))
    _audit_login(conn, username, client, now, False, reason)
    return locked_until


def success_tx(conn: sqlite3.Connection, username: str, client: str, now: float,
               id_hash: str) -> None:
    conn.execute("DELETE FROM login_throttle WHERE username=? AND client=?", (username, client))
    conn.execute("DELETE FROM sessions WHERE expires < ?", (now,))
    conn.execute("INSERT INTO sessions (id_hash, username, client, created_at, expires) "
                 "VALUES (?,?,?,?,?)", (id_hash, username, client, now, now + SESSION_S))
    _audit_login(conn, username, client, now, True, "")


# ---------------------------------------------------------------------- the service
_dummy: str | None = None  # same cost as a real verifier; its password is never known


class Accounts:
    """Logins and sessions for the web app (one per app)."""

    def __init__(self, db: FleetDB, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.clock = clock
        # two at a time: a burst of logins must not hold every thread of the loop's
        # default executor, and scrypt needs 16 MiB each
        self._kdf = concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="fleet-scrypt")
        # one attempt at a time per (username, address): 100 guesses sent at once must not
        # all pass the lock check before the first failure is counted
        self._pairs: dict[tuple[str, str], tuple[asyncio.Lock, int]] = {}

    def close(self) -> None:
        self._kdf.shutdown(wait=False, cancel_futures=True)

    async def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._kdf, fn, *args)

    async def warm(self) -> str:
        """The dummy verifier (made once per process, before the first login, so that one
        is not slower): what an unknown username's password is checked against."""
        global _dummy
        if _dummy is None:
            _dummy = await self._run(kdf.make_verifier, secrets.token_urlsafe(16))
        return _dummy

    async def login(self, username: str, password: str, client: str | None
                    ) -> tuple[Account, str]:
        """Check a login; returns the account and a new session id (for the cookie).

        Raises ``Unauthorized`` (wrong username or password, one message for both) or
        ``TooManyRequests`` (this username is locked for this address).
        """
        key = (normalise(username), client or "unknown")
        lock, users = self._pairs.get(key) or (asyncio.Lock(), 0)
        self._pairs[key] = (lock, users + 1)
        try:
            async with lock:
                return await self._login(*key, password)
        finally:
            lock, users = self._pairs[key]
            if users == 1:
                del self._pairs[key]
            else:
                self._pairs[key] = (lock, users - 1)

    async def _login(self, name: str, addr: str, password: str) -> tuple[Account, str]:
        now = self.clock()

        def look(conn: sqlite3.Connection) -> tuple[float, sqlite3.Row | None]:
            lock = conn.execute("SELECT locked_until FROM login_throttle WHERE username=? "
                                "AND client=?", (name, addr)).fetchone()
            user = conn.execute("SELECT role, verifier FROM users WHERE username=?",
                                (name,)).fetchone()
            return (lock[0] if lock else 0.0), user
        locked_until, user = await self.db.read(look)
        if locked_until > now:
            await self.db.write(lambda c: _audit_login(c, name, addr, now, False, "locked"))
            raise TooManyRequests(
                f"Too many failed logins for this username from your computer. Wait "
                f"{wait_text(locked_until - now)} and try again, or ask a fleet admin to "
                "reset your password.", error_code="locked")
        dummy = await self.warm()
        verifier = user["verifier"] if user is not None else dummy
        ok = await self._run(kdf.check_verifier, verifier, password)
        if not ok or user is None:
            reason = "wrong password" if user is not None else "unknown user"
            until = await self.db.write(lambda c: failed_tx(c, name, addr, now, reason))
            message = BAD_LOGIN
            if until > now:
                message += (f" After {LOCK_AFTER} failed attempts, logins for this username "
                            f"from your computer are paused for {wait_text(until - now)}.")
            raise Unauthorized(message, error_code="login")
        sid = secrets.token_urlsafe(32)  # 256 bits
        await self.db.write(lambda c: success_tx(c, name, addr, now, session_hash(sid)))
        return Account(name, user["role"]), sid

    async def session(self, sid: str | None) -> Account | None:
        """The account of a live session cookie, else None."""
        if not sid or len(sid) > 100:
            return None
        h = session_hash(sid)
        row = await self.db.read(lambda c: c.execute(
            "SELECT s.username, u.role, s.expires FROM sessions s JOIN users u "
            "ON u.username = s.username WHERE s.id_hash=?", (h,)).fetchone())
        if row is None or row["expires"] <= self.clock():
            return None
        return Account(row["username"], row["role"])

    async def logout(self, sid: str | None) -> None:
        if sid and len(sid) <= 100:
            h = session_hash(sid)
            await self.db.write(lambda c: c.execute("DELETE FROM sessions WHERE id_hash=?",
                                                    (h,)))


# ------------------------------------------------------------------------ the CLI's
def set_user(db: FleetDB, username: str, role: str, password: str, *, by: str,
             now: float | None = None) -> str:
    """Create or update a user (``appliance fleet add-user``); returns what was done, in
    one line without the password. Audited as an admin change made by ``by``."""
    name = check_username(username)
    check_role(role)
    check_password(password)
    verifier = kdf.make_verifier(password)
    stamp = time.time() if now is None else now

    def tx(conn: sqlite3.Connection) -> tuple[bool, int]:
        created, ended = put_user_tx(conn, name, role, verifier, stamp)
        audit_tx(conn, at=stamp, username=by, client=None,
                 action="add-user" if created else "update-user",
                 detail={"user": name, "role": role, "password_set": True})
        return created, ended
    created, ended = db.write_sync(tx)
    if created:
        return f"created fleet user {name} ({role})"
    signed_out = f"; signed out of {ended} session{'s' if ended != 1 else ''}" if ended else ""
    return f"updated fleet user {name}: role {role}, new password{signed_out}"
