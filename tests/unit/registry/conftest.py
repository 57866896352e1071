"""In-process registry fixtures: ``create_app`` served by aiohttp's test client, over each storage driver."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from regctl.config.server import ServerConfig
from regctl.registry.app import create_app
from regctl.registry.storage.filesystem import FilesystemDriver
from regctl.registry.storage.inmemory import InMemoryDriver

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"


def digest_of(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def make_config(delete: bool = True, **http: Any) -> ServerConfig:
    return ServerConfig.model_validate({"storage": {"delete": {"enabled": delete}}, "http": http})


@pytest.fixture(params=["inmemory", "filesystem"])
def driver(request: pytest.FixtureRequest, tmp_path):
    if request.param == "inmemory":
        return InMemoryDriver()
    return FilesystemDriver(str(tmp_path / "data"))


@pytest.fixture
def make_client(aiohttp_client, driver) -> Callable[..., Awaitable[TestClient]]:
    async def make(**config: Any) -> TestClient:
        return await aiohttp_client(create_app(make_config(**config), driver=driver))

    return make


@pytest.fixture
async def client(make_client) -> TestClient:
    return await make_client()


async def push_blob(client: TestClient, name: str, data: bytes) -> str:
    digest = digest_of(data)
    r = await client.post(f"/v2/{name}/blobs/uploads/?digest={digest}", data=data)
    assert r.status == 201, await r.text()
    return digest


def image_manifest(config_digest: str, config_size: int, layers: list[tuple[str, int]],
                   media_type: str = OCI_MANIFEST, **extra: Any) -> bytes:
    config_type = ("application/vnd.oci.image.config.v1+json" if media_type == OCI_MANIFEST
                   else "application/vnd.docker.container.image.v1+json")
    layer_type = ("application/vnd.oci.image.layer.v1.tar+gzip" if media_type == OCI_MANIFEST
                  else "application/vnd.docker.image.rootfs.diff.tar.gzip")
    doc = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": {"mediaType": config_type, "digest": config_digest, "size": config_size},
        "layers": [{"mediaType": layer_type, "digest": d, "size": s} for d, s in layers],
        **extra,
    }
    return json.dumps(doc, indent=1).encode()


async def push_image(client: TestClient, name: str, tag: str | None, *, seed: bytes = b"x",
                     media_type: str = OCI_MANIFEST, **extra: Any) -> tuple[str, bytes]:
    """Push config + one layer + manifest; returns (manifest digest, manifest bytes)."""
    config = b'{"architecture":"amd64","os":"linux","seed":"' + seed + b'"}'
    layer = b"layer-" + seed * 100
    config_digest = await push_blob(client, name, config)
    layer_digest = await push_blob(client, name, layer)
    manifest = image_manifest(config_digest, len(config), [(layer_digest, len(layer))], media_type, **extra)
    digest = digest_of(manifest)
    r = await client.put(f"/v2/{name}/manifests/{tag or digest}", data=manifest,
                         headers={"Content-Type": media_type})
    assert r.status == 201, await r.text()
    return digest, manifest


async def raw_request(client: TestClient, method: str, path: str) -> tuple[int, dict[str, Any]]:
    """Send ``path`` byte for byte (HTTP clients normalise ``..``); returns (status, JSON body)."""
    import asyncio

    reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
    writer.write(f"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
                 .encode())
    response = await reader.read()
    writer.close()
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body) if body else {}


async def error_code(response) -> str:
    body = await response.json()
    return body["errors"][0]["code"]
