"""The fleet service: heartbeat intake, JSON API, dashboard pages and ``/metrics``.

Run it through ``make_runner``/``start``: heartbeat signatures cover the *compressed*
body, so aiohttp must not inflate request bodies itself (``auto_decompress=False``); the
app refuses to start otherwise rather than reject every hub with 401.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from ..config import Config
from ..dhis2.webmessage import web_message
from ..errors import (
    ApplianceError,
    BadRequest,
    FleetError,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
    UnsupportedMediaType,
)
from . import metrics, pages, queries
from .alerts import STATE_RANK, Thresholds
from .db import FleetDB, reevaluate_all
from .models import decode_body, iso, parse_heartbeat
from .tokens import signature_ok

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MAX_BODY = 1024 * 1024  # compressed heartbeat body
PAGE_SIZE = 100  # dashboard rows per page: small first page on a slow link
API_PAGE_SIZE = 50
MAX_API_PAGE_SIZE = 1000
# default rejection reasons (metrics label) by status, when the error names none
_REASONS = {400: "bad_request", 401: "auth", 403: "hub_mismatch", 409: "replay",
            413: "too_large", 415: "content_type"}


@dataclass
class Fleet:
    """Everything the handlers share, behind one typed app key."""

    config: Config
    db: FleetDB
    thresholds: Thresholds
    max_skew_s: float
    retention_days: float
    clock: Callable[[], float] = time.time
    stats: metrics.IngestStats = field(default_factory=metrics.IngestStats)
    own_db: bool = False
    raw_bodies: bool = False  # set by make_runner
    sweep_s: float = 15.0
    prune_s: float = 3600.0


FLEET = web.AppKey("fleet", Fleet)


def create_app(config: Config, db: FleetDB | None = None, *,
               clock: Callable[[], float] = time.time) -> web.Application:
    f = config.section("fleet")
    own = db is None
    if db is None:
        db = FleetDB(config.data_dir / "fleet.db")
    fleet = Fleet(config=config, db=db, thresholds=Thresholds.from_config(config),
                  max_skew_s=float(f["max_skew_s"]), retention_days=float(f["retention_days"]),
                  clock=clock, own_db=own)
    app = web.Application(client_max_size=MAX_BODY, middlewares=[errors])
    app[FLEET] = fleet
    r = app.router
    r.add_post("/api/heartbeats", post_heartbeat)
    r.add_get("/api/hubs", api_hubs)
    r.add_get("/api/hubs/{hub_id}", api_hub)
    r.add_get("/api/alerts", api_alerts)
    r.add_get("/metrics", get_metrics)
    r.add_get("/", dashboard)
    r.add_get("/hubs/{hub_id}", hub_page)
    r.add_get("/alerts", alerts_page)
    app.cleanup_ctx.append(_background)
    return app


def make_runner(app: web.Application) -> web.AppRunner:
    app[FLEET].raw_bodies = True
    return web.AppRunner(app, auto_decompress=False, access_log=None, handle_signals=False)


async def start(app: web.Application, host: str = "127.0.0.1", port: int = 0
                ) -> tuple[web.AppRunner, str]:
    """Serve ``app``; returns the runner (``await runner.cleanup()`` to stop) and base URL."""
    runner = make_runner(app)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=1024, reuse_address=True)
    await site.start()
    bound = runner.addresses[0][1]
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
    return runner, f"http://{shown}:{bound}"


# ----------------------------------------------------------------------- background
async def _background(app: web.Application) -> AsyncIterator[None]:
    fleet = app[FLEET]
    if not fleet.raw_bodies:
        raise FleetError("serve the fleet app with appliance.fleet.web.make_runner(): "
                         "signatures need the raw compressed body (auto_decompress=False)")
    # thresholds may differ from the last run: bring every hub's state up to date
    n = await fleet.db.write(lambda c: reevaluate_all(c, fleet.clock(), fleet.thresholds))
    log.info("fleet: %d hubs enrolled", n)

    async def sweep() -> None:
        await fleet.db.sweep(fleet.clock(), fleet.thresholds)

    async def prune() -> None:
        deleted = await fleet.db.prune(fleet.clock(), fleet.retention_days)
        if deleted:
            log.info("fleet: pruned %d rows older than %g days", deleted, fleet.retention_days)

    tasks = [asyncio.create_task(_every(fleet.sweep_s, sweep, "alert sweep")),
             asyncio.create_task(_every(fleet.prune_s, prune, "retention prune",
                                        first=min(60.0, fleet.prune_s)))]
    yield
    for t in tasks:
        t.cancel()
    for t in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await t
    if fleet.own_db:
        fleet.db.close()


async def _every(interval: float, job: Callable[[], Awaitable[None]], name: str, *,
                 first: float | None = None) -> None:
    await asyncio.sleep(interval if first is None else first)
    while True:
        try:
            await job()
        except Exception:  # keep the loop alive; the next round may succeed
            log.exception("fleet: %s failed", name)
        await asyncio.sleep(interval)


# ----------------------------------------------------------------------------- errors
def _is_api(request: web.Request) -> bool:
    return request.path.startswith("/api/") or request.path == "/metrics"


def error_response(request: web.Request, status: int, message: str,
                   error_code: str | None = None) -> web.Response:
    if _is_api(request):
        resp = json_response(web_message(status, message, error_code=error_code), status)
    else:
        resp = web.Response(text=pages.error_page(status, message), status=status,
                            content_type="text/html")
    if status == 401:
        resp.headers["WWW-Authenticate"] = 'Bearer realm="fleet"'
    return resp


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure is a DHIS2 WebMessage (or an HTML page for pages); never a traceback."""
    try:
        return await handler(request)
    except ApplianceError as e:
        return error_response(request, e.http_status, e.message, e.error_code)
    except web.HTTPException as e:
        if e.status < 400:
            raise
        if e.status == 404:
            text = f"No resource at {request.method} {request.path}"
        elif e.status == 405:
            text = f"Method {request.method} is not supported at {request.path}"
        elif e.status == 413:
            text = "Request body is too large"
        else:
            text = e.reason
        return error_response(request, e.status, text)
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(request, 500, "The fleet service could not complete this "
                                             "request; it has been logged")


