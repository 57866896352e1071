"""``check_bundle``: every way the seed's `cat domain.crt intermediate.pem` goes wrong is one clear line."""

from __future__ import annotations

import datetime

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from helpers import pki
from helpers.pki import NOW

from regctl.errors import RegctlError
from regctl.tls import bundle
from regctl.tls.selfsigned import Issued, make_ca

HOST = "registry.example.com"


@pytest.fixture(scope="module")
def chain() -> tuple[Issued, Issued, Issued]:
    root = pki.root()
    middle = pki.intermediate(root)
    return root, middle, pki.leaf(middle, HOST, "*.apps.example.com", "10.0.0.5")


def check(certs: list[Issued], key: Issued, host: str = HOST, now: datetime.datetime = NOW) -> bundle.Bundle:
    return bundle.check_bundle([c.certificate for c in certs], key.key, host, now)


def refusal(certs: list[Issued], key: Issued, host: str = HOST, now: datetime.datetime = NOW) -> str:
    with pytest.raises(RegctlError) as info:
        check(certs, key, host, now)
    return info.value.message


# -- what passes, and the order it is put in -------------------------------------------------------------------------
def test_leaf_first_order_is_kept(chain: tuple[Issued, Issued, Issued]) -> None:
    root, middle, leaf = chain
    result = check([leaf, middle, root], leaf)
    assert result.chain == [leaf.certificate, middle.certificate]  # the root is not sent
    assert (result.top, result.reordered, result.warnings) == (root.certificate, False, [])
    assert result.chain_pem == pki.pem(leaf, middle)
    assert result.top_pem == root.certificate_pem


@pytest.mark.parametrize("order", [[1, 2, 0], [0, 2, 1], [0, 1, 2], [1, 0, 2, 2]])
def test_any_order_is_fixed(chain: tuple[Issued, Issued, Issued], order: list[int]) -> None:
    certs = [chain[i] for i in order]
    result = check(certs, chain[2])
    assert result.chain == [chain[2].certificate, chain[1].certificate]
    assert result.reordered is True


def test_without_the_root_the_top_is_the_intermediate(chain: tuple[Issued, Issued, Issued]) -> None:
    _, middle, leaf = chain
    result = check([middle, leaf], leaf)
    assert result.chain == [leaf.certificate, middle.certificate]
    assert result.top == middle.certificate


def test_a_self_signed_leaf_alone() -> None:
    single = pki.leaf(make_ca("solo"), HOST)
    result = check([single], single)
    assert (result.chain, result.top) == ([single.certificate], single.certificate)


@pytest.mark.parametrize("host", ["registry.example.com", "REGISTRY.example.com.", "ci.apps.example.com", "10.0.0.5"])
def test_host_coverage(chain: tuple[Issued, Issued, Issued], host: str) -> None:
    check([chain[2]], chain[2], host=host)


def test_close_to_expiry_is_a_warning(chain: tuple[Issued, Issued, Issued]) -> None:
    root, middle, _ = chain
    leaf = pki.leaf(middle, HOST, days=20)
    result = check([leaf, middle, root], leaf)
    assert result.warnings == ["the certificate expires in 20 days (2030-02-04): renew it soon"]


# -- refusals --------------------------------------------------------------------------------------------------------
def test_key_of_another_certificate(chain: tuple[Issued, Issued, Issued]) -> None:
    other = Issued(chain[2].certificate, ec.generate_private_key(ec.SECP256R1()))
    assert refusal([chain[2]], other) == "the key does not match the certificate CN=registry.example.com"
    assert refusal([chain[2], chain[1]], other) == "the key does not match any of the certificates given"


def test_a_stray_certificate(chain: tuple[Issued, Issued, Issued]) -> None:
    _, middle, leaf = chain
    stray = pki.root("Unrelated CA")
    assert refusal([leaf, middle, stray], leaf) == (
        "CN=Unrelated CA is not part of the chain of CN=registry.example.com: "
        "CN=Test Intermediate CA is issued by CN=Test Root CA"
    )


