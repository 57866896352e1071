"""``regctl cert status``: a table for people, JSON for scripts, warnings for what a client would trip over."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

from click.testing import CliRunner, Result
from helpers import pki

from regctl.cli import cli
from regctl.deploy.certs import tls_status
from regctl.deploy.init import build_config, create_instance
from regctl.deploy.instance import InstanceLayout, load_config

HOST = "registry.example.com"


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def imported(tmp_path: Path, days: int = 200) -> tuple[InstanceLayout, pki.Issued]:
    now = datetime.datetime.now(datetime.UTC)
    root = pki.root(now=now)
    middle = pki.intermediate(root, now=now)
    leaf = pki.leaf(middle, HOST, "10.0.0.5", now=now, days=days)
    layout = create_instance(tmp_path, build_config({"host": HOST, "tls.mode": "files", "runtime": "process"})).layout
    layout.tls_certificate.write_text(pki.pem(leaf, middle))
    layout.tls_key.write_text(leaf.key_pem)
    return layout, leaf


def test_table(tmp_path: Path) -> None:
    _, leaf = imported(tmp_path)
    result = invoke("cert", "status")
    assert (result.exit_code, result.stderr) == (0, "")
    until = leaf.certificate.not_valid_after_utc
    assert result.stdout.splitlines() == [
        "Mode         files",
        f"Certificate  {tmp_path}/certs/domain.crt",
        f"Subject      CN={HOST}",
        f"Names        {HOST}, 10.0.0.5",
        "Issuer       CN=Test Intermediate CA",
        f"Valid until  {until:%Y-%m-%d %H:%M:%S} UTC (199 days left)",
        "Chain        2 certificates, each signed by the next",
        f"Key          {tmp_path}/certs/domain.key: matches",
        f"Host         {HOST}: covered",
    ]


def test_problems_are_warnings(tmp_path: Path) -> None:
    layout, _ = imported(tmp_path, days=5)
    layout.tls_key.write_text(pki.leaf(pki.root(), HOST).key_pem)
    (tmp_path / "regctl.yaml").write_text((tmp_path / "regctl.yaml").read_text().replace(HOST, "other.test"))
    result = invoke("cert", "status")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[7:] == [
        f"Key          {tmp_path}/certs/domain.key: does NOT match",
        "Host         other.test: NOT covered",
    ]
    assert result.stderr == (
        f"Warning: {tmp_path}/certs/domain.key does not match the certificate\n"
        "Warning: the certificate expires in 4 days: renew it soon\n"
        "Warning: the certificate does not cover other.test\n"
    )


def test_json(tmp_path: Path) -> None:
    layout, _ = imported(tmp_path)
    result = invoke("cert", "status", "--json")
    assert (result.exit_code, result.stderr) == (0, "")
    data = json.loads(result.stdout)
    assert data == json.loads(json.dumps(tls_status(load_config(layout), layout)))
    assert (data["mode"], data["days_left"], data["key_matches"], data["problems"]) == ("files", 199, True, [])
    assert [entry["subject"] for entry in data["chain"]] == [f"CN={HOST}", "CN=Test Intermediate CA"]


def test_no_certificate(tmp_path: Path) -> None:
    create_instance(tmp_path, build_config({}))
    result = invoke("cert", "status")
    assert (result.exit_code, result.stderr) == (
        1,
        f"Error: no certificate in {tmp_path}/certs/domain.crt\n"
        "Hint: TLS is off (tls.mode: none): `regctl cert selfsigned` or `regctl cert import` turns it on\n",
    )
