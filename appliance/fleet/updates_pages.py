"""The dashboard's software-update pages (#13): releases across the fleet, each rollout's
progress, hubs that rolled back or refused a release, and a hub's own update history.

Same rules as ``pages``: server-rendered, no external assets, every value through ``esc``.
"""

from __future__ import annotations

import sqlite3
from typing import Any

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
WORDS = {"waiting": "not asked yet", "offered": "offered", "downloading": "downloading",
         "installing": "installing", "installed": "installed, waiting for the quiet hours",
         "rebooting": "rebooting", "trial": "booted, checking health",
         "rolling_back": "not healthy, going back",
         "committed": "running it", "rolled_back": "rolled back", "refused": "refused",
         "failed": "install failed", "idle": "idle"}


def _mb(n: Any) -> str:
    return "–" if n is None else f"{n / 1e6:.1f} MB"


def _scope(r: dict[str, Any]) -> str:
    if r["scope"] == "all":
        return "all hubs"
    if r["scope"] == "hub":
        return f'hub <a href="{esc(hub_url(r["target"]))}">{esc(r["target"])}</a>'
    return f"{esc(r['scope'])} {esc(r['target'])}"


def bar(counts: dict[str, int], total: int) -> str:
    if not total:
        return '<span class="muted">no hub</span>'
    parts = (("done", counts.get("committed", 0)),
             ("busy", sum(counts.get(p, 0) for p in BUSY)),
             ("trouble", sum(counts.get(p, 0) for p in TROUBLE)))
    spans = "".join(f'<span class="{cls}" style="width:{100 * n / total:.1f}%"></span>'
                    for cls, n in parts if n)
    title = ", ".join(f"{n} {WORDS[p]}" for p, n in counts.items() if n)
    return f'<div class="bar" role="img" aria-label="{esc(title)}" title="{esc(title)}">{spans}</div>'


def _rollout_row(r: dict[str, Any]) -> str:
    rel = r["release"]
    counts = r["counts"]
    detail = ", ".join(f"{n} {WORDS[p]}" for p, n in counts.items() if n) or "–"
    status = "active" if r["active"] else f"stopped ({r['cancelled_by']})"
    return (f'<tr class="rollout" data-rollout="{r["id"]}">'
            f'<td><a href="/updates/rollouts/{r["id"]}">#{r["id"]}</a></td>'
            f"<td><strong>{esc(rel['version'])}</strong> <small>{esc(rel['compatible'])}</small>"
            f"</td><td>{_scope(r)}</td><td>{esc(status)}</td>"
            f'<td class="n">{r["done"]}/{r["hubs_total"]}</td>'
            f"<td>{bar(counts, r['hubs_total'])}</td><td>{esc(detail)}</td>"
            f"<td>{esc(r['created_at'])} <small>{esc(r['created_by'])}</small></td></tr>")


def overview(items: list[dict[str, Any]], versions: list[dict[str, Any]],
             releases: list[sqlite3.Row], trouble: list[sqlite3.Row], *, now: float,
             account: Account | None = None) -> str:
    total = sum(v["hubs"] for v in versions) or 1
    vrows = "".join(
        f"<tr><td>{esc(v['version'] or '–')}</td><td>{esc(v['compatible'] or 'not reported')}"
        f'</td><td class="n">{v["hubs"]}</td><td><div class="bar"><span class="done" '
        f'style="width:{100 * v["hubs"] / total:.1f}%"></span></div></td></tr>'
        for v in versions)
    rrows = "".join(_rollout_row(r) for r in items) or \
        '<tr><td colspan="8" class="muted">No rollout yet.</td></tr>'
    trows = "".join(
        f'<tr class="trouble" data-hub="{esc(h["id"])}"><td><a href="{esc(hub_url(h["id"]))}">'
        f"{esc(h['name'] or h['id'])}</a></td>"
        f"<td>{esc(', '.join(x for x in (h['upazila'], h['district']) if x))}</td>"
        f"<td>{esc(WORDS.get(h['update_state'], h['update_state']))}</td>"
        f"<td>{esc(h['update_target'] or '–')}</td><td>{esc(h['update_version'] or '–')}</td>"
        f"<td>{esc(h['update_reason'] or '')}</td>"
        f"<td>{esc(age(max(0.0, now - h['update_at'])) + ' ago' if h['update_at'] else '')}"
        "</td></tr>" for h in trouble)
    trouble_html = (
        '<div class="wrap"><table id="update-trouble"><thead><tr><th>Hub</th><th>Upazila / '
        "district</th><th>State</th><th>Release</th><th>Runs</th><th>Reason</th><th>When</th>"
        f"</tr></thead><tbody>{trows}</tbody></table></div>"
        if trouble else '<p class="muted">None.</p>')
    relrows = "".join(
        f"<tr><td>{esc(r['version'])}</td><td>{esc(r['compatible'])}</td>"
        f'<td><code title="{esc(r["sha256"])}">{esc(r["sha256"][:16])}…</code></td>'
        f'<td class="n">{_mb(r["size"])}</td>'
        f"<td>{esc(('signed by ' + r['signer']) if r['signer'] else 'signature verified') if r['verified'] else 'not verified on the fleet server'}</td>"
        f"<td>{esc(when(r['added_at']))} <small>{esc(r['added_by'])}</small></td></tr>"
        for r in releases) or '<tr><td colspan="6" class="muted">No release yet.</td></tr>'
    body = (f"<style>{CSS}</style><h1>Software updates</h1>"
            "<h2>Releases running across the fleet</h2>"
            '<div class="wrap"><table id="versions"><thead><tr><th>Release</th><th>Hardware'
            '</th><th class="n">Hubs</th><th></th></tr></thead>'
            f"<tbody>{vrows}</tbody></table></div>"
            "<h2>Rollouts</h2>"
            '<div class="wrap"><table id="rollouts"><thead><tr><th>#</th><th>Release</th>'
            '<th>To</th><th>Status</th><th class="n">Done</th><th>Progress</th><th>Hubs</th>'
            f"<th>Started</th></tr></thead><tbody>{rrows}</tbody></table></div>"
            "<p><small>Admins start a rollout with <code>appliance fleet rollout --release "
            "VERSION --district NAME</code> (or <code>--hub</code>, <code>--division</code>, "
            "<code>--all</code>) or <code>POST /api/rollouts</code>.</small></p>"
            f"<h2>Hubs that rolled back or refused a release ({len(trouble)})</h2>{trouble_html}"
            "<h2>Releases</h2>"
            '<div class="wrap"><table id="releases"><thead><tr><th>Version</th><th>Hardware'
            '</th><th>SHA-256</th><th class="n">Size</th><th>Signature</th><th>Added</th>'
            f"</tr></thead><tbody>{relrows}</tbody></table></div>")
    return layout("Fleet: software updates", body, account=account)


