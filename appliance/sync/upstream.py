"""First login at the hub, checked against national (DESIGN.md §7).

The hub never holds national password hashes. When a user without a verifier logs in,
the hub's ``Authenticator`` calls this with the username and password it was given; we
ask national's ``/api/me`` with *the user's own* Basic credentials. If national accepts,
the authenticator stores a salted scrypt verifier, and later logins work offline.

Returns the user document (org units, roles) or ``None`` when national says the
credentials are wrong. When national cannot be asked (link down, national failing) it
raises ``Unauthorized`` with a message saying so: that is not a failed password, so it
does not count towards the lockout. Lockout and rate limits are the authenticator's and
are checked before this is called, so a locked account never reaches national.

``create_app`` wires it for a hub whose ``[national] url`` is set. Each check's bytes on
the modem count as ``other`` in ``wire_bytes`` (one commit per check: first logins are
rare, and each one is audited in a commit of its own anyway).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from typing import Any

import aiohttp
import orjson

from ..config import Config
from ..errors import Unauthorized
from ..store import Store, wirebytes
from ..store.metadata import known_uids
from ..store.synclog import state_value
from .metadata import strip_user

log = logging.getLogger(__name__)

ME_FIELDS = ("id,username,name,displayName,firstName,surname,disabled,lastUpdated,"
             "organisationUnits[id,path],dataViewOrganisationUnits[id],"
             "teiSearchOrganisationUnits[id],userRoles[id],userGroups[id],"
             "userCredentials[username,disabled,userRoles[id]]")
UNREACHABLE = ("This is your first login at this hub, so your password must be checked with "
               "national DHIS2, which cannot be reached right now. Try again when the hub is "
               "online, or ask the IT focal point for a hub account.")


class Upstream:
    """Callable ``(username, password) -> user doc | None`` for the hub's authenticator."""

    def __init__(self, config: Config, store: Store | None = None, *,
                 timeout_s: float = 10.0) -> None:
        self.url = (config.get("national", "url") or "").rstrip("/")
        self.root = config.get("hub", "org_unit") or ""
        self.store = store
        self.timeout_s = timeout_s
        self.calls = 0

    async def close(self) -> None:
        """Nothing to release: first logins are rare, each uses its own connection."""

    async def _hub_root(self) -> str:
        if self.root or self.store is None:
            return self.root
        value = await self.store.read(lambda c: state_value(c, "root_org_unit"))
        return str(value) if value is not None else ""

    async def __call__(self, username: str, password: str) -> dict[str, Any] | None:
        if not self.url:
            raise Unauthorized("This hub has no national DHIS2 configured, so only hub "
                               "accounts can log in")
        self.calls += 1
        cred = base64.b64encode(f"{username}:{password}".encode()).decode()
        headers = {"Authorization": f"Basic {cred}", "Accept": "application/json"}
        wire = [0, 0]
        try:
            async with aiohttp.ClientSession() as session, session.get(
                    f"{self.url}/api/me", params={"fields": ME_FIELDS}, headers=headers,
                    timeout=aiohttp.ClientTimeout(total=self.timeout_s),
                    allow_redirects=False) as resp:
                # as the sync client estimates a request: line, headers, ~120 of aiohttp's
                wire[0] = len(str(resp.url)) + 20 + sum(
                    len(k) + len(v) + 4 for k, v in headers.items()) + 120
                body = await resp.read()
                status = resp.status
                wire[1] = len(body) + 20 + sum(len(k) + len(v) + 4 for k, v in resp.raw_headers)
        except (TimeoutError, aiohttp.ClientError, OSError, asyncio.CancelledError) as e:
            if isinstance(e, asyncio.CancelledError):
                raise
            log.info("first login of %s: national unreachable (%s)", username, e)
            await self._count(wire)
            raise Unauthorized(UNREACHABLE) from None
        await self._count(wire)
        if status in (401, 403) or 300 <= status < 400:
            return None
        if status != 200:
            log.warning("first login of %s: national answered HTTP %s", username, status)
            raise Unauthorized(UNREACHABLE)
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise Unauthorized(UNREACHABLE) from None
        if not isinstance(doc, dict) or not isinstance(doc.get("id"), str):
            raise Unauthorized(UNREACHABLE)
        name = doc.get("username") or (doc.get("userCredentials") or {}).get("username")
        if str(name or "").lower() != username.lower():
            return None
        if doc.get("disabled") or (doc.get("userCredentials") or {}).get("disabled"):
            return None
        if not await self._in_subtree(doc):
            raise Unauthorized("Your DHIS2 account is not assigned to this hub's upazila; log "
                               "in to national DHIS2 instead")
        doc["username"] = name
        return strip_user(doc)

    async def _count(self, wire: list[int]) -> None:
        if self.store is None or not any(wire):
            return
        counts = {wirebytes.OTHER: (wire[0], wire[1])}
        now = time.time()
        try:
            await self.store.write(lambda tx: wirebytes.record(tx, counts, now))
        except Exception:  # noqa: BLE001 - a login must not fail over its byte count
            log.warning("first login: could not record its bytes", exc_info=True)

    async def _in_subtree(self, doc: dict[str, Any]) -> bool:
        root = await self._hub_root()
        ous = [o for o in doc.get("organisationUnits") or [] if isinstance(o, dict)]
        if not ous:
            return False
        if root:
            return all(f"/{root}/" in (o.get("path") or "") + "/" or o.get("id") == root
                       for o in ous)
        if self.store is None:
            return True
        ids = [o.get("id") for o in ous]
        known = await self.store.read(lambda c: known_uids(c, "organisationUnits", ids))
        return all(i in known for i in ids)
