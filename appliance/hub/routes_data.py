"""Aggregate data: dataValueSets, dataValues, completions, data entry context, validation,
approvals and audits (DHIS2 §5–6)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from ..dhis2 import approvals as approvals_pure
from ..dhis2 import compression, csvformat, expressions, periods, query
from ..dhis2.timefmt import format_ts
from ..dhis2.webmessage import import_summary_message
from ..errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from ..store import approvals as approvals_db
from ..store import audit, backlog
from ..store import datavalues as dv
from ..store.keys import split_key
from ..store.metadata import MetadataIndex
from ..webguard import bounded_int, parse_json, read_form
from . import completions, dataimport
from .web import (
    CONFIG,
    ROLE,
    STATE,
    STORE,
    WRITES,
    add_api,
    index_of,
    json_response,
    paged,
    user_of,
)


def _multi(request: web.Request, *names: str) -> list[str]:
    out: list[str] = []
    for n in names:
        for v in request.query.getall(n, []):
            out.extend(x.strip() for x in v.split(",") if x.strip())
    return out


def _flag(request: web.Request, name: str, default: bool = False) -> bool:
    v = request.query.get(name)
    if v is None:
        return default
    if v.lower() in ("true", "1", ""):
        return True
    if v.lower() in ("false", "0"):
        return False
    raise BadRequest(f"Value `{v}` of parameter `{name}` is not a boolean")


def _now() -> datetime:
    return datetime.now(UTC)


def _signal_sync(request: web.Request) -> None:
    request.app[STATE].signal_sync("local-data")


async def _body(request: web.Request) -> tuple[str, bytes]:
    ctype = request.content_type.lower()
    body = await request.read()
    if not body:
        raise BadRequest("Request body is empty")
    return ctype, body


def _unpacked(request: web.Request, body: bytes) -> bytes:
    """A gzip or zip import body inflated, found by its magic bytes whatever the headers
    say, as DHIS2's imports read it (appliance/dhis2/compression.py). A body sent with
    ``Content-Encoding: gzip`` is already inflated by aiohttp, which refuses one that is
    not gzip (DHIS2, which ignores the header, would read it plain)."""
    limit = int(request.app[CONFIG].get("hub", "max_body_mb")) * 1024 * 1024
    try:
        return compression.unpack(body, limit)
    except compression.TooLarge:
        raise PayloadTooLarge("Request body is too large") from None
    except ValueError as e:
        raise BadRequest(f"The request body could not be read: {e}") from None


def _json(body: bytes) -> Any:
    return parse_json(body)


# -- dataValueSets ---------------------------------------------------------------------------
async def get_data_value_sets(request: web.Request) -> web.StreamResponse:
    index = index_of(request)
    user = user_of(request)
    q = request.query
    data_sets = _multi(request, "dataSet")
    # dataElement= is the hub's own LAN extension; national's DHIS2 has no such filter
    # (DataValueSetQueryParams) and ignores it, and the stand-in must do as DHIS2 does
    by_element = _multi(request, "dataElement") if request.app[ROLE] != "national" else []
    elements = set(by_element)
    for ds in data_sets:
        if index.get_typed("dataSets", ds) is None:
            raise Conflict(f"Data set does not exist: `{ds}`", error_code="E2003")
        elements |= index.ds_elements.get(ds, set())
    for de in by_element:
        if index.get_typed("dataElements", de) is None:
            raise Conflict(f"Data element does not exist: `{de}`")
    if not data_sets and not by_element:
        raise Conflict("At least one valid data set or data element group must be specified",
                       error_code="E2001")
    pes = _multi(request, "period")
    for pe in pes:
        try:
            periods.parse_period(pe)
        except ValueError:
            raise Conflict(f"Period not valid: `{pe}`") from None
    start, end = q.get("startDate"), q.get("endDate")
    last_updated = q.get("lastUpdated")
    if not pes and not (start and end) and not last_updated:
        raise Conflict("At least one valid period, start/end dates, last updated or last updated "
                       "duration must be specified", error_code="E2002")
    ous = _multi(request, "orgUnit")
    if not ous:
        raise Conflict("At least one valid organisation unit or organisation unit group must be "
                       "specified", error_code="E2006")
    for ou in ous:
        if index.get_typed("organisationUnits", ou) is None:
            raise Conflict(f"Organisation unit does not exist: `{ou}`")
        if not user.can_view(index, ou):
            raise Conflict(f"User is not allowed to view org unit: `{ou}`", error_code="E2012")
    if _flag(request, "children"):
        ous = sorted({d for ou in ous for d in index.descendants(ou)})
    include_deleted = _flag(request, "includeDeleted")
    lim = bounded_int(q.get("limit"), "limit", lo=0)

    rows = await request.app[STORE].read(lambda c: dv.query_values(
        c, org_units=ous, periods=pes or None, data_elements=sorted(elements), start=start,
        end=end, last_updated=last_updated, include_deleted=include_deleted,
        aocs=_multi(request, "attributeOptionCombo") or None, limit=lim))
    values = [dv.value_json(r) for r in rows]
    if request.match_info.get("_x") == ".csv" or request.path.endswith(".csv") or \
            q.get("format") == "csv" or "csv" in request.headers.get("Accept", ""):
        return _csv_response(request, values)
    fields = q.get("fields")
    if fields:
        spec = query.parse_fields(fields)
        values = query.project_all(values, spec)
    body: dict[str, Any] = {}
    if len(data_sets) == 1:
        body["dataSet"] = data_sets[0]
    if len(pes) == 1:
        body["period"] = pes[0]
    if len(_multi(request, "orgUnit")) == 1 and not _flag(request, "children"):
        body["orgUnit"] = _multi(request, "orgUnit")[0]
    body["dataValues"] = values
    return json_response(body)


def _csv_response(request: web.Request, values: list[dict[str, Any]]) -> web.Response:
    """The values as DHIS2 exports them in CSV: its columns, no ``created``; a live value's
    ``deleted`` says ``null`` as 2.41 writes it (``false`` from 2.43)."""
    version = str(request.app[CONFIG].get("hub", "dhis2_version"))
    live = "false" if _version(version) >= (2, 43) else "null"
    return web.Response(text=csvformat.encode_export(values, live_deleted=live),
                        content_type=csvformat.MEDIA_TYPE, charset="utf-8")


def _version(version: str) -> tuple[int, ...]:
    """``2.41.3`` as (2, 41, 3); what does not parse as (0,)."""
    try:
        return tuple(int(p) for p in version.split("-")[0].split("."))
    except ValueError:
        return (0,)


async def post_data_value_sets(request: web.Request) -> web.Response:
    opts = dataimport.ImportOptions.from_query(request.query)
    # parsed forms are ~10x their JSON: admitting a few at a time keeps memory flat when
    # 300 laptops post at once, while still keeping the writer thread busy
    async with request.app[STATE].import_slots:
        return await _post_data_value_sets(request, opts)


async def _post_data_value_sets(request: web.Request,
                                opts: dataimport.ImportOptions) -> web.Response:
    ctype, body = await _body(request)
    body = _unpacked(request, body)
    if ctype in ("application/json", "application/octet-stream", "") or ctype.endswith("+json"):
        payload = dataimport.parse_json_payload(_json(body))
        del body
    elif ctype in ("application/csv", "text/csv"):
        try:
            text = body.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise BadRequest("CSV body must be UTF-8") from None
        first = request.query.get("firstRowIsHeader", "true").lower() != "false"
        payload = dataimport.parse_csv_payload(text, first)
    elif "xml" in ctype:
        raise UnsupportedMediaType("The hub accepts dataValueSets as JSON or CSV, not XML")
    else:
        raise UnsupportedMediaType(f"Content type `{ctype}` is not supported; send "
                                   "application/json or application/csv")
    summary = await import_value_set(request, payload, opts)
    status, msg = import_summary_message(summary)
    return json_response(msg, status=status)


async def import_value_set(request: web.Request, payload: dict[str, Any],
                           opts: dataimport.ImportOptions) -> dict[str, Any]:
    state = request.app[STATE]
    user = user_of(request)
    writes = request.app[WRITES]
    v = dataimport.validate(payload, index=state.index, user=user, opts=opts, now=_now(),
                            approved=state.approvals)  # type: ignore[attr-defined]
    counts = None
    if v.abort is None and v.rows:
        rows = v.rows

        def write(tx: Any) -> dv.Counts:
            c = dv.import_values(tx, rows, username=user.username, client=request.remote,
                                 strategy=opts.strategy, provenance=writes, dry_run=opts.dry_run,
                                 audit=not opts.skip_audit)
            if v.complete and v.data_set and not opts.dry_run:
                ou = payload.get("orgUnit") or rows[0].ou
                dv.register_complete(tx, [{"ds": v.data_set, "pe": rows[0].pe, "ou": ou,
                                           "aoc": rows[0].aoc, "date": v.complete["date"]}],
                                     username=user.username, provenance=writes,
                                     client=request.remote)
            return c
        try:
            counts = await request.app[STORE].write(write)
        except dv.DryRun as d:
            counts = d.counts
        if not opts.dry_run and (counts.imported or counts.updated or counts.deleted):
            _signal_sync(request)
    return dataimport.summary(v, counts, opts)


# -- dataValues (one value) ----------------------------------------------------------------------
def resolve_aoc(index: MetadataIndex, cc: str | None, cp: str | None) -> str | None:
    """The AOC a ``cc`` (attribute combo) and ``cp`` (its options, ``;``-separated) name,
    refused with dhis2-core's ``ErrorCode`` when they name none."""
    if not cc and not cp:
        return index.default_coc
    combo = index.get_typed("categoryCombos", cc or "")
    if combo is None:
        raise Conflict(f"Category combo not found or not accessible: `{cc}`", error_code="E1110")
    wanted = {o for o in (cp or "").split(";") if o}
    for coc_id in index.combo_cocs.get(combo["id"], set()):
        coc = index.get(coc_id) or {}
        if {o["id"] for o in coc.get("categoryOptions") or []} == wanted:
            return coc_id
    raise Conflict("Attribute option combo does not exist for given category combo and category "
                   f"options: `{cc}`, `{cp}`", error_code="E2041")