def rollout(r: dict[str, Any], *, account: Account | None = None) -> str:
    rel = r["release"]
    rows = "".join(
        f'<tr class="hub" data-hub="{esc(h["hub_id"])}" data-progress="{esc(h["progress"])}">'
        f'<td><a href="{esc(hub_url(h["hub_id"]))}">{esc(h["name"] or h["hub_id"])}</a></td>'
        f"<td>{esc(', '.join(x for x in (h['district'], h['division']) if x))}</td>"
        f"<td>{esc(WORDS.get(h['progress'], h['progress']))}</td>"
        f"<td>{_download(h)}</td><td>{esc(h['version'] or '–')}</td>"
        f"<td>{esc(h['reason'] or '')}</td><td>{esc(h['reported_at'] or '–')}</td></tr>"
        for h in r["hubs"]) or '<tr><td colspan="7" class="muted">No hub follows this rollout.</td></tr>'
    status = "active" if r["active"] else f"stopped {r['cancelled_at']} ({r['cancelled_by']})"
    body = (f"<style>{CSS}</style><h1>Rollout #{r['id']}: {esc(rel['version'])}</h1>"
            f"<p>{esc(rel['compatible'])} · to {_scope(r)} · {esc(status)} · started "
            f"{esc(r['created_at'])} by {esc(r['created_by'])} · {_mb(rel['size'])} · "
            f"<code>{esc(rel['sha256'])}</code></p>"
            f"<p>{r['done']} of {r['hubs_total']} hubs run it · {r['trouble']} in trouble</p>"
            f"{bar(r['counts'], r['hubs_total'])}"
            '<div class="wrap"><table id="rollout-hubs"><thead><tr><th>Hub</th><th>District / '
            "division</th><th>Progress</th><th>Download</th><th>Runs</th><th>Reason</th>"
            f"<th>Last report</th></tr></thead><tbody>{rows}</tbody></table></div>")
    return layout(f"Fleet: rollout {r['id']}", body, account=account)


def _download(h: dict[str, Any]) -> str:
    if h["progress"] != "downloading" or not h["size"]:
        return ""
    done = h["bytes"] or 0
    return esc(f"{100 * done / h['size']:.0f}% of {_mb(h['size'])}")


def hub_section(hub: sqlite3.Row, events: list[sqlite3.Row]) -> str:
    """The hub page's "Software update" part (empty when the hub never reported)."""
    if hub["update_state"] is None:
        return ""
    items: list[tuple[str, Any]] = [
        ("runs", hub["update_version"]), ("hardware", hub["update_compatible"]),
        ("booted slot", hub["update_slot"]),
        ("state", WORDS.get(hub["update_state"], hub["update_state"])),
        ("release", hub["update_target"])]
    if hub["update_state"] == "downloading" and hub["update_size"]:
        items.append(("downloaded", f"{_mb(hub['update_bytes'] or 0)} of "
                                    f"{_mb(hub['update_size'])}"))
    if hub["update_reason"]:
        items.append(("last failure", hub["update_reason"]))
    if hub["update_at"]:
        items.append(("reported", when(hub["update_at"])))
    ev = "".join(f"<tr><td>{esc(when(e['at']))}</td><td>{esc(WORDS.get(e['state'], e['state']))}"
                 f"</td><td>{esc(e['target'] or '')}</td><td>{esc(e['version'] or '')}</td>"
                 f"<td>{esc(e['reason'] or '')}</td></tr>" for e in events)
    table = ("<div class=\"wrap\"><table id=\"update-events\"><thead><tr><th>When</th>"
             "<th>State</th><th>Release</th><th>Runs</th><th>Reason</th></tr></thead>"
             f"<tbody>{ev}</tbody></table></div>") if events else ""
    return ('<h2>Software update</h2><dl class="kv">' + "".join(
        f"<dt>{esc(k)}</dt><dd>{esc('–' if v is None else v)}</dd>" for k, v in items)
        + "</dl>" + table)
