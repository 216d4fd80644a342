"""Category option metadata the demo lacks, for the E7614/E7616/E7638/E7639 tests.

The demo's category options carry no sharing, dates or org units. These helpers add them
to a running hub the way national metadata reaches it: ``put_metadata`` into the store,
then a reload of the in-memory index (as ``test_e7643_outside_data_input_periods`` does).
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

from appliance.hub.web import AUTH, STATE
from appliance.store.metadata import put_metadata
from appliance.store.users import upsert_user
from tests.conftest import RunningHub
from tests.hub.cells import cells, month

C = cells()

AOC = "PrjAocCombA"          # the attribute option combo "Project A"
COMBO = "PrjCatComb1"        # its attribute category combo
OPTIONS = ("PrjOptionA1", "PrjOptionB1", "PrjOptionC1")  # one per attribute category
GROUP = "PrjUsrGrpA1"        # a user group for sharing


def uid_of(username: str) -> str:
    return next(u["id"] for u in C.doc["users"] if u["username"] == username)


def first_day(offset: int) -> date:
    m = month(offset)
    return date(int(m[:4]), int(m[4:]), 1)


def last_day(offset: int) -> date:
    return first_day(offset + 1) - timedelta(days=1)


def stamp(d: date) -> str:
    """A date as DHIS2 writes category option start/end dates."""
    return f"{d.isoformat()}T00:00:00.000"


async def put(hub: RunningHub, docs: dict[str, list[dict[str, Any]]]) -> None:
    await hub.store.write(lambda tx: put_metadata(tx, docs))
    await hub.app[STATE].reload(hub.store)


async def restrict_option(hub: RunningHub, option: str, **fields: Any) -> None:
    """Add fields (``sharing``, ``publicAccess``...) to an existing demo category option."""
    await put(hub, {"categoryOptions": [dict(C.by_id[option], **fields)]})


async def attribute_combo(hub: RunningHub, *options: dict[str, Any],
                          **data_set_fields: Any) -> str:
    """Put an attribute combo with one option per given field set (``startDate``,
    ``organisationUnits``, ``sharing``...) and one AOC over all of them; CC Form-1 uses it
    as its attribute combo, with ``data_set_fields`` (``openPeriodsAfterCoEndDate``). Returns
    the AOC uid."""
    opts, cats = [], []
    for n, fields in enumerate(options or ({},)):
        cat = f"PrjCategor{n}"
        opts.append({"id": OPTIONS[n], "name": f"Project option {n}",
                     "shortName": f"Project option {n}", "categories": [{"id": cat}], **fields})
        cats.append({"id": cat, "name": f"Project category {n}", "dataDimensionType": "ATTRIBUTE",
                     "categoryOptions": [{"id": OPTIONS[n]}]})
    await put(hub, {
        "categoryOptions": opts,
        "categories": cats,
        "categoryCombos": [{"id": COMBO, "name": "Project", "dataDimensionType": "ATTRIBUTE",
                            "categories": [{"id": c["id"]} for c in cats],
                            "categoryOptionCombos": [{"id": AOC}]}],
        "categoryOptionCombos": [{"id": AOC, "name": "Project A", "categoryCombo": {"id": COMBO},
                                  "categoryOptions": [{"id": o["id"]} for o in opts]}],
        "dataSets": [dict(C.form1, categoryCombo={"id": COMBO}, **data_set_fields)],
    })
    return AOC


async def join_group(hub: RunningHub, username: str, group: str = GROUP) -> None:
    """Make a user a member of a user group (as a national user sync would)."""
    row = hub.store.read_sync(lambda c: c.execute(
        "SELECT doc FROM users WHERE username=?", (username,)).fetchone())
    doc = json.loads(row[0])
    doc["userGroups"] = [*doc.get("userGroups", []), {"id": group}]
    await hub.store.write(lambda tx: upsert_user(tx, doc))
    hub.app[AUTH].forget()
