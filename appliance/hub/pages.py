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
import json
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
from ..health.leds import Fault, fault_text
from ..i18n import LOCALE_NAMES, LOCALES, N_, Tr, js_catalog
from ..store import synclog
from ..store.metadata import MetadataIndex
from ..store.users import User
from . import lang, tls
from .events import event_words, failure_words
from .refusals import Names, refusal_words
from .routes_hub import read_status, wire_status
from .web import CONFIG, ROLE, STATE, STORE, USER_KEY

STATIC_TYPES = {".js": "text/javascript", ".css": "text/css"}
STATIC_FILES = ("hub.js", "hub.css", "dom.js", "people.js", "people.css", "https.js",
                "i18n.js", "board.js", "board.css", "offline.js", "outbox.js")
# The register pages (people.js, people.css): page name -> (title, path)
REGISTER_PAGES = {"people": (N_("People"), "/hub/people"),
                  "record": (N_("Person"), "/hub/people"),
                  "lists": (N_("Weekly lists"), "/hub/lists")}
NAV = [("entry", N_("Monthly forms"), "/hub"), ("people", N_("People"), "/hub/people"),
       ("lists", N_("Weekly lists"), "/hub/lists"), ("board", N_("Reporting board"), "/hub/board"),
       ("status", N_("Hub status"), "/hub/status")]
REFRESH_MS = 10_000
LIST_LIMIT = 200

# Words of the pages' HTML (f-strings hide tr() calls from the extractor): key -> msgid
WORDS = {
    "language": N_("Language"),
    "checking_link": N_("checking link…"),
    "sync_now": N_("Sync now"),
    "log_out": N_("Log out"),
    "log_in": N_("Log in"),
    "use_login": N_("Use your DHIS2 username and password."),
    "username": N_("Username"),
    "password": N_("Password"),
    "hub_status": N_("Hub status"),
    "hub": N_("Hub"),
    "sync_with_national": N_("Sync with national"),
    "hardware": N_("Hardware"),
    "https_for_tablets": N_("HTTPS for tablets"),
    "recent_sync_events": N_("Recent sync events"),
    "modem_use": N_("Modem data use"),
    "conflict_log": N_("Conflict log"),
    "refused_by_national": N_("Refused by national"),
    "needs_js": N_("Data entry needs JavaScript. Use a current Chrome, Firefox or Edge."),
}


def words(tr: Tr) -> Callable[[str], str]:
    """``w(key)``: WORDS[key] in the reader's language, HTML-escaped."""
    return lambda key: escape(tr(WORDS[key]))


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
    out = {name: _asset(base.joinpath(name).read_bytes(), STATIC_TYPES[name[name.rfind("."):]])
           for name in STATIC_FILES}
    # the scripts' catalogues (from the .po files): /hub/i18n/bn.json
    for loc in LOCALES:
        out[f"{loc}.json"] = _asset(json.dumps(js_catalog(loc), ensure_ascii=False,
                                               sort_keys=True).encode(), "application/json")
    return out


def switch(tr: Tr) -> str:
    """বাংলা | English, and in Bangla the digits: links that work without JS (the hub keeps
    the choice in a cookie); hub.js also stores it as the user's keyUiLocale."""
    w = words(tr)
    langs = " | ".join(
        f'<a href="?lang={loc}" lang="{loc}" data-lang="{loc}"' +
        (' aria-current="true"' if loc == tr.locale else "") + f">{LOCALE_NAMES[loc]}</a>"
        for loc in LOCALES)
    digits = ""
    if tr.locale == "bn":
        digits = " · " + " | ".join(
            f'<a href="?digits={d}" data-digits="{d}"' +
            (' aria-current="true"' if d == tr.digits else "") + f' title="{escape(tr(title))}">'
            f"{text}</a>" for d, text, title in (
                ("bengali", "১২৩", N_("Bengali digits")), ("latin", "123", N_("Latin digits"))))
    return (f'<span class="lang" role="group" aria-label="{w("language")}">'
            f"{langs}{digits}</span>")


