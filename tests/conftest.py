"""Shared fixtures: real SQLite files, real hubs on real loopback ports, real processes."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from appliance import config as config_mod
from appliance.demo.seed import seed
from appliance.hub.app import create_app
from appliance.national.app import create_app as create_national_app
from appliance.store import Store

REPO = Path(__file__).resolve().parent.parent
REFERENCE = REPO.parent / "shared" / "reference"
FIXTURES = REFERENCE / "dhis2-android-sdk-responses"
ARTIFACTS = REPO / "artifacts"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


ADMIN = basic("admin", "district")
CHCP = basic("chcp", "district")


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Seed each role's demo database once; tests get copies (scrypt and JSON are slow)."""
    out = {}
    base = tmp_path_factory.mktemp("templates")
    for role in ("hub", "national"):
        path = base / f"{role}.db"
        with Store(path) as s:
            seed(s, role)
        out[role] = path
    return out


def copy_db(template: Path, dest_dir: Path) -> Path:
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / "hub.db"
    shutil.copy(template, dest)
    return dest


def make_config(data_dir: Path, role: str = "hub", **overrides: object) -> config_mod.Config:
    cfg = config_mod.load(None, data_dir)
    cfg.set("hub", "role", role)
    cfg.set("hub", "zeroconf", False)
    for dotted, value in overrides.items():
        section, name = dotted.split("__")
        cfg.set(section, name, value)
    return cfg


@dataclass
class RunningHub:
    url: str
    store: Store
    app: web.Application
    data_dir: Path

    def api(self, path: str) -> str:
        return f"{self.url}/api/{path.lstrip('/')}"


@contextlib.asynccontextmanager
async def running_hub(store: Store, data_dir: Path, role: str = "hub",
                      upstream: Any = None, **cfg: object) -> AsyncIterator[RunningHub]:
    config = make_config(data_dir, role, **cfg)
    app = create_national_app(config, store) if role == "national" else \
        create_app(config, store, upstream=upstream)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield RunningHub(f"http://127.0.0.1:{port}", store, app, data_dir)
    finally:
        await runner.cleanup()


@pytest.fixture
async def hub(demo_template: dict[str, Path], tmp_path: Path) -> AsyncIterator[RunningHub]:
    """A demo hub (Ramu) on a real port over a real SQLite file."""
    store = Store(copy_db(demo_template["hub"], tmp_path / "hub"))
    try:
        async with running_hub(store, tmp_path / "hub") as h:
            yield h
    finally:
        store.close()


@pytest.fixture
async def national(demo_template: dict[str, Path], tmp_path: Path) -> AsyncIterator[RunningHub]:
    """The national stand-in on a real port."""
    store = Store(copy_db(demo_template["national"], tmp_path / "national"))
    try:
        async with running_hub(store, tmp_path / "national", role="national") as h:
            yield h
    finally:
        store.close()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


# -- real processes -------------------------------------------------------------------------
@dataclass
class HubProcess:
    proc: subprocess.Popen[bytes]
    url: str
    data_dir: Path

    def api(self, path: str) -> str:
        return f"{self.url}/api/{path.lstrip('/')}"

    def kill(self, sig: int = signal.SIGKILL) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(sig)
        self.proc.wait(timeout=30)


def start_hub_process(data_dir: Path, *, role: str = "hub", port: int | None = None,
                      extra: list[str] | None = None, timeout: float = 30) -> HubProcess:
    port = port or free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    serve = ["national"] if role == "national" else ["hub", "--no-zeroconf"]
    cmd = [sys.executable, "-m", "appliance.cli", *serve, "--demo", "--host", "127.0.0.1",
           "--port", str(port), "--data-dir", str(data_dir), *(extra or [])]
    log = open(data_dir / f"hub-{port}.log", "ab")  # noqa: SIM115 - lives with the process
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"hub exited with {proc.returncode}; see {log.name}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return HubProcess(proc, url, data_dir)
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"hub did not start within {timeout}s")


@pytest.fixture
def hub_process_factory() -> Iterator[type[HubProcess] | object]:
    started: list[HubProcess] = []

    def start(data_dir: Path, **kw: object) -> HubProcess:
        hp = start_hub_process(data_dir, **kw)  # type: ignore[arg-type]
        started.append(hp)
        return hp
    yield start
    for hp in started:
        if hp.proc.poll() is None:
            hp.kill(signal.SIGTERM)


def run(coro: object) -> object:
    return asyncio.get_event_loop().run_until_complete(coro)  # type: ignore[arg-type]


# -- the SD images (tests/image/builds.py): built in the background from the first test -------
PI_IMAGE_TESTS = "tests/image/test_arm64.py"


@pytest.hookimpl(trylast=True)  # after -m/-k deselection
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The Pi's image tests run last: their card, building since the first test, takes
    about 20 minutes of a core through qemu-user."""
    pi = [i for i in items if i.nodeid.startswith(PI_IMAGE_TESTS)]
    if pi:
        ids = {id(i) for i in pi}
        items[:] = [i for i in items if id(i) not in ids] + pi


@pytest.fixture(scope="session", autouse=True)
def image_builds(request: pytest.FixtureRequest,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """The cards this run's tests boot or read, queued at the lowest priority at once."""
    from tests.image.builds import WANTS, BuildQueue, ImageBuild, arm64_left_out
    from tests.image.vm import admin_key

    needed = {name for item in request.session.items
              for name in getattr(item, "fixturenames", ()) if name in WANTS}
    if os.environ.get("UPAZILA_TEST_IMAGE"):  # an amd64 card built before (tests/image)
        needed -= {"built", "built_again"}
    if os.environ.get("UPAZILA_ARM64_BUILT") or arm64_left_out():
        needed.discard("built_arm64")
    if not needed:
        yield None
        return
    key = admin_key(tmp_path_factory.mktemp("admin-key"))
    queue = BuildQueue([ImageBuild(name, WANTS[name], tmp_path_factory.mktemp(f"image-{name}"),
                                   key) for name in WANTS if name in needed]).start()
    yield queue
    queue.stop()
