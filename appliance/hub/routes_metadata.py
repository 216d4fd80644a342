"""Metadata reads over the in-memory index, with DHIS2's fields/filter/order/paging."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..dhis2 import query
from ..errors import BadRequest, Forbidden, NotFound
from ..store.metadata import TYPES, MetadataIndex, deleted_since
from ..store.users import user_docs
from .routes_system import server_date
from .web import STORE, Handler, add_api, index_of, json_response, paged, user_of

# Collections a 2.41 server has that the hub holds nothing of: served as empty lists so
# clients that ask (the Android SDK's metadata download) get a well-formed answer.
EMPTY = ("optionGroups", "trackedEntityInstanceFilters", "eventFilters",
         "programStageWorkingLists", "visualizations", "eventVisualizations",
         "programIndicators", "indicators", "indicatorTypes", "legendSets", "attributes",
         "expressionDimensionItems", "icons", "dataElementGroups", "userGroups",
         "dataApprovalWorkflows", "programStageSections", "programSections", "dataEntryForms",
         "categoryOptionGroups", "categoryOptionGroupSets", "organisationUnitGroupSets",
         "dataElementGroupSets", "indicatorGroups", "maps", "dashboards", "reports")

KLASS = {"organisationUnits": "OrganisationUnit", "dataElements": "DataElement",
         "dataSets": "DataSet", "categoryOptions": "CategoryOption", "categories": "Category",
         "categoryCombos": "CategoryCombo", "categoryOptionCombos": "CategoryOptionCombo",
         "optionSets": "OptionSet", "options": "Option", "validationRules": "ValidationRule",
         "sections": "Section", "constants": "Constant", "userRoles": "UserRole", "users": "User",
         "organisationUnitLevels": "OrganisationUnitLevel",
         "organisationUnitGroups": "OrganisationUnitGroup",
         "minMaxDataElements": "MinMaxDataElement", "programs": "Program",
         "programStages": "ProgramStage", "trackedEntityTypes": "TrackedEntityType",
         "trackedEntityAttributes": "TrackedEntityAttribute", "programRules": "ProgramRule",
         "programRuleVariables": "ProgramRuleVariable",
         "programRuleActions": "ProgramRuleAction", "relationshipTypes": "RelationshipType"}

_FULL_ACCESS = {"read": True, "update": True, "externalize": False, "delete": False,
                "write": True, "manage": False,
                "data": {"read": True, "write": True}}


def decorate(index: MetadataIndex) -> None:
    """Add the computed properties DHIS2 serves (display names, access, tree links, the
    programs run at each org unit), once."""
    ou_programs: dict[str, list[dict[str, str]]] = {}
    for prog in index.by_type.get("programs", []):
        for ref in prog.get("organisationUnits") or []:
            if isinstance(ref, dict) and "id" in ref:
                ou_programs.setdefault(ref["id"], []).append({"id": prog["id"]})
    for type_, docs in index.by_type.items():
        for d in docs:
            if "name" in d:
                d.setdefault("displayName", d["name"])
            if "shortName" in d:
                d.setdefault("displayShortName", d["shortName"])
            if type_ in ("dataElements",):
                d.setdefault("displayFormName", d.get("formName") or d.get("name"))
            d.setdefault("access", _FULL_ACCESS)
            if type_ == "organisationUnits":
                d["children"] = [{"id": c} for c in index.children.get(d["id"], [])]
                parts = [p for p in (d.get("path") or "").split("/") if p]
                d["ancestors"] = [{"id": p} for p in parts[:-1]]
                d.setdefault("leaf", not d["children"])
                d["programs"] = ou_programs.get(d["id"], [])
            if type_ == "categoryCombos":
                d.setdefault("isDefault", d.get("name") == "default")


def _docs(index: MetadataIndex, collection: str, request: web.Request) -> list[dict[str, Any]]:
    if collection in EMPTY:
        return []
    docs = index.list(collection)
    if collection == "validationRules" and "dataSet" in request.query:
        ds = index.get(request.query["dataSet"])
        if ds is None:
            raise NotFound(f"DataSet with id {request.query['dataSet']} could not be found.")
        des = index.ds_elements.get(ds["id"], set())
        docs = [r for r in docs if any(
            de in (r.get("leftSide", {}).get("expression", "") +
                   r.get("rightSide", {}).get("expression", "")) for de in des)]
    if collection == "organisationUnits":
        level = request.query.get("level")
        if level:
            try:
                lv = int(level)
            except ValueError:
                raise BadRequest("level must be a number") from None
            docs = [d for d in docs if d.get("level") == lv]
        if request.query.get("userOnly") == "true":
            roots = set(user_of(request).org_units)
            docs = [d for d in docs if d["id"] in roots]
    return docs


def _is_collection(name: str) -> bool:
    return name in TYPES or name in EMPTY


async def get_collection(request: web.Request) -> web.Response:
    collection = request.match_info["collection"]
    if not _is_collection(collection):
        raise NotFound(f"No resource at {request.method} {request.path}")
    index = index_of(request)
    q = request.query
    docs = _docs(index, collection, request)
    pred = query.parse_filters(q.getall("filter", []), q.get("rootJunction", "AND"))
    docs = [d for d in docs if pred(d, index.get)]
    order = q.get("order")
    if order:
        docs = query.sort(docs, query.parse_order(order), index.get)
    spec = query.parse_fields(q.get("fields"))
    body = paged(request, collection, docs, links=True,
                 shape=lambda page: query.project_all(page, spec, index.get))
    return json_response(body)


async def get_object(request: web.Request) -> web.Response:
    collection, uid = request.match_info["collection"], request.match_info["uid"]
    if not _is_collection(collection):
        raise NotFound(f"No resource at {request.method} {request.path}")
    index = index_of(request)
    doc = index.get_typed(collection, uid)
    if doc is None:
        raise NotFound(f"{KLASS.get(collection, collection)} with id {uid} could not be found.")
    spec = query.parse_fields(request.query.get("fields"), default=":all")
    return json_response(query.project(doc, spec, index.get))


async def get_metadata(request: web.Request) -> web.Response:
    index = index_of(request)
    q = request.query
    wanted = [t for t in TYPES if q.get(t) == "true"] or [t for t in TYPES if t != "users"]
    spec = query.parse_fields(q.get("fields"), default=":owner")
    # as DHIS2's export: ``filter`` applies to every type (the hub's metadata check asks
    # ``filter=lastUpdated:ge:...&fields=id`` across its collections)
    pred = query.parse_filters(q.getall("filter", []), q.get("rootJunction", "AND"))
    body: dict[str, Any] = {"system": {"date": server_date()}}
    for t in wanted:
        docs = index.list(t)
        if t == "users" and not docs and user_of(request).is_superuser:
            # users live in their own table (as /api/users serves them: no passwords)
            docs = await request.app[STORE].read(user_docs)
        docs = [d for d in docs if pred(d, index.get)]
        if docs:
            body[t] = query.project_all(docs, spec, index.get)
    return json_response(body)


async def refuse_metadata_import(request: web.Request) -> web.Response:
    """The hub's metadata is owned by national and arrives by sync."""
    raise Forbidden("Metadata is managed at national and reaches this hub by sync")


