"""``POST /api/certificates`` (#12) against a real fleet service, a real pebble CA and a real
BIND primary: the hub's CSR in, a certificate that a tablet trusting only pebble's root
accepts out, the DNS-01 record gone afterwards, and every refusal the contract lists."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import sqlite3
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509 import verification

from appliance.dhis2.timefmt import iso_z as iso
from appliance.fleet.certs import _upsert_request, parse_csr
from appliance.fleet.db import FleetDB, NewHub
from appliance.signing import sign
from tests.tlsinfra import ZONE, Bind, Pebble

from .conftest import (
    FleetServer,
    HubKey,
    acme_config,
    cert_request,
    fetch_certificate,
    make_csr,
    post_csr,
    serve_fleet,
)

NAME = f"ramu.{ZONE}"
pytestmark = pytest.mark.timeout(120)


def verify_chain(chain_pem: str, root_pem: Path, name: str) -> x509.Certificate:
    """What a tablet does: build a path from the leaf to pebble's root, for this name."""
    certs = x509.load_pem_x509_certificates(chain_pem.encode())
    root = x509.load_pem_x509_certificate(root_pem.read_bytes())
    verifier = (verification.PolicyBuilder().store(verification.Store([root]))
                .build_server_verifier(x509.DNSName(name)))
    verifier.verify(certs[0], certs[1:])  # raises VerificationError otherwise
    return certs[0]


def spki(cert: x509.Certificate) -> bytes:
    return cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)


def all_text(db: FleetDB) -> str:
    """Every value in every table of the fleet DB, as text."""
    def read(c: sqlite3.Connection) -> str:
        out = []
        for (table,) in c.execute("SELECT name FROM sqlite_master WHERE type='table'"):
            out += [repr(tuple(r)) for r in c.execute(f"SELECT * FROM {table}")]
        return "\n".join(out)
    return db.read_sync(read)


def assert_web_message(body: dict[str, Any], status: int, *words: str) -> None:
    assert body["httpStatusCode"] == status, body
    assert body["status"] == "ERROR", body
    for w in words:
        assert w in body["message"], (w, body["message"])


async def test_hub_gets_a_certificate_the_tablet_trusts(acme_server: FleetServer,
                                                        national_dns: Bind,
                                                        pebble: Pebble) -> None:
    server = acme_server
    server.enroll("ramu", tls_name=NAME)
    hub = HubKey.make(NAME)

    status, body, headers = await post_csr(server, "ramu", hub.csr_pem)
    assert status == 202, body
    assert body["response"]["state"] == "pending"
    assert body["response"]["last_error"] is None
    assert int(headers["Retry-After"]) == body["response"]["retry_after_s"] >= 1

    got, _pending = await fetch_certificate(server, "ramu", hub.csr_pem)
    assert got["state"] == "issued" and got["name"] == NAME
    leaf = verify_chain(got["certificate"], pebble.root_pem, NAME)
    assert spki(leaf) == hub.public_der()  # the hub's own key, never sent
    assert leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value \
        .get_values_for_type(x509.DNSName) == [NAME]
    assert got["not_after"] == leaf.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    # the challenge record was removed once the CA had validated
    assert national_dns.query(f"_acme-challenge.{NAME}", "TXT") == []

    # the same CSR again: the same certificate at once, no new order
    status, again, _ = await post_csr(server, "ramu", hub.csr_pem)
    assert status == 200 and again["response"] == got

    # the issuance is audited; the fleet holds no private key anywhere
    audit = server.db.read_sync(lambda c: c.execute(
        "SELECT username, action, detail FROM admin_audit WHERE action='issue-certificate'"
    ).fetchall())
    assert len(audit) == 1 and audit[0]["username"] == "hub:ramu"
    assert orjson.loads(audit[0]["detail"])["name"] == NAME
    assert "PRIVATE KEY" not in all_text(server.db)
    key_pem = hub.key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
    assert key_pem.splitlines()[1] not in all_text(server.db)

    # the account key the fleet made is its own secret
    acct = server.config.data_dir / "acme-account.pem"
    assert oct(acct.stat().st_mode & 0o777) == "0o600"

    # the hub page and the API show the issuance
    status, detail = await server.get_json("/api/hubs/ramu")
    assert detail["tls"]["name"] == NAME and detail["tls"]["url"] == f"https://{NAME}"
    assert detail["tls"]["issuance"]["state"] == "issued"
    assert detail["tls"]["issuance"]["not_after"] == got["not_after"]


