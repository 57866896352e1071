"""skopeo 1.9 (containers/image) against the registry: copy in and out, inspect, list-tags, delete.

Every check is on what a user sees: skopeo's exit code and output, and the exact bytes a client gets back.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers.images import DOCKER_MANIFEST, OCI_MANIFEST, Image, read_dir_image, read_oci_layout
from helpers.registry_api import RegistryClient


def assert_served(api: RegistryClient, repo: str, ref: str, image: Image) -> None:
    """The registry serves ``image`` byte for byte under ``repo:ref`` and by digest, with all its blobs."""
    for reference in (ref, image.digest):
        resp = api.get_manifest(repo, reference)
        assert resp.status == 200, f"GET manifest {repo}:{reference}: HTTP {resp.status} {resp.body[:300]!r}"
        assert resp.body == image.manifest
        assert resp.digest == image.digest
        assert resp.content_type == image.media_type
    for digest, data in image.blobs.items():
        resp = api.get_blob(repo, digest)
        assert resp.status == 200, f"GET blob {repo}@{digest}: HTTP {resp.status}"
        assert resp.body == data, f"blob {digest} differs"


def test_copy_oci_layout_to_registry(registry, api, skopeo, sample_images):
    skopeo.copy(sample_images.oci_ref(), f"docker://{registry.addr}/skopeo/from-oci:1")

    assert_served(api, "skopeo/from-oci", "1", sample_images.oci)
    assert sample_images.oci.media_type == OCI_MANIFEST


def test_copy_dir_to_registry(registry, api, skopeo, sample_images):
    skopeo.copy(sample_images.dir_ref(), f"docker://{registry.addr}/skopeo/from-dir:1")

    assert_served(api, "skopeo/from-dir", "1", sample_images.docker)
    assert sample_images.docker.media_type == DOCKER_MANIFEST


@pytest.mark.parametrize("source", ["oci", "docker"])
def test_copy_registry_to_oci_and_dir(registry, skopeo, sample_images, tmp_path: Path, source: str):
    image = sample_images.oci if source == "oci" else sample_images.docker
    src = sample_images.oci_ref() if source == "oci" else sample_images.dir_ref()
    remote = f"docker://{registry.addr}/skopeo/roundtrip-{source}:1"
    skopeo.copy(src, remote)

    skopeo.copy(remote, f"dir:{tmp_path / 'dir'}")
    manifest, blobs = read_dir_image(tmp_path / "dir")
    assert manifest == image.manifest
    assert blobs == image.blobs

    if source == "oci":  # an OCI layout holds OCI manifests only; skopeo would convert a schema2 one
        skopeo.copy(remote, f"oci:{tmp_path / 'layout'}:pulled")
        manifest, blobs = read_oci_layout(tmp_path / "layout", "pulled")
        assert manifest == image.manifest
        assert blobs == image.blobs


def test_inspect_digest_matches(registry, skopeo, sample_images):
    ref = f"docker://{registry.addr}/skopeo/inspect:v1"
    skopeo.copy(sample_images.oci_ref(), ref)

    raw = skopeo.inspect(ref, raw=True).stdout
    assert raw == sample_images.oci.manifest

    info = json.loads(skopeo.inspect(ref).stdout)
    assert info["Digest"] == sample_images.oci.digest
    assert info["Name"] == f"{registry.addr}/skopeo/inspect"
    assert info["RepoTags"] == ["v1"]
    assert info["Layers"] == list(sample_images.oci.blobs)[1:]  # blobs: config first, then layers
    assert info["Labels"] == {"org.regctl.test": "oci"}


def test_list_tags(registry, skopeo, sample_images):
    repo = f"{registry.addr}/skopeo/tags"
    for tag in ("1", "1.0", "latest"):
        skopeo.copy(sample_images.oci_ref(), f"docker://{repo}:{tag}")
    skopeo.copy(sample_images.dir_ref(), f"docker://{repo}:docker")

    listed = json.loads(skopeo.list_tags(f"docker://{repo}").stdout)

    assert listed["Repository"] == repo
    assert sorted(listed["Tags"]) == ["1", "1.0", "docker", "latest"]


def test_delete(registry, api, skopeo, sample_images):
    repo = "skopeo/delete"
    gone, kept = sample_images.oci, sample_images.oci_other
    skopeo.copy(sample_images.oci_ref("oci"), f"docker://{registry.addr}/{repo}:gone")
    skopeo.copy(sample_images.oci_ref("oci-other"), f"docker://{registry.addr}/{repo}:kept")

    skopeo.delete(f"docker://{registry.addr}/{repo}:gone")

    listed = json.loads(skopeo.list_tags(f"docker://{registry.addr}/{repo}").stdout)
    assert listed["Tags"] == ["kept"]
    assert api.get_manifest(repo, "gone").status == 404
    assert api.get_manifest(repo, gone.digest).status == 404
    missing = skopeo.inspect(f"docker://{registry.addr}/{repo}:gone", raw=True, check=False)
    assert missing.returncode != 0
    assert_served(api, repo, "kept", kept)
