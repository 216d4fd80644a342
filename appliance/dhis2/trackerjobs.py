"""DHIS2's tracker import job notifications (``GET /api/tracker/jobs/{id}``).

The last notification of a finished job reads "Import complete with status OK, 0 created,
1 updated, 0 deleted, 0 ignored" (DHIS2 2.41; the Android SDK's fixture
``imports/tracker-importer/job_response_completed.json``). A client that only needs to
know whether anything was refused can stop there: the report, which lists every object
it imported, is needed only when the status is not OK.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_DONE = re.compile(r"Import complete with status (\w+), (\d+) created, (\d+) updated, "
                   r"(\d+) deleted, (\d+) ignored")


@dataclass(frozen=True)
class Completion:
    status: str
    created: int
    updated: int
    deleted: int
    ignored: int

    @property
    def stats(self) -> dict[str, int]:
        return {"created": self.created, "updated": self.updated, "deleted": self.deleted,
                "ignored": self.ignored,
                "total": self.created + self.updated + self.deleted + self.ignored}


def completion_message(status: str, stats: Mapping[str, int]) -> str:
    return (f"Import complete with status {status}, {stats['created']} created, "
            f"{stats['updated']} updated, {stats['deleted']} deleted, "
            f"{stats['ignored']} ignored")


def completion(notifications: Any) -> Completion | None:
    """The outcome a finished job's notifications state; None if it has not finished or
    the message is not DHIS2's (then read the report)."""
    if not isinstance(notifications, list):
        return None
    for n in notifications:
        if isinstance(n, Mapping) and n.get("completed") is True:
            m = _DONE.search(str(n.get("message") or ""))
            if m:
                return Completion(m.group(1), *(int(g) for g in m.groups()[1:]))
    return None
