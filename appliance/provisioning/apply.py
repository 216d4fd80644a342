"""Apply a provisioning file: what ``upazila-firstboot.service`` runs on first boot.

1. find the file (``upazila-hub*.toml`` on the boot partition: Windows may have named it
   ``upazila-hub.toml.toml``), copy it privately (FAT has no modes: every file there
   looks 0755) and validate the copy with ``appliance.config.load`` plus the checks a
   hub needs before it can work (org unit UID, the PAT pasted, ...);
2. with ``[backup] replica``: write ``litestream.yml`` (and the SFTP key) and, when there
   is no database yet (a new card for a dead one), restore it from the backup. If the
   backup cannot be reached the file is refused: an empty hub must never start and
   replicate over a good backup;
3. install it as ``<etc>/hub.toml``, mode 0600, owned by the service user. Last of the
   checks: a refused file leaves no hub.toml on a new card, so the hub does not start;
4. write ``<etc>/supervisord.conf`` (the programs ``upazila-hub.service`` runs);
5. move the boot-partition copy aside: a copy with the secrets blanked out is left as
   ``<name>.applied`` for the IT focal point; the original is overwritten and deleted,
   so the secrets do not stay on the FAT partition (best effort: flash wear levelling
   may keep old blocks) and the first-boot unit's condition no longer matches.

A refused file stays where it is, and ``upazila-hub-ERROR.txt`` beside it says why, so an
IT focal point can read it by putting the card in any laptop.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import subprocess
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from ..config import KEYS, Config, load
from ..dhis2.uid import is_uid
from ..errors import ConfigError
from ..fsutil import fsync_dir, write_atomic
from ..store import Store
from ..sync.identity import take_new_identity
from . import dnsmasq, sshkeys, tomlout
from .generate import PAT_PLACEHOLDER, write_private
from .supervisord import Layout, litestream_yaml, render

DROP_GLOB = "upazila-hub*.toml"
ERROR_FILE = "upazila-hub-ERROR.txt"
HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")  # the fleet's rule
REDACTED = "(installed on the hub)"


@dataclass
class Applied:
    source: Path
    hub_toml: Path
    supervisord_conf: Path
    aside: Path | None
    litestream_yml: Path | None
    config: Config
    written: list[Path] = field(default_factory=list)
    restored: str = ""  # what litestream restore said, when it ran


def find_source(path: Path) -> Path:
    """``path`` itself, or the one ``upazila-hub*.toml`` in the directory ``path``."""
    if not path.is_dir():
        if not path.exists():
            raise ConfigError(f"provisioning file {path} does not exist")
        return path
    found = sorted(p for p in path.glob(DROP_GLOB) if p.is_file())
    if not found:
        raise ConfigError(f"no provisioning file ({DROP_GLOB}) in {path}")
    if len(found) > 1:
        raise ConfigError(f"more than one provisioning file in {path}: "
                          f"{', '.join(p.name for p in found)}; leave only one")
    return found[0]


def validate(path: Path, shown_as: Path | None = None) -> Config:
    """``config.load`` plus what a provisioned hub needs; errors name the file and the key."""
    shown = shown_as or path
    try:
        cfg = load(path)
    except ConfigError as e:
        raise ConfigError(e.message.replace(str(path), str(shown))) from None
    g = cfg.get

    def bad(key: str, why: str) -> ConfigError:
        return ConfigError(f"{shown}: {key} {why}")

    if not HUB_ID.match(str(g("hub", "id"))):
        raise bad("[hub] id", f"= {g('hub', 'id')!r}: use 1-100 letters, digits, '.', '_' or '-'")
    if not is_uid(g("hub", "org_unit")):
        raise bad("[hub] org_unit", f"= {g('hub', 'org_unit')!r} is not a DHIS2 UID "
                                    "(11 letters and digits, a letter first)")
    if g("hub", "role") != "hub":
        raise bad("[hub] role", "must be 'hub' on an upazila hub")
    url = urlparse(str(g("national", "url")))
    if url.scheme not in ("http", "https") or not url.netloc:
        raise bad("[national] url", f"= {g('national', 'url')!r} is not an http(s) URL")
    if g("national", "token") == PAT_PLACEHOLDER:
        raise bad("[national] token", "is still the placeholder: paste the hub's personal "
                                      "access token (d2pat_...) from national")
    if not g("national", "token") and not (g("national", "username") and
                                           g("national", "password")):
        raise bad("[national] token", "is empty and no username/password is set: the hub "
                                      "could not sync")
    if g("health", "heartbeat_url") and not g("health", "token"):
        raise bad("[health] token", "is empty but [health] heartbeat_url is set: the fleet "
                                    "would refuse every heartbeat")
    replica = str(g("backup", "replica"))
    if replica and not urlparse(replica).scheme:
        raise bad("[backup] replica", f"= {replica!r} is not a URL (sftp://... or s3://...)")
    if g("backup", "sftp_key") and not replica.startswith("sftp://"):
        raise bad("[backup] sftp_key", "is set but [backup] replica is not sftp://")
    if replica.startswith("sftp://"):
        _check_sftp(cfg, replica, bad)
    if g("dns", "enabled"):
        try:
            dnsmasq.settings(cfg)  # the LAN resolver's keys, as `appliance dns` checks them
        except ConfigError as e:
            raise ConfigError(f"{shown}: {e.message}") from None
    return cfg


def _check_sftp(cfg: Config, replica: str, bad: Callable[[str, str], ConfigError]) -> None:
    """An sftp:// replica: a user, a way to log in, and the server's pinned host key."""
    u = urlparse(replica)
    if not u.username or not u.hostname:
        raise bad("[backup] replica", f"= {_without_password(replica)!r} needs a user and a "
                                      "host: sftp://backup@<host>/hubs/<hub id>")
    key = str(cfg.get("backup", "sftp_key"))
    if key:
        try:
            sshkeys.public_of(key)
        except ConfigError as e:
            raise bad("[backup] sftp_key", e.message + "; generate the file again") from None
    elif not u.password:
        raise bad("[backup] sftp_key", "is empty and the replica URL has no password: the hub "
                                       "could not log in to the backup server")
    host_key = str(cfg.get("backup", "host_key"))
    if not host_key:
        raise bad("[backup] host_key", "is empty: the hub would send its backup to any server "
                                       "that answers; generate the file with --backup-host-key")
    try:
        sshkeys.pick_host_key(host_key)
    except ConfigError as e:
        raise bad("[backup] host_key", e.message) from None


