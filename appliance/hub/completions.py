"""completeDataSetRegistrations: check each (data set, period, org unit, AOC) key before it
is stored, for POST (register) and DELETE (un-register).

dhis2-core's ``DefaultCompleteDataSetRegistrationExchangeService`` reports these refusals
as conflicts without error codes, falls back to the default AOC for an unknown one and
checks the AOC's combo and the period type only when ``strictAttributeOptionCombos`` /
``strictPeriods`` are on. The hub always checks them (as for values, see
``dataimport.ALWAYS_STRICT``) and tags each refusal with the ``ErrorCode`` of the same rule
in the value import, so clients and the sync push can tell them apart.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..dhis2 import periods
from ..store.metadata import MetadataIndex
from ..store.users import User
from . import dataimport

KeyConflict = dataimport.KeyConflict  # code, object, message, property

_STRING_FIELDS = ("dataSet", "period", "organisationUnit", "orgUnit", "attributeOptionCombo",
                  "storedBy")


@dataclass(frozen=True)
class Key:
    ds: str
    pe: str
    ou: str
    aoc: str


@dataclass
class Checked:
    """Registrations that passed, as ``datavalues.register_complete`` takes them, and the
    conflicts (with the payload indexes) of those that did not."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    result: dataimport.Validated = field(default_factory=dataimport.Validated)


