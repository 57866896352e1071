"""The Docker engine (dockerd 20.10, CLI 28) pushes to and pulls from the registry unchanged."""

from __future__ import annotations

import re

from helpers.images import DOCKER_MANIFEST

_PUSHED_DIGEST = re.compile(rb"digest: (sha256:[0-9a-f]{64}) size: \d+")


def test_push_remove_pull_same_image(registry, api, docker_engine, test_image):
    repo = "test/busybox"
    ref = f"{registry.addr}/{repo}:1"
    image_id = docker_engine.image_id(test_image)
    docker_engine("tag", test_image, ref)
    digest = None
    try:
        push = docker_engine("push", ref)
        match = _PUSHED_DIGEST.search(push.stdout)
        assert match, f"no digest in docker push output:\n{push.stdout.decode()}"
        digest = match.group(1).decode()
        head = api.get_manifest(repo, "1", method="HEAD")
        assert head.status == 200
        assert head.digest == digest
        assert head.content_type == DOCKER_MANIFEST

        # Every tag of the image goes, so the pull must fetch every blob from the registry.
        docker_engine.remove_images(ref, test_image)
        assert docker_engine.image_id(image_id) is None
        docker_engine("pull", ref)

        assert docker_engine.image_id(ref) == image_id
        assert f"{registry.addr}/{repo}@{digest}" in docker_engine.repo_digests(ref)
        run = docker_engine("run", "--rm", "--network", "none", ref, "cat", "/www/index.html")
        assert run.stdout == b"hello\n"
    finally:
        if docker_engine.image_id(ref) is not None and docker_engine.image_id(test_image) is None:
            docker_engine("tag", ref, test_image)  # keep the cached test image for the next test
        docker_engine.remove_images(ref, *([f"{registry.addr}/{repo}@{digest}"] if digest else []))
