"""What the operator reads when ACME fails: directory names, problem documents as one line with a hint."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
from acme import errors as acme_errors
from acme import messages

from regctl.tls.accounts import AccountStore
from regctl.tls.acme_client import DIRECTORIES, AcmeError, AcmeSettings, describe_problem, directory_url, explain, issue

SETTINGS = AcmeSettings(directory="https://ca.test/dir", http_port=8080, tls_port=8443)


def problem(typ: str, detail: str, **extra: object) -> messages.Error:
    return messages.Error.from_json({"type": f"urn:ietf:params:acme:error:{typ}", "detail": detail, **extra})


@pytest.mark.parametrize(("given", "url"), [
    ("letsencrypt", "https://acme-v02.api.letsencrypt.org/directory"),
    ("letsencrypt-staging", "https://acme-staging-v02.api.letsencrypt.org/directory"),
    ("https://ca.internal:14000/dir", "https://ca.internal:14000/dir"),
    ("http://127.0.0.1:4001/directory", "http://127.0.0.1:4001/directory"),
])
def test_directory_url_by_name_or_url(given: str, url: str) -> None:
    assert directory_url(given) == url


@pytest.mark.parametrize("given", ["letsencrypt-prod", "ca.internal/dir", "ftp://ca/dir", "https://", ""])
def test_directory_url_rejects_anything_else_listing_the_names(given: str) -> None:
    with pytest.raises(ValueError, match="unknown ACME directory") as caught:
        directory_url(given)
    assert all(name in str(caught.value) for name in DIRECTORIES)


def test_rate_limit_is_one_line_with_type_and_detail() -> None:
    error = explain(problem("rateLimited", "too many certificates (5) already issued\nfor this exact set"),
                    SETTINGS, "the order")
    assert error.message == ("the CA refused the order: rateLimited: too many certificates (5) already issued "
                             "for this exact set")
    assert "letsencrypt-staging" in (error.hint or "")


def test_subproblems_are_joined_with_their_identifiers_and_give_the_hint() -> None:
    compound = problem("compound", "Cannot issue for 2 identifiers", subproblems=[
        {"type": "urn:ietf:params:acme:error:caa", "detail": "CAA record forbids issuance",
         "identifier": {"type": "dns", "value": "a.example"}},
        {"type": "urn:ietf:params:acme:error:dns", "detail": "NXDOMAIN looking up A for b.example",
         "identifier": {"type": "dns", "value": "b.example"}},
    ])
    error = explain(compound, SETTINGS, "the order")
    assert error.message == (
        "the CA refused the order: compound: Cannot issue for 2 identifiers; "
        "a.example: caa: CAA record forbids issuance; b.example: dns: NXDOMAIN looking up A for b.example"
    )
    assert "CAA" in (error.hint or "")


@pytest.mark.parametrize(("code", "words"), [
    ("caa", "CAA"),
    ("dns", "resolve"),
    ("connection", "port 8080"),
    ("unauthorized", "port 8080"),
    ("incorrectResponse", "port 8080"),
    ("externalAccountRequired", "--acme-eab-kid"),
    ("rateLimited", "rate limit"),
])
def test_each_problem_type_has_a_hint(code: str, words: str) -> None:
    assert words in (explain(problem(code, "x"), SETTINGS, "the order").hint or "")


def test_refused_binding_points_at_the_eab_values() -> None:
    settings = AcmeSettings(directory="https://ca.test/dir", eab_kid="kid", eab_hmac_key="a2V5")
    error = explain(problem("unauthorized", "external account binding JWS verification error"), settings,
                    "the account registration")
    assert error.message == ("the CA refused the account registration: unauthorized: external account binding JWS "
                             "verification error")
    assert "--acme-eab-hmac-key-file" in (error.hint or "")


def test_connection_hint_names_the_tls_port_for_tls_alpn() -> None:
    settings = AcmeSettings(directory="https://ca.test/dir", challenge="tls-alpn-01", tls_port=8443)
    assert "port 8443" in (explain(problem("connection", "x"), settings, "the order").hint or "")


def test_unknown_problem_type_is_shown_whole_without_hint() -> None:
    error = explain(messages.Error.from_json({"type": "https://ca.test/problems/odd", "detail": "odd"}),
                    SETTINGS, "the order")
    assert error.message == "the CA refused the order: https://ca.test/problems/odd: odd"
    assert error.hint is None
    assert describe_problem(messages.Error.from_json({})) == "no details given"


def test_failed_validation_names_domain_challenge_and_problem() -> None:
    authz = messages.AuthorizationResource(
        uri="https://ca.test/authz/1",
        body=messages.Authorization.from_json({
            "identifier": {"type": "dns", "value": "registry.example.com"},
            "status": "invalid",
            "challenges": [{
                "type": "http-01", "url": "https://ca.test/chall/1", "status": "invalid",
                "token": "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA",
                "error": {"type": "urn:ietf:params:acme:error:connection",
                          "detail": "127.0.0.1: Fetching http://registry.example.com/.well-known/acme-challenge/x: "
                                    "Connection refused"},
            }],
        }),
    )
    error = explain(acme_errors.ValidationError([authz]), SETTINGS, "the validation")
    assert error.message == (
        "the CA could not validate registry.example.com (http-01): connection: 127.0.0.1: Fetching "
        "http://registry.example.com/.well-known/acme-challenge/x: Connection refused"
    )
    assert "port 8080" in (error.hint or "")


def test_refused_issuance_shows_the_order_error() -> None:
    error = explain(acme_errors.IssuanceError(problem("badCSR", "key too small")), SETTINGS, "the certificate")
    assert error.message == "the CA refused the certificate: badCSR: key too small"


def test_unreachable_ca_names_the_directory() -> None:
    refused = requests.exceptions.ConnectionError("HTTPSConnectionPool: [Errno 111] Connection refused")
    error = explain(refused, SETTINGS, "the directory request")
    assert error.message == "cannot reach the ACME CA at https://ca.test/dir: connection refused"
    untrusted = requests.exceptions.SSLError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed")
    assert explain(untrusted, SETTINGS, "the order").message == (
        "cannot reach the ACME CA at https://ca.test/dir: its HTTPS certificate is not trusted")
    slow = requests.exceptions.ReadTimeout("read timed out")
    assert explain(slow, SETTINGS, "the order").message == "cannot reach the ACME CA at https://ca.test/dir: timed out"


def test_order_timeout_names_the_timeout() -> None:
    error = explain(acme_errors.TimeoutError(), SETTINGS, "the validation")
    assert error.message == "the CA did not complete the validation within 90 s"


@pytest.mark.parametrize(("settings", "message"), [
    (AcmeSettings(directory="https://ca.test/dir", responder="webroot", challenge="tls-alpn-01"),
     "the webroot responder needs a challenge directory"),
    (AcmeSettings(directory="https://ca.test/dir", responder="webroot"),
     "the webroot responder needs a challenge directory"),
    (AcmeSettings(directory="https://ca.test/dir", eab_kid="kid"),
     "External Account Binding needs both the key id and the HMAC key"),
    (AcmeSettings(directory="https://ca.test/dir", ca_bundle=Path("/nonexistent/ca.pem")),
     "the CA bundle /nonexistent/ca.pem does not exist"),
])
def test_settings_are_checked_before_contacting_the_ca(tmp_path: Path, settings: AcmeSettings, message: str) -> None:
    with pytest.raises(AcmeError) as caught:
        issue(settings, AccountStore(tmp_path / "acme"), ["registry.example.com"])
    assert caught.value.message == message
    assert not (tmp_path / "acme").exists()


def test_no_domains_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(AcmeError, match="no domain"):
        issue(SETTINGS, AccountStore(tmp_path), [" "])
