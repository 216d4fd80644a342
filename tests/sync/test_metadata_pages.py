"""Metadata pulls come in pages and resume at the page they reached when the link is cut;
the forms only ever see a whole pull, and the watermark moves only once all of it is in.

Real components: the national stand-in on a real port, behind a proxy that cuts the
link (RST, then refuses connections for a while), the hub's SQLite file and its LAN API."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp

from appliance.sync import metadata
from tests.netlink.harness import FlappingProxy

from .conftest import DS_FORM1, Pair, basic, hub_app

NEW = [f"Zq1NewDe{i:03d}" for i in range(14)]
SECTION = "Zq1NewSecti"
PAGE = 4


def hub_doc(pair: Pair, type_: str, uid: str) -> dict[str, Any] | None:
    row = pair.hub.read_sync(lambda c: c.execute(
        "SELECT doc FROM metadata WHERE type=? AND uid=?", (type_, uid)).fetchone())
    return json.loads(row[0]) if row else None


def sync_state(pair: Pair) -> dict[str, str]:
    return pair.hub.read_sync(lambda c: dict(c.execute("SELECT key, value FROM sync_state")))


def staged(pair: Pair) -> int:
    return int(pair.hub.read_sync(lambda c: c.execute(
        "SELECT count(*) FROM metadata_stage").fetchone()[0]))


def form_is_whole(pair: Pair) -> bool:
    """Every data element the hub's Form-1 lists (and its sections name) is held."""
    ds = hub_doc(pair, "dataSets", DS_FORM1) or {}
    ids = {e["dataElement"]["id"] for e in ds.get("dataSetElements", [])}
    for ref in ds.get("sections") or []:
        sec = hub_doc(pair, "sections", ref["id"])
        if sec is None:
            return False
        ids |= {d["id"] for d in sec.get("dataElements", [])}
    return all(hub_doc(pair, "dataElements", i) is not None for i in ids)


async def _national_adds_a_section_of_new_elements(pair: Pair,
                                                   http: aiohttp.ClientSession) -> None:
    ds = hub_doc(pair, "dataSets", DS_FORM1)
    assert ds is not None
    template = hub_doc(pair, "dataElements", ds["dataSetElements"][0]["dataElement"]["id"])
    assert template is not None
    base = {k: v for k, v in template.items() if k not in ("lastUpdated", "created")}
    elements = [dict(base, id=uid, code=f"CC_NEW_{i}", name=f"CC - New element {i}",
                     shortName=f"CC new {i}", formName=f"New element {i}")
                for i, uid in enumerate(NEW)]
    body = {"dataElements": elements,
            "sections": [{"id": SECTION, "name": "New services", "dataSet": {"id": DS_FORM1},
                          "sortOrder": 99, "dataElements": [{"id": u} for u in NEW]}],
            "dataSets": [{"id": DS_FORM1, "dataSetElements": ds["dataSetElements"] + [
                {"dataElement": {"id": u}, "dataSet": {"id": DS_FORM1}} for u in NEW],
                "sections": (ds.get("sections") or []) + [{"id": SECTION}]}]}
    async with http.post(pair.national.api("metadata"), json=body,
                         headers=basic("dghs")) as r:
        assert r.status == 200, await r.text()


class Spy:
    """Records each page national answered ((collection, filters, page)), and cuts the
    link just before one chosen page is asked for."""

    def __init__(self, client: Any, proxy: FlappingProxy, cut_before: tuple[str, int]) -> None:
        self.answered: list[tuple[str, str, int]] = []
        self.proxy, self.cut_before, self.cut = proxy, cut_before, False
        self._get = client.get_json
        client.get_json = self.get_json

    async def get_json(self, path: str, params: dict[str, Any] | None = None,
                       **kw: Any) -> Any:
        p = params or {}
        collection, page = path.rsplit("/", 1)[-1], int(p.get("page", 1))
        if (collection, page) == self.cut_before and not self.cut:
            self.cut = True
            await self.proxy.cut(down_s=1.5)  # RST, then nothing answers for 1.5 s
        data = await self._get(path, params, **kw)
        if collection != "info":
            self.answered.append((collection, json.dumps(p.get("filter")), page))
        return data


