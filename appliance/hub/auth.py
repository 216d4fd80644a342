"""LAN authentication: Basic, ``ApiToken`` PATs and session cookies (DHIS2 §8).

scrypt is deliberately slow, so a verified Basic header is cached (by its SHA-256,
never the password) for a few minutes; 300 clients re-sending Basic on every
request must not cost 300 scrypt runs a second.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import concurrent.futures
import hashlib
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
        # one scrypt at a time: a burst of first logins must not starve the request path
        self._kdf = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="scrypt")

    # -- lookups ----------------------------------------------------------------------
    async def user_by(self, column: str, value: str) -> users_db.User | None:
        roles = {r["id"]: r for r in self.index().list("userRoles")}

        def q(conn: Any) -> users_db.User | None:
            row = conn.execute(f"SELECT * FROM users WHERE {column}=?", (value,)).fetchone()
            return users_db.user_from_row(row, roles) if row else None
        return await self.store.read(q)

    async def user(self, uid: str) -> users_db.User | None:
        hit = self._users.get(uid)
        now = time.monotonic()
        if hit and hit[1] > now:
            return hit[0]
        u = await self.user_by("uid", uid)
        if u is not None:
            self._users[uid] = (u, now + 30)
        return u

    def forget(self) -> None:
        self._basic.clear()
        self._users.clear()

    # -- the request path ---------------------------------------------------------------
    async def authenticate(self, request: web.Request) -> users_db.User | None:
        header = request.headers.get("Authorization", "")
        scheme, _, cred = header.partition(" ")
        scheme = scheme.lower()
        if scheme == "basic":
            return await self._basic_auth(request, header, cred.strip())
        if scheme == "apitoken":
            return await self._token(cred.strip())
        if header:
            raise Unauthorized("Unsupported authorization scheme; use Basic or ApiToken")
        sid = request.cookies.get(SESSION_COOKIE)
        if sid:
            return await self._session(sid)
        return None

    async def _basic_auth(self, request: web.Request, header: str, cred: str) -> users_db.User:
        key = hashlib.sha256(header.encode()).hexdigest()
        now = time.monotonic()
        hit = self._basic.get(key)
        if hit and hit[1] > now:
            u = await self.user(hit[0])
            if u is not None and not u.disabled:
                return u
        try:
            username, sep, password = base64.b64decode(cred, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise Unauthorized("Malformed Basic authorization header") from None
        if not sep:
            raise Unauthorized("Malformed Basic authorization header")
        # single flight: the 300 laptops that arrive at 09:00 with the same header wait for
        # one scrypt run, not 300 of them queued one after another
        pending = self._inflight.get(key)
        leader = pending is None
        if pending is None:
            pending = asyncio.ensure_future(self.login(username, password, request.remote, "basic"))
            self._inflight[key] = pending
            pending.add_done_callback(lambda _f: self._inflight.pop(key, None))
        user = await asyncio.shield(pending)
        self._basic[key] = (user.uid, now + CACHE_S)
        if leader and SESSION_COOKIE not in request.cookies:
            # as DHIS2 does after a Basic login: the Android SDK then sends only the cookie
            request[NEW_SESSION] = await self.start_session(user)
        return user

    async def login(self, username: str, password: str, client: str | None,
                    method: str) -> users_db.User:
        """Check a username/password; audit it; lock out after repeated failures."""
        self._check_ip(client)
        user = await self.user_by("username", username)
        if user is not None and user.locked_until > time.time():
            await self._record(username, client, method, False, "locked")
            raise Unauthorized("Account is locked after repeated failed logins; "
                               "try again later or ask the IT focal point")
        if user is not None and user.disabled:
            await self._record(username, client, method, False, "disabled")
            raise Unauthorized("Account is disabled")
        ok = False
        if user is not None and user.verifier:
            loop = asyncio.get_running_loop()
            ok = await loop.run_in_executor(self._kdf, users_db.check_verifier, user.verifier,
                                            password)
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
                user = await self.user_by("uid", uid)
                ok = user is not None
        if not ok or user is None:
            self._ip_fail(client)
            await self._record(username, client, method, False, "bad credentials")
            raise Unauthorized("Invalid username or password")
        await self._record(username, client, method, True)
        return user

    async def _record(self, username: str, client: str | None, method: str, ok: bool,
                      reason: str = "") -> None:
        await self.store.write(
            lambda tx: users_db.record_login(tx, username, client, method, ok, reason))
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

    async def _token(self, token: str) -> users_db.User:
        h = users_db.token_hash(token)

        def q(conn: Any) -> tuple[str, float | None] | None:
            row = conn.execute("SELECT user_uid, expires FROM api_tokens WHERE token_hash=?",
                               (h,)).fetchone()
            return (row[0], row[1]) if row else None
        row = await self.store.read(q)
        if row is None or (row[1] is not None and row[1] < time.time()):
            raise Unauthorized("Invalid or expired API token")
        user = await self.user(row[0])
        if user is None or user.disabled:
            raise Unauthorized("Invalid or expired API token")
        return user

    async def _session(self, sid: str) -> users_db.User | None:
        now = time.time()
        hit = self._sessions.get(sid)
        if hit is None:
            def q(conn: Any) -> tuple[str, float] | None:
                row = conn.execute("SELECT user_uid, expires FROM sessions WHERE id=?",
                                   (sid,)).fetchone()
                return (row[0], row[1]) if row else None
            hit = await self.store.read(q)
            if hit is None:
                return None
            self._sessions[sid] = hit
        if hit[1] < now:
            self._sessions.pop(sid, None)
            return None
        user = await self.user(hit[0])
        return user if user is not None and not user.disabled else None

    async def start_session(self, user: users_db.User) -> str:
        sid = await self.store.write(lambda tx: users_db.new_session(tx, user.uid))
        return sid

    async def end_session(self, sid: str) -> None:
        self._sessions.pop(sid, None)
        await self.store.write(lambda tx: users_db.end_session(tx, sid))
