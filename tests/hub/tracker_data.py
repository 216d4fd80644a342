"""The demo registers' metadata by code, and payload builders for the tracker API tests."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from appliance import demo
from appliance.dhis2.uid import generate_uid

_n = itertools.count(1)
# the Android SDK sends when the object was made and changed on the device
CLIENT = {"createdAtClient": "2026-11-20T09:15:00.000", "updatedAtClient": "2026-11-20T09:20:00.000"}


@dataclass(frozen=True)
class Registers:
    doc: dict[str, Any]

    def program(self, code: str) -> dict[str, Any]:
        return next(p for p in self.doc["programs"] if p.get("code") == code)

    def stage(self, program_code: str, name_part: str) -> dict[str, Any]:
        ids = {s["id"] for s in self.program(program_code)["programStages"]}
        return next(s for s in self.doc["programStages"]
                    if s["id"] in ids and name_part.lower() in s["name"].lower())

    def attr(self, code: str) -> str:
        return next(a["id"] for a in self.doc["trackedEntityAttributes"] if a["code"] == code)

    @property
    def person(self) -> str:
        return self.doc["trackedEntityTypes"][0]["id"]

    def option(self, attr_code: str) -> str:
        os_id = next(a for a in self.doc["trackedEntityAttributes"]
                     if a["code"] == attr_code)["optionSet"]["id"]
        opt = next(o for o in self.doc["optionSets"] if o["id"] == os_id)["options"][0]["id"]
        return str(next(o for o in self.doc["options"] if o["id"] == opt)["code"])

    def element(self, stage: dict[str, Any], value_type: str) -> str:
        for psde in stage["programStageDataElements"]:
            de = next(d for d in self.doc["dataElements"] if d["id"] == psde["dataElement"]["id"])
            if de.get("valueType") == value_type and not de.get("optionSet"):
                return str(de["id"])
        raise LookupError(value_type)

    def other_stage_element(self, stage: dict[str, Any]) -> str:
        mine = {p["dataElement"]["id"] for p in stage["programStageDataElements"]}
        return next(d["id"] for d in self.doc["dataElements"]
                    if d.get("domainType") == "TRACKER" and d["id"] not in mine)

    def default_coc(self) -> str:
        return next(c["id"] for c in self.doc["categoryOptionCombos"] if c["name"] == "default")

    def other_coc(self) -> str:
        """An option combo of a non-default category combo (an aggregate one)."""
        return next(c["id"] for c in self.doc["categoryOptionCombos"] if c["name"] != "default")


@lru_cache(maxsize=1)
def registers() -> Registers:
    return Registers(demo.hub())


def person(ou: str, *, brn: str | None = None, name: str = "Fatema Begum",
           uid: str | None = None) -> dict[str, Any]:
    r = registers()
    n = next(_n)
    attrs = [(r.attr("BD_NAME_BN"), "ফাতেমা বেগম"), (r.attr("BD_NAME_EN"), name),
             (r.attr("BD_RELATION_NAME"), "Abdul Karim"), (r.attr("BD_VILLAGE"), "Merongloa"),
             (r.attr("BD_PHONE"), f"0171{n:07d}"), (r.attr("BD_SEX"), r.option("BD_SEX")),
             (r.attr("BD_DOB"), "1998-04-12")]
    if brn:
        attrs.append((r.attr("BD_BRN"), brn))
    return {"trackedEntity": uid or generate_uid(), "trackedEntityType": r.person, "orgUnit": ou,
            "attributes": [{"attribute": a, "value": v} for a, v in attrs], **CLIENT}


def enrollment(te: str, ou: str, program_code: str = "BD_MATERNAL", **kw: Any) -> dict[str, Any]:
    return {"enrollment": generate_uid(), "trackedEntity": te,
            "program": registers().program(program_code)["id"], "orgUnit": ou,
            "enrolledAt": "2026-11-01T00:00:00.000", "occurredAt": "2026-08-01T00:00:00.000",
            "status": "ACTIVE", **CLIENT, **kw}


def event(enr: dict[str, Any], stage_name: str = "ANC", **kw: Any) -> dict[str, Any]:
    code = next(p["code"] for p in registers().doc["programs"] if p["id"] == enr["program"])
    stage = registers().stage(code, stage_name)
    return {"event": generate_uid(), "enrollment": enr["enrollment"], "program": enr["program"],
            "programStage": stage["id"], "orgUnit": enr["orgUnit"], "status": "ACTIVE",
            "occurredAt": "2026-11-20T00:00:00.000", "dataValues": [], **CLIENT, **kw}


def registration(ou: str, **kw: Any) -> dict[str, Any]:
    """A flat payload: one person enrolled in the maternal register with one ANC visit."""
    te = person(ou, **kw)
    enr = enrollment(te["trackedEntity"], ou)
    return {"trackedEntities": [te], "enrollments": [enr], "events": [event(enr)]}