async def deleted_objects(request: web.Request) -> web.Response:
    q = request.query
    klasses = set(q.getall("klass", []))
    since = q.get("deletedAt")

    def read(conn: Any) -> list[dict[str, Any]]:
        rows = deleted_since(conn, since)
        return [{"klass": KLASS.get(t, t), "uid": u, "deletedAt": at} for t, u, at in rows
                if not klasses or KLASS.get(t, t) in klasses]
    items = await request.app[STORE].read(read)
    return json_response(paged(request, "deletedObjects", items))


async def category_option_org_units(request: web.Request) -> web.Response:
    ids = [i for v in request.query.getall("categoryOptions", []) for i in v.split(",") if i]
    index = index_of(request)
    return json_response({i: [o["id"] for o in (index.get(i) or {}).get("organisationUnits") or []]
                          for i in ids})


def setup(app: web.Application, *, metadata_import: Handler = refuse_metadata_import) -> None:
    add_api(app, "GET", "/metadata", get_metadata)
    add_api(app, "POST", "/metadata", metadata_import)
    add_api(app, "GET", "/deletedObjects", deleted_objects)
    add_api(app, "GET", "/categoryOptions/orgUnits", category_option_org_units)
    add_api(app, "GET", "/{collection:[a-zA-Z]+}", get_collection)
    add_api(app, "GET", "/{collection:[a-zA-Z]+}/{uid:[a-zA-Z][a-zA-Z0-9]{10}}", get_object)
