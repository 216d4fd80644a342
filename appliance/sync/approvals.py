"""Approvals come down with the data: national's approval state of the hub's forms.

DHIS2 has no "approvals changed since" query, so each full cycle asks
``/api/dataApprovals/multiple`` (what the Android SDK asks) for the states that matter
now, and a wider sweep runs daily and when a person asks for a sync:

* every cycle: for each workflow of the hub's data sets, the periods still open for entry
  (expiry days, open future periods) and those the hub has values waiting to push in,
  for the org units of the subtree its data sets are assigned to;
* the sweep: also every period the hub holds values in (up to ``LOOKBACK_DAYS`` back) and
  every period it holds one of national's approvals in, so an approval of an old month
  shows and an unapproval anywhere unlocks.

An approved state locks every data set of the workflow at the hub (``data_approval``,
national's state kept); an open state takes back a lock that came from national; no state
(or one this code does not know) changes nothing. The hub's LAN API then refuses edits of
a locked form with E7642, as national would, before anything is pushed; values entered
before the lock came down are still pushed, and national's refusal is recorded as usual.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from ..dhis2 import approvals as pure
from ..dhis2 import periods
from ..errors import SyncError
from ..store.approvals import ApprovalKey
from ..store.metadata import MetadataIndex

SWEEP_EVERY_MS = 24 * 60 * 60 * 1000
SWEEP_REASONS = frozenset({"cli", "api", "button", "usb", "start"})
LOOKBACK_DAYS = 400
NEVER_EXPIRES_BACK = 2  # periods before the current one asked for when a form never expires
OPEN_BACK_MAX = 12
OU_BATCH = 100


@dataclass(frozen=True)
class Ask:
    """One ``/api/dataApprovals/multiple`` request: the cartesian product of these."""

    wfs: tuple[str, ...]
    periods: tuple[str, ...]
    org_units: tuple[str, ...]
    aocs: tuple[str, ...]  # empty: the default combo only (the parameter is left out)

    @property
    def size(self) -> int:
        return len(self.wfs) * len(self.periods) * len(self.org_units) * max(1, len(self.aocs))

    def params(self) -> dict[str, Any]:
        fields = ["ou", "pe", "state"]
        if len(self.wfs) > 1:
            fields.insert(0, "wf")
        if len(self.aocs) > 1:
            fields.insert(-1, "aoc")
        out: dict[str, Any] = {"wf": ",".join(self.wfs), "pe": ",".join(self.periods),
                               "ou": ",".join(self.org_units), "fields": ",".join(fields)}
        if self.aocs:
            out["aoc"] = ",".join(self.aocs)
        return out


@dataclass
class ApprovalStats:
    asked: int = 0       # states asked for
    locked: int = 0      # locks added (or whose state changed)
    unlocked: int = 0    # locks national took back
    requests: int = 0


def open_periods(ds: Mapping[str, Any], today: date) -> list[str]:
    """The periods of a data set someone without F_EDIT_EXPIRED may still enter at the
    hub today (DHIS2's expiry days and open future periods), newest first."""
    ptype = ds.get("periodType") or "Monthly"
    expiry = int(ds.get("expiryDays") or 0)
    future = int(ds.get("openFuturePeriods") or 0)
    try:
        current = periods.period_containing(ptype, today)
    except ValueError:
        return []
    out = [periods.shift(current, n).id for n in range(max(future - 1, 0), 0, -1)]
    if not periods.beyond_open_future(current, ptype, future, today):
        out.append(current.id)
    p = current
    for _ in range(OPEN_BACK_MAX if expiry else NEVER_EXPIRES_BACK):
        p = periods.shift(p, -1)
        if periods.is_expired(p, expiry, today):
            break
        out.append(p.id)
    return out


def _recent(pe: str, ptype: str, today: date) -> bool:
    try:
        p = periods.parse_period(pe)
    except ValueError:
        return False
    return p.period_type == ptype and p.end >= today - timedelta(days=LOOKBACK_DAYS) and \
        p.start <= today


def plan(index: MetadataIndex, root: str, today: date, *, pending: Iterable[str] = (),
         held: Iterable[str] = (), national: Iterable[ApprovalKey] = ()) -> list[Ask]:
    """The requests that ask national for the states that matter (pure). ``pending``:
    periods the hub has values waiting in; ``held``: periods it holds values in (the
    sweep; empty otherwise); ``national``: the approvals it holds from national (their
    periods are asked in the sweep)."""
    flows = pure.workflows(index.list("dataSets"))
    subtree = set(index.descendants(root))
    pending, held = set(pending), set(held)
    held_national: dict[str, set[str]] = {}
    for ds, pe, _ou, _aoc in national:
        held_national.setdefault(ds, set()).add(pe)
    default = index.default_coc or ""
    grouped: dict[tuple[tuple[str, ...], ...], list[str]] = {}
    for wf, dss in sorted(flows.items()):
        ptype = index.ds_period_type.get(dss[0]) or "Monthly"
        ous = sorted(ou for ou in subtree if index.ou_datasets.get(ou, set()) & set(dss))
        if not ous:
            continue
        pes: set[str] = set()
        for ds in dss:
            pes.update(open_periods(index.get(ds) or {}, today))
            if held:
                pes.update(held_national.get(ds, ()))
        pes.update(pe for pe in pending | held if _recent(pe, ptype, today))
        pes = {pe for pe in pes if periods.period_type_of(pe) == ptype}
        if not pes:
            continue
        aocs = sorted(set().union(*(index.ds_aocs.get(ds, frozenset()) for ds in dss)))
        if aocs in ([default], []):
            aocs = []
        for i in range(0, len(ous), OU_BATCH):
            key = (tuple(sorted(pes)), tuple(ous[i:i + OU_BATCH]), tuple(aocs))
            grouped.setdefault(key, []).append(wf)
    return [Ask(tuple(wfs), *key) for key, wfs in grouped.items()]


def read_reply(ask: Ask, items: Any, flows: Mapping[str, list[str]], default_aoc: str
               ) -> tuple[dict[ApprovalKey, str], set[ApprovalKey]]:
    """National's answer as (approved key -> state, open keys), over the workflows' data
    sets (pure). Only what was asked counts; an item without a state it knows, nothing."""
    if not isinstance(items, list):
        raise SyncError("national's /api/dataApprovals/multiple reply is not a list")
    approved: dict[ApprovalKey, str] = {}
    unapproved: set[ApprovalKey] = set()
    asked_pe, asked_ou = set(ask.periods), set(ask.org_units)
    asked_aoc = set(ask.aocs) or {default_aoc}
    for it in items:
        if not isinstance(it, dict):
            continue
        wf = it.get("wf") or (ask.wfs[0] if len(ask.wfs) == 1 else None)
        aoc = it.get("aoc") or (next(iter(asked_aoc)) if len(asked_aoc) == 1 else None)
        pe, ou = it.get("pe"), it.get("ou")
        if wf not in ask.wfs or pe not in asked_pe or ou not in asked_ou or \
                aoc not in asked_aoc:
            continue
        locked = pure.is_approved(it.get("state"))
        for ds in flows.get(wf, ()):
            key = (ds, pe, ou, aoc)
            if locked:
                approved[key] = it["state"]
            elif locked is False:
                unapproved.add(key)
    return approved, unapproved - set(approved)


@dataclass
class Answer:
    approved: dict[ApprovalKey, str] = field(default_factory=dict)
    unapproved: set[ApprovalKey] = field(default_factory=set)

    def add(self, approved: dict[ApprovalKey, str], unapproved: set[ApprovalKey]) -> None:
        self.approved.update(approved)
        self.unapproved |= unapproved
        self.unapproved -= set(self.approved)

    def changes(self, national: Mapping[ApprovalKey, str]) -> bool:
        """Does the answer change what the hub holds from national?"""
        return any(national.get(k) != st for k, st in self.approved.items()) or \
            any(k in national for k in self.unapproved)

    def without_workflow(self, national: Iterable[ApprovalKey], covered: set[str]) -> None:
        """Locks from national on data sets that no longer have a workflow (or are gone):
        DHIS2 then approves nothing of them, so they are taken back."""
        self.unapproved |= {k for k in national if k[0] not in covered}
