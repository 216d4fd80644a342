"""``/api/hub/status`` and the status page show the bytes on the modem (issue 15): today and
this month by category, and the monthly budget; the API answers what its OpenAPI entry
describes."""

from __future__ import annotations

import copy
import re
import time
from pathlib import Path
from typing import Any

import aiohttp
import jsonschema_rs

from appliance.hub import openapi
from appliance.store import Store, wirebytes
from appliance.store.wirebytes import FLEET, METADATA, OTHER, PULL, PUSH
from tests.conftest import copy_db, running_hub

MIB = 2**20
COUNTS = {METADATA: (2_000, 310 * 1024), PULL: (9_000, 3 * MIB), PUSH: (2 * MIB, 40_000),
          OTHER: (1_500, 2_500), FLEET: (70_000, 9_000)}


def json_schema(s: Any) -> Any:
    """OpenAPI 3.0's ``nullable`` as JSON Schema's ``null`` type."""
    if isinstance(s, list):
        return [json_schema(x) for x in s]
    if not isinstance(s, dict):
        return s
    out = {k: json_schema(v) for k, v in s.items() if k != "nullable"}
    if s.get("nullable") and "type" in s:
        out["type"] = [s["type"], "null"]
    return out


async def _status(store: Store, data_dir: Path, path: str, **cfg: object) -> Any:
    async with running_hub(store, data_dir, **cfg) as hub, aiohttp.ClientSession() as http, \
            http.get(hub.url + path) as r:
        assert r.status == 200
        return await (r.json() if path.startswith("/api") else r.text())


async def test_status_reports_today_and_the_month_by_category(
        demo_template: dict[str, Path], tmp_path: Path) -> None:
    data = tmp_path / "hub"
    with Store(copy_db(demo_template["hub"], data)) as store:
        yesterday = time.time() - 86400
        same_month = wirebytes.local_day(yesterday)[:7] == wirebytes.local_day(time.time())[:7]
        await store.write(lambda tx: wirebytes.record(tx, {PULL: (1_000, 5 * MIB)}, yesterday))
        await store.write(lambda tx: wirebytes.record(tx, COUNTS, time.time()))
        body = await _status(store, data, "/api/hub/status")
        budgeted = await _status(store, data, "/api/hub/status", sync__modem_budget_mb=8)

    wire = body["wire"]
    # what the OpenAPI description says /api/hub/status answers, it answers
    schema = openapi.OPERATIONS[("GET", "/api/hub/status")].ok[200]
    validator = jsonschema_rs.validator_for(json_schema(copy.deepcopy(schema)))
    assert validator.is_valid(body), list(validator.iter_errors(body))[:3]
    assert validator.is_valid(budgeted)
    broken = copy.deepcopy(body)
    del broken["wire"]["month"]["other"]["fleet"]
    assert not validator.is_valid(broken)  # the description is precise enough to fail

    today = wire["today"]
    assert today["date"] == wirebytes.local_day(time.time())
    assert today["metadata"] == {"sent": 2_000, "received": 310 * 1024}
    assert today["pull"] == {"sent": 9_000, "received": 3 * MIB}
    assert today["push"] == {"sent": 2 * MIB, "received": 40_000}
    assert today["other"] == {"sent": 71_500, "received": 11_500,
                              "fleet": {"sent": 70_000, "received": 9_000}}
    assert today["total"] == {"sent": sum(s for s, _ in COUNTS.values()),
                              "received": sum(r for _, r in COUNTS.values())}
    month = wire["month"]
    assert month["pull"]["received"] == 3 * MIB + (5 * MIB if same_month else 0)
    assert wire["budgetMb"] is None and wire["monthUsedPct"] is None
    used = month["total"]["sent"] + month["total"]["received"]
    assert budgeted["wire"]["budgetMb"] == 8
    assert budgeted["wire"]["monthUsedPct"] == round(100 * used / (8 * MIB), 1)
    # the cumulative counters the page showed before are still there
    assert {"bytesSent", "bytesReceived"} <= set(body["sync"])


async def test_status_page_shows_modem_use_in_the_reader_s_language(
        demo_template: dict[str, Path], tmp_path: Path) -> None:
    data = tmp_path / "hub"
    with Store(copy_db(demo_template["hub"], data)) as store:
        await store.write(lambda tx: wirebytes.record(tx, COUNTS, time.time()))
        bn = await _status(store, data, "/hub/status", sync__modem_budget_mb=4)
        en = await _status(store, data, "/hub/status?lang=en", sync__modem_budget_mb=4)
        none = await _status(store, data, "/hub/status?lang=en")

    card = re.search(r'<div class="card" id="wire">.*?</dl></div>', en, re.S)
    assert card is not None
    text = card.group(0)
    assert "Modem data use" in text
    row = re.search(r'data-wire="push">.*?</tr>', text, re.S)
    assert row is not None and "2.0 MB up · 40 KB down" in row.group(0)
    row = re.search(r'data-wire="fleet">.*?</tr>', text, re.S)
    assert row is not None and "69 KB up · 9 KB down" in row.group(0)
    total = sum(s + r for s, r in COUNTS.values())
    assert f"{total / MIB:.1f} MB of 4 MB used this month" in text
    assert "OVER BUDGET" in text  # ~5.4 MB of 4
    assert "none set" in none and "OVER BUDGET" not in none

    # Bangla, Bengali digits: the words and the numbers
    assert "মডেমের ডেটা খরচ" in bn and "জাতীয় সার্ভারে পাঠানো ডেটা" in bn
    assert "২.০ MB আপলোড · ৪০ KB ডাউনলোড" in bn
    assert "বাজেট ছাড়িয়ে গেছে" in bn
