"""Runtimes without a Docker engine: which one is chosen and why, the container's config hash, and the
helpers both runtimes share (port check, catalog count, sizes, logs)."""

from __future__ import annotations

import contextlib
import datetime
import http.server
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers.threaded import serving_in_thread

from regctl.deploy import docker_runtime, runtime
from regctl.deploy.docker_runtime import config_hash, container_spec
from regctl.deploy.instance import InstanceConfig, InstanceLayout
from regctl.deploy.process_runtime import ProcessRuntime, _alive, _read_tail
from regctl.deploy.progress import NullReporter
from regctl.deploy.runtime import Status, select_runtime
from regctl.errors import RegctlError

UNREACHABLE = "tcp://127.0.0.1:1"


class Recorder(NullReporter):
    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, text: str) -> None:
        self.lines.append(text)


def make_config(**values: Any) -> InstanceConfig:
    return InstanceConfig.model_validate(values)


# -- choosing the runtime -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("docker_host", "reason"),
    [(UNREACHABLE, "connection refused"), ("unix:///nonexistent/docker.sock", "no such file or directory")],
)
def test_auto_without_an_engine_is_the_process_runtime(
    layout: InstanceLayout, monkeypatch: pytest.MonkeyPatch, docker_host: str, reason: str
) -> None:
    monkeypatch.setenv("DOCKER_HOST", docker_host)
    choice = select_runtime(make_config(), layout, NullReporter())
    assert choice.runtime.name == "process"
    assert choice.reason == f"Runtime: process (Docker engine not reachable at {docker_host}: {reason})"


