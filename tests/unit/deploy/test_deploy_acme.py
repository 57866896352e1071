"""tls.mode acme for an instance: the server's ``acme`` section and the container around it, the settings
regctl orders with, installing what the CA issued, and the order lock. No CA: the order is faked."""

from __future__ import annotations

import datetime
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers.acme_fakes import issued

from regctl.config.load import load_server_config
from regctl.deploy import acme as deploy_acme
from regctl.deploy import render
from regctl.deploy.docker_runtime import container_spec
from regctl.deploy.instance import InstanceConfig, InstanceLayout, validate_config
from regctl.errors import RegctlError
from regctl.tls import renewal
from regctl.tls.acme_client import DIRECTORIES, AcmeSettings, IssuedCertificate
from regctl.tls.bundle import load_certificates

HOST = "registry.example.com"
HMAC = "c2VjcmV0LWhtYWMta2V5LWZyb20tdGhlLWNh"


def make(**acme: Any) -> InstanceConfig:
    return validate_config({"host": HOST, "tls": {"mode": "acme", "acme": acme}})


def rendered(config: InstanceConfig, layout: InstanceLayout, target: render.Target, tmp_path: Path) -> Any:
    """The server config as the server loads it (regctl.config.load), and as rendered."""
    path = tmp_path / f"{target}.yml"
    path.write_text(render.render_server_config(config, layout, target))
    loaded, warnings = load_server_config(str(path), {})
    assert warnings == []
    return loaded, yaml.safe_load(path.read_text())


# -- the server's acme section ------------------------------------------------------------------------------
def test_manual_renewal_in_a_container(layout: InstanceLayout, tmp_path: Path) -> None:
    loaded, data = rendered(make(email="ops@example.com", domains=["r2.example.com"]), layout, "container", tmp_path)
    assert data["acme"] == {
        "directory": "letsencrypt",
        "email": "ops@example.com",
        "domains": [HOST, "r2.example.com"],
        "challenge": "http-01",
        "responder": "standalone",
        "httpport": 80,
        "tlsport": 443,
        "accountdir": "/acme",
        "auto": False,
    }
    assert loaded.acme.directory == DIRECTORIES["letsencrypt"]
    assert loaded.acme.httpaddr is None  # nothing for the server to do: regctl answers during its orders
    assert loaded.http.tls.certificate == "/certs/domain.crt"


def test_the_registry_answers_http01(layout: InstanceLayout, tmp_path: Path) -> None:
    config = make(responder="registry", http_port=8080)
    loaded, _ = rendered(config, layout, "container", tmp_path)
    assert (loaded.acme.responder, loaded.acme.challengedir, loaded.acme.httpaddr) == (
        "webroot",
        "/certs/acme-challenge",
        ":80",
    )
    # The container serves on :5000; its redirect to HTTPS must name the port Docker publishes.
    assert loaded.acme.redirectport == config.port
    loaded, _ = rendered(config, layout, "process", tmp_path)
    assert (loaded.acme.challengedir, loaded.acme.httpaddr) == (str(layout.acme_challenges.absolute()), "0.0.0.0:8080")
    assert loaded.acme.redirectport is None  # the process listens on the published port itself


@pytest.mark.parametrize("auto", [False, True])
def test_the_registry_answers_tls_alpn01_on_its_own_port(layout: InstanceLayout, tmp_path: Path, auto: bool) -> None:
    config = validate_config({"host": HOST, "port": 443, "tls": {"mode": "acme", "acme": {
        "challenge": "tls-alpn-01", "responder": "registry", "auto": auto}}})
    for target, certs in (("container", "/certs"), ("process", str(layout.certs.absolute()))):
        loaded, data = rendered(config, layout, target, tmp_path)
        assert (loaded.acme.challenge, loaded.acme.responder, loaded.acme.challengedir) == (
            "tls-alpn-01", "webroot", f"{certs}/acme-challenge")
        assert "httpaddr" not in data["acme"] and "redirectport" not in data["acme"]  # no plain-HTTP listener
        assert loaded.acme.answers_tls_alpn and loaded.acme.auto == auto
    # Nothing to publish but the registry's port: the CA's connections arrive there.
    assert container_spec(config, layout, "sha256:aa", "cfg")["ports"] == {"5000/tcp": ["0.0.0.0", 443]}


