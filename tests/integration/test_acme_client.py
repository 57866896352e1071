"""regctl.tls.acme_client against a real ACME CA: Debian's Pebble with real HTTP-01 and TLS-ALPN-01 validation.

pebble-challtestsrv resolves every name to 127.0.0.1, and Pebble validates on the test's own ports
(``pebble.http_port`` / ``pebble.tls_port``), where regctl's responders listen for the time of the order.
"""

from __future__ import annotations

import datetime
import functools
import http.server
import json
import socket
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from cryptography.x509.verification import PolicyBuilder, Store
from helpers.certs import cert_pem, make_ca
from helpers.pebble import Pebble, PebbleFactory
from helpers.pebble_fixtures import EAB_KID
from helpers.threaded import serving_in_thread

from regctl.tls.accounts import AccountStore
from regctl.tls.acme_client import AcmeError, AcmeSettings, IssuedCertificate, issue, renewal_window

DOMAIN = "registry.acme.test"


def settings(pebble: Pebble, **overrides: object) -> AcmeSettings:
    values: dict = {"directory": pebble.directory_url, "email": "ops@example.com", "http_port": pebble.http_port,
                    "tls_port": pebble.tls_port, "bind": "127.0.0.1", "ca_bundle": pebble.ca_bundle,
                    "timeout": 60.0}
    return AcmeSettings(**{**values, **overrides})


def assert_served_chain(issued: IssuedCertificate, root_pem: str, *domains: str) -> x509.Certificate:
    """The chain verifies against Pebble's root for every name, like a TLS client checks it, and matches the key."""
    leaf, *intermediates = x509.load_pem_x509_certificates(issued.fullchain_pem.encode())
    assert intermediates, "the fullchain carries the intermediate"
    store = Store([x509.load_pem_x509_certificate(root_pem.encode())])
    for domain in domains:
        verifier = PolicyBuilder().store(store).build_server_verifier(x509.DNSName(domain))
        verifier.verify(leaf, intermediates)
    key = load_pem_private_key(issued.key_pem.encode(), None)
    assert key.public_key() == leaf.public_key()
    assert (issued.not_before, issued.not_after) == (leaf.not_valid_before_utc, leaf.not_valid_after_utc)
    assert issued.not_before.tzinfo is not None
    return leaf


@contextmanager
def serving(directory: Path, port: int) -> Iterator[None]:
    """What the registry's challenge listener does for webroot: serve ``directory`` at /.well-known/acme-challenge/."""
    root = directory.parent.parent
    assert directory == root / ".well-known" / "acme-challenge"
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None  # type: ignore[attr-defined]
    with serving_in_thread(http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)):
        yield


