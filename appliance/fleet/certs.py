"""Hub certificates at national (#12): CSRs in, certificates out, DNS names published.

The hub makes its key and a CSR; the fleet checks the CSR (``parse_csr``: its signature,
that its only name is the one national assigned to the hub, an acceptable key), orders
the certificate from the ACME CA in the background (``Certificates``) and hands it back
when the hub asks again with the same CSR. The fleet never sees or stores a private key.

Issuance runs as asyncio tasks: one at a time per hub, at most ``max_parallel`` overall,
each ``Issuer.issue`` call in a worker thread (it blocks on HTTP, DNS and polling). A
failed attempt is retried with backoff when the hub asks again; rows still pending when
the service stopped are resumed at start-up.

The same background machinery publishes each hub's public name as an A record of the LAN
address its heartbeats report (the plex.direct pattern), retried with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import math
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from .. import tlscert
from ..dhis2.timefmt import iso_z as iso
from ..errors import AcmeError, ApplianceError, BadRequest, CertificateError, Forbidden
from .db import FleetDB, audit_tx, mark_published_tx, unpublished
from .dns import DnsProvider

log = logging.getLogger(__name__)

MAX_CSR = 16 * 1024
RETRY_AFTER_S = 5  # while an order runs: pebble takes a second, a real CA tens of seconds
BACKOFF_S = 60.0  # first retry of a failed order; doubles up to BACKOFF_MAX_S
BACKOFF_MAX_S = 6 * 3600.0
PUBLISH_BACKOFF_S = 30.0
PUBLISH_BACKOFF_MAX_S = 3600.0
MAX_PARALLEL = 4
KEEP_ISSUED = 3  # per hub: the newest certificates stay answerable (idempotent replies)


# ------------------------------------------------------------------------------- CSRs
@dataclass(frozen=True)
class Csr:
    pem: str
    name: str  # its one DNS name, lower case, no trailing dot
    pubkey_sha256: str  # SHA-256 of the DER SubjectPublicKeyInfo, hex
    key_desc: str  # "EC P-256", "RSA 2048"


def normalise_name(name: str) -> str:
    return name.strip().rstrip(".").lower()


def pubkey_sha256(key: Any) -> str:
    der = key.public_bytes(serialization.Encoding.DER,
                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def _key_desc(key: Any) -> str:
    if isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name not in ("secp256r1", "secp384r1"):
            raise CertificateError(f"the CSR's EC key is on {key.curve.name}; use P-256 or "
                                   "P-384", error_code="csr_key")
        return "EC P-256" if key.curve.name == "secp256r1" else "EC P-384"
    if isinstance(key, rsa.RSAPublicKey):
        if not 2048 <= key.key_size <= 8192:
            raise CertificateError(f"the CSR's RSA key has {key.key_size} bits; use 2048 to "
                                   "8192 (or better an EC P-256 key)", error_code="csr_key")
        return f"RSA {key.key_size}"
    raise CertificateError(f"the CSR's key is a {type(key).__name__.replace('PublicKey', '')} "
                           "key; use EC P-256, P-384 or RSA of at least 2048 bits",
                           error_code="csr_key")


def parse_csr(text: Any) -> Csr:
    """A hub's CSR, checked: PEM, its own signature, exactly one DNS name, a usable key.
    ``CertificateError`` (400) says what is wrong."""
    if not isinstance(text, str) or "-----BEGIN CERTIFICATE REQUEST-----" not in text:
        raise CertificateError("csr must be a PEM certificate request (-----BEGIN "
                               "CERTIFICATE REQUEST-----)", error_code="csr")
    if len(text) > MAX_CSR:
        raise CertificateError(f"csr is longer than {MAX_CSR} characters", error_code="csr")
    try:
        csr = x509.load_pem_x509_csr(text.encode())
        key = csr.public_key()
        signed = csr.is_signature_valid
    except (ValueError, TypeError, UnsupportedAlgorithm, x509.UnsupportedGeneralNameType) as e:
        raise CertificateError(f"csr cannot be read: {e}", error_code="csr") from None
    if not signed:
        raise CertificateError("the CSR's signature does not verify: it was not made with "
                               "the key it carries", error_code="csr")
    desc = _key_desc(key)
    try:
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        raise CertificateError("the CSR has no subjectAltName: it must name the hub's DNS "
                               "name there", error_code="csr") from None
    except ValueError as e:  # a malformed extension
        raise CertificateError(f"the CSR's extensions cannot be read: {e}",
                               error_code="csr") from None
    names = [normalise_name(n) for n in san.get_values_for_type(x509.DNSName)]
    if len(list(san)) != 1 or len(names) != 1:
        raise CertificateError("the CSR must name exactly one DNS name in its subjectAltName "
                               "(the hub's name), and no addresses or other names",
                               error_code="csr")
    cns = [str(a.value) for a in csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    if any(normalise_name(cn) != names[0] for cn in cns):
        raise CertificateError("the CSR's common name differs from its subjectAltName; leave "
                               "the subject empty or use the same name", error_code="csr")
    return Csr(text, names[0], pubkey_sha256(key), desc)


@dataclass(frozen=True)
class Leaf:
    not_after: float
    fingerprint: str
    serial: str
    issuer: str
    names: list[str]
    pubkey_sha256: str


def leaf_of(chain_pem: str) -> Leaf:
    """The first certificate of a PEM chain, read as the hub reads it (``tlscert``)."""
    try:
        info = tlscert.cert_info(chain_pem)
    except CertificateError as e:
        raise CertificateError(f"the CA's chain cannot be read: {e.message}") from None
    return Leaf(not_after=info.not_after.timestamp(), fingerprint=info.fingerprint,
                serial=info.serial, issuer=info.issuer,
                names=[normalise_name(n) for n in info.names],
                pubkey_sha256=info.pubkey_sha256)


def check_name(name: str) -> str:
    """A public hub name as national assigns it (``add-hub --tls-name``), normalised."""
    n = normalise_name(name)
    labels = n.split(".")
    if (len(n) > 253 or len(labels) < 2
            or not all(1 <= len(lb) <= 63 and lb.replace("-", "").isalnum() and lb.isascii()
                       and not lb.startswith("-") and not lb.endswith("-") for lb in labels)):
        raise BadRequest(f"{name[:80]!r} is not a DNS name like ramu.hub.example.org "
                         "(letters, digits and '-', at least two labels)")
    return n


# ------------------------------------------------------------------------------- replies
@dataclass(frozen=True)
class Reply:
    status: int  # 200 or 202
    response: dict[str, Any]
    message: str
    retry_after_s: int | None = None


def issued_reply(name: str, pem: str, not_after: float) -> Reply:
    return Reply(200, {"state": "issued", "name": name, "certificate": pem,
                       "not_after": iso(not_after)},
                 f"The certificate for {name} is issued; it is valid until {iso(not_after)}.")


def pending_reply(name: str, retry_after_s: float, last_error: str | None) -> Reply:
    n = max(1, math.ceil(retry_after_s))
    msg = (f"The certificate for {name} is being ordered; ask again in {n} s." if not last_error
           else f"The last attempt to get the certificate for {name} failed; it is retried "
                f"when you ask again after {n} s.")
    return Reply(202, {"state": "pending", "retry_after_s": n, "last_error": last_error},
                 msg, n)


# ---------------------------------------------------------------------------- service
class IssuerLike(Protocol):
    def issue(self, csr_pem: bytes, name: str) -> str: ...


def backoff(attempts: int, base: float, cap: float) -> float:
    return float(min(cap, base * 2 ** max(0, attempts - 1)))


@dataclass
class Certificates:
    """Issuance and DNS publishing for the fleet service (one per app)."""

    db: FleetDB
    issuer: IssuerLike | None
    dns: DnsProvider | None
    clock: Callable[[], float] = time.time
    max_parallel: int = MAX_PARALLEL
    _tasks: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    _publishing: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    _publish_retry: dict[str, tuple[float, int]] = field(default_factory=dict)
    _executor: ThreadPoolExecutor | None = None
    closed: bool = False

    def __post_init__(self) -> None:
        self._sem = asyncio.Semaphore(self.max_parallel)

    @property
    def enabled(self) -> bool:
        return self.issuer is not None

    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            # issuance and DNS updates share it: each blocks on the network
            self._executor = ThreadPoolExecutor(self.max_parallel + 2,
                                                thread_name_prefix="fleet-acme")
        return self._executor

    async def _blocking(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._pool(), fn, *args)

    # -- requests -----------------------------------------------------------------------------
    async def request(self, hub_id: str, csr: Csr) -> Reply:
        """The reply to a hub's CSR: its certificate, or 202 while it is being ordered."""
        now = self.clock()
        tls_name = await self.db.read(lambda c: _tls_name(c, hub_id))
        if not tls_name:
            raise Forbidden(f"National has not assigned hub {hub_id} a public name yet: run "
                            f"'appliance fleet set-tls-name --hub-id {hub_id} NAME' on the "
                            "fleet server (or add-hub --tls-name).", error_code="name")
        if csr.name != tls_name:
            raise Forbidden(f"The CSR is for {csr.name}, but hub {hub_id}'s name is "
                            f"{tls_name}: a hub may only get a certificate for its own name.",
                            error_code="name")
        row = await self.db.write(lambda c: _upsert_request(c, hub_id, csr, now))
        if row["state"] == "issued":
            return issued_reply(row["name"], row["certificate"], row["not_after"])
        due = row["next_attempt_at"] <= now
        if due:
            self._kick(hub_id)
        running = hub_id in self._tasks
        wait = RETRY_AFTER_S if (due or running) else row["next_attempt_at"] - now
        return pending_reply(csr.name, wait, row["last_error"])

    def _kick(self, hub_id: str) -> None:
        if self.closed or self.issuer is None or hub_id in self._tasks:
            return
        task = asyncio.create_task(self._work(hub_id), name=f"certificate {hub_id}")
        self._tasks[hub_id] = task

    async def resume(self) -> int:
        """At start-up: carry on with the orders that were pending when the service stopped."""
        if self.issuer is None:
            return 0
        hubs = await self.db.read(lambda c: [r[0] for r in c.execute(
            "SELECT DISTINCT hub_id FROM certificates WHERE state='pending'")])
        for hub_id in hubs:
            self._kick(hub_id)
        return len(hubs)

    async def _work(self, hub_id: str) -> None:
        try:
            while not self.closed:
                row = await self.db.read(
                    functools.partial(_next_due, hub_id=hub_id, now=self.clock()))
                if row is None:
                    return
                async with self._sem:
                    await self._attempt(row)
        except Exception:  # the database failed us: the hub's next request kicks it again
            log.exception("fleet: the certificate worker for hub %s stopped", hub_id)
        finally:
            self._tasks.pop(hub_id, None)

    async def _attempt(self, row: sqlite3.Row) -> None:
        hub_id, name, cid = row["hub_id"], row["name"], row["id"]
        assert self.issuer is not None
        t0 = time.monotonic()
        try:
            chain = await self._blocking(self.issuer.issue, row["csr"].encode(), name)
            leaf = leaf_of(chain)
            if leaf.pubkey_sha256 != row["pubkey_sha256"] or name not in leaf.names:
                raise AcmeError(f"The CA returned a certificate for {leaf.names} with another "
                                f"key than the CSR for {name}; it was not handed out.",
                                error_code="acme")
            if leaf.not_after <= self.clock():
                raise AcmeError(f"The CA returned a certificate for {name} that expired on "
                                f"{iso(leaf.not_after)}: check the fleet server's clock.",
                                error_code="acme")
        except ApplianceError as e:
            await self._failed(row, e.message)
            return
        except Exception as e:  # a bug or an unexpected library error: keep the service up
            log.exception("fleet: ordering the certificate for %s (%s) failed", name, hub_id)
            await self._failed(row, f"unexpected error: {type(e).__name__}: {e}")
            return
        now = self.clock()

        def tx(c: sqlite3.Connection) -> int:
            n = c.execute("UPDATE certificates SET state='issued', certificate=?, not_after=?, "
                          "fingerprint=?, last_error=NULL, attempts=attempts+1, updated_at=? "
                          "WHERE id=?", (chain, leaf.not_after, leaf.fingerprint, now,
                                         cid)).rowcount
            if n:
                audit_tx(c, at=now, username=f"hub:{hub_id}", client=None,
                         action="issue-certificate",
                         detail={"hub_id": hub_id, "name": name, "serial": leaf.serial,
                                 "not_after": iso(leaf.not_after), "issuer": leaf.issuer,
                                 "fingerprint": leaf.fingerprint})
                _prune_issued(c, hub_id)
            return n
        if await self.db.write(tx):
            log.info("fleet: issued a certificate for %s (hub %s, serial %s, valid until %s) "
                     "in %.1f s", name, hub_id, leaf.serial, iso(leaf.not_after),
                     time.monotonic() - t0)
        else:
            log.info("fleet: the certificate for %s (hub %s) was issued but the hub has sent "
                     "a newer CSR meanwhile; dropped", name, hub_id)

    async def _failed(self, row: sqlite3.Row, message: str) -> None:
        now = self.clock()
        attempts = row["attempts"] + 1
        wait = backoff(attempts, BACKOFF_S, BACKOFF_MAX_S)
        log.warning("fleet: could not get the certificate for %s (hub %s), attempt %d; next "
                    "try when the hub asks after %s: %s", row["name"], row["hub_id"], attempts,
                    iso(now + wait), message)
        await self.db.write(lambda c: c.execute(
            "UPDATE certificates SET state='failed', last_error=?, attempts=?, "
            "next_attempt_at=?, updated_at=? WHERE id=?",
            (message[:2000], attempts, now + wait, now, row["id"])))

    # -- DNS names ------------------------------------------------------------------------------
    def publish_soon(self, hub_id: str, name: str, ip: str) -> None:
        """Point ``name`` at ``ip`` in public DNS in the background (skipped while a
        previous failure backs off; the sweep tries again)."""
        if self.dns is None or self.closed or hub_id in self._publishing:
            return
        retry = self._publish_retry.get(hub_id)
        if retry is not None and retry[0] > self.clock():
            return
        self._publishing[hub_id] = asyncio.create_task(self._publish(hub_id, name, ip),
                                                       name=f"publish {hub_id}")

    async def publish_due(self) -> int:
        """Publish every hub whose record is missing or stale (the sweep calls this)."""
        if self.dns is None:
            return 0
        rows = await self.db.read(unpublished)
        for hub_id, name, ip in rows:
            self.publish_soon(hub_id, name, ip)
        return len(rows)

    async def _publish(self, hub_id: str, name: str, ip: str) -> None:
        assert self.dns is not None
        try:
            await self._blocking(self.dns.set_a, name, ip)
        except ApplianceError as e:
            n = self._publish_retry.get(hub_id, (0.0, 0))[1] + 1
            wait = backoff(n, PUBLISH_BACKOFF_S, PUBLISH_BACKOFF_MAX_S)
            self._publish_retry[hub_id] = (self.clock() + wait, n)
            log.warning("fleet: could not publish %s A %s for hub %s (retry in %.0f s): %s",
                        name, ip, hub_id, wait, e.message)
            return
        except Exception:
            self._publish_retry[hub_id] = (self.clock() + PUBLISH_BACKOFF_MAX_S, 1)
            log.exception("fleet: publishing %s A %s failed", name, ip)
            return
        finally:
            self._publishing.pop(hub_id, None)
        self._publish_retry.pop(hub_id, None)
        now = self.clock()
        await self.db.write(lambda c: mark_published_tx(c, hub_id, name, ip, now))
        log.info("fleet: published %s A %s (hub %s)", name, ip, hub_id)

    # -- lifecycle ------------------------------------------------------------------------------
    async def close(self) -> None:
        self.closed = True
        tasks = [*self._tasks.values(), *self._publishing.values()]
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        if self._executor is not None:
            # an order in a thread cannot be interrupted; its row stays pending and is
            # resumed at the next start
            self._executor.shutdown(wait=False, cancel_futures=True)


