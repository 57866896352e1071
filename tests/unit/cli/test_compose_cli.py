"""``regctl compose`` through the real Click group: where it writes, and what it will not overwrite."""

from __future__ import annotations

from pathlib import Path

import yaml
from click.testing import CliRunner, Result

from regctl import __version__
from regctl.cli import cli
from regctl.deploy.init import build_config, create_instance
from regctl.deploy.instance import InstanceConfig

IMAGE = f"regctl/registry:{__version__}"


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_writes_docker_compose_yml_in_the_instance(tmp_path: Path) -> None:
    create_instance(tmp_path, InstanceConfig())
    result = invoke("compose")
    assert (result.exit_code, result.stdout) == (0, "")
    assert result.stderr == (
        f"Wrote {tmp_path}/docker-compose.yml (image {IMAGE}, port 5000)\nNext: docker compose up -d\n"
    )
    compose = yaml.safe_load((tmp_path / "docker-compose.yml").read_text())
    service = compose["services"]["registry"]
    assert (compose["name"], service["image"], service["restart"], service["ports"]) == (
        "registry",
        IMAGE,
        "always",
        ["0.0.0.0:5000:5000"],
    )
    assert service["volumes"][1]["source"] == str(tmp_path / "rendered" / "config.yml")
    assert (tmp_path / "rendered" / "config.yml").is_file()  # what the compose file mounts
    assert (tmp_path / "docker-compose.yml").stat().st_mode & 0o777 == 0o644


def test_runs_again_after_an_edit(tmp_path: Path) -> None:
    create_instance(tmp_path, InstanceConfig())
    invoke("compose")
    (tmp_path / "regctl.yaml").write_text("port: 5001\n")
    assert invoke("compose").exit_code == 0  # its own file: replaced without --force
    compose = yaml.safe_load((tmp_path / "docker-compose.yml").read_text())
    assert compose["services"]["registry"]["ports"] == ["0.0.0.0:5001:5000"]


def test_stdout(tmp_path: Path) -> None:
    create_instance(tmp_path, build_config({"storage.path": "/srv/registry"}))
    result = invoke("compose", "-o", "-")
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout == (tmp_path / "rendered" / "docker-compose.yml").read_text()
    assert yaml.safe_load(result.stdout)["services"]["registry"]["volumes"][0]["source"] == "/srv/registry"
    assert not (tmp_path / "docker-compose.yml").exists()


def test_output_elsewhere_and_dash_c(tmp_path: Path) -> None:
    create_instance(tmp_path / "inst", InstanceConfig())
    result = invoke("-C", "inst", "compose", "-o", "out/registry.yml")
    assert result.exit_code == 1  # out/ does not exist
    assert result.stderr == "Error: cannot write out/registry.yml: No such file or directory\n"
    (tmp_path / "out").mkdir()
    result = invoke("-C", "inst", "compose", "-o", "out/registry.yml")
    assert result.stderr == (
        f"Wrote {tmp_path}/out/registry.yml (image {IMAGE}, port 5000)\n"
        "Next: docker compose -f out/registry.yml up -d\n"
    )
    result = invoke("-C", "inst", "compose")
    assert result.stderr.splitlines()[-1] == "Next: docker compose -f inst/docker-compose.yml up -d"


def test_refuses_a_file_it_did_not_write(tmp_path: Path) -> None:
    create_instance(tmp_path, InstanceConfig())
    mine = "services:\n  web: {image: nginx}\n"
    (tmp_path / "docker-compose.yml").write_text(mine)
    result = invoke("compose")
    assert (result.exit_code, result.stderr) == (
        1,
        f"Error: {tmp_path}/docker-compose.yml exists and was not written by regctl\n"
        "Hint: pass --force to overwrite it, or write elsewhere with -o FILE\n",
    )
    assert (tmp_path / "docker-compose.yml").read_text() == mine
    assert invoke("compose", "--force").exit_code == 0
    assert "registry" in yaml.safe_load((tmp_path / "docker-compose.yml").read_text())["services"]


def test_no_instance(tmp_path: Path) -> None:
    result = invoke("compose")
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: no regctl instance in {tmp_path} or its parents, nor in $REGCTL_HOME\n"
        "Hint: create one with `regctl init`, or pass -C DIR\n"
    )


def test_help_teaches() -> None:
    result = invoke("compose", "--help")
    assert result.exit_code == 0
    assert result.stdout.startswith("Usage: regctl compose [OPTIONS]\n")
    assert "  regctl compose && docker compose up -d        # in the instance directory\n" in result.stdout
    assert "  regctl compose -o - | docker compose -f - config\n" in result.stdout
