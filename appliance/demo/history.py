"""Deterministic register history for the demo: who was registered at each community
clinic and which visits were made, missed and are due.

``history(doc, clinics, seed=...)`` returns one ``store.tracker.Bundle`` holding, per
community clinic:

* 15-25 pregnant women in the maternal register (BD_MATERNAL) registered over the last
  ``months`` months (and the three before: those have mostly delivered since), with ANC contacts on Bangladesh's four-contact schedule (ANC1 by
  16 weeks, ANC2 at 24-28, ANC3 at 32, ANC4 at 36): most made, some missed (SKIPPED when a
  later one was made, SCHEDULE and overdue when it was the last one due), the next one
  scheduled; those past term delivered (place, outcome, skilled attendance, birth weight)
  with postnatal contacts, completed 42 days after delivery;
* every live-born baby enrolled in child health (BD_EPI) with its mother as
  BD_MOTHER_CHILD, plus older infants; one event per EPI contact, as DHIS2 auto-generates
  them at enrollment: COMPLETED with the doses given, or SCHEDULE (overdue when past due);
* under-five children (BD_U5, some of them also on the EPI register) with sick and
  weighing visits over the last months, the under-2s' next weighing scheduled.

Dates are relative to ``ref`` (default ``people.REFERENCE_DATE``), UIDs hash-derived from
the seed and the clinic, and BRNs issued in sequence: the same arguments give the same
bundle, so national's and the hub's copies agree. Values are written for the data
elements each stage holds in ``doc``, as their value type and option set allow.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from ..store.tracker import Bundle, EnrollmentIn, EventIn, RelationshipIn, TrackedEntityIn
from .catalog import uid
from .people import REFERENCE_DATE, person, villages_for
from .registers import ANC_SCHEDULE, EPI_SCHEDULE

__all__ = ["community_clinics", "history"]

Doc = dict[str, Any]

# (option code, weight): Bangladesh's BDHS 2022 shares, roughly.
_DELIVERY_PLACE = [("HOME", 33), ("CC", 4), ("UHC", 14), ("UH_FWC", 6), ("MCWC", 5),
                   ("DH", 10), ("PRIVATE", 28)]
_DANGER = [("BLEEDING", 2), ("HEADACHE", 3), ("FEVER", 3), ("ABD_PAIN", 2), ("OEDEMA", 3),
           ("REDUCED_FM", 1), ("BREATHLESS", 1), ("CONVULSION", 0.3)]
_ILLNESS = [("FEVER", 4), ("DIARRHOEA", 3), ("PNEUMONIA", 2), ("OTHER", 2)]
_TREATMENT = {
    "FEVER": ["Paracetamol syrup for 3 days", "Paracetamol; sponging; RDT for malaria negative"],
    "DIARRHOEA": ["ORS and zinc for 10 days", "ORS; zinc 20 mg for 10 days; feeding advice"],
    "PNEUMONIA": ["Amoxicillin DT for 5 days", "Amoxicillin dispersible tablets, 5 days"],
    "OTHER": ["Skin infection: cleaned, antiseptic cream", "Scabies: permethrin cream",
              "Ear discharge: dry wicking, referred if no better"],
}
_PNC_DAYS = [(0, 1), (2, 3), (7, 14), (42, 42)]  # the four postnatal contacts


def _ts(d: date) -> str:
    return f"{d.isoformat()}T00:00:00.000"


def _client(d: date, minute: int) -> str:
    return f"{d.isoformat()}T{9 + minute // 60:02d}:{minute % 60:02d}:00.000"


def _months(born: date, on: date) -> int:
    m = (on.year - born.year) * 12 + on.month - born.month - (on.day < born.day)
    return max(0, m)


class _Meta:
    """The metadata the generator needs, by code."""

    def __init__(self, doc: Doc) -> None:
        by_code = {k: {o["code"]: o for o in doc.get(k, []) if o.get("code")}
                   for k in ("programs", "programStages", "dataElements",
                             "trackedEntityAttributes", "relationshipTypes")}
        self.program = {c: o["id"] for c, o in by_code["programs"].items()}
        self.stage = {c: o["id"] for c, o in by_code["programStages"].items()}
        self.attr = {c: o["id"] for c, o in by_code["trackedEntityAttributes"].items()}
        self.de = {c: o["id"] for c, o in by_code["dataElements"].items()}
        # the registers' programs use the default category combo: DHIS2 stores its one
        # option combo on every event
        self.default_aoc = next((c["id"] for c in doc.get("categoryOptionCombos", [])
                                 if c.get("name") == "default"), None)
        self.person = next((t["id"] for t in doc.get("trackedEntityTypes", [])
                            if t.get("code") == "BD_PERSON"),
                           (doc.get("trackedEntityTypes") or [{"id": ""}])[0]["id"])
        self.mother_child = by_code["relationshipTypes"].get("BD_MOTHER_CHILD", {}).get("id")
        de_code = {o["id"]: c for c, o in by_code["dataElements"].items()}
        # stage code -> data element codes it holds
        self.stage_des: dict[str, set[str]] = {
            c: {de_code[p["dataElement"]["id"]] for p in st.get("programStageDataElements", [])
                if p["dataElement"]["id"] in de_code}
            for c, st in by_code["programStages"].items()}
        options: dict[str, set[str]] = {}
        for o in doc.get("options", []):
            options.setdefault(o.get("optionSet", {}).get("id", ""), set()).add(o["code"])
        self.options = {c: options.get(o["optionSet"]["id"], set())
                        for c, o in by_code["dataElements"].items() if o.get("optionSet")}


@dataclass
class _Clinic:
    uid: str
    villages: list[str]


@dataclass
class _Out:
    meta: _Meta
    ref: date
    bundle: Bundle = field(default_factory=Bundle)
    brn: int = 1
    minute: int = 0

    def te(self, uid_: str, ou: str, attrs: dict[str, str], registered: date) -> None:
        self.bundle.tracked_entities.append(TrackedEntityIn(
            uid=uid_, type=self.meta.person, org_unit=ou,
            attributes=[(self.meta.attr[c], v) for c, v in attrs.items()
                        if c in self.meta.attr],
            created_at_client=_client(registered, 0), updated_at_client=_client(registered, 5)))

    def enroll(self, uid_: str, te: str, program: str, ou: str, enrolled: date,
               incident: date, completed: date | None = None) -> None:
        self.bundle.enrollments.append(EnrollmentIn(
            uid=uid_, te=te, program=self.meta.program[program], org_unit=ou,
            status="COMPLETED" if completed else "ACTIVE", enrolled_at=_ts(enrolled),
            occurred_at=_ts(incident), completed_at=_ts(completed) if completed else None,
            created_at_client=_client(enrolled, 0), updated_at_client=_client(enrolled, 5)))

    def event(self, uid_: str, enrollment: str, te: str, program: str, stage: str, ou: str,
              *, made: date | None, due: date, values: dict[str, str | None] | None = None,
              skipped: bool = False) -> None:
        """A visit made on ``made`` (COMPLETED), or not made: SCHEDULE for ``due`` (or
        SKIPPED when a later contact happened)."""
        allowed = self.meta.stage_des.get(stage, set())
        dvs: list[tuple[str, str | None, bool]] = []
        for code, v in (values or {}).items():
            if v is None or code not in allowed:
                continue
            opts = self.meta.options.get(code)
            if opts is not None and v not in opts:
                continue
            dvs.append((self.meta.de[code], v, False))
        status = "COMPLETED" if made else "SKIPPED" if skipped else "SCHEDULE"
        stamp = made or min(due, self.ref)
        self.bundle.events.append(EventIn(
            uid=uid_, program=self.meta.program[program], program_stage=self.meta.stage[stage],
            org_unit=ou, enrollment=enrollment, te=te, status=status,
            occurred_at=_ts(made) if made else None, scheduled_at=_ts(due),
            completed_at=_ts(made) if made else None, aoc=self.meta.default_aoc,
            data_values=dvs, created_at_client=_client(stamp, 10), updated_at_client=_client(stamp, 20)))

    def next_brn(self, rng: random.Random, share: float = 0.8) -> int | None:
        if rng.random() >= share:
            return None
        self.brn += 1
        return self.brn - 1


def community_clinics(doc: Doc, upazila_uid: str | None = None) -> list[str]:
    """UIDs of the community clinics in ``doc`` (under ``upazila_uid`` if given)."""
    return [o["id"] for o in doc.get("organisationUnits", [])
            if o.get("name", "").endswith("Community Clinic")
            and (upazila_uid is None or f"/{upazila_uid}/" in o.get("path", ""))]


def history(doc: Doc, clinics: Iterable[str], *, seed: int = 0, months: int = 6,
            ref: date = REFERENCE_DATE, first_brn: int = 1) -> Bundle:
    """The registers' history at ``clinics`` (org unit UIDs of ``doc``) up to ``ref``."""
    meta = _Meta(doc)
    ous = {o["id"]: o for o in doc.get("organisationUnits", [])}
    out = _Out(meta, ref, brn=first_brn)
    for ou in clinics:
        unit = ous[ou]
        union = ous.get(unit.get("parent", {}).get("id", ""), {}).get("name", "")
        clinic = _Clinic(ou, villages_for(unit.get("name", ou), union))
        rng = random.Random(f"history\x1f{seed}\x1f{ou}")
        babies = _maternal(out, rng, clinic, seed, months)
        older = _epi(out, rng, clinic, seed, babies)
        _under5(out, rng, clinic, seed, older)
    return out.bundle


