"""Manifests: push and pull by tag and digest in all four formats, negotiation, validation, deletes."""

from __future__ import annotations

import json

import pytest

from tests.unit.registry.conftest import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    digest_of,
    error_code,
    image_manifest,
    push_blob,
    push_image,
)


@pytest.mark.parametrize("media_type", [OCI_MANIFEST, DOCKER_MANIFEST])
async def test_push_and_pull_by_tag_and_digest(client, media_type):
    digest, data = await push_image(client, "foo", "v1", media_type=media_type)
    for reference in ("v1", digest):
        r = await client.get(f"/v2/foo/manifests/{reference}", headers={"Accept": media_type})
        assert r.status == 200
        assert await r.read() == data
        assert r.headers["Content-Type"] == media_type
        assert r.headers["Docker-Content-Digest"] == digest
        h = await client.head(f"/v2/foo/manifests/{reference}", headers={"Accept": media_type})
        assert h.status == 200
        assert int(h.headers["Content-Length"]) == len(data)
        assert h.headers["Docker-Content-Digest"] == digest


async def test_put_answers_location_and_digest(client):
    config = await push_blob(client, "foo", b"{}")
    data = image_manifest(config, 2, [])
    r = await client.put("/v2/foo/manifests/latest", data=data, headers={"Content-Type": OCI_MANIFEST})
    assert r.status == 201
    assert r.headers["Docker-Content-Digest"] == digest_of(data)
    assert r.headers["Location"].endswith(f"/v2/foo/manifests/{digest_of(data)}")


@pytest.mark.parametrize("index_type,child_type", [(OCI_INDEX, OCI_MANIFEST), (DOCKER_LIST, DOCKER_MANIFEST)])
async def test_index_of_images(client, index_type, child_type):
    amd, amd_data = await push_image(client, "foo", None, seed=b"a", media_type=child_type)
    arm, arm_data = await push_image(client, "foo", None, seed=b"b", media_type=child_type)
    index = json.dumps({"schemaVersion": 2, "mediaType": index_type, "manifests": [
        {"mediaType": child_type, "digest": amd, "size": len(amd_data),
         "platform": {"os": "linux", "architecture": "amd64"}},
        {"mediaType": child_type, "digest": arm, "size": len(arm_data),
         "platform": {"os": "linux", "architecture": "arm64"}},
    ]}).encode()
    r = await client.put("/v2/foo/manifests/multi", data=index, headers={"Content-Type": index_type})
    assert r.status == 201, await r.text()
    r = await client.get("/v2/foo/manifests/multi", headers={"Accept": f"{index_type}, {child_type}"})
    assert await r.read() == index
    assert r.headers["Content-Type"] == index_type
    # A client that reads single images only gets the linux/amd64 one, as from Distribution.
    r = await client.get("/v2/foo/manifests/multi", headers={"Accept": child_type})
    assert r.status == 200
    assert await r.read() == amd_data


async def test_oci_manifest_not_in_accept_header(client):
    await push_image(client, "foo", "v1", media_type=OCI_MANIFEST)
    r = await client.get("/v2/foo/manifests/v1", headers={"Accept": DOCKER_MANIFEST})
    assert r.status == 404
    assert await error_code(r) == "MANIFEST_UNKNOWN"
    r = await client.get("/v2/foo/manifests/v1", headers={"Accept": "*/*"})
    assert r.status == 200


async def test_missing_blobs_are_named(client):
    config = await push_blob(client, "foo", b"{}")
    missing = digest_of(b"not pushed")
    data = image_manifest(config, 2, [(missing, 10)])
    r = await client.put("/v2/foo/manifests/v1", data=data, headers={"Content-Type": OCI_MANIFEST})
    assert r.status == 400
    body = await r.json()
    assert body["errors"][0]["code"] == "MANIFEST_BLOB_UNKNOWN"
    assert body["errors"][0]["detail"]["missing"] == [missing]
    assert (await client.get("/v2/foo/manifests/v1")).status == 404


async def test_blob_in_another_repository_does_not_count(client):
    config = await push_blob(client, "other", b"{}")
    r = await client.put("/v2/foo/manifests/v1", data=image_manifest(config, 2, []),
                         headers={"Content-Type": OCI_MANIFEST})
    assert await error_code(r) == "MANIFEST_BLOB_UNKNOWN"


async def test_index_with_missing_child(client):
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": digest_of(b"child"), "size": 5}]}).encode()
    r = await client.put("/v2/foo/manifests/v1", data=index, headers={"Content-Type": OCI_INDEX})
    assert r.status == 400
    assert await error_code(r) == "MANIFEST_BLOB_UNKNOWN"


@pytest.mark.parametrize("data", [
    b"not json", b"[]", b'{"schemaVersion": 1}', b'{"schemaVersion": 2, "mediaType": "text/plain"}',
    b'{"schemaVersion": 2, "mediaType": "' + OCI_MANIFEST.encode() + b'"}',
    b'{"schemaVersion": 2, "mediaType": "' + OCI_MANIFEST.encode()
    + b'", "config": {"mediaType": "x", "digest": "sha256:zz", "size": 1}}',
    b'{"schemaVersion": 2, "config": {"mediaType": "x", "digest": "sha256:'
    + b"0" * 64 + b'", "size": -1}, "layers": []}',
])
async def test_invalid_manifests(client, data):
    r = await client.put("/v2/foo/manifests/v1", data=data, headers={"Content-Type": OCI_MANIFEST})
    assert r.status == 400
    assert await error_code(r) == "MANIFEST_INVALID"


