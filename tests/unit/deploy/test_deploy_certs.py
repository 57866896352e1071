"""An instance's TLS files: the own CA and its leaves, imports, status, trust, tls.mode and SIGHUP."""

from __future__ import annotations

import datetime
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import pki

from regctl.deploy import certs, runtime
from regctl.deploy.init import build_config, create_instance
from regctl.deploy.instance import InstanceConfig, InstanceLayout, load_config
from regctl.deploy.process_runtime import ProcessRuntime
from regctl.errors import RegctlError
from regctl.tls import bundle

HOST = "registry.example.com"


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


@pytest.fixture
def instance(tmp_path: Path) -> tuple[InstanceLayout, InstanceConfig]:
    config = build_config({"host": HOST, "runtime": "process"})
    return create_instance(tmp_path, config).layout, config


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o7777


# -- cert selfsigned -------------------------------------------------------------------------------------------------
def test_selfsigned_makes_the_ca_once_and_reuses_it(instance: tuple[InstanceLayout, InstanceConfig]) -> None:
    layout, config = instance
    first = certs.issue_selfsigned(config, layout, days=30, extra_names=("reg.internal", "10.0.0.5"))
    assert first.ca_created
    assert (mode(layout.certs), mode(layout.ca_key), mode(layout.ca_certificate)) == (0o2750, 0o600, 0o644)
    assert (mode(layout.tls_key), mode(layout.tls_certificate)) == (0o640, 0o644)
    leaf = bundle.load_certificates(layout.tls_certificate.read_bytes(), "crt")[0]
    assert bundle.names(leaf) == [HOST, "localhost", "reg.internal", "127.0.0.1", "::1", "10.0.0.5"]
    assert bundle.days_left(leaf, now()) == 29
    second = certs.issue_selfsigned(config, layout)
    assert not second.ca_created
    assert second.ca.certificate == first.ca.certificate
    assert bundle.issued_by(second.leaf.certificate, first.ca.certificate)
    assert second.leaf.certificate != first.leaf.certificate
    assert certs.selfsigned_is_current(config, layout)


def test_an_expired_ca_is_replaced(instance: tuple[InstanceLayout, InstanceConfig]) -> None:
    layout, config = instance
    certs.issue_selfsigned(config, layout, now=now() - datetime.timedelta(days=4000))
    assert certs.issue_selfsigned(config, layout).ca_created


def test_a_foreign_ca_pair_is_refused(instance: tuple[InstanceLayout, InstanceConfig]) -> None:
    layout, config = instance
    certs.issue_selfsigned(config, layout)
    layout.ca_certificate.write_text(pki.root().certificate_pem)
    with pytest.raises(RegctlError) as info:
        certs.issue_selfsigned(config, layout)
    assert (info.value.message, info.value.hint) == (
        f"{layout.ca_certificate} and {layout.ca_key} are not this instance's CA pair",
        "remove both to make a new CA (clients must then trust it again: `regctl cert trust`)",
    )


def test_selfsigned_is_current(instance: tuple[InstanceLayout, InstanceConfig]) -> None:
    layout, config = instance
    assert not certs.selfsigned_is_current(config, layout)
    certs.issue_selfsigned(config, layout)
    assert certs.selfsigned_is_current(config, layout)
    assert not certs.selfsigned_is_current(config.model_copy(update={"host": "other.test"}), layout)
    assert not certs.selfsigned_is_current(config, layout, now=now() + datetime.timedelta(days=340))


# -- cert import -----------------------------------------------------------------------------------------------------
def _files(tmp_path: Path, *, days: int = 90) -> tuple[Path, Path, Path, pki.Issued, pki.Issued, pki.Issued]:
    root = pki.root(now=now())
    middle = pki.intermediate(root, now=now())
    leaf = pki.leaf(middle, HOST, now=now(), days=days)
    return (
        pki.write(tmp_path / "in.crt", pki.pem(middle, leaf)),  # the wrong order, as happens
        pki.write(tmp_path / "in.key", leaf.key_pem),
        pki.write(tmp_path / "chain.pem", pki.pem(root)),
        root,
        middle,
        leaf,
    )


