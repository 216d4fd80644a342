"""Heartbeats' ``tls`` and ``lan_ip`` (#12): stored on the hub, the ``cert_expiry`` alert,
and the hub's public name published as an A record of its LAN address in real BIND."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from appliance.dhis2.timefmt import iso_z as iso
from appliance.fleet.db import MIGRATIONS, FleetDB
from appliance.store import Store
from tests.tlsinfra import ZONE, Bind

from .conftest import FleetServer, acme_config, heartbeat, serve_fleet

NAME = f"ramu.{ZONE}"
DAY = 86400.0
FP = "ab" * 32


def tls(not_after: float, name: str = NAME) -> dict[str, Any]:
    return {"name": name, "not_after": iso(not_after), "issuer": "CN=Pebble Intermediate CA",
            "fingerprint": FP}


def alert_level(server: FleetServer, code: str) -> str | None:
    """From the DB: once fleet time moves on days, the admin's session has expired."""
    row = server.db.read_sync(lambda c: c.execute(
        "SELECT level FROM alerts WHERE hub_id='ramu' AND code=? AND resolved_at IS NULL",
        (code,)).fetchone())
    return row[0] if row else None


async def open_alert(server: FleetServer, code: str) -> dict[str, Any] | None:
    status, body = await server.get_json("/api/alerts?hub=ramu")
    assert status == 200
    found = [a for a in body["alerts"] if a["code"] == code]
    return found[0] if found else None


async def test_cert_expiry_alert(server: FleetServer) -> None:
    server.enroll("ramu", tls_name=NAME)
    now = time.time()
    seq = iter(range(1, 100))

    async def beat(**over: Any) -> dict[str, Any]:
        status, body = await server.send(heartbeat("ramu", next(seq), **over))
        assert status == 200, body
        return body

    await beat(tls=tls(now + 30 * DAY))
    assert await open_alert(server, "cert_expiry") is None
    await beat(tls=tls(now + 10 * DAY))
    a = await open_alert(server, "cert_expiry")
    assert a is not None and a["level"] == "amber"
    assert "14 days" in a["message"] and "renewal" in a["message"]
    await beat(tls=tls(now - 1 * DAY))
    a = await open_alert(server, "cert_expiry")
    assert a is not None and a["level"] == "red"
    assert "expired" in a["message"]
    _, hub = await server.get_json("/api/hubs/ramu")
    assert hub["state"] == "red" and "cert_expiry" in hub["alerts"]
    assert hub["tls"]["not_after"] == iso(now - 1 * DAY)
    assert hub["tls"]["days_left"] == pytest.approx(-1, abs=0.05)
    assert hub["tls"]["fingerprint"] == FP and hub["tls"]["cert_name"] == NAME
    # renewed: the alert resolves
    await beat(tls=tls(now + 90 * DAY))
    assert await open_alert(server, "cert_expiry") is None
    # an older hub that omits tls keeps what was known; null (none installed) is unknown,
    # and unknown never alerts
    await beat()
    _, hub = await server.get_json("/api/hubs/ramu")
    assert hub["tls"]["not_after"] == iso(now + 90 * DAY)
    await beat(tls=tls(now + 2 * DAY))
    assert await open_alert(server, "cert_expiry") is not None
    await beat(tls=None)
    assert await open_alert(server, "cert_expiry") is None
    _, hub = await server.get_json("/api/hubs/ramu")
    assert hub["tls"]["not_after"] is None and hub["tls"]["name"] == NAME

    # the hub page shows the name and the expiry
    await beat(tls=tls(now + 20 * DAY))
    status, html, _ = await server.get_text("/hubs/ramu")
    assert status == 200
    assert "HTTPS certificate" in html and NAME in html and iso(now + 20 * DAY) in html


