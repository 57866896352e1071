"""e2e fixtures: the Docker engine (``docker_engine``), a local busybox test image, and registry servers of
both kinds (see ``helpers.fixtures``).

``docker_engine`` skips only when the ``docker`` CLI is missing (CI installs it). If no daemon answers and we
are root, the session starts ``dockerd`` itself and stops it at the end; otherwise the tests fail.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest
from helpers.docker import Dockerd, DockerEngine
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
