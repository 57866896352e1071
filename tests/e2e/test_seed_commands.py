"""The seed's own commands with regctl's server image in place of ``registry:2``: its ``docker run`` lines and
its compose file (rendered by ``regctl compose``, brought up with real Docker Compose v2). Ports are published
on 127.0.0.1 only; containers, volumes and networks are named ``regctl-e2e-<session>-...`` and removed."""

from __future__ import annotations

import pytest
import yaml
from helpers.instance import PREFIX, push_remove_pull, wait_http
from helpers.registry_api import RegistryClient
from helpers.servers import free_port
from helpers.tools import describe


@pytest.fixture
def seed_container(docker_engine, e2e_session):
    """``run(name_suffix, *docker_run_args)`` -> (name, port); every container is removed after the test."""
    names: list[str] = []

    def start(suffix: str, *args: str) -> tuple[str, int]:
        name, port = f"{PREFIX}{e2e_session}-{suffix}", free_port()
        names.append(name)
        docker_engine("run", "-d", "-p", f"127.0.0.1:{port}:5000", "--name", name, *args)
        status = wait_http(f"http://127.0.0.1:{port}/v2/")
        if status != 200:
            logs = docker_engine("logs", "--tail", "30", name, check=False)
            pytest.fail(f"{name} did not answer GET /v2/ (last {status}); its logs:\n{describe(logs)}")
        return name, port

    yield start
    for name in names:
        docker_engine("rm", "-f", "-v", name, check=False)


def _layer_digests(port: int, repo: str) -> list[str]:
    manifest = RegistryClient(f"http://127.0.0.1:{port}").get_manifest(repo, "1")
    assert manifest.status == 200, manifest.body
    body = manifest.json()
    return [body["config"]["digest"], *(layer["digest"] for layer in body["layers"])]  # type: ignore[index]


def _server_uids(engine, name: str) -> list[int]:
    """Real, effective, saved and filesystem uid of the container's PID 1 (the server)."""
    status = engine("exec", name, "cat", "/proc/1/status").stdout.decode()
    line = next(line for line in status.splitlines() if line.startswith("Uid:"))
    return [int(uid) for uid in line.split()[1:]]


def test_server_image_contract(docker_engine, server_image):
    """What the seed relies on in ``registry:2`` (port 5000, data in /var/lib/registry), plus a healthcheck
    (issue #3). The non-root user is checked on the running server below: the image starts as root to make a
    host data directory writable, then serves as uid 1000."""
    config = docker_engine.inspect_image(server_image)["Config"]
    assert "5000/tcp" in (config.get("ExposedPorts") or {}), config
    assert "/var/lib/registry" in (config.get("Volumes") or {}), config
    assert config.get("Healthcheck"), "the server image has no HEALTHCHECK"


def test_image_build_leaves_no_intermediate_image(docker_engine, server_image_build):
    # The install stage (pip install from wheels) is ~100 MB more than the base; the legacy builder keeps it
    # as an untagged <none> image unless the build removes it: every `regctl image build` would leak one.
    left = [image for image in server_image_build.stage_images if docker_engine.image_id(image) is not None]
    assert left == [], f"`regctl image build` left its intermediate stage image(s) {left} behind"


def test_seed_docker_run_with_host_data_dir(seed_container, docker_engine, server_image, unique_image, tmp_path):
    # The seed: docker run -d -p 5000:5000 --restart=always --name registry -v `pwd`/data:/var/lib/registry
    # registry:2. The data directory does not exist yet: the daemon creates it, owned by root, and the
    # non-root server must still store its data there.
    data = tmp_path / "data"
    name, port = seed_container("seed", "--restart=always", "-v", f"{data}:/var/lib/registry", server_image)
    assert 0 not in _server_uids(docker_engine, name), "the server runs as root"
    repo = f"{name}/busybox"
    src, image_id = unique_image()
    digest = push_remove_pull(docker_engine, src, image_id, f"localhost:{port}/{repo}:1")

    v2 = data / "docker" / "registry" / "v2"
    assert (v2 / "repositories" / repo / "_manifests" / "tags" / "1").is_dir(), sorted(map(str, data.rglob("*")))
    for blob in (digest, *_layer_digests(port, repo)):
        hexdigest = blob.split(":", 1)[1]
        path = v2 / "blobs" / "sha256" / hexdigest[:2] / hexdigest / "data"
        assert path.is_file(), f"{blob} is not in the host data directory at {path}"


def test_seed_plain_docker_run(seed_container, docker_engine, server_image, unique_image):
    # The seed's first line: docker run -d -p 5000:5000 --restart=always --name registry registry:2
    name, port = seed_container("plain", "--restart=always", server_image)
    assert 0 not in _server_uids(docker_engine, name), "the server runs as root"
    src, image_id = unique_image()
    push_remove_pull(docker_engine, src, image_id, f"localhost:{port}/{name}/busybox:1")
    assert RegistryClient(f"http://127.0.0.1:{port}").catalog() == [f"{name}/busybox"]


def test_seed_registry_env_variables(seed_container, docker_engine, server_image, unique_image):
    # registry:2's REGISTRY_* variables override its config: here deletes, which are off by default.
    name, port = seed_container("env", "-e", "REGISTRY_STORAGE_DELETE_ENABLED=true", server_image)
    src, image_id = unique_image()
    repo = f"{name}/busybox"
    digest = push_remove_pull(docker_engine, src, image_id, f"localhost:{port}/{repo}:1")
    api = RegistryClient(f"http://127.0.0.1:{port}")
    assert api.request("DELETE", f"/v2/{repo}/manifests/{digest}").status == 202
    assert api.get_manifest(repo, digest, method="HEAD").status == 404


def test_rendered_compose_file_with_docker_compose(instances, compose, unique_image):
    instance = instances.create()
    written = instance("compose")
    compose_file = instance.root / "docker-compose.yml"  # where `docker compose` finds it by itself
    assert f"Wrote {compose_file}" in (written.stdout + written.stderr).decode(), describe(written)
    rendered = yaml.safe_load(compose_file.read_text())
    assert list(rendered["services"]) == [instance.name], rendered

    project = f"{instance.name}-compose"
    up = compose("compose", "-p", project, "-f", str(compose_file), "up", "-d", "--wait", check=False)
    try:
        assert up.returncode == 0, describe(up)
        assert instance.get("/v2/")[0] == 200
        src, image_id = unique_image()
        push_remove_pull(compose, src, image_id, f"{instance.addr}/{instance.name}/busybox:1")
        assert instance.catalog() == [f"{instance.name}/busybox"]
    finally:
        down = compose("compose", "-p", project, "-f", str(compose_file), "down", "-v", check=False)
    assert down.returncode == 0, describe(down)
    left = compose("ps", "-aq", "--filter", f"label=com.docker.compose.project={project}").stdout.split()
    assert left == [], f"docker compose down left containers {left}"
    assert instance.get("/v2/")[0] == 0
