"""National's side on the host, as the guest sees it at 10.0.2.2: the DHIS2 stand-in, the
fleet service and the backup server (Debian's real sshd serving SFTP, tests/backup's
harness). Used by the image tests' ``national`` fixture and by ``bench.image_bench``."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from appliance.provisioning import tomlout
from tests.backup.harness import Sftpd, available, sftpd
from tests.conftest import HubProcess, free_port, start_hub_process
from tests.tls.rig import APPLIANCE, process, run, wait

from .vm import HOST_FROM_GUEST


@dataclass
class National:
    dhis2: HubProcess
    fleet_url: str
    fleet_dir: Path
    fleet_log: Path
    backup: Sftpd  # the guest reaches it at 10.0.2.2:<port>; replicas land in its chroot

    def provisioning(self, out: Path, hub: str = "coxs-bazar-ramu", *,
                     update: dict[str, object] | None = None, **health: object) -> Path:
        """``provision generate`` as national runs it, with URLs as the guest sees them: the
        hubs' SFTP replicas on the backup server (its host key pinned), whose
        authorized_keys then gets the hubs' SFTP-only lines. ``health`` and ``update``
        override keys of those sections."""
        port = self.dhis2.url.rsplit(":", 1)[1]
        fport = self.fleet_url.rsplit(":", 1)[1]
        if not (out / f"{hub}.toml").exists():
            keyscan = out.with_name(out.name + "-backup-host-keys.txt")
            keyscan.write_text(self.backup.host_keys)
            run([*APPLIANCE, "provision", "generate", "--demo", "--out", str(out),
                 "--national-url", f"http://{HOST_FROM_GUEST}:{port}",
                 "--fleet-url", f"http://{HOST_FROM_GUEST}:{fport}",
                 "--fleet-data-dir", str(self.fleet_dir),
                 "--replica-template",
                 f"sftp://root@{HOST_FROM_GUEST}:{self.backup.port}/hubs/{{hub_id}}",
                 "--backup-host-key", str(keyscan)])
            shutil.copy(out / "backup-authorized_keys", self.backup.authorized_keys)
        path = out / f"{hub}.toml"
        if health or update:
            doc = tomllib.loads(path.read_text())
            doc["health"].update(health)
            doc.setdefault("update", {}).update(update or {})
            path.write_text(tomlout.dumps(doc))
            path.chmod(0o600)
        return path


@contextlib.contextmanager
def national_side(tmp: Path) -> Iterator[National]:
    """All three on loopback ports of their own; everything stopped on exit."""
    why = available()
    assert why is None, why
    dhis2 = start_hub_process(tmp / "dhis2", role="national")
    fleet_dir = tmp / "fleet"
    fleet_dir.mkdir()
    port = free_port()
    log = tmp / "fleet.log"
    try:
        with sftpd(tmp / "sshd") as backup, \
                process([*APPLIANCE, "fleet", "--data-dir", str(fleet_dir), "--host",
                         "127.0.0.1", "--port", str(port)], log) as proc:
            url = f"http://127.0.0.1:{port}"
            wait("the fleet service answers", lambda: proc.poll() is None
                 and subprocess.run(["curl", "-sf", "-o", "/dev/null", url + "/login"]
                                    ).returncode == 0, 30, log)
            yield National(dhis2, url, fleet_dir, log, backup)
    finally:
        dhis2.proc.terminate()
        dhis2.proc.wait(timeout=15)
