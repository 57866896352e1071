"""Blobs: ``GET``/``HEAD``/``DELETE /v2/<name>/blobs/<digest>`` (OCI "Pulling blobs", "Deleting blobs")."""

from __future__ import annotations

import re

from aiohttp import web

from regctl.registry.errors import ErrorCode, RegistryError
from regctl.registry.handlers.base import Context
from regctl.registry.handlers.sendfile import send_file
from regctl.registry.reference import Digest

_RANGE_RE = re.compile(r"bytes=(\d*)-(\d*)")


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(first, last) inclusive for a single byte range, None to send everything; RANGE_INVALID if unsatisfiable."""
    if not header:
        return None
    m = _RANGE_RE.fullmatch(header.strip())
    if not m or not (m.group(1) or m.group(2)):
        return None  # multiple or malformed ranges: RFC 9110 lets a server ignore Range
    first, last = m.groups()
    if not first:
        length = int(last)
        if length == 0 or size == 0:
            raise _unsatisfiable(size)
        return max(size - length, 0), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or (last and int(last) < start):
        raise _unsatisfiable(size)
    return start, end


def _unsatisfiable(size: int) -> RegistryError:
    return RegistryError(ErrorCode.RANGE_INVALID, {"size": size}, headers={"Content-Range": f"bytes */{size}"})


async def _linked(ctx: Context) -> tuple[Digest, int]:
    digest = Digest.parse(ctx.reference)
    size = await ctx.registry.blobs.linked_size(ctx.name, digest)
    if size is None:
        raise RegistryError(ErrorCode.BLOB_UNKNOWN, {"digest": str(digest)})
    return digest, size


async def get_blob(ctx: Context) -> web.StreamResponse:
    digest, size = await _linked(ctx)
    headers = {
        "Docker-Content-Digest": str(digest),
        "Content-Type": "application/octet-stream",
        "ETag": f'"{digest}"',
        "Accept-Ranges": "bytes",
        "Cache-Control": "max-age=31536000",
    }
    span = parse_range(ctx.request.headers.get("Range"), size)
    status, offset, count = 200, 0, size
    if span is not None:
        status, offset, count = 206, span[0], span[1] - span[0] + 1
        headers["Content-Range"] = f"bytes {span[0]}-{span[1]}/{size}"
    response = web.StreamResponse(status=status, headers=headers)
    response.content_length = count
    path = ctx.registry.blobs.local_path(digest)
    if path is not None:
        return await send_file(ctx.request, response, path, offset, count)
    await response.prepare(ctx.request)
    if ctx.request.method != "HEAD":
        async for chunk in ctx.registry.blobs.reader(digest, offset, count):
            await response.write(chunk)
    await response.write_eof()
    return response


async def head_blob(ctx: Context) -> web.StreamResponse:
    digest, size = await _linked(ctx)
    response = web.StreamResponse(headers={"Docker-Content-Digest": str(digest), "ETag": f'"{digest}"',
                                           "Accept-Ranges": "bytes", "Content-Type": "application/octet-stream"})
    response.content_length = size
    return response


async def delete_blob(ctx: Context) -> web.StreamResponse:
    if not ctx.registry.delete_enabled:
        raise RegistryError(ErrorCode.UNSUPPORTED, message="deletes are disabled (storage.delete.enabled)")
    digest = Digest.parse(ctx.reference)
    if not await ctx.registry.blobs.unlink(ctx.name, digest):
        raise RegistryError(ErrorCode.BLOB_UNKNOWN, {"digest": str(digest)})
    return web.Response(status=202, headers={"Docker-Content-Digest": str(digest)})