def _without_password(url: str) -> str:
    u = urlparse(url)
    if not u.password:
        return url
    return u._replace(netloc=u.netloc.replace(f":{u.password}@", ":(installed on the hub)@")
                      ).geturl()


def redacted(text: str) -> str:
    """The provisioning file with every secret value replaced (for ``.applied``)."""
    doc = tomllib.loads(text)
    secret = {(k.section, k.name) for k in KEYS if k.secret}
    for section, items in doc.items():
        for name, value in items.items():
            if (section, name) in secret and value:
                items[name] = REDACTED
            elif isinstance(value, str) and "://" in value and urlparse(value).password:
                # a replica URL may carry its password: sftp://user:secret@host/...
                items[name] = _without_password(value)
    return tomlout.dumps(doc, header="# applied by the hub; secrets removed")


def _ids(user: str | None) -> tuple[int, int] | None:
    """(uid, gid) to own installed files, or None when not root (tests, development)."""
    if user is None or os.geteuid() != 0:
        return None
    try:
        pw = pwd.getpwnam(user)
    except KeyError:
        raise ConfigError(f"service user {user!r} does not exist (the image creates 'hub'; "
                          "elsewhere pass --user)") from None
    return pw.pw_uid, pw.pw_gid


def _own(path: Path, ids: tuple[int, int] | None, *, group_only: bool = False) -> None:
    if ids is not None:
        os.chown(path, 0 if group_only else ids[0], ids[1])


def _shred(path: Path) -> None:
    """Overwrite, flush, delete: the FAT copy of the secrets should not survive."""
    try:
        size = path.stat().st_size
        with path.open("r+b") as f:
            f.write(b"\0" * size)
            f.flush()
            os.fsync(f.fileno())
    except OSError:
        pass  # read-only or vanished: the unlink below says what matters
    path.unlink()


def apply(source: Path, *, etc: Path, data_dir: Path, user: str | None = "hub",
          layout: Layout | None = None, keep_source: bool = False,
          available: dict[str, bool] | None = None, restore: bool = True) -> Applied:
    """``available``: which of sync/health to run (default: those this build has)."""
    src = find_source(source)
    try:
        return _apply(src, etc=etc, data_dir=data_dir, user=user, layout=layout,
                      keep_source=keep_source, available=available, restore=restore)
    except ConfigError as e:
        note = src.parent / ERROR_FILE
        with contextlib.suppress(OSError):  # beside the file: readable on any laptop
            note.write_text(f"The hub refused {src.name}:\n\n{e.message}\n\n"
                            "Fix the file (or generate it again) and boot the hub again.\n")
        raise


