"""The server's certificate renewer (``acme.auto``): what a check installs and signals, and the process that
runs checks (waits for the workers, survives a crashing check, stops with the master)."""

from __future__ import annotations

import datetime
import logging
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import regctl.tls.renewal
from regctl.config.server import ServerConfig
from regctl.errors import RegctlError
from regctl.registry import renewer
from regctl.tls.acme_client import IssuedCertificate
from regctl.tls.renewal import LOCK_FILE, ManagedCertificate, RenewalLock, RenewResult

NOW = datetime.datetime(2026, 1, 2, tzinfo=datetime.UTC)
ISSUED = IssuedCertificate("NEW CHAIN\n", "NEW KEY\n", NOW, NOW + datetime.timedelta(days=90))


def make_config(tmp_path: Path, **acme: object) -> ServerConfig:
    certs = tmp_path / "certs"
    certs.mkdir(exist_ok=True)
    return ServerConfig.model_validate({
        "http": {"addr": ":443", "tls": {"certificate": str(certs / "domain.crt"), "key": str(certs / "domain.key")}},
        "acme": {
            "directory": "https://ca.test/dir",
            "email": "ops@example.com",
            "domains": ["registry.example.com", "mirror.example.com"],
            "accountdir": str(tmp_path / "acme"),
            "challengedir": str(certs / "acme-challenge"),
            "httpaddr": ":80",
            "responder": "webroot",
            "auto": True,
            **acme,
        },
    })


def write(path: Path, text: str, mode: int) -> None:
    path.write_text(text)
    path.chmod(mode)


