"""``regctl cert issue``, ``cert renew``, ``cert timer``, and what ``cert status`` and ``cert trust`` say in
tls.mode acme, through the real Click group. The CA is faked; the report and the exit codes are real."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result
from helpers.acme_fakes import issued

from regctl.cli import cli
from regctl.deploy import acme as deploy_acme
from regctl.deploy import timer
from regctl.deploy.init import build_config, create_instance
from regctl.deploy.instance import InstanceLayout, load_config
from regctl.errors import RegctlError
from regctl.tls import renewal
from regctl.tls.acme_client import IssuedCertificate

HOST = "registry.example.com"
NOT_AFTER = datetime.datetime(2031, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def words(text: str) -> str:
    """A table's text with its layout gone: at 80 columns the last column wraps onto more lines."""
    return " ".join(text.split())


@pytest.fixture
def layout(tmp_path: Path) -> InstanceLayout:
    values = {"host": HOST, "runtime": "process", "tls.mode": "acme", "tls.acme.directory": "https://ca.test/dir"}
    return create_instance(tmp_path, build_config(values)).layout


@pytest.fixture
def reloads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """SIGHUPs sent: to a running server, "pid 4242"."""
    sent: list[str] = []

    def reload_server(config: Any, layout: Any) -> str:
        sent.append(config.name)
        return "pid 4242"

    monkeypatch.setattr(deploy_acme, "reload_server", reload_server)
    monkeypatch.setattr("regctl.deploy.certs.reload_server", reload_server)
    return sent


def fake_renew(monkeypatch: pytest.MonkeyPatch, result: renewal.RenewResult, new: IssuedCertificate | None = None):
    calls: list[dict[str, Any]] = []

    def renew(managed: Any, install: Any, *, force: bool, dry_run: bool, progress: Any) -> renewal.RenewResult:
        calls.append({"force": force, "dry_run": dry_run})
        progress(f"{managed.name}: ordering")
        if new is not None:
            install(new)
        return result

    monkeypatch.setattr(renewal, "renew", renew)
    return calls


# -- cert issue -------------------------------------------------------------------------------------------------
def test_issue_switches_the_mode_and_reloads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reloads: list[str]):
    layout = create_instance(tmp_path, build_config({"host": HOST, "runtime": "process", "tls.mode": "selfsigned"}))
    new, _ = issued(HOST)
    monkeypatch.setattr("regctl.tls.acme_client.issue", lambda settings, account, domains, progress: new)
    result = invoke("cert", "issue")
    assert (result.exit_code, result.stdout) == (0, "")
    assert result.stderr.splitlines() == [
        f"Requesting a certificate for {HOST} from letsencrypt",
        f"Installed {tmp_path}/certs/domain.crt for {HOST}, issued by CN=Fake ACME Intermediate, valid until "
        f"{new.not_after:%Y-%m-%d}",
        f"Set tls.mode: acme in {tmp_path}/regctl.yaml (it was selfsigned)",
        "Sent SIGHUP to the server (pid 4242): it serves the new certificate now",
    ]
    assert load_config(layout.layout).tls.mode == "acme"
    assert layout.layout.tls_certificate.read_text() == new.fullchain_pem
    assert reloads == ["registry"]


def test_a_failed_issue_changes_nothing(layout: InstanceLayout, monkeypatch: pytest.MonkeyPatch) -> None:
    old, _ = issued(HOST)
    deploy_acme.install(load_config(layout), layout, old, reload=False)

    def unreachable(*args: Any) -> IssuedCertificate:
        raise RegctlError(
            "cannot reach the ACME CA at https://ca.test/dir: connection refused",
            "check the directory URL and that this machine can reach it over HTTPS (firewall, proxy)",
        )

    monkeypatch.setattr("regctl.tls.acme_client.issue", unreachable)
    result = invoke("-C", str(layout.root), "cert", "issue")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"Requesting a certificate for {HOST} from https://ca.test/dir",
        "Error: cannot reach the ACME CA at https://ca.test/dir: connection refused",
        "Hint: check the directory URL and that this machine can reach it over HTTPS (firewall, proxy)",
        f"Nothing changed: {layout.root}/certs/domain.crt keeps serving",
    ]
    assert layout.tls_certificate.read_text() == old.fullchain_pem


def test_issue_refuses_a_host_no_ca_can_validate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    create_instance(tmp_path, build_config({"runtime": "process"}))
    monkeypatch.setattr("regctl.tls.acme_client.issue", lambda *args: pytest.fail("the CA was contacted"))
    result = invoke("cert", "issue")
    assert (result.exit_code, result.stderr) == (
        1,
        "Error: host: must be a DNS name a CA can validate when tls.mode is acme, got 'localhost'\n"
        f"Hint: fix {tmp_path}/regctl.yaml\n",
    )
    assert load_config(InstanceLayout(tmp_path)).tls.mode == "none"