def shell(page: str, title: str, hub_name: str, assets: dict[str, Asset], main: str = "",
          https: str | None = None, tr: Tr | None = None) -> str:
    """The HTML both pages share: header bar, login form, and the main part. ``https``: the
    hub's HTTPS host, offered (after a probe) to a laptop on plain HTTP. ``tr``: the reader's
    language (the page's ``lang``; its scripts load the matching catalogue)."""
    tr = tr or Tr()
    w = words(tr)

    def v(name: str) -> str:
        return f"/hub/static/{name}?v={assets[name].etag.strip(chr(34))}"
    other = " ".join(f'<a href="{href}"' + (' aria-current="page"' if p == page else "") +
                     f">{escape(tr(label))}</a>" for p, label, href in NAV)
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
    cat = f"{tr.locale}.json"
    refresh += (f'<meta name="hub-i18n" content="/hub/i18n/{cat}?v='
                f'{assets[cat].etag.strip(chr(34))}">\n')
    return f"""<!doctype html>
<html lang="{tr.locale}" data-digits="{'bengali' if tr.bengali_digits else 'latin'}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(tr(title))} · {escape(hub_name)}</title>
<link rel="stylesheet" href="{v('hub.css')}">
<script src="{v('hub.js')}" type="module"></script>
{extra}{refresh}</head>
<body data-page="{page}" data-refresh="{REFRESH_MS}" data-version="{escape(__version__)}">
<header class="bar">
 <strong class="brand">{escape(hub_name)}</strong>
 <span id="link" class="pill" role="status">{w("checking_link")}</span>
 <span id="pending" class="muted"></span>
 <button type="button" id="sync-now" hidden>{w("sync_now")}</button>
 <span id="sync-msg" class="muted" role="status"></span>
 <nav>{other}</nav>
 <span class="spacer"></span>
 {switch(tr)}
 <span id="who"></span>
 <button type="button" id="logout" hidden>{w("log_out")}</button>
</header>
<noscript><p class="banner err">{w("needs_js")}</p></noscript>
<main id="main">{main}</main>
<section id="login" hidden aria-labelledby="login-h">
 <h1 id="login-h">{w("log_in")}</h1>
 <p class="muted">{w("use_login")}</p>
 <form id="login-form" method="post" action="/dhis-web-commons-security/login.action">
  <label for="username">{w("username")}</label>
  <input id="username" name="j_username" autocomplete="username" autocapitalize="none"
   spellcheck="false" required>
  <label for="password">{w("password")}</label>
  <input id="password" name="j_password" type="password" autocomplete="current-password"
   required>
  <button type="submit" id="login-btn" class="primary">{w("log_in")}</button>
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


def dur(seconds: float, tr: Tr | None = None) -> str:
    tr = tr or Tr("en")
    s = max(0.0, float(seconds))
    if s < 90:
        return tr("{n} s", n=round(s))
    if s < 5400:
        return tr("{n} min", n=round(s / 60))
    if s < 172800:
        return tr("{n} h", n=round(s / 3600))
    return tr("{n} days", n=round(s / 86400))


def _parse(ts: str | None) -> datetime | None:
    if not ts:
        return None
    try:
        d = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return None
    return d if d.tzinfo else d.replace(tzinfo=UTC)  # DHIS2 times without a zone are UTC


def when(ts: str | None, with_age: bool = False, tr: Tr | None = None) -> str:
    """A ``<time>`` the JS shows in the laptop's local time; UTC without JS."""
    tr = tr or Tr("en")
    d = _parse(ts)
    if d is None:
        return _e(ts)
    d = d.astimezone(UTC)
    age = ""
    if with_age:
        secs = time.time() - d.timestamp()
        age = " (" + (tr("{age} ago", age=dur(secs, tr)) if secs >= 0
                      else tr("in the future: check the clock")) + ")"
    return (f'<time datetime="{iso_z(d.timestamp())}">'
            f'{escape(tr.datetime(d))} UTC</time>{escape(age)}')


def held_until(ts: str, tr: Tr) -> str:
    """On the modem, saves after a push wait for the batch window ([sync] batch_s)."""
    mark = "\x00"  # where the <time> goes, after the sentence is escaped
    return '<br><small class="muted" data-next-push>' + escape(tr(
        "goes to national at {time}, or at once with Sync now", time=mark)).replace(
        mark, when(ts, tr=tr)) + "</small>"


def _kv(rows: Iterable[tuple[str, str]], tr: Tr) -> str:
    return '<dl class="kv">' + "".join(f"<dt>{escape(tr(k))}</dt><dd>{v}</dd>"
                                       for k, v in rows) + "</dl>"


