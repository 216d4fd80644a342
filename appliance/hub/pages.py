"""The hub's own web pages (DESIGN.md §1): data entry for CHCPs at ``/hub``, the hub's
status page at ``/hub/status``, and the register pages: ``/hub/people`` (search and
registration), ``/hub/people/{uid}`` (a person's record) and ``/hub/lists`` (the weekly
lists), whose shells load ``people.js``/``people.css`` besides ``hub.js``/``hub.css``.

``/hub`` is a small HTML shell plus one vanilla JS file and one CSS file from ``static/``; the
JS talks to the DHIS2 API with the session cookie ``POST /api/auth/login`` sets and renders
data with text nodes only. ``/hub/status`` is rendered here, on the server, from the same
store reads the ``/api/hub/…`` endpoints make, every value through ``html.escape``; it works
without JS (the JS only reloads it every 10 s and shows times in local time).

No framework, no build step, nothing from the internet: the pages must work on a LAN whose
uplink is down. Assets are kept in memory, gzip-compressed once at start and linked by
content hash, so 30 laptops re-opening the page on reporting day fetch them once.

The routes are public (``/hub`` is in the auth middleware's public prefixes). The shell holds
no data; the status page shows the conflict log and rejections only to a logged-in user, in
that user's org unit scope, as ``/api/hub/conflicts`` and ``/api/hub/rejections`` do.
"""

from __future__ import annotations

import gzip
import hashlib
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from importlib import resources
from typing import Any

from aiohttp import web

from .. import __version__
from ..dhis2.timefmt import iso_z
from ..health.api import health_payload
from ..i18n import N_
from ..store import synclog
from ..store.metadata import MetadataIndex
from ..store.users import User
from . import tls
from .routes_hub import read_status
from .web import CONFIG, ROLE, STATE, STORE, USER_KEY

STATIC_TYPES = {".js": "text/javascript", ".css": "text/css"}
STATIC_FILES = ("hub.js", "hub.css", "dom.js", "people.js", "people.css", "https.js",
                "i18n.js", "board.js", "board.css")
# The register pages (people.js, people.css): page name -> (title, path)
REGISTER_PAGES = {"people": ("People", "/hub/people"), "record": ("Person", "/hub/people"),
                  "lists": ("Weekly lists", "/hub/lists")}
NAV = [("entry", "Monthly forms", "/hub"), ("people", "People", "/hub/people"),
       ("lists", "Weekly lists", "/hub/lists"), ("board", N_("Reporting board"), "/hub/board"),
       ("status", "Hub status", "/hub/status")]
REFRESH_MS = 10_000
LIST_LIMIT = 200

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
                               "img-src 'self' data:; connect-src 'self'; object-src 'none'; "
                               "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def security_headers(https: str | None = None) -> dict[str, str]:
    """The pages' headers; with ``https`` (the hub's HTTPS host) the page may also probe
    ``https://<https>/api/system/ping`` before offering laptops the secure address."""
    if not https:
        return SECURITY_HEADERS
    csp = SECURITY_HEADERS["Content-Security-Policy"].replace(
        "connect-src 'self'", f"connect-src 'self' https://{https}")
    return {**SECURITY_HEADERS, "Content-Security-Policy": csp}


@dataclass(frozen=True)
class Asset:
    body: bytes
    gz: bytes
    etag: str
    content_type: str


def _asset(body: bytes, content_type: str) -> Asset:
    return Asset(body, gzip.compress(body, 9, mtime=0),
                 '"' + hashlib.sha256(body).hexdigest()[:20] + '"', content_type)


def load_static() -> dict[str, Asset]:
    base = resources.files("appliance.hub").joinpath("static")
    return {name: _asset(base.joinpath(name).read_bytes(), STATIC_TYPES[name[name.rfind("."):]])
            for name in STATIC_FILES}


