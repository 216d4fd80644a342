"""dataValueSets import: parse (JSON or CSV), validate as DHIS2 2.41 does, summarise.

Validation is pure (metadata index + user + clock); the write is one call to
``store.datavalues.import_values`` on the writer thread. Conflict messages and
codes follow dhis2-core's ``DataValueSetImportValidator`` / ``ErrorCode``.
"""

from __future__ import annotations

import calendar
import csv
import io
import re
import weakref
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from ..dhis2 import csvformat, periods, valuetypes
from ..dhis2.webmessage import IMPORT_OPTIONS_DEFAULTS
from ..errors import BadRequest
from ..store.datavalues import Counts, ValueRow
from ..store.metadata import MetadataIndex
from ..store.users import User

STRATEGIES = {"CREATE_AND_UPDATE", "CREATE", "UPDATE", "DELETE", "NEW_AND_UPDATES", "NEW",
              "UPDATES", "DELETES"}
_STRATEGY_ALIASES = {"NEW_AND_UPDATES": "CREATE_AND_UPDATE", "NEW": "CREATE",
                     "UPDATES": "UPDATE", "DELETES": "DELETE"}
CSV_COLUMNS = list(csvformat.HEADER)
MAX_COMMENT = 50000
MAX_STORED_BY = 255
# DHIS2 import settings the hub always has on: a key national would refuse (a COC outside
# the element's combo, an AOC outside the data set's, a period of another type) is refused
# here, before it is stored and synced. A client's ``=false`` is read (a malformed flag is
# still a 400) but cannot loosen them; ``importOptions`` reports them as in force.
ALWAYS_STRICT = ("strictPeriods", "strictCategoryOptionCombos", "strictAttributeOptionCombos")


@dataclass
class ImportOptions:
    strategy: str = "CREATE_AND_UPDATE"
    dry_run: bool = False
    id_scheme: str = "UID"
    de_id_scheme: str | None = None
    ou_id_scheme: str | None = None
    strict_periods: bool = True
    strict_data_elements: bool = False
    strict_org_units: bool = False
    strict_cocs: bool = True
    strict_aocs: bool = True
    require_coc: bool = False
    require_aoc: bool = False
    skip_audit: bool = False

    @classmethod
    def from_query(cls, q: Any) -> ImportOptions:
        def flag(name: str) -> bool:
            v = q.get(name)
            if v is None:
                return False
            if v.lower() in ("true", "1", ""):
                return True
            if v.lower() in ("false", "0"):
                return False
            raise BadRequest(f"Value `{v}` of parameter `{name}` is not a boolean")

        strategy = (q.get("importStrategy") or q.get("strategy") or "CREATE_AND_UPDATE").upper()
        if strategy not in STRATEGIES:
            raise BadRequest(f"Unknown importStrategy `{strategy}`; use one of "
                             "CREATE_AND_UPDATE, CREATE, UPDATE, DELETE")
        schemes = {}
        for name in ("idScheme", "dataElementIdScheme", "orgUnitIdScheme"):
            v = (q.get(name) or "").upper() or None
            if v is not None and v not in ("UID", "CODE", "NAME"):
                raise BadRequest(f"Unsupported {name} `{v}`; use UID, CODE or NAME")
            schemes[name] = v
        for name in ALWAYS_STRICT:
            flag(name)
        return cls(strategy=_STRATEGY_ALIASES.get(strategy, strategy), dry_run=flag("dryRun"),
                   id_scheme=schemes["idScheme"] or "UID", de_id_scheme=schemes["dataElementIdScheme"],
                   ou_id_scheme=schemes["orgUnitIdScheme"],
                   strict_data_elements=flag("strictDataElements"),
                   strict_org_units=flag("strictOrganisationUnits"),
                   require_coc=flag("requireCategoryOptionCombo"),
                   require_aoc=flag("requireAttributeOptionCombo"),
                   skip_audit=flag("skipAudit"))

    def as_json(self) -> dict[str, Any]:
        out = dict(IMPORT_OPTIONS_DEFAULTS)
        out.update(importStrategy=self.strategy, dryRun=self.dry_run,
                   strictPeriods=self.strict_periods, strictDataElements=self.strict_data_elements,
                   strictOrganisationUnits=self.strict_org_units,
                   strictCategoryOptionCombos=self.strict_cocs,
                   strictAttributeOptionCombos=self.strict_aocs,
                   requireCategoryOptionCombo=self.require_coc,
                   requireAttributeOptionCombo=self.require_aoc, skipAudit=self.skip_audit)
        if self.id_scheme != "UID":
            out["idSchemes"] = {"idScheme": self.id_scheme}
        return out


