"""Reporting: who has reported which form for a period, and the reporting rates as DHIS2
defines them (issue 14: the reporting board, heartbeats' completeness counts).

DHIS2's definitions (analytics' completeness tables, dhis2-core
``JdbcCompletenessTableManager``):

- **expected reports** = org units assigned the data set × periods of its type;
- **actual reports** = complete registrations (``completed = true``) of those org units;
- **on time** = ``registration date - the period's last day <= timelyDays`` (days);
  a data set without ``timelyDays`` has DHIS2's 15 (its upgrade sets a missing value to
  15, the old ``completenessOffset`` default); an explicit 0 means by the period's end;
- **reporting rate** = actual ÷ expected × 100, **on time** = actual on time ÷ expected.

A registration of an org unit the data set is not assigned to is shown but not counted
(DHIS2's expected reports do not include it, so counting it could pass 100 %). Cells
filled are the live values of the form's cells: its data elements × the option combos of
their category combo (or the data set element's override), as the data entry form draws.

The rows come from ``datavalue`` and ``complete_registration`` (owned by
``store/datavalues.py``) and ``sync_rejection``; this module only reads them.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from ..dhis2.periods import Period, parse_period
from .keys import key_sql

DEFAULT_TIMELY_DAYS = 15


@dataclass(frozen=True, slots=True)
class Form:
    """What the board needs of one data set: its cells per element and its timeliness."""

    uid: str
    name: str
    period_type: str
    timely_days: int
    cells: Mapping[str, int]  # data element -> option combos (cells) in the form
    org_units: frozenset[str]  # assigned

    @property
    def size(self) -> int:
        return sum(self.cells.values())


def timely_days(ds: Mapping[str, Any]) -> int:
    v = ds.get("timelyDays")
    try:
        return DEFAULT_TIMELY_DAYS if v is None else max(0, int(v))
    except (TypeError, ValueError):
        return DEFAULT_TIMELY_DAYS


def forms_from_docs(data_sets: Iterable[Mapping[str, Any]],
                    combo_sizes: Mapping[str, int] | None = None,
                    de_combos: Mapping[str, str] | None = None,
                    ou_datasets: Mapping[str, Iterable[str]] | None = None) -> list[Form]:
    """Forms from DHIS2 data set documents. ``combo_sizes`` (category combo -> option
    combos) and ``de_combos`` (data element -> its category combo) give the cells; without
    them every element counts one cell. ``ou_datasets`` adds assignments made on the org
    unit's side (``organisationUnit.dataSets``)."""
    extra: dict[str, set[str]] = {}
    for ou, dss in (ou_datasets or {}).items():
        for uid in dss:
            extra.setdefault(uid, set()).add(ou)
    out = []
    for ds in data_sets:
        cells: dict[str, int] = {}
        for e in ds.get("dataSetElements") or []:
            de = (e.get("dataElement") or {}).get("id")
            if not de:
                continue
            cc = (e.get("categoryCombo") or {}).get("id") or (de_combos or {}).get(de)
            cells[de] = max(1, (combo_sizes or {}).get(cc or "", 1))
        ous = {o["id"] for o in ds.get("organisationUnits") or [] if "id" in o}
        out.append(Form(ds["id"], ds.get("displayName") or ds.get("name") or ds["id"],
                        ds.get("periodType") or "", timely_days(ds), cells,
                        frozenset(ous | extra.get(ds["id"], set()))))
    return sorted(out, key=lambda f: f.name)


def forms_of_index(index: Any) -> list[Form]:
    """Forms from the hub's in-memory ``MetadataIndex``."""
    sizes = {cc: len(cocs) for cc, cocs in index.combo_cocs.items()}
    de_combos = {d["id"]: (d.get("categoryCombo") or {}).get("id") or index.default_combo
                 for d in index.list("dataElements")}
    return forms_from_docs(index.list("dataSets"), sizes, de_combos, index.ou_datasets)


def read_forms(conn: sqlite3.Connection) -> list[Form]:
    """Forms read from the stored metadata without building the whole index (the health
    agent's heartbeats need assignments and timeliness, not the cells)."""
    docs = [json.loads(r[0]) for r in conn.execute(
        "SELECT doc FROM metadata WHERE type='dataSets'")]
    return forms_from_docs(docs)


def is_on_time(period: Period, completed_on: str | None, days: int) -> bool | None:
    """DHIS2's ``timely``: the registration's date at most ``days`` after the period's end."""
    if not completed_on:
        return None
    try:
        d = date.fromisoformat(completed_on[:10])
    except ValueError:
        return None
    return (d - period.end).days <= days


@dataclass(frozen=True, slots=True)
class FormStatus:
    """One clinic × form × period."""

    ou: str
    ds: str
    pe: str
    expected: bool
    filled: int
    cells: int
    complete: bool
    completed_on: str | None = None
    completed_by: str | None = None
    on_time: bool | None = None
    sync: str | None = None  # of the completion: pending | synced | rejected | conflict
    error_code: str | None = None
    reason: str | None = None  # national's, when it refused the completion

    @property
    def state(self) -> str:
        """not_expected | not_started | in_progress | complete | received | refused."""
        if self.complete:
            return {"synced": "received", "rejected": "refused"}.get(self.sync or "",
                                                                     "complete")
        if not self.expected and not self.filled:
            return "not_expected"
        return "in_progress" if self.filled else "not_started"


