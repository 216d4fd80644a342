"""The part of a national metadata document that one hub holds.

``subset_for`` is the rule the sync worker applies to a real national metadata pull
(``metadata.py``); the demo hub is cut from the national demo by the same function. It
only relies on DHIS2 property names, never on demo codes.
"""

from __future__ import annotations

import copy
import re
from typing import Any

Doc = dict[str, Any]
Obj = dict[str, Any]

# "#{deUid}", "#{deUid.cocUid}", "#{deUid.*.aocUid}": the first UID is a data element.
_DE_REF = re.compile(r"#\{([A-Za-z][A-Za-z0-9]{10})")

# Collections this module knows how to cut down; any other top-level key is passed
# through unchanged so that nothing the hub does not understand yet dangles.
_HANDLED = {
    "system", "organisationUnits", "organisationUnitLevels", "organisationUnitGroups",
    "categoryOptions", "categories", "categoryCombos", "categoryOptionCombos",
    "dataElements", "dataSets", "sections", "optionSets", "options", "validationRules",
    "minMaxDataElements", "constants", "userRoles", "users",
    "trackedEntityAttributes", "trackedEntityTypes", "programs", "programStages",
    "programRuleVariables", "programRules", "programRuleActions", "relationshipTypes",
}


def _ids(refs: list[Obj] | None) -> list[str]:
    return [r["id"] for r in refs or [] if isinstance(r, dict) and "id" in r]


def _trim(obj: Obj, key: str, allowed: set[str]) -> None:
    """Drop references in ``obj[key]`` that point outside ``allowed``."""
    if isinstance(obj.get(key), list):
        obj[key] = [r for r in obj[key] if r.get("id") in allowed]


def _pick(doc: Doc, key: str, ids: set[str]) -> list[Obj]:
    # Deep copies in document order: the caller may mutate the result freely.
    return [copy.deepcopy(o) for o in doc.get(key, []) if o.get("id") in ids]


