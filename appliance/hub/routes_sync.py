"""Hub endpoints the sync worker's results are seen and acted on through (DESIGN.md §5):

* ``GET /api/hub/conflicts?status=open|resolved|all``: the conflict log, both sides with
  users and times, the winner, policy, reason and resolution; scoped to the caller's org
  units;
* ``POST /api/hub/conflicts/{id}/resolve`` ``{"choose": "hub"|"national"|"value",
  "value": ...}``: re-queues the chosen value as a pending local edit with a fresh HLC
  (audited as ``conflict-resolution``) and closes the entry;
* ``POST /api/hub/sync``: asks the sync daemon for a cycle now (202);
* ``GET /api/hub/rejections``: why national refused values, for the user who entered
  them (superusers see every rejection in their scope; ``?username=`` filters).
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from ..dhis2 import valuetypes
from ..dhis2.webmessage import web_message
from ..errors import BadRequest, Conflict, Forbidden, NotFound
from ..store import synclog
from ..store.metadata import MetadataIndex
from ..sync import apply
from ..webguard import bounded_int, parse_json
from .web import STATE, STORE, index_of, json_response, user_of


def conflict_json(r: dict[str, Any]) -> dict[str, Any]:
    """One conflict as ``visible_conflicts`` reads it, in the API's names."""
    key = r
    out: dict[str, Any] = {"id": r["id"], "entity": r["entity"]}
    if r["entity"] == "datavalue":
        out.update(dataElement=key["de"], period=key["pe"], orgUnit=key["ou"],
                   categoryOptionCombo=key["coc"], attributeOptionCombo=key["aoc"],
                   dataSet=r["data_set"])
    elif r["entity"] == "complete_registration":
        out.update(dataSet=key["ds"], period=key["pe"], orgUnit=key["ou"],
                   attributeOptionCombo=key["aoc"])
    else:  # a tracker record: its uid, or the attribute / data value of one
        out.update({k: key[k] for k in ("uid", "te", "attribute", "event", "dataElement")
                    if k in key}, orgUnit=r["org_unit"])
    out["hub"] = {"value": r["hub_value"], "deleted": bool(r["hub_deleted"]),
                  "comment": r["hub_comment"], "user": r["hub_user"], "at": r["hub_at"]}
    out["national"] = {"value": r["national_value"], "deleted": bool(r["national_deleted"]),
                       "comment": r["national_comment"], "user": r["national_user"],
                       "at": r["national_at"], "lastUpdated": r["national_last_updated"]}
    out.update(winner=r["winner"], loser="national" if r["winner"] == "hub" else "hub",
               policy=r["policy"], reason=r["reason"], detectedAt=r["detected_at"],
               status="resolved" if r["resolved_at"] else "open")
    res = json.loads(r["resolution"]) if r["resolution"] else None
    out["resolution"] = None if not r["resolved_at"] else {
        "by": r["resolved_by"], "at": r["resolved_at"], **(res or {})}
    return out


async def list_conflicts(request: web.Request) -> web.Response:
    status = request.query.get("status", "open").lower()
    if status not in ("open", "resolved", "all"):
        raise BadRequest("status must be open, resolved or all")
    index, user = index_of(request), user_of(request)
    rows = await request.app[STORE].read(lambda c: synclog.visible_conflicts(
        c, lambda ou: user.can_view(index, ou), status=status))
    items = [conflict_json(r) for r in rows]
    for name in ("orgUnit", "dataSet", "period"):
        want = request.query.get(name)
        if want:
            items = [i for i in items if i.get(name) == want]
    return json_response({"conflicts": items, "total": len(items), "status": status})


