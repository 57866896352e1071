"""``regctl serve`` with an ``acme`` section, against a real Pebble (``helpers.pebble``) with real validation.

Pebble's DNS resolves every name to 127.0.0.1 and it fetches HTTP-01 tokens from ``127.0.0.1:<http_port>``,
which is where the registry's own challenge listener (``acme.httpaddr``) listens. So the challenge answered
is the registry's: the webroot responder writes the token file, and a worker serves it. For TLS-ALPN-01
Pebble's ``tls_port`` is the registry's own port: the workers' TLS listener presents the challenge
certificate the webroot responder wrote, next to the clients it serves.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from helpers.certs import cert_pem, issue, make_ca
from helpers.client_loop import ClientLoop
from helpers.pebble import Pebble, PebbleFactory
from helpers.secure import tls_get
from helpers.servers import REPO_ROOT, RegistryFactory, RegistryProcess, free_port

from regctl.tls.accounts import AccountStore
from regctl.tls.acme_client import AcmeSettings
from regctl.tls.acme_client import issue as acme_issue

DOMAIN = "registry.acme.test"
RENEW_TIMEOUT = 90.0


@pytest.fixture
def factory(tmp_path: Path) -> Iterator[RegistryFactory]:
    started = RegistryFactory(tmp_path / "servers")
    yield started
    started.stop_all()


def acme_section(pebble: Pebble, tmp_path: Path, **extra: object) -> dict:
    return {
        "directory": pebble.directory_url,
        "email": "ops@example.com",
        "domains": [DOMAIN],
        "accountdir": str(tmp_path / "acme"),
        "challengedir": str(tmp_path / "challenges"),
        "httpaddr": f"127.0.0.1:{pebble.http_port}",
        "cabundle": str(pebble.ca_bundle),
        **extra,
    }


def first_certificate(tmp_path: Path) -> tuple[Path, Path, x509.Certificate]:
    """A certificate from a CA of the test's own (what `regctl init` makes before the first ACME order)."""
    ca = make_ca("pre-ACME test CA")
    leaf = issue(ca, DOMAIN, hosts=(DOMAIN, "127.0.0.1"))
    cert, key = tmp_path / "domain.crt", tmp_path / "domain.key"
    leaf.write(cert, key, chain=cert_pem(ca.cert))
    return cert, key, ca.cert


def webroot_order(ca: Pebble, tmp_path: Path, **settings: Any) -> tuple[list[str], x509.Certificate]:
    """An order whose challenge files go to tmp_path/challenges for the running registry to answer, with the
    account in tmp_path/acme; (its progress lines, the leaf), checked to be signed by ``ca``'s intermediate."""
    steps: list[str] = []
    issued = acme_issue(
        AcmeSettings(directory=ca.directory_url, responder="webroot", challenge_dir=tmp_path / "challenges",
                     ca_bundle=ca.ca_bundle, **settings),
        AccountStore(tmp_path / "acme"), [DOMAIN], steps.append,
    )
    leaf = x509.load_pem_x509_certificate(issued.fullchain_pem.encode())
    assert leaf.issuer == x509.load_pem_x509_certificate(ca.intermediate_pem().encode()).subject
    return steps, leaf


def served_chain(port: int, context: ssl.SSLContext) -> tuple[int, x509.Certificate]:
    """GET /v2/ for DOMAIN on a new verified connection to 127.0.0.1:port; (status, the served leaf)."""
    status, _, leaf = tls_get(port, context, DOMAIN)
    return status, leaf


