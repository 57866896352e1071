"""The ``acme`` section (regctl's extension): defaults, REGISTRY_ACME_* overrides, and every error exactly."""

from __future__ import annotations

import pytest

from regctl.config.load import load_server_config
from regctl.errors import ConfigError

STAGING = "https://acme-staging-v02.api.letsencrypt.org/directory"
BASE = """\
version: 0.1
storage: {inmemory: {}}
http: {addr: ":443", tls: {certificate: /certs/domain.crt, key: /certs/domain.key}}
"""
ACME = """\
acme:
  directory: letsencrypt-staging
  email: ops@example.com
  domains: [Registry.Example.com, registry.example.com, other.example.com.]
  accountdir: /acme
  challengedir: /certs/acme-challenge
  httpaddr: ":80"
  auto: true
"""


def load_acme(path: str | None, **environ: str) -> dict:
    config, warnings = load_server_config(path, environ)
    assert warnings == []
    assert config.acme is not None
    return config.acme.model_dump()


def test_full_section_with_defaults(write) -> None:
    assert load_acme(write(BASE + ACME)) == {
        "directory": STAGING,
        "email": "ops@example.com",
        "domains": ["registry.example.com", "other.example.com"],
        "accountdir": "/acme",
        "challengedir": "/certs/acme-challenge",
        "httpaddr": ":80",
        "redirectport": None,
        "challenge": "http-01",
        "responder": "webroot",  # the httpaddr listener answers
        "httpport": 80,
        "tlsport": 443,
        "eabkid": None,
        "eabhmackey": None,
        "cabundle": None,
        "renewdays": None,
        "auto": True,
        "checkinterval": 43200,
    }


@pytest.mark.parametrize(
    ("lines", "challenge", "responder"),
    [
        ("", "http-01", "standalone"),  # no listener of its own: the renewer answers on :80 while ordering
        ("  challenge: TLS-ALPN-01\n  tlsport: 8443\n", "tls-alpn-01", "standalone"),
        ("  httpaddr: ':80'\n  challengedir: /c\n  challenge: tls-alpn-01\n  tlsport: 8443\n", "tls-alpn-01",
         "standalone"),
    ],
)
def test_responder_default(write, lines: str, challenge: str, responder: str) -> None:
    text = BASE + "acme:\n  directory: https://ca.test/dir\n  domains: [r.test]\n  accountdir: /a\n"
    acme = load_acme(write(text + lines))
    assert (acme["challenge"], acme["responder"], acme["directory"]) == (challenge, responder, "https://ca.test/dir")


def test_empty_section_is_off(write) -> None:
    config, _ = load_server_config(write(BASE + "acme: {auto: false, domains: []}\n"), {})
    assert config.acme is None


def test_whole_section_from_variables() -> None:
    acme = load_acme(
        None,
        REGISTRY_HTTP_TLS_CERTIFICATE="/c.crt",
        REGISTRY_HTTP_TLS_KEY="/c.key",
        REGISTRY_ACME_DIRECTORY="https://pebble:14000/dir",
        REGISTRY_ACME_DOMAINS="[a.test, b.test]",
        REGISTRY_ACME_ACCOUNTDIR="/acme",
        REGISTRY_ACME_CHALLENGEDIR="/challenges",
        REGISTRY_ACME_HTTPADDR=":8080",
        REGISTRY_ACME_HTTPPORT="8081",
        REGISTRY_ACME_EABKID="kid-1",
        REGISTRY_ACME_EABHMACKEY="c2VjcmV0",
        REGISTRY_ACME_CABUNDLE="/pebble.pem",
        REGISTRY_ACME_RENEWDAYS="30",
        REGISTRY_ACME_AUTO="true",
        REGISTRY_ACME_CHECKINTERVAL="1h30m",
    )
    assert acme == {
        "directory": "https://pebble:14000/dir",
        "email": None,
        "domains": ["a.test", "b.test"],
        "accountdir": "/acme",
        "challengedir": "/challenges",
        "httpaddr": ":8080",
        "redirectport": None,
        "challenge": "http-01",
        "responder": "webroot",
        "httpport": 8081,
        "tlsport": 443,
        "eabkid": "kid-1",
        "eabhmackey": "c2VjcmV0",
        "cabundle": "/pebble.pem",
        "renewdays": 30,
        "auto": True,
        "checkinterval": 5400,
    }