async def test_a_cut_metadata_pull_resumes_at_its_page_and_applies_only_when_whole(
        pair: Pair, http: aiohttp.ClientSession) -> None:
    await _national_adds_a_section_of_new_elements(pair, http)
    watermark = sync_state(pair)["metadata_watermark"]
    port = int(pair.national.url.rsplit(":", 1)[1])
    async with FlappingProxy("127.0.0.1", port) as proxy:
        eng = pair.new_engine(national__url=f"http://127.0.0.1:{proxy.port}",
                              sync__metadata_page_size=PAGE)
        eng.client.retries = 0
        try:
            # 14 new elements in pages of 4: the link goes during the third page
            spy = Spy(eng.client, proxy, cut_before=("dataElements", 3))
            r = await eng.cycle("cli")
            assert not r.ok and spy.cut, r
            first = list(spy.answered)
            assert [a[2] for a in first if a[0] == "dataElements"] == [1, 2]
            # two pages staged; nothing reached the forms, the watermark has not moved
            assert staged(pair) == 2 * PAGE
            assert all(hub_doc(pair, "dataElements", u) is None for u in NEW)
            assert hub_doc(pair, "sections", SECTION) is None
            assert form_is_whole(pair)
            st = sync_state(pair)
            assert st["metadata_watermark"] == watermark and st[metadata.ROUND_KEY]

            await asyncio.sleep(1.7)  # the link is back
            spy.answered.clear()
            r = await eng.cycle("cli")
            assert r.ok, r.error
            again = set(spy.answered) & set(first)
            assert not again, f"pages fetched twice: {sorted(again)}"
            de_pages = [a for a in spy.answered if a[0] == "dataElements"]
            assert [a[2] for a in de_pages] == [3, 4]  # resumed at the page it reached
            assert eng.metadata_stats is not None and eng.metadata_stats.resumed
        finally:
            await eng.close()
    # all of it is in, consistent, and the watermark moved
    assert all(hub_doc(pair, "dataElements", u) is not None for u in NEW)
    assert {e["dataElement"]["id"] for e in hub_doc(pair, "dataSets", DS_FORM1)[  # type: ignore[index]
        "dataSetElements"]} >= set(NEW)
    assert form_is_whole(pair)
    st = sync_state(pair)
    assert st["metadata_watermark"] > watermark and st[metadata.ROUND_KEY] == ""
    assert staged(pair) == 0
    # the LAN API serves the form with its new section
    async with hub_app(pair.hub, pair.data_dir) as hub, http.get(
            hub.api(f"dataSets/{DS_FORM1}"), params={"fields": "sections[id,dataElements[id]]"},
            headers=basic("chcp")) as resp:
        secs = {s["id"]: s for s in (await resp.json())["sections"]}
    assert [d["id"] for d in secs[SECTION]["dataElements"]] == NEW
    # and the next pull starts from the new watermark, with nothing left to do
    r = await pair.cycle()
    assert r.ok and r.metadata_changes == 0


async def test_pages_of_a_first_pull_follow_the_pager(pair: Pair) -> None:
    """A hub's first pull (no watermark) in small pages takes the same metadata as the
    fixture's one-page pull did: nothing is lost between pages."""
    before = pair.hub.read_sync(lambda c: {(r[0], r[1]): r[2] for r in c.execute(
        "SELECT type, uid, doc FROM metadata")})
    pair.hub.write_sync(lambda tx: tx.execute(
        "UPDATE sync_state SET value='' WHERE key='metadata_watermark'"))
    eng = pair.new_engine(sync__metadata_page_size=25)
    try:
        r = await eng.cycle("cli")
        assert r.ok, r.error
        stats = eng.metadata_stats
        assert stats is not None and not stats.resumed
        assert stats.pages > 30 and stats.objects > 800  # the min-max values alone: 810
    finally:
        await eng.close()
    after = pair.hub.read_sync(lambda c: {(r[0], r[1]): r[2] for r in c.execute(
        "SELECT type, uid, doc FROM metadata")})
    assert after.keys() == before.keys()
    assert r.metadata_changes == 0
