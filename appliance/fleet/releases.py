"""Software releases (#13): signed RAUC bundles national adds with ``appliance fleet
add-release``, kept as ``<data-dir>/releases/<sha256>.raucb`` and served to hubs.

A bundle is read with ``rauc info --keyring=<[update] fleet_keyring>``: RAUC checks its
signature against national's CA and says its version and ``compatible`` (the hardware it
is for). A bundle whose signature does not verify is refused and nothing is stored. On a
fleet server without RAUC, ``--version`` and ``--compatible`` must be given and the
signature is left to the hubs (which check it again before installing in any case); the
release is then marked unverified.

The SHA-256 and size are the fleet's own, computed while the file is copied in: hubs check
the download against them before they let RAUC see it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import Config
from ..dhis2.timefmt import iso_z
from ..errors import Conflict, FleetError
from .db import FleetDB, audit_tx

VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+~-]{0,63}$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")
MAX_COMPATIBLE = 200
RAUC_TIMEOUT_S = 120.0
CHUNK = 1 << 20


@dataclass(frozen=True)
class BundleInfo:
    version: str
    compatible: str
    signer: str | None = None  # who signed it, as RAUC says (None: not verified here)


@dataclass(frozen=True)
class Release:
    id: int
    version: str
    compatible: str
    sha256: str
    size: int
    verified: bool
    created: bool  # False: this very bundle was added before


def releases_dir(data_dir: Path) -> Path:
    return data_dir / "releases"


def bundle_path(data_dir: Path, sha256: str) -> Path:
    if not SHA256.match(sha256):  # the name comes from the database, but never trust a path
        raise FleetError(f"not a SHA-256: {sha256[:70]!r}")
    return releases_dir(data_dir) / f"{sha256}.raucb"


def check_version(version: str) -> str:
    if not VERSION.match(version):
        raise FleetError(f"release version {version[:70]!r} must be 1-64 letters, digits, '.', "
                         "'_', '+', '~' or '-', starting with a letter or digit")
    return version


def check_compatible(compatible: str) -> str:
    text = compatible.strip()
    if not text or len(text) > MAX_COMPATIBLE or not text.isprintable():
        raise FleetError("the compatible string (the hardware a bundle is for, as in RAUC's "
                         f"system.conf) must be 1-{MAX_COMPATIBLE} printable characters")
    return text


# ------------------------------------------------------------------------ reading bundles
def rauc_available(rauc: str) -> bool:
    return shutil.which(rauc) is not None


def inspect_bundle(path: Path, *, rauc: str, keyring: str) -> BundleInfo:
    """Version and compatible of a bundle whose signature chains to ``keyring``; raises
    ``FleetError`` with RAUC's own words when it does not (or is no bundle at all)."""
    if not keyring:
        raise FleetError("[update] fleet_keyring is not set: the fleet cannot check a bundle's "
                         "signature. Set it to national's RAUC CA certificate (PEM).")
    if not Path(keyring).is_file():
        raise FleetError(f"[update] fleet_keyring {keyring} does not exist")
    cmd = [rauc, f"--keyring={keyring}", "info", "--output-format=json", str(path)]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=RAUC_TIMEOUT_S,
                             check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise FleetError(f"cannot run {rauc}: {e}") from None
    if res.returncode != 0:
        raise FleetError(f"RAUC refused the bundle {path.name}: {rauc_error(res.stderr)}")
    try:
        doc = json.loads(res.stdout)
    except ValueError:
        raise FleetError(f"rauc info printed no JSON for {path.name}") from None
    if not isinstance(doc, dict):
        raise FleetError(f"rauc info printed no JSON object for {path.name}")
    version, compatible = doc.get("version"), doc.get("compatible")
    if not isinstance(version, str) or not isinstance(compatible, str):
        raise FleetError(f"the bundle {path.name} names no version or compatible in its "
                         "manifest")
    return BundleInfo(check_version(version), check_compatible(compatible),
                      signer=signer(res.stderr))


