"""oras-py 0.2.43 against the registry: file artifacts, and artifacts that refer to an image (``subject``).

The referrers API (``GET /v2/<name>/referrers/<digest>``) is OCI distribution-spec 1.1; Distribution 2.8
predates it, so that test is an expected failure there.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import oras.client
import oras.oci
import pytest
from helpers.images import OCI_INDEX, OCI_MANIFEST, sha256_digest
from helpers.registry_api import RegistryClient

UNKNOWN_CONFIG = "application/vnd.unknown.config.v1+json"  # what oras-py puts in config.mediaType


@pytest.fixture
def oras_client(registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> oras.client.OrasClient:
    # oras-py reads (and on login writes) ~/.docker/config.json: keep the user's out of the test.
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    client = oras.client.OrasClient(hostname=registry.addr, insecure=True)
    client.session.trust_env = False
    return client


def _file(path: Path, data: bytes) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return str(path)


def test_push_and_pull_file_artifact(registry, api: RegistryClient, oras_client, tmp_path: Path):
    target = f"{registry.addr}/oras/files:v1"
    contents = {
        "notes.txt": b"release notes\n",
        "data.bin": hashlib.sha256(b"seed").digest() * 4096,  # 128 KiB, not text
    }
    files = [_file(tmp_path / "src" / name, data) for name, data in contents.items()]

    pushed = oras_client.push(target=target, files=files, disable_path_validation=True, quiet=True)

    assert pushed.status_code == 201, pushed.text
    assert oras_client.get_tags(target) == ["v1"]
    pulled = oras_client.pull(target=target, outdir=str(tmp_path / "out"))
    assert sorted(Path(p).name for p in pulled) == sorted(contents)
    for name, data in contents.items():
        assert (tmp_path / "out" / name).read_bytes() == data
    manifest = api.get_manifest("oras/files", "v1")
    assert manifest.status == 200
    assert manifest.digest == pushed.headers["Docker-Content-Digest"] == sha256_digest(manifest.body)
    assert json.loads(manifest.body)["mediaType"] == OCI_MANIFEST


def test_artifact_with_subject_is_listed_by_referrers(
    registry, api: RegistryClient, oras_client, sample_images, tmp_path: Path, request: pytest.FixtureRequest
):
    if registry.kind == "distribution":
        request.applymarker(
            pytest.mark.xfail(strict=True, reason="Distribution 2.8 has no referrers API (distribution-spec 1.1)")
        )
    repo, image = "oras/referrers", sample_images.oci
    for data in image.blobs.values():
        api.push_blob(repo, data)
    api.push_manifest(repo, "image", image.manifest, image.media_type)
    subject = oras.oci.Subject(mediaType=image.media_type, digest=image.digest, size=len(image.manifest))
    annotations = {"org.regctl.test": "signature"}

    pushed = oras_client.push(
        target=f"{registry.addr}/{repo}:sig",
        files=[_file(tmp_path / "signature.txt", b"signed, sealed, delivered\n")],
        subject=subject,
        manifest_annotations=annotations,
        disable_path_validation=True,
        quiet=True,
    )

    assert pushed.status_code == 201, pushed.text
    artifact = api.get_manifest(repo, "sig")
    assert artifact.status == 200
    assert json.loads(artifact.body)["subject"]["digest"] == image.digest
    referrers = api.request("GET", f"/v2/{repo}/referrers/{image.digest}", headers={"Accept": OCI_INDEX})
    assert referrers.status == 200, f"GET referrers: HTTP {referrers.status} {referrers.body[:300]!r}"
    assert (referrers.content_type or "").startswith(OCI_INDEX)
    index = referrers.json()
    assert index["mediaType"] == OCI_INDEX
    assert index["manifests"] == [
        {
            "mediaType": OCI_MANIFEST,
            "digest": artifact.digest,
            "size": len(artifact.body),
            "artifactType": UNKNOWN_CONFIG,  # no artifactType in the manifest: the config's mediaType
            "annotations": annotations,
        }
    ]
    # distribution-spec 1.1: a registry that processes `subject` MUST answer with OCI-Subject.
    assert pushed.headers.get("OCI-Subject") == image.digest
    # ... and MUST NOT answer 404 for a manifest that nothing refers to.
    empty = api.request("GET", f"/v2/{repo}/referrers/{artifact.digest}", headers={"Accept": OCI_INDEX})
    assert empty.status == 200
    assert empty.json()["manifests"] == []
