"""LAN authentication: Basic, ``ApiToken`` PATs and session cookies (DHIS2 §8).

scrypt is deliberately slow, so a verified Basic header is cached (by its SHA-256,
never the password) for a few minutes; 300 clients re-sending Basic on every
request must not cost 300 scrypt runs a second.

Failed logins are throttled per (username, client address) with growing waits
(``store.users.lockout_delay``): a stranger on the clinic Wi-Fi can slow down their own
guesses but cannot lock a CHCP out of the CHCP's laptop. A lock, account-wide (set by the
IT focal point) or on one address, refuses every way in from there: password, a Basic
header verified before, a session and a token. Unknown usernames cost the same scrypt
run as known ones, so the time a refusal takes does not tell which usernames exist.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import concurrent.futures
import hashlib
import math
import re
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from ..errors import TooManyRequests, Unauthorized
from ..store import Store
from ..store import users as users_db
from ..store.metadata import MetadataIndex

CACHE_S = 300.0
IP_FAILURES_PER_MIN = 20
SESSION_COOKIE = "JSESSIONID"
NEW_SESSION = web.RequestKey("new_session", str)
# session ids are secrets.token_urlsafe; a cookie of anything else is ignored unread
_TOKEN_CHARS = re.compile(r"[A-Za-z0-9_-]{16,128}")

# Checks a password against national on a user's first login; set by the sync package.
UpstreamVerify = Callable[[str, str], Awaitable[dict[str, Any] | None]]


class Authenticator:
    def __init__(self, store: Store, index: Callable[[], MetadataIndex],
                 upstream: UpstreamVerify | None = None) -> None:
        self.store = store
        self.index = index
        self.upstream = upstream
        self._basic: dict[str, tuple[str, float]] = {}
        self._inflight: dict[str, asyncio.Future[users_db.User]] = {}
        self._sessions: dict[str, tuple[str, float]] = {}
        self._users: dict[str, tuple[users_db.User, float]] = {}
        self._ip_failures: dict[str, deque[float]] = {}
        self._locks: dict[tuple[str, str], float] | None = None  # loaded on first use
        # one scrypt at a time: a burst of first logins must not starve the request path
        self._kdf = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="scrypt")
        self._dummy: str | None = None

    # -- lookups ----------------------------------------------------------------------
    def _roles(self) -> dict[str, dict[str, Any]]:
        return {r["id"]: r for r in self.index().list("userRoles")}

    async def user_by_name(self, username: str) -> users_db.User | None:
        roles = self._roles()
        return await self.store.read(lambda c: users_db.find_user(c, roles, username=username))

    async def user(self, uid: str) -> users_db.User | None:
        hit = self._users.get(uid)
        now = time.monotonic()
        if hit and hit[1] > now:
            return hit[0]
        roles = self._roles()
        u = await self.store.read(lambda c: users_db.find_user(c, roles, uid=uid))
        if u is not None:
            self._users[uid] = (u, now + 30)
        return u

    def forget(self) -> None:
        self._basic.clear()
        self._users.clear()

    # -- locks ------------------------------------------------------------------------------
    async def _lock_table(self) -> dict[tuple[str, str], float]:
        if self._locks is None:
            self._locks = await self.store.read(users_db.active_lockouts)
        return self._locks

    async def check_not_locked(self, username: str, locked_until: float,
                               client: str | None) -> None:
        """Refuse when the account, or this (username, address) pair, is locked."""
        now = time.time()
        if locked_until > now:
            raise Unauthorized("This account is locked after repeated failed logins; ask the "
                               "IT focal point to unlock it")
        until = (await self._lock_table()).get((username, client or ""), 0.0)
        if until > now:
            minutes = max(1, math.ceil((until - now) / 60))
            raise Unauthorized(
                f"This account is locked on this device after repeated failed logins; try "
                f"again in {minutes} minute{'s' if minutes != 1 else ''}, or ask the IT "
                "focal point")

    async def _usable(self, user: users_db.User | None, request: web.Request
                      ) -> users_db.User | None:
        """A user found by a cached header, token or session, unless disabled or locked."""
        if user is None or user.disabled:
            return None
        await self.check_not_locked(user.username, user.locked_until, request.remote)
        return user

    # -- the request path ---------------------------------------------------------------
    async def authenticate(self, request: web.Request) -> users_db.User | None:
        header = request.headers.get("Authorization", "")
        scheme, _, cred = header.partition(" ")
        scheme = scheme.lower()
        if scheme == "basic":
            return await self._basic_auth(request, header, cred.strip())
        if scheme == "apitoken":
            return await self._token(request, cred.strip())
        if header:
            raise Unauthorized("Unsupported authorization scheme; use Basic or ApiToken")
        sid = request.cookies.get(SESSION_COOKIE)
        if sid and _TOKEN_CHARS.fullmatch(sid):  # anything else was never issued here
            return await self._session(request, sid)
        return None

    async def _basic_auth(self, request: web.Request, header: str, cred: str) -> users_db.User:
        key = hashlib.sha256(header.encode("utf-8", "surrogateescape")).hexdigest()
        now = time.monotonic()
        hit = self._basic.get(key)
        if hit and hit[1] > now:
            u = await self._usable(await self.user(hit[0]), request)
            if u is not None:
                return u
        try:
            username, sep, password = base64.b64decode(cred, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise Unauthorized("Malformed Basic authorization header") from None
        if not sep:
            raise Unauthorized("Malformed Basic authorization header")
        # single flight: the 300 laptops that arrive at 09:00 with the same header wait for
        # one scrypt run, not 300 of them queued one after another
        flight = f"{key}|{request.remote}"  # a lock is per address: so is the flight
        pending = self._inflight.get(flight)
        leader = pending is None
        if pending is None:
            pending = asyncio.ensure_future(self.login(username, password, request.remote, "basic"))
            self._inflight[flight] = pending
            pending.add_done_callback(lambda _f: self._inflight.pop(flight, None))
        user = await asyncio.shield(pending)
        self._basic[key] = (user.uid, now + CACHE_S)
        if leader and SESSION_COOKIE not in request.cookies:
            # as DHIS2 does after a Basic login: the Android SDK then sends only the cookie
            request[NEW_SESSION] = await self.start_session(user)
        return user

    async def _verify(self, verifier: str | None, password: str) -> bool:
        loop = asyncio.get_running_loop()
        if verifier is None:
            # unknown user: the same scrypt run against a verifier nobody's password matches
            if self._dummy is None:
                self._dummy = await loop.run_in_executor(
                    self._kdf, users_db.make_verifier, secrets.token_urlsafe(24))
            await loop.run_in_executor(self._kdf, users_db.check_verifier, self._dummy,
                                       password)
            return False
        return await loop.run_in_executor(self._kdf, users_db.check_verifier, verifier,
                                          password)

    async def login(self, username: str, password: str, client: str | None,
                    method: str) -> users_db.User:
        """Check a username/password; audit it; throttle repeated failures."""
        self._check_ip(client)
        user = await self.user_by_name(username)
        try:
            await self.check_not_locked(username, user.locked_until if user else 0.0, client)
        except Unauthorized:
            await self._record(username, client, method, False, "locked")
            raise
        ok = False
        if user is not None and user.verifier:
            ok = await self._verify(user.verifier, password)
        elif self.upstream is not None:
            # first login at this hub: national vouches for the password while the link is up
            doc = await self.upstream(username, password)
            if doc is not None:
                uid = user.uid if user else doc["id"]
                known = user is not None

                def remember(tx: Any) -> None:
                    if not known:
                        users_db.upsert_user(tx, doc)
                    users_db.set_verifier(tx, uid, password)
                await self.store.write(remember)
                self._users.pop(uid, None)
                user = await self.user(uid)
                ok = user is not None
        else:
            await self._verify(None, password)
        if ok and user is not None and user.disabled:
            # said only to whoever knows the password: a guesser learns nothing
            await self._record(username, client, method, False, "disabled")
            raise Unauthorized("Account is disabled")
        if not ok or user is None:
            self._ip_fail(client)
            await self._record(username, client, method, False, "bad credentials")
            raise Unauthorized("Invalid username or password")
        await self._record(username, client, method, True)
        return user

    async def _record(self, username: str, client: str | None, method: str, ok: bool,
                      reason: str = "") -> None:
        until = await self.store.write(
            lambda tx: users_db.record_login(tx, username, client, method, ok, reason))
        locks = await self._lock_table()
        if until:
            locks[(username, client or "")] = until
        else:
            locks.pop((username, client or ""), None)
        self._users.clear()

    def _check_ip(self, client: str | None) -> None:
        q = self._ip_failures.get(client or "")
        if q is None:
            return
        cutoff = time.monotonic() - 60
        while q and q[0] < cutoff:
            q.popleft()
        if len(q) >= IP_FAILURES_PER_MIN:
            raise TooManyRequests("Too many failed logins from this address; wait a minute")

    def _ip_fail(self, client: str | None) -> None:
        self._ip_failures.setdefault(client or "", deque()).append(time.monotonic())

    async def _token(self, request: web.Request, token: str) -> users_db.User:
        row = await self.store.read(lambda c: users_db.token_owner(c, token))
        if row is None or (row[1] is not None and row[1] < time.time()):
            raise Unauthorized("Invalid or expired API token")
        user = await self._usable(await self.user(row[0]), request)
        if user is None:
            raise Unauthorized("Invalid or expired API token")
        return user

    async def _session(self, request: web.Request, sid: str) -> users_db.User | None:
        now = time.time()
        hit = self._sessions.get(sid)
        if hit is None:
            hit = await self.store.read(lambda c: users_db.session_owner(c, sid))
            if hit is None:
                return None
            self._sessions[sid] = hit
        if hit[1] < now:
            self._sessions.pop(sid, None)
            return None
        return await self._usable(await self.user(hit[0]), request)

    async def start_session(self, user: users_db.User) -> str:
        sid = await self.store.write(lambda tx: users_db.new_session(tx, user.uid))
        return sid

    async def end_session(self, sid: str) -> None:
        self._sessions.pop(sid, None)
        await self.store.write(lambda tx: users_db.end_session(tx, sid))
