"""What every handler shares: the request context, URL building, request bodies and pagination."""

from __future__ import annotations

import hmac
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from hashlib import sha256
from typing import Any

import aiohttp
from aiohttp import web

from regctl.config.server import ServerConfig
from regctl.registry.auth import ANONYMOUS, Grant
from regctl.registry.errors import ErrorCode, RegistryError
from regctl.registry.storage.blobs import BlobStore
from regctl.registry.storage.driver import StorageDriver
from regctl.registry.storage.manifests import ManifestStore
from regctl.registry.storage.tags import TagStore
from regctl.registry.storage.uploads import ClientGone, UploadStore

_BODY_CHUNK = 1 << 20


@dataclass(slots=True)
class Registry:
    """Everything handlers reach: configuration and the stores over one storage driver."""

    config: ServerConfig
    driver: StorageDriver
    blobs: BlobStore
    manifests: ManifestStore
    tags: TagStore
    uploads: UploadStore

    @classmethod
    def over(cls, config: ServerConfig, driver: StorageDriver) -> Registry:
        blobs = BlobStore(driver)
        return cls(config, driver, blobs, ManifestStore(driver, blobs), TagStore(driver),
                   UploadStore(driver, blobs))

    @property
    def delete_enabled(self) -> bool:
        return self.config.storage.delete.enabled


@dataclass(slots=True)
class Context:
    """One request after routing and access control: the registry, the request, the path parameters, and
    what the caller may do (the grant, which also answers for other repositories: catalog, mounts)."""

    registry: Registry
    request: web.Request
    name: str = ""
    reference: str = ""
    grant: Grant = ANONYMOUS

    def url(self, path: str) -> str:
        """An absolute (or, with ``http.relativeurls``, relative) URL for a Location header.

        X-Forwarded-Proto/Host are honoured as Distribution does, so a registry behind a TLS-terminating
        proxy hands out https URLs (the seed's "Important/Required HTTP-Headers").
        """
        http = self.registry.config.http
        if http.relativeurls:
            return path
        if http.host:
            return http.host.rstrip("/") + path
        headers = self.request.headers
        proto = headers.get("X-Forwarded-Proto", "").split(",")[0].strip() or self.request.scheme
        host = headers.get("X-Forwarded-Host", "").split(",")[0].strip() or self.request.host
        return f"{proto}://{host}{path}"

    def upload_state(self, upload_id: str) -> str:
        """The ``_state`` token binding a session to its repository, when ``http.secret`` is set."""
        secret = self.registry.config.http.secret
        if not secret:
            return ""
        mac = hmac.new(secret.encode(), f"{self.name}\n{upload_id}".encode(), sha256).hexdigest()
        return f"?_state={mac}"

    def check_upload_state(self, upload_id: str) -> None:
        given = self.request.query.get("_state")
        expected = self.upload_state(upload_id)
        if given is not None and expected and not hmac.compare_digest(f"?_state={given}", expected):
            raise RegistryError(ErrorCode.BLOB_UPLOAD_INVALID, {"uuid": upload_id}, message="invalid upload state")


async def body(request: web.Request) -> AsyncIterator[bytes]:
    """The request body in chunks; a broken or short body raises ClientGone."""
    try:
        while True:
            chunk = await request.content.readany()
            if not chunk:
                return
            yield chunk
    except (aiohttp.ClientPayloadError, ConnectionResetError, aiohttp.EofStream) as e:
        raise ClientGone(str(e) or type(e).__name__) from None


async def read_small(request: web.Request, limit: int, too_big: ErrorCode) -> bytes:
    """Read a whole body of at most ``limit`` bytes (manifests); more raises ``too_big``."""
    declared = request.content_length
    if declared is not None and declared > limit:
        raise RegistryError(too_big, {"size": declared, "limit": limit})
    data = bytearray()
    async for chunk in body(request):
        data += chunk
        if len(data) > limit:
            raise RegistryError(too_big, {"limit": limit})
    return bytes(data)


def json_response(doc: Any, *, status: int = 200, content_type: str = "application/json",
                  headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, body=json.dumps(doc).encode(), content_type=content_type,
                        headers=headers)


def paginate(ctx: Context, items: list[str], *, default_n: int | None, path: str) -> tuple[list[str], dict]:
    """Apply ``n`` and ``last`` (OCI "Listing Tags"); returns the page and a Link header when more follow."""
    query = ctx.request.query
    last = query.get("last")
    if last:
        items = [item for item in items if item > last]
    raw_n = query.get("n")
    n = default_n
    if raw_n is not None:
        if not raw_n.isdigit():
            raise RegistryError(ErrorCode.PAGINATION_NUMBER_INVALID, {"n": raw_n[:50]})
        n = int(raw_n)
    if n is None or len(items) <= n:
        return items, {}
    page = items[:n]
    if not page:
        return page, {}
    link = f'<{path}?last={page[-1]}&n={n}>; rel="next"'
    return page, {"Link": link}
