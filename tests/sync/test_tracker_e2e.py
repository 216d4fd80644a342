"""Tracker sync end to end with real processes: the national stand-in, the hub's LAN
server and the sync worker.

* Registrations, visits, edits and a deletion entered at the hub's LAN tracker API go up
  over a rate-limited link that is cut every few seconds (the tests/netlink proxy, which
  resets connections, and the netns veth at 256 kbit/s, whose interface goes down), the
  hub telling the worker after each write; national then equals the hub.
* The sync worker is SIGKILLed at random points, in rounds, while CHCPs keep registering
  and editing; afterwards national equals the hub, nothing was applied twice, and (as
  only the hub changed the records) the conflict log is empty.
"""

from __future__ import annotations

import asyncio
import random
import signal
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from appliance.store import Store
from appliance.store import tracker as tstore
from appliance.sync import tracker_push as tp
from tests.conftest import REPO, copy_db, start_hub_process
from tests.netlink.harness import FlappingProxy

from .conftest import basic
from .test_e2e import processes, provisioned, start_sync, write_config
from .test_tracker_sync import M, assert_equal, hub_write, person_bundle, snapshot

pytestmark = pytest.mark.slow


def as_payload(b: tstore.Bundle) -> dict[str, Any]:
    """A bundle as the flat JSON a laptop's page (or the SDK) posts."""
    return {
        "trackedEntities": [{"trackedEntity": t.uid, "trackedEntityType": t.type,
                             "orgUnit": t.org_unit,
                             "attributes": [{"attribute": a, "value": v} for a, v in t.attributes]}
                            for t in b.tracked_entities],
        "enrollments": [{"enrollment": e.uid, "trackedEntity": e.te, "program": e.program,
                         "orgUnit": e.org_unit, "status": e.status, "enrolledAt": e.enrolled_at,
                         "occurredAt": e.occurred_at} for e in b.enrollments],
        "events": [{"event": v.uid, "enrollment": v.enrollment, "program": v.program,
                    "programStage": v.program_stage, "orgUnit": v.org_unit, "status": v.status,
                    "occurredAt": v.occurred_at,
                    "dataValues": [{"dataElement": d, "value": x} for d, x, _ in v.data_values]}
                   for v in b.events]}


async def post_tracker(http: aiohttp.ClientSession, url: str, body: dict[str, Any],
                       strategy: str = "CREATE_AND_UPDATE") -> dict[str, Any]:
    async with http.post(f"{url}/api/tracker", json=body, headers=basic("chcp"),
                         params={"async": "false", "importStrategy": strategy}) as r:
        report = await r.json()
        assert r.status == 200, report
        return report  # type: ignore[no-any-return]


async def wait_tracker_synced(http: aiohttp.ClientSession, url: str, timeout: float
                              ) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    st: dict[str, Any] = {}
    while loop.time() < deadline:
        async with http.get(f"{url}/api/hub/status") as r:
            st = (await r.json())["sync"]
        if st["pending"] == 0 and not st["syncing"] and st["lastSuccess"]:
            return st
        await asyncio.sleep(0.5)
    raise AssertionError(f"not synced after {timeout}s: {st}")


def tracker_conflicts(db: Path) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as c:
        return int(c.execute("SELECT count(*) FROM sync_conflict WHERE entity NOT IN "
                             "('datavalue','complete_registration')").fetchone()[0])