def shell(page: str, title: str, hub_name: str, assets: dict[str, Asset], main: str = "",
          https: str | None = None) -> str:
    """The HTML both pages share: header bar, login form, and the main part. ``https``: the
    hub's HTTPS host, offered (after a probe) to a laptop on plain HTTP."""
    def v(name: str) -> str:
        return f"/hub/static/{name}?v={assets[name].etag.strip(chr(34))}"
    other = " ".join(f'<a href="{href}"' + (' aria-current="page"' if p == page else "") +
                     f">{escape(label)}</a>" for p, label, href in NAV)
    extra = ""
    if page in REGISTER_PAGES:
        extra = (f'<link rel="stylesheet" href="{v("people.css")}">\n'
                 f'<script src="{v("people.js")}" type="module"></script>\n')
    if page == "board":  # the reporting board (board.js, board.css)
        extra = (f'<link rel="stylesheet" href="{v("board.css")}">\n'
                 f'<script src="{v("board.js")}" type="module"></script>\n')
    refresh = ('<noscript><meta http-equiv="refresh" content="30"></noscript>\n'
               if page == "status" else "")
    if https:  # the offer to switch to HTTPS (https.js probes the address first)
        refresh += (f'<meta name="hub-https" content="{escape(https)}">\n'
                    f'<script src="{v("https.js")}" type="module"></script>\n')
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)} · {escape(hub_name)}</title>
<link rel="stylesheet" href="{v('hub.css')}">
<script src="{v('hub.js')}" type="module"></script>
{extra}{refresh}</head>
<body data-page="{page}" data-refresh="{REFRESH_MS}" data-version="{escape(__version__)}">
<header class="bar">
 <strong class="brand">{escape(hub_name)}</strong>
 <span id="link" class="pill" role="status">checking link…</span>
 <span id="pending" class="muted"></span>
 <button type="button" id="sync-now" hidden>Sync now</button>
 <span id="sync-msg" class="muted" role="status"></span>
 <nav>{other}</nav>
 <span class="spacer"></span>
 <span id="who"></span>
 <button type="button" id="logout" hidden>Log out</button>
</header>
<noscript><p class="banner err">Data entry needs JavaScript. Use a current Chrome, Firefox
or Edge.</p></noscript>
<main id="main">{main}</main>
<section id="login" hidden aria-labelledby="login-h">
 <h1 id="login-h">Log in</h1>
 <p class="muted">Use your DHIS2 username and password.</p>
 <form id="login-form" method="post" action="/dhis-web-commons-security/login.action">
  <label for="username">Username</label>
  <input id="username" name="j_username" autocomplete="username" autocapitalize="none"
   spellcheck="false" required>
  <label for="password">Password</label>
  <input id="password" name="j_password" type="password" autocomplete="current-password"
   required>
  <button type="submit" id="login-btn" class="primary">Log in</button>
  <p id="login-error" class="err" role="alert"></p>
 </form>
</section>
</body>
</html>
"""


def _reply(request: web.Request, asset: Asset, cache: str,
           https: str | None = None) -> web.Response:
    headers = {"ETag": asset.etag, "Cache-Control": cache, "Vary": "Accept-Encoding",
               **security_headers(https)}
    if request.headers.get("If-None-Match") == asset.etag:
        return web.Response(status=304, headers=headers)
    body = asset.body
    if "gzip" in request.headers.get("Accept-Encoding", ""):
        body = asset.gz
        headers["Content-Encoding"] = "gzip"
    return web.Response(body=body, headers=headers, content_type=asset.content_type,
                        charset="utf-8")


# -- the status page ------------------------------------------------------------------------------
def _e(v: Any) -> str:
    return "—" if v is None or v == "" else escape(str(v))


def dur(seconds: float) -> str:
    s = max(0.0, float(seconds))
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.0f} min"
    if s < 172800:
        return f"{s / 3600:.0f} h"
    return f"{s / 86400:.0f} days"


def _parse(ts: str | None) -> datetime | None:
    if not ts:
        return None
    try:
        d = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return None
    return d if d.tzinfo else d.replace(tzinfo=UTC)  # DHIS2 times without a zone are UTC


def when(ts: str | None, with_age: bool = False) -> str:
    """A ``<time>`` the JS shows in the laptop's local time; UTC without JS."""
    d = _parse(ts)
    if d is None:
        return _e(ts)
    d = d.astimezone(UTC)
    age = ""
    if with_age:
        secs = time.time() - d.timestamp()
        age = f" ({dur(secs)} ago)" if secs >= 0 else " (in the future: check the clock)"
    return (f'<time datetime="{iso_z(d.timestamp())}">'
            f'{d.strftime("%Y-%m-%d %H:%M")} UTC</time>{escape(age)}')