async def _single_params(request: web.Request) -> dict[str, Any]:
    params: dict[str, Any] = dict(request.query)
    if request.method == "POST" and request.content_type == "application/json" and \
            request.can_read_body:
        body = _json(await request.read())
        if not isinstance(body, dict):
            raise BadRequest("Data value body must be a JSON object")
        params.update({"de": body.get("dataElement"), "pe": body.get("period"),
                       "ou": body.get("orgUnit"), "co": body.get("categoryOptionCombo"),
                       "value": body.get("value"), "comment": body.get("comment"),
                       "followUp": body.get("followUp", body.get("followup"))})
        if body.get("attributeOptionCombo"):
            params["aoc"] = body["attributeOptionCombo"]
    elif request.method == "POST" and request.content_type in (
            "application/x-www-form-urlencoded", "multipart/form-data"):
        params.update(dict(await read_form(request)))
    for k in ("de", "pe", "ou"):
        if not params.get(k):
            raise BadRequest(f"Parameter `{k}` is required")
    return params


async def data_value(request: web.Request) -> web.StreamResponse:
    index = index_of(request)
    p = await _single_params(request)
    aoc = p.get("aoc") or resolve_aoc(index, p.get("cc"), p.get("cp"))
    coc = p.get("co") or index.default_coc
    key = (p["de"], p["pe"], p["ou"], coc, aoc)
    if request.method == "GET":
        if not user_of(request).can_view(index, p["ou"]):
            raise Conflict(f"User is not allowed to view org unit: `{p['ou']}`")
        row = await request.app[STORE].read(lambda c: dv.live_value(c, key))
        if row is None:
            raise Conflict("Data value does not exist")
        return json_response([row[0]])
    raw: dict[str, Any] = {"dataElement": p["de"], "period": p["pe"], "orgUnit": p["ou"],
                           "categoryOptionCombo": coc, "attributeOptionCombo": aoc}
    if request.method == "DELETE":
        raw["deleted"] = True
    else:
        if p.get("value") is not None:
            raw["value"] = p["value"]
        if p.get("comment") is not None:
            raw["comment"] = p["comment"]
        if p.get("followUp") is not None:
            raw["followup"] = str(p["followUp"]).lower() == "true"
    opts = dataimport.ImportOptions()
    summary = await import_value_set(request, {"dataValues": [raw]}, opts)
    if summary["conflicts"]:
        raise Conflict(summary["conflicts"][0]["value"],
                       error_code=summary["conflicts"][0].get("errorCode"))
    if request.method == "DELETE":
        if not summary["importCount"]["deleted"]:
            raise NotFound("Data value cannot be deleted because it does not exist")
        return web.Response(status=204)
    return web.Response(status=201)


