"""``docker login`` over verified TLS, as an operator sets it up with the CLI (issue 4, "Tests with real clients").

The instance is made by ``regctl init --domain regctl-e2e-<session>.test --tls selfsigned --auth htpasswd``;
its CA goes where the Docker engine looks with ``regctl cert trust``; users come and go with ``regctl
adduser --password-stdin`` / ``deluser`` / ``passwd``. The harness serves the instance's configuration (its
certificate, key and htpasswd file) with ``regctl serve`` on ``[::1]:PORT``; the host name resolves to ``::1``,
so dockerd really verifies the certificate (on 127.x it never does: ../shared/PEERS.md 2b).

What is asserted is what the user sees: exit codes and the messages docker prints, images that come back with
the same ID, and that user changes apply to the running server (same process, no restart).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import secure_fixtures
from helpers.docker import DockerEngine
from helpers.instance import PREFIX, pull_again, push_remove_pull, regctl_env
from helpers.registry_api import RegistryClient, basic_auth
from helpers.secure import CERTS_D, DockerTrust, SecureInstance, client_context, output
from helpers.servers import RegistryFactory, RegistryProcess
from helpers.tools import describe

# Fixtures from helpers.secure_fixtures, found by name.
docker_logout = secure_fixtures.docker_logout
docker_trust = secure_fixtures.docker_trust
secure_host = secure_fixtures.secure_host
v6_port = secure_fixtures.v6_port


ALICE = ("alice", "alice-Pw-1")
BOB = ("bob", "bob-Pw-2")
UNKNOWN_CA = "x509: certificate signed by unknown authority"


@dataclass
class Secured:
    instance: SecureInstance
    server: RegistryProcess

    @property
    def host_port(self) -> str:
        return self.instance.host_port

    def ref(self, repo: str, tag: str = "1") -> str:
        return f"{self.host_port}/{repo}:{tag}"

    def api(self, user: str, password: str) -> RegistryClient:
        """An HTTPS client that trusts the instance's CA only and logs in as ``user``."""
        return RegistryClient(self.server.url, context=client_context(self.instance.ca_pem()),
                              headers=basic_auth(user, password))


@pytest.fixture
def secured(tmp_path: Path, secure_host: str, v6_port: int, registry_factory: RegistryFactory,
            docker_engine: DockerEngine, e2e_session: str) -> Secured:
    env = regctl_env(docker_engine)
    instance = SecureInstance.init(tmp_path / "registry", name=f"{PREFIX}{e2e_session}-login", domain=secure_host,
                                   port=v6_port, tls="selfsigned", auth="htpasswd", env=env)
    if not instance.certificate_path().is_file():  # init may leave the certificate to `regctl cert selfsigned`
        instance("cert", "selfsigned")
    instance.adduser(*ALICE)
    server = registry_factory.start("regctl", host="::1", port=v6_port, extra=instance.server_extra())
    return Secured(instance, server)


def login(engine: DockerEngine, host_port: str, user: str, password: str, check: bool = True):  # type: ignore[no-untyped-def]
    return engine("login", host_port, "-u", user, "--password-stdin", input=f"{password}\n".encode(), check=check)


def trust(secured: Secured, docker_trust: DockerTrust) -> Path:
    """``regctl cert trust``: the instance's CA where the engine looks (removed again after the test)."""
    docker_trust.track(secured.host_port)
    result = secured.instance("cert", "trust")
    ca = CERTS_D / secured.host_port / "ca.crt"
    assert ca.is_file(), f"regctl cert trust did not install {ca}:\n{describe(result)}"
    return ca


def refused(result, *needles: str) -> str:  # type: ignore[no-untyped-def]
    text = output(result)
    assert result.returncode != 0, f"expected a refusal:\n{describe(result)}"
    assert any(n in text for n in needles), f"expected one of {needles}:\n{describe(result)}"
    return text


def test_login_push_pull_logout(secured, docker_engine, docker_trust, docker_logout, unique_image):
    trust(secured, docker_trust)
    docker_logout(secured.host_port)
    result = login(docker_engine, secured.host_port, *ALICE)
    assert "Login Succeeded" in output(result), describe(result)

    src, image_id = unique_image()
    ref = secured.ref("alice/app")
    push_remove_pull(docker_engine, src, image_id, ref)
    assert secured.api(*ALICE).tags("alice/app") == ["1"]

    result = docker_engine("logout", secured.host_port)
    assert f"Removing login credentials for {secured.host_port}" in output(result), describe(result)
    docker_engine.remove_images(ref)
    refused(docker_engine("pull", ref, check=False), "no basic auth credentials")


def test_refused_without_login_and_with_a_wrong_password(secured, docker_engine, docker_trust, docker_logout,
                                                         unique_image):
    trust(secured, docker_trust)
    docker_logout(secured.host_port)
    src, _ = unique_image()
    ref = secured.ref("alice/app")
    docker_engine("tag", src, ref)

    refused(docker_engine("push", ref, check=False), "no basic auth credentials")
    refused(docker_engine("pull", ref, check=False), "no basic auth credentials")
    for user, password in (("alice", "not-her-password"), ("mallory", ALICE[1])):
        text = refused(login(docker_engine, secured.host_port, user, password, check=False), "401 Unauthorized")
        assert "Login Succeeded" not in text
    assert secured.api(*ALICE).catalog() == [], "a refused push left a repository"


def test_user_changes_apply_at_once(secured, docker_engine, docker_trust, docker_logout, unique_image):
    trust(secured, docker_trust)
    docker_logout(secured.host_port)
    pid = secured.server.proc.pid  # type: ignore[union-attr]
    secured.instance.adduser(*BOB)
    users = output(secured.instance("users"))
    assert "alice" in users and "bob" in users, users

    login(docker_engine, secured.host_port, *BOB)
    src, image_id = unique_image()
    ref = secured.ref("bob/app")
    push_remove_pull(docker_engine, src, image_id, ref)

    # Removed: bob's stored login stops working at once, and so does a new login. No restart.
    secured.instance.deluser("bob")
    assert "bob" not in output(secured.instance("users")).split()
    docker_engine.remove_images(ref)
    refused(docker_engine("pull", ref, check=False), "unauthorized", "no basic auth credentials", "401")
    refused(login(docker_engine, secured.host_port, *BOB, check=False), "401 Unauthorized")

    # A new password: the old one is refused, the new one works.
    new_password = "alice-Pw-new"
    secured.instance("passwd", "alice", "--password-stdin", input=f"{new_password}\n".encode())
    refused(login(docker_engine, secured.host_port, *ALICE, check=False), "401 Unauthorized")
    login(docker_engine, secured.host_port, "alice", new_password)
    pull_again(docker_engine, ref, image_id)

    assert secured.server.running and secured.server.proc.pid == pid, "the server was restarted"  # type: ignore[union-attr]


def test_certificate_is_really_verified(secured, docker_engine, docker_trust, docker_logout, tmp_path):
    """Without the CA in certs.d, or with another CA there, docker refuses the certificate: the verification the
    other tests pass is real."""
    docker_logout(secured.host_port)
    refused(login(docker_engine, secured.host_port, *ALICE, check=False), UNKNOWN_CA)

    from helpers.certs import cert_pem, make_ca

    docker_trust.install(secured.host_port, cert_pem(make_ca("some other CA").cert))
    refused(login(docker_engine, secured.host_port, *ALICE, check=False), UNKNOWN_CA)

    trust(secured, docker_trust)
    result = login(docker_engine, secured.host_port, *ALICE)
    assert "Login Succeeded" in output(result)
