"""Heartbeats' ``wire`` (#15): a hub's bytes on its modem today and this month, stored per
hub, shown against its budget on the dashboard and the hub's page, and the
``modem_budget`` alert: raised when the month goes over the budget, resolved when the
hub's month ends or the budget is raised."""

from __future__ import annotations

import calendar
import time
from typing import Any

import pytest

from appliance.store import Store, wirebytes
from appliance.store.wirebytes import FLEET, METADATA, OTHER, PULL, PUSH

from .conftest import FleetServer, heartbeat

MB = 2**20


def hub_wire(month_mb: float, budget_mb: float, now: float | None = None) -> dict[str, Any]:
    """What a hub's health agent sends: ``wirebytes.report`` over a hub store that counted
    ``month_mb`` this month, most of it today."""
    now = time.time() if now is None else now
    total = int(month_mb * MB)
    counts = {METADATA: (2_000, total // 20), PULL: (10_000, total // 2),
              PUSH: (total // 4, 20_000), OTHER: (3_000, 3_000), FLEET: (50_000, 10_000)}
    rest = total - sum(s + r for s, r in counts.values())
    counts[PULL] = (counts[PULL][0], counts[PULL][1] + rest)
    with Store.memory() as s:
        s.write_sync(lambda tx: wirebytes.record(tx, counts, now))
        return s.read_sync(lambda c: wirebytes.report(c, now, budget_mb))


async def test_over_the_budget_alerts_until_the_budget_is_raised_or_the_month_ends(
        server: FleetServer) -> None:
    server.enroll("ramu")
    seq = iter(range(1, 100))

    async def beat(wire: Any = "absent", **over: Any) -> dict[str, Any]:
        if wire != "absent":
            over["wire"] = wire
        status, body = await server.send(heartbeat("ramu", next(seq), **over))
        assert status == 200, body
        _, hub = await server.get_json("/api/hubs/ramu")
        return dict(hub)

    async def alert() -> dict[str, Any] | None:
        _, body = await server.get_json("/api/alerts?hub=ramu")
        found = [a for a in body["alerts"] if a["code"] == "modem_budget"]
        return found[0] if found else None

    sent = hub_wire(60, 100)
    hub = await beat(sent)
    w = hub["wire"]
    assert w["period"] == sent["month"]["period"] and w["budget_mb"] == 100
    assert w["month_bytes"] == 60 * MB and w["month_used_pct"] == 60.0
    assert w["day"] == sent["today"]["date"] and w["today_bytes"] == 60 * MB
    assert w["detail"]["month"]["other"]["fleet"] == {"sent": 50_000, "received": 10_000}
    assert w["detail"]["today"]["push"] == sent["today"]["push"]
    assert hub["state"] == "green" and await alert() is None

    hub = await beat(hub_wire(100, 100))  # exactly at the budget: not over it
    assert await alert() is None
    hub = await beat(hub_wire(120, 100))
    a = await alert()
    assert a is not None and a["level"] == "amber" and hub["state"] == "amber"
    assert "120 MB" in a["message"] and "budget of 100 MB" in a["message"], a
    assert "modem_budget" in hub["alerts"]

    # national raised the budget in the hub's config: resolved by the next heartbeat
    await beat(hub_wire(121, 200))
    assert await alert() is None
    _, body = await server.get_json("/api/alerts?hub=ramu&resolved=true")
    assert [x["code"] for x in body["alerts"]] == ["modem_budget"]

    # back under 100 MB of budget: again; then the hub's new month starts
    await beat(hub_wire(130, 100))
    assert await alert() is not None
    ends = server.db.read_sync(lambda c: c.execute(
        "SELECT wire_month_ends FROM hubs WHERE id='ramu'").fetchone()[0])
    hub = await beat(hub_wire(1, 100, now=ends + 3600))
    assert hub["wire"]["period"] != sent["month"]["period"]
    assert await alert() is None and hub["state"] == "green"

    # a hub that stops reporting it keeps what was known; null: nothing to alert on
    hub = await beat()
    assert hub["wire"]["month_bytes"] == 1 * MB
    hub = await beat(None)
    assert hub["wire"] is None


async def test_the_month_ending_resolves_the_alert_without_a_heartbeat(
        server: FleetServer) -> None:
    """The sweep: a hub over its budget that goes quiet at the end of its month is not left
    amber for a month it is no longer in."""
    server.enroll("ramu")
    wire = hub_wire(300, 256)
    assert (await server.send(heartbeat("ramu", 1, wire=wire)))[0] == 200
    _, hub = await server.get_json("/api/hubs/ramu")
    assert "modem_budget" in hub["alerts"]
    ends = calendar.timegm(time.strptime(wire["month"]["endsAt"], "%Y-%m-%dT%H:%M:%SZ"))
    await server.db.sweep(ends - 60, server.fleet.thresholds)
    _, hub = await server.get_json("/api/hubs/ramu")
    assert "modem_budget" in hub["alerts"]  # a minute before: still this month
    await server.db.sweep(ends + 60, server.fleet.thresholds)
    _, hub = await server.get_json("/api/hubs/ramu")
    assert "modem_budget" not in hub["alerts"]


async def test_dashboard_hub_page_and_metrics_show_the_month(server: FleetServer) -> None:
    server.enroll("ramu")
    server.enroll("ukhia")
    assert (await server.send(heartbeat("ramu", 1, wire=hub_wire(300, 256))))[0] == 200
    assert (await server.send(heartbeat("ukhia", 1, wire=hub_wire(12, 0))))[0] == 200

    status, html, _ = await server.get_text("/?lang=en")
    assert status == 200 and "Modem data this month" in html
    ramu = html[html.index('data-hub="ramu"'):]
    ramu = ramu[:ramu.index("</tr>")]
    assert '<td class="n bad">300 MB of 256 MB (117 %)</td>' in ramu
    ukhia = html[html.index('data-hub="ukhia"'):]
    assert '<td class="n">12 MB</td>' in ukhia[:ukhia.index("</tr>")]  # no budget

    status, page, _ = await server.get_text("/hubs/ramu?lang=en")
    assert status == 200 and "<h2>Modem data</h2>" in page
    assert "Modem budget exceeded" in page and 'id="wire"' in page
    status, bn, _ = await server.get_text("/hubs/ramu?lang=bn")
    assert "মডেমের ডেটা" in bn and "মাসিক ডেটা বাজেট" in bn

    status, metrics, _ = await server.get_text("/metrics")
    assert status == 200
    assert 'fleet_hub_modem_month_bytes{hub="ramu"' in metrics
    assert any(line.startswith('fleet_hub_modem_budget_bytes{hub="ramu"')
               and line.endswith(f" {256 * MB}") for line in metrics.splitlines())
    assert 'fleet_hub_modem_budget_bytes{hub="ukhia"' not in metrics  # none: absent
    assert 'fleet_alerts{code="modem_budget"} 1' in metrics


@pytest.mark.parametrize(("change", "message"), [
    (lambda w: w.update(budgetMb=0), "wire.budgetMb must be an integer from 1"),
    (lambda w: w["today"].update(date="6 Dec"), "wire.today.date must be a date"),
    (lambda w: w["month"].update(period="202613"), "wire.month.period must be a month"),
    (lambda w: w["month"]["pull"].update(sent=-1), "wire.month.pull.sent must be an integer"),
    (lambda w: w["month"].pop("total"), "wire.month.total must be an object"),
    (lambda w: w["month"].update(endsAt="soon"), "wire.month.endsAt"),
])
async def test_bad_wire_fields_are_refused(server: FleetServer, change: Any,
                                           message: str) -> None:
    server.enroll("ramu")
    wire = hub_wire(5, 10)
    change(wire)
    status, body = await server.send(heartbeat("ramu", 1, wire=wire))
    assert status == 400 and message in body["message"], body
