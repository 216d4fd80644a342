"""``appliance demo`` (what ``make demo`` runs) and ``appliance hub`` as a person starts them:
the reporting day it shows, the pages it prints, Ctrl-C, and a port already taken."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from appliance.demo import CHCP_CLINIC_UID
from appliance.demo.reportingday import IN_PROGRESS, LATE_CLINICS, NOT_STARTED, months
from tests.conftest import free_port

APPLIANCE = [sys.executable, "-m", "appliance.cli"]


def _free_base() -> int:
    """A base port with base, base+1 and base+10 free."""
    for _ in range(50):
        base = free_port()
        if base + 10 < 65535 and all(_free(base + d) for d in (0, 1, 10)):
            return base
    raise AssertionError("no free ports")


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _get(url: str, user: str = "admin") -> Any:
    auth = base64.b64encode(f"{user}:district".encode()).decode()
    req = urllib.request.Request(url, headers={"Authorization": "Basic " + auth})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_demo_shows_reporting_day_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    base = _free_base()
    out = tmp_path / "demo.out"
    with out.open("wb") as sink:
        # its own process group, as a terminal's foreground job: Ctrl-C goes to it alone
        proc = subprocess.Popen([*APPLIANCE, "demo", "--data-dir", str(tmp_path / "demo"),
                                 "--base-port", str(base), "--fleet-hubs", "3"],
                                stdout=sink, stderr=subprocess.STDOUT, process_group=0)
    try:
        deadline = time.monotonic() + 600
        while b"accepted by national" not in out.read_bytes():
            assert proc.poll() is None, out.read_text()
            assert time.monotonic() < deadline, out.read_text()
            time.sleep(1)
        text = out.read_text()
        hub = f"http://127.0.0.1:{base}"
        for page in ("/hub ", "/hub/board", "/hub/status"):
            assert f"{hub}{page}" in text, text
        reporting, before = months(date.today())

        # the month before came down from national, three clinics late
        regs = _get(f"{hub}/api/completeDataSetRegistrations?dataSet=NwLMuiBAxSb&period="
                    f"{before}&orgUnit=iAnkU6x2dwu&children=true")["completeDataSetRegistrations"]
        assert len(regs) >= 20, regs
        end = date(int(before[:4]), int(before[4:]), 1)
        late = [r for r in regs if (date.fromisoformat(r["date"][:10]) - end).days > 40]
        assert len(late) == LATE_CLINICS, regs
        # the reporting month: some complete, the CHCP's own clinic half way, some not begun
        now = _get(f"{hub}/api/completeDataSetRegistrations?dataSet=NwLMuiBAxSb&period="
                   f"{reporting}&orgUnit=iAnkU6x2dwu&children=true")["completeDataSetRegistrations"]
        clinics = {r["organisationUnit"] for r in now}
        assert CHCP_CLINIC_UID not in clinics
        assert 10 <= len(clinics) <= len(regs) - IN_PROGRESS - NOT_STARTED, clinics
        mine = _get(f"{hub}/api/dataValueSets?dataSet=NwLMuiBAxSb&period={reporting}"
                    f"&orgUnit={CHCP_CLINIC_UID}", "chcp")["dataValues"]
        assert mine, "the CHCP's clinic has nothing entered"
        # and national refused the form it had approved, which the hub says
        status = _get(f"{hub}/api/hub/status")["sync"]
        assert status["rejected"] > 0 and status["pending"] == 0, status

        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=60) == 0, out.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
    text = out.read_text()
    assert "Traceback" not in text, text[-3000:]
    # nothing of it is left listening
    for port in (base, base + 1, base + 10):
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()


def test_demo_on_a_taken_port_says_so_in_one_line(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        res = subprocess.run([*APPLIANCE, "demo", "--data-dir", str(tmp_path),
                              "--base-port", str(port)], capture_output=True, text=True,
                             timeout=60)
    assert res.returncode == 2
    assert res.stderr.strip().count("\n") == 0 and f"port {port}" in res.stderr, res.stderr
    assert "already in use" in res.stderr and "Traceback" not in res.stderr


def test_hub_on_a_taken_port_says_so_in_one_line(
        tmp_path: Path, demo_template: dict[str, Path]) -> None:
    from tests.conftest import copy_db
    copy_db(demo_template["hub"], tmp_path)  # not empty: no seeding
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        res = subprocess.run([*APPLIANCE, "hub", "--data-dir", str(tmp_path), "--host",
                              "127.0.0.1", "--port", str(port)], capture_output=True,
                             text=True, timeout=120)
    assert res.returncode == 1, res.stderr
    lines = [line for line in res.stderr.splitlines() if "INFO" not in line]
    assert len(lines) == 1, res.stderr
    assert f"port {port} is already in use" in lines[0] and "Traceback" not in res.stderr
