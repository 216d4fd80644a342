"""The hub's TLS key and certificate on disk (issue 12), shared by the hub (serves them),
the health agent (renews them), the ``appliance tls`` command and national's fleet.

Layout of ``[tls] dir`` (default ``<data-dir>/tls``)::

    live -> gen-<n>/         the pair served now; swapped with one os.replace of a symlink
    gen-<n>/key.pem          the private key: ECDSA P-256, PKCS8 PEM, 0600
    gen-<n>/cert.pem         the full chain, leaf first, 0644
    next-key.pem             the key of a renewal in progress (0600); its CSR is re-sent
                             until the certificate comes back

A pair is written whole into a new generation before ``live`` points at it, so a reader
never sees a key with a certificate that is not its own; the two newest generations are
kept. Private keys are created 0600 from their first byte and never logged. Imports
nothing of the appliance but ``errors`` and ``fsutil`` (a shared top-level module).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from .errors import CertificateError
from .fsutil import fsync_dir, write_atomic

LIVE = "live"
KEY_FILE = "key.pem"
CERT_FILE = "cert.pem"
NEXT_KEY = "next-key.pem"
KEEP_GENERATIONS = 2
_GEN = re.compile(r"gen-([0-9]+)")

Pem = bytes | str


@dataclass(frozen=True)
class CertInfo:
    """What a certificate says of itself (the leaf of a chain)."""

    names: tuple[str, ...]   # SAN dNSNames
    not_before: datetime     # aware, UTC
    not_after: datetime      # aware, UTC
    issuer: str              # the issuer's CN (its RFC 4514 name if it has none)
    fingerprint: str         # SHA-256 of the leaf's DER, lower-case hex
    serial: str              # lower-case hex
    pubkey_sha256: str = ""  # SHA-256 of the leaf's SubjectPublicKeyInfo DER (its key's id)

    def days_left(self, now: datetime | float | None = None) -> float:
        return (self.not_after - _now(now)).total_seconds() / 86400

    def lifetime_days(self) -> float:
        return (self.not_after - self.not_before).total_seconds() / 86400


@dataclass(frozen=True)
class Pair:
    cert_pem: bytes
    key_pem: bytes
    info: CertInfo
    generation: Path  # the gen-<n> folder both files were read from


def _b(pem: Pem) -> bytes:
    return pem.encode() if isinstance(pem, str) else bytes(pem)


def _now(now: datetime | float | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if isinstance(now, (int, float)):
        return datetime.fromtimestamp(now, UTC)
    return now if now.tzinfo else now.replace(tzinfo=UTC)


def _day(d: datetime) -> str:
    return d.strftime("%Y-%m-%d %H:%M UTC")


# -- keys and CSRs -----------------------------------------------------------------------------
def new_key() -> bytes:
    """A new ECDSA P-256 private key as unencrypted PKCS8 PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _private_key(key_pem: Pem) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(_b(key_pem), password=None)
    except (ValueError, TypeError):
        # the key's text is never echoed
        raise CertificateError("this hub's private key is unreadable (not a PEM key)") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise CertificateError("this hub's private key is not an ECDSA key")
    return key


def make_csr(key_pem: Pem, name: str) -> bytes:
    """A PEM CSR for ``name`` (CN and the one SAN dNSName), signed with ``key_pem``."""
    key = _private_key(key_pem)
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
           .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
           .sign(key, hashes.SHA256()))
    return csr.public_bytes(serialization.Encoding.PEM)


def public_key_der(key_pem: Pem) -> bytes:
    """The public half of a private key (SubjectPublicKeyInfo DER): what a CSR carries."""
    return _private_key(key_pem).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


# -- certificates ------------------------------------------------------------------------------
def _leaf(cert_pem: Pem) -> x509.Certificate:
    data = _b(cert_pem)
    if b"-----BEGIN CERTIFICATE-----" not in data:
        raise CertificateError("not a PEM certificate (no BEGIN CERTIFICATE block)")
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise CertificateError("not a PEM certificate (its contents do not parse)") from None
    return certs[0]


def _names(cert: x509.Certificate) -> tuple[str, ...]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return ()
    return tuple(san.value.get_values_for_type(x509.DNSName))


def cert_info(cert_pem: Pem) -> CertInfo:
    """Names, validity, issuer, fingerprint and serial of the chain's leaf (the first
    certificate). Raises ``CertificateError`` for anything that is not a PEM certificate."""
    cert = _leaf(cert_pem)
    cns = cert.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)
    issuer = str(cns[0].value) if cns else cert.issuer.rfc4514_string()
    return CertInfo(
        names=_names(cert), not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc, issuer=issuer,
        fingerprint=hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest(),
        serial=format(cert.serial_number, "x"),
        pubkey_sha256=hashlib.sha256(cert.public_key().public_bytes(
            serialization.Encoding.DER,
            serialization.PublicFormat.SubjectPublicKeyInfo)).hexdigest())


def _name_matches(pattern: str, name: str) -> bool:
    pattern, name = pattern.lower().rstrip("."), name.lower().rstrip(".")
    if pattern == name:
        return True
    # a wildcard covers exactly one label
    return pattern.startswith("*.") and name.count(".") >= 2 and \
        name.split(".", 1)[1] == pattern[2:]


