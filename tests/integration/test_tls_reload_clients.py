"""A new certificate while real clients pull: zero failed requests, and the new certificate served afterwards.

``regctl serve`` (TLS + htpasswd, two workers) on 127.0.0.1, reached as ``localhost``. Two client loops run
the whole time, each opening new connections and verifying the server against the CA it was given:

- a Python loop: GET the manifest and the layer (Basic auth), checking the bytes and recording the serial
  number of the certificate each connection got;
- skopeo: ``skopeo copy --src-cert-dir DIR --src-creds alice:... docker://localhost:PORT/reload/app:1 dir:...``
  over and over, a full pull each time.

The certificate is replaced three ways: by an operator's tool writing new files (atomically, as certbot does),
by ``regctl cert selfsigned`` run again on the instance, and by ``regctl cert import --cert --key --chain``
with a certificate from another CA (which the clients were given beforehand, as an operator rolls out a new
CA first). The CLI variants serve the instance's own configuration (``regctl config show``).
"""

from __future__ import annotations

import http.client
import ssl
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from helpers.certs import cert_pem, issue, make_ca
from helpers.client_loop import ClientLoop
from helpers.images import OCI_MANIFEST, make_image, sha256_digest
from helpers.registry_api import RegistryClient, basic_auth
from helpers.secure import (
    SecureInstance,
    cli_env,
    client_context,
    file_serial,
    make_tls_files,
    served_serial,
    write_htpasswd,
)
from helpers.servers import RegistryFactory, RegistryProcess
from helpers.tools import describe, require_tool

pytestmark = pytest.mark.regctl

USER, PASSWORD = "alice", "alice-Rl-1"
HOST = "localhost"
REPO = "reload/app"
# Bounds, not assertions: how long to wait for both workers to pick the new certificate up (they poll every
# 2 s) and for the skopeo loop to complete pulls after the switch.
SWITCH_TIMEOUT = 60.0


@dataclass
class Served:
    server: RegistryProcess
    cas: list[bytes]  # what the clients trust
    cert_path: Path
    ca_dir: Path  # skopeo's --src-cert-dir
    replace: Callable[[], None]  # the operator's action


def wait(loop: ClientLoop[int], done: Callable[[list[int]], bool], what: str) -> None:
    deadline = time.monotonic() + SWITCH_TIMEOUT
    while not done(loop.results):
        assert not loop.failures, f"{what}: failed requests meanwhile: {loop.failures[:5]}"
        assert time.monotonic() < deadline, f"{what}: not seen within {SWITCH_TIMEOUT:.0f}s"
        time.sleep(0.05)


def python_pull(port: int, context: ssl.SSLContext, manifest: bytes, layer: bytes) -> int:
    """Manifest and layer over one new verified connection; returns the serial of the certificate it got."""
    conn = http.client.HTTPSConnection(HOST, port, context=context, timeout=30)
    try:
        headers = {**basic_auth(USER, PASSWORD), "Accept": OCI_MANIFEST}
        conn.request("GET", f"/v2/{REPO}/manifests/1", headers=headers)
        resp = conn.getresponse()
        body = resp.read()
        assert resp.status == 200 and body == manifest, f"manifest: HTTP {resp.status} {body[:200]!r}"
        conn.request("GET", f"/v2/{REPO}/blobs/{sha256_digest(layer)}", headers=headers)
        resp = conn.getresponse()
        body = resp.read()
        assert resp.status == 200 and body == layer, f"layer: HTTP {resp.status}, {len(body)} bytes"
        assert conn.sock is not None
        der = conn.sock.getpeercert(binary_form=True)
        assert der is not None
        return x509.load_der_x509_certificate(der).serial_number
    finally:
        conn.close()


def skopeo_pull(skopeo_bin: str, env: dict[str, str], ca_dir: Path, port: int, out: Path) -> int:
    result = subprocess.run(
        [skopeo_bin, "copy", "--src-cert-dir", str(ca_dir), "--src-creds", f"{USER}:{PASSWORD}",
         f"docker://{HOST}:{port}/{REPO}:1", f"dir:{out}"],
        env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=120, check=False,
    )
    assert result.returncode == 0, describe(result)
    return result.returncode


# -- the three ways -----------------------------------------------------------------------------------------
def _by_files(tmp_path: Path, factory: RegistryFactory) -> Served:
    tls = make_tls_files(tmp_path / "tls", (HOST, "127.0.0.1"))
    htpasswd = write_htpasswd(tmp_path / "htpasswd", {USER: PASSWORD})
    server = factory.start("regctl", extra={
        "http": {"tls": tls.server_tls()}, "auth": {"htpasswd": {"realm": "reload", "path": str(htpasswd)}}})

    def renew() -> None:
        tls.renew()

    return Served(server, [tls.ca_pem], tls.cert_path, _ca_dir(tmp_path, [tls.ca_pem]), renew)


