"""dataValueSets import: parse (JSON or CSV), validate as DHIS2 2.41 does, summarise.

Validation is pure (metadata index + user + clock); the write is one call to
``store.datavalues.import_values`` on the writer thread. Conflict messages and
codes follow dhis2-core's ``DataValueSetImportValidator`` / ``ErrorCode``.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..dhis2 import periods, valuetypes
from ..dhis2.webmessage import IMPORT_OPTIONS_DEFAULTS
from ..errors import BadRequest
from ..store.datavalues import Counts, ValueRow
from ..store.metadata import MetadataIndex
from ..store.users import User

STRATEGIES = {"CREATE_AND_UPDATE", "CREATE", "UPDATE", "DELETE", "NEW_AND_UPDATES", "NEW",
              "UPDATES", "DELETES"}
_STRATEGY_ALIASES = {"NEW_AND_UPDATES": "CREATE_AND_UPDATE", "NEW": "CREATE",
                     "UPDATES": "UPDATE", "DELETES": "DELETE"}
CSV_COLUMNS = ["dataelement", "period", "orgunit", "categoryoptioncombo", "attributeoptioncombo",
               "value", "storedby", "lastupdated", "comment", "followup", "deleted"]
MAX_COMMENT = 50000
MAX_STORED_BY = 255


@dataclass
class ImportOptions:
    strategy: str = "CREATE_AND_UPDATE"
    dry_run: bool = False
    id_scheme: str = "UID"
    de_id_scheme: str | None = None
    ou_id_scheme: str | None = None
    strict_periods: bool = False
    strict_data_elements: bool = False
    strict_org_units: bool = False
    strict_cocs: bool = False
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
        return cls(strategy=_STRATEGY_ALIASES.get(strategy, strategy), dry_run=flag("dryRun"),
                   id_scheme=schemes["idScheme"] or "UID", de_id_scheme=schemes["dataElementIdScheme"],
                   ou_id_scheme=schemes["orgUnitIdScheme"], strict_periods=flag("strictPeriods"),
                   strict_data_elements=flag("strictDataElements"),
                   strict_org_units=flag("strictOrganisationUnits"),
                   strict_cocs=flag("strictCategoryOptionCombos"),
                   require_coc=flag("requireCategoryOptionCombo"),
                   require_aoc=flag("requireAttributeOptionCombo"),
                   skip_audit=flag("skipAudit"))

    def as_json(self) -> dict[str, Any]:
        out = dict(IMPORT_OPTIONS_DEFAULTS)
        out.update(importStrategy=self.strategy, dryRun=self.dry_run,
                   strictPeriods=self.strict_periods, strictDataElements=self.strict_data_elements,
                   strictOrganisationUnits=self.strict_org_units,
                   strictCategoryOptionCombos=self.strict_cocs,
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
                header = [c.strip().lower().replace("_", "") for c in row]
                if "dataelement" not in header:
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
                "followup": (rec.get("followup") or "").strip().lower() == "true",
                "deleted": (rec.get("deleted") or "").strip().lower() == "true",
            })
    except csv.Error as e:
        raise BadRequest(f"Malformed CSV: {e}") from None
    return {"dataValues": values}


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
        res.complete = {"date": payload["completeDate"][:10]}

    can_edit_expired = user.has("F_EDIT_EXPIRED")
    today = now.date()
    period_cache: dict[str, periods.Period | None] = {}
    scope_cache: dict[str, bool] = {}
    # a form repeats the same period, org unit and small integers 150 times: decide once
    block_cache: dict[tuple[Any, ...], tuple[str, str, str] | None] = {}
    value_cache: dict[tuple[str, str], tuple[str | None, valuetypes.ValueConflict | None]] = {}
    approved = approved or set()
    for i, raw in enumerate(payload.get("dataValues") or []):
        try:
            de_id = _str(raw.get("dataElement"))
            pe_id = _str(raw.get("period") or payload.get("period"))
            ou_id = _str(raw.get("orgUnit") or outer_ou)
            coc_id = _str(raw.get("categoryOptionCombo")) or None
            aoc_id = _str(raw.get("attributeOptionCombo") or outer_aoc) or None
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
        aoc = resolve("categoryOptionCombos", aoc_id) if aoc_id else None
        if aoc_id and aoc is None:
            res.conflict(i, "E7615", aoc_id,
                         f"Attribute option combo not found or not accessible for writing data: "
                         f"`{aoc_id}`", "attributeOptionCombo")
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
        if opts.strict_data_elements and data_set and de not in index.ds_elements.get(
                data_set["id"], set()):
            res.conflict(i, "E7633", de, f"Data element: `{de}` is not part of dataset: "
                         f"`{data_set['id']}`", "dataElement")
            continue
        if opts.strict_cocs and coc not in index.de_cocs(de):
            res.conflict(i, "E7634", coc, f"Category option combo: `{coc}` must be part of category "
                         f"combo of data element: `{de}`", "categoryOptionCombo")
            continue
        if opts.strict_periods and targets and all(
                (index.get(t) or {}).get("periodType") != period.period_type for t in targets):
            res.conflict(i, "E7632", pe_id or "", f"Period type of period: `{pe_id}` not valid for "
                         f"data element: `{de}`")
            continue
        if opts.strict_org_units and not (index.ou_datasets.get(ou, set()) & set(targets)):
            res.conflict(i, "E7636", ou, f"Data element: `{de}` must be assigned through data sets "
                         f"to organisation unit: `{ou}`", "orgUnit")
            continue
        if stored_by is not None and len(stored_by) > MAX_STORED_BY:
            res.conflict(i, "E7637", de, "Invalid storedBy: stored_by_length_greater_than_max_length",
                         "storedBy")
            continue
        bkey = (tuple(targets), period.id, ou, aoc)
        if bkey in block_cache:
            blocked = block_cache[bkey]
        else:
            blocked = block_cache[bkey] = _period_block(
                index, targets, period, pe_id or "", "{de}", ou, aoc, now, today,
                can_edit_expired, approved)
        if blocked is not None:
            code, obj, msg = blocked
            res.conflict(i, code, obj, msg.replace("{de}", de), "period")
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


def _period_block(index: MetadataIndex, targets: list[str], period: periods.Period, pe_id: str,
                  de: str, ou: str, aoc: str, now: datetime, today: Any, can_edit_expired: bool,
                  approved: set[tuple[str, str, str, str]]) -> tuple[str, str, str] | None:
    """Expiry, open future periods, data input periods and approval, per target data set."""
    for ds_uid in targets:
        ds = index.get(ds_uid) or {}
        open_future = int(ds.get("openFuturePeriods") or 0)
        if periods.beyond_open_future(period, ds.get("periodType") or period.period_type,
                                      open_future, today):
            latest = periods.shift(periods.period_containing(period.period_type, today),
                                   max(open_future - 1, 0) if open_future else 0)
            return ("E7641", pe_id, f"Period: `{pe_id}` is after latest open future period: "
                    f"`{latest.id}` for data element: `{de}`")
        if not can_edit_expired and periods.is_expired(period, int(ds.get("expiryDays") or 0), now):
            return ("E7640", pe_id, f"Current date is past expiry days for period: `{pe_id}`  "
                    f"and data set: `{ds_uid}`")
        if periods.in_input_periods(period, ds.get("dataInputPeriods") or [], now) is False:
            return ("E7643", pe_id, f"Period: `{pe_id}` is not open for this data set at this "
                    f"time: `{ds_uid}`")
        if (ds_uid, pe_id, ou, aoc) in approved:
            return ("E7642", ou, f"Data already approved for data set: `{ds_uid}` period: "
                    f"`{pe_id}` org unit: `{ou}` attribute option combo: `{aoc}`")
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