def _compress(request: web.Request, resp: web.Response) -> web.Response:
    # gzip explicitly: aiohttp would pick deflate first, which some proxies mangle
    if "gzip" in request.headers.get("Accept-Encoding", "").lower():
        resp.enable_compression(web.ContentCoding.gzip)
    return resp


def json_response(obj: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(obj), status=status, content_type="application/json")


# -------------------------------------------------------------------------- heartbeats
async def post_heartbeat(request: web.Request) -> web.Response:
    fleet = request.app[FLEET]
    t0 = time.perf_counter()
    fleet.stats.received += 1
    try:
        body = await _accept(request, fleet)
    except ApplianceError as e:
        fleet.stats.rejected[e.error_code or _REASONS.get(e.http_status, str(e.http_status))] += 1
        raise
    fleet.stats.observe(time.perf_counter() - t0)
    return json_response(body)


def _bearer(header: str) -> str:
    scheme, _, value = header.strip().partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


async def _accept(request: web.Request, fleet: Fleet) -> dict[str, Any]:
    if not fleet.raw_bodies:  # pragma: no cover - guarded at start-up as well
        raise FleetError("fleet app runs with auto_decompress; use make_runner()")
    if request.content_type != "application/json":
        raise UnsupportedMediaType(
            f"Content-Type must be application/json, not {request.content_type!r}",
            error_code="content_type")
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise PayloadTooLarge(f"heartbeat body is {request.content_length} bytes; the limit is "
                              f"{MAX_BODY} (compressed)", error_code="too_large")
    hub_id = request.headers.get("X-Hub-Id", "").strip()
    token = _bearer(request.headers.get("Authorization", ""))
    if not hub_id or not token:
        raise Unauthorized("X-Hub-Id and Authorization: Bearer <token> are required",
                           error_code="auth")
    auth = await fleet.db.auth(hub_id, token)
    if auth is None:  # one message for both, so hub ids cannot be probed
        raise Unauthorized("unknown hub or wrong token", error_code="auth")
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise PayloadTooLarge(f"heartbeat body is over the limit of {MAX_BODY} bytes "
                              "(compressed)", error_code="too_large") from None
    sig = request.headers.get("X-Hub-Signature", "")
    if not sig or not signature_ok(raw, auth.token, sig):
        raise Unauthorized("X-Hub-Signature is missing or does not match the body",
                           error_code="signature")
    received = fleet.clock()
    obj = decode_body(raw, request.headers.get("Content-Encoding", ""))
    # a hub with a valid token speaking for another hub: authenticated but not allowed
    if isinstance(obj, dict) and isinstance(obj.get("hub_id"), str) and obj["hub_id"] != hub_id:
        raise Forbidden(f"hub {hub_id} may not send heartbeats for {obj['hub_id']}",
                        error_code="hub_mismatch")
    hb = parse_heartbeat(obj)
    res = await fleet.db.ingest(hb, received, max_skew_s=fleet.max_skew_s, th=fleet.thresholds,
                                token_hash=auth.token_hash)
    fleet.stats.accepted += 1
    fleet.stats.samples += res.samples
    return web_message(200, f"heartbeat {res.seq} from {res.hub_id} accepted", response={
        "hub_id": res.hub_id, "seq": res.seq, "samples": res.samples, "state": res.state,
        "clock_offset_s": round(res.clock_offset_s, 3), "server_time": iso(received)})


