"""The fleet service: heartbeat intake, JSON API, dashboard pages and ``/metrics``.

Run it through ``make_runner``/``start``: heartbeat signatures cover the *compressed*
body, so aiohttp must not inflate request bodies itself (``auto_decompress=False``); the
app refuses to start otherwise rather than reject every hub with 401.

Who may do what (``ROUTES``; the ``guard`` middleware enforces it, and a route not listed
there needs a logged-in viewer, so a new route is never open by mistake):

* ``POST /api/heartbeats``, ``POST /api/certificates``, ``POST /api/updates/check`` and
  ``GET /api/updates/bundles/{sha256}``: hubs, with their bearer token and HMAC signature
  (``tokens``; a GET signs its path), checked by one function (``authenticate_hub``).
* ``GET/POST /login``: anyone (the login form); ``POST /logout``: a logged-in user.
* pages, the JSON API: a fleet user's session (``auth``). Without one, pages redirect to
  ``/login?next=...`` and the API answers 401.
* ``POST /api/hubs``, ``PUT /api/alert-rules``, ``POST /api/rollouts`` and
  ``POST /api/rollouts/{id}/cancel``: an admin's session (a viewer gets 403).
* ``/metrics``: ``Authorization: Bearer <[fleet] metrics_token>`` (Prometheus), or a
  fleet user's session (handy from the browser). With no token configured only sessions
  can read it.

Every state-changing request from a browser (any POST/PUT/PATCH/DELETE except heartbeats,
including ``POST /login`` against login CSRF) must come from this site's own pages
(``webguard.check_same_origin``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, NoReturn
from urllib.parse import urlencode

import orjson
from aiohttp import web

from .. import httpserver, signing
from ..config import Config
from ..dhis2.timefmt import iso_z as iso
from ..dhis2.webmessage import web_message
from ..errors import (
    ApplianceError,
    BadRequest,
    ConfigError,
    Conflict,
    FleetError,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    TooManyRequests,
    Unauthorized,
    UnsupportedMediaType,
)
from ..i18n import DEFAULT_LOCALE, Tr
from ..webguard import check_same_origin, parse_json
from . import auth, metrics, pages, queries, releases, reporting, rollouts, updates_pages
from . import lang as fleet_lang
from .acme_issuer import Issuer
from .alerts import RULE_LIMITS, STATE_RANK, Thresholds, check_rule
from .auth import ADMIN, VIEWER, Account, Accounts
from .certs import Certificates, check_name, latest_certificate, parse_csr
from .db import (
    HUB_ID,
    FleetDB,
    HubAuth,
    NewHub,
    audit_tx,
    reevaluate_all,
    rule_overrides,
    set_rules_tx,
)
from .dns import provider_from_config
from .models import decode_body, parse_heartbeat, parse_time, parse_update

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
    thresholds: Thresholds  # in force: ``base_thresholds`` overlaid by ``alert_rules``
    max_skew_s: float
    retention_days: float
    accounts: Accounts
    base_thresholds: Thresholds = field(default_factory=Thresholds)
    metrics_token: str = ""
    language: str = DEFAULT_LOCALE  # [fleet] language: pages' default before a user chooses
    clock: Callable[[], float] = time.time
    stats: metrics.IngestStats = field(default_factory=metrics.IngestStats)
    own_db: bool = False
    raw_bodies: bool = False  # set by make_runner
    sweep_s: float = 15.0
    prune_s: float = 3600.0
    rules_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    certs: Certificates | None = None  # set by create_app


FLEET = web.AppKey("fleet", Fleet)
ACCOUNT = web.RequestKey("account", Account)

# who may call a handler (see the module docstring); anything unlisted needs VIEWER
PUBLIC, HUB, METRICS = "public", "hub", "metrics"


def create_app(config: Config, db: FleetDB | None = None, *,
               clock: Callable[[], float] = time.time) -> web.Application:
    f = config.section("fleet")
    language = fleet_lang.configured(config)  # before opening anything: a typo stops here
    own = db is None
    if db is None:
        db = FleetDB(config.data_dir / "fleet.db")
    base = Thresholds.from_config(config)
    fleet = Fleet(config=config, db=db, thresholds=base, base_thresholds=base,
                  max_skew_s=float(f["max_skew_s"]), retention_days=float(f["retention_days"]),
                  accounts=Accounts(db, clock), metrics_token=str(f["metrics_token"]).strip(),
                  language=language, clock=clock, own_db=own)
    fleet.certs = _certificates(config, db, clock)
    app = web.Application(client_max_size=MAX_BODY, middlewares=[errors, guard])
    app[FLEET] = fleet
    for method, path, handler, _access in ROUTES:
        if method == "GET":
            app.router.add_get(path, handler)  # and HEAD
        else:
            app.router.add_route(method, path, handler)
    app.cleanup_ctx.append(_background)
    return app


def _certificates(config: Config, db: FleetDB, clock: Callable[[], float]) -> Certificates:
    """Issuance when ``[acme] directory`` is set; DNS publishing when a provider is."""
    dns = provider_from_config(config)
    directory = str(config.get("acme", "directory")).strip()
    if directory and dns is None:
        raise ConfigError("[acme] directory is set but the fleet has no way to publish the "
                          "DNS-01 challenge: set [acme] dns_server (RFC 2136, with tsig_name "
                          "and tsig_secret) or [acme] dns_hook")
    issuer = Issuer.from_config(config, dns) if directory and dns is not None else None
    return Certificates(db, issuer, dns, clock)


def make_runner(app: web.Application) -> web.AppRunner:
    app[FLEET].raw_bodies = True
    return httpserver.make_runner(app, auto_decompress=False)


async def start(app: web.Application, host: str = "127.0.0.1", port: int = 0
                ) -> tuple[web.AppRunner, str]:
    """Serve ``app``; returns the runner (``await runner.cleanup()`` to stop) and base URL."""
    runner = make_runner(app)
    await runner.setup()
    try:
        await httpserver.start_site(runner, host, port)
    except BaseException:
        await runner.cleanup()
        raise
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
    fleet.thresholds = fleet.base_thresholds.overlay(await fleet.db.read(rule_overrides))
    n = await fleet.db.write(lambda c: reevaluate_all(c, fleet.clock(), fleet.thresholds))
    await fleet.accounts.warm()
    log.info("fleet: %d hubs enrolled", n)
    users = await fleet.db.read(lambda c: c.execute("SELECT count(*) FROM users").fetchone()[0])
    if not users:
        log.warning("fleet: no fleet users yet, so nobody can open the dashboard: create one "
                    "with 'appliance fleet add-user --username NAME --role admin'")
    if not fleet.metrics_token:
        log.info("fleet: [fleet] metrics_token is not set: Prometheus cannot scrape /metrics")

    certs = fleet.certs
    assert certs is not None
    resumed = await certs.resume()
    if resumed:
        log.info("fleet: resuming certificate orders for %d hubs", resumed)

    async def sweep() -> None:
        await fleet.db.sweep(fleet.clock(), fleet.thresholds)
        await certs.publish_due()  # DNS records whose update failed or never ran

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
    await certs.close()
    fleet.accounts.close()
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
        resp = web.Response(text=pages.error_page(status, message, _anonymous_tr(request)),
                            status=status,
                            content_type="text/html")
    if status == 401:
        resp.headers["WWW-Authenticate"] = 'Bearer realm="fleet"'
    return resp


def _respond(request: web.Request, status: int, message: str, error_code: str | None,
             _response: Any) -> web.Response:
    return error_response(request, status, message, error_code)


# every failure a WebMessage (an HTML page for pages), one log line, never a traceback
errors = httpserver.error_middleware(_respond, service="fleet", logger=log)


# ------------------------------------------------------------------------------ access
def _access(request: web.Request) -> str:
    # unknown paths and wrong methods (aiohttp's own 404/405 handlers) need a viewer too
    return _ACCESS.get(request.match_info.handler, VIEWER)


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Who may call what (``ROUTES``) and the cross-site rule for browsers."""
    fleet = request.app[FLEET]
    need = _access(request)
    if need == HUB:  # bearer token and body signature, checked by the handler
        return await handler(request)
    if need == PUBLIC:
        check_same_origin(request)  # login CSRF: a foreign page must not log you in
        return await handler(request)
    if need == METRICS and "Authorization" in request.headers:
        _check_metrics_token(request, fleet)
        return await handler(request)
    account = await fleet.accounts.session(request.cookies.get(auth.COOKIE))
    if account is None:
        _refuse_anonymous(request, fleet, need)
    check_same_origin(request)  # authenticated by a cookie the browser sends by itself
    if need == ADMIN and not account.is_admin:
        raise Forbidden(f"Your fleet account {account.username} is a viewer: it can look but "
                        "not change anything. Ask a fleet admin to do this, or to make you an "
                        "admin.", error_code="role")
    request[ACCOUNT] = account
    return await handler(request)


