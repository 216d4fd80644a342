"""National's DNS providers and the ACME issuer (#12) against real BIND and pebble: RFC 2136
with TSIG, the command hook (a script calling nsupdate, as a provider's API client would),
and the messages the national team gets when something is wrong."""

from __future__ import annotations

import asyncio
import stat
import time
from pathlib import Path

import pytest

from appliance.errors import AcmeError
from appliance.fleet.acme_issuer import Issuer
from appliance.fleet.dns import CommandHook, Rfc2136, provider_from_config
from tests.tlsinfra import ZONE, Bind, Pebble, free_port

from .conftest import HubKey, acme_config, post_csr, serve_fleet

NAME = f"ramu.{ZONE}"
CHALLENGE = f"_acme-challenge.{NAME}"


def rfc2136(bind: Bind, **over: str) -> Rfc2136:
    kw = {"tsig_name": bind.tsig_name, "tsig_secret": bind.tsig_secret, **over}
    return Rfc2136(bind.server, ZONE, **kw)


def test_rfc2136_txt_and_a_records(national_dns: Bind) -> None:
    dns = rfc2136(national_dns)
    dns.set_txt(CHALLENGE, "first-value")
    dns.set_txt(CHALLENGE, "second-value")  # a second order for the name: both answer
    assert national_dns.query(CHALLENGE, "TXT") == ["first-value", "second-value"]
    dns.remove_txt(CHALLENGE, "first-value")
    assert national_dns.query(CHALLENGE, "TXT") == ["second-value"]
    dns.remove_txt(CHALLENGE, "second-value")
    assert national_dns.query(CHALLENGE, "TXT") == []
    dns.set_a(NAME, "10.77.0.1")
    dns.set_a(NAME, "10.77.0.2")  # replaced, not added
    assert national_dns.query(NAME, "A") == ["10.77.0.2"]
    assert national_dns.tsig_secret not in repr(dns)


def test_rfc2136_failures_say_what_to_check(national_dns: Bind) -> None:
    wrong_key = rfc2136(national_dns, tsig_secret="d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXk=")
    with pytest.raises(AcmeError, match="TSIG|NOTAUTH") as e:
        wrong_key.set_a(NAME, "10.77.0.1")
    assert "tsig" in e.value.message.lower()
    unsigned = Rfc2136(national_dns.server, ZONE)
    with pytest.raises(AcmeError, match="REFUSED"):
        unsigned.set_a(NAME, "10.77.0.1")
    other_zone = Rfc2136(national_dns.server, "example.org", tsig_name=national_dns.tsig_name,
                         tsig_secret=national_dns.tsig_secret)
    with pytest.raises(AcmeError, match="NOTAUTH|not authoritative"):
        other_zone.set_a("ramu.example.org", "10.77.0.1")
    nobody = Rfc2136(f"127.0.0.1:{free_port()}", ZONE, tsig_name="k", tsig_secret="a2V5")
    with pytest.raises(AcmeError, match="Could not reach the DNS primary"):
        nobody.set_a(NAME, "10.77.0.1")
    assert national_dns.query(NAME, "A") == []


def nsupdate_hook(tmp_path: Path, bind: Bind) -> tuple[Path, Path]:
    """A hook as a DNS provider's client would be: it logs its arguments and updates BIND
    with nsupdate. While ``<hook>.fail`` exists it fails, as an API that is down would."""
    log = tmp_path / "hook.log"
    hook = tmp_path / "dns-hook"
    hook.write_text(f"""#!/bin/sh
echo "$@" >> {log}
if [ -e {hook}.fail ]; then echo "provider API: 503 try later" >&2; exit 3; fi
case "$1" in
  set-txt) op="update add $2 60 TXT \\"$3\\"" ;;
  del-txt) op="update delete $2 TXT \\"$3\\"" ;;
  set-a) op="update delete $2 A
update add $2 300 A $3" ;;
  *) echo "unknown action $1" >&2; exit 2 ;;
esac
printf 'server {bind.listen} {bind.port}\\nzone {bind.zone}\\n%s\\nsend\\n' "$op" \\
  | nsupdate -y hmac-sha256:{bind.tsig_name}:{bind.tsig_secret}
""")
    hook.chmod(stat.S_IRWXU)
    return hook, log


