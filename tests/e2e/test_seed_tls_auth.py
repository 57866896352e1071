"""The seed's "Restricting access" line with regctl's server image in place of ``registry:2``:

    mkdir auth
    docker run --entrypoint htpasswd registry:2 -Bbn testuser testpassword > auth/htpasswd
    docker run -d -p 5000:5000 --restart=always --name registry \\
      -v `pwd`/auth:/auth -e "REGISTRY_AUTH=htpasswd" -e "REGISTRY_AUTH_HTPASSWD_REALM=Registry Realm" \\
      -e REGISTRY_AUTH_HTPASSWD_PATH=/auth/htpasswd \\
      -v `pwd`/certs:/certs -e REGISTRY_HTTP_TLS_CERTIFICATE=/certs/domain.crt \\
      -e REGISTRY_HTTP_TLS_KEY=/certs/domain.key registry:2
    docker login myregistrydomain.com:5000

The domain is ``regctl-e2e-<session>.test`` mapped to ``::1`` and the port is published on ``[::1]`` only, so
dockerd verifies the certificate against the CA in ``/etc/docker/certs.d`` (../shared/PEERS.md 2b). The
certificate and key are what "get a certificate from a CA" leaves: ``certs/domain.crt`` (with the chain, the
seed's ``cat``) and ``certs/domain.key``, mode 0600 and owned by root as ``openssl req -keyout`` writes it.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
import yaml
from helpers import secure_fixtures
from helpers.docker import DockerEngine
from helpers.instance import PREFIX, push_remove_pull
from helpers.registry_api import RegistryClient
from helpers.secure import make_tls_files, output
from helpers.tools import describe

# Fixtures from helpers.secure_fixtures, found by name.
docker_logout = secure_fixtures.docker_logout
docker_trust = secure_fixtures.docker_trust
secure_host = secure_fixtures.secure_host
v6_port = secure_fixtures.v6_port


USER, PASSWORD = "testuser", "testpassword"
REALM = "Registry Realm"


def seed_htpasswd(engine: DockerEngine, image: str) -> bytes:
    """``docker run --entrypoint htpasswd <image> -Bbn testuser testpassword``: the image answers as registry:2's
    Apache htpasswd does, with one bcrypt entry on stdout."""
    made = engine("run", "--rm", "--entrypoint", "htpasswd", image, "-Bbn", USER, PASSWORD)
    assert made.stdout.startswith(f"{USER}:$2".encode()) and made.stdout.count(b"\n") == 1, describe(made)
    return made.stdout


def wait_https(client: RegistryClient, engine: DockerEngine, name: str) -> None:
    deadline = time.monotonic() + 60
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            resp = client.request("GET", "/v2/")
        except OSError as exc:
            last = str(exc)
        else:
            if resp.status in (200, 401):
                return
            last = f"HTTP {resp.status}"
        state = engine("inspect", "--format", "{{.State.Running}} {{.RestartCount}}", name, check=False)
        if state.stdout.split() != [b"true", b"0"]:  # exited, or restarted by --restart=always: it will not come
            break
        time.sleep(0.2)
    logs = engine("logs", "--tail", "40", name, check=False)
    pytest.fail(f"{name} did not answer GET /v2/ over TLS (last: {last}); its logs:\n{describe(logs)}")


def _seed_files(engine: DockerEngine, image: str, host: str, base: Path):
    """certs/domain.crt, certs/domain.key (0600, root's, as openssl writes it) and auth/htpasswd, the seed's way."""
    issued = make_tls_files(base / "from-the-ca", (host,))
    certs, auth = base / "certs", base / "auth"
    certs.mkdir()
    auth.mkdir()
    shutil.copyfile(issued.cert_path, certs / "domain.crt")
    shutil.copyfile(issued.key_path, certs / "domain.key")
    (certs / "domain.key").chmod(0o600)
    (auth / "htpasswd").write_bytes(seed_htpasswd(engine, image))
    return issued, certs, auth


def _refused_then_login_push_pull(engine: DockerEngine, container: str, issued, host_port: str, docker_trust,
                                  docker_logout, unique_image, target: str) -> None:
    """Anonymous `GET /v2/` is challenged; then `docker login` over verified TLS, a push and a pull work."""
    probe = RegistryClient(f"https://{host_port}", context=issued.context())
    wait_https(probe, engine, container)
    first = probe.request("GET", "/v2/")
    assert first.status == 401, first.body
    assert first.headers.get("WWW-Authenticate") == f'Basic realm="{REALM}"', dict(first.headers)
    docker_trust.install(host_port, issued.ca_pem)
    docker_logout(host_port)
    result = engine("login", host_port, "-u", USER, "--password-stdin", input=f"{PASSWORD}\n".encode())
    assert "Login Succeeded" in output(result), describe(result)
    src, image_id = unique_image()
    push_remove_pull(engine, src, image_id, target)
    engine("logout", host_port)


def test_seed_htpasswd_and_tls_docker_run(docker_engine, server_image, secure_host, v6_port, docker_trust,
                                          docker_logout, unique_image, tmp_path, e2e_session):
    # Get a certificate (here from a test CA), then move it to certs/domain.crt and certs/domain.key.
    issued, certs, auth = _seed_files(docker_engine, server_image, secure_host, tmp_path)

    name = f"{PREFIX}{e2e_session}-seed-tls"
    host_port = f"{secure_host}:{v6_port}"
    try:
        docker_engine(
            "run", "-d", "-p", f"[::1]:{v6_port}:5000", "--restart=always", "--name", name,
            "-v", f"{auth}:/auth",
            "-e", "REGISTRY_AUTH=htpasswd",
            "-e", f"REGISTRY_AUTH_HTPASSWD_REALM={REALM}",
            "-e", "REGISTRY_AUTH_HTPASSWD_PATH=/auth/htpasswd",
            "-v", f"{certs}:/certs",
            "-e", "REGISTRY_HTTP_TLS_CERTIFICATE=/certs/domain.crt",
            "-e", "REGISTRY_HTTP_TLS_KEY=/certs/domain.key",
            server_image,
        )
        _refused_then_login_push_pull(docker_engine, name, issued, host_port, docker_trust, docker_logout,
                                      unique_image, f"{host_port}/{name}/busybox:1")
    finally:
        docker_engine("rm", "-f", "-v", name, check=False)


def test_seed_compose_file_with_tls_and_htpasswd(compose, server_image, secure_host, v6_port, docker_trust,
                                                 docker_logout, unique_image, tmp_path, e2e_session):
    """The seed's "Managing with Compose" file, our image in place of registry:2, with real Compose v2."""
    issued, certs, auth = _seed_files(compose, server_image, secure_host, tmp_path)
    project = f"{PREFIX}{e2e_session}-seed-compose"
    service = {
        "restart": "always",
        "image": server_image,
        "ports": [f"[::1]:{v6_port}:5000"],
        "environment": {
            "REGISTRY_HTTP_TLS_CERTIFICATE": "/certs/domain.crt",
            "REGISTRY_HTTP_TLS_KEY": "/certs/domain.key",
            "REGISTRY_AUTH": "htpasswd",
            "REGISTRY_AUTH_HTPASSWD_PATH": "/auth/htpasswd",
            "REGISTRY_AUTH_HTPASSWD_REALM": REALM,
        },
        "volumes": [f"{tmp_path / 'data'}:/var/lib/registry", f"{certs}:/certs", f"{auth}:/auth"],
    }
    compose_file = tmp_path / "docker-compose.yml"
    compose_file.write_text(yaml.safe_dump({"services": {"registry": service}}))
    host_port = f"{secure_host}:{v6_port}"
    try:
        up = compose("compose", "-p", project, "-f", str(compose_file), "up", "-d", check=False)
        assert up.returncode == 0, describe(up)
        _refused_then_login_push_pull(compose, f"{project}-registry-1", issued, host_port, docker_trust,
                                      docker_logout, unique_image, f"{host_port}/seed/busybox:1")
        assert any((tmp_path / "data" / "docker" / "registry" / "v2" / "repositories" / "seed").iterdir())
    finally:
        compose("compose", "-p", project, "-f", str(compose_file), "down", "-v", check=False)