async def test_a_new_key_gets_a_new_certificate(acme_server: FleetServer,
                                                pebble: Pebble) -> None:
    """Renewal: the hub's next key gets its own certificate; the old CSR still answers."""
    server = acme_server
    server.enroll("ramu", tls_name=NAME)
    first, second = HubKey.make(NAME), HubKey.make(NAME)
    a, _ = await fetch_certificate(server, "ramu", first.csr_pem)
    b, _ = await fetch_certificate(server, "ramu", second.csr_pem)
    assert a["certificate"] != b["certificate"]
    assert spki(verify_chain(b["certificate"], pebble.root_pem, NAME)) == second.public_der()
    status, body, _ = await post_csr(server, "ramu", first.csr_pem)
    assert status == 200 and body["response"]["certificate"] == a["certificate"]


async def test_refusals(acme_server: FleetServer) -> None:
    server = acme_server
    server.enroll("ramu", tls_name=NAME)
    server.enroll("cox", tls_name=f"cox.{ZONE}")
    server.enroll("nameless")
    hub = HubKey.make(NAME)

    # another hub's name, or a hub national gave no name: 403, nothing ordered
    status, body, _ = await post_csr(server, "cox", hub.csr_pem)
    assert status == 403
    assert_web_message(body, 403, NAME, f"cox.{ZONE}")
    status, body, _ = await post_csr(server, "nameless", HubKey.make(f"x.{ZONE}").csr_pem)
    assert status == 403
    assert_web_message(body, 403, "set-tls-name")

    # a wrong token, a signature over another body, another hub's id in the body
    status, body, _ = await post_csr(server, "ramu", hub.csr_pem, token="not-the-token")
    assert status == 401
    b, h = cert_request("ramu", server.tokens["ramu"], hub.csr_pem)
    h["X-Hub-Signature"] = sign(server.tokens["ramu"], b + b" ")
    status, body, _ = await post_csr(server, "ramu", hub.csr_pem, body=b, headers=h)
    assert status == 401
    assert_web_message(body, 401, "X-Hub-Signature")
    b, h = cert_request("cox", server.tokens["ramu"], hub.csr_pem)  # ramu's token
    h["X-Hub-Id"] = "ramu"
    status, body, _ = await post_csr(server, "ramu", hub.csr_pem, body=b, headers=h)
    assert status == 403
    assert_web_message(body, 403, "may not send")

    # a stale or replayed request
    status, body, _ = await post_csr(server, "ramu", hub.csr_pem, sent_at=time.time() - 3600)
    assert status == 409
    assert_web_message(body, 409, "sent_at")

    # CSRs the fleet will not send to the CA: 400 WebMessages that say why
    rsa_small = rsa.generate_private_key(65537, 1024)
    k = ec.generate_private_key(ec.SECP256R1())
    bad: list[tuple[Any, str]] = [
        ("not a csr", "PEM certificate request"),
        ("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
         "cannot be read"),
        (12, "PEM certificate request"),
        (make_csr(k, [NAME, f"cox.{ZONE}"]), "exactly one DNS name"),
        (make_csr(k, []), "subjectAltName"),
        (make_csr(k, [NAME], cn=f"cox.{ZONE}"), "common name"),
        (make_csr(rsa_small, [NAME]), "2048"),
        (make_csr(ec.generate_private_key(ec.SECP521R1()), [NAME]), "P-256"),
    ]
    for csr, words in bad:
        status, body, _ = await post_csr(server, "ramu", csr)
        assert status == 400, (words, body)
        assert_web_message(body, 400, words)
    # a CSR whose signature was not made by its key
    good = x509.load_pem_x509_csr(hub.csr_pem.encode())
    der = bytearray(good.public_bytes(serialization.Encoding.DER))
    der[-3] ^= 0x01  # inside the signature
    forged = x509.load_der_x509_csr(bytes(der)).public_bytes(serialization.Encoding.PEM)
    status, body, _ = await post_csr(server, "ramu", forged.decode())
    assert status == 400
    assert_web_message(body, 400, "signature")

    # bodies that are not the contract's
    now = iso(time.time())
    for payload, words in [({"hub_id": "ramu", "sent_at": now}, "csr"),
                           ({"sent_at": now, "csr": hub.csr_pem}, "hub_id"),
                           ({"hub_id": "ramu", "sent_at": "yesterday", "csr": hub.csr_pem},
                            "sent_at"),
                           ({"hub_id": "ramu", "csr": hub.csr_pem}, "sent_at"),
                           ([1, 2], "object")]:
        raw = orjson.dumps(payload)
        h = {"Content-Type": "application/json", "X-Hub-Id": "ramu",
             "Authorization": f"Bearer {server.tokens['ramu']}",
             "X-Hub-Signature": sign(server.tokens["ramu"], raw)}
        status, body, _ = await post_csr(server, "ramu", "", body=raw, headers=h)
        assert status == 400, payload
        assert_web_message(body, 400, words)
    raw = b"{not json"
    h = {"Content-Type": "application/json", "X-Hub-Id": "ramu",
         "Authorization": f"Bearer {server.tokens['ramu']}",
         "X-Hub-Signature": sign(server.tokens["ramu"], raw)}
    status, body, _ = await post_csr(server, "ramu", "", body=raw, headers=h)
    assert status == 400

    # nothing was ordered for any of these
    n = server.db.read_sync(lambda c: c.execute("SELECT count(*) FROM certificates")
                            .fetchone()[0])
    assert n == 0


