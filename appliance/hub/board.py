"""The reporting board (issue 14): every clinic × form of a month, the upazila's reporting
rates, live.

``GET /api/hub/board?pe=YYYYMM`` answers the whole board in the user's view scope;
``GET /api/hub/board/events?pe=YYYYMM`` is its Server-Sent Events stream: the whole board
first (event ``board``), then the cells that changed with the new rates (event ``cells``).

How changes are found: every write that can move a cell commits to the one SQLite file,
whichever process makes it (this server's data entry, the sync process's acknowledgements
and pulls). One task polls ``PRAGMA data_version`` on a connection of its own every
``POLL_S``; when it moved, the board of every month someone is watching is read once,
compared with the last one, and the changed cells go to every subscriber as one message
serialised once per view scope. Nothing is read per board, and an idle hub reads nothing
but the pragma.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from ..dhis2.periods import Period, parse_period, shift
from ..errors import BadRequest, NotAcceptable, TooManyRequests, Unauthorized
from ..i18n import N_, translator
from ..store import Store, reporting
from ..store.metadata import MetadataIndex
from ..store.reporting import Form, FormStatus
from ..store.users import User
from .web import STATE, STORE, USER_KEY, add_api, dumps, json_response

log = logging.getLogger(__name__)

POLL_S = 0.25           # how often data_version is looked at: a change shows within ~0.5 s
KEEPALIVE_S = 15.0      # a comment line keeps proxies and dead-peer detection honest
STREAM_MAX_S = 3600.0   # a stream ends after an hour; EventSource reconnects (and re-auths)
RETRY_MS = 2000         # EventSource's reconnect delay
QUEUE_MAX = 32          # a subscriber this far behind is dropped; it reconnects to a full board
MAX_SUBSCRIBERS = 1000
MONTHS_BACK = 36        # how far back the board goes


def default_period(today: datetime | None = None) -> str:
    """The month CHCPs report on reporting day: the previous one."""
    d = today or datetime.now(UTC)
    m = d.year * 12 + d.month - 2
    return f"{m // 12}{m % 12 + 1:02d}"


def month_of(pe: str | None, today: datetime | None = None) -> Period:
    tr = translator()
    if not pe:
        pe = default_period(today)
    try:
        period = parse_period(pe)
    except ValueError:
        raise BadRequest(tr(N_("Period not valid: `{pe}`"), pe=pe[:32])) from None
    d = today or datetime.now(UTC)
    now = d.year * 12 + d.month - 1
    idx = period.start.year * 12 + period.start.month - 1
    if period.period_type != "Monthly" or not now - MONTHS_BACK <= idx <= now:
        raise BadRequest(tr(N_("The board shows one of the last {n} months (YYYYMM): `{pe}`"),
                            n=MONTHS_BACK, pe=pe[:32]))
    return period


def _rows(index: MetadataIndex, forms: Sequence[Form]) -> list[str]:
    """The org units of the board: every one assigned a monthly form, by name (the UHC,
    higher in the tree, first)."""
    ous = {ou for f in forms if f.period_type == "Monthly" for ou in f.org_units}
    def key(ou: str) -> tuple[int, str]:
        doc = index.get(ou) or {}
        return int(doc.get("level") or 99), str(doc.get("name") or ou)
    return sorted(ous, key=key)


def cell_json(s: FormStatus) -> dict[str, Any]:
    return {"ou": s.ou, "ds": s.ds, "state": s.state, "expected": s.expected,
            "filled": s.filled, "cells": s.cells, "completedOn": s.completed_on,
            "completedBy": s.completed_by, "onTime": s.on_time, "sync": s.sync,
            "errorCode": s.error_code, "reason": s.reason}


def _rates(statuses: Sequence[FormStatus], forms: Sequence[Form]) -> dict[str, Any]:
    return {"all": reporting.rates(statuses).as_dict(),
            "byDataSet": {f.uid: reporting.rates(s for s in statuses if s.ds == f.uid).as_dict()
                          for f in forms}}


def scope_key(user: User) -> tuple[str, ...]:
    """Users who see the same org units share a key (and one serialised message)."""
    if not user.view_org_units:
        return ("*",) if user.is_superuser else ()
    return tuple(sorted(user.view_org_units))


@dataclass
class Month:
    """The last board read for one month, and who is watching it."""

    period: Period
    statuses: dict[tuple[str, str], FormStatus] = field(default_factory=dict)
    subscribers: set[Subscriber] = field(default_factory=set)


@dataclass(eq=False)
class Subscriber:
    user: User
    key: tuple[str, ...]
    queue: asyncio.Queue[bytes | None] = field(
        default_factory=lambda: asyncio.Queue(QUEUE_MAX))


class BoardFeed:
    """The one change watcher and the boards' subscribers, per app."""

    def __init__(self, store: Store, index: Any) -> None:
        self.store = store
        self._index = index  # callable: the current MetadataIndex
        self.months: dict[str, Month] = {}
        self._forms: tuple[int, list[Form], list[str]] | None = None
        self._wake = asyncio.Event()
        self.recomputes = 0  # reads of a month's board made (tests, bench)

    # -- what the board shows
    def forms(self) -> tuple[MetadataIndex, list[Form], list[str]]:
        index: MetadataIndex = self._index()
        if self._forms is None or self._forms[0] != id(index):
            forms = [f for f in reporting.forms_of_index(index) if f.period_type == "Monthly"]
            self._forms = (id(index), forms, _rows(index, forms))
        return index, self._forms[1], self._forms[2]

    async def read(self, period: Period) -> dict[tuple[str, str], FormStatus]:
        _index, forms, rows = self.forms()
        got = await self.store.read(lambda c: reporting.month_status(c, forms, period.id, rows))
        self.recomputes += 1
        return {(s.ou, s.ds): s for s in got}

    def board(self, period: Period, statuses: dict[tuple[str, str], FormStatus],
              user: User) -> dict[str, Any]:
        index, forms, rows = self.forms()
        visible = [ou for ou in rows if user.can_view(index, ou)]
        seen = set(visible)
        mine = [s for (ou, _ds), s in statuses.items() if ou in seen]

        def name(uid: str | None) -> str:
            doc = index.get(uid or "") or {}
            return str(doc.get("displayName") or doc.get("name") or uid or "")

        def parent(ou: str) -> str | None:
            p = ((index.get(ou) or {}).get("parent") or {}).get("id")
            return name(p) if p else None
        return {
            "period": period.id, "startDate": period.start.isoformat(),
            "endDate": period.end.isoformat(),
            "previous": shift(period, -1).id, "next": shift(period, 1).id,
            "orgUnits": [{"id": ou, "name": name(ou), "parent": parent(ou)} for ou in visible],
            "dataSets": [{"id": f.uid, "name": f.name, "timelyDays": f.timely_days,
                          "cells": f.size} for f in forms],
            "cells": [cell_json(s) for s in mine],
            "rates": _rates(mine, forms),
        }

    # -- subscribers
    def subscriber_count(self) -> int:
        return sum(len(m.subscribers) for m in self.months.values())

    async def subscribe(self, period: Period, user: User) -> tuple[Subscriber, bytes]:
        if self.subscriber_count() >= MAX_SUBSCRIBERS:
            raise TooManyRequests(translator()(N_("Too many boards are open; try again soon")))
        month = self.months.get(period.id)
        if month is None:
            month = self.months[period.id] = Month(period)
            month.statuses = await self.read(period)
        sub = Subscriber(user, scope_key(user))
        month.subscribers.add(sub)
        self._wake.set()
        return sub, sse("board", self.board(period, month.statuses, user))

    def unsubscribe(self, period: Period, sub: Subscriber) -> None:
        month = self.months.get(period.id)
        if month is None:
            return
        month.subscribers.discard(sub)
        if not month.subscribers:
            del self.months[period.id]

    async def refresh(self) -> int:
        """Read every watched month again and send what changed; returns messages queued."""
        sent = 0
        for pe, month in list(self.months.items()):
            new = await self.read(month.period)
            old, month.statuses = month.statuses, new
            changed = [s for k, s in new.items() if old.get(k) != s]
            if not changed or pe not in self.months:
                continue
            sent += self._fan_out(month, changed)
        return sent

    def _fan_out(self, month: Month, changed: list[FormStatus]) -> int:
        index, forms, _rows_ = self.forms()
        per_scope: dict[tuple[str, ...], bytes | None] = {}
        sent = 0
        for sub in list(month.subscribers):
            if sub.key not in per_scope:  # one serialisation per view scope
                mine = [s for s in changed if sub.user.can_view(index, s.ou)]
                if not mine:
                    per_scope[sub.key] = None
                else:
                    visible = [s for s in month.statuses.values()
                               if sub.user.can_view(index, s.ou)]
                    per_scope[sub.key] = sse("cells", {
                        "period": month.period.id, "cells": [cell_json(s) for s in mine],
                        "rates": _rates(visible, forms)})
            msg = per_scope[sub.key]
            if msg is None:
                continue
            try:
                sub.queue.put_nowait(msg)
                sent += 1
            except asyncio.QueueFull:  # too slow: drop it, EventSource reconnects
                month.subscribers.discard(sub)
                with contextlib.suppress(asyncio.QueueFull):
                    sub.queue.get_nowait()
                    sub.queue.put_nowait(None)
        return sent

    # -- the watcher
    async def run(self) -> None:
        conn: sqlite3.Connection = await asyncio.to_thread(self.store.own_reader)
        try:
            version = await asyncio.to_thread(reporting.data_version, conn)
            index_id = id(self._index())
            while True:
                if not self.months:
                    self._wake.clear()
                    await self._wake.wait()
                await asyncio.sleep(POLL_S)
                try:
                    v = await asyncio.to_thread(reporting.data_version, conn)
                    if v == version and id(self._index()) == index_id:
                        continue
                    version, index_id = v, id(self._index())
                    await self.refresh()
                except Exception:  # keep watching; the next change tries again
                    log.exception("board refresh failed")
        finally:
            conn.close()


