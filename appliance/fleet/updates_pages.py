"""The dashboard's software-update pages (#13): releases across the fleet, each rollout's
progress, hubs that rolled back or refused a release, and a hub's own update history.

Same rules as ``pages``: server-rendered, no external assets, every value through ``esc``.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from ..i18n import N_, Tr, translator
from .alerts import age, when
from .auth import Account
from .pages import esc, hub_url, layout

# progress bar colours: done, under way, trouble; waiting is the bar's background
CSS = """
.bar{display:flex;height:.9em;min-width:12em;background:#e4e6e8;border-radius:2px;
overflow:hidden}.bar span{display:block;height:100%}
.bar .done{background:#2e7d32}.bar .busy{background:#0b4f6c}.bar .trouble{background:#d32f2f}
"""
BUSY = ("offered", "downloading", "installing", "installed", "rebooting", "trial",
        "rolling_back")
TROUBLE = ("rolled_back", "refused", "failed")
WORDS = {"waiting": N_("not asked yet"), "offered": N_("offered"),
         "downloading": N_("downloading"), "installing": N_("installing"),
         "installed": N_("installed, waiting for the quiet hours"),
         "rebooting": N_("rebooting"), "trial": N_("booted, checking health"),
         "rolling_back": N_("not healthy, going back"),
         "committed": N_("running it"), "rolled_back": N_("rolled back"),
         "refused": N_("refused"), "failed": N_("install failed"), "idle": N_("idle")}
EN = translator("en")


def _word(state: str, tr: Tr) -> str:
    return tr(WORDS[state]) if state in WORDS else state


def _heads(tr: Tr, *cols: str) -> str:
    """Column heads; a head starting with '#' is numeric (right-aligned)."""
    return "".join(f'<th class="n">{esc(tr(c[1:]))}</th>' if c.startswith("#") and len(c) > 1
                   else f"<th>{esc(tr(c))}</th>" for c in cols)


def _mb(n: Any) -> str:
    return "–" if n is None else f"{n / 1e6:.1f} MB"


def _scope(r: dict[str, Any], tr: Tr = EN) -> str:
    if r["scope"] == "all":
        return esc(tr("all hubs"))
    if r["scope"] == "hub":
        return f'{esc(tr("one hub:"))} <a href="{esc(hub_url(r["target"]))}">{esc(r["target"])}</a>'
    return f"{esc(r['scope'])} {esc(r['target'])}"


def bar(counts: dict[str, int], total: int, tr: Tr = EN) -> str:
    if not total:
        return f'<span class="muted">{esc(tr("no hub"))}</span>'
    parts = (("done", counts.get("committed", 0)),
             ("busy", sum(counts.get(p, 0) for p in BUSY)),
             ("trouble", sum(counts.get(p, 0) for p in TROUBLE)))
    spans = "".join(f'<span class="{cls}" style="width:{100 * n / total:.1f}%"></span>'
                    for cls, n in parts if n)
    title = ", ".join(f"{n} {_word(p, tr)}" for p, n in counts.items() if n)
    return f'<div class="bar" role="img" aria-label="{esc(title)}" title="{esc(title)}">{spans}</div>'


def _rollout_row(r: dict[str, Any], tr: Tr = EN) -> str:
    rel = r["release"]
    counts = r["counts"]
    detail = ", ".join(f"{n} {_word(p, tr)}" for p, n in counts.items() if n) or "–"
    status = tr("active") if r["active"] else tr("stopped ({who})", who=r["cancelled_by"])
    return (f'<tr class="rollout" data-rollout="{r["id"]}">'
            f'<td><a href="/updates/rollouts/{r["id"]}">#{r["id"]}</a></td>'
            f"<td><strong>{esc(rel['version'])}</strong> <small>{esc(rel['compatible'])}</small>"
            f"</td><td>{_scope(r, tr)}</td><td>{esc(status)}</td>"
            f'<td class="n">{r["done"]}/{r["hubs_total"]}</td>'
            f"<td>{bar(counts, r['hubs_total'], tr)}</td><td>{esc(detail)}</td>"
            f"<td>{esc(r['created_at'])} <small>{esc(r['created_by'])}</small></td></tr>")


def overview(items: list[dict[str, Any]], versions: list[dict[str, Any]],
             releases: list[sqlite3.Row], trouble: list[sqlite3.Row], *, now: float,
             account: Account | None = None, tr: Tr = EN) -> str:
    total = sum(v["hubs"] for v in versions) or 1
    vrows = "".join(
        f"<tr><td>{esc(v['version'] or '–')}</td><td>{esc(v['compatible'] or tr('not reported'))}"
        f'</td><td class="n">{v["hubs"]}</td><td><div class="bar"><span class="done" '
        f'style="width:{100 * v["hubs"] / total:.1f}%"></span></div></td></tr>'
        for v in versions)
    rrows = "".join(_rollout_row(r, tr) for r in items) or \
        f'<tr><td colspan="8" class="muted">{esc(tr("No rollout yet."))}</td></tr>'
    trows = "".join(
        f'<tr class="trouble" data-hub="{esc(h["id"])}"><td><a href="{esc(hub_url(h["id"]))}">'
        f"{esc(h['name'] or h['id'])}</a></td>"
        f"<td>{esc(', '.join(x for x in (h['upazila'], h['district']) if x))}</td>"
        f"<td>{esc(_word(h['update_state'], tr))}</td>"
        f"<td>{esc(h['update_target'] or '–')}</td><td>{esc(h['update_version'] or '–')}</td>"
        f"<td>{esc(h['update_reason'] or '')}</td>"
        f"<td>{esc(tr('{age} ago', age=age(max(0.0, now - h['update_at']), tr)) if h['update_at'] else '')}"
        "</td></tr>" for h in trouble)
    trouble_html = (
        '<div class="wrap"><table id="update-trouble"><thead><tr>' +
        _heads(tr, N_("Hub"), N_("Upazila / district"), N_("State"), N_("Release"), N_("Runs"),
               N_("Reason"), N_("When")) +
        f"</tr></thead><tbody>{trows}</tbody></table></div>"
        if trouble else f'<p class="muted">{esc(tr("None."))}</p>')
    relrows = "".join(
        f"<tr><td>{esc(r['version'])}</td><td>{esc(r['compatible'])}</td>"
        f'<td><code title="{esc(r["sha256"])}">{esc(r["sha256"][:16])}…</code></td>'
        f'<td class="n">{_mb(r["size"])}</td>'
        f"<td>{esc((tr('signed by {who}', who=r['signer']) if r['signer'] else tr('signature verified')) if r['verified'] else tr('not verified on the fleet server'))}</td>"
        f"<td>{esc(when(r['added_at']))} <small>{esc(r['added_by'])}</small></td></tr>"
        for r in releases) or \
        f'<tr><td colspan="6" class="muted">{esc(tr("No release yet."))}</td></tr>'
    body = (f"<style>{CSS}</style><h1>{esc(tr('Software updates'))}</h1>"
            f"<h2>{esc(tr('Releases running across the fleet'))}</h2>"
            '<div class="wrap"><table id="versions"><thead><tr>' +
            _heads(tr, N_("Release"), N_("Hardware"), "#" + N_("Hubs")) + "<th></th></tr></thead>"
            f"<tbody>{vrows}</tbody></table></div>"
            f"<h2>{esc(tr('Rollouts'))}</h2>"
            '<div class="wrap"><table id="rollouts"><thead><tr><th>#</th>' +
            _heads(tr, N_("Release"), N_("To"), N_("Status"), "#" + N_("Done"), N_("Progress"),
                   N_("Hubs"), N_("Started")) +
            f"</tr></thead><tbody>{rrows}</tbody></table></div>"
            f"<p><small>{esc(tr('Admins start a rollout with'))} <code>appliance fleet rollout "
            "--release VERSION --district NAME</code> (<code>--hub</code>, "
            "<code>--division</code>, <code>--all</code>) · <code>POST /api/rollouts</code>."
            "</small></p>"
            f"<h2>{esc(tr('Hubs that rolled back or refused a release ({n})', n=len(trouble)))}"
            f"</h2>{trouble_html}"
            f"<h2>{esc(tr('Releases'))}</h2>"
            '<div class="wrap"><table id="releases"><thead><tr>' +
            _heads(tr, N_("Version"), N_("Hardware"), "SHA-256", "#" + N_("Size"),
                   N_("Signature"), N_("Added")) +
            f"</tr></thead><tbody>{relrows}</tbody></table></div>")
    return layout(tr("Fleet: software updates"), body, account=account, tr=tr)


def rollout(r: dict[str, Any], *, account: Account | None = None, tr: Tr = EN) -> str:
    rel = r["release"]
    rows = "".join(
        f'<tr class="hub" data-hub="{esc(h["hub_id"])}" data-progress="{esc(h["progress"])}">'
        f'<td><a href="{esc(hub_url(h["hub_id"]))}">{esc(h["name"] or h["hub_id"])}</a></td>'
        f"<td>{esc(', '.join(x for x in (h['district'], h['division']) if x))}</td>"
        f"<td>{esc(_word(h['progress'], tr))}</td>"
        f"<td>{_download(h, tr)}</td><td>{esc(h['version'] or '–')}</td>"
        f"<td>{esc(h['reason'] or '')}</td><td>{esc(h['reported_at'] or '–')}</td></tr>"
        for h in r["hubs"]) or \
        f'<tr><td colspan="7" class="muted">{esc(tr("No hub follows this rollout."))}</td></tr>'
    status = tr("active") if r["active"] else tr("stopped {when} ({who})", when=r["cancelled_at"],
                                                   who=r["cancelled_by"])
    body = (f"<style>{CSS}</style><h1>"
            f"{esc(tr('Rollout #{id}: {version}', id=r['id'], version=rel['version']))}</h1>"
            f"<p>{esc(rel['compatible'])} · {esc(tr('to'))} {_scope(r, tr)} · {esc(status)} · "
            f"{esc(tr('started {when} by {who}', when=r['created_at'], who=r['created_by']))} · "
            f"{_mb(rel['size'])} · <code>{esc(rel['sha256'])}</code></p>"
            f"<p>{esc(tr('{done} of {total} hubs run it · {trouble} in trouble', done=r['done'], total=r['hubs_total'], trouble=r['trouble']))}</p>"
            f"{bar(r['counts'], r['hubs_total'], tr)}"
            '<div class="wrap"><table id="rollout-hubs"><thead><tr>' +
            _heads(tr, N_("Hub"), N_("District / division"), N_("Progress"), N_("Download"),
                   N_("Runs"), N_("Reason"), N_("Last report")) +
            f"</tr></thead><tbody>{rows}</tbody></table></div>")
    return layout(tr("Fleet: rollout {id}", id=r["id"]), body, account=account, tr=tr)


def _download(h: dict[str, Any], tr: Tr = EN) -> str:
    if h["progress"] != "downloading" or not h["size"]:
        return ""
    done = h["bytes"] or 0
    pct = round(100 * done / h["size"])
    return esc(tr("{pct}% of {size}", pct=pct, size=_mb(h["size"])))


def hub_section(hub: sqlite3.Row, events: list[sqlite3.Row], tr: Tr = EN) -> str:
    """The hub page's "Software update" part (empty when the hub never reported)."""
    if hub["update_state"] is None:
        return ""
    items: list[tuple[str, Any]] = [
        (tr("runs"), hub["update_version"]), (tr("hardware"), hub["update_compatible"]),
        (tr("booted slot"), hub["update_slot"]),
        (tr("state"), _word(hub["update_state"], tr)),
        (tr("release"), hub["update_target"])]
    if hub["update_state"] == "downloading" and hub["update_size"]:
        items.append((tr("downloaded"), tr("{done} of {size}", done=_mb(hub["update_bytes"] or 0),
                                           size=_mb(hub["update_size"]))))
    if hub["update_reason"]:
        items.append((tr("last failure"), hub["update_reason"]))
    if hub["update_at"]:
        items.append((tr("reported"), when(hub["update_at"])))
    ev = "".join(f"<tr><td>{esc(when(e['at']))}</td><td>{esc(_word(e['state'], tr))}"
                 f"</td><td>{esc(e['target'] or '')}</td><td>{esc(e['version'] or '')}</td>"
                 f"<td>{esc(e['reason'] or '')}</td></tr>" for e in events)
    table = ("<div class=\"wrap\"><table id=\"update-events\"><thead><tr>" +
             _heads(tr, N_("When"), N_("State"), N_("Release"), N_("Runs"), N_("Reason")) +
             f"</tr></thead><tbody>{ev}</tbody></table></div>") if events else ""
    return (f'<h2>{esc(tr("Software update"))}</h2><dl class="kv">' + "".join(
        f"<dt>{esc(k)}</dt><dd>{esc('–' if v is None else v)}</dd>" for k, v in items)
        + "</dl>" + table)


# Babel's extractor does not read calls inside f-strings: the words said there, marked
# for the catalogues (tests/fleet/test_pages_bangla.py checks this list is complete)
_IN_FSTRINGS = (
    N_('Admins start a rollout with'),
    N_('Hubs that rolled back or refused a release ({n})'),
    N_('No hub follows this rollout.'),
    N_('No release yet.'),
    N_('No rollout yet.'),
    N_('None.'),
    N_('Releases'),
    N_('Releases running across the fleet'),
    N_('Rollout #{id}: {version}'),
    N_('Rollouts'),
    N_('Software update'),
    N_('Software updates'),
    N_('one hub:'),
    N_('no hub'),
    N_('not reported'),
    N_('not verified on the fleet server'),
    N_('signature verified'),
    N_('signed by {who}'),
    N_('started {when} by {who}'),
    N_('to'),
    N_('{age} ago'),
    N_('{done} of {total} hubs run it · {trouble} in trouble'),
)