@dataclass
class Validated:
    rows: list[ValueRow] = field(default_factory=list)
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[int] = field(default_factory=list)
    abort: dict[str, Any] | None = None   # whole-import error (E7600..E7604)
    data_set: str | None = None
    complete: dict[str, Any] | None = None

    def conflict(self, index: int | None, code: str, obj: str, message: str,
                 prop: str | None = None) -> None:
        # DHIS2 merges identical conflicts, listing every index they occurred at
        for c in self.conflicts:
            if c["errorCode"] == code and c["object"] == obj and c["value"] == message:
                if index is not None:
                    c["indexes"].append(index)
                break
        else:
            c = {"object": obj, "objects": {}, "value": message, "errorCode": code,
                 "indexes": [index] if index is not None else []}
            if prop:
                c["property"] = prop
            self.conflicts.append(c)
        if index is not None:
            self.rejected.append(index)


# -- parsing -------------------------------------------------------------------------------
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_TIME = re.compile(r"T([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?")


def completion_date(v: str) -> str | None:
    """``yyyy-MM-dd`` of a DHIS2 completion date (``yyyy-MM-dd`` or an ISO timestamp), or
    None when it is neither (Python alone would also take ``20240203`` or ``2024-W05-1``)."""
    if not _DAY.match(v):
        return None
    try:
        day = date.fromisoformat(v[:10])
    except ValueError:
        return None
    if len(v) > 10 and not _TIME.fullmatch(v, 10):
        return None
    return day.isoformat()


def parse_json_payload(body: Any) -> dict[str, Any]:
    if isinstance(body, list):  # a bare list of values is accepted by DHIS2 too
        body = {"dataValues": body}
    if not isinstance(body, dict):
        raise BadRequest("Request body must be a JSON object with a `dataValues` array")
    values = body.get("dataValues", [])
    if not isinstance(values, list):
        raise BadRequest("`dataValues` must be an array")
    for i, v in enumerate(values):
        if not isinstance(v, dict):
            raise BadRequest(f"dataValues[{i}] must be an object")
    for k in ("dataSet", "period", "orgUnit", "attributeOptionCombo", "completeDate"):
        if body.get(k) is not None and not isinstance(body[k], str):
            raise BadRequest(f"`{k}` must be a string")
    if body.get("completeDate") and completion_date(body["completeDate"]) is None:
        raise BadRequest("`completeDate` must be a date yyyy-MM-dd or an ISO timestamp")
    return body


def parse_csv_payload(text: str, first_row_is_header: bool = True) -> dict[str, Any]:
    reader = csv.reader(io.StringIO(text))
    values = []
    columns = CSV_COLUMNS
    try:
        for n, row in enumerate(reader):
            if not row or all(not c.strip() for c in row):
                continue
            if n == 0 and first_row_is_header:
                header = csvformat.columns(row)
                if header is None:
                    raise BadRequest("CSV header must name the columns: " + ",".join(CSV_COLUMNS))
                columns = header
                continue
            rec = dict(zip(columns, row, strict=False))
            if len(row) < 3:
                raise BadRequest(f"CSV line {n + 1} has {len(row)} columns; at least "
                                 "dataelement,period,orgunit are needed")
            values.append({
                "dataElement": rec.get("dataelement", "").strip(),
                "period": rec.get("period", "").strip(),
                "orgUnit": rec.get("orgunit", "").strip(),
                "categoryOptionCombo": (rec.get("categoryoptioncombo") or "").strip() or None,
                "attributeOptionCombo": (rec.get("attributeoptioncombo") or "").strip() or None,
                "value": rec.get("value") if rec.get("value") != "" else None,
                "storedBy": rec.get("storedby") or None,
                "comment": rec.get("comment") or None,
                # an empty cell says nothing, as a JSON value without "followup"
                "followup": _flag_cell(rec.get("followup")),
                "deleted": (rec.get("deleted") or "").strip().lower() == "true",
            })
    except csv.Error as e:
        raise BadRequest(f"Malformed CSV: {e}") from None
    return {"dataValues": values}


def _flag_cell(cell: str | None) -> bool | None:
    text = (cell or "").strip().lower()
    return None if text in ("", "null") else text == "true"