def _check_metrics_token(request: web.Request, fleet: Fleet) -> None:
    if not fleet.metrics_token:
        raise Unauthorized(_NO_METRICS_TOKEN, error_code="auth")
    if not auth.bearer_ok(_bearer(request.headers.get("Authorization", "")),
                          fleet.metrics_token):
        raise Unauthorized("The token sent for /metrics is missing or wrong: Prometheus must "
                           "send Authorization: Bearer <the fleet's [fleet] metrics_token>.",
                           error_code="auth")


_NO_METRICS_TOKEN = (
    "/metrics needs a token and none is set. Put a long random value in [fleet] "
    "metrics_token in the fleet service's config (chmod 600) and restart it; give "
    "Prometheus the same value (scrape_config authorization: {type: Bearer, "
    "credentials_file: ...}). Fleet users who are logged in can open /metrics as well.")


def _refuse_anonymous(request: web.Request, fleet: Fleet, need: str) -> NoReturn:
    if need == METRICS and not fleet.metrics_token:
        raise Unauthorized(_NO_METRICS_TOKEN, error_code="auth")
    if _is_api(request):
        also = " (or Prometheus's Authorization: Bearer token)" if need == METRICS else ""
        raise Unauthorized("You are not logged in, or your session has ended. Log in to the "
                           f"fleet dashboard at /login first; this API answers fleet users "
                           f"only{also}.", error_code="auth")
    # back to this page after logging in; a form's POST cannot be replayed that way
    target = "/login"
    if request.method in ("GET", "HEAD"):
        target += "?" + urlencode({"next": request.path_qs})
    raise web.HTTPSeeOther(target)


