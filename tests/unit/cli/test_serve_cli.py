"""``regctl serve`` through the real Click group: help, flag handling and error rendering (no server runs)."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import regctl.registry.server
from regctl import __version__
from regctl.cli import cli, main
from regctl.cli.serve import _default_workers
from regctl.config.server import ServerConfig
from regctl.errors import RegctlError


@pytest.fixture(autouse=True)
def _clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("REGISTRY_", "REGCTL_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "80")


class FakeRun:
    """Stands in for regctl.registry.server.run: records what serve passed, announces, returns ``code``."""

    def __init__(self) -> None:
        self.calls: list[tuple[ServerConfig, int]] = []
        self.code = 0
        self.error: Exception | None = None

    def __call__(
        self,
        config: ServerConfig,
        workers: int,
        *,
        on_listening: Callable[[str], None],
        drop_privileges: Callable[[], None] | None,
    ) -> int:
        self.calls.append((config, workers))
        if self.error is not None:
            raise self.error
        on_listening("http://127.0.0.1:5000")
        return self.code

    @property
    def config(self) -> ServerConfig:
        assert len(self.calls) == 1
        return self.calls[0][0]


@pytest.fixture
def fake_run(monkeypatch: pytest.MonkeyPatch) -> FakeRun:
    fake = FakeRun()
    monkeypatch.setattr(regctl.registry.server, "run", fake)
    return fake


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "config.yml"
    path.write_text(text)
    return str(path)


MINIMAL = "version: 0.1\nstorage: {filesystem: {rootdirectory: /data}}\n"


# -- help and version ----------------------------------------------------------------------------------------
def test_root_help_lists_serve() -> None:
    for flag in ("--help", "-h"):
        result = invoke(flag)
        assert result.exit_code == 0
        assert re.search(r"^  serve +Run the registry server\.$", result.stdout, re.MULTILINE)
        assert "--debug" in result.stdout


def test_version() -> None:
    result = invoke("--version")
    assert (result.exit_code, result.stdout) == (0, f"regctl {__version__}\n")


def test_serve_help_teaches() -> None:
    result = invoke("serve", "-h")
    assert result.exit_code == 0
    text = result.stdout
    assert text.startswith("Usage: regctl serve [OPTIONS] [CONFIG]\n")
    for expected in (
        "REGISTRY_* environment variables",
        "REGCTL_SERVE_CONFIG",
        "REGCTL_WORKERS",
        "$REGISTRY_CONFIGURATION_PATH",
        "--delete / --no-delete",
        "Examples:",
        "  regctl serve /etc/docker/registry/config.yml  # a registry:2 config, as is",
        "  regctl serve --addr 127.0.0.1:5000 --root ./data --delete",
    ):
        assert expected in text


# -- usage errors: exit 2 --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--bogus"], None, "Error: No such option '--bogus'."),
        (
            ["--workers", "0"],
            None,
            "Error: Invalid value for '--workers' (env var: 'REGCTL_WORKERS'): 0 is not in the range x>=1.",
        ),
        (
            [],
            {"REGCTL_WORKERS": "many"},
            "Error: Invalid value for '--workers' (env var: 'REGCTL_WORKERS'): 'many' is not a valid integer range.",
        ),
        (
            ["--addr", "5000"],
            None,
            "Error: Invalid value for '--addr': missing port in address '5000' (expected HOST:PORT, e.g. :5000)",
        ),
        (
            ["a.yml", "--config", "b.yml"],
            None,
            "Error: give the configuration file either as CONFIG or with --config, not both",
        ),
        (["a.yml", "b.yml"], None, "Error: Got unexpected extra argument (b.yml)"),
    ],
)
def test_usage_errors_exit_2(fake_run: FakeRun, args: list[str], env: dict[str, str] | None, message: str) -> None:
    result = invoke("serve", *args, env=env)
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == message
    assert "Traceback" not in result.stderr
    assert fake_run.calls == []


# -- operator errors: exit 1, one line and a hint ----------------------------------------------------------------
def test_config_error_is_one_line_and_a_hint(tmp_path: Path, fake_run: FakeRun) -> None:
    path = write(tmp_path, MINIMAL + "http: {adr: ':5000'}\n")
    result = invoke("serve", "--config", path)
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: http.adr: unknown key (did you mean addr?)\n"
        "Hint: valid keys under http: addr, net, host, prefix, secret, relativeurls, draintimeout, tls, headers, "
        "debug, http2\n"
    )
    assert fake_run.calls == []


def test_env_error_names_the_variable(fake_run: FakeRun) -> None:
    result = invoke("serve", env={"REGISTRY_STORAGE_DELETE_ENABLED": "maybe"})
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: storage.delete.enabled (from REGISTRY_STORAGE_DELETE_ENABLED): value must be a boolean, got 'maybe'\n"
        "Hint: write true or false\n"
    )


def test_missing_config_file(tmp_path: Path, fake_run: FakeRun) -> None:
    path = str(tmp_path / "nope.yml")
    result = invoke("serve", path)
    assert result.exit_code == 1
    assert result.stderr == f"Error: {path}: cannot read the configuration file: No such file or directory\n"


def test_runner_error_is_rendered(fake_run: FakeRun) -> None:
    fake_run.error = RegctlError("cannot listen on 127.0.0.1:5000: address already in use", "stop the other server")
    result = invoke("serve", "--addr", "127.0.0.1:5000")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: cannot listen on 127.0.0.1:5000: address already in use\nHint: stop the other server\n"
    )


def test_debug_adds_the_traceback(fake_run: FakeRun) -> None:
    fake_run.error = RegctlError("cannot listen on 127.0.0.1:5000: address already in use")
    result = invoke("--debug", "serve")
    assert result.exit_code == 1
    assert "Traceback" in result.stderr
    assert result.stderr.endswith("Error: cannot listen on 127.0.0.1:5000: address already in use\n")


def test_main_renders_unexpected_errors_as_one_line(
    fake_run: FakeRun, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_run.error = ValueError("boom")
    monkeypatch.setattr("sys.argv", ["regctl", "serve"])
    with pytest.raises(SystemExit) as info:
        main()
    assert info.value.code == 1
    assert capsys.readouterr().err == (
        "Error: unexpected ValueError: boom\nHint: this is a bug in regctl; run again with --debug for details\n"
    )


# -- what reaches the runner -----------------------------------------------------------------------------------
def test_defaults_without_a_config(fake_run: FakeRun) -> None:
    result = invoke("serve")
    assert result.exit_code == 0
    workers = _default_workers()
    assert fake_run.calls == [(ServerConfig(), workers)]
    assert result.stderr == f"regctl serve: listening on http://127.0.0.1:5000 ({workers} workers)\n"


def test_flags_override_config_and_env(tmp_path: Path, fake_run: FakeRun) -> None:
    path = write(tmp_path, MINIMAL.replace("/data}", "/data, maxthreads: 10}") + "http: {addr: ':5000'}\n")
    result = invoke(
        "serve", "--config", path, "--addr", "127.0.0.1:0", "--root", "rel", "--workers", "1", "--delete",
        env={"REGISTRY_HTTP_ADDR": ":6000", "REGISTRY_STORAGE_DELETE_ENABLED": "false"},
    )  # fmt: skip
    assert result.exit_code == 0
    config, workers = fake_run.calls[0]
    assert workers == 1
    assert config.http.addr == "127.0.0.1:0"
    assert config.storage.parameters == {"rootdirectory": os.path.abspath("rel"), "maxthreads": 10}
    assert config.storage.delete.enabled is True
    assert result.stderr == "regctl serve: listening on http://127.0.0.1:5000 (1 worker)\n"


def test_root_switches_to_the_filesystem_driver(tmp_path: Path, fake_run: FakeRun) -> None:
    invoke("serve", "--root", str(tmp_path), "--no-delete", env={"REGISTRY_STORAGE": "inmemory"})
    storage = fake_run.config.storage
    assert (storage.driver, storage.parameters, storage.delete.enabled) == (
        "filesystem",
        {"rootdirectory": str(tmp_path)},
        False,
    )


def test_env_applies_when_no_flag_is_given(fake_run: FakeRun) -> None:
    invoke("serve", env={"REGISTRY_HTTP_ADDR": ":6000", "REGISTRY_STORAGE_DELETE_ENABLED": "true"})
    assert (fake_run.config.http.addr, fake_run.config.storage.delete.enabled) == (":6000", True)


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["{path}"], {}),
        (["--config", "{path}"], {}),
        (["-c", "{path}"], {}),
        ([], {"REGCTL_SERVE_CONFIG": "{path}"}),
        ([], {"REGISTRY_CONFIGURATION_PATH": "{path}"}),
    ],
)
def test_config_file_sources(tmp_path: Path, fake_run: FakeRun, args: list[str], env: dict[str, str]) -> None:
    path = write(tmp_path, MINIMAL)
    result = invoke("serve", *(a.format(path=path) for a in args), env={k: v.format(path=path) for k, v in env.items()})
    assert result.exit_code == 0
    assert fake_run.config.storage.parameters == {"rootdirectory": "/data"}


def test_workers_from_env(fake_run: FakeRun) -> None:
    invoke("serve", env={"REGCTL_WORKERS": "3"})
    assert fake_run.calls[0][1] == 3


def test_warnings_are_shown_before_serving(tmp_path: Path, fake_run: FakeRun) -> None:
    path = write(tmp_path, MINIMAL + "health: {storagedriver: {enabled: true}}\n")
    result = invoke("serve", path, "--workers", "2")
    assert result.stderr == (
        "Warning: health: not supported yet, ignored\nregctl serve: listening on http://127.0.0.1:5000 (2 workers)\n"
    )


def test_exit_code_of_the_runner_is_the_exit_code(fake_run: FakeRun) -> None:
    fake_run.code = 1
    assert invoke("serve").exit_code == 1