def test_import_installs_the_chain_in_order(instance: tuple[InstanceLayout, InstanceConfig], tmp_path: Path) -> None:
    layout, config = instance
    crt, key, chain, root, middle, leaf = _files(tmp_path)
    result = certs.import_bundle(config, layout, crt, key, chain)
    assert result.reordered and result.warnings == []
    assert layout.tls_certificate.read_text() == pki.pem(leaf, middle)
    assert layout.ca_certificate.read_text() == root.certificate_pem
    assert bundle.key_matches(leaf.certificate, bundle.load_private_key(layout.tls_key.read_bytes(), "k"))
    assert (mode(layout.tls_key), mode(layout.tls_certificate), mode(layout.ca_certificate)) == (0o640, 0o644, 0o644)


def test_a_failed_import_writes_nothing(instance: tuple[InstanceLayout, InstanceConfig], tmp_path: Path) -> None:
    layout, config = instance
    crt, _, chain, *_ = _files(tmp_path)
    other = pki.write(tmp_path / "other.key", pki.leaf(pki.root(), HOST).key_pem)
    with pytest.raises(RegctlError) as info:
        certs.import_bundle(config, layout, crt, other, chain)
    assert info.value.message == f"the key {other} does not match any of the certificates given"
    assert not layout.certs.exists()


# -- cert status -----------------------------------------------------------------------------------------------------
def test_status_of_a_good_certificate(instance: tuple[InstanceLayout, InstanceConfig]) -> None:
    layout, config = instance
    certs.issue_selfsigned(config, layout)
    info = certs.tls_status(config, layout)
    assert info["mode"] == "none"  # regctl.yaml is the CLI's business (set_tls_mode)
    assert (info["certificate"], info["key"]) == (str(layout.tls_certificate), str(layout.tls_key))
    assert (info["key_matches"], info["covers_host"], info["chain_ok"], info["problems"]) == (True, True, True, [])


def test_status_lists_each_problem(instance: tuple[InstanceLayout, InstanceConfig], tmp_path: Path) -> None:
    layout, config = instance
    certs.issue_selfsigned(config, layout, days=10)
    stale = pki.leaf(pki.root(), "other.test", now=now())
    layout.tls_key.write_text(stale.key_pem)
    info = certs.tls_status(config, layout)
    assert info["problems"] == [
        f"{layout.tls_key} does not match the certificate",
        "the certificate expires in 9 days: renew it soon",
    ]
    layout.tls_certificate.write_text(pki.pem(pki.root(), stale))
    layout.tls_key.write_text("junk")
    info = certs.tls_status(config, layout)
    assert info["problems"] == [
        f"{layout.tls_key}: no PEM private key in it",
        f"the certificate does not cover {HOST}",
        f"{layout.tls_certificate} is not in order (each certificate followed by its issuer)",
    ]
    expired = pki.leaf(pki.root(), HOST, now=now() - datetime.timedelta(days=20), days=10)
    layout.tls_certificate.write_text(expired.certificate_pem)
    layout.tls_key.write_text(expired.key_pem)
    expected = f"the certificate expired on {(now() - datetime.timedelta(days=10)):%Y-%m-%d}"
    assert certs.tls_status(config, layout)["problems"] == [expected]


@pytest.mark.parametrize(
    ("tls", "hint"),
    [
        ("none", "TLS is off (tls.mode: none): `regctl cert selfsigned` or `regctl cert import` turns it on"),
        ("selfsigned", "issue one with `regctl cert selfsigned`"),
        ("files", "install one with `regctl cert import --cert FILE --key FILE`"),
    ],
)
def test_status_without_a_certificate(tmp_path: Path, tls: str, hint: str) -> None:
    layout = InstanceLayout(tmp_path)
    config = build_config({"tls.mode": tls})
    with pytest.raises(RegctlError) as info:
        certs.tls_status(config, layout)
    assert (info.value.message, info.value.hint) == (f"no certificate in {layout.tls_certificate}", hint)


# -- cert trust ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("host", "port", "where"),
    [
        ("registry.test", 5000, "registry.test:5000"),
        ("registry.test", 443, "registry.test"),
        ("::1", 5000, "[::1]:5000"),
    ],
)
def test_trust_path_is_dockers(host: str, port: int, where: str) -> None:
    config = build_config({"host": host, "port": port})
    assert certs.trust_path(config) == Path("/etc/docker/certs.d") / where / "ca.crt"


def test_install_trust(instance: tuple[InstanceLayout, InstanceConfig], tmp_path: Path) -> None:
    layout, config = instance
    certs.issue_selfsigned(config, layout)
    destination = certs.install_trust(config, layout, tmp_path / "certs.d")
    assert destination == tmp_path / "certs.d" / f"{HOST}:5000" / "ca.crt"
    assert destination.read_text() == layout.ca_certificate.read_text()
    assert mode(destination) == 0o644


