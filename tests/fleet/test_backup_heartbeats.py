"""Heartbeats' ``backup`` (#13): the litestream replica's lag on the hub row, and the
``backup_lag`` alert with the hub's reason."""

from __future__ import annotations

import time
from typing import Any

import pytest

from appliance.dhis2.timefmt import iso_z as iso

from .conftest import FleetServer, heartbeat

HOUR = 3600.0


def backup(lag_s: float | None, error: str | None = None) -> dict[str, Any]:
    last = None if lag_s is None else iso(time.time() - lag_s)
    return {"last_replicated_at": last, "lag_s": lag_s, "error": error}


async def test_backup_lag_alert(server: FleetServer) -> None:
    server.enroll("ramu")
    seq = iter(range(1, 100))

    async def beat(**over: Any) -> dict[str, Any]:
        status, body = await server.send(heartbeat("ramu", next(seq), **over))
        assert status == 200, body
        _, hub = await server.get_json("/api/hubs/ramu")
        return hub

    async def alert() -> dict[str, Any] | None:
        _, body = await server.get_json("/api/alerts?hub=ramu")
        found = [a for a in body["alerts"] if a["code"] == "backup_lag"]
        return found[0] if found else None

    hub = await beat(backup=backup(3.0))
    assert hub["backup"]["lag_s"] == 3.0 and hub["backup"]["error"] is None
    assert hub["state"] == "green" and await alert() is None
    # just at the threshold (12 h): no alert; over it: amber, with the hub's reason
    await beat(backup=backup(12 * HOUR))
    assert await alert() is None
    hub = await beat(backup=backup(13 * HOUR, "ssh: handshake failed: ssh: host key mismatch"))
    a = await alert()
    assert a is not None and a["level"] == "amber" and hub["state"] == "amber"
    assert "13 h behind" in a["message"] and "host key mismatch" in a["message"]
    assert hub["backup"]["error"] == "ssh: handshake failed: ssh: host key mismatch"
    # the replica caught up: resolved
    await beat(backup=backup(1.0))
    assert await alert() is None
    # a hub that stops reporting it keeps what was known; null: no backup configured,
    # which never alerts
    hub = await beat()
    assert hub["backup"]["lag_s"] == 1.0
    hub = await beat(backup=None)
    assert hub["backup"] is None and await alert() is None
    # never replicated since the hub has been watching: a lag, no time
    hub = await beat(backup={"last_replicated_at": None, "lag_s": 20 * HOUR,
                             "error": "dial tcp 10.0.0.9:22: connect: connection refused"})
    assert hub["backup"]["last_replicated_at"] is None
    assert (await alert() or {}).get("level") == "amber"


async def test_admin_sets_the_backup_threshold(server: FleetServer) -> None:
    server.enroll("ramu")
    assert (await server.send(heartbeat("ramu", 1, backup=backup(2 * HOUR))))[0] == 200
    async with server.session.put(server.url + "/api/alert-rules",
                                  json={"backup_lag_h": 1}) as r:
        assert r.status == 200, await r.text()
    _, hub = await server.get_json("/api/hubs/ramu")
    assert "backup_lag" in hub["alerts"]
    async with server.session.put(server.url + "/api/alert-rules",
                                  json={"backup_lag_h": 0}) as r:
        assert r.status == 400
        assert "between 0.1 and" in (await r.json())["message"]


@pytest.mark.parametrize(("value", "message"), [
    ("late", "backup must be an object"),
    ({"lag_s": -5}, "backup.lag_s must be between 0"),
    ({"lag_s": "5"}, "backup.lag_s must be a number"),
    ({"last_replicated_at": "yesterday"}, "backup.last_replicated_at"),
    ({"error": "x" * 501}, "backup.error is longer than 500"),
])
async def test_bad_backup_fields_are_refused(server: FleetServer, value: Any,
                                             message: str) -> None:
    server.enroll("ramu")
    status, body = await server.send(heartbeat("ramu", 1, backup=value))
    assert status == 400 and message in body["message"], body
