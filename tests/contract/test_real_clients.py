"""The real, unmodified Python clients a data manager uses, against the demo hub as a process.

- ``dhis2.py`` (``from dhis2 import Api``): appends ``.json`` to every GET path, treats any
  non-2xx as an error, and pages with ``get_paged`` (``page``/``pageSize``/``totalPages``,
  following ``pager.pageCount``).
- ``dhis2-client`` (``from dhis2_client import DHIS2Client``): httpx, ``/api/...`` paths, pages
  with ``list_paged`` following ``pager.page``/``pager.pageCount``, raises ``DHIS2HTTPError``
  on a non-2xx and formats its message from the import summary's conflicts.

Both are synchronous, so these tests are plain functions against a hub subprocess.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dhis2 import Api
from dhis2.exceptions import RequestException
from dhis2_client import DHIS2Client, DHIS2HTTPError

from appliance import demo
from tests.conftest import HubProcess, start_hub_process
from tests.contract import sdk
from tests.hub.cells import cells, month

C = cells()


@pytest.fixture(scope="module")
def hub_proc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    hp = start_hub_process(Path(tmp_path_factory.mktemp("real-clients")))
    try:
        yield hp
    finally:
        hp.kill(signal.SIGTERM)


def all_ids(items: list[dict[str, Any]]) -> list[str]:
    return [i["id"] for i in items]


def assert_seen_once(paged: list[str], everything: list[str]) -> None:
    assert len(paged) == len(set(paged)), "an item came back on two pages"
    assert set(paged) == set(everything), "paging lost or invented items"


# -- dhis2.py ----------------------------------------------------------------------------------
def test_dhis2_py_data_manager_script(hub_proc: HubProcess) -> None:
    api = Api(hub_proc.url, "admin", "district")

    # system info: dhis2.py reads version and revision from /api/system/info.json
    assert sdk.version_ok(api.version) and api.version_int == 41 and api.revision
    r = api.get("system/info")
    assert r.url.endswith("/api/system/info.json") and r.status_code == 200

    me = api.get("me", params={"fields": "id,username,organisationUnits[id,path]"}).json()
    assert me["username"] == "admin"
    assert [o["id"] for o in me["organisationUnits"]] == [demo.RAMU_UID]

    # paged metadata, both ways get_paged offers
    everything = all_ids(api.get("organisationUnits", params={
        "fields": "id", "paging": "false"}).json()["organisationUnits"])
    pages = list(api.get_paged("organisationUnits", params={"fields": "id,path",
                                                            "order": "id:asc"}, page_size=7))
    assert len(pages) == pages[0]["pager"]["pageCount"] > 1
    paged = [o["id"] for p in pages for o in p["organisationUnits"]]
    assert_seen_once(paged, everything)
    assert paged == sorted(paged)  # order=id:asc holds across pages
    assert all(p["pager"]["total"] == len(everything) for p in pages)

    everything = all_ids(api.get("dataElements", params={
        "fields": "id", "paging": "false"}).json()["dataElements"])
    merged = api.get_paged("dataElements", params={"fields": "id,name,valueType"},
                           page_size=40, merge=True)
    assert isinstance(merged, dict)
    assert_seen_once(all_ids(merged["dataElements"]), everything)

    # a dataValueSets import of a month of one element for one clinic
    de = C.element("INTEGER_ZERO_OR_POSITIVE", C.form1)
    values = [{"dataElement": de["id"], "period": month(), "orgUnit": C.chcp_clinic,
               "categoryOptionCombo": coc, "value": str(10 + i)}
              for i, coc in enumerate(C.cocs(de))]
    r = api.post("dataValueSets", json={"dataSet": C.form1["id"], "dataValues": values})
    assert r.status_code == 200
    summary = r.json()["response"]
    assert summary["status"] == "SUCCESS"
    assert summary["importCount"] == {"imported": len(values), "updated": 0, "ignored": 0,
                                      "deleted": 0}

    # read back, as dhis2.py GETs it: /api/dataValueSets.json
    r = api.get("dataValueSets", params={"dataSet": C.form1["id"], "period": month(),
                                         "orgUnit": C.chcp_clinic})
    assert r.url.split("?")[0].endswith("/api/dataValueSets.json")
    back = {(v["categoryOptionCombo"], v["value"]) for v in r.json()["dataValues"]
            if v["dataElement"] == de["id"]}
    assert back == {(v["categoryOptionCombo"], v["value"]) for v in values}
    assert all(v["storedBy"] == "admin" for v in r.json()["dataValues"])

    # a value of the wrong type: a 409 that dhis2.py raises, with the summary as description
    with pytest.raises(RequestException) as err:
        api.post("dataValueSets", json={"dataValues": [dict(values[0], value="many")]})
    assert err.value.code == 409
    conflicts = json.loads(err.value.description)["response"]["conflicts"]
    assert [c["object"] for c in conflicts] == [de["id"]] and conflicts[0]["indexes"] == [0]

    # a bad request is a DHIS2 WebMessage too
    with pytest.raises(RequestException) as err:
        api.get("dataValueSets", params={"dataSet": C.form1["id"]})
    assert err.value.code == 409 and json.loads(err.value.description)["status"] == "ERROR"


# -- dhis2-client --------------------------------------------------------------------------------
def test_dhis2_client_data_manager_script(hub_proc: HubProcess) -> None:
    client = DHIS2Client(hub_proc.url, username="admin", password="district",
                         default_page_size=9, retries=0)
    try:
        info = client.get_system_info()
        assert sdk.version_ok(info["version"]) and info["contextPath"]
        me = client.get_current_user(fields="id,username,authorities")
        assert me["username"] == "admin" and "ALL" in me["authorities"]

        # paged metadata through the resource helpers and the raw list_paged/fetch_all
        everything = all_ids(client.get("/api/organisationUnits", params={
            "fields": "id", "paging": "false"})["organisationUnits"])
        assert len(everything) > 9  # several pages at the default page size of 9
        assert_seen_once(all_ids(list(client.get_organisation_units(fields="id,level"))),
                         everything)
        everything = all_ids(client.get("/api/dataElements", params={
            "fields": "id", "paging": "false"})["dataElements"])
        assert_seen_once(all_ids(list(client.get_data_elements(fields="id"))), everything)
        aggregate = all_ids(client.get("/api/dataElements", params={  # not the registers'
            "fields": "id", "paging": "false", "filter": "domainType:eq:AGGREGATE"})[
            "dataElements"])
        assert 0 < len(aggregate) < len(everything)
        paged = all_ids(client.fetch_all("/api/dataElements", params={
            "fields": "id,valueType", "filter": "domainType:eq:AGGREGATE"}, page_size=25))
        assert_seen_once(paged, aggregate)

        # an import for the UHC's own monthly report
        form = C.uhc_form
        de = C.element("INTEGER_ZERO_OR_POSITIVE", form)
        values = [{"dataElement": de["id"], "categoryOptionCombo": coc, "value": str(100 + i)}
                  for i, coc in enumerate(C.cocs(de))]
        reply = client.post_data_value_set({"dataSet": form["id"], "orgUnit": C.uhc,
                                            "period": month(), "dataValues": values})
        assert reply["httpStatusCode"] == 200 and reply["response"]["status"] == "SUCCESS"
        assert reply["response"]["importCount"]["imported"] == len(values)

        back = client.get_data_value_set({"dataSet": form["id"], "period": month(),
                                          "orgUnit": C.uhc})
        assert back["dataSet"] == form["id"] and back["orgUnit"] == C.uhc
        assert {(v["categoryOptionCombo"], v["value"]) for v in back["dataValues"]} == \
            {(v["categoryOptionCombo"], v["value"]) for v in values}

        # a conflict comes back as DHIS2HTTPError, its message made from the summary
        with pytest.raises(DHIS2HTTPError) as err:
            client.post_data_value_set({"dataSet": form["id"], "orgUnit": C.uhc,
                                        "period": month(), "dataValues": [
                                            dict(values[0], value="-1")]})
        assert err.value.status_code == 409
        assert str(err.value).startswith(f"WARNING: {de['id']}: ")
    finally:
        client.close()

    # the same client with a personal access token instead of a password
    token = DHIS2Client(hub_proc.url, token=demo.DEMO_TOKENS["hub-ramu"], retries=0)
    try:
        assert token.get_current_user(fields="username")["username"] == "hub-ramu"
    finally:
        token.close()
