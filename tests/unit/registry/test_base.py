"""The API root, headers every response carries, routing errors and repository name checks."""

from __future__ import annotations

import pytest

from regctl.registry.app import create_app
from regctl.registry.storage.inmemory import InMemoryDriver
from tests.unit.registry.conftest import make_config, push_image, raw_request

API_VERSION = "registry/2.0"


async def test_v2_root_answers_with_api_version(client):
    r = await client.get("/v2/")
    assert r.status == 200
    assert await r.json() == {}
    assert r.headers["Docker-Distribution-API-Version"] == API_VERSION


async def test_root_is_a_health_check(client):
    r = await client.get("/")
    assert r.status == 200


@pytest.mark.parametrize("method,path,status,code", [
    ("GET", "/v2/foo/nothing-here", 404, "NOT_FOUND"),
    ("POST", "/v2/foo/manifests/latest", 405, "UNSUPPORTED"),
    ("GET", "/v2/foo/blobs/sha256:" + "0" * 64, 404, "BLOB_UNKNOWN"),
    ("GET", "/v2/foo/manifests/latest", 404, "MANIFEST_UNKNOWN"),
    ("GET", "/v2/foo/tags/list", 404, "NAME_UNKNOWN"),
])
async def test_errors_carry_envelope_and_api_version(client, method, path, status, code):
    r = await client.request(method, path)
    assert r.status == status
    assert r.headers["Docker-Distribution-API-Version"] == API_VERSION
    assert r.headers["Content-Type"].startswith("application/json")
    body = await r.json()
    assert body["errors"][0]["code"] == code
    assert body["errors"][0]["message"]


async def test_head_error_has_no_body_but_keeps_headers(client):
    r = await client.head("/v2/foo/manifests/latest")
    assert r.status == 404
    assert r.headers["Docker-Distribution-API-Version"] == API_VERSION
    assert await r.read() == b""


@pytest.mark.parametrize("name", [
    "UPPER/case", "foo/../bar", "%2e%2e/etc", "foo/%2e%2e/bar", "foo//bar", "-leading", "trailing-",
    "foo/_manifests", "a" * 256, "foo%2fbar",
])
async def test_invalid_names_are_rejected(client, name):
    status, body = await raw_request(client, "GET", f"/v2/{name}/tags/list")
    assert status == 400
    assert body["errors"][0]["code"] == "NAME_INVALID"


@pytest.mark.parametrize("path", ["/v2/..%2f..%2fetc/blobs/uploads/", "/v2/../../etc/blobs/uploads/",
                                  "/v2//etc/blobs/uploads/", "/v2/foo/../../../blobs/uploads/"])
async def test_traversal_in_a_push_stores_nothing(client, path):
    status, body = await raw_request(client, "POST", path)
    assert status == 400
    assert body["errors"][0]["code"] == "NAME_INVALID"
    r = await client.get("/v2/_catalog")
    assert (await r.json())["repositories"] == []


async def test_configured_headers_are_added(make_client):
    client = await make_client(headers={"X-Content-Type-Options": ["nosniff"]})
    r = await client.get("/v2/")
    assert r.headers["X-Content-Type-Options"] == "nosniff"


async def test_long_names_with_many_components(client):
    name = "a/b-c/d.e/f__g/h"
    await push_image(client, name, "v1")
    r = await client.get(f"/v2/{name}/tags/list")
    assert await r.json() == {"name": name, "tags": ["v1"]}


class _BrokenDriver(InMemoryDriver):
    async def stat(self, path: str):
        raise OSError("disk on fire")


async def test_storage_outage_is_a_500_in_the_envelope(aiohttp_client):
    client = await aiohttp_client(create_app(make_config(), driver=_BrokenDriver()))
    r = await client.head("/v2/foo/blobs/sha256:" + "0" * 64)
    assert r.status == 500
    assert r.headers["Docker-Distribution-API-Version"] == API_VERSION
    r = await client.get("/v2/foo/blobs/sha256:" + "0" * 64)
    assert r.status == 500
    assert (await r.json())["errors"][0]["code"] == "UNKNOWN"
