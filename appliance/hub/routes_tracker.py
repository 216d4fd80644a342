"""The DHIS2 2.41 tracker API over the store's individual records (``store.tracker``).

* ``POST /api/tracker``: import, synchronous (``async=false``) or as a job (the default,
  as the Android SDK uses it) with ``importStrategy``, ``atomicMode`` and ``dryRun``;
  ``GET /api/tracker/jobs/{id}`` and ``.../report``;
* ``GET /api/tracker/{trackedEntities,enrollments,events,relationships}`` (and by uid);
* ``GET /api/trackedEntityAttributes/{id}/generateAndReserve`` (and ``generate``);
* ``PUT /api/tracker/ownership/transfer`` (a referral moves the record's owner);
* ``GET|POST /api/potentialDuplicates``, ``PUT /api/potentialDuplicates/{id}``.

Reads are scoped by the search scope (``User.can_search``: a CHCP finds people across the
upazila), writes by the capture scope and the program owner (``tracker_import``).
The hub imports at once, so a job is complete when its id is returned; its report is
kept in memory for the SDK to fetch (the data itself is on disk before the reply).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web

from ..dhis2.timefmt import format_ts
from ..dhis2.trackerjobs import completion_message
from ..dhis2.uid import generate_uid, is_uid
from ..dhis2.webmessage import web_message
from ..errors import BadRequest, Conflict, Forbidden, NotFound
from ..store import search, trackerjobs
from ..store import tracker as tstore
from ..store.metadata import MetadataIndex
from ..store.users import User
from ..webguard import bounded_int, parse_json
from . import tracker_import as ti
from .lang import reader
from .web import STATE, STORE, WRITES, add_api, index_of, json_response, user_of

ORG_UNIT_MODES = ("SELECTED", "CHILDREN", "DESCENDANTS", "ACCESSIBLE", "CAPTURE", "ALL")


def _multi(request: web.Request, *names: str) -> list[str]:
    out: list[str] = []
    for n in names:
        for v in request.query.getall(n, []):
            out.extend(x.strip() for x in v.replace(";", ",").split(",") if x.strip())
    return out


def _flag(request: web.Request, name: str, default: bool = False) -> bool:
    v = request.query.get(name)
    if v is None or v == "":
        return default
    if v.lower() in ("true", "false"):
        return v.lower() == "true"
    raise BadRequest(f"`{name}` must be true or false")


def _now() -> datetime:
    return datetime.now(UTC)


# -- import ----------------------------------------------------------------------------------
async def post_tracker(request: web.Request) -> web.Response:
    opts = ti.Options.parse(request.query)
    mode = ti.report_mode(request.query)
    is_async = _flag(request, "async", default=True)
    body = parse_json(await request.read() or b"{}", what="Tracker payload")
    report = await import_payload(request, body, opts)
    if not is_async:
        status = 200 if report["status"] == "OK" else 409
        return json_response(ti.for_mode(report, mode), status=status)
    job = generate_uid()
    at, owner = format_ts(int(time.time() * 1000)), user_of(request).uid
    await request.app[STORE].write(lambda tx: trackerjobs.save(tx, job, owner, at, report))
    base = f"{request.scheme}://{request.host}"
    return json_response(web_message(200, "Tracker job added", status="OK", response={
        "responseType": "TrackerJob", "id": job, "location": f"{base}/api/tracker/jobs/{job}"}))


async def import_payload(request: web.Request, body: Any, opts: ti.Options) -> dict[str, Any]:
    index, user = index_of(request), user_of(request)
    store = request.app[STORE]
    uids = ti.uids_of(body)

    started = time.perf_counter()

    # one read: the stored records, then validation (unique values are looked up as met)
    def check(c: Any) -> ti.Plan:
        return ti.validate(body, index=index, user=user, existing=_existing(c, uids), opts=opts,
                           now=_now(), unique_owner=lambda a, v: tstore.unique_value_owner(c, a, v),
                           new_uid=generate_uid)
    plan = await store.read(check)
    validated = time.perf_counter()
    applied: dict[str, str] | None = None
    if not opts.dry_run and any(plan.objects.values()):
        bundle = _bundle(plan)
        result = await store.write(lambda tx: tstore.apply_bundle(
            tx, bundle, username=user.username, strategy=opts.strategy,
            provenance=request.app[WRITES], client=request.remote))
        applied = _applied(result)
        if any(a != "IGNORE" for a in applied.values()):
            request.app[STATE].signal_sync("local-data")
    done = time.perf_counter()
    return ti.import_report(plan, applied, timings={
        "validation": validated - started, "commit": done - validated, "totalImport": done - started})


async def _job(request: web.Request) -> dict[str, Any] | None:
    """A job's record, to the user who started it only (its report names their records)."""
    jid, owner = request.match_info["id"], user_of(request).uid
    return await request.app[STORE].read(lambda c: trackerjobs.get(c, jid, owner))


