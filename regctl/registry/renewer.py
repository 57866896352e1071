"""``acme.auto``: the server renews its own certificate, in a process of its own.

The master forks the renewer before it drops privileges (``--run-as``), so when started as root the renewer
stays root: it can read a 0600 account key and replace root-owned certificate files. It serves no request.
It talks to the master over one socket pair:

- once every worker listens, the master sends one byte; the first check waits for it, because the
  workers answer the webroot responder's challenges (HTTP-01 tokens on ``registry.acme_http``, TLS-ALPN-01
  certificates on their TLS listener, ``registry.alpn``);
- the master closing its end (stopping, or dying) tells the renewer to stop.

Each check runs in a child process: :func:`regctl.tls.renewal.renew` under ``accountdir``'s
:func:`~regctl.tls.renewal.account_lock` (the one ``regctl cert renew`` takes too), installing the key and
then the certificate with their mode, owner and group kept, then SIGHUP to the master, whose workers load
the new certificate without dropping a connection. Whatever goes wrong in a check (the CA, the ACME library,
a crash), the renewer logs it and tries again later while the registry keeps serving the old certificate:
every ``checkinterval``, and after a failure sooner (``RETRY_DELAY``, doubling up to ``checkinterval``).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import socket
import stat
import sys
from multiprocessing.connection import wait
from pathlib import Path
from typing import TYPE_CHECKING

from regctl.config.server import TLS, Acme, ServerConfig
from regctl.deploy.files import temp_beside, write_new
from regctl.errors import RegctlError

if TYPE_CHECKING:
    from regctl.tls.acme_client import IssuedCertificate
    from regctl.tls.renewal import ManagedCertificate, RenewResult

log = logging.getLogger("regctl.renewer")

# First retry after a failed check; Let's Encrypt allows 5 failed validations per name and hour.
RETRY_DELAY = 600.0
_STOP_GRACE = 10.0
_READY = b"r"
# Exit codes of a check process; anything else is a crash.
_OK, _FAILED = 0, 2


class Renewer:
    """The master's handle on the renewer process (started by the constructor)."""

    def __init__(self, config: ServerConfig) -> None:
        assert config.acme is not None and config.http.tls is not None
        self._conn, child = socket.socketpair()
        context = multiprocessing.get_context("fork")
        self.process = context.Process(
            target=_main, args=(config, child, os.getpid(), self._conn), name="regctl-renewer"
        )
        self.process.start()
        child.close()

    @property
    def conn(self) -> socket.socket:
        """The master's end: close it in every other process the master forks."""
        return self._conn

    def workers_ready(self) -> None:
        with contextlib.suppress(OSError):  # the renewer is gone; the master logs that on its own
            self._conn.send(_READY)

    def stop(self) -> None:
        """Ask the renewer to stop and wait for it (bounded: it stops its check process within a grace)."""
        if self._conn.fileno() == -1:  # stopped already
            return
        self._conn.close()
        self.process.join(2 * _STOP_GRACE)
        if self.process.is_alive():  # a renewer started as root cannot be killed by a master that is not
            log.warning("certificate renewer did not stop", extra={"renewer_pid": self.process.pid})


# -- the renewer process ------------------------------------------------------------------------------------
def _main(config: ServerConfig, conn: socket.socket, master: int, master_end: socket.socket) -> None:
    master_end.close()
    # Signals to the whole process group (Ctrl-C, a hang-up, systemd stopping the unit) reach the renewer too:
    # the master decides, and closes the socket once its workers have stopped.
    for signum in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):
        signal.signal(signum, signal.SIG_IGN)
    assert config.acme is not None
    interval = float(config.acme.checkinterval)
    log.info("certificate renewer started", extra={"domains": ",".join(config.acme.domains), "uid": os.geteuid()})
    failures = 0
    if not _sleep(conn, None):
        return
    while True:
        code = _run_check(config, conn, master)
        if code is None:
            return
        failures = 0 if code == _OK else failures + 1
        delay = interval if failures == 0 else min(interval, RETRY_DELAY * 2 ** (failures - 1))
        if code not in (_OK, _FAILED):
            log.error("certificate check crashed", extra={"exit_code": code, "retry_in": delay})
        if not _sleep(conn, delay):
            return


def _sleep(conn: socket.socket, seconds: float | None) -> bool:
    """Wait ``seconds`` (None: for the master's ready byte); False when the master asks to stop."""
    conn.settimeout(seconds)
    try:
        return _received(conn)
    except TimeoutError:
        return True


def _received(conn: socket.socket) -> bool:
    """Read the master's byte; False once the master closed its end (or is gone)."""
    try:
        return conn.recv(1) != b""
    except TimeoutError:
        raise
    except OSError:
        return False