def _account(request: web.Request) -> Account | None:
    return request.get(ACCOUNT)


# ------------------------------------------------------------------------------ login
def _login_reply(request: web.Request, next_url: str, *, status: int = 200,
                 error: str | None = None, username: str = "") -> web.Response:
    tr = _anonymous_tr(request)
    resp = web.Response(text=pages.login_page(next_url, error=error, username=username, tr=tr),
                        status=status, content_type="text/html", charset="utf-8")
    resp.headers["Cache-Control"] = "no-store"
    fleet_lang.remember(request, resp)
    return resp


async def login_form(request: web.Request) -> web.Response:
    return _login_reply(request, auth.safe_next(request.query.get("next")))


async def login(request: web.Request) -> web.Response:
    fleet = request.app[FLEET]
    if request.content_type not in ("application/x-www-form-urlencoded", "multipart/form-data"):
        raise UnsupportedMediaType("Send the login form (application/x-www-form-urlencoded) "
                                   "with username and password.")
    form = await request.post()
    username, password = form.get("username", ""), form.get("password", "")
    username = username if isinstance(username, str) else ""
    password = password if isinstance(password, str) else ""
    next_url = auth.safe_next(form.get("next") or request.query.get("next"))
    try:
        account, sid = await fleet.accounts.login(username, password, request.remote)
    except (Unauthorized, TooManyRequests) as e:
        log.info("fleet: login refused for %r from %s: %s", auth.normalise(username)[:64],
                 request.remote, e.error_code)
        return _login_reply(request, next_url, status=e.http_status, error=e.message,
                            username=username[:100])
    log.info("fleet: %s (%s) logged in from %s", account.username, account.role,
             request.remote)
    resp = web.Response(status=303, headers={"Location": next_url,
                                             "Cache-Control": "no-store"})
    resp.set_cookie(auth.COOKIE, sid, max_age=auth.SESSION_S, path="/", httponly=True,
                    samesite="Strict", secure=request.secure)
    return resp


async def logout(request: web.Request) -> web.Response:
    fleet = request.app[FLEET]
    await fleet.accounts.logout(request.cookies.get(auth.COOKIE))
    resp = web.Response(status=303, headers={"Location": "/login",
                                             "Cache-Control": "no-store"})
    resp.del_cookie(auth.COOKIE, path="/", httponly=True, samesite="Strict",
                    secure=request.secure)
    return resp


# --------------------------------------------------------------------- admin: hubs, rules
async def _json_body(request: web.Request) -> Any:
    if request.content_type != "application/json":
        raise UnsupportedMediaType(f"Content-Type must be application/json, not "
                                   f"{request.content_type!r}")
    return parse_json(await request.read())


_HUB_FIELDS = {"hub_id", "name", "district", "division", "upazila", "org_unit", "tls_name"}


