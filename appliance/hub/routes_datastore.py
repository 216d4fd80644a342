"""``/api/dataStore`` and dataStore sharing, as DHIS2 2.41 serves them.

What was matched (dhis2-core ``DatastoreController``, ``SharingController`` and the
"Data store" and "Sharing" chapters of the Web API guide; messages as the real server sends
them, which the Android SDK's captured fixtures confirm where the guide differs):

* ``GET /dataStore``: namespaces as a JSON array (here: those with an entry the user may
  read). ``GET /dataStore/{ns}`` and ``/dataStore/{ns}/keys``: keys, optional
  ``lastUpdated``; 404 "Namespace not found: 'ns'". ``DELETE /dataStore/{ns}``: 200
  "Namespace deleted: 'ns'".
* ``GET /dataStore/{ns}/{key}``: the stored JSON. ``POST``: 201 "Key created: 'k'", 409
  "Key 'k' already exists in namespace 'ns'". ``PUT``: 200 "Key updated: 'k'" (404 for a
  missing key, as 2.41; later versions create it). ``DELETE``: 200 "Key 'k' deleted from
  namespace 'ns'". Missing keys: 404 "Key 'k' not found in namespace 'ns'". Bad JSON: 400.
* ``GET /dataStore/{ns}/{key}/metaData``: the DatastoreEntry without its value: ``id``,
  ``created``, ``lastUpdated``, ``createdBy`` (a user reference), ``namespace``, ``key``,
  ``sharing`` {owner, external, public, users, userGroups} and the user's ``access``.
* ``GET|PUT|POST /sharing?type=dataStore&id={uid}``: read, or replace with
  ``{"object": {"publicAccess", "userAccesses", "userGroupAccesses"}}``; 200 "Access
  control set"; 403 "You do not have manage access to this object."; 409 for an unknown
  type or a bad access string.

Who may do what lives in ``appliance.store.datastore`` (and its docstring says where the hub
is stricter than DHIS2).
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from ..errors import BadRequest, Conflict, Forbidden
from ..store import datastore as ds
from ..webguard import parse_json
from .web import STORE, add_api, json_response, message, user_of

# DHIS2 reads lastUpdated as a date or a date-time; both compare as text with ours.
_SINCE_RE = re.compile(r"\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?)?Z?")
_KEY = "{key:[^/]+?}"


def _ns_key(request: web.Request) -> tuple[str, str]:
    return request.match_info["ns"], request.match_info["key"]


async def _body(request: web.Request) -> str:
    return ds.canonical(await request.read())


# -- namespaces and keys ---------------------------------------------------------------------
async def namespaces(request: web.Request) -> web.Response:
    user = user_of(request)
    return json_response(await request.app[STORE].read(lambda c: ds.namespaces(c, user)))


async def keys(request: web.Request) -> web.Response:
    ns, user = request.match_info["ns"], user_of(request)
    since = request.query.get("lastUpdated")
    if since is not None and not _SINCE_RE.fullmatch(since):
        raise BadRequest(f"lastUpdated must be a date like 2024-01-31 or "
                         f"2024-01-31T10:00:00.000, not `{since[:40]}`")
    since = since.rstrip("Z") if since else None
    return json_response(await request.app[STORE].read(lambda c: ds.keys(c, user, ns, since)))


async def delete_namespace(request: web.Request) -> web.Response:
    ns, user = request.match_info["ns"], user_of(request)
    await request.app[STORE].write(
        lambda tx: ds.delete_namespace(tx, user, ns, client=request.remote))
    return message(200, f"Namespace deleted: '{ns}'")


# -- entries -----------------------------------------------------------------------------------
async def get_value(request: web.Request) -> web.Response:
    (ns, key), user = _ns_key(request), user_of(request)
    body = await request.app[STORE].read(lambda c: ds.value(c, user, ns, key))
    return web.Response(body=body, content_type="application/json", charset="utf-8")


async def create(request: web.Request) -> web.Response:
    (ns, key), user = _ns_key(request), user_of(request)
    text = await _body(request)
    await request.app[STORE].write(
        lambda tx: ds.create(tx, user, ns, key, text, client=request.remote))
    return message(201, f"Key created: '{key}'")


async def update(request: web.Request) -> web.Response:
    (ns, key), user = _ns_key(request), user_of(request)
    text = await _body(request)
    await request.app[STORE].write(
        lambda tx: ds.update(tx, user, ns, key, text, client=request.remote))
    return message(200, f"Key updated: '{key}'")


async def delete(request: web.Request) -> web.Response:
    (ns, key), user = _ns_key(request), user_of(request)
    await request.app[STORE].write(lambda tx: ds.delete(tx, user, ns, key, client=request.remote))
    return message(200, f"Key '{key}' deleted from namespace '{ns}'")


async def metadata(request: web.Request) -> web.Response:
    (ns, key), user = _ns_key(request), user_of(request)

    def read(conn: Any) -> dict[str, Any]:
        entry = ds.entry(conn, user, ns, key)
        doc: dict[str, Any] = {"id": entry.id, "created": entry.created,
                               "lastUpdated": entry.last_updated}
        if entry.created_by:
            ref = ds.user_refs(conn, {entry.created_by}).get(entry.created_by)
            doc["createdBy"] = ref or {"id": entry.created_by}
        doc.update(namespace=entry.namespace, key=entry.key, encrypted=False,
                   sharing=entry.sharing.doc(), access=ds.access_doc(user, entry))
        return doc
    return json_response(await request.app[STORE].read(read))


# -- sharing -----------------------------------------------------------------------------------
def _sharing_target(request: web.Request) -> str:
    kind, uid = request.query.get("type", ""), request.query.get("id", "")
    if not kind or not uid:
        raise BadRequest("Sharing needs `type` and `id` query parameters")
    if kind != "dataStore":  # the only shareable type the hub keeps
        raise Conflict(f"Type {kind[:40]} is not supported.")
    return uid


async def get_sharing(request: web.Request) -> web.Response:
    uid, user = _sharing_target(request), user_of(request)

    def read(conn: Any) -> dict[str, Any]:
        entry = ds.entry_by_id(conn, uid)
        if not ds.can_read(user, entry):
            raise Forbidden("You do not have manage access to this object.")
        sh, owner = entry.sharing, entry.sharing.owner
        refs = ds.user_refs(conn, set(sh.users) | ({owner} if owner else set()))
        users = [{"id": u, "name": refs[u]["name"], "displayName": refs[u]["displayName"],
                  "access": a} for u, a in sh.users.items() if u in refs]
        obj: dict[str, Any] = {"id": entry.id, "publicAccess": sh.public,
                               "externalAccess": False, "user": {}, "userAccesses": users,
                               "userGroupAccesses": [{"id": g, "access": a}
                                                     for g, a in sh.user_groups.items()]}
        if owner and owner in refs:
            obj["user"] = {"id": owner, "name": refs[owner]["name"]}
        return {"meta": {"allowPublicAccess": True, "allowExternalAccess": False},
                "object": obj}
    return json_response(await request.app[STORE].read(read))


async def put_sharing(request: web.Request) -> web.Response:
    uid, user = _sharing_target(request), user_of(request)
    sharing = ds.parse_sharing(parse_json(await request.read(), what="Sharing body"))
    await request.app[STORE].write(
        lambda tx: ds.set_sharing(tx, user, uid, sharing, client=request.remote))
    return message(200, "Access control set")


def setup(app: web.Application) -> None:
    add_api(app, "GET", "/dataStore", namespaces)
    add_api(app, "GET", "/dataStore/{ns}", keys)
    add_api(app, "DELETE", "/dataStore/{ns}", delete_namespace)
    # DHIS2's clash-free alias; like there, it hides a key named "keys" from GET
    add_api(app, "GET", "/dataStore/{ns}/keys", keys)
    add_api(app, "GET", f"/dataStore/{{ns}}/{_KEY}/metaData", metadata)
    for method, handler in (("GET", get_value), ("POST", create), ("PUT", update),
                            ("DELETE", delete)):
        add_api(app, method, f"/dataStore/{{ns}}/{_KEY}", handler)
    add_api(app, "GET", "/sharing", get_sharing)
    add_api(app, "PUT", "/sharing", put_sharing)
    add_api(app, "POST", "/sharing", put_sharing)