# -- completeDataSetRegistrations --------------------------------------------------------------
async def get_registrations(request: web.Request) -> web.Response:
    index = index_of(request)
    user = user_of(request)
    dss = _multi(request, "dataSet")
    pes = _multi(request, "period")
    ous = _multi(request, "orgUnit")
    if not dss or not ous or not (pes or request.query.get("startDate") or
                                  request.query.get("lastUpdated")):
        raise Conflict("dataSet, orgUnit and period (or startDate/endDate or lastUpdated) are "
                       "required")
    for ou in ous:
        if not user.can_view(index, ou):
            raise Conflict(f"User is not allowed to view org unit: `{ou}`")
    if _flag(request, "children"):
        ous = sorted({d for ou in ous for d in index.descendants(ou)})
    last_updated = request.query.get("lastUpdated")

    # un-completing deletes a registration in DHIS2 (no tombstone, whatever includeDeleted
    # says); the hub keeps one for its own sync, and it must not read as a live one
    def read(conn: Any) -> list[dict[str, Any]]:
        return [dv.registration_json(r) for r in dv.query_registrations(
            conn, data_sets=dss, org_units=ous, periods=pes, last_updated=last_updated)]
    regs = await request.app[STORE].read(read)
    fields = request.query.get("fields")
    if fields:
        regs = query.project_all(regs, query.parse_fields(fields))
    return json_response({"completeDataSetRegistrations": regs})


