"""A real OpenSSH sshd serving SFTP on loopback, and the RPO of a write measured on it.

sshd (Debian's openssh-server, scripts/system-deps.d/backup.txt) runs in the foreground
as our child with its own config and host keys in a temporary directory, for root's
account, with no ``ForceCommand``: the confinement to SFTP comes from the
``restrict,command="internal-sftp"`` lines provisioning writes, so these tests prove those
lines do it. ``ChrootDirectory`` holds the replicas under a directory of root's own in
/run (sshd refuses a chroot any of whose parents others may write, as /tmp), removed on
stop. Nothing of the system's sshd or accounts is touched; only /run/sshd, sshd's
privilege-separation directory, is created when missing.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization as ser
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

SSHD = Path("/usr/sbin/sshd")
PRIVSEP = Path("/run/sshd")


def available() -> str | None:
    """Why these tests cannot run here (None: they can)."""
    if not SSHD.exists():
        return "openssh-server is not installed (make system-deps)"
    if os.geteuid() != 0:
        return "sshd's ChrootDirectory and privilege separation need root"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _write_key(path: Path, key: ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey) -> str:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.OpenSSH,
                                  ser.NoEncryption()))
    return key.public_key().public_bytes(ser.Encoding.OpenSSH,
                                         ser.PublicFormat.OpenSSH).decode()


@dataclass
class Sftpd:
    port: int
    chroot: Path
    host_keys: str  # as ssh-keyscan prints them: what national gives --backup-host-key
    authorized_keys: Path
    proc: subprocess.Popen[bytes]
    log: Path

    def replica(self, hub_id: str) -> Path:
        """Where a hub's sftp://root@127.0.0.1:<port>/hubs/<hub_id> lands on the server."""
        return self.chroot / "hubs" / hub_id

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.chroot, ignore_errors=True)


@contextlib.contextmanager
def sftpd(tmp: Path) -> Iterator[Sftpd]:
    """sshd on 127.0.0.1:<free port>; write the hubs' lines into ``.authorized_keys``."""
    tmp.mkdir(parents=True, exist_ok=True)
    PRIVSEP.mkdir(mode=0o755, exist_ok=True)
    # stock Debian serves Ed25519 and ECDSA (and RSA) host keys: so does this one
    ed = _write_key(tmp / "ssh_host_ed25519_key", ed25519.Ed25519PrivateKey.generate())
    ecdsa = _write_key(tmp / "ssh_host_ecdsa_key", ec.generate_private_key(ec.SECP256R1()))
    chroot = Path(tempfile.mkdtemp(prefix="upazila-sftp-", dir="/run"))
    (chroot / "hubs").mkdir()
    authorized = tmp / "authorized_keys"
    authorized.write_text("")
    port = free_port()
    conf = tmp / "sshd_config"
    conf.write_text("\n".join([
        f"Port {port}", "ListenAddress 127.0.0.1",
        f"HostKey {tmp / 'ssh_host_ed25519_key'}", f"HostKey {tmp / 'ssh_host_ecdsa_key'}",
        "PidFile none", f"AuthorizedKeysFile {authorized}",
        "StrictModes no",  # the files live under /tmp, which others may write
        "PasswordAuthentication no", "KbdInteractiveAuthentication no", "UsePAM no",
        "PermitRootLogin prohibit-password", "Subsystem sftp internal-sftp",
        "LogLevel VERBOSE",
        "Match User root", f"  ChrootDirectory {chroot}", "  AllowTcpForwarding no",
        "  X11Forwarding no", ""]))
    log = tmp / "sshd.log"
    subprocess.run([str(SSHD), "-t", "-f", str(conf)], check=True, capture_output=True)
    proc = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(conf)],
                            stdout=log.open("wb"), stderr=subprocess.STDOUT)
    server = Sftpd(port, chroot, f"127.0.0.1 {ed}\n127.0.0.1 {ecdsa}\n", authorized, proc, log)
    try:
        deadline = time.monotonic() + 10
        while "Server listening" not in log.read_text():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"sshd did not start: {log.read_text()[-500:]}")
            time.sleep(0.02)
        yield server
    finally:
        server.close()


# -- RPO: from a committed write to the replica holding it ---------------------------------
def l0_files(replica: Path) -> set[str]:
    d = replica / "ltx" / "0"
    try:
        return {p.name for p in d.iterdir() if p.suffix == ".ltx"}
    except FileNotFoundError:
        return set()


def restore(replica: Path, out: Path, litestream: str) -> None:
    """``litestream restore`` of a copy of the replica, read as the server holds it."""
    out.unlink(missing_ok=True)
    subprocess.run([litestream, "restore", "-o", str(out), f"file://{replica}"], check=True,
                   capture_output=True, timeout=60)


def copy_replica(replica: Path, dst: Path) -> bool:
    """Copy a live replica directory to ``dst``; False when a file went away mid-copy
    (litestream renames its ``*.tmp`` uploads and compaction deletes L0 files): copy again."""
    shutil.rmtree(dst, ignore_errors=True)
    try:
        shutil.copytree(replica, dst, ignore=shutil.ignore_patterns("*.tmp"))
    except shutil.Error:
        return False
    return True


def seconds_until_replicated(replica: Path, committed_at: float, known: set[str],
                             holds: Callable[[Path], bool], work: Path, litestream: str,
                             timeout: float = 60.0) -> float:
    """Seconds from ``committed_at`` (time.monotonic() when the hub acknowledged the write)
    to the first moment the replica on the server held it.

    Each time a new L0 file shows up the replica directory is copied at once (that instant
    is the candidate time) and the copy restored with litestream; ``holds(db)`` says
    whether the write is in it. A file from a sync that began before the commit does not
    count: the wait goes on for the next one. ``known``: L0 files seen before the write
    (updated in place)."""
    deadline = committed_at + timeout
    while time.monotonic() < deadline:
        names = l0_files(replica)
        if names - known:
            seen_at = time.monotonic()
            snap = work / "snapshot"
            if not copy_replica(replica, snap):
                continue
            db = work / "restored.db"
            try:
                restore(snap, db, litestream)
            except subprocess.CalledProcessError:
                continue  # caught mid-upload: copy again
            known |= names
            if holds(db):
                return seen_at - committed_at
            continue
        time.sleep(0.01)
    raise AssertionError(f"the write was not in the replica within {timeout:.0f} s")
