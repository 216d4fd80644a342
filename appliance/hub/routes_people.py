"""The hub's own API behind the register pages (``pages_people``): program rules evaluated
for a form, a person's sync states, and the weekly lists.

* ``POST /api/hub/rules``: the effects of a program's rules on the form being filled in
  (registration/enrolment or a visit), run by ``dhis2.program_rules``;
* ``GET /api/hub/people/{uid}/syncStates``: the record page's sync state per row;
* ``GET /api/hub/lists/{list}``: ``pregnant`` (active maternal enrollments), ``children``
  (under-5 children in child health or the under-5 register, each once) and ``due`` (visits
  due this week and missed, from ``dhis2.schedule``), for an org unit subtree by program
  owner: a referred person moves to the UHC's lists.

Reads follow the tracker search scope (a CHCP may see the upazila); nothing here writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from aiohttp import web

from ..dhis2 import program_rules as pr
from ..dhis2 import schedule
from ..dhis2.fields import DISPLAY_LOCALE, get_prop, translated
from ..errors import BadRequest, Forbidden, NotFound
from ..store import synclog, worklists
from ..store.metadata import MetadataIndex
from ..store.users import User
from ..webguard import parse_json
from .web import STORE, add_api, index_of, json_response, user_of

# The registers' codes (Bangladesh's community clinic registers): which programs make the
# pregnant-women list and the under-5 list, and the person attributes the lists show.
PREGNANT_PROGRAMS = ("BD_MATERNAL",)
CHILD_PROGRAMS = ("BD_EPI", "BD_U5")
DOB_ATTRIBUTE = "BD_DOB"
LISTS = ("pregnant", "children", "due")
MAX_VALUES = 500
MAX_TEXT = 50_000

_compiled: dict[tuple[int, Any, str], pr.Program] = {}


def _program(index: MetadataIndex, uid: str) -> pr.Program:
    key = (id(index), index.version, uid)
    prog = _compiled.get(key)
    if prog is None:
        doc = index.get_typed("programs", uid)
        if doc is None:
            raise BadRequest(f"Program does not exist: `{uid}`")
        if len(_compiled) > 64:
            _compiled.clear()
        prog = _compiled[key] = pr.compile_program(doc, index.list)
    return prog


def _may_use_program(index: MetadataIndex, user: User, program: Mapping[str, Any]) -> bool:
    """A user works with a program when it runs at an org unit they may search."""
    if user.is_superuser:
        return True
    return any(user.can_search(index, r.get("id", ""))
               for r in program.get("organisationUnits") or [])


def _values(raw: Any, what: str) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or len(raw) > MAX_VALUES:
        raise BadRequest(f"`{what}` is an object of at most {MAX_VALUES} uid: value pairs")
    out = {}
    for k, v in raw.items():
        if v is None or v == "":
            continue
        if not isinstance(v, str | int | float) or isinstance(v, bool) or \
                len(str(v)) > MAX_TEXT:
            raise BadRequest(f"`{what}.{k}` must be a string")
        out[str(k)] = str(v)
    return out


def _day(raw: Any, what: str) -> str | None:
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str):
        raise BadRequest(f"`{what}` must be a date, yyyy-MM-dd")
    try:
        return date.fromisoformat(raw[:10]).isoformat()
    except ValueError:
        raise BadRequest(f"`{what}` must be a date, yyyy-MM-dd") from None


def _opt_str(raw: Any, what: str) -> str | None:
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str) or len(raw) > 200:
        raise BadRequest(f"`{what}` must be a string")
    return raw


async def rules(request: web.Request) -> web.Response:
    """``POST /api/hub/rules``: {program, programStage?, attributes, dataValues, eventDate?,
    enrollmentDate?, incidentDate?, enrollment?, event?} -> {effects, errors}."""
    index, user = index_of(request), user_of(request)
    body = parse_json(await request.read() or b"{}", what="Program rules request")
    if not isinstance(body, dict) or not isinstance(body.get("program"), str):
        raise BadRequest("Send {\"program\": uid, ...} with the form's values")
    doc = index.get_typed("programs", body["program"])
    if doc is None:
        raise BadRequest(f"Program does not exist: `{body['program']}`")
    if not _may_use_program(index, user, doc):
        raise Forbidden(f"Program `{body['program']}` does not run in your org units")
    prog = _program(index, body["program"])
    stage = _opt_str(body.get("programStage"), "programStage")
    if stage is not None and stage not in prog.stage_names:
        raise BadRequest(f"Program stage `{stage}` is not in program `{prog.uid}`")
    attributes = _values(body.get("attributes"), "attributes")
    data = _values(body.get("dataValues"), "dataValues")
    event_date = _day(body.get("eventDate"), "eventDate")
    enrollment = _opt_str(body.get("enrollment"), "enrollment")
    current = _opt_str(body.get("event"), "event")
    others: list[pr.Event] = []
    if enrollment is not None:
        others = await _other_events(request, index, user, enrollment, current)
    event = None if stage is None else pr.Event(
        stage=stage, date=event_date, values=data, uid=current,
        status=_opt_str(body.get("status"), "status") or "ACTIVE")
    ctx = pr.Context(
        today=date.today(), attributes=attributes, event=event, other_events=others,
        enrollment_date=_day(body.get("enrollmentDate"), "enrollmentDate"),
        incident_date=_day(body.get("incidentDate"), "incidentDate"),
        enrollment_id=enrollment, enrollment_status="ACTIVE")
    result = pr.run(prog, ctx)
    return json_response({"effects": _in_reader_language(index, result.effects),
                          "errors": result.errors})


def _in_reader_language(index: MetadataIndex, effects: list[dict[str, Any]]
                        ) -> list[dict[str, Any]]:
    """The rules' messages in the language asked for (``?locale=``, the user's choice):
    an action's translated content (DHIS2's displayContent), its evaluated data after it."""
    locale = DISPLAY_LOCALE.get()
    if locale is None:
        return effects
    for e in effects:
        if "content" not in e:
            continue
        text = translated(index.get(e.get("programRuleAction") or "") or {}, "displayContent",
                          locale)
        if text is not None:
            e["content"] = f"{text} {e['data']}" if e.get("data") else text
    return effects


async def _other_events(request: web.Request, index: MetadataIndex, user: User,
                        enrollment: str, current: str | None) -> list[pr.Event]:
    def read(c: Any) -> tuple[list[dict[str, Any]], str | None]:
        found = worklists.enrollment_events(c, [enrollment]).get(enrollment, [])
        info = worklists.enrollment_owner(c, enrollment)
        values = worklists.event_values(c, [e["event"] for e in found])
        return [{**e, "values": values.get(e["event"], {})} for e in found], info
    events, owner = await request.app[STORE].read(read)
    if owner is None or not user.can_search(index, owner):
        raise NotFound(f"Enrollment not found: `{enrollment}`")
    return [pr.Event(stage=e["programStage"], date=e["occurredAt"] or e["scheduledAt"],
                     values=e["values"], uid=e["event"], status=e["status"])
            for e in events if e["event"] != current]


async def sync_states(request: web.Request) -> web.Response:
    index, user = index_of(request), user_of(request)
    te = request.match_info["uid"]
    def read(c: Any) -> tuple[dict[str, Any], str | None]:
        states = worklists.record_sync_states(c, te)
        if states:  # national's refusals with DHIS2's code and message, by uid
            uids = [te, *states["enrollments"], *states["events"]]
            states["rejections"] = synclog.tracker_rejections(c, uids)
        return states, worklists.person_org_unit(c, te)
    states, ou = await request.app[STORE].read(read)
    if not states or ou is None or not user.can_search(index, ou):
        raise NotFound(f"TrackedEntity not found: `{te}`")
    return json_response(states)


# -- the weekly lists ---------------------------------------------------------------------
def _codes(index: MetadataIndex) -> dict[str, str]:
    return {a["id"]: a["code"] for a in index.list("trackedEntityAttributes") if a.get("code")}


def _programs(index: MetadataIndex, codes: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    return {p["id"]: p for p in index.list("programs") if p.get("code") in codes}


def _list_scope(request: web.Request, index: MetadataIndex, user: User) -> tuple[str, list[str]]:
    ou = request.query.get("orgUnit") or request.query.get("ou")
    if not ou:
        if not user.org_units:
            raise BadRequest("orgUnit is required: your account has no org unit of its own")
        ou = user.org_units[0]
    if index.get_typed("organisationUnits", ou) is None:
        raise BadRequest(f"Organisation unit does not exist: `{ou}`")
    if not user.can_search(index, ou):
        raise Forbidden(f"Organisation unit is not part of your search scope: `{ou}`")
    return ou, index.descendants(ou)


def _list_date(request: web.Request) -> date:
    raw = request.query.get("date")
    if not raw:
        return date.today()
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise BadRequest("`date` must be yyyy-MM-dd") from None


def _to_date(ts: str | None) -> date | None:
    if not ts:
        return None
    try:
        return date.fromisoformat(ts[:10])
    except ValueError:
        return None


def _name(index: MetadataIndex, uid: str) -> str:
    """A program's, stage's or org unit's name in the language asked for (``?locale=``)."""
    return str(get_prop(index.get(uid) or {}, "displayName") or uid)


