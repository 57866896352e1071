"""``regctl cert selfsigned`` through the real Click group."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from regctl.cli import cli
from regctl.deploy import runtime
from regctl.deploy.init import build_config, create_instance
from regctl.deploy.instance import InstanceLayout, load_config
from regctl.deploy.process_runtime import ProcessRuntime
from regctl.errors import RegctlError
from regctl.tls import bundle


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def make(tmp_path: Path, **values: object) -> InstanceLayout:
    return create_instance(tmp_path, build_config({"host": "registry.test", "runtime": "process", **values})).layout


def until(days: int) -> str:
    return f"{datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=days):%Y-%m-%d}"


def ca_name(layout: InstanceLayout) -> str:
    return bundle.describe(bundle.load_certificates(layout.ca_certificate.read_bytes(), "ca")[0])


def test_first_certificate_turns_tls_on(tmp_path: Path) -> None:
    layout = make(tmp_path)
    result = invoke("cert", "selfsigned", "--san", "reg.internal", "--san", "10.0.0.5", "--days", "90")
    assert (result.exit_code, result.stdout) == (0, "")
    assert result.stderr == (
        f"Created the instance's CA {ca_name(layout)}: {tmp_path}/certs/ca.crt (its key: {tmp_path}/secrets/ca.key, "
        "mode 0600)\n"
        f"Issued {tmp_path}/certs/domain.crt for registry.test, localhost, reg.internal, 127.0.0.1, ::1, 10.0.0.5, "
        f"valid until {until(90)} (90 days)\n"
        f"Wrote {tmp_path}/certs/domain.key (mode 0640)\n"
        f"Set tls.mode: selfsigned in {tmp_path}/regctl.yaml (it was none)\n"
        "TLS was off: `regctl up` turns it on\n"
        "Next: regctl cert trust (clients must trust the new CA)\n"
    )
    assert load_config(layout).tls.mode == "selfsigned"
    assert ca_name(layout).startswith("CN=regctl registry CA ")


def test_renewal_keeps_the_ca_and_reloads_the_running_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    layout = make(tmp_path, **{"tls.mode": "selfsigned"})
    ca = layout.ca_certificate.read_text()
    signals: list[int] = []
    monkeypatch.setattr(ProcessRuntime, "running_pid", lambda self: 4242)
    monkeypatch.setattr("regctl.deploy.certs.os.kill", lambda pid, sig: signals.append(pid))
    result = invoke("cert", "selfsigned")
    assert result.exit_code == 0
    assert result.stderr == (
        f"Issued {tmp_path}/certs/domain.crt for registry.test, localhost, 127.0.0.1, ::1, "
        f"valid until {until(365)} (365 days)\n"
        f"Wrote {tmp_path}/certs/domain.key (mode 0640)\n"
        "Sent SIGHUP to the server (pid 4242): it serves the new certificate now\n"
    )
    assert signals == [4242]
    assert layout.ca_certificate.read_text() == ca


def _no_engine() -> None:
    raise RegctlError("Docker engine not reachable at unix:///var/run/docker.sock: connection refused")


def test_not_running_anywhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    layout = create_instance(tmp_path, build_config({"tls.mode": "selfsigned"})).layout  # runtime auto
    monkeypatch.setattr(runtime, "connect", _no_engine)
    result = invoke("cert", "selfsigned")
    assert result.exit_code == 0
    assert result.stderr.splitlines()[-1] == "The registry is not running: `regctl up` serves the new certificate"
    assert layout.tls_certificate.is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--san", "bad name"], "Error: Invalid value for '--san': 'bad name' is neither a DNS name nor an IP address"),
        (["--days", "0"], "Error: Invalid value for '--days': 0 is not in the range 1<=x<=3650."),
    ],
)
def test_usage_errors(tmp_path: Path, args: list[str], message: str) -> None:
    make(tmp_path)
    result = invoke("cert", "selfsigned", *args)
    assert (result.exit_code, result.stderr.splitlines()[-1]) == (2, message)
    assert not (tmp_path / "certs").exists()


def test_without_an_instance(tmp_path: Path) -> None:
    result = invoke("cert", "selfsigned")
    assert (result.exit_code, result.stderr) == (
        1,
        f"Error: no regctl instance in {tmp_path} or its parents, nor in $REGCTL_HOME\n"
        "Hint: create one with `regctl init`, or pass -C DIR\n",
    )