# -- the maternal register ----------------------------------------------------------------
def _anc_values(rng: random.Random, lmp: date, day: date, next_due: date | None,
                risky: bool) -> dict[str, str | None]:
    sys_bp = rng.randint(98, 128) + (rng.randint(15, 35) if risky else 0)
    dia_bp = rng.randint(60, 84) + (rng.randint(8, 20) if risky else 0)
    weeks = max(1, (day - lmp).days // 7)
    danger = "NONE"
    if rng.random() < 0.08:
        danger = rng.choices([c for c, _ in _DANGER], [w for _, w in _DANGER])[0]
    # the later register fields draw from their own generator, so the history above
    # (who is due and overdue) does not change with them
    x = random.Random(f"anc/{day}/{sys_bp}/{dia_bp}/{weeks}")
    return {
        "BD_MAT_GEST_WEEKS": str(weeks), "BD_MAT_BP_SYS": str(sys_bp),
        "BD_MAT_BP_DIA": str(dia_bp),
        "BD_MAT_WEIGHT": f"{rng.uniform(41, 62) + weeks * 0.25:.1f}",
        "BD_MAT_HB": f"{rng.triangular(6.8, 13.2, 10.8):.1f}" if rng.random() < 0.6 else None,
        "BD_MAT_DANGER": danger,
        "BD_MAT_IFA": "true" if rng.random() < 0.9 else "false",
        "BD_MAT_NEXT_VISIT": next_due.isoformat() if next_due else None,
        # fundal height tracks the weeks from 20 on; the heartbeat is heard from ~20 weeks
        "BD_MAT_FUNDAL_CM": str(max(12, weeks + x.randint(-2, 2))) if weeks >= 20 else None,
        "BD_MAT_FHR": str(x.randint(120, 160)) if weeks >= 20 else None,
        "BD_MAT_OEDEMA": "true" if risky and x.random() < 0.5 else "false",
        "BD_MAT_URINE_ALB": "true" if risky and x.random() < 0.4 else "false",
        "BD_MAT_CALCIUM": "true" if weeks >= 20 and x.random() < 0.8 else "false",
        "BD_MAT_TD": "true" if x.random() < 0.35 else "false",
        "BD_MAT_COUNSEL": "true" if x.random() < 0.85 else "false",
    }


def _maternal(out: _Out, rng: random.Random, c: _Clinic, seed: int,
              months: int) -> list[tuple[str, dict[str, str], date]]:
    """Women registered over the last ``months``; returns the live births
    (mother's uid, mother's attributes, date of birth)."""
    ref, window = out.ref, months * 30
    births: list[tuple[str, dict[str, str], date]] = []
    for i in range(rng.randint(15, 25)):
        key = ("upazila-hub-demo-tracker", str(seed), c.uid, "mat", str(i))
        te = uid(*key, "te")
        enr = uid(*key, "enrollment")
        first_week = min(22, max(6, round(rng.triangular(6, 22, 12))))
        # registered in the window, or up to three months before it and delivered since
        registered = ref - timedelta(days=rng.randint(0, window + 90))
        lmp = registered - timedelta(days=first_week * 7 + rng.randint(0, 6))
        attrs = person(rng, "woman", ref=ref, villages=c.villages, brn=out.next_brn(rng))
        attrs.pop("BD_SEX", None)  # not on the maternal register's form
        out.te(te, c.uid, attrs, registered)
        diligent = rng.random()  # how likely she is to come to each contact
        risky = rng.random() < 0.07
        term = rng.choices([37, 38, 39, 40, 41], [8, 22, 32, 28, 10])[0]
        delivered = lmp + timedelta(days=term * 7 + rng.randint(0, 6))
        if delivered > ref:
            delivered = None  # type: ignore[assignment]
        # ANC: the first contact at registration, the others on the national schedule.
        contacts: list[tuple[date, date | None]] = [(registered, registered)]
        for _, lo, hi in ANC_SCHEDULE[1:]:
            due = lmp + timedelta(days=hi if lo == hi else rng.randint(lo, hi))
            if due <= registered + timedelta(days=14):
                continue  # registered late: that contact is the first one
            if delivered and due >= delivered:
                break
            made: date | None = due + timedelta(days=rng.randint(-3, 10))
            if made and made > ref:
                made = None
            if made and rng.random() > 0.55 + 0.4 * diligent:
                made = None
            contacts.append((due, made))
            if due > ref:
                break  # only the next contact is scheduled
        last_made = max((i for i, (_, m) in enumerate(contacts) if m), default=0)
        for j, (due, made) in enumerate(contacts):
            nxt = contacts[j + 1][0] if j + 1 < len(contacts) else None
            values = _anc_values(rng, lmp, made, nxt, risky) if made else None
            out.event(uid(*key, "anc", str(j)), enr, te, "BD_MATERNAL", "BD_MAT_ANC", c.uid,
                      made=made, due=due, values=values,
                      skipped=j < last_made or delivered is not None)
        completed = None
        if delivered:
            completed = _delivery(out, rng, c, key, te, enr, lmp, delivered, attrs, births)
        else:  # generated at enrollment, due at 40 weeks
            out.event(uid(*key, "delivery"), enr, te, "BD_MATERNAL", "BD_MAT_DELIVERY", c.uid,
                      made=None, due=lmp + timedelta(days=280))
        out.enroll(enr, te, "BD_MATERNAL", c.uid, registered, lmp, completed)
    return births


def _delivery(out: _Out, rng: random.Random, c: _Clinic, key: tuple[str, ...], te: str,
              enr: str, lmp: date, day: date, mother: dict[str, str],
              births: list[tuple[str, dict[str, str], date]]) -> date | None:
    ref = out.ref
    place = rng.choices([p for p, _ in _DELIVERY_PLACE], [w for _, w in _DELIVERY_PLACE])[0]
    outcome = "LIVE_BIRTH" if rng.random() < 0.975 else "STILLBIRTH"
    skilled = place != "HOME" or rng.random() < 0.2
    weight = None
    if outcome == "LIVE_BIRTH" and (place != "HOME" or rng.random() < 0.3):
        weight = str(int(rng.gauss(2900, 420)) // 10 * 10)
    recorded = min(ref, day + timedelta(days=rng.randint(0, 4)))
    out.event(uid(*key, "delivery"), enr, te, "BD_MATERNAL", "BD_MAT_DELIVERY", c.uid,
              made=recorded, due=lmp + timedelta(days=280), values={
                  "BD_MAT_DELIV_DATE": day.isoformat(), "BD_MAT_DELIV_PLACE": place,
                  "BD_MAT_DELIV_OUTCOME": outcome,
                  "BD_MAT_DELIV_SKILLED": "true" if skilled else "false",
                  "BD_MAT_BIRTH_WEIGHT": weight})
    if outcome == "LIVE_BIRTH":
        births.append((te, mother, day))
    for j, (lo, hi) in enumerate(_PNC_DAYS):
        due = day + timedelta(days=lo)
        if due > ref + timedelta(days=7):
            break
        made: date | None = day + timedelta(days=rng.randint(lo, hi))
        if made and (made > ref or rng.random() < 0.35):
            made = None
        if made is None and due > ref - timedelta(days=14):
            # not made yet: the next postnatal contact is scheduled (overdue once past)
            out.event(uid(*key, "pnc", str(j)), enr, te, "BD_MATERNAL", "BD_MAT_PNC", c.uid,
                      made=None, due=due)
            break
        if made is None:
            continue
        px = random.Random(f"pnc/{made}/{j}/{key}")  # apart from rng, as for ANC
        out.event(uid(*key, "pnc", str(j)), enr, te, "BD_MATERNAL", "BD_MAT_PNC", c.uid,
                  made=made, due=due, values={
                      "BD_MAT_PNC_DAYS": str((made - day).days), "BD_MAT_DANGER": "NONE"
                      if rng.random() < 0.95 else rng.choice(["BLEEDING", "FEVER"]),
                      "BD_MAT_BP_SYS": str(rng.randint(100, 130)) if rng.random() < 0.5
                      else None,
                      "BD_MAT_BP_DIA": str(rng.randint(62, 86)) if rng.random() < 0.5
                      else None,
                      "BD_MAT_PNC_BF": "true" if rng.random() < 0.85 else "false",
                      "BD_MAT_PNC_FP": "true" if rng.random() < 0.6 else "false",
                      "BD_MAT_PNC_VITA": "true" if px.random() < 0.7 else "false",
                      "BD_MAT_PNC_CORD": "true" if px.random() < 0.8 else "false",
                      "BD_MAT_PNC_NB_DANGER": "true" if px.random() < 0.04 else "false"})
    close = day + timedelta(days=42 + rng.randint(1, 10))
    return close if close <= ref else None


# -- child health (EPI) -------------------------------------------------------------------
def _epi(out: _Out, rng: random.Random, c: _Clinic, seed: int,
         babies: Sequence[tuple[str, dict[str, str], date]]
         ) -> list[tuple[str, dict[str, str]]]:
    """Babies of the maternal register and older infants; returns (uid, attributes) of the
    children registered, for the under-5 register."""
    ref = out.ref
    children: list[tuple[str | None, dict[str, str] | None, date]] = [
        (m, a, d) for m, a, d in babies]
    children += [(None, None, ref - timedelta(days=rng.randint(30, 16 * 30)))
                 for _ in range(rng.randint(8, 14))]
    registered_children = []
    for i, (mother_uid, mother, dob) in enumerate(children):
        key = ("upazila-hub-demo-tracker", str(seed), c.uid, "epi", str(i))
        te = uid(*key, "te")
        enr = uid(*key, "enrollment")
        attrs = person(rng, "child", ref=ref, villages=c.villages, dob=dob, mother=mother,
                       brn=out.next_brn(rng, 0.7))
        registered = min(ref, dob + timedelta(days=rng.randint(0, 10)))
        if mother_uid and out.meta.mother_child:
            out.bundle.relationships.append(RelationshipIn(
                uid=uid(*key, "mother"), type=out.meta.mother_child,
                from_doc={"trackedEntity": {"trackedEntity": mother_uid}},
                to_doc={"trackedEntity": {"trackedEntity": te}}, bidirectional=True))
        punctual = rng.random()
        for stage, _, days, vaccines in EPI_SCHEDULE:
            due = dob + timedelta(days=days)
            made: date | None = due + timedelta(days=rng.randint(0, 6 if days else 3)
                                                + int(rng.expovariate(1 / 8)))
            if made and (made > ref or rng.random() > 0.7 + 0.28 * punctual):
                made = None
            values: dict[str, str | None] | None = None
            if made:
                values = {"BD_EPI_AGE_MONTHS": str(_months(dob, made))}
                for v, _ in vaccines:
                    given = rng.random() < 0.97  # a stock-out now and then
                    values[f"BD_EPI_{v}_GIVEN"] = "true" if given else "false"
                    values[f"BD_EPI_{v}_DATE"] = made.isoformat() if given else None
            out.event(uid(*key, stage), enr, te, "BD_EPI", stage, c.uid, made=made, due=due,
                      values=values)
            if made and made < registered:
                registered = made  # registered at the first vaccination
        out.te(te, c.uid, attrs, registered)
        out.enroll(enr, te, "BD_EPI", c.uid, registered, dob)
        registered_children.append((te, attrs))
    return registered_children


# -- the under-5 register --------------------------------------------------------------------
def _growth(rng: random.Random, age_m: int, sex: str) -> tuple[float, float]:
    """(weight kg, length/height cm) near the WHO medians, with spread."""
    if age_m <= 6:
        w, h = 3.3 + 0.68 * age_m, 50 + 2.6 * age_m
    elif age_m <= 12:
        w, h = 7.4 + 0.25 * (age_m - 6), 65.5 + 1.4 * (age_m - 6)
    else:
        w, h = 9.0 + 0.18 * (age_m - 12), 74 + 0.75 * (age_m - 12)
    if sex == "FEMALE":
        w, h = w * 0.95, h * 0.985
    return w * rng.uniform(0.82, 1.12), h * rng.uniform(0.96, 1.03)


def _under5(out: _Out, rng: random.Random, c: _Clinic, seed: int,
            epi_children: Sequence[tuple[str, dict[str, str]]]) -> None:
    ref = out.ref
    old_enough = [(t, a) for t, a in epi_children if (ref - date.fromisoformat(
        a["BD_DOB"])).days > 60]
    picked: list[tuple[str, dict[str, str], bool]] = [
        (t, a, False) for t, a in rng.sample(old_enough, min(len(old_enough), 3))]
    for i in range(rng.randint(5, 9)):
        key = ("upazila-hub-demo-tracker", str(seed), c.uid, "u5", str(i))
        dob = ref - timedelta(days=rng.randint(6 * 30, 59 * 30))
        attrs = person(rng, "child", ref=ref, villages=c.villages, dob=dob,
                       brn=out.next_brn(rng, 0.6))
        picked.append((uid(*key, "te"), attrs, True))
    for i, (te, attrs, new) in enumerate(picked):
        key = ("upazila-hub-demo-tracker", str(seed), c.uid, "u5", str(i))
        dob, sex = date.fromisoformat(attrs["BD_DOB"]), attrs.get("BD_SEX", "FEMALE")
        first = ref - timedelta(days=rng.randint(10, 170))
        first = max(first, dob + timedelta(days=30))
        if new:
            out.te(te, c.uid, attrs, first)
        enr = uid(*key, "enrollment")
        out.enroll(enr, te, "BD_U5", c.uid, first, dob)
        day: date | None = first
        j = 0
        while day is not None and day <= ref:
            age_m = _months(dob, day)
            w, h = _growth(rng, age_m, sex)
            ill = rng.choices([None, *(x for x, _ in _ILLNESS)],
                              [4, *(wt for _, wt in _ILLNESS)])[0]
            referred = ill is not None and rng.random() < 0.12
            extra = random.Random(f"u5/{day}/{j}/{w:.2f}")  # apart from rng, as for ANC
            values = {
                "BD_U5_AGE_MONTHS": str(age_m), "BD_U5_WEIGHT": f"{w:.1f}",
                "BD_U5_HEIGHT": f"{h:.1f}" if rng.random() < 0.7 else None,
                "BD_U5_MUAC": str(int(rng.gauss(138, 9))) if age_m >= 6 else None,
                "BD_U5_ILLNESS": ill,
                "BD_U5_TREATMENT": rng.choice(_TREATMENT[ill]) if ill else None,
                "BD_U5_REFERRED": "true" if referred else "false",
                "BD_U5_REFERRED_TO": rng.choice(["UHC", "UHC", "UH_FWC", "DH"])
                if referred else None,
                # vitamin A and deworming every six months from 6 and 12 months
                "BD_U5_VITA": "true" if age_m >= 6 and extra.random() < 0.3 else "false",
                "BD_U5_DEWORM": "true" if age_m >= 12 and extra.random() < 0.3 else "false",
                "BD_U5_ORS": "true" if ill == "DIARRHOEA" else "false",
                "BD_U5_ZINC": "true" if ill == "DIARRHOEA" and extra.random() < 0.8 else "false",
                "BD_U5_IYCF": "true" if extra.random() < 0.6 else "false",
            }
            out.event(uid(*key, "visit", str(j)), enr, te, "BD_U5", "BD_U5_VISIT", c.uid,
                      made=day, due=day, values=values)
            j += 1
            gap = 30 if age_m < 24 else rng.randint(30, 120)
            nxt = day + timedelta(days=gap + rng.randint(-3, 20))
            if nxt > ref or rng.random() < 0.15:
                if age_m < 24:  # the monthly weighing is scheduled (overdue once past)
                    out.event(uid(*key, "visit", str(j)), enr, te, "BD_U5", "BD_U5_VISIT",
                              c.uid, made=None, due=day + timedelta(days=30))
                day = None
            else:
                day = nxt
