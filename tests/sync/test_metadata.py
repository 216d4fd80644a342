"""Metadata deltas and users: what national changes shows up at the hub after one cycle."""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from appliance.hub.routes_system import server_date
from appliance.store.users import upsert_user

from .conftest import CLINIC, DS_FORM1, Pair, basic, hub_app

NEW_DE = "Zq1NewDeUid"


def hub_doc(pair: Pair, type_: str, uid: str) -> dict[str, Any] | None:
    row = pair.hub.read_sync(lambda c: c.execute(
        "SELECT doc FROM metadata WHERE type=? AND uid=?", (type_, uid)).fetchone())
    return json.loads(row[0]) if row else None


async def post_metadata(http: aiohttp.ClientSession, pair: Pair, body: dict[str, Any],
                        strategy: str | None = None) -> None:
    params = {"importStrategy": strategy} if strategy else {}
    async with http.post(pair.national.api("metadata"), json=body, params=params,
                         headers=basic("dghs")) as r:
        assert r.status == 200, await r.text()


async def test_data_element_added_renamed_removed(pair: Pair, http: aiohttp.ClientSession) -> None:
    ds = hub_doc(pair, "dataSets", DS_FORM1)
    assert ds is not None
    template = hub_doc(pair, "dataElements", ds["dataSetElements"][0]["dataElement"]["id"])
    assert template is not None
    new_de = {k: v for k, v in template.items() if k not in ("lastUpdated", "created")}
    new_de.update(id=NEW_DE, code="CC_NEW_ELEMENT", name="CC - New element",
                  shortName="CC new element", formName="New element")
    elements = ds["dataSetElements"] + [{"dataElement": {"id": NEW_DE},
                                         "dataSet": {"id": DS_FORM1}}]
    await post_metadata(http, pair, {"dataElements": [new_de],
                                     "dataSets": [{"id": DS_FORM1,
                                                   "dataSetElements": elements}]})
    r = await pair.cycle()
    assert r.ok and r.metadata_changes >= 2
    assert hub_doc(pair, "dataElements", NEW_DE)["name"] == "CC - New element"  # type: ignore[index]
    assert any(e["dataElement"]["id"] == NEW_DE for e in
               hub_doc(pair, "dataSets", DS_FORM1)["dataSetElements"])  # type: ignore[index]
    # the LAN API serves it
    async with hub_app(pair.hub, pair.data_dir) as hub, http.get(hub.api(f"dataElements/{NEW_DE}?fields=id,name"),
                        headers=basic("chcp")) as resp:
        assert resp.status == 200 and (await resp.json())["name"] == "CC - New element"
    # renamed
    await post_metadata(http, pair, {"dataElements": [{"id": NEW_DE, "name": "CC - Renamed"}]})
    r = await pair.cycle()
    assert r.ok and hub_doc(pair, "dataElements", NEW_DE)["name"] == "CC - Renamed"  # type: ignore[index]
    # removed (taken out of the form, then deleted)
    await post_metadata(http, pair, {"dataSets": [{"id": DS_FORM1,
                                                   "dataSetElements": ds["dataSetElements"]}]})
    await post_metadata(http, pair, {"dataElements": [{"id": NEW_DE}]}, strategy="DELETE")
    r = await pair.cycle()
    assert r.ok and hub_doc(pair, "dataElements", NEW_DE) is None
    assert not any(e["dataElement"]["id"] == NEW_DE for e in
                   hub_doc(pair, "dataSets", DS_FORM1)["dataSetElements"])  # type: ignore[index]
    # nothing changed: nothing rewritten
    r = await pair.cycle()
    assert r.ok and r.metadata_changes == 0


def national_user(pair: Pair, username: str) -> dict[str, Any]:
    return json.loads(pair.national.store.read_sync(lambda c: c.execute(
        "SELECT doc FROM users WHERE username=?", (username,)).fetchone()[0]))


async def test_users_come_down_without_passwords_and_disabling_follows(
        pair: Pair, http: aiohttp.ClientSession) -> None:
    # a new CHCP at national, with a password there
    doc = dict(national_user(pair, "chcp"), id="NewChcpUid1", username="rahima",
               code="rahima", name="Rahima Begum", lastUpdated=server_date())
    doc["userCredentials"] = dict(doc["userCredentials"], username="rahima", id="NewCredUid1")
    pair.national.store.write_sync(lambda tx: upsert_user(tx, doc, password="district"))
    r = await pair.cycle()
    assert r.ok
    got = pair.hub.read_sync(lambda c: c.execute(
        "SELECT * FROM users WHERE username='rahima'").fetchone())
    assert got is not None and got["verifier"] is None and got["disabled"] == 0
    assert "password" not in got["doc"]
    # disabled at national: disabled at the hub on the next cycle
    doc = dict(doc, disabled=True, lastUpdated=server_date())
    pair.national.store.write_sync(lambda tx: upsert_user(tx, doc))
    r = await pair.cycle()
    assert r.ok
    assert pair.hub.read_sync(lambda c: c.execute(
        "SELECT disabled FROM users WHERE username='rahima'").fetchone()[0]) == 1
    chcp = dict(national_user(pair, "chcp"), disabled=True, lastUpdated=server_date())
    pair.national.store.write_sync(lambda tx: upsert_user(tx, chcp))
    await pair.cycle()
    async with hub_app(pair.hub, pair.data_dir) as hub, http.get(hub.api("me"), headers=basic("chcp")) as resp:
        assert resp.status == 401
        assert "disabled" in (await resp.json())["message"]


_ = CLINIC
