"""A hub on an SD card for the backup tests and bench: provisioning, apply, the processes
supervisord would run, and values written and read back."""

from __future__ import annotations

import contextlib
import functools
import os
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import requests

from appliance import demo
from appliance.store import datavalues as dv
from tests.conftest import ADMIN, REPO
from tests.deploy.conftest import appliance

from .harness import Sftpd, free_port, l0_files, seconds_until_replicated

HUB_ID = "coxs-bazar-ramu"


@dataclass
class Card:
    """An SD card: its boot partition, /etc/upazila-hub and data partition."""

    root: Path

    @property
    def boot(self) -> Path:
        return self.root / "boot"

    @property
    def etc(self) -> Path:
        return self.root / "etc"

    @property
    def data(self) -> Path:
        return self.root / "data"

    def insert(self, provisioning_file: Path) -> None:
        self.boot.mkdir(parents=True)
        shutil.copy(provisioning_file, self.boot / "upazila-hub.toml")

    def apply(self) -> int:
        return appliance("provision", "apply", str(self.boot), "--etc", str(self.etc),
                         "--data-dir", str(self.data), "--run-dir", str(self.root / "run"),
                         "--user", "root", "--certificate-wait", "0")

    def program(self, name: str) -> list[str]:
        """A program's argv from the supervisord.conf apply wrote."""
        conf = (self.etc / "supervisord.conf").read_text()
        block = conf.split(f"[program:{name}]", 1)[1]
        line = next(ln for ln in block.splitlines() if ln.startswith("command="))
        return shlex.split(line.removeprefix("command=").replace("%%", "%"))


@contextlib.contextmanager
def process(argv: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(argv, stdout=log.open("ab"), stderr=subprocess.STDOUT, cwd=REPO,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)  # a dead card: nothing flushed, nothing said
            proc.wait(timeout=10)


def hub_argv(card: Card, port: int, *, seed_demo: bool) -> list[str]:
    return [sys.executable, "-m", "appliance.cli", "hub", *(["--demo"] if seed_demo else []),
            "--no-zeroconf", "--host", "127.0.0.1", "--port", str(port),
            "--config", str(card.etc / "hub.toml"), "--data-dir", str(card.data)]


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        assert proc.poll() is None, "the hub exited"
        with contextlib.suppress(requests.RequestException):
            if requests.get(url + "/api/system/ping", timeout=1).status_code == 200:
                return
        assert time.monotonic() < deadline, "the hub did not answer"
        time.sleep(0.05)


def cells(n: int) -> list[tuple[str, str, str, str]]:
    """(de, coc, ou, pe) of integer cells in Ramu's CC forms."""
    doc = demo.hub()
    by_id = {o["id"]: o for t in doc.values() if isinstance(t, list) for o in t}
    out = []
    for ds in doc["dataSets"]:
        for ref in ds.get("dataSetElements", []):
            de = by_id[ref["dataElement"]["id"]]
            if de.get("valueType") == "INTEGER_ZERO_OR_POSITIVE":
                combo = by_id[de["categoryCombo"]["id"]]
                out += [(de["id"], coc["id"], ds["organisationUnits"][0]["id"], "202501")
                        for coc in combo["categoryOptionCombos"]]
    return out[:n]


def post_value(url: str, cell: tuple[str, str, str, str], value: str) -> None:
    de, coc, ou, pe = cell
    r = requests.post(url + "/api/dataValueSets", headers=ADMIN, timeout=30, json={
        "dataValues": [{"dataElement": de, "categoryOptionCombo": coc, "orgUnit": ou,
                        "period": pe, "value": value}]})
    assert r.status_code == 200 and r.json()["response"]["importCount"]["imported"] == 1, r.text


def value_in(db: Path, cell: tuple[str, str, str, str]) -> str | None:
    de, coc, ou, pe = cell
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        row = dv.live_value(conn, (de, pe, ou, coc, demo.DEFAULT_COC_UID))
    return None if row is None else str(row[0])


def generate(tmp: Path, server: Sftpd, host_keys: str) -> Path:
    """National's side: the files, and the hubs' keys installed on the backup server."""
    keys = tmp / "keyscan.txt"
    keys.write_text(host_keys)
    out = tmp / "hubs"
    assert appliance("provision", "generate", "--demo", "--out", str(out),
                     "--replica-template", f"sftp://root@127.0.0.1:{server.port}/hubs/{{hub_id}}",
                     "--backup-host-key", str(keys)) == 0
    shutil.copy(out / "backup-authorized_keys", server.authorized_keys)
    return out / f"{HUB_ID}.toml"


@contextlib.contextmanager
def replicating(card: Card, replica: Path, logs: Path) -> Iterator[str]:
    """supervisord's order on an applied card: litestream, then the hub (seeding the demo
    data); yields the hub's URL once the first snapshot is on the server."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    ls_log = logs / f"litestream-{card.root.name}.log"
    with process(card.program("litestream"), ls_log) as ls, \
            process(hub_argv(card, port, seed_demo=True),
                    logs / f"hub-{card.root.name}.log") as hub:
        wait_http(url, hub)
        deadline = time.monotonic() + 60
        while not (replica / "ltx" / "9").exists():
            if ls.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"no snapshot on the server: {ls_log.read_text()[-2000:]}")
            time.sleep(0.1)
        yield url


def holds(db: Path, *, cell: tuple[str, str, str, str], value: str) -> bool:
    return value_in(db, cell) == value


def timed_writes(url: str, replica: Path, n: int, work: Path, litestream: str,
                 ) -> tuple[list[float], dict[tuple[str, str, str, str], str]]:
    """Post ``n`` values one by one; each one's seconds from the hub's acknowledgement (after
    its commit) to the replica on the server holding it."""
    written: dict[tuple[str, str, str, str], str] = {}
    rpo: list[float] = []
    for i, cell in enumerate(cells(n)):
        known = l0_files(replica)
        value = str(5000 + i)
        post_value(url, cell, value)
        committed = time.monotonic()
        written[cell] = value
        rpo.append(seconds_until_replicated(
            replica, committed, known, functools.partial(holds, cell=cell, value=value),
            work, litestream))
    assert len(written) == n, f"only {len(written)} cells in the demo forms"
    return rpo, written