async def test_registers_through_a_flapping_link(tmp_path: Path,
                                                 http: aiohttp.ClientSession) -> None:
    with processes() as procs:
        national, hub, hub_dir, port = provisioned(tmp_path, procs)
        # 64 kbit/s each way, connections reset every 3 s for 0.7 s
        proxy = await FlappingProxy("127.0.0.1", port, rate=8000, every_s=3.0, down_s=0.7,
                                    mode="reset").start()
        try:
            cfg = write_config(tmp_path / "hub.toml", f"http://127.0.0.1:{proxy.port}",
                               debounce_s=1, interval_s=3600)
            procs.append(start_sync(hub_dir, cfg))
            bundles = [person_bundle(10, visits=3) for _ in range(6)]
            for b in bundles:  # the CHCP registers people and records their visits
                report = await post_tracker(http, hub.url, as_payload(b))
                assert report["status"] == "OK", report
            await wait_tracker_synced(http, hub.url, 240)
            assert_equal(hub_dir / "hub.db", national.data_dir / "hub.db")
            n = snapshot(national.data_dir / "hub.db")
            assert all(t.uid in n["te"] for b in bundles for t in b.tracked_entities)
            # edits (a phone, a visit's weight) and a deletion, still over the bad link
            a, d = M["attrs"], M["des"]
            edit = person_bundle(0)
            for b in bundles[:3]:
                t, v = b.tracked_entities[0], b.events[0]
                t.attributes = [(a["BD_PHONE"], "01555555555")]
                v.data_values = [(d["BD_MAT_WEIGHT"], "58.0", False)] + [
                    x for x in v.data_values if x[0] != d["BD_MAT_WEIGHT"]]
                edit.tracked_entities.append(t)
                edit.events.append(v)
            body = as_payload(edit)
            for e in body["events"]:
                e.pop("enrollment")
                e["enrollment"] = next(x.enrollment for b in bundles for x in b.events
                                       if x.uid == e["event"])
            await post_tracker(http, hub.url, body)
            gone = bundles[5].events[1].uid
            await post_tracker(http, hub.url, {"events": [{"event": gone}]}, strategy="DELETE")
            await wait_tracker_synced(http, hub.url, 180)
            assert_equal(hub_dir / "hub.db", national.data_dir / "hub.db")
            n = snapshot(national.data_dir / "hub.db")
            assert n["ev"][gone][-1] == 1
            assert n["attr"][(bundles[0].tracked_entities[0].uid, a["BD_PHONE"])] == "01555555555"
            assert n["dv"][(bundles[1].events[0].uid, d["BD_MAT_WEIGHT"])] == "58.0"
            assert tracker_conflicts(hub_dir / "hub.db") == 0
            stats = proxy.stats()
            assert stats.cuts >= 2 and stats.connections_reset >= 1  # the link really flapped
        finally:
            await proxy.stop()


ROUNDS = 12


def _cfg(path: Path, url: str) -> Path:
    from .test_kill9 import _config
    _config(path, url)
    # small chunks: many acknowledgements for the kills to fall between
    path.write_text(path.read_text() + "tracker_chunk_rows = 60\n")
    return path


