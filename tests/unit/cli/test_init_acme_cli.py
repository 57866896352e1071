"""``regctl init --tls acme`` through the real Click group: the flags, the certificate requested right away
(the CA is faked), and what stays when that fails."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from helpers.acme_fakes import issued

from regctl.cli import cli
from regctl.deploy.instance import InstanceLayout, load_config
from regctl.errors import RegctlError
from regctl.tls.acme_client import AcmeSettings, IssuedCertificate

HOST = "registry.example.com"
HMAC = "c2VjcmV0LWhtYWMta2V5LWZyb20tdGhlLWNh"
SUMMARY = (
    f"Instance registry: {HOST}:5000, data in Docker volume regctl-data, delete off, runtime process, TLS acme."
)


def invoke(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, ["init", "--runtime", "process", *args], input=input, catch_exceptions=False)


@pytest.fixture
def orders(monkeypatch: pytest.MonkeyPatch) -> list[tuple[AcmeSettings, tuple[str, ...]]]:
    """Every order placed, answered by a fake CA that issues at once."""
    placed: list[tuple[AcmeSettings, tuple[str, ...]]] = []

    def fake_issue(settings: AcmeSettings, account: Any, domains: Any, progress: Any) -> IssuedCertificate:
        placed.append((settings, tuple(domains)))
        progress(f"ordering for {', '.join(domains)}")
        return issued(*domains)[0]

    monkeypatch.setattr("regctl.tls.acme_client.issue", fake_issue)
    return placed


def test_issues_right_away(tmp_path: Path, orders: list[Any]) -> None:
    result = invoke("--tls", "acme", "--domain", HOST, "--domain", "r2.example.com", "--email", "ops@example.com")
    assert (result.exit_code, result.stdout) == (0, "")
    layout = InstanceLayout(tmp_path)
    new = layout.tls_certificate.read_text()
    assert result.stderr.splitlines() == [
        f"Wrote {tmp_path}/regctl.yaml",
        f"Wrote {tmp_path}/secrets/http-secret (mode 0600)",
        SUMMARY,
        f"Requesting a certificate for {HOST}, r2.example.com from letsencrypt",
        f"  ordering for {HOST}, r2.example.com",
        f"Installed {tmp_path}/certs/domain.crt for {HOST}, r2.example.com, issued by CN=Fake ACME Intermediate, "
        f"valid until {load_not_after(layout):%Y-%m-%d}",
        "Next: regctl cert timer --write /etc/systemd/system",  # Let's Encrypt: nothing for `cert trust` to add
        "Next: regctl up",
    ]
    assert new.startswith("-----BEGIN CERTIFICATE-----")
    config = load_config(layout)
    assert (config.host, config.tls.mode, config.tls.acme.domains, config.tls.acme.email) == (
        HOST, "acme", ["r2.example.com"], "ops@example.com",
    )  # fmt: skip
    [(settings, domains)] = orders
    assert (settings.directory, settings.email, domains) == (
        "https://acme-v02.api.letsencrypt.org/directory", "ops@example.com", (HOST, "r2.example.com"),
    )  # fmt: skip
    assert layout.acme_accounts.stat().st_mode & 0o777 == 0o700


def test_a_failed_order_keeps_the_instance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any) -> IssuedCertificate:
        raise RegctlError(
            "validation failed for registry.example.com: connection: Connection refused",
            "the CA checks HTTP-01 on port 80 of the domain: it must reach this machine's port 80",
        )

    monkeypatch.setattr("regctl.tls.acme_client.issue", refuse)
    result = invoke("--tls", "acme", "--domain", HOST)
    assert result.exit_code == 1
    assert result.stderr.splitlines()[3:] == [
        f"Requesting a certificate for {HOST} from letsencrypt",
        "Error: validation failed for registry.example.com: connection: Connection refused",
        "Hint: the CA checks HTTP-01 on port 80 of the domain: it must reach this machine's port 80",
        "Next: regctl cert issue",
        "Next: regctl cert timer --write /etc/systemd/system",
        "Next: regctl up",
        "The instance is written; `regctl cert issue` tries again once the cause is fixed",
    ]
    assert load_config(InstanceLayout(tmp_path)).tls.mode == "acme"
    assert not InstanceLayout(tmp_path).tls_certificate.exists()


def test_no_issue(tmp_path: Path, orders: list[Any]) -> None:
    result = invoke("--tls", "acme", "--domain", HOST, "--acme-directory", "https://ca.internal/dir", "--no-issue")
    assert result.exit_code == 0
    assert result.stderr.splitlines()[3:] == ["Next: regctl cert issue", "Next: regctl cert trust",
                                              "Next: regctl cert timer --write /etc/systemd/system", "Next: regctl up"]
    assert orders == []


def test_every_acme_flag(tmp_path: Path, orders: list[Any]) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("PEM")
    key_file = tmp_path / "hmac.txt"
    key_file.write_text(f"{HMAC}\n")
    result = invoke(
        "--tls", "acme", "--domain", HOST, "--acme-directory", "letsencrypt-staging", "--acme-challenge", "http-01",
        "--acme-responder", "registry", "--acme-http-port", "8080", "--acme-tls-port", "8443",
        "--acme-eab-kid", "kid-1", "--acme-eab-hmac-key-file", "hmac.txt", "--acme-ca-bundle", "ca.pem",
        "--acme-auto", "--no-issue",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    layout = InstanceLayout(tmp_path)
    assert load_config(layout).tls.acme.model_dump() == {
        "directory": "letsencrypt-staging",
        "email": None,
        "domains": [],
        "challenge": "http-01",
        "responder": "registry",
        "http_port": 8080,
        "tls_port": 8443,
        "eab_kid": "kid-1",
        "ca_bundle": str(bundle),
        "renew_days": None,
        "auto": True,
    }
    assert f"Wrote {layout.acme_eab_hmac} (mode 0600)" in result.stderr.splitlines()
    assert layout.acme_eab_hmac.read_text() == f"{HMAC}\n"
    assert layout.acme_eab_hmac.stat().st_mode & 0o777 == 0o600
    assert "Next: regctl cert timer --write /etc/systemd/system" not in result.stderr  # the server renews itself


def test_auto_answers_with_the_registry(tmp_path: Path) -> None:
    assert invoke("--tls", "acme", "--domain", HOST, "--acme-auto", "--no-issue").exit_code == 0
    assert load_config(InstanceLayout(tmp_path)).tls.acme.responder == "registry"


def test_tls_alpn01_answered_by_the_registry_on_its_own_port(tmp_path: Path) -> None:
    result = invoke("--tls", "acme", "--domain", HOST, "--port", "8443", "--acme-challenge", "tls-alpn-01",
                    "--acme-responder", "registry", "--acme-tls-port", "8443", "--acme-auto", "--no-issue")
    assert result.exit_code == 0, result.stderr
    config = load_config(InstanceLayout(tmp_path))
    assert (config.port, config.tls.acme.challenge, config.tls.acme.responder, config.tls.acme.tls_port) == (
        8443, "tls-alpn-01", "registry", 8443)


def test_hmac_key_from_stdin(tmp_path: Path) -> None:
    args = ["--tls", "acme", "--domain", HOST, "--acme-eab-kid", "kid-1", "--acme-eab-hmac-key-stdin", "--no-issue"]
    assert invoke(*args, input=f"{HMAC}\n").exit_code == 0
    assert InstanceLayout(tmp_path).acme_eab_hmac.read_text() == f"{HMAC}\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--email", "ops@example.com"], "--email, a second --domain and the --acme-* options need --tls acme"),
        (["--domain", HOST, "--domain", "r2.example.com"], None),
        (["--tls", "selfsigned", "--acme-auto"], None),
        (["--tls", "selfsigned", "--no-issue"], "--no-issue is for --tls acme"),
        (
            ["--tls", "acme", "--domain", HOST, "--acme-eab-kid", "kid-1"],
            "External Account Binding needs both --acme-eab-kid and the HMAC key (--acme-eab-hmac-key-file or "
            "--acme-eab-hmac-key-stdin)",
        ),
        (["--tls", "acme", "--domain", HOST, "--acme-eab-hmac-key-stdin"], None),
        (
            ["--tls", "acme", "--domain", HOST, "--acme-eab-kid", "k", "--acme-eab-hmac-key-file", "regctl.yaml",
             "--acme-eab-hmac-key-stdin"],
            "give --acme-eab-hmac-key-file or --acme-eab-hmac-key-stdin, not both",
        ),
        (["--tls", "acme", "--acme-challenge", "dns-01"], None),
    ],
)  # fmt: skip
def test_usage_errors(tmp_path: Path, args: list[str], message: str | None) -> None:
    (tmp_path / "regctl.yaml").touch()  # a file --acme-eab-hmac-key-file may name; nothing else is written
    result = invoke(*args)
    assert result.exit_code == 2
    if message is not None:
        assert result.stderr.splitlines()[-1] == f"Error: {message}"
    assert [p.name for p in tmp_path.iterdir()] == ["regctl.yaml"]


@pytest.mark.parametrize(
    ("args", "error", "hint"),
    [
        (
            ["--tls", "acme"],
            "host: must be a DNS name a CA can validate when tls.mode is acme, got 'localhost'",
            "fix --host",
        ),
        (
            ["--tls", "acme", "--domain", HOST, "--email", "ops"],
            "tls.acme.email: must be an email address such as ops@example.com, got 'ops'",
            "fix --email",
        ),
        (
            ["--tls", "acme", "--domain", HOST, "--acme-directory", "lets-encrypt"],
            "tls.acme.directory: must be letsencrypt or letsencrypt-staging, or a directory URL (https://...), got "
            "'lets-encrypt'",
            "fix --acme-directory",
        ),
        (
            ["--tls", "acme", "--domain", HOST, "--acme-challenge", "tls-alpn-01", "--acme-responder", "registry"],
            "tls.acme.tls_port: must be port (5000) with responder registry: the registry answers tls-alpn-01 on "
            "its own TLS port, got 443",
            "fix --acme-tls-port",
        ),
        (
            ["--tls", "acme", "--domain", HOST, "--acme-eab-kid", "kid-1", "--acme-eab-hmac-key-stdin"],
            "the EAB HMAC key is not base64url (16 or more letters, digits, '-' and '_')",
            "pass the HMAC key exactly as the CA gave it",
        ),
    ],
)
def test_wrong_values_name_the_flag(tmp_path: Path, args: list[str], error: str, hint: str) -> None:
    result = invoke(*args, input="kid-1\n")
    assert (result.exit_code, result.stderr) == (1, f"Error: {error}\nHint: {hint}\n")
    assert list(tmp_path.iterdir()) == []


def load_not_after(layout: InstanceLayout) -> Any:
    from regctl.tls.bundle import load_certificates

    return load_certificates(layout.tls_certificate.read_bytes(), "crt")[0].not_valid_after_utc


def test_only_the_registry_port_open_lets_the_registry_answer_tls_alpn01(tmp_path: Path) -> None:
    result = invoke("--tls", "acme", "--domain", HOST, "--port", "443", "--acme-challenge", "tls-alpn-01", "--no-issue")
    assert result.exit_code == 0, result.stderr
    acme = load_config(InstanceLayout(tmp_path)).tls.acme
    assert (acme.responder, acme.tls_port) == ("registry", 443)


def test_standalone_tls_alpn01_on_the_registry_port_names_the_way_out(tmp_path: Path) -> None:
    result = invoke("--tls", "acme", "--domain", HOST, "--port", "443", "--acme-challenge", "tls-alpn-01",
                    "--acme-responder", "standalone", "--no-issue")
    assert result.exit_code == 1
    assert result.stderr.startswith(
        "Error: tls.acme.tls_port: must differ from port (443): the registry listens there with its own "
        "certificate (or let it answer: responder registry)\n"
    )