async def test_without_acme_the_fleet_says_so(server: FleetServer) -> None:
    server.enroll("ramu", tls_name=NAME)
    status, body, headers = await post_csr(server, "ramu", HubKey.make(NAME).csr_pem)
    assert status == 503
    assert_web_message(body, 503, "does not issue certificates", "[acme] directory")
    # still authenticated first: a stranger learns nothing
    status, body, _ = await post_csr(server, "ramu", HubKey.make(NAME).csr_pem, token="x")
    assert status == 401


def test_acme_without_dns_refuses_to_start(tmp_path: Path) -> None:
    from appliance.errors import ConfigError
    from appliance.fleet.web import create_app

    cfg = acme_config(tmp_path / "data", None, None, directory="https://127.0.0.1:1/dir")
    with FleetDB(cfg.data_dir / "fleet.db") as db, pytest.raises(ConfigError, match="dns"):
        create_app(cfg, db)


async def test_pending_orders_resume_at_start_up(tmp_path: Path, national_dns: Bind,
                                                 pebble: Pebble) -> None:
    """A fleet stopped mid-order carries on when it starts again."""
    cfg = acme_config(tmp_path / "data", national_dns, pebble)
    hub = HubKey.make(NAME)
    with FleetDB(cfg.data_dir / "fleet.db") as db:
        db.add_hubs([NewHub("ramu", tls_name=NAME)])
        db.write_sync(lambda c: _upsert_request(c, "ramu", parse_csr(hub.csr_pem), time.time()))
    async with serve_fleet(cfg) as server:
        deadline = time.monotonic() + 60
        while True:
            row = server.db.read_sync(lambda c: c.execute(
                "SELECT state, certificate, last_error FROM certificates").fetchone())
            if row["state"] == "issued":
                break
            assert row["state"] == "pending", row["last_error"]
            assert time.monotonic() < deadline
            await asyncio.sleep(0.1)
        verify_chain(row["certificate"], pebble.root_pem, NAME)


async def test_short_lived_certificates(tmp_path: Path, national_dns: Bind) -> None:
    """pebble's certificateValidityPeriod (the renewal tests' short-lived certificates);
    once one has expired, the same CSR is ordered again."""
    from tests.tlsinfra import run_pebble

    with run_pebble(tmp_path, dns_server=national_dns.server, validity_s=3600) as peb:
        async with serve_fleet(acme_config(tmp_path / "data", national_dns, peb)) as server:
            server.enroll("ramu", tls_name=NAME)
            hub = HubKey.make(NAME)
            got, _ = await fetch_certificate(server, "ramu", hub.csr_pem)
            leaf = verify_chain(got["certificate"], peb.root_pem, NAME)
            life = leaf.not_valid_after_utc - leaf.not_valid_before_utc
            assert dt.timedelta(minutes=50) < life <= dt.timedelta(hours=1, seconds=1)
            # once it has expired (as far as national knows), the same CSR is ordered again
            server.db.write_sync(lambda c: c.execute(
                "UPDATE certificates SET not_after=?", (time.time() - 1,)))
            status, body, _ = await post_csr(server, "ramu", hub.csr_pem)
            assert status == 202, body
            again, _ = await fetch_certificate(server, "ramu", hub.csr_pem)
            assert again["certificate"] != got["certificate"]
            verify_chain(again["certificate"], peb.root_pem, NAME)


def test_parse_csr_keeps_public_material_only() -> None:
    hub = HubKey.make(NAME.upper() + ".")  # names are compared normalised
    csr = parse_csr(hub.csr_pem)
    assert csr.name == NAME and csr.key_desc == "EC P-256"
    assert "PRIVATE" not in csr.pem
    assert csr.pubkey_sha256 == hashlib.sha256(hub.public_der()).hexdigest()
    rsa_ok = parse_csr(make_csr(rsa.generate_private_key(65537, 2048), [NAME]))
    assert rsa_ok.key_desc == "RSA 2048"