async def resolve(request: web.Request) -> web.Response:
    try:  # ids are SQLite rowids: anything else names no conflict
        cid = bounded_int(request.match_info["id"], "id", lo=1) or 0
    except BadRequest:
        raise NotFound(f"Conflict {request.match_info['id'][:30]} not found") from None
    body = parse_json(await request.read() or b"{}", what="Conflict resolution body")
    if not isinstance(body, dict) or body.get("choose") not in ("hub", "national", "value"):
        raise BadRequest("Body must be {\"choose\": \"hub\"|\"national\"|\"value\", "
                         "\"value\": ...} (value only with choose=value)")
    choose = body["choose"]
    value: str | None = None
    index, user = index_of(request), user_of(request)
    row = await request.app[STORE].read(lambda c: synclog.conflict_target(c, cid))
    if row is None or not user.can_view(index, row["org_unit"] or ""):
        raise NotFound(f"Conflict {cid} not found")
    if choose == "value":
        if "value" not in body:
            raise BadRequest("choose=value needs a `value` (null deletes the value)")
        value = _checked_value(index, row, body["value"])
    try:
        out = await request.app[STORE].write(lambda tx: apply.resolve_conflict(
            tx, cid, choose, value, user.username, lambda ou: user.can_write(index, ou)))
    except apply.ResolveError as e:
        raise {404: NotFound, 409: Conflict, 403: Forbidden}.get(e.status, BadRequest)(
            e.message) from None
    request.app[STATE].signal_sync("local-data", now=True)
    return json_response(web_message(200, "Conflict resolved; the chosen value is queued for "
                                     "national", response={"responseType": "ConflictResolution",
                                                           **out}))


def _checked_value(index: MetadataIndex, row: dict[str, Any], raw: Any) -> str | None:
    if raw is None:
        return None
    if isinstance(raw, bool):
        raw = "true" if raw else "false"
    if isinstance(raw, (int, float)):
        raw = str(int(raw)) if isinstance(raw, float) and raw.is_integer() else str(raw)
    if not isinstance(raw, str):
        raise BadRequest("`value` must be a string, number, boolean or null")
    if row["entity"] != "datavalue":
        if raw not in ("true", "false"):
            raise BadRequest("a completion's value is true or false")
        return raw
    de = row["de"]
    doc = index.get_typed("dataElements", de) or {}
    options = None
    if isinstance(doc.get("optionSet"), dict):
        options = index.option_codes.get(doc["optionSet"].get("id", ""), set())
    norm, err = valuetypes.check_value(doc.get("valueType", "TEXT"), raw, options,
                                       data_element=de)
    if err is not None:
        raise Conflict(err, error_code="E7619")
    return norm


async def sync_now(request: web.Request) -> web.Response:
    delivered = request.app[STATE].signal_sync("api", now=True)
    msg = ("Sync requested" if delivered else
           "Sync requested; the sync worker is not running, the next scheduled cycle will run it")
    return json_response(web_message(202, msg, status="OK",
                                     response={"responseType": "SyncRequest",
                                               "delivered": delivered}), status=202)


async def list_rejections(request: web.Request) -> web.Response:
    index, user = index_of(request), user_of(request)
    wanted = request.query.get("username")
    if wanted and wanted != user.username and not user.is_superuser:
        raise Forbidden("Only superusers can see other users' rejections")

    rows = await request.app[STORE].read(lambda c: synclog.visible_rejections(
        c, lambda ou: user.can_view(index, ou), username=user.username,
        superuser=user.is_superuser, only_user=wanted or None))
    out = []
    for r in rows:
        parts = r["parts"]
        item: dict[str, Any] = {"entity": r["entity"], "errorCode": r["error_code"],
                                "message": r["message"], "at": r["at"],
                                "storedBy": r["username"], "value": r["value"],
                                "state": r["state"]}
        if r["entity"] == "datavalue" and len(parts) == 5:
            item.update(dataElement=parts[0], period=parts[1], orgUnit=parts[2],
                        categoryOptionCombo=parts[3], attributeOptionCombo=parts[4])
        elif r["entity"] in synclog.TRACKER_ENTITIES:
            item.update(uid=r["key"], orgUnit=r["org_unit"])
        elif len(parts) == 4:
            item.update(dataSet=parts[0], period=parts[1], orgUnit=parts[2],
                        attributeOptionCombo=parts[3])
        out.append(item)
    return json_response({"rejections": out, "total": len(out)})


def setup(app: web.Application) -> None:
    app.router.add_get("/api/hub/conflicts", list_conflicts)
    app.router.add_post(r"/api/hub/conflicts/{id}/resolve", resolve)
    app.router.add_post("/api/hub/sync", sync_now)
    app.router.add_get("/api/hub/rejections", list_rejections)