def _new_hub(body: Any) -> NewHub:
    if not isinstance(body, dict):
        raise BadRequest("The body must be a JSON object: {\"hub_id\": ..., \"name\": ..., "
                         "\"district\": ..., \"division\": ..., \"upazila\": ..., "
                         "\"org_unit\": ...}.")
    unknown = sorted(set(body) - _HUB_FIELDS)
    if unknown:
        raise BadRequest(f"Unknown field(s) {', '.join(unknown)[:200]}; a hub has "
                         + ", ".join(sorted(_HUB_FIELDS)) + ".")
    hub_id = body.get("hub_id")
    if not isinstance(hub_id, str) or not HUB_ID.match(hub_id):
        raise BadRequest("hub_id must be 1-100 letters, digits, '.', '_' or '-', starting with "
                         "a letter or digit (the hub's [hub] id).")

    def text(key: str) -> str | None:
        v = body.get(key)
        if v is None:
            return None
        if not isinstance(v, str) or len(v) > 200:
            raise BadRequest(f"{key} must be text of at most 200 characters, or null.")
        return v.strip() or None
    tls_name = text("tls_name")
    return NewHub(hub_id, text("name"), text("district"), text("division"), text("upazila"),
                  text("org_unit"), check_name(tls_name) if tls_name else None)


async def post_hub(request: web.Request) -> web.Response:
    """Enrol a hub, as ``appliance fleet add-hub`` does; the token is in this reply only."""
    fleet = request.app[FLEET]
    account = request[ACCOUNT]
    hub = _new_hub(await _json_body(request))
    now = fleet.clock()
    detail = {k: v for k, v in (("hub_id", hub.hub_id), ("name", hub.name),
                                ("district", hub.district), ("division", hub.division),
                                ("upazila", hub.upazila), ("org_unit", hub.org_unit_id),
                                ("tls_name", hub.tls_name)) if v}
    try:
        token = await fleet.db.enrol(hub, now=now, then=lambda c: audit_tx(
            c, at=now, username=account.username, client=request.remote, action="enrol-hub",
            detail=detail))
    except Conflict as e:
        if e.error_code != "exists":
            raise
        raise Conflict(f"Hub {hub.hub_id} is already enrolled. To give it a new token, run "
                       f"'appliance fleet add-hub --hub-id {hub.hub_id} --rotate' on the fleet "
                       "server.", error_code="exists") from None
    log.info("fleet: %s enrolled hub %s", account.username, hub.hub_id)
    resp = json_response(web_message(
        201, f"Hub {hub.hub_id} is enrolled. Put this token in the hub's [health] token "
             "setting now: it is not shown again.",
        response={**detail, "token": token}), 201)
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _rules_json(fleet: Fleet, overrides: dict[str, float]) -> dict[str, Any]:
    now, base = fleet.thresholds.as_dict(), fleet.base_thresholds.as_dict()
    return {"thresholds": now, "rules": [
        {"name": name, "value": now[name], "default": base[name], "changed": name in overrides,
         "unit": lim.unit, "min": lim.low, "max": lim.high, "meaning": lim.meaning}
        for name, lim in RULE_LIMITS.items()]}


async def get_rules(request: web.Request) -> web.Response:
    fleet = request.app[FLEET]
    return json_response(_rules_json(fleet, await fleet.db.read(rule_overrides)))


async def put_rules(request: web.Request) -> web.Response:
    """Change thresholds: ``{"temp_c": 85, "disk_pct": null}`` (null: back to the
    ``[fleet]`` default). Names not sent keep their value. Every hub is re-evaluated."""
    fleet = request.app[FLEET]
    account = request[ACCOUNT]
    body = await _json_body(request)
    if not isinstance(body, dict) or not body:
        raise BadRequest("Send a JSON object of thresholds to change, e.g. "
                         "{\"temp_c\": 85}; null puts one back to the configured default. "
                         "The rules are: " + ", ".join(RULE_LIMITS) + ".")
    changes = {name: None if v is None else check_rule(name, v) for name, v in body.items()}
    now = fleet.clock()
    base = fleet.base_thresholds

    def tx(c: sqlite3.Connection) -> tuple[Thresholds, int, dict[str, float]]:
        before = base.overlay(rule_overrides(c))
        th, n = set_rules_tx(c, changes, base, now, account.username)
        audit_tx(c, at=now, username=account.username, client=request.remote,
                 action="alert-rules", detail={name: [before.as_dict()[name], th.as_dict()[name]]
                                               for name in changes})
        return th, n, rule_overrides(c)
    async with fleet.rules_lock:  # the thresholds in force follow the order of commits
        th, n, overrides = await fleet.db.write(tx)
        fleet.thresholds = th
    log.info("fleet: %s changed alert rules %s", account.username, changes)
    return json_response(web_message(
        200, f"Alert rules updated; {n} hub{'s' if n != 1 else ''} re-evaluated.",
        response=_rules_json(fleet, overrides)))


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


