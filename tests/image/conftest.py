"""Fixtures of the image tests: the amd64 image built once per session by the project's own
recipe, and national's side on the host (the DHIS2 stand-in and the fleet service)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from appliance.provisioning import tomlout
from tests.conftest import HubProcess, free_port, start_hub_process
from tests.tls.rig import APPLIANCE, process, run, wait

from .vm import HOST_FROM_GUEST, Built, build_image, existing_image

NEEDS = ("mmdebstrap", "qemu-system-x86_64", "mcopy", "mkfs.fat", "sfdisk", "rauc")


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    missing = [t for t in NEEDS if shutil.which(t) is None]
    assert not missing, f"{missing} not installed: scripts/install-system-deps (image.txt)"
    reuse = os.environ.get("UPAZILA_TEST_IMAGE")
    if reuse:  # iterating on a VM test: build.sh --out DIR --no-compress ran before, with
        # ADMIN_SSH_PUBKEY=DIR/admin.pub; never set in CI (make test builds afresh)
        b = existing_image(Path(reuse))
        print(f"\nimage reused from {reuse} (UPAZILA_TEST_IMAGE): "
              f"{b.manifest.read_text().splitlines()[2]}")
        return b
    keys = tmp_path_factory.mktemp("admin-key")
    key = keys / "admin"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "national-test",
                    "-f", str(key)], check=True)
    b = build_image(tmp_path_factory.mktemp("image"), key)
    print(f"\nimage build (amd64, base tarball cached or not): {b.seconds:.0f} s")
    return b


@dataclass
class National:
    dhis2: HubProcess
    fleet_url: str
    fleet_dir: Path
    fleet_log: Path

    def provisioning(self, out: Path, hub: str = "coxs-bazar-ramu", *,
                     update: dict[str, object] | None = None, **health: object) -> Path:
        """``provision generate`` as national runs it, with URLs as the guest sees them;
        ``health`` and ``update`` override keys of those sections."""
        port = self.dhis2.url.rsplit(":", 1)[1]
        fport = self.fleet_url.rsplit(":", 1)[1]
        if not (out / f"{hub}.toml").exists():
            run([*APPLIANCE, "provision", "generate", "--demo", "--out", str(out),
                 "--national-url", f"http://{HOST_FROM_GUEST}:{port}",
                 "--fleet-url", f"http://{HOST_FROM_GUEST}:{fport}",
                 "--fleet-data-dir", str(self.fleet_dir)])
        path = out / f"{hub}.toml"
        if health or update:
            doc = tomllib.loads(path.read_text())
            doc["health"].update(health)
            doc.setdefault("update", {}).update(update or {})
            path.write_text(tomlout.dumps(doc))
            path.chmod(0o600)
        return path


@pytest.fixture(scope="module")
def national(tmp_path_factory: pytest.TempPathFactory) -> Iterator[National]:
    tmp = tmp_path_factory.mktemp("national")
    dhis2 = start_hub_process(tmp / "dhis2", role="national")
    fleet_dir = tmp / "fleet"
    fleet_dir.mkdir()
    port = free_port()
    log = tmp / "fleet.log"
    try:
        with process([*APPLIANCE, "fleet", "--data-dir", str(fleet_dir), "--host", "127.0.0.1",
                      "--port", str(port)], log) as proc:
            url = f"http://127.0.0.1:{port}"
            wait("the fleet service answers", lambda: proc.poll() is None
                 and subprocess.run(["curl", "-sf", "-o", "/dev/null", url + "/login"]
                                    ).returncode == 0, 30, log)
            yield National(dhis2, url, fleet_dir, log)
    finally:
        dhis2.proc.terminate()
        dhis2.proc.wait(timeout=15)