# -- validation ------------------------------------------------------------------------------
class _Resolver:
    """Maps identifiers in the chosen id scheme to UIDs."""

    def __init__(self, index: MetadataIndex, opts: ImportOptions) -> None:
        self.index = index
        self.maps: dict[tuple[str, str], dict[str, str]] = {}
        self.opts = opts

    def __call__(self, type_: str, ident: str | None, scheme: str | None = None) -> str | None:
        if ident is None:
            return None
        scheme = scheme or self.opts.id_scheme
        if scheme == "UID":
            return ident if self.index.get_typed(type_, ident) else None
        key = (type_, scheme)
        if key not in self.maps:
            attr = "code" if scheme == "CODE" else "name"
            self.maps[key] = {d[attr]: d["id"] for d in self.index.list(type_) if d.get(attr)}
        return self.maps[key].get(ident)


def _refs(items: Any) -> list[str]:
    return [r["id"] for r in items or () if isinstance(r, dict) and isinstance(r.get("id"), str)]


def _data_writable(access: Any) -> bool:
    """The data-write bit (4th character) of a DHIS2 access string such as ``rwrw----``.

    As dhis2-core's ``AccessStringHelper.isEnabled``: a missing string (null) grants the
    permission, a malformed one (not 8 characters ending ``----``) grants nothing.
    """
    if access is None:
        return True
    if not isinstance(access, str) or len(access) != 8 or not access.endswith("----"):
        return False
    return (access[0] in "-r" and access[1] in "-w" and access[2] in "-r"
            and access[3] == "w")


def _sharing(doc: dict[str, Any]) -> tuple[Any, list[tuple[str, Any]], list[tuple[str, Any]]]:
    """(public access, [(user uid, access)], [(user group uid, access)]) of a metadata doc.

    Reads DHIS2's ``sharing`` object (``users``/``userGroups`` keyed by uid, each entry with
    ``id`` and ``access``); without one, the legacy ``publicAccess``, ``userAccesses`` and
    ``userGroupAccesses`` fields.
    """
    sharing = doc.get("sharing")
    if isinstance(sharing, dict):
        def entries(m: Any) -> list[tuple[str, Any]]:
            if not isinstance(m, dict):
                return []
            return [((e.get("id") or k) if isinstance(e, dict) else k,
                     e.get("access") if isinstance(e, dict) else None) for k, e in m.items()]
        return (sharing.get("public"), entries(sharing.get("users")),
                entries(sharing.get("userGroups")))

    def legacy(items: Any, uid_key: str, ref_key: str) -> list[tuple[str, Any]]:
        out = []
        for e in items if isinstance(items, list) else ():
            if isinstance(e, dict):
                ref = e.get(ref_key)
                uid = e.get(uid_key) or e.get("id") or (ref.get("id") if isinstance(ref, dict)
                                                         else None)
                if uid:
                    out.append((uid, e.get("access")))
        return out
    return (doc.get("publicAccess"), legacy(doc.get("userAccesses"), "userUid", "user"),
            legacy(doc.get("userGroupAccesses"), "userGroupUid", "userGroup"))


def _iso_day(v: Any) -> date | None:
    if not isinstance(v, str) or len(v) < 10:
        return None
    try:
        return date.fromisoformat(v[:10])
    except ValueError:
        return None


# Length of one period, to move a category option's end date by ``openPeriodsAfterCoEndDate``
# periods of the data set's type (dhis2-core ``PeriodType.getRewindedDate`` with a negative
# count: whole days/weeks, or calendar months/years keeping the day where the month has it).
_PERIOD_DAYS = {"Daily": 1, "Weekly": 7, "WeeklyWednesday": 7, "WeeklyThursday": 7,
                "WeeklySaturday": 7, "WeeklySunday": 7, "BiWeekly": 14}
_PERIOD_MONTHS = {"Monthly": 1, "BiMonthly": 2, "Quarterly": 3, "QuarterlyNov": 3,
                  "SixMonthly": 6, "SixMonthlyApril": 6, "SixMonthlyNov": 6, "Yearly": 12,
                  "FinancialApril": 12, "FinancialJuly": 12, "FinancialOct": 12,
                  "FinancialNov": 12, "FinancialSep": 12, "TwoYearly": 24}


def _after_periods(day: date, period_type: str, n: int) -> date:
    if period_type in _PERIOD_DAYS:
        try:
            return day + timedelta(days=_PERIOD_DAYS[period_type] * n)
        except OverflowError:
            return date.max if n > 0 else date.min
    months = _PERIOD_MONTHS.get(period_type)
    if months is None:
        return day
    y, m = divmod(day.year * 12 + day.month - 1 + months * n, 12)
    if not 1 <= y <= 9999:
        return date.max if n > 0 else date.min
    return date(y, m + 1, min(day.day, calendar.monthrange(y, m + 1)[1]))