async def authenticate_hub(request: web.Request, fleet: Fleet, what: str = "heartbeat"
                           ) -> tuple[HubAuth, bytes]:
    """A hub's request: its bearer token and the body's HMAC signature (``signing``), the
    same for every hub route (a ``GET`` signs its path and query instead). Returns its
    credentials and the raw body as signed."""
    if not fleet.raw_bodies:  # pragma: no cover - guarded at start-up as well
        raise FleetError("fleet app runs with auto_decompress; use make_runner()")
    reading = request.method in ("GET", "HEAD")  # no body: the signature covers the target
    if not reading and request.content_type != "application/json":
        raise UnsupportedMediaType(
            f"Content-Type must be application/json, not {request.content_type!r}",
            error_code="content_type")
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise PayloadTooLarge(f"{what} body is {request.content_length} bytes; the limit is "
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
        raw = b"" if reading else await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise PayloadTooLarge(f"{what} body is over the limit of {MAX_BODY} bytes "
                              "(compressed)", error_code="too_large") from None
    sig = request.headers.get("X-Hub-Signature", "")
    signed = signing.target_message(request.raw_path) if reading else raw
    if not sig or not signing.verify(auth.token, signed, sig):
        raise Unauthorized("X-Hub-Signature is missing or does not match the "
                           + ("request path" if reading else "body"), error_code="signature")
    return auth, raw


def _same_hub(obj: Any, hub_id: str, what: str) -> None:
    # a hub with a valid token speaking for another hub: authenticated but not allowed
    if isinstance(obj, dict) and isinstance(obj.get("hub_id"), str) and obj["hub_id"] != hub_id:
        raise Forbidden(f"hub {hub_id} may not send {what}s for {obj['hub_id']}",
                        error_code="hub_mismatch")


async def _accept(request: web.Request, fleet: Fleet) -> dict[str, Any]:
    auth, raw = await authenticate_hub(request, fleet)
    hub_id = auth.hub_id
    received = fleet.clock()
    obj = decode_body(raw, request.headers.get("Content-Encoding", ""))
    _same_hub(obj, hub_id, "heartbeat")
    hb = parse_heartbeat(obj)
    res = await fleet.db.ingest(hb, received, max_skew_s=fleet.max_skew_s, th=fleet.thresholds,
                                token_hash=auth.token_hash)
    if res.publish is not None and fleet.certs is not None:  # its LAN address changed
        fleet.certs.publish_soon(hub_id, *res.publish)
    if hb.update is not None:  # where it is with software updates (#13)
        rep = hb.update
        await fleet.db.write(lambda c: rollouts.record_report_tx(c, hub_id, rep, received,
                                                                 fleet.thresholds))
    fleet.stats.accepted += 1
    fleet.stats.samples += res.samples
    return web_message(200, f"heartbeat {res.seq} from {res.hub_id} accepted", response={
        "hub_id": res.hub_id, "seq": res.seq, "samples": res.samples, "state": res.state,
        "clock_offset_s": round(res.clock_offset_s, 3), "server_time": iso(received)})


# ------------------------------------------------------------------------ certificates
_NO_ACME = ("This fleet service does not issue certificates: [acme] directory is not set in "
            "its configuration. Ask the national team to configure ACME on the fleet server.")


async def post_certificate(request: web.Request) -> web.Response:
    """A hub's CSR in, its certificate out (200), or 202 while it is being ordered."""
    fleet = request.app[FLEET]
    certs = fleet.certs
    assert certs is not None
    auth, raw = await authenticate_hub(request, fleet, "certificate request")
    if request.headers.get("Content-Encoding", "identity").strip().lower() != "identity":
        raise UnsupportedMediaType("send the certificate request uncompressed (no "
                                   "Content-Encoding)", error_code="content_type")
    if not certs.enabled:
        raise ServiceUnavailable(_NO_ACME, error_code="no_acme")
    obj = parse_json(raw)
    _same_hub(obj, auth.hub_id, "certificate request")
    if not isinstance(obj, dict):
        raise BadRequest("body must be a JSON object with hub_id, csr and sent_at")
    if obj.get("hub_id") != auth.hub_id:
        raise BadRequest("hub_id is required and must be this hub's id (X-Hub-Id)")
    if "sent_at" not in obj:
        raise BadRequest("sent_at is required")
    sent_at = parse_time(obj["sent_at"], "sent_at")
    skew = fleet.clock() - sent_at
    if abs(skew) > fleet.max_skew_s:
        raise Conflict(f"sent_at is {skew:.0f} s from fleet time (at most {fleet.max_skew_s:g} s "
                       "allowed): a stale or replayed request, or the hub's clock is wrong",
                       error_code="skew")
    if "csr" not in obj:
        raise BadRequest("csr is required: the hub's PEM certificate request")
    csr = parse_csr(obj["csr"])
    reply = await certs.request(auth.hub_id, csr)
    resp = json_response(web_message(reply.status, reply.message, response=reply.response),
                         reply.status)
    if reply.retry_after_s is not None:
        resp.headers["Retry-After"] = str(reply.retry_after_s)
    resp.headers["Cache-Control"] = "no-store"
    return resp


# ---------------------------------------------------------------------- updates (#13)
async def post_update_check(request: web.Request) -> web.Response:
    """A hub's update report in, the release it should run out (``release``: null for
    none). The same signed JSON as a heartbeat (gzip or not)."""
    fleet = request.app[FLEET]
    auth, raw = await authenticate_hub(request, fleet, "update check")
    obj = decode_body(raw, request.headers.get("Content-Encoding", ""))
    _same_hub(obj, auth.hub_id, "update check")
    if not isinstance(obj, dict):
        raise BadRequest("body must be a JSON object with hub_id and update")
    if obj.get("hub_id") != auth.hub_id:
        raise BadRequest("hub_id is required and must be this hub's id (X-Hub-Id)")
    report = parse_update(obj.get("update"))
    now = fleet.clock()
    offer = await fleet.db.write(
        lambda c: rollouts.check_tx(c, auth.hub_id, report, now, fleet.thresholds))
    text = (f"run release {offer.version}" if offer is not None
            else "no release is rolled out to this hub")
    resp = json_response(web_message(200, text, response={
        "release": offer.to_json() if offer is not None else None,
        "check_after_s": rollouts.CHECK_AFTER_S, "server_time": iso(now)}))
    resp.headers["Cache-Control"] = "no-store"
    return resp


async def get_bundle(request: web.Request) -> web.StreamResponse:
    """The bundle of the release offered to this hub; ``Range`` resumes a cut download."""
    fleet = request.app[FLEET]
    sha = request.match_info["sha256"]
    auth, _ = await authenticate_hub(request, fleet, "download")
    if not releases.SHA256.match(sha):
        raise BadRequest("a bundle is named by its SHA-256: 64 lower-case hex digits")
    ok = await fleet.db.read(lambda c: rollouts.may_download(c, auth.hub_id, sha))
    if ok is None:
        raise NotFound(f"no release has the SHA-256 {sha}", error_code="no_release")
    if not ok:
        raise Forbidden(f"release {sha[:12]}… is not rolled out to hub {auth.hub_id}; ask "
                        "/api/updates/check which release to run", error_code="not_offered")
    path = releases.bundle_path(fleet.config.data_dir, sha)
    if not path.is_file():
        log.error("fleet: the bundle file %s of a release is missing", path)
        raise NotFound("the release's bundle file is missing on the fleet server; national "
                       "must add the release again", error_code="no_file")
    return web.FileResponse(path, headers={"Content-Type": "application/octet-stream",
                                           "Cache-Control": "no-store"})


def _rollout_id(request: web.Request) -> int:
    raw = request.match_info["rollout_id"]
    if not raw.isdigit() or len(raw) > 12:
        raise BadRequest("a rollout id is a positive integer")
    return int(raw)


async def api_releases(request: web.Request) -> web.Response:
    fleet = request.app[FLEET]
    rows = await fleet.db.read(releases.list_releases)
    return _compress(request, json_response(
        {"releases": [releases.release_json(r) for r in rows]}))


async def api_rollouts(request: web.Request) -> web.Response:
    fleet = request.app[FLEET]
    items, vers = await fleet.db.read(lambda c: (rollouts.progress(c), rollouts.versions(c)))
    return _compress(request, json_response({"rollouts": items, "versions": vers}))


async def api_rollout(request: web.Request) -> web.Response:
    fleet = request.app[FLEET]
    rid = _rollout_id(request)
    items = await fleet.db.read(lambda c: rollouts.progress(c, rid, with_hubs=True))
    if not items:
        raise NotFound(f"no rollout {rid}")
    return _compress(request, json_response(items[0]))


_ROLLOUT_FIELDS = {"release", "scope", "target", "compatible"}


async def post_rollout(request: web.Request) -> web.Response:
    """Target a release: ``{"release": "<version or sha256>", "scope": "hub|district|
    division|all", "target": "<hub id or place>"}`` (``compatible`` when a version exists
    for several kinds of hardware)."""
    fleet = request.app[FLEET]
    account = request[ACCOUNT]
    body = await _json_body(request)
    if not isinstance(body, dict):
        raise BadRequest('The body must be a JSON object: {"release": "1.4.0", "scope": '
                         '"district", "target": "Cox\'s Bazar"}.')
    unknown = sorted(set(body) - _ROLLOUT_FIELDS)
    if unknown:
        raise BadRequest(f"Unknown field(s) {', '.join(unknown)[:200]}; a rollout has "
                         + ", ".join(sorted(_ROLLOUT_FIELDS)) + ".")
    for key in _ROLLOUT_FIELDS:
        v = body.get(key)
        if v is not None and (not isinstance(v, str) or len(v) > 200):
            raise BadRequest(f"{key} must be text of at most 200 characters.")
    if not body.get("release") or not body.get("scope"):
        raise BadRequest("release and scope are required.")
    now = fleet.clock()
    item = await fleet.db.write(lambda c: rollouts.create_rollout_tx(
        c, release=body["release"], scope=body["scope"], target=body.get("target"),
        compatible=body.get("compatible"), by=account.username, client=request.remote,
        now=now))
    log.info("fleet: %s rolled out %s to %s %s", account.username, item["release"]["version"],
             item["scope"], item["target"] or "")
    return json_response(web_message(201, f"Rollout {item['id']} of {item['release']['version']}"
                                          " started.", response=item), 201)


async def cancel_rollout(request: web.Request) -> web.Response:
    fleet = request.app[FLEET]
    account = request[ACCOUNT]
    rid = _rollout_id(request)
    now = fleet.clock()
    item = await fleet.db.write(lambda c: rollouts.cancel_rollout_tx(
        c, rid, by=account.username, client=request.remote, now=now))
    log.info("fleet: %s stopped rollout %d", account.username, rid)
    return json_response(web_message(200, f"Rollout {rid} stopped; hubs that installed it keep "
                                          "it.", response=item))


async def updates_page(request: web.Request) -> web.Response:
    started = time.perf_counter()
    fleet = request.app[FLEET]
    items, vers, rels, trouble = await fleet.db.read(lambda c: (
        rollouts.progress(c), rollouts.versions(c), releases.list_releases(c),
        rollouts.trouble_hubs(c)))
    return _html(request, updates_pages.overview(items, vers, rels, trouble, now=fleet.clock(),
                                                 account=_account(request),
                                                 tr=await _tr(request)), started)


async def rollout_page(request: web.Request) -> web.Response:
    started = time.perf_counter()
    fleet = request.app[FLEET]
    rid = _rollout_id(request)
    items = await fleet.db.read(lambda c: rollouts.progress(c, rid, with_hubs=True))
    if not items:
        raise NotFound(f"No rollout {rid}")
    return _html(request, updates_pages.rollout(items[0], account=_account(request),
                                                tr=await _tr(request)), started)


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
            queries.history(c, hub_id, since), queries.recent_heartbeats(c, hub_id),
            latest_certificate(c, hub_id), rollouts.hub_events(c, hub_id))