async def test_cert_expiry_follows_time_and_the_rule(server: FleetServer) -> None:
    """The sweep re-evaluates as days pass; admins change the days over the API."""
    server.enroll("ramu", tls_name=NAME)
    now = time.time()
    status, _ = await server.send(heartbeat("ramu", 1, tls=tls(now + 20 * DAY)))
    assert status == 200
    assert await open_alert(server, "cert_expiry") is None

    # an admin wants warnings earlier: 25 days
    async with server.session.put(server.url + "/api/alert-rules",
                                  json={"cert_expiry_days": 25}) as r:
        assert r.status == 200, await r.text()
        rules = {x["name"]: x for x in (await r.json())["response"]["rules"]}
    assert rules["cert_expiry_days"]["value"] == 25 and rules["cert_expiry_days"]["default"] == 14
    assert (await open_alert(server, "cert_expiry"))["level"] == "amber"  # type: ignore[index]
    async with server.session.put(server.url + "/api/alert-rules",
                                  json={"cert_expiry_days": 0}) as r:
        assert r.status == 400
        assert "cert_expiry_days" in (await r.json())["message"]
    async with server.session.put(server.url + "/api/alert-rules",
                                  json={"cert_expiry_days": None}) as r:
        assert r.status == 200
    assert await open_alert(server, "cert_expiry") is None

    # time passes with no heartbeat: 7 days later it is amber, 21 days later red
    server.clock.offset = 7 * DAY
    await server.db.sweep(server.clock(), server.fleet.thresholds)
    assert alert_level(server, "cert_expiry") == "amber"
    server.clock.offset = 21 * DAY
    await server.db.sweep(server.clock(), server.fleet.thresholds)
    assert alert_level(server, "cert_expiry") == "red"
    # a quiet sweep touches nothing
    assert await server.db.sweep(server.clock(), server.fleet.thresholds) == 0


async def test_heartbeat_tls_and_lan_ip_are_checked(server: FleetServer) -> None:
    server.enroll("ramu")
    before = server.snapshot()
    now = time.time()
    bad: list[tuple[dict[str, Any], str]] = [
        ({"tls": "yes"}, "tls must be an object"),
        ({"tls": {**tls(now), "not_after": "soon"}}, "tls.not_after"),
        ({"tls": {k: v for k, v in tls(now).items() if k != "not_after"}}, "tls.not_after"),
        ({"tls": {**tls(now), "fingerprint": "abc"}}, "tls.fingerprint"),
        ({"tls": {**tls(now), "fingerprint": 5}}, "tls.fingerprint"),
        ({"tls": {**tls(now), "name": "not a name"}}, "tls.name"),
        ({"tls": {**tls(now), "issuer": None}}, "tls.issuer"),
        ({"lan_ip": "10.77.0.300"}, "lan_ip"),
        ({"lan_ip": 167772161}, "lan_ip"),
        ({"lan_ip": "fe80::1"}, "lan_ip"),
        ({"lan_ip": "127.0.0.1"}, "lan_ip"),
    ]
    for i, (over, field_name) in enumerate(bad, start=1):
        status, body = await server.send(heartbeat("ramu", i, **over))
        assert status == 400, over
        assert field_name in body["message"], (field_name, body["message"])
    assert server.snapshot() == before
    status, body = await server.send(heartbeat("ramu", 50, lan_ip="10.77.0.1", tls=None))
    assert status == 200, body
    _, hub = await server.get_json("/api/hubs/ramu")
    assert hub["tls"]["lan_ip"] == "10.77.0.1"
    assert hub["tls"]["published_ip"] is None  # no DNS provider configured


async def wait_for(fn: Any, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.1)