async def post_registrations(request: web.Request) -> web.Response:
    _ctype, body = await _body(request)
    data = _json(body)
    if not isinstance(data, dict) or not isinstance(data.get("completeDataSetRegistrations"), list):
        raise BadRequest("Body must be {\"completeDataSetRegistrations\": [...]}")
    items = data["completeDataSetRegistrations"]
    for i, r in enumerate(items):
        if not isinstance(r, dict):
            raise BadRequest(f"completeDataSetRegistrations[{i}] must be an object")
    user = user_of(request)
    checked = completions.check_registrations(items, index=index_of(request), user=user,
                                              now=_now())
    good, result = checked.rows, checked.result
    writes = request.app[WRITES]
    counts = await request.app[STORE].write(lambda tx: dv.register_complete(
        tx, good, username=user.username, provenance=writes, client=request.remote)) if good \
        else dv.Counts()
    counts.ignored += len(set(result.rejected))
    if counts.imported or counts.updated:
        _signal_sync(request)
    summary = {"responseType": "ImportSummary",
               "status": "WARNING" if result.conflicts else "SUCCESS",
               "importOptions": dataimport.ImportOptions().as_json(),
               "description": "Import process completed successfully",
               "importCount": counts.as_dict(), "conflicts": result.conflicts,
               "dataSetComplete": "true" if good else "false"}
    status, msg = import_summary_message(summary)
    return json_response(msg, status=status)


async def delete_registration(request: web.Request) -> web.Response:
    index = index_of(request)
    user = user_of(request)
    q = request.query
    dss, pes, ous = _multi(request, "ds"), _multi(request, "pe"), _multi(request, "ou")
    if not dss or not pes or not ous:
        raise BadRequest("Parameters ds, pe and ou are required")
    aoc = resolve_aoc(index, q.get("cc"), q.get("cp"))
    if _flag(request, "multiOu"):
        ous = sorted({d for ou in ous for d in index.descendants(ou)})
    # every key is checked before any is un-registered: one bad key refuses the request
    keys = completions.check_deletions(dss, pes, ous, aoc, index=index, user=user, now=_now())
    if isinstance(keys, tuple):
        code, _obj, message, _prop = keys
        raise Conflict(message, error_code=code)
    regs = [{"ds": k.ds, "pe": k.pe, "ou": k.ou, "aoc": k.aoc, "delete": True} for k in keys]
    counts = await request.app[STORE].write(lambda tx: dv.register_complete(
        tx, regs, username=user.username, provenance=request.app[WRITES],
        client=request.remote))
    if counts.deleted:
        _signal_sync(request)
    return web.Response(status=204)


