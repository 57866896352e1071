"""One storage root, two servers: what one kind wrote, the other serves byte for byte.

regctl keeps Distribution's filesystem layout so an existing ``registry:2`` volume can be served as-is (and
back). Each case pushes with skopeo to the first kind, serves the same root with the second, checks every
manifest, blob, tag and the catalog, pushes more through the second, and reopens the root with the first.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.images import Image, read_dir_image
from helpers.registry_api import RegistryClient
from helpers.servers import RegistryProcess

# Where each case pushes from; the `dir:` image is Docker schema2, the layout holds OCI images.
SOURCE = {"oci": "oci", "oci-other": "oci-other", "docker": "dir"}

PAIRS = [
    pytest.param("distribution", "regctl", id="distribution-then-regctl"),
    pytest.param("regctl", "distribution", id="regctl-then-distribution"),
    pytest.param("regctl", "regctl", id="regctl-restart"),
    pytest.param("distribution", "distribution", id="distribution-restart"),
]


def _push(skopeo, sample_images, registry: RegistryProcess, contents: dict[str, dict[str, str]]) -> None:
    for repo, tags in contents.items():
        for tag, name in tags.items():
            src = sample_images.dir_ref() if name == "docker" else sample_images.oci_ref(name)
            skopeo.copy(src, f"docker://{registry.addr}/{repo}:{tag}")


def _images(sample_images) -> dict[str, Image]:
    return {"oci": sample_images.oci, "oci-other": sample_images.oci_other, "docker": sample_images.docker}


def assert_holds(registry: RegistryProcess, contents: dict[str, dict[str, str]], images: dict[str, Image]):
    """``registry`` lists exactly ``contents`` and serves every manifest and blob byte for byte."""
    api = RegistryClient(registry.url)
    assert api.catalog() == sorted(contents), f"{registry.kind} catalog"
    for repo, tags in contents.items():
        assert api.tags(repo) == sorted(tags), f"{registry.kind} tags of {repo}"
        for tag, name in tags.items():
            image = images[name]
            for ref in (tag, image.digest):
                for method in ("HEAD", "GET"):
                    resp = api.get_manifest(repo, ref, method=method)
                    where = f"{registry.kind}: {method} {repo} manifest {ref}"
                    assert resp.status == 200, f"{where}: HTTP {resp.status} {resp.body[:300]!r}"
                    assert resp.digest == image.digest, where
                    assert resp.content_type == image.media_type, where
                    assert int(resp.headers["Content-Length"]) == len(image.manifest), where
                    if method == "GET":
                        assert resp.body == image.manifest, where
            for digest, data in image.blobs.items():
                resp = api.get_blob(repo, digest)
                assert resp.status == 200, f"{registry.kind}: GET {repo} blob {digest}: HTTP {resp.status}"
                assert resp.body == data, f"{registry.kind}: {repo} blob {digest} differs"


@pytest.mark.parametrize(("first", "second"), PAIRS)
def test_same_root_served_by_both(registry_factory, skopeo, sample_images, tmp_path: Path, first, second):
    root = tmp_path / "root"
    images = _images(sample_images)
    contents = {
        "interop/oci": {"1": "oci", "2": "oci", "3": "oci-other"},
        "interop/docker": {"1": "docker"},
        "interop/nested/path/docker": {"latest": "docker"},
    }
    with registry_factory.start(first, root) as writer:
        _push(skopeo, sample_images, writer, contents)
        assert_holds(writer, contents, images)

    with registry_factory.start(second, root) as reader:
        assert_holds(reader, contents, images)
        # A real client pulls it too, byte-identical.
        skopeo.copy(f"docker://{reader.addr}/interop/docker:1", f"dir:{tmp_path / 'pulled'}")
        assert read_dir_image(tmp_path / "pulled") == (
            sample_images.docker.manifest,
            sample_images.docker.blobs,
        )
        # The second kind writes into the tree the first one made: a new tag on known blobs, a new repo.
        more = {"interop/oci": {"4": "oci-other"}, "interop/added": {"1": "docker", "2": "oci"}}
        _push(skopeo, sample_images, reader, more)
    for repo, tags in more.items():
        contents.setdefault(repo, {}).update(tags)

    with registry_factory.start(first, root) as again:
        assert_holds(again, contents, images)