def rauc_error(stderr: str) -> str:
    """RAUC's reason, without its progress chatter ("rauc-Message: ... Reading bundle")."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    useful = [ln for ln in lines if "rauc-Message" not in ln] or lines
    return "; ".join(useful)[-500:] or "no reason given"


def signer(stderr: str) -> str | None:
    m = re.search(r"Verified (?:inline |detached )?signature by '([^']*)'", stderr)
    return m.group(1)[:200] if m else None


# ----------------------------------------------------------------------------- adding
def copy_in(src: Path, data_dir: Path) -> tuple[str, int, Path]:
    """Copy ``src`` under the releases folder, hashing as it goes; returns (sha256, size,
    final path). The file appears under its final name only once complete and synced."""
    folder = releases_dir(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".incoming-{os.getpid()}"
    h = hashlib.sha256()
    size = 0
    try:
        with open(src, "rb") as inp, open(tmp, "wb") as out:
            while chunk := inp.read(CHUNK):
                h.update(chunk)
                out.write(chunk)
                size += len(chunk)
            out.flush()
            os.fsync(out.fileno())
        sha = h.hexdigest()
        final = bundle_path(data_dir, sha)
        os.replace(tmp, final)
        final.chmod(0o644)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return sha, size, final


def add_release(db: FleetDB, config: Config, bundle: Path, *, by: str,
                version: str | None = None, compatible: str | None = None,
                now: float) -> Release:
    """Check and record a bundle (``appliance fleet add-release``)."""
    if not bundle.is_file():
        raise FleetError(f"{bundle} is not a file")
    rauc = str(config.get("update", "rauc")) or "rauc"
    if rauc_available(rauc):
        info = inspect_bundle(bundle, rauc=rauc,
                              keyring=str(config.get("update", "fleet_keyring")).strip())
        for given, found, what in ((version, info.version, "version"),
                                   (compatible, info.compatible, "compatible")):
            if given is not None and given != found:
                raise FleetError(f"--{what} {given!r} differs from the bundle's own {what} "
                                 f"{found!r}")
        verified = True
    elif version is None or compatible is None:
        raise FleetError(f"{rauc} is not installed on this server, so the bundle cannot be "
                         "read or its signature checked: install RAUC (Debian package rauc), "
                         "or give --version and --compatible (hubs still check the "
                         "signature before installing)")
    else:
        info = BundleInfo(check_version(version), check_compatible(compatible))
        verified = False
    sha, size, path = copy_in(bundle, db.path.parent)

    def tx(c: sqlite3.Connection) -> Release:
        row = c.execute("SELECT id, version, compatible, sha256, size, verified FROM releases "
                        "WHERE sha256=? OR (compatible=? AND version=?)",
                        (sha, info.compatible, info.version)).fetchone()
        if row is not None and row["sha256"] == sha:
            return Release(row["id"], row["version"], row["compatible"], sha, row["size"],
                           bool(row["verified"]), created=False)
        if row is not None:
            raise Conflict(f"release {info.version} for {info.compatible} exists already with "
                           f"another bundle (sha256 {row['sha256'][:12]}…): give the new "
                           "bundle a new version", error_code="exists")
        cur = c.execute("INSERT INTO releases (version, compatible, sha256, size, signer, "
                        "verified, added_at, added_by) VALUES (?,?,?,?,?,?,?,?)",
                        (info.version, info.compatible, sha, size, info.signer,
                         int(verified), now, by))
        audit_tx(c, at=now, username=by, client=None, action="add-release",
                 detail={"version": info.version, "compatible": info.compatible,
                         "sha256": sha, "size": size, "verified": verified})
        return Release(int(cur.lastrowid or 0), info.version, info.compatible, sha, size,
                       verified, created=True)
    try:
        return db.write_sync(tx)
    except Conflict:  # this file belongs to no release (its sha256 is in none)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        raise


# ------------------------------------------------------------------------------ reads
def release_json(r: sqlite3.Row) -> dict[str, Any]:
    return {"id": r["id"], "version": r["version"], "compatible": r["compatible"],
            "sha256": r["sha256"], "size": r["size"], "signer": r["signer"],
            "verified": bool(r["verified"]), "added_at": iso_z(r["added_at"]),
            "added_by": r["added_by"]}


def list_releases(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    return conn.execute("SELECT * FROM releases ORDER BY added_at DESC, id DESC").fetchall()


def find_release(conn: sqlite3.Connection, ref: str, compatible: str | None = None
                 ) -> sqlite3.Row | None:
    """A release by SHA-256 (or a unique prefix of 8+ digits) or by version (and
    compatible, when one version exists for several kinds of hardware)."""
    ref = ref.strip()
    if re.fullmatch(r"[0-9a-f]{8,64}", ref):
        rows = conn.execute("SELECT * FROM releases WHERE sha256 LIKE ?",
                            (ref + "%",)).fetchall()
        if len(rows) == 1:
            return rows[0]
    rows = conn.execute("SELECT * FROM releases WHERE version=?" +
                        (" AND compatible=?" if compatible else ""),
                        (ref, compatible) if compatible else (ref,)).fetchall()
    if len(rows) > 1:
        raise Conflict(f"release {ref} exists for several kinds of hardware ("
                       + ", ".join(r["compatible"] for r in rows)[:200] + "): say which "
                       "compatible, or give its sha256", error_code="ambiguous")
    return rows[0] if rows else None