def _run_check(config: ServerConfig, conn: socket.socket, master: int) -> int | None:
    """One check in a child process; its exit code, or None when the master asked to stop meanwhile."""
    check = multiprocessing.get_context("fork").Process(
        target=_check, args=(config, master, conn), name="regctl-renewer-check", daemon=True
    )
    check.start()
    conn.setblocking(True)
    while check.sentinel not in wait([conn, check.sentinel]):
        if not _received(conn):
            check.terminate()
            check.join(_STOP_GRACE)
            if check.is_alive():
                check.kill()
            check.join()
            return None
    check.join()
    assert check.exitcode is not None
    return check.exitcode


def _check(config: ServerConfig, master: int, conn: socket.socket) -> None:
    conn.close()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # how the renewer stops a check
    try:
        code = check_once(config, master)
    except Exception:
        log.exception("certificate check failed unexpectedly")
        code = 1
    sys.exit(code)


def check_once(config: ServerConfig, master: int | None = None) -> int:
    """Renew when due, install, signal ``master`` (SIGHUP) after a renewal; log the result. 0, or 2 on failure."""
    from regctl.tls.renewal import account_lock, renew

    assert config.acme is not None and config.http.tls is not None
    tls = config.http.tls
    try:
        with account_lock(Path(config.acme.accountdir)):
            result = renew(
                managed_certificate(config),
                lambda issued: install(tls, issued),
                progress=lambda line: log.info("renewing certificate", extra={"step": line}),
            )
    except RegctlError as exc:  # the lock: `regctl cert renew` is running
        log.warning("certificate check skipped", extra={"reason": exc.message})
        return _FAILED
    _log_result(result)
    if result.status in ("renewed", "issued") and master is not None:
        os.kill(master, signal.SIGHUP)
    return _FAILED if result.failed else _OK


def _log_result(result: RenewResult) -> None:
    fields = {"certificate": result.name, "detail": result.detail}
    if result.failed:
        log.error("certificate renewal failed", extra={**fields, "hint": result.hint})
    elif result.status == "not-due":
        log.info("certificate not due", extra=fields)
    else:
        log.info("certificate renewed", extra=fields)


def managed_certificate(config: ServerConfig) -> ManagedCertificate:
    """The certificate ``http.tls`` serves, renewed as the ``acme`` section says."""
    from regctl.tls.acme_client import AcmeSettings
    from regctl.tls.renewal import ManagedCertificate

    acme: Acme | None = config.acme
    tls: TLS | None = config.http.tls
    assert acme is not None and tls is not None
    settings = AcmeSettings(
        directory=acme.directory,
        email=acme.email,
        challenge=acme.challenge,
        responder=acme.responder,
        http_port=acme.httpport,
        tls_port=acme.tlsport,
        challenge_dir=Path(acme.challengedir) if acme.challengedir else None,
        eab_kid=acme.eabkid,
        eab_hmac_key=acme.eabhmackey,
        ca_bundle=Path(acme.cabundle) if acme.cabundle else None,
    )
    return ManagedCertificate(
        name=acme.domains[0],
        certificate=Path(tls.certificate),
        key=Path(tls.key),
        domains=tuple(acme.domains),
        settings=settings,
        account_dir=Path(acme.accountdir),
        renew_days=acme.renewdays,
    )


# -- installing -----------------------------------------------------------------------------------------------
def install(tls: TLS, issued: IssuedCertificate) -> None:
    """Put the new key and certificate in place of ``tls``'s files, keeping each file's mode, owner and group
    (a new file gets 0600 for the key, 0644 for the certificate). Both are written in full next to the old
    ones first, then renamed over them, key first: a failure before the renames changes nothing, and a worker
    that looks in between keeps its current pair (``registry.tls``). RegctlError on failure."""
    staged: list[tuple[Path, Path]] = []
    target = Path(tls.key)
    try:
        for path, data, mode in ((tls.key, issued.key_pem, 0o600), (tls.certificate, issued.fullchain_pem, 0o644)):
            target = Path(os.path.realpath(path))  # a symlink (certbot's live/) keeps pointing at the new file
            staged.append((_stage(target, data, mode), target))
        # The server stopping between the two renames would leave a key and a certificate that do not match.
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        try:
            for temp, target in staged:
                os.replace(temp, target)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    except OSError as exc:
        raise RegctlError(
            f"cannot install the new certificate: {target}: {exc.strerror}",
            f"the renewer runs as uid {os.geteuid()}: it must be able to replace the files in "
            f"{Path(tls.certificate).parent} (keeping their owner)",
        ) from None
    finally:
        for temp, _ in staged:
            temp.unlink(missing_ok=True)


def _stage(target: Path, data: str, new_mode: int) -> Path:
    """A temporary file next to ``target`` holding ``data``, with ``target``'s mode, owner and group (or
    ``new_mode`` and ours), which it has before it holds anything."""
    try:
        st = os.stat(target)
        mode, owner = stat.S_IMODE(st.st_mode), (st.st_uid, st.st_gid)
    except FileNotFoundError:
        mode, owner = new_mode, None
    temp = temp_beside(target)
    try:
        write_new(temp, data, mode, exact=True, owner=owner)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return temp
