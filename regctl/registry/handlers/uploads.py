"""Blob uploads (OCI "Pushing blobs"): monolithic, chunked, streamed, and cross-repository mounts."""

from __future__ import annotations

import re

from aiohttp import web

from regctl.registry.auth import Access
from regctl.registry.errors import ErrorCode, RegistryError
from regctl.registry.handlers.base import Context, body
from regctl.registry.reference import Digest, check_name
from regctl.registry.storage.uploads import range_header

_CONTENT_RANGE_RE = re.compile(r"(?:bytes )?(\d+)-(\d+)(?:/(?:\d+|\*))?")


def _session_headers(ctx: Context, upload_id: str, size: int) -> dict[str, str]:
    location = ctx.url(f"/v2/{ctx.name}/blobs/uploads/{upload_id}") + ctx.upload_state(upload_id)
    return {"Location": location, "Docker-Upload-UUID": upload_id, **range_header(size)}


def _created(ctx: Context, digest: Digest) -> web.Response:
    return web.Response(status=201, headers={"Location": ctx.url(f"/v2/{ctx.name}/blobs/{digest}"),
                                             "Docker-Content-Digest": str(digest)})


def _content_range(ctx: Context) -> tuple[int | None, int | None]:
    """(start, length) from Content-Range and Content-Length; RANGE_INVALID when they disagree."""
    length = ctx.request.content_length
    header = ctx.request.headers.get("Content-Range")
    if header is None:
        return None, length
    m = _CONTENT_RANGE_RE.fullmatch(header.strip())
    if not m or int(m.group(2)) < int(m.group(1)):
        raise RegistryError(ErrorCode.RANGE_INVALID, {"content_range": header[:100]})
    start, end = int(m.group(1)), int(m.group(2))
    if length is not None and length != end - start + 1:
        raise RegistryError(ErrorCode.RANGE_INVALID, {"content_range": header[:100], "content_length": length},
                            message="Content-Range does not match Content-Length")
    return start, end - start + 1


def _digest_param(ctx: Context) -> Digest:
    raw = ctx.request.query.get("digest")
    if raw is None:
        raise RegistryError(ErrorCode.DIGEST_INVALID, message="the digest query parameter is required")
    return Digest.parse(raw)


async def start_upload(ctx: Context) -> web.StreamResponse:
    query = ctx.request.query
    registry = ctx.registry
    mount = query.get("mount")
    if mount is not None:
        digest = Digest.parse(mount)
        source = query.get("from")
        # A source the caller may not pull is treated like one without the blob: nothing about it leaks.
        if (source is not None and ctx.grant.may(Access("repository", check_name(source), "pull"))
                and await registry.blobs.linked_size(source, digest) is not None):
            await registry.blobs.link(ctx.name, digest)
            return _created(ctx, digest)
        # Not mountable: fall back to a plain session (OCI "Mounting a blob from another repository").
    upload_id = await registry.uploads.start(ctx.name)
    if "digest" in query:
        try:
            digest = _digest_param(ctx)
            await _append(ctx, upload_id)
            await registry.uploads.finish(ctx.name, upload_id, digest)
        except BaseException:
            await registry.uploads.cancel(ctx.name, upload_id)
            raise
        return _created(ctx, digest)
    return web.Response(status=202, headers=_session_headers(ctx, upload_id, 0))


async def _append(ctx: Context, upload_id: str) -> int:
    start, length = _content_range(ctx)
    return await ctx.registry.uploads.append(ctx.name, upload_id, body(ctx.request), start, length)


async def patch_upload(ctx: Context) -> web.StreamResponse:
    upload_id = ctx.reference
    ctx.check_upload_state(upload_id)
    async with ctx.registry.uploads.lock(ctx.name, upload_id):
        size = await _append(ctx, upload_id)
    return web.Response(status=202, headers=_session_headers(ctx, upload_id, size))


async def upload_status(ctx: Context) -> web.StreamResponse:
    upload_id = ctx.reference
    ctx.check_upload_state(upload_id)
    size = await ctx.registry.uploads.size(ctx.name, upload_id)
    return web.Response(status=204, headers=_session_headers(ctx, upload_id, size))


async def finish_upload(ctx: Context) -> web.StreamResponse:
    upload_id = ctx.reference
    ctx.check_upload_state(upload_id)
    digest = _digest_param(ctx)
    async with ctx.registry.uploads.lock(ctx.name, upload_id):
        if ctx.request.content_length or ctx.request.headers.get("Transfer-Encoding"):
            await _append(ctx, upload_id)
        else:
            await ctx.registry.uploads.size(ctx.name, upload_id)  # BLOB_UPLOAD_UNKNOWN before DIGEST checks
        await ctx.registry.uploads.finish(ctx.name, upload_id, digest)
    return _created(ctx, digest)


async def cancel_upload(ctx: Context) -> web.StreamResponse:
    upload_id = ctx.reference
    ctx.check_upload_state(upload_id)
    await ctx.registry.uploads.cancel(ctx.name, upload_id)
    return web.Response(status=204)