async def job_status(request: web.Request) -> web.Response:
    job = await _job(request)
    if job is None:
        raise NotFound(f"Tracker job {request.match_info['id'][:20]} not found")
    message = completion_message(job["report"]["status"], job["report"]["stats"])
    jid = request.match_info["id"]
    return json_response([{"uid": jid, "level": "INFO", "category": "TRACKER_IMPORT_JOB",
                           "time": job["at"], "message": message, "completed": True,
                           "id": jid}])


async def job_report(request: web.Request) -> web.Response:
    job = await _job(request)
    if job is None:
        raise NotFound(f"Tracker job {request.match_info['id'][:20]} not found")
    return json_response(ti.for_mode(job["report"], ti.report_mode(request.query)))


# -- reads -----------------------------------------------------------------------------------
def scope(request: web.Request, index: MetadataIndex, user: User) -> list[str] | None:
    """The org units a read covers (None: every one the user may search), as DHIS2
    reads ``orgUnits``/``orgUnit`` and ``orgUnitMode``."""
    mode = (request.query.get("orgUnitMode") or request.query.get("ouMode") or "").upper()
    ous = _multi(request, "orgUnits", "orgUnit")
    if mode and mode not in ORG_UNIT_MODES:
        raise BadRequest(f"orgUnitMode must be one of {', '.join(ORG_UNIT_MODES)}")
    if not mode:
        mode = "SELECTED" if ous else "ACCESSIBLE"
    if mode in ("ACCESSIBLE", "CAPTURE", "ALL"):
        if ous:
            raise BadRequest(f"orgUnitMode {mode} cannot be combined with orgUnits")
        if mode == "ALL" and not user.is_superuser:
            raise Forbidden("orgUnitMode ALL needs the ALL authority")
        roots = user.org_units if mode == "CAPTURE" else (
            user.search_org_units or user.view_org_units)
        if not roots:
            return None if user.is_superuser else []
        return sorted({d for r in roots for d in index.descendants(r)})
    if not ous:
        raise BadRequest(f"orgUnitMode {mode} needs orgUnits")
    out: set[str] = set()
    for ou in ous:
        if index.get_typed("organisationUnits", ou) is None:
            raise BadRequest(f"Organisation unit does not exist: `{ou}`")
        if not user.can_search(index, ou):
            raise Forbidden(f"Organisation unit is not part of your search scope: `{ou}`")
        if mode == "SELECTED":
            out.add(ou)
        elif mode == "CHILDREN":
            out.add(ou)
            out.update(c["id"] for c in index.list("organisationUnits")
                       if (c.get("parent") or {}).get("id") == ou)
        else:
            out.update(index.descendants(ou))
    return sorted(out)


def _paging(request: web.Request) -> tuple[int, int, bool, bool]:
    q = request.query
    paging = _flag(request, "paging", default=True) and not _flag(request, "skipPaging")
    page = bounded_int(q.get("page"), "page", default=1, lo=1, hi=1_000_000) or 1
    size = bounded_int(q.get("pageSize"), "pageSize", default=50, lo=1, hi=10_000) or 50
    total = _flag(request, "totalPages")
    return page, size, paging, total