def http_get(url: str) -> tuple[int, dict[str, str], bytes]:
    """A plain-HTTP GET that does not follow redirects and ignores proxies."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: object, **kwargs: object) -> None:
            return None

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), NoRedirect())
    try:
        with opener.open(url, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


# -- the registry's listener answers HTTP-01 -----------------------------------------------------------------
def test_registry_listener_answers_http01_for_a_webroot_order(
    pebble: Pebble, factory: RegistryFactory, tmp_path: Path
) -> None:
    cert, key, _ = first_certificate(tmp_path)
    server = factory.start("regctl", log_level="info", extra={
        "log": {"accesslog": {"disabled": False}},
        "http": {"tls": {"certificate": str(cert), "key": str(key)}},
        "acme": acme_section(pebble, tmp_path),
    })
    challenges = tmp_path / "challenges"
    steps, leaf = webroot_order(pebble, tmp_path, email="ops@example.com")
    assert leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName) == [DOMAIN]
    # Pebble fetched the token from the registry's listener, and the responder removed the file afterwards.
    assert '"GET /.well-known/acme-challenge/' in server.log_text()
    assert " 200 " in next(line for line in server.log_text().splitlines() if "acme-challenge" in line)
    assert list(challenges.iterdir()) == []
    assert any(step.startswith("answering http-01 for registry.acme.test") for step in steps)

    # Everything else on the plain port is sent to HTTPS, on the registry's own port.
    status, headers, _ = http_get(f"http://127.0.0.1:{pebble.http_port}/v2/_catalog?n=5")
    assert (status, headers["Location"]) == (308, f"https://127.0.0.1:{server.port}/v2/_catalog?n=5")
    status, _, _ = http_get(f"http://127.0.0.1:{pebble.http_port}/.well-known/acme-challenge/gone-token")
    assert status == 404


@pytest.mark.parametrize("auto", [False, True])
def test_a_taken_challenge_port_is_one_clear_error(tmp_path: Path, auto: bool) -> None:
    cert, key, _ = first_certificate(tmp_path)
    with socket.socket() as holder:  # a web server already on "port 80"
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        config = tmp_path / "config.yml"
        config.write_text(
            "version: 0.1\nstorage: {inmemory: {}}\n"
            f"http: {{addr: '127.0.0.1:{free_port()}', tls: {{certificate: {cert}, key: {key}}}}}\n"
            f"acme: {{directory: 'https://127.0.0.1:1/dir', domains: [{DOMAIN}], accountdir: {tmp_path / 'acme'}, "
            f"challengedir: {tmp_path / 'challenges'}, httpaddr: '127.0.0.1:{port}', auto: {str(auto).lower()}}}\n"
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith(("REGISTRY_", "REGCTL_"))}
        done = subprocess.run([sys.executable, "-m", "regctl", "serve", "--workers", "2", str(config)],
                              cwd=REPO_ROOT, env={**env, "NO_COLOR": "1"}, capture_output=True, text=True,
                              timeout=60)
    assert done.returncode == 1
    # With auto, the renewer had started (it logs so) and stopped with the master.
    assert done.stderr.endswith(
        f"Error: cannot listen on 127.0.0.1:{port}: address already in use\n"
        "Hint: stop the other server on that port, or choose another with acme.httpaddr\n"
    )
    assert len(done.stderr.splitlines()) == 2 + auto


# -- auto: the server renews by itself -----------------------------------------------------------------------
Served = tuple[int, x509.Certificate]  # what served_chain returns


def client_loop(port: int, context: ssl.SSLContext) -> ClientLoop[Served]:
    """Verified GETs on new connections, from before the server listens (so the first certificate is seen)."""
    return ClientLoop(lambda: served_chain(port, context), until_up=(ConnectionRefusedError,))


def wait_renewed(loop: ClientLoop[Served], server: RegistryProcess, intermediate: x509.Certificate) -> None:
    """Until the client loop's last connection got a certificate from pebble's intermediate."""
    deadline = time.monotonic() + RENEW_TIMEOUT
    while not (loop.results and loop.results[-1][1].issuer == intermediate.subject):
        assert server.running, server.log_tail()
        assert time.monotonic() < deadline, f"not renewed:\n{server.log_tail()}"
        time.sleep(0.05)


def renewed_under_load(
    server: RegistryProcess, context: ssl.SSLContext, first_ca: x509.Certificate, intermediate: x509.Certificate
) -> None:
    """Start ``server`` under a client loop and wait until it serves pebble's certificate on both workers: no
    request failed, and the loop saw the first CA's certificate before pebble's."""
    with client_loop(server.port, context) as loop:
        server.start()
        wait_renewed(loop, server, intermediate)
        loop.wait_for_more()  # both workers keep serving the new one
    assert loop.failures == []
    assert {status for status, _ in loop.results} == {200}
    assert loop.results[0][1].issuer == first_ca.subject  # what was served before the renewal
    assert {leaf.issuer for _, leaf in loop.results[-10:]} == {intermediate.subject}


# How the renewer answers: through the workers' listener, or on its own for the time of the order.
ANSWERS = {
    "webroot": lambda pebble: {},
    "standalone-http-01": lambda pebble: {"httpaddr": None, "responder": "standalone", "httpport": pebble.http_port},
    "standalone-tls-alpn-01": lambda pebble: {"httpaddr": None, "challenge": "tls-alpn-01",
                                              "tlsport": pebble.tls_port},
}


@pytest.mark.parametrize("answer", list(ANSWERS))
def test_auto_renews_a_due_certificate_while_clients_keep_going(
    pebble: Pebble, factory: RegistryFactory, tmp_path: Path, answer: str
) -> None:
    cert, key, first_ca = first_certificate(tmp_path)
    key.chmod(0o640)
    # The first certificate is valid for a day: with renewdays 2 it is due at once; Pebble's (5 years) is not.
    server = factory.create("regctl", log_level="info", port=free_port(), extra={
        "http": {"tls": {"certificate": str(cert), "key": str(key)}},
        "acme": acme_section(pebble, tmp_path, auto=True, renewdays=2, **ANSWERS[answer](pebble)),
    })
    context = ssl.create_default_context(cadata=cert_pem(first_ca).decode() + pebble.root_pem())
    intermediate = x509.load_pem_x509_certificate(pebble.intermediate_pem().encode())
    renewed_under_load(server, context, first_ca, intermediate)
    assert x509.load_pem_x509_certificates(cert.read_bytes())[1].subject == intermediate.subject  # full chain
    assert key.stat().st_mode & 0o777 == 0o640  # the operator's mode is kept
    log = server.log_text()
    assert "msg=\"certificate renewed\"" in log
    assert "msg=\"reload requested, forwarding to workers\"" in log
    assert "certificate renewal failed" not in log

    # A restart finds the new certificate not due, and keeps it.
    served = served_chain(server.port, context)[1]
    server.stop()
    second_run = server.log_size()
    server.start()
    deadline = time.monotonic() + RENEW_TIMEOUT
    while "certificate not due" not in server.log_text(second_run):
        assert time.monotonic() < deadline, server.log_tail(second_run)
        time.sleep(0.1)
    assert served_chain(server.port, context)[1] == served


# -- TLS-ALPN-01 answered by the registry's own TLS listener ----------------------------------------------------
def test_the_registrys_tls_port_answers_tls_alpn01_while_clients_keep_going(
    pebble_factory: PebbleFactory, factory: RegistryFactory, tmp_path: Path
) -> None:
    """Only the registry's port is open: pebble validates TLS-ALPN-01 against that very port, where the
    workers keep serving clients, and the renewal needs neither a port of its own nor a restart."""
    port = free_port()
    ca = pebble_factory(tls_port=port)
    try:
        cert, key, first_ca = first_certificate(tmp_path)
        server = factory.create("regctl", log_level="info", port=port, extra={
            "http": {"tls": {"certificate": str(cert), "key": str(key)}},
            "acme": acme_section(ca, tmp_path, auto=True, renewdays=2, httpaddr=None, challenge="tls-alpn-01",
                                 responder="webroot", tlsport=port),
        })
        context = ssl.create_default_context(cadata=cert_pem(first_ca).decode() + ca.root_pem())
        intermediate = x509.load_pem_x509_certificate(ca.intermediate_pem().encode())
        renewed_under_load(server, context, first_ca, intermediate)
        log = server.log_text()
        assert 'msg="tls-alpn-01 challenge answered" ' in log and f"server_name={DOMAIN}" in log
        assert "msg=\"certificate renewed\"" in log and "certificate renewal failed" not in log
        assert list((tmp_path / "challenges").rglob("*.pem")) == []  # the responder removed its files
        assert server.stop() == 0
    finally:
        ca.close()


def test_a_webroot_order_answered_by_the_registrys_tls_port(
    pebble_factory: PebbleFactory, factory: RegistryFactory, tmp_path: Path
) -> None:
    """What `regctl cert renew` does while the registry runs: the order's files, the registry's handshake."""
    port = free_port()
    ca = pebble_factory(tls_port=port)
    try:
        cert, key, first_ca = first_certificate(tmp_path)
        factory.start("regctl", log_level="info", port=port, extra={
            "http": {"tls": {"certificate": str(cert), "key": str(key)}},
            "acme": acme_section(ca, tmp_path, httpaddr=None, challenge="tls-alpn-01", responder="webroot"),
        })
        challenges = tmp_path / "challenges"
        steps, _ = webroot_order(ca, tmp_path, challenge="tls-alpn-01")
        assert f"answering tls-alpn-01 for {DOMAIN} on {challenges}" in steps
        assert list(challenges.iterdir()) == []  # the files, and the tls-alpn-01 directory the order made
        # Meanwhile, normal clients got the registry's own certificate, as always.
        context = ssl.create_default_context(cadata=cert_pem(first_ca).decode())
        assert served_chain(port, context) == (200, x509.load_pem_x509_certificates(cert.read_bytes())[0])
    finally:
        ca.close()


class RunAsNobody(RegistryProcess):
    """``regctl serve --run-as nobody``, as the server image runs it (with its own user)."""

    def command(self) -> list[str]:
        return [*super().command(), "--run-as", "nobody"]


@pytest.fixture
def public_dir() -> Iterator[Path]:
    """A directory other users may enter (pytest's own tmp_path is root-only)."""
    path = Path(tempfile.mkdtemp(prefix="regctl-acme-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to serve --run-as another user")
def test_auto_renews_as_root_while_the_workers_run_unprivileged(pebble: Pebble, public_dir: Path) -> None:
    nobody = pwd.getpwnam("nobody")
    certs = public_dir / "certs"
    certs.mkdir(mode=0o755)
    cert, key, first_ca = first_certificate(certs)
    os.chown(key, 0, nobody.pw_gid)  # the seed's layout: root's files, the key readable by the server's group
    key.chmod(0o640)
    config = {
        "http": {"tls": {"certificate": str(cert), "key": str(key)}},
        "acme": acme_section(pebble, public_dir, auto=True, renewdays=2),
    }
    server = RunAsNobody("regctl", public_dir / "root", public_dir / "server", port=free_port(), log_level="info",
                         extra=config)
    context = ssl.create_default_context(cadata=cert_pem(first_ca).decode() + pebble.root_pem())
    intermediate = x509.load_pem_x509_certificate(pebble.intermediate_pem().encode())
    try:
        with client_loop(server.port, context) as loop:
            server.start()
            wait_renewed(loop, server, intermediate)
    finally:
        server.stop()
    assert loop.failures == []
    log = server.log_text()
    assert f"regctl serve: running as nobody (uid {nobody.pw_uid}, gid {nobody.pw_gid})" in log
    assert "msg=\"certificate renewer started\"" in log and " uid=0\n" in log
    # The renewer, as root, made the 0700 account directory and replaced root's files keeping owner and mode.
    account = public_dir / "acme"
    assert (account.stat().st_uid, account.stat().st_mode & 0o777) == (0, 0o700)
    assert (key.stat().st_uid, key.stat().st_gid, key.stat().st_mode & 0o777) == (0, nobody.pw_gid, 0o640)
    assert x509.load_pem_x509_certificates(cert.read_bytes())[0].issuer == intermediate.subject


def test_auto_failures_are_logged_and_the_registry_keeps_serving(factory: RegistryFactory, tmp_path: Path) -> None:
    cert, key, first_ca = first_certificate(tmp_path)
    closed = f"https://127.0.0.1:{free_port()}/dir"  # nothing listens there
    server = factory.start("regctl", log_level="info", extra={
        "http": {"tls": {"certificate": str(cert), "key": str(key)}},
        "acme": {"directory": closed, "domains": [DOMAIN], "accountdir": str(tmp_path / "acme"),
                 "responder": "standalone", "httpport": free_port(), "auto": True, "renewdays": 2},
    })
    deadline = time.monotonic() + RENEW_TIMEOUT
    while "certificate renewal failed" not in server.log_text():
        assert time.monotonic() < deadline, server.log_tail()
        time.sleep(0.1)
    line = next(line for line in server.log_text().splitlines() if "certificate renewal failed" in line)
    assert "level=error" in line and closed in line and "still serving the certificate valid until" in line
    context = ssl.create_default_context(cadata=cert_pem(first_ca).decode())
    status, leaf = served_chain(server.port, context)
    assert (status, leaf.issuer) == (200, first_ca.subject)

    # The renewer itself dying (the OOM killer, say) is logged; the registry goes on.
    renewer_pid = int(re.search(r'msg="certificate renewer started" .*?pid=(\d+)', server.log_text())[1])
    os.kill(renewer_pid, signal.SIGKILL)
    while "certificate renewer exited" not in server.log_text():
        assert time.monotonic() < deadline, server.log_tail()
        time.sleep(0.1)
    assert 'msg="certificate renewer exited, the certificate is no longer renewed automatically"' in server.log_text()
    assert served_chain(server.port, context)[0] == 200
    assert server.stop() == 0