# One option restricted by sharing: (option uid, users and user groups granted data write).
_Restricted = tuple[str, frozenset[str], frozenset[str]]
# An AOC's limits: option start dates, option end dates, allowed org unit roots (None: any).
_Limits = tuple[tuple[date, ...], tuple[date, ...], frozenset[str] | None]


class _OptionFacts:
    """What the category options behind each COC/AOC say, read once per metadata index.

    A ``MetadataIndex`` is never changed in place (``HubState.reload`` swaps it whole), so
    these stay true for its lifetime and are shared by every import against it (see
    :func:`_facts`): a form pays only dictionary look-ups. Holds no reference to the index.
    """

    def __init__(self, index: MetadataIndex) -> None:
        self.restricted: dict[str, tuple[_Restricted, ...]] = {}
        self.limits: dict[str, _Limits | None] = {}
        # with no option restricted at all (the demo), imports skip these checks outright
        options = index.list("categoryOptions")
        self.any_sharing = any(not _data_writable(_sharing(o)[0]) for o in options)
        self.any_limits = any(o.get("startDate") or o.get("endDate") or o.get("organisationUnits")
                              for o in options)

    @staticmethod
    def _options(index: MetadataIndex, coc: str) -> list[tuple[str, dict[str, Any]]]:
        # an option missing from the index carries no sharing, dates or org units
        doc = index.get(coc) or {}
        return [(o, index.get(o) or {}) for o in _refs(doc.get("categoryOptions"))]

    def restricted_options(self, index: MetadataIndex, coc: str) -> tuple[_Restricted, ...]:
        """The COC's options whose public access does not grant data write."""
        out = self.restricted.get(coc)
        if out is None:
            found = []
            for uid, doc in self._options(index, coc):
                public, users, groups = _sharing(doc)
                if not _data_writable(public):
                    found.append((uid, frozenset(u for u, a in users if _data_writable(a)),
                                  frozenset(g for g, a in groups if _data_writable(a))))
            out = self.restricted[coc] = tuple(found)
        return out

    def aoc_limits(self, index: MetadataIndex, aoc: str) -> _Limits | None:
        if aoc in self.limits:
            return self.limits[aoc]
        starts, ends, roots = [], [], None
        for _, doc in self._options(index, aoc):
            if (d := _iso_day(doc.get("startDate"))) is not None:
                starts.append(d)
            if (d := _iso_day(doc.get("endDate"))) is not None:
                ends.append(d)
            ous = frozenset(_refs(doc.get("organisationUnits")))
            if ous:
                roots = ous if roots is None else roots & ous
        out = self.limits[aoc] = (tuple(starts), tuple(ends), roots) \
            if starts or ends or roots is not None else None
        return out


_FACTS: dict[int, _OptionFacts] = {}


def _facts(index: MetadataIndex) -> _OptionFacts:
    facts = _FACTS.get(id(index))
    if facts is None:
        facts = _FACTS[id(index)] = _OptionFacts(index)
        # forget them with the index, before its id can be reused
        weakref.finalize(index, _FACTS.pop, id(index), None)
    return facts