async def api_hub(request: web.Request) -> web.Response:
    fleet = request.app[FLEET]
    hub_id = request.match_info["hub_id"]
    hours = _int(request, "hours", 24, 1, 24 * 366)
    now = fleet.clock()
    res = await fleet.db.read(lambda c: _hub_detail(c, hub_id, now - hours * 3600))
    if res[0] is None:
        raise NotFound(f"no hub {hub_id!r}")
    hub, alerts, hist, beats, issuance, events = res
    out = queries.hub_json(hub, now)
    out["tls"] = queries.tls_json(hub, issuance, now)
    out["update"] = rollouts.hub_update_json(hub, events)
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
    resp.headers["Cache-Control"] = "private, no-cache"  # a user's page: not for shared caches
    fleet_lang.remember(request, resp)
    return _compress(request, resp)


async def _tr(request: web.Request) -> Tr:
    """The reader's language (fleet/lang.py)."""
    fleet = request.app[FLEET]
    return await fleet_lang.reader(request, _account(request), fleet.db, fleet.clock(),
                                   fleet.language)


def _anonymous_tr(request: web.Request) -> Tr:
    """The language before login (the login form, an error page)."""
    return fleet_lang.anonymous(request, request.app[FLEET].language)


async def dashboard(request: web.Request) -> web.Response:
    started = time.perf_counter()
    fleet = request.app[FLEET]
    f = _filter(request)
    page_no = _int(request, "page", 1, 1, 10**6)
    page, places = await fleet.db.read(
        lambda c: (queries.list_hubs(c, f, page_no, PAGE_SIZE), queries.places(c)))
    html = pages.dashboard(page, f, places, page_no=page_no, page_size=PAGE_SIZE,
                           now=fleet.clock(), th=fleet.thresholds, account=_account(request),
                           tr=await _tr(request))
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
    hub, alerts, hist, beats, issuance, events = res
    tr = await _tr(request)
    return _html(request, pages.hub_page(hub, alerts, hist, beats, hours=hours, now=now,
                                         th=fleet.thresholds, account=_account(request),
                                         tls=queries.tls_json(hub, issuance, now),
                                         update_html=updates_pages.hub_section(hub, events, tr),
                                         tr=tr),
                 started)


