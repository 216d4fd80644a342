"""Data approval, as DHIS2 2.41 models it (pure).

Approval is per *workflow* (``dataSet.workflow``), period, org unit and attribute option
combo; every data set of a workflow is locked together. A unit's data is locked once it or a
unit above it is approved (``APPROVED_ABOVE``). ``/api/dataApprovals/multiple`` answers a
state per (wf, pe, ou, aoc); dhis2-core's ``DataApprovalState`` says which states are
*approved* (locked for data entry): APPROVED_ABOVE, APPROVED_HERE, ACCEPTED_HERE, and in
versions that have them APPROVED_ELSEWHERE and ACCEPTED_ELSEWHERE.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

APPROVED_STATES = frozenset({"APPROVED_ABOVE", "APPROVED_HERE", "APPROVED_ELSEWHERE",
                             "ACCEPTED_HERE", "ACCEPTED_ELSEWHERE"})
OPEN_STATES = frozenset({"UNAPPROVABLE", "UNAPPROVED_ABOVE", "UNAPPROVED_WAITING",
                         "UNAPPROVED_READY", "UNAPPROVED_ELSEWHERE"})


def is_approved(state: Any) -> bool | None:
    """True: locked; False: open; None: no state or one this code does not know (a reply
    to judge nothing by)."""
    if state in APPROVED_STATES:
        return True
    if state in OPEN_STATES:
        return False
    return None


def workflow_of(data_set: Mapping[str, Any] | None) -> str | None:
    wf = (data_set or {}).get("workflow")
    uid = wf.get("id") if isinstance(wf, Mapping) else None
    return uid if isinstance(uid, str) and uid else None


def workflows(data_sets: Iterable[Mapping[str, Any]]) -> dict[str, list[str]]:
    """Workflow uid -> the uids of its data sets (sorted), for data sets that have one."""
    out: dict[str, list[str]] = {}
    for ds in data_sets:
        wf = workflow_of(ds)
        if wf and isinstance(ds.get("id"), str):
            out.setdefault(wf, []).append(ds["id"])
    return {wf: sorted(dss) for wf, dss in out.items()}