# -- data entry context, validation, approvals, audits ------------------------------------------
async def data_entry_values(request: web.Request) -> web.Response:
    index = index_of(request)
    user = user_of(request)
    q = request.query
    ds, pe, ou = q.get("ds") or q.get("dataSet"), q.get("pe") or q.get("period"), \
        q.get("ou") or q.get("orgUnit")
    if not ds or not pe or not ou:
        raise BadRequest("Parameters ds, pe and ou are required")
    ds_doc = index.get_typed("dataSets", ds)
    if ds_doc is None:
        raise NotFound(f"Data set not found: `{ds}`")
    if not user.can_view(index, ou):
        raise Forbidden(f"User is not allowed to view org unit: `{ou}`")
    try:
        period = periods.parse_period(pe)
    except ValueError:
        raise BadRequest(f"Period not valid: `{pe}`") from None
    aoc = resolve_aoc(index, q.get("cc"), q.get("cp")) or ""
    des = sorted(index.ds_elements.get(ds, set()))
    def read(c: Any) -> tuple[Any, ...]:
        # one snapshot: the page's header count (hub-wide) must agree with these cells
        c.execute("BEGIN")
        try:
            return (
                dv.query_values(c, org_units=[ou], periods=[period.id], data_elements=des,
                                aocs=[aoc]),
                dv.registration(c, (ds, period.id, ou, aoc)),
                dv.form_sync(c, ou, period.id, aoc, set(des)),
                _registration_sync(dv.registration_sync(c, (ds, period.id, ou, aoc))),
                backlog.backlog(c)[0],
                approvals_db.approval(c, [(ds, period.id, a, aoc) for a in chain]))
        finally:
            c.execute("COMMIT")
    # the form's own approval, else one above it (DHIS2 locks a unit's data then too)
    chain = [ou, *reversed([p for p in index.path(ou).split("/") if p and p != ou])]
    rows, reg, sync, reg_sync, hub_pending, approval = await request.app[STORE].read(read)
    minmax = [{"orgUnit": ou, "dataElement": de, "categoryOptionCombo": coc,
               "minValue": mn, "maxValue": mx}
              for (o, de, coc), (mn, mx) in index.minmax.items() if o == ou and de in des]
    now = _now()
    locked = not user.has("F_EDIT_EXPIRED") and periods.is_expired(
        period, int(ds_doc.get("expiryDays") or 0), now)
    lock = "APPROVED" if approval is not None else "LOCKED" if locked else "OPEN"
    values, counts = [], {s: 0 for s in ("pending", "synced", "rejected", "conflict")}
    for r in rows:
        v = dv.value_json(r)
        _, code, msg, _ = sync.pop((r["de"], r["coc"]), ("", None, None, 0))
        state = r["sync_state"]  # the row's own state; the join only adds national's reason
        rejected = state == "rejected"
        v["hubSync"] = {"state": state, "message": msg if rejected else None,
                        "errorCode": code if rejected else None}
        counts[state] = counts.get(state, 0) + 1
        values.append(v)
    for state, _code, _msg, deleted in sync.values():
        if deleted and state != "synced":  # a deletion national has not accepted yet
            counts[state] = counts.get(state, 0) + 1
    return json_response({
        "dataValues": values, "minMaxValues": minmax,
        "lockStatus": lock,
        # why it is approved, for the page to say (a key DHIS2 clients ignore): national's
        # state when sync brought it, when the hub learnt it, and the unit approved
        "hubApproval": None if approval is None else {
            "state": approval[1] or ("APPROVED_HERE" if approval[0][2] == ou
                                     else "APPROVED_ABOVE"),
            "national": approval[1] is not None, "at": approval[2],
            "orgUnit": approval[0][2]},
        "completeStatus": {"complete": bool(reg and reg[0]), "storedBy": reg[1] if reg else None,
                           "date": reg[2] if reg else None,
                           "lastUpdated": reg[3] if reg else None, "hubSync": reg_sync},
        "hubSync": counts,
        "hubPending": hub_pending,  # all the hub holds for national: /api/hub/status's pending
    })


