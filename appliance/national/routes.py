"""The national stand-in's own endpoints, beside the DHIS2 routes it shares with the hub:
users from its users table and metadata imports (the hubs' sync pulls both)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..dhis2 import query
from ..errors import BadRequest, Forbidden
from ..hub.routes_system import server_date
from ..hub.web import STATE, STORE, add_api, index_of, json_response, paged, user_of
from ..store.metadata import TYPES, delete_metadata, put_metadata
from ..store.users import user_docs
from ..webguard import parse_json

# The store keeps these properties in columns of their own: anything but text there fails
# the write.
_INDEXED = ("id", "code", "name", "displayName", "path")


def _importable(doc: Any) -> bool:
    return isinstance(doc, dict) and isinstance(doc.get("id"), str) and bool(doc["id"]) and \
        all(doc.get(k) is None or isinstance(doc[k], str) for k in _INDEXED[1:])


async def import_metadata(request: web.Request) -> web.Response:
    """``POST /api/metadata``: national owns the metadata hubs sync; each object is
    stamped with the server's ``lastUpdated``, which hubs pull by."""
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



async def users(request: web.Request) -> web.Response:
    """``/api/users`` from the users table (the stand-in keeps users
    there, not in metadata), with ``disabled`` and ``lastUpdated`` as stored, so hub sync
    can pull users by ``lastUpdated``. Never includes passwords or verifiers."""
    if not user_of(request).is_superuser:
        raise Forbidden("You need the ALL authority to list users")

    docs = await request.app[STORE].read(user_docs)
    q = request.query
    index = index_of(request)
    pred = query.parse_filters(q.getall("filter", []), q.get("rootJunction", "AND"))
    docs = [d for d in docs if pred(d, index.get)]
    if q.get("order"):  # hubs page through users in a stable order
        docs = query.sort(docs, query.parse_order(q.get("order")), index.get)
    spec = query.parse_fields(q.get("fields"))
    return json_response(paged(request, "users", docs,
                               shape=lambda page: query.project_all(page, spec, index.get)))


def setup(app: web.Application) -> None:
    add_api(app, "GET", "/users", users)
