"""create_instance and the helpers behind `regctl init`'s flags and questions."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from regctl.deploy.init import build_config, check_value, create_instance, data_location
from regctl.deploy.instance import InstanceConfig, InstanceLayout, load_config
from regctl.errors import ConfigError, RegctlError


def test_creates_config_and_secret(tmp_path: Path) -> None:
    root = tmp_path / "new" / "instance"
    config = build_config({"name": "reg", "storage.path": "/srv/data", "image.base": "peers/debian-python:12"})
    created = create_instance(root, config)
    layout = InstanceLayout(root)
    assert (created.layout, created.replaced, created.secret_kept) == (layout, False, False)
    assert load_config(layout) == config
    secret = layout.secret.read_text()
    assert secret.endswith("\n") and len(secret.strip()) == 64  # token_urlsafe(48)
    assert layout.secret.stat().st_mode & 0o777 == 0o600
    assert layout.secret.parent.stat().st_mode & 0o777 == 0o700


def test_secret_is_never_readable_by_others(tmp_path: Path) -> None:
    # Created with 0600 by os.open itself: even a permissive umask cannot widen it.
    old = os.umask(0)
    try:
        create_instance(tmp_path, InstanceConfig())
    finally:
        os.umask(old)
    assert InstanceLayout(tmp_path).secret.stat().st_mode & 0o777 == 0o600


def test_each_instance_gets_its_own_secret(tmp_path: Path) -> None:
    create_instance(tmp_path / "a", InstanceConfig())
    create_instance(tmp_path / "b", InstanceConfig())
    assert InstanceLayout(tmp_path / "a").secret.read_text() != InstanceLayout(tmp_path / "b").secret.read_text()


def test_refuses_an_existing_instance(tmp_path: Path) -> None:
    create_instance(tmp_path, InstanceConfig())
    before = InstanceLayout(tmp_path).config.read_text()
    with pytest.raises(RegctlError) as info:
        create_instance(tmp_path, build_config({"port": 5001}))
    assert (info.value.message, info.value.hint) == (
        f"{tmp_path} already holds a regctl instance (regctl.yaml)",
        "pass --force to replace its regctl.yaml (the HTTP secret and the data are kept), or choose another directory",
    )
    assert InstanceLayout(tmp_path).config.read_text() == before


def test_force_replaces_the_config_and_keeps_the_secret(tmp_path: Path) -> None:
    create_instance(tmp_path, InstanceConfig())
    layout = InstanceLayout(tmp_path)
    secret = layout.secret.read_text()
    created = create_instance(tmp_path, build_config({"port": 5001}), force=True)
    assert (created.replaced, created.secret_kept) == (True, True)
    assert load_config(layout).port == 5001
    assert layout.secret.read_text() == secret


def test_unwritable_directory(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(RegctlError) as info:
        create_instance(tmp_path / "file" / "instance", InstanceConfig())
    assert info.value.message == f"cannot write {tmp_path / 'file' / 'instance'}: Not a directory"


def test_build_config_takes_dotted_keys() -> None:
    config = build_config({"port": "5002", "storage.volume": "reg-data", "delete": True, "image.base": "x/y:1"})
    assert (config.port, config.storage.volume, config.delete, config.image.base) == (5002, "reg-data", True, "x/y:1")


def test_check_value_converts_or_names_the_key() -> None:
    assert check_value("port", "5001") == 5001
    assert check_value("storage.volume", "reg-data") == "reg-data"
    with pytest.raises(ConfigError) as info:
        check_value("storage.volume", "x")
    assert info.value.message == (
        "storage.volume: must be a Docker volume name (2 or more letters, digits, '_', '.', '-'), got 'x'"
    )


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("regctl-data", {"storage.volume": "regctl-data"}),
        ("data", {"storage.volume": "data"}),
        ("./data", {"storage.path": "/work/data"}),
        ("data/registry", {"storage.path": "/work/data/registry"}),
        ("/srv/registry", {"storage.path": "/srv/registry"}),
        (".", {"storage.path": "/work"}),
    ],
)
def test_data_location(answer: str, expected: dict[str, str]) -> None:
    assert data_location(answer, Path("/work")) == expected


def test_data_location_expands_home(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", "/home/ops")
    assert data_location("~/registry", Path("/work")) == {"storage.path": "/home/ops/registry"}
