"""Every file in examples/ loads: instance configurations as regctl.yaml, server configurations as config.yml."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from regctl.config.load import load_server_config
from regctl.deploy.instance import validate_config

EXAMPLES = Path(__file__).parents[2] / "examples"
INSTANCES = sorted(EXAMPLES.glob("*/regctl.yaml"))
SERVERS = sorted(EXAMPLES.glob("serve/*.yml"))


def test_every_example_is_listed_in_its_readme() -> None:
    index = (EXAMPLES / "README.md").read_text()
    for path in [*INSTANCES, *SERVERS]:
        assert f"`{path.relative_to(EXAMPLES)}`" in index


@pytest.mark.parametrize("path", INSTANCES, ids=lambda p: p.parent.name)
def test_instance_example_is_valid(path: Path) -> None:
    config = validate_config(yaml.safe_load(path.read_text()))
    assert config.host


@pytest.mark.parametrize("path", SERVERS, ids=lambda p: p.name)
def test_server_example_loads(path: Path) -> None:
    config, _warnings = load_server_config(str(path), {})
    assert config.http.addr