def subset_for(doc: Doc, root_uid: str) -> Doc:
    """Metadata a hub serving the org unit ``root_uid`` (and its subtree) needs.

    - org units: the subtree, plus its ancestors (for paths and breadcrumbs);
    - data sets assigned to any org unit of the subtree, with ``organisationUnits``
      trimmed to the subtree, their sections and data elements;
    - the category model (combos, their categories, options and COCs) and the option
      sets those data elements and data sets use; the default combo always;
    - validation rules whose data elements are all kept (the hub can evaluate them);
    - every constant, org unit level, org unit group (members trimmed) and user role;
    - min/max ranges whose source is in the subtree;
    - users whose data-capture org units all lie in the subtree;
    - programs assigned to any org unit of the subtree, ``organisationUnits`` trimmed as
      for data sets, with their stages (and the stages' data elements), tracked entity
      type, attributes (the program's and the type's), rule variables, rules and rule
      actions, and the option sets all of those use;
    - relationship types whose constraints name only kept types, programs and stages.

    Pure: ``doc`` is not modified and the result shares no objects with it.
    """
    ous = {o["id"]: o for o in doc.get("organisationUnits", [])}
    if root_uid not in ous:
        raise ValueError(f"org unit {root_uid} is not in the document")
    root_path = ous[root_uid]["path"]
    subtree = {
        uid for uid, o in ous.items()
        if o["path"] == root_path or o["path"].startswith(root_path + "/")
    }
    ancestors = {u for u in root_path.strip("/").split("/") if u != root_uid}
    keep_ou = subtree | ancestors

    # Data sets: assigned from either side of the many-to-many link.
    ds_ids = {d for o in subtree for d in _ids(ous[o].get("dataSets"))}
    ds_ids |= {
        ds["id"] for ds in doc.get("dataSets", [])
        if subtree.intersection(_ids(ds.get("organisationUnits")))
    }
    data_sets = _pick(doc, "dataSets", ds_ids)
    for ds in data_sets:
        _trim(ds, "organisationUnits", subtree)

    de_ids = {dse["dataElement"]["id"] for ds in data_sets
              for dse in ds.get("dataSetElements", [])}
    tracker = _tracker(doc, subtree, ous)
    de_ids |= {psde["dataElement"]["id"] for st in tracker["programStages"]
               for psde in st.get("programStageDataElements", []) if psde.get("dataElement")}
    data_elements = _pick(doc, "dataElements", de_ids)
    sections = [copy.deepcopy(s) for s in doc.get("sections", [])
                if s.get("dataSet", {}).get("id") in ds_ids]

    combo_ids = {c["id"] for c in doc.get("categoryCombos", []) if c.get("isDefault")}
    combo_ids |= {d["categoryCombo"]["id"] for d in data_elements if "categoryCombo" in d}
    combo_ids |= {ds["categoryCombo"]["id"] for ds in data_sets if "categoryCombo" in ds}
    combo_ids |= {p[k]["id"] for p in tracker["programs"]
                  for k in ("categoryCombo", "enrollmentCategoryCombo") if p.get(k)}
    combo_ids |= {dse["categoryCombo"]["id"] for ds in data_sets
                  for dse in ds.get("dataSetElements", []) if dse.get("categoryCombo")}
    combos = _pick(doc, "categoryCombos", combo_ids)
    cat_ids = {i for cc in combos for i in _ids(cc.get("categories"))}
    coc_ids = {i for cc in combos for i in _ids(cc.get("categoryOptionCombos"))}
    coc_ids |= {x["id"] for x in doc.get("categoryOptionCombos", [])
                if x.get("categoryCombo", {}).get("id") in combo_ids}
    categories = _pick(doc, "categories", cat_ids)
    cocs = _pick(doc, "categoryOptionCombos", coc_ids)
    option_ids = {i for cat in categories for i in _ids(cat.get("categoryOptions"))}
    option_ids |= {i for x in cocs for i in _ids(x.get("categoryOptions"))}
    cat_options = _pick(doc, "categoryOptions", option_ids)
    for cat in categories:
        _trim(cat, "categoryCombos", combo_ids)
    for opt in cat_options:
        _trim(opt, "categories", cat_ids)
        _trim(opt, "categoryOptionCombos", coc_ids)
        _trim(opt, "organisationUnits", keep_ou)

    os_ids = {d[k]["id"] for d in data_elements
              for k in ("optionSet", "commentOptionSet") if d.get(k)}
    os_ids |= {a["optionSet"]["id"] for a in tracker["trackedEntityAttributes"]
               if a.get("optionSet")}
    option_sets = _pick(doc, "optionSets", os_ids)
    opt_ids = {i for s in option_sets for i in _ids(s.get("options"))}
    opt_ids |= {o["id"] for o in doc.get("options", [])
                if o.get("optionSet", {}).get("id") in os_ids}

    def rule_kept(vr: Obj) -> bool:
        expr = " ".join(vr.get(side, {}).get("expression", "")
                        for side in ("leftSide", "rightSide"))
        refs = set(_DE_REF.findall(expr))
        return bool(refs) and refs <= de_ids

    org_units = _pick(doc, "organisationUnits", keep_ou)
    for o in org_units:
        _trim(o, "dataSets", ds_ids)
        _trim(o, "children", keep_ou)
    groups = [copy.deepcopy(g) for g in doc.get("organisationUnitGroups", [])]
    for g in groups:
        _trim(g, "organisationUnits", keep_ou)

    users = []
    for u in doc.get("users", []):
        own = _ids(u.get("organisationUnits"))
        if own and set(own) <= subtree:
            u = copy.deepcopy(u)
            for key in ("dataViewOrganisationUnits", "teiSearchOrganisationUnits"):
                _trim(u, key, keep_ou)
            users.append(u)

    out: Doc = {
        "system": copy.deepcopy(doc.get("system", {})),
        "organisationUnits": org_units,
        "organisationUnitLevels": copy.deepcopy(doc.get("organisationUnitLevels", [])),
        "organisationUnitGroups": groups,
        "categoryOptions": cat_options,
        "categories": categories,
        "categoryCombos": combos,
        "categoryOptionCombos": cocs,
        "dataElements": data_elements,
        "dataSets": data_sets,
        "sections": sections,
        "optionSets": option_sets,
        "options": _pick(doc, "options", opt_ids),
        "validationRules": [copy.deepcopy(v) for v in doc.get("validationRules", [])
                            if rule_kept(v)],
        "minMaxDataElements": [
            copy.deepcopy(m) for m in doc.get("minMaxDataElements", [])
            if m["source"]["id"] in subtree and m["dataElement"]["id"] in de_ids
        ],
        "constants": copy.deepcopy(doc.get("constants", [])),
        "userRoles": copy.deepcopy(doc.get("userRoles", [])),
        "users": users,
        **tracker,
    }
    out.update({k: copy.deepcopy(v) for k, v in doc.items() if k not in _HANDLED})
    return out


