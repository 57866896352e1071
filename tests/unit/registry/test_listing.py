"""Tag lists, the catalog (both paginated) and the referrers API."""

from __future__ import annotations

import json

import pytest

from tests.unit.registry.conftest import OCI_MANIFEST, digest_of, error_code, push_blob, push_image


async def _tagged(client, name: str, tags: list[str]) -> None:
    _, data = await push_image(client, name, None)
    for tag in tags:
        r = await client.put(f"/v2/{name}/manifests/{tag}", data=data, headers={"Content-Type": OCI_MANIFEST})
        assert r.status == 201


async def test_tags_sorted(client):
    await _tagged(client, "foo", ["b", "A", "a", "10", "9"])
    r = await client.get("/v2/foo/tags/list")
    assert await r.json() == {"name": "foo", "tags": ["10", "9", "A", "a", "b"]}
    assert "Link" not in r.headers


async def test_tags_pagination(client):
    await _tagged(client, "foo", ["a", "b", "c", "d", "e"])
    r = await client.get("/v2/foo/tags/list?n=2")
    assert (await r.json())["tags"] == ["a", "b"]
    assert r.headers["Link"] == '</v2/foo/tags/list?last=b&n=2>; rel="next"'
    r = await client.get("/v2/foo/tags/list?n=2&last=b")
    assert (await r.json())["tags"] == ["c", "d"]
    r = await client.get("/v2/foo/tags/list?n=2&last=d")
    assert (await r.json())["tags"] == ["e"]
    assert "Link" not in r.headers
    r = await client.get("/v2/foo/tags/list?last=c")
    assert (await r.json())["tags"] == ["d", "e"]
    r = await client.get("/v2/foo/tags/list?n=0")
    assert (await r.json())["tags"] == []


@pytest.mark.parametrize("n", ["-1", "x", "1.5"])
async def test_bad_page_size(client, n):
    await _tagged(client, "foo", ["a"])
    r = await client.get(f"/v2/foo/tags/list?n={n}")
    assert r.status == 400
    assert await error_code(r) == "PAGINATION_NUMBER_INVALID"


async def test_repository_without_tags(client):
    await push_image(client, "foo", None)
    r = await client.get("/v2/foo/tags/list")
    assert await r.json() == {"name": "foo", "tags": []}


async def test_catalog(client):
    for name in ("zeta", "alpha/one", "alpha/two", "beta"):
        await push_image(client, name, "v1")
    await push_blob(client, "blobs-only", b"data")
    r = await client.get("/v2/_catalog")
    assert await r.json() == {"repositories": ["alpha/one", "alpha/two", "beta", "zeta"]}
    r = await client.get("/v2/_catalog?n=3")
    assert (await r.json())["repositories"] == ["alpha/one", "alpha/two", "beta"]
    assert r.headers["Link"] == '</v2/_catalog?last=beta&n=3>; rel="next"'
    r = await client.get("/v2/_catalog?n=3&last=beta")
    assert (await r.json())["repositories"] == ["zeta"]


async def _artifact(client, name: str, subject: str, subject_size: int, artifact_type: str,
                    annotations: dict | None = None) -> str:
    config = await push_blob(client, name, b"{}")
    doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": artifact_type,
           "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": config, "size": 2},
           "layers": [], "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": subject_size}}
    if annotations:
        doc["annotations"] = annotations
    data = json.dumps(doc).encode()
    r = await client.put(f"/v2/{name}/manifests/{digest_of(data)}", data=data,
                         headers={"Content-Type": OCI_MANIFEST})
    assert r.status == 201
    return digest_of(data)


async def test_referrers(client):
    subject, data = await push_image(client, "foo", "v1")
    sig = await _artifact(client, "foo", subject, len(data), "application/vnd.example.sig", {"k": "v"})
    sbom = await _artifact(client, "foo", subject, len(data), "application/vnd.example.sbom")
    r = await client.get(f"/v2/foo/referrers/{subject}")
    assert r.status == 200
    assert r.headers["Content-Type"] == "application/vnd.oci.image.index.v1+json"
    index = await r.json()
    assert index["schemaVersion"] == 2
    found = {m["digest"]: m for m in index["manifests"]}
    assert set(found) == {sig, sbom}
    assert found[sig]["artifactType"] == "application/vnd.example.sig"
    assert found[sig]["annotations"] == {"k": "v"}
    assert found[sig]["mediaType"] == OCI_MANIFEST
    assert "OCI-Filters-Applied" not in r.headers

    r = await client.get(f"/v2/foo/referrers/{subject}?artifactType=application/vnd.example.sbom")
    assert [m["digest"] for m in (await r.json())["manifests"]] == [sbom]
    assert r.headers["OCI-Filters-Applied"] == "artifactType"


async def test_referrers_of_unknown_subject_is_an_empty_index(client):
    r = await client.get(f"/v2/foo/referrers/{digest_of(b'nothing')}")
    assert r.status == 200
    assert (await r.json())["manifests"] == []


async def test_referrers_bad_digest(client):
    r = await client.get("/v2/foo/referrers/sha256:short")
    assert r.status == 400
    assert await error_code(r) == "DIGEST_INVALID"