class OptionRules:
    """Checks on the category options behind a COC/AOC, for one import by one user:

    * E7614/E7616: data-write sharing of every option of a given COC/AOC (``AclService
      .canDataWrite``). Superusers (authority ALL) bypass it, as in DHIS2. An option with no
      sharing information at all stays writable: DHIS2 treats a null public access string
      as granting everything, and the demo metadata carries no sharing, so the hub models no
      restriction there. Data write comes only from public, user or user-group access, never
      from being the owner.
    * E7638: the period must overlap the AOC's date range: the latest option ``startDate`` to
      the earliest option ``endDate``, each end date moved forward by the data set's
      ``openPeriodsAfterCoEndDate`` (without a data set in the payload: the latest such date
      over the data element's data sets).
    * E7639: options with a non-empty ``organisationUnits`` list allow only org units in the
      subtree of the intersection of those lists (an empty intersection allows none).
    """

    def __init__(self, index: MetadataIndex, user: User) -> None:
        self.index = index
        self.facts = _facts(index)
        self.bypass_sharing = user.is_superuser
        # per-value switches: False when no option could ever give a conflict
        self.check_sharing = self.facts.any_sharing and not self.bypass_sharing
        self.check_limits = self.facts.any_limits
        self.user = user.uid
        self.groups = frozenset(_refs(user.doc.get("userGroups")))
        self.denied: dict[str, tuple[str, ...]] = {}

    def not_writable(self, coc: str) -> tuple[str, ...]:
        """Uids of the COC's options the user may not write data for (E7614/E7616)."""
        out = self.denied.get(coc)
        if out is None:
            out = self.denied[coc] = () if self.bypass_sharing else tuple(
                uid for uid, users, groups in self.facts.restricted_options(self.index, coc)
                if self.user not in users and groups.isdisjoint(self.groups))
        return out

    def _adjusted_end(self, end: date, targets: list[str], one_data_set: bool) -> date:
        """``CategoryOption.getAdjustedEndDate`` for the data set, or the data element."""
        latest = end
        for ds_uid in targets:
            ds = self.index.get(ds_uid) or {}
            n = int(ds.get("openPeriodsAfterCoEndDate") or 0)
            adjusted = _after_periods(end, ds.get("periodType") or "", n) if n else end
            if one_data_set:
                return adjusted
            latest = max(latest, adjusted)
        return latest

    def aoc_conflict(self, aoc: str, targets: list[str], one_data_set: bool,
                     period: periods.Period, ou: str) -> str | None:
        """"E7638", "E7639" or None for a (aoc, data sets, period, org unit) cell."""
        limits = self.facts.aoc_limits(self.index, aoc)
        if limits is None:
            return None
        starts, ends, roots = limits
        if starts and max(starts) > period.end:
            return "E7638"
        if ends and min(self._adjusted_end(e, targets, one_data_set) for e in ends) < period.start:
            return "E7638"
        if roots is not None and not self.index.in_subtree(ou, roots):
            return "E7639"
        return None


