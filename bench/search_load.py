"""The users of ``search_bench``, in their own process: ``python -m bench.search_load``
reads the run's spec (JSON) on stdin and prints the latencies (JSON) on stdout.

``open``: each user types a look-up; the debounced search fires every 300-500 ms with
the text typed so far (1-3 more characters each time), on schedule whether or not the
last answer came back (a page keeps typing; the answer it no longer needs still costs
the hub). A person the search did not find (a new one) is then registered: the user
fills the form (1-2 s: compressed, to get enough registrations for a p99), waits for
the duplicate check, and registers them. For one registered person in four the user
starts registering anyway: the duplicate check finds them and the record is opened (or,
if it misses them, they are registered again, as would happen). Then a pause (1-2 s)
and the next look-up.

``closed``: each user sends three searches and a duplicate check in turn, each the
moment the last answer is back.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from typing import Any

import aiohttp

from appliance import demo
from appliance.dhis2.uid import generate_uid


class _Meta:
    def __init__(self) -> None:
        doc = demo.hub()
        self.attr = {a["code"]: a["id"] for a in doc["trackedEntityAttributes"]}
        self.te_type = next(t["id"] for t in doc["trackedEntityTypes"]
                            if t.get("code") == "BD_PERSON")
        self.program = {p["code"]: p["id"] for p in doc["programs"]}


def _registration(meta: _Meta, form: dict[str, str], ou: str) -> dict[str, Any]:
    te = generate_uid()
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000")
    attrs = [{"attribute": meta.attr[c], "value": v} for c, v in form.items()
             if c in meta.attr and c != "BD_BRN"]  # a BRN is reserved at registration
    woman = form.get("BD_RELATION_NAME") and int(form.get("BD_AGE_YEARS") or 0) >= 12
    program = meta.program["BD_MATERNAL" if woman else "BD_U5"]
    enr = {"enrollment": generate_uid(), "trackedEntity": te, "program": program,
           "orgUnit": ou, "status": "ACTIVE", "enrolledAt": now[:10] + "T00:00:00.000",
           "occurredAt": now[:10] + "T00:00:00.000", "createdAtClient": now,
           "updatedAtClient": now}
    return {"trackedEntities": [{"trackedEntity": te, "trackedEntityType": meta.te_type,
                                 "orgUnit": ou, "attributes": attrs, "createdAtClient": now,
                                 "updatedAtClient": now}],
            "enrollments": [enr]}


class _Run:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.url = spec["url"]
        self.work = spec["work"]
        self.seconds = float(spec["seconds"])
        self.ou: dict[str, str] = dict(spec["users"])
        self.users = list(self.ou)
        self.password = spec["password"]
        self.meta = _Meta()
        self.times: dict[str, list[float]] = {"search": [], "duplicates": [], "register": [],
                                              "registration": []}
        self.errors: list[str] = []
        self.late: list[float] = []  # how late the client sent a scheduled search (ms)
        self.found_known = self.missed_known = self.registered = 0
        self.requests = 0
        self._next = 0

    def take(self) -> dict[str, Any]:
        w = self.work[self._next % len(self.work)]
        self._next += 1
        return dict(w)

    async def _get(self, http: aiohttp.ClientSession, q: str) -> None:
        t = time.perf_counter()
        async with http.get(self.url + "/api/hub/people", params={"q": q}) as r:
            body = await r.read()
        self.times["search"].append((time.perf_counter() - t) * 1000)
        self.requests += 1
        if r.status != 200:
            self.errors.append(f"search {r.status} {body[:200]!r}")

    async def _dup(self, http: aiohttp.ClientSession, form: dict[str, str]) -> list[Any]:
        t = time.perf_counter()
        async with http.post(self.url + "/api/hub/people/duplicates",
                             json={"attributes": form}) as r:
            body = await r.json()
        self.times["duplicates"].append((time.perf_counter() - t) * 1000)
        self.requests += 1
        if r.status != 200:
            self.errors.append(f"duplicates {r.status} {str(body)[:200]}")
            return []
        return list(body.get("candidates") or [])

    async def _register(self, http: aiohttp.ClientSession, payload: dict[str, Any]) -> float:
        t = time.perf_counter()
        async with http.post(self.url + "/api/tracker", params={"async": "false"},
                             json=payload) as r:
            body = await r.json()
        ms = (time.perf_counter() - t) * 1000
        self.times["register"].append(ms)
        self.requests += 1
        if r.status != 200 or body.get("status") != "OK":
            self.errors.append(f"register {r.status} {str(body)[:300]}")
        return ms

    async def session(self, user: str) -> aiohttp.ClientSession:
        http = aiohttp.ClientSession(
            auth=aiohttp.BasicAuth(user, self.password),
            cookie_jar=aiohttp.CookieJar(unsafe=True),
            connector=aiohttp.TCPConnector(limit=0))
        async with http.get(self.url + "/api/me") as r:  # log in (one scrypt), unmeasured
            await r.read()
            if r.status != 200:
                raise RuntimeError(f"login {user}: {r.status}")
        return http

    async def open_user(self, user: str, http: aiohttp.ClientSession, seed: int,
                        end: float) -> None:
        rng = random.Random(seed)
        ou = self.ou[user]
        pending: set[asyncio.Task[None]] = set()
        await asyncio.sleep(rng.uniform(0, 0.5))
        while time.monotonic() < end:
            w = self.take()
            text = w["text"]
            n = min(len(text), rng.randint(2, 3))
            due = time.monotonic()
            while True:
                late = (time.monotonic() - due) * 1000
                self.late.append(late)
                task = asyncio.create_task(self._get(http, text[:n]))
                pending.add(task)
                task.add_done_callback(pending.discard)
                if n >= len(text):
                    break
                n = min(len(text), n + rng.randint(1, 3))
                due += rng.uniform(0.3, 0.5)
                await asyncio.sleep(max(0.0, due - time.monotonic()))
            # a new person is registered; a registered one the search showed is opened,
            # but one CHCP in four starts registering them anyway
            if (not w["known"] or rng.random() < 0.25) and time.monotonic() < end:
                await asyncio.sleep(rng.uniform(1.0, 2.0))  # filling in the form
                t = time.perf_counter()
                cands = await self._dup(http, w["form"])
                dup_ms = (time.perf_counter() - t) * 1000
                if cands and w["known"]:
                    self.found_known += 1  # the CHCP opens the existing record
                else:
                    if w["known"]:
                        self.missed_known += 1
                    reg_ms = await self._register(http, _registration(self.meta, w["form"], ou))
                    self.times["registration"].append(dup_ms + reg_ms)
                    self.registered += 1
            await asyncio.sleep(rng.uniform(1.0, 2.0))
        if pending:
            await asyncio.gather(*pending)

    async def closed_user(self, http: aiohttp.ClientSession, end: float) -> None:
        i = 0
        while time.monotonic() < end:
            w = self.take()
            if i % 4 == 3:
                await self._dup(http, w["form"])
            else:
                await self._get(http, w["text"])
            i += 1

    async def run(self, mode: str) -> dict[str, Any]:
        sessions = []
        for u in self.users:  # one login at a time: the hub runs one scrypt at a time
            sessions.append(await self.session(u))
        t0 = time.monotonic()
        end = t0 + self.seconds
        try:
            if mode == "open":
                await asyncio.gather(*(self.open_user(u, h, i, end)
                                       for i, (u, h) in enumerate(zip(self.users, sessions,
                                                                      strict=True))))
            else:
                await asyncio.gather(*(self.closed_user(h, end) for h in sessions))
        finally:
            for h in sessions:
                await h.close()
        wall = time.monotonic() - t0
        return {"wall_s": round(wall, 1), "requests": self.requests,
                "rps": round(self.requests / wall, 1),
                "search_rps": round(len(self.times["search"]) / wall, 1),
                "times": self.times, "errors": self.errors[:20], "error_count": len(self.errors),
                "late_ms": self.late, "registered": self.registered,
                "dup_check_found_known": self.found_known,
                "dup_check_missed_known": self.missed_known}


def main() -> None:
    spec = json.loads(sys.stdin.read())
    out = asyncio.run(_Run(spec).run(spec["mode"]))
    sys.stdout.write(json.dumps(out))


if __name__ == "__main__":
    main()