# -- installing ---------------------------------------------------------------------------------------------
def test_install_keeps_each_files_mode_owner_and_group(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    assert config.http.tls is not None
    key, cert = Path(config.http.tls.key), Path(config.http.tls.certificate)
    write(key, "OLD KEY\n", 0o640)
    write(cert, "OLD CHAIN\n", 0o644)
    root = os.geteuid() == 0
    if root:  # the renewer runs as root, the workers as the server's user: the files must stay theirs
        os.chown(key, 0, 54321)
        os.chown(cert, 54321, 54321)
    renewer.install(config.http.tls, ISSUED)
    assert (key.read_text(), cert.read_text()) == ("NEW KEY\n", "NEW CHAIN\n")
    assert (key.stat().st_mode & 0o7777, cert.stat().st_mode & 0o7777) == (0o640, 0o644)
    if root:
        assert ((key.stat().st_uid, key.stat().st_gid), (cert.stat().st_uid, cert.stat().st_gid)) == (
            (0, 54321), (54321, 54321))
    assert sorted(p.name for p in key.parent.iterdir()) == ["domain.crt", "domain.key"]  # no temporary files


def test_install_writes_through_a_symlink(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    assert config.http.tls is not None
    target = tmp_path / "archive.crt"
    write(target, "OLD CHAIN\n", 0o644)
    Path(config.http.tls.certificate).symlink_to(target)
    renewer.install(config.http.tls, ISSUED)
    assert Path(config.http.tls.certificate).is_symlink()
    assert target.read_text() == "NEW CHAIN\n"
    assert Path(config.http.tls.key).stat().st_mode & 0o777 == 0o600  # new: private


def test_install_failure_is_one_clear_line_and_changes_nothing(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    assert config.http.tls is not None
    key = Path(config.http.tls.key)
    write(key, "OLD KEY\n", 0o600)
    gone = tmp_path / "gone" / "domain.crt"
    tls = config.http.tls.model_copy(update={"certificate": str(gone)})
    with pytest.raises(RegctlError) as info:
        renewer.install(tls, ISSUED)
    assert info.value.message == f"cannot install the new certificate: {gone}: No such file or directory"
    # The certificate could not be written, so the key was not replaced either.
    assert key.read_text() == "OLD KEY\n"
    assert [p.name for p in key.parent.iterdir()] == ["domain.key"]


def test_managed_certificate_from_the_config(tmp_path: Path) -> None:
    config = make_config(tmp_path, cabundle="/pebble.pem", renewdays=30, eabkid="kid", eabhmackey="aG1hYw",
                         httpport=8080, tlsport=8443)
    managed = renewer.managed_certificate(config)
    assert (managed.name, managed.domains) == ("registry.example.com", ("registry.example.com", "mirror.example.com"))
    assert (managed.certificate, managed.key) == (tmp_path / "certs/domain.crt", tmp_path / "certs/domain.key")
    assert (managed.account_dir, managed.renew_days) == (tmp_path / "acme", 30)
    settings = managed.settings
    assert (settings.directory, settings.email, settings.challenge, settings.responder) == (
        "https://ca.test/dir", "ops@example.com", "http-01", "webroot")
    assert (settings.challenge_dir, settings.ca_bundle) == (tmp_path / "certs/acme-challenge", Path("/pebble.pem"))
    assert (settings.eab_kid, settings.eab_hmac_key) == ("kid", "aG1hYw")
    assert (settings.http_port, settings.tls_port, settings.bind) == (8080, 8443, "")


# -- one check ----------------------------------------------------------------------------------------------
FakeRenew = Callable[..., RenewResult]


def fake_renew(status: str, detail: str) -> FakeRenew:
    def renew(managed: ManagedCertificate, install: Callable[[IssuedCertificate], None], **_: object) -> RenewResult:
        if status == "renewed":
            install(ISSUED)
        return RenewResult(managed.name, status, detail, ISSUED.not_after, "a hint" if status == "failed" else None)

    return renew


@pytest.fixture
def signals(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    sent: list[tuple[int, int]] = []
    monkeypatch.setattr(renewer.os, "kill", lambda pid, signum: sent.append((pid, signum)))
    return sent


def test_a_renewal_installs_the_files_then_signals_the_master(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, signals: list, caplog: pytest.LogCaptureFixture
) -> None:
    config = make_config(tmp_path)
    monkeypatch.setattr(regctl.tls.renewal, "renew", fake_renew("renewed", "due: 20 days left of 90"))
    caplog.set_level(logging.INFO, "regctl.renewer")
    assert renewer.check_once(config, master=4242) == 0
    assert (tmp_path / "certs/domain.crt").read_text() == "NEW CHAIN\n"
    assert signals == [(4242, signal.SIGHUP)]
    assert [(r.getMessage(), r.detail) for r in caplog.records] == [  # type: ignore[attr-defined]
        ("certificate renewed", "due: 20 days left of 90")]


@pytest.mark.parametrize(
    ("status", "code", "message", "level"),
    [("not-due", 0, "certificate not due", logging.INFO), ("failed", 2, "certificate renewal failed", logging.ERROR)],
)
def test_nothing_renewed_means_no_signal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, signals: list, caplog: pytest.LogCaptureFixture,
    status: str, code: int, message: str, level: int,
) -> None:
    monkeypatch.setattr(regctl.tls.renewal, "renew", fake_renew(status, "why"))
    caplog.set_level(logging.INFO, "regctl.renewer")
    assert renewer.check_once(make_config(tmp_path), master=4242) == code
    assert signals == []
    assert [(r.getMessage(), r.levelno, r.detail) for r in caplog.records] == [  # type: ignore[attr-defined]
        (message, level, "why")]


def test_a_renewal_already_running_skips_the_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, signals: list, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(regctl.tls.renewal, "renew", fake_renew("renewed", "forced"))
    with RenewalLock(tmp_path / "acme" / LOCK_FILE):  # `regctl cert renew` holds it
        assert renewer.check_once(make_config(tmp_path), master=4242) == 2
    assert signals == []
    assert not (tmp_path / "certs/domain.crt").exists()
    assert caplog.records[-1].getMessage() == "certificate check skipped"
    assert caplog.records[-1].reason == f"another renewal is running (pid {os.getpid()})"  # type: ignore[attr-defined]


# -- the process --------------------------------------------------------------------------------------------
def wait_for(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_checks_start_once_the_workers_listen_survive_crashes_and_stop_with_the_master(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marks = tmp_path / "checks"

    def check(config: ServerConfig, master: int | None = None) -> int:
        with marks.open("a") as f:
            f.write(f"{os.getpid()} {master}\n")
        os._exit(9)  # as hard as a crash gets: no exception, no cleanup

    monkeypatch.setattr(renewer, "check_once", check)
    monkeypatch.setattr(renewer, "RETRY_DELAY", 0.05)
    process = renewer.Renewer(make_config(tmp_path, checkinterval=3600))
    try:
        time.sleep(0.3)
        assert not marks.exists(), "a check ran before the workers listened"
        process.workers_ready()
        wait_for(lambda: marks.exists() and len(marks.read_text().splitlines()) >= 3, "three checks")
        lines = marks.read_text().splitlines()
        assert len({line.split()[0] for line in lines}) == len(lines)  # each check is a process of its own
        assert {line.split()[1] for line in lines} == {str(os.getpid())}  # SIGHUP goes to the master
        assert process.process.is_alive()
    finally:
        process.stop()
    assert process.process.exitcode == 0


def test_stopping_ends_a_check_in_progress(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    started = tmp_path / "started"

    def check(config: ServerConfig, master: int | None = None) -> int:
        started.touch()
        time.sleep(600)  # an order waiting for a slow CA
        return 0

    monkeypatch.setattr(renewer, "check_once", check)
    process = renewer.Renewer(make_config(tmp_path))
    process.workers_ready()
    wait_for(started.exists, "the check to start")
    process.stop()
    assert process.process.exitcode == 0