def test_auto_renewal(layout: InstanceLayout, tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("PEM")
    layout.acme_eab_hmac.write_text(HMAC + "\n")
    config = make(responder="registry", auto=True, eab_kid="kid-1", ca_bundle=str(bundle), renew_days=20)
    loaded, _ = rendered(config, layout, "container", tmp_path)
    assert loaded.acme.model_dump(include={"auto", "accountdir", "eabkid", "eabhmackey", "cabundle", "renewdays"}) == {
        "auto": True,
        "accountdir": "/acme",
        "eabkid": "kid-1",
        "eabhmackey": HMAC,
        "cabundle": "/etc/regctl/acme-ca.pem",
        "renewdays": 20,
    }
    loaded, _ = rendered(config, layout, "process", tmp_path)
    assert (loaded.acme.accountdir, loaded.acme.cabundle) == (str(layout.acme_accounts.absolute()), str(bundle))


def test_config_show_masks_the_hmac_key(layout: InstanceLayout) -> None:
    config = make(responder="registry", auto=True, eab_kid="kid-1")
    layout.acme_eab_hmac.write_text(HMAC)
    layout.config.write_text(yaml.safe_dump(config.model_dump(mode="json")))
    shown = render.effective_config(layout)
    assert shown["server"]["acme"]["eabhmackey"] == render.SECRET_MASK
    assert render.effective_config(layout, reveal_secrets=True)["server"]["acme"]["eabhmackey"] == HMAC


def test_a_missing_hmac_key(layout: InstanceLayout) -> None:
    with pytest.raises(RegctlError) as info:
        render.server_config(make(responder="registry", auto=True, eab_kid="kid-1"), layout, target="container")
    assert info.value.message == (
        f"cannot read the EAB HMAC key {layout.acme_eab_hmac} (tls.acme.eab_kid is set): No such file or directory"
    )
    assert info.value.hint == f"write the key the CA gave with the key id: (umask 077; cat > {layout.acme_eab_hmac})"


def test_up_needs_the_certificate(layout: InstanceLayout) -> None:
    with pytest.raises(RegctlError) as info:
        render.check_files(make(), layout)
    assert (info.value.message, info.value.hint) == (
        f"{layout.tls_certificate} is missing, and tls.mode is acme",
        "get one from the CA with `regctl cert issue`",
    )


# -- the container around it ----------------------------------------------------------------------------------
def test_ports_and_mounts(layout: InstanceLayout) -> None:
    certs, accounts = str(layout.certs.absolute()), str(layout.acme_accounts.absolute())
    manual = container_spec(make(), layout, "sha256:aa", "cfg")
    assert manual["ports"] == {"5000/tcp": ["0.0.0.0", 5000]}
    assert manual["volumes"][certs] == {"bind": "/certs", "mode": "ro"}
    assert accounts not in manual["volumes"]

    registry = container_spec(make(responder="registry", http_port=8080), layout, "sha256:aa", "cfg")
    assert registry["ports"] == {"5000/tcp": ["0.0.0.0", 5000], "80/tcp": ["0.0.0.0", 8080]}

    standalone = container_spec(make(auto=True, http_port=8080), layout, "sha256:aa", "cfg")
    assert standalone["ports"] == {"5000/tcp": ["0.0.0.0", 5000], "80/tcp": ["0.0.0.0", 8080]}

    auto = container_spec(make(challenge="tls-alpn-01", auto=True, tls_port=8443), layout, "sha256:aa", "cfg")
    assert auto["ports"] == {"5000/tcp": ["0.0.0.0", 5000], "443/tcp": ["0.0.0.0", 8443]}
    assert auto["volumes"][certs] == {"bind": "/certs", "mode": "rw"}  # the renewer replaces the files
    assert auto["volumes"][accounts] == {"bind": "/acme", "mode": "rw"}


def test_compose_publishes_the_challenge_port(layout: InstanceLayout, tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("PEM")
    config = make(responder="registry", auto=True, ca_bundle=str(bundle))
    service = yaml.safe_load(render.render_compose(config, layout, "regctl/registry:1"))["services"]["registry"]
    assert service["ports"] == ["0.0.0.0:5000:5000", "0.0.0.0:80:80"]
    assert service["volumes"][2:] == [
        {"type": "bind", "source": str(layout.certs.absolute()), "target": "/certs", "read_only": False},
        {"type": "bind", "source": str(layout.acme_accounts.absolute()), "target": "/acme", "read_only": False},
        {"type": "bind", "source": str(bundle), "target": "/etc/regctl/acme-ca.pem", "read_only": True},
    ]


# -- the settings regctl orders with --------------------------------------------------------------------------
def test_settings(layout: InstanceLayout, tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("PEM")
    layout.acme_eab_hmac.write_text(f"{HMAC}\n")
    config = make(
        directory="letsencrypt-staging", email="ops@example.com", http_port=8080, eab_kid="kid-1", ca_bundle="../ca.pem"
    )
    (layout.root / "../ca.pem").write_text("PEM")
    assert deploy_acme.acme_settings(config, layout, registry_answers=False) == AcmeSettings(
        directory=DIRECTORIES["letsencrypt-staging"],
        email="ops@example.com",
        http_port=8080,
        eab_kid="kid-1",
        eab_hmac_key=HMAC,
        ca_bundle=layout.root.absolute() / "../ca.pem",
    )


@pytest.mark.parametrize("answers", [True, False])
def test_the_registry_answers_only_while_it_runs(layout: InstanceLayout, answers: bool) -> None:
    settings = deploy_acme.acme_settings(make(responder="registry"), layout, registry_answers=answers)
    assert (settings.responder, settings.challenge_dir) == (
        ("webroot", layout.acme_challenges.absolute()) if answers else ("standalone", None)
    )


@pytest.mark.parametrize("answers", [True, False])
def test_the_registry_answers_tls_alpn01_only_while_it_runs(layout: InstanceLayout, answers: bool) -> None:
    config = validate_config({"host": HOST, "port": 8443, "tls": {"mode": "acme", "acme": {
        "challenge": "tls-alpn-01", "responder": "registry", "tls_port": 8443}}})
    settings = deploy_acme.acme_settings(config, layout, registry_answers=answers)
    assert (settings.challenge, settings.tls_port) == ("tls-alpn-01", 8443)
    # Running, the registry presents the files; stopped, regctl answers on the registry's port itself.
    assert (settings.responder, settings.challenge_dir) == (
        ("webroot", layout.acme_challenges.absolute()) if answers else ("standalone", None)
    )


def test_a_registry_bound_to_one_address_answers_there(layout: InstanceLayout) -> None:
    config = validate_config({"host": HOST, "bind": "192.0.2.1", "tls": {"mode": "acme"}})
    assert deploy_acme.acme_settings(config, layout, registry_answers=False).bind == "192.0.2.1"


def test_a_missing_ca_bundle(layout: InstanceLayout) -> None:
    with pytest.raises(RegctlError) as info:
        deploy_acme.acme_settings(make(ca_bundle="/nonexistent/ca.pem"), layout, registry_answers=False)
    assert info.value.message == "/nonexistent/ca.pem is missing, and tls.acme.ca_bundle names it"


def test_managed_certificate(layout: InstanceLayout) -> None:
    managed = deploy_acme.managed_certificate(make(domains=["r2.example.com"], renew_days=10), layout)
    assert (managed.name, managed.certificate, managed.key, managed.domains, managed.account_dir) == (
        "registry",
        layout.tls_certificate,
        layout.tls_key,
        (HOST, "r2.example.com"),
        layout.acme_accounts,
    )
    assert managed.renew_days == 10


# -- the EAB HMAC key ---------------------------------------------------------------------------------------------
def test_hmac_key_is_kept_0600(layout: InstanceLayout) -> None:
    deploy_acme.write_eab_hmac(layout, f"  {HMAC}\n")
    assert layout.acme_eab_hmac.read_text() == f"{HMAC}\n"
    assert layout.acme_eab_hmac.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("key", ["", "kid-1", "not base64url!" * 3, "a+b/c" * 8])
def test_hmac_key_must_be_base64url(key: str) -> None:
    with pytest.raises(RegctlError) as info:
        deploy_acme.check_eab_hmac(key)
    assert info.value.message == "the EAB HMAC key is not base64url (16 or more letters, digits, '-' and '_')"


# -- installing ------------------------------------------------------------------------------------------------
def test_install_writes_key_then_chain_then_top(layout: InstanceLayout, monkeypatch: pytest.MonkeyPatch) -> None:
    layout.root.mkdir(exist_ok=True)
    new, _ = issued(HOST)
    order: list[str] = []
    real = deploy_acme.write_file

    def write(path: Path, text: str, mode: int) -> None:
        order.append(path.name)
        real(path, text, mode)

    monkeypatch.setattr(deploy_acme, "write_file", write)
    reloads: list[str] = []
    monkeypatch.setattr(deploy_acme, "reload_server", lambda config, layout: reloads.append("hup") or "pid 7")

    assert deploy_acme.install(make(), layout, new) == "pid 7"
    assert order == ["domain.key", "domain.crt", "ca.crt"]
    assert layout.tls_key.read_text() == new.key_pem
    assert layout.tls_certificate.read_text() == new.fullchain_pem
    chain = load_certificates(new.fullchain_pem.encode(), "chain")
    assert load_certificates(layout.ca_certificate.read_bytes(), "ca")[0] == chain[-1]
    modes = [p.stat().st_mode & 0o777 for p in (layout.tls_key, layout.tls_certificate, layout.ca_certificate)]
    assert modes == [0o640, 0o644, 0o644]
    assert deploy_acme.install(make(), layout, new, reload=False) is None
    assert reloads == ["hup"]


def test_issue_certificate_installs_under_the_lock(layout: InstanceLayout, monkeypatch: pytest.MonkeyPatch) -> None:
    new, _ = issued(HOST)
    seen: list[Any] = []

    def fake_issue(settings: AcmeSettings, account: Any, domains: Any, progress: Any) -> IssuedCertificate:
        seen.append((domains, account.path, (layout.acme_accounts / renewal.LOCK_FILE).read_text()))
        progress("ordering")
        return new

    monkeypatch.setattr("regctl.tls.acme_client.issue", fake_issue)
    lines: list[str] = []
    assert deploy_acme.issue_certificate(make(), layout, lines.append) == new
    assert seen == [((HOST,), layout.acme_accounts, str(os.getpid()))]
    assert lines == ["ordering"]
    assert layout.tls_certificate.read_text() == new.fullchain_pem
    assert layout.acme_accounts.stat().st_mode & 0o777 == 0o700


def test_a_failed_order_writes_nothing(layout: InstanceLayout, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any) -> IssuedCertificate:
        raise RegctlError("the CA refused the order: rateLimited: too many certificates")

    monkeypatch.setattr("regctl.tls.acme_client.issue", refuse)
    with pytest.raises(RegctlError):
        deploy_acme.issue_certificate(make(), layout)
    assert not layout.tls_certificate.exists() and not layout.tls_key.exists()


def test_one_order_at_a_time(layout: InstanceLayout, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("regctl.tls.acme_client.issue", lambda *args: pytest.fail("ordered while locked"))
    with renewal.RenewalLock(layout.acme_accounts / renewal.LOCK_FILE), pytest.raises(RegctlError) as info:
        deploy_acme.issue_certificate(make(), layout)
    assert info.value.message == f"another renewal is running (pid {os.getpid()})"


def test_renew_installs_and_reports_what_was_signalled(
    layout: InstanceLayout, monkeypatch: pytest.MonkeyPatch
) -> None:
    new, _ = issued(HOST)
    monkeypatch.setattr(deploy_acme, "reload_server", lambda config, layout: "pid 9")

    def fake_renew(managed: Any, install: Any, *, force: bool, dry_run: bool, progress: Any) -> renewal.RenewResult:
        assert (force, dry_run) == (True, False)
        install(new)
        return renewal.RenewResult(managed.name, "renewed", "forced", new.not_after)

    monkeypatch.setattr(renewal, "renew", fake_renew)
    result, signalled = deploy_acme.renew_certificate(make(), layout, force=True)
    assert (result.status, signalled) == ("renewed", "pid 9")
    assert layout.tls_certificate.read_text() == new.fullchain_pem


def test_status(layout: InstanceLayout) -> None:
    config = make(email="ops@example.com", renew_days=30)
    assert deploy_acme.acme_status(config, layout) == {
        "directory": DIRECTORIES["letsencrypt"],
        "account": None,
        "email": "ops@example.com",
        "domains": [HOST],
        "challenge": "http-01",
        "responder": "standalone",
        "auto": False,
        "renew_at": None,
    }
    new, _ = issued(HOST, days=90)
    layout.certs.mkdir()
    layout.tls_certificate.write_text(new.fullchain_pem)
    due = new.not_after - datetime.timedelta(days=30)
    assert deploy_acme.acme_status(config, layout)["renew_at"] == due.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_as_acme_checks_before_the_mode_changes(layout: InstanceLayout) -> None:
    layout.config.write_text(yaml.safe_dump({"host": "localhost", "tls": {"mode": "selfsigned"}}))
    with pytest.raises(RegctlError) as info:
        deploy_acme.as_acme(layout)
    assert info.value.message == "host: must be a DNS name a CA can validate when tls.mode is acme, got 'localhost'"
    assert yaml.safe_load(layout.config.read_text())["tls"]["mode"] == "selfsigned"
    layout.config.write_text(yaml.safe_dump({"host": HOST}))
    assert deploy_acme.as_acme(layout).tls.mode == "acme"