def test_command_hook(tmp_path: Path, national_dns: Bind) -> None:
    hook, log = nsupdate_hook(tmp_path, national_dns)
    dns = CommandHook(str(hook), check_server=national_dns.server)
    dns.set_txt(CHALLENGE, "v1")
    assert national_dns.query(CHALLENGE, "TXT") == ["v1"]
    dns.remove_txt(CHALLENGE, "v1")
    dns.set_a(NAME, "10.77.0.9")
    assert national_dns.query(CHALLENGE, "TXT") == []
    assert national_dns.query(NAME, "A") == ["10.77.0.9"]
    assert log.read_text().splitlines() == [f"set-txt {CHALLENGE} v1", f"del-txt {CHALLENGE} v1",
                                            f"set-a {NAME} 10.77.0.9"]
    (tmp_path / "dns-hook.fail").touch()
    with pytest.raises(AcmeError, match="exit 3") as e:
        dns.set_a(NAME, "10.77.0.10")
    assert e.value.message.endswith("provider API: 503 try later")
    with pytest.raises(AcmeError, match="Cannot run the DNS hook"):
        CommandHook(str(tmp_path / "missing")).set_a(NAME, "10.77.0.1")
    slow = tmp_path / "slow-hook"
    slow.write_text("#!/bin/sh\nsleep 5\n")
    slow.chmod(stat.S_IRWXU)
    t0 = time.monotonic()
    with pytest.raises(AcmeError, match="did not finish"):
        CommandHook(str(slow), timeout=0.5).set_a(NAME, "10.77.0.1")
    assert time.monotonic() - t0 < 4


def test_provider_from_config(tmp_path: Path, national_dns: Bind) -> None:
    assert provider_from_config(acme_config(tmp_path, None, None)) is None
    assert isinstance(provider_from_config(acme_config(tmp_path, national_dns, None)), Rfc2136)
    hook = provider_from_config(acme_config(tmp_path, national_dns, None, dns_hook="/bin/true"))
    assert isinstance(hook, CommandHook)


async def test_issuance_through_the_hook_with_backoff(tmp_path: Path, national_dns: Bind,
                                                      pebble: Pebble) -> None:
    """A failing provider: 202 with its reason, retried with backoff when the hub asks again
    after Retry-After; then issued, and the hook was asked to remove the record."""
    hook, log = nsupdate_hook(tmp_path, national_dns)
    (tmp_path / "dns-hook.fail").touch()
    cfg = acme_config(tmp_path / "data", national_dns, pebble, dns_hook=str(hook))
    async with serve_fleet(cfg) as server:
        server.enroll("ramu", tls_name=NAME)
        hub = HubKey.make(NAME)
        status, body, _ = await post_csr(server, "ramu", hub.csr_pem)
        assert status == 202
        deadline = time.monotonic() + 30
        while body["response"]["last_error"] is None:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.1)
            status, body, headers = await post_csr(server, "ramu", hub.csr_pem)
            assert status == 202
        err = body["response"]["last_error"]
        assert "provider API: 503 try later" in err and "set-txt" in err
        assert body["response"]["retry_after_s"] >= 50  # backing off: a minute
        assert int(headers["Retry-After"]) == body["response"]["retry_after_s"]
        # asking again before the backoff is over does not order again
        tries = log.read_text().count("set-txt")
        status, body, _ = await post_csr(server, "ramu", hub.csr_pem)
        assert status == 202 and log.read_text().count("set-txt") == tries

        (tmp_path / "dns-hook.fail").unlink()
        server.clock.offset = 61  # a minute later
        status, body, _ = await post_csr(server, "ramu", hub.csr_pem, sent_at=server.clock())
        assert status == 202
        deadline = time.monotonic() + 30
        while status != 200:
            assert time.monotonic() < deadline, body
            await asyncio.sleep(0.2)
            status, body, _ = await post_csr(server, "ramu", hub.csr_pem,
                                             sent_at=server.clock())
        assert body["response"]["name"] == NAME
    lines = log.read_text().splitlines()
    assert any(x.startswith(f"del-txt {CHALLENGE} ") for x in lines)
    assert national_dns.query(CHALLENGE, "TXT") == []