async def test_lan_ip_is_published_as_the_hubs_a_record(tmp_path: Path,
                                                         national_dns: Bind) -> None:
    """The plex.direct pattern: <tls_name> A <lan_ip> in national's zone, updated when the
    address changes; a failed update is retried later (here: BIND refuses the key)."""
    cfg = acme_config(tmp_path / "data", national_dns, None)
    async with serve_fleet(cfg) as server:
        server.enroll("ramu", tls_name=NAME)
        server.enroll("cox")  # no name: nothing is published for it
        status, _ = await server.send(heartbeat("ramu", 1, lan_ip="10.77.0.1"))
        assert status == 200
        await wait_for(lambda: national_dns.query(NAME, "A") == ["10.77.0.1"])
        await wait_for(lambda: server.db.read_sync(lambda c: c.execute(
            "SELECT published_ip FROM hubs WHERE id='ramu'").fetchone()[0]) == "10.77.0.1")
        status, _ = await server.send(heartbeat("cox", 1, lan_ip="10.78.0.1"))
        assert status == 200

        status, _ = await server.send(heartbeat("ramu", 2, lan_ip="192.168.50.1"))
        await wait_for(lambda: national_dns.query(NAME, "A") == ["192.168.50.1"])
        _, hub = await server.get_json("/api/hubs/ramu")
        await wait_for(lambda: server.db.read_sync(lambda c: c.execute(
            "SELECT published_ip FROM hubs WHERE id='ramu'").fetchone()[0]) == "192.168.50.1")
        # same address again: no update needed
        status, body = await server.send(heartbeat("ramu", 3, lan_ip="192.168.50.1"))
        assert status == 200
        assert national_dns.query(f"cox.{ZONE}", "A") == []
        token = server.tokens["ramu"]

    # the fleet's TSIG key is wrong: publishing fails, is not recorded, and is retried by
    # the sweep once the key is right again
    cfg = acme_config(tmp_path / "data", national_dns, None,
                      tsig_secret="c2VjcmV0LXRoYXQtYmluZC1kb2VzLW5vdC1rbm93")
    async with serve_fleet(cfg) as server:
        status, _ = await server.send(heartbeat("ramu", 4, lan_ip="10.99.0.1"), token=token)
        assert status == 200
        await asyncio.sleep(1.0)
        assert national_dns.query(NAME, "A") == ["192.168.50.1"]
        assert server.db.read_sync(lambda c: c.execute(
            "SELECT published_ip FROM hubs WHERE id='ramu'").fetchone()[0]) == "192.168.50.1"
    cfg = acme_config(tmp_path / "data", national_dns, None)
    async with serve_fleet(cfg) as server:
        await server.fleet.certs.publish_due()  # type: ignore[union-attr]
        await wait_for(lambda: national_dns.query(NAME, "A") == ["10.99.0.1"])


def test_fleet_db_from_before_12_gains_the_tls_columns(tmp_path: Path) -> None:
    path = tmp_path / "fleet.db"
    with Store(path, migrations=MIGRATIONS[:2], clock=False) as old:
        old.write_sync(lambda tx: tx.conn.execute(
            "INSERT INTO hubs (id, token_hash, token_secret, created_at) "
            "VALUES ('ramu', 'h', 's', 0)"))
    with FleetDB(path) as db:
        row = db.read_sync(lambda c: c.execute("SELECT * FROM hubs").fetchone())
        assert row["tls_name"] is None and row["lan_ip"] is None
        assert db.read_sync(lambda c: c.execute("SELECT count(*) FROM certificates")
                            .fetchone()[0]) == 0


async def test_admin_enrols_a_hub_with_its_name(server: FleetServer) -> None:
    async with server.session.post(server.url + "/api/hubs",
                                   json={"hub_id": "ukhia", "tls_name": f"Ukhia.{ZONE}"}) as r:
        assert r.status == 201, await r.text()
    _, hub = await server.get_json("/api/hubs/ukhia")
    assert hub["tls"]["name"] == f"ukhia.{ZONE}"
    for bad in ("not a name", "ukhia", 5):
        async with server.session.post(server.url + "/api/hubs",
                                       json={"hub_id": "teknaf", "tls_name": bad}) as r:
            assert r.status == 400, bad
    async with server.session.post(server.url + "/api/hubs",
                                   json={"hub_id": "teknaf", "tls_name": f"ukhia.{ZONE}"}) as r:
        assert r.status == 409  # one name, one hub
        assert "already belongs to hub ukhia" in (await r.json())["message"]
