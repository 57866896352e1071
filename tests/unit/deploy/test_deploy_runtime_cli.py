"""``regctl up/down/status/logs/restart/image`` through the real Click group, where no engine or server is
needed: help, the runtime line, and operator errors as one line plus a hint with exit 1."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from regctl.cli import cli

UNREACHABLE = "tcp://127.0.0.1:1"
ENGINE_DOWN = (
    f"Error: Docker engine not reachable at {UNREACHABLE}: connection refused\n"
    "Hint: start dockerd (or fix DOCKER_HOST), or run without Docker: --runtime process\n"
)


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("REGISTRY_", "REGCTL_", "DOCKER_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("DOCKER_HOST", UNREACHABLE)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "100")


@pytest.fixture
def instance(tmp_path: Path) -> Path:
    root = tmp_path / "instance"
    (root / "secrets").mkdir(parents=True)
    (root / "secrets" / "http-secret").write_text("secret\n")
    (root / "regctl.yaml").write_text(yaml.safe_dump({"name": "reg", "port": 5999, "bind": "127.0.0.1"}))
    return root


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.mark.parametrize(
    ("command", "example"),
    [
        (["up"], "regctl up --runtime process"),
        (["down"], "regctl down --volumes --yes"),
        (["status"], "regctl status --json"),
        (["logs"], "regctl logs -f"),
        (["restart"], "regctl restart"),
        (["image", "build"], "regctl image build --base-image"),
    ],
)
def test_help_teaches_with_examples(command: list[str], example: str) -> None:
    result = invoke(*command, "--help")
    assert result.exit_code == 0
    assert "Examples:" in result.stdout
    assert example in result.stdout


def test_root_help_lists_the_commands() -> None:
    text = invoke("--help").stdout
    for name in ("up", "down", "status", "logs", "restart", "image"):
        assert f"\n  {name} " in text


def test_up_forced_docker_without_an_engine(instance: Path) -> None:
    result = invoke("-C", str(instance), "up", "--runtime", "docker")
    assert (result.exit_code, result.stderr) == (1, ENGINE_DOWN)


def test_up_runtime_key_docker_without_an_engine(instance: Path) -> None:
    config = yaml.safe_load((instance / "regctl.yaml").read_text())
    (instance / "regctl.yaml").write_text(yaml.safe_dump({**config, "runtime": "docker"}))
    result = invoke("-C", str(instance), "status")
    assert (result.exit_code, result.stderr) == (1, ENGINE_DOWN)


def test_debug_adds_the_traceback(instance: Path) -> None:
    result = invoke("--debug", "-C", str(instance), "up", "--runtime", "docker")
    assert result.exit_code == 1
    assert "Traceback" in result.stderr
    assert result.stderr.endswith(ENGINE_DOWN)


def test_image_build_without_an_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = invoke("image", "build")
    assert (result.exit_code, result.stderr) == (1, ENGINE_DOWN)


def test_no_instance(tmp_path: Path) -> None:
    result = invoke("-C", str(tmp_path), "status")
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: no regctl instance in {tmp_path}\nHint: create one with `regctl init`, or pass -C DIR\n"
    )


def test_status_of_a_stopped_process_runtime(instance: Path) -> None:
    result = invoke("-C", str(instance), "status", "--json")
    assert result.exit_code == 0
    assert result.stderr == (f"Runtime: process (Docker engine not reachable at {UNREACHABLE}: connection refused)\n")
    status = json.loads(result.stdout)
    assert {k: status[k] for k in ("runtime", "state", "health", "url", "repositories")} == {
        "runtime": "process",
        "state": "stopped",
        "health": None,
        "url": "http://localhost:5999",
        "repositories": None,
    }
    table = invoke("-C", str(instance), "status").stdout
    assert [line.rstrip().split(None, 1) for line in table.splitlines()[:4]] == [
        ["Runtime", "process"],
        ["State", "stopped"],
        ["Health", "-"],
        ["URL", "http://localhost:5999"],
    ]


def test_down_volumes_without_a_terminal_needs_yes(instance: Path) -> None:
    (instance / "data").mkdir()
    result = invoke("-C", str(instance), "down", "--volumes")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[1:] == [
        f"Error: refusing to delete data directory {instance / 'data'} without confirmation",
        "Hint: add --yes to delete it, or leave out --volumes to keep the data",
    ]
    assert (instance / "data").is_dir()
    result = invoke("-C", str(instance), "down", "--volumes", "--yes")
    assert result.exit_code == 0
    assert not (instance / "data").exists()
    assert result.stderr.splitlines()[-1] == "Registry stopped, data deleted"


def test_logs_and_restart_of_a_server_that_never_ran(instance: Path) -> None:
    result = invoke("-C", str(instance), "logs")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[1:] == [
        f"Error: no log yet ({instance / 'run' / 'regctl.log'})",
        "Hint: start the registry with `regctl up`",
    ]
    result = invoke("-C", str(instance), "restart")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[1:] == [
        "Error: the server is not running",
        "Hint: start it with `regctl up`",
    ]


def test_up_process_port_taken(instance: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = yaml.safe_load((instance / "regctl.yaml").read_text())
        (instance / "regctl.yaml").write_text(yaml.safe_dump({**config, "port": port}))
        result = invoke("-C", str(instance), "up", "--runtime", "process")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "Runtime: process (--runtime process)",
        f"Error: port {port} on 127.0.0.1 is already in use",
        "Hint: stop whatever listens there (see `ss -ltnp`), or choose another port in regctl.yaml",
    ]
    assert not (instance / "run" / "regctl.pid").exists()