def test_forcing_docker_without_an_engine_is_an_error(layout: InstanceLayout, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", UNREACHABLE)
    for config, flag in ((make_config(), "docker"), (make_config(runtime="docker"), None)):
        with pytest.raises(RegctlError) as info:
            select_runtime(config, layout, NullReporter(), flag=flag)
        assert info.value.message == f"Docker engine not reachable at {UNREACHABLE}: connection refused"
        assert info.value.hint == "start dockerd (or fix DOCKER_HOST), or run without Docker: --runtime process"


def test_flag_then_key(layout: InstanceLayout, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime, "connect", _no_engine_wanted)
    choice = select_runtime(make_config(runtime="process"), layout, NullReporter())
    assert (choice.runtime.name, choice.reason) == ("process", "Runtime: process (runtime: process in regctl.yaml)")
    choice = select_runtime(make_config(runtime="docker"), layout, NullReporter(), flag="process")
    assert (choice.runtime.name, choice.reason) == ("process", "Runtime: process (--runtime process)")


def test_a_running_server_process_wins_over_auto_and_the_key(
    layout: InstanceLayout, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runtime, "connect", _no_engine_wanted)
    monkeypatch.setattr(ProcessRuntime, "running_pid", lambda self: 4242)
    choice = select_runtime(make_config(), layout, NullReporter())
    assert (choice.runtime.name, choice.reason) == (
        "process",
        "Runtime: process (this instance's server is running as pid 4242)",
    )
    choice = select_runtime(make_config(runtime="docker"), layout, NullReporter())
    assert (choice.runtime.name, choice.reason) == (
        "process",
        "Runtime: process (this instance's server is running as pid 4242; `regctl down` first to switch to docker)",
    )
    # --runtime still decides.
    monkeypatch.setattr(runtime, "connect", lambda: (object(), "unix:///var/run/docker.sock"))
    choice = select_runtime(make_config(), layout, NullReporter(), flag="docker")
    assert (choice.runtime.name, choice.reason) == ("docker", "Runtime: docker (--runtime docker)")


def _no_engine_wanted(*args: object) -> None:
    raise AssertionError("the Docker engine was asked although the choice was already made")


# -- the container's config hash ------------------------------------------------------------------------------
def _spec(layout: InstanceLayout, image_id: str = "sha256:aa", config_text: str = "version: 0.1\n", **values: Any):
    return container_spec(make_config(name="reg", **values), layout, image_id, config_text)


def test_spec_holds_what_defines_the_container(layout: InstanceLayout) -> None:
    spec = _spec(layout, bind="127.0.0.1", port=5001)
    assert spec == {
        "name": "reg",
        "image": "sha256:aa",
        "config": "version: 0.1\n",
        "ports": {"5000/tcp": ["127.0.0.1", 5001]},
        "volumes": {
            "regctl-data": {"bind": "/var/lib/registry", "mode": "rw"},
            str(layout.server_config.absolute()): {"bind": "/etc/docker/registry/config.yml", "mode": "ro"},
        },
        "environment": {},
        "restart_policy": {"Name": "always"},
    }
    data = _spec(layout, storage={"path": "data"})["volumes"]
    assert data[str(layout.root.absolute() / "data")] == {"bind": "/var/lib/registry", "mode": "rw"}


def test_hash_is_stable_and_ignores_key_order(layout: InstanceLayout) -> None:
    spec = _spec(layout)
    assert config_hash(spec) == config_hash(_spec(layout))
    assert config_hash(spec) == config_hash(dict(reversed(list(spec.items()))))
    assert len(config_hash(spec)) == 64


@pytest.mark.parametrize(
    "change",
    [
        {"image_id": "sha256:bb"},
        {"config_text": "version: 0.1\nstorage: {delete: {enabled: true}}\n"},
        {"port": 5001},
        {"bind": "127.0.0.1"},
        {"storage": {"volume": "other"}},
        {"storage": {"path": "/srv/registry"}},
    ],
)
def test_hash_changes_with_anything_that_defines_the_container(layout: InstanceLayout, change: dict[str, Any]) -> None:
    assert config_hash(_spec(layout, **change)) != config_hash(_spec(layout))


def test_docker_times() -> None:
    parse = docker_runtime._parse_time
    assert parse("2024-05-01T10:11:12.123456789Z") == datetime.datetime(2024, 5, 1, 10, 11, 12, tzinfo=datetime.UTC)
    assert parse("0001-01-01T00:00:00Z") is None
    assert parse(None) is None


# -- shared helpers ---------------------------------------------------------------------------------------------
def test_port_check_sees_a_listener() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for bind in ("127.0.0.1", "0.0.0.0"):
            with pytest.raises(RegctlError) as info:
                runtime.check_port_free(bind, port)
            assert info.value.message == f"port {port} on {bind} is already in use"
    runtime.check_port_free("127.0.0.1", port)


@pytest.mark.parametrize(
    ("text", "taken"),
    [
        ("driver failed programming external connectivity on endpoint r: Bind for 0.0.0.0:5000 failed: "
         "port is already allocated", True),
        ("Error starting userland proxy: listen tcp4 127.0.0.1:5000: bind: address already in use", True),
        ("No such image: regctl/registry:0.1.0", False),
    ],
)  # fmt: skip
def test_docker_port_messages(text: str, taken: bool) -> None:
    assert runtime.is_port_taken_message(text) is taken


class _Catalog(http.server.BaseHTTPRequestHandler):
    pages = {
        "/v2/_catalog": (200, {"repositories": ["a", "b"]}, '</v2/_catalog?last=b&n=2>; rel="next"'),
        "/v2/_catalog?last=b&n=2": (200, {"repositories": ["c"]}, None),
    }

    def do_GET(self) -> None:
        status, body, link = self.pages.get(self.path, (401, {"errors": []}, None))
        self.send_response(status)
        if link:
            self.send_header("Link", link)
        self.end_headers()
        self.wfile.write(json.dumps(body).encode())

    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def serve(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    with serving_in_thread(http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)) as port:
        yield f"http://127.0.0.1:{port}"


def test_repository_count_follows_link_pages() -> None:
    with serve(_Catalog) as url:
        assert runtime.count_repositories(url) == 3
        assert runtime.http_status(f"{url}/v2/_catalog") == 200
        assert runtime.http_status(f"{url}/v2/") == 401


def test_repository_count_unknown_when_refused_or_unauthorized() -> None:
    class Locked(_Catalog):
        pages = {}

    with serve(Locked) as url:
        assert runtime.count_repositories(url) is None
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    assert runtime.count_repositories(f"http://127.0.0.1:{port}") is None
    assert runtime.http_status(f"http://127.0.0.1:{port}/v2/") == 0


def test_healthy_statuses() -> None:
    assert [runtime.healthy(code) for code in (200, 401, 0, 404, 500)] == [True, True, False, False, False]


def test_urls() -> None:
    assert (
        runtime.registry_url(make_config(host="registry.example.com", port=5443)) == "http://registry.example.com:5443"
    )
    assert runtime.registry_url(make_config(host="::1")) == "http://[::1]:5000"
    assert runtime.local_url(make_config()) == "http://127.0.0.1:5000"
    assert runtime.local_url(make_config(bind="::")) == "http://[::1]:5000"
    assert runtime.local_url(make_config(bind="192.0.2.1", port=6000)) == "http://192.0.2.1:6000"


def test_directory_size_counts_hard_links_once(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a").write_bytes(b"x" * 10)
    (tmp_path / "b").write_bytes(b"y" * 5)
    os.link(tmp_path / "d" / "a", tmp_path / "link")
    assert runtime.directory_size(tmp_path) == 15
    assert runtime.directory_size(tmp_path / "missing") is None


def test_tail_lines() -> None:
    data = b"1\n2\n3\n"
    assert [runtime.tail_lines(data, n) for n in (None, 0, 2, 9)] == [data, b"", b"2\n3\n", data]


def test_status_json() -> None:
    started = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=90)
    status = Status("docker", "running", "healthy", "http://localhost:5000", "regctl/registry:1", started, 10, 2, "c1")
    data = status.to_json()
    assert data["started_at"] == started.isoformat()
    assert 89 <= data["uptime_seconds"] <= 120
    assert {k: data[k] for k in ("state", "health", "url", "repositories", "storage_bytes")} == {
        "state": "running",
        "health": "healthy",
        "url": "http://localhost:5000",
        "repositories": 2,
        "storage_bytes": 10,
    }
    stopped = Status("process", "stopped", None, "http://localhost:5000", None, started, None, None, None)
    assert stopped.to_json()["uptime_seconds"] is None


# -- the process runtime's parts --------------------------------------------------------------------------------
def test_read_tail_of_a_long_file(tmp_path: Path) -> None:
    path = tmp_path / "log"
    path.write_bytes(b"".join(b"line %d %s\n" % (i, b"x" * 100) for i in range(3000)))
    with path.open("rb") as log:
        tail = _read_tail(log, 3)
        assert tail.splitlines()[0].startswith(b"line 2997 ")
        assert len(tail.splitlines()) == 3
        assert log.read() == b""  # positioned at the end, ready to follow
    with path.open("rb") as log:
        assert _read_tail(log, None) == path.read_bytes()


def test_running_pid_is_a_live_regctl_server(layout: InstanceLayout) -> None:
    process = ProcessRuntime(make_config(), layout, NullReporter())
    assert process.running_pid() is None
    layout.run.mkdir(parents=True)
    # A live process that is not a regctl server (a recycled pid) does not count.
    layout.pid_file.write_text(f"{os.getpid()}\n")
    assert process.running_pid() is None
    fake = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "regctl", "serve"])
    try:
        layout.pid_file.write_text(f"{fake.pid}\n")
        assert process.running_pid() == fake.pid
    finally:
        fake.kill()
        fake.wait()
    assert not _alive(fake.pid)
    assert process.running_pid() is None