def _tracker(doc: Doc, subtree: set[str], ous: dict[str, Obj]) -> dict[str, list[Obj]]:
    """The tracker metadata of the programs assigned inside ``subtree`` (see subset_for)."""
    pr_ids = {p for o in subtree for p in _ids(ous[o].get("programs"))}
    pr_ids |= {p["id"] for p in doc.get("programs", [])
               if subtree.intersection(_ids(p.get("organisationUnits")))}
    programs = _pick(doc, "programs", pr_ids)
    for p in programs:
        _trim(p, "organisationUnits", subtree)
    stage_ids = {i for p in programs for i in _ids(p.get("programStages"))}
    stage_ids |= {s["id"] for s in doc.get("programStages", [])
                  if s.get("program", {}).get("id") in pr_ids}
    tet_ids = {p["trackedEntityType"]["id"] for p in programs if p.get("trackedEntityType")}
    tea_ids = {a["trackedEntityAttribute"]["id"] for p in programs
               for a in p.get("programTrackedEntityAttributes", [])
               if a.get("trackedEntityAttribute")}
    types = _pick(doc, "trackedEntityTypes", tet_ids)
    tea_ids |= {a["trackedEntityAttribute"]["id"] for t in types
                for a in t.get("trackedEntityTypeAttributes", []) if a.get("trackedEntityAttribute")}
    rules = [copy.deepcopy(r) for r in doc.get("programRules", [])
             if r.get("program", {}).get("id") in pr_ids]
    rule_ids = {r["id"] for r in rules}
    action_ids = {i for r in rules for i in _ids(r.get("programRuleActions"))}

    def constraint_kept(rt: Obj) -> bool:
        # Every type, program and stage a constraint names is kept (and it names some).
        kept = {"trackedEntityType": tet_ids, "program": pr_ids, "programStage": stage_ids}
        named = [c[k].get("id") in ids
                 for c in (rt.get("fromConstraint") or {}, rt.get("toConstraint") or {})
                 for k, ids in kept.items() if isinstance(c.get(k), dict)]
        return bool(named) and all(named)

    return {
        "trackedEntityAttributes": _pick(doc, "trackedEntityAttributes", tea_ids),
        "trackedEntityTypes": types,
        "programs": programs,
        "programStages": _pick(doc, "programStages", stage_ids),
        "programRuleVariables": [copy.deepcopy(v) for v in doc.get("programRuleVariables", [])
                                 if v.get("program", {}).get("id") in pr_ids],
        "programRules": rules,
        "programRuleActions": [copy.deepcopy(a) for a in doc.get("programRuleActions", [])
                               if a["id"] in action_ids
                               or a.get("programRule", {}).get("id") in rule_ids],
        "relationshipTypes": [copy.deepcopy(rt) for rt in doc.get("relationshipTypes", [])
                              if constraint_kept(rt)],
    }