def check_pair(cert_pem: Pem, key_pem: Pem, name: str,
               now: datetime | float | None = None) -> CertInfo:
    """The certificate's ``CertInfo`` if it may be served as ``name`` with ``key_pem``;
    ``CertificateError`` saying what is wrong otherwise (unparseable, another name, another
    key, expired or not yet valid)."""
    cert = _leaf(cert_pem)
    info = cert_info(cert_pem)
    if not any(_name_matches(n, name) for n in info.names):
        shown = ", ".join(info.names) or "no DNS name"
        raise CertificateError(f"the certificate is for {shown}, not this hub's name {name}")
    mine = public_key_der(key_pem)
    theirs = cert.public_key().public_bytes(serialization.Encoding.DER,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    if mine != theirs:
        raise CertificateError("the certificate does not match this hub's private key "
                               "(it was issued for another key)")
    t = _now(now)
    if info.not_after <= t:
        raise CertificateError(f"the certificate expired on {_day(info.not_after)}")
    if info.not_before > t:
        raise CertificateError(f"the certificate is not valid before {_day(info.not_before)}; "
                               "check this hub's clock")
    return info


def renewal_due(info: CertInfo | None, renew_days: float,
                now: datetime | float | None = None) -> bool:
    """Missing, expired, or fewer than ``renew_days`` days left; for a certificate that
    lives less than twice that (Let's Encrypt's coming 45-day ones, a test CA's minutes),
    once half its life is gone, so that a fresh certificate is never already due and the
    hub does not order one after another."""
    if info is None:
        return True
    left = info.days_left(now)
    return left <= 0 or left < min(renew_days, info.lifetime_days() / 2)


# -- files -------------------------------------------------------------------------------------
def write_secret(path: Path, data: bytes) -> None:
    """Write ``data`` to a new file that is 0600 from its first byte, then fsync it."""
    write_atomic(path, data, mode=0o600)


def _write_public(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.fchmod(fd, 0o644)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def tls_dir(configured: str, data_dir: str | os.PathLike[str]) -> Path:
    """``[tls] dir``, or ``<data-dir>/tls`` when it is empty."""
    return Path(configured) if configured else Path(data_dir) / "tls"


def _generations(d: Path) -> list[tuple[int, Path]]:
    out = []
    with contextlib.suppress(FileNotFoundError):
        for p in d.iterdir():
            m = _GEN.fullmatch(p.name)
            if m and p.is_dir() and not p.is_symlink():
                out.append((int(m.group(1)), p))
    return sorted(out)


def install(directory: str | os.PathLike[str], cert_pem: Pem, key_pem: Pem, name: str,
            now: datetime | float | None = None) -> CertInfo:
    """Check the pair (``check_pair``), write it into a new generation and point ``live``
    at it atomically. A refused pair raises ``CertificateError`` and changes nothing."""
    info = check_pair(cert_pem, key_pem, name, now)
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    os.chmod(d, 0o755)  # the certificate is public; key files are 0600 themselves
    gens = _generations(d)
    n = (gens[-1][0] + 1) if gens else 1
    gen = d / f"gen-{n}"
    shutil.rmtree(gen.with_name(gen.name + ".tmp"), ignore_errors=True)
    staging = gen.with_name(gen.name + ".tmp")
    staging.mkdir(mode=0o755)
    write_secret(staging / KEY_FILE, _b(key_pem))
    _write_public(staging / CERT_FILE, _b(cert_pem))
    fsync_dir(staging)
    os.rename(staging, gen)
    link = d / f".{LIVE}.{os.getpid()}.tmp"
    with contextlib.suppress(FileNotFoundError):
        link.unlink()
    os.symlink(gen.name, link)
    os.replace(link, d / LIVE)
    fsync_dir(d)
    for _, old in _generations(d)[:-KEEP_GENERATIONS]:
        shutil.rmtree(old, ignore_errors=True)
    return info


def live_generation(directory: str | os.PathLike[str]) -> Path | None:
    """The generation ``live`` points at now, or None."""
    d = Path(directory)
    try:
        target = os.readlink(d / LIVE)
    except OSError:
        return None
    return d / target


def load(directory: str | os.PathLike[str]) -> Pair | None:
    """The installed pair (not re-checked against a name or the clock: ``check_pair`` does
    that), or None when nothing is installed. Both files come from the one generation
    ``live`` pointed at when this was called. Raises ``CertificateError`` for a certificate
    that does not parse."""
    gen = live_generation(directory)
    if gen is None:
        return None
    try:
        cert = (gen / CERT_FILE).read_bytes()
        key = (gen / KEY_FILE).read_bytes()
    except FileNotFoundError:
        return None  # a generation pruned between the readlink and the read: try again later
    return Pair(cert, key, cert_info(cert), gen)


# -- the key of a renewal in progress ---------------------------------------------------------
def next_key_path(directory: str | os.PathLike[str]) -> Path:
    return Path(directory) / NEXT_KEY


def read_next_key(directory: str | os.PathLike[str]) -> bytes | None:
    try:
        data = next_key_path(directory).read_bytes()
    except FileNotFoundError:
        return None
    try:
        _private_key(data)
    except CertificateError:
        return None  # torn by a power cut: a new one is made
    return data


def next_key(directory: str | os.PathLike[str]) -> bytes:
    """The renewal key: the one in ``next-key.pem``, or a new one written there (0600)."""
    key = read_next_key(directory)
    if key is None:
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        key = new_key()
        write_secret(next_key_path(d), key)
    return key


def drop_next_key(directory: str | os.PathLike[str]) -> None:
    with contextlib.suppress(FileNotFoundError):
        next_key_path(directory).unlink()
    fsync_dir(Path(directory))
