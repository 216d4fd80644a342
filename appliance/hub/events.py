"""The sync worker's event log as sentences (the status page, issue 14).

The sync worker writes each event twice: an English line for the logs (``message``) and
what it says (``data``: ``{"code": ..., its numbers}``, appliance/sync/cycle.py). The page
words the code in the reader's language and keeps the worker's line in a details row, for
the IT focal point. An event without a code (written before there were codes, or one the
page does not know) is shown as the worker wrote it.
"""

from __future__ import annotations

from typing import Any

from ..i18n import N_, Tr

KIND_WORDS = {"cycle": N_("Sync"), "conflict": N_("Conflict"), "metadata": N_("Forms updated"),
              "push": N_("Sending"), "pull": N_("Receiving"), "identity": N_("Hub identity"),
              "approvals": N_("Approvals")}

# why a cycle failed (appliance.sync.cycle.failure_cause), for the reader; "other" says the
# worker's own text
CAUSES = {
    "link": N_("The link to national is down; the hub keeps everything and tries again."),
    "credentials": N_("National refused the hub's account: the IT focal point must check "
                      "the hub's national token."),
    "national": N_("National's server answered with an error; the hub tries again."),
}


def _int(data: dict[str, Any], key: str) -> int:
    v = data.get(key)
    return v if isinstance(v, int) and not isinstance(v, bool) else 0


def failure_words(cause: str | None, text: str, tr: Tr) -> str:
    """A failed cycle (or the status page's last error) in the reader's language."""
    if cause in CAUSES:
        return tr(CAUSES[cause])
    return tr("Could not sync with national: {why}", why=text)


def _synced(d: dict[str, Any], tr: Tr) -> str:
    sent, refused, got = _int(d, "sent"), _int(d, "refused"), _int(d, "received")
    parts = [tr("Synced with national.")]
    parts.append(tr("Sent {n} and national accepted them.", n=sent) if sent and not refused
                 else tr("Sent {n}; national refused {refused}.", n=sent + refused,
                         refused=refused) if refused else tr("Nothing new to send."))
    if got:
        parts.append(tr("Received {n} from national.", n=got))
    if _int(d, "conflicts"):
        parts.append(tr("{n} conflicts: see the conflict log.", n=_int(d, "conflicts")))
    parts.append(tr("{n} still waiting.", n=_int(d, "left")) if _int(d, "left")
                 else tr("Nothing is waiting."))
    return " ".join(parts)


def _sentence(code: str, d: dict[str, Any], text: str, tr: Tr) -> str | None:
    n = _int(d, "n")
    if code == "synced":
        return _synced(d, tr)
    if code == "failed":
        why = text.split(": ", 1)[1] if ": " in text else text  # after "<reason>: "
        return failure_words(str(d.get("cause")), why, tr)
    if code == "conflicts":
        return tr("{n} values were changed both here and at national: {hub} kept the hub's "
                  "edit, {nat} national's.", n=n, hub=_int(d, "hub"), nat=_int(d, "national"))
    if code == "metadata":
        return tr("National updated {n} form definitions.", n=n)
    if code == "refused":
        return (tr("National refused {n} records from the registers: see the list below.", n=n)
                if d.get("tracker") else
                tr("National refused {n} values: see the list below.", n=n))
    if code == "resend":
        return tr("The link dropped while sending {n}; sending them again.", n=n)
    if code == "halving":
        return tr("National refused one value without saying which; sending {n} of {of} "
                  "to find it.", n=n, of=_int(d, "of"))
    if code == "pieces":
        return tr("National's reply was cut off; asking again in smaller pieces.")
    if code == "csv-refused":
        return tr("National's server does not take data values as CSV; the hub sends them "
                  "as JSON until national's software changes.")
    if code == "uncompleted":
        return tr("National marked {n} forms not complete; the hub shows them so.", n=n)
    if code == "approvals":
        parts = []
        if _int(d, "locked"):
            parts.append(tr("National approved {n} forms: they are locked at the hub.",
                            n=_int(d, "locked")))
        if _int(d, "unlocked"):
            parts.append(tr("National took back the approval of {n} forms: they can be "
                            "changed again.", n=_int(d, "unlocked")))
        return " ".join(parts) or None
    if code == "approvals-failed":
        return tr("Could not read which forms national has approved; the hub asks again "
                  "next time.")
    if code == "identity":
        return tr("The hub was restored from its backup; it checks its waiting edits "
                  "with national before sending them again.")
    return None


def event_words(e: dict[str, Any], tr: Tr) -> tuple[str, str]:
    """(the sentence, the worker's own text or "" when the sentence says it all)."""
    kind, text = str(e.get("kind") or ""), str(e.get("message") or "")
    data = e.get("data")
    if isinstance(data, dict) and isinstance(data.get("code"), str):
        words = _sentence(data["code"], data, text, tr)
        if words is not None:
            return words, text
    label = tr(KIND_WORDS[kind]) if kind in KIND_WORDS else kind
    return f"{label}: {text}", ""