def _str(v: Any) -> str | None:
    if v is None or type(v) is str:
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() else repr(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return v
    raise TypeError


def validate(payload: dict[str, Any], *, index: MetadataIndex, user: User, opts: ImportOptions,
             now: datetime, approved: set[tuple[str, str, str, str]] | None = None) -> Validated:
    res = Validated()
    resolve = _Resolver(index, opts)
    ds_id = payload.get("dataSet")
    data_set = None
    if ds_id:
        ds_uid = resolve("dataSets", ds_id)
        data_set = index.get(ds_uid) if ds_uid else None
        if data_set is None:
            res.abort = {"errorCode": "E7600", "object": ds_id,
                         "value": f"Data set not found or not accessible: `{ds_id}`"}
            return res
        res.data_set = data_set["id"]
    outer_ou = payload.get("orgUnit")
    if outer_ou and resolve("organisationUnits", outer_ou, opts.ou_id_scheme) is None:
        res.abort = {"errorCode": "E7603", "object": outer_ou,
                     "value": f"Org unit not found or not accessible: `{outer_ou}`"}
        return res
    outer_aoc = payload.get("attributeOptionCombo")
    if outer_aoc and resolve("categoryOptionCombos", outer_aoc) is None:
        res.abort = {"errorCode": "E7604", "object": outer_aoc,
                     "value": f"Attribute option combo not found or not accessible: `{outer_aoc}`"}
        return res
    if payload.get("completeDate") and data_set is not None:
        res.complete = {"date": completion_date(payload["completeDate"])
                        or payload["completeDate"][:10]}

    can_edit_expired = user.has("F_EDIT_EXPIRED")
    today = now.date()
    ds_uid = data_set["id"] if data_set is not None else None
    ds_aocs = index.ds_aocs.get(ds_uid) if ds_uid is not None else None
    default_aoc = index.default_coc or ""
    period_cache: dict[str, periods.Period | None] = {}
    scope_cache: dict[str, bool] = {}
    co_rules = OptionRules(index, user)
    check_sharing = co_rules.check_sharing
    # a form repeats the same period, org unit and small integers 150 times: decide once
    block_cache: dict[tuple[Any, ...], tuple[KeyConflict, ...] | None] = {}
    value_cache: dict[tuple[str, str], tuple[str | None, valuetypes.ValueConflict | None]] = {}
    approved = approved or set()
    # the set's period, org unit and attribute combo override each value's, as in dhis2-core
    # (DefaultDataValueSetService); a set period that does not parse is ignored, as there
    outer_pe = payload.get("period") if isinstance(payload.get("period"), str) else None
    if outer_pe is not None:
        try:
            periods.parse_period(outer_pe)
        except ValueError:
            outer_pe = None

    def unwritable(i: int, code: str, what: str, prop: str, ident: str, combo: str) -> bool:
        """E7614/E7616: one conflict per option of ``combo`` the user cannot write data to."""
        denied = co_rules.not_writable(combo)
        for opt in denied:
            res.conflict(i, code, ident, f"{what}: `{ident}` option not accessible: `{opt}`",
                         prop)
        return bool(denied)

    for i, raw in enumerate(payload.get("dataValues") or []):
        try:
            de_id = _str(raw.get("dataElement"))
            pe_id = _str(outer_pe or raw.get("period"))
            ou_id = _str(outer_ou or raw.get("orgUnit"))
            coc_id = _str(raw.get("categoryOptionCombo")) or None
            aoc_id = _str(outer_aoc or raw.get("attributeOptionCombo")) or None
            value = _str(raw.get("value"))
            comment = _str(raw.get("comment"))
            stored_by = _str(raw.get("storedBy"))
        except TypeError:
            res.conflict(i, "E7619", str(raw.get("dataElement")),
                         "Value must be a string, number or boolean", "value")
            continue
        if value == "":
            value = None
        deleted_flag = raw.get("deleted") in (True, "true")

        de = resolve("dataElements", de_id, opts.de_id_scheme) if de_id else None
        if de is None:
            res.conflict(i, "E7610", de_id or "", f"Data element not found or not accessible: `{de_id}`",
                         "dataElement")
            continue
        de_doc = index.get(de) or {}
        if pe_id not in period_cache:
            try:
                period_cache[pe_id or ""] = periods.parse_period(pe_id or "")
            except ValueError:
                period_cache[pe_id or ""] = None
        period = period_cache.get(pe_id or "")
        if period is None:
            res.conflict(i, "E7611", pe_id or "", f"Period not valid: `{pe_id}`", "period")
            continue
        ou = resolve("organisationUnits", ou_id, opts.ou_id_scheme) if ou_id else None
        if ou is None:
            res.conflict(i, "E7612", ou_id or "",
                         f"Organisation unit not found or not accessible: `{ou_id}`", "orgUnit")
            continue
        coc = resolve("categoryOptionCombos", coc_id) if coc_id else None
        if coc_id and coc is None:
            res.conflict(i, "E7613", coc_id,
                         f"Category option combo not found or not accessible for writing data: "
                         f"`{coc_id}`", "categoryOptionCombo")
            continue
        if check_sharing and coc_id and coc is not None and unwritable(  # a named COC only
                i, "E7614", "Category option combo", "categoryOptionCombo", coc_id, coc):
            continue
        aoc = resolve("categoryOptionCombos", aoc_id) if aoc_id else None
        if aoc_id and aoc is None:
            res.conflict(i, "E7615", aoc_id,
                         f"Attribute option combo not found or not accessible for writing data: "
                         f"`{aoc_id}`", "attributeOptionCombo")
            continue
        if check_sharing and aoc_id and aoc is not None and unwritable(  # likewise an AOC
                i, "E7616", "Attribute option combo", "attributeOptionCombo", aoc_id, aoc):
            continue
        if ou not in scope_cache:
            scope_cache[ou] = user.can_write(index, ou)
        if not scope_cache[ou]:
            res.conflict(i, "E7617", ou,
                         f"Organisation unit: `{ou}` not in hierarchy of current user: `{user.uid}`",
                         "orgUnit")
            continue
        deleting = deleted_flag or opts.strategy == "DELETE"
        if value is None and comment is None and not deleting:
            res.conflict(i, "E7618", de,
                         f"Data value or comment not specified for data element: `{de}`", "value")
            continue
        value_type = de_doc.get("valueType", "TEXT")
        if value is not None and not deleting:
            os_ref = de_doc.get("optionSet")
            options = index.option_codes.get(os_ref["id"], set()) \
                if isinstance(os_ref, dict) and os_ref.get("id") else None
            vkey = (de if options is not None else value_type, value)
            checked = value_cache.get(vkey)
            if checked is None:
                checked = value_cache[vkey] = valuetypes.validate_value(value_type, value, options)
            normalised, why = checked
            if why is not None:
                res.conflict(i, why.error_code, de, why.message(de), "value")
                continue
            value = normalised
        if comment is not None and len(comment) > MAX_COMMENT:
            res.conflict(i, "E7620", de, "Invalid comment: comment_length_greater_than_max_length",
                         "comment")
            continue
        if coc is None:
            if opts.require_coc:
                res.conflict(i, "E7630", de, "Category option combo is required but is not specified",
                             "categoryOptionCombo")
                continue
            coc = index.default_coc or ""
        if aoc is None:
            if opts.require_aoc:
                res.conflict(i, "E7631", de,
                             "Attribute option combo is required but is not specified",
                             "attributeOptionCombo")
                continue
            aoc = index.default_coc or ""
        targets = [data_set["id"]] if data_set else index.de_datasets.get(de, [])
        # E7632..E7636 in dhis2-core's order; a named data set stands for the element's
        # data sets, as for the period rules below
        if opts.strict_periods and _wrong_period_type(index, ds_uid, de, period.period_type):
            res.conflict(i, "E7632", pe_id or "", f"Period type of period: `{pe_id}` not valid for "
                         f"data element: `{de}`")
            continue
        if opts.strict_data_elements and data_set and de not in index.ds_elements.get(
                data_set["id"], set()):
            res.conflict(i, "E7633", de, f"Data element: `{de}` is not part of dataset: "
                         f"`{data_set['id']}`", "dataElement")
            continue
        if opts.strict_cocs and coc not in index.de_cocs(de):
            res.conflict(i, "E7634", coc, f"Category option combo: `{coc}` must be part of category "
                         f"combo of data element: `{de}`", "categoryOptionCombo")
            continue
        # E7635 spares the default AOC ("no attribute"), unlike DHIS2's strict mode: the
        # hub's rules take values without an attribute on a data set that has an attribute
        # combo (test_import_rules: E7616, E7639); any other AOC must be the data set's
        if opts.strict_aocs and aoc != default_aoc and aoc not in (
                ds_aocs if ds_aocs is not None else index.de_aocs.get(de, _NONE)):
            res.conflict(i, "E7635", aoc_id or aoc, f"Attribute option combo: `{aoc_id or aoc}` "
                         f"must be part of category combo of data sets of data element: `{de}`",
                         "attributeOptionCombo")
            continue
        if opts.strict_org_units and not (index.ou_datasets.get(ou, set()) & set(targets)):
            res.conflict(i, "E7636", ou, f"Data element: `{de}` must be assigned through data sets "
                         f"to organisation unit: `{ou}`", "orgUnit")
            continue
        if stored_by is not None and len(stored_by) > MAX_STORED_BY:
            res.conflict(i, "E7637", de, "Invalid storedBy: stored_by_length_greater_than_max_length",
                         "storedBy")
            continue
        # E7638/E7639 (attribute option combo dates and org units), then E7640..E7643
        bkey = (tuple(targets), period.id, ou, aoc)
        if bkey in block_cache:
            blocked = block_cache[bkey]
        else:
            aoc_blocked = co_rules.check_limits and aoc_block(
                co_rules, targets, data_set is not None, period, pe_id or "", ou, ou_id or ou,
                aoc, aoc_id or aoc)
            blocked = block_cache[bkey] = (aoc_blocked,) if aoc_blocked else _period_block(
                index, targets, period, pe_id or "", "{de}", ou, aoc, now, today,
                can_edit_expired, approved)
        if blocked is not None:
            for code, obj, msg, prop in blocked:
                res.conflict(i, code, obj, msg.replace("{de}", de), prop)
            continue
        zero_skip = (value is not None and not deleting and valuetypes.is_numeric(value_type)
                     and not de_doc.get("zeroIsSignificant", False)
                     and valuetypes.is_zero(value_type, value))
        followup = raw.get("followup", raw.get("followUp"))
        res.rows.append(ValueRow(
            index=i, de=de, pe=period.id, ou=ou, coc=coc, aoc=aoc, value=value, comment=comment,
            followup=bool(followup) if followup is not None else None, stored_by=stored_by,
            delete=deleting, zero_skip=zero_skip))
    return res


_NONE: frozenset[str] = frozenset()


def _wrong_period_type(index: MetadataIndex, ds_uid: str | None, de: str,
                       period_type: str) -> bool:
    """E7632: the period is not of the named data set's type or, without one, of any of the
    element's data sets' types. An element in no data set has no type to keep to."""
    if ds_uid is not None:
        return index.ds_period_type.get(ds_uid) != period_type
    types = index.de_period_types.get(de, _NONE)
    return bool(types) and period_type not in types


def aoc_block(options: OptionRules, targets: list[str], one_data_set: bool,
              period: periods.Period, pe_id: str, ou: str, ou_id: str, aoc: str,
              aoc_id: str) -> tuple[str, str, str, str] | None:
    """E7638 and E7639 (dhis2-core ``checkDataValuePeriodWithinAttrOptionComboRange`` and
    ``checkDataValueOrgUnitValidForAttrOptionCombo``), naming the period, org unit and
    attribute option combo as the payload gave them."""
    code = options.aoc_conflict(aoc, targets, one_data_set, period, ou)
    if code == "E7638":
        return (code, pe_id, f"Period: `{pe_id}` is not within date range of attribute option "
                f"combo: `{aoc_id}`", "period")
    if code == "E7639":
        return (code, ou_id, f"Organisation unit: `{ou_id}` is not valid for attribute option "
                f"combo: `{aoc_id}`", "orgUnit")
    return None


KeyConflict = tuple[str, str, str, str | None]  # code, object, message, property


def approved_at(approved: set[tuple[str, str, str, str]], index: MetadataIndex, ds: str,
                pe: str, ou: str, aoc: str) -> str | None:
    """The org unit whose approval locks (ds, pe, ou, aoc): ``ou`` itself or the nearest
    unit above it (DHIS2 locks a unit's data once it or a unit above it is approved), or
    None when the key is open."""
    if not approved:
        return None
    if (ds, pe, ou, aoc) in approved:
        return ou
    for above in reversed([p for p in index.path(ou).split("/") if p and p != ou]):
        if (ds, pe, above, aoc) in approved:
            return above
    return None


def _period_block(index: MetadataIndex, targets: list[str], period: periods.Period, pe_id: str,
                  de: str, ou: str, aoc: str, now: datetime, today: Any, can_edit_expired: bool,
                  approved: set[tuple[str, str, str, str]]
                  ) -> tuple[KeyConflict, ...] | None:
    """Expiry (E7640), open future periods (E7641), approval (E7642) and data input periods
    (E7643), in dhis2-core 2.41's order; the first rule that fails is reported. E7641 fails
    if any target data set refuses the period; the others only if every one does (DHIS2's
    non-strict default), with one conflict per refusing data set."""
    sets = [(ds_uid, index.get(ds_uid) or {}) for ds_uid in targets]

    def expired(ds_uid: str, ds: dict[str, Any]) -> KeyConflict | None:
        if can_edit_expired or not periods.is_expired(period, int(ds.get("expiryDays") or 0),
                                                      now):
            return None
        return ("E7640", pe_id, f"Current date is past expiry days for period: `{pe_id}`  "
                f"and data set: `{ds_uid}`", "period")

    def future(ds_uid: str, ds: dict[str, Any]) -> KeyConflict | None:
        open_future = int(ds.get("openFuturePeriods") or 0)
        if not periods.beyond_open_future(period, ds.get("periodType") or period.period_type,
                                          open_future, today):
            return None
        latest = periods.shift(periods.period_containing(period.period_type, today),
                               max(open_future - 1, 0) if open_future else 0)
        return ("E7641", pe_id, f"Period: `{pe_id}` is after latest open future period: "
                f"`{latest.id}` for data element: `{de}`", "period")

    def approved_(ds_uid: str, ds: dict[str, Any]) -> KeyConflict | None:
        if approved_at(approved, index, ds_uid, pe_id, ou, aoc) is None:
            return None
        return ("E7642", ou, f"Data already approved for data set: `{ds_uid}` period: "
                f"`{pe_id}` org unit: `{ou}` attribute option combo: `{aoc}`", None)

    def closed(ds_uid: str, ds: dict[str, Any]) -> KeyConflict | None:
        if periods.in_input_periods(period, ds.get("dataInputPeriods") or [], now) is not False:
            return None
        return ("E7643", pe_id, f"Period: `{pe_id}` is not open for this data set at this "
                f"time: `{ds_uid}`", "period")

    for rule, strict in ((expired, False), (future, True), (approved_, False), (closed, False)):
        found = [c for ds_uid, ds in sets if (c := rule(ds_uid, ds)) is not None]
        if found and (strict or len(found) == len(sets)):
            return tuple(found)
    return None


def summary(v: Validated, counts: Counts | None, opts: ImportOptions,
            description: str = "Import process completed successfully") -> dict[str, Any]:
    counts = counts or Counts()
    counts.ignored += len(set(v.rejected))
    if v.abort is not None:
        status = "ERROR"
        description = "Import process was aborted"
        conflicts = [dict(v.abort, objects={}, indexes=[])]
    else:
        status = "WARNING" if v.conflicts else "SUCCESS"
        conflicts = v.conflicts
    out: dict[str, Any] = {
        "responseType": "ImportSummary", "status": status, "importOptions": opts.as_json(),
        "description": description, "importCount": counts.as_dict(), "conflicts": conflicts,
        "rejectedIndexes": sorted(set(v.rejected)),
        "dataSetComplete": v.complete["date"] if v.complete else "false",
    }
    return out