def _pager(request: web.Request, key: str, items: list[Any], page: int, size: int,
           paging: bool, total: int | None) -> dict[str, Any]:
    body: dict[str, Any] = {key: items}
    if paging:
        pager: dict[str, Any] = {"page": page, "pageSize": size}
        if total is not None:
            pager.update(total=total, pageCount=max(1, -(-total // size)))
        body["pager"] = pager
        body.update(page=page, pageSize=size)  # 2.41 also gives them at the top
    return body


def _attribute_filters(request: web.Request) -> list[tuple[str, str, str]]:
    out = []
    for raw in request.query.getall("filter", []):
        for part in raw.split(","):
            bits = part.split(":")
            if len(bits) < 3 or not is_uid(bits[0]):
                raise BadRequest(f"filter `{part[:60]}` must be <attribute uid>:<op>:<value>")
            op, value = bits[1].lower(), ":".join(bits[2:])
            if op not in ("eq", "like", "in", "ilike", "sw"):
                raise BadRequest(f"filter operator `{op}` is not supported (eq, like, ilike, sw, in)")
            out.append((bits[0], {"ilike": "like", "sw": "like"}.get(op, op), value))
    return out


async def tracked_entities(request: web.Request) -> web.Response:
    index, user = index_of(request), user_of(request)
    q = request.query
    uid = request.match_info.get("uid")
    program = q.get("program")
    if program and index.get_typed("programs", program) is None:
        raise BadRequest(f"Program does not exist: `{program}`")
    te_type = q.get("trackedEntityType")
    ous = scope(request, index, user) if not uid else None
    if uid:
        ous = None
    uids = [uid] if uid else (_multi(request, "trackedEntities", "trackedEntity") or None)
    page, size, paging, want_total = _paging(request)
    fields = q.get("fields") or ""
    with_enrollments = uid is not None or "enrollments" in fields or fields in ("*", ":all")
    kw: dict[str, Any] = dict(org_units=ous, program=program, te_type=te_type, uids=uids,
                              updated_after=q.get("updatedAfter"),
                              include_deleted=_flag(request, "includeDeleted"),
                              attribute_filters=_attribute_filters(request))
    order = q.get("order") or "createdAt:desc"

    def read(conn: Any) -> tuple[list[dict[str, Any]], int | None]:
        items = tstore.query_tracked_entities(
            conn, **kw, order=order, offset=(page - 1) * size if paging else 0,
            limit=size if paging else 100_000, with_enrollments=with_enrollments,
            with_events=with_enrollments, with_relationships="relationships" in fields)
        total = tstore.count_tracked_entities(conn, **kw) if want_total else None
        return items, total
    items, total = await request.app[STORE].read(read)
    if uid:
        if not items:
            raise NotFound(f"TrackedEntity with id {uid} could not be found.")
        te = items[0]
        if not user.can_search(index, te.get("orgUnit", "")):
            raise NotFound(f"TrackedEntity with id {uid} could not be found.")
        return json_response(te)
    return json_response(_pager(request, "trackedEntities", items, page, size, paging, total))


async def enrollments(request: web.Request) -> web.Response:
    index, user = index_of(request), user_of(request)
    q = request.query
    uid = request.match_info.get("uid")
    ous = None if uid else scope(request, index, user)
    page, size, paging, _ = _paging(request)
    items = await request.app[STORE].read(lambda c: tstore.query_enrollments(
        c, org_units=ous, program=q.get("program"), te=q.get("trackedEntity"),
        uids=[uid] if uid else (_multi(request, "enrollments") or None),
        updated_after=q.get("updatedAfter"), include_deleted=_flag(request, "includeDeleted"),
        offset=(page - 1) * size if paging else 0, limit=size if paging else 100_000))
    if uid:
        if not items or not user.can_search(index, items[0].get("orgUnit", "")):
            raise NotFound(f"Enrollment with id {uid} could not be found.")
        return json_response(items[0])
    return json_response(_pager(request, "enrollments", items, page, size, paging, None))


async def events(request: web.Request) -> web.Response:
    index, user = index_of(request), user_of(request)
    q = request.query
    uid = request.match_info.get("uid")
    ous = None if uid else scope(request, index, user)
    page, size, paging, _ = _paging(request)
    status = q.get("status")
    if status and status.upper() not in ti.EVENT_STATUSES:
        raise BadRequest(f"status must be one of {', '.join(ti.EVENT_STATUSES)}")
    items = await request.app[STORE].read(lambda c: tstore.query_events(
        c, org_units=ous, program=q.get("program"), program_stage=q.get("programStage"),
        enrollment=q.get("enrollment"), te=q.get("trackedEntity"),
        uids=[uid] if uid else (_multi(request, "events") or None),
        updated_after=q.get("updatedAfter"), occurred_after=q.get("occurredAfter"),
        occurred_before=q.get("occurredBefore"), scheduled_after=q.get("scheduledAfter"),
        scheduled_before=q.get("scheduledBefore"), status=status.upper() if status else None,
        include_deleted=_flag(request, "includeDeleted"), order=q.get("order") or
        "occurredAt:desc", offset=(page - 1) * size if paging else 0,
        limit=size if paging else 100_000))
    if uid:
        if not items or not user.can_search(index, items[0].get("orgUnit", "")):
            raise NotFound(f"Event with id {uid} could not be found.")
        return json_response(items[0])
    return json_response(_pager(request, "events", items, page, size, paging, None))


def _visible(c: Any, index: MetadataIndex, user: User, doc: Mapping[str, Any]) -> bool:
    """DHIS2 shows a relationship to a user who may read both of its ends."""
    for kind, uid in tstore.relationship_ends(doc):
        ou = tstore.item_org_unit(c, kind, uid)
        if ou is None or not user.can_search(index, ou):
            return False
    return True


async def relationships(request: web.Request) -> web.Response:
    index, user = index_of(request), user_of(request)
    q = request.query
    uid = request.match_info.get("uid")
    deleted = _flag(request, "includeDeleted")
    if uid:
        def one(c: Any) -> dict[str, Any] | None:
            doc = tstore.relationship_by_uid(c, uid, deleted)
            return doc if doc is not None and _visible(c, index, user, doc) else None
        found = await request.app[STORE].read(one)
        if found is None:
            raise NotFound(f"Relationship with id {uid} could not be found.")
        return json_response(found)
    named = [(k, v) for k, v in (("trackedEntity", q.get("trackedEntity")),
                                 ("enrollment", q.get("enrollment")), ("event", q.get("event")))
             if v]
    if len(named) != 1:
        raise BadRequest("Give exactly one of trackedEntity, enrollment or event")
    kind, ref = named[0]

    def read(c: Any) -> list[dict[str, Any]] | None:
        ou = tstore.item_org_unit(c, kind, ref)
        if ou is None or not user.can_search(index, ou):
            return None
        return [d for d in tstore.query_relationships(c, include_deleted=deleted, **{
            {"trackedEntity": "te"}.get(kind, kind): ref}) if _visible(c, index, user, d)]
    items = await request.app[STORE].read(read)
    if items is None:
        raise NotFound(f"{kind[0].upper()}{kind[1:]} with id {ref} could not be found.")
    return json_response({"relationships": items, "pager": {"page": 1, "pageSize": len(items)}})


# -- reserved values, ownership, potential duplicates ------------------------------------------
async def generate_and_reserve(request: web.Request) -> web.Response:
    index, user = index_of(request), user_of(request)
    attr = request.match_info["id"]
    doc = index.get_typed("trackedEntityAttributes", attr)
    if doc is None:
        raise NotFound(f"TrackedEntityAttribute not found: `{attr}`")
    if not doc.get("generated") or not doc.get("pattern"):
        raise Conflict(f"TrackedEntityAttribute `{attr}` has no pattern to generate values from")
    reserve = request.path.rstrip("/").endswith("generateAndReserve")
    n = bounded_int(request.query.get("numberToReserve"), "numberToReserve", default=1, lo=1,
                    hi=1000) or 1
    days = bounded_int(request.query.get("expiration"), "expiration", default=60, lo=1,
                       hi=3650) or 60
    now = format_ts(int(time.time() * 1000))
    values = await request.app[STORE].write(lambda tx: tstore.reserve_values(
        tx, attr, doc["pattern"], n if reserve else 1, owner_user=user.username, now=now,
        days=days))
    return json_response(values if reserve else values[0])


async def transfer_ownership(request: web.Request) -> web.Response:
    index, user = index_of(request), user_of(request)
    q = request.query
    te, program, ou = q.get("trackedEntity"), q.get("program"), q.get("ou") or q.get("orgUnit")
    if not te or not program or not ou:
        raise BadRequest("trackedEntity, program and ou are required")
    if index.get_typed("programs", program) is None:
        raise BadRequest(f"Program does not exist: `{program}`")
    if index.get_typed("organisationUnits", ou) is None:
        raise BadRequest(f"Organisation unit does not exist: `{ou}`")
    owner = await request.app[STORE].read(lambda c: tstore.owner(c, te, program))
    if owner is None:
        raise NotFound(f"TrackedEntity `{te}` is not enrolled in program `{program}`")
    # the current owner's capture scope hands the record over; the target must be in the
    # program's org units (DHIS2: the receiving unit must run the program)
    if not user.can_write(index, owner):
        raise Forbidden(f"User `{user.username}` has no access to transfer `{te}` in `{program}`")
    if ou not in {r.get("id") for r in (index.get_typed("programs", program) or {}).get(
            "organisationUnits") or []}:
        raise Conflict(f"Program `{program}` is not assigned to organisation unit `{ou}`")
    await request.app[STORE].write(lambda tx: tstore.transfer_ownership(
        tx, te, program, ou, username=user.username, provenance=request.app[WRITES],
        client=request.remote))
    request.app[STATE].signal_sync("local-data")
    return json_response(web_message(200, "Ownership transferred", status="OK"))


async def potential_duplicates(request: web.Request) -> web.Response:
    index, user = index_of(request), user_of(request)
    store = request.app[STORE]
    if request.method == "GET":
        status = request.query.get("status")
        def read(c: Any) -> list[dict[str, Any]]:
            found = tstore.list_potential_duplicates(
                c, te=request.query.get("trackedEntity"),
                status=None if status in (None, "", "ALL") else status.upper())
            tes = tstore.existing(c, te_uids=[u for d in found
                                              for u in (d["original"], d["duplicate"])])
            where = {u: t.org_unit for u, t in tes.tracked_entities.items()}
            return [d for d in found if all(  # both people in the caller's search scope
                user.can_search(index, where.get(d[k], "")) for k in ("original", "duplicate"))]
        items = await store.read(read)
        return json_response({"potentialDuplicates": items,
                              "pager": {"page": 1, "pageSize": len(items), "total": len(items)}})
    body = parse_json(await request.read() or b"{}", what="Potential duplicate")
    if not isinstance(body, dict) or not is_uid(body.get("original")) or \
            not is_uid(body.get("duplicate")):
        raise BadRequest("A potential duplicate is {\"original\": uid, \"duplicate\": uid}")
    found = await store.read(lambda c: tstore.query_tracked_entities(
        c, org_units=None, program=None, te_type=None, uids=[body["original"], body["duplicate"]],
        with_enrollments=False, with_events=False))
    if len(found) != 2:
        raise NotFound("Both tracked entities must exist")
    if not all(user.can_search(index, t.get("orgUnit", "")) for t in found):
        raise Forbidden("Both tracked entities must be in your search scope")
    raw_reasons = body.get("reasons")
    reasons: list[Any] = raw_reasons if isinstance(raw_reasons, list) else []
    uid = await store.write(lambda tx: tstore.add_potential_duplicate(
        tx, body["original"], body["duplicate"], [str(r)[:200] for r in reasons],
        username=user.username))
    return json_response({"id": uid, "original": body["original"],
                          "duplicate": body["duplicate"], "status": "OPEN"})


async def potential_duplicate_status(request: web.Request) -> web.Response:
    user = user_of(request)
    status = (request.query.get("status") or "").upper()
    if status not in ("OPEN", "INVALID", "MERGED"):
        raise BadRequest("status must be OPEN, INVALID or MERGED")
    if not user.has("F_TRACKED_ENTITY_MERGE") and status == "MERGED":
        raise Forbidden("Marking a duplicate merged needs F_TRACKED_ENTITY_MERGE")
    index, uid = index_of(request), request.match_info["id"]

    def visible(c: Any) -> bool:
        pair = next((d for d in tstore.list_potential_duplicates(c) if d["id"] == uid), None)
        if pair is None:
            return True  # the store's NotFound says so
        tes = tstore.existing(c, te_uids=[pair["original"], pair["duplicate"]])
        return all(user.can_search(index, t.org_unit) for t in tes.tracked_entities.values())
    if not await request.app[STORE].read(visible):
        raise NotFound(f"PotentialDuplicate {uid} not found")
    await request.app[STORE].write(lambda tx: tstore.set_duplicate_status(
        tx, request.match_info["id"], status, username=user.username, client=request.remote))
    return json_response(web_message(200, "Potential duplicate updated", status="OK"))


# -- search and the duplicate check (the hub's own, for the registration pages) ---------------
def _search_scope(index: MetadataIndex, user: User) -> list[str] | None:
    roots = user.search_org_units or user.view_org_units
    if not roots:
        return None if user.is_superuser else []
    return sorted({d for r in roots for d in index.descendants(r)})


def _codes(index: MetadataIndex) -> dict[str, str]:
    """attribute uid -> its code (BD_NAME_BN...), for answers a page can read."""
    return {a["id"]: a["code"] for a in index.list("trackedEntityAttributes") if a.get("code")}


def _people(conn: Any, index: MetadataIndex, uids: list[str]) -> dict[str, dict[str, Any]]:
    codes = _codes(index)
    out = {}
    for te in tstore.query_tracked_entities(conn, org_units=None, program=None, te_type=None,
                                            uids=uids, limit=None, with_enrollments=False,
                                            with_events=False):
        out[te["trackedEntity"]] = {
            "trackedEntity": te["trackedEntity"], "orgUnit": te["orgUnit"],
            "attributes": {codes.get(a["attribute"], a["attribute"]): a.get("value")
                           for a in te.get("attributes", [])}}
    return out


async def people_search(request: web.Request) -> web.Response:
    """``GET /api/hub/people?q=``: the register, searched by name (Bangla or Latin, with
    spelling variants and typos), phone or birth registration number, in the caller's
    search scope; best first."""
    index, user = index_of(request), user_of(request)
    text = (request.query.get("q") or "").strip()
    if len(text) > 200:
        raise BadRequest("`q` is at most 200 characters")
    limit = bounded_int(request.query.get("limit"), "limit", default=20, lo=1, hi=100) or 20
    ous = _search_scope(index, user)

    def read(c: Any) -> list[dict[str, Any]]:
        hits = search.search(c, text, org_units=ous, limit=limit) if text else []
        found = _people(c, index, [h.te for h in hits])
        return [{**found[h.te], "score": round(h.score, 3), "matched": h.matched}
                for h in hits if h.te in found]
    return json_response({"people": await request.app[STORE].read(read), "q": text})


async def people_duplicates(request: web.Request) -> web.Response:
    """``POST /api/hub/people/duplicates`` with the registration form's attributes (by code
    or uid): the registered people who may be the same person, with the reasons."""
    index, user = index_of(request), user_of(request)
    body = parse_json(await request.read() or b"{}", what="Registration form")
    raw = body.get("attributes") if isinstance(body, dict) else None
    if not isinstance(raw, dict) or not all(isinstance(v, str | None) for v in raw.values()):
        raise BadRequest("Send {\"attributes\": {code or uid: text}} as the form holds them")
    codes = _codes(index)
    person: dict[str, str] = {str(codes.get(k, k)): v for k, v in raw.items()
                              if isinstance(v, str) and v.strip()}
    ous = _search_scope(index, user)
    tr = await reader(request)

    def read(c: Any) -> list[dict[str, Any]]:
        cands = search.duplicates(c, person, org_units=ous)
        found = _people(c, index, [x.te for x in cands])
        # reasons: English, as national is sent them; said: the same in the reader's words
        return [{**found[x.te], "score": round(x.score, 3), "reasons": x.reasons,
                 "said": [tr(w, **{k: tr.digit(v) if isinstance(v, str) else v
                                   for k, v in f.items()}) for w, f in x.words]}
                for x in cands if x.te in found]
    return json_response({"candidates": await request.app[STORE].read(read),
                          "threshold": search.DUPLICATE_THRESHOLD})


# -- store adapters ----------------------------------------------------------------------------
def _existing(conn: Any, uids: dict[str, list[str]]) -> ti.Existing:
    """What validation needs of the stored records the payload names or touches."""
    found = tstore.existing(conn, te_uids=uids[ti.TE], enrollment_uids=uids[ti.ENROLLMENT],
                            event_uids=uids[ti.EVENT], relationship_uids=uids[ti.RELATIONSHIP])
    tes = sorted(found.tracked_entities)
    attrs: dict[str, list[str]] = {}
    if tes:
        for te in tstore.query_tracked_entities(conn, org_units=None, program=None, te_type=None,
                                                uids=tes, include_deleted=True, limit=None,
                                                with_enrollments=False, with_events=False):
            attrs[te["trackedEntity"]] = [a["attribute"] for a in te.get("attributes", [])
                                          if a.get("value") not in (None, "")]
    of_te: dict[str, list[dict[str, Any]]] = {}
    enr_ids = set(found.enrollments)
    for doc in tstore.query_enrollments(conn, tes=tes, limit=None) if tes else []:
        of_te.setdefault(doc["trackedEntity"], []).append(
            {"uid": doc["enrollment"], "program": doc["program"], "status": doc.get("status")})
        enr_ids.add(doc["enrollment"])
    stage_events: dict[tuple[str, str], int] = {}
    values: dict[str, list[str]] = {}
    if enr_ids:
        for ev in tstore.query_events(conn, enrollments=sorted(enr_ids), limit=None):
            k = (ev.get("enrollment") or "", ev["programStage"])
            stage_events[k] = stage_events.get(k, 0) + 1
    for ev in tstore.query_events(conn, uids=sorted(found.events), include_deleted=True,
                                  limit=None) if found.events else []:
        values[ev["event"]] = [d["dataElement"] for d in ev.get("dataValues", [])
                               if d.get("value") not in (None, "")]
    owners = {(te, prog): ou for te, info in found.tracked_entities.items()
              for prog, ou in info.owners.items()}
    for info in found.enrollments.values():  # an enrollment's owner, its TE not named
        if (info.te, info.program) not in owners:
            owner = tstore.owner(conn, info.te, info.program)
            if owner:
                owners[(info.te, info.program)] = owner
    for v in found.events.values():
        if v.te and (v.te, v.program) not in owners:
            owner = tstore.owner(conn, v.te, v.program)
            if owner:
                owners[(v.te, v.program)] = owner
    return ti.Existing(
        te={u: {"org_unit": i.org_unit, "type": i.type, "deleted": i.deleted,
                "attributes": attrs.get(u, [])} for u, i in found.tracked_entities.items()},
        enrollment={u: {"te": i.te, "program": i.program, "org_unit": i.org_unit,
                        "status": i.status, "deleted": i.deleted}
                    for u, i in found.enrollments.items()},
        event={u: {"te": i.te, "enrollment": i.enrollment, "program": i.program,
                   "program_stage": i.program_stage, "org_unit": i.org_unit,
                   "status": i.status, "deleted": i.deleted, "values": values.get(u, [])}
               for u, i in found.events.items()},
        relationship={u: {"type": i.type, "deleted": i.deleted}
                      for u, i in found.relationships.items()},
        owners=owners, enrollments_of=of_te, stage_events=stage_events)


def _geometry(obj: dict[str, Any]) -> str | None:
    g = obj.get("geometry")
    return orjson.dumps(g).decode() if isinstance(g, dict) else None


def _notes(obj: dict[str, Any]) -> list[dict[str, Any]]:
    notes = obj.get("notes")
    return [n for n in notes if isinstance(n, dict)] if isinstance(notes, list) else []


def _text(v: Any) -> str | None:
    return v if isinstance(v, str) and v else None


def _bundle(plan: ti.Plan) -> tstore.Bundle:
    b = tstore.Bundle()
    deleting = plan.options.strategy == "DELETE"
    for o in plan.objects[ti.TE]:
        b.tracked_entities.append(tstore.TrackedEntityIn(
            uid=o["trackedEntity"], type=o.get("trackedEntityType") or "",
            org_unit=o.get("orgUnit") or "", attributes=o.get("_attributes", []),
            inactive=bool(o.get("inactive")), geometry=_geometry(o),
            created_at_client=_text(o.get("createdAtClient")),
            updated_at_client=_text(o.get("updatedAtClient")), deleted=deleting))
    for o in plan.objects[ti.ENROLLMENT]:
        b.enrollments.append(tstore.EnrollmentIn(
            uid=o["enrollment"], te=o.get("trackedEntity") or "", program=o.get("program") or "",
            org_unit=o.get("orgUnit") or "", status=o.get("status") or "ACTIVE",
            enrolled_at=_text(o.get("enrolledAt")), occurred_at=_text(o.get("occurredAt")),
            completed_at=_text(o.get("completedAt")), follow_up=bool(o.get("followUp")),
            notes=_notes(o), geometry=_geometry(o),
            created_at_client=_text(o.get("createdAtClient")),
            updated_at_client=_text(o.get("updatedAtClient")), deleted=deleting))
    for o in plan.objects[ti.EVENT]:
        b.events.append(tstore.EventIn(
            uid=o["event"], program=o.get("program") or "",
            program_stage=o.get("programStage") or "", org_unit=o.get("orgUnit") or "",
            enrollment=_text(o.get("enrollment")), te=_text(o.get("trackedEntity")),
            status=o.get("status") or "ACTIVE", occurred_at=_text(o.get("occurredAt")),
            scheduled_at=_text(o.get("scheduledAt")), completed_at=_text(o.get("completedAt")),
            aoc=_text(o.get("attributeOptionCombo")), data_values=o.get("_values", []),
            notes=_notes(o), follow_up=bool(o.get("followUp") or o.get("followup")),
            geometry=_geometry(o), created_at_client=_text(o.get("createdAtClient")),
            updated_at_client=_text(o.get("updatedAtClient")), deleted=deleting))
    for o in plan.objects[ti.RELATIONSHIP]:
        b.relationships.append(tstore.RelationshipIn(
            uid=o["relationship"], type=o.get("relationshipType") or "",
            from_doc=o.get("from") or {}, to_doc=o.get("to") or {},
            bidirectional=bool(o.get("bidirectional")), deleted=deleting))
    return b


_ACTION = {tstore.CREATED: "CREATE", tstore.UPDATED: "UPDATE", tstore.DELETED: "DELETE",
           tstore.IGNORED: "IGNORE"}


def _applied(result: tstore.BundleResult) -> dict[str, str]:
    return {uid: _ACTION[action] for uid, _t, action in result.objects}


def setup(app: web.Application) -> None:
    add_api(app, "POST", "/tracker", post_tracker)
    add_api(app, "GET", "/tracker/jobs/{id}", job_status)
    add_api(app, "GET", "/tracker/jobs/{id}/report", job_report)
    add_api(app, "PUT", "/tracker/ownership/transfer", transfer_ownership)
    for name, handler in (("trackedEntities", tracked_entities), ("enrollments", enrollments),
                          ("events", events)):
        add_api(app, "GET", f"/tracker/{name}", handler)
        add_api(app, "GET", f"/tracker/{name}/{{uid}}", handler)
    add_api(app, "GET", "/tracker/relationships", relationships)
    add_api(app, "GET", "/tracker/relationships/{uid}", relationships)
    add_api(app, "GET", "/trackedEntityAttributes/{id}/generateAndReserve", generate_and_reserve)
    add_api(app, "GET", "/trackedEntityAttributes/{id}/generate", generate_and_reserve)
    add_api(app, "GET", "/hub/people", people_search)
    add_api(app, "POST", "/hub/people/duplicates", people_duplicates)
    add_api(app, "GET", "/potentialDuplicates", potential_duplicates)
    add_api(app, "POST", "/potentialDuplicates", potential_duplicates)
    add_api(app, "PUT", "/potentialDuplicates/{id}", potential_duplicate_status)
