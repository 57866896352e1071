"""tls.mode acme as an operator drives it, against a real ACME CA: Debian's pebble (Let's Encrypt's test CA)
with pebble-challtestsrv resolving every name to 127.0.0.1, and real HTTP-01 and TLS-ALPN-01 validation.

``regctl init --tls acme`` issues for a made-up domain, ``regctl up`` serves it with the process runtime,
and clients reach the registry by that name through a CONNECT proxy (helpers.connect_proxy), so they verify
the chain and the name exactly as against a public registry: skopeo with pebble's root as its only extra CA.
"""

from __future__ import annotations

import http.client
import itertools
import os
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from helpers.client_loop import ClientLoop
from helpers.connect_proxy import connect_proxy
from helpers.pebble import Pebble, PebbleFactory
from helpers.pebble_fixtures import EAB_KID
from helpers.secure import tls_get
from helpers.servers import REPO_ROOT, free_port
from helpers.tools import require_tool, run

DOMAIN = "registry.acme.test"
REPO = "acme/hello"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def text(result: subprocess.CompletedProcess[bytes]) -> str:
    return (result.stdout + result.stderr).decode(errors="replace")


def regctl_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REGISTRY_", "REGCTL_"))}
    return {**env, "NO_COLOR": "1", "TERM": "dumb", "COLUMNS": "200", "PYTHONUNBUFFERED": "1"}


