"""A throwaway certificate authority for the hub's TLS tests (issue 12), made with
``cryptography``: a root, and leaf certificates for a hub's key or CSR with any names and
validity, to play the publicly trusted CA a tablet trusts and the fleet's issuance."""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from appliance import tlscert

HUB_NAME = "ramu.hub.example.test"


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


@dataclass
class TestCA:
    """Root key and certificate; ``issue`` signs leaves (full chain PEM: leaf, then root)."""

    __test__ = False  # not a pytest class
    cn: str = "Throwaway Test Root CA"
    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    cert: x509.Certificate = field(init=False)

    def __post_init__(self) -> None:
        now = datetime.now(UTC)
        self.cert = (x509.CertificateBuilder().subject_name(_name(self.cn))
                     .issuer_name(_name(self.cn)).public_key(self.key.public_key())
                     .serial_number(x509.random_serial_number())
                     .not_valid_before(now - timedelta(days=1))
                     .not_valid_after(now + timedelta(days=3650))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
                     .add_extension(x509.KeyUsage(
                         digital_signature=True, key_cert_sign=True, crl_sign=True,
                         content_commitment=False, key_encipherment=False,
                         data_encipherment=False, key_agreement=False, encipher_only=False,
                         decipher_only=False), True)
                     .sign(self.key, hashes.SHA256()))

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def write(self, path: Path) -> Path:
        path.write_bytes(self.pem)
        return path

    def client_context(self) -> ssl.SSLContext:
        """A client trusting this root only, as a tablet trusts only the system's CAs."""
        ctx = ssl.create_default_context(cadata=self.pem.decode())
        ctx.set_alpn_protocols(["http/1.1"])
        return ctx

    def issue(self, key_pem: bytes, names: list[str] | str = HUB_NAME, *,
              not_before: datetime | None = None, not_after: datetime | None = None,
              days: float = 90) -> bytes:
        """A leaf for the public half of ``key_pem`` (a private key PEM)."""
        key = serialization.load_pem_private_key(key_pem, None)
        return self._sign(key.public_key(), names, not_before, not_after, days)  # type: ignore[arg-type]

    def issue_csr(self, csr_pem: bytes, names: list[str] | str | None = None, *,
                  days: float = 90, not_after: datetime | None = None) -> bytes:
        """A leaf for a CSR: its own names unless ``names`` overrides them (a wrong one)."""
        csr = x509.load_pem_x509_csr(csr_pem)
        if names is None:
            san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName)
            names = list(san.value.get_values_for_type(x509.DNSName))
        return self._sign(csr.public_key(), names, None, not_after, days)  # type: ignore[arg-type]

    def _sign(self, public_key: ec.EllipticCurvePublicKey, names: list[str] | str,
              not_before: datetime | None, not_after: datetime | None, days: float) -> bytes:
        names = [names] if isinstance(names, str) else names
        now = datetime.now(UTC)
        nb = not_before or now - timedelta(minutes=5)
        na = not_after or now + timedelta(days=days)
        leaf = (x509.CertificateBuilder().subject_name(_name(names[0]))
                .issuer_name(self.cert.subject).public_key(public_key)
                .serial_number(x509.random_serial_number())
                .not_valid_before(nb).not_valid_after(na)
                .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]),
                               False)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
                .sign(self.key, hashes.SHA256()))
        return leaf.public_bytes(serialization.Encoding.PEM) + self.pem

    def pair(self, names: list[str] | str = HUB_NAME, **kw: object) -> tuple[bytes, bytes]:
        """(certificate chain, key) for a new key."""
        key = tlscert.new_key()
        return self.issue(key, names, **kw), key  # type: ignore[arg-type]
