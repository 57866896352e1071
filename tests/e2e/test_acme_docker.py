"""Let's Encrypt with the Docker runtime (issue 5): the container answers HTTP-01 itself, and the Docker engine
verifies the certificate pebble issued.

The instance is ``regctl init --tls acme --acme-responder registry`` for ``regctl-e2e-<session>.test``, which
``/etc/hosts`` and pebble's DNS (challtestsrv) both resolve to ``::1``: dockerd verifies TLS there (on 127.x it
never does, ../shared/PEERS.md 2b), and pebble's HTTP-01 requests reach the container's challenge listener
through the port Docker publishes on ``[::1]``. pebble's root goes to ``/etc/docker/certs.d`` for the test.
"""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import pebble_fixtures, secure_fixtures
from helpers.docker import DockerEngine
from helpers.instance import PREFIX, Instance, push_remove_pull, regctl
from helpers.pebble import Pebble, PebbleFactory
from helpers.secure import DockerTrust, client_context, file_serial, served_serial
from helpers.servers import free_port
from helpers.tools import describe

# Fixtures found by name.
docker_trust = secure_fixtures.docker_trust
pebble_factory = pebble_fixtures.pebble_factory
secure_host = secure_fixtures.secure_host


@pytest.fixture(scope="module")
def ca(pebble_factory: PebbleFactory) -> Iterator[Pebble]:
    """A pebble whose DNS sends every name to ::1, validating HTTP-01 on a port of the test's choosing."""
    server = pebble_factory(http_port=free_port("::1"), address="::1")
    yield server
    server.close()


@pytest.fixture
def acme_instance(
    tmp_path: Path, ca: Pebble, secure_host: str, docker_engine: DockerEngine, regctl_cli_env: dict[str, str],
    server_image: str, e2e_session: str,
) -> Iterator[Instance]:
    name = f"{PREFIX}{e2e_session}-acme"
    root, port = tmp_path / name, free_port("::1")
    init = regctl(
        "init", str(root), "--yes", "--name", name, "--port", str(port), "--volume", f"{name}-data",
        "--tls", "acme", "--domain", secure_host, "--email", "ops@example.com",
        "--acme-directory", ca.directory_url, "--acme-ca-bundle", str(ca.ca_bundle),
        "--acme-http-port", str(ca.http_port), "--acme-responder", "registry", "--no-issue",
        env=regctl_cli_env,
    )  # fmt: skip
    instance = Instance(root, name, port, docker_engine, regctl_cli_env)
    assert instance.config_path.is_file(), describe(init)
    repo, tag = server_image.rsplit(":", 1)
    instance.edit(bind="::1", image__name=repo, image__tag=tag)
    yield instance
    instance.cleanup()


def test_container_answers_http01_and_docker_verifies_the_certificate(
    acme_instance: Instance, ca: Pebble, secure_host: str, docker_engine: DockerEngine, docker_trust: DockerTrust,
    unique_image,
) -> None:
    certificate = acme_instance.root / "certs" / "domain.crt"
    issued = acme_instance("cert", "issue")  # nothing runs yet: regctl answers on the challenge port itself
    assert certificate.is_file(), describe(issued)
    acme_instance("up")
    container = acme_instance.container()
    assert container is not None and container["State"]["Running"], "no running container after `regctl up`"

    host_port = f"{secure_host}:{acme_instance.port}"
    trusted = client_context(ca.root_pem().encode())
    assert served_serial("::1", acme_instance.port, trusted, secure_host) == file_serial(certificate)
    docker_trust.install(host_port, ca.root_pem().encode())
    src, image_id = unique_image()
    push_remove_pull(docker_engine, src, image_id, f"{host_port}/acme/app:1")

    # The container's own listener answers the renewal's HTTP-01 challenge; the server takes the new certificate.
    old = file_serial(certificate)
    renewed = acme_instance("cert", "renew", "--force")
    new = file_serial(certificate)
    assert new != old, describe(renewed)
    assert "renewed" in renewed.stdout.decode(), describe(renewed)
    assert served_serial("::1", acme_instance.port, trusted, secure_host) == new
    docker_engine.remove_images(f"{host_port}/acme/app:1")
    pulled = docker_engine("pull", f"{host_port}/acme/app:1")
    assert pulled.returncode == 0, describe(pulled)

    # Anything but a challenge on the plain-HTTP port goes to HTTPS on the port Docker publishes.
    plain = http.client.HTTPConnection("::1", ca.http_port, timeout=10)
    plain.request("GET", "/v2/", headers={"Host": f"{secure_host}:{ca.http_port}"})
    response = plain.getresponse()
    assert (response.status, response.getheader("Location")) == (308, f"https://{host_port}/v2/")
    plain.close()
