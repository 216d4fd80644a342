"""Order hub certificates from an ACME CA (RFC 8555) with the DNS-01 challenge.

Built on certbot's ``acme`` library, not a hand-written client. ``Issuer.issue(csr_pem,
name)`` takes the hub's CSR (the hub keeps its key), publishes the challenge's TXT record
through the ``DnsProvider``, lets the CA validate, finalizes the order and returns the full
chain PEM. The TXT record is removed whatever happens.

The account key (``[acme] account_key``, default ``<fleet data-dir>/acme-account.pem``) is
an EC P-256 key made on first use, mode 0600. The account is registered once per key; a
CA that already knows the key answers with its account (RFC 8555 7.3.1), which we reuse.

Blocking (HTTP and DNS round trips, polling): the service runs ``issue`` in a thread.
Every failure is an ``AcmeError`` naming the step that failed and, when the CA sent one,
its problem document, so the national team knows where to look.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar, cast

import josepy as jose
import requests
from acme import challenges, client, messages
from acme import errors as acme_errors
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ..config import Config
from ..errors import AcmeError, ConfigError
from .dns import DnsProvider

log = logging.getLogger(__name__)
T = TypeVar("T")

USER_AGENT = "upazila-hub-fleet"
ORDER_TIMEOUT_S = 180.0  # validation and finalization together
NETWORK_TIMEOUT_S = 30


def load_or_make_key(path: Path) -> ec.EllipticCurvePrivateKey:
    """The account key at ``path``; made (EC P-256, PKCS8 PEM, 0600) when absent."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, pem)
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)  # never replace a key another process made meanwhile
        except FileExistsError:
            os.unlink(tmp)
            return load_or_make_key(path)
        os.unlink(tmp)
        log.info("fleet: made the ACME account key %s", path)
        return key
    except OSError as e:
        raise ConfigError(f"cannot read the ACME account key {path}: {e.strerror or e}") \
            from None
    try:
        loaded = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as e:
        raise ConfigError(f"the ACME account key {path} is not an unencrypted PEM key: {e}") \
            from None
    if not isinstance(loaded, ec.EllipticCurvePrivateKey):
        raise ConfigError(f"the ACME account key {path} must be an EC key")
    return loaded


def problem(e: BaseException) -> str:
    """The CA's problem document (type, detail, subproblems) in one line, or the error."""
    if isinstance(e, messages.Error):
        parts = [e.detail or e.description or "no detail"]
        if e.typ:
            parts.append(f"({e.typ})")
        for sub in getattr(e, "subproblems", None) or ():
            ident = getattr(getattr(sub, "identifier", None), "value", "")
            parts.append(f"[{ident}: {sub.detail}]" if ident else f"[{sub.detail}]")
        return " ".join(parts)
    if isinstance(e, acme_errors.ValidationError):
        out = []
        for authzr in e.failed_authzrs:
            for ch in authzr.body.challenges:
                if ch.error is not None:
                    out.append(f"{authzr.body.identifier.value} {ch.chall.typ}: "
                               f"{problem(ch.error)}")
        return "; ".join(out) or "an authorization failed without detail"
    if isinstance(e, acme_errors.IssuanceError):
        return problem(e.error)
    if isinstance(e, acme_errors.TimeoutError):
        return f"the CA did not finish within {ORDER_TIMEOUT_S:g} s"
    if isinstance(e, requests.exceptions.SSLError):
        return (f"TLS to the CA failed ({_short(e)}); [acme] ca_bundle must hold the CA "
                "that signed the ACME server's HTTPS certificate")
    if isinstance(e, requests.exceptions.RequestException):
        return f"cannot reach the CA: {_short(e)}"
    return _short(e) or type(e).__name__


def _short(e: BaseException) -> str:
    s = str(e).strip().splitlines()
    return s[-1][:300] if s else ""


