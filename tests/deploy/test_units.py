"""systemd units: ``systemd-analyze verify`` (where it runs) and a parser check of our own."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import REPO

SYSTEMD = REPO / "systemd"
UNITS = sorted([*SYSTEMD.glob("*.service"),
                *(REPO / "image" / "rootfs" / "etc" / "systemd" / "system").glob("*.service")])
HOST_UNITS = next((p for p in (Path("/usr/lib/systemd/system"), Path("/lib/systemd/system"))
                   if (p / "sysinit.target").exists()), None)

# every key our files use, per section: a typo is an error here even where systemd-analyze
# (which only warns) is not available
KNOWN = {
    "Unit": {"Description", "Documentation", "After", "Before", "Requires", "Wants",
             "ConditionPathExists", "ConditionPathExistsGlob", "RequiresMountsFor",
             "StartLimitIntervalSec"},
    "Service": {"Type", "NotifyAccess", "ExecStart", "ExecStartPre", "ExecStartPost",
                "WatchdogSec", "WatchdogSignal", "TimeoutAbortSec", "Restart", "RestartSec",
                "TimeoutStartSec", "KillMode", "KillSignal", "TimeoutStopSec", "User", "Group",
                "SupplementaryGroups", "AmbientCapabilities", "CapabilityBoundingSet",
                "RuntimeDirectory", "RuntimeDirectoryMode", "UMask", "PrivateTmp",
                "ProtectHome", "OOMScoreAdjust", "Environment", "StandardOutput"},
    "Mount": {"What", "Where", "Type", "Options", "DirectoryMode"},
    "Install": {"WantedBy", "RequiredBy"},
    "Journal": {"Storage", "RuntimeMaxUse", "RuntimeMaxFileSize", "MaxRetentionSec",
                "SystemMaxUse", "SystemMaxFileSize", "SystemKeepFree", "SyncIntervalSec",
                "RateLimitIntervalSec", "RateLimitBurst", "ForwardToSyslog", "ForwardToWall"},
    "Manager": {"RuntimeWatchdogSec", "RebootWatchdogSec"},
}
DURATION = re.compile(r"^\d+(ms|s|min|h|day)?$")


def parse(path: Path) -> dict[str, dict[str, list[str]]]:
    """systemd's INI dialect: repeated keys allowed, '#'/';' comments, no continuations."""
    out: dict[str, dict[str, list[str]]] = {}
    section = None
    for n, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        assert not line.endswith("\\"), f"{path.name}:{n}: no line continuations, please"
        if line.startswith("["):
            assert line.endswith("]"), f"{path.name}:{n}: bad section header"
            section = line[1:-1]
            assert section in KNOWN, f"{path.name}:{n}: unexpected section [{section}]"
            out.setdefault(section, {})
            continue
        assert section is not None and "=" in line, f"{path.name}:{n}: not key=value: {raw}"
        key, value = (s.strip() for s in line.split("=", 1))
        assert key in KNOWN[section], f"{path.name}:{n}: unknown key {key} in [{section}]"
        out[section].setdefault(key, []).append(value)
    return out


def one(unit: dict[str, dict[str, list[str]]], section: str, key: str) -> str:
    values = unit[section][key]
    assert len(values) == 1, f"{key} set {len(values)} times"
    return values[0]


def exec_paths(unit: dict[str, dict[str, list[str]]]) -> list[str]:
    svc = unit.get("Service", {})
    return [v.lstrip("-@:+!").split()[0] for k in ("ExecStart", "ExecStartPre", "ExecStartPost")
            for v in svc.get(k, [])]


@pytest.mark.parametrize("path", [*UNITS, *SYSTEMD.glob("*.conf.d/*.conf")], ids=lambda p: p.name)
def test_files_parse(path: Path) -> None:
    unit = parse(path)
    for section in unit.values():
        for key, values in section.items():
            if key.endswith(("Sec", "SecMax")) and key not in ("StartLimitIntervalSec",
                                                                ):
                assert all(DURATION.match(v) for v in values), f"{key}={values}"


