"""Build the national demo metadata document from ``catalog`` and write ``data/national.json``.

Run ``python -m appliance.demo.generate`` after editing ``catalog.py``; the output is
committed so that the hub never generates metadata at start-up. Running it twice
gives byte-identical output (hash-derived UIDs, fixed timestamps, no randomness).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
import sys
import uuid
from pathlib import Path
from typing import Any

from . import bangla
from . import catalog as c
from . import registers as r
from .values import expected_cell_mean

Obj = dict[str, Any]

OUT = Path(__file__).parent / "data" / "national.json"

TRACKER_KEYS = (
    "trackedEntityAttributes", "trackedEntityTypes", "programs", "programStages",
    "programRuleVariables", "programRules", "programRuleActions", "relationshipTypes",
)
# What the demo grants on tracker metadata: read/write it, and read/write its data.
ACCESS = {"read": True, "update": True, "externalize": False, "delete": False, "write": True,
          "manage": False, "data": {"read": True, "write": True}}
SHARING = {"public": "rwrw----", "external": False, "users": {}, "userGroups": {}}


def _ref(uid: str) -> Obj:
    return {"id": uid}


def _base(uid: str, name: str, code: str | None = None, short: str | None = None) -> Obj:
    """Identifiable-object fields every DHIS2 metadata object carries."""
    obj: Obj = {"id": uid}
    if code is not None:
        obj["code"] = code
    obj["name"] = name
    obj["displayName"] = name
    if short is not None:
        obj["shortName"] = short
        obj["displayShortName"] = short
    obj["created"] = c.CREATED
    obj["lastUpdated"] = c.LAST_UPDATED
    return obj


def _frac(*parts: str) -> float:
    """A stable number in [0, 1) derived from names (for dates and coordinates)."""
    d = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return int.from_bytes(d[:8], "big") / 2**64


class _Builder:
    def __init__(self) -> None:
        self.doc: dict[str, Any] = {
            "system": {
                "id": str(uuid.UUID(hashlib.sha256(b"upazila-hub-demo").hexdigest()[:32])),
                "rev": "upazila-hub-demo",
                "version": "2.41.3",
                "date": c.LAST_UPDATED,
            },
            **{k: [] for k in (
                "organisationUnits", "organisationUnitLevels", "organisationUnitGroups",
                "categoryOptions", "categories", "categoryCombos", "categoryOptionCombos",
                "dataElements", "dataSets", "sections", "optionSets", "options",
                "validationRules", "minMaxDataElements", "constants", "userRoles", "users",
                *TRACKER_KEYS,
            )},
        }
        self.ous: dict[tuple[str, ...], Obj] = {}
        self.path_of: dict[str, tuple[str, ...]] = {}  # uid -> name path
        self.clinics: list[Obj] = []  # community clinics, hierarchy order
        self.uhcs: list[Obj] = []
        self.coc_by_name: dict[tuple[str, str], str] = {}  # (combo key, coc name) -> uid
        self.combo_uid: dict[str, str] = {}
        self.de_uid: dict[str, str] = {}
        self.ds_uid: dict[str, str] = {}
        self.const_uid: dict[str, str] = {}
        self.role_uid: dict[str, str] = {}
        self.os_uids: dict[str, str] = {}
        self.tea_uid: dict[str, str] = {}

    # ------------------------------------------------------------ org units
    def _ou(self, path: tuple[str, ...], code: str, short: str | None = None,
            opening: str = "1971-12-16T00:00:00.000") -> Obj:
        uid = c.ou_uid(path)
        parent = self.ous.get(path[:-1])
        ou = _base(uid, path[-1], code, short or path[-1])
        ou["level"] = len(path)
        ou["path"] = (parent["path"] if parent else "") + "/" + uid
        if parent:
            ou["parent"] = _ref(parent["id"])
        ou["openingDate"] = opening
        ou["organisationUnitGroups"] = []
        ou["dataSets"] = []
        self.ous[path] = ou
        self.path_of[uid] = path
        self.doc["organisationUnits"].append(ou)
        return ou

    def _facility(self, path: tuple[str, ...], code: str, short: str, opening: str,
                  center: tuple[float, float]) -> Obj:
        ou = self._ou(path, code, short, opening)
        # Deterministic point within ~6 km of the upazila center: maps look plausible.
        lon = center[0] + (_frac("lon", *path) - 0.5) * 0.12
        lat = center[1] + (_frac("lat", *path) - 0.5) * 0.12
        ou["geometry"] = {"type": "Point", "coordinates": [round(lon, 5), round(lat, 5)]}
        return ou

    def org_units(self) -> None:
        root = ("Bangladesh",)
        self._ou(root, "OU_BD")
        for div, div_geo, districts in c.GEOGRAPHY:
            self._ou((*root, div), f"OU_BD_{div_geo}")
            for dist, dist_geo, upazilas in districts:
                self._ou((*root, div, dist), f"OU_BD_{dist_geo}")
                for uz, uz_geo, center, unions in upazilas:
                    uz_path = (*root, div, dist, uz)
                    self._ou(uz_path, f"OU_BD_{uz_geo}", opening="1983-11-07T00:00:00.000")
                    uhc_union = c.RAMU_UHC_UNION if uz == "Ramu" else unions[0][0]
                    for i, (union, villages) in enumerate(unions, start=1):
                        un_path = (*uz_path, union)
                        un_code = f"{uz_geo}{i:02d}"
                        self._ou(un_path, f"OU_BD_{un_code}")
                        if union == uhc_union:
                            uhc = self._facility(
                                (*un_path, f"{uz} UHC"), f"UHC{uz_geo}", f"{uz} UHC",
                                "1982-07-01T00:00:00.000", center)
                            self.uhcs.append(uhc)
                        for j, village in enumerate(villages, start=1):
                            # Community clinics opened 1998-2001, most reopened 2009-2012.
                            year = 2009 + int(_frac("open", village, union) * 4)
                            cc = self._facility(
                                (*un_path, f"{village} Community Clinic"),
                                f"CC{un_code}{j:02d}", f"{village} CC",
                                f"{year}-0{1 + j % 9}-01T00:00:00.000", center)
                            self.clinics.append(cc)

        for level, name in enumerate(c.LEVELS, start=1):
            lv = _base(c.uid("organisationUnitLevel", name), name)
            lv["level"] = level
            self.doc["organisationUnitLevels"].append(lv)

        for name, code, members in (
            ("Community Clinic", "CC", self.clinics),
            ("Upazila Health Complex", "UHC", self.uhcs),
        ):
            g = _base(c.uid("organisationUnitGroup", name), name, code, name)
            g["organisationUnits"] = [_ref(o["id"]) for o in members]
            for o in members:
                o["organisationUnitGroups"].append(_ref(g["id"]))
            self.doc["organisationUnitGroups"].append(g)

    # ------------------------------------------------------- category model
    def category_model(self) -> None:
        d = self.doc
        opt = _base(c.DEFAULT_OPTION, "default", "default", "default")
        opt["isDefault"] = True
        opt["categories"] = [_ref(c.DEFAULT_CATEGORY)]
        d["categoryOptions"].append(opt)
        cat = _base(c.DEFAULT_CATEGORY, "default", "default", "default")
        cat.update(dataDimensionType="DISAGGREGATION", dataDimension=False,
                   categoryOptions=[_ref(c.DEFAULT_OPTION)], categoryCombos=[])
        d["categories"].append(cat)
        cats: dict[str, Obj] = {"default": cat}
        opt_uid: dict[str, str] = {}
        for key, (name, code, options) in c.CATEGORIES.items():
            cat = _base(c.uid("category", key), name, code, name)
            cat.update(dataDimensionType="DISAGGREGATION", dataDimension=False,
                       categoryOptions=[], categoryCombos=[])
            for oname, ocode, _w in options:
                o = _base(c.uid("categoryOption", oname), oname, ocode, oname)
                o["isDefault"] = False
                o["categories"] = [_ref(cat["id"])]
                d["categoryOptions"].append(o)
                cat["categoryOptions"].append(_ref(o["id"]))
                opt_uid[oname] = o["id"]
            d["categories"].append(cat)
            cats[key] = cat

        combos = {"default": ("default", "default", ["default"])} | c.COMBOS
        for key, (name, code, cat_keys) in combos.items():
            default = key == "default"
            cuid = c.DEFAULT_COMBO if default else c.uid("categoryCombo", key)
            self.combo_uid[key] = cuid
            combo = _base(cuid, name, code)
            combo.update(dataDimensionType="DISAGGREGATION", isDefault=default,
                         skipTotal=False, categories=[_ref(cats[k]["id"]) for k in cat_keys],
                         categoryOptionCombos=[])
            for k in cat_keys:
                cats[k]["categoryCombos"].append(_ref(cuid))
            if default:
                products: list[tuple[str, ...]] = [("default",)]
            else:
                products = list(itertools.product(
                    *[[o[0] for o in c.CATEGORIES[k][2]] for k in cat_keys]))
            for names in products:
                coc_name = ", ".join(names)
                coc_uid = c.DEFAULT_COC if default else c.uid("categoryOptionCombo", key, *names)
                coc = _base(coc_uid, coc_name)
                coc.update(ignoreApproval=False, categoryCombo=_ref(cuid),
                           categoryOptions=[_ref(c.DEFAULT_OPTION if default else opt_uid[n])
                                            for n in names])
                d["categoryOptionCombos"].append(coc)
                combo["categoryOptionCombos"].append(_ref(coc_uid))
                self.coc_by_name[(key, coc_name)] = coc_uid
            d["categoryCombos"].append(combo)

    # ---------------------------------------------------------- option sets
    def option_sets(self) -> dict[str, str]:
        uids = {}
        for key, (name, code, options) in (c.OPTION_SETS | r.OPTION_SETS).items():
            os_ = _base(c.uid("optionSet", key), name, code)
            os_.update(valueType="TEXT", version=1, options=[])
            for i, (ocode, oname) in enumerate(options, start=1):
                o = _base(c.uid("option", key, ocode), oname, ocode)
                o.update(sortOrder=i, optionSet=_ref(os_["id"]))
                self.doc["options"].append(o)
                os_["options"].append(_ref(o["id"]))
            self.doc["optionSets"].append(os_)
            uids[key] = os_["id"]
        return uids

    # ---------------------------------------------------- elements and sets
    def data_sets(self) -> None:
        os_uids = self.os_uids = self.option_sets()
        names: set[str] = set()
        shorts: set[str] = set()
        for form in c.FORMS:
            ds_uid = c.uid("dataSet", form.code)
            self.ds_uid[form.code] = ds_uid
            ds = _base(ds_uid, form.name, form.code, form.short)
            members = self.clinics if form.target == "cc" else self.uhcs
            ds.update(
                periodType="Monthly", categoryCombo=_ref(c.DEFAULT_COMBO),
                expiryDays=form.expiry_days, openFuturePeriods=form.open_future,
                timelyDays=form.timely_days, version=1,
                dataInputPeriods=[
                    {"period": {"id": pe}, "openingDate": op, "closingDate": cl}
                    for pe, op, cl in form.input_periods
                ],
                dataSetElements=[], organisationUnits=[_ref(o["id"]) for o in members],
                sections=[], compulsoryDataElementOperands=[], indicators=[],
                fieldCombinationRequired=False, validCompleteOnly=False,
                noValueRequiresComment=False, compulsoryFieldsCompleteOnly=False,
                skipOffline=False, dataElementDecoration=False, notifyCompletingUser=False,
                renderAsTabs=True, renderHorizontally=False, mobile=False,
            )
            for o in members:
                o["dataSets"].append(_ref(ds_uid))
            for order, (sec_name, des) in enumerate(form.sections, start=1):
                sec = _base(c.uid("section", form.code, sec_name), sec_name,
                            f"{form.code}_S{order}")
                sec.update(description=f"{form.name}: {sec_name}", sortOrder=order,
                           showRowTotals=False, showColumnTotals=False, dataSet=_ref(ds_uid),
                           dataElements=[], greyedFields=[])
                for spec in des:
                    de = self._data_element(form, spec, os_uids)
                    assert de["name"] not in names and de["shortName"] not in shorts, de
                    names.add(de["name"])
                    shorts.add(de["shortName"])
                    sec["dataElements"].append(_ref(de["id"]))
                    ds["dataSetElements"].append(
                        {"dataElement": _ref(de["id"]), "dataSet": _ref(ds_uid)})
                self.doc["sections"].append(sec)
                ds["sections"].append(_ref(sec["id"]))
            self.doc["dataSets"].append(ds)

    def _data_element(self, form: c.Form, spec: c.DE, os_uids: dict[str, str]) -> Obj:
        uid = c.uid("dataElement", spec.code)
        self.de_uid[spec.code] = uid
        name = form.prefix + spec.form_name
        short = form.prefix + (spec.short or spec.form_name)
        assert len(short) <= 50, short  # DHIS2's shortName limit
        de = _base(uid, name, spec.code, short)
        de["formName"] = spec.form_name
        de["displayFormName"] = spec.form_name
        vt = spec.value_type
        agg = spec.aggregation or {
            "PERCENTAGE": "AVERAGE", "TEXT": "NONE", "LONG_TEXT": "NONE", "DATE": "NONE",
        }.get(vt, "SUM")
        de.update(domainType="AGGREGATE", valueType=vt, aggregationType=agg,
                  zeroIsSignificant=spec.zero_sig, optionSetValue=spec.option_set is not None,
                  categoryCombo=_ref(self.combo_uid[spec.combo]))
        if spec.option_set:
            de["optionSet"] = _ref(os_uids[spec.option_set])
        self.doc["dataElements"].append(de)
        return de

    # ------------------------------------------------------- rules and misc
    def constants(self) -> None:
        for code, name, value in c.CONSTANTS:
            k = _base(c.uid("constant", code), name, code, name)
            k["description"] = name
            k["value"] = value
            self.const_uid[code] = k["id"]
            self.doc["constants"].append(k)

    def _expr(self, template: str) -> str:
        def de(m: re.Match[str]) -> str:
            code, _, coc = m.group(1).partition(".")
            if not coc:
                return "#{" + self.de_uid[code] + "}"
            combo = c.ELEMENTS[code].combo
            return "#{" + self.de_uid[code] + "." + self.coc_by_name[(combo, coc)] + "}"

        out = re.sub(r"#\{([^}]+)\}", de, template)
        return re.sub(r"C\{([^}]+)\}", lambda m: "C{" + self.const_uid[m.group(1)] + "}", out)

    def validation_rules(self) -> None:
        for code, name, importance, left, op, right in c.RULES:
            vr = _base(c.uid("validationRule", code), name, code)
            vr.update(
                description=name, instruction=f"Check the register: {name}.",
                importance=importance, operator=op, periodType="Monthly",
                leftSide={"expression": self._expr(left[0]), "description": left[1],
                          "missingValueStrategy": left[2], "slidingWindow": False},
                rightSide={"expression": self._expr(right[0]), "description": right[1],
                           "missingValueStrategy": right[2], "slidingWindow": False},
                organisationUnitLevels=[len(c.LEVELS)], skipFormValidation=False,
            )
            self.doc["validationRules"].append(vr)

    def min_max(self) -> None:
        combos = {k: [n for (ck, n) in self.coc_by_name if ck == k] for k in self.combo_uid}
        for cc in self.clinics:
            if self.path_of[cc["id"]][3] not in c.MINMAX_UPAZILAS:
                continue
            for code in c.MINMAX_ELEMENTS:
                combo = c.ELEMENTS[code].combo
                for coc_name in combos[combo]:
                    mu = expected_cell_mean(code, coc_name.split(", "), cc["id"])
                    coc = self.coc_by_name[(combo, coc_name)]
                    self.doc["minMaxDataElements"].append({
                        # DHIS2 gives min/max no UID; the hub's store keys every object
                        # by id, so derive one from the natural key (clients ignore it).
                        "id": c.uid("minMaxDataElement", cc["id"], code, coc),
                        "source": _ref(cc["id"]),
                        "dataElement": _ref(self.de_uid[code]),
                        "optionCombo": _ref(coc),
                        "min": max(0, math.floor(mu * 0.4 - 1)),
                        "max": math.ceil(mu * 2.0 + 3),
                        "generated": False,
                    })

    def users(self) -> None:
        for key, (name, auths) in c.ROLES.items():
            r = _base(c.uid("userRole", key), name)
            r["description"] = name
            r["authorities"] = auths
            self.role_uid[key] = r["id"]
            self.doc["userRoles"].append(r)
        for username, (first, last, path, role, email) in c.USERS.items():
            ous = [_ref(self.ous[path]["id"])]
            search = [_ref(self.ous[c.TEI_SEARCH.get(username, path)]["id"])]
            roles = [_ref(self.role_uid[role])]
            u = _base(c.uid("user", username), f"{first} {last}", username)
            u.update(
                username=username, firstName=first, surname=last, email=email,
                disabled=False, userRoles=roles, userGroups=[], organisationUnits=ous,
                dataViewOrganisationUnits=list(ous), teiSearchOrganisationUnits=search,
                # Pre-2.38 clients read username and roles from userCredentials.
                userCredentials={"id": c.uid("userCredentials", username),
                                 "username": username, "userRoles": list(roles),
                                 "disabled": False, "externalAuth": False},
            )
            self.doc["users"].append(u)

    # --------------------------------------------------------------- tracker
    def tracker(self) -> None:
        """The Person type, its attributes, the three registers and Mother - child."""
        d = self.doc
        for a in r.ATTRIBUTES:
            tea = _base(c.uid("trackedEntityAttribute", a.code), a.name, a.code, a.short)
            tea.update(
                description=a.description or a.name, formName=a.name, valueType=a.value_type,
                aggregationType="NONE", unique=a.unique, generated=a.generated,
                pattern=a.pattern, orgunitScope=False, confidential=False, inherit=False,
                displayInListNoProgram=a.code in ("BD_NAME_BN", "BD_NAME_EN", "BD_VILLAGE"),
                optionSetValue=a.option_set is not None, skipSynchronization=False,
            )
            if a.option_set:
                tea["optionSet"] = _ref(self.os_uids[a.option_set])
            self.tea_uid[a.code] = tea["id"]
            d["trackedEntityAttributes"].append(tea)

        tet = _base(c.uid("trackedEntityType", r.TET_NAME), r.TET_NAME, "BD_PERSON", r.TET_NAME)
        tet.update(
            description="A person registered at a community clinic or UHC.",
            featureType="NONE", allowAuditLog=False, minAttributesRequiredToSearch=1,
            maxTeiCountToReturn=50, access=ACCESS, sharing=SHARING,
            trackedEntityTypeAttributes=[{
                "id": c.uid("trackedEntityTypeAttribute", a.code),
                "trackedEntityType": _ref(tet["id"]),
                "trackedEntityAttribute": _ref(self.tea_uid[a.code]),
                "valueType": a.value_type, "displayInList": a.code in (
                    "BD_NAME_BN", "BD_NAME_EN", "BD_RELATION_NAME", "BD_VILLAGE"),
                "mandatory": False, "searchable": a.code in (
                    "BD_NAME_BN", "BD_NAME_EN", "BD_PHONE", "BD_BRN"),
            } for a in r.ATTRIBUTES],
        )
        d["trackedEntityTypes"].append(tet)

        facilities = [_ref(o["id"]) for o in self.clinics + self.uhcs]
        for p in r.PROGRAMS:
            self._program(p, tet["id"], facilities)

        for code, name, from_to, to_from in r.RELATIONSHIP_TYPES:
            rt = _base(c.uid("relationshipType", code), name, code)
            constraint = {"relationshipEntity": "TRACKED_ENTITY_INSTANCE",
                          "trackedEntityType": _ref(tet["id"])}
            rt.update(description=f"{from_to} / {to_from}", fromToName=from_to,
                      toFromName=to_from, bidirectional=True, referral=False,
                      fromConstraint=dict(constraint), toConstraint=dict(constraint),
                      access=ACCESS, sharing=SHARING)
            d["relationshipTypes"].append(rt)

    def _program(self, p: r.Program, tet: str, facilities: list[Obj]) -> None:
        d = self.doc
        puid = c.uid("program", p.code)
        de_uid: dict[str, str] = {}
        for spec in p.elements:
            name = p.prefix + spec.form_name
            short = p.prefix + (spec.short or spec.form_name)
            assert len(short) <= 50, short
            de = _base(c.uid("dataElement", spec.code), name, spec.code, short)
            de.update(formName=spec.form_name, displayFormName=spec.form_name,
                      domainType="TRACKER", valueType=spec.value_type, aggregationType="NONE",
                      zeroIsSignificant=False, optionSetValue=spec.option_set is not None,
                      categoryCombo=_ref(c.DEFAULT_COMBO))
            if spec.option_set:
                de["optionSet"] = _ref(self.os_uids[spec.option_set])
            de_uid[spec.code] = de["id"]
            self.de_uid[spec.code] = de["id"]
            d["dataElements"].append(de)

        stage_uid = {s.code: c.uid("programStage", s.code) for s in p.stages}
        for order, s in enumerate(p.stages, start=1):
            st = _base(stage_uid[s.code], s.name, s.code)
            st.update(
                description=s.description, program=_ref(puid), sortOrder=order,
                repeatable=s.repeatable, minDaysFromStart=s.min_days,
                generatedByEnrollmentDate=False, autoGenerateEvent=s.auto_generate,
                openAfterEnrollment=False, reportDateToUse="incidentDate",
                allowGenerateNextVisit=s.repeatable, displayGenerateEventBox=s.repeatable,
                remindCompleted=False, hideDueDate=False, blockEntryForm=False,
                enableUserAssignment=False, executionDateLabel="Visit date",
                dueDateLabel="Due date", validationStrategy="ON_COMPLETE", featureType="NONE",
                formType="DEFAULT", preGenerateUID=False, access=ACCESS, sharing=SHARING,
                programStageSections=[],
                programStageDataElements=[{
                    "id": c.uid("programStageDataElement", s.code, de),
                    "programStage": _ref(stage_uid[s.code]), "dataElement": _ref(de_uid[de]),
                    "compulsory": compulsory, "allowProvidedElsewhere": False,
                    "displayInReports": compulsory, "allowFutureDate": de.endswith(
                        "NEXT_VISIT"), "renderOptionsAsRadio": False, "skipSynchronization":
                    False, "skipAnalytics": False, "sortOrder": i,
                } for i, (de, compulsory) in enumerate(s.elements, start=1)],
            )
            if s.interval is not None:
                st["standardInterval"] = s.interval
            d["programStages"].append(st)

        var_uid = {v.name: c.uid("programRuleVariable", p.code, v.name) for v in p.variables}
        for v in p.variables:
            prv = _base(var_uid[v.name], v.name)
            prv.update(program=_ref(puid), programRuleVariableSourceType=v.source,
                       useCodeForOptionSet=True)
            if v.de:
                prv["dataElement"] = _ref(de_uid[v.de])
            if v.attr:
                prv["trackedEntityAttribute"] = _ref(self.tea_uid[v.attr])
            d["programRuleVariables"].append(prv)

        for rule in p.rules:
            ruid = c.uid("programRule", p.code, rule.code)
            pr = _base(ruid, f"{p.short}: {rule.name}")
            pr.update(description=rule.name, condition=rule.condition, priority=rule.priority,
                      program=_ref(puid), programRuleActions=[])
            if rule.stage:
                pr["programStage"] = _ref(stage_uid[rule.stage])
            for i, a in enumerate(rule.actions):
                act: Obj = {"id": c.uid("programRuleAction", p.code, rule.code, str(i)),
                            "created": c.CREATED, "lastUpdated": c.LAST_UPDATED,
                            "programRuleActionType": a.kind, "programRule": _ref(ruid)}
                if a.de:
                    act["dataElement"] = _ref(de_uid[a.de])
                if a.attr:
                    act["trackedEntityAttribute"] = _ref(self.tea_uid[a.attr])
                if a.content:
                    act["content"] = a.content
                if a.data:
                    act["data"] = a.data
                d["programRuleActions"].append(act)
                pr["programRuleActions"].append(_ref(act["id"]))
            d["programRules"].append(pr)

        prog = _base(puid, p.name, p.code, p.short)
        prog.update(
            description=p.description, programType="WITH_REGISTRATION", version=1,
            trackedEntityType=_ref(tet), categoryCombo=_ref(c.DEFAULT_COMBO),
            accessLevel="PROTECTED", access=ACCESS, sharing=SHARING,
            incidentDateLabel=p.incident_label, enrollmentDateLabel=p.enrollment_label,
            displayIncidentDate=True, selectIncidentDatesInFuture=False,
            selectEnrollmentDatesInFuture=False, onlyEnrollOnce=p.only_enroll_once,
            ignoreOverdueEvents=False, useFirstStageDuringRegistration=False,
            displayFrontPageList=True, skipOffline=False, featureType="NONE",
            expiryDays=0, completeEventsExpiryDays=0, openDaysAfterCoEndDate=0,
            minAttributesRequiredToSearch=1, maxTeiCountToReturn=50,
            style={"color": p.color, "icon": p.icon},
            programStages=[_ref(stage_uid[s.code]) for s in p.stages],
            programTrackedEntityAttributes=[{
                "id": c.uid("programTrackedEntityAttribute", p.code, code),
                "program": _ref(puid), "trackedEntityAttribute": _ref(self.tea_uid[code]),
                "mandatory": mandatory, "searchable": searchable, "displayInList": in_list,
                "sortOrder": i, "allowFutureDate": False, "renderOptionsAsRadio": False,
            } for i, (code, mandatory, searchable, in_list) in enumerate(p.attributes, start=1)],
            programRuleVariables=[_ref(var_uid[v.name]) for v in p.variables],
            programSections=[], organisationUnits=list(facilities),
        )
        d["programs"].append(prog)


def build() -> dict[str, Any]:
    """The whole national document (fresh objects on every call)."""
    b = _Builder()
    b.org_units()
    b.category_model()
    b.data_sets()
    b.constants()
    b.validation_rules()
    b.min_max()
    b.users()
    b.tracker()
    bangla.translate(b.doc)  # Bangla for every name a CHCP reads (issue 14)
    return b.doc


def dumps(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=1, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    out = Path(args[0]) if args else OUT
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(dumps(build()), encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
