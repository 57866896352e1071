"""The seed's localhost workflow with regctl on the real Docker engine: ``regctl init``, ``up``, push, pull,
``down``, ``up`` again, ``down --volumes`` (issue #3). Every instance is bound to 127.0.0.1 on a free port,
named ``regctl-e2e-<session>-iN`` with a volume of its own, and runs the session's server image."""

from __future__ import annotations

import json

from helpers.instance import pull_again, push_remove_pull
from helpers.servers import free_port


def _text(result) -> str:
    return (result.stdout + result.stderr).decode(errors="replace")


def _volume_exists(engine, name: str) -> bool:
    return engine("volume", "inspect", name, check=False).returncode == 0


def test_seed_localhost_flow(instances, docker_engine, unique_image):
    instance = instances.create()
    up = instance("up")
    said = _text(up)
    # What the operator is told: which runtime and why, where the registry is, and how to push to it.
    assert "Runtime: docker" in said, said
    assert f"http://localhost:{instance.port}" in said, said
    assert f"docker push localhost:{instance.port}/" in said, said
    container = instance.container()
    assert container is not None, f"no container named {instance.name} after `regctl up`:\n{said}"
    assert container["State"]["Running"]
    assert container["HostConfig"]["RestartPolicy"]["Name"] == "always"
    assert container["HostConfig"]["PortBindings"]["5000/tcp"] == [
        {"HostIp": "127.0.0.1", "HostPort": str(instance.port)}
    ]

    src, image_id = unique_image()
    ref = f"{instance.addr}/{instance.name}/busybox:1"
    push_remove_pull(docker_engine, src, image_id, ref)
    assert instance.catalog() == [f"{instance.name}/busybox"]
    run = docker_engine("run", "--rm", "--network", "none", ref, "cat", "/www/index.html")
    assert run.stdout == b"hello\n"

    # down keeps the data; up again serves the same image.
    instance("down")
    assert instance.get("/v2/")[0] == 0, "the registry still answers after `regctl down`"
    container = instance.container()
    assert container is None or not container["State"]["Running"]
    assert _volume_exists(docker_engine, instance.volume), f"`regctl down` removed volume {instance.volume}"
    instance("up")
    pull_again(docker_engine, ref, image_id)

    # down --volumes drops the data: after another up the registry is empty.
    instance("down", "--volumes", "--yes")
    assert instance.container() is None
    assert not _volume_exists(docker_engine, instance.volume), f"volume {instance.volume} survived --volumes"
    instance("up")
    assert instance.catalog() == []
    docker_engine.remove_images(ref)
    pull = docker_engine("pull", ref, check=False)
    assert pull.returncode == 1
    assert "manifest unknown" in _text(pull) or "not found" in _text(pull), _text(pull)


def test_up_again_unchanged_restarts_nothing_and_a_new_port_recreates(instances):
    instance = instances.create()
    instance("up")
    first = instance.container()
    assert first is not None

    instance("up")
    again = instance.container()
    assert again is not None
    assert (again["Id"], again["State"]["StartedAt"], again["RestartCount"]) == (
        first["Id"],
        first["State"]["StartedAt"],
        first["RestartCount"],
    ), "a second `regctl up` with nothing changed restarted the container"

    old_port, new_port = instance.port, free_port()
    instance.edit(port=new_port)
    instance("up")
    moved = instance.container()
    assert moved is not None
    assert moved["Id"] != first["Id"], "a changed port did not recreate the container"
    assert moved["HostConfig"]["PortBindings"]["5000/tcp"] == [{"HostIp": "127.0.0.1", "HostPort": str(new_port)}]
    assert instance.get("/v2/")[0] == 200, f"nothing serves on the new port {new_port}"
    instance.port = old_port
    assert instance.get("/v2/")[0] == 0, f"the old port {old_port} still answers"


def test_status_logs_and_restart(instances, docker_engine, unique_image, server_image):
    instance = instances.create()
    instance("up")
    src, image_id = unique_image()
    push_remove_pull(docker_engine, src, image_id, f"{instance.addr}/{instance.name}/busybox:1")

    table = _text(instance("status"))
    for expected in ("running", "healthy", f"http://localhost:{instance.port}", server_image):
        assert expected in table, f"{expected!r} missing from `regctl status`:\n{table}"

    status = json.loads(instance("status", "--json").stdout)
    assert status["runtime"] == "docker", status
    assert status["image"] == server_image, status
    assert status["state"] == "running", status
    assert status["health"] == "healthy", status
    assert status["url"] == f"http://localhost:{instance.port}", status
    assert status["repositories"] == 1, status

    logs = instance("logs", "--tail", "5").stdout.decode().splitlines()
    assert 1 <= len(logs) <= 5, logs

    before = instance.container()
    instance("restart")
    after = instance.container()
    assert after is not None and before is not None
    assert after["State"]["Running"]
    assert after["State"]["StartedAt"] != before["State"]["StartedAt"], "`regctl restart` did not restart"
    assert instance.catalog() == [f"{instance.name}/busybox"]