def test_http01_standalone_issues_a_chain_that_verifies_for_every_name(pebble: Pebble, tmp_path: Path) -> None:
    lines: list[str] = []
    account = AccountStore(tmp_path / "secrets" / "acme")
    issued = issue(settings(pebble, bind=""), account, [DOMAIN, f"www.{DOMAIN}"], progress=lines.append)

    leaf = assert_served_chain(issued, pebble.root_pem(), DOMAIN, f"www.{DOMAIN}")
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sorted(names.get_values_for_type(x509.DNSName)) == [DOMAIN, f"www.{DOMAIN}"]
    assert isinstance(load_pem_private_key(issued.key_pem.encode(), None), ec.EllipticCurvePrivateKey)
    assert lines[0] == f"registering account ops@example.com at {pebble.directory_url}"
    assert lines[1] == f"ordering for {DOMAIN}, www.{DOMAIN}"
    assert f"answering http-01 for {DOMAIN} on :{pebble.http_port}" in lines
    assert lines[-2:] == ["finalizing", f"issued, valid until {issued.not_after:%Y-%m-%d %H:%M} UTC"]
    # the account is kept private; nothing else is written
    assert stat.S_IMODE(account.path.stat().st_mode) == 0o700
    assert stat.S_IMODE(account.key_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(account.registrations_path.stat().st_mode) == 0o600
    assert sorted(p.name for p in account.path.iterdir()) == ["account.key", "accounts.json"]
    # the responder listened only for the time of the order
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", pebble.http_port), timeout=1).close()


def test_second_issue_reuses_the_account(pebble: Pebble, tmp_path: Path) -> None:
    account = AccountStore(tmp_path / "acme")
    issue(settings(pebble), account, [DOMAIN])
    key_pem = account.key_path.read_bytes()
    uri = account.registration(pebble.directory_url)
    assert uri and uri.startswith(pebble.directory_url.removesuffix("/dir"))

    lines: list[str] = []
    issued = issue(settings(pebble), account, [DOMAIN], progress=lines.append)
    assert_served_chain(issued, pebble.root_pem(), DOMAIN)
    assert not [line for line in lines if "account" in line]
    assert account.registration(pebble.directory_url) == uri
    assert account.key_path.read_bytes() == key_pem


def test_http01_webroot_served_by_another_listener(pebble: Pebble, tmp_path: Path) -> None:
    challenge_dir = tmp_path / "www" / ".well-known" / "acme-challenge"
    challenge_dir.mkdir(parents=True)
    with serving(challenge_dir, pebble.http_port):
        issued = issue(settings(pebble, responder="webroot", challenge_dir=challenge_dir, key_type="rsa2048"),
                       AccountStore(tmp_path / "acme"), [DOMAIN])
    assert_served_chain(issued, pebble.root_pem(), DOMAIN)
    key = load_pem_private_key(issued.key_pem.encode(), None)
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048
    assert list(challenge_dir.iterdir()) == []  # token files removed


def test_tls_alpn01_standalone(pebble: Pebble, tmp_path: Path) -> None:
    lines: list[str] = []
    issued = issue(settings(pebble, challenge="tls-alpn-01"), AccountStore(tmp_path / "acme"),
                   [DOMAIN, f"mirror.{DOMAIN}"], progress=lines.append)
    assert_served_chain(issued, pebble.root_pem(), DOMAIN, f"mirror.{DOMAIN}")
    assert f"answering tls-alpn-01 for {DOMAIN} on 127.0.0.1:{pebble.tls_port}" in lines


def test_nothing_answering_the_challenge_is_a_connection_error(pebble: Pebble, tmp_path: Path) -> None:
    challenge_dir = tmp_path / "not-served"
    with pytest.raises(AcmeError) as caught:
        issue(settings(pebble, responder="webroot", challenge_dir=challenge_dir), AccountStore(tmp_path / "acme"),
              [DOMAIN])
    error = caught.value
    assert error.message.startswith(f"the CA could not validate {DOMAIN} (http-01): connection: ")
    assert "\n" not in error.message
    assert str(challenge_dir) in (error.hint or "")
    assert list(challenge_dir.iterdir()) == []


def test_domain_that_does_not_resolve_says_so(pebble: Pebble, tmp_path: Path) -> None:
    with pebble.resolving_nothing(), pytest.raises(AcmeError) as caught:
        issue(settings(pebble), AccountStore(tmp_path / "acme"), [f"nowhere.{DOMAIN}"])
    error = caught.value
    assert error.message.startswith(f"the CA could not validate nowhere.{DOMAIN} (http-01): ")
    assert "could not resolve" in error.message
    assert error.hint == "the domain must resolve in public DNS (A/AAAA records) to this machine's address"


def test_standalone_port_taken_is_a_clear_error(pebble: Pebble, tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", pebble.http_port)), pytest.raises(AcmeError) as caught:
        issue(settings(pebble), AccountStore(tmp_path / "acme"), [DOMAIN])
    assert caught.value.message == (
        f"cannot listen on 127.0.0.1:{pebble.http_port} for the HTTP-01 challenge: address already in use")
    assert "webroot" in (caught.value.hint or "")


def test_untrusted_ca_certificate_names_the_directory(pebble: Pebble, tmp_path: Path) -> None:
    other_ca = tmp_path / "other-ca.pem"
    other_ca.write_bytes(cert_pem(make_ca("not pebble's").cert))
    with pytest.raises(AcmeError) as caught:
        issue(settings(pebble, ca_bundle=other_ca), AccountStore(tmp_path / "acme"), [DOMAIN])
    assert caught.value.message == (
        f"cannot reach the ACME CA at {pebble.directory_url}: its HTTPS certificate is not trusted")


def test_renewal_window_without_ari_is_none(pebble: Pebble, tmp_path: Path) -> None:
    assert "renewalInfo" not in pebble.directory()  # Pebble 2.4 offers no ARI
    account = AccountStore(tmp_path / "acme")
    issued = issue(settings(pebble), account, [DOMAIN])
    assert renewal_window(settings(pebble), account, issued.fullchain_pem.encode()) is None


def test_eab_required(pebble_eab: Pebble, tmp_path: Path) -> None:
    account = AccountStore(tmp_path / "acme")
    with pytest.raises(AcmeError) as caught:
        issue(settings(pebble_eab), account, [DOMAIN])
    assert caught.value.message == f"the CA at {pebble_eab.directory_url} requires External Account Binding"
    assert "--acme-eab-kid" in (caught.value.hint or "")
    assert account.registration(pebble_eab.directory_url) is None

    with pytest.raises(AcmeError) as wrong:
        issue(settings(pebble_eab, eab_kid=EAB_KID, eab_hmac_key="d3Jvbmcta2V5LW9mLTMyLWJ5dGVzLWxvbmctZW5vdWdo"),
              account, [DOMAIN])
    assert wrong.value.message.startswith("the CA refused the account registration: unauthorized: ")
    assert "--acme-eab-hmac-key" in (wrong.value.hint or "")
    with pytest.raises(AcmeError, match="the EAB HMAC key is not base64url"):
        issue(settings(pebble_eab, eab_kid=EAB_KID, eab_hmac_key="abcde"), account, [DOMAIN])

    hmac_key = pebble_eab.eab[EAB_KID]
    issued = issue(settings(pebble_eab, eab_kid=EAB_KID, eab_hmac_key=hmac_key), account, [DOMAIN])
    assert_served_chain(issued, pebble_eab.root_pem(), DOMAIN)
    saved = json.loads(account.registrations_path.read_text())
    assert saved[pebble_eab.directory_url]["email"] == "ops@example.com"


def test_ca_stopped_then_restarted(pebble_factory: PebbleFactory, tmp_path: Path) -> None:
    pebble = pebble_factory()
    account = AccountStore(tmp_path / "acme")
    first = issue(settings(pebble), account, [DOMAIN])
    pebble.stop()
    try:
        with pytest.raises(AcmeError) as caught:
            issue(settings(pebble), account, [DOMAIN])
        assert caught.value.message == f"cannot reach the ACME CA at {pebble.directory_url}: connection refused"
        assert renewal_window(settings(pebble), account, first.fullchain_pem.encode()) is None
    finally:
        pebble.start()
    # A restarted Pebble has forgotten the account (and has a new root): regctl registers the same key again.
    old_uri = account.registration(pebble.directory_url)
    lines: list[str] = []
    issued = issue(settings(pebble), account, [DOMAIN], progress=lines.append)
    assert lines[0] == f"the CA no longer knows account {old_uri}; registering again"
    assert account.registration(pebble.directory_url) not in (None, old_uri)
    assert_served_chain(issued, pebble.root_pem(), DOMAIN)
    assert issued.not_after > datetime.datetime.now(datetime.UTC)