# The hub's sync state of what a form shows, in keys DHIS2 clients ignore: per value
# pending | synced | conflict | rejected, with national's refusal reason when rejected.
def _registration_sync(r: tuple[str, str | None, str | None] | None) -> dict[str, Any] | None:
    if r is None:
        return None
    rejected = r[0] == "rejected"
    return {"state": r[0], "message": r[2] if rejected else None,
            "errorCode": r[1] if rejected else None}


async def validate_data_set(request: web.Request) -> web.Response:
    index = index_of(request)
    ds = request.match_info["ds"]
    q = request.query
    pe, ou = q.get("pe"), q.get("ou")
    if index.get_typed("dataSets", ds) is None:
        raise NotFound(f"Data set not found: `{ds}`")
    if not pe or not ou:
        raise BadRequest("Parameters pe and ou are required")
    # DHIS2 2.41 runs this for any org unit; the hub shows only what the user may read
    if not user_of(request).can_view(index, ou):
        raise Forbidden(f"User is not allowed to view org unit: `{ou}`")
    aoc = resolve_aoc(index, q.get("cc"), q.get("cp")) or ""
    des = sorted(index.ds_elements.get(ds, set()))
    rows = await request.app[STORE].read(lambda c: dv.query_values(
        c, org_units=[ou], periods=[pe], data_elements=des, aocs=[aoc]))
    values: dict[tuple[str, str], float] = {}
    for r in rows:
        try:
            values[(r["de"], r["coc"])] = float(r["value"])
        except (TypeError, ValueError):
            continue
    constants = {c["id"]: float(c.get("value") or 0) for c in index.list("constants")}
    rules_out = []
    for rule in index.list("validationRules"):
        exprs = (rule.get("leftSide") or {}).get("expression", "") + \
            (rule.get("rightSide") or {}).get("expression", "")
        if not any(de in exprs for de in des):
            continue
        try:
            violation = expressions.run_rule(rule, values, constants)
        except ValueError:
            continue
        if violation is not None:
            violation.update(organisationUnitId=ou, periodId=pe, attributeOptionComboId=aoc,
                             validationRuleDescription=violation.get("validationRuleDescription")
                             or rule.get("description") or rule.get("name"))
            rules_out.append(violation)
    return json_response({"validationRuleViolations": rules_out, "commentRequiredViolations": []})


def _approval_sets(index: MetadataIndex, ds: str | None, wf: str | None) -> list[str]:
    """The data sets an approval of ``ds`` or ``wf`` covers: every data set of the
    workflow (DHIS2 approves a workflow). The stand-in is lenient where DHIS2 answers 409:
    a data set without a workflow is approved by itself, and so is a ``wf`` that names a
    data set."""
    flows = approvals_pure.workflows(index.list("dataSets"))
    if ds:
        doc = index.get_typed("dataSets", ds)
        if doc is None:
            raise Conflict(f"Data set does not exist: {ds}")
        flow = approvals_pure.workflow_of(doc)
        return flows[flow] if flow else [ds]
    if wf:
        if wf in flows:
            return flows[wf]
        if index.get_typed("dataSets", wf) is not None:
            return [wf]
        raise Conflict(f"Data approval workflow does not exist: {wf}")
    raise Conflict("Either data set or data approval workflow must be specified")


def approval_state(approved: set[tuple[str, str, str, str]], states: dict[Any, str],
                   index: MetadataIndex, data_sets: list[str], pe: str, ou: str,
                   aoc: str) -> str:
    """DHIS2's state of (workflow of ``data_sets``, pe, ou, aoc) as this server holds it:
    national's when sync brought it, else APPROVED_HERE/ABOVE by where the approval is."""
    for ds in data_sets:
        at = dataimport.approved_at(approved, index, ds, pe, ou, aoc)
        if at is None:
            continue
        return states.get((ds, pe, ou, aoc)) or ("APPROVED_HERE" if at == ou
                                                 else "APPROVED_ABOVE")
    return "UNAPPROVED_READY"


