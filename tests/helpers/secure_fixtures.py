"""Fixtures for the e2e tests of TLS and access control; test modules import the ones they use by name.

- ``secure_host``: ``regctl-e2e-<session>.test`` mapped to ``::1`` in ``/etc/hosts`` for the session (so
  dockerd verifies TLS; see ``helpers.secure``), the line removed at the end. The session id in the name lets
  the session's sweep remove every image tagged for it.
- ``docker_trust``: CAs installed (or tracked, when ``regctl cert trust`` installs them) under
  ``/etc/docker/certs.d/HOST:PORT/`` for one test, removed when the test ends, passed or failed.
- ``docker_logout``: ``docker logout`` from every registry a test logged in to, whatever happened.
- ``v6_port``: a free port on ``::1``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from helpers.docker import DockerEngine
from helpers.instance import PREFIX
from helpers.secure import DockerTrust, mapped_host
from helpers.servers import free_port


@pytest.fixture(scope="session")
def secure_host(e2e_session: str) -> Iterator[str]:
    with mapped_host(f"{PREFIX}{e2e_session}.test", "::1") as name:
        yield name


@pytest.fixture
def docker_trust() -> Iterator[DockerTrust]:
    trust = DockerTrust()
    yield trust
    trust.cleanup()


@pytest.fixture
def docker_logout(docker_engine: DockerEngine) -> Iterator[Callable[[str], None]]:
    """``docker_logout(host_port)`` registers a registry to log out of after the test."""
    hosts: list[str] = []
    yield hosts.append
    for host in hosts:
        docker_engine("logout", host, check=False)


@pytest.fixture
def v6_port() -> int:
    return free_port("::1")