def test_variables_override_the_file(write) -> None:
    acme = load_acme(write(BASE + ACME), REGISTRY_ACME_AUTO="false", REGISTRY_ACME_DOMAINS_0="new.example.com")
    assert (acme["auto"], acme["domains"]) == (False, ["new.example.com", "registry.example.com", "other.example.com"])


def test_unknown_variable_is_a_warning(write) -> None:
    config, warnings = load_server_config(write(BASE + ACME), {"REGISTRY_ACME_DOMIANS": "[x.test]"})
    assert config.acme is not None and config.acme.domains[0] == "registry.example.com"
    assert warnings == ["REGISTRY_ACME_DOMIANS: unknown key acme.domians, ignored (did you mean domains?)"]


def test_error_from_a_variable_names_it(write) -> None:
    with pytest.raises(ConfigError) as info:
        load_server_config(write(BASE + ACME), {"REGISTRY_ACME_TLSPORT": "https"})
    assert str(info.value) == "acme.tlsport (from REGISTRY_ACME_TLSPORT): must be a number from 1 to 65535, got 'https'"
    assert info.value.hint == "fix or unset REGISTRY_ACME_TLSPORT"


@pytest.mark.parametrize(
    ("change", "message", "hint"),
    [
        (("  directory: letsencrypt-staging\n", ""), "acme.directory: required",
         "add acme.directory, or set REGISTRY_ACME_DIRECTORY"),
        (("letsencrypt-staging", "letsencrypt-prod"),
         "acme.directory: unknown ACME directory 'letsencrypt-prod': use letsencrypt, letsencrypt-staging or the "
         "directory's https:// URL", None),
        (("  domains: [Registry.Example.com, registry.example.com, other.example.com.]\n", "  domains: []\n"),
         "acme.domains: required", "add acme.domains, or set REGISTRY_ACME_DOMAINS"),
        (("other.example.com.", "'*.example.com'"), "acme.domains.2: wildcard '*.example.com' is not supported",
         "HTTP-01 and TLS-ALPN-01 cannot prove a wildcard: list each name"),
        (("other.example.com.", "'registry example'"), "acme.domains.2: 'registry example' is not a DNS name", None),
        (("  accountdir: /acme\n", ""), "acme.accountdir: required",
         "add acme.accountdir, or set REGISTRY_ACME_ACCOUNTDIR"),
        (('":80"', '"80"'), "acme.httpaddr: missing port in address '80' (expected HOST:PORT, e.g. :5000)", None),
        (('":80"', '"127.0.0.1:443"'), "acme.httpaddr: port 443 is http.addr's already",
         "the challenge listener needs a port of its own, usually :80"),
        (("  challengedir: /certs/acme-challenge\n", ""), "acme.challengedir: required with responder webroot",
         "name the directory for token files (the httpaddr listener serves it)"),
        (("  challengedir: /certs/acme-challenge\n", "  challenge: tls-alpn-01\n  responder: webroot\n"),
         "acme.challengedir: required with responder webroot",
         "name the directory for challenge certificates (the TLS listener of http.addr answers from it)"),
        (("  auto: true\n", "  responder: standalone\n"),
         "acme.responder: standalone cannot answer HTTP-01 while httpaddr listens",
         "use responder: webroot with a challengedir: the httpaddr listener then answers"),
        (("  auto: true\n", "  auto: true\n  challenge: tls-alpn-01\n"),
         "acme.tlsport: port 443 is http.addr's, where the registry listens",
         "answer HTTP-01 with the registry's own listener (httpaddr and responder webroot), or serve the registry "
         "on another port"),
        (('  httpaddr: ":80"\n', "  httpport: 443\n"),
         "acme.httpport: port 443 is http.addr's, where the registry listens",
         "answer HTTP-01 with the registry's own listener (httpaddr and responder webroot), or serve the registry "
         "on another port"),
        (("  auto: true\n", "  httpport: 80.5\n"), "acme.httpport: must be a number from 1 to 65535, got '80.5'",
         None),
        (("  auto: true\n", "  tlsport: 0\n"), "acme.tlsport: must be a number from 1 to 65535, got '0'", None),
        (("  auto: true\n", "  eabkid: kid-1\n"), "acme.eabhmackey: required with acme.eabkid",
         "the CA hands out both: the key id and the HMAC key"),
        (("  auto: true\n", "  renewdays: 0\n"), "acme.renewdays: must be a number from 1 to 3650, got '0'", None),
        (("  auto: true\n", "  checkinterval: 10s\n"), "acme.checkinterval: must be at least 60s, got '10s'", None),
        (("  auto: true\n", "  checkinterval: daily\n"), "acme.checkinterval: invalid duration 'daily'",
         "write seconds or a duration such as 5m, 1h, 90s"),
        (("  auto: true\n", "  challenge: dns-01\n"),
         "acme.challenge: must be one of http-01, tls-alpn-01, got 'dns-01'", None),
        (("  auto: true\n", "  auto: yes please\n"), "acme.auto: value must be a boolean, got 'yes please'",
         "write true or false"),
        (("  auto: true\n", "  emial: x@example.com\n"), "acme.emial: unknown key (did you mean email?)",
         "valid keys under acme: directory, email, domains, accountdir, challengedir, httpaddr, redirectport, "
         "challenge, responder, httpport, tlsport, eabkid, eabhmackey, cabundle, renewdays, auto, checkinterval"),
    ],
)
def test_errors_name_the_key(write, change: tuple[str, str], message: str, hint: str | None) -> None:
    old, new = change
    assert old in ACME
    path = write(BASE + ACME.replace(old, new, 1))
    with pytest.raises(ConfigError) as info:
        load_server_config(path, {})
    assert str(info.value) == message
    assert info.value.hint == (hint or f"fix it in {path}")


