"""The docker runtime's decisions against a stand-in for the Docker SDK: when ``up`` creates, keeps or
recreates the container, and how engine failures become one-line errors. The real engine is e2e's."""

from __future__ import annotations

from typing import Any

import docker.errors
import pytest

from regctl import __version__
from regctl.deploy import docker_runtime
from regctl.deploy.docker_runtime import HASH_LABEL, INSTANCE_LABEL, DockerRuntime
from regctl.deploy.image import BASE_LABEL
from regctl.deploy.instance import InstanceConfig, InstanceLayout
from regctl.deploy.progress import NullReporter
from regctl.errors import RegctlError

BASE = "regctl-test/debian-python:12"


class FakeContainer:
    def __init__(self, name: str, labels: dict[str, str], ports: dict[str, Any], behaviour: str = "healthy") -> None:
        self.name = name
        self.labels = labels
        self.short_id = "c0ffee"
        self.status = "created"
        self.behaviour = behaviour
        self.events: list[str] = []
        bind, port = next(iter(ports.values())) if ports else ("", 0)
        self.attrs: dict[str, Any] = {
            "State": {"Status": "created"},
            "HostConfig": {"PortBindings": {"5000/tcp": [{"HostIp": bind, "HostPort": str(port)}]}},
            "Config": {"Image": "img"},
        }

    def start(self) -> None:
        self.events.append("start")
        if self.behaviour == "port-taken":
            response = type("R", (), {"status_code": 500, "reason": "x", "url": "u"})()
            raise docker.errors.APIError(
                "500", response, "driver failed programming external connectivity: port is already allocated"
            )
        self.status = "running"

    def reload(self) -> None:
        if self.behaviour == "exits":
            self.attrs["State"] = {"Status": "exited", "ExitCode": 1}
        else:
            self.attrs["State"] = {"Status": "running", "Health": {"Status": "healthy"}}

    def logs(self, **kwargs: Any) -> bytes:
        return b"Error: storage.filesystem: permission denied\n"

    def stop(self, timeout: int) -> None:
        self.events.append("stop")
        self.status = "exited"

    def remove(self, force: bool = False) -> None:
        self.events.append("remove")


class FakeClient:
    def __init__(self) -> None:
        self.existing: FakeContainer | None = None
        self.created: list[tuple[str, dict[str, Any]]] = []
        self.behaviour = "healthy"
        self.volumes_created: list[str] = []
        self.volumes_removed: list[str] = []
        client = self

        class Api:
            base_url = "tcp://remote:2375"  # not this host: no local port check

        class Images:
            def get(self, ref: str) -> Any:
                return type("I", (), {"id": "sha256:1111", "labels": {BASE_LABEL: BASE}, "tags": [ref]})()

        class Containers:
            def get(self, name: str) -> FakeContainer:
                if client.existing is None:
                    raise docker.errors.NotFound("no such container")
                return client.existing

            def create(self, image: str, **kwargs: Any) -> FakeContainer:
                client.created.append((image, kwargs))
                client.existing = FakeContainer(kwargs["name"], kwargs["labels"], kwargs["ports"], client.behaviour)
                return client.existing

        class Volume:
            def __init__(self, name: str) -> None:
                self.name = name

            def remove(self) -> None:
                client.volumes_removed.append(self.name)

        class Volumes:
            def get(self, name: str) -> Volume:
                if name not in client.volumes_created:
                    raise docker.errors.NotFound("no such volume")
                return Volume(name)

            def create(self, name: str, labels: dict[str, str]) -> Volume:
                client.volumes_created.append(name)
                return Volume(name)

        self.api = Api()
        self.images = Images()
        self.containers = Containers()
        self.volumes = Volumes()


@pytest.fixture(autouse=True)
def _no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(docker_runtime.time, "sleep", lambda seconds: None)


