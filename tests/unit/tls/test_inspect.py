"""``inspect_chain``: what ``regctl cert status`` reports, as data."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import ec
from helpers import pki
from helpers.pki import NOW

from regctl.tls.inspect import inspect_chain


def test_a_good_chain() -> None:
    root = pki.root()
    middle = pki.intermediate(root)
    leaf = pki.leaf(middle, "registry.example.com", "127.0.0.1")
    info = inspect_chain([leaf.certificate, middle.certificate], leaf.key, "registry.example.com", NOW)
    assert info == {
        "subject": "CN=registry.example.com",
        "names": ["registry.example.com", "127.0.0.1"],
        "issuer": "CN=Test Intermediate CA",
        "not_before": "2030-01-15T11:55:00Z",
        "not_after": "2031-01-15T12:00:00Z",
        "days_left": 365,
        "expired": False,
        "host": "registry.example.com",
        "covers_host": True,
        "key_matches": True,
        "chain": [
            {
                "subject": "CN=registry.example.com",
                "issuer": "CN=Test Intermediate CA",
                "not_after": "2031-01-15T12:00:00Z",
                "self_signed": False,
            },
            {
                "subject": "CN=Test Intermediate CA",
                "issuer": "CN=Test Root CA",
                "not_after": "2035-01-14T12:00:00Z",
                "self_signed": False,
            },
        ],
        "chain_ok": True,
    }


def test_problems_show_as_values() -> None:
    root = pki.root()
    middle = pki.intermediate(root)
    leaf = pki.leaf(middle, "registry.example.com")
    wrong_key = ec.generate_private_key(ec.SECP256R1())
    info = inspect_chain([middle.certificate, leaf.certificate], wrong_key, "other.test", NOW)
    assert (info["subject"], info["key_matches"], info["covers_host"], info["chain_ok"]) == (
        "CN=Test Intermediate CA",
        False,
        False,
        False,
    )
    info = inspect_chain([leaf.certificate], None, "registry.example.com", NOW.replace(year=2032))
    assert (info["key_matches"], info["expired"], info["days_left"]) == (None, True, -365)