def test_without_auto_the_standalone_ports_may_be_the_registrys(write) -> None:
    """`regctl cert issue` answers on them before the server starts; only the renewer would collide."""
    text = BASE + ACME.replace("  auto: true\n", "  challenge: tls-alpn-01\n").replace('  httpaddr: ":80"\n', "")
    acme = load_acme(write(text))
    assert (acme["auto"], acme["challenge"], acme["responder"], acme["tlsport"]) == (False, "tls-alpn-01",
                                                                                     "standalone", 443)


def test_webroot_answers_tls_alpn01_on_the_registrys_own_port(write) -> None:
    """The workers' TLS listener answers (registry.alpn): no port of its own, so it may be http.addr's."""
    text = BASE + ACME.replace('  httpaddr: ":80"\n', "  challenge: tls-alpn-01\n  responder: webroot\n")
    config, _ = load_server_config(write(text), {})
    assert config.acme is not None and config.acme.answers_tls_alpn
    acme = config.acme.model_dump()
    assert (acme["challenge"], acme["responder"], acme["httpaddr"], acme["tlsport"], acme["auto"]) == (
        "tls-alpn-01", "webroot", None, 443, True)
    assert "/certs/acme-challenge" in config.files_read()


def test_webroot_tls_alpn01_needs_the_tls_listener(write) -> None:
    path = write(BASE.replace(", tls: {certificate: /certs/domain.crt, key: /certs/domain.key}", "")
                 + ACME.replace("  auto: true\n", "  challenge: tls-alpn-01\n  responder: webroot\n"))
    with pytest.raises(ConfigError) as info:
        load_server_config(path, {})
    assert str(info.value) == ("acme.responder: webroot answers tls-alpn-01 on the registry's TLS listener, and "
                               "http.tls is not set")
    assert info.value.hint == "add http.tls.certificate and http.tls.key"


def test_auto_needs_tls(write) -> None:
    path = write(BASE.replace(", tls: {certificate: /certs/domain.crt, key: /certs/domain.key}", "") + ACME)
    with pytest.raises(ConfigError) as info:
        load_server_config(path, {})
    assert str(info.value) == "acme.auto: needs http.tls: the certificate and key files to renew"
    assert info.value.hint == "add http.tls.certificate and http.tls.key"


def test_files_read_has_the_challenge_directory_when_the_workers_serve_it(write) -> None:
    config, _ = load_server_config(write(BASE + ACME + "  cabundle: /ca.pem\n"), {})
    # The account key and the CA bundle are the renewer's, which keeps the rights it was started with.
    assert config.files_read() == ["/certs/domain.crt", "/certs/domain.key", "/certs/acme-challenge"]
    config, _ = load_server_config(write(BASE + ACME.replace('  httpaddr: ":80"\n', "")), {})
    assert config.files_read() == ["/certs/domain.crt", "/certs/domain.key"]


def test_redirect_port_for_a_port_mapping(write) -> None:
    assert load_acme(write(BASE + ACME), REGISTRY_ACME_REDIRECTPORT="8443")["redirectport"] == 8443
    with pytest.raises(ConfigError) as info:
        load_server_config(write(BASE + ACME + "  redirectport: 0\n"), {})
    assert str(info.value) == "acme.redirectport: must be a number from 1 to 65535, got '0'"
