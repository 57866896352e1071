"""When an ACME certificate is due, and renewing it without ever losing the one being served.

Like certbot's ``renewal.should_autorenew``: a certificate is due when a third of its lifetime is left (or
``renew_days`` before it expires, when set), or earlier when the CA's ARI window (RFC 9773) says so; one
that is missing, unreadable or no longer covers every configured name is due at once. :func:`renew` never
raises for a failed renewal: it returns a :class:`RenewResult` saying why, and leaves the installed files
alone, so the old certificate keeps serving. :class:`RenewalLock` keeps two renewals (a timer and an
operator, or the server's renewer) from ordering at the same time.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal, Self

from cryptography import x509

from regctl.deploy.files import private_dir
from regctl.errors import RegctlError
from regctl.tls import bundle
from regctl.tls.accounts import AccountStore
from regctl.tls.acme_client import AcmeSettings, IssuedCertificate, issue, renewal_window

# In the account directory: `regctl cert renew` and the server's renewer (acme.auto) take the same lock.
LOCK_FILE = "renew.lock"

Status = Literal["renewed", "issued", "not-due", "would-renew", "failed"]


@dataclass(frozen=True)
class ManagedCertificate:
    """One certificate regctl keeps renewed: where it is served from and how to get a new one."""

    name: str
    certificate: Path  # the full chain the server sends
    key: Path
    domains: tuple[str, ...]
    settings: AcmeSettings
    account_dir: Path
    renew_days: int | None = None  # None: when a third of the lifetime is left, or the CA's ARI window


@dataclass(frozen=True)
class RenewResult:
    name: str
    status: Status
    detail: str  # one line: why it was (not) renewed, or what failed
    not_after: datetime.datetime | None  # of the certificate served afterwards
    hint: str | None = None

    @property
    def failed(self) -> bool:
        return self.status == "failed"


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def default_due(certificate: x509.Certificate, renew_days: int | None) -> datetime.datetime:
    """``renew_days`` before expiry, or when a third of the lifetime is left."""
    not_after = certificate.not_valid_after_utc
    if renew_days is not None:
        return not_after - datetime.timedelta(days=renew_days)
    return not_after - (not_after - certificate.not_valid_before_utc) / 3


def due_at(
    certificate: x509.Certificate, renew_days: int | None, ari: datetime.datetime | None
) -> datetime.datetime:
    """When ``certificate`` should be renewed: :func:`default_due`, or the CA's ARI time when that is earlier
    (a CA moves its window forward when it must revoke)."""
    due = default_due(certificate, renew_days)
    if ari is not None:
        ari = ari if ari.tzinfo else ari.replace(tzinfo=datetime.UTC)
        due = min(due, ari)
    return due


def _days(delta: datetime.timedelta) -> str:
    days = delta.days
    return f"{days} day" if days == 1 else f"{days} days"


def _missing_names(certificate: x509.Certificate, domains: Sequence[str]) -> list[str]:
    return [name for name in domains if not bundle.covers(certificate, name)]


def _current(managed: ManagedCertificate) -> tuple[x509.Certificate | None, bytes, str | None]:
    """The served leaf and its PEM, or None and the reason it must be issued afresh."""
    try:
        data = managed.certificate.read_bytes()
    except FileNotFoundError:
        return None, b"", "no certificate yet"
    except OSError as exc:
        return None, b"", f"cannot read {managed.certificate}: {exc.strerror}"
    try:
        return x509.load_pem_x509_certificates(data)[0], data, None
    except ValueError:
        return None, b"", f"{managed.certificate} holds no PEM certificate"


def _why_due(
    managed: ManagedCertificate, leaf: x509.Certificate, pem: bytes, now: datetime.datetime
) -> tuple[bool, str]:
    missing = _missing_names(leaf, managed.domains)
    if missing:
        return True, f"the certificate does not cover {', '.join(missing)}"
    ari = renewal_window(managed.settings, AccountStore(managed.account_dir), pem)
    due = due_at(leaf, managed.renew_days, ari)
    left = leaf.not_valid_after_utc - now
    lifetime = leaf.not_valid_after_utc - leaf.not_valid_before_utc
    if left <= datetime.timedelta(0):
        return True, f"expired on {leaf.not_valid_after_utc:%Y-%m-%d}"
    if now >= due:
        window = " (the CA's renewal window)" if ari is not None and due == ari else ""
        return True, f"due{window}: {_days(left)} left of {_days(lifetime)}"
    return False, f"not due until {due:%Y-%m-%d} ({_days(left)} left of {_days(lifetime)})"


def renew(
    managed: ManagedCertificate,
    install: Callable[[IssuedCertificate], None],
    *,
    force: bool = False,
    dry_run: bool = False,
    now: datetime.datetime | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> RenewResult:
    """Renew ``managed`` when it is due (always with ``force``), handing the new certificate to ``install``.

    ``dry_run`` decides without ordering. A failure (the CA, the challenge, ``install``) is returned as a
    ``failed`` result; ``install`` is only called with a complete certificate, so the served one is replaced
    whole or not at all."""
    moment = now or _now()
    leaf, pem, missing = _current(managed)
    if leaf is None:
        due, reason = True, missing or "no certificate yet"
    elif force:
        due, reason = True, f"forced ({_days(leaf.not_valid_after_utc - moment)} left)"
    else:
        try:
            due, reason = _why_due(managed, leaf, pem, moment)
        except RegctlError as exc:
            return RenewResult(managed.name, "failed", exc.message, leaf.not_valid_after_utc, exc.hint)
    current_end = leaf.not_valid_after_utc if leaf is not None else None
    if not due:
        return RenewResult(managed.name, "not-due", reason, current_end)
    if dry_run:
        return RenewResult(managed.name, "would-renew", reason, current_end)
    progress(f"{managed.name}: {reason}")
    try:
        issued = issue(managed.settings, AccountStore(managed.account_dir), managed.domains, progress)
        install(issued)
    except RegctlError as exc:
        kept = f"; still serving the certificate valid until {current_end:%Y-%m-%d}" if current_end else ""
        return RenewResult(managed.name, "failed", exc.message + kept, current_end, exc.hint)
    status: Status = "issued" if leaf is None else "renewed"
    return RenewResult(managed.name, status, f"{reason}; now valid until {issued.not_after:%Y-%m-%d}", issued.not_after)


class RenewalLock:
    """An exclusive ``flock`` on ``path`` (holding the owner's pid) for the time of a renewal.

    The kernel drops the lock when the process dies, so a crashed renewal never blocks the next one."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def __enter__(self) -> Self:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip()
            os.close(fd)
            who = f" (pid {holder})" if holder.isdigit() else ""
            raise RegctlError(
                f"another renewal is running{who}", f"wait for it to finish; the lock is {self.path}"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)
            self._fd = None


def account_lock(account_dir: Path) -> RenewalLock:
    """The lock on orders made with the account in ``account_dir``. The directory is made private first, as
    AccountStore keeps it: RenewalLock would make it with the umask's mode."""
    private_dir(account_dir)
    return RenewalLock(account_dir / LOCK_FILE)