def test_hub_service() -> None:
    u = parse(SYSTEMD / "upazila-hub.service")
    assert one(u, "Service", "Type") == "notify" and one(u, "Service", "NotifyAccess") == "all"
    assert one(u, "Service", "Restart") == "always"
    assert one(u, "Service", "ExecStart") == \
        "/opt/upazila-hub/venv/bin/supervisord -n -c /etc/upazila-hub/supervisord.conf"
    # stopping must give supervisord time to stop every program in turn
    from appliance.provisioning.supervisord import STOP_WAIT
    assert int(one(u, "Service", "TimeoutStopSec")) > sum(STOP_WAIT.values())
    assert int(one(u, "Service", "WatchdogSec")) >= 30  # several 5 s ticks
    assert one(u, "Service", "KillMode") == "mixed"
    assert "/var/lib/upazila-hub" in one(u, "Unit", "RequiresMountsFor")


def test_firstboot_and_journal() -> None:
    fb = parse(SYSTEMD / "upazila-firstboot.service")
    assert one(fb, "Service", "Type") == "oneshot"
    assert one(fb, "Unit", "ConditionPathExistsGlob") == "/boot/firmware/upazila-hub*.toml"
    assert "provision apply /boot/firmware" in one(fb, "Service", "ExecStart")
    post = fb["Service"]["ExecStartPost"]
    # what apply wrote reaches the card before the unit disables itself: the image lets
    # unsynced pages wait 10 minutes, longer than a UHC's power often stays on
    assert post[0] == "/bin/sync -f /var/lib/upazila-hub", post
    assert "disable upazila-firstboot.service" in post[-1]
    assert "upazila-hub.service" in one(fb, "Unit", "Before")
    # with [backup] replica, apply asks the backup server for a database to restore: the
    # link must be up first, or a new card for a dead one would be refused
    assert "network-online.target" in one(fb, "Unit", "After").split()
    assert one(fb, "Unit", "Wants") == "network-online.target"
    # the journal persists on the data partition, capped small (the card's wear)
    j = parse(SYSTEMD / "journald.conf.d" / "upazila-hub.conf")
    assert one(j, "Journal", "Storage") == "persistent"
    assert one(j, "Journal", "SystemMaxUse") == "16M"


def test_referenced_programs_ship_with_the_image() -> None:
    """Every Exec path is made by the image recipe: the venv, our scripts, or the OS."""
    from_os = {"/bin/systemctl", "/usr/bin/systemctl", "/bin/mkdir", "/bin/rm", "/bin/sync",
               "/usr/bin/ssh-keygen"}  # Debian packages
    for path in UNITS:
        for exe in exec_paths(parse(path)):
            if exe.startswith("/opt/upazila-hub/venv/bin/"):
                continue  # pip install of the appliance wheel (supervisord, appliance)
            if exe in from_os:
                continue
            assert (REPO / "image" / "rootfs" / exe.lstrip("/")).exists(), f"{path.name}: {exe}"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None or HOST_UNITS is None,
                    reason="systemd-analyze (Debian package systemd) is not installed")
def test_systemd_analyze_verify(tmp_path: Path) -> None:
    """The real verifier, against a throw-away root holding our units, the host's units
    (sysinit.target, systemd-fsck@.service...) and stand-ins for the image's programs."""
    root = tmp_path / "root"
    shutil.copytree(HOST_UNITS, root / "usr/lib/systemd/system", symlinks=True)
    etc = root / "etc/systemd/system"
    etc.mkdir(parents=True)
    for unit in UNITS:
        shutil.copy(unit, etc / unit.name)
        for exe in exec_paths(parse(unit)):
            stub = root / exe.lstrip("/")
            stub.parent.mkdir(parents=True, exist_ok=True)
            stub.write_text("#!/bin/sh\n")
            stub.chmod(0o755)
    res = subprocess.run(["systemd-analyze", "verify", f"--root={root}",
                          *(u.name for u in UNITS)], capture_output=True, text=True, timeout=60)
    # verify exits 0 on unknown keys and bad values but says so: any word is a failure
    assert res.returncode == 0 and not res.stderr.strip() and not res.stdout.strip(), \
        res.stdout + res.stderr