def test_install_trust_failures(instance: tuple[InstanceLayout, InstanceConfig], tmp_path: Path) -> None:
    layout, config = instance
    with pytest.raises(RegctlError) as info:
        certs.install_trust(config, layout, tmp_path / "certs.d")
    assert (info.value.message, info.value.hint) == (
        f"no CA certificate in {layout.ca_certificate}",
        "`regctl cert selfsigned` makes one; `regctl cert import` and `regctl cert issue` take the top of "
        "the chain they install",
    )
    certs.issue_selfsigned(config, layout)
    blocker = pki.write(tmp_path / "file", "not a directory")
    with pytest.raises(RegctlError) as info:
        certs.install_trust(config, layout, blocker)
    assert info.value.message == f"cannot write {blocker / f'{HOST}:5000' / 'ca.crt'}: Not a directory"


# -- tls.mode in regctl.yaml -----------------------------------------------------------------------------------------
def test_set_tls_mode(instance: tuple[InstanceLayout, InstanceConfig]) -> None:
    layout, _ = instance
    assert certs.set_tls_mode(layout, "files") == "none"
    assert load_config(layout).tls.mode == "files"
    assert load_config(layout).host == HOST
    before = layout.config.read_text()
    assert certs.set_tls_mode(layout, "files") == "files"
    assert layout.config.read_text() == before
    assert yaml.safe_load(before)["tls"]["mode"] == "files"


# -- SIGHUP to the running server ------------------------------------------------------------------------------------
def test_reload_signals_the_process(
    instance: tuple[InstanceLayout, InstanceConfig], monkeypatch: pytest.MonkeyPatch
) -> None:
    layout, config = instance
    child = subprocess.Popen(
        [sys.executable, "-c", "import signal, sys, time\n"
         "signal.signal(signal.SIGHUP, lambda *_: (print('reloaded', flush=True), sys.exit(0)))\n"
         "print('ready', flush=True)\ntime.sleep(30)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert child.stdout is not None and child.stdout.readline() == "ready\n"
        monkeypatch.setattr(ProcessRuntime, "running_pid", lambda self: child.pid)
        assert certs.reload_server(config, layout) == f"pid {child.pid}"
        assert child.stdout.readline() == "reloaded\n"
    finally:
        child.kill()
        child.wait()


def test_nothing_running(instance: tuple[InstanceLayout, InstanceConfig], monkeypatch: pytest.MonkeyPatch) -> None:
    layout, config = instance
    monkeypatch.setattr(runtime, "connect", _no_engine_wanted)
    assert certs.reload_server(config, layout) is None  # runtime: process: the engine is not asked


def _no_engine_wanted(*args: object) -> None:
    raise AssertionError("the Docker engine was asked")


class _Container:
    def __init__(self, labels: dict[str, str], status: str) -> None:
        self.labels = labels
        self.status = status
        self.signals: list[str] = []

    def kill(self, signal: str) -> None:
        self.signals.append(signal)


def _engine(container: _Container | None) -> Any:
    import docker.errors

    class Containers:
        def get(self, name: str) -> _Container:
            if container is None:
                raise docker.errors.NotFound("no such container")
            return container

    return type("Client", (), {"containers": Containers()})()


@pytest.mark.parametrize(
    ("container", "expected"),
    [
        (_Container({"io.regctl.instance": "registry"}, "running"), "container registry"),
        (_Container({"io.regctl.instance": "registry"}, "exited"), None),
        (_Container({}, "running"), None),  # not regctl's
        (None, None),
    ],
)
def test_reload_signals_the_container(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, container: _Container | None, expected: str | None
) -> None:
    layout = create_instance(tmp_path, InstanceConfig()).layout  # runtime auto
    monkeypatch.setattr(runtime, "connect", lambda: (_engine(container), "unix:///var/run/docker.sock"))
    assert certs.reload_server(InstanceConfig(), layout) == expected
    if container is not None:
        assert container.signals == (["SIGHUP"] if expected else [])


def test_reload_without_an_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    layout = create_instance(tmp_path, InstanceConfig()).layout

    def unreachable() -> None:
        raise RegctlError("Docker engine not reachable at unix:///var/run/docker.sock: connection refused")

    monkeypatch.setattr(runtime, "connect", unreachable)
    assert certs.reload_server(InstanceConfig(), layout) is None
