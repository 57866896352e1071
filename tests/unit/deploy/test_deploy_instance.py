"""regctl.yaml: every wrong value names its key and what is allowed; the file round-trips through the model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from regctl import __version__
from regctl.deploy.instance import (
    InstanceConfig,
    InstanceLayout,
    dump_config,
    load_config,
    validate_config,
    write_config,
)
from regctl.errors import ConfigError


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"port": 70000}, "port: must be between 1 and 65535, got 70000"),
        ({"port": "70000"}, "port: must be between 1 and 65535, got 70000"),
        ({"port": 0}, "port: must be between 1 and 65535, got 0"),
        ({"port": "abc"}, "port: must be between 1 and 65535, got 'abc'"),
        ({"port": True}, "port: must be between 1 and 65535, got True"),
        ({"port": 5000.5}, "port: must be between 1 and 65535, got 5000.5"),
        (
            {"name": "my reg"},
            "name: must start with a letter or digit and hold only letters, digits, '_', '.', '-', got 'my reg'",
        ),
        (
            {"host": "http://example.com"},
            "host: must be a host name or an IP address, without scheme or port, got 'http://example.com'",
        ),
        (
            {"host": "example.com:5000"},
            "host: must be a host name or an IP address, without scheme or port, got 'example.com:5000'",
        ),
        (
            {"bind": "localhost"},
            "bind: must be an IP address of this host (0.0.0.0 for every interface, 127.0.0.1, ::), got 'localhost'",
        ),
        ({"delete": "maybe"}, "delete: must be true or false, got 'maybe'"),
        ({"runtime": "podman"}, "runtime: must be 'auto', 'docker' or 'process', got 'podman'"),
        ({"colour": "blue"}, "colour: unknown key"),
        ({"storage": "big"}, "storage: must be a mapping of keys to values"),
        (
            {"storage": {"volume": "x"}},
            "storage.volume: must be a Docker volume name (2 or more letters, digits, '_', '.', '-'), got 'x'",
        ),
        (
            {"storage": {"volume": "a/b"}},
            "storage.volume: must be a Docker volume name (2 or more letters, digits, '_', '.', '-'), got 'a/b'",
        ),
        ({"storage": {"path": " "}}, "storage.path: must be a directory path, got ' '"),
        (
            {"image": {"base": "python 3"}},
            "image.base: must be an image reference such as python:3.12-slim, got 'python 3'",
        ),
        (
            {"image": {"base": "python:3.12\nRUN rm -rf /"}},
            "image.base: must be an image reference such as python:3.12-slim, got 'python:3.12\\nRUN rm -rf /'",
        ),
        (
            {"image": {"name": "Regctl/Registry"}},
            "image.name: must be an image repository such as regctl/registry, got 'Regctl/Registry'",
        ),
        ({"image": {"tag": "-x"}}, "image.tag: must be an image tag such as 1.0, got '-x'"),
    ],
)
def test_wrong_values_name_the_key_and_what_is_allowed(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        validate_config(data)
    assert info.value.message == message


@pytest.mark.parametrize(
    "data",
    [
        {"port": 1},
        {"port": 65535},
        {"port": "5001"},
        {"host": "registry.example.com"},
        {"host": "127.0.0.1"},
        {"host": "::1"},
        {"bind": "::"},
        {"storage": {"volume": "my_data.1", "path": "./data"}},
        {"image": {"base": "peers/debian-python:12"}},
        {"image": {"base": "localhost:5000/python:3.12-slim"}},
        {"image": {"base": "[::1]:5000/library/python@sha256:" + "a" * 64}},
        {"image": {"name": "registry.example.com:5000/ops/registry", "tag": "v1.0_rc"}},
    ],
)
def test_valid_values(data: dict[str, Any]) -> None:
    validate_config(data)


def test_dump_round_trips_with_a_header(tmp_path: Path) -> None:
    config = validate_config({"name": "reg", "port": 5001, "storage": {"path": "/srv/data"}, "delete": True})
    text = dump_config(config)
    assert text.splitlines()[:2] == [
        "# regctl instance configuration: the one source of truth for this registry "
        f"(written by regctl {__version__}).",
        "# Edit it, then run `regctl up` to apply. `regctl config show` prints what regctl derives from it.",
    ]
    assert yaml.safe_load(text) == config.model_dump(mode="json")
    layout = InstanceLayout(tmp_path)
    write_config(layout, config)
    assert load_config(layout) == config
    assert layout.config.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["regctl.yaml"]  # no temporary file left behind


def test_load_config_names_the_file_in_the_hint(tmp_path: Path) -> None:
    layout = InstanceLayout(tmp_path)
    layout.config.write_text("port: 99999\n")
    with pytest.raises(ConfigError) as info:
        load_config(layout)
    assert (info.value.message, info.value.hint) == (
        "port: must be between 1 and 65535, got 99999",
        f"fix {layout.config}",
    )


def test_image_ref_defaults_to_the_installed_version() -> None:
    assert InstanceConfig().image.ref == f"regctl/registry:{__version__}"
    assert validate_config({"image": {"name": "ops/reg", "tag": "7"}}).image.ref == "ops/reg:7"