async def test_sigkill_of_the_worker_in_rounds_converges(demo_template: dict[str, Path],
                                                         tmp_path: Path) -> None:
    rng = random.Random(20261206)
    national = start_hub_process(tmp_path / "national", role="national")
    port = int(national.url.rsplit(":", 1)[1])
    proxy = await FlappingProxy("127.0.0.1", port, rate=12_000).start()
    hub_dir = tmp_path / "hub"
    store = Store(copy_db(demo_template["hub"], hub_dir))
    cfg = _cfg(tmp_path / "hub.toml", f"http://127.0.0.1:{proxy.port}")
    first = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "appliance.cli", "sync", "--once", "--config",
        str(_cfg(tmp_path / "direct.toml", national.url)), "--data-dir", str(hub_dir),
        cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _o, e = await asyncio.wait_for(first.communicate(), 180)
    assert first.returncode == 0, e.decode()
    a, d = M["attrs"], M["des"]
    people: list[tstore.Bundle] = []
    edits: Counter[tuple[str, str]] = Counter()  # attribute / data value -> hub edits

    def count(b: tstore.Bundle) -> None:
        for t in b.tracked_entities:
            for attr, _ in t.attributes:
                edits[(t.uid, attr)] += 1
        for v in b.events:
            for de, _, _ in v.data_values:
                edits[(v.uid, de)] += 1
    kills = 0
    try:
        for _ in range(ROUNDS):
            b = person_bundle(rng.randint(20, 40), visits=rng.randint(1, 3))
            await hub_write(store, b)
            count(b)
            people.append(b)
            proc = start_sync(hub_dir, cfg)
            await asyncio.sleep(rng.uniform(1.5, 4.0))
            # CHCPs keep working: phones and weights of people registered earlier
            edit = tstore.Bundle()
            for old in rng.sample(people, min(3, len(people))):
                t = old.tracked_entities[rng.randrange(len(old.tracked_entities))]
                t.attributes = [(a["BD_PHONE"], f"017{rng.randint(10**7, 10**8 - 1)}")]
                v = next(x for x in old.events if x.te == t.uid)
                v.data_values = [(d["BD_MAT_WEIGHT"], f"{rng.uniform(40, 70):.1f}", False)]
                edit.tracked_entities.append(t)
                edit.events.append(v)
            await hub_write(store, edit)
            count(edit)
            await asyncio.sleep(rng.uniform(0.0, 2.0))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                kills += 1
            proc.wait(10)
        assert kills >= ROUNDS - 3
        for _ in range(3):  # power stays on: the worker finishes the job
            done = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "appliance.cli", "sync", "--once", "--config", str(cfg),
                "--data-dir", str(hub_dir), cwd=REPO, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE)
            _out, err = await asyncio.wait_for(done.communicate(), 300)
            if done.returncode == 0:
                break
        assert done.returncode == 0, err.decode()[-2000:]
    finally:
        await proxy.stop()
        national.kill(signal.SIGTERM)
        store.close()
    hub_db, nat_db = hub_dir / "hub.db", national.data_dir / "hub.db"
    assert_equal(hub_db, nat_db)
    n = snapshot(nat_db)
    assert all(t.uid in n["te"] for b in people for t in b.tracked_entities)
    with sqlite3.connect(f"file:{hub_db}?mode=ro", uri=True) as c:
        assert c.execute("SELECT count(*) FROM sync_push_chunk WHERE state='open'"
                         ).fetchone()[0] == 0
        for t in ("tracked_entity", "te_attribute", "enrollment", "event", "event_value"):
            assert c.execute(f"SELECT count(*) FROM {t} WHERE sync_state != 'synced'"
                             ).fetchone()[0] == 0, t
        assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        chunks = c.execute("SELECT count(*) FROM sync_push_chunk WHERE entity=?",
                           (tp.LIVE,)).fetchone()[0]
    assert chunks >= ROUNDS // 2
    # national only changed through the hub: no conflict, our own values recognised
    assert tracker_conflicts(hub_db) == 0
    # nothing applied twice: national changed each value at most once per hub edit
    with sqlite3.connect(f"file:{nat_db}?mode=ro", uri=True) as c:
        audits = Counter(tuple(r[0].split("|")) for r in c.execute(
            "SELECT key FROM audit WHERE entity IN ('te_attribute','event_value') "
            "AND username != 'demo'"))
    over = [(k, audits[k], edits[k]) for k in audits if k in edits and audits[k] > edits[k]]
    assert not over, over[:5]


async def test_registers_through_the_cut_netns_link(tmp_path: Path,
                                                    http: aiohttp.ClientSession) -> None:
    """The same with the worker in a network namespace behind a 256 kbit/s veth whose
    interface goes down every 6 s for 2 s (TCP stalls and resumes, as on the modem)."""
    from tests.netlink.harness import NetnsLink, NetnsUnavailable
    with processes() as procs:
        national, hub, hub_dir, port = provisioned(
            tmp_path, procs, national_extra=["--host", "0.0.0.0"])
        link = NetnsLink(256)
        try:
            link.__enter__()
        except NetnsUnavailable as exc:  # CI runs as root: a broken environment
            pytest.fail(f"NetnsLink unavailable: {exc}")
        try:
            cfg = write_config(tmp_path / "hub.toml", f"http://{link.national_addr}:{port}",
                               debounce_s=1, interval_s=3600, tracker_chunk_rows=1500)
            log = open(hub_dir / "sync-netns.log", "ab")  # noqa: SIM115 - lives with the process
            link.run([sys.executable, "-m", "appliance.cli", "sync", "--config", str(cfg),
                      "--data-dir", str(hub_dir)], cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
            await asyncio.sleep(3)  # the worker's first cycle
            counters0 = link.bytes_counters()
            flapper = link.flap(6.0, 2.0)
            bundles = [person_bundle(40, visits=4) for _ in range(3)]
            for b in bundles:
                report = await post_tracker(http, hub.url, as_payload(b))
                assert report["status"] == "OK", report
            await wait_tracker_synced(http, hub.url, 300)
            flapper.stop()
            assert flapper.cuts >= 1 and flapper.dead_time_s > 0  # the link really went down
            assert link.bytes_counters().hub_tx_bytes - counters0.hub_tx_bytes > 20_000
            assert_equal(hub_dir / "hub.db", national.data_dir / "hub.db")
            n = snapshot(national.data_dir / "hub.db")
            assert all(v.uid in n["ev"] for b in bundles for v in b.events)
            assert tracker_conflicts(hub_dir / "hub.db") == 0
        finally:
            link.close()