@dataclass
class AcmeInstance:
    """An instance directory for ``regctl -C ROOT ...``, its registry port and the CA it gets certificates from."""

    root: Path
    port: int
    pebble: Pebble

    def __call__(self, *args: str, check: bool = True, input: bytes | None = None) -> subprocess.CompletedProcess:
        return run(
            sys.executable, "-m", "regctl", "-C", str(self.root), *args,
            env=regctl_env(), check=check, input=input, cwd=REPO_ROOT, timeout=180,
        )  # fmt: skip

    def init(self, *args: str, check: bool = True, input: bytes | None = None) -> subprocess.CompletedProcess:
        return self(
            "init", "--yes", "--runtime", "process", "--port", str(self.port), "--data-path", str(self.root / "data"),
            "--tls", "acme", "--domain", DOMAIN, "--email", "ops@example.com",
            "--acme-directory", self.pebble.directory_url, "--acme-ca-bundle", str(self.pebble.ca_bundle),
            "--acme-http-port", str(self.pebble.http_port), *args, check=check, input=input,
        )  # fmt: skip

    def installed(self) -> x509.Certificate:
        return x509.load_pem_x509_certificates((self.root / "certs" / "domain.crt").read_bytes())[0]

    def served(self, root_pem: Path) -> x509.Certificate:
        """The certificate the registry sends for DOMAIN, verified against ``root_pem`` (name included)."""
        context = ssl.create_default_context(cafile=str(root_pem))
        with (
            socket.create_connection(("127.0.0.1", self.port), timeout=5) as raw,
            context.wrap_socket(raw, server_hostname=DOMAIN) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
        assert der is not None
        return x509.load_der_x509_certificate(der)

    def wait_served(self, root_pem: Path, serial: int, timeout: float = 15) -> None:
        """Until the registry sends the certificate with ``serial`` (it switches on SIGHUP)."""
        deadline = time.monotonic() + timeout
        while self.served(root_pem).serial_number != serial:
            assert time.monotonic() < deadline, "the registry still serves the old certificate"
            time.sleep(0.1)


def _instance(tmp_path: Path, pebble: Pebble) -> AcmeInstance:
    return AcmeInstance(tmp_path, free_port(), pebble)


@pytest.fixture(scope="module")
def proxy() -> Iterator[str]:
    with connect_proxy() as url:
        yield url


@pytest.fixture(scope="module")
def ca(pebble_factory: PebbleFactory) -> Iterator[Pebble]:
    """A pebble of this module's own: one test stops it."""
    server = pebble_factory()
    yield server
    server.close()


@pytest.fixture(scope="module")
def served(ca: Pebble, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AcmeInstance]:
    """An instance whose certificate `regctl init` got from pebble, up with the process runtime."""
    instance = _instance(tmp_path_factory.mktemp("acme-instance"), ca)
    init = instance.init()
    said = text(init)
    assert f"Requesting a certificate for {DOMAIN} from {ca.directory_url}" in said, said
    assert f"answering http-01 for {DOMAIN} on :{ca.http_port}" in said, said
    assert f"Installed {instance.root}/certs/domain.crt for {DOMAIN}, issued by CN=Pebble Intermediate CA" in said
    instance("up")
    yield instance
    instance("down", check=False)


@pytest.fixture
def pebble_root(ca: Pebble, tmp_path: Path) -> Path:
    """pebble's current root (it makes a new one on every start), as a cert dir's ca.crt for skopeo."""
    cert_dir = tmp_path / "pebble-ca"
    cert_dir.mkdir()
    return ca.write_root(cert_dir / "ca.crt")


def skopeo(proxy: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("no_proxy", "http_proxy", "https_proxy")}
    return run(require_tool("skopeo"), *args, env={**env, "HTTPS_PROXY": proxy}, check=check)


# -- issue, serve, verify --------------------------------------------------------------------------------------
def test_skopeo_verifies_the_chain_against_pebbles_root(
    served: AcmeInstance, proxy: str, pebble_root: Path, sample_images, tmp_path: Path
) -> None:
    ref = f"docker://{DOMAIN}:{served.port}/{REPO}:1"
    skopeo(proxy, "copy", "--dest-cert-dir", str(pebble_root.parent), sample_images.oci_ref(), ref)
    skopeo(proxy, "copy", "--src-cert-dir", str(pebble_root.parent), ref, f"oci:{tmp_path / 'pulled'}:1")
    assert served.served(pebble_root) == served.installed()

    other = tmp_path / "other-ca"
    other.mkdir()
    (other / "ca.crt").write_text(served.pebble.ca_bundle.read_text())  # a CA, but not the one that signed it
    refused = skopeo(proxy, "inspect", "--cert-dir", str(other), ref, check=False)
    assert refused.returncode != 0
    assert "certificate signed by unknown authority" in text(refused)


def test_status_shows_the_ca_and_the_next_renewal(served: AcmeInstance) -> None:
    said = served("cert", "status").stdout.decode()
    assert f"ACME CA      {served.pebble.directory_url}" in said
    assert "Account      https://127.0.0.1:" in said
    assert "Renewal      due " in said


def test_renew_when_nothing_is_due_changes_nothing(served: AcmeInstance, pebble_root: Path) -> None:
    before = (served.root / "certs" / "domain.crt").read_bytes(), (served.root / "certs" / "domain.key").read_bytes()
    result = served("cert", "renew")
    assert result.returncode == 0
    report = " ".join(result.stdout.decode().split())
    assert report.startswith("Certificate Result Valid until Detail registry not due ")
    assert "not due until " in report
    after = (served.root / "certs" / "domain.crt").read_bytes(), (served.root / "certs" / "domain.key").read_bytes()
    assert after == before
    assert served.served(pebble_root) == served.installed()


def test_forced_renewal_drops_no_request(
    served: AcmeInstance, proxy: str, pebble_root: Path, sample_images
) -> None:
    skopeo(proxy, "copy", "--dest-cert-dir", str(pebble_root.parent), sample_images.oci_ref(),
           f"docker://{DOMAIN}:{served.port}/{REPO}:pulled")  # fmt: skip
    old = served.served(pebble_root)
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({"https": proxy}),
        urllib.request.HTTPSHandler(context=ssl.create_default_context(cafile=str(pebble_root))),
    )
    base = f"https://{DOMAIN}:{served.port}/v2/{REPO}"
    urls = itertools.cycle([(f"{base}/manifests/pulled", OCI_MANIFEST)]
                           + [(f"{base}/blobs/{digest}", "*/*") for digest in sample_images.oci.blobs])

    def pull() -> int:  # a new connection, so a new handshake, for every request
        url, accept = next(urls)
        with opener.open(urllib.request.Request(url, headers={"Accept": accept}), timeout=10) as resp:
            resp.read()
            return resp.status

    with ClientLoop(pull, threads=4) as clients:
        clients.wait_for_more()  # pulling is under way before the renewal starts
        result = served("cert", "renew", "--force")
        new = served.installed()
        served.wait_served(pebble_root, new.serial_number)
        clients.wait_for_more()  # and goes on over the new certificate
    assert clients.failures == []
    assert set(clients.results) == {200}
    said = text(result)
    assert "registry     renewed " in said, said
    assert "Sent SIGHUP to the server (pid " in said, said
    assert new.serial_number != old.serial_number
    assert served.served(pebble_root).serial_number == new.serial_number


def test_tls_alpn_01(pebble: Pebble, tmp_path: Path) -> None:
    instance = _instance(tmp_path, pebble)
    said = text(instance.init("--acme-challenge", "tls-alpn-01", "--acme-tls-port", str(pebble.tls_port)))
    assert f"answering tls-alpn-01 for {DOMAIN} on :{pebble.tls_port}" in said, said
    assert instance.installed().subject.rfc4514_string() == f"CN={DOMAIN}"