def make(layout: InstanceLayout, client: FakeClient, **values: Any) -> DockerRuntime:
    config = InstanceConfig.model_validate({"name": "reg", "bind": "127.0.0.1", "port": 5999, **values})
    return DockerRuntime(config, layout, NullReporter(), client, BASE)  # type: ignore[arg-type]


def test_up_creates_the_seeds_container(layout: InstanceLayout) -> None:
    client = FakeClient()
    result = make(layout, client).up()
    assert (result.changed, result.url) == (True, "http://localhost:5999")
    [(image, kwargs)] = client.created
    assert image == f"regctl/registry:{__version__}"
    assert kwargs["name"] == "reg"
    assert kwargs["ports"] == {"5000/tcp": ("127.0.0.1", 5999)}
    assert kwargs["restart_policy"] == {"Name": "always"}
    assert kwargs["volumes"] == {
        "regctl-data": {"bind": "/var/lib/registry", "mode": "rw"},
        str(layout.server_config.absolute()): {"bind": "/etc/docker/registry/config.yml", "mode": "ro"},
    }
    assert kwargs["labels"][INSTANCE_LABEL] == "reg"
    assert len(kwargs["labels"][HASH_LABEL]) == 64
    assert client.volumes_created == ["regctl-data"]
    assert client.existing is not None and client.existing.events == ["start"]


def test_up_again_unchanged_restarts_nothing(layout: InstanceLayout) -> None:
    client = FakeClient()
    make(layout, client).up()
    first = client.existing
    result = make(layout, client).up()
    assert result.changed is False
    assert len(client.created) == 1
    assert first is not None and first.events == ["start"]


def test_up_after_a_change_recreates(layout: InstanceLayout) -> None:
    client = FakeClient()
    make(layout, client).up()
    first = client.existing
    make(layout, client, delete=True).up()
    assert first is not None and first.events == ["start", "stop", "remove"]
    assert len(client.created) == 2
    assert client.created[0][1]["labels"][HASH_LABEL] != client.created[1][1]["labels"][HASH_LABEL]


def test_port_already_allocated(layout: InstanceLayout) -> None:
    client = FakeClient()
    client.behaviour = "port-taken"
    with pytest.raises(RegctlError) as info:
        make(layout, client).up()
    assert info.value.message == "port 5999 on 127.0.0.1 is already in use"
    assert client.existing is not None and client.existing.events == ["start", "remove"]


def test_container_exiting_at_start_shows_its_log_and_is_removed(layout: InstanceLayout) -> None:
    client = FakeClient()
    client.behaviour = "exits"
    with pytest.raises(RegctlError) as info:
        make(layout, client).up()
    assert info.value.message == (
        "container reg exited at start (exit code 1); its last log lines:\nError: storage.filesystem: permission denied"
    )
    assert info.value.hint == "fix the cause above, then run `regctl up` again"
    assert client.existing is not None and client.existing.events == ["start", "remove"]


def test_a_container_of_that_name_that_is_not_regctls(layout: InstanceLayout) -> None:
    client = FakeClient()
    client.existing = FakeContainer("reg", {}, {})
    with pytest.raises(RegctlError) as info:
        make(layout, client).status()
    assert info.value.message == "a container named reg exists and was not created by regctl"


def test_host_data_directory_is_created_before_the_container(layout: InstanceLayout) -> None:
    client = FakeClient()
    make(layout, client, storage={"path": "data"}).up()
    assert (layout.root / "data").is_dir()
    assert client.volumes_created == []
    (layout.root / "file").write_text("")
    with pytest.raises(RegctlError) as info:
        make(layout, FakeClient(), storage={"path": "file/data"}).up()
    assert info.value.message.startswith(f"data directory {layout.root.absolute() / 'file' / 'data'} is not writable")


def test_down_keeps_the_volume_unless_asked(layout: InstanceLayout) -> None:
    client = FakeClient()
    make(layout, client).up()
    make(layout, client).down(volumes=False)
    assert client.volumes_removed == []
    make(layout, client).down(volumes=True)
    assert client.volumes_removed == ["regctl-data"]
