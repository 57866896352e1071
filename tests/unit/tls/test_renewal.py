"""``regctl.tls.renewal``: when a certificate is due, and that a failed renewal leaves the served one alone.

The CA is replaced by a stand-in here (``issue`` and ``renewal_window``); tests/integration/test_acme_*.py
renew against pebble.
"""

from __future__ import annotations

import datetime
import multiprocessing
import os
import signal
from collections.abc import Sequence
from pathlib import Path

import pytest
from helpers import pki

from regctl.errors import RegctlError
from regctl.tls import renewal
from regctl.tls.acme_client import AcmeSettings, IssuedCertificate
from regctl.tls.renewal import ManagedCertificate, RenewalLock, due_at

HOST = "registry.example.com"
ISSUED_AT = datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC)


class FakeCA:
    """Issues 90-day certificates from a local CA; counts orders; can refuse, and can suggest an ARI time."""

    def __init__(self) -> None:
        self.root = pki.root(now=ISSUED_AT)
        self.orders: list[tuple[str, ...]] = []
        self.refusal: RegctlError | None = None
        self.ari: datetime.datetime | None = None

    def issue(
        self, settings: AcmeSettings, account: object, domains: Sequence[str], progress: object
    ) -> IssuedCertificate:
        self.orders.append(tuple(domains))
        if self.refusal is not None:
            raise self.refusal
        leaf = pki.leaf(self.root, *domains, now=ISSUED_AT + datetime.timedelta(days=60), days=90)
        certificate = leaf.certificate
        return IssuedCertificate(
            leaf.certificate_pem, leaf.key_pem, certificate.not_valid_before_utc, certificate.not_valid_after_utc
        )

    def renewal_window(self, settings: AcmeSettings, account: object, pem: bytes) -> datetime.datetime | None:
        return self.ari


@pytest.fixture
def ca(monkeypatch: pytest.MonkeyPatch) -> FakeCA:
    fake = FakeCA()
    monkeypatch.setattr(renewal, "issue", fake.issue)
    monkeypatch.setattr(renewal, "renewal_window", fake.renewal_window)
    return fake


@pytest.fixture
def managed(tmp_path: Path, ca: FakeCA) -> ManagedCertificate:
    served = pki.leaf(ca.root, HOST, now=ISSUED_AT, days=90)
    (tmp_path / "domain.crt").write_text(served.certificate_pem)
    (tmp_path / "domain.key").write_text(served.key_pem)
    return ManagedCertificate(
        name="registry",
        certificate=tmp_path / "domain.crt",
        key=tmp_path / "domain.key",
        domains=(HOST,),
        settings=AcmeSettings(directory="https://ca.invalid/dir"),
        account_dir=tmp_path / "acme",
    )


class Installed(list[IssuedCertificate]):
    def __call__(self, issued: IssuedCertificate) -> None:
        self.append(issued)


def at(days: float) -> datetime.datetime:
    return ISSUED_AT + datetime.timedelta(days=days)


def test_due_when_a_third_of_the_lifetime_is_left(managed: ManagedCertificate) -> None:
    leaf = pki.leaf(pki.root(now=ISSUED_AT), HOST, now=ISSUED_AT, days=90)
    due = due_at(leaf.certificate, None, None)
    lifetime = leaf.certificate.not_valid_after_utc - leaf.certificate.not_valid_before_utc
    assert due == leaf.certificate.not_valid_after_utc - lifetime / 3
    assert due_at(leaf.certificate, 10, None) == leaf.certificate.not_valid_after_utc - datetime.timedelta(days=10)


def test_an_earlier_ari_window_wins_a_later_one_does_not() -> None:
    leaf = pki.leaf(pki.root(now=ISSUED_AT), HOST, now=ISSUED_AT, days=90).certificate
    default = due_at(leaf, None, None)
    assert due_at(leaf, None, at(5)) == at(5)
    assert due_at(leaf, None, at(89)) == default
    naive = datetime.datetime(2030, 1, 6)  # acme's renewal_time is naive UTC for expired certificates
    assert due_at(leaf, None, naive) == at(5)


def test_not_due_changes_nothing(managed: ManagedCertificate, ca: FakeCA) -> None:
    before = managed.certificate.read_bytes()
    installed = Installed()
    result = renewal.renew(managed, installed, now=at(30))
    assert result.status == "not-due"
    assert result.detail.startswith("not due until 2030-03-01")
    assert "days left of 90 days" in result.detail
    assert not result.failed
    assert ca.orders == [] and installed == []
    assert managed.certificate.read_bytes() == before


