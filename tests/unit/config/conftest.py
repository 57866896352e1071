"""The config tests' ``write``: a config.yml in the test's directory, dedented, its path as a string."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

Write = Callable[[str], str]


@pytest.fixture
def write(tmp_path: Path) -> Write:
    def write(text: str) -> str:
        path = tmp_path / "config.yml"
        path.write_text(textwrap.dedent(text))
        return str(path)

    return write
