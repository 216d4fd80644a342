"""The hub loses power in the middle of a sync, twenty times: the sync worker is SIGKILLed
at random points (probe, pulls, chunks in flight, acknowledgements) while CHCPs keep
editing. Afterwards everything converges: nothing lost, nothing applied twice."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sqlite3
import subprocess  # noqa: F401 - Popen type
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from appliance.store import Store
from appliance.store import datavalues as dv
from tests.conftest import REPO, copy_db, start_hub_process
from tests.netlink.harness import FlappingProxy

from .conftest import DS_FORM1, RAMU, TOKEN, first_values

pytestmark = pytest.mark.slow

ROUNDS = 20


def _config(path: Path, url: str) -> Path:
    path.write_text(f'[hub]\norg_unit = "{RAMU}"\n[national]\nurl = "{url}"\n'
                    f'token = "{TOKEN}"\ntimeout_s = 5\n[sync]\nchunk_values = 100\n'
                    "debounce_s = 0\nbatch_s = 0\ninterval_s = 3600\n")
    os.chmod(path, 0o600)
    return path


def _sync(data_dir: Path, cfg: Path, *extra: str) -> subprocess.Popen[bytes]:
    log = open(data_dir / "sync.log", "ab")  # noqa: SIM115 - lives with the process
    return subprocess.Popen([sys.executable, "-m", "appliance.cli", "sync", "--config", str(cfg),
                             "--data-dir", str(data_dir), *extra], cwd=REPO, stdout=log,
                            stderr=subprocess.STDOUT)


def _rows(db: Path) -> dict[tuple[str, ...], Any]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as c:
        c.row_factory = sqlite3.Row
        return {tuple(r[:5]): dict(r) for r in c.execute(
            "SELECT de, pe, ou, coc, aoc, value, deleted, sync_state FROM datavalue")}


async def test_sigkill_at_random_points_converges(demo_template: dict[str, Path],
                                                  tmp_path: Path) -> None:
    rng = random.Random(20240101)
    national = start_hub_process(tmp_path / "national", role="national")
    port = int(national.url.rsplit(":", 1)[1])
    # a slowish link (no cuts) so that kills land inside pushes as often as elsewhere
    proxy = await FlappingProxy("127.0.0.1", port, rate=12_000).start()
    hub_dir = tmp_path / "hub"
    store = Store(copy_db(demo_template["hub"], hub_dir))
    cfg = _config(tmp_path / "hub.toml", f"http://127.0.0.1:{proxy.port}")
    values = first_values(3000)
    keys = [tuple(v[k] for k in ("dataElement", "period", "orgUnit", "categoryOptionCombo",
                                 "attributeOptionCombo")) for v in values]
    edits: Counter[tuple[str, ...]] = Counter()
    expected: dict[tuple[str, ...], str | None] = {}

    def edit(batch: list[tuple[tuple[str, ...], str | None]]) -> None:
        rows = [dv.ValueRow(i, *k, v, None, None, None, v is None)
                for i, (k, v) in enumerate(batch)]
        store.write_sync(lambda tx: dv.import_values(tx, rows, username="chcp"))
        for k, v in batch:
            if v is None and (expected.get(k) is None):
                continue  # deleting what does not exist is ignored, no edit
            edits[k] += 1
            expected[k] = v

    # provisioned over a good link first (metadata), then the month over the slow one
    first = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "appliance.cli", "sync", "--once", "--config",
        str(_config(tmp_path / "direct.toml", national.url)), "--data-dir", str(hub_dir),
        cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _o, e = await asyncio.wait_for(first.communicate(), 120)
    assert first.returncode == 0, e.decode()
    edit([(k, v["value"]) for k, v in zip(keys, values, strict=True)])
    kills = 0
    try:
        for rnd in range(ROUNDS):
            proc = _sync(hub_dir, cfg)
            await asyncio.sleep(rng.uniform(0.4, 1.6))
            # CHCPs keep working while the worker runs: new values, re-edits, deletions
            batch = []
            for k in rng.sample(keys, 40):
                old = expected.get(k)
                if old is not None and old.isdigit() and rng.random() < 0.15:
                    batch.append((k, None))
                elif old is None or old.isdigit():
                    batch.append((k, str(rng.randint(1, 99))))
            edit(batch)
            if rnd % 4 == 0:
                reg = {"ds": DS_FORM1, "pe": "202401", "ou": keys[rnd * 97][2],
                       "aoc": keys[0][4], "delete": rnd % 8 == 4}
                store.write_sync(lambda tx, r=reg: dv.register_complete(tx, [r],
                                                                        username="chcp"))
            await asyncio.sleep(rng.uniform(0.0, 1.5))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                kills += 1
            proc.wait(10)
        assert kills >= ROUNDS - 2
        # power stays on: the worker finishes the job
        for _ in range(3):
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
    hub = _rows(hub_dir / "hub.db")
    nat = _rows(national.data_dir / "hub.db")
    # nothing lost: every edit's last value is at the hub and at national
    for k, v in expected.items():
        h = hub[k]
        assert h["sync_state"] == "synced", (k, h)
        assert (None if h["deleted"] else h["value"]) == v
        n = nat.get(k)
        assert (None if n is None or n["deleted"] else n["value"]) == v, (k, v, n)
    # nothing applied twice: national changed each key at most once per hub edit
    with sqlite3.connect(f"file:{national.data_dir / 'hub.db'}?mode=ro", uri=True) as c:
        audits = Counter(tuple(r[0].split("|")) for r in c.execute(
            "SELECT key FROM audit WHERE entity='datavalue'"))
        regs = c.execute("SELECT count(*) FROM complete_registration").fetchone()[0]
    assert all(audits[k] <= edits[k] for k in audits), [
        (k, audits[k], edits[k]) for k in audits if audits[k] > edits[k]][:5]
    with sqlite3.connect(f"file:{hub_dir / 'hub.db'}?mode=ro", uri=True) as c:
        assert c.execute("SELECT count(*) FROM sync_push_chunk WHERE state='open'"
                         ).fetchone()[0] == 0
        assert c.execute("SELECT count(*) FROM complete_registration WHERE "
                         "sync_state='pending'").fetchone()[0] == 0
        assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        # national only ever changed through the hub: not one conflict may be reported
        # (our own values met again after a kill must be recognised as ours)
        assert c.execute("SELECT count(*) FROM sync_conflict").fetchone()[0] == 0
        state = dict(c.execute("SELECT key, value FROM sync_state").fetchall())
    assert regs >= 1 and state["syncing"] == "0"
