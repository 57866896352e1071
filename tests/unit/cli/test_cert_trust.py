"""``regctl cert trust``: the CA where the Docker engine looks for it (--dir instead of /etc/docker/certs.d)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from regctl.cli import cli
from regctl.deploy import certs
from regctl.deploy.init import build_config, create_instance
from regctl.deploy.instance import InstanceLayout
from regctl.tls import bundle


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def make(tmp_path: Path, host: str, port: int = 5000) -> InstanceLayout:
    config = build_config({"host": host, "port": port, "tls.mode": "selfsigned", "runtime": "process"})
    return create_instance(tmp_path / "instance", config).layout


def ca_name(layout: InstanceLayout) -> str:
    return bundle.describe(bundle.load_certificates(layout.ca_certificate.read_bytes(), "ca")[0])


def test_installs_the_ca(tmp_path: Path) -> None:
    layout = make(tmp_path, "registry6.test", 15246)
    result = invoke("-C", str(layout.root), "cert", "trust", "--dir", str(tmp_path / "certs.d"))
    destination = tmp_path / "certs.d" / "registry6.test:15246" / "ca.crt"
    assert (result.exit_code, result.stdout) == (0, "")
    assert result.stderr == (
        f"Installed {ca_name(layout)} as {destination}: the Docker engine trusts it from its next connection\n"
    )
    assert destination.read_text() == layout.ca_certificate.read_text()


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_loopback_names_get_a_note(tmp_path: Path, host: str) -> None:
    layout = make(tmp_path, host)
    result = invoke("-C", str(layout.root), "cert", "trust", "--dir", str(tmp_path / "certs.d"))
    assert result.exit_code == 0
    assert result.stderr.splitlines()[-1] == (
        f"Note: the Docker engine never verifies registries on 127.0.0.0/8 ({host} is one), so it uses this only "
        "for a name that resolves elsewhere, such as ::1"
    )


def test_not_writable(tmp_path: Path) -> None:
    layout = make(tmp_path, "registry.test")
    (tmp_path / "certs.d").mkdir()
    (tmp_path / "certs.d" / "registry.test:5000").write_text("a file where the directory should be")
    result = invoke("-C", str(layout.root), "cert", "trust", "--dir", str(tmp_path / "certs.d"))
    assert (result.exit_code, result.stderr) == (
        1,
        f"Error: cannot write {tmp_path}/certs.d/registry.test:5000/ca.crt: File exists\n",
    )


def test_without_a_ca(tmp_path: Path) -> None:
    layout = create_instance(tmp_path, build_config({"runtime": "process"})).layout
    result = invoke("cert", "trust", "--dir", str(tmp_path / "certs.d"))
    assert (result.exit_code, result.stderr) == (
        1,
        f"Error: no CA certificate in {layout.ca_certificate}\n"
        "Hint: `regctl cert selfsigned` makes one; `regctl cert import` and `regctl cert issue` take the top of the "
        "chain they install\n",
    )


def test_not_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    layout = make(tmp_path, "registry.test")

    def denied(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(certs, "atomic_write", denied)
    monkeypatch.setattr(certs.os, "geteuid", lambda: 1000)
    base = tmp_path / "certs.d"
    result = invoke("-C", str(layout.root), "cert", "trust", "--dir", str(base))
    assert (result.exit_code, result.stderr) == (
        1,
        f"Error: cannot write {base}/registry.test:5000/ca.crt: permission denied\n"
        f"Hint: {base} belongs to root: run `sudo regctl cert trust --dir {base}`, or install it yourself: sudo "
        f"install -D -m 0644 {layout.ca_certificate} {base}/registry.test:5000/ca.crt\n",
    )
