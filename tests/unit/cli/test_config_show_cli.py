"""``regctl config show`` through the real Click group: YAML and JSON, masking, and finding the instance."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from regctl import __version__
from regctl.cli import cli
from regctl.deploy.init import build_config, create_instance
from regctl.deploy.instance import InstanceConfig, InstanceLayout


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def secret(root: Path) -> str:
    return InstanceLayout(root).secret.read_text().strip()


def test_yaml_output(tmp_path: Path) -> None:
    create_instance(tmp_path, InstanceConfig())
    result = invoke("config", "show")
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout == f"""\
# {tmp_path}/regctl.yaml, with defaults filled in
version: 1
name: registry
host: localhost
port: 5000
bind: 0.0.0.0
delete: false
runtime: auto
storage:
  backend: filesystem
  volume: regctl-data
  path: null
image:
  name: regctl/registry
  tag: {__version__}
  base: python:3.12-slim
tls:
  mode: none
  minimumtls: tls1.2
  clientcas: []
  acme:
    directory: letsencrypt
    email: null
    domains: []
    challenge: http-01
    responder: standalone
    http_port: 80
    tls_port: 443
    eab_kid: null
    ca_bundle: null
    renew_days: null
    auto: false
auth:
  mode: none
  realm: null
  insecure: false
  groups: {{}}
  rules:
  - subjects:
    - '*'
    repositories:
    - '{{user}}/*'
    actions:
    - '*'
  - subjects:
    - '*'
    repositories:
    - '*'
    actions:
    - pull
---
# the server's config.yml for the docker runtime; secret masked, --show-secrets shows it
version: '0.1'
log:
  fields:
    service: registry
storage:
  filesystem:
    rootdirectory: /var/lib/registry
  cache:
    blobdescriptor: inmemory
  delete:
    enabled: false
http:
  addr: :5000
  secret: '********'
  headers:
    X-Content-Type-Options:
    - nosniff
"""
    instance, server = yaml.safe_load_all(result.stdout)
    assert instance["port"] == 5000
    assert server["http"]["secret"] == "********"


def test_process_runtime_and_secrets(tmp_path: Path) -> None:
    create_instance(tmp_path, build_config({"runtime": "process", "port": 5001, "delete": True}))
    result = invoke("config", "show", "--show-secrets")
    assert result.exit_code == 0
    _, server = yaml.safe_load_all(result.stdout)
    assert "# the server's config.yml for the process runtime\n" in result.stdout
    assert server["http"] == {
        "addr": "0.0.0.0:5001",
        "secret": secret(tmp_path),
        "headers": {"X-Content-Type-Options": ["nosniff"]},
    }
    assert server["storage"]["filesystem"] == {"rootdirectory": str(tmp_path / "data")}
    assert server["storage"]["delete"] == {"enabled": True}
    _, server = yaml.safe_load_all(invoke("config", "show", "--runtime", "docker").stdout)
    assert (server["http"]["addr"], server["http"]["secret"]) == (":5000", "********")


def test_json(tmp_path: Path) -> None:
    create_instance(tmp_path, InstanceConfig())
    result = invoke("config", "show", "--json")
    assert result.exit_code == 0
    shown = json.loads(result.stdout)
    assert sorted(shown) == ["instance", "instance_dir", "server", "target"]
    assert (shown["instance_dir"], shown["target"]) == (str(tmp_path), "container")
    assert shown["instance"]["image"]["tag"] == __version__
    assert shown["server"]["http"]["secret"] == "********"
    shown = json.loads(invoke("config", "show", "--json", "--show-secrets", "--runtime", "process").stdout)
    assert (shown["target"], shown["server"]["http"]["secret"]) == ("process", secret(tmp_path))


# -- finding the instance ----------------------------------------------------------------------------------
def test_found_in_a_parent_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    create_instance(tmp_path, build_config({"port": 5003}))
    (tmp_path / "a" / "b").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "a" / "b")
    assert json.loads(invoke("config", "show", "--json").stdout)["instance"]["port"] == 5003


def test_dash_c(tmp_path: Path) -> None:
    create_instance(tmp_path / "inst", build_config({"port": 5004}))
    create_instance(tmp_path, build_config({"port": 5005}))  # -C wins over the current directory
    shown = json.loads(invoke("-C", "inst", "config", "show", "--json").stdout)
    assert (shown["instance_dir"], shown["instance"]["port"]) == (str(tmp_path / "inst"), 5004)


def test_regctl_home(tmp_path: Path) -> None:
    create_instance(tmp_path / "home", build_config({"port": 5006}))
    create_instance(tmp_path, build_config({"port": 5007}))  # $REGCTL_HOME wins over the current directory
    shown = json.loads(invoke("config", "show", "--json", env={"REGCTL_HOME": str(tmp_path / "home")}).stdout)
    assert shown["instance"]["port"] == 5006


def test_no_instance(tmp_path: Path) -> None:
    result = invoke("config", "show")
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == (
        f"Error: no regctl instance in {tmp_path} or its parents, nor in $REGCTL_HOME\n"
        "Hint: create one with `regctl init`, or pass -C DIR\n"
    )
    result = invoke("-C", "nowhere", "config", "show")
    assert result.stderr == (
        "Error: no regctl instance in nowhere\nHint: create one with `regctl init`, or pass -C DIR\n"
    )


def test_a_wrong_value_in_regctl_yaml(tmp_path: Path) -> None:
    create_instance(tmp_path, InstanceConfig())
    (tmp_path / "regctl.yaml").write_text("port: 70000\n")
    result = invoke("config", "show")
    assert (result.exit_code, result.stderr) == (
        1,
        f"Error: port: must be between 1 and 65535, got 70000\nHint: fix {tmp_path}/regctl.yaml\n",
    )


def test_missing_secret(tmp_path: Path) -> None:
    create_instance(tmp_path, InstanceConfig())
    (tmp_path / "secrets" / "http-secret").unlink()
    result = invoke("config", "show")
    assert result.exit_code == 1
    assert result.stderr.startswith(
        f"Error: cannot read the HTTP secret {tmp_path}/secrets/http-secret: No such file or directory\n"
    )


def test_help_teaches() -> None:
    result = invoke("config", "show", "-h")
    assert result.exit_code == 0
    assert result.stdout.startswith("Usage: regctl config show [OPTIONS]\n")
    assert "Examples:\n" in result.stdout
    assert "  regctl -C /srv/registry config show --json | jq .server.http\n" in result.stdout
    assert "show  Print the effective configuration." in invoke("config", "-h").stdout