class Issuer:
    """One ACME account at one CA. ``issue`` may run in several threads at once: each order
    gets its own HTTP session and nonces; the directory and account URL are shared."""

    def __init__(self, directory: str, dns: DnsProvider, account_key: Path, *,
                 email: str = "", ca_bundle: str = "",
                 order_timeout_s: float = ORDER_TIMEOUT_S) -> None:
        self.directory_url = directory
        self.dns = dns
        self.account_key_path = account_key
        self.email = email
        self.verify: bool | str = ca_bundle or True
        self.order_timeout_s = order_timeout_s
        self._key: jose.JWKEC | None = None
        self._directory: messages.Directory | None = None
        self._account_url: str | None = None
        self._lock = threading.Lock()  # making the key, registering

    @classmethod
    def from_config(cls, config: Config, dns: DnsProvider) -> Issuer:
        a = config.section("acme")
        key = str(a.get("account_key") or "").strip()
        return cls(str(a["directory"]).strip(), dns,
                   Path(key) if key else config.data_dir / "acme-account.pem",
                   email=str(a.get("email") or "").strip(),
                   ca_bundle=str(a.get("ca_bundle") or "").strip())

    @property
    def account_url(self) -> str | None:
        return self._account_url

    def _step(self, what: str, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except AcmeError:
            raise
        except _ACME_FAILURES as e:
            raise AcmeError(f"ACME {what} failed at {self.directory_url}: {problem(e)}",
                            error_code="acme") from None

    # -- account ---------------------------------------------------------------------------
    def _client(self) -> client.ClientV2:
        """A client for one order, signed in as the account (registered on first use: a CA
        that knows the key already answers with its existing account, RFC 8555 7.3.1)."""
        with self._lock:
            if self._key is None:
                self._key = jose.JWKEC(key=load_or_make_key(self.account_key_path))
            # requests takes a CA bundle path where the library's type says bool
            net = client.ClientNetwork(self._key, alg=jose.ES256,
                                       verify_ssl=cast(bool, self.verify),
                                       user_agent=USER_AGENT, timeout=NETWORK_TIMEOUT_S)
            if self._directory is None:
                self._directory = self._step(
                    "reading the directory",
                    lambda: client.ClientV2.get_directory(self.directory_url, net))
            acme = client.ClientV2(self._directory, net)
            if self._account_url is None:
                reg = messages.NewRegistration.from_data(email=self.email or None,
                                                         terms_of_service_agreed=True)
                try:
                    regr = acme.new_account(reg)
                    self._account_url = regr.uri
                    log.info("fleet: registered ACME account %s", regr.uri)
                except acme_errors.ConflictError as e:  # this key has an account: reuse it
                    self._account_url = e.location
                except _ACME_FAILURES as e:
                    raise AcmeError(f"ACME registering the account failed at "
                                    f"{self.directory_url}: {problem(e)}",
                                    error_code="acme") from None
            net.account = messages.RegistrationResource(uri=self._account_url,
                                                        body=messages.Registration())
            return acme

    # -- issuance ----------------------------------------------------------------------------
    def issue(self, csr_pem: bytes, name: str) -> str:
        """The full chain PEM (leaf first) for ``csr_pem``, whose only name is ``name``."""
        try:
            return self._issue(csr_pem, name)
        except AcmeError as e:
            if "accountDoesNotExist" not in e.message:
                raise
            # the CA forgot the account (a test CA restarted, or it was deactivated):
            # register again, once
            with self._lock:
                self._account_url = None
            return self._issue(csr_pem, name)

    def _answer(self, acme: client.ClientV2, challb: messages.ChallengeBody, key: jose.JWK,
                ident: str) -> None:
        self._step(f"answering the dns-01 challenge for {ident}",
                   lambda: acme.answer_challenge(challb, challb.chall.response(key)))

    def _issue(self, csr_pem: bytes, name: str) -> str:
        acme = self._client()
        key = self._key
        assert key is not None
        orderr = self._step(f"ordering a certificate for {name}",
                            lambda: acme.new_order(csr_pem))
        published: list[tuple[str, str]] = []
        try:
            for authzr in orderr.authorizations:
                if authzr.body.status == messages.STATUS_VALID:
                    continue  # validated recently for this account
                ident = authzr.body.identifier.value
                challb = next((c for c in authzr.body.challenges
                               if isinstance(c.chall, challenges.DNS01)), None)
                if challb is None:
                    raise AcmeError(f"The CA at {self.directory_url} offers no dns-01 "
                                    f"challenge for {ident}; hub certificates need DNS-01.",
                                    error_code="acme")
                record = challb.chall.validation_domain_name(ident)
                value = challb.chall.validation(key)
                published.append((record, value))  # removed even if adding half-failed
                self.dns.set_txt(record, value)  # returns once the primary answers it
                self._answer(acme, challb, key, ident)
            deadline = dt.datetime.now() + dt.timedelta(seconds=self.order_timeout_s)
            done = self._step(f"validating and finalizing the order for {name}",
                              lambda: acme.poll_and_finalize(orderr, deadline))
        finally:
            for record, value in published:
                try:
                    self.dns.remove_txt(record, value)
                except AcmeError as e:  # do not hide the order's own outcome
                    log.warning("fleet: could not remove the challenge record %s: %s",
                                record, e.message)
        pem = done.fullchain_pem
        if not pem or "BEGIN CERTIFICATE" not in pem:
            raise AcmeError(f"The CA at {self.directory_url} finalized the order for {name} "
                            "but returned no certificate.", error_code="acme")
        return str(pem)


_ACME_FAILURES = (acme_errors.Error, messages.Error, requests.exceptions.RequestException,
                  jose.errors.Error, ValueError, KeyError)
