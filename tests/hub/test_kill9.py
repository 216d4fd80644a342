"""SIGKILL at random moments while clients post: every acknowledged value reads back."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from appliance import demo
from tests.conftest import ADMIN, HubProcess, start_hub_process


def _keys() -> list[tuple[str, str, str, str]]:
    """(de, coc, ou, pe) cells of the CC forms, in 2025 (admin may edit expired periods)."""
    doc = demo.hub()
    by_id = {o["id"]: o for t in doc.values() if isinstance(t, list) for o in t}
    cells = []
    for ds in doc["dataSets"]:
        for ref in ds.get("dataSetElements", []):
            de = by_id[ref["dataElement"]["id"]]
            if de.get("valueType") != "INTEGER_ZERO_OR_POSITIVE":
                continue
            combo = by_id[de["categoryCombo"]["id"]]
            for coc in combo["categoryOptionCombos"]:
                for ou in ds["organisationUnits"][:6]:
                    for pe in ("202501", "202502"):
                        cells.append((de["id"], coc["id"], ou["id"], pe))
    random.Random(7).shuffle(cells)
    return cells


class Poster(threading.Thread):
    """Posts batches of 5 fresh cells; records what the hub acknowledged with 200."""

    def __init__(self, hub: HubProcess, cells: list[tuple[str, str, str, str]],
                 acked: dict[tuple[str, str, str, str], str], lock: threading.Lock) -> None:
        super().__init__(daemon=True)
        self.hub, self.cells, self.acked, self.lock = hub, cells, acked, lock
        self.stop = threading.Event()
        self.session = requests.Session()
        self.session.headers.update(ADMIN)

    def run(self) -> None:
        while not self.stop.is_set():
            with self.lock:
                if len(self.cells) < 5:
                    return
                batch = [self.cells.pop() for _ in range(5)]
            values = [{"dataElement": de, "categoryOptionCombo": coc, "orgUnit": ou,
                       "period": pe, "value": str(random.randint(1, 999))}
                      for de, coc, ou, pe in batch]
            try:
                r = self.session.post(self.hub.api("dataValueSets"), json={"dataValues": values},
                                      timeout=10)
            except requests.RequestException:
                return  # killed mid-request: not acknowledged, so no promise was made
            body: dict[str, Any] = r.json()
            assert r.status_code == 200, body
            assert body["response"]["importCount"]["imported"] == 5, body
            with self.lock:
                for (de, coc, ou, pe), v in zip(batch, values, strict=True):
                    self.acked[(de, coc, ou, pe)] = v["value"]


@pytest.mark.slow
def test_sigkill_loses_no_acknowledged_value(tmp_path: Path) -> None:
    cells = _keys()
    acked: dict[tuple[str, str, str, str], str] = {}
    lock = threading.Lock()
    data_dir = tmp_path / "hub"
    rng = random.Random(42)
    port = None
    for _round in range(6):
        hub = start_hub_process(data_dir, port=port)
        port = int(hub.url.rsplit(":", 1)[1])
        posters = [Poster(hub, cells, acked, lock) for _ in range(4)]
        for p in posters:
            p.start()
        time.sleep(rng.uniform(0.3, 1.5))
        hub.kill()  # SIGKILL: no cleanup, no checkpoint, nothing flushed by us
        for p in posters:
            p.stop.set()
            p.join(timeout=15)
    assert len(acked) > 50, "the clients never got going; the test proves nothing"

    hub = start_hub_process(data_dir, port=port)
    try:
        got: dict[tuple[str, str, str, str], str] = {}
        for pe in ("202501", "202502"):
            r = requests.get(hub.api("dataValueSets"), headers=ADMIN, timeout=30, params={
                "dataSet": [d["id"] for d in demo.hub()["dataSets"]], "period": pe,
                "orgUnit": demo.RAMU_UID, "children": "true"})
            assert r.status_code == 200, r.text
            for v in r.json()["dataValues"]:
                key = (v["dataElement"], v["categoryOptionCombo"], v["orgUnit"], v["period"])
                assert key not in got, f"duplicate value for {key}"
                got[key] = v["value"]
        missing = {k: v for k, v in acked.items() if got.get(k) != v}
        assert not missing, f"{len(missing)} acknowledged values lost, e.g. {list(missing)[:3]}"
    finally:
        hub.kill()
