"""The server image's inputs, without an engine: base image choice, wheel tags, the re-packed wheel."""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from regctl import __version__
from regctl.deploy import image
from regctl.deploy.image import BasePython, platform_tags, repack_installed, resolve_base_image, wheel_requirements
from regctl.deploy.instance import InstanceConfig
from regctl.errors import RegctlError


# -- which base, which tag, where the cache is -------------------------------------------------------------------
def test_base_image_precedence_flag_env_key_default() -> None:
    config = InstanceConfig.model_validate({"image": {"base": "key/base:1"}})
    env = {"REGCTL_BASE_IMAGE": "env/base:1"}
    assert resolve_base_image("flag/base:1", env, config) == "flag/base:1"
    assert resolve_base_image(None, env, config) == "env/base:1"
    assert resolve_base_image(None, {}, config) == "key/base:1"
    assert resolve_base_image(None, {}, None) == "python:3.12-slim"


def test_default_tag_is_the_regctl_version() -> None:
    assert image.default_tag(None) == f"regctl/registry:{__version__}"
    config = InstanceConfig.model_validate({"image": {"name": "r.example/reg", "tag": "7"}})
    assert image.default_tag(config) == "r.example/reg:7"


def test_cache_dir_respects_xdg(tmp_path: Path) -> None:
    assert image.cache_dir({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "regctl"
    assert image.cache_dir({}) == Path.home() / ".cache" / "regctl"


# -- wheel tags for the base's Python ---------------------------------------------------------------------------
def test_glibc_x86_64_tags_go_back_to_manylinux1() -> None:
    tags = platform_tags("x86_64", "glibc", "2.36")
    assert tags[0] == "manylinux_2_36_x86_64"
    assert tags[-3:] == ["manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"]
    assert "manylinux_2_17_x86_64" in tags and "manylinux_2_5_x86_64" in tags
    assert "manylinux_2_37_x86_64" not in tags


def test_glibc_aarch64_starts_at_2_17() -> None:
    tags = platform_tags("aarch64", "glibc", "2.31")
    assert tags[-2:] == ["manylinux_2_17_aarch64", "manylinux2014_aarch64"]
    assert not any("manylinux1" in tag or "2_12" in tag for tag in tags)


def test_musl_tags() -> None:
    assert platform_tags("x86_64", "musl", "1.2") == [
        "musllinux_1_2_x86_64",
        "musllinux_1_1_x86_64",
        "musllinux_1_0_x86_64",
    ]


@pytest.mark.parametrize(("libc", "version"), [("", ""), ("uclibc", "1.0"), ("glibc", "unknown")])
def test_unknown_libc_is_an_error(libc: str, version: str) -> None:
    with pytest.raises(RegctlError):
        platform_tags("x86_64", libc, version)


def test_cache_key_separates_python_and_platform() -> None:
    python = BasePython("/usr/bin/python3", (3, 11), "x86_64", "glibc", "2.36")
    assert (python.abi, python.cache_key) == ("cp311", "cp311-manylinux_2_36_x86_64")


# -- regctl's own wheel -----------------------------------------------------------------------------------------
def _record_line(root: Path, name: str) -> str:
    data = (root / name).read_bytes()
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


@pytest.fixture
def installed(tmp_path: Path) -> importlib.metadata.Distribution:
    """An installed distribution as pip leaves it: package, dist-info, byte code, a console script."""
    site = tmp_path / "site-packages"
    info = site / "demo_pkg-1.2.dist-info"
    (site / "demo_pkg" / "__pycache__").mkdir(parents=True)
    (site / "demo_pkg" / "templates").mkdir()
    info.mkdir()
    (tmp_path / "bin").mkdir()
    files = {
        "demo_pkg/__init__.py": "VALUE = 1\n",
        "demo_pkg/templates/a.j2": "{{ x }}\n",
        "demo_pkg/__pycache__/__init__.cpython-311.pyc": "bytecode",
        f"{info.name}/METADATA": "Metadata-Version: 2.1\nName: demo-pkg\nVersion: 1.2\n"
        "Requires-Dist: click>=8\nRequires-Dist: uvloop; sys_platform != 'win32'\n"
        'Requires-Dist: pytest; extra == "test"\n',
        f"{info.name}/WHEEL": "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        f"{info.name}/entry_points.txt": "[console_scripts]\ndemo = demo_pkg:main\n",
        f"{info.name}/INSTALLER": "pip\n",
        f"{info.name}/direct_url.json": "{}\n",
        "../bin/demo": "#!/usr/bin/python\n",
    }
    for name, text in files.items():
        (site / name).write_text(text)
    record = [_record_line(site, name) for name in files] + [f"{info.name}/RECORD,,"]
    (info / "RECORD").write_text("\n".join(record) + "\n")
    return importlib.metadata.PathDistribution(info)


def test_repack_installed_makes_a_valid_wheel(installed: importlib.metadata.Distribution, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    wheel = repack_installed(installed, out)
    assert wheel.name == "demo_pkg-1.2-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        # Byte code, installer files and scripts outside site-packages stay behind; RECORD is written last.
        assert names == [
            "demo_pkg-1.2.dist-info/METADATA",
            "demo_pkg-1.2.dist-info/WHEEL",
            "demo_pkg-1.2.dist-info/entry_points.txt",
            "demo_pkg/__init__.py",
            "demo_pkg/templates/a.j2",
            "demo_pkg-1.2.dist-info/RECORD",
        ]
        record = archive.read("demo_pkg-1.2.dist-info/RECORD").decode().splitlines()
        for line in record[:-1]:
            name, digest, size = line.split(",")
            data = archive.read(name)
            expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            assert (digest, int(size)) == (f"sha256={expected}", len(data))
        assert record[-1] == "demo_pkg-1.2.dist-info/RECORD,,"
    assert wheel_requirements(wheel) == ["click>=8", "uvloop; sys_platform != 'win32'"]


def test_repack_is_reproducible(installed: importlib.metadata.Distribution, tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    assert repack_installed(installed, first).read_bytes() == repack_installed(installed, second).read_bytes()


def test_repack_without_record_is_an_error(tmp_path: Path) -> None:
    info = tmp_path / "bare-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: bare\nVersion: 1.0\n")
    with pytest.raises(RegctlError) as info_error:
        repack_installed(importlib.metadata.PathDistribution(info), tmp_path)
    assert info_error.value.message == "cannot re-pack bare: its installed files are not listed (no RECORD)"


def test_running_from_the_source_checkout() -> None:
    assert image.source_checkout() == Path(__file__).resolve().parents[3]


def test_pip_installs_the_repacked_wheel(installed: importlib.metadata.Distribution, tmp_path: Path) -> None:
    wheel = repack_installed(installed, tmp_path)
    target = tmp_path / "target"
    command = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--target", str(target), str(wheel)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert (target / "demo_pkg" / "templates" / "a.j2").read_text() == "{{ x }}\n"
    assert importlib.metadata.PathDistribution(target / "demo_pkg-1.2.dist-info").entry_points.names == {"demo"}