def _shown(v: Any) -> str:
    text = json.dumps(v, default=str, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def _not_valid(prop: str, v: Any, expected: str) -> KeyConflict:
    # E4027 "Value `{0}` is not a valid for property `{1}`", with what the property takes
    return ("E4027", prop, f"Value `{_shown(v)}` is not a valid for property `{prop}`: "
            f"expected {expected}", prop)


def type_conflicts(r: dict[str, Any]) -> list[KeyConflict]:
    """A registration's fields of the wrong JSON type (null counts as absent)."""
    out = [_not_valid(k, r[k], "a string") for k in _STRING_FIELDS
           if r.get(k) is not None and not isinstance(r[k], str)]
    d = r.get("date")  # "" means now, as DHIS2's hasDate()
    if d not in (None, "") and (not isinstance(d, str) or dataimport.completion_date(d) is None):
        out.append(_not_valid("date", d, "a date yyyy-MM-dd or an ISO timestamp"))
    c = r.get("completed")
    if c is not None and not isinstance(c, bool):
        out.append(_not_valid("completed", c, "true or false"))
    return out


class KeyRules:
    """Checks one user's completion keys against one metadata index, in dhis2-core's order
    (found, hierarchy, strict AOC combo, AOC dates and org units, strict period type, data
    write sharing of the AOC's options), then the data set's expiry days."""

    def __init__(self, index: MetadataIndex, user: User, now: datetime) -> None:
        self.index, self.user, self.now = index, user, now
        self.options = dataimport.OptionRules(index, user)
        self.default_aoc = index.default_coc or ""

    def check(self, ds_id: str, pe_id: str, ou_id: str, aoc_id: str | None, *,
              expiry: bool = True) -> Key | tuple[KeyConflict, ...]:
        """The key, or why it is refused. ``aoc_id`` None is the default AOC."""
        index = self.index
        ds = index.get_typed("dataSets", ds_id)
        if ds is None:
            return (("E7600", ds_id, f"Data set not found or not accessible: `{ds_id}`",
                     "dataSet"),)
        try:
            period = periods.parse_period(pe_id)
        except ValueError:
            return (("E7611", pe_id, f"Period not valid: `{pe_id}`", "period"),)
        if index.get_typed("organisationUnits", ou_id) is None:
            return (("E7612", ou_id, f"Organisation unit not found or not accessible: `{ou_id}`",
                     "organisationUnit"),)
        aoc = aoc_id or self.default_aoc
        if aoc_id and index.get_typed("categoryOptionCombos", aoc_id) is None:
            return (("E7615", aoc_id, "Attribute option combo not found or not accessible for "
                     f"writing data: `{aoc_id}`", "attributeOptionCombo"),)
        if not self.user.can_write(index, ou_id):
            return (("E7617", ou_id, f"Organisation unit: `{ou_id}` not in hierarchy of current "
                     f"user: `{self.user.uid}`", "organisationUnit"),)
        # the default AOC ("no attribute") stays allowed, as for values (dataimport, E7635)
        if aoc != self.default_aoc and aoc not in index.ds_aocs.get(ds["id"], ()):
            combo = (ds.get("categoryCombo") or {}).get("id") or index.default_combo
            return (("E7635", aoc, f"Attribute option combo: `{aoc}` must have category combo: "
                     f"`{combo}`", "attributeOptionCombo"),)
        if self.options.check_limits:
            blocked = dataimport.aoc_block(self.options, [ds["id"]], True, period, pe_id, ou_id,
                                           ou_id, aoc, aoc)
            if blocked is not None:
                return (blocked,)
        if index.ds_period_type.get(ds["id"]) != period.period_type:
            return (("E7632", pe_id, f"Period type of period: `{pe_id}` is not equal to the "
                     f"period type of data set: `{ds.get('periodType')}`", "period"),)
        if self.options.check_sharing and aoc_id:
            denied = self.options.not_writable(aoc)
            if denied:
                return tuple(("E7616", aoc_id, f"Attribute option combo: `{aoc_id}` option not "
                              f"accessible: `{opt}`", "attributeOptionCombo") for opt in denied)
        if expiry and not self.user.has("F_EDIT_EXPIRED") and periods.is_expired(
                period, int(ds.get("expiryDays") or 0), self.now):
            return (("E7640", pe_id, f"Current date is past expiry days for period: `{pe_id}`  "
                     f"and data set: `{ds['id']}`", "period"),)
        return Key(ds["id"], period.id, ou_id, aoc)


def check_registrations(items: list[dict[str, Any]], *, index: MetadataIndex, user: User,
                        now: datetime) -> Checked:
    """POST: each registration's field types first, then its key (``KeyRules``), then its
    storedBy; a refused one is stored not at all."""
    out = Checked()
    rules = KeyRules(index, user, now)
    for i, r in enumerate(items):
        found = type_conflicts(r)
        if not found:
            stored_by = r.get("storedBy")
            checked = rules.check(r.get("dataSet") or "", r.get("period") or "",
                                  r.get("organisationUnit") or r.get("orgUnit") or "",
                                  r.get("attributeOptionCombo") or None)
            if not isinstance(checked, Key):
                found = list(checked)
            elif stored_by is not None and len(stored_by) > dataimport.MAX_STORED_BY:
                found = [("E7637", stored_by[:60], "Invalid storedBy: "
                          "stored_by_length_greater_than_max_length", "storedBy")]
            else:
                when = r.get("date")
                out.rows.append({"ds": checked.ds, "pe": checked.pe, "ou": checked.ou,
                                 "aoc": checked.aoc,
                                 "date": dataimport.completion_date(when) if when else None,
                                 "storedBy": stored_by or None,
                                 "completed": r.get("completed") is not False})
                continue
        for code, obj, message, prop in found:
            out.result.conflict(i, code, obj, message, prop)
    return out


def check_deletions(dss: list[str], pes: list[str], ous: list[str], aoc: str | None, *,
                    index: MetadataIndex, user: User, now: datetime
                    ) -> list[Key] | KeyConflict:
    """DELETE: every (data set, period, org unit) the parameters name, or the first refusal
    (DHIS2 answers these with one 409). Expiry is not checked, as before."""
    rules = KeyRules(index, user, now)
    keys = []
    for ou in ous:
        for ds in dss:
            for pe in pes:
                checked = rules.check(ds, pe, ou, aoc, expiry=False)
                if not isinstance(checked, Key):
                    return checked[0]
                keys.append(checked)
    return keys