# -------------------------------------------------------------------------------- API
def _filter(request: web.Request) -> queries.HubFilter:
    q = request.query

    def opt(name: str) -> str | None:
        v = q.get(name, "").strip()
        return v or None
    state = opt("state")
    if state is not None and state not in STATE_RANK:
        raise BadRequest(f"state must be one of red, amber, green; got {state!r}")
    return queries.HubFilter(opt("division"), opt("district"), state, opt("q"))


def _level(request: web.Request) -> str | None:
    level = request.query.get("level", "").strip() or None
    if level not in (None, "red", "amber"):
        raise BadRequest(f"level must be red or amber; got {level!r}")
    return level


def _int(request: web.Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query.get(name, "")
    if not raw:
        return default
    try:
        v = int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be an integer") from None
    if not lo <= v <= hi:
        raise BadRequest(f"{name} must be between {lo} and {hi}")
    return v


async def api_hubs(request: web.Request) -> web.Response:
    fleet = request.app[FLEET]
    f = _filter(request)
    paging = request.query.get("paging", "true").lower() != "false"
    page_no = _int(request, "page", 1, 1, 10**6)
    size = _int(request, "pageSize", API_PAGE_SIZE, 1, MAX_API_PAGE_SIZE) if paging else None
    page = await fleet.db.read(lambda c: queries.list_hubs(c, f, page_no, size))
    now = fleet.clock()
    out: dict[str, Any] = {"counts": page.counts,
                           "hubs": [queries.hub_json(r, now) for r in page.rows]}
    if size is not None:
        out["pager"] = {"page": page_no, "pageSize": size, "total": page.total,
                        "pageCount": max(1, -(-page.total // size))}
    resp = json_response(out)
    return _compress(request, resp)


def _hub_detail(c: sqlite3.Connection, hub_id: str, since: float) -> tuple[Any, ...]:
    hub = queries.get_hub(c, hub_id)
    if hub is None:
        return (None,)
    return (hub, queries.alerts(c, queries.HubFilter(), hub_id=hub_id),
            queries.history(c, hub_id, since), queries.recent_heartbeats(c, hub_id))


async def api_hub(request: web.Request) -> web.Response:
    fleet = request.app[FLEET]
    hub_id = request.match_info["hub_id"]
    hours = _int(request, "hours", 24, 1, 24 * 366)
    now = fleet.clock()
    res = await fleet.db.read(lambda c: _hub_detail(c, hub_id, now - hours * 3600))
    if res[0] is None:
        raise NotFound(f"no hub {hub_id!r}")
    hub, alerts, hist, beats = res
    out = queries.hub_json(hub, now)
    out["open_alerts"] = [queries.alert_json(a) for a in alerts]
    out["history"] = [{k: (iso(r[k]) if k == "t" else r[k]) for k in queries.HISTORY_COLUMNS}
                      for r in hist]
    out["recent_heartbeats"] = [
        {"seq": b["seq"], "received": iso(b["received"]), "sent_at": iso(b["sent_at"]),
         "boot_id": b["boot_id"], "version": b["version"], "samples": b["n_samples"],
         "summary": orjson.loads(b["summary"]) if b["summary"] else None} for b in beats]
    return _compress(request, json_response(out))


async def api_alerts(request: web.Request) -> web.Response:
    fleet = request.app[FLEET]
    f = _filter(request)
    level = _level(request)
    resolved = request.query.get("resolved", "").lower() in ("1", "true")
    rows = await fleet.db.read(lambda c: queries.alerts(
        c, f, hub_id=request.query.get("hub") or None, level=level, resolved=resolved))
    counts = {"red": sum(1 for r in rows if r["level"] == "red"),
              "amber": sum(1 for r in rows if r["level"] == "amber")}
    return _compress(request, json_response(
        {"counts": counts, "alerts": [queries.alert_json(r) for r in rows]}))


async def get_metrics(request: web.Request) -> web.Response:
    fleet = request.app[FLEET]
    now = fleet.clock()

    def build(c: Any) -> str:  # renders in the reader thread: 10k hubs is ~100k lines
        return metrics.render(queries.metrics_rows(c), now, fleet.thresholds.silent_after_s,
                              fleet.stats, queries.open_alert_counts(c))
    text = await fleet.db.read(build)
    return _compress(request, web.Response(
        text=text, headers={"Content-Type": metrics.CONTENT_TYPE}))


# ------------------------------------------------------------------------------ pages
def _html(request: web.Request, text: str, started: float) -> web.Response:
    resp = web.Response(text=text, content_type="text/html", charset="utf-8")
    # server time to build the page, visible in the browser's devtools and to the bench
    resp.headers["Server-Timing"] = f"render;dur={(time.perf_counter() - started) * 1000:.1f}"
    resp.headers["Cache-Control"] = "no-cache"
    return _compress(request, resp)


async def dashboard(request: web.Request) -> web.Response:
    started = time.perf_counter()
    fleet = request.app[FLEET]
    f = _filter(request)
    page_no = _int(request, "page", 1, 1, 10**6)
    page, places = await fleet.db.read(
        lambda c: (queries.list_hubs(c, f, page_no, PAGE_SIZE), queries.places(c)))
    html = pages.dashboard(page, f, places, page_no=page_no, page_size=PAGE_SIZE,
                           now=fleet.clock(), th=fleet.thresholds)
    return _html(request, html, started)


async def hub_page(request: web.Request) -> web.Response:
    started = time.perf_counter()
    fleet = request.app[FLEET]
    hub_id = request.match_info["hub_id"]
    hours = _int(request, "hours", 24, 1, 24 * 366)
    now = fleet.clock()
    res = await fleet.db.read(lambda c: _hub_detail(c, hub_id, now - hours * 3600))
    if res[0] is None:
        raise NotFound(f"No hub {hub_id!r} is enrolled")
    hub, alerts, hist, beats = res
    return _html(request, pages.hub_page(hub, alerts, hist, beats, hours=hours, now=now,
                                th=fleet.thresholds), started)


async def alerts_page(request: web.Request) -> web.Response:
    started = time.perf_counter()
    fleet = request.app[FLEET]
    f = _filter(request)
    level = _level(request)
    resolved = request.query.get("resolved", "").lower() in ("1", "true")
    rows, places = await fleet.db.read(lambda c: (
        queries.alerts(c, f, level=level, resolved=resolved, limit=2000), queries.places(c)))
    return _html(request, pages.alerts_page(rows, f, places, level=level, resolved=resolved,
                                   now=fleet.clock()), started)
