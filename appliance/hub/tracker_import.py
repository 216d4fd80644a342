"""Validating a ``POST /api/tracker`` payload as DHIS2 2.41's tracker importer does.

The payload is flat (``trackedEntities``, ``enrollments``, ``events``, ``relationships``
linked by uid, as the Android SDK sends it) or nested (enrollments inside tracked
entities, events inside enrollments, as the web apps send it); both are flattened first.
Each object is then checked against the metadata, the stored records and the user's
capture scope, and refused with DHIS2's E1xxx/E4xxx code. With ``atomicMode=OBJECT``
an object whose parent was refused is refused too (E5000); with ``ALL`` one refusal
refuses the whole payload. Nothing here writes: ``apply`` in the route hands the valid
objects to ``store.tracker``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..dhis2 import valuetypes
from ..dhis2.timefmt import parse_ts
from ..dhis2.uid import is_uid
from ..errors import BadRequest
from ..store.metadata import MetadataIndex
from ..store.users import User

TE, ENROLLMENT, EVENT, RELATIONSHIP = "TRACKED_ENTITY", "ENROLLMENT", "EVENT", "RELATIONSHIP"
TYPES = (TE, ENROLLMENT, EVENT, RELATIONSHIP)
KEYS = {TE: "trackedEntities", ENROLLMENT: "enrollments", EVENT: "events",
        RELATIONSHIP: "relationships"}
ID = {TE: "trackedEntity", ENROLLMENT: "enrollment", EVENT: "event",
      RELATIONSHIP: "relationship"}
STRATEGIES = ("CREATE_AND_UPDATE", "CREATE", "UPDATE", "DELETE")
EVENT_STATUSES = ("ACTIVE", "COMPLETED", "VISITED", "SCHEDULE", "OVERDUE", "SKIPPED")
ENROLLMENT_STATUSES = ("ACTIVE", "COMPLETED", "CANCELLED")


@dataclass(frozen=True)
class Options:
    strategy: str = "CREATE_AND_UPDATE"
    atomic: str = "ALL"          # ALL | OBJECT
    dry_run: bool = False

    @classmethod
    def parse(cls, q: Mapping[str, str]) -> Options:
        strategy = (q.get("importStrategy") or "CREATE_AND_UPDATE").upper()
        if strategy not in STRATEGIES:
            raise BadRequest(f"importStrategy must be one of {', '.join(STRATEGIES)}")
        atomic = (q.get("atomicMode") or "ALL").upper()
        if atomic not in ("ALL", "OBJECT"):
            raise BadRequest("atomicMode must be ALL or OBJECT")
        dry = (q.get("dryRun") or "false").lower()
        if dry not in ("true", "false"):
            raise BadRequest("dryRun must be true or false")
        return cls(strategy, atomic, dry == "true")


@dataclass
class ErrorReport:
    uid: str
    tracker_type: str
    code: str
    message: str

    def as_json(self) -> dict[str, Any]:
        return {"message": self.message, "errorCode": self.code, "trackerType": self.tracker_type,
                "uid": self.uid}


@dataclass
class Existing:
    """What the store holds of the payload's uids (``store.tracker.existing``'s answer,
    reduced to what validation reads)."""

    te: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)          # uid -> org_unit, type, deleted
    enrollment: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # uid -> te, program, org_unit, status, deleted
    event: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)       # uid -> program, program_stage, enrollment, deleted, status
    relationship: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    owners: Mapping[tuple[str, str], str] = field(default_factory=dict)        # (te, program) -> org unit
    enrollments_of: Mapping[str, Sequence[Mapping[str, Any]]] = field(default_factory=dict)  # te -> [{uid, program, status, deleted}]
    stage_events: Mapping[tuple[str, str], int] = field(default_factory=dict)  # (enrollment, stage) -> live events


@dataclass
class Plan:
    """The outcome of validation: per type, the objects to write (with the action each
    one takes) and the refusals."""

    options: Options
    objects: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: {t: [] for t in TYPES})
    actions: dict[str, str] = field(default_factory=dict)   # uid -> CREATE | UPDATE | DELETE
    errors: list[ErrorReport] = field(default_factory=list)
    warnings: list[ErrorReport] = field(default_factory=list)
    total: dict[str, int] = field(default_factory=lambda: {t: 0 for t in TYPES})

    @property
    def refused(self) -> set[str]:
        return {e.uid for e in self.errors}


UniqueOwner = Callable[[str, str], "str | None"]  # (attribute, value) -> the TE holding it


def flatten(body: Any) -> dict[str, list[dict[str, Any]]]:
    """The four flat lists of a flat or nested payload (children get their parents' uids)."""
    if not isinstance(body, dict):
        raise BadRequest("A tracker payload is a JSON object with trackedEntities, enrollments, "
                         "events and/or relationships")
    out: dict[str, list[dict[str, Any]]] = {t: [] for t in TYPES}
    for t in TYPES:
        items = body.get(KEYS[t], [])
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise BadRequest(f"`{KEYS[t]}` must be a list of objects")

    def add_events(enr: dict[str, Any]) -> None:
        for ev in enr.pop("events", None) or []:
            if isinstance(ev, dict):
                ev.setdefault("enrollment", enr.get("enrollment"))
                ev.setdefault("program", enr.get("program"))
                ev.setdefault("trackedEntity", enr.get("trackedEntity"))
                out[EVENT].append(ev)

    for te in body.get("trackedEntities", []):
        te = dict(te)
        for enr in te.pop("enrollments", None) or []:
            if isinstance(enr, dict):
                enr = dict(enr)
                enr.setdefault("trackedEntity", te.get("trackedEntity"))
                add_events(enr)
                out[ENROLLMENT].append(enr)
        for rel in te.pop("relationships", None) or []:
            if isinstance(rel, dict):
                out[RELATIONSHIP].append(rel)
        out[TE].append(te)
    for enr in body.get("enrollments", []):
        enr = dict(enr)
        add_events(enr)
        out[ENROLLMENT].append(enr)
    out[EVENT] += [dict(e) for e in body.get("events", [])]
    out[RELATIONSHIP] += [dict(r) for r in body.get("relationships", [])]
    return out


class _Check:
    """One validation run; ``plan`` collects the outcome."""

    def __init__(self, index: MetadataIndex, user: User, existing: Existing, opts: Options,
                 now: datetime, unique_owner: UniqueOwner, new_uid: Callable[[], str]) -> None:
        self.index, self.user, self.ex, self.now = index, user, existing, now
        self.unique_owner, self.new_uid = unique_owner, new_uid
        self.plan = Plan(opts)
        self.incoming: dict[str, dict[str, dict[str, Any]]] = {t: {} for t in TYPES}

    # -- helpers ------------------------------------------------------------------------------
    def refuse(self, t: str, uid: str, code: str, message: str) -> None:
        self.plan.errors.append(ErrorReport(uid, t, code, message))

    def warn(self, t: str, uid: str, code: str, message: str) -> None:
        self.plan.warnings.append(ErrorReport(uid, t, code, message))

    def _uid(self, t: str, obj: dict[str, Any]) -> str | None:
        uid = obj.get(ID[t])
        if uid in (None, ""):
            if self.plan.options.strategy == "DELETE":
                self.refuse(t, "", f"E112{TYPES.index(t) + 1}", f"Missing required {ID[t]} "
                            f"property: `{ID[t]}`.")
                return None
            uid = obj[ID[t]] = self.new_uid()  # DHIS2 makes uids for new objects
        if not isinstance(uid, str) or not is_uid(uid):
            self.refuse(t, str(uid)[:40], "E1048", f"Object: `{ID[t]}`, uid: `{str(uid)[:40]}`, "
                        "has an invalid uid format.")
            return None
        return uid

    def _action(self, t: str, uid: str, stored: Mapping[str, Any] | None) -> str | None:
        strategy = self.plan.options.strategy
        label = {TE: "TrackedEntity", ENROLLMENT: "Enrollment", EVENT: "Event",
                 RELATIONSHIP: "Relationship"}[t]
        missing = {TE: "E1063", ENROLLMENT: "E1081", EVENT: "E1032", RELATIONSHIP: "E4016"}[t]
        exists = {TE: "E1002", ENROLLMENT: "E1080", EVENT: "E1030", RELATIONSHIP: "E4015"}[t]
        gone = {TE: "E1114", ENROLLMENT: "E1113", EVENT: "E1082", RELATIONSHIP: "E4017"}[t]
        if stored is not None and stored.get("deleted"):
            self.refuse(t, uid, gone, f"{label}: `{uid}`, is already deleted and cannot be "
                                      "modified.")
            return None
        if strategy == "DELETE" or strategy == "UPDATE":
            if stored is None:
                self.refuse(t, uid, missing, f"{label}: `{uid}`, does not exist.")
                return None
            return "DELETE" if strategy == "DELETE" else "UPDATE"
        if stored is not None:
            if strategy == "CREATE":
                self.refuse(t, uid, exists, f"{label}: `{uid}`, already exists.")
                return None
            return "UPDATE"
        return "CREATE"

    def _date(self, t: str, uid: str, obj: Mapping[str, Any], prop: str, code: str,
              required: bool) -> int | None | bool:
        """Epoch ms of a date property; False after refusing it."""
        v = obj.get(prop)
        if v in (None, ""):
            if required:
                self.refuse(t, uid, code, f"Property {prop} is null or has an invalid format: "
                                          f"`{v}`.")
                return False
            return None
        ms = parse_ts(v) if isinstance(v, str) else None
        if ms is None:
            self.refuse(t, uid, code, f"Property {prop} is null or has an invalid format: `{v}`.")
            return False
        return ms

    def _writable(self, t: str, uid: str, ou: str) -> bool:
        if not self.user.can_write(self.index, ou):
            self.refuse(t, uid, "E1000", f"User: `{self.user.username}`, has no write access to "
                                         f"OrganisationUnit: `{ou}`.")
            return False
        return True

    def _owner_ok(self, t: str, uid: str, te: str | None, program: str) -> bool:
        """Protected programs: the record's owner org unit must be in the user's capture
        scope (a referral moves ownership, and with it who may write)."""
        if not te:
            return True
        owner = self.ex.owners.get((te, program))
        prog = self.index.get_typed("programs", program) or {}
        if owner is None or prog.get("accessLevel", "OPEN") in ("OPEN", "AUDITED"):
            return True
        if self.user.can_write(self.index, owner):
            return True
        self.refuse(t, uid, "E1102", f"User: `{self.user.username}`, does not have access to the "
                                     f"tracked entity: `{te}`, Program: `{program}`, combination.")
        return False

    def _value(self, t: str, uid: str, target: str, doc: Mapping[str, Any], raw: Any,
               code: str) -> tuple[bool, str | None]:
        """(ok, normalised value) of an attribute or data value; None clears the field."""
        if raw is None or raw == "":
            return True, None
        if isinstance(raw, bool):
            raw = "true" if raw else "false"
        elif isinstance(raw, (int, float)):
            raw = str(raw)
        if not isinstance(raw, str):
            self.refuse(t, uid, code, f"`{target}`: a value is a string, number or boolean")
            return False, None
        options = None
        os_ = doc.get("optionSet")
        if isinstance(os_, dict):
            options = self.index.option_codes.get(os_.get("id", ""), set())
            if raw not in options:
                self.refuse(t, uid, "E1125", f"Value `{raw}` is not a valid option code in option "
                                             f"set `{os_.get('id')}`")
                return False, None
        norm, err = valuetypes.check_value(doc.get("valueType", "TEXT"), raw, None,
                                           data_element=target)
        if err is not None:
            self.refuse(t, uid, code, f"Error validating value type: `{target}`; Error: `{err}`.")
            return False, None
        return True, norm

    # -- tracked entities --------------------------------------------------------------------
    def tracked_entity(self, obj: dict[str, Any]) -> None:
        uid = self._uid(TE, obj)
        if uid is None:
            return
        self.incoming[TE][uid] = obj
        stored = self.ex.te.get(uid)
        action = self._action(TE, uid, stored)
        if action is None:
            return
        if action == "DELETE":
            if self._writable(TE, uid, str(stored["org_unit"])) and stored:  # type: ignore[index]
                self._accept(TE, uid, obj, action)
            return
        te_type, ou = obj.get("trackedEntityType"), obj.get("orgUnit")
        if stored is not None:
            te_type, ou = te_type or stored.get("type"), ou or stored.get("org_unit")
        for prop, val in (("trackedEntityType", te_type), ("orgUnit", ou)):
            if not val:
                self.refuse(TE, uid, "E1121", f"Missing required trackedEntity property: `{prop}`.")
                return
        tet = self.index.get_typed("trackedEntityTypes", str(te_type))
        if tet is None:
            self.refuse(TE, uid, "E1005", f"Could not find TrackedEntityType: `{te_type}`.")
            return
        if self.index.get_typed("organisationUnits", str(ou)) is None:
            self.refuse(TE, uid, "E1049", f"Could not find OrganisationUnit: `{ou}`, linked to "
                                          "Tracked Entity.")
            return
        if stored is not None and stored.get("type") != te_type:
            self.refuse(TE, uid, "E1126", "Not allowed to update Tracked Entity property: "
                                          "trackedEntityType.")
            return
        # a TE is written where it lives: creating it needs capture scope there; an
        # update needs it at the stored org unit (ownership decides per program)
        if not self._writable(TE, uid, str(stored["org_unit"] if stored else ou)):
            return
        values = self._attributes(TE, uid, obj.get("attributes"))
        if values is None:
            return
        if action == "CREATE":
            given = {a for a, v in values if v is not None}
            for tea in tet.get("trackedEntityTypeAttributes") or []:
                ref = (tea.get("trackedEntityAttribute") or {}).get("id")
                if tea.get("mandatory") and ref and ref not in given:
                    self.refuse(TE, uid, "E1090", f"Attribute: `{ref}`, is mandatory in tracked "
                                                  f"entity type `{te_type}` but not declared in "
                                                  f"tracked entity `{uid}`.")
                    return
        obj["trackedEntityType"], obj["orgUnit"], obj["_attributes"] = te_type, ou, values
        self._accept(TE, uid, obj, action)

    def _attributes(self, t: str, uid: str, raw: Any) -> list[tuple[str, str | None]] | None:
        if raw is None:
            return []
        if not isinstance(raw, list):
            self.refuse(t, uid, "E1007", "`attributes` must be a list")
            return None
        out: list[tuple[str, str | None]] = []
        for a in raw:
            attr = a.get("attribute") if isinstance(a, dict) else None
            if not attr:
                self.refuse(t, uid, "E1075", "Attribute: `attribute`, is missing uid.")
                return None
            doc = self.index.get_typed("trackedEntityAttributes", str(attr))
            if doc is None:
                self.refuse(t, uid, "E1006", f"Attribute: `{attr}`, does not exist.")
                return None
            ok, value = self._value(t, uid, str(attr), doc, a.get("value"), "E1007")
            if not ok:
                return None
            if value is not None and doc.get("unique"):
                holder = self.unique_owner(str(attr), value)
                if holder is not None and holder != uid:
                    self.refuse(t, uid, "E1064", f"Non-unique attribute value `{value}` for "
                                                 f"attribute `{attr}`")
                    return None
            out.append((str(attr), value))
        return out

    # -- enrollments -------------------------------------------------------------------------
    def enrollment(self, obj: dict[str, Any]) -> None:
        uid = self._uid(ENROLLMENT, obj)
        if uid is None:
            return
        self.incoming[ENROLLMENT][uid] = obj
        stored = self.ex.enrollment.get(uid)
        action = self._action(ENROLLMENT, uid, stored)
        if action is None:
            return
        if action == "DELETE":
            assert stored is not None
            if self._writable(ENROLLMENT, uid, str(stored["org_unit"])) and self._owner_ok(
                    ENROLLMENT, uid, stored.get("te"), str(stored["program"])):
                self._accept(ENROLLMENT, uid, obj, action)
            return
        base = dict(stored or {})
        program = obj.get("program") or base.get("program")
        te = obj.get("trackedEntity") or base.get("te")
        ou = obj.get("orgUnit") or base.get("org_unit")
        for prop, val in (("program", program), ("trackedEntity", te), ("orgUnit", ou)):
            if not val:
                self.refuse(ENROLLMENT, uid, "E1122", f"Missing required enrollment property: "
                                                      f"`{prop}`.")
                return
        prog = self.index.get_typed("programs", str(program))
        if prog is None:
            self.refuse(ENROLLMENT, uid, "E1069", f"Could not find Program: `{program}`, linked to "
                                                  "Enrollment.")
            return
        if stored is not None and stored.get("program") != program:
            self.refuse(ENROLLMENT, uid, "E1094", f"Not allowed to update Enrollment: `{uid}`, "
                                                  f"existing Program `{stored.get('program')}`.")
            return
        if prog.get("programType") != "WITH_REGISTRATION":
            self.refuse(ENROLLMENT, uid, "E1014", f"Provided Program: `{program}`, is a Program "
                        "without registration. An Enrollment cannot be created into Program "
                        "without registration.")
            return
        if self.index.get_typed("organisationUnits", str(ou)) is None:
            self.refuse(ENROLLMENT, uid, "E1070", f"Could not find OrganisationUnit: `{ou}`, "
                                                  "linked to Enrollment.")
            return
        if ou not in {r.get("id") for r in prog.get("organisationUnits") or []}:
            self.refuse(ENROLLMENT, uid, "E1041", f"Enrollment OrganisationUnit: `{ou}`, and "
                                                  f"Program: `{program}`, don't match.")
            return
        te_doc = self.incoming[TE].get(str(te))
        if te_doc is not None and te not in self.plan.actions:  # refused in this payload
            self.refuse(ENROLLMENT, uid, "E5000", f"\"ENROLLMENT\" `{uid}` cannot be persisted "
                        f"because \"TRACKED_ENTITY\" `{te}` referenced by it cannot be persisted.")
            return
        te_type = (te_doc or {}).get("trackedEntityType") or (self.ex.te.get(str(te)) or {}).get(
            "type")
        if te_type is None:
            self.refuse(ENROLLMENT, uid, "E1068", f"Could not find TrackedEntityInstance: `{te}`, "
                                                  "linked to Enrollment.")
            return
        if (prog.get("trackedEntityType") or {}).get("id") != te_type:
            self.refuse(ENROLLMENT, uid, "E1022", f"TrackedEntityInstance: `{te}`, must have same "
                                                  f"TrackedEntityType as Program `{program}`.")
            return
        if not self._writable(ENROLLMENT, uid, str(ou)):
            return
        if stored is not None and not self._owner_ok(ENROLLMENT, uid, str(te), str(program)):
            return
        enrolled = self._date(ENROLLMENT, uid, obj, "enrolledAt", "E1025",
                              required=stored is None)
        if enrolled is False:
            return
        occurred = self._date(ENROLLMENT, uid, obj, "occurredAt", "E1023",
                              required=bool(prog.get("displayIncidentDate")) and stored is None)
        if occurred is False:
            return
        now_ms = int(self.now.timestamp() * 1000)
        future_ok = bool(prog.get("selectEnrollmentDatesInFuture"))
        if isinstance(enrolled, int) and enrolled > now_ms + 86_400_000 and not future_ok:
            self.refuse(ENROLLMENT, uid, "E1020", f"Enrollment date: `{obj.get('enrolledAt')}`, "
                                                  "cannot be a future date.")
            return
        if isinstance(occurred, int) and occurred > now_ms + 86_400_000 and \
                not prog.get("selectIncidentDatesInFuture"):
            self.refuse(ENROLLMENT, uid, "E1021", f"Incident date: `{obj.get('occurredAt')}`, "
                                                  "cannot be a future date.")
            return
        status = obj.get("status") or base.get("status") or "ACTIVE"
        if status not in ENROLLMENT_STATUSES:
            self.refuse(ENROLLMENT, uid, "E1122", "Missing required enrollment property: "
                                                  "`status`.")
            return
        if action == "CREATE":
            others = [e for e in self.ex.enrollments_of.get(str(te), ())
                      if e.get("program") == program and not e.get("deleted")]
            others += [e for u, e in self.incoming[ENROLLMENT].items()
                       if u != uid and e.get("trackedEntity") == te and
                       e.get("program") == program and u in self.plan.actions]
            if prog.get("onlyEnrollOnce") and others:
                self.refuse(ENROLLMENT, uid, "E1016", f"TrackedEntityInstance: `{te}`, already has "
                            f"an enrollment in Program: `{program}`, and this program only allows "
                            "enrolling one time.")
                return
            if status == "ACTIVE" and any((e.get("status") or "ACTIVE") == "ACTIVE" for e in others):
                self.refuse(ENROLLMENT, uid, "E1015", f"TrackedEntityInstance: `{te}`, already has "
                                                      f"an active Enrollment in Program `{program}`.")
                return
        values = self._attributes(ENROLLMENT, uid, obj.get("attributes"))
        if values is None:
            return
        program_attrs = {(p.get("trackedEntityAttribute") or {}).get("id"): p
                         for p in prog.get("programTrackedEntityAttributes") or []}
        for attr, _ in values:
            if attr not in program_attrs:
                self.refuse(ENROLLMENT, uid, "E1019", "Only Program attributes is allowed for "
                                                      f"enrollment; Non valid attribute: `{attr}`.")
                return
        if action == "CREATE":
            have = {a for a, v in values if v is not None} | {
                a for a, v in (te_doc or {}).get("_attributes", []) if v is not None} | set(
                self.ex.te.get(str(te), {}).get("attributes", ()))
            for ref, pta in program_attrs.items():
                if pta.get("mandatory") and ref not in have:
                    self.refuse(ENROLLMENT, uid, "E1018", f"Attribute: `{ref}`, is mandatory in "
                                f"program `{program}` but not declared in enrollment `{uid}`.")
                    return
        obj.update(program=program, trackedEntity=te, orgUnit=ou, status=status,
                   _attributes=values)
        self._accept(ENROLLMENT, uid, obj, action)

    # -- events ------------------------------------------------------------------------------
    def event(self, obj: dict[str, Any]) -> None:
        uid = self._uid(EVENT, obj)
        if uid is None:
            return
        self.incoming[EVENT][uid] = obj
        stored = self.ex.event.get(uid)
        action = self._action(EVENT, uid, stored)
        if action is None:
            return
        base = dict(stored or {})
        if action == "DELETE":
            if self._writable(EVENT, uid, str(base.get("org_unit"))) and self._owner_ok(
                    EVENT, uid, base.get("te"), str(base.get("program"))):
                self._accept(EVENT, uid, obj, action)
            return
        program = obj.get("program") or base.get("program")
        stage_id = obj.get("programStage") or base.get("program_stage")
        ou = obj.get("orgUnit") or base.get("org_unit")
        enrollment = obj.get("enrollment") or base.get("enrollment")
        if not stage_id:
            self.refuse(EVENT, uid, "E1123", "Missing required event property: `programStage`.")
            return
        if not ou:
            self.refuse(EVENT, uid, "E1123", "Missing required event property: `orgUnit`.")
            return
        stage = self.index.get_typed("programStages", str(stage_id))
        if stage is None:
            self.refuse(EVENT, uid, "E1013", f"Could not find ProgramStage: `{stage_id}`, linked "
                                             "to Event.")
            return
        program = program or (stage.get("program") or {}).get("id")
        prog = self.index.get_typed("programs", str(program))
        if prog is None:
            self.refuse(EVENT, uid, "E1010", f"Could not find Program: `{program}`, linked to "
                                             "Event.")
            return
        if (stage.get("program") or {}).get("id") not in (None, program):
            self.refuse(EVENT, uid, "E1089", f"Event: `{uid}`, references a Program Stage "
                                             f"`{stage_id}` that does not belong to Program "
                                             f"`{program}`.")
            return
        if stored is not None and stored.get("program") != program:
            self.refuse(EVENT, uid, "E1110", f"Not allowed to update Event: `{uid}`, existing "
                                             f"Program `{stored.get('program')}`.")
            return
        if self.index.get_typed("organisationUnits", str(ou)) is None:
            self.refuse(EVENT, uid, "E1011", f"Could not find OrganisationUnit: `{ou}`, linked to "
                                             "Event.")
            return
        if ou not in {r.get("id") for r in prog.get("organisationUnits") or []}:
            self.refuse(EVENT, uid, "E1029", f"Event OrganisationUnit: `{ou}`, and Program: "
                                             f"`{program}`, don't match.")
            return
        if not self._attribute_option_combo(uid, obj, prog, stored is None):
            return
        te = obj.get("trackedEntity") or base.get("te")
        if prog.get("programType") == "WITH_REGISTRATION":
            if not enrollment:
                self.refuse(EVENT, uid, "E1033", f"Event: `{uid}`, Enrollment value is null.")
                return
            enr = self.incoming[ENROLLMENT].get(str(enrollment)) or self.ex.enrollment.get(
                str(enrollment))
            if enr is None or (enrollment in self.incoming[ENROLLMENT] and
                               enrollment not in self.plan.actions):
                if enr is not None:  # its enrollment was refused in this payload
                    self.refuse(EVENT, uid, "E5000", f"\"EVENT\" `{uid}` cannot be persisted because"
                                f" \"ENROLLMENT\" `{enrollment}` referenced by it cannot be "
                                "persisted.")
                else:
                    self.refuse(EVENT, uid, "E1081", f"Enrollment: `{enrollment}`, does not exist.")
                return
            if enr.get("program") != program:
                self.refuse(EVENT, uid, "E1079", f"Event: `{uid}`, program: `{program}` is "
                            f"different from program defined in enrollment `{enrollment}`.")
                return
            te = te or enr.get("trackedEntity") or enr.get("te")
        if not self._writable(EVENT, uid, str(ou)) or not self._owner_ok(
                EVENT, uid, te, str(program)):
            return
        status = obj.get("status") or base.get("status") or "ACTIVE"
        if status not in EVENT_STATUSES:
            self.refuse(EVENT, uid, "E1123", "Missing required event property: `status`.")
            return
        if status == "SCHEDULE":
            if self._date(EVENT, uid, obj, "scheduledAt", "E1050", required=stored is None) is False:
                return
        else:
            if obj.get("occurredAt") in (None, "") and not base.get("occurred_at"):
                self.refuse(EVENT, uid, "E1031", "Event OccurredAt date is missing.")
                return
            if self._date(EVENT, uid, obj, "occurredAt", "E1031", required=False) is False:
                return
        if action == "CREATE" and enrollment and not stage.get("repeatable"):
            live = self.ex.stage_events.get((str(enrollment), str(stage_id)), 0) + sum(
                1 for u, e in self.incoming[EVENT].items() if u != uid and u in self.plan.actions
                and e.get("enrollment") == enrollment and e.get("programStage") == stage_id)
            if live:
                self.refuse(EVENT, uid, "E1039", f"ProgramStage: `{stage_id}`, is not repeatable "
                                                 "and an event already exists.")
                return
        in_stage = {(p.get("dataElement") or {}).get("id"): p
                    for p in stage.get("programStageDataElements") or []}
        values: list[tuple[str, str | None, bool]] = []
        raw_values = obj.get("dataValues") or []
        if not isinstance(raw_values, list):
            self.refuse(EVENT, uid, "E1302", "`dataValues` must be a list")
            return
        for dv in raw_values:
            de = dv.get("dataElement") if isinstance(dv, dict) else None
            doc = self.index.get_typed("dataElements", str(de)) if de else None
            if doc is None:
                self.refuse(EVENT, uid, "E1304", f"DataElement `{de}` is not a valid data element")
                return
            if de not in in_stage:
                self.refuse(EVENT, uid, "E1305", f"DataElement `{de}` is not part of `{stage_id}` "
                                                 "program stage")
                return
            ok, value = self._value(EVENT, uid, str(de), doc, dv.get("value"), "E1302")
            if not ok:
                return
            values.append((str(de), value, bool(dv.get("providedElsewhere"))))
        if status == "COMPLETED" and stage.get("validationStrategy", "ON_COMPLETE") == \
                "ON_COMPLETE":
            given = {d for d, v, _ in values if v is not None} | set(base.get("values", ()))
            for de, p in in_stage.items():
                if p.get("compulsory") and de not in given:
                    self.refuse(EVENT, uid, "E1303", f"Mandatory DataElement `{de}` is not present")
                    return
        obj.update(program=program, programStage=stage_id, orgUnit=ou, enrollment=enrollment,
                   trackedEntity=te, status=status, _values=values)
        self._accept(EVENT, uid, obj, action)

    # -- relationships -----------------------------------------------------------------------
    def relationship(self, obj: dict[str, Any]) -> None:
        uid = self._uid(RELATIONSHIP, obj)
        if uid is None:
            return
        stored = self.ex.relationship.get(uid)
        action = self._action(RELATIONSHIP, uid, stored)
        if action is None:
            return
        if action == "DELETE":
            self._accept(RELATIONSHIP, uid, obj, action)
            return
        if action == "UPDATE":  # DHIS2: relationships are created or deleted, never changed
            self.plan.actions[uid] = "IGNORE"
            self.warn(RELATIONSHIP, uid, "E4015", f"Relationship: `{uid}` already exists.")
            return
        rtype = self.index.get_typed("relationshipTypes", str(obj.get("relationshipType")))
        if rtype is None:
            self.refuse(RELATIONSHIP, uid, "E4006", "Could not find relationship type: "
                                                    f"`{obj.get('relationshipType')}`.")
            return
        ends = []
        for side in ("from", "to"):
            item = obj.get(side)
            linked = [k for k in ("trackedEntity", "enrollment", "event")
                      if isinstance(item, dict) and item.get(k)]
            if len(linked) != 1:
                self.refuse(RELATIONSHIP, uid, "E4001", f"Relationship item `{side}` for "
                            f"relationship `{uid}` is invalid: an item must link exactly one of "
                            "trackedEntity, enrollment, event.")
                return
            kind = linked[0]
            ref = item[kind]  # type: ignore[index]
            ref = ref.get(kind) if isinstance(ref, dict) else ref
            t = {"trackedEntity": TE, "enrollment": ENROLLMENT, "event": EVENT}[kind]
            known = {TE: self.ex.te, ENROLLMENT: self.ex.enrollment, EVENT: self.ex.event}[t]
            if ref not in known and ref not in self.plan.actions:
                self.refuse(RELATIONSHIP, uid, "E4012", f"Could not find `{kind}`: `{ref}`, "
                                                        "linked to relationship.")
                return
            ends.append((kind, ref))
        if ends[0] == ends[1]:
            self.refuse(RELATIONSHIP, uid, "E4000", f"Relationship: `{uid}` cannot link to itself")
            return
        obj["_ends"] = ends
        obj["bidirectional"] = bool(rtype.get("bidirectional"))
        self._accept(RELATIONSHIP, uid, obj, action)

    def _attribute_option_combo(self, uid: str, obj: dict[str, Any], prog: Mapping[str, Any],
                                new: bool) -> bool:
        """An event's attribute option combo is one of its program's combo; a new event of a
        program with the default combo gets the default one, as DHIS2 stores it."""
        combo = (prog.get("categoryCombo") or {}).get("id") or self.index.default_combo
        aoc = obj.get("attributeOptionCombo")
        if aoc in (None, ""):
            if new and combo == self.index.default_combo and self.index.default_coc:
                obj["attributeOptionCombo"] = self.index.default_coc
            elif new:
                self.refuse(EVENT, uid, "E1055", "Default AttributeOptionCombo is not allowed "
                            "since program has non-default CategoryCombo.")
                return False
            return True
        if not isinstance(aoc, str) or aoc not in self.index.combo_cocs.get(combo or "", ()):
            self.refuse(EVENT, uid, "E1054", f"AttributeOptionCombo `{str(aoc)[:40]}` is not in "
                        f"the event programs category combo `{combo}`.")
            return False
        return True

    def _accept(self, t: str, uid: str, obj: dict[str, Any], action: str) -> None:
        self.plan.actions[uid] = action
        self.plan.objects[t].append(obj)


def validate(body: Any, *, index: MetadataIndex, user: User, existing: Existing, opts: Options,
             now: datetime, unique_owner: UniqueOwner, new_uid: Callable[[], str]) -> Plan:
    """Check a payload; the plan holds what may be written and what was refused."""
    flat = flatten(body)
    check = _Check(index, user, existing, opts, now, unique_owner, new_uid)
    for t in TYPES:
        check.plan.total[t] = len(flat[t])
    order = TYPES if opts.strategy != "DELETE" else TYPES[::-1]
    run = {TE: check.tracked_entity, ENROLLMENT: check.enrollment, EVENT: check.event,
           RELATIONSHIP: check.relationship}
    for t in order:
        for obj in flat[t]:
            run[t](obj)
    plan = check.plan
    if plan.errors and opts.atomic == "ALL":
        plan.objects = {t: [] for t in TYPES}
        plan.actions = {}
    return plan


def uids_of(body: Any) -> dict[str, list[str]]:
    """The uids a payload names, per type (for ``store.tracker.existing``)."""
    flat = flatten(body)
    out: dict[str, list[str]] = {t: [] for t in TYPES}
    for t in TYPES:
        out[t] = [str(o[ID[t]]) for o in flat[t] if isinstance(o.get(ID[t]), str)]
    for e in flat[ENROLLMENT]:
        if isinstance(e.get("trackedEntity"), str):
            out[TE].append(e["trackedEntity"])
    for e in flat[EVENT]:
        if isinstance(e.get("enrollment"), str):
            out[ENROLLMENT].append(e["enrollment"])
    return out


_STAT = {"CREATE": "created", "UPDATE": "updated", "DELETE": "deleted", "IGNORE": "ignored"}


REPORT_MODES = ("ERRORS", "WARNINGS", "FULL")


def report_mode(q: Mapping[str, str]) -> str:
    mode = (q.get("reportMode") or "ERRORS").upper()
    if mode not in REPORT_MODES:
        raise BadRequest("reportMode must be FULL, ERRORS or WARNINGS")
    return mode


def for_mode(report: Mapping[str, Any], mode: str) -> dict[str, Any]:
    """The report as DHIS2 returns it for ``reportMode``: ERRORS (the default) carries
    the error reports only, WARNINGS adds the warnings, FULL adds the timings too."""
    out = dict(report)
    vr = dict(out["validationReport"])
    if mode == "ERRORS":
        vr.pop("warningReports", None)
    out["validationReport"] = vr
    if mode != "FULL":
        out.pop("timingsStats", None)
    return out


def import_report(plan: Plan, applied: Mapping[str, str] | None = None,
                  timings: Mapping[str, float] | None = None) -> dict[str, Any]:
    """DHIS2 2.41's ImportReport (FULL) for a validated (and, unless refused or a dry run,
    written) payload. ``applied`` is what the store did per uid (an unchanged object is
    ``IGNORE``); without it the plan's actions stand. ``timings``: seconds per phase.
    ``for_mode`` cuts it down to what a ``reportMode`` shows."""
    done = dict(plan.actions) if applied is None else dict(applied)
    refused = plan.refused
    type_map: dict[str, Any] = {}
    totals = {"created": 0, "updated": 0, "deleted": 0, "ignored": 0, "total": 0}
    by_type: dict[str, list[dict[str, Any]]] = {t: [] for t in TYPES}
    for t in TYPES:
        by_type[t] = [o for o in plan.objects[t] if o.get(ID[t]) in done]
    for t in TYPES:
        stats = {"created": 0, "updated": 0, "deleted": 0, "ignored": 0, "total": plan.total[t]}
        reports = []
        for i, o in enumerate(by_type[t]):
            action = done.get(o[ID[t]], "IGNORE")
            stats[_STAT.get(action, "ignored")] += 1
            if action != "IGNORE":
                reports.append({"trackerType": t, "uid": o[ID[t]], "index": i, "errorReports": []})
        stats["ignored"] = stats["total"] - stats["created"] - stats["updated"] - stats["deleted"]
        type_map[t] = {"trackerType": t, "stats": stats, "objectReports": reports}
        for k in totals:
            totals[k] += stats[k]
    # as DHIS2: any refusal makes the report an ERROR, even when atomicMode=OBJECT wrote
    # the rest (the objectReports say what was written)
    status = "ERROR" if refused else "OK"
    return {
        "status": status,
        "validationReport": {"errorReports": [e.as_json() for e in plan.errors],
                             "warningReports": [w.as_json() for w in plan.warnings]},
        "timingsStats": {"timers": {k: f"{v:.3f} sec." for k, v in (timings or {}).items()}},
        "stats": totals,
        "bundleReport": {"status": status, "typeReportMap": type_map, "stats": totals},
        "message": None if status == "OK" else "Import completed with errors" if done else
        "Validation of the payload failed; nothing was imported",
    }