async def test_media_type_must_match_content_type(client):
    _digest, data = await push_image(client, "foo", None)
    r = await client.put("/v2/foo/manifests/v2", data=data, headers={"Content-Type": DOCKER_MANIFEST})
    assert await error_code(r) == "MANIFEST_INVALID"


async def test_oversized_manifest(client):
    data = b'{"schemaVersion": 2, "padding": "' + b"x" * (4 * 1024 * 1024) + b'"}'
    r = await client.put("/v2/foo/manifests/v1", data=data, headers={"Content-Type": OCI_MANIFEST})
    assert r.status == 413
    assert await error_code(r) == "MANIFEST_INVALID"


async def test_push_by_wrong_digest(client):
    _, data = await push_image(client, "foo", None)
    wrong = digest_of(b"other")
    r = await client.put(f"/v2/foo/manifests/{wrong}", data=data, headers={"Content-Type": OCI_MANIFEST})
    assert r.status == 400
    assert await error_code(r) == "DIGEST_INVALID"


async def test_push_by_sha512_digest(client):
    _digest, data = await push_image(client, "foo", None)
    sha512 = digest_of(data, "sha512")
    r = await client.put(f"/v2/foo/manifests/{sha512}", data=data, headers={"Content-Type": OCI_MANIFEST})
    assert r.status == 201
    assert r.headers["Docker-Content-Digest"] == sha512
    assert await (await client.get(f"/v2/foo/manifests/{sha512}")).read() == data


@pytest.mark.parametrize("tag", ["-bad", "a" * 129, "bad%21"])
async def test_invalid_tag(client, tag):
    _, data = await push_image(client, "foo", None)
    r = await client.put(f"/v2/foo/manifests/{tag}", data=data, headers={"Content-Type": OCI_MANIFEST})
    assert r.status == 400
    assert await error_code(r) == "TAG_INVALID"


async def test_failed_push_keeps_the_old_tag(client):
    _digest, data = await push_image(client, "foo", "v1")
    r = await client.put("/v2/foo/manifests/v1", data=b"{broken", headers={"Content-Type": OCI_MANIFEST})
    assert r.status == 400
    r = await client.get("/v2/foo/manifests/v1")
    assert await r.read() == data


async def test_subject_is_answered_with_oci_subject(client):
    subject, subject_data = await push_image(client, "foo", "v1")
    config = await push_blob(client, "foo", b"{}")
    artifact = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/vnd.example.sig",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": config, "size": 2},
        "layers": [], "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": len(subject_data)},
    }).encode()
    r = await client.put(f"/v2/foo/manifests/{digest_of(artifact)}", data=artifact,
                         headers={"Content-Type": OCI_MANIFEST})
    assert r.status == 201
    assert r.headers["OCI-Subject"] == subject


async def test_delete_tag_keeps_the_manifest(client):
    digest, data = await push_image(client, "foo", "v1")
    r = await client.put("/v2/foo/manifests/v2", data=data, headers={"Content-Type": OCI_MANIFEST})
    r = await client.delete("/v2/foo/manifests/v1")
    assert r.status == 202
    assert (await client.get("/v2/foo/manifests/v1")).status == 404
    assert (await client.get("/v2/foo/manifests/v2")).status == 200
    assert (await client.get(f"/v2/foo/manifests/{digest}")).status == 200
    assert (await (await client.get("/v2/foo/tags/list")).json())["tags"] == ["v2"]


async def test_delete_by_digest_removes_manifest_and_its_tags(client):
    digest, _ = await push_image(client, "foo", "v1")
    _other, _ = await push_image(client, "foo", "keep", seed=b"k")
    r = await client.delete(f"/v2/foo/manifests/{digest}")
    assert r.status == 202
    assert (await client.get(f"/v2/foo/manifests/{digest}")).status == 404
    assert (await client.get("/v2/foo/manifests/v1")).status == 404
    assert (await (await client.get("/v2/foo/tags/list")).json())["tags"] == ["keep"]
    r = await client.delete(f"/v2/foo/manifests/{digest}")
    assert await error_code(r) == "MANIFEST_UNKNOWN"


async def test_deletes_disabled(make_client):
    client = await make_client(delete=False)
    digest, _ = await push_image(client, "foo", "v1")
    for reference in ("v1", digest):
        r = await client.delete(f"/v2/foo/manifests/{reference}")
        assert r.status == 405
        assert await error_code(r) == "UNSUPPORTED"
    assert (await client.get("/v2/foo/manifests/v1")).status == 200


async def test_retag_moves_the_tag(client):
    first, _ = await push_image(client, "foo", "latest", seed=b"1")
    second, _ = await push_image(client, "foo", "latest", seed=b"2")
    r = await client.head("/v2/foo/manifests/latest")
    assert r.headers["Docker-Content-Digest"] == second
    assert (await client.head(f"/v2/foo/manifests/{first}")).status == 200