def _marks(n: int) -> str:
    return ",".join("?" * n)


def filled_counts(conn: sqlite3.Connection, pe: str, org_units: Sequence[str]
                  ) -> dict[tuple[str, str], int]:
    """(ou, de) -> live values of the period, over the key's (ou, pe) prefix."""
    if not org_units:
        return {}
    return {(r[0], r[1]): int(r[2]) for r in conn.execute(
        f"SELECT ou, de, count(*) FROM datavalue WHERE ou IN ({_marks(len(org_units))}) "
        "AND pe=? AND deleted=0 GROUP BY ou, de", (*org_units, pe))}


def completions(conn: sqlite3.Connection, pe: str, data_sets: Sequence[str]
                ) -> dict[tuple[str, str], tuple[str, str | None, str, str | None, str | None]]:
    """(ds, ou) -> (date, stored_by, sync_state, error code, message) of the period's live
    complete registrations (one per form; with attribute combos, the latest)."""
    if not data_sets:
        return {}
    out: dict[tuple[str, str], Any] = {}
    for r in conn.execute(
            "SELECT c.ds, c.ou, c.date, c.stored_by, c.sync_state, r.error_code, r.message "
            "FROM complete_registration c LEFT JOIN sync_rejection r ON "
            "r.entity='complete_registration' AND r.key = "
            f"{key_sql('complete_registration', 'c')} WHERE c.ds IN "
            f"({_marks(len(data_sets))}) AND c.pe=? AND c.deleted=0 AND c.completed=1 "
            "ORDER BY c.last_updated", (*data_sets, pe)):
        out[(r[0], r[1])] = (r[2], r[3], r[4], r[5], r[6])
    return out


def month_status(conn: sqlite3.Connection, forms: Sequence[Form], pe: str,
                 org_units: Sequence[str]) -> list[FormStatus]:
    """Every (org unit, form) of ``org_units`` × the forms of ``pe``'s period type."""
    period = parse_period(pe)
    forms = [f for f in forms if f.period_type == period.period_type]
    filled = filled_counts(conn, pe, org_units)
    done = completions(conn, pe, [f.uid for f in forms])
    out = []
    for ou in org_units:
        for f in forms:
            n = sum(min(filled.get((ou, de), 0), k) for de, k in f.cells.items())
            reg = done.get((f.uid, ou))
            if reg is None:
                out.append(FormStatus(ou, f.uid, pe, ou in f.org_units, n, f.size, False))
                continue
            on, by, sync, code, msg = reg
            rejected = sync == "rejected"
            out.append(FormStatus(
                ou, f.uid, pe, ou in f.org_units, n, f.size, True, on, by,
                is_on_time(period, on, f.timely_days), sync, code if rejected else None,
                msg if rejected else None))
    return out


@dataclass(frozen=True, slots=True)
class Rates:
    expected: int
    complete: int
    on_time: int
    received: int  # complete and accepted by national

    @property
    def reporting_rate(self) -> float | None:
        return None if not self.expected else round(100 * self.complete / self.expected, 1)

    @property
    def on_time_rate(self) -> float | None:
        return None if not self.expected else round(100 * self.on_time / self.expected, 1)

    def as_dict(self) -> dict[str, Any]:
        return {"expected": self.expected, "complete": self.complete, "onTime": self.on_time,
                "received": self.received, "reportingRate": self.reporting_rate,
                "onTimeRate": self.on_time_rate}


def rates(statuses: Iterable[FormStatus]) -> Rates:
    """DHIS2's counts over the expected (org unit, form) pairs among ``statuses``."""
    expected = complete = on_time = received = 0
    for s in statuses:
        if not s.expected:
            continue
        expected += 1
        if s.complete:
            complete += 1
            on_time += bool(s.on_time)
            received += s.sync == "synced"
    return Rates(expected, complete, on_time, received)


def completeness(conn: sqlite3.Connection, forms: Sequence[Form], periods: Sequence[str]
                 ) -> list[dict[str, Any]]:
    """Per data set and period, the counts heartbeats carry: expected, complete, on time,
    received by national (no cell counts: the expected org units' completions only)."""
    out = []
    for pe in periods:
        period = parse_period(pe)
        these = [f for f in forms if f.period_type == period.period_type and f.org_units]
        done = completions(conn, pe, [f.uid for f in these])
        for f in these:
            statuses = []
            for ou in f.org_units:
                reg = done.get((f.uid, ou))
                statuses.append(FormStatus(
                    ou, f.uid, pe, True, 0, 0, reg is not None,
                    reg[0] if reg else None, None,
                    is_on_time(period, reg[0], f.timely_days) if reg else None,
                    reg[2] if reg else None))
            r = rates(statuses)
            out.append({"dataSet": f.uid, "period": pe, "expected": r.expected,
                        "complete": r.complete, "onTime": r.on_time, "received": r.received})
    return out


def data_version(conn: sqlite3.Connection) -> int:
    """SQLite's ``data_version`` of ``conn``: it changes when another connection (another
    process, or this process's writer) commits. Only comparable on one connection."""
    return int(conn.execute("PRAGMA data_version").fetchone()[0])