def test_process_down_when_nothing_runs_deletes_data_with_volumes(layout: InstanceLayout) -> None:
    (layout.data / "docker").mkdir(parents=True)
    reporter = Recorder()
    process = ProcessRuntime(make_config(), layout, reporter)
    assert process.data_location() == f"data directory {layout.data.absolute()}"
    process.down(volumes=False)
    assert layout.data.is_dir()
    process.down(volumes=True)
    assert not layout.data.exists()
    assert reporter.lines == ["The server is not running: nothing to stop"] * 2


def test_process_data_dir_not_writable(layout: InstanceLayout, monkeypatch: pytest.MonkeyPatch) -> None:
    process = ProcessRuntime(make_config(), layout, NullReporter())
    data = layout.root / "somewhere"
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    with pytest.raises(RegctlError) as info:
        process._check_data_dir(f"storage: {{filesystem: {{rootdirectory: {data}}}}}\n")
    assert info.value.message == f"data directory {data} is not writable by uid {os.geteuid()}"
    (layout.root / "file").write_text("")
    monkeypatch.undo()
    with pytest.raises(RegctlError) as info:
        process._check_data_dir(f"storage: {{filesystem: {{rootdirectory: {layout.root / 'file' / 'data'}}}}}\n")
    assert info.value.message.startswith(f"data directory {layout.root / 'file' / 'data'} is not writable: ")


def test_process_logs_and_restart_need_a_server(layout: InstanceLayout) -> None:
    process = ProcessRuntime(make_config(), layout, NullReporter())
    with pytest.raises(RegctlError) as info:
        list(process.logs(follow=False, tail=None))
    assert info.value.hint == "start the registry with `regctl up`"
    with pytest.raises(RegctlError) as info:
        process.restart()
    assert info.value.message == "the server is not running"
    layout.run.mkdir(parents=True)
    layout.log_file.write_bytes(b"a\nb\nc\n")
    assert b"".join(process.logs(follow=False, tail=2)) == b"b\nc\n"
    assert b"".join(process.logs(follow=True, tail=1)) == b"c\n"  # nothing runs: following ends at once
