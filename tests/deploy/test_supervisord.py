"""The real supervisord, with the configuration ``appliance provision`` writes.

A national stand-in on loopback, a hub.toml pointing at it, ``supervisord -n`` from the
venv with ``NOTIFY_SOCKET`` set to a socket of ours (what systemd would give it): the hub
comes up and answers, the watchdog listener tells "systemd" READY and WATCHDOG only while
the hub answers, a SIGKILLed hub is restarted, and stopping supervisord leaves no child.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psutil
import pytest

from appliance import demo
from appliance.provisioning import watchdog
from tests.conftest import free_port, start_hub_process

from .conftest import REPO, VENV_BIN, has_module

SUPERVISORD = VENV_BIN / "supervisord"
SUPERVISORCTL = VENV_BIN / "supervisorctl"
pytestmark = pytest.mark.skipif(not SUPERVISORD.exists(), reason="supervisor not in the venv")


@dataclass
class NotifySocket:
    """What systemd listens on: collects sd_notify datagrams with their arrival time."""

    path: Path
    messages: list[tuple[float, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(self.path))
        self.sock.settimeout(0.2)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            with contextlib.suppress(TimeoutError):
                data = self.sock.recv(4096)  # stamped on arrival, not when we began waiting
                self.messages.append((time.monotonic(), data.decode()))

    def since(self, t: float) -> list[str]:
        return [m for at, m in list(self.messages) if at >= t]

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=2)
        self.sock.close()


def wait_for(what: str, check: Callable[[], object], timeout: float, every: float = 0.2) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def ping(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


@pytest.fixture
def national(tmp_path: Path) -> Iterator[str]:
    hp = start_hub_process(tmp_path / "national", role="national")
    try:
        yield hp.url
    finally:
        hp.kill(signal.SIGTERM)


def test_supervisord_runs_restarts_and_stops_the_hub(tmp_path: Path, national: str) -> None:
    data, run, logs = tmp_path / "data", tmp_path / "run", tmp_path / "logs"
    for d in (data, run, logs):
        d.mkdir()
    port = free_port()
    hub_toml = tmp_path / "hub.toml"
    hub_toml.write_text("\n".join([
        "[hub]", 'id = "coxs-bazar-ramu"', 'name = "Ramu UHC hub"',
        f'org_unit = "{demo.RAMU_UID}"', f'listen = "127.0.0.1:{port}"', "zeroconf = false",
        "[national]", f'url = "{national}"', f'token = "{demo.DEMO_TOKENS["hub-ramu"]}"',
        "[gpio]", "enabled = false", ""]))
    hub_toml.chmod(0o600)
    conf = tmp_path / "supervisord.conf"
    # sync and health land separately: only the programs this build has are configured
    res = subprocess.run([str(VENV_BIN / "appliance"), "provision", "supervisord-conf",
                          "--config", str(hub_toml), "--data-dir", str(data),
                          "--run-dir", str(run), "--log-dir", str(logs), "--out", str(conf)],
                         capture_output=True, text=True, timeout=60, cwd=REPO)
    assert res.returncode == 0, res.stderr
    expected = {"hub", "watchdog"} | {p for p in ("sync", "health")
                                      if has_module(f"appliance.{p}.command")}
    notify = NotifySocket(tmp_path / "notify.sock")
    env = {**os.environ, "NOTIFY_SOCKET": str(notify.path)}
    sup = subprocess.Popen([str(SUPERVISORD), "-n", "-c", str(conf)], env=env, cwd=tmp_path,
                           stdout=open(logs / "supervisord.out", "wb"),  # noqa: SIM115
                           stderr=subprocess.STDOUT, start_new_session=True)
    ping_url = f"http://127.0.0.1:{port}/api/system/ping"

    def ctl(*args: str) -> str:
        return subprocess.run([str(SUPERVISORCTL), "-c", str(conf), *args],
                              capture_output=True, text=True, timeout=30).stdout

    def status() -> dict[str, str]:
        return {line.split()[0]: line.split()[1] for line in ctl("status").splitlines()
                if len(line.split()) > 1}

    def diagnose() -> str:
        out = [f"status: {ctl('status')}"]
        for f in sorted(logs.iterdir()):
            out.append(f"--- {f.name}\n{f.read_text(errors='replace')[-3000:]}")
        return "\n".join(out)

    try:
        try:
            # 1. every program up, the hub answering (a fresh data dir may need a retry:
            #    supervisord restarts what fails to start)
            wait_for("all programs RUNNING", lambda: status() == dict.fromkeys(expected,
                                                                               "RUNNING"), 45)
            assert ping(ping_url)
            # 2. the watchdog tells systemd: ready, and alive, because the hub answers
            wait_for("READY=1 and WATCHDOG=1", lambda: any(
                "READY=1" in m and "WATCHDOG=1" in m for m in notify.since(0)), 12)
            # 3. SIGKILL the hub: supervisord starts a new one, which answers again
            old_pid = int(ctl("pid", "hub").strip())
            os.kill(old_pid, signal.SIGKILL)
            new_pid = wait_for("a new hub", lambda: (p := ctl("pid", "hub").strip()).isdigit()
                               and int(p) not in (0, old_pid) and int(p), 20)
            wait_for("the new hub RUNNING", lambda: status().get("hub") == "RUNNING", 20)
            wait_for("the new hub answering", lambda: ping(ping_url), 10)
            assert psutil.Process(int(new_pid)).ppid() == sup.pid
            # 4. a hub that does not answer: no WATCHDOG=1 any more, so systemd would act
            assert "stopped" in ctl("stop", "hub")
            stopped_at = time.monotonic()
            wait_for("the watchdog noticing", lambda: any(
                "not answering" in m for m in notify.since(stopped_at)), 12)
            assert not [m for m in notify.since(stopped_at) if "WATCHDOG=1" in m]
            assert ctl("start", "hub")
            wait_for("WATCHDOG=1 again", lambda: any(
                "WATCHDOG=1" in m for m in notify.since(stopped_at)), 20)
            # nothing but the watchdog spoke to "systemd"
            assert all("STATUS=hub " in m for m in notify.since(0)), notify.messages
        except AssertionError as e:
            raise AssertionError(f"{e}\n{diagnose()}") from None

        # 5. a clean stop (what systemd's KillMode=mixed does): SIGTERM to supervisord only
        children = psutil.Process(sup.pid).children(recursive=True)
        assert {c.pid for c in children} >= {int(ctl("pid", p).strip()) for p in expected}
        sup.send_signal(signal.SIGTERM)
        assert sup.wait(timeout=60) == 0
        gone, alive = psutil.wait_procs(children, timeout=5)
        assert not alive, f"left behind: {[(p.pid, p.cmdline()) for p in alive]}"
        text = (logs / "supervisord.out").read_text()
        # each program stopped on its SIGTERM: none had to be SIGKILLed
        assert "SIGKILL" not in text.split("received SIGTERM")[-1], text
    finally:
        notify.close()
        if sup.poll() is None:
            # supervisord puts each program in its own process group: kill them one by one
            with contextlib.suppress(psutil.Error):
                for child in psutil.Process(sup.pid).children(recursive=True):
                    child.kill()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(sup.pid, signal.SIGKILL)
            sup.wait(timeout=10)


# -- the watchdog listener on its own: the supervisor event protocol --------------------------
class _Ping(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.send_response(200 if self.path == "/api/system/ping" else 404)
        self.end_headers()
        self.wfile.write(b"pong")

    def log_message(self, *args: object) -> None:
        pass


def _events(*names: str) -> str:
    out = []
    for i, name in enumerate(names):
        payload = "when:1700000000" if name.startswith("TICK") else "processname:hub"
        out.append(f"ver:3.0 server:supervisor serial:{i} pool:watchdog poolserial:{i} "
                   f"eventname:{name} len:{len(payload)}\n{payload}")
    return "".join(out)


def test_watchdog_listener_protocol(tmp_path: Path) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ping)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/api/system/ping"
    notify = NotifySocket(tmp_path / "n.sock")
    try:
        stdout = io.StringIO()
        dog = watchdog.Watchdog(url, timeout=2, sock_path=str(notify.path))
        assert watchdog.serve(dog, io.StringIO(_events("TICK_5", "PROCESS_STATE", "TICK_5")),
                              stdout) == 0
        # every event acknowledged, then READY for the next; EOF (supervisord gone) ends it
        assert stdout.getvalue() == "READY\n" + "RESULT 2\nOKREADY\n" * 3
        wait_for("2 notifications", lambda: len(notify.messages) >= 2, 5)
        first, second = (m for _, m in notify.messages[:2])
        assert first.startswith("READY=1\nWATCHDOG=1\n") and second.startswith("WATCHDOG=1\n")
        server.shutdown()
        server.server_close()
        t = time.monotonic()
        assert watchdog.serve(dog, io.StringIO(_events("TICK_5")), io.StringIO()) == 0
        wait_for("a status", lambda: notify.since(t), 5)
        assert all(m.startswith("STATUS=hub not answering") for m in notify.since(t))
    finally:
        notify.close()


def test_watchdog_once_without_systemd() -> None:
    """Outside systemd (no NOTIFY_SOCKET) the listener only pings: exit code says if it answered."""
    env = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}
    res = subprocess.run([sys.executable, "-m", "appliance.provisioning.watchdog", "--once",
                          "--url", f"http://127.0.0.1:{free_port()}/api/system/ping"],
                         env=env, capture_output=True, text=True, timeout=30, cwd=REPO)
    assert res.returncode == 1 and "does not answer" in res.stderr
