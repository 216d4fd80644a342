"""Time-driven behaviour: hubs going silent, undervoltage ageing out, retention pruning."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from appliance.fleet.alerts import Thresholds
from appliance.fleet.db import FleetDB, NewHub
from appliance.fleet.models import parse_heartbeat
from appliance.fleet.web import FLEET, create_app, start

from .conftest import FleetServer, heartbeat, make_config, sample

DAY = 86400.0


async def test_hub_goes_silent_then_recovers(server: FleetServer) -> None:
    server.enroll("ramu")
    assert (await server.send(heartbeat("ramu", seq=1)))[0] == 200
    th = server.fleet.thresholds
    assert await server.db.sweep(server.clock(), th) == 0  # nothing changed with time

    server.clock.offset = th.silent_after_s + 60  # half an hour passes without a word
    assert await server.db.sweep(server.clock(), th) == 1
    _, hub = await server.get_json("/api/hubs/ramu")
    assert hub["state"] == "red" and hub["alerts"] == ["silent"]
    _, alerts = await server.get_json("/api/alerts")
    assert [(a["hub"], a["code"]) for a in alerts["alerts"]] == [("ramu", "silent")]

    # the hub comes back (its clock moved on too: same boot, same offset)
    hb = heartbeat("ramu", seq=2, sent_at=time.time() + server.clock.offset)
    status, body = await server.send(hb)
    assert status == 200, body
    _, hub = await server.get_json("/api/hubs/ramu")
    assert hub["state"] == "green"
    _, resolved = await server.get_json("/api/alerts?resolved=1")
    assert [a["code"] for a in resolved["alerts"]] == ["silent"]


async def test_undervoltage_alert_ages_out_after_a_day(server: FleetServer) -> None:
    server.enroll("ramu")
    s = sample(time.time() - 10, undervoltage_seen=True)
    assert (await server.send(heartbeat("ramu", seq=1, samples=[s])))[0] == 200
    _, hub = await server.get_json("/api/hubs/ramu")
    assert hub["alerts"] == ["undervoltage"]
    # the sticky "seen" flag of the same boot is not a new event
    s2 = sample(time.time(), undervoltage_seen=True)
    assert (await server.send(heartbeat("ramu", seq=2, samples=[s2])))[0] == 200
    first_event = hub["undervoltage_at"]
    _, hub = await server.get_json("/api/hubs/ramu")
    assert hub["undervoltage_at"] == first_event

    th = Thresholds(silent_after_s=10 * DAY)  # keep it from going silent meanwhile
    assert await server.db.sweep(time.time() + DAY + 60, th) == 1
    _, hub = await server.get_json("/api/hubs/ramu")
    assert hub["alerts"] == [] and hub["state"] == "green"


async def test_retention_prunes_old_rows_only(tmp_path: Path) -> None:
    db = FleetDB(tmp_path / "fleet.db")
    try:
        db.add_hubs([NewHub("ramu")])
        now = time.time()
        th = Thresholds()
        for seq, age_days in ((1, 120), (2, 95), (3, 10), (4, 0)):
            t = now - age_days * DAY
            hb = parse_heartbeat(heartbeat("ramu", seq=seq, sent_at=t, boot_id=f"b{seq}",
                                           samples=[sample(t - 60), sample(t - 30)]))
            db.ingest_sync(hb, t, max_skew_s=900, th=th)

        def counts() -> tuple[int, int]:
            return db.read_sync(lambda c: (
                c.execute("SELECT count(*) FROM samples").fetchone()[0],
                c.execute("SELECT count(*) FROM heartbeats").fetchone()[0]))
        assert counts() == (8, 4)
        deleted = await db.prune(now, retention_days=90)
        assert deleted == 6
        assert counts() == (4, 2)
        left = db.read_sync(lambda c: [r[0] for r in c.execute(
            "SELECT seq FROM heartbeats ORDER BY seq")])
        assert left == [3, 4]
        assert await db.prune(now, retention_days=90) == 0
    finally:
        db.close()


async def test_background_tasks_run_from_cleanup_ctx(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, retention_days=30, silent_after_s=1)
    db = FleetDB(tmp_path / "fleet.db")
    db.add_hubs([NewHub("ramu")], now=time.time() - 40 * DAY)
    hb = parse_heartbeat(heartbeat("ramu", seq=1, sent_at=time.time() - 40 * DAY))
    db.ingest_sync(hb, time.time() - 40 * DAY, max_skew_s=900, th=Thresholds())
    app = create_app(cfg, db)
    fleet = app[FLEET]
    fleet.sweep_s = 0.05
    fleet.prune_s = 0.05
    runner, _url = await start(app)
    try:
        for _ in range(100):
            state, n = db.read_sync(lambda c: (
                c.execute("SELECT state FROM hubs").fetchone()[0],
                c.execute("SELECT count(*) FROM samples").fetchone()[0]))
            if state == "red" and n == 0:
                break
            await asyncio.sleep(0.05)
        assert (state, n) == ("red", 0)
    finally:
        await runner.cleanup()
        db.close()


async def test_app_refuses_to_run_with_auto_decompress(tmp_path: Path) -> None:
    from aiohttp import web

    from appliance.errors import FleetError

    app = create_app(make_config(tmp_path))
    runner = web.AppRunner(app)  # not make_runner(): bodies would be inflated before HMAC
    try:
        await runner.setup()
    except FleetError as e:
        assert "auto_decompress" in e.message
    else:
        raise AssertionError("the app started with auto_decompress on")
    finally:
        await runner.cleanup()
