"""The demo's reporting day, as the room at the UHC lives it on the 1st-2nd of a month.

CHCPs report the month that just ended, so that is the month the demo fills, through the
hub's API and its sync to national, the way the laptops do:

* the month before it is history: national already holds every clinic's forms, completed
  on time but for three clinics that completed late; the hub pulls it down;
* the reporting month: most clinics have entered and completed their forms, two are half
  way through (the demo CHCP's clinic among them, so logging in as ``chcp`` continues it),
  the rest have not started; and national has already approved one clinic's Form-1, so it
  refuses that form when the hub sends it, and the hub shows why.

Everything goes through the same HTTP APIs a CHCP's laptop and the national team use.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from . import CHCP_CLINIC_UID
from . import hub as hub_doc
from .values import forms

LATE_CLINICS = 3          # of the history month: completed after the timely days
IN_PROGRESS = 2           # of the reporting month: about half the cells filled
NOT_STARTED = 5
REFUSED_AT = 4            # the clinic whose Form-1 national approved before the hub sent it


def _month(d: date) -> str:
    return f"{d.year}{d.month:02d}"


def months(today: date) -> tuple[str, str]:
    """(the reporting month, the month before it)."""
    first = today.replace(day=1)
    reporting = first - timedelta(days=1)
    before = reporting.replace(day=1) - timedelta(days=1)
    return _month(reporting), _month(before)


def _end(period: str) -> date:
    y, m = int(period[:4]), int(period[4:])
    return date(y + m // 12, m % 12 + 1, 1) - timedelta(days=1)


@dataclass
class Api:
    base: str
    user: str
    password: str = "district"

    def call(self, method: str, path: str, body: object | None = None) -> Any:
        auth = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        req = urllib.request.Request(
            self.base + path, method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": "Basic " + auth, "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=120) as r:
            raw = r.read()
        return json.loads(raw) if raw else None


def _registrations(fs: list[dict[str, Any]], day: dict[str, date]) -> dict[str, Any]:
    return {"completeDataSetRegistrations": [
        {"dataSet": f["dataSet"], "period": f["period"], "organisationUnit": f["orgUnit"],
         "date": day[f["orgUnit"]].isoformat()} for f in fs]}


def reporting_day(hub: str, national: str, today: date | None = None,
                  timeout: float = 180) -> None:
    today = today or date.today()
    reporting, before = months(today)
    doc = hub_doc()
    nat, lan = Api(national, "dghs"), Api(hub, "admin")
    timely = {d["id"]: int(d.get("timelyDays") or 15) for d in doc.get("dataSets", [])}
    t0 = time.monotonic()

    # the month before: at national already, three clinics late
    history = forms(doc, before)
    clinics = sorted({f["orgUnit"] for f in history})
    end = _end(before)
    day = {ou: end + timedelta(days=2 + i % 5) for i, ou in enumerate(clinics)}
    for ou in clinics[-LATE_CLINICS:]:
        day[ou] = end + timedelta(days=max(timely.values()) + 4)
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda f: nat.call("POST", "/api/dataValueSets", f), history))
    nat.call("POST", "/api/completeDataSetRegistrations", _registrations(history, day))

    # the reporting month
    month = forms(doc, reporting)
    clinics = sorted({f["orgUnit"] for f in month})
    half = [CHCP_CLINIC_UID] + [ou for ou in clinics if ou != CHCP_CLINIC_UID][:IN_PROGRESS - 1]
    rest = [ou for ou in clinics if ou not in half]
    idle = set(rest[-NOT_STARTED:])
    done = [ou for ou in rest if ou not in idle]
    refused = next(f for f in month if f["orgUnit"] == done[REFUSED_AT])
    nat.call("POST", f"/api/dataApprovals?ds={refused['dataSet']}&pe={reporting}"
                     f"&ou={refused['orgUnit']}")
    entered = [f for f in month if f["orgUnit"] in done] + [
        {**f, "dataValues": f["dataValues"][: len(f["dataValues"]) // 2]}
        for f in month if f["orgUnit"] in half]
    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(lambda f: lan.call("POST", "/api/dataValueSets", f), entered))
    n = sum(r["response"]["importCount"]["imported"] for r in replies)
    complete = [f for f in month if f["orgUnit"] in done]
    lan.call("POST", "/api/completeDataSetRegistrations",
             _registrations(complete, {ou: today for ou in done}))
    print(f"reporting day for {reporting}: {len(done)} of {len(clinics)} clinics entered and "
          f"completed their forms, {len(half)} are half way, {len(idle)} have not started "
          f"({n} values); {before} is at national already ({LATE_CLINICS} clinics late); "
          "syncing to national...", flush=True)

    lan.call("POST", "/api/hub/sync", {})
    deadline = time.monotonic() + timeout
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status = lan.call("GET", "/api/hub/status")["sync"]
        # the cycle's byte counts are written when it ends, so wait for the end
        if status["pending"] == 0 and not status["syncing"]:
            print(f"accepted by national: {status['synced']} values; {status['rejected']} "
                  f"refused (national had approved one clinic's Form-1), "
                  f"{status['conflicts']} conflicts; {status['bytesSent']} bytes sent "
                  f"({time.monotonic() - t0:.1f}s)", flush=True)
            return
        time.sleep(2)
    print(f"still {status.get('pending')} values waiting for national; see {hub}/hub/status")