def _kv(rows: Iterable[tuple[str, str]]) -> str:
    return '<dl class="kv">' + "".join(f"<dt>{escape(k)}</dt><dd>{v}</dd>" for k, v in rows) + \
        "</dl>"


def _table(id_: str, cols: Sequence[tuple[str, Callable[[dict[str, Any]], str]]],
           rows: Sequence[dict[str, Any]], empty: str) -> str:
    if not rows:
        return f'<p class="muted" id="{id_}">{escape(empty)}</p>'
    head = "".join(f'<th scope="col">{escape(c)}</th>' for c, _ in cols)
    body = "".join("<tr>" + "".join(f"<td>{f(r)}</td>" for _, f in cols) + "</tr>" for r in rows)
    return (f'<div class="tw" id="{id_}"><table class="list"><thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table></div>")


def _yn(v: Any, yes: str, no: str) -> str:
    return "unknown" if v is None else yes if v else no


LED_STATUS = {
    "booting": "both LEDs lit: the hub is starting",
    "synced": "green steady: serving, online, everything accepted by national",
    "waiting": "green blinking slowly: serving; offline or data waiting to go to national",
    "syncing": "green blinking fast: syncing with national now",
    "shutdown": "both dark: shutting down",
}


def led_words(led: dict[str, Any] | None) -> str:
    """The LED state as the IT focal point would describe what they see (health/LEDS.md)."""
    if not led:
        return "unknown: the health agent has not reported yet"
    words = LED_STATUS.get(str(led.get("status")), str(led.get("status")))
    faults = led.get("faults") or []
    if not faults:
        return words + "; red off (no fault)"
    first = faults[0]
    n = int(first.get("code") or 0)
    words += f"; red blinks {n} time{'s' if n != 1 else ''}: {first.get('text')}"
    for f in faults[1:]:
        words += f"; also: {f.get('text')}"
    return words


def _hardware(h: dict[str, Any]) -> str:
    s = h.get("sample") or {}
    age = h.get("sample_age_s")
    disk = "unknown" if s.get("disk_pct") is None else \
        f"{s['disk_pct']} % used, {_e(s.get('disk_free_mb'))} MB free"
    uv = _yn(s.get("undervoltage_now"), "UNDER-VOLTAGE NOW", "no") + \
        (" (seen since boot)" if s.get("undervoltage_seen") else "")
    return _kv([
        ("LEDs", escape(led_words(h.get("led")))),
        ("Latest sample", when(s.get("at")) + (f" ({dur(age)} old)" if age is not None else "")
         if s else "none yet: the health agent is not running"),
        ("Temperature", "unknown" if s.get("temp_c") is None else f"{_e(s['temp_c'])} °C"),
        ("Under-voltage", escape(uv)),
        ("Throttled", _yn(s.get("throttled_now"), "yes", "no")),
        ("Disk", escape(disk)),
        ("Power cuts", _e(h.get("power_cuts"))),
        ("Clock", _yn(s.get("ntp_synced"), "synchronised", "NOT synchronised")),
        ("Memory / CPU", f"{_e(s.get('mem_pct'))} % / {_e(s.get('cpu_pct'))} %" if s
         else "unknown"),
        ("Database check", _yn(s.get("integrity_ok"), "ok", "FAILED")),
        ("SD card", _yn(s.get("ro_remount"), "READ-ONLY: failing", "writable")),
        ("Modem", _yn(s.get("modem_present"), "present", "absent")),
        ("Heartbeats queued", _e(h.get("heartbeats_queued"))),
    ])


TLS_STATE = {
    "ok": "serving a valid certificate",
    "renewing": "serving; a new certificate is being obtained from national",
    "none": "NO CERTIFICATE YET: tablets cannot connect until national issues one",
    "expired": "CERTIFICATE EXPIRED: tablets cannot connect until it is renewed",
}


def _https(t: dict[str, Any]) -> str:
    """The certificate tablets see, as the IT focal point checks it."""
    days = t.get("days_left")
    return _kv([
        ("Tablet server URL", f"<code>{_e(t.get('url'))}</code>"),
        ("Certificate", escape(TLS_STATE.get(str(t.get("state")), str(t.get("state"))))),
        ("Valid until", when(t.get("not_after")) + (
            f" ({days:.0f} days left)" if isinstance(days, (int, float)) and days > 0 else "")),
        ("Issued by", _e(t.get("issuer"))),
        ("Fingerprint (SHA-256)", f"<code>{_e(t.get('fingerprint'))}</code>"),
        ("Last renewal error", _e(t.get("last_error") or "none")),
    ])


def _scoped_lists(conn: Any, index: MetadataIndex, user: User
                  ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Conflicts (open first) and rejections the user may see, as the /api/hub views scope
    them: conflicts in the user's view scope; rejections of their own entries (superusers:
    everyone's in scope)."""
    def may_view(ou: str) -> bool:
        return user.can_view(index, ou)
    conflicts = synclog.visible_conflicts(conn, may_view, open_first=True, scan=2000,
                                          keep=LIST_LIMIT)
    rejections = synclog.visible_rejections(conn, may_view, username=user.username,
                                            superuser=user.is_superuser, scan=2000,
                                            keep=LIST_LIMIT)
    return conflicts, rejections


def status_main(request: web.Request, raw: dict[str, Any], health: dict[str, Any],
                lists: tuple[list[dict[str, Any]], list[dict[str, Any]]] | None) -> str:
    cfg, index = request.app[CONFIG], request.app[STATE].index
    st, values, regs = raw["state"], raw["values"], raw["registrations"]
    tracker = raw.get("tracker") or {}
    pending = values["pending"] + regs.get("pending", 0) + tracker.get("pending", 0)
    rejected = values["rejected"] + regs.get("rejected", 0) + tracker.get("rejected", 0)
    link = st.get("link", "unknown")

    def name(uid: str | None) -> str:
        doc = index.get(uid or "") or {}
        return _e(doc.get("displayName") or doc.get("name") or uid)

    def item(r: dict[str, Any]) -> str:
        if r.get("de"):
            return f"{name(r['de'])} · {name(r.get('coc'))}"
        if r.get("entity") in synclog.TRACKER_ENTITIES or r.get("entity") in (
                "te_attribute", "event_value"):  # a tracker record or one of its values
            what = r.get("attribute") or r.get("dataElement")
            uid = r.get("uid") or r.get("te") or r.get("event") or ""
            return f"{_e(r['entity'])} {_e(uid)}" + (f" · {name(what)}" if what else "")
        return f"completion of {name(r.get('ds') or r.get('data_set'))}"

    counts = "".join(
        f'<div class="card{" alert" if bad and n else ""}" data-count="{k}">'
        f'<span class="big-n">{n}</span>{escape(t)}</div>'
        for k, n, t, bad in (("pending", pending, "waiting for national", False),
                             ("synced", values["synced"], "values accepted by national", False),
                             ("conflicts", raw["conflicts"], "open conflicts", True),
                             ("rejected", rejected, "refused by national", True)))
    hub = _kv([
        ("Name", _e(cfg.get("hub", "name"))), ("Hub id", _e(cfg.get("hub", "id"))),
        ("Software", _e(__version__)), ("DHIS2 API", _e(cfg.get("hub", "dhis2_version"))),
        ("Up for", dur(time.time() - request.app[STATE].started)),
        ("Role", _e(request.app[ROLE])), ("Metadata version", _e(index.version)),
    ])
    sync = _kv([
        ("Link", {"up": "online", "down": "offline"}.get(link, "not checked yet")),
        ("Syncing now", "yes" if st.get("syncing") == "1" else "no"),
        ("Last success", when(st.get("last_success"), True)),
        ("Last attempt", when(st.get("last_attempt"), True)),
        ("Last error", _e(st.get("last_error") or "none")),
        ("Waiting", f"{values['pending']} value(s), {regs.get('pending', 0)} completion(s)"),
        ("Sent / received", f"{int(float(st.get('bytes_sent') or 0)) // 1024} KB / "
                            f"{int(float(st.get('bytes_received') or 0)) // 1024} KB"),
        ("Clock offset", _e(st.get("clock_offset_s")) + " s" if st.get("clock_offset_s")
         else "unknown"),
        ("National", _e(cfg.get("national", "url") or "not configured")),
    ])
    parts = [
        '<h1 class="big">Hub status</h1>', f'<div class="counts" id="counts">{counts}</div>',
        '<div class="grid">',
        f'<div class="card" id="hub"><h2>Hub</h2>{hub}</div>',
        f'<div class="card" id="sync"><h2>Sync with national</h2>{sync}</div>',
        f'<div class="card" id="hardware"><h2>Hardware</h2>{_hardware(health)}</div>',
        *([f'<div class="card" id="https"><h2>HTTPS for tablets</h2>{_https(raw["tls"])}</div>']
          if raw.get("tls") else []),
        "</div>", '<h2 class="big">Recent sync events</h2>',
        _table("events", [("When", lambda e: when(e["at"])), ("Level", lambda e: _e(e["level"])),
                          ("Kind", lambda e: _e(e["kind"])),
                          ("What happened", lambda e: _e(e["message"]))],
               raw["events"], "No sync events yet."),
    ]
    if lists is None:
        parts.append('<p class="banner" id="login-note">Log in to see the conflict log and the '
                     "values national refused.</p>")
        return "\n".join(parts)
    conflicts, rejections = lists

    def side(r: dict[str, Any], who: str) -> str:
        value = "deleted" if r[f"{who}_deleted"] else _e(r[f"{who}_value"])
        return f"<b>{value}</b><br>{_e(r[f'{who}_user'])}<br>{when(r[f'{who}_at'])}"

    where: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
        ("Period", lambda r: _e(r.get("pe"))), ("Org unit", lambda r: name(r.get("ou") or r.get("org_unit")))]
    parts += [
        '<h2 class="big" id="conflicts">Conflict log</h2>',
        '<p class="muted">The same value was changed here and at national. The losing value '
        "is kept here until someone resolves it.</p>",
        _table("conflict-log", [
            ("Detected", lambda r: when(r["detected_at"])), ("Item", item), *where,
            ("Hub value · by · at", lambda r: side(r, "hub")),
            ("National value · by · at", lambda r: side(r, "national")),
            ("Winner", lambda r: _e(r["winner"])),
            ("Why", lambda r: f"{_e(r['reason'])} ({_e(r['policy'])})"),
            ("Status", lambda r: f"resolved by {_e(r['resolved_by'])}" if r["resolved_at"]
             else "open")], conflicts, "No conflicts."),
        '<h2 class="big" id="rejections">Refused by national</h2>',
        _table("rejection-list", [
            ("When", lambda r: when(r["at"])), ("Entered by", lambda r: _e(r["username"])),
            ("Item", item), *where, ("Value", lambda r: _e(r["value"])),
            ("Reason", lambda r: _e(r["message"]) + (f" ({_e(r['error_code'])})"
                                                     if r["error_code"] else "")),
            ("Now", lambda r: "still refused" if r["state"] == "rejected" else _e(
                {"pending": "edited again: waiting for national",
                 "synced": "accepted by national"}.get(r["state"] or "", r["state"])))],
            rejections, "Nothing was refused."),
    ]
    return "\n".join(parts)


def setup(app: web.Application) -> None:
    """Register ``/hub``, ``/hub/status``, ``/hub/session``, the register pages
    (``/hub/people``, ``/hub/people/{uid}``, ``/hub/lists``) and ``/hub/static/{name}``."""
    assets = load_static()
    hub_name = str(app[CONFIG].get("hub", "name"))
    # the shells, built once per HTTPS offer (none, or the hub's name once its certificate
    # is served): (title, page) -> Asset
    shells: dict[str | None, dict[str, Asset]] = {}

    def page_shell(request: web.Request, name: str) -> tuple[Asset, str | None]:
        offer = tls.https_offer(request.app)
        built = shells.get(offer)
        if built is None:
            titles = {"entry": "Monthly forms", "board": N_("Reporting board"),
                      **{n: title for n, (title, _path) in REGISTER_PAGES.items()}}
            built = shells[offer] = {
                n: _asset(shell(n, t, hub_name, assets, https=offer).encode(), "text/html")
                for n, t in titles.items()}
        return built[name], offer

    async def entry(request: web.Request) -> web.Response:
        page, offer = page_shell(request, "entry")
        return _reply(request, page, "no-cache", offer)

    async def status(request: web.Request) -> web.Response:
        store, index = request.app[STORE], request.app[STATE].index
        user: User | None = request.get(USER_KEY)
        raw = await store.read(read_status)
        raw["tls"] = await tls.status(request.app)
        health = await health_payload(store)
        lists = None if user is None else await store.read(
            lambda c: _scoped_lists(c, index, user))
        offer = tls.https_offer(request.app)
        html = shell("status", "Hub status", hub_name, assets,
                     status_main(request, raw, health, lists), https=offer)
        resp = web.Response(text=html, content_type="text/html", charset="utf-8",
                            headers={"Cache-Control": "no-store", **security_headers(offer)})
        resp.enable_compression()
        return resp

    async def session(request: web.Request) -> web.Response:
        # lets the page learn whether its cookie is still good without a 401 from the API:
        # the auth middleware answers 401s with a Basic challenge, and a browser then opens
        # its own password dialog over the page
        user: User | None = request.get(USER_KEY)
        return web.json_response({"loggedIn": user is not None,
                                  "username": user.username if user else None},
                                 headers={"Cache-Control": "no-store"})

    async def static(request: web.Request) -> web.Response:
        asset = assets.get(request.match_info["name"])
        if asset is None:
            raise web.HTTPNotFound()
        # the shell links assets by content hash, so a cached copy is never stale
        cache = "public, max-age=31536000, immutable" if request.query.get("v") else "no-cache"
        return _reply(request, asset, cache)

    def register_page(name: str) -> Callable[[web.Request], Any]:
        async def handler(request: web.Request) -> web.Response:
            # the shell holds no data: the page's JS reads it with the user's session
            page, offer = page_shell(request, name)
            return _reply(request, page, "no-cache", offer)
        return handler

    app.router.add_get("/hub/people", register_page("people"))
    app.router.add_get("/hub/people/{uid}", register_page("record"))
    app.router.add_get("/hub/lists", register_page("lists"))
    app.router.add_get("/hub/board", register_page("board"))  # data: /api/hub/board
    app.router.add_get("/hub", entry)
    app.router.add_get("/hub/", entry)
    app.router.add_get("/hub/status", status)
    app.router.add_get("/hub/session", session)
    app.router.add_get("/hub/static/{name}", static)
