"""When an enrollment's visits are due, from its program stages' schedule (pure, no I/O).

DHIS2 schedules in days from the enrollment's incident date (or its enrollment date when the
stage is ``generatedByEnrollmentDate``): a stage that ``autoGenerateEvent``s gets its first
event ``minDaysFromStart`` days after that, and a repeatable stage's next event comes
``standardInterval`` days after the last one. An event already scheduled (status SCHEDULE
or OVERDUE) is due on its ``scheduledAt``. ``due_visits`` applies those rules:

* every scheduled event is due on its own date;
* an auto-generated stage with no event at all (none made, scheduled or skipped) is due
  ``minDaysFromStart`` days from the start, as the event DHIS2 would have created;
* an auto-generated repeatable stage with a ``standardInterval``, whose last event was
  made and none is scheduled, is next due ``standardInterval`` days after it, unless a
  later stage not reached yet starts by then (ANC every 4 weeks stops at delivery).

``classify`` turns a due date into overdue (with days overdue) or due this week.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

__all__ = ["Stage", "Visit", "Due", "stages_of", "due_visits", "classify", "WEEK_DAYS"]

WEEK_DAYS = 7  # "due this week": today and the six days after
SCHEDULED = ("SCHEDULE", "OVERDUE")


@dataclass(frozen=True)
class Stage:
    uid: str
    name: str
    min_days: int
    repeatable: bool
    interval: int | None
    auto_generate: bool
    by_enrollment_date: bool
    sort_order: int


@dataclass(frozen=True)
class Visit:
    """An event of the enrollment as the schedule sees it."""

    uid: str
    stage: str
    status: str
    occurred: date | None
    scheduled: date | None


@dataclass(frozen=True)
class Due:
    stage: str
    due: date
    event: str | None  # the scheduled event, or None when the schedule says a visit is due


def _int(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def stages_of(program: Mapping[str, Any], stage_docs: Mapping[str, Mapping[str, Any]]
              ) -> list[Stage]:
    """The program's stages, read in its metadata (``stage_docs``: programStages by uid)."""
    out = []
    for i, ref in enumerate(program.get("programStages") or []):
        doc = stage_docs.get(ref.get("id")) or {}
        if not doc:
            continue
        order = _int(doc.get("sortOrder"))
        out.append(Stage(
            str(doc["id"]), str(doc.get("displayName") or doc.get("name") or doc["id"]),
            _int(doc.get("minDaysFromStart")) or 0, bool(doc.get("repeatable")),
            _int(doc.get("standardInterval")), bool(doc.get("autoGenerateEvent", True)),
            bool(doc.get("generatedByEnrollmentDate")), i if order is None else order))
    return sorted(out, key=lambda s: (s.sort_order, s.min_days))


def due_visits(stages: Sequence[Stage], *, enrolled: date | None, incident: date | None,
               events: Iterable[Visit]) -> list[Due]:
    """The visits of one active enrollment that are due (in the past or future)."""
    evs = list(events)
    by_stage: dict[str, list[Visit]] = {}
    for e in evs:
        by_stage.setdefault(e.stage, []).append(e)
    out = [Due(e.stage, e.scheduled, e.uid) for e in evs
           if e.status in SCHEDULED and e.scheduled is not None]
    for i, st in enumerate(stages):
        start = enrolled if st.by_enrollment_date else (incident or enrolled)
        if start is None or not st.auto_generate:
            continue
        mine = by_stage.get(st.uid, [])
        if not mine:
            out.append(Due(st.uid, start + timedelta(days=st.min_days), None))
            continue
        if not st.repeatable or not st.interval or any(e.status in SCHEDULED for e in mine):
            continue
        made = [e.occurred for e in mine if e.occurred is not None and e.status != "SKIPPED"]
        if not made:
            continue
        nxt = max(made) + timedelta(days=st.interval)
        later = [start + timedelta(days=s.min_days) for s in stages[i + 1:]
                 if s.min_days > st.min_days and not by_stage.get(s.uid)]
        if later and nxt >= min(later):
            continue
        if any(by_stage.get(s.uid) for s in stages[i + 1:] if s.min_days > st.min_days):
            continue  # a later stage was reached: this one is over
        out.append(Due(st.uid, nxt, None))
    return sorted(out, key=lambda d: d.due)


def classify(due: date, today: date) -> tuple[str, int] | None:
    """("overdue", days overdue) or ("due", days until due) this week, else None."""
    days = (today - due).days
    if days > 0:
        return "overdue", days
    if -days < WEEK_DAYS:
        return "due", -days
    return None