def _permissions(user: Any, state: str) -> dict[str, bool]:
    may = bool(user.is_superuser)
    approved = approvals_pure.is_approved(state)
    return {"mayApprove": may and not approved, "mayUnapprove": may and bool(approved),
            "mayAccept": False, "mayUnaccept": False, "mayReadData": True}


async def approvals(request: web.Request) -> web.Response:
    """``/api/dataApprovals``: one key's state (GET), approve (POST), unapprove (DELETE)."""
    index = index_of(request)
    user = user_of(request)
    q = request.query
    pe, ou = q.get("pe"), q.get("ou")
    if not (q.get("ds") or q.get("wf")) or not pe or not ou:
        raise BadRequest("Parameters ds (or wf), pe and ou are required")
    aoc = q.get("aoc") or index.default_coc or ""
    if not user.can_view(index, ou):
        raise Forbidden(f"User is not allowed to view org unit: `{ou}`")
    data_sets = _approval_sets(index, q.get("ds"), q.get("wf"))
    store = request.app[STORE]
    state = request.app[STATE]
    if request.method == "GET":
        states = await store.read(approvals_db.national_approvals)
        st = approval_state(state.approvals, states, index,  # type: ignore[attr-defined]
                            data_sets, pe, ou, aoc)
        return json_response({**_permissions(user, st), "state": st})
    if not user.is_superuser:
        raise Forbidden("You need the ALL authority to approve data")
    keys = [(ds, pe, ou, aoc) for ds in data_sets]
    if request.method == "POST":
        at = format_ts(int(_now().timestamp()) * 1000)
        def write(tx: Any) -> None:
            for key in keys:
                approvals_db.approve(tx, key, username=user.username, at=at,
                                     client=request.remote)
        await store.write(write)
    else:
        await store.write(lambda tx: [approvals_db.unapprove(
            tx, key, username=user.username, client=request.remote) for key in keys])
    await state.reload(store)  # type: ignore[attr-defined]
    return web.Response(status=204)


async def approvals_multiple(request: web.Request) -> web.Response:
    """``GET /api/dataApprovals/multiple`` (and ``/approvals``): the state of every
    (wf, pe, ou, aoc) asked, as a bare array; what the Android SDK and the hub's sync ask
    for the data sets that have a workflow. Periods of another type than the workflow's
    are left out, as in DHIS2. ``fields`` is not applied: dhis2-core serialises its
    ``ApprovalStatusDto`` list whole, and the SDK's fixture (asked with
    ``fields=wf,ou,pe,aoc,state``) carries ``permissions`` too."""
    index = index_of(request)
    user = user_of(request)
    q = request.query
    wfs, ous, aocs = _multi(request, "wf"), _multi(request, "ou"), _multi(request, "aoc")
    pes = _multi(request, "pe")
    start, end = q.get("startDate"), q.get("endDate")
    if not wfs:
        raise Conflict("Either data sets or data approval workflows must be specified")
    if not ous:
        raise BadRequest("Parameter ou is required")
    if pes and (start or end):
        raise Conflict("Cannot have both pe and startDate or endDate.")
    if not pes and not (start and end):
        raise Conflict("Must have either pe or both startDate and endDate.")
    for ou in ous:  # the hub's scope first: nothing is said about another clinic
        if not user.can_view(index, ou):
            raise Forbidden(f"User is not allowed to view org unit: `{ou}`")
        if index.get_typed("organisationUnits", ou) is None:
            raise Conflict(f"Organisation unit does not exist: {ou}")
    flows = approvals_pure.workflows(index.list("dataSets"))
    for wf in wfs:
        if wf not in flows:
            raise Conflict(f"Data approval workflow does not exist: {wf}")
    aocs = aocs or [index.default_coc or ""]
    for aoc in aocs:
        if index.get_typed("categoryOptionCombos", aoc) is None:
            raise Conflict(f"Attribute option combo does not exist: {aoc}")
    parsed: list[periods.Period] = []
    for pe in pes:
        try:
            parsed.append(periods.parse_period(pe))
        except ValueError:
            raise Conflict(f"Illegal period identifier: {pe}") from None
    states = await request.app[STORE].read(approvals_db.national_approvals)
    approved = request.app[STATE].approvals  # type: ignore[attr-defined]
    out: list[dict[str, Any]] = []
    for wf in dict.fromkeys(wfs):
        data_sets = flows[wf]
        ptype = index.ds_period_type.get(data_sets[0], "")
        if pes:
            wf_periods = [p for p in parsed if p.period_type == ptype]
        else:
            wf_periods = _periods_between(ptype, start or "", end or "")
        for p in wf_periods:
            for ou in ous:
                for aoc in aocs:
                    st = approval_state(approved, states, index, data_sets, p.id, ou, aoc)
                    out.append({"wf": wf, "pe": p.id, "ou": ou, "aoc": aoc, "state": st,
                                "permissions": _permissions(user, st)})
    return json_response(out)


