"""``regctl cert import``: what the seed does with `cat`, checked; each failure is one line and writes nothing."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from helpers import pki

from regctl.cli import cli
from regctl.deploy.init import build_config, create_instance
from regctl.deploy.instance import InstanceLayout, load_config

HOST = "registry.example.com"


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


@pytest.fixture
def layout(tmp_path: Path) -> InstanceLayout:
    return create_instance(tmp_path / "instance", build_config({"host": HOST, "runtime": "process"})).layout


@pytest.fixture(scope="module")
def chain() -> tuple[pki.Issued, pki.Issued, pki.Issued]:
    root = pki.root(now=now())
    middle = pki.intermediate(root, now=now())
    return root, middle, pki.leaf(middle, HOST, now=now(), days=90)


def test_the_seeds_bundle_in_the_wrong_order(
    layout: InstanceLayout, tmp_path: Path, chain: tuple[pki.Issued, pki.Issued, pki.Issued]
) -> None:
    root, middle, leaf = chain
    crt = pki.write(tmp_path / "bundle.crt", pki.pem(middle, leaf, root))
    key = pki.write(tmp_path / "domain.key", leaf.key_pem)
    result = invoke("-C", str(layout.root), "cert", "import", "--cert", str(crt), "--key", str(key))
    assert (result.exit_code, result.stdout) == (0, "")
    root_dir = layout.root
    assert result.stderr == (
        "Put the chain in order: the certificate first, then each certificate's issuer\n"
        f"Installed {root_dir}/certs/domain.crt: CN={HOST}, issued by CN=Test Intermediate CA, "
        f"valid until {leaf.certificate.not_valid_after_utc:%Y-%m-%d} (2 certificates)\n"
        f"Wrote {root_dir}/certs/domain.key (mode 0640)\n"
        f"Wrote {root_dir}/certs/ca.crt (the chain's top: CN=Test Root CA)\n"
        f"Set tls.mode: files in {root_dir}/regctl.yaml (it was none)\n"
        "TLS was off: `regctl up` turns it on\n"
    )
    assert layout.tls_certificate.read_text() == pki.pem(leaf, middle)
    assert layout.ca_certificate.read_text() == root.certificate_pem
    assert load_config(layout).tls.mode == "files"


def test_a_separate_chain_file_and_a_running_server_not_found(
    layout: InstanceLayout, tmp_path: Path, chain: tuple[pki.Issued, pki.Issued, pki.Issued]
) -> None:
    _, middle, leaf = chain
    crt = pki.write(tmp_path / "domain.crt", pki.pem(leaf))
    key = pki.write(tmp_path / "domain.key", leaf.key_pem)
    intermediates = pki.write(tmp_path / "intermediate-certificates.pem", pki.pem(middle))
    invoke("-C", str(layout.root), "cert", "selfsigned")  # TLS on already
    result = invoke(
        "-C", str(layout.root), "cert", "import", "--cert", str(crt), "--key", str(key), "--chain", str(intermediates)
    )
    assert result.exit_code == 0
    assert result.stderr.splitlines()[-2:] == [
        f"Set tls.mode: files in {layout.root}/regctl.yaml (it was selfsigned)",
        "The registry is not running: `regctl up` serves the new certificate",
    ]
    assert layout.ca_certificate.read_text() == middle.certificate_pem  # the top of what was given


def test_close_to_expiry_warns(layout: InstanceLayout, tmp_path: Path) -> None:
    leaf = pki.leaf(pki.root(now=now()), HOST, now=now(), days=12)
    crt = pki.write(tmp_path / "c.pem", leaf.certificate_pem)
    key = pki.write(tmp_path / "k.pem", leaf.key_pem)
    result = invoke("-C", str(layout.root), "cert", "import", "--cert", str(crt), "--key", str(key))
    assert result.exit_code == 0
    assert result.stderr.splitlines()[0] == (
        f"Warning: the certificate expires in 11 days ({leaf.certificate.not_valid_after_utc:%Y-%m-%d}): renew it soon"
    )


def _refused(layout: InstanceLayout, *args: str) -> Result:
    result = invoke("-C", str(layout.root), "cert", "import", *args)
    assert result.exit_code == 1
    assert not layout.certs.exists()  # nothing written
    assert load_config(layout).tls.mode == "none"
    return result


def test_wrong_key(layout: InstanceLayout, tmp_path: Path, chain: tuple[pki.Issued, pki.Issued, pki.Issued]) -> None:
    leaf = chain[2]
    crt = pki.write(tmp_path / "c.pem", leaf.certificate_pem)
    key = pki.write(tmp_path / "other.key", pki.leaf(pki.root(), HOST).key_pem)
    result = _refused(layout, "--cert", str(crt), "--key", str(key))
    assert result.stderr == (
        f"Error: the key {key} does not match the certificate CN={HOST}\n"
        "Hint: give the key the certificate was issued for\n"
    )


def test_unrelated_certificate(
    layout: InstanceLayout, tmp_path: Path, chain: tuple[pki.Issued, pki.Issued, pki.Issued]
) -> None:
    _, middle, leaf = chain
    crt = pki.write(tmp_path / "c.pem", pki.pem(leaf, middle))
    stray = pki.write(tmp_path / "chain.pem", pki.root("Someone Else CA").certificate_pem)
    key = pki.write(tmp_path / "k.pem", leaf.key_pem)
    result = _refused(layout, "--cert", str(crt), "--key", str(key), "--chain", str(stray))
    assert result.stderr == (
        f"Error: CN=Someone Else CA is not part of the chain of CN={HOST}: "
        "CN=Test Intermediate CA is issued by CN=Test Root CA\n"
        "Hint: give only the certificate and the intermediates that lead from it to its CA\n"
    )


def test_host_not_covered(layout: InstanceLayout, tmp_path: Path) -> None:
    leaf = pki.leaf(pki.root(now=now()), "other.example.com", "10.1.1.1", now=now())
    crt = pki.write(tmp_path / "c.pem", leaf.certificate_pem)
    key = pki.write(tmp_path / "k.pem", leaf.key_pem)
    result = _refused(layout, "--cert", str(crt), "--key", str(key))
    assert result.stderr == (
        f"Error: the certificate does not cover {HOST} (its names: other.example.com, 10.1.1.1)\n"
        "Hint: get one whose subjectAltName lists the host, or fix host in regctl.yaml\n"
    )


def test_expired(layout: InstanceLayout, tmp_path: Path) -> None:
    leaf = pki.leaf(pki.root(now=now() - datetime.timedelta(days=60)), HOST, now=now() - datetime.timedelta(days=40),
                    days=30)  # fmt: skip
    crt = pki.write(tmp_path / "c.pem", leaf.certificate_pem)
    key = pki.write(tmp_path / "k.pem", leaf.key_pem)
    result = _refused(layout, "--cert", str(crt), "--key", str(key))
    assert result.stderr == (
        f"Error: the certificate expired on {leaf.certificate.not_valid_after_utc:%Y-%m-%d}\nHint: get a new one\n"
    )


def test_encrypted_key(
    layout: InstanceLayout, tmp_path: Path, chain: tuple[pki.Issued, pki.Issued, pki.Issued]
) -> None:
    leaf = chain[2]
    crt = pki.write(tmp_path / "c.pem", leaf.certificate_pem)
    key = pki.write(tmp_path / "k.pem", pki.encrypted_key_pem(leaf))
    result = _refused(layout, "--cert", str(crt), "--key", str(key))
    assert result.stderr == (
        f"Error: {key}: the private key is encrypted\n"
        f"Hint: the server cannot ask for its password: decrypt it first (openssl pkey -in {key} -out KEY)\n"
    )


def test_not_pem(layout: InstanceLayout, tmp_path: Path, chain: tuple[pki.Issued, pki.Issued, pki.Issued]) -> None:
    crt = pki.write(tmp_path / "c.der", "not pem")
    key = pki.write(tmp_path / "k.pem", chain[2].key_pem)
    result = _refused(layout, "--cert", str(crt), "--key", str(key))
    assert result.stderr == (
        f"Error: {crt}: no PEM certificate in it\nHint: give a PEM file (-----BEGIN CERTIFICATE-----)\n"
    )


def test_a_missing_file_is_a_usage_error(layout: InstanceLayout, tmp_path: Path) -> None:
    result = invoke("-C", str(layout.root), "cert", "import", "--cert", str(tmp_path / "none.pem"), "--key", "x")
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == (
        f"Error: Invalid value for '--cert': File '{tmp_path / 'none.pem'}' does not exist."
    )
