"""Metadata reads over the in-memory index, with DHIS2's fields/filter/order/paging."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..dhis2 import query
from ..errors import BadRequest, Forbidden, NotFound
from ..store.metadata import TYPES, MetadataIndex, delete_metadata, put_metadata
from ..webguard import parse_json
from .routes_system import server_date
from .web import ROLE, STATE, STORE, add_api, index_of, json_response, user_of

# Collections a 2.41 server has that the hub holds nothing of: served as empty lists so
# clients that ask (the Android SDK's metadata download) get a well-formed answer.
EMPTY = ("programRules", "programRuleVariables", "programRuleActions", "relationshipTypes",
         "optionGroups", "trackedEntityInstanceFilters", "eventFilters",
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
         "minMaxDataElements": "MinMaxDataElement"}

_FULL_ACCESS = {"read": True, "update": True, "externalize": False, "delete": False,
                "write": True, "manage": False,
                "data": {"read": True, "write": True}}


def decorate(index: MetadataIndex) -> None:
    """Add the computed properties DHIS2 serves (display names, access, tree links), once."""
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
    page_items, pager = query.paginate(docs, paging=q.get("paging", "true"), page=q.get("page", 1),
                                       page_size=q.get("pageSize", 50))
    spec = query.parse_fields(q.get("fields"))
    body: dict[str, Any] = {}
    if pager is not None:
        links: dict[str, Any] = dict(pager)
        url = request.url  # keeps fields/filter/order, as DHIS2's links do
        if pager["page"] < pager["pageCount"]:
            links["nextPage"] = str(url.update_query(page=pager["page"] + 1))
        if pager["page"] > 1:
            links["prevPage"] = str(url.update_query(page=pager["page"] - 1))
        body["pager"] = links
    body[collection] = query.project_all(page_items, spec, index.get)
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
    body: dict[str, Any] = {"system": {"date": server_date()}}
    for t in wanted:
        docs = index.list(t)
        if docs:
            body[t] = query.project_all(docs, spec, index.get)
    return json_response(body)


# The store keeps these properties in columns of their own: anything but text there fails
# the write.
_INDEXED = ("id", "code", "name", "displayName", "path")


def _importable(doc: Any) -> bool:
    return isinstance(doc, dict) and isinstance(doc.get("id"), str) and bool(doc["id"]) and \
        all(doc.get(k) is None or isinstance(doc[k], str) for k in _INDEXED[1:])


async def post_metadata(request: web.Request) -> web.Response:
    """National stand-in only: the hub's metadata is owned by national and arrives by sync."""
    if request.app[ROLE] != "national":
        raise Forbidden("Metadata is managed at national and reaches this hub by sync")
    user = user_of(request)
    if not user.is_superuser:
        raise Forbidden("You need the ALL authority to import metadata")
    # strict and bounded: request.json() recursed on deep bodies, trusted the declared
    # charset and let integers too big for SQLite through (all 500s)
    body = parse_json(await request.read(), what="Metadata import")
    if not isinstance(body, dict):
        raise BadRequest("Metadata import needs a JSON object keyed by collection")
    strategy = request.query.get("importStrategy", "CREATE_AND_UPDATE").upper()
    now = server_date()
    docs: dict[str, list[dict[str, Any]]] = {}
    for t, items in body.items():
        if t == "system":
            continue
        if t not in TYPES or not isinstance(items, list) or not all(map(_importable, items)):
            raise BadRequest(f"`{t}` is not a metadata collection of objects with ids "
                             f"(and text {', '.join(_INDEXED[1:])})")
        docs[t] = [dict(d, lastUpdated=now) for d in items]
    store = request.app[STORE]
    if strategy == "DELETE":
        n = await store.write(lambda tx: sum(
            delete_metadata(tx, t, [d["id"] for d in items], now) for t, items in docs.items()))
        stats = {"created": 0, "updated": 0, "deleted": n, "ignored": 0, "total": n}
    else:
        existing = {d["id"] for items in docs.values() for d in items
                    if index_of(request).get(d["id"]) is not None}
        merged = {t: [dict(index_of(request).get(d["id"]) or {}, **d) for d in items]
                  for t, items in docs.items()}
        n = await store.write(lambda tx: put_metadata(tx, merged))
        stats = {"created": n - len(existing), "updated": len(existing), "deleted": 0,
                 "ignored": 0, "total": n}
    await request.app[STATE].reload(store)  # type: ignore[attr-defined]
    return json_response({"httpStatus": "OK", "httpStatusCode": 200, "status": "OK",
                          "response": {"responseType": "ImportReport", "status": "OK",
                                       "stats": stats, "typeReports": []}})


async def deleted_objects(request: web.Request) -> web.Response:
    q = request.query
    klasses = set(q.getall("klass", []))
    since = q.get("deletedAt")

    def read(conn: Any) -> list[dict[str, Any]]:
        rows = conn.execute("SELECT type, uid, deleted_at FROM deleted_object "
                            "WHERE (? IS NULL OR deleted_at >= ?) ORDER BY deleted_at",
                            (since, since)).fetchall()
        return [{"klass": KLASS.get(t, t), "uid": u, "deletedAt": at} for t, u, at in rows
                if not klasses or KLASS.get(t, t) in klasses]
    items = await request.app[STORE].read(read)
    page_items, pager = query.paginate(items, paging=q.get("paging", "true"),
                                       page=q.get("page", 1), page_size=q.get("pageSize", 50))
    body: dict[str, Any] = {"deletedObjects": page_items}
    if pager is not None:
        body["pager"] = pager
    return json_response(body)


async def category_option_org_units(request: web.Request) -> web.Response:
    ids = [i for v in request.query.getall("categoryOptions", []) for i in v.split(",") if i]
    index = index_of(request)
    return json_response({i: [o["id"] for o in (index.get(i) or {}).get("organisationUnits") or []]
                          for i in ids})


def setup(app: web.Application) -> None:
    add_api(app, "GET", "/metadata", get_metadata)
    add_api(app, "POST", "/metadata", post_metadata)
    add_api(app, "GET", "/deletedObjects", deleted_objects)
    add_api(app, "GET", "/categoryOptions/orgUnits", category_option_org_units)
    add_api(app, "GET", "/{collection:[a-zA-Z]+}", get_collection)
    add_api(app, "GET", "/{collection:[a-zA-Z]+}/{uid:[a-zA-Z][a-zA-Z0-9]{10}}", get_object)
