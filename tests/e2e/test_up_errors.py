"""Errors an operator meets with ``regctl up`` (issue #3): one clear line and exit 1, never a traceback."""

from __future__ import annotations

import socket

import pytest


def _error_line(result) -> str:
    """The one ``Error:`` line on stderr (a ``Hint:`` line may follow); no traceback anywhere."""
    out = (result.stdout + result.stderr).decode(errors="replace")
    assert "Traceback" not in out, out
    errors = [line for line in result.stderr.decode(errors="replace").splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, out
    assert result.returncode == 1, out
    return errors[0]


@pytest.mark.parametrize("runtime", ["docker", "process"])
def test_up_when_the_port_is_taken(runtime, request):
    factory = request.getfixturevalue("instances" if runtime == "docker" else "process_instances")
    instance = factory.create(runtime=runtime)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", instance.port))
        taken.listen()
        result = instance("up", check=False)
    error = _error_line(result)
    assert f"port {instance.port}" in error and "already in use" in error, error
    container = instance.container()
    assert container is None or not container["State"]["Running"]
    assert instance.pid() is None


def test_up_when_the_docker_engine_is_not_reachable(process_instances):
    instance = process_instances.create()
    result = instance("up", "--runtime", "docker", env={"DOCKER_HOST": "tcp://127.0.0.1:1"}, check=False)
    error = _error_line(result)
    assert "Docker engine not reachable" in error and "tcp://127.0.0.1:1" in error, error