# -- cert renew -------------------------------------------------------------------------------------------------
def test_not_due(layout: InstanceLayout, monkeypatch: pytest.MonkeyPatch, reloads: list[str]) -> None:
    calls = fake_renew(
        monkeypatch, renewal.RenewResult("registry", "not-due", "not due until 2030-11-03 (60 days left)", NOT_AFTER)
    )
    result = invoke("-C", str(layout.root), "cert", "renew")
    assert result.exit_code == 0
    assert [line.rstrip() for line in result.stdout.splitlines()] == [
        "Certificate  Result   Valid until  Detail",
        "registry     not due  2031-01-02   not due until 2030-11-03 (60 days left)",
    ]
    assert result.stderr == "  registry: ordering\n"
    assert calls == [{"force": False, "dry_run": False}]
    assert reloads == []


def test_renewed(layout: InstanceLayout, monkeypatch: pytest.MonkeyPatch, reloads: list[str]) -> None:
    new, _ = issued(HOST)
    result_ = renewal.RenewResult("registry", "renewed", "forced (80 days left); now valid until 2031-01-02", NOT_AFTER)
    calls = fake_renew(monkeypatch, result_, new)
    result = invoke("-C", str(layout.root), "cert", "renew", "--force")
    assert result.exit_code == 0
    assert words(result.stdout) == (
        "Certificate Result Valid until Detail registry renewed 2031-01-02 forced (80 days left); now valid until "
        "2031-01-02"
    )
    assert result.stderr.splitlines()[-1] == "Sent SIGHUP to the server (pid 4242): it serves the new certificate now"
    assert calls == [{"force": True, "dry_run": False}]
    assert layout.tls_certificate.read_text() == new.fullchain_pem