# -- failures ----------------------------------------------------------------------------------------------------
def test_unreachable_ca_keeps_the_certificate(served: AcmeInstance, ca: Pebble, pebble_root: Path) -> None:
    before = served.installed()
    ca.stop()
    try:
        result = served("cert", "renew", "--force", check=False)
        issue = served("cert", "issue", check=False)
    finally:
        ca.start()
    assert result.returncode == 1
    report = " ".join(result.stdout.decode().split())
    assert f"registry FAILED {before.not_valid_after_utc:%Y-%m-%d} cannot reach the ACME CA at {ca.directory_url}: " \
           "connection refused; still serving the certificate valid until " in report, report
    assert "Hint (registry): check the directory URL and that this machine can reach it over HTTPS" in text(result)
    assert issue.returncode == 1
    assert issue.stderr.decode().splitlines()[1:] == [
        f"Error: cannot reach the ACME CA at {ca.directory_url}: connection refused",
        "Hint: check the directory URL and that this machine can reach it over HTTPS (firewall, proxy)",
        f"Nothing changed: {served.root}/certs/domain.crt keeps serving",
    ]
    assert served.installed() == before
    assert served.served(pebble_root) == before


def test_eab_required(pebble_eab: Pebble, tmp_path: Path) -> None:
    instance = _instance(tmp_path, pebble_eab)
    refused = instance.init(check=False)
    said = text(refused)
    assert refused.returncode == 1, said
    assert f"Error: the CA at {pebble_eab.directory_url} requires External Account Binding\n" in said, said
    assert "Hint: this CA requires External Account Binding" in said, said
    assert "The instance is written; `regctl cert issue` tries again once the cause is fixed" in said
    assert not (tmp_path / "certs" / "domain.crt").exists()

    [(kid, key)] = pebble_eab.eab.items()
    assert kid == EAB_KID
    accepted = instance.init("--force", "--acme-eab-kid", kid, "--acme-eab-hmac-key-stdin", input=key.encode())
    assert f"Installed {tmp_path}/certs/domain.crt for {DOMAIN}" in text(accepted)
    assert (tmp_path / "secrets" / "acme-eab-hmac").stat().st_mode & 0o777 == 0o600
    assert key not in (tmp_path / "regctl.yaml").read_text()


# -- the registry's own listener answers http-01 --------------------------------------------------------------
def test_the_registry_answers_http01(pebble_factory: PebbleFactory, tmp_path: Path, proxy: str) -> None:
    ca = pebble_factory()  # its http-01 port is the registry's for the whole test
    instance = _instance(tmp_path, ca)
    first = text(instance.init("--acme-responder", "registry"))
    assert f"answering http-01 for {DOMAIN} on :{ca.http_port}" in first, first  # not running yet: regctl answers
    instance("up")
    try:
        renewed = text(instance("cert", "renew", "--force"))
        challenges = tmp_path / "certs" / "acme-challenge"
        assert f"answering http-01 for {DOMAIN} on {challenges}" in renewed, renewed
        assert list(challenges.iterdir()) == []  # tokens are removed once the order is done
        root = ca.write_root(tmp_path / "root.pem")
        instance.wait_served(root, instance.installed().serial_number)
        plain = http.client.HTTPConnection("127.0.0.1", ca.http_port, timeout=5)
        plain.request("GET", "/v2/", headers={"Host": DOMAIN})
        response = plain.getresponse()
        assert (response.status, response.getheader("Location")) == (308, f"https://{DOMAIN}:{instance.port}/v2/")
        plain.close()
    finally:
        instance("down", check=False)
        ca.close()


# -- only 443 open: the registry's own TLS port answers tls-alpn-01 --------------------------------------------------
def test_the_registry_answers_tls_alpn01_on_its_own_port(pebble_factory: PebbleFactory, tmp_path: Path) -> None:
    port = free_port()
    ca = pebble_factory(tls_port=port)  # pebble validates TLS-ALPN-01 on the registry's port itself
    instance = AcmeInstance(tmp_path, port, ca)
    first = text(instance.init("--acme-challenge", "tls-alpn-01", "--acme-responder", "registry",
                               "--acme-tls-port", str(port)))
    assert f"answering tls-alpn-01 for {DOMAIN} on :{port}" in first, first  # not running yet: regctl answers
    instance("up")
    root = ca.write_root(tmp_path / "root.pem")
    context = ssl.create_default_context(cafile=str(root))

    def get() -> int:  # a new connection, so a new handshake, for every request
        return tls_get(port, context, DOMAIN)[0]

    challenges = tmp_path / "certs" / "acme-challenge"
    try:
        with ClientLoop(get, threads=4) as clients:
            clients.wait_for_more()
            before = instance.installed()
            renewed = text(instance("cert", "renew", "--force"))
            assert f"answering tls-alpn-01 for {DOMAIN} on {challenges}" in renewed, renewed  # the registry answered
            assert "registry     renewed " in renewed, renewed
            new = instance.installed()
            instance.wait_served(root, new.serial_number)
            clients.wait_for_more()  # and goes on over the new certificate
    finally:
        instance("down", check=False)
        ca.close()
    assert clients.failures == []
    assert set(clients.results) == {200}
    assert new.serial_number != before.serial_number
    assert list(challenges.rglob("*.pem")) == []
    log = (tmp_path / "run" / "regctl.log").read_text()
    assert 'msg="tls-alpn-01 challenge answered"' in log