def _age_years(dob: date, on: date) -> int:
    return on.year - dob.year - ((on.month, on.day) < (dob.month, dob.day))


async def lists(request: web.Request) -> web.Response:
    index, user = index_of(request), user_of(request)
    which = request.match_info["list"]
    if which not in LISTS:
        raise NotFound(f"No list `{which}`: the lists are {', '.join(LISTS)}")
    ou, subtree = _list_scope(request, index, user)
    today = _list_date(request)
    codes = _codes(index)
    progs = _programs(index, PREGNANT_PROGRAMS if which == "pregnant" else CHILD_PROGRAMS
                      if which == "children" else PREGNANT_PROGRAMS + CHILD_PROGRAMS)

    def read(c: Any) -> tuple[list[dict[str, Any]], dict[str, dict[str, str]],
                              dict[str, list[dict[str, Any]]]]:
        enr = worklists.active_enrollments(c, programs=list(progs), org_units=subtree)
        attrs = worklists.attribute_values(c, [e["trackedEntity"] for e in enr])
        events = worklists.enrollment_events(c, [e["enrollment"] for e in enr]) \
            if which != "children" else {}
        return enr, attrs, events
    enr, attrs, events = await request.app[STORE].read(read)

    def person(te: str) -> dict[str, str]:
        return {codes.get(k, k): v for k, v in attrs.get(te, {}).items()}
    head = {"list": which, "orgUnit": ou, "orgUnitName": _name(index, ou),
            "date": today.isoformat()}
    if which == "pregnant":
        people = []
        for e in enr:
            lmp = _to_date(e["occurredAt"])
            people.append({**e, "programName": _name(index, e["program"]),
                           "orgUnitName": _name(index, e["orgUnit"]),
                           "attributes": person(e["trackedEntity"]),
                           "weeks": None if lmp is None else (today - lmp).days // 7})
        return json_response({**head, "people": people})
    if which == "children":
        seen: dict[str, dict[str, Any]] = {}
        for e in enr:
            a = person(e["trackedEntity"])
            dob = _to_date(a.get(DOB_ATTRIBUTE)) or _to_date(e["occurredAt"])
            if dob is not None and _age_years(dob, today) >= 5:
                continue  # five or older: no longer on the under-5 list
            row = seen.setdefault(e["trackedEntity"], {
                "trackedEntity": e["trackedEntity"], "orgUnit": e["orgUnit"],
                "orgUnitName": _name(index, e["orgUnit"]), "attributes": a,
                "ageMonths": None if dob is None else
                (today.year - dob.year) * 12 + today.month - dob.month
                - (today.day < dob.day), "programs": []})
            row["programs"].append(_name(index, e["program"]))
        return json_response({**head, "people": list(seen.values())})
    stage_docs = {s["id"]: s for s in index.list("programStages")}
    stages = {pid: schedule.stages_of(p, stage_docs) for pid, p in progs.items()}
    visits = []
    for e in enr:
        evs = events.get(e["enrollment"], [])
        due = schedule.due_visits(
            stages[e["program"]], enrolled=_to_date(e["enrolledAt"]),
            incident=_to_date(e["occurredAt"]),
            events=[schedule.Visit(v["event"], v["programStage"], v["status"],
                                   _to_date(v["occurredAt"]), _to_date(v["scheduledAt"]))
                    for v in evs])
        for d in due:
            kind = schedule.classify(d.due, today)
            if kind is None:
                continue
            visits.append({
                "trackedEntity": e["trackedEntity"], "enrollment": e["enrollment"],
                "program": e["program"], "programName": _name(index, e["program"]),
                "programStage": d.stage, "stageName": _name(index, d.stage),
                "orgUnit": e["orgUnit"], "orgUnitName": _name(index, e["orgUnit"]),
                "event": d.event, "dueDate": d.due.isoformat(), "status": kind[0],
                "daysOverdue": kind[1] if kind[0] == "overdue" else 0,
                "attributes": person(e["trackedEntity"])})
    visits.sort(key=lambda v: (v["status"] != "overdue", v["dueDate"]))
    week_end = date.fromordinal(today.toordinal() + schedule.WEEK_DAYS - 1)
    return json_response({**head, "visits": visits, "weekEnds": week_end.isoformat()})


def setup(app: web.Application) -> None:
    add_api(app, "POST", "/hub/rules", rules)
    add_api(app, "GET", "/hub/people/{uid}/syncStates", sync_states)
    add_api(app, "GET", "/hub/lists/{list}", lists)