async def alerts_page(request: web.Request) -> web.Response:
    started = time.perf_counter()
    fleet = request.app[FLEET]
    f = _filter(request)
    level = _level(request)
    resolved = request.query.get("resolved", "").lower() in ("1", "true")
    rows, places = await fleet.db.read(lambda c: (
        queries.alerts(c, f, level=level, resolved=resolved, limit=2000), queries.places(c)))
    return _html(request, pages.alerts_page(rows, f, places, level=level, resolved=resolved,
                                            now=fleet.clock(), account=_account(request),
                                            tr=await _tr(request)),
                 started)


async def api_reporting(request: web.Request) -> web.Response:
    fleet = request.app[FLEET]
    periods = reporting.last_months(fleet.clock())
    by_level = await fleet.db.read(lambda c: reporting.places(c, periods))
    return _compress(request, json_response(reporting.as_json(by_level, periods)))


async def reporting_page(request: web.Request) -> web.Response:
    started = time.perf_counter()
    fleet = request.app[FLEET]
    now = fleet.clock()
    periods = reporting.last_months(now)
    by_level = await fleet.db.read(lambda c: reporting.places(c, periods))
    return _html(request, reporting.page(by_level, periods, now=now, account=_account(request)),
                 started)


# --------------------------------------------------------------------------- routes
ROUTES: list[tuple[str, str, Handler, str]] = [
    ("POST", "/api/heartbeats", post_heartbeat, HUB),
    ("POST", "/api/certificates", post_certificate, HUB),
    ("GET", "/login", login_form, PUBLIC),
    ("POST", "/login", login, PUBLIC),
    ("POST", "/logout", logout, VIEWER),
    ("GET", "/api/hubs", api_hubs, VIEWER),
    ("POST", "/api/hubs", post_hub, ADMIN),
    ("GET", "/api/hubs/{hub_id}", api_hub, VIEWER),
    ("GET", "/api/alerts", api_alerts, VIEWER),
    ("GET", "/api/alert-rules", get_rules, VIEWER),
    ("PUT", "/api/alert-rules", put_rules, ADMIN),
    ("GET", "/metrics", get_metrics, METRICS),
    ("GET", "/", dashboard, VIEWER),
    ("GET", "/hubs/{hub_id}", hub_page, VIEWER),
    ("GET", "/alerts", alerts_page, VIEWER),
    ("GET", "/reporting", reporting_page, VIEWER),
    ("GET", "/api/reporting", api_reporting, VIEWER),
    ("POST", "/api/updates/check", post_update_check, HUB),
    ("GET", "/api/updates/bundles/{sha256}", get_bundle, HUB),
    ("GET", "/api/releases", api_releases, VIEWER),
    ("GET", "/api/rollouts", api_rollouts, VIEWER),
    ("POST", "/api/rollouts", post_rollout, ADMIN),
    ("GET", "/api/rollouts/{rollout_id}", api_rollout, VIEWER),
    ("POST", "/api/rollouts/{rollout_id}/cancel", cancel_rollout, ADMIN),
    ("GET", "/updates", updates_page, VIEWER),
    ("GET", "/updates/rollouts/{rollout_id}", rollout_page, VIEWER),
]
_ACCESS: dict[Any, str] = {handler: access for _m, _p, handler, access in ROUTES}
