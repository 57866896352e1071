"""regctl.yaml's tls.acme: defaults, what is accepted, and one message naming the key for what is not."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from regctl.deploy.instance import (
    ACME_DIRECTORY_NAMES,
    InstanceConfig,
    InstanceLayout,
    dump_config,
    load_config,
    validate_config,
    write_config,
)
from regctl.errors import ConfigError
from regctl.tls.acme_client import DIRECTORIES

HOST = "registry.example.com"


def acme(**values: Any) -> dict[str, Any]:
    return {"host": HOST, "tls": {"mode": "acme", "acme": values}}


def test_defaults() -> None:
    config = validate_config(acme())
    assert config.tls.acme.model_dump() == {
        "directory": "letsencrypt",
        "email": None,
        "domains": [],
        "challenge": "http-01",
        "responder": "standalone",
        "http_port": 80,
        "tls_port": 443,
        "eab_kid": None,
        "ca_bundle": None,
        "renew_days": None,
        "auto": False,
    }


def test_the_directory_names_are_the_clients() -> None:
    assert set(ACME_DIRECTORY_NAMES) == set(DIRECTORIES)


def test_round_trips_through_regctl_yaml(tmp_path: Path) -> None:
    config = validate_config(
        acme(
            directory="https://ca.internal:14000/dir", email="ops@example.com", domains=["r2.example.com"],
            responder="registry", http_port="8080", eab_kid="kid-1", ca_bundle="ca.pem", renew_days=30, auto=True,
        )
    )  # fmt: skip
    assert yaml.safe_load(dump_config(config))["tls"]["acme"]["http_port"] == 8080
    layout = InstanceLayout(tmp_path)
    write_config(layout, config)
    assert load_config(layout) == config


@pytest.mark.parametrize(
    "data",
    [
        acme(directory="letsencrypt-staging"),
        acme(directory="http://127.0.0.1:14000/dir"),
        acme(email="ops+registry@mail.example.com"),
        acme(challenge="tls-alpn-01", tls_port=8443),
        acme(responder="registry", auto=True),
        acme(auto=True),  # the server's renewer answers http-01 on port 80 itself
        acme(challenge="tls-alpn-01", auto=True),  # tls-alpn-01 is answered by the server's renewer itself
        # the registry answers tls-alpn-01 on its own port: 443, or where 443 is forwarded to
        {**acme(challenge="tls-alpn-01", responder="registry"), "port": 443},
        {**acme(challenge="tls-alpn-01", responder="registry", tls_port=5000, auto=True)},
        {"tls": {"mode": "selfsigned", "acme": {"email": "ops@example.com"}}},  # kept while another mode is on
        {"host": "localhost", "tls": {"mode": "none"}},  # the acme checks apply to tls.mode acme only
    ],
)
def test_valid(data: dict[str, Any]) -> None:
    validate_config(data)


@pytest.mark.parametrize(
    ("data", "path", "message"),
    [
        (
            acme(directory="lets-encrypt"),
            "tls.acme.directory",
            "must be letsencrypt or letsencrypt-staging, or a directory URL (https://...), got 'lets-encrypt'",
        ),
        (acme(directory="ftp://ca/dir"), "tls.acme.directory", None),
        (acme(email="ops"), "tls.acme.email", "must be an email address such as ops@example.com, got 'ops'"),
        (acme(email="ops@localhost"), "tls.acme.email", None),
        (
            acme(domains=["*.example.com"]),
            "tls.acme.domains",
            "may not hold wildcards: http-01 and tls-alpn-01 validate single names only, got '*.example.com'",
        ),
        (acme(domains=["10.0.0.1"]), "tls.acme.domains", "must be DNS names, got '10.0.0.1'"),
        (acme(http_port=0), "tls.acme.http_port", "must be between 1 and 65535, got 0"),
        (acme(tls_port="https"), "tls.acme.tls_port", "must be between 1 and 65535, got 'https'"),
        (acme(eab_kid="my kid"), "tls.acme.eab_kid", "must be the key id the CA gave (no spaces), got 'my kid'"),
        (acme(renew_days=0), "tls.acme.renew_days", "must be a number of days from 1 to 365, or null, got 0"),
        (acme(challenge="dns-01"), "tls.acme.challenge", "must be 'http-01' or 'tls-alpn-01', got 'dns-01'"),
        (
            acme(challenge="tls-alpn-01", responder="registry"),
            "tls.acme.tls_port",
            "must be port (5000) with responder registry: the registry answers tls-alpn-01 on its own TLS port, "
            "got 443",
        ),
        ({**acme(challenge="tls-alpn-01", responder="registry", tls_port=443), "port": 8443}, "tls.acme.tls_port",
         None),
        ({**acme(responder="registry", http_port=443), "port": 443}, "tls.acme.http_port", None),
        ({**acme(challenge="tls-alpn-01", auto=True), "port": 443}, "tls.acme.tls_port", None),
        (acme(eab_hmac_key="abc"), "tls.acme.eab_hmac_key", "unknown key"),  # never in regctl.yaml
        (
            {"tls": {"mode": "acme"}},
            "host",
            "must be a DNS name a CA can validate when tls.mode is acme, got 'localhost'",
        ),
        ({**acme(), "host": "192.0.2.10"}, "host", None),
        (
            {**acme(http_port=5000)},
            "tls.acme.http_port",
            "must differ from port (5000): the registry listens there with its own certificate",
        ),
        ({**acme(challenge="tls-alpn-01"), "port": 443}, "tls.acme.tls_port", None),
    ],
)
def test_invalid(data: dict[str, Any], path: str, message: str | None) -> None:
    with pytest.raises(ConfigError) as info:
        validate_config(data)
    assert info.value.path == path
    if message is not None:
        assert info.value.message == f"{path}: {message}"


def test_the_host_error_names_the_flag_without_a_file() -> None:
    with pytest.raises(ConfigError) as info:
        validate_config({"tls": {"mode": "acme"}})
    assert info.value.hint == "give the registry's public name: --domain registry.example.com"


def test_every_instance_shows_the_acme_keys() -> None:
    assert "acme" in yaml.safe_load(dump_config(InstanceConfig()))["tls"]
