"""``--runtime process``: the seed's flow with ``regctl serve`` in the background instead of a container
(issue #3). dockerd still pushes and pulls: 127.0.0.0/8 is always an insecure registry to it."""

from __future__ import annotations

import json

from helpers.instance import pull_again, push_remove_pull


def _text(result) -> str:
    return (result.stdout + result.stderr).decode(errors="replace")


def test_process_runtime_flow(process_instances, docker_engine, unique_image):
    instance = process_instances.create(runtime="process")
    up = instance("up")
    said = _text(up)
    assert "process" in said.lower(), f"`regctl up` did not say which runtime it chose:\n{said}"
    assert f"localhost:{instance.port}" in said, said
    assert instance.container() is None, "the process runtime created a container"
    pid = instance.pid()
    assert pid is not None, f"no live pid in {instance.root / 'run' / 'regctl.pid'}"

    src, image_id = unique_image()
    ref = f"127.0.0.1:{instance.port}/{instance.name}/busybox:1"
    push_remove_pull(docker_engine, src, image_id, ref)

    status = json.loads(instance("status", "--json").stdout)
    assert status["runtime"] == "process", status
    assert status["state"] == "running", status
    assert status["health"] == "healthy", status
    assert status["url"] == f"http://localhost:{instance.port}", status
    assert status["repositories"] == 1, status
    table = _text(instance("status"))
    assert "running" in table, table
    logs = instance("logs", "--tail", "5").stdout.decode().splitlines()
    assert 1 <= len(logs) <= 5, logs

    instance("down")
    assert instance.pid() is None, "the server process outlived `regctl down`"
    assert instance.get("/v2/")[0] == 0
    instance("up")
    pull_again(docker_engine, ref, image_id)

    instance("down", "--volumes", "--yes")
    assert instance.pid() is None
    instance("up")
    assert instance.catalog() == []
    instance("down")


def test_runtime_flag_overrides_the_config(process_instances):
    instance = process_instances.create(runtime="docker")
    instance("up", "--runtime", "process")
    assert instance.container() is None
    assert instance.pid() is not None
    assert instance.get("/v2/")[0] == 200