def _apply(src: Path, *, etc: Path, data_dir: Path, user: str | None, layout: Layout | None,
           keep_source: bool, available: dict[str, bool] | None, restore: bool) -> Applied:
    ids = _ids(user)
    text = src.read_text(encoding="utf-8")
    etc.mkdir(parents=True, exist_ok=True)
    etc.chmod(0o750)  # the service user's group may read; the secrets inside are 0600
    _own(etc, ids, group_only=True)
    staged = etc / ".hub.toml.new"
    write_private(staged, text)
    try:
        cfg = validate(staged, shown_as=src)
        data_dir.mkdir(parents=True, exist_ok=True)
        _own(data_dir, ids)
        hub_toml = etc / "hub.toml"
        layout = layout or Layout()
        layout.config, layout.data_dir = hub_toml, data_dir
        layout.litestream_config = etc / "litestream.yml"
        written: list[Path] = []
        litestream_yml, restored = _backup(cfg, layout, etc, ids, restore, written)
    except ConfigError:
        # hub.toml is installed last: a refused or unrestorable file leaves no hub.toml on
        # a new card, so upazila-hub.service (ConditionPathExists) does not start empty
        staged.unlink(missing_ok=True)
        raise
    _own(staged, ids)
    os.replace(staged, hub_toml)
    fsync_dir(etc)
    written.insert(0, hub_toml)

    conf = etc / "supervisord.conf"
    write_atomic(conf, render(cfg, layout, available))  # no secrets in it: 0644
    written.append(conf)

    aside = None
    if not keep_source:
        aside = src.with_name(src.name + ".applied")
        write_atomic(aside, redacted(text))
        _shred(src)
        (src.parent / ERROR_FILE).unlink(missing_ok=True)
        fsync_dir(src.parent)
    cfg.source, cfg.data_dir = hub_toml, data_dir
    return Applied(src, hub_toml, conf, aside, litestream_yml, cfg, written, restored)


def _backup(cfg: Config, layout: Layout, etc: Path, ids: tuple[int, int] | None,
            restore: bool, written: list[Path]) -> tuple[Path | None, str]:
    """litestream.yml (+ SFTP key) for ``[backup] replica``, and the restore on a new card."""
    key_file = etc / "backup-sftp.key"
    if not cfg.get("backup", "replica"):
        # a re-provisioned hub without backup must not keep replicating to the old place
        layout.litestream_config.unlink(missing_ok=True)
        key_file.unlink(missing_ok=True)
        return None, ""
    key_path = None
    if cfg.get("backup", "sftp_key"):
        write_private(key_file, str(cfg.get("backup", "sftp_key")).strip() + "\n")
        _own(key_file, ids)
        key_path = key_file
        written.append(key_file)
    host_key = str(cfg.get("backup", "host_key"))
    write_private(layout.litestream_config, litestream_yaml(
        cfg, layout, key_path, sshkeys.pick_host_key(host_key) if host_key else ""))
    _own(layout.litestream_config, ids)
    written.append(layout.litestream_config)
    restored = restore_database(layout, layout.data_dir, ids) if restore else ""
    return layout.litestream_config, restored


def restore_database(layout: Layout, data_dir: Path, ids: tuple[int, int] | None) -> str:
    """``litestream restore`` of hub.db when there is none: a new card for a dead one.

    No backup yet (a new hub) is fine; an unreachable backup is not: the hub would start
    empty and its litestream would then replicate the empty database over the backup.
    """
    db = data_dir / "hub.db"
    if db.exists():
        return "database present: nothing restored"
    cmd = [layout.litestream, "restore", "-no-expand-env", "-config",
           str(layout.litestream_config), "-if-db-not-exists", "-if-replica-exists", str(db)]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise ConfigError(f"cannot restore the database from [backup] replica: {e}") from None
    said = (res.stderr + res.stdout).strip()
    if res.returncode != 0:
        last = said.splitlines()[-1] if said else f"exit code {res.returncode}"
        raise ConfigError(f"cannot restore the database from [backup] replica ({last}); "
                          "the hub needs the link to the backup on its first boot")
    if db.exists():  # restored (a first hub with no backup yet has nothing to restore)
        with Store(db) as store:  # also brings an older backup's schema up to date
            generation = store.write_sync(take_new_identity)
        said = f"{said}\nrestored; new sync identity {generation}".strip()
    for p in data_dir.glob("hub.db*"):
        _own(p, ids)
    return said.splitlines()[-1] if said else "restored"