def test_failed_exits_1_with_the_hint(layout: InstanceLayout, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_renew(
        monkeypatch,
        renewal.RenewResult(
            "registry", "failed", "the CA refused the order: caa: CAA record forbids issuance", NOT_AFTER,
            "the domain's CAA DNS records must allow this CA to issue (or be removed)",
        ),
    )  # fmt: skip
    result = invoke("-C", str(layout.root), "cert", "renew")
    assert result.exit_code == 1
    assert words(result.stdout) == (
        "Certificate Result Valid until Detail registry FAILED 2031-01-02 the CA refused the order: caa: CAA record "
        "forbids issuance"
    )
    assert result.stderr.splitlines()[-1] == (
        "Hint (registry): the domain's CAA DNS records must allow this CA to issue (or be removed)"
    )


def test_json(layout: InstanceLayout, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = fake_renew(monkeypatch, renewal.RenewResult("registry", "would-renew", "due: 20 days left", NOT_AFTER))
    result = invoke("-C", str(layout.root), "cert", "renew", "--dry-run", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {
        "certificates": [
            {
                "name": "registry",
                "status": "would-renew",
                "detail": "due: 20 days left",
                "hint": None,
                "not_after": "2031-01-02T03:04:05Z",
            }
        ]
    }
    assert calls == [{"force": False, "dry_run": True}]


@pytest.mark.parametrize(("status", "code"), [("not-due", 0), ("failed", 1)])
def test_quiet_prints_only_failures(layout: InstanceLayout, monkeypatch: pytest.MonkeyPatch, status: str, code: int):
    fake_renew(monkeypatch, renewal.RenewResult("registry", status, "why", NOT_AFTER))  # type: ignore[arg-type]
    result = invoke("-C", str(layout.root), "cert", "renew", "-q")
    assert result.exit_code == code
    assert (result.stdout != "") is (status == "failed")
    assert result.stderr == ""


def test_another_renewal_is_running(layout: InstanceLayout, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_renew(monkeypatch, renewal.RenewResult("registry", "not-due", "", NOT_AFTER))
    layout.acme_accounts.mkdir(exist_ok=True)
    with renewal.RenewalLock(layout.acme_accounts / renewal.LOCK_FILE):
        result = invoke("-C", str(layout.root), "cert", "renew")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0].startswith("Error: another renewal is running (pid ")


def test_nothing_to_renew_in_another_mode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    create_instance(tmp_path, build_config({"runtime": "process", "tls.mode": "selfsigned"}))
    monkeypatch.setattr(renewal, "renew", lambda *args, **kwargs: pytest.fail("renewed"))
    result = invoke("cert", "renew")
    assert (result.exit_code, result.stdout, result.stderr) == (
        0, "", "tls.mode is selfsigned: no certificate from an ACME CA to renew\n"
    )  # fmt: skip
    assert json.loads(invoke("cert", "renew", "--json").stdout) == {"certificates": []}


# -- cert timer ---------------------------------------------------------------------------------------------------
@pytest.fixture
def regctl_path(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(timer, "regctl_command", lambda: ["/usr/local/bin/regctl"])
    return "/usr/local/bin/regctl"


def test_timer_prints_both_units(layout: InstanceLayout, regctl_path: str) -> None:
    result = invoke("-C", str(layout.root), "cert", "timer", "--user")
    assert (result.exit_code, result.stderr) == (0, "")
    lines = result.stdout.splitlines()
    assert lines[0] == "# regctl-renew-registry.service"
    assert f"ExecStart={regctl_path} -C {layout.root} cert renew" in lines
    assert "# regctl-renew-registry.timer" in lines
    assert "OnCalendar=daily" in lines and "Persistent=true" in lines


def test_timer_writes_the_units(layout: InstanceLayout, tmp_path: Path, regctl_path: str) -> None:
    units = tmp_path / "units"
    result = invoke("-C", str(layout.root), "cert", "timer", "--user", "--write", str(units))
    assert result.exit_code == 0
    assert result.stderr.splitlines() == [
        f"Wrote {units}/regctl-renew-registry.service",
        f"Wrote {units}/regctl-renew-registry.timer",
        "Next: systemctl --user daemon-reload && systemctl --user enable --now regctl-renew-registry.timer",
        "User units run while you are logged in, unless: loginctl enable-linger",
    ]
    assert sorted(p.name for p in units.iterdir()) == ["regctl-renew-registry.service", "regctl-renew-registry.timer"]


def test_timer_cron(layout: InstanceLayout, regctl_path: str) -> None:
    result = invoke("-C", str(layout.root), "cert", "timer", "--cron")
    assert result.exit_code == 0
    assert result.stdout.strip().endswith(f"* * * {regctl_path} -C {layout.root} cert renew --quiet")
    assert invoke("-C", str(layout.root), "cert", "timer", "--cron", "--user").exit_code == 2


def test_timer_warns_when_nothing_needs_it(tmp_path: Path, regctl_path: str) -> None:
    create_instance(tmp_path, build_config({"runtime": "process"}))
    result = invoke("cert", "timer", "--cron")
    assert result.stderr == "Warning: tls.mode is none: `cert renew` has nothing to renew until it is acme\n"


# -- cert status and cert trust ------------------------------------------------------------------------------------
def test_status_shows_the_ca_and_the_renewal(layout: InstanceLayout) -> None:
    new, _ = issued(HOST, days=90)
    deploy_acme.install(load_config(layout), layout, new, reload=False)
    result = invoke("-C", str(layout.root), "cert", "status")
    due = new.not_after - (new.not_after - new.not_before) / 3
    assert result.exit_code == 0
    assert result.stdout.splitlines()[-4:] == [
        "ACME CA      https://ca.test/dir",
        "Account      not registered yet",
        "Challenge    http-01, answered by regctl, for the time of the order",
        f"Renewal      due {due:%Y-%m-%d %H:%M:%S} UTC, by `regctl cert renew` (the CA's ARI window may move it "
        "earlier)",
    ]
    info = json.loads(invoke("-C", str(layout.root), "cert", "status", "--json").stdout)
    assert info["acme"]["renew_at"] == f"{due:%Y-%m-%dT%H:%M:%S}Z"


@pytest.mark.parametrize(("challenge", "responder", "answered"), [
    ("http-01", "standalone", "regctl, for the time of the order"),
    ("http-01", "registry", "the registry's listener"),
    ("tls-alpn-01", "registry", "the registry's own TLS port"),
])
def test_status_says_who_answers(challenge: str, responder: str, answered: str) -> None:
    from regctl.cli.cert.status import _acme_rows

    rows = dict(_acme_rows({"directory": "https://ca.test/dir", "account": None, "challenge": challenge,
                            "responder": responder, "auto": False, "renew_at": None}))
    assert rows["Challenge"] == f"{challenge}, answered by {answered}"


def test_status_without_a_certificate_says_how_to_get_one(layout: InstanceLayout) -> None:
    result = invoke("-C", str(layout.root), "cert", "status")
    assert (result.exit_code, result.stderr) == (
        1,
        f"Error: no certificate in {layout.tls_certificate}\nHint: get one from the CA with `regctl cert issue`\n",
    )


def test_trust_has_nothing_to_add_for_lets_encrypt(tmp_path: Path) -> None:
    layout = create_instance(tmp_path, build_config({"host": HOST, "runtime": "process", "tls.mode": "acme"})).layout
    result = invoke("cert", "trust", "--dir", str(tmp_path / "certs.d"))
    assert (result.exit_code, result.stderr) == (
        0,
        "Nothing to install: the certificate comes from letsencrypt, whose root every client trusts already\n",
    )
    assert not (tmp_path / "certs.d").exists() and not layout.ca_certificate.exists()


def test_trust_installs_the_top_of_a_private_chain(layout: InstanceLayout, tmp_path: Path) -> None:
    new, _ = issued(HOST)
    deploy_acme.install(load_config(layout), layout, new, reload=False)
    result = invoke("-C", str(layout.root), "cert", "trust", "--dir", str(tmp_path / "certs.d"))
    assert result.exit_code == 0
    assert result.stderr.startswith("Installed CN=Fake ACME Intermediate as ")
    assert yaml.safe_load((layout.root / "regctl.yaml").read_text())["tls"]["mode"] == "acme"
