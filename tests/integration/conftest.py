"""Integration fixtures: registry servers of both kinds (see ``helpers.fixtures``) and hand-built images.

The images need no Docker engine: ``sample_images.layout`` is an OCI layout (``oci:`` transport) holding
two OCI images, ``sample_images.docker_dir`` a Docker schema2 image in skopeo's ``dir:`` layout.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers.fixtures import (  # noqa: F401  (fixtures and hooks are found by name)
    api,
    distribution_registry,
    free_port,
    pytest_collection_modifyitems,
    pytest_configure,
    pytest_runtest_makereport,
    pytest_runtest_setup,
    regctl_registry,
    registry,
    registry_factory,
    skopeo,
)
from helpers.images import Image, make_image, write_dir_image, write_oci_layout
from helpers.pebble_fixtures import pebble, pebble_eab, pebble_factory  # noqa: F401  (Pebble, see helpers.pebble)


@dataclass(frozen=True)
class SampleImages:
    oci: Image
    oci_other: Image
    docker: Image
    layout: Path  # tags "oci" -> oci, "oci-other" -> oci_other
    docker_dir: Path

    def oci_ref(self, tag: str = "oci") -> str:
        return f"oci:{self.layout}:{tag}"

    def dir_ref(self) -> str:
        return f"dir:{self.docker_dir}"


@pytest.fixture(scope="session")
def sample_images(tmp_path_factory: pytest.TempPathFactory) -> SampleImages:
    base = tmp_path_factory.mktemp("images")
    oci = make_image({"hello.txt": b"hello from an OCI image\n"}, description="oci")
    oci_other = make_image({"other.txt": b"another OCI image\n" * 1000}, description="oci-other")
    docker = make_image({"docker.txt": b"hello from a Docker schema2 image\n"}, docker=True, description="docker")
    return SampleImages(
        oci=oci,
        oci_other=oci_other,
        docker=docker,
        layout=write_oci_layout(base / "layout", {"oci": oci, "oci-other": oci_other}),
        docker_dir=write_dir_image(base / "docker-dir", docker),
    )