def _ca_dir(tmp_path: Path, cas: list[bytes]) -> Path:
    """skopeo's cert dir: the CAs only (a *.key there would be taken for a client certificate's key)."""
    ca_dir = tmp_path / "client-cas"
    ca_dir.mkdir()
    (ca_dir / "ca.crt").write_bytes(b"".join(cas))
    return ca_dir


def _instance(tmp_path: Path, factory: RegistryFactory, port: int) -> SecureInstance:
    instance = SecureInstance.init(tmp_path / "registry", name="regctl-reload", domain=HOST, port=port,
                                   tls="selfsigned", auth="htpasswd", env=cli_env())
    if not instance.certificate_path().is_file():
        instance("cert", "selfsigned")
    instance.adduser(USER, PASSWORD)
    return instance


def _serve_instance(tmp_path: Path, factory: RegistryFactory, instance: SecureInstance, port: int,
                    cas: list[bytes], replace: Callable[[], None]) -> Served:
    server = factory.start("regctl", port=port, extra=instance.server_extra())
    return Served(server, cas, instance.certificate_path(), _ca_dir(tmp_path, cas), replace)


def _by_cert_selfsigned(tmp_path: Path, factory: RegistryFactory, port: int) -> Served:
    instance = _instance(tmp_path, factory, port)

    def again() -> None:
        result = instance("cert", "selfsigned", check=False)
        if result.returncode != 0 and "--force" in (result.stdout + result.stderr).decode():
            instance("cert", "selfsigned", "--force")  # the CLI wants the replacement confirmed
        elif result.returncode != 0:
            pytest.fail(describe(result), pytrace=False)

    return _serve_instance(tmp_path, factory, instance, port, [instance.ca_pem()], again)


def _by_cert_import(tmp_path: Path, factory: RegistryFactory, port: int) -> Served:
    instance = _instance(tmp_path, factory, port)
    other_ca = make_ca("the company CA")
    leaf = issue(other_ca, HOST, hosts=(HOST, "127.0.0.1"))
    bought = tmp_path / "bought"
    bought.mkdir()
    cert, key, chain = bought / "domain.crt", bought / "domain.key", bought / "intermediates.pem"
    leaf.write(cert, key)
    chain.write_bytes(cert_pem(other_ca.cert))

    def do_import() -> None:
        instance("cert", "import", "--cert", str(cert), "--key", str(key), "--chain", str(chain))

    return _serve_instance(tmp_path, factory, instance, port, [instance.ca_pem(), cert_pem(other_ca.cert)],
                           do_import)


@pytest.mark.parametrize("how", ["files", "cert-selfsigned", "cert-import"])
def test_certificate_replaced_while_clients_pull(how: str, tmp_path: Path, registry_factory: RegistryFactory,
                                                 free_port, skopeo):
    if how == "files":
        served = _by_files(tmp_path, registry_factory)
    elif how == "cert-selfsigned":
        served = _by_cert_selfsigned(tmp_path, registry_factory, free_port())
    else:
        served = _by_cert_import(tmp_path, registry_factory, free_port())
    port = served.server.port
    context = client_context(*served.cas)

    image = make_image({"reload.txt": b"pulled while the certificate changes\n" * 2000}, description="reload")
    admin = RegistryClient(f"https://{HOST}:{port}", context=context, headers=basic_auth(USER, PASSWORD))
    for blob in image.blobs.values():
        admin.push_blob(REPO, blob)
    admin.push_manifest(REPO, "1", image.manifest, OCI_MANIFEST)
    old = file_serial(served.cert_path)
    assert served_serial(HOST, port, context) == old

    py = ClientLoop(lambda: python_pull(port, context, image.manifest, image.layers[0])).start()
    counter = iter(range(1_000_000))
    sk = ClientLoop(lambda: skopeo_pull(require_tool("skopeo"), skopeo.env, served.ca_dir, port,
                                  tmp_path / f"pull-{next(counter)}")).start()
    try:
        wait(py, lambda r: len(r) >= 5, "python pulls before the switch")
        wait(sk, lambda r: len(r) >= 2, "skopeo pulls before the switch")

        served.replace()
        new = file_serial(served.cert_path)
        assert new != old, f"{how}: the certificate file did not change"
        wait(py, lambda r: len(r) >= 20 and all(s == new for s in r[-20:]), "the new certificate on every worker")
        seen = len(sk.results)
        wait(sk, lambda r: len(r) >= seen + 2, "skopeo pulls after the switch")
    finally:
        py.stop()
        sk.stop()

    assert py.failures == [], f"{how}: {len(py.failures)} failed Python pulls: {py.failures[:5]}"
    assert sk.failures == [], f"{how}: {len(sk.failures)} failed skopeo pulls: {sk.failures[:3]}"
    assert old in py.results and new in py.results
    assert served_serial(HOST, port, context) == new
    assert served.server.running, "the server stopped"