# ------------------------------------------------------------------------------- SQL
def _tls_name(conn: sqlite3.Connection, hub_id: str) -> str | None:
    row = conn.execute("SELECT tls_name FROM hubs WHERE id=?", (hub_id,)).fetchone()
    return row[0] if row else None


def _upsert_request(conn: sqlite3.Connection, hub_id: str, csr: Csr, now: float
                    ) -> sqlite3.Row:
    """The row for this (hub, name, key), made pending if new or its certificate expired.

    A hub re-sends one CSR until it gets its certificate; a CSR with another key means it
    gave up the previous one, so that one's unfinished order is dropped."""
    conn.execute("DELETE FROM certificates WHERE hub_id=? AND state!='issued' "
                 "AND NOT (name=? AND pubkey_sha256=?)", (hub_id, csr.name, csr.pubkey_sha256))
    conn.execute(
        "INSERT INTO certificates (hub_id, name, pubkey_sha256, csr, state, created_at, "
        "updated_at) VALUES (?,?,?,?,'pending',?,?) ON CONFLICT(hub_id, name, pubkey_sha256) "
        "DO UPDATE SET state='pending', certificate=NULL, not_after=NULL, fingerprint=NULL, "
        "csr=excluded.csr, attempts=0, next_attempt_at=0, last_error=NULL, "
        "updated_at=excluded.updated_at "
        "WHERE certificates.state='issued' AND certificates.not_after <= ?",
        (hub_id, csr.name, csr.pubkey_sha256, csr.pem, now, now, now))
    row: sqlite3.Row = conn.execute(
        "SELECT * FROM certificates WHERE hub_id=? AND name=? AND pubkey_sha256=?",
        (hub_id, csr.name, csr.pubkey_sha256)).fetchone()
    return row