async def test_issuer_errors_name_the_step(tmp_path: Path, national_dns: Bind,
                                           pebble: Pebble) -> None:
    dns = rfc2136(national_dns)
    csr = HubKey.make(NAME).csr_pem.encode()
    no_ca = Issuer(f"https://127.0.0.1:{free_port()}/dir", dns, tmp_path / "a.pem")
    with pytest.raises(AcmeError, match="reading the directory.*cannot reach the CA"):
        await asyncio.to_thread(no_ca.issue, csr, NAME)
    untrusted = Issuer(pebble.directory, dns, tmp_path / "a.pem")  # system CAs only
    with pytest.raises(AcmeError, match="ca_bundle"):
        await asyncio.to_thread(untrusted.issue, csr, NAME)
    # a name outside national's zone: the DNS update is refused, and says so
    elsewhere = HubKey.make("ramu.example.org").csr_pem.encode()
    issuer = Issuer(pebble.directory, dns, tmp_path / "a.pem", ca_bundle=str(pebble.ca_bundle))
    with pytest.raises(AcmeError, match="NOTZONE.*not inside the zone"):
        await asyncio.to_thread(issuer.issue, elsewhere, "ramu.example.org")
    # the account key was made once, 0600, and is reused
    key = tmp_path / "a.pem"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    first = key.read_bytes()
    chain = await asyncio.to_thread(issuer.issue, csr, NAME)
    assert "BEGIN CERTIFICATE" in chain and key.read_bytes() == first
    again = Issuer(pebble.directory, dns, key, ca_bundle=str(pebble.ca_bundle))
    await asyncio.to_thread(again.issue, csr, NAME)
    assert again.account_url == issuer.account_url  # the CA knew the key: same account


async def test_validation_failure_carries_the_cas_problem(tmp_path: Path, pebble: Pebble,
                                                          national_dns: Bind) -> None:
    """The TXT record goes to a server pebble does not ask: the CA's own problem detail
    reaches the hub's last_error."""
    other = tmp_path / "other"
    other.mkdir()
    from tests.tlsinfra import run_bind

    with run_bind(other, zone=ZONE, port=free_port()) as elsewhere:
        cfg = acme_config(tmp_path / "data", elsewhere, pebble)
        async with serve_fleet(cfg) as server:
            server.enroll("ramu", tls_name=NAME)
            hub = HubKey.make(NAME)
            deadline = time.monotonic() + 30
            while True:
                status, body, _ = await post_csr(server, "ramu", hub.csr_pem)
                assert status == 202
                if body["response"]["last_error"]:
                    break
                assert time.monotonic() < deadline
                await asyncio.sleep(0.2)
        assert elsewhere.query(CHALLENGE, "TXT") == []  # removed after the failed validation
    err = body["response"]["last_error"]
    assert "validating" in err and "dns-01" in err and "unauthorized" in err, err


def test_account_key_must_be_ec(tmp_path: Path, national_dns: Bind, pebble: Pebble) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from appliance.errors import ConfigError

    key = tmp_path / "rsa.pem"
    key.write_bytes(rsa.generate_private_key(65537, 2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    issuer = Issuer(pebble.directory, rfc2136(national_dns), key,
                    ca_bundle=str(pebble.ca_bundle))
    with pytest.raises(ConfigError, match="EC key"):
        issuer.issue(HubKey.make(NAME).csr_pem.encode(), NAME)
