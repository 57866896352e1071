"""The wheel carries the templates as ``regctl/templates``, and an installed regctl renders from them."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).parents[2]
TEMPLATES = sorted(str(p.relative_to(REPO)) for p in (REPO / "templates").rglob("*.j2"))


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", str(REPO), "-w", str(out)],
        check=True,
        cwd=out,
    )
    (found,) = out.glob("regctl-*.whl")
    return found


def test_wheel_contains_the_templates(wheel: Path) -> None:
    assert TEMPLATES == [
        "templates/compose/docker-compose.yml.j2",
        "templates/cron/regctl-renew.j2",
        "templates/docker/Dockerfile.j2",
        "templates/docker/htpasswd.j2",
        "templates/registry/config.yml.j2",
        "templates/systemd/regctl-renew.service.j2",
        "templates/systemd/regctl-renew.timer.j2",
    ]
    names = zipfile.ZipFile(wheel).namelist()
    assert sorted(n for n in names if n.startswith("regctl/templates/")) == [f"regctl/{t}" for t in TEMPLATES]
    assert not any(n.startswith("templates/") for n in names)


def test_an_installed_wheel_renders_from_its_package(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target", str(target), str(wheel)],
        check=True,
    )
    script = (
        "from regctl.deploy import render; env = render._environment(); "
        "print(env.loader.get_source(env, 'registry/config.yml.j2')[1]); print(render.render_image_config(), end='')"
    )
    # Run from an empty directory with only the installed copy on the path: not the checkout, not the cwd.
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(target)},
        capture_output=True,
        text=True,
        check=True,
    )
    source, _, rendered = result.stdout.partition("\n")
    assert source == str(target / "regctl" / "templates" / "registry" / "config.yml.j2")
    assert rendered.startswith("# The regctl image's default configuration")
    assert "rootdirectory: /var/lib/registry" in rendered