def test_a_missing_link(chain: tuple[Issued, Issued, Issued]) -> None:
    root, _, leaf = chain
    assert refusal([leaf, root], leaf) == (
        "CN=Test Root CA is not part of the chain of CN=registry.example.com: "
        "CN=registry.example.com is issued by CN=Test Intermediate CA"
    )


def test_an_issuer_of_the_right_name_but_another_key(chain: tuple[Issued, Issued, Issued]) -> None:
    leaf = chain[2]
    impostor = pki.intermediate(pki.root())  # also "CN=Test Intermediate CA", another key
    assert refusal([leaf, impostor], leaf) == (
        "CN=registry.example.com names CN=Test Intermediate CA as its issuer, "
        "but the signature does not verify with that certificate's key"
    )


def test_host_not_covered(chain: tuple[Issued, Issued, Issued]) -> None:
    assert refusal([chain[2]], chain[2], host="other.example.com") == (
        "the certificate does not cover other.example.com "
        "(its names: registry.example.com, *.apps.example.com, 10.0.0.5)"
    )
    # A wildcard covers exactly one label.
    assert "does not cover a.b.apps.example.com" in refusal([chain[2]], chain[2], host="a.b.apps.example.com")
    assert "does not cover apps.example.com" in refusal([chain[2]], chain[2], host="apps.example.com")


def test_expired(chain: tuple[Issued, Issued, Issued]) -> None:
    _, middle, _ = chain
    old = pki.leaf(middle, HOST, now=NOW - datetime.timedelta(days=400), days=365)
    assert refusal([old, middle], old) == "the certificate expired on 2029-12-11"


def test_not_valid_yet(chain: tuple[Issued, Issued, Issued]) -> None:
    _, middle, _ = chain
    future = pki.leaf(middle, HOST, now=NOW + datetime.timedelta(days=10))
    assert refusal([future, middle], future) == "the certificate is not valid before 2030-01-25 11:55 UTC"


def test_expired_intermediate() -> None:
    root = pki.root()
    middle = pki.intermediate(root, now=NOW - datetime.timedelta(days=100), days=50)
    leaf = pki.leaf(middle, HOST, now=NOW - datetime.timedelta(days=60))
    assert refusal([leaf, middle], leaf) == "the chain's CN=Test Intermediate CA expired on 2029-11-26"


# -- reading PEM -----------------------------------------------------------------------------------------------------
def test_load_certificates_and_keys(chain: tuple[Issued, Issued, Issued]) -> None:
    _, middle, leaf = chain
    assert bundle.load_certificates(pki.pem(leaf, middle).encode(), "x") == [leaf.certificate, middle.certificate]
    assert bundle.key_matches(leaf.certificate, bundle.load_private_key(leaf.key_pem.encode(), "k"))
    with pytest.raises(RegctlError) as info:
        bundle.load_certificates(b"hello", "domain.crt")
    assert (info.value.message, info.value.hint) == (
        "domain.crt: no PEM certificate in it",
        "give a PEM file (-----BEGIN CERTIFICATE-----)",
    )
    with pytest.raises(RegctlError) as info:
        bundle.load_private_key(pki.encrypted_key_pem(leaf).encode(), "domain.key")
    assert info.value.message == "domain.key: the private key is encrypted"
    with pytest.raises(RegctlError) as info:
        bundle.load_private_key(leaf.certificate_pem.encode(), "domain.key")
    assert info.value.message == "domain.key: no PEM private key in it"


def test_days_left_and_names(chain: tuple[Issued, Issued, Issued]) -> None:
    leaf = chain[2].certificate
    assert bundle.days_left(leaf, NOW) == 365
    assert bundle.days_left(leaf, NOW + datetime.timedelta(days=365, seconds=1)) == -1  # expired a second ago
    assert bundle.days_left(leaf, NOW + datetime.timedelta(days=1, seconds=1)) == 363
    assert bundle.names(chain[0].certificate) == []