def _periods_between(ptype: str, start: str, end: str) -> list[periods.Period]:
    try:
        first, last = (datetime.strptime(d[:10], "%Y-%m-%d").date() for d in (start, end))
        p = periods.period_containing(ptype, first)
    except ValueError:
        raise Conflict(f"Dates not valid: `{start}`, `{end}`") from None
    out: list[periods.Period] = []
    while p.start <= last and len(out) < 1000:
        if p.start >= first and p.end <= last:
            out.append(p)
        p = periods.shift(p, 1)
    return out


async def audits(request: web.Request) -> web.Response:
    index = index_of(request)
    user = user_of(request)
    des, pes, ous = _multi(request, "de"), _multi(request, "pe"), _multi(request, "ou")
    cocs = _multi(request, "co")
    types = [t.upper() for t in _multi(request, "auditType")]
    for ou in ous:
        if not user.can_view(index, ou):
            raise Conflict(f"User is not allowed to view org unit: `{ou}`")
    for ds in _multi(request, "ds"):
        des += sorted(index.ds_elements.get(ds, set()))

    def read(conn: Any) -> list[dict[str, Any]]:
        out = []
        for r in audit.newest(conn, "datavalue"):
            de, pe, ou, coc, aoc = split_key(r["key"])
            if (des and de not in des) or (pes and pe not in pes) or (ous and ou not in ous) or \
                    (cocs and coc not in cocs) or (types and r["audit_type"] not in types):
                continue
            if not ous and not user.can_view(index, ou):
                continue
            out.append({"dataElement": de, "period": pe, "orgUnit": ou,
                        "categoryOptionCombo": coc, "attributeOptionCombo": aoc,
                        "value": r["old_value"] if r["audit_type"] != "CREATE" else r["new_value"],
                        "prevValue": r["old_value"], "newValue": r["new_value"],
                        "modifiedBy": r["username"], "created": r["at"],
                        "auditType": r["audit_type"], "via": r["via"], "client": r["client"]})
        return out
    items = await request.app[STORE].read(read)
    return json_response(paged(request, "dataValueAudits", items))


def setup(app: web.Application) -> None:
    add_api(app, "GET", "/dataValueSets", get_data_value_sets)
    app.router.add_get(r"/api{_v:(?:/[0-9]{2})?}/dataValueSets{_x:\.csv}", get_data_value_sets)
    add_api(app, "POST", "/dataValueSets", post_data_value_sets)
    for m in ("GET", "POST", "DELETE"):
        add_api(app, m, "/dataValues", data_value)
    add_api(app, "GET", "/completeDataSetRegistrations", get_registrations)
    add_api(app, "POST", "/completeDataSetRegistrations", post_registrations)
    add_api(app, "DELETE", "/completeDataSetRegistrations", delete_registration)
    add_api(app, "GET", "/dataEntry/dataValues", data_entry_values)
    add_api(app, "GET", "/validation/dataSet/{ds}", validate_data_set)
    for m in ("GET", "POST", "DELETE"):
        add_api(app, m, "/dataApprovals", approvals)
    add_api(app, "GET", "/dataApprovals/multiple", approvals_multiple)
    add_api(app, "GET", "/dataApprovals/approvals", approvals_multiple)
    add_api(app, "GET", "/audits/dataValue", audits)

