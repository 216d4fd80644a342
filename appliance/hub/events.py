"""The sync worker's event log as sentences (the status page, issue 14).

The sync worker writes its events in English for the logs (``sync_event.message``); the
status page recognises the ones it writes often and says them in the reader's language,
keeping the worker's own text in a details line. An event it does not recognise is shown
as the worker wrote it.
"""

from __future__ import annotations

import re
from typing import Any

from ..i18n import N_, Tr

_CYCLE = re.compile(
    r"^(?P<reason>[\w ./-]+): pulled (?P<pv>\d+) values/(?P<pc>\d+) completions "
    r"\((?P<cf>\d+) conflicts\), pushed (?P<acc>\d+) accepted, (?P<rej>\d+) refused; "
    r"tracker: pulled (?P<tp>\d+) people \((?P<tcf>\d+) conflicts\), pushed (?P<ta>\d+) "
    r"records, (?P<tr>\d+) refused; (?P<left>\d+) left pending$")
_CONFLICTS = re.compile(r"^(?P<n>\d+) (?P<tracker>tracker )?conflicts: (?P<hub>\d+) kept the "
                        r"hub's edit, (?P<nat>\d+) national's$")
_METADATA = re.compile(r"^(?P<n>\d+) metadata changes applied")
_REFUSED = re.compile(r"^national refused (?P<n>\d+)")
_ERROR = re.compile(r"^(?P<reason>[\w ./-]+): (?P<text>.+)$")

KIND_WORDS = {"cycle": N_("Sync"), "conflict": N_("Conflict"), "metadata": N_("Forms updated"),
              "push": N_("Sending"), "pull": N_("Receiving"), "identity": N_("Hub identity")}


def event_words(e: dict[str, Any], tr: Tr) -> tuple[str, str]:
    """(the sentence, the worker's own text or "" when the sentence says it all)."""
    kind, text, level = str(e.get("kind") or ""), str(e.get("message") or ""), e.get("level")
    if kind == "cycle" and (m := _CYCLE.match(text)):
        n = {k: int(v) for k, v in m.groupdict().items() if k != "reason"}
        parts = [tr("Synced with national.")]
        sent, refused = n["acc"] + n["ta"], n["rej"] + n["tr"]
        got = n["pv"] + n["pc"] + n["tp"]
        parts.append(tr("Sent {n} and national accepted them.", n=sent) if sent and not refused
                     else tr("Sent {n}; national refused {refused}.", n=sent + refused,
                             refused=refused) if refused else tr("Nothing new to send."))
        if got:
            parts.append(tr("Received {n} from national.", n=got))
        if n["cf"] + n["tcf"]:
            parts.append(tr("{n} conflicts: see the conflict log.", n=n["cf"] + n["tcf"]))
        parts.append(tr("{n} still waiting.", n=n["left"]) if n["left"]
                     else tr("Nothing is waiting."))
        return " ".join(parts), text
    if kind == "cycle" and level == "error" and (m := _ERROR.match(text)):
        return tr("Could not sync with national: {why}", why=m.group("text")), text
    if kind == "conflict" and (m := _CONFLICTS.match(text)):
        return tr("{n} values were changed both here and at national: {hub} kept the hub's "
                  "edit, {nat} national's.", n=int(m.group("n")), hub=int(m.group("hub")),
                  nat=int(m.group("nat"))), text
    if kind == "metadata" and (m := _METADATA.match(text)):
        return tr("National updated {n} form definitions.", n=int(m.group("n"))), text
    if kind == "push" and (m := _REFUSED.match(text)):
        return tr("National refused {n} values: see the list below.", n=int(m.group("n"))), text
    label = tr(KIND_WORDS[kind]) if kind in KIND_WORDS else kind
    return f"{label}: {text}", ""