def _next_due(conn: sqlite3.Connection, *, hub_id: str, now: float) -> sqlite3.Row | None:
    row: sqlite3.Row | None = conn.execute(
        "SELECT * FROM certificates WHERE hub_id=? AND state IN ('pending', 'failed') "
        "AND next_attempt_at <= ? ORDER BY updated_at LIMIT 1", (hub_id, now)).fetchone()
    return row


def _prune_issued(conn: sqlite3.Connection, hub_id: str) -> None:
    conn.execute("DELETE FROM certificates WHERE hub_id=? AND state='issued' AND id NOT IN ("
                 "SELECT id FROM certificates WHERE hub_id=? AND state='issued' "
                 "ORDER BY updated_at DESC LIMIT ?)", (hub_id, hub_id, KEEP_ISSUED))


def latest_certificate(conn: sqlite3.Connection, hub_id: str) -> sqlite3.Row | None:
    """The hub's most recent issuance (any state), for its page and ``/api/hubs/{id}``."""
    row: sqlite3.Row | None = conn.execute(
        "SELECT hub_id, name, state, not_after, fingerprint, last_error, attempts, "
        "next_attempt_at, created_at, updated_at FROM certificates WHERE hub_id=? "
        "ORDER BY updated_at DESC LIMIT 1", (hub_id,)).fetchone()
    return row