def _table(id_: str, cols: Sequence[tuple[str, Callable[[dict[str, Any]], str]]],
           rows: Sequence[dict[str, Any]], empty: str, tr: Tr) -> str:
    if not rows:
        return f'<p class="muted" id="{id_}">{escape(tr(empty))}</p>'
    head = "".join(f'<th scope="col">{escape(tr(c))}</th>' for c, _ in cols)
    body = "".join("<tr>" + "".join(f"<td>{f(r)}</td>" for _, f in cols) + "</tr>" for r in rows)
    return (f'<div class="tw" id="{id_}"><table class="list"><thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table></div>")


def _yn(v: Any, yes: str, no: str, tr: Tr) -> str:
    return tr("unknown") if v is None else tr(yes) if v else tr(no)


LED_STATUS = {
    "booting": N_("both LEDs lit: the hub is starting"),
    "synced": N_("green steady: serving, online, everything accepted by national"),
    "waiting": N_("green blinking slowly: serving; offline or data waiting to go to national"),
    "syncing": N_("green blinking fast: syncing with national now"),
    "shutdown": N_("both dark: shutting down"),
}


def _fault(f: dict[str, Any], tr: Tr) -> str:
    try:
        return fault_text(Fault[str(f.get("name", "")).upper()], tr)
    except KeyError:
        return str(f.get("text"))


def led_words(led: dict[str, Any] | None, tr: Tr | None = None) -> str:
    """The LED state as the IT focal point would describe what they see (health/LEDS.md)."""
    tr = tr or Tr("en")
    if not led:
        return tr("unknown: the health agent has not reported yet")
    status = str(led.get("status"))
    words = tr(LED_STATUS[status]) if status in LED_STATUS else status
    faults = led.get("faults") or []
    if not faults:
        return words + "; " + tr("red off (no fault)")
    first = faults[0]
    n = int(first.get("code") or 0)
    words += "; " + (tr("red blinks {n} time: {fault}", n=n, fault=_fault(first, tr)) if n == 1
                     else tr("red blinks {n} times: {fault}", n=n, fault=_fault(first, tr)))
    for f in faults[1:]:
        words += "; " + tr("also: {fault}", fault=_fault(f, tr))
    return words


def _hardware(h: dict[str, Any], tr: Tr) -> str:
    s = h.get("sample") or {}
    age = h.get("sample_age_s")
    disk = tr("unknown") if s.get("disk_pct") is None else tr(
        "{pct} % used, {mb} MB free", pct=tr.num(s["disk_pct"]), mb=tr.num(s.get("disk_free_mb")))
    uv = _yn(s.get("undervoltage_now"), N_("UNDER-VOLTAGE NOW"), N_("no"), tr) + \
        (" " + tr("(seen since boot)") if s.get("undervoltage_seen") else "")
    return _kv([
        (N_("LEDs"), escape(led_words(h.get("led"), tr))),
        (N_("Latest sample"), when(s.get("at"), tr=tr) + (
            " (" + escape(tr("{age} old", age=dur(age, tr))) + ")" if age is not None else "")
         if s else escape(tr("none yet: the health agent is not running"))),
        (N_("Temperature"), escape(tr("unknown")) if s.get("temp_c") is None
         else escape(tr.num(s["temp_c"])) + " °C"),
        (N_("Under-voltage"), escape(uv)),
        (N_("Throttled"), escape(_yn(s.get("throttled_now"), N_("yes"), N_("no"), tr))),
        (N_("Disk"), escape(disk)),
        (N_("Power cuts"), escape(tr.num(h.get("power_cuts")))),
        (N_("Clock"), escape(_yn(s.get("ntp_synced"), N_("synchronised"),
                                 N_("NOT synchronised"), tr))),
        (N_("Memory / CPU"), escape(f"{tr.num(s.get('mem_pct'))} % / {tr.num(s.get('cpu_pct'))} %")
         if s else escape(tr("unknown"))),
        (N_("Database check"), escape(_yn(s.get("integrity_ok"), N_("ok"), N_("FAILED"), tr))),
        (N_("SD card"), escape(_yn(s.get("ro_remount"), N_("READ-ONLY: failing"), N_("writable"),
                                   tr))),
        (N_("Modem"), escape(_yn(s.get("modem_present"), N_("present"), N_("absent"), tr))),
        (N_("Heartbeats queued"), escape(tr.num(h.get("heartbeats_queued")))),
    ], tr)


TLS_STATE = {
    "ok": N_("serving a valid certificate"),
    "renewing": N_("serving; a new certificate is being obtained from national"),
    "none": N_("NO CERTIFICATE YET: tablets cannot connect until national issues one"),
    "expired": N_("CERTIFICATE EXPIRED: tablets cannot connect until it is renewed"),
}


def _https(t: dict[str, Any], tr: Tr) -> str:
    """The certificate tablets see, as the IT focal point checks it."""
    days = t.get("days_left")
    state = str(t.get("state"))
    return _kv([
        (N_("Tablet server URL"), f"<code>{_e(t.get('url'))}</code>"),
        (N_("Certificate"), escape(tr(TLS_STATE[state]) if state in TLS_STATE else state)),
        (N_("Valid until"), when(t.get("not_after"), tr=tr) + (
            " (" + escape(tr("{n} days left", n=round(days))) + ")"
            if isinstance(days, (int, float)) and days > 0 else "")),
        (N_("Issued by"), _e(t.get("issuer"))),
        (N_("Fingerprint (SHA-256)"), f"<code>{_e(t.get('fingerprint'))}</code>"),
        (N_("Last renewal error"), _e(t.get("last_error") or tr("none"))),
    ], tr)


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


# /api/hub/status's "wire" categories as the IT focal point reads them (issue 15)
WIRE_ROWS = (("metadata", N_("Forms and settings (metadata)")),
             ("pull", N_("Data from national")), ("push", N_("Data to national")),
             ("other", N_("Other (link checks, logins, fleet)")))
MIB = 1024 * 1024
# the card's other words (f-strings hide tr() calls from the extractor)
WIRE_WORDS = {"today": N_("Today"), "month": N_("This month"), "total": N_("Total"),
              "fleet": N_("of which heartbeats and updates (fleet)"),
              "over": N_("OVER BUDGET")}


def size(n: Any, tr: Tr) -> str:
    """Bytes as KB (below 1 MB) or MB with one decimal, in the reader's digits."""
    b = max(0, int(n or 0))
    if b < MIB:
        return tr("{n} KB", n=tr.num(-(-b // 1024)))
    return tr("{n} MB", n=tr.num(b / MIB, 1))


def _wire(w: dict[str, Any], tr: Tr) -> str:
    """Today's and this month's bytes on the modem by category, and the monthly budget."""
    today, month = w["today"], w["month"]

    def cell(part: dict[str, Any]) -> str:
        return escape(tr("{sent} up · {received} down", sent=size(part["sent"], tr),
                         received=size(part["received"], tr)))
    word = {k: escape(tr(v)) for k, v in WIRE_WORDS.items()}
    head = (f'<th scope="col"></th><th scope="col">{word["today"]}</th>'
            f'<th scope="col">{word["month"]} '
            f'({escape(tr.period(str(month["period"])))})</th>')
    rows = [f'<tr data-wire="{k}"><th scope="row">{escape(tr(label))}</th>'
            f"<td>{cell(today[k])}</td><td>{cell(month[k])}</td></tr>" for k, label in WIRE_ROWS]
    rows.append(f'<tr data-wire="fleet"><th scope="row"><small>{word["fleet"]}</small></th>'

                f'<td><small>{cell(today["other"]["fleet"])}</small></td>'
                f'<td><small>{cell(month["other"]["fleet"])}</small></td></tr>')
    rows.append(f'<tr data-wire="total"><th scope="row">{word["total"]}</th>'
                f'<td><b>{cell(today["total"])}</b></td><td><b>{cell(month["total"])}</b></td>'
                "</tr>")
    budget, pct = w.get("budgetMb"), w.get("monthUsedPct")
    if budget is None:
        words = escape(tr("none set"))
    else:
        used = month["total"]["sent"] + month["total"]["received"]
        words = escape(tr("{used} of {budget} used this month ({pct} %)", used=size(used, tr),
                          budget=tr("{n} MB", n=tr.num(budget)), pct=tr.num(pct, 1)))
        if pct is not None and pct > 100:
            words = f'<b class="over">{word["over"]}</b>: ' + words
    return (f'<div class="tw"><table class="list" id="wire-table"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div>'
            + _kv([(N_("Monthly budget"), words)], tr))


LINK_WORDS = {"up": N_("online"), "down": N_("offline"), "unknown": N_("not checked yet")}
REJECTION_NOW = {"pending": N_("edited again: waiting for national"),
                 "synced": N_("accepted by national")}
CONFLICT_REASON = {"hub": N_("the hub's value was kept"),
                   "national": N_("national's value was kept")}


def status_main(request: web.Request, raw: dict[str, Any], health: dict[str, Any],
                lists: tuple[list[dict[str, Any]], list[dict[str, Any]]] | None,
                tr: Tr | None = None) -> str:
    tr = tr or Tr("en")
    w = words(tr)
    cfg, index = request.app[CONFIG], request.app[STATE].index
    st, values, regs = raw["state"], raw["values"], raw["registrations"]
    tracker = raw.get("tracker") or {}
    pending = values["pending"] + regs.get("pending", 0) + tracker.get("pending", 0)
    rejected = values["rejected"] + regs.get("rejected", 0) + tracker.get("rejected", 0)
    link = st.get("link", "unknown")
    names = Names(index, tr.locale)

    def name(uid: str | None) -> str:
        return _e(names.name(uid))

    def item(r: dict[str, Any]) -> str:
        if r.get("de"):
            return f"{name(r['de'])} · {name(r.get('coc'))}"
        if r.get("entity") in synclog.TRACKER_ENTITIES or r.get("entity") in (
                "te_attribute", "event_value"):  # a tracker record or one of its values
            what = r.get("attribute") or r.get("dataElement")
            uid = r.get("uid") or r.get("te") or r.get("event") or ""
            return f"{_e(r['entity'])} {_e(uid)}" + (f" · {name(what)}" if what else "")
        return escape(tr("completion of {form}", form=names.name(r.get("ds") or r.get("data_set"))))

    counts = "".join(
        f'<div class="card{" alert" if bad and n else ""}" data-count="{k}">'
        f'<span class="big-n">{escape(tr.num(n))}</span>{escape(tr(t))}</div>'
        for k, n, t, bad in (("pending", pending, N_("waiting for national"), False),
                             ("synced", values["synced"], N_("values accepted by national"),
                              False),
                             ("conflicts", raw["conflicts"], N_("open conflicts"), True),
                             ("rejected", rejected, N_("refused by national"), True)))
    hub = _kv([
        (N_("Name"), _e(cfg.get("hub", "name"))), (N_("Hub id"), _e(cfg.get("hub", "id"))),
        (N_("Software"), _e(__version__)), (N_("DHIS2 API"), _e(cfg.get("hub", "dhis2_version"))),
        (N_("Up for"), escape(dur(time.time() - request.app[STATE].started, tr))),
        (N_("Role"), _e(request.app[ROLE])), (N_("Metadata version"), _e(tr.num(index.version))),
    ], tr)
    offset = st.get("clock_offset_s")
    sync = _kv([
        (N_("Link"), escape(tr(LINK_WORDS.get(link, LINK_WORDS["unknown"])))),
        (N_("Syncing now"), escape(tr("yes") if st.get("syncing") == "1" else tr("no"))),
        (N_("Last success"), when(st.get("last_success"), True, tr)),
        (N_("Last attempt"), when(st.get("last_attempt"), True, tr)),
        (N_("Last error"), escape(failure_words(st.get("last_error_cause"), st["last_error"], tr))
         + f'<br><small class="muted details">{escape(st["last_error"])}</small>'
         if st.get("last_error") else escape(tr("none"))),
        (N_("Waiting"), escape(tr("{values} value(s), {completions} completion(s)",
                                  values=values["pending"], completions=regs.get("pending", 0)))
         + (held_until(st["next_push"], tr) if pending and st.get("next_push") else "")),
        (N_("Sent / received"), escape(tr(
            "{sent} KB / {received} KB",
            sent=int(float(st.get("bytes_sent") or 0)) // 1024,
            received=int(float(st.get("bytes_received") or 0)) // 1024))),
        (N_("Clock offset"), escape(tr("{n} s", n=float(offset))) if offset
         else escape(tr("unknown"))),
        (N_("National"), _e(cfg.get("national", "url") or tr("not configured"))),
    ], tr)

    def event(e: dict[str, Any]) -> str:
        words, details = event_words(e, tr)
        return escape(words) + (f'<br><small class="muted details">{escape(details)}</small>'
                                if details else "")

    parts = [
        f'<h1 class="big">{w("hub_status")}</h1>',
        f'<div class="counts" id="counts">{counts}</div>',
        '<div class="grid">',
        f'<div class="card" id="hub"><h2>{w("hub")}</h2>{hub}</div>',
        f'<div class="card" id="sync"><h2>{w("sync_with_national")}</h2>{sync}</div>',
        *([f'<div class="card" id="wire"><h2>{w("modem_use")}</h2>{_wire(raw["wire"], tr)}'
           "</div>"] if raw.get("wire") else []),
        f'<div class="card" id="hardware"><h2>{w("hardware")}</h2>'
        f"{_hardware(health, tr)}</div>",
        *([f'<div class="card" id="https"><h2>{w("https_for_tablets")}</h2>'
           f'{_https(raw["tls"], tr)}</div>'] if raw.get("tls") else []),
        "</div>", f'<h2 class="big">{w("recent_sync_events")}</h2>',
        _table("events", [(N_("When"), lambda e: when(e["at"], tr=tr)),
                          (N_("What happened"), event)],
               raw["events"], N_("No sync events yet."), tr),
    ]
    if lists is None:
        parts.append('<p class="banner" id="login-note">' + escape(tr(
            "Log in to see the conflict log and the values national refused.")) + "</p>")
        return "\n".join(parts)
    conflicts, rejections = lists

    def side(r: dict[str, Any], who: str) -> str:
        value = escape(tr("deleted")) if r[f"{who}_deleted"] else _e(r[f"{who}_value"])
        return f"<b>{value}</b><br>{_e(r[f'{who}_user'])}<br>{when(r[f'{who}_at'], tr=tr)}"

    def why(r: dict[str, Any]) -> str:
        return escape(tr(CONFLICT_REASON[r["winner"]]) if r["winner"] in CONFLICT_REASON
                      else str(r["winner"])) + \
            f'<br><small class="muted details">{_e(r["reason"])} ({_e(r["policy"])})</small>'

    def refusal(r: dict[str, Any]) -> str:
        words = refusal_words(r.get("error_code"), r.get("message"), tr)
        return escape(words) + '<br><small class="muted details">' + _e(r["message"]) + (
            f" ({_e(r['error_code'])})" if r["error_code"] else "") + "</small>"

    where: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
        (N_("Period"), lambda r: escape(tr.period(str(r.get("pe") or ""))) if r.get("pe")
         else "—"),
        (N_("Org unit"), lambda r: name(r.get("ou") or r.get("org_unit")))]
    parts += [
        f'<h2 class="big" id="conflicts">{w("conflict_log")}</h2>',
        '<p class="muted">' + escape(tr(
            "The same value was changed here and at national. The losing value is kept here "
            "until someone resolves it.")) + "</p>",
        _table("conflict-log", [
            (N_("Detected"), lambda r: when(r["detected_at"], tr=tr)), (N_("Item"), item),
            *where,
            (N_("Hub value · by · at"), lambda r: side(r, "hub")),
            (N_("National value · by · at"), lambda r: side(r, "national")),
            (N_("Outcome"), why),
            (N_("Status"), lambda r: escape(tr("resolved by {user}", user=r["resolved_by"]))
             if r["resolved_at"] else escape(tr("open")))], conflicts, N_("No conflicts."), tr),
        f'<h2 class="big" id="rejections">{w("refused_by_national")}</h2>',
        _table("rejection-list", [
            (N_("When"), lambda r: when(r["at"], tr=tr)),
            (N_("Entered by"), lambda r: _e(r["username"])),
            (N_("Item"), item), *where, (N_("Value"), lambda r: _e(r["value"])),
            (N_("Reason"), refusal),
            (N_("Now"), lambda r: escape(tr("still refused")) if r["state"] == "rejected" else
             escape(tr(REJECTION_NOW[r["state"]]) if r["state"] in REJECTION_NOW
                    else str(r["state"])))],
            rejections, N_("Nothing was refused."), tr),
    ]
    return "\n".join(parts)


def setup(app: web.Application) -> None:
    """Register ``/hub``, ``/hub/status``, ``/hub/session``, the register pages
    (``/hub/people``, ``/hub/people/{uid}``, ``/hub/lists``) and ``/hub/static/{name}``."""
    assets = load_static()
    hub_name = str(app[CONFIG].get("hub", "name"))
    # the shells, built once per HTTPS offer (none, or the hub's name once its certificate
    # is served) and language: (offer, locale, digits) -> page -> Asset
    shells: dict[tuple[str | None, str, str], dict[str, Asset]] = {}

    async def page_shell(request: web.Request, name: str) -> tuple[Asset, str | None, Tr]:
        offer = tls.https_offer(request.app)
        tr = await lang.reader(request)
        built = shells.get((offer, tr.locale, tr.digits))
        if built is None:
            titles = {"entry": N_("Monthly forms"), "board": N_("Reporting board"),
                      **{n: title for n, (title, _path) in REGISTER_PAGES.items()}}
            built = shells[(offer, tr.locale, tr.digits)] = {
                n: _asset(shell(n, t, hub_name, assets, https=offer, tr=tr).encode(),
                          "text/html")
                for n, t in titles.items()}
        return built[name], offer, tr

    async def shell_reply(request: web.Request, name: str) -> web.Response:
        page, offer, tr = await page_shell(request, name)
        resp = _reply(request, page, "no-cache", offer)
        resp.headers["Vary"] = "Accept-Encoding, Cookie"  # the reader's language
        lang.remember(request, resp, tr)
        return resp

    async def entry(request: web.Request) -> web.Response:
        return await shell_reply(request, "entry")

    async def status(request: web.Request) -> web.Response:
        store, index = request.app[STORE], request.app[STATE].index
        user: User | None = request.get(USER_KEY)
        raw = await store.read(read_status)
        raw["tls"] = await tls.status(request.app)
        budget = request.app[CONFIG].get("sync", "modem_budget_mb")
        raw["wire"] = await store.read(lambda c: wire_status(c, budget))
        health = await health_payload(store)
        lists = None if user is None else await store.read(
            lambda c: _scoped_lists(c, index, user))
        offer = tls.https_offer(request.app)
        tr = await lang.reader(request)
        html = shell("status", N_("Hub status"), hub_name, assets,
                     status_main(request, raw, health, lists, tr), https=offer, tr=tr)
        resp = web.Response(text=html, content_type="text/html", charset="utf-8",
                            headers={"Cache-Control": "no-store", **security_headers(offer)})
        lang.remember(request, resp, tr)
        resp.enable_compression()
        return resp

    async def session(request: web.Request) -> web.Response:
        # lets the page learn whether its cookie is still good without a 401 from the API:
        # the auth middleware answers 401s with a Basic challenge, and a browser then opens
        # its own password dialog over the page
        # and which language the hub serves this reader now (hub.js reloads after a login
        # into the user's own)
        user: User | None = request.get(USER_KEY)
        tr = await lang.reader(request)
        return web.json_response({"loggedIn": user is not None,
                                  "username": user.username if user else None,
                                  "locale": tr.locale, "digits": tr.digits},
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
            return await shell_reply(request, name)
        return handler

    async def catalogue(request: web.Request) -> web.Response:
        # the scripts' strings in one language, linked by content hash like the assets
        name = request.match_info["name"]
        asset = assets.get(name) if name.endswith(".json") else None
        if asset is None:
            raise web.HTTPNotFound()
        cache = "public, max-age=31536000, immutable" if request.query.get("v") else "no-cache"
        return _reply(request, asset, cache)

    app.router.add_get("/hub/people", register_page("people"))
    app.router.add_get("/hub/people/{uid}", register_page("record"))
    app.router.add_get("/hub/lists", register_page("lists"))
    app.router.add_get("/hub/board", register_page("board"))  # data: /api/hub/board
    app.router.add_get("/hub", entry)
    app.router.add_get("/hub/", entry)
    app.router.add_get("/hub/status", status)
    app.router.add_get("/hub/session", session)
    app.router.add_get("/hub/static/{name}", static)
    app.router.add_get("/hub/i18n/{name}", catalogue)