def test_due_renews_and_installs(managed: ManagedCertificate, ca: FakeCA) -> None:
    installed = Installed()
    result = renewal.renew(managed, installed, now=at(65))
    assert result.status == "renewed"
    assert ca.orders == [(HOST,)]
    assert len(installed) == 1
    assert result.not_after == installed[0].not_after
    assert result.detail.startswith("due: 25 days left")


def test_ari_window_makes_it_due_early(managed: ManagedCertificate, ca: FakeCA) -> None:
    ca.ari = at(20)
    result = renewal.renew(managed, Installed(), now=at(30))
    assert result.status == "renewed"
    assert "the CA's renewal window" in result.detail


def test_force_renews_what_is_not_due(managed: ManagedCertificate, ca: FakeCA) -> None:
    result = renewal.renew(managed, Installed(), force=True, now=at(1))
    assert result.status == "renewed"
    assert result.detail.startswith("forced (89 days left)")


def test_dry_run_decides_without_ordering(managed: ManagedCertificate, ca: FakeCA) -> None:
    installed = Installed()
    assert renewal.renew(managed, installed, dry_run=True, now=at(65)).status == "would-renew"
    assert renewal.renew(managed, installed, dry_run=True, now=at(30)).status == "not-due"
    assert ca.orders == [] and installed == []


def test_missing_certificate_is_issued(managed: ManagedCertificate, ca: FakeCA) -> None:
    managed.certificate.unlink()
    result = renewal.renew(managed, Installed(), now=at(30))
    assert result.status == "issued"
    assert result.detail.startswith("no certificate yet")


def test_a_name_added_to_the_configuration_makes_it_due(managed: ManagedCertificate, ca: FakeCA) -> None:
    wider = ManagedCertificate(**{**managed.__dict__, "domains": (HOST, "mirror.example.com")})
    result = renewal.renew(wider, Installed(), now=at(1))
    assert result.status == "renewed"
    assert "does not cover mirror.example.com" in result.detail
    assert ca.orders == [(HOST, "mirror.example.com")]


def test_expired_certificate_says_so(managed: ManagedCertificate, ca: FakeCA) -> None:
    result = renewal.renew(managed, Installed(), now=at(120))
    assert result.status == "renewed"
    assert result.detail.startswith("expired on 2030-04-01")


def test_refusal_keeps_the_served_certificate(managed: ManagedCertificate, ca: FakeCA) -> None:
    before = managed.certificate.read_bytes()
    ca.refusal = RegctlError("the CA refused the order: rateLimited: too many certificates", "wait an hour")
    installed = Installed()
    result = renewal.renew(managed, installed, now=at(65))
    assert result.failed
    assert result.detail == (
        "the CA refused the order: rateLimited: too many certificates; "
        "still serving the certificate valid until 2030-04-01"
    )
    assert result.hint == "wait an hour"
    assert installed == []
    assert managed.certificate.read_bytes() == before


def test_failing_install_is_a_failed_result(managed: ManagedCertificate, ca: FakeCA) -> None:
    def install(issued: IssuedCertificate) -> None:
        raise RegctlError("cannot write domain.crt: Read-only file system")

    result = renewal.renew(managed, install, now=at(65))
    assert result.failed
    assert result.detail.startswith("cannot write domain.crt: Read-only file system")


def test_lock_refuses_a_second_renewal(tmp_path: Path) -> None:
    path = tmp_path / "run" / "acme.lock"
    with RenewalLock(path):
        with pytest.raises(RegctlError) as refused, RenewalLock(path):
            pass
        assert refused.value.message == f"another renewal is running (pid {os.getpid()})"
    with RenewalLock(path):  # released on exit
        pass


def _hold(path: Path, ready: multiprocessing.synchronize.Event) -> None:  # type: ignore[name-defined]
    with RenewalLock(path):
        ready.set()
        signal.pause()


def test_lock_of_a_killed_renewal_is_free(tmp_path: Path) -> None:
    path = tmp_path / "acme.lock"
    context = multiprocessing.get_context("fork")
    ready = context.Event()
    holder = context.Process(target=_hold, args=(path, ready))
    holder.start()
    try:
        assert ready.wait(10)
        with pytest.raises(RegctlError, match=f"pid {holder.pid}"), RenewalLock(path):
            pass
    finally:
        holder.kill()
        holder.join()
    with RenewalLock(path):
        pass
