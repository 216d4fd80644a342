"""Server-rendered HTML for the national team: dashboard, hub page, alert list.

Built for a slow office link: no framework, no external assets, one inline stylesheet and
a few lines of optional JS (filters submit on change). Everything works without JS: the
filters are a plain GET form. Every interpolated value goes through ``esc``.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping
from html import escape
from typing import Any
from urllib.parse import quote, urlencode

from ..i18n import N_, Tr, translator
from . import charts
from .alerts import MB, STATE_RANK, Thresholds, age, alert_words, when
from .auth import Account
from .db import BOOL_COLUMNS, SAMPLE_COLUMNS
from .lang import switch
from .queries import HubFilter, HubPage

CSS = """
*{box-sizing:border-box}
body{font:14px/1.35 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1d1d1d;
background:#f6f7f8}
header{background:#0b4f6c;color:#fff;padding:.45em 1em;display:flex;gap:1.4em;
align-items:baseline;flex-wrap:wrap}
header h1{font-size:1.15em;margin:0}header a{color:#fff}
main{padding:.6em 1em}
a{color:#0b4f6c}
table{border-collapse:collapse;background:#fff;width:100%;font-size:13px}
th,td{padding:.25em .4em;border-bottom:1px solid #e4e6e8;text-align:left;white-space:nowrap}
th{background:#e9eef2;position:sticky;top:0;font-weight:600}
td.n,th.n{text-align:right}
.wrap{overflow-x:auto}
.dot{display:inline-block;width:.85em;height:.85em;border-radius:50%;vertical-align:-.1em}
.dot.red{background:#d32f2f}.dot.amber{background:#f0a202}.dot.green{background:#2e7d32}
.bad{color:#b3261e;font-weight:600}.muted{color:#6b6f73}small{color:#6b6f73}
.counts a{margin-right:1em;text-decoration:none}
form.filters{display:flex;flex-wrap:wrap;gap:.7em;align-items:end;margin:.6em 0}
form.filters label{display:flex;flex-direction:column;font-size:.85em;color:#444}
select,input,button{font:inherit;padding:.2em}
.pager{margin:.6em 0;display:flex;gap:1em}
ul.alerts{padding-left:1.2em}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(500px,1fr));gap:.8em}
.charts figure{margin:0;background:#fff;padding:.4em;border:1px solid #e4e6e8}
.charts figcaption{font-weight:600;margin-bottom:.2em}.charts figcaption span{font-weight:400}
svg.chart{width:100%;height:auto}
.chart .series{fill:none;stroke:#0b4f6c;stroke-width:1.6}
.chart .pt{fill:#0b4f6c}
.chart .limit{stroke:#d32f2f;stroke-dasharray:4 3}
.chart .axis{stroke:#bbb}.chart text{font-size:11px;fill:#555}
form.account{margin-left:auto;display:flex;gap:.6em;align-items:baseline}
form.account button{font-size:.85em}
form.login{background:#fff;border:1px solid #e4e6e8;padding:1em 1.2em;max-width:22em;
margin:2em auto;display:flex;flex-direction:column;gap:.7em}
form.login label{display:flex;flex-direction:column;font-size:.9em;color:#444;gap:.2em}
form.login h1{font-size:1.2em;margin:0}
p.error{color:#b3261e;font-weight:600;margin:0}
@media (max-width:700px){
 #hubs td:nth-child(3),#hubs th:nth-child(3){position:sticky;left:0;z-index:1;background:#fff}
 #hubs th:nth-child(3){background:#e9eef2;z-index:2}
 #hubs td:nth-child(2),#hubs th:nth-child(2){display:none}
}
dl.kv{display:grid;grid-template-columns:max-content 1fr;gap:.15em 1em;background:#fff;
padding:.5em;border:1px solid #e4e6e8}dl.kv dt{color:#555}dl.kv dd{margin:0}
@media (max-width:700px){#hubs th:nth-child(2),#hubs td:nth-child(2){display:none}
#hubs th:first-child,#hubs td:first-child{position:sticky;left:0;z-index:1;background:#fff;
white-space:normal;min-width:7em;max-width:10em}#hubs th:first-child{background:#e9eef2;z-index:2}}
"""

FILTER_JS = """
document.querySelectorAll('form.filters select').forEach(function(s){
 s.addEventListener('change',function(){
  if(s.name==='division'&&s.form.elements.district){s.form.elements.district.value='';}
  s.form.submit();});});
"""


def esc(v: Any) -> str:
    return escape("" if v is None else str(v), quote=True)


def hub_url(hub_id: str) -> str:
    return "/hubs/" + quote(hub_id, safe="")


def layout(title: str, body: str, *, script: str = "", account: Account | None = None,
           nav: bool = True, tr: Tr | None = None) -> str:
    tr = tr or translator("en")
    js = f"<script>{script}</script>" if script else ""
    links = (f"<nav><a href=\"/\">{esc(tr('Hubs'))}</a> · "
             f"<a href=\"/alerts\">{esc(tr('Alerts'))}</a> · "
             f"<a href=\"/reporting\">{esc(tr('Reporting'))}</a> · "
             f"<a href=\"/updates\">{esc(tr('Updates'))}</a> · "
             f"<a href=\"/metrics\">{esc(tr('Metrics'))}</a></nav>") if nav else ""
    who = ""
    if account is not None:  # logging out changes state: a POST form, not a link
        who = (f'<form class="account" method="post" action="/logout">'
               f"<span>{esc(account.username)} ({esc(account.role)})</span> "
               f'<button type="submit">{esc(tr("Log out"))}</button></form>')
    return (f"<!doctype html><html lang=\"{tr.locale}\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
            f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"
            f"<header><h1>{esc(tr('Upazila hub fleet'))}</h1>{links}{switch(tr)}{who}</header>"
            f"<main>{body}</main>{js}</body></html>")


STATE_WORDS = {"red": N_("red"), "amber": N_("amber"), "green": N_("green")}


def alert_text(a: sqlite3.Row, tr: Tr | None) -> str:
    """An alert's message in the reader's language (the English record when it has no
    template: raised before there were, or read in English)."""
    raw = a["words"] if "words" in a.keys() else None  # noqa: SIM118 - a Row: `in` reads values
    if tr is None or tr.locale == "en" or not raw:
        return str(a["message"])
    try:
        doc = json.loads(raw)
        return alert_words(str(doc["t"]), dict(doc.get("p") or {}), tr)
    except (ValueError, KeyError, TypeError):
        return str(a["message"])


def dot(state: str, tr: Tr | None = None) -> str:
    s = state if state in STATE_RANK else "green"
    w = esc(tr(STATE_WORDS[s])) if tr else s
    return f'<span class="dot {s}" role="img" aria-label="{w}" title="{w}"></span>'


# The alert rules in the reader's language; the rule's code stays in the tooltip (the API,
# the logs and the rules' settings use it). The message is the fleet's record, in English;
# a page says it in its reader's language from the template and values kept beside it.
RULE_WORDS = {
    "silent": N_("Hub silent"), "integrity": N_("Database damaged"), "disk": N_("Disk full"),
    "temp": N_("Too hot"), "undervoltage": N_("Power supply too weak"),
    "sync_lag": N_("Sync behind"), "conflicts": N_("Sync conflicts"),
    "clock": N_("Clock wrong"), "cert_expiry": N_("HTTPS certificate"),
    "backup_lag": N_("Backup behind"), "update_rollback": N_("Update rolled back"),
    "update_failed": N_("Update failed"), "modem_budget": N_("Modem budget exceeded"),
}


def rule(code: str, tr: Tr) -> str:
    words = tr(RULE_WORDS[code]) if code in RULE_WORDS else code
    return f'<strong title="{esc(code)}">{esc(words)}</strong>'


def _num(v: Any, unit: str = "", digits: int = 1) -> str:
    if v is None:
        return '<span class="muted">–</span>'
    text = f"{v:.{digits}f}" if isinstance(v, float) else str(v)
    return esc(text + unit)


def _bad(bad: bool) -> str:
    return ' class="bad"' if bad else ""


def _cls(bad: bool) -> str:
    return ' class="n bad"' if bad else ' class="n"'


def _offset(v: float | None, tr: Tr | None = None) -> str:
    if v is None:
        return '<span class="muted">–</span>'
    if abs(v) < 0.5:
        return esc(age(0, tr))
    return esc(("+" if v > 0 else "−") + age(abs(v), tr))


def _query(params: Mapping[str, Any], **change: Any) -> str:
    merged = {**params, **change}
    return "?" + urlencode({k: v for k, v in merged.items() if v not in (None, "", 0)})


def filter_form(action: str, f: HubFilter, places: list[tuple[str, str, int]], *,
                states: Iterable[str] = STATE_RANK, state_name: str = "state",
                state_label: str = N_("State"), extra: str = "", tr: Tr | None = None) -> str:
    tr = tr or translator("en")
    divisions = sorted({d for d, _, _ in places if d})
    div_opts = "".join(f'<option value="{esc(d)}"{" selected" if d == f.division else ""}>'
                       f"{esc(d)}</option>" for d in divisions)
    groups: dict[str, list[tuple[str, int]]] = {}
    for d, dist, n in places:
        if dist and (not f.division or d == f.division):
            groups.setdefault(d, []).append((dist, n))
    dist_opts = "".join(
        f'<optgroup label="{esc(div)}">' + "".join(
            f'<option value="{esc(dist)}"{" selected" if dist == f.district else ""}>'
            f"{esc(dist)} ({n})</option>" for dist, n in items) + "</optgroup>"
        for div, items in groups.items())
    state_opts = "".join(f'<option value="{s}"{" selected" if s == f.state else ""}>'
                         f"{esc(tr(STATE_WORDS.get(s, s)))}</option>" for s in states)
    return (f'<form class="filters" method="get" action="{esc(action)}">'
            f'<label>{esc(tr("Division"))}<select name="division"><option value="">'
            f'{esc(tr("All divisions"))}</option>'
            f"{div_opts}</select></label>"
            f'<label>{esc(tr("District"))}<select name="district"><option value="">'
            f'{esc(tr("All districts"))}</option>'
            f"{dist_opts}</select></label>"
            f'<label>{esc(tr(state_label))}<select name="{state_name}"><option value="">'
            f'{esc(tr("All"))}</option>'
            f"{state_opts}"
            "</select></label>"
            f'<label>{esc(tr("Search"))}<input name="q" value="{esc(f.q)}" size="12" '
            f'placeholder="{esc(tr("hub, upazila"))}"></label>'
            f'{extra}<button type="submit">{esc(tr("Show"))}</button></form>')


def dashboard(page: HubPage, f: HubFilter, places: list[tuple[str, str, int]], *,
              page_no: int, page_size: int, now: float, th: Thresholds,
              account: Account | None = None, tr: Tr | None = None) -> str:
    tr = tr or translator("en")
    params = {"division": f.division, "district": f.district, "state": f.state, "q": f.q}
    total_all = sum(page.counts.values())
    counts = " ".join(
        f'<a href="{esc(_query(params, state=s, page=None))}">{dot(s, tr)} '
        f"{esc(tr.num(page.counts[s]))} {esc(tr(STATE_WORDS[s]))}</a>"
        for s in STATE_RANK)
    rows = "".join(_hub_row(r, now, th, tr) for r in page.rows)
    pages = max(1, -(-page.total // page_size))
    nav = [f"<span>{esc(tr('Page {n} of {pages} · {total} hubs', n=page_no, pages=pages, total=page.total))}</span>"]
    if page_no > 1:
        prev = esc(_query(params, page=page_no - 1))
        nav.insert(0, f'<a rel="prev" href="{prev}">« {esc(tr("previous"))}</a>')
    if page_no < pages:
        nav.append(f'<a rel="next" href="{esc(_query(params, page=page_no + 1))}">'
                   f'{esc(tr("next"))} »</a>')
    empty = (f'<tr><td colspan="15" class="muted">{esc(tr("No hub matches these filters."))}'
             "</td></tr>" if not page.rows else "")
    heads = "".join(f"<th{_NUMCOL if n else ''}>{esc(tr(h))}</th>" for h, n in (
        (N_("Hub"), 0), (N_("Upazila / district"), 0), (N_("State"), 0),
        (N_("Last heartbeat"), 0), (N_("Version"), 0), (N_("Backlog · lag"), 1),
        (N_("Conflicts"), 1), (N_("Temp"), 1), (N_("Power"), 0), (N_("Disk"), 1),
        (N_("SD written"), 1), (N_("Power cuts"), 1), (N_("Modem"), 0), (N_("Clock"), 1),
        (N_("Modem data this month"), 1)))
    body = (f'<p class="counts"><strong>{esc(tr("{n} hubs", n=total_all))}</strong> &nbsp; '
            f"{counts}</p>" + filter_form("/", f, places, tr=tr) +
            f'<div class="wrap"><table id="hubs"><thead><tr>{heads}</tr></thead>'
            f"<tbody>{rows}{empty}</tbody></table></div>"
            f'<nav class="pager">{" ".join(nav)}</nav>')
    return layout(tr("Fleet: upazila hubs"), body, script=FILTER_JS, account=account, tr=tr)


_NUMCOL = ' class="n"'


def _hub_row(r: sqlite3.Row, now: float, th: Thresholds, tr: Tr | None = None) -> str:
    tr = tr or translator("en")
    codes = r["alert_codes"]
    state = r["state"]
    seen = r["last_seen"]
    seen_txt = tr("never") if seen is None else tr("{age} ago", age=age(max(0.0, now - seen), tr))
    lag = r["lag_s"]
    backlog = _num(r["pending"]) + (f" · {esc(age(lag, tr))}" if lag is not None else "")
    power = []
    if r["undervoltage_now"]:
        power.append(tr("UV now"))
    elif r["undervoltage_at"] is not None and ",undervoltage," in codes:
        power.append(tr("UV {age} ago", age=age(max(0.0, now - r["undervoltage_at"]), tr)))
    if r["throttled_now"]:
        power.append(tr("throttled"))
    elif r["freq_capped_seen"]:
        power.append(tr("capped"))
    power_txt = esc(", ".join(power)) if power else f'<span class="muted">{esc(tr("ok"))}</span>'
    sd = r["sd_written_mb"]
    sd_txt = _num(None) if sd is None else esc(f"{sd / 1024:.1f} GB")
    modem = r["modem_present"]
    if modem is None:
        modem_txt = '<span class="muted">–</span>'
    elif not modem:
        modem_txt = esc(tr("no"))
    else:
        modem_txt = esc(tr("link up") if r["link_up"] else tr("link down"))
    title = r["name"] or r["id"]
    place = ", ".join(x for x in (r["upazila"], r["district"]) if x)
    return (f'<tr class="hub {esc(state)}" data-hub="{esc(r["id"])}" data-state="{esc(state)}" '
            f'data-district="{esc(r["district"])}" data-division="{esc(r["division"])}">'
            f'<td><a href="{esc(hub_url(r["id"]))}" title="{esc(r["id"])}">{esc(title)}</a></td>'
            f"<td>{esc(place)}</td><td>{dot(state, tr)} {esc(tr(STATE_WORDS.get(state, state)))}</td>"
            f"<td{_bad(',silent,' in codes)}>{esc(seen_txt)}</td>"
            f"<td>{esc(r['version'] or '')}</td>"
            f"<td{_cls(',sync_lag,' in codes)}>{backlog}</td>"
            f"<td{_cls(',conflicts,' in codes)}>{_num(r['conflicts'])}</td>"
            f"<td{_cls(',temp,' in codes)}>{_num(r['temp_c'], ' °C')}</td>"
            f"<td{_bad(',undervoltage,' in codes)}>{power_txt}</td>"
            f"<td{_cls(',disk,' in codes)}>{_num(r['disk_pct'], ' %')}</td>"
            f'<td class="n">{sd_txt}</td><td class="n">{_num(r["power_cuts"])}</td>'
            f"<td>{modem_txt}</td>"
            f"<td{_cls(',clock,' in codes)}>"
            f"{_offset(r['clock_offset_s'], tr)}</td>"
            f"<td{_cls(',modem_budget,' in codes)}>{_month_use(r, tr)}</td></tr>")


def _mb(n: float, tr: Tr) -> str:
    return tr("{n} MB", n=tr.num(round(n / MB)))


def _month_use(r: sqlite3.Row, tr: Tr) -> str:
    """This month's bytes on the hub's modem, against its budget when it has one (#15)."""
    used, budget = r["wire_month_bytes"], r["wire_budget_mb"]
    if used is None:
        return '<span class="muted">–</span>'
    if not budget:
        return esc(_mb(used, tr))
    return esc(tr("{used} of {budget} ({pct} %)", used=_mb(used, tr),
                  budget=tr("{n} MB", n=tr.num(budget)),
                  pct=tr.num(round(100 * used / (budget * MB)))))


WIRE_ROWS = (("metadata", N_("Metadata")), ("pull", N_("Data pulled")),
             ("push", N_("Data pushed")), ("other", N_("Other")))
# the section's other words (f-strings hide tr() calls from the extractor)
WIRE_WORDS = {"title": N_("Modem data"), "today": N_("Today"), "month": N_("This month"),
              "total": N_("Total"), "budget": N_("Monthly budget"),
              "fleet": N_("of which fleet (heartbeats, updates)")}


def _wire_html(hub: sqlite3.Row, tr: Tr) -> str:
    """The hub's modem: today and this month by category, and its budget (#15)."""
    if hub["wire_period"] is None:
        return ""
    detail = json.loads(hub["wire_detail"]) if hub["wire_detail"] else {}
    today, month = detail.get("today") or {}, detail.get("month") or {}

    def cell(part: dict[str, Any] | None) -> str:
        if not part:
            return '<span class="muted">–</span>'
        return esc(tr("{sent} up · {received} down", sent=_kb(part.get("sent"), tr),
                      received=_kb(part.get("received"), tr)))
    word = {k: esc(tr(v)) for k, v in WIRE_WORDS.items()}
    rows = "".join(f"<tr><td>{esc(tr(label))}</td><td class=\"n\">{cell(today.get(k))}</td>"
                   f"<td class=\"n\">{cell(month.get(k))}</td></tr>" for k, label in WIRE_ROWS)
    fleet = (f"<tr><td><small>{word['fleet']}</small></td>"
             f"<td class=\"n\"><small>{cell((today.get('other') or {}).get('fleet'))}</small>"
             f"</td><td class=\"n\"><small>{cell((month.get('other') or {}).get('fleet'))}"
             "</small></td></tr>")
    total = (f"<tr><th>{word['total']}</th><th class=\"n\">{cell(today.get('total'))}</th>"
             f"<th class=\"n\">{cell(month.get('total'))}</th></tr>")
    budget = hub["wire_budget_mb"]
    used = hub["wire_month_bytes"] or 0
    words = tr("none set") if not budget else tr(
        "{used} of {budget} ({pct} %)", used=_mb(used, tr), budget=tr("{n} MB", n=tr.num(budget)),
        pct=tr.num(round(100 * used / (budget * MB))))
    period = str(hub["wire_period"])
    reported = tr("reported {when}", when=when(hub["wire_reported_at"]))
    return (f"<h2>{word['title']}</h2><p><small>{esc(reported)}</small></p>"
            f'<dl class="kv"><dt>{word["budget"]}</dt>'
            f"<dd{_bad(',modem_budget,' in hub['alert_codes'])}>{esc(words)}</dd></dl>"
            f'<div class="wrap"><table id="wire"><thead><tr><th></th>'
            f"<th class=\"n\">{word['today']} ({esc(tr.digit(str(hub['wire_day'])))})</th>"
            f"<th class=\"n\">{word['month']} ({esc(tr.period(period))})</th>"
            f"</tr></thead><tbody>{rows}{fleet}{total}</tbody></table></div>")


def _kb(n: Any, tr: Tr) -> str:
    b = int(n or 0)
    if b < MB:
        return tr("{n} KB", n=tr.num(-(-b // 1024)))
    return tr("{n} MB", n=tr.num(b / MB, 1))


RANGES = ((6, N_("6 h")), (24, N_("24 h")), (24 * 7, N_("7 days")), (24 * 30, N_("30 days")))


def hub_page(hub: sqlite3.Row, alerts: list[sqlite3.Row], hist: list[sqlite3.Row],
             beats: list[sqlite3.Row], *, hours: int, now: float, th: Thresholds,
             account: Account | None = None, tls: dict[str, Any] | None = None,
             update_html: str = "", tr: Tr | None = None) -> str:
    tr = tr or translator("en")
    title = hub["name"] or hub["id"]
    seen = hub["last_seen"]
    place = ", ".join(x for x in (hub["upazila"], hub["district"], hub["division"]) if x)
    seen_txt = tr("never") if seen is None else tr("{age} ago", age=age(max(0.0, now - seen), tr))
    meta = (f"<p>{dot(hub['state'], tr)} <strong>"
            f"{esc(tr(STATE_WORDS.get(hub['state'], hub['state'])))}</strong> · "
            f"<code>{esc(hub['id'])}</code> · {esc(place)} · "
            f"{esc(tr('version {v}', v=hub['version'] or '–'))}"
            f" · {esc(tr('last heartbeat {when}', when=seen_txt))}"
            f" · seq {esc(hub['last_seq'] if hub['last_seq'] is not None else '–')}</p>")
    if alerts:
        items = "".join(f"<li>{dot(a['level'], tr)} {rule(a['code'], tr)}: "
                        f"{esc(alert_text(a, tr))} <small>"
                        f"{esc(tr('since {when}', when=when(a['since'])))}</small></li>"
                        for a in alerts)
        alert_html = f'<h2>{esc(tr("Alerts"))}</h2><ul class="alerts">{items}</ul>'
    else:
        alert_html = f'<h2>{esc(tr("Alerts"))}</h2><p class="muted">{esc(tr("None."))}</p>'
    ranges = " · ".join(
        (f"<strong>{esc(tr(label))}</strong>" if h == hours else
         f'<a href="{esc(hub_url(hub["id"]))}?hours={h}">{esc(tr(label))}</a>')
        for h, label in RANGES)

    def series(col: str) -> list[tuple[float, float | None]]:
        return [(r["t"], r[col]) for r in hist]
    # (caption, unit, column, alert threshold, step line)
    specs: list[tuple[str, str, str, float | None, bool]] = [
        (tr("Temperature"), "°C", "temp_c", th.temp_c, False),
        (tr("Disk used"), "%", "disk_pct", th.disk_pct, False),
        (tr("Sync backlog"), tr("pending"), "pending", None, False),
        (tr("Power cuts"), "", "power_cuts", None, True),
    ]
    chart_html = "".join(
        f'<figure><figcaption>{esc(name)} <span>{esc(tr("now"))} '
        f'{_num(hub[col], " " + unit if unit else "")}</span></figcaption>'
        f"{charts.line_chart(name, unit, series(col), threshold=limit, step=step)}</figure>"
        for name, unit, col, limit, step in specs)
    latest = _latest_table(hub, tr)
    summary = ""
    if hub["summary"]:
        s = json.loads(hub["summary"])
        items = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in s.items())
        summary = (f"<h2>{esc(tr('Last offline summary'))}</h2><p><small>"
                   f"{esc(tr('received {when}', when=when(hub['summary_at'])))}</small></p>"
                   f"<dl class=\"kv\">{items}</dl>")
    beat_rows = "".join(
        f"<tr><td class=\"n\">{esc(b['seq'])}</td><td>{esc(when(b['received']))}</td>"
        f"<td class=\"n\">{_offset(b['received'] - b['sent_at'], tr)}</td>"
        f"<td class=\"n\">{esc(b['n_samples'])}</td><td>{esc(b['version'])}</td>"
        f"<td>{esc(tr('yes')) if b['summary'] else ''}</td></tr>" for b in beats)
    heads = "".join(f"<th{_NUMCOL if n else ''}>{esc(tr(h))}</th>" for h, n in (
        (N_("Seq"), 1), (N_("Received"), 0), (N_("Clock offset"), 1), (N_("Samples"), 1),
        (N_("Version"), 0), (N_("Offline summary"), 0)))
    body = (f"<h1>{esc(title)}</h1>{meta}{alert_html}{_tls_html(tls)}{update_html}"
            f"{_wire_html(hub, tr)}"
            f"<h2>{esc(tr('History'))}</h2><p>{ranges} "
            f"<small>({esc(tr('{n} samples', n=len(hist)))})</small></p>"
            f'<div class="charts">{chart_html}</div>'
            f"<h2>{esc(tr('Latest sample'))}</h2>{latest}{summary}"
            f"<h2>{esc(tr('Recent heartbeats'))}</h2><div class=\"wrap\"><table><thead><tr>"
            f"{heads}</tr></thead><tbody>{beat_rows}</tbody></table></div>")
    return layout(tr("Fleet: {hub}", hub=title), body, account=account, tr=tr)


def _tls_html(tls: dict[str, Any] | None) -> str:
    """The hub's HTTPS name and the certificate it serves (#12)."""
    if not tls or not (tls["name"] or tls["not_after"] or tls["issuance"]):
        return ""
    items: list[tuple[str, Any]] = [("name", tls["name"] or "none assigned")]
    if tls["not_after"]:
        left = tls["days_left"]
        items += [("serves", tls["cert_name"]),
                  ("expires", f"{tls['not_after']} ({left:g} days left)" if left is not None
                   and left >= 0 else f"{tls['not_after']} (expired)"),
                  ("issuer", tls["issuer"]), ("fingerprint (SHA-256)", tls["fingerprint"])]
    else:
        items.append(("serves", "no certificate reported"))
    items += [("LAN address", tls["lan_ip"]), ("in public DNS", tls["published_ip"])]
    iss = tls["issuance"]
    if iss:
        state = iss["state"] + (f" until {iss['not_after']}" if iss["state"] == "issued" else "")
        items.append(("last issuance", f"{state}, {iss['updated_at']}"))
        if iss["last_error"] and iss["state"] != "issued":
            items.append(("last error", iss["last_error"]))
    return ('<h2>HTTPS certificate</h2><dl class="kv">' + "".join(
        f"<dt>{esc(k)}</dt><dd>{esc('–' if v is None else v)}</dd>" for k, v in items)
        + "</dl>")


# The latest sample's fields as the national team reads them (issue 14: labels, not keys);
# marked for the catalogues, the key stays in the row's title for whoever greps the logs
SAMPLE_LABELS = {
    "cpu_pct": N_("CPU (%)"), "load1": N_("Load (1 min)"), "mem_pct": N_("Memory used (%)"),
    "disk_pct": N_("Disk used (%)"), "disk_free_mb": N_("Disk free (MB)"),
    "temp_c": N_("Temperature (°C)"), "throttled": N_("Throttling flags"),
    "undervoltage_now": N_("Under-voltage now"), "undervoltage_seen": N_("Under-voltage seen"),
    "throttled_now": N_("Throttled now"), "freq_capped_seen": N_("CPU speed capped"),
    "sd_written_mb": N_("SD card written (MB)"), "ro_remount": N_("SD card read-only"),
    "power_cuts": N_("Power cuts"), "ntp_synced": N_("Clock synchronised"),
    "ntp_offset_s": N_("Clock offset, hub's estimate (s)"),
    "integrity_ok": N_("Database check passed"), "modem_present": N_("Modem present"),
    "link_up": N_("Link to national up"), "at": N_("Sampled"),
    "pending": N_("Waiting for national"), "conflicts": N_("Open conflicts"),
    "rejected": N_("Refused by national"), "lag_s": N_("Sync lag (s)"),
    "last_success": N_("Last sync"), "uptime_s": N_("Up for (s)"), "boot_id": N_("Boot"),
}


def _latest_table(hub: sqlite3.Row, tr: Tr | None = None) -> str:
    tr = tr or translator("en")
    if hub["sample_at"] is None:
        return '<p class="muted">' + esc(tr("No sample yet.")) + "</p>"
    items: list[tuple[str, Any]] = [("at", when(hub["sample_at"]))]
    for col in SAMPLE_COLUMNS:
        v = hub[col]
        if col == "throttled" and v is not None:
            v = hex(v)
        elif col in BOOL_COLUMNS and v is not None:
            v = tr("yes") if v else tr("no")
        items.append((col, v))
    items += [("pending", hub["pending"]), ("conflicts", hub["conflicts"]),
              ("rejected", hub["rejected"]), ("lag_s", hub["lag_s"]),
              ("last_success", when(hub["last_success"]) if hub["last_success"] else None),
              ("uptime_s", hub["uptime_s"]), ("boot_id", hub["boot_id"])]
    return '<dl class="kv">' + "".join(
        f'<dt title="{esc(k)}">{esc(tr(SAMPLE_LABELS[k]) if k in SAMPLE_LABELS else k)}</dt>'
        f"<dd>{esc('–' if v is None else v)}</dd>" for k, v in items) + "</dl>"


def alerts_page(rows: list[sqlite3.Row], f: HubFilter, places: list[tuple[str, str, int]],
                *, level: str | None, resolved: bool, now: float,
                account: Account | None = None, tr: Tr | None = None) -> str:
    tr = tr or translator("en")
    extra = (f'<label>{esc(tr("Show"))}<select name="resolved"><option value="">'
             f'{esc(tr("open"))}</option>'
             f'<option value="1"{" selected" if resolved else ""}>{esc(tr("resolved"))}</option>'
             "</select></label>")
    form = filter_form("/alerts", HubFilter(f.division, f.district, level, f.q), places,
                       states=("red", "amber"), state_name="level", state_label=N_("Level"),
                       extra=extra, tr=tr)
    trs = "".join(
        f'<tr class="alert {esc(a["level"])}" data-hub="{esc(a["hub_id"])}">'
        f"<td>{dot(a['level'], tr)} {esc(tr(STATE_WORDS.get(a['level'], a['level'])))}</td>"
        f'<td><a href="{esc(hub_url(a["hub_id"]))}">{esc(a["name"] or a["hub_id"])}</a></td>'
        f"<td>{esc(', '.join(x for x in (a['upazila'], a['district']) if x))}</td>"
        f"<td>{rule(a['code'], tr)}</td><td>{esc(alert_text(a, tr))}</td>"
        f"<td>{esc(tr('{age} ago', age=age(max(0.0, now - a['since']), tr)))}</td>"
        + (f"<td>{esc(when(a['resolved_at']))}</td>" if resolved else "") + "</tr>"
        for a in rows)
    cols = [N_("Level"), N_("Hub"), N_("Upazila / district"), N_("Rule"), N_("Message"),
            N_("Since")] + ([N_("Resolved")] if resolved else [])
    head = "<tr>" + "".join(f"<th>{esc(tr(c))}</th>" for c in cols) + "</tr>"
    empty = f'<p class="muted">{esc(tr("No alerts."))}</p>' if not rows else ""
    title = (tr("Resolved alerts ({n})", n=len(rows)) if resolved
             else tr("Open alerts ({n})", n=len(rows)))
    body = (f"<h1>{esc(title)}</h1>{form}"
            f'<div class="wrap"><table id="alerts"><thead>{head}</thead><tbody>{trs}</tbody>'
            f"</table></div>{empty}")
    return layout(tr("Fleet: alerts"), body, script=FILTER_JS, account=account, tr=tr)


def error_page(status: int, message: str, tr: Tr | None = None) -> str:
    tr = tr or translator("en")
    return layout(f"{status}", f"<h1>{status}</h1><p>{esc(message)}</p>"
                  f'<p><a href="/">{esc(tr("Back to the fleet"))}</a></p>', tr=tr)


def login_page(next_url: str, *, error: str | None = None, username: str = "",
               tr: Tr | None = None) -> str:
    """The login form; a plain POST form (works without JS), back to ``next_url``."""
    tr = tr or translator("en")
    err = f'<p class="error" role="alert">{esc(error)}</p>' if error else ""
    body = ('<form class="login" method="post" action="/login">'
            f"<h1>{esc(tr('Log in to the fleet dashboard'))}</h1>"
            f"{err}"
            f'<input type="hidden" name="next" value="{esc(next_url)}">'
            f'<label>{esc(tr("Username"))}<input name="username" autocomplete="username" required '
            f'autocapitalize="none" spellcheck="false" value="{esc(username)}"'
            f'{"" if username else " autofocus"}></label>'
            f'<label>{esc(tr("Password"))}<input name="password" type="password" required '
            f'autocomplete="current-password"{" autofocus" if username else ""}></label>'
            f'<button type="submit">{esc(tr("Log in"))}</button>'
            f'<small>{esc(tr("Accounts are made by the fleet admins (appliance fleet add-user)."))}'
            "</small></form>")
    return layout(tr("Fleet: log in"), body, nav=False, tr=tr)


# Babel's extractor does not read calls inside f-strings: the words said there, marked
# for the catalogues (tests/fleet/test_pages_bangla.py checks this list is complete)
_IN_FSTRINGS = (
    N_('Accounts are made by the fleet admins (appliance fleet add-user).'),
    N_('Alerts'),
    N_('All'),
    N_('All districts'),
    N_('All divisions'),
    N_('Back to the fleet'),
    N_('Reporting'),
    N_('District'),
    N_('Division'),
    N_('History'),
    N_('Hubs'),
    N_('Last offline summary'),
    N_('Latest sample'),
    N_('Log in'),
    N_('Log in to the fleet dashboard'),
    N_('Log out'),
    N_('Metrics'),
    N_('No alerts.'),
    N_('No hub matches these filters.'),
    N_('None.'),
    N_('Page {n} of {pages} · {total} hubs'),
    N_('Password'),
    N_('Recent heartbeats'),
    N_('Search'),
    N_('Show'),
    N_('Upazila hub fleet'),
    N_('Updates'),
    N_('Username'),
    N_('hub, upazila'),
    N_('last heartbeat {when}'),
    N_('next'),
    N_('now'),
    N_('ok'),
    N_('open'),
    N_('previous'),
    N_('received {when}'),
    N_('resolved'),
    N_('since {when}'),
    N_('version {v}'),
    N_('yes'),
    N_('{age} ago'),
    N_('{n} hubs'),
    N_('{n} samples'),
)
