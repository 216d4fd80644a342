"""What the HTTPS tests share: the appliance's processes, the fleet service with its
``[acme]`` pointed at real BIND and pebble, and a TCP proxy that keeps every byte a hub
sends (to check on the wire that its private key never leaves it)."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from appliance.provisioning import tomlout
from tests.tlsinfra import Bind, Pebble, free_port

REPO = Path(__file__).resolve().parents[2]
APPLIANCE = [sys.executable, "-m", "appliance.cli"]


def run(cmd: list[str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=REPO)
    assert res.returncode == 0, (cmd, res.stdout[-2000:], res.stderr[-3000:])
    return res


@contextlib.contextmanager
def process(cmd: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=REPO,
                                stdin=subprocess.DEVNULL)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def wait(what: str, check: Callable[[], object], timeout: float, log: Path | None = None
         ) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except Exception:  # noqa: BLE001 - not ready yet; the deadline says when to give up
            pass
        if time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
            raise AssertionError(f"{what}: not within {timeout} s\n{tail}")
        time.sleep(0.2)


@dataclass
class Fleet:
    url: str
    data_dir: Path
    log: Path

    def add_hub(self, hub_id: str, tls_name: str) -> str:
        """Enrol a hub with its HTTPS name; returns its fleet token."""
        res = run([*APPLIANCE, "fleet", "--data-dir", str(self.data_dir), "add-hub",
                   "--hub-id", hub_id, "--tls-name", tls_name])
        return res.stdout.strip().splitlines()[-1]


@contextlib.contextmanager
def fleet_service(tmp_path: Path, *, listen: str, domain: str, bind: Bind, peb: Pebble
                  ) -> Iterator[Fleet]:
    """``appliance fleet`` as national runs it, ordering certificates from ``peb`` with
    DNS-01 through ``bind``."""
    data = tmp_path / "fleet"
    data.mkdir()
    port = free_port(listen)
    conf = tmp_path / "fleet.toml"
    conf.write_text(tomlout.dumps({"fleet": {"listen": f"{listen}:{port}"},
                                   "acme": {"domain": domain, **peb.config(),
                                            **bind.config()}}))
    conf.chmod(0o600)  # the TSIG secret
    log = tmp_path / "fleet.log"
    fleet = Fleet(f"http://{listen}:{port}", data, log)
    with process([*APPLIANCE, "fleet", "--config", str(conf), "--data-dir", str(data)],
                 log) as proc:
        def up() -> bool:
            assert proc.poll() is None
            with urllib.request.urlopen(fleet.url + "/login", timeout=1) as r:
                return bool(r.status == 200)
        wait("the fleet service answers", up, 30, log)
        yield fleet


@dataclass
class RecordingProxy:
    """A TCP proxy on loopback to ``target``; ``sent`` holds every byte clients sent."""

    target: tuple[str, int]
    port: int = 0
    sent: bytearray = field(default_factory=bytearray)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: socket.socket | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> RecordingProxy:
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def close(self) -> None:
        if self._server is not None:
            self._server.close()

    def _accept(self) -> None:
        assert self._server is not None
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target, timeout=30)
            threading.Thread(target=self._pump, args=(client, upstream, True),
                             daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False),
                             daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, record: bool) -> None:
        try:
            while data := src.recv(65536):
                if record:
                    with self._lock:
                        self.sent += data
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