def sse(event: str, data: Any) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + dumps(data) + b"\n\n"


BOARD = web.AppKey("board", BoardFeed)


def _user(request: web.Request) -> User:
    user: User | None = request.get(USER_KEY)
    if user is None:
        raise Unauthorized("Unauthorized")
    return user


async def get_board(request: web.Request) -> web.Response:
    user = _user(request)
    period = month_of(request.query.get("pe"))
    feed = request.app[BOARD]
    month = feed.months.get(period.id)
    statuses = month.statuses if month is not None else await feed.read(period)
    return json_response(feed.board(period, statuses, user),
                         headers={"Cache-Control": "no-store"})


async def board_events(request: web.Request) -> web.StreamResponse:
    user = _user(request)
    if "text/event-stream" not in request.headers.get("Accept", ""):
        raise NotAcceptable(translator()(N_(
            "This is an event stream: open it with EventSource (Accept: text/event-stream)")))
    period = month_of(request.query.get("pe"))
    feed = request.app[BOARD]
    sub, first = await feed.subscribe(period, user)
    resp = web.StreamResponse(headers={
        "Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-store",
        "X-Accel-Buffering": "no"})
    try:
        await resp.prepare(request)
        await resp.write(f"retry: {RETRY_MS}\n\n".encode() + first)
        end = time.monotonic() + STREAM_MAX_S
        while time.monotonic() < end:
            try:
                msg = await asyncio.wait_for(sub.queue.get(), KEEPALIVE_S)
            except TimeoutError:
                msg = b": keepalive\n\n"
            if msg is None:
                break
            await resp.write(msg)
    except ConnectionResetError:
        pass  # the board was closed
    finally:
        feed.unsubscribe(period, sub)
    return resp


async def _watch(app: web.Application) -> AsyncIterator[None]:
    task = asyncio.create_task(app[BOARD].run())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def setup(app: web.Application) -> None:
    app[BOARD] = BoardFeed(app[STORE], lambda: app[STATE].index)
    add_api(app, "GET", "/hub/board", get_board)
    add_api(app, "GET", "/hub/board/events", board_events)
    app.cleanup_ctx.append(_watch)
