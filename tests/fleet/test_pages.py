"""Server-rendered pages over HTTP: escaping, filters by query string, paging, gzip."""

from __future__ import annotations

import re
import time

from appliance.fleet.db import NewHub

from .conftest import FleetServer, heartbeat, sample

EVIL = '<script>alert("x")</script>&'


async def test_everything_is_escaped(server: FleetServer) -> None:
    server.enroll("evil", name=EVIL, district=EVIL, division=EVIL, upazila=EVIL)
    hb = heartbeat("evil", version='"><img src=x onerror=alert(1)>', boot_id="<b>",
                   samples=[sample(time.time() - 5, temp_c=95.0)])
    assert (await server.send(hb))[0] == 200
    for path in ("/", "/hubs/evil", "/alerts", f"/?district={EVIL}", "/?q=<script>"):
        status, html, _ = await server.get_text(path)
        assert status == 200, path
        assert "<script>alert" not in html, path
        assert "<img" not in html, path
        assert "<b>" not in html, path
    _, html, _ = await server.get_text("/hubs/evil")
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;" in html
    status, html, _ = await server.get_text("/hubs/%3Cscript%3E")
    assert status == 404 and "&lt;script&gt;" in html and "<script>" not in html


async def test_filter_by_district_without_js(server: FleetServer) -> None:
    places = [("ramu", "Cox's Bazar", "Chattogram"), ("ukhia", "Cox's Bazar", "Chattogram"),
              ("savar", "Dhaka", "Dhaka"), ("tala", "Satkhira", "Khulna")]
    server.db.add_hubs([NewHub(h, district=d, division=v) for h, d, v in places])
    status, html, _ = await server.get_text("/?district=Cox%27s+Bazar&division=&state=&q=")
    assert status == 200
    assert sorted(re.findall(r'data-hub="([^"]+)"', html)) == ["ramu", "ukhia"]
    # the filter form shows the choice and keeps working as a plain GET form
    assert '<option value="Cox&#x27;s Bazar" selected>' in html
    assert '<form class="filters" method="get" action="/">' in html
    _, html, _ = await server.get_text("/?division=Khulna")
    assert re.findall(r'data-hub="([^"]+)"', html) == ["tala"]
    _, html, _ = await server.get_text("/?q=sav")
    assert re.findall(r'data-hub="([^"]+)"', html) == ["savar"]
    status, body = await server.get_json("/api/hubs?district=Dhaka")
    assert [h["id"] for h in body["hubs"]] == ["savar"]
    status, body = await server.get_json("/api/hubs?state=purple")
    assert status == 400 and body["status"] == "ERROR"


async def test_red_first_and_paging(server: FleetServer) -> None:
    server.db.add_hubs([NewHub(f"hub{i:03d}", district="D", division="V") for i in range(230)])
    for i, temp in ((17, 90.0), (150, 91.0)):
        hid = f"hub{i:03d}"
        server.tokens[hid] = server.db.token_of(hid) or ""
        hb = heartbeat(hid, samples=[sample(time.time() - 5, temp_c=temp)])
        assert (await server.send(hb))[0] == 200
    _, html, _ = await server.get_text("/")
    ids = re.findall(r'data-hub="([^"]+)"', html)
    assert len(ids) == 100 and ids[:2] == ["hub017", "hub150"]
    assert 'rel="next" href="?page=2"' in html and "Page 1 of 3" in html
    _, html, _ = await server.get_text("/?page=3")
    assert len(re.findall(r'data-hub="', html)) == 30
    status, body = await server.get_json("/api/hubs?pageSize=10&page=2")
    assert body["pager"] == {"page": 2, "pageSize": 10, "total": 230, "pageCount": 23}
    assert body["counts"] == {"red": 2, "amber": 0, "green": 228}
    _, body = await server.get_json("/api/hubs?paging=false")
    assert len(body["hubs"]) == 230 and "pager" not in body
    status, body = await server.get_json("/api/hubs?page=zero")
    assert status == 400 and "page" in body["message"]


async def test_pages_are_gzipped_and_small(server: FleetServer) -> None:
    server.db.add_hubs([NewHub(f"hub{i:03d}") for i in range(150)])
    async with server.session.get(server.url + "/", headers={"Accept-Encoding": "gzip"},
                                  auto_decompress=False) as r:
        assert r.headers["Content-Encoding"] == "gzip"
        raw = await r.read()
        assert "render;dur=" in r.headers["Server-Timing"]
    assert len(raw) < 20_000, f"first page is {len(raw)} bytes gzipped"


async def test_hub_page_and_alerts_page(server: FleetServer) -> None:
    server.enroll("ramu")
    now = time.time()
    samples = [sample(now - 60 * (20 - i), temp_c=70.0 + i, disk_pct=50.0 + i,
                      sync={"pending": 100 * i, "conflicts": 2}, power_cuts=i // 5)
               for i in range(20)]
    assert (await server.send(heartbeat("ramu", samples=samples)))[0] == 200
    status, html, _ = await server.get_text("/hubs/ramu")
    assert status == 200
    assert html.count('<svg class="chart"') == 4
    assert html.count('<polyline class="series"') == 4
    assert 'aria-label="Temperature (°C)"' in html
    assert "temperature 89.0 °C (over 80 °C)" in html
    assert "2 unresolved sync conflicts" in html
    # the latest sample with labels, its keys only in the tooltips (issue 14)
    assert '<dt title="cpu_pct">CPU (%)</dt>' in html and '<dt title="boot_id">Boot</dt>' in html
    assert ">cpu_pct<" not in html and ">boot_id<" not in html
    status, html, _ = await server.get_text("/alerts")
    assert status == 200
    assert re.findall(r'<tr class="alert (\w+)" data-hub="ramu">', html) == ["red", "amber"]
    status, html, _ = await server.get_text("/alerts?level=amber")
    assert re.findall(r'<tr class="alert (\w+)"', html) == ["amber"]
    status, body = await server.get_json("/api/alerts")
    assert [(a["hub"], a["code"], a["level"]) for a in body["alerts"]] == \
        [("ramu", "temp", "red"), ("ramu", "conflicts", "amber")]
    # cool down and resolve: the alert moves to the resolved list
    cool = heartbeat("ramu", seq=2, samples=[sample(time.time(), sync={"conflicts": 0})])
    assert (await server.send(cool))[0] == 200
    _, body = await server.get_json("/api/alerts")
    assert body["alerts"] == []
    _, body = await server.get_json("/api/alerts?resolved=true")
    assert {a["code"] for a in body["alerts"]} == {"temp", "conflicts"}
    assert all(a["resolved_at"] for a in body["alerts"])
    status, html, _ = await server.get_text("/alerts?resolved=1")
    assert status == 200 and "Resolved alerts (2)" in html


async def test_never_a_traceback(server: FleetServer) -> None:
    for path in ("/hubs/nope", "/?page=-1", "/alerts?level=pink", "/hubs/x?hours=abc"):
        status, html, _ = await server.get_text(path)
        assert status in (400, 404), path
        assert "Traceback" not in html and "<h1>" in html
