"""Shared fixtures for the deploy library's unit tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from regctl.deploy.instance import InstanceLayout


@pytest.fixture
def layout(tmp_path: Path) -> InstanceLayout:
    """An instance directory holding only its HTTP secret."""
    layout = InstanceLayout(tmp_path / "instance")
    layout.secret.parent.mkdir(parents=True)
    layout.secret.write_text("secret\n")
    return layout
