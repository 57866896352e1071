"""The README documents every configuration key regctl serves and every command it has (datasette's habit)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from regctl.cli import cli
from regctl.config import load

README = (Path(__file__).parents[2] / "README.md").read_text()


def _served_keys(schema: object, prefix: str = "") -> list[str]:
    """Dotted paths of every key in the schema that regctl serves (not the ones it only reports)."""
    if not isinstance(schema, dict):
        return []
    keys = []
    for key, child in schema.items():
        if isinstance(child, load._Unserved):
            continue
        path = f"{prefix}{key}"
        if child is load._DRIVER_MAP:
            below = [f"{path}.{driver}" for driver in load.STORAGE_DRIVERS]
            below += _served_keys(load._STORAGE_SHARED, f"{path}.")
        else:
            below = _served_keys(child, f"{path}.")
        if below or not isinstance(child, dict):  # a section whose keys are all unserved is not served
            keys += [path, *below]
    return keys


@pytest.mark.parametrize("key", _served_keys(load._SCHEMA))
def test_config_key_is_documented(key: str) -> None:
    name = key.rsplit(".", 1)[-1]
    assert re.search(rf"^\s*#?\s*{re.escape(name)}:", README, re.MULTILINE), f"README does not document {key}"


@pytest.mark.parametrize("command", sorted(cli.commands))
def test_command_is_documented(command: str) -> None:
    assert f"regctl {command}" in README
